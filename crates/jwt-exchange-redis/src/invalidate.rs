//! [`RedisInvalidator`]: near-cache invalidations over Redis pub/sub, and
//! [`RedisStore::connect_cached`], the one-call way to get a near-cached Redis store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use jwt_exchange::store::{
    CachedStore, EchoHeartbeat, Invalidation, InvalidationListener, Invalidator, ListenGuard,
    NearCacheConfig, StoreError,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};

use crate::error::{map_err, ConnectError};
use crate::store::timed_out;
use jwt_exchange::store::StoreTls;

use crate::{RedisStore, RedisStoreConfig};

/// First delay before re-subscribing after a loss; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest delay between two subscription attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Options of a [`RedisInvalidator`].
///
/// ```
/// use std::time::Duration;
/// use jwt_exchange_redis::RedisInvalidatorConfig;
///
/// let config = RedisInvalidatorConfig::new("prod-sessions:inv")
///     .with_heartbeat(Duration::from_millis(500));
/// assert_eq!(config.channel, "prod-sessions:inv");
/// assert_eq!(config.command_timeout, Duration::from_secs(2));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisInvalidatorConfig {
    /// The pub/sub channel. Every instance of a deployment must use the same one, and
    /// deployments sharing a Redis must use different ones (pub/sub ignores the database
    /// number). [`RedisStore::invalidation_channel`] derives it from the key prefix:
    /// `<key_prefix>:inv`.
    pub channel: String,
    /// Interval of the [`EchoHeartbeat`]: each one is published on the channel and must
    /// arrive on the subscription before the next, or the subscription counts as lost. A
    /// silent partition, or a path that stops delivering messages, is therefore noticed (and
    /// the cache flushed and bypassed) within about twice this. Defaults to 1 s.
    pub heartbeat: Duration,
    /// Upper bound on a `PUBLISH` and on a `SUBSCRIBE`. Defaults to 2 s.
    pub command_timeout: Duration,
    /// Upper bound on establishing a connection. Defaults to 5 s.
    pub connect_timeout: Duration,
    /// TLS settings for a `rediss://` URL, as [`RedisStoreConfig::tls`]. Defaults to `None`.
    pub tls: Option<StoreTls>,
}

impl RedisInvalidatorConfig {
    /// Defaults, on `channel`.
    pub fn new(channel: impl Into<String>) -> Self {
        RedisInvalidatorConfig {
            channel: channel.into(),
            heartbeat: Duration::from_secs(1),
            command_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            tls: None,
        }
    }

