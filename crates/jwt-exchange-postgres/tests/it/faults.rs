//! The server goes away (connections reset, or silently black-holed) and comes back: every
//! operation fails with `Unavailable` within the query timeout, nothing is half-created, and
//! the same store object recovers on its own.

use std::time::{Duration, Instant};

use jwt_exchange::store::{SessionStore, StoreError};
use jwt_exchange_postgres::{ConnectError, PostgresStore};
use jwt_exchange_testkit::proxy::ProxyMode;

use crate::common::{self, proxied, session};

async fn assert_all_unavailable(store: &PostgresStore) {
    let s = session("outage", 600);
    let results: Vec<(&str, Result<(), StoreError>)> = vec![
        ("ping", store.ping().await),
        ("create", store.create(&s).await),
        ("get", store.get(&s.id).await.map(drop)),
        ("delete", store.delete(&s.id).await.map(drop)),
        (
            "list_subject",
            store.list_subject(&s.subject).await.map(drop),
        ),
        (
            "delete_subject",
            store.delete_subject(&s.subject).await.map(drop),
        ),
        ("sweep", store.sweep().await.map(drop)),
        (
            "claim_jti",
            store
                .claim_jti("iss", "j", common::now() + 60)
                .await
                .map(drop),
        ),
        ("migrate", store.migrate().await.map(drop)),
    ];
    for (op, r) in results {
        assert!(
            matches!(r, Err(StoreError::Unavailable(_))),
            "{op} during the outage: {r:?}"
        );
    }
}

async fn wait_until_recovered(store: &PostgresStore) -> Duration {
    let started = Instant::now();
    loop {
        if store.ping().await.is_ok() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the store did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_reset_then_back() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let (proxy, proxied) = proxied(&url).await;
    let store = PostgresStore::connect(&proxied, common::config())
        .await
        .expect("connect");
    let before = session("before", 600);
    store.create(&before).await.expect("create");

    proxy.set_mode(ProxyMode::Refuse);
    let started = Instant::now();
    assert_all_unavailable(&store).await;
    println!("nine failed operations took {:?}", started.elapsed());

    proxy.set_mode(ProxyMode::Forward);
    let took = wait_until_recovered(&store).await;
    println!("recovered {took:?} after the server came back");
    assert_eq!(
        store.get(&before.id).await.expect("get after recovery"),
        Some(before.clone())
    );
    store
        .create(&session("after", 600))
        .await
        .expect("create after recovery");
    common::cleanup(&store, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_partition_times_out_then_recovers() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let (proxy, proxied) = proxied(&url).await;
    let config = common::config().with_query_timeout(Duration::from_millis(500));
    let store = PostgresStore::connect(&proxied, config)
        .await
        .expect("connect");
    let s = session("partition", 600);
    store.create(&s).await.expect("create");

    proxy.set_mode(ProxyMode::Blackhole);
    let started = Instant::now();
    let r = store.get(&s.id).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let lost = session("partition", 600);
    assert!(store.create(&lost).await.is_err());

    proxy.set_mode(ProxyMode::Forward);
    wait_until_recovered(&store).await;
    assert_eq!(store.get(&s.id).await.expect("get"), Some(s.clone()));
    assert_eq!(
        store.get(&lost.id).await.expect("get"),
        None,
        "a create that timed out before reaching the server left nothing"
    );
    common::cleanup(&store, &url).await;
}

#[tokio::test]
async fn unreachable_at_start() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let (proxy, proxied) = proxied(&url).await;
    proxy.set_mode(ProxyMode::Refuse);
    let started = Instant::now();
    let err = PostgresStore::connect(&proxied, common::config())
        .await
        .expect_err("nothing answers");
    assert!(
        matches!(err, ConnectError::Store(StoreError::Unavailable(_))),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
