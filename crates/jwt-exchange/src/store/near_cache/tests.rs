//! The near-cache rules, with a [`MockClock`], a shared [`MemoryStore`] as "the network
//! store", and in-process invalidators.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::*;
use crate::clock::MockClock;
use crate::store::MemoryStore;

const T0: i64 = 1_700_000_000;

/// Counts reads and can hold them until released, to stage races.
#[derive(Debug)]
struct Remote {
    store: MemoryStore,
    gets: AtomicUsize,
    gate: Mutex<Option<Arc<Notify>>>,
}

impl Remote {
    fn new(clock: &MockClock) -> Arc<Self> {
        Arc::new(Remote {
            store: MemoryStore::new(Arc::new(clock.clone())),
            gets: AtomicUsize::new(0),
            gate: Mutex::new(None),
        })
    }

    fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl SessionStore for Remote {
    async fn create(&self, s: &Session) -> Result<(), StoreError> {
        self.store.create(s).await
    }
    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let found = self.store.get(id).await;
        self.gets.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.lock().expect("gate").clone();
        if let Some(gate) = gate {
            gate.notified().await;
        }
        found
    }
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.store.delete(id).await
    }
    async fn delete_subject(&self, subject: &str) -> Result<usize, StoreError> {
        self.store.delete_subject(subject).await
    }
    async fn list_subject(&self, subject: &str) -> Result<Vec<Session>, StoreError> {
        self.store.list_subject(subject).await
    }
    async fn sweep(&self) -> Result<usize, StoreError> {
        self.store.sweep().await
    }
    async fn claim_jti(&self, i: &str, j: &str, e: i64) -> Result<bool, StoreError> {
        self.store.claim_jti(i, j, e).await
    }
}

/// An invalidator the test drives by hand: it records what is published and hands the
/// listener to the test.
#[derive(Debug, Default, Clone)]
struct Manual {
    listener: Arc<Mutex<Option<InvalidationListener>>>,
    published: Arc<Mutex<Vec<Invalidation>>>,
}

impl Manual {
    fn listener(&self) -> InvalidationListener {
        self.listener
            .lock()
            .expect("lock")
            .clone()
            .expect("listening")
    }
}

#[async_trait::async_trait]
impl Invalidator for Manual {
    async fn publish(&self, m: &Invalidation) -> Result<(), StoreError> {
        self.published.lock().expect("lock").push(m.clone());
        Ok(())
    }
    fn listen(&self, listener: InvalidationListener) -> ListenGuard {
        *self.listener.lock().expect("lock") = Some(listener);
        ListenGuard::on_drop(())
    }
}

fn config(clock: &MockClock) -> NearCacheConfig {
    NearCacheConfig::default().with_clock(Arc::new(clock.clone()))
}

fn session(identity: &str, ttl: i64) -> Session {
    Session::new(SessionId::generate(), "https://idp", identity, T0, T0 + ttl)
}

/// Two instances over one remote store and one bus.
fn pair(clock: &MockClock) -> (Arc<Remote>, LocalInvalidator, [CachedStore<Arc<Remote>>; 2]) {
    let remote = Remote::new(clock);
    let bus = LocalInvalidator::new();
    let mk = || CachedStore::new(Arc::clone(&remote), Arc::new(bus.clone()), config(clock));
    let stores = [mk(), mk()];
    (remote, bus, stores)
}

#[tokio::test]
async fn hits_need_no_store_read_and_revocation_reaches_every_instance() {
    let clock = MockClock::at_unix(T0);
    let (remote, bus, [a, b]) = pair(&clock);
    assert_eq!(bus.listeners(), 2);
    let s = session("alice", 600);
    a.create(&s).await.expect("create");

    // Created on a: cached there.
    assert_eq!(a.get(&s.id).await.expect("get"), Some(s.clone()));
    assert_eq!(remote.gets(), 0);
    // b reads the store once, then serves from memory.
    for _ in 0..5 {
        assert_eq!(b.get(&s.id).await.expect("get"), Some(s.clone()));
    }
    assert_eq!(remote.gets(), 1);
    assert_eq!(b.stats().hits, 4);
    assert_eq!(b.stats().misses, 1);

    // Revoked on b: gone on a without a store read being needed to learn it.
    assert!(b.delete(&s.id).await.expect("delete"));
    assert_eq!(a.stats().entries, 0);
    assert_eq!(a.get(&s.id).await.expect("get"), None);
    assert_eq!(b.get(&s.id).await.expect("get"), None);

    // By subject.
    let s1 = session("bob", 600);
    let s2 = session("bob", 600);
    let other = session("carol", 600);
    for x in [&s1, &s2, &other] {
        a.create(x).await.expect("create");
        b.get(&x.id).await.expect("get");
    }
    assert_eq!(b.stats().entries, 3);
    assert_eq!(a.delete_subject(&s1.subject).await.expect("revoke"), 2);
    assert_eq!(b.stats().entries, 1);
    assert_eq!(b.get(&s1.id).await.expect("get"), None);
    assert_eq!(b.get(&other.id).await.expect("get"), Some(other.clone()));
}

