//! The shared store conformance suite with a mock clock.

use std::sync::Arc;

use jwt_exchange::store::SessionStore;
use jwt_exchange::MockClock;
use jwt_exchange_redb::RedbStore;
use jwt_exchange_testkit::store_conformance;

use crate::common::TempDir;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_store_conformance() {
    let dir = TempDir::new();
    let clock = MockClock::at_unix(1_700_000_000);
    let store: Arc<dyn SessionStore> = Arc::new(
        RedbStore::open(dir.file("sessions.redb"), Arc::new(clock.clone())).expect("open"),
    );
    store_conformance::run_all(store, &clock).await;
}

#[tokio::test]
async fn redb_store_conformance_single_thread() {
    let dir = TempDir::new();
    let clock = MockClock::at_unix(1_700_000_000);
    let store: Arc<dyn SessionStore> = Arc::new(
        RedbStore::open(dir.file("sessions.redb"), Arc::new(clock.clone())).expect("open"),
    );
    store_conformance::run_all(store, &clock).await;
}

/// `count` is the number of stored sessions, expired ones not yet swept included, and follows
/// creates, deletes, sweeps and a reopen of the file.
#[tokio::test]
async fn count_follows_the_stored_sessions() {
    use jwt_exchange::session::{Session, SessionId};

    let dir = TempDir::new();
    let clock = MockClock::at_unix(1_700_000_000);
    let open =
        || RedbStore::open(dir.file("sessions.redb"), Arc::new(clock.clone())).expect("open");
    let store = open();
    assert_eq!(store.count().await.expect("count"), Some(0));
    let now = 1_700_000_000;
    let mut ids = Vec::new();
    for i in 0..5 {
        let s = Session::new(
            SessionId::generate(),
            "iss",
            format!("u{i}"),
            now,
            now + 10 * (i + 1),
        );
        store.create(&s).await.expect("create");
        ids.push(s.id);
    }
    assert_eq!(store.count().await.expect("count"), Some(5));
    assert!(store.delete(&ids[4]).await.expect("delete"));
    assert_eq!(store.count().await.expect("count"), Some(4));
    // Expired but not swept: still stored, still counted; the sweep removes them.
    clock.advance(std::time::Duration::from_secs(25));
    assert_eq!(store.count().await.expect("count"), Some(4));
    assert_eq!(store.sweep().await.expect("sweep"), 2);
    assert_eq!(store.count().await.expect("count"), Some(2));
    drop(store);
    assert_eq!(open().count().await.expect("count"), Some(2));
}

/// A sweep larger than one transaction's batch (1,024 sessions) removes every expired session,
/// counts each once, and leaves the live ones.
#[tokio::test]
async fn a_sweep_over_several_batches_removes_everything_due() {
    use jwt_exchange::session::{Session, SessionId};

    let dir = TempDir::new();
    let clock = MockClock::at_unix(1_700_000_000);
    let store = RedbStore::open(dir.file("sessions.redb"), Arc::new(clock.clone())).expect("open");
    let now = 1_700_000_000;
    let expiring = 2 * 1024 + 5;
    for i in 0..expiring + 3 {
        let ttl = if i < expiring { 10 } else { 3600 };
        let s = Session::new(
            SessionId::generate(),
            "iss",
            format!("u{i}"),
            now,
            now + ttl,
        );
        store.create(&s).await.expect("create");
    }
    clock.advance(std::time::Duration::from_secs(10));
    assert_eq!(store.sweep().await.expect("sweep"), expiring);
    assert_eq!(store.count().await.expect("count"), Some(3));
    assert_eq!(store.sweep().await.expect("sweep again"), 0);
}
