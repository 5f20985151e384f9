//! [`CachedStore`]: an optional, bounded in-process cache in front of a shared store, kept
//! coherent across instances by invalidation messages. The rules are on [`CachedStore`]; each
//! is tested in `tests.rs`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::session::{Session, SessionId};
use crate::store::{SessionStore, StoreError};

mod entries;
mod invalidate;
#[cfg(test)]
mod tests;

use entries::{Entries, Lookup};
pub use invalidate::{
    EchoHeartbeat, Invalidation, InvalidationListener, Invalidator, ListenGuard, LocalInvalidator,
};

/// Log target of near-cache events.
const TARGET: &str = "jwt_exchange::store::near_cache";

/// Options of a [`CachedStore`].
///
/// ```
/// use std::time::Duration;
/// use jwt_exchange::store::NearCacheConfig;
///
/// let config = NearCacheConfig::default()
///     .with_max_entries(50_000)
///     .with_max_age(Duration::from_secs(30));
/// assert_eq!(config.max_entries, 50_000);
/// assert_eq!(NearCacheConfig::default().max_age, Duration::from_secs(60));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct NearCacheConfig {
    /// Most sessions kept in memory; beyond it the least recently used are evicted. Each
    /// costs about 1 KiB for a typical session (see [`CachedStore`]). `0` caches nothing.
    /// Defaults to 10 000.
    pub max_entries: usize,
    /// Longest time an entry is served without reading the store again: the bound on
    /// staleness if an invalidation message is lost while the subscription looks healthy.
    /// Defaults to 60 s.
    pub max_age: Duration,
    /// The clock entries are aged and expired with. Defaults to [`SystemClock`].
    pub clock: Arc<dyn Clock>,
}

