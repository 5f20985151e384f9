//! Embedded, versioned migrations.
//!
//! Each file under `migrations/` is compiled in with `include_str!` and applied once, in
//! version order, inside one transaction that also records it in `<schema>.schema_migrations`.
//! A transaction-scoped advisory lock serialises instances that start at the same time, so
//! exactly one of them applies a new version and the others find it done.

use deadpool_postgres::Object;

use crate::error::unavailable;
use jwt_exchange::store::StoreError;

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Increasing version, also the file's numeric prefix.
    pub(crate) version: i32,
    /// The file's name without prefix and extension.
    pub(crate) name: &'static str,
    /// The SQL, run with `search_path` set to the store's schema.
    pub(crate) sql: &'static str,
}

/// Every migration, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "sessions_and_jtis",
    sql: include_str!("../migrations/0001_sessions_and_jtis.sql"),
}];

/// Applies the missing migrations to `schema` (validated, unquoted); returns the versions
/// applied now (empty when the schema was up to date).
pub(crate) async fn run(client: &mut Object, schema: &str) -> Result<Vec<i32>, StoreError> {
    let quoted = format!("\"{schema}\"");
    let tx = client.transaction().await.map_err(unavailable)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('jwt-exchange migrate ' || $1))",
        &[&schema],
    )
    .await
    .map_err(unavailable)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted};
         CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations (
             version     INTEGER PRIMARY KEY,
             name        TEXT NOT NULL,
             applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(unavailable)?;
    let done: Vec<i32> = tx
        .query(
            &format!("SELECT version FROM {quoted}.schema_migrations"),
            &[],
        )
        .await
        .map_err(unavailable)?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(StoreError::corrupt)?;
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        tx.batch_execute(&format!("SET LOCAL search_path TO {quoted}"))
            .await
            .map_err(unavailable)?;
        tx.batch_execute(m.sql).await.map_err(unavailable)?;
        tx.execute(
            &format!("INSERT INTO {quoted}.schema_migrations (version, name) VALUES ($1, $2)"),
            &[&m.version, &m.name],
        )
        .await
        .map_err(unavailable)?;
        applied.push(m.version);
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_named_after_their_files() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i32::try_from(i + 1).expect("small"));
            assert!(m.sql.contains("CREATE TABLE"), "{}", m.name);
        }
    }
}
