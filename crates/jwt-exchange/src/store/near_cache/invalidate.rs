//! How near-caches of several instances learn about revocations: the [`Invalidation`]
//! message and its wire format, the [`Invalidator`] transport trait, the
//! [`InvalidationListener`] a transport reports to, and [`LocalInvalidator`] (in process).

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::AbortHandle;

use super::Shared;
use crate::session::SessionId;
use crate::store::StoreError;

/// What every near-cache must forget.
///
/// The wire format ([`encode`](Invalidation::encode) / [`decode`](Invalidation::decode)) is
/// ASCII-safe text (no NUL, no control characters), so it fits Redis pub/sub as well as
/// PostgreSQL `NOTIFY` payloads:
///
/// | message | wire |
/// |---|---|
/// | one session | `s <session id>` |
/// | every session of a subject | `u <subject as a JSON string>` |
/// | everything | `*` |
///
/// ```
/// use jwt_exchange::session::SessionId;
/// use jwt_exchange::store::Invalidation;
///
/// let id = SessionId::generate();
/// for m in [
///     Invalidation::Session(id.clone()),
///     Invalidation::Subject("jwt:https://idp:al\0ice".into()),
///     Invalidation::All,
/// ] {
///     assert_eq!(Invalidation::decode(m.encode().as_bytes()), Some(m));
/// }
/// assert_eq!(Invalidation::Subject("a\0b".into()).encode(), r#"u "a\u0000b""#);
/// assert_eq!(Invalidation::decode(b"garbage"), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalidation {
    /// One session was deleted.
    Session(SessionId),
    /// Every session of this subject was deleted.
    Subject(String),
    /// Forget everything (sent when a precise message cannot be; also what a listener does
    /// with a message it cannot decode).
    All,
}

impl Invalidation {
    /// The message as text (see the table above).
    pub fn encode(&self) -> String {
        match self {
            Invalidation::Session(id) => format!("s {}", id.as_str()),
            Invalidation::Subject(subject) => {
                // Serialising a string cannot fail.
                format!("u {}", serde_json::to_string(subject).unwrap_or_default())
            }
            Invalidation::All => "*".to_owned(),
        }
    }

    /// Parses [`encode`](Invalidation::encode)'s output; `None` for anything else.
    pub fn decode(raw: &[u8]) -> Option<Self> {
        let raw = std::str::from_utf8(raw).ok()?;
        if raw == "*" {
            return Some(Invalidation::All);
        }
        let (kind, rest) = raw.split_once(' ')?;
        match kind {
            "s" => SessionId::parse(rest).ok().map(Invalidation::Session),
            "u" => serde_json::from_str(rest).ok().map(Invalidation::Subject),
            _ => None,
        }
    }
}

/// A transport that carries [`Invalidation`]s between the instances of a deployment (Redis
/// pub/sub in `jwt-exchange-redis`, PostgreSQL `LISTEN`/`NOTIFY` in `jwt-exchange-postgres`,
/// [`LocalInvalidator`] within one process).
///
/// A transport must deliver each published message to every listener that was subscribed
/// when it was published, its publisher's own included, and must report every (re)connection
/// and every loss of its subscription to the listener: a [`CachedStore`](super::CachedStore)
/// only trusts its entries while subscribed, and flushes them whenever that changes, because
/// messages may have been missed in between.
#[async_trait::async_trait]
pub trait Invalidator: Send + Sync + fmt::Debug {
    /// Sends `invalidation` to every subscribed instance. Returns once the transport has
    /// accepted the message (for Redis: `PUBLISH` answered), so a caller that awaited it knows
    /// every other instance will see it within one message delivery.
    async fn publish(&self, invalidation: &Invalidation) -> Result<(), StoreError>;

    /// Starts delivering messages and subscription changes to `listener` (typically from a
    /// background task) until the returned guard is dropped. Implementations must call
    /// [`InvalidationListener::subscribed`] after each successful (re)subscription and
    /// [`InvalidationListener::unsubscribed`] as soon as they notice it was lost.
    fn listen(&self, listener: InvalidationListener) -> ListenGuard;
}

