//! The server goes away (connections reset, or silently black-holed) and comes back: every
//! operation fails with `Unavailable` within the command timeout, nothing is half-created,
//! and the same store object recovers on its own.

use std::time::{Duration, Instant};

use jwt_exchange::store::{SessionStore, StoreError};
use jwt_exchange_redis::{ConnectError, RedisStore, RedisStoreConfig};
use jwt_exchange_testkit::proxy::ProxyMode;

use crate::common::{self, proxied, session};

/// Asserts that every operation fails with `Unavailable`, each within `limit`.
async fn assert_all_unavailable(store: &RedisStore, limit: Duration) {
    let s = session("outage", 600);
    let started = Instant::now();
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
    ];
    for (op, r) in results {
        assert!(
            matches!(r, Err(StoreError::Unavailable(_))),
            "{op} during the outage: {r:?}"
        );
    }
    assert!(
        started.elapsed() < limit * 8,
        "eight operations took {:?}",
        started.elapsed()
    );
}

/// Polls `ping` until it succeeds.
async fn wait_until_recovered(store: &RedisStore) -> Duration {
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
    let Some(url) = common::redis_url().await else {
        return;
    };
    let (proxy, proxied) = proxied(&url).await;
    let config = common::config();
    let timeout = config.command_timeout;
    let store = RedisStore::connect(&proxied, config)
        .await
        .expect("connect");
    let before = session("before", 600);
    store.create(&before).await.expect("create");

    proxy.set_mode(ProxyMode::Refuse);
    assert_all_unavailable(&store, timeout + Duration::from_millis(500)).await;

    proxy.set_mode(ProxyMode::Forward);
    let took = wait_until_recovered(&store).await;
    println!("recovered {took:?} after the server came back");
    assert_eq!(
        store.get(&before.id).await.expect("get after recovery"),
        Some(before.clone())
    );
    let after = session("after", 600);
    store.create(&after).await.expect("create after recovery");
    common::cleanup(&store, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_partition_times_out_then_recovers() {
    let Some(url) = common::redis_url().await else {
        return;
    };
    let (proxy, proxied) = proxied(&url).await;
    let config = common::config().with_command_timeout(Duration::from_millis(500));
    let store = RedisStore::connect(&proxied, config)
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
    // A create during the partition fails and leaves nothing behind.
    let lost = session("partition", 600);
    assert!(store.create(&lost).await.is_err());

    proxy.set_mode(ProxyMode::Forward);
    wait_until_recovered(&store).await;
    assert_eq!(store.get(&s.id).await.expect("get"), Some(s.clone()));
    assert_eq!(store.get(&lost.id).await.expect("get"), None);
    common::cleanup(&store, &url).await;
}

#[tokio::test]
async fn unreachable_at_start_and_bad_config() {
    let Some(url) = common::redis_url().await else {
        return;
    };
    let (proxy, proxied) = proxied(&url).await;
    proxy.set_mode(ProxyMode::Refuse);
    let config = common::config().with_connect_timeout(Duration::from_secs(1));
    let started = Instant::now();
    let err = RedisStore::connect(&proxied, config)
        .await
        .expect_err("nothing answers");
    assert!(
        matches!(err, ConnectError::Store(StoreError::Unavailable(_))),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    let err = RedisStore::connect("http://example.invalid", RedisStoreConfig::default())
        .await
        .expect_err("not a redis url");
    assert!(matches!(err, ConnectError::InvalidUrl(_)), "{err:?}");
    let err = RedisStore::connect(&url, RedisStoreConfig::default().with_key_prefix("{x}"))
        .await
        .expect_err("bad prefix");
    assert!(
        matches!(err, ConnectError::InvalidKeyPrefix { .. }),
        "{err:?}"
    );
}