#[tokio::test]
async fn revocations_publish_before_returning_even_when_nothing_was_found() {
    let clock = MockClock::at_unix(T0);
    let manual = Manual::default();
    let store = CachedStore::new(
        MemoryStore::new(Arc::new(clock.clone())),
        Arc::new(manual.clone()),
        config(&clock),
    );
    manual.listener().subscribed();
    let id = SessionId::generate();
    assert!(!store.delete(&id).await.expect("delete"));
    assert_eq!(store.delete_subject("jwt:x:y").await.expect("revoke"), 0);
    assert_eq!(
        *manual.published.lock().expect("lock"),
        vec![
            Invalidation::Session(id),
            Invalidation::Subject("jwt:x:y".into())
        ]
    );
}

/// Deletes, then answers an error (a timeout after the script ran).
#[derive(Debug)]
struct FailsAfterDeleting(MemoryStore);

#[async_trait::async_trait]
impl SessionStore for FailsAfterDeleting {
    async fn create(&self, s: &Session) -> Result<(), StoreError> {
        self.0.create(s).await
    }
    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.0.get(id).await
    }
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.0.delete(id).await?;
        Err(StoreError::unavailable(std::io::Error::other("timed out")))
    }
    async fn delete_subject(&self, subject: &str) -> Result<usize, StoreError> {
        self.0.delete_subject(subject).await?;
        Err(StoreError::unavailable(std::io::Error::other("timed out")))
    }
    async fn list_subject(&self, subject: &str) -> Result<Vec<Session>, StoreError> {
        self.0.list_subject(subject).await
    }
    async fn sweep(&self) -> Result<usize, StoreError> {
        self.0.sweep().await
    }
    async fn claim_jti(&self, i: &str, j: &str, e: i64) -> Result<bool, StoreError> {
        self.0.claim_jti(i, j, e).await
    }
}

#[tokio::test]
async fn a_revocation_the_store_failed_is_announced_all_the_same() {
    let clock = MockClock::at_unix(T0);
    let manual = Manual::default();
    let store = CachedStore::new(
        FailsAfterDeleting(MemoryStore::new(Arc::new(clock.clone()))),
        Arc::new(manual.clone()),
        config(&clock),
    );
    manual.listener().subscribed();
    let id = SessionId::generate();
    assert!(
        store.delete(&id).await.is_err(),
        "the store's error is returned"
    );
    assert!(store.delete_subject("jwt:x:y").await.is_err());
    assert_eq!(
        *manual.published.lock().expect("lock"),
        vec![
            Invalidation::Session(id),
            Invalidation::Subject("jwt:x:y".into())
        ],
        "other instances forget what may have been deleted"
    );
}

#[tokio::test]
async fn a_failed_publish_fails_the_revocation_and_a_retry_publishes() {
    let clock = MockClock::at_unix(T0);
    let (remote, bus, [a, b]) = pair(&clock);
    let s = session("alice", 600);
    a.create(&s).await.expect("create");
    b.get(&s.id).await.expect("get");

    // The bus is down: the delete happens in the store, but a cannot tell everyone.
    bus.disconnect();
    let r = a.delete(&s.id).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert_eq!(remote.store.get(&s.id).await.expect("get"), None);
    // b lost its subscription too, so it flushed and bypasses its cache.
    assert_eq!(b.get(&s.id).await.expect("get"), None);
    bus.reconnect();
    assert!(!a.delete(&s.id).await.expect("retry"));
}