    /// Sets [`heartbeat`](Self::heartbeat) (at least 10 ms).
    #[must_use]
    pub fn with_heartbeat(mut self, heartbeat: Duration) -> Self {
        self.heartbeat = heartbeat.max(Duration::from_millis(10));
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

    /// Sets [`tls`](Self::tls).
    #[must_use]
    pub fn with_tls(mut self, tls: Option<StoreTls>) -> Self {
        self.tls = tls;
        self
    }
}

/// An [`Invalidator`] over Redis pub/sub: `PUBLISH` on one auto-reconnecting connection, and
/// a dedicated `SUBSCRIBE` connection per listening cache, watched by a heartbeat.
///
/// Redis delivers a published message to the subscribers' connections before it answers
/// the `PUBLISH`, so when [`publish`](Invalidator::publish) returns, every connected instance
/// has the message on its socket. Pub/sub is fire-and-forget: a subscriber that is
/// disconnected at that moment never gets it, which is why the listener flushes its cache
/// on every re-subscription. On Redis Cluster, `PUBLISH` reaches the subscribers of every
/// node, so one node's URL serves.
///
/// ```no_run
/// use std::sync::Arc;
/// use jwt_exchange::store::{CachedStore, NearCacheConfig};
/// use jwt_exchange_redis::{RedisInvalidator, RedisInvalidatorConfig, RedisStore, RedisStoreConfig};
///
/// # async fn run() -> Result<(), jwt_exchange_redis::ConnectError> {
/// let url = "redis://127.0.0.1:6379";
/// let store = RedisStore::connect(url, RedisStoreConfig::default()).await?;
/// let channel = store.invalidation_channel();
/// let invalidator = RedisInvalidator::connect(url, RedisInvalidatorConfig::new(channel)).await?;
/// let cached = CachedStore::new(store, Arc::new(invalidator), NearCacheConfig::default());
/// # let _ = cached; Ok(()) }
/// ```
pub struct RedisInvalidator {
    client: redis::Client,
    publisher: ConnectionManager,
    config: RedisInvalidatorConfig,
}

impl fmt::Debug for RedisInvalidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisInvalidator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisInvalidator {
    /// Connects the publishing connection (checked with `PING`). Subscriptions are made by
    /// [`listen`](Invalidator::listen), in the background. Needs a Tokio runtime.
    pub async fn connect(url: &str, config: RedisInvalidatorConfig) -> Result<Self, ConnectError> {
        let client = crate::tls::client(url, config.tls.as_ref())?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.command_timeout))
            .set_max_delay(MAX_BACKOFF);
        let mut publisher =
            crate::conn::manager(client.clone(), manager_config, config.connect_timeout).await?;
        tokio::time::timeout(
            config.command_timeout,
            redis::cmd("PING").query_async::<String>(&mut publisher),
        )
        .await
        .map_err(|_| StoreError::unavailable(timed_out("ping", config.command_timeout)))?
        .map_err(map_err)?;
        Ok(RedisInvalidator {
            client,
            publisher,
            config,
        })
    }

    /// The options.
    pub fn config(&self) -> &RedisInvalidatorConfig {
        &self.config
    }
}

#[async_trait::async_trait]
impl Invalidator for RedisInvalidator {
    /// `PUBLISH <channel> <message>`, bounded by the command timeout.
    async fn publish(&self, invalidation: &Invalidation) -> Result<(), StoreError> {
        publish(
            self.publisher.clone(),
            &self.config.channel,
            &invalidation.encode(),
            self.config.command_timeout,
        )
        .await
    }

    /// Spawns the subscriber task: connect, `SUBSCRIBE`, report
    /// [`subscribed`](InvalidationListener::subscribed), apply messages, and every heartbeat
    /// publish an [`EchoHeartbeat`] on the channel (through the publishing connection, the
    /// path revocations take) that must come back before the next one; on any failure report
    /// [`unsubscribed`](InvalidationListener::unsubscribed) and start over after a back-off
    /// (100 ms doubling to 1 s).
    fn listen(&self, listener: InvalidationListener) -> ListenGuard {
        let task = tokio::spawn(subscriber(
            self.client.clone(),
            self.publisher.clone(),
            self.config.clone(),
            listener,
        ));
        ListenGuard::abort_task(task.abort_handle())
    }
}

/// `PUBLISH <channel> <payload>` on `conn`, bounded by `limit`: revocations and heartbeats.
async fn publish(
    mut conn: ConnectionManager,
    channel: &str,
    payload: &str,
    limit: Duration,
) -> Result<(), StoreError> {
    tokio::time::timeout(
        limit,
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async::<i64>(&mut conn),
    )
    .await
    .map_err(|_| StoreError::unavailable(timed_out("publish", limit)))?
    .map(drop)
    .map_err(map_err)
}

