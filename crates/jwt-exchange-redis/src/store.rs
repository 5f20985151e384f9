//! [`RedisStore`]: the [`SessionStore`] implementation.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_util::future::try_join_all;
use jwt_exchange::session::{Session, SessionId};
use jwt_exchange::store::{SessionStore, StoreError};
use redis::aio::ConnectionManagerConfig;

use crate::config::RedisStoreConfig;
use crate::conn::Conn;
use crate::error::{map_err, ConnectError};
use crate::keys::{KeySpace, BUCKETS};
use crate::scripts;

/// Ids per script call when deleting or reading many sessions at once.
const CHUNK: usize = 256;

/// Attempts of a compare-and-delete before giving up (only concurrent writers to the same id
/// make one fail).
const DELETE_ATTEMPTS: usize = 8;

/// A [`SessionStore`] in Redis, shared by every instance that uses the same server and key
/// prefix. See the [crate docs](crate) for the key layout and the Cluster story.
///
/// Clones are cheap and share the connection.
///
/// ```no_run
/// use std::sync::Arc;
/// use jwt_exchange::store::SessionStore;
/// use jwt_exchange_redis::{RedisStore, RedisStoreConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379", RedisStoreConfig::default()).await?;
/// let store: Arc<dyn SessionStore> = Arc::new(store);
/// store.ping().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    keys: KeySpace,
    config: RedisStoreConfig,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.conn {
            Conn::Single(_) => "single",
            #[cfg(feature = "cluster")]
            Conn::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("mode", &mode)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to one Redis server (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` when the `redis` crate's TLS support is enabled) and checks it with `PING`.
    ///
    /// The connection is multiplexed (one TCP connection carries concurrent requests) and
    /// re-established automatically after errors; no need to rebuild the store after an
    /// outage. Needs a Tokio runtime with I/O and time enabled.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use jwt_exchange_redis::{RedisStore, RedisStoreConfig};
    ///
    /// # async fn run() -> Result<(), jwt_exchange_redis::ConnectError> {
    /// let config = RedisStoreConfig::default()
    ///     .with_key_prefix("prod-sessions")
    ///     .with_command_timeout(Duration::from_secs(1));
    /// let store = RedisStore::connect("redis://cache.internal:6379/0", config).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub async fn connect(url: &str, config: RedisStoreConfig) -> Result<Self, ConnectError> {
        config.validate()?;
        let client = crate::tls::client(url, config.tls.as_ref())?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.command_timeout))
            .set_max_delay(Duration::from_secs(1));
        let manager = crate::conn::manager(client, manager_config, config.connect_timeout).await?;
        Self::with_conn(Conn::Single(manager), config).await
    }

    /// Connects to a Redis Cluster through one or more of its nodes (`redis://host:port`) and
    /// checks it with `PING`.
    ///
    /// Every multi-key operation touches keys of one hash slot, so it is atomic on the cluster
    /// as on a single server; sessions spread over 16 slots (see the [crate docs](crate)).
    ///
    /// ```no_run
    /// use jwt_exchange_redis::{RedisStore, RedisStoreConfig};
    ///
    /// # async fn run() -> Result<(), jwt_exchange_redis::ConnectError> {
    /// let nodes = ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"];
    /// let store = RedisStore::connect_cluster(&nodes, RedisStoreConfig::default()).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub async fn connect_cluster(
        nodes: &[&str],
        config: RedisStoreConfig,
    ) -> Result<Self, ConnectError> {
        config.validate()?;
        // Each node's URL passes the same checks as a single server's (a `rediss://` scheme
        // when TLS settings are given, never `#insecure`).
        for node in nodes {
            crate::tls::client(node, config.tls.as_ref())?;
        }
        let builder = redis::cluster::ClusterClient::builder(nodes.iter().copied())
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.command_timeout);
        // `tls::client` above refused TLS settings without the `tls` feature.
        #[cfg(feature = "tls")]
        let builder = match crate::tls::cluster_certificates(config.tls.as_ref()) {
            Some(certs) => builder.certs(certs),
            None => builder,
        };
        let client = builder
            .build()
            .map_err(|e| ConnectError::InvalidUrl(Box::new(e)))?;
        let conn = tokio::time::timeout(config.connect_timeout, client.get_async_connection())
            .await
            .map_err(|_| StoreError::unavailable(timed_out("connect", config.connect_timeout)))?
            .map_err(map_err)?;
        Self::with_conn(Conn::Cluster(conn), config).await
    }

    async fn with_conn(conn: Conn, config: RedisStoreConfig) -> Result<Self, ConnectError> {
        let store = RedisStore {
            conn,
            keys: KeySpace::new(&config.key_prefix),
            config,
        };
        store.ping().await?;
        if !store.config.insecure_allow_eviction {
            store.refuse_eviction().await?;
        }
        Ok(store)
    }

    /// Refuses a server that may evict this store's keys. Every key has a TTL, so `volatile-*`
    /// policies evict them as readily as `allkeys-*`. A server that does not answer
    /// `CONFIG GET` (disabled or renamed, as on some managed services) cannot be checked and
    /// is accepted: the operator's documentation says what to set.
    async fn refuse_eviction(&self) -> Result<(), ConnectError> {
        let reply = self
            .bounded("config get", async {
                let mut conn = self.conn.clone();
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("maxmemory*")
                    .query_async::<HashMap<String, String>>(&mut conn)
                    .await
                    .map_err(map_err)
            })
            .await;
        let Ok(settings) = reply else {
            return Ok(());
        };
        match evicts(&settings) {
            Some((policy, maxmemory)) => Err(ConnectError::EvictingServer {
                policy: policy.to_owned(),
                maxmemory,
            }),
            None => Ok(()),
        }
    }

    /// The store's options.
    pub fn config(&self) -> &RedisStoreConfig {
        &self.config
    }

    /// `SCAN MATCH` patterns that together match every key of this store (its sessions,
    /// indexes and `jti` records) and no key of another prefix. For tooling and tests: deleting
    /// these keys logs everyone out.
    ///
    /// ```no_run
    /// # async fn run(store: jwt_exchange_redis::RedisStore) {
    /// for pattern in store.key_patterns() {
    ///     println!("redis-cli --scan --pattern '{pattern}'");
    /// }
    /// # }
    /// ```
    pub fn key_patterns(&self) -> [String; 2] {
        self.keys.patterns()
    }

    fn now(&self) -> i64 {
        self.config.clock.unix_seconds()
    }

    /// Runs one store operation under [`RedisStoreConfig::command_timeout`].
    async fn bounded<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let limit = self.config.command_timeout;
        tokio::time::timeout(limit, fut)
            .await
            .unwrap_or_else(|_| Err(StoreError::unavailable(timed_out(op, limit))))
    }

    /// Live sessions of `subject` in `bucket`.
    async fn list_in(
        &self,
        bucket: u8,
        subject: &str,
        now: i64,
    ) -> Result<Vec<Session>, StoreError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.subject(bucket, subject))
            .arg(format!("({now}"))
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(map_err)?;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let keys: Vec<String> = chunk
                .iter()
                .map(|id| self.keys.session_in(bucket, id))
                .collect();
            let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .map_err(map_err)?;
            for raw in values.into_iter().flatten() {
                let s = decode(&raw)?;
                // The id may have been reused by another subject after an expiry.
                if s.subject == subject && !s.is_expired(now) {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }

    /// Deletes the live sessions of `subject` in `bucket`; returns how many existed.
    async fn delete_in(&self, bucket: u8, subject: &str, now: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let index = self.keys.subject(bucket, subject);
        // Every id in the index, not only those live by this instance's clock: an instance
        // whose clock runs ahead would otherwise leave the sessions about to expire, and they
        // still authenticate on instances whose clocks are behind. Records Redis has already
        // expired are simply not there to delete (and not counted).
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(&index)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(map_err)?;
        let mut deleted = 0;
        for chunk in ids.chunks(CHUNK) {
            let mut call = scripts::DELETE_MANY.prepare_invoke();
            call.key(&index).key(self.keys.expiry(bucket)).arg(now);
            for id in chunk {
                call.key(self.keys.session_in(bucket, id)).arg(id);
            }
            let n: usize = call.invoke_async(&mut conn).await.map_err(map_err)?;
            deleted += n;
        }
        Ok(deleted)
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    /// One Lua script: `SET NX PXAT` of the record, then (only if it was set) the index
    /// entries.
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let json = serde_json::to_string(session).map_err(StoreError::corrupt)?;
        let bucket = KeySpace::bucket_of(&session.id);
        let now = self.now();
        self.bounded("create", async {
            let mut conn = self.conn.clone();
            let created: i64 = scripts::CREATE
                .key(self.keys.session(&session.id))
                .key(self.keys.subject(bucket, &session.subject))
                .key(self.keys.expiry(bucket))
                .arg(json)
                .arg(expiry_ms(session.expires_at))
                .arg(expiry_score(session.expires_at))
                .arg(now)
                .arg(session.id.as_str())
                .invoke_async(&mut conn)
                .await
                .map_err(map_err)?;
            if created == 1 {
                Ok(())
            } else {
                Err(StoreError::AlreadyExists)
            }
        })
        .await
    }

    /// One `GET`. A value that is not a session record with this id is `Corrupt`.
    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = self.now();
        self.bounded("get", async {
            let mut conn = self.conn.clone();
            let raw: Option<Vec<u8>> = redis::cmd("GET")
                .arg(self.keys.session(id))
                .query_async(&mut conn)
                .await
                .map_err(map_err)?;
            let Some(raw) = raw else {
                return Ok(None);
            };
            let s = decode(&raw)?;
            if s.id != *id {
                return Err(StoreError::corrupt("record id does not match its key"));
            }
            Ok((!s.is_expired(now)).then_some(s))
        })
        .await
    }

    /// A `GET` (to learn the subject), then a compare-and-delete script removing the record
    /// and its index entries. An undecodable record, or a value of another type, is deleted
    /// too (and reported as existing), so garbage never blocks a revocation.
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let now = self.now();
        let bucket = KeySpace::bucket_of(id);
        self.bounded("delete", async {
            let mut conn = self.conn.clone();
            let key = self.keys.session(id);
            for _ in 0..DELETE_ATTEMPTS {
                let raw: Option<Vec<u8>> = match redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .map_err(map_err)
                {
                    Ok(raw) => raw,
                    // Not a string at all (WRONGTYPE): delete it without comparing.
                    Err(StoreError::Corrupt(_)) => {
                        let (removed, _): (usize, usize) = redis::pipe()
                            .del(&key)
                            .zrem(self.keys.expiry(bucket), id.as_str())
                            .query_async(&mut conn)
                            .await
                            .map_err(map_err)?;
                        return Ok(removed == 1);
                    }
                    Err(e) => return Err(e),
                };
                let Some(raw) = raw else {
                    return Ok(false);
                };
                let (subject, live) = match decode(&raw) {
                    Ok(s) => (s.subject.clone(), !s.is_expired(now)),
                    // No subject to unindex; a stale index entry is harmless (skipped when
                    // listing, pruned at expiry).
                    Err(_) => (String::new(), true),
                };
                let done: i64 = scripts::DELETE_IF_UNCHANGED
                    .key(&key)
                    .key(self.keys.subject(bucket, &subject))
                    .key(self.keys.expiry(bucket))
                    .arg(raw)
                    .arg(id.as_str())
                    .invoke_async(&mut conn)
                    .await
                    .map_err(map_err)?;
                if done == 1 {
                    return Ok(live);
                }
            }
            Err(StoreError::unavailable(
                "session record kept changing during delete",
            ))
        })
        .await
    }

    /// Per bucket (concurrently): read the subject index, then one script deleting those
    /// sessions and their index entries. Sessions created while this runs may survive it,
    /// exactly as if they had been created just after.
    async fn delete_subject(&self, subject: &str) -> Result<usize, StoreError> {
        let now = self.now();
        self.bounded("delete_subject", async {
            let counts =
                try_join_all((0..BUCKETS).map(|b| self.delete_in(b, subject, now))).await?;
            Ok(counts.into_iter().sum())
        })
        .await
    }

    /// Per bucket (concurrently): read the subject index, then `MGET` the records.
    async fn list_subject(&self, subject: &str) -> Result<Vec<Session>, StoreError> {
        let now = self.now();
        self.bounded("list_subject", async {
            let lists = try_join_all((0..BUCKETS).map(|b| self.list_in(b, subject, now))).await?;
            let mut out: Vec<Session> = lists.into_iter().flatten().collect();
            out.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
            Ok(out)
        })
        .await
    }

    /// Redis already dropped the expired records and `jti` keys (native expiry), and subject
    /// indexes prune themselves; this removes the expired entries of each bucket's expiry
    /// index and returns how many there were, i.e. how many sessions expired (rather than
    /// being deleted) since the last sweep.
    async fn sweep(&self) -> Result<usize, StoreError> {
        let now = self.now();
        self.bounded("sweep", async {
            let counts = try_join_all((0..BUCKETS).map(|b| {
                let mut conn = self.conn.clone();
                let key = self.keys.expiry(b);
                async move {
                    redis::cmd("ZREMRANGEBYSCORE")
                        .arg(key)
                        .arg("-inf")
                        .arg(now)
                        .query_async::<usize>(&mut conn)
                        .await
                        .map_err(map_err)
                }
            }))
            .await?;
            Ok(counts.into_iter().sum())
        })
        .await
    }

    /// `SET <jti key> 1 NX PXAT <expires_at>`.
    async fn claim_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.bounded("claim_jti", async {
            let mut conn = self.conn.clone();
            let set: Option<String> = redis::cmd("SET")
                .arg(self.keys.jti(issuer, jti))
                .arg(1)
                .arg("NX")
                .arg("PXAT")
                .arg(expiry_ms(expires_at))
                .query_async(&mut conn)
                .await
                .map_err(map_err)?;
            Ok(set.is_some())
        })
        .await
    }

    /// `PING`.
    async fn ping(&self) -> Result<(), StoreError> {
        self.bounded("ping", async {
            let mut conn = self.conn.clone();
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(drop)
                .map_err(map_err)
        })
        .await
    }
}