#[tokio::test]
async fn unsubscribed_means_bypassed_and_resubscribing_flushes() {
    let clock = MockClock::at_unix(T0);
    let remote = Remote::new(&clock);
    let manual = Manual::default();
    let store = CachedStore::new(
        Arc::clone(&remote),
        Arc::new(manual.clone()),
        config(&clock),
    );
    let s = session("alice", 600);

    // Not yet subscribed: nothing is cached or served from memory.
    assert!(!store.is_subscribed());
    store.create(&s).await.expect("create");
    assert_eq!(store.stats().entries, 0);
    store.get(&s.id).await.expect("get");
    store.get(&s.id).await.expect("get");
    assert_eq!(remote.gets(), 2);
    assert_eq!(store.stats().bypassed, 2);

    let listener = manual.listener();
    listener.subscribed();
    assert!(store.wait_subscribed(Duration::from_secs(1)).await);
    store.get(&s.id).await.expect("get");
    store.get(&s.id).await.expect("get");
    assert_eq!(remote.gets(), 3, "cached after the first read");

    // The subscription drops; meanwhile another instance revokes (we miss the message).
    listener.unsubscribed();
    assert_eq!(store.stats().entries, 0, "flushed on loss");
    assert!(!store.wait_subscribed(Duration::from_millis(10)).await);
    remote.store.delete(&s.id).await.expect("delete elsewhere");
    assert_eq!(store.get(&s.id).await.expect("get"), None, "bypassed");

    // Back: a fresh, empty cache.
    let t = session("bob", 600);
    remote.store.create(&t).await.expect("create");
    store.get(&t.id).await.expect("get");
    assert_eq!(store.stats().entries, 0, "not cached while unsubscribed");
    listener.subscribed();
    let flushes = store.stats().flushes;
    store.get(&t.id).await.expect("get");
    assert_eq!(store.stats().entries, 1);
    listener.subscribed(); // a reconnect the transport reports without a loss first
    assert_eq!(
        store.stats().entries,
        0,
        "flushed on every (re)subscription"
    );
    assert_eq!(store.stats().flushes, flushes + 1);
}

#[tokio::test]
async fn garbage_messages_flush_everything() {
    let clock = MockClock::at_unix(T0);
    let manual = Manual::default();
    let store = CachedStore::new(
        MemoryStore::new(Arc::new(clock.clone())),
        Arc::new(manual.clone()),
        config(&clock),
    );
    let listener = manual.listener();
    listener.subscribed();
    for _ in 0..3 {
        store.create(&session("a", 600)).await.expect("create");
    }
    assert_eq!(store.stats().entries, 3);
    assert!(!listener.message(b"\xffnot a message"));
    assert_eq!(store.stats().entries, 0);
    let s = session("a", 600);
    store.create(&s).await.expect("create");
    assert!(listener.message(Invalidation::Session(s.id.clone()).encode().as_bytes()));
    assert_eq!(store.stats().entries, 0);
}

#[tokio::test]
async fn bounded_by_max_entries() {
    let clock = MockClock::at_unix(T0);
    let store = CachedStore::new(
        MemoryStore::new(Arc::new(clock.clone())),
        Arc::new(LocalInvalidator::new()),
        config(&clock).with_max_entries(32),
    );
    let all: Vec<Session> = (0..1_000).map(|_| session("a", 600)).collect();
    for s in &all {
        store.create(s).await.expect("create");
        assert!(store.stats().entries <= 32);
    }
    let stats = store.stats();
    assert!(stats.entries >= 24, "{stats:?}");
    assert_eq!(stats.evictions as usize, 1_000 - stats.entries);
    // Evicted sessions are still found in the store.
    for s in &all {
        assert_eq!(store.get(&s.id).await.expect("get").as_ref(), Some(s));
    }

    let none = CachedStore::new(
        MemoryStore::new(Arc::new(clock.clone())),
        Arc::new(LocalInvalidator::new()),
        config(&clock).with_max_entries(0),
    );
    none.create(&all[0]).await.expect("create");
    assert_eq!(
        none.get(&all[0].id).await.expect("get").as_ref(),
        Some(&all[0])
    );
    assert_eq!(none.stats().entries, 0);
}

#[tokio::test]
async fn never_served_past_expiry() {
    let clock = MockClock::at_unix(T0);
    let remote = Remote::new(&clock);
    let store = CachedStore::new(
        Arc::clone(&remote),
        Arc::new(LocalInvalidator::new()),
        config(&clock).with_max_age(Duration::from_secs(3600)),
    );
    let s = session("alice", 10);
    store.create(&s).await.expect("create");
    clock.advance(Duration::from_millis(9_999));
    assert_eq!(store.get(&s.id).await.expect("get"), Some(s.clone()));
    clock.advance(Duration::from_millis(1));
    assert_eq!(store.get(&s.id).await.expect("get"), None);
    assert_eq!(remote.gets(), 0, "expiry is decided from memory");
    assert_eq!(store.stats().entries, 0);

    // An already-expired record read from the store is not cached.
    let old = session("bob", 5);
    remote.store.create(&old).await.expect("create");
    store.get(&old.id).await.expect("get");
    assert_eq!(store.stats().entries, 0);

    // sweep drops expired entries too.
    let short = session("carol", 20);
    store.create(&short).await.expect("create");
    clock.advance(Duration::from_secs(10));
    assert_eq!(store.stats().entries, 1);
    store.sweep().await.expect("sweep");
    assert_eq!(store.stats().entries, 0);
}