/// The subscriber task; runs until aborted.
async fn subscriber(
    client: redis::Client,
    publisher: ConnectionManager,
    config: RedisInvalidatorConfig,
    listener: InvalidationListener,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        if let Some((_sink, mut stream)) = subscribe(&client, &config).await {
            listener.subscribed();
            backoff = MIN_BACKOFF;
            pump(&mut stream, publisher.clone(), &config, &listener).await;
            listener.unsubscribed();
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A new pub/sub connection subscribed to the channel, or `None`.
async fn subscribe(
    client: &redis::Client,
    config: &RedisInvalidatorConfig,
) -> Option<(PubSubSink, PubSubStream)> {
    let pubsub = tokio::time::timeout(config.connect_timeout, client.get_async_pubsub())
        .await
        .ok()?
        .ok()?;
    let (mut sink, stream) = pubsub.split();
    tokio::time::timeout(config.command_timeout, sink.subscribe(&config.channel))
        .await
        .ok()?
        .ok()?;
    Some((sink, stream))
}

/// Applies messages until the connection closes, or a heartbeat cannot be published or does
/// not come back within the interval.
async fn pump(
    stream: &mut PubSubStream,
    publisher: ConnectionManager,
    config: &RedisInvalidatorConfig,
    listener: &InvalidationListener,
) {
    let heartbeat = config.heartbeat;
    let mut echo = EchoHeartbeat::new();
    let mut ticks = tokio::time::interval(heartbeat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        // Messages first: a beat that arrived as the next tick fired is not a missed one.
        tokio::select! {
            biased;
            msg = stream.next() => match msg {
                Some(msg) => {
                    let payload = msg.get_payload_bytes();
                    if !echo.received(payload) {
                        listener.message(payload);
                    }
                }
                None => return,
            },
            _ = ticks.tick() => {
                let Some(beat) = echo.tick() else {
                    return;
                };
                if publish(publisher.clone(), &config.channel, &beat, heartbeat).await.is_err() {
                    return;
                }
            }
        }
    }
}

impl RedisStore {
    /// The pub/sub channel for this store's near-cache invalidations: `<key_prefix>:inv`.
    ///
    /// ```no_run
    /// # async fn run(store: jwt_exchange_redis::RedisStore) {
    /// assert_eq!(store.invalidation_channel(), "jwtx:inv");
    /// # }
    /// ```
    pub fn invalidation_channel(&self) -> String {
        format!("{}:inv", self.config().key_prefix)
    }

    /// Connects a store and puts a near-cache in front of it, with invalidations over pub/sub
    /// on [`invalidation_channel`](Self::invalidation_channel) (timeouts taken from
    /// `config`). Waits up to `config.connect_timeout` for the first subscription and fails
    /// with `Unavailable` if it does not come up.
    ///
    /// Every instance sharing the prefix must use the near-cache (or at least revoke through
    /// a `CachedStore`): a revocation that publishes nothing leaves cached copies alive for up
    /// to [`NearCacheConfig::max_age`].
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use jwt_exchange::store::{NearCacheConfig, SessionStore};
    /// use jwt_exchange_redis::{RedisStore, RedisStoreConfig};
    ///
    /// # async fn run() -> Result<(), jwt_exchange_redis::ConnectError> {
    /// let store: Arc<dyn SessionStore> = Arc::new(
    ///     RedisStore::connect_cached(
    ///         "redis://127.0.0.1:6379",
    ///         RedisStoreConfig::default(),
    ///         NearCacheConfig::default().with_max_entries(50_000),
    ///     )
    ///     .await?,
    /// );
    /// # let _ = store; Ok(()) }
    /// ```
    pub async fn connect_cached(
        url: &str,
        config: RedisStoreConfig,
        near_cache: NearCacheConfig,
    ) -> Result<CachedStore<RedisStore>, ConnectError> {
        let connect_timeout = config.connect_timeout;
        let command_timeout = config.command_timeout;
        let tls = config.tls.clone();
        let store = RedisStore::connect(url, config).await?;
        let invalidator = RedisInvalidator::connect(
            url,
            RedisInvalidatorConfig::new(store.invalidation_channel())
                .with_command_timeout(command_timeout)
                .with_connect_timeout(connect_timeout)
                .with_tls(tls),
        )
        .await?;
        let cached = CachedStore::new(store, Arc::new(invalidator), near_cache);
        if cached.wait_subscribed(connect_timeout).await {
            Ok(cached)
        } else {
            Err(StoreError::unavailable(timed_out("subscribe", connect_timeout)).into())
        }
    }
}
