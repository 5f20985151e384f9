//! Building the Redis client for a URL: plaintext for `redis://`, TLS for `rediss://` (feature
//! `tls`), with the server verified against the system's roots or the CA of a [`RedisTls`].

use redis::{ConnectionAddr, IntoConnectionInfo};

use crate::error::ConnectError;

/// TLS settings for `rediss://` URLs: which CA the server's certificate must
/// chain to, and the client certificate to present when the server asks for one (mutual TLS).
///
/// TLS needs the crate's `tls` feature; without it a `rediss://` URL, and any `RedisTls`, is
/// refused at connect time. Without a `RedisTls`, a `rediss://` URL verifies the server against the system's roots
/// (`rustls-native-certs`). The server's certificate is always verified, host name included:
/// there is no way to turn that off, and a URL asking for it (`rediss://…/#insecure`) is
/// refused with [`ConnectError::InsecureTls`].
///
/// ```
/// use jwt_exchange_redis::{RedisStoreConfig, RedisTls};
///
/// let ca = b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n".to_vec();
/// let tls = RedisTls::new().with_ca_pem(ca);
/// let config = RedisStoreConfig::default().with_tls(tls);
/// assert!(format!("{config:?}").contains("ca: \"given\""));
/// ```
#[derive(Clone, Default)]
pub struct RedisTls {
    ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and private key, both PEM.
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl RedisTls {
    /// System roots, no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts only the CA certificate(s) in `pem` (one or more PEM blocks) instead of the
    /// system's roots: a private CA, or the self-signed certificate of a managed service.
    #[must_use]
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Presents `cert_chain_pem` (leaf first) with the private key `key_pem` (PKCS#8, PKCS#1
    /// or SEC1 PEM) when the server asks for a client certificate.
    #[must_use]
    pub fn with_client_identity(
        mut self,
        cert_chain_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_chain_pem.into(), key_pem.into()));
        self
    }

    #[cfg(feature = "tls")]
    fn certificates(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: self
                .identity
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
            root_cert: self.ca_pem.clone(),
        }
    }
}

/// Names what is set, never the bytes (the key is a secret).
impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |b: bool| if b { "given" } else { "system roots" };
        f.debug_struct("RedisTls")
            .field("ca", &set(self.ca_pem.is_some()))
            .field("client_identity", &self.identity.is_some())
            .finish()
    }
}

/// The client for `url`, with `tls` applied. TLS settings with a `redis://` URL are refused
/// rather than ignored: the operator asked for an encrypted connection.
pub(crate) fn client(url: &str, tls: Option<&RedisTls>) -> Result<redis::Client, ConnectError> {
    let info = url
        .into_connection_info()
        .map_err(|e| ConnectError::InvalidUrl(Box::new(e)))?;
    let secure = match info.addr() {
        ConnectionAddr::TcpTls { insecure: true, .. } => return Err(ConnectError::InsecureTls),
        ConnectionAddr::TcpTls { .. } => true,
        _ => false,
    };
    let built = match tls {
        Some(_) if !secure => return Err(ConnectError::TlsWithoutRediss),
        #[cfg(feature = "tls")]
        Some(tls) => redis::Client::build_with_tls(info, tls.certificates()),
        #[cfg(not(feature = "tls"))]
        Some(_) => return Err(ConnectError::TlsFeatureOff),
        None => redis::Client::open(info),
    };
    built.map_err(|e| ConnectError::InvalidUrl(Box::new(e)))
}

/// The certificates for a cluster client (none: system roots).
#[cfg(all(feature = "cluster", feature = "tls"))]
pub(crate) fn cluster_certificates(tls: Option<&RedisTls>) -> Option<redis::TlsCertificates> {
    tls.map(RedisTls::certificates)
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_need_a_rediss_url_and_insecure_is_refused() {
        let tls = RedisTls::new();
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
    }

    #[test]
    fn debug_never_shows_key_material() {
        let tls = RedisTls::new()
            .with_ca_pem(b"CA-BYTES".to_vec())
            .with_client_identity(b"CERT-BYTES".to_vec(), b"KEY-BYTES".to_vec());
        let shown = format!("{tls:?}");
        assert!(!shown.contains("BYTES"), "{shown}");
        assert!(shown.contains("client_identity: true"), "{shown}");
    }
}