#[tokio::test]
async fn max_age_bounds_staleness_when_a_message_is_lost() {
    let clock = MockClock::at_unix(T0);
    let remote = Remote::new(&clock);
    let store = CachedStore::new(
        Arc::clone(&remote),
        Arc::new(LocalInvalidator::new()),
        config(&clock).with_max_age(Duration::from_secs(60)),
    );
    let s = session("alice", 3600);
    store.create(&s).await.expect("create");
    // Deleted behind the cache's back (as if the invalidation message were lost).
    remote.store.delete(&s.id).await.expect("delete");
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        store.get(&s.id).await.expect("get"),
        Some(s.clone()),
        "stale, within max_age"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.get(&s.id).await.expect("get"), None);
    assert_eq!(remote.gets(), 1);

    // A live session is simply re-read and cached again.
    let t = session("bob", 3600);
    store.create(&t).await.expect("create");
    clock.advance(Duration::from_secs(61));
    assert_eq!(store.get(&t.id).await.expect("get"), Some(t.clone()));
    assert_eq!(store.get(&t.id).await.expect("get"), Some(t.clone()));
    assert_eq!(remote.gets(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_racing_with_an_invalidation_is_not_cached() {
    let clock = MockClock::at_unix(T0);
    let (remote, _bus, [a, b]) = pair(&clock);
    let a = Arc::new(a);
    let s = session("alice", 600);
    remote.store.create(&s).await.expect("create");

    // a's read has fetched the record but not returned yet when b revokes.
    let gate = Arc::new(Notify::new());
    *remote.gate.lock().expect("gate") = Some(Arc::clone(&gate));
    let reader = tokio::spawn({
        let a = Arc::clone(&a);
        let id = s.id.clone();
        async move { a.get(&id).await }
    });
    while remote.gets() == 0 {
        tokio::task::yield_now().await;
    }
    assert!(b.delete(&s.id).await.expect("delete"));
    *remote.gate.lock().expect("gate") = None;
    gate.notify_one();
    let got = reader.await.expect("join").expect("get");
    assert_eq!(
        got,
        Some(s.clone()),
        "the read itself predates the revocation"
    );
    assert_eq!(a.stats().entries, 0, "but it must not be cached");
    assert_eq!(a.get(&s.id).await.expect("get"), None);
}

#[tokio::test]
async fn dropping_the_store_stops_listening() {
    let clock = MockClock::at_unix(T0);
    let bus = LocalInvalidator::new();
    let store = CachedStore::new(
        MemoryStore::new(Arc::new(clock.clone())),
        Arc::new(bus.clone()),
        config(&clock),
    );
    assert_eq!(bus.listeners(), 1);
    drop(store);
    assert_eq!(bus.listeners(), 0);
}

#[tokio::test]
async fn get_now_answers_hits_at_once_and_leaves_the_rest_to_get_shared() {
    let clock = MockClock::at_unix(T0);
    let (remote, _bus, [a, b]) = pair(&clock);
    let s = session("alice", 60);
    a.create(&s).await.expect("create");
    // Cached on a (created there): a hit with no store read; the same `Arc` every time.
    let hit = a
        .get_now(&s.id)
        .expect("a hit")
        .expect("no error")
        .expect("a session");
    assert_eq!(*hit, s);
    assert!(Arc::ptr_eq(
        &hit,
        &a.get_now(&s.id).unwrap().unwrap().unwrap()
    ));
    assert_eq!(a.stats().hits, 2);
    // Not cached on b: no answer and nothing counted; `get_shared` reads the store and fills.
    assert!(b.get_now(&s.id).is_none());
    assert_eq!((b.stats().hits, b.stats().misses), (0, 0));
    assert_eq!(*b.get_shared(&s.id).await.expect("get").expect("found"), s);
    assert_eq!(remote.gets(), 1);
    assert!(matches!(b.get_now(&s.id), Some(Ok(Some(_)))));
    // Revoked on a: gone from b's cache, so b asks the store again (which says no).
    assert!(a.delete(&s.id).await.expect("delete"));
    assert!(b.get_now(&s.id).is_none());
    assert_eq!(b.get_shared(&s.id).await.expect("get"), None);
    // Expired while cached: answered at once, as absent.
    let short = session("bob", 5);
    a.create(&short).await.expect("create");
    clock.advance(std::time::Duration::from_secs(5));
    assert!(matches!(a.get_now(&short.id), Some(Ok(None))));
}