impl Default for NearCacheConfig {
    fn default() -> Self {
        NearCacheConfig {
            max_entries: 10_000,
            max_age: Duration::from_secs(60),
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for NearCacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NearCacheConfig")
            .field("max_entries", &self.max_entries)
            .field("max_age", &self.max_age)
            .field("clock", &self.clock)
            .finish()
    }
}

impl NearCacheConfig {
    /// Sets [`max_entries`](Self::max_entries).
    #[must_use]
    pub fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// Sets [`max_age`](Self::max_age).
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Sets [`clock`](Self::clock).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// Counters of a [`CachedStore`] since it was built, and its current state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearCacheStats {
    /// `get`s answered from memory.
    pub hits: u64,
    /// `get`s that read the store while subscribed (not cached, expired, or too old).
    pub misses: u64,
    /// `get`s that read the store because the cache was not subscribed.
    pub bypassed: u64,
    /// Entries evicted to stay within `max_entries`.
    pub evictions: u64,
    /// Invalidation messages applied (received, and local revocations).
    pub invalidations: u64,
    /// Whole-cache flushes (subscription lost or re-established, `Invalidation::All`).
    pub flushes: u64,
    /// Sessions cached now.
    pub entries: usize,
    /// Whether the invalidation subscription is live (entries are served).
    pub subscribed: bool,
}

/// A [`SessionStore`] wrapper that keeps recently used sessions in memory and drops them when
/// any instance revokes them.
///
/// With a shared store (Redis, PostgreSQL) every `authenticate` is one network round trip.
/// A near-cache answers repeated reads of the same session from memory instead; revocations
/// stay effective everywhere because every `delete` / `delete_subject` publishes an
/// [`Invalidation`] over an [`Invalidator`] before it returns, and every instance's cache
/// drops the entry when the message arrives.
///
/// * **Bounded**: at most [`NearCacheConfig::max_entries`] sessions (CLOCK eviction, an
///   approximation of LRU, per shard), each costing about
///   [`MemoryStore::approx_bytes_per_session`](crate::store::MemoryStore::approx_bytes_per_session)
///   plus ~150 bytes of table: about 1 KiB for a typical session.
/// * **Never past expiry**: an entry is not served at or after its session's `expires_at`
///   (decided from memory, without a round trip).
/// * **Bounded age**: an entry older than [`NearCacheConfig::max_age`] is read again from the
///   store, so a lost message cannot keep a revoked session alive for longer than that.
/// * **Only while subscribed**: entries are served and added only while the transport reports
///   a live subscription; the cache is flushed when it is lost and again when it is
///   re-established (messages may have been missed), and bypassed — every read goes to the
///   store — in between.
/// * **Revocations publish before returning**: `delete` and `delete_subject` drop the local
///   entries, then publish (even when nothing was found), then return. If publishing fails,
///   they fail with [`StoreError::Unavailable`] although the store deleted the records: the
///   caller must not believe the revocation is effective everywhere, and retrying is safe
///   (deleting again finds nothing and publishes again).
/// * **No stale fill**: a read that raced with an invalidation is returned but not cached
///   (every invalidation moves an epoch; an insert only happens if the epoch is unchanged
///   since the read started, checked under the entry's lock).
/// * `create` caches the new session; a `get` miss reads the store and caches the result;
///   absent sessions are never cached (no negative caching). `list_subject`, `claim_jti`,
///   `ping` and `count` always go to the store; `sweep` also drops expired entries.
///
/// Staleness, in short: a revocation on another instance takes effect here when its message
/// arrives (microseconds to a few milliseconds after the revoking call returns on a local
/// network); if a message is lost while the subscription seems healthy, after at most
/// [`NearCacheConfig::max_age`]; if the subscription is lost, as soon as the transport notices
/// (a closed connection at once, a silent partition within two heartbeats).
///
/// A cached `get` needs neither the store nor the network: while the store is unreachable but
/// the subscription still looks alive, cached sessions keep authenticating. That is safe
/// because nobody can revoke through an unreachable store, and a revocation through a store
/// this instance cannot reach still arrives over a live subscription.
///
/// ```
/// use std::sync::Arc;
/// use jwt_exchange::session::{Session, SessionId};
/// use jwt_exchange::store::{CachedStore, LocalInvalidator, MemoryStore, NearCacheConfig, SessionStore};
/// use jwt_exchange::MockClock;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let clock = MockClock::at_unix(1_000);
/// let bus = LocalInvalidator::new();
/// let store = CachedStore::new(
///     MemoryStore::new(Arc::new(clock.clone())),
///     Arc::new(bus.clone()),
///     NearCacheConfig::default().with_clock(Arc::new(clock.clone())),
/// );
/// let s = Session::new(SessionId::generate(), "https://idp", "alice", 1_000, 1_060);
/// store.create(&s).await?;                    // cached
/// assert_eq!(store.get(&s.id).await?, Some(s.clone()));
/// assert_eq!(store.stats().hits, 1);
/// assert!(store.delete(&s.id).await?);         // publishes before returning
/// assert_eq!(store.get(&s.id).await?, None);
/// # Ok::<(), jwt_exchange::StoreError>(())
/// # }).unwrap();
/// ```
pub struct CachedStore<S> {
    inner: S,
    shared: Arc<Shared>,
    invalidator: Arc<dyn Invalidator>,
    _listening: ListenGuard,
}

impl<S: fmt::Debug> fmt::Debug for CachedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedStore")
            .field("inner", &self.inner)
            .field("invalidator", &self.invalidator)
            .field("max_entries", &self.shared.max_entries)
            .field("max_age", &self.shared.max_age)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<S> CachedStore<S> {
    /// Wraps `inner`; starts listening on `invalidator` at once. Until the invalidator reports
    /// a subscription, every read goes to `inner` (see
    /// [`wait_subscribed`](Self::wait_subscribed)). Dropping the store stops listening.
    ///
    /// Every instance sharing `inner`'s data must use an invalidator on the same channel, and
    /// every revocation must go through a `CachedStore` (a record deleted behind its back
    /// stays cached for up to `max_age`).
    pub fn new(inner: S, invalidator: Arc<dyn Invalidator>, config: NearCacheConfig) -> Self {
        let (subscribed, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            entries: Entries::new(config.max_entries),
            state: AtomicU64::new(0),
            subscribed,
            clock: config.clock,
            max_age: config.max_age,
            max_entries: config.max_entries,
            counters: Counters::default(),
        });
        let listening = invalidator.listen(InvalidationListener {
            shared: Arc::clone(&shared),
        });
        CachedStore {
            inner,
            shared,
            invalidator,
            _listening: listening,
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Whether the invalidation subscription is live (entries are served).
    pub fn is_subscribed(&self) -> bool {
        self.shared.is_subscribed()
    }

    /// Waits until the subscription is live, at most `timeout`; whether it is.
    pub async fn wait_subscribed(&self, timeout: Duration) -> bool {
        let mut rx = self.shared.subscribed.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Counters and state.
    pub fn stats(&self) -> NearCacheStats {
        let c = &self.shared.counters;
        NearCacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            bypassed: c.bypassed.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            invalidations: c.invalidations.load(Ordering::SeqCst),
            flushes: c.flushes.load(Ordering::SeqCst),
            entries: self.shared.entries.len(),
            subscribed: self.is_subscribed(),
        }
    }

    /// Drops every cached entry (the store is untouched).
    pub fn clear(&self) {
        self.shared.invalidate(&Invalidation::All);
    }

    /// Drops local entries, then publishes `invalidation`; `Err` if publishing failed.
    async fn announce(&self, invalidation: Invalidation) -> Result<(), StoreError> {
        self.shared.invalidate(&invalidation);
        self.invalidator
            .publish(&invalidation)
            .await
            .inspect_err(|e| {
                tracing::warn!(
                    target: TARGET,
                    error = %e,
                    source = ?std::error::Error::source(e).map(ToString::to_string),
                    "the invalidation of a revocation could not be published"
                );
            })
    }
}

#[async_trait::async_trait]
impl<S: SessionStore> SessionStore for CachedStore<S> {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        self.create_shared(Arc::new(session.clone())).await
    }

    async fn create_shared(&self, session: Arc<Session>) -> Result<(), StoreError> {
        let state = self.shared.state();
        let at = self.shared.clock.now();
        self.inner.create_shared(Arc::clone(&session)).await?;
        self.shared.fill(state, at, session);
        Ok(())
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self
            .get_shared(id)
            .await?
            .map(|s| Arc::try_unwrap(s).unwrap_or_else(|s| (*s).clone())))
    }

