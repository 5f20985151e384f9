//! The store conformance suite against [`MemoryStore`] (bare, and behind a near-cache), plus
//! the sweeper over a real runtime.

use std::sync::Arc;
use std::time::Duration;

use jwt_exchange::session::{Session, SessionId};
use jwt_exchange::store::{
    spawn_sweeper, CachedStore, LocalInvalidator, MemoryStore, NearCacheConfig, SessionStore,
};
use jwt_exchange::MockClock;
use jwt_exchange_testkit::store_conformance;

fn memory_store() -> (Arc<dyn SessionStore>, MockClock) {
    let clock = MockClock::at_unix(1_700_000_000);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
    (store, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conformance() {
    let (store, clock) = memory_store();
    store_conformance::run_all(store, &clock).await;
}

#[tokio::test]
async fn memory_store_conformance_single_thread() {
    let (store, clock) = memory_store();
    store_conformance::run_all(store, &clock).await;
}

/// A near-cache in front of the store must not change anything the suite can observe; run
/// twice, through two caches sharing one bus and one store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn near_cached_memory_store_conformance() {
    let clock = MockClock::at_unix(1_700_000_000);
    let shared = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
    let bus = LocalInvalidator::new();
    let config = NearCacheConfig::default()
        .with_max_entries(64)
        .with_clock(Arc::new(clock.clone()));
    let store: Arc<dyn SessionStore> = Arc::new(CachedStore::new(
        Arc::clone(&shared),
        Arc::new(bus.clone()),
        config.clone(),
    ));
    store_conformance::run_all(store, &clock).await;
    let other: Arc<dyn SessionStore> = Arc::new(CachedStore::new(shared, Arc::new(bus), config));
    store_conformance::run_all(other, &clock).await;
}

#[tokio::test(start_paused = true)]
async fn sweeper_reaps_expired_sessions_until_dropped() {
    let clock = MockClock::at_unix(1_000);
    let memory = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
    let store: Arc<dyn SessionStore> = memory.clone();
    let s = Session::new(SessionId::generate(), "https://idp", "alice", 1_000, 1_010);
    store.create(&s).await.expect("create");

    let sweeper = spawn_sweeper(Arc::clone(&store), Duration::from_secs(30));
    clock.advance(Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(memory.is_empty(), "the sweeper removed the expired session");

    drop(sweeper);
    store
        .create(&Session::new(
            SessionId::generate(),
            "https://idp",
            "bob",
            1_010,
            1_020,
        ))
        .await
        .expect("create");
    clock.advance(Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(memory.len(), 1, "a dropped sweeper no longer sweeps");
}
