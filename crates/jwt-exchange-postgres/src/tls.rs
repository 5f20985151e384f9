//! Plaintext or TLS for a connection string: `sslmode=require` (or TLS settings) means TLS
//! with the server's certificate verified (feature `tls`); anything else means plaintext,
//! never "TLS if the server offers it" (which an attacker in the path can refuse).

use jwt_exchange::store::StoreTls;
use tokio_postgres::config::SslMode;

use crate::error::ConnectError;

/// What every connection of a store is opened with.
#[cfg(feature = "tls")]
pub(crate) type Connector = tokio_postgres_rustls::MakeRustlsConnect;
/// What every connection of a store is opened with.
#[cfg(not(feature = "tls"))]
pub(crate) type Connector = tokio_postgres::NoTls;

/// Sets `pg`'s `sslmode` to what this store does (`require` or `disable`) and returns the
/// connector: TLS when the URL says `sslmode=require` or `tls` is given, refused when `tls`
/// is given with `sslmode=disable`; plaintext otherwise (the default `prefer` included).
pub(crate) fn connector(
    pg: &mut tokio_postgres::Config,
    tls: Option<&StoreTls>,
) -> Result<Connector, ConnectError> {
    let want_tls = match (pg.get_ssl_mode(), tls) {
        (SslMode::Disable, Some(_)) => return Err(ConnectError::TlsWithSslmodeDisable),
        (SslMode::Require, _) | (_, Some(_)) => true,
        _ => false,
    };
    pg.ssl_mode(if want_tls {
        SslMode::Require
    } else {
        SslMode::Disable
    });
    build(want_tls, tls)
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
        assert_eq!(mode("postgres://u@h/db", None), Ok(SslMode::Disable));
        assert_eq!(
            mode("postgres://u@h/db?sslmode=prefer", None),
            Ok(SslMode::Disable)
        );
        assert_eq!(
            mode("postgres://u@h/db?sslmode=disable", None),
            Ok(SslMode::Disable)
        );
        let e = mode("postgres://u@h/db?sslmode=disable", Some(&StoreTls::new()))
            .expect_err("TLS settings with sslmode=disable");
        assert!(e.contains("sslmode=disable"), "{e}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_when_required_or_configured() {
        assert_eq!(
            mode("postgres://u@h/db?sslmode=require", None),
            Ok(SslMode::Require)
        );
        let ca = StoreTls::new().with_ca_pem(b"not a certificate".to_vec());
        let e = mode("postgres://u@h/db", Some(&ca)).expect_err("no certificate in the PEM");
        assert!(e.contains("CA certificate"), "{e}");
    }
}
