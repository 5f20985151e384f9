//! The shared store conformance suite, in real time and with a mock clock (the store compares
//! expiry with its injected clock, never the database's).

use std::sync::Arc;

use jwt_exchange::store::SessionStore;
use jwt_exchange::MockClock;
use jwt_exchange_postgres::PostgresStore;
use jwt_exchange_testkit::store_conformance::{self, RealTime};

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_conformance_real_time() {
    let Some((store, url)) = common::store().await else {
        return;
    };
    let shared: Arc<dyn SessionStore> = Arc::new(store.clone());
    store_conformance::run_all(shared, &RealTime).await;
    common::cleanup(&store, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_conformance_mock_clock() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let clock = MockClock::at_unix(1_700_000_000);
    let store = PostgresStore::connect(&url, common::config().with_clock(Arc::new(clock.clone())))
        .await
        .expect("connect");
    let shared: Arc<dyn SessionStore> = Arc::new(store.clone());
    store_conformance::run_all(shared, &clock).await;
    common::cleanup(&store, &url).await;
}

/// Two store objects (two instances of a service) on one schema see each other's sessions
/// and revocations at once.
#[tokio::test]
async fn two_instances_share_sessions_and_revocations() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let config = common::config();
    let a = PostgresStore::connect(&url, config.clone())
        .await
        .expect("instance a");
    let b = PostgresStore::connect(&url, config)
        .await
        .expect("instance b");
    let s = common::session("shared", 600);
    a.create(&s).await.expect("create on a");
    assert_eq!(b.get(&s.id).await.expect("get on b"), Some(s.clone()));
    assert!(
        b.create(&s).await.is_err(),
        "never overwrites across instances"
    );
    assert_eq!(b.delete_subject(&s.subject).await.expect("revoke on b"), 1);
    assert_eq!(a.get(&s.id).await.expect("get on a"), None);
    common::cleanup(&a, &url).await;
}

/// Disk per session, for docs/operations.md:
/// `cargo test -p jwt-exchange-postgres --test it sizing -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn sizing() {
    const N: i64 = 10_000;
    let Some((store, url)) = common::store().await else {
        return;
    };
    let now = common::now();
    for i in 0..N {
        let s = jwt_exchange_testkit::store_conformance::typical_session(
            &format!("user{}@example.com", i % 1000),
            now,
        );
        store.create(&s).await.expect("create");
    }
    let schema = &store.config().schema;
    let db = common::raw(&url).await;
    db.batch_execute(&format!("VACUUM ANALYZE \"{schema}\".sessions"))
        .await
        .expect("vacuum");
    let row = db
        .query_one(
            &format!(
                "SELECT pg_table_size('\"{schema}\".sessions'), \
                 pg_indexes_size('\"{schema}\".sessions')"
            ),
            &[],
        )
        .await
        .expect("sizes");
    let (table, indexes): (i64, i64) = (row.get(0), row.get(1));
    println!(
        "postgres: {} bytes per session (table {} + indexes {})",
        (table + indexes) / N,
        table / N,
        indexes / N
    );
    common::cleanup(&store, &url).await;
}