/// The policy and limit of a server whose `CONFIG GET maxmemory*` answer says it may evict keys:
/// a `maxmemory` above zero (zero is no limit) and a policy other than `noeviction`.
fn evicts(settings: &HashMap<String, String>) -> Option<(&str, u64)> {
    let maxmemory = settings.get("maxmemory")?.parse::<u64>().ok()?;
    let policy = settings.get("maxmemory-policy")?;
    (maxmemory > 0 && policy != "noeviction").then_some((policy.as_str(), maxmemory))
}

/// Decodes a stored record; anything else is `Corrupt`.
fn decode(raw: &[u8]) -> Result<Session, StoreError> {
    serde_json::from_slice(raw).map_err(StoreError::corrupt)
}

/// The latest expiry stored, in Unix seconds (the end of year 9999). Later expiries are
/// clamped to it, so scores and their millisecond forms stay exact in Lua's doubles.
const MAX_EXPIRES_AT: i64 = 253_402_300_799;

/// `expires_at` as an index score: clamped to [`MAX_EXPIRES_AT`].
fn expiry_score(expires_at: i64) -> i64 {
    expires_at.min(MAX_EXPIRES_AT)
}

/// `expires_at` (Unix seconds) as a `PXAT` argument: milliseconds, at least 1 (Redis refuses
/// zero and negative times; a time in the past expires the key at once), at most
/// [`MAX_EXPIRES_AT`].
fn expiry_ms(expires_at: i64) -> i64 {
    expiry_score(expires_at).saturating_mul(1000).max(1)
}

