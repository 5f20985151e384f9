//! [`RedisStoreConfig`]: key prefix, timeouts and clock.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jwt_exchange::{Clock, SystemClock};

use crate::error::ConnectError;
use jwt_exchange::store::StoreTls;

/// Options of a [`RedisStore`](crate::RedisStore). Every field has a default; change them
/// with the `with_*` methods.
///
/// ```
/// use std::time::Duration;
/// use jwt_exchange_redis::RedisStoreConfig;
///
/// let config = RedisStoreConfig::default()
///     .with_key_prefix("lakefs-sessions")
///     .with_command_timeout(Duration::from_millis(500));
/// assert_eq!(config.key_prefix, "lakefs-sessions");
/// assert_eq!(config.connect_timeout, Duration::from_secs(5));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisStoreConfig {
    /// Prefix of every key, so several deployments (or tests) can share one Redis. 1 to 64
    /// bytes without braces or whitespace. Defaults to `jwtx`.
    pub key_prefix: String,
    /// Upper bound on one store operation, including waiting for a reconnect; past it the
    /// operation fails with `StoreError::Unavailable`. Defaults to 2 s.
    pub command_timeout: Duration,
    /// Upper bound on establishing a connection. Defaults to 5 s.
    pub connect_timeout: Duration,
    /// The clock sessions are checked against. Redis expires keys on its own clock at the same
    /// instant; the store additionally never returns a session that is expired by this clock,
    /// so all backends agree even when clocks drift. Defaults to [`SystemClock`].
    pub clock: Arc<dyn Clock>,
    /// TLS settings for a `rediss://` URL (feature `tls`); `None`: the system's roots, no
    /// client certificate. Refused with a `redis://` URL.
    pub tls: Option<StoreTls>,
    /// Connect even to a server that may evict keys (a `maxmemory` limit with a
    /// `maxmemory-policy` other than `noeviction`). Off by default, because eviction fails
    /// open: an evicted subject index lets `delete_subject` miss sessions, and an evicted `jti`
    /// record lets a token be exchanged again. See [`RedisStore::connect`](crate::RedisStore::connect).
    pub insecure_allow_eviction: bool,
}

impl Default for RedisStoreConfig {
    fn default() -> Self {
        RedisStoreConfig {
            key_prefix: "jwtx".to_owned(),
            command_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            clock: Arc::new(SystemClock),
            tls: None,
            insecure_allow_eviction: false,
        }
    }
}

impl fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("clock", &self.clock)
            .field("tls", &self.tls)
            .field("insecure_allow_eviction", &self.insecure_allow_eviction)
            .finish()
    }
}

impl RedisStoreConfig {
    /// Sets [`key_prefix`](Self::key_prefix).
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Sets [`command_timeout`](Self::command_timeout).
    #[must_use]
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`clock`](Self::clock).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets [`tls`](Self::tls).
    #[must_use]
    pub fn with_tls(mut self, tls: StoreTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets [`insecure_allow_eviction`](Self::insecure_allow_eviction).
    ///
    /// ```
    /// use jwt_exchange_redis::RedisStoreConfig;
    /// assert!(!RedisStoreConfig::default().insecure_allow_eviction);
    /// let c = RedisStoreConfig::default().with_insecure_allow_eviction(true);
    /// assert!(c.insecure_allow_eviction);
    /// ```
    #[must_use]
    pub fn with_insecure_allow_eviction(mut self, allow: bool) -> Self {
        self.insecure_allow_eviction = allow;
        self
    }

    /// Checks the key prefix, as [`RedisStore::connect`](crate::RedisStore::connect) does
    /// before connecting (for configuration checks that connect nothing).
    ///
    /// ```
    /// use jwt_exchange_redis::RedisStoreConfig;
    /// assert!(RedisStoreConfig::default().with_key_prefix("team-a").validate().is_ok());
    /// assert!(RedisStoreConfig::default().with_key_prefix("a b").validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), ConnectError> {
        let p = &self.key_prefix;
        let ok = !p.is_empty()
            && p.len() <= 64
            && !p.chars().any(|c| c == '{' || c == '}' || c.is_whitespace());
        if ok {
            Ok(())
        } else {
            Err(ConnectError::InvalidKeyPrefix { prefix: p.clone() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_validation() {
        for ok in ["jwtx", "a", "team-a:sessions", &"x".repeat(64)] {
            assert!(
                RedisStoreConfig::default()
                    .with_key_prefix(ok)
                    .validate()
                    .is_ok(),
                "{ok}"
            );
        }
        for bad in ["", "{x}", "a}b", "a b", "tab\t", &"x".repeat(65)] {
            assert!(
                RedisStoreConfig::default()
                    .with_key_prefix(bad)
                    .validate()
                    .is_err(),
                "{bad:?}"
            );
        }
    }
}
