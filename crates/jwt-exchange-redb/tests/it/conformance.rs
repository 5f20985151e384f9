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
