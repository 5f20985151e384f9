//! [`PostgresInvalidator`]: near-cache invalidations over PostgreSQL `LISTEN` / `NOTIFY`, and
//! [`PostgresStore::connect_cached`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jwt_exchange::store::{
    CachedStore, EchoHeartbeat, Invalidation, InvalidationListener, Invalidator, ListenGuard,
    NearCacheConfig, StoreError,
};
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use crate::error::{timed_out, ConnectError};
use crate::{PostgresStore, PostgresStoreConfig};

/// Largest `NOTIFY` payload PostgreSQL accepts is 7999 bytes; a longer message (a subject
/// revocation with a huge subject) is sent as [`Invalidation::All`] instead.
const MAX_PAYLOAD: usize = 7_999;
/// Longest channel name (PostgreSQL identifiers are at most 63 bytes).
const MAX_CHANNEL: usize = 63;
/// First delay before listening again after a loss; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest delay between two attempts to listen.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Options of a [`PostgresInvalidator`].
///
/// ```
/// use std::time::Duration;
/// use jwt_exchange_postgres::PostgresInvalidatorConfig;
///
/// let config = PostgresInvalidatorConfig::new("jwt_exchange:inv")
///     .with_heartbeat(Duration::from_millis(500));
/// assert_eq!(config.heartbeat, Duration::from_millis(500));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PostgresInvalidatorConfig {
    /// The `LISTEN` / `NOTIFY` channel (at most 63 bytes). Every instance of a deployment
    /// must use the same one; [`PostgresStore::invalidation_channel`] derives it from the
    /// schema: `<schema>:inv`.
    pub channel: String,
    /// Interval of the [`EchoHeartbeat`]: each one is sent with `pg_notify` through the store's
    /// pool and must arrive on the listening connection before the next, or the subscription
    /// counts as lost. A silent partition, or a `LISTEN` that is never delivered to, is
    /// therefore noticed within about twice this. Defaults to 1 s.
    pub heartbeat: Duration,
}

impl PostgresInvalidatorConfig {
    /// Defaults, on `channel`.
    pub fn new(channel: impl Into<String>) -> Self {
        PostgresInvalidatorConfig {
            channel: channel.into(),
            heartbeat: Duration::from_secs(1),
        }
    }

    /// Sets [`heartbeat`](Self::heartbeat) (at least 10 ms).
    #[must_use]
    pub fn with_heartbeat(mut self, heartbeat: Duration) -> Self {
        self.heartbeat = heartbeat.max(Duration::from_millis(10));
        self
    }
}

/// An [`Invalidator`] over PostgreSQL: `SELECT pg_notify(channel, message)` through a
/// store's connection pool, and a dedicated `LISTEN` connection per listening cache, watched
/// by a heartbeat.
///
/// `NOTIFY` is transactional and queued by the server: a listener that stays connected gets
/// every message, in order; one that was disconnected misses those sent meanwhile, which is
/// why the listener flushes its cache whenever it listens again. Messages are plain text
/// (see [`Invalidation::encode`]); a message over PostgreSQL's 8000-byte payload limit is
/// replaced by "forget everything".
///
/// ```no_run
/// use std::sync::Arc;
/// use jwt_exchange::store::{CachedStore, NearCacheConfig};
/// use jwt_exchange_postgres::{PostgresInvalidator, PostgresInvalidatorConfig, PostgresStore, PostgresStoreConfig};
///
/// # async fn run() -> Result<(), jwt_exchange_postgres::ConnectError> {
/// let url = "postgres://jwtx@127.0.0.1/auth";
/// let store = PostgresStore::connect(url, PostgresStoreConfig::default()).await?;
/// let config = PostgresInvalidatorConfig::new(store.invalidation_channel());
/// let invalidator = PostgresInvalidator::new(url, &store, config)?;
/// let cached = CachedStore::new(store, Arc::new(invalidator), NearCacheConfig::default());
/// # let _ = cached; Ok(()) }
/// ```
pub struct PostgresInvalidator {
    pg: tokio_postgres::Config,
    store: PostgresStore,
    config: PostgresInvalidatorConfig,
}

