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
//!
//! The helper reads git's request and gives no credential (git then asks its other helpers, or
//! the user) when the bearer would leave in clear text — `protocol=http` to a host other than
//! loopback — or, with `--host`, to a host that is not the one named. Scope the helper to the
//! server's URL in git's configuration, as above, and give `--host` where a global helper is
//! unavoidable.

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
    /// Answer only for this host (`host` or `host:port`, as git sends it; case-insensitive).
    #[arg(long)]
    host: Option<String>,
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
    if let Err(why) = may_answer(&request, a.host.as_deref()) {
        // No credential: git falls back to its other helpers or a prompt.
        eprintln!("jwt-exchange git-credential: no credential given: {why}");
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

/// Whether git's `request` (`key=value` lines) may get the bearer: not over plain `http` except
/// to loopback, and only to `only_host` when it is given. `Err` says why not.
fn may_answer(request: &str, only_host: Option<&str>) -> Result<(), String> {
    let field = |key: &str| {
        request
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    };
    let host = field("host").unwrap_or_default();
    if let Some(only) = only_host {
        if !host.eq_ignore_ascii_case(only) {
            return Err(format!(
                "git asked for host {host:?}, not {only:?} (--host)"
            ));
        }
    }
    match field("protocol") {
        Some("https") => Ok(()),
        Some("http") if is_loopback(host) => Ok(()),
        Some("http") => Err(format!(
            "plain http to {host:?} would send the bearer in clear text"
        )),
        other => Err(format!("protocol {other:?} is not https")),
    }
}

/// Whether git's `host` (maybe with a port) names this machine.
fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port))
            if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !port.is_empty() =>
        {
            name
        }
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The helper's answer in git's credential format.
fn credential_output(bearer: &str) -> String {
    format!("username=_jwt\npassword={bearer}\n")
}

#[cfg(test)]
mod tests {
    use super::may_answer;

    #[test]
    fn answers_only_over_https_or_to_loopback_and_to_the_named_host() {
        let req = |protocol: &str, host: &str| format!("protocol={protocol}\nhost={host}\n");
        for (protocol, host) in [
            ("https", "lakefs.example.com"),
            ("https", "lakefs.example.com:8443"),
            ("http", "localhost:8000"),
            ("http", "127.0.0.1:8000"),
            ("http", "[::1]:8000"),
            ("http", "LOCALHOST"),
        ] {
            assert_eq!(
                may_answer(&req(protocol, host), None),
                Ok(()),
                "{protocol}://{host}"
            );
        }
        for (protocol, host) in [
            ("http", "lakefs.example.com"),
            ("http", "localhost.evil.example"),
            ("http", "127.0.0.1.nip.io"),
            ("ssh", "lakefs.example.com"),
            ("", "lakefs.example.com"),
        ] {
            assert!(
                may_answer(&req(protocol, host), None).is_err(),
                "{protocol}://{host}"
            );
        }
        assert!(
            may_answer("host=lakefs.example.com\n", None).is_err(),
            "no protocol"
        );
        let only = Some("lakefs.example.com");
        assert_eq!(
            may_answer(&req("https", "LakeFS.example.com"), only),
            Ok(())
        );
        assert!(may_answer(&req("https", "evil.example"), only).is_err());
        assert!(may_answer(&req("https", "lakefs.example.com:8443"), only).is_err());
        assert!(may_answer("protocol=https\n", only).is_err(), "no host");
    }

    #[test]
    fn output_format() {
        assert_eq!(
            super::credential_output("b.e.r"),
            "username=_jwt\npassword=b.e.r\n"
        );
    }
}