    async fn get_shared(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        // Read before the cache and the store: an invalidation after this point changes the
        // state, and `fill` then refuses to cache what the store returns.
        let state = self.shared.state();
        let at = self.shared.clock.now();
        if let Some(answer) = self.get_now(id) {
            return answer;
        }
        let c = &self.shared.counters;
        if subscribed(state) {
            c.misses.fetch_add(1, Ordering::Relaxed);
        } else {
            c.bypassed.fetch_add(1, Ordering::Relaxed);
        }
        let found = self.inner.get_shared(id).await?;
        if let Some(s) = &found {
            self.shared.fill(state, at, Arc::clone(s));
        }
        Ok(found)
    }

    /// A hit (or a cached session found expired) answers at once; anything else is left to
    /// `get_shared`, which counts it.
    fn get_now(&self, id: &SessionId) -> Option<Result<Option<Arc<Session>>, StoreError>> {
        if !self.shared.is_subscribed() {
            return None;
        }
        let at = self.shared.clock.now();
        match self.shared.entries.lookup(id, at, self.shared.max_age) {
            Lookup::Hit(s) => {
                self.shared.counters.hits.fetch_add(1, Ordering::Relaxed);
                Some(Ok(Some(s)))
            }
            Lookup::Expired => Some(Ok(None)),
            Lookup::Miss | Lookup::TooOld => None,
        }
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        // Announced even when the store answered an error: the delete may have happened (a
        // timeout after the script ran), and a needless invalidation costs only a cache miss,
        // whereas a missing one leaves other instances serving the session until `max_age`.
        let deleted = self.inner.delete(id).await;
        let announced = self.announce(Invalidation::Session(id.clone())).await;
        let deleted = deleted?;
        announced?;
        Ok(deleted)
    }

