//! Errors: construction errors of this crate, and the mapping of PostgreSQL and pool errors
//! into the core [`StoreError`].

use std::time::Duration;

use jwt_exchange::store::{BoxError, StoreError};

/// Why [`PostgresStore::connect`](crate::PostgresStore::connect) failed.
///
/// ```
/// use jwt_exchange::store::StoreError;
/// use jwt_exchange_postgres::ConnectError;
///
/// let e = ConnectError::InvalidSchema { schema: "Robert'); DROP".into() };
/// assert!(e.to_string().contains("schema"));
/// assert!(StoreError::from(e).is_unavailable());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a PostgreSQL connection string (the URL itself is not repeated: it may
    /// hold a password).
    #[error("invalid PostgreSQL URL")]
    InvalidUrl(#[source] BoxError),
    /// The schema name is not 1 to 63 characters of `a`–`z`, `0`–`9` and `_`, starting with a
    /// letter or `_`.
    #[error("invalid schema name {schema:?}: use [a-z_][a-z0-9_]*, at most 63 characters")]
    InvalidSchema {
        /// The rejected name.
        schema: String,
    },
    /// The pool could not be built.
    #[error("cannot build the connection pool")]
    Pool(#[source] BoxError),
    /// TLS settings were given with `sslmode=disable`.
    #[error("TLS settings were given but the connection string says sslmode=disable")]
    TlsWithSslmodeDisable,
    /// TLS was asked for (`sslmode=require`, or TLS settings) but the crate was built without
    /// its `tls` feature.
    #[error("TLS to PostgreSQL needs the `tls` feature of jwt-exchange-postgres")]
    TlsFeatureOff,
    /// The listener's connection string asks for TLS but the store's connections do not use
    /// it (give both the same string).
    #[error("the listener's connection string asks for TLS, the store's does not")]
    ListenerTlsMismatch,
    /// The TLS settings are unusable (a PEM without a certificate, a key that does not parse).
    #[error("invalid TLS settings")]
    Tls(#[source] BoxError),
    /// The server could not be reached, or the migration failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Configuration mistakes surface as `Unavailable` when the error has to be a [`StoreError`]:
/// the store cannot serve, and the cause stays in the source chain.
impl From<ConnectError> for StoreError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Store(e) => e,
            e => StoreError::unavailable(e),
        }
    }
}

/// A query or pool error: the server is unreachable, slow, or refused the statement. All of
/// them are `Unavailable`; undecodable rows are reported as `Corrupt` where they are read.
pub(crate) fn unavailable(e: impl Into<BoxError>) -> StoreError {
    StoreError::unavailable(e)
}

/// The error of an operation that ran out of time.
pub(crate) fn timed_out(op: &str, after: Duration) -> StoreError {
    StoreError::unavailable(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("postgres {op} timed out after {after:?}"),
    ))
}
