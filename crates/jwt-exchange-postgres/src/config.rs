//! [`PostgresStoreConfig`]: schema, pool size, timeouts, clock.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jwt_exchange::store::StoreTls;
use jwt_exchange::{Clock, SystemClock};

use crate::error::ConnectError;

/// Options of a [`PostgresStore`](crate::PostgresStore). Every field has a default; change
/// them with the `with_*` methods.
///
/// ```
/// use std::time::Duration;
/// use jwt_exchange_postgres::PostgresStoreConfig;
///
/// let config = PostgresStoreConfig::default()
///     .with_schema("lakefs_sessions")
///     .with_max_connections(32)
///     .with_query_timeout(Duration::from_secs(1));
/// assert_eq!(config.schema, "lakefs_sessions");
/// assert!(config.migrate_on_connect);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct PostgresStoreConfig {
    /// The schema holding the store's tables, created if missing. Lower-case letters, digits
    /// and `_`, at most 63 characters. Defaults to `jwt_exchange`.
    pub schema: String,
    /// Largest number of pooled connections. Defaults to 16.
    pub max_connections: usize,
    /// Upper bound on one store operation, including waiting for a pooled connection; past it
    /// the operation fails with `StoreError::Unavailable` and its connection is discarded.
    /// Defaults to 5 s.
    pub query_timeout: Duration,
    /// Upper bound on opening a connection. Defaults to 5 s.
    pub connect_timeout: Duration,
    /// Whether [`PostgresStore::connect`](crate::PostgresStore::connect) runs the embedded
    /// migrations. Turn it off when migrations run separately (`jwt-exchange migrate`) and
    /// the service's database role may not change the schema. Defaults to `true`.
    pub migrate_on_connect: bool,
    /// The clock every expiry comparison uses (the database's clock is never consulted), so
    /// the store behaves exactly like the other backends and like the rest of the service.
    /// Defaults to [`SystemClock`].
    pub clock: Arc<dyn Clock>,
    /// TLS settings (feature `tls`): connections use TLS when this is set or the URL says
    /// `sslmode=require`, with the server verified against this CA (or the system's roots).
    /// Refused with `sslmode=disable`. Defaults to `None`.
    pub tls: Option<StoreTls>,
}

impl Default for PostgresStoreConfig {
    fn default() -> Self {
        PostgresStoreConfig {
            schema: "jwt_exchange".to_owned(),
            max_connections: 16,
            query_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            migrate_on_connect: true,
            clock: Arc::new(SystemClock),
            tls: None,
        }
    }
}

impl fmt::Debug for PostgresStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStoreConfig")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("query_timeout", &self.query_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("migrate_on_connect", &self.migrate_on_connect)
            .field("tls", &self.tls)
            .field("clock", &self.clock)
            .finish()
    }
}

impl PostgresStoreConfig {
    /// Sets [`schema`](Self::schema).
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets [`max_connections`](Self::max_connections) (at least 1).
    #[must_use]
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets [`query_timeout`](Self::query_timeout).
    #[must_use]
    pub fn with_query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`tls`](Self::tls).
    #[must_use]
    pub fn with_tls(mut self, tls: StoreTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets [`migrate_on_connect`](Self::migrate_on_connect).
    #[must_use]
    pub fn with_migrate_on_connect(mut self, migrate: bool) -> Self {
        self.migrate_on_connect = migrate;
        self
    }

    /// Sets [`clock`](Self::clock).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the schema name, which is spliced into SQL (quoted), as
    /// [`PostgresStore::connect`](crate::PostgresStore::connect) does before connecting (for
    /// configuration checks that connect nothing).
    ///
    /// ```
    /// use jwt_exchange_postgres::PostgresStoreConfig;
    /// assert!(PostgresStoreConfig::default().with_schema("sessions_a").validate().is_ok());
    /// assert!(PostgresStoreConfig::default().with_schema("Sessions").validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), ConnectError> {
        let s = &self.schema;
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .enumerate()
                .all(|(i, b)| b == b'_' || b.is_ascii_lowercase() || (i > 0 && b.is_ascii_digit()));
        if ok {
            Ok(())
        } else {
            Err(ConnectError::InvalidSchema { schema: s.clone() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_validation() {
        for ok in ["jwt_exchange", "a", "_x1", &"s".repeat(63)] {
            assert!(
                PostgresStoreConfig::default()
                    .with_schema(ok)
                    .validate()
                    .is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "",
            "1a",
            "A",
            "a-b",
            "a b",
            "a\"b",
            "x;drop",
            &"s".repeat(64),
        ] {
            assert!(
                PostgresStoreConfig::default()
                    .with_schema(bad)
                    .validate()
                    .is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            PostgresStoreConfig::default()
                .with_max_connections(0)
                .max_connections,
            1
        );
    }
}
