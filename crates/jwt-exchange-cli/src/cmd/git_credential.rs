//! `jwt-exchange git-credential [--bearer-file F | --url U --token-file T] get`: a git
//! credential helper. It prints `username=_jwt` and the bearer as `password`, so `git` and
//! `git lfs` work against a server that accepts HTTP Basic with user `_jwt`.
//!
//! ```sh
//! git config --global credential.https://lakefs.example.com.helper \
//!   "jwt-exchange git-credential --bearer-file /var/run/secrets/lakefs/bearer"
//! ```
//!
//! `store` and `erase` are accepted and do nothing (the bearer is managed by `login --watch`).

use std::io::Read;
use std::path::PathBuf;

use jwt_exchange::client::{read_token_file, ExchangeClient};

use crate::Failure;

/// The git credential protocol action.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Action {
    /// Print the credential.
    Get,
    /// Ignored.
    Store,
    /// Ignored.
    Erase,
}

/// `git-credential` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A bearer file kept fresh by `jwt-exchange login --watch --out FILE`.
    #[arg(long, env = "JWTX_BEARER_FILE", conflicts_with_all = ["url", "token_file"])]
    bearer_file: Option<PathBuf>,
    /// Exchange on demand at this server instead (with --token-file).
    #[arg(long, env = "JWTX_URL", requires = "token_file")]
    url: Option<String>,
    /// The external JWT to exchange on demand.
    #[arg(long, env = "BEARER_TOKEN_FILE", requires = "url")]
    token_file: Option<PathBuf>,
    /// What git asks for.
    #[arg(value_enum)]
    action: Action,
}

pub(crate) async fn run(a: Args) -> Result<(), Failure> {
    // git writes the request (protocol=…, host=…) on stdin; drain it so git never blocks.
    let mut request = String::new();
    let _ = std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut request);
    if !matches!(a.action, Action::Get) {
        return Ok(());
    }
    let bearer = if let Some(file) = &a.bearer_file {
        read_token_file(file).map_err(|e| Failure::Run(e.to_string()))?
    } else if let (Some(url), Some(token_file)) = (&a.url, &a.token_file) {
        let client = ExchangeClient::new(url).map_err(|e| Failure::Config(e.to_string()))?;
        client
            .exchange_file(token_file)
            .await
            .map_err(|e| Failure::Run(e.to_string()))?
            .token
            .into_string()
    } else {
        return Err(Failure::Config(
            "give --bearer-file, or --url with --token-file".into(),
        ));
    };
    if bearer.contains(['\n', '\0']) {
        return Err(Failure::Run("the bearer contains a newline or NUL".into()));
    }
    print!("{}", credential_output(&bearer));
    Ok(())
}

/// The helper's answer in git's credential format.
fn credential_output(bearer: &str) -> String {
    format!("username=_jwt\npassword={bearer}\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn output_format() {
        assert_eq!(
            super::credential_output("b.e.r"),
            "username=_jwt\npassword=b.e.r\n"
        );
    }
}