/// The receiving end of an [`Invalidator`]: the near-cache it feeds. Cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use jwt_exchange::store::{CachedStore, LocalInvalidator, MemoryStore, NearCacheConfig};
/// use jwt_exchange::SystemClock;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// // LocalInvalidator calls `subscribed()` as soon as a cache listens.
/// let store = CachedStore::new(
///     MemoryStore::new(Arc::new(SystemClock)),
///     Arc::new(LocalInvalidator::new()),
///     NearCacheConfig::default(),
/// );
/// assert!(store.is_subscribed());
/// # });
/// ```
#[derive(Clone)]
pub struct InvalidationListener {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for InvalidationListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvalidationListener")
            .field("subscribed", &self.shared.is_subscribed())
            .finish_non_exhaustive()
    }
}

impl InvalidationListener {
    /// The transport is (again) subscribed: messages published from now on will arrive. The
    /// cache is flushed (messages may have been missed before) and used again.
    pub fn subscribed(&self) {
        self.shared.set_subscribed();
    }

    /// The subscription was lost (connection closed, heartbeat unanswered): the cache is
    /// flushed and bypassed until [`subscribed`](Self::subscribed).
    pub fn unsubscribed(&self) {
        self.shared.set_unsubscribed();
    }

    /// Applies one message.
    pub fn invalidate(&self, invalidation: &Invalidation) {
        self.shared.invalidate(invalidation);
    }

    /// Decodes and applies one raw message; one that does not decode flushes the whole cache
    /// (safe, if wasteful). An [`EchoHeartbeat`] message (any instance's) is not an
    /// invalidation and changes nothing. Returns whether it decoded.
    pub fn message(&self, raw: &[u8]) -> bool {
        if EchoHeartbeat::is_heartbeat(raw) {
            return true;
        }
        let decoded = Invalidation::decode(raw);
        self.invalidate(decoded.as_ref().unwrap_or(&Invalidation::All));
        decoded.is_some()
    }
}

/// A heartbeat that proves messages arrive, not only that the subscription's connection
/// answers: each tick publishes a message of this instance's own on the channel, and the next
/// tick requires it to have come back.
///
/// A `PING` on the subscription cannot see a path that accepts the subscription and delivers
/// nothing — PgBouncer in transaction pooling mode accepts `LISTEN` and never delivers the
/// notifications, a partitioned Redis Cluster bus drops messages between nodes — and the
/// near-cache would then trust entries that other instances' revocations never reach. Wire
/// format: `h <16 random characters>-<counter>`, which [`InvalidationListener::message`] ignores
/// (from any instance) and which is no [`Invalidation`].
///
/// ```
/// use jwt_exchange::store::EchoHeartbeat;
///
/// let mut echo = EchoHeartbeat::new();
/// let first = echo.tick().expect("nothing outstanding yet");
/// assert!(echo.received(first.as_bytes()));
/// let second = echo.tick().expect("the first came back");
/// // Another instance's heartbeat is a heartbeat, but not ours.
/// assert!(!echo.received(EchoHeartbeat::new().tick().unwrap().as_bytes()));
/// assert!(EchoHeartbeat::is_heartbeat(second.as_bytes()));
/// // The second never came back: the subscription is lost.
/// assert_eq!(echo.tick(), None);
/// ```
#[derive(Debug)]
pub struct EchoHeartbeat {
    /// `h <instance tag>-`.
    prefix: String,
    sent: u64,
    outstanding: bool,
}

impl Default for EchoHeartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl EchoHeartbeat {
    /// A heartbeat with a fresh random instance tag.
    pub fn new() -> Self {
        let id = SessionId::generate();
        EchoHeartbeat {
            prefix: format!("h {}-", &id.as_str()[..16]),
            sent: 0,
            outstanding: false,
        }
    }

    /// Called at each heartbeat: the message to publish now, or `None` when the previous one
    /// has not come back within the interval (treat the subscription as lost).
    pub fn tick(&mut self) -> Option<String> {
        if self.outstanding {
            return None;
        }
        self.sent += 1;
        self.outstanding = true;
        Some(format!("{}{}", self.prefix, self.sent))
    }

