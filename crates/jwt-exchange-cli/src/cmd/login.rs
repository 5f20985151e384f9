//! `jwt-exchange login --url URL --token-file FILE [--out FILE] [--watch] [--refresh-before 5m]`:
//! the client side. Reads the external JWT from a file, exchanges it, writes the bearer
//! atomically (0600) to `--out` or stdout; with `--watch`, re-exchanges before expiry and when
//! the token file changes, backing off on errors, until stopped.

use std::path::PathBuf;
use std::time::Duration;

use jwt_exchange::client::{write_secret_file, ExchangeClient, RefreshEvent, TokenFileRefresher};

use crate::Failure;

/// `login` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The server's base URL (where the router is mounted), or the full login URL.
    #[arg(long, env = "JWTX_URL")]
    url: String,
    /// File holding the external JWT (e.g. a projected service-account token).
    #[arg(long, env = "BEARER_TOKEN_FILE")]
    token_file: PathBuf,
    /// Write the bearer here (atomically, mode 0600) instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep running: re-exchange before expiry and when the token file changes.
    #[arg(long)]
    watch: bool,
    /// With --watch: how long before expiry to re-exchange.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    refresh_before: Duration,
    /// With --watch: how often to check the token file for changes.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration, hide = true)]
    poll_interval: Duration,
}

pub(crate) async fn run(a: Args) -> Result<(), Failure> {
    let client = ExchangeClient::new(&a.url).map_err(|e| Failure::Config(e.to_string()))?;
    if a.watch && a.out.is_none() {
        return Err(Failure::Config(
            "--watch needs --out (the bearer file to keep fresh)".into(),
        ));
    }
    let write = |b: &jwt_exchange::client::IssuedBearer| {
        if let Some(path) = &a.out {
            write_secret_file(path, b.token.as_str())
        } else {
            println!("{}", b.token.as_str());
            Ok(())
        }
    };
    if !a.watch {
        let issued = client
            .exchange_file(&a.token_file)
            .await
            .map_err(|e| Failure::Run(describe(&e)))?;
        write(&issued).map_err(|e| Failure::Run(describe(&e)))?;
        if let Some(out) = &a.out {
            eprintln!(
                "bearer written to {} (expires at {})",
                out.display(),
                issued.expires_at
            );
        }
        return Ok(());
    }
    let refresher = TokenFileRefresher::new(client, &a.token_file, a.refresh_before)
        .with_poll_interval(a.poll_interval);
    let run = refresher.run(write, |ev| match ev {
        RefreshEvent::Refreshed { expires_at } => {
            tracing::info!(expires_at, "bearer refreshed");
        }
        RefreshEvent::Failed { error, retry_in } => {
            tracing::warn!(error = %describe(error), retry_in = ?retry_in, "exchange failed; retrying");
        }
        _ => {}
    });
    tokio::select! {
        () = run => Ok(()),
        () = crate::cmd::serve::shutdown_signal() => {
            tracing::info!("stopping");
            Ok(())
        }
    }
}

fn describe(e: &jwt_exchange::client::ClientError) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}
