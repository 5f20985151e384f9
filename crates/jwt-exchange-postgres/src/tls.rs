//! Plaintext or TLS for a connection string: `sslmode=require` (or TLS settings) means TLS
//! with the server's certificate verified (feature `tls`); anything else means plaintext,
//! never "TLS if the server offers it" (which an attacker in the path can refuse).

use jwt_exchange::store::StoreTls;
use tokio_postgres::config::{SslMode, SslNegotiation};

use crate::error::ConnectError;

/// What every connection of a store is opened with.
#[cfg(feature = "tls")]
pub(crate) type Connector = tokio_postgres_rustls::MakeRustlsConnect;
/// What every connection of a store is opened with.
#[cfg(not(feature = "tls"))]
pub(crate) type Connector = tokio_postgres::NoTls;

/// Sets `pg`'s `sslmode` to what this store does (`require` or `disable`) and returns the
/// connector (see [`decide`]).
pub(crate) fn connector(
    pg: &mut tokio_postgres::Config,
    tls: Option<&StoreTls>,
) -> Result<Connector, ConnectError> {
    let want_tls = decide(pg, tls.is_some())?;
    pg.ssl_mode(if want_tls {
        SslMode::Require
    } else {
        SslMode::Disable
    });
    build(want_tls, tls)
}

/// Whether connections for `pg` use TLS: yes when it says `sslmode=require` or
/// `sslnegotiation=direct` (a TLS handshake straight away), or TLS settings are given; refused
/// when either of the latter comes with `sslmode=disable`; no otherwise (the default `prefer`
/// included).
pub(crate) fn decide(
    pg: &tokio_postgres::Config,
    tls_settings: bool,
) -> Result<bool, ConnectError> {
    let direct = pg.get_ssl_negotiation() == SslNegotiation::Direct;
    match pg.get_ssl_mode() {
        SslMode::Disable if tls_settings || direct => Err(ConnectError::TlsWithSslmodeDisable),
        SslMode::Require => Ok(true),
        _ => Ok(tls_settings || direct),
    }
}

/// Checks a connection string the way [`PostgresStore::connect`] will, without connecting: it
/// parses, and TLS settings (`tls_settings`) do not meet `sslmode=disable`. Whether the
/// connections will use TLS is `Ok(true)`. For configuration checks (`jwt-exchange serve
/// --check`).
///
/// ```
/// use jwt_exchange_postgres::check_connection_string;
///
/// assert_eq!(check_connection_string("postgres://u@h/db", false).ok(), Some(false));
/// assert_eq!(check_connection_string("postgres://u@h/db?sslmode=require", false).ok(), Some(true));
/// assert!(check_connection_string("host=h sslmode = disable", true).is_err());
/// ```
///
/// [`PostgresStore::connect`]: crate::PostgresStore::connect
pub fn check_connection_string(url: &str, tls_settings: bool) -> Result<bool, ConnectError> {
    let pg: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| ConnectError::InvalidUrl(Box::new(e)))?;
    decide(&pg, tls_settings)
}

#[cfg(not(feature = "tls"))]
fn build(want_tls: bool, _: Option<&StoreTls>) -> Result<Connector, ConnectError> {
    if want_tls {
        Err(ConnectError::TlsFeatureOff)
    } else {
        Ok(tokio_postgres::NoTls)
    }
}

/// A rustls client on AWS-LC: the given CA or the system's roots, the client identity if any.
/// Without TLS the connector is never used (`sslmode=disable`), so it gets no roots.
#[cfg(feature = "tls")]
fn build(want_tls: bool, tls: Option<&StoreTls>) -> Result<Connector, ConnectError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let bad =
        |what: &str, e: &dyn std::fmt::Display| ConnectError::Tls(format!("{what}: {e}").into());
    let mut roots = rustls::RootCertStore::empty();
    match tls.and_then(StoreTls::ca_pem) {
        _ if !want_tls => {}
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| bad("the CA certificate PEM", &e))?;
                roots.add(cert).map_err(|e| bad("the CA certificate", &e))?;
            }
        }
        None => {
            // Certificates the system store holds but rustls cannot use are skipped.
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    if want_tls && roots.is_empty() {
        return Err(ConnectError::Tls(
            "no CA certificate to verify the server with".into(),
        ));
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS versions", &e))?
        .with_root_certificates(roots);
    let config = match tls.and_then(StoreTls::client_identity) {
        Some((chain, key)) if want_tls => {
            let chain = CertificateDer::pem_slice_iter(chain)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("the client certificate PEM", &e))?;
            let key =
                PrivateKeyDer::from_pem_slice(key).map_err(|e| bad("the client key PEM", &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad("the client certificate", &e))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str, tls: Option<&StoreTls>) -> Result<SslMode, String> {
        let mut pg: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
        connector(&mut pg, tls).map_err(|e| {
            // The message and its source (the detail of `ConnectError::Tls`).
            let source = std::error::Error::source(&e).map(ToString::to_string);
            format!("{e}: {}", source.unwrap_or_default())
        })?;
        Ok(pg.get_ssl_mode())
    }

    #[test]
    fn plaintext_unless_required_and_never_prefer() {
        // `prefer` (the default) would take plaintext from anyone who refuses TLS: plaintext.
        for url in [
            "postgres://u@h/db",
            "postgres://u@h/db?sslmode=prefer",
            "postgres://u@h/db?sslmode=disable",
            "host=h dbname=d",
        ] {
            assert_eq!(mode(url, None), Ok(SslMode::Disable), "{url}");
        }
        for url in [
            "postgres://u@h/db?sslmode=disable",
            "host=h sslmode = disable",
            "host=h sslmode='disable'",
        ] {
            let e = mode(url, Some(&StoreTls::new())).expect_err(url);
            assert!(e.contains("sslmode=disable"), "{url}: {e}");
            assert!(check_connection_string(url, true).is_err(), "{url}");
        }
        // A direct TLS handshake never becomes plaintext.
        let direct_off = "postgres://u@h/db?sslnegotiation=direct&sslmode=disable";
        assert!(check_connection_string(direct_off, false).is_err());
        assert_eq!(check_connection_string("host=h", false).ok(), Some(false));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_when_required_directed_or_configured() {
        for url in [
            "postgres://u@h/db?sslmode=require",
            // `direct` with the default mode: TLS (tokio-postgres alone refuses `prefer` with
            // `direct`; it must not become plaintext).
            "postgres://u@h/db?sslnegotiation=direct",
            "host=h sslmode = require",
        ] {
            assert_eq!(mode(url, None), Ok(SslMode::Require), "{url}");
        }
        let ca = StoreTls::new().with_ca_pem(b"not a certificate".to_vec());
        let e = mode("postgres://u@h/db", Some(&ca)).expect_err("no certificate in the PEM");
        assert!(e.contains("CA certificate"), "{e}");
    }
}