impl fmt::Debug for PostgresInvalidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresInvalidator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PostgresInvalidator {
    /// Publishes through `store`'s pool (bounded by its `query_timeout`) and listens on
    /// dedicated connections to `url` (bounded by its `connect_timeout`). Nothing is
    /// connected until [`listen`](Invalidator::listen).
    pub fn new(
        url: &str,
        store: &PostgresStore,
        config: PostgresInvalidatorConfig,
    ) -> Result<Self, ConnectError> {
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| ConnectError::InvalidUrl(Box::new(e)))?;
        pg.connect_timeout(store.config().connect_timeout);
        // The listener is told apart from the pool in `pg_stat_activity`: `<name>-listen`.
        let name = format!(
            "{}-listen",
            pg.get_application_name().unwrap_or("jwt-exchange")
        );
        pg.application_name(&name);
        // Connections open like the store's (same sslmode and TLS settings); a listener URL
        // that asks for TLS the store does not use is refused rather than quietly plaintext.
        if crate::tls::decide(&pg, store.config().tls.is_some())? && !store.uses_tls() {
            return Err(ConnectError::ListenerTlsMismatch);
        }
        if config.channel.is_empty() || config.channel.len() > MAX_CHANNEL {
            return Err(StoreError::unavailable("channel must be 1 to 63 bytes").into());
        }
        Ok(PostgresInvalidator {
            pg,
            store: store.clone(),
            config,
        })
    }
}

#[async_trait::async_trait]
impl Invalidator for PostgresInvalidator {
    async fn publish(&self, invalidation: &Invalidation) -> Result<(), StoreError> {
        let mut payload = invalidation.encode();
        if payload.len() > MAX_PAYLOAD {
            payload = Invalidation::All.encode();
        }
        self.store.notify(&self.config.channel, &payload).await
    }

    /// Spawns the listener task: connect, `LISTEN`, report
    /// [`subscribed`](InvalidationListener::subscribed), apply notifications, and every
    /// heartbeat send an [`EchoHeartbeat`] through the store's pool that must come back before
    /// the next one; on any failure report
    /// [`unsubscribed`](InvalidationListener::unsubscribed) and start over after a back-off
    /// (100 ms doubling to 1 s).
    fn listen(&self, listener: InvalidationListener) -> ListenGuard {
        let task = tokio::spawn(listener_task(
            self.store.clone(),
            self.pg.clone(),
            self.config.clone(),
            self.store.config().query_timeout,
            listener,
        ));
        ListenGuard::abort_task(task.abort_handle())
    }
}

