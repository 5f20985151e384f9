//! `jwt-exchange migrate --config FILE`: applies the Postgres session store's schema
//! migrations (`serve` also applies them at start-up) and prints what was applied.

use std::path::PathBuf;

use crate::config::StoreKind;
use crate::Failure;

/// `migrate` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The server's configuration file (its `session_store` must be `postgres`).
    #[arg(long)]
    config: PathBuf,
}

pub(crate) async fn run(a: Args) -> Result<(), Failure> {
    let loaded = crate::config::load(&a.config)?;
    if loaded.file.session_store.kind != StoreKind::Postgres {
        return Err(Failure::Config(format!(
            "{}: session_store.type is not postgres; only the Postgres store has migrations",
            a.config.display()
        )));
    }
    let store = crate::cmd::serve::connect_postgres(&loaded, false).await?;
    let applied = store.migrate().await.map_err(|e| {
        Failure::Run(format!(
            "migration failed: {}",
            crate::cmd::serve::chain(&e)
        ))
    })?;
    if applied.is_empty() {
        println!(
            "schema is up to date (version {})",
            jwt_exchange_postgres::PostgresStore::latest_schema_version()
        );
    } else {
        println!("applied migrations: {applied:?}");
    }
    Ok(())
}
