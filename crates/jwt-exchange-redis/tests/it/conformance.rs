//! The shared store conformance suite, with real time (Redis expires keys on its own clock).

use std::sync::Arc;

use jwt_exchange::store::SessionStore;
use jwt_exchange_testkit::store_conformance::{self, RealTime};

use crate::common;

/// Every case applies, `sweep` included: it counts the expiry-index entries of sessions that
/// expired natively.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_conformance() {
    let Some((store, url)) = common::store().await else {
        return;
    };
    let shared: Arc<dyn SessionStore> = Arc::new(store.clone());
    store_conformance::run_all(shared, &RealTime).await;
    common::cleanup(&store, &url).await;
}