/// The listener task; runs until aborted.
async fn listener_task(
    store: PostgresStore,
    pg: tokio_postgres::Config,
    config: PostgresInvalidatorConfig,
    query_timeout: Duration,
    listener: InvalidationListener,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        if let Some((client, notes, driver)) = subscribe(&store, &pg, &config, query_timeout).await
        {
            listener.subscribed();
            backoff = MIN_BACKOFF;
            pump(&store, notes, &config, &listener).await;
            drop(client);
            listener.unsubscribed();
            drop(driver);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Aborts the task driving a listening connection when dropped.
struct Driver(tokio::task::JoinHandle<()>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A new connection listening on the channel: its client, its notifications (the channel
/// closes when the connection does), and the task driving it.
async fn subscribe(
    store: &PostgresStore,
    pg: &tokio_postgres::Config,
    config: &PostgresInvalidatorConfig,
    query_timeout: Duration,
) -> Option<(
    tokio_postgres::Client,
    mpsc::UnboundedReceiver<String>,
    Driver,
)> {
    let connect_timeout = pg.get_connect_timeout().copied().unwrap_or(query_timeout);
    let (client, mut connection) =
        tokio::time::timeout(connect_timeout, store.connect_like_pool(pg.clone()))
            .await
            .ok()?
            .ok()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = Driver(tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message {
                if tx.send(n.payload().to_owned()).is_err() {
                    return;
                }
            }
        }
    }));
    // The channel is quoted (it contains `:`); `"` cannot occur in it (checked by the
    // store's schema rules, and doubled here anyway).
    let listen = format!("LISTEN \"{}\"", config.channel.replace('"', "\"\""));
    tokio::time::timeout(query_timeout, client.batch_execute(&listen))
        .await
        .ok()?
        .ok()?;
    Some((client, rx, driver))
}

/// Applies notifications until the connection closes, or a heartbeat cannot be sent or does
/// not come back within the interval, so a `LISTEN` that is accepted but never delivered to
/// (PgBouncer in transaction pooling mode) is noticed. The heartbeat goes through the store's
/// pool, the path revocations take: sent on the listening connection itself it could come back
/// through PgBouncer anyway (a session receives its own notifications, and PgBouncer hands the
/// same backend back), proving nothing about other instances' messages. A pool saturated for a
/// whole interval therefore counts as a lost subscription (cache flushed and bypassed): the
/// safe side, since revocations travel the same way.
async fn pump(
    store: &PostgresStore,
    mut notes: mpsc::UnboundedReceiver<String>,
    config: &PostgresInvalidatorConfig,
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
            note = notes.recv() => match note {
                Some(payload) => {
                    if !echo.received(payload.as_bytes()) {
                        listener.message(payload.as_bytes());
                    }
                }
                None => return,
            },
            _ = ticks.tick() => {
                let Some(beat) = echo.tick() else {
                    return;
                };
                let sent = tokio::time::timeout(heartbeat, store.notify(&config.channel, &beat)).await;
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
            }
        }
    }
}

impl PostgresStore {
    /// The `LISTEN` / `NOTIFY` channel for this store's near-cache invalidations:
    /// `<schema>:inv` (the schema cut to 59 bytes, so the name fits an identifier; two schemas
    /// sharing those 59 bytes would only see each other's invalidations, which costs cache
    /// hits, never correctness).
    ///
    /// ```no_run
    /// # async fn run(store: jwt_exchange_postgres::PostgresStore) {
    /// assert_eq!(store.invalidation_channel(), "jwt_exchange:inv");
    /// # }
    /// ```
    pub fn invalidation_channel(&self) -> String {
        let schema = &self.config().schema;
        format!("{}:inv", &schema[..schema.len().min(MAX_CHANNEL - 4)])
    }

    /// Connects a store (see [`connect`](Self::connect)) and puts a near-cache in front of
    /// it, with invalidations over `LISTEN` / `NOTIFY` on
    /// [`invalidation_channel`](Self::invalidation_channel). Waits up to
    /// `config.connect_timeout` for the first `LISTEN` and fails with `Unavailable` if it
    /// does not succeed.
    ///
    /// Every instance sharing the schema must use the near-cache (or at least revoke through
    /// a `CachedStore`): a revocation that notifies nobody leaves cached copies alive for up
    /// to [`NearCacheConfig::max_age`].
    ///
    /// ```no_run
    /// use jwt_exchange::store::NearCacheConfig;
    /// use jwt_exchange_postgres::{PostgresStore, PostgresStoreConfig};
    ///
    /// # async fn run() -> Result<(), jwt_exchange_postgres::ConnectError> {
    /// let store = PostgresStore::connect_cached(
    ///     "postgres://jwtx@127.0.0.1/auth",
    ///     PostgresStoreConfig::default(),
    ///     NearCacheConfig::default(),
    /// )
    /// .await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub async fn connect_cached(
        url: &str,
        config: PostgresStoreConfig,
        near_cache: NearCacheConfig,
    ) -> Result<CachedStore<PostgresStore>, ConnectError> {
        let connect_timeout = config.connect_timeout;
        let store = PostgresStore::connect(url, config).await?;
        let invalidator = PostgresInvalidator::new(
            url,
            &store,
            PostgresInvalidatorConfig::new(store.invalidation_channel()),
        )?;
        let cached = CachedStore::new(store, Arc::new(invalidator), near_cache);
        if cached.wait_subscribed(connect_timeout).await {
            Ok(cached)
        } else {
            Err(timed_out("listen", connect_timeout).into())
        }
    }
}