pub(crate) fn timed_out(op: &str, after: Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("redis {op} timed out after {after:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_ms_is_clamped() {
        assert_eq!(expiry_ms(1_700_000_000), 1_700_000_000_000);
        assert_eq!(expiry_ms(0), 1);
        assert_eq!(expiry_ms(-5), 1);
        assert_eq!(expiry_ms(i64::MAX), MAX_EXPIRES_AT * 1000);
        assert_eq!(expiry_score(i64::MAX), MAX_EXPIRES_AT);
        assert_eq!(expiry_score(-7), -7);
    }

    #[test]
    fn only_a_memory_limit_with_an_evicting_policy_is_refused() {
        let settings = |maxmemory: &str, policy: &str| {
            HashMap::from([
                ("maxmemory".to_owned(), maxmemory.to_owned()),
                ("maxmemory-policy".to_owned(), policy.to_owned()),
                ("maxmemory-samples".to_owned(), "5".to_owned()),
            ])
        };
        for policy in [
            "allkeys-lru",
            "volatile-lru",
            "volatile-ttl",
            "allkeys-random",
        ] {
            assert_eq!(
                evicts(&settings("1073741824", policy)),
                Some((policy, 1 << 30)),
                "{policy}"
            );
            assert_eq!(evicts(&settings("0", policy)), None, "no limit: {policy}");
        }
        assert_eq!(evicts(&settings("1073741824", "noeviction")), None);
        assert_eq!(evicts(&HashMap::new()), None, "unknown: accepted");
    }

    #[test]
    fn garbage_is_corrupt() {
        assert!(matches!(decode(b"garbage"), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode(b"{\"id\":1}"), Err(StoreError::Corrupt(_))));
    }
}
