//! Access to the real servers (Redis, PostgreSQL) that backend tests run against.
//!
//! [`require_service`] decides, once per test, whether a server is there: it reads the URL from
//! an environment variable (or a default), opens a TCP connection to its host and port, and
//! either hands the URL back or reports why the test cannot run. Under `CI=true` an unreachable
//! server fails the test (CI must exercise every backend); elsewhere the test prints
//! `skipped: <reason>` and returns, so `cargo test` works on a machine without the servers.

use std::time::Duration;

use tokio::net::TcpStream;

/// How long [`require_service`] waits for a TCP connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The URL of the server `name`, taken from the environment variable `url_env` or `default`,
/// if a TCP connection to its host and port succeeds.
///
/// Otherwise prints `skipped: <reason>` and returns `None`, or, when the environment variable
/// `CI` is `true`, panics with the reason. Credentials in the URL are never printed.
///
/// ```no_run
/// use jwt_exchange_testkit::services::require_service;
///
/// # async fn a_test() {
/// let Some(url) = require_service("redis", "JWTX_REDIS_URL", "redis://127.0.0.1:6379").await
/// else {
///     return; // skipped (never under CI=true)
/// };
/// # let _ = url;
/// # }
/// ```
///
/// # Panics
///
/// When the server is unreachable (or the URL has no host) and `CI=true`.
pub async fn require_service(name: &str, url_env: &str, default: &str) -> Option<String> {
    let url = std::env::var(url_env)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| default.to_owned());
    let reason = match host_port(&url) {
        None => format!(
            "{name}: cannot find host:port in {url_env}={}",
            redact(&url)
        ),
        Some(addr) => match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(&addr)).await {
            Ok(Ok(_)) => return Some(url),
            Ok(Err(e)) => format!("{name} unreachable at {addr} ({url_env}): {e}"),
            Err(_) => format!("{name} unreachable at {addr} ({url_env}): connect timed out"),
        },
    };
    assert!(
        !is_ci(),
        "{reason} (CI=true requires every backend's server)"
    );
    println!("skipped: {reason}");
    None
}

/// Whether the environment variable `CI` is `true` (or `1`).
///
/// ```
/// // Just a probe of the environment.
/// let _ = jwt_exchange_testkit::services::is_ci();
/// ```
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// `host:port` of a `scheme://[user[:password]@]host[:port][/...]` URL, with the scheme's
/// default port (Redis 6379, PostgreSQL 5432) when none is given.
fn host_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.is_empty() {
        return None;
    }
    let has_port = match host_port.rfind(']') {
        Some(end) => host_port[end..].contains(':'),
        None => host_port.contains(':'),
    };
    if has_port {
        return Some(host_port.to_owned());
    }
    let port = match scheme {
        "redis" | "rediss" => 6379,
        "postgres" | "postgresql" => 5432,
        _ => return None,
    };
    Some(format!("{host_port}:{port}"))
}

/// The URL without its user-info (which may hold a password).
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest
                .find(['/', '?', '#'])
                .map_or((rest, ""), |i| rest.split_at(i));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{path}"),
                None => url.to_owned(),
            }
        }
        None => "<unparsable>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_of_urls() {
        assert_eq!(
            host_port("redis://127.0.0.1:6379").as_deref(),
            Some("127.0.0.1:6379")
        );
        assert_eq!(
            host_port("redis://:pw@cache.local/0").as_deref(),
            Some("cache.local:6379")
        );
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1:5432/test").as_deref(),
            Some("127.0.0.1:5432")
        );
        assert_eq!(
            host_port("postgresql://u:p@[::1]/db").as_deref(),
            Some("[::1]:5432")
        );
        assert_eq!(
            host_port("postgres://[::1]:6000").as_deref(),
            Some("[::1]:6000")
        );
        assert_eq!(host_port("mysql://db"), None);
        assert_eq!(host_port("no scheme"), None);
        assert_eq!(host_port("redis:///x"), None);
    }

    #[test]
    fn redaction_hides_credentials() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/test"),
            "postgres://***@db:5432/test"
        );
        assert_eq!(redact("redis://127.0.0.1"), "redis://127.0.0.1");
        assert_eq!(redact("secret"), "<unparsable>");
    }

    #[tokio::test]
    async fn unreachable_service_is_skipped_outside_ci() {
        if is_ci() {
            return;
        }
        // Port 1 on loopback: nothing listens there.
        let got = require_service("nothing", "JWTX_TESTKIT_UNSET_URL", "redis://127.0.0.1:1").await;
        assert_eq!(got, None);
    }
}
