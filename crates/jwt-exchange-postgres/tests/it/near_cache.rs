//! The near-cache over PostgreSQL `LISTEN` / `NOTIFY`: two instances on one schema,
//! revocation latency, flush on re-subscription, and the conformance suite through the cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_exchange::store::{CachedStore, Invalidation, NearCacheConfig, SessionStore};
use jwt_exchange::MockClock;
use jwt_exchange_postgres::{
    PostgresInvalidator, PostgresInvalidatorConfig, PostgresStore, PostgresStoreConfig,
};
use jwt_exchange_testkit::proxy::ProxyMode;
use jwt_exchange_testkit::store_conformance;

use crate::common::{self, proxied, session};

/// An instance on `url`, listening through `listen_url`.
async fn instance(
    url: &str,
    listen_url: &str,
    config: &PostgresStoreConfig,
    heartbeat: Duration,
) -> CachedStore<PostgresStore> {
    let store = PostgresStore::connect(url, config.clone())
        .await
        .expect("connect");
    let invalidator = PostgresInvalidator::new(
        listen_url,
        &store,
        PostgresInvalidatorConfig::new(store.invalidation_channel()).with_heartbeat(heartbeat),
    )
    .expect("invalidator");
    let cached = CachedStore::new(store, Arc::new(invalidator), NearCacheConfig::default());
    assert!(cached.wait_subscribed(Duration::from_secs(5)).await);
    cached
}

async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "not within {limit:?}");
        // Spin (tokio's timer would round every wait up to a millisecond).
        tokio::task::yield_now().await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_on_b_reaches_a_by_notify() {
    const ROUNDS: usize = 40;
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let config = common::config();
    let a = instance(&url, &url, &config, Duration::from_secs(1)).await;
    let b = instance(&url, &url, &config, Duration::from_secs(1)).await;
    let mut latencies = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let s = session("latency", 600);
        a.create(&s).await.expect("create");
        assert_eq!(b.get(&s.id).await.expect("get"), Some(s.clone()));
        let hits = a.stats().hits;
        assert_eq!(a.get(&s.id).await.expect("get"), Some(s.clone()));
        assert_eq!(a.stats().hits, hits + 1);

        let seen = a.stats().invalidations;
        if round % 2 == 0 {
            assert!(b.delete(&s.id).await.expect("revoke"));
        } else {
            assert_eq!(b.delete_subject(&s.subject).await.expect("revoke"), 1);
        }
        let returned = Instant::now();
        until(Duration::from_secs(1), || a.stats().invalidations > seen).await;
        latencies.push(returned.elapsed());
        assert_eq!(a.get(&s.id).await.expect("get"), None);
    }
    latencies.sort();
    println!(
        "postgres near-cache revocation latency after b's revoke returned ({ROUNDS} rounds): \
         median {:?}, max {:?}",
        latencies[ROUNDS / 2],
        latencies[ROUNDS - 1]
    );

    // A subject too long for a NOTIFY payload flushes everything instead.
    let huge = session(&"x".repeat(9_000), 600);
    a.create(&huge).await.expect("create");
    let flushes = a.stats().flushes;
    assert_eq!(b.delete_subject(&huge.subject).await.expect("revoke"), 1);
    until(Duration::from_secs(1), || a.stats().flushes > flushes).await;
    assert_eq!(a.stats().entries, 0);
    assert!(Invalidation::Subject(huge.subject).encode().len() > 8_000);
    common::cleanup(a.inner(), &url).await;
}

/// The heartbeat is an echo through `NOTIFY`: with two instances beating every 20 ms on one
/// channel, neither counts the heartbeats (its own or the other's) as invalidations, loses its
/// subscription or drops its cached entries, and revocations still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn echo_heartbeats_keep_a_healthy_cache() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let config = common::config();
    let beat = Duration::from_millis(20);
    let a = instance(&url, &url, &config, beat).await;
    let b = instance(&url, &url, &config, beat).await;
    store_conformance::echo_heartbeats_keep_a_healthy_cache(&a, &b, beat).await;
    common::cleanup(a.inner(), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_listen_connection_bypasses_and_relisten_flushes() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let (proxy, proxied_url) = proxied(&url).await;
    let config = common::config();
    let a = instance(&url, &proxied_url, &config, Duration::from_millis(200)).await;
    let b = instance(&url, &url, &config, Duration::from_secs(1)).await;
    for mode in [ProxyMode::Refuse, ProxyMode::Blackhole] {
        a.clear();
        let s = session("relisten", 600);
        a.create(&s).await.expect("create");
        proxy.set_mode(mode);
        let lost = until(Duration::from_secs(2), || !a.is_subscribed()).await;
        println!("{mode:?}: LISTEN connection loss noticed after {lost:?}");
        assert_eq!(a.stats().entries, 0);
        assert!(b.delete(&s.id).await.expect("revoke while a is deaf"));
        assert_eq!(a.get(&s.id).await.expect("bypassed"), None);
        proxy.set_mode(ProxyMode::Forward);
        until(Duration::from_secs(5), || a.is_subscribed()).await;
        let t = session("relisten", 600);
        b.create(&t).await.expect("create");
        assert_eq!(a.get(&t.id).await.expect("get"), Some(t.clone()));
        assert_eq!(a.stats().entries, 1);
    }
    common::cleanup(a.inner(), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn near_cached_postgres_store_conformance() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let clock = MockClock::at_unix(1_700_000_000);
    let store = PostgresStore::connect_cached(
        &url,
        common::config().with_clock(Arc::new(clock.clone())),
        NearCacheConfig::default().with_clock(Arc::new(clock.clone())),
    )
    .await
    .expect("connect_cached");
    let plain = store.inner().clone();
    let shared: Arc<dyn SessionStore> = Arc::new(store);
    store_conformance::run_all(shared, &clock).await;
    common::cleanup(&plain, &url).await;
}
