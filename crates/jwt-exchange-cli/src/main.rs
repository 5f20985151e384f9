//! `jwt-exchange`: run the exchange as a standalone server, try it with `demo`, and the
//! developer and client tools around it. See `jwt-exchange --help`.

mod cmd;
mod config;
mod latency;
mod logging;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exchange an identity provider's JWT for a short-lived, revocable session.
#[derive(Debug, Parser)]
#[command(name = "jwt-exchange", version, about, long_about = None)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = logging::Format::Text)]
    log_format: logging::Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the standalone server.
    Serve(cmd::serve::Args),
    /// Walk through the whole flow against a built-in development IdP.
    Demo(cmd::demo::Args),
    /// Generate a signing key (PEM) and its public JWKS.
    Keygen(cmd::keygen::Args),
    /// Mint a development token.
    Mint(cmd::mint::Args),
    /// Show a token's header and claims, UNVERIFIED.
    Inspect(cmd::inspect::Args),
    /// Verify a token against a configuration and explain the outcome.
    Verify(cmd::verify::Args),
    /// Exchange a token file for a bearer (and keep it fresh with --watch).
    Login(cmd::login::Args),
    /// Git credential helper: username `_jwt`, the bearer as password.
    GitCredential(cmd::git_credential::Args),
    /// Apply the Postgres session store's schema migrations.
    Migrate(cmd::migrate::Args),
}

/// Exit codes: 0 success, 1 failure, 2 usage or configuration error.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad configuration or arguments: exit 2.
    Config(String),
    /// Anything else: exit 1.
    Run(String),
}

impl From<config::LoadError> for Failure {
    fn from(e: config::LoadError) -> Self {
        Failure::Config(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(a) => cmd::serve::run(a).await,
            Command::Demo(a) => cmd::demo::run(a).await,
            Command::Keygen(a) => cmd::keygen::run(&a),
            Command::Mint(a) => cmd::mint::run(&a),
            Command::Inspect(a) => cmd::inspect::run(&a),
            Command::Verify(a) => cmd::verify::run(a).await,
            Command::Login(a) => cmd::login::run(a).await,
            Command::GitCredential(a) => cmd::git_credential::run(a).await,
            Command::Migrate(a) => cmd::migrate::run(a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Run(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
