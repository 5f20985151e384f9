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

/// Waits until something accepts connections on `127.0.0.1:port` (a server a test started).
///
/// # Panics
///
/// After 10 s, naming `what`.
///
/// ```no_run
/// # async fn f() {
/// jwt_exchange_testkit::services::wait_listening(6380, "redis-server").await;
/// # }
/// ```
pub async fn wait_listening(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not listen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
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

/// The certificate the local PostgreSQL serves TLS with in the test set-up: the distribution's
/// self-signed "snakeoil" certificate, for `localhost`. TLS tests trust it as their CA.
pub const POSTGRES_TLS_CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// Lists whether each server connection whose `application_name` is `$1` uses TLS (one
/// `bool` column): how the PostgreSQL TLS tests see what the server saw.
pub const POSTGRES_SSL_BY_APPLICATION: &str = "SELECT s.ssl FROM pg_stat_ssl s \
     JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1";

/// For a PostgreSQL TLS test: `url` with `localhost` (the certificate's name) for
/// `127.0.0.1`, when the server has TLS on (`ssl`, the value of `SHOW ssl`) and
/// [`POSTGRES_TLS_CERT`] exists. Otherwise prints `skipped: …` and returns `None`.
///
/// ```
/// use jwt_exchange_testkit::services::postgres_tls_url;
/// # if std::path::Path::new(jwt_exchange_testkit::services::POSTGRES_TLS_CERT).exists() {
/// assert_eq!(
///     postgres_tls_url("postgres://u@127.0.0.1:5432/db", "on").as_deref(),
///     Some("postgres://u@localhost:5432/db")
/// );
/// # }
/// ```
///
/// # Panics
///
/// When TLS or the certificate is missing and `CI=true`.
pub fn postgres_tls_url(url: &str, ssl: &str) -> Option<String> {
    if ssl != "on" || !std::path::Path::new(POSTGRES_TLS_CERT).exists() {
        let why = format!("postgres has no TLS with {POSTGRES_TLS_CERT} (ssl = {ssl})");
        assert!(!is_ci(), "{why} (CI=true requires it)");
        println!("skipped: {why}");
        return None;
    }
    let local = url
        .split_once("@127.0.0.1")
        .map(|(a, b)| format!("{a}@localhost{b}"));
    if local.is_none() {
        println!("skipped: JWTX_POSTGRES_URL is not on 127.0.0.1");
    }
    local
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