    async fn delete_subject(&self, subject: &str) -> Result<usize, StoreError> {
        // As `delete`: a partial failure (some buckets done) is announced too.
        let deleted = self.inner.delete_subject(subject).await;
        let announced = self
            .announce(Invalidation::Subject(subject.to_owned()))
            .await;
        let deleted = deleted?;
        announced?;
        Ok(deleted)
    }

    async fn list_subject(&self, subject: &str) -> Result<Vec<Session>, StoreError> {
        self.inner.list_subject(subject).await
    }

    async fn sweep(&self) -> Result<usize, StoreError> {
        self.shared
            .entries
            .remove_expired(self.shared.clock.unix_seconds());
        self.inner.sweep().await
    }

    async fn claim_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.inner.claim_jti(issuer, jti, expires_at).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn count(&self) -> Result<Option<u64>, StoreError> {
        self.inner.count().await
    }
}

/// Whether a state word has the subscribed bit.
fn subscribed(state: u64) -> bool {
    state & 1 == 1
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    bypassed: AtomicU64,
    evictions: AtomicU64,
    invalidations: AtomicU64,
    flushes: AtomicU64,
}

/// The cache proper, shared with the [`InvalidationListener`].
pub(crate) struct Shared {
    entries: Entries,
    /// `epoch << 1 | subscribed`. Every invalidation and every subscription change moves the
    /// epoch; an entry read under one state word is only cached if the word is unchanged.
    state: AtomicU64,
    subscribed: watch::Sender<bool>,
    clock: Arc<dyn Clock>,
    max_age: Duration,
    max_entries: usize,
    counters: Counters,
}

impl Shared {
    fn state(&self) -> u64 {
        self.state.load(Ordering::SeqCst)
    }

    fn is_subscribed(&self) -> bool {
        subscribed(self.state())
    }

    /// Caches `session`, read from the store at `at` under `state`, unless something changed
    /// since or it is already expired.
    fn fill(&self, state: u64, at: std::time::SystemTime, session: Arc<Session>) {
        if !subscribed(state) || session.is_expired(crate::clock::unix_seconds(at)) {
            return;
        }
        let inserted = self
            .entries
            .insert_if(session, at, || self.state() == state);
        if inserted == Some(true) {
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Moves the epoch and sets the subscribed bit; returns the new word.
    fn advance(&self, subscribed: Option<bool>) -> u64 {
        let mut now = 0;
        let _ = self
            .state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                let bit = subscribed.map_or(s & 1, u64::from);
                now = ((s >> 1).wrapping_add(1) << 1) | bit;
                Some(now)
            });
        now
    }

    fn flush(&self) {
        self.entries.clear();
        self.counters.flushes.fetch_add(1, Ordering::SeqCst);
    }

    fn set_subscribed(&self) {
        // Off, flush, on: nothing cached before this moment is ever served after it.
        self.advance(Some(false));
        self.flush();
        self.advance(Some(true));
        self.subscribed.send_replace(true);
        tracing::debug!(target: TARGET, "invalidation subscription live; near-cache enabled");
    }

    fn set_unsubscribed(&self) {
        self.advance(Some(false));
        self.flush();
        if self.subscribed.send_replace(false) {
            tracing::warn!(
                target: TARGET,
                "invalidation subscription lost; near-cache flushed and bypassed until it is back"
            );
        }
    }

    fn invalidate(&self, m: &Invalidation) {
        // Epoch first, then removal: a concurrent fill either sees the new epoch or inserts
        // before the removal takes its shard's lock.
        self.advance(None);
        match m {
            Invalidation::Session(id) => {
                self.entries.remove(id);
            }
            Invalidation::Subject(subject) => {
                self.entries.remove_subject(subject);
            }
            Invalidation::All => self.flush(),
        }
        // Counted once applied, so an observer of the counter sees the entries gone.
        self.counters.invalidations.fetch_add(1, Ordering::SeqCst);
    }
}
