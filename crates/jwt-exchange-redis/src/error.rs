//! Errors: construction errors of this crate, and the mapping of Redis errors into the core
//! [`StoreError`].

use jwt_exchange::store::{BoxError, StoreError};
use redis::{ErrorKind, RedisError};

/// Why [`RedisStore::connect`](crate::RedisStore::connect) failed.
///
/// ```
/// use jwt_exchange::store::StoreError;
/// use jwt_exchange_redis::ConnectError;
///
/// let e = ConnectError::InvalidKeyPrefix { prefix: "{x}".into() };
/// assert!(e.to_string().contains("key prefix"));
/// assert!(matches!(StoreError::from(e), StoreError::Unavailable(_)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a Redis URL (the URL itself is not repeated: it may hold a password).
    #[error("invalid Redis URL")]
    InvalidUrl(#[source] BoxError),
    /// The key prefix is empty, longer than 64 bytes, or contains `{`, `}` or whitespace.
    #[error("invalid key prefix {prefix:?}: 1 to 64 bytes, no braces or whitespace")]
    InvalidKeyPrefix {
        /// The rejected prefix.
        prefix: String,
    },
    /// TLS settings were given with a `redis://` URL; TLS needs `rediss://`.
    #[error("TLS settings need a rediss:// URL; the URL asks for a plaintext connection")]
    TlsWithoutRediss,
    /// The URL turns certificate verification off (`rediss://…/#insecure`), which this crate
    /// never does.
    #[error("rediss://…#insecure (no certificate verification) is refused")]
    InsecureTls,
    /// TLS settings were given but the crate was built without its `tls` feature.
    #[error("TLS to Redis needs the `tls` feature of jwt-exchange-redis")]
    TlsFeatureOff,
    /// The server may evict keys (`maxmemory` set, `maxmemory-policy` not `noeviction`), which
    /// would silently undo revocations by subject and replay protection. Set the policy to
    /// `noeviction`, or [`insecure_allow_eviction`](crate::RedisStoreConfig::insecure_allow_eviction).
    #[error("the Redis server may evict keys (maxmemory-policy {policy}, maxmemory {maxmemory} bytes): set maxmemory-policy to noeviction")]
    EvictingServer {
        /// The server's `maxmemory-policy`.
        policy: String,
        /// The server's `maxmemory`, in bytes.
        maxmemory: u64,
    },
    /// The server could not be reached or did not answer the first `PING`.
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

/// Maps a Redis error into a [`StoreError`]:
///
/// * a key of the wrong type (`WRONGTYPE`) or a reply that does not convert → `Corrupt`
///   (someone wrote something else under our key);
/// * everything else (I/O, timeouts, refused or dropped connections, cluster errors,
///   `LOADING`, `READONLY`, out of memory, …) → `Unavailable`.
pub(crate) fn map_err(e: RedisError) -> StoreError {
    if e.code() == Some("WRONGTYPE") || e.kind() == ErrorKind::UnexpectedReturnType {
        StoreError::corrupt(e)
    } else {
        StoreError::unavailable(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(map_err(io).is_unavailable());
        let ty = RedisError::from((ErrorKind::UnexpectedReturnType, "not a string"));
        assert!(matches!(map_err(ty), StoreError::Corrupt(_)));
        let bad = ConnectError::InvalidUrl("nope".into());
        assert!(StoreError::from(bad).is_unavailable());
    }
}
