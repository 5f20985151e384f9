//! [`StoreTls`]: TLS settings shared by the networked session stores.

use std::fmt;

/// TLS settings of a networked session store (`jwt-exchange-redis` with a `rediss://` URL,
/// `jwt-exchange-postgres` with `sslmode=require`, each with its `tls` feature): the CA the
/// server's certificate must chain to, instead of the system's roots, and the client
/// certificate to present when the server asks for one (mutual TLS).
///
/// The store crates always verify the server's certificate, host name included; nothing here
/// turns that off. `Debug` names what is set, never the bytes (the key is a secret), and the
/// key's bytes are overwritten with zeros when the value is dropped.
///
/// ```
/// use jwt_exchange::store::StoreTls;
///
/// let ca = b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n".to_vec();
/// let tls = StoreTls::new().with_ca_pem(ca.clone());
/// assert_eq!(tls.ca_pem(), Some(&ca[..]));
/// assert!(tls.client_identity().is_none());
/// assert!(format!("{tls:?}").contains("ca: \"given\""));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoreTls {
    ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and private key, both PEM.
    identity: Option<(Vec<u8>, KeyPem)>,
}

/// A private key's PEM bytes, overwritten with zeros when dropped (best effort, as
/// [`BearerSecret`](crate::session::BearerSecret): copies a TLS library makes of the key are
/// out of reach).
#[derive(Clone, PartialEq, Eq)]
struct KeyPem(Vec<u8>);

impl Drop for KeyPem {
    fn drop(&mut self) {
        crate::session::wipe(&mut self.0);
    }
}

impl StoreTls {
    /// The system's roots, no client certificate.
    ///
    /// ```
    /// assert!(jwt_exchange::store::StoreTls::new().ca_pem().is_none());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts only the CA certificate(s) in `pem` (one or more PEM blocks) instead of the
    /// system's roots: a private CA, or a managed service's own.
    ///
    /// ```
    /// let tls = jwt_exchange::store::StoreTls::new().with_ca_pem(b"PEM".to_vec());
    /// assert_eq!(tls.ca_pem(), Some(&b"PEM"[..]));
    /// ```
    #[must_use]
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Presents `cert_chain_pem` (leaf first) with the private key `key_pem` (PKCS#8, PKCS#1
    /// or SEC1, PEM) when the server asks for a client certificate.
    ///
    /// ```
    /// let tls = jwt_exchange::store::StoreTls::new()
    ///     .with_client_identity(b"CERT".to_vec(), b"KEY".to_vec());
    /// assert_eq!(tls.client_identity(), Some((&b"CERT"[..], &b"KEY"[..])));
    /// assert!(!format!("{tls:?}").contains("KEY"));
    /// ```
    #[must_use]
    pub fn with_client_identity(
        mut self,
        cert_chain_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_chain_pem.into(), KeyPem(key_pem.into())));
        self
    }

    /// The CA certificate(s), PEM; `None`: the system's roots.
    ///
    /// ```
    /// assert!(jwt_exchange::store::StoreTls::default().ca_pem().is_none());
    /// ```
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref()
    }

    /// The client certificate chain and its private key, PEM.
    ///
    /// ```
    /// assert!(jwt_exchange::store::StoreTls::default().client_identity().is_none());
    /// ```
    pub fn client_identity(&self) -> Option<(&[u8], &[u8])> {
        self.identity
            .as_ref()
            .map(|(cert, key)| (cert.as_slice(), key.0.as_slice()))
    }
}

impl fmt::Debug for StoreTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ca = if self.ca_pem.is_some() {
            "given"
        } else {
            "system roots"
        };
        f.debug_struct("StoreTls")
            .field("ca", &ca)
            .field("client_identity", &self.identity.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_wipe_zeroes_in_place_and_clones_own_their_bytes() {
        let tls = StoreTls::new().with_client_identity(b"CERT".to_vec(), b"KEY".to_vec());
        let copy = tls.clone();
        let mut key = tls.identity.clone().map(|(_, k)| k).expect("identity set");
        let at = key.0.as_ptr();
        crate::session::wipe(&mut key.0);
        assert_eq!((key.0.as_ptr(), &key.0[..]), (at, &[0u8; 3][..]));
        drop(tls);
        assert_eq!(copy.client_identity(), Some((&b"CERT"[..], &b"KEY"[..])));
    }
}
