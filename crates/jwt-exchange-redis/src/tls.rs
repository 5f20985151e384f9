//! Building the Redis client for a URL: plaintext for `redis://`, TLS for `rediss://` (feature
//! `tls`), with the server verified against the system's roots or the CA of a
//! [`StoreTls`]. There is no way to skip verification: a `rediss://…/#insecure` URL is
//! refused with [`ConnectError::InsecureTls`], and TLS settings with a `redis://` URL with
//! [`ConnectError::TlsWithoutRediss`].

use jwt_exchange::store::StoreTls;
use redis::{ConnectionAddr, IntoConnectionInfo};

use crate::error::ConnectError;

/// The `redis` crate's form of `tls`.
#[cfg(feature = "tls")]
fn certificates(tls: &StoreTls) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: tls
            .client_identity()
            .map(|(cert, key)| redis::ClientTlsConfig {
                client_cert: cert.to_vec(),
                client_key: key.to_vec(),
            }),
        root_cert: tls.ca_pem().map(<[u8]>::to_vec),
    }
}

/// The client for `url`, with `tls` applied. TLS settings with a `redis://` URL are refused
/// rather than ignored: the operator asked for an encrypted connection.
pub(crate) fn client(url: &str, tls: Option<&StoreTls>) -> Result<redis::Client, ConnectError> {
    let (info, _) = decide(url, tls.is_some())?;
    let built = match tls {
        #[cfg(feature = "tls")]
        Some(tls) => redis::Client::build_with_tls(info, certificates(tls)),
        #[cfg(not(feature = "tls"))]
        Some(_) => return Err(ConnectError::TlsFeatureOff),
        None => redis::Client::open(info),
    };
    built.map_err(|e| ConnectError::InvalidUrl(Box::new(e)))
}

/// Parses `url` and decides: TLS for `rediss://` (and the other TLS schemes the `redis` crate
/// knows), refused with `#insecure`, refused when TLS settings come with a plaintext scheme.
fn decide(url: &str, tls_settings: bool) -> Result<(redis::ConnectionInfo, bool), ConnectError> {
    let info = url
        .into_connection_info()
        .map_err(|e| ConnectError::InvalidUrl(Box::new(e)))?;
    let secure = match info.addr() {
        ConnectionAddr::TcpTls { insecure: true, .. } => return Err(ConnectError::InsecureTls),
        ConnectionAddr::TcpTls { .. } => true,
        _ => false,
    };
    if tls_settings && !secure {
        return Err(ConnectError::TlsWithoutRediss);
    }
    Ok((info, secure))
}

/// Checks `url` the way [`RedisStore::connect`] will, without connecting: it parses, it does
/// not turn certificate verification off (`#insecure`), and with TLS settings
/// (`tls_settings`) it asks for TLS. Whether the connection will use TLS is `Ok(true)`. For
/// configuration checks (`jwt-exchange serve --check`).
///
/// ```
/// use jwt_exchange_redis::check_url;
///
/// assert_eq!(check_url("redis://h:6379", false).ok(), Some(false));
/// assert!(check_url("redis://h:6379", true).is_err());
/// # #[cfg(feature = "tls")]
/// assert_eq!(check_url("rediss://h:6380", true).ok(), Some(true));
/// ```
///
/// [`RedisStore::connect`]: crate::RedisStore::connect
pub fn check_url(url: &str, tls_settings: bool) -> Result<bool, ConnectError> {
    decide(url, tls_settings).map(|(_, secure)| secure)
}

/// The certificates for a cluster client (none: system roots).
#[cfg(all(feature = "cluster", feature = "tls"))]
pub(crate) fn cluster_certificates(tls: Option<&StoreTls>) -> Option<redis::TlsCertificates> {
    tls.map(certificates)
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_need_a_rediss_url_and_insecure_is_refused() {
        let tls = StoreTls::new();
        assert!(matches!(
            client("redis://127.0.0.1:6379", Some(&tls)),
            Err(ConnectError::TlsWithoutRediss)
        ));
        assert!(matches!(
            client("rediss://127.0.0.1:6379/#insecure", None),
            Err(ConnectError::InsecureTls)
        ));
        assert!(matches!(
            client("rediss://127.0.0.1:6379/#insecure", Some(&tls)),
            Err(ConnectError::InsecureTls)
        ));
        assert!(client("rediss://127.0.0.1:6379", None).is_ok());
        assert!(client("rediss://127.0.0.1:6379", Some(&tls)).is_ok());
        assert!(client("redis://127.0.0.1:6379", None).is_ok());
        // The schemes the `redis` crate reads as TLS, in any case.
        for url in ["REDISS://h:6380", "rediss://h:6380", "valkeys://h:6380"] {
            assert_eq!(check_url(url, true).ok(), Some(true), "{url}");
        }
        assert_eq!(check_url("valkey://h:6379", false).ok(), Some(false));
        assert!(check_url("valkey://h:6379", true).is_err());
    }

    #[test]
    fn debug_never_shows_key_material() {
        let tls = StoreTls::new()
            .with_ca_pem(b"CA-BYTES".to_vec())
            .with_client_identity(b"CERT-BYTES".to_vec(), b"KEY-BYTES".to_vec());
        let shown = format!("{tls:?}");
        assert!(!shown.contains("BYTES"), "{shown}");
        assert!(shown.contains("client_identity: true"), "{shown}");
    }
}