    /// Whether `raw` is this instance's latest heartbeat; if so it counts as received.
    pub fn received(&mut self, raw: &[u8]) -> bool {
        let ours = raw
            .strip_prefix(self.prefix.as_bytes())
            .is_some_and(|n| n == self.sent.to_string().as_bytes());
        if ours {
            self.outstanding = false;
        }
        ours
    }

    /// Whether `raw` is anyone's heartbeat.
    pub fn is_heartbeat(raw: &[u8]) -> bool {
        raw.starts_with(b"h ")
    }
}

/// Stops an [`Invalidator::listen`] when dropped.
#[must_use = "listening stops as soon as the guard is dropped"]
pub struct ListenGuard {
    _stop: Option<Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for ListenGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenGuard").finish_non_exhaustive()
    }
}

impl ListenGuard {
    /// Aborts the Tokio task `task` when dropped.
    pub fn abort_task(task: AbortHandle) -> Self {
        struct AbortOnDrop(AbortHandle);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        ListenGuard::on_drop(AbortOnDrop(task))
    }

    /// Drops `value` when dropped (put the stopping logic in its `Drop`).
    pub fn on_drop(value: impl Any + Send + Sync) -> Self {
        ListenGuard {
            _stop: Some(Box::new(value)),
        }
    }
}

/// An [`Invalidator`] within one process: delivers every message synchronously to every
/// listening cache. For tests, and for several caches over one shared store in one process.
///
/// [`disconnect`](Self::disconnect) and [`reconnect`](Self::reconnect) simulate losing and
/// regaining the subscription: meanwhile every listener is unsubscribed and `publish` fails.
///
/// ```
/// use std::sync::Arc;
/// use jwt_exchange::store::{Invalidation, Invalidator, LocalInvalidator};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let bus = LocalInvalidator::new();
/// bus.publish(&Invalidation::All).await.unwrap();
/// bus.disconnect();
/// assert!(bus.publish(&Invalidation::All).await.is_err());
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct LocalInvalidator {
    inner: Arc<Mutex<LocalBus>>,
}

#[derive(Debug, Default)]
struct LocalBus {
    next: u64,
    listeners: Vec<(u64, InvalidationListener)>,
    disconnected: bool,
}

impl LocalInvalidator {
    /// A bus with no listener, connected.
    pub fn new() -> Self {
        LocalInvalidator::default()
    }

    /// Unsubscribes every listener; `publish` fails until [`reconnect`](Self::reconnect).
    pub fn disconnect(&self) {
        let listeners = {
            let mut bus = self.lock();
            bus.disconnected = true;
            bus.listeners.clone()
        };
        for (_, l) in listeners {
            l.unsubscribed();
        }
    }

    /// Subscribes every listener again.
    pub fn reconnect(&self) {
        let listeners = {
            let mut bus = self.lock();
            bus.disconnected = false;
            bus.listeners.clone()
        };
        for (_, l) in listeners {
            l.subscribed();
        }
    }

    /// Number of listening caches.
    pub fn listeners(&self) -> usize {
        self.lock().listeners.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LocalBus> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Invalidator for LocalInvalidator {
    async fn publish(&self, invalidation: &Invalidation) -> Result<(), StoreError> {
        let listeners = {
            let bus = self.lock();
            if bus.disconnected {
                return Err(StoreError::unavailable(
                    "local invalidation bus disconnected",
                ));
            }
            bus.listeners.clone()
        };
        for (_, l) in listeners {
            l.invalidate(invalidation);
        }
        Ok(())
    }

    fn listen(&self, listener: InvalidationListener) -> ListenGuard {
        struct Unregister(Arc<Mutex<LocalBus>>, u64);
        impl Drop for Unregister {
            fn drop(&mut self) {
                let mut bus = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                bus.listeners.retain(|(k, _)| *k != self.1);
            }
        }
        let (key, connected) = {
            let mut bus = self.lock();
            bus.next += 1;
            let key = bus.next;
            bus.listeners.push((key, listener.clone()));
            (key, !bus.disconnected)
        };
        if connected {
            listener.subscribed();
        }
        ListenGuard::on_drop(Unregister(Arc::clone(&self.inner), key))
    }
}
