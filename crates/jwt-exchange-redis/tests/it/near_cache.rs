//! The near-cache over a real Redis: two store objects ("instances") sharing a prefix, each
//! with its own near-cache and pub/sub subscription; revocation latency; hits without a
//! network round trip; flush on re-subscription; size and expiry bounds; the conformance
//! suite through the cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_exchange::session::Session;
use jwt_exchange::store::{CachedStore, NearCacheConfig, SessionStore, StoreError};
use jwt_exchange::MockClock;
use jwt_exchange_redis::{RedisInvalidator, RedisInvalidatorConfig, RedisStore, RedisStoreConfig};
use jwt_exchange_testkit::proxy::ProxyMode;
use jwt_exchange_testkit::store_conformance::{self, RealTime};

use crate::common::{self, proxied, session};

type Cached = CachedStore<RedisStore>;

/// An instance: a store on `data_url` with a near-cache subscribed through `pubsub_url`.
async fn instance(
    data_url: &str,
    pubsub_url: &str,
    config: &RedisStoreConfig,
    near: NearCacheConfig,
    heartbeat: Duration,
) -> Cached {
    let store = RedisStore::connect(data_url, config.clone())
        .await
        .expect("connect");
    let invalidator = RedisInvalidator::connect(
        pubsub_url,
        RedisInvalidatorConfig::new(store.invalidation_channel())
            .with_heartbeat(heartbeat)
            .with_command_timeout(config.command_timeout),
    )
    .await
    .expect("invalidator");
    let cached = CachedStore::new(store, Arc::new(invalidator), near);
    assert!(
        cached.wait_subscribed(Duration::from_secs(5)).await,
        "subscribed"
    );
    cached
}

/// Waits until `done()` holds, at most `limit`; how long it took.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "not within {limit:?}");
        // Spin (tokio's timer would round every wait up to a millisecond).
        tokio::task::yield_now().await;
    }
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_on_b_reaches_a_within_one_message() {
    const ROUNDS: usize = 100;
    let Some(url) = common::redis_url().await else {
        return;
    };
    let config = common::config();
    let near = NearCacheConfig::default();
    let beat = Duration::from_secs(1);
    let a = instance(&url, &url, &config, near.clone(), beat).await;
    let b = instance(&url, &url, &config, near, beat).await;

    let mut after_return = Vec::with_capacity(ROUNDS);
    let mut whole = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let s = session("latency", 600);
        a.create(&s).await.expect("create on a");
        let hits = a.stats().hits;
        assert_eq!(a.get(&s.id).await.expect("get on a"), Some(s.clone()));
        assert_eq!(a.stats().hits, hits + 1, "served from a's cache");
        assert_eq!(b.get(&s.id).await.expect("get on b"), Some(s.clone()));

        let seen = a.stats().invalidations;
        let started = Instant::now();
        let revoked = if round % 2 == 0 {
            usize::from(b.delete(&s.id).await.expect("revoke on b"))
        } else {
            b.delete_subject(&s.subject).await.expect("revoke on b")
        };
        assert_eq!(revoked, 1);
        let returned = Instant::now();
        until(Duration::from_secs(1), || a.stats().invalidations > seen).await;
        after_return.push(returned.elapsed());
        whole.push(started.elapsed());
        assert_eq!(a.stats().entries, 0, "the entry left a's cache");
        assert_eq!(a.get(&s.id).await.expect("get on a"), None);
    }
    after_return.sort();
    whole.sort();
    println!(
        "near-cache revocation latency over {ROUNDS} rounds, measured on a after b's revoke \
         returned: median {:?}, p99 {:?}, max {:?}; from the start of b's revoke: median {:?}, \
         max {:?}",
        percentile(&after_return, 50),
        percentile(&after_return, 99),
        after_return[ROUNDS - 1],
        percentile(&whole, 50),
        whole[ROUNDS - 1],
    );
    assert!(whole[ROUNDS - 1] < Duration::from_secs(1));
    common::cleanup(a.inner(), &url).await;
}

/// A cached `get` needs no network at all: with the data connection black-holed it still
/// answers at once. That is deliberate, and safe because the cache is only trusted while the
/// separate pub/sub connection is live: a revocation elsewhere still reaches the cache (and
/// the next `get` then fails with `Unavailable` instead of serving the revoked session).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_get_needs_no_round_trip_even_with_the_data_connection_cut() {
    let Some(url) = common::redis_url().await else {
        return;
    };
    let (proxy, proxied_url) = proxied(&url).await;
    let config = common::config().with_command_timeout(Duration::from_millis(800));
    let beat = Duration::from_secs(1);
    let a = instance(
        &proxied_url,
        &url,
        &config,
        NearCacheConfig::default(),
        beat,
    )
    .await;
    let b = instance(&url, &url, &config, NearCacheConfig::default(), beat).await;
    let cached = session("outage", 600);
    let other = session("outage", 600);
    a.create(&cached).await.expect("create");
    b.create(&other).await.expect("create");

    proxy.set_mode(ProxyMode::Blackhole);
    let started = Instant::now();
    for _ in 0..1_000 {
        assert_eq!(a.get(&cached.id).await.expect("hit"), Some(cached.clone()));
    }
    let took = started.elapsed();
    println!("1000 cached gets with the data connection black-holed: {took:?}");
    assert!(took < Duration::from_millis(200), "{took:?}");
    // An uncached session really needs the (cut) connection.
    let started = Instant::now();
    let r = a.get(&other.id).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(started.elapsed() >= Duration::from_millis(700));

    // A revocation on b still reaches a through pub/sub: the revoked session is not served.
    let seen = a.stats().invalidations;
    assert!(b.delete(&cached.id).await.expect("revoke on b"));
    until(Duration::from_secs(1), || a.stats().invalidations > seen).await;
    let r = a.get(&cached.id).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");

    proxy.set_mode(ProxyMode::Forward);
    let started = Instant::now();
    while a.ping().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "no recovery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.get(&cached.id).await.expect("get"), None);
    assert_eq!(a.get(&other.id).await.expect("get"), Some(other.clone()));
    common::cleanup(b.inner(), &url).await;
}

/// The heartbeat is an echo through the channel: with two instances beating every 20 ms on
/// one channel, each sees its own and the other's heartbeats for a while, and neither counts
/// them as invalidations, loses its subscription or drops its cached entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn echo_heartbeats_keep_a_healthy_cache() {
    let Some(url) = common::redis_url().await else {
        return;
    };
    let config = common::config();
    let beat = Duration::from_millis(20);
    let a = instance(&url, &url, &config, NearCacheConfig::default(), beat).await;
    let b = instance(&url, &url, &config, NearCacheConfig::default(), beat).await;
    store_conformance::echo_heartbeats_keep_a_healthy_cache(&a, &b, beat).await;
    common::cleanup(a.inner(), &url).await;
}

/// Losing the subscription flushes and bypasses the cache; re-subscribing flushes again,
/// since messages published meanwhile were lost. Checked with a closed connection (noticed
/// at once) and a silent partition (noticed by the heartbeat).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_subscription_bypasses_and_resubscription_flushes() {
    let Some(url) = common::redis_url().await else {
        return;
    };
    let (proxy, proxied_url) = proxied(&url).await;
    let config = common::config();
    let beat = Duration::from_millis(200);
    let a = instance(
        &url,
        &proxied_url,
        &config,
        NearCacheConfig::default(),
        beat,
    )
    .await;
    let b = instance(&url, &url, &config, NearCacheConfig::default(), beat).await;

    for mode in [ProxyMode::Refuse, ProxyMode::Blackhole] {
        a.clear();
        let s = session("resubscribe", 600);
        a.create(&s).await.expect("create");
        assert_eq!(a.stats().entries, 1);

        proxy.set_mode(mode);
        let lost = until(Duration::from_secs(2), || !a.is_subscribed()).await;
        println!("{mode:?}: subscription loss noticed after {lost:?}");
        // `is_subscribed` turns false first (reads bypass the cache from then on); the flush
        // that follows in the same call may still be clearing shards.
        until(Duration::from_secs(2), || a.stats().entries == 0).await;
        assert_eq!(a.stats().entries, 0, "flushed on loss");

        // Revoked while a cannot hear it; a bypasses its cache, so it does not matter.
        assert!(b.delete(&s.id).await.expect("revoke on b"));
        let bypassed = a.stats().bypassed;
        assert_eq!(a.get(&s.id).await.expect("get"), None);
        assert_eq!(a.stats().bypassed, bypassed + 1);
        let t = session("resubscribe", 600);
        a.create(&t).await.expect("create while unsubscribed");
        assert_eq!(a.get(&t.id).await.expect("get"), Some(t.clone()));
        assert_eq!(a.stats().entries, 0, "nothing cached while unsubscribed");

        let flushes = a.stats().flushes;
        proxy.set_mode(ProxyMode::Forward);
        let back = until(Duration::from_secs(5), || a.is_subscribed()).await;
        println!("{mode:?}: re-subscribed {back:?} after the proxy forwarded again");
        assert!(a.stats().flushes > flushes, "flushed on re-subscription");
        assert_eq!(a.get(&t.id).await.expect("get"), Some(t.clone()));
        assert_eq!(a.stats().entries, 1, "cached again");
    }
    common::cleanup(a.inner(), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_size_and_expiry_with_a_mock_clock() {
    let Some(url) = common::redis_url().await else {
        return;
    };
    let clock = MockClock::at_unix(common::now());
    let config = common::config().with_clock(Arc::new(clock.clone()));
    let near = NearCacheConfig::default()
        .with_max_entries(16)
        .with_max_age(Duration::from_secs(3600))
        .with_clock(Arc::new(clock.clone()));
    let a = instance(&url, &url, &config, near, Duration::from_secs(1)).await;

    let all: Vec<Session> = (0..200).map(|_| session("bounded", 600)).collect();
    for s in &all {
        a.create(s).await.expect("create");
        assert!(a.stats().entries <= 16);
    }
    assert!(a.stats().evictions >= 184);
    for s in &all {
        assert_eq!(a.get(&s.id).await.expect("get").as_ref(), Some(s));
    }

    let short = session("expiring", 30);
    // `session` stamps real time; line the mock clock up with it (the loop above took a while).
    clock.set_unix(short.created_at);
    a.create(&short).await.expect("create");
    let before = a.stats();
    assert_eq!(a.get(&short.id).await.expect("get"), Some(short.clone()));
    clock.advance(Duration::from_secs(30));
    // Still in Redis (native expiry runs on the real clock), but expired by the clock.
    assert_eq!(a.get(&short.id).await.expect("get"), None);
    let after = a.stats();
    assert_eq!(after.hits, before.hits + 1);
    assert_eq!(
        after.misses, before.misses,
        "expiry decided without a round trip"
    );
    common::cleanup(a.inner(), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn near_cached_redis_store_conformance() {
    let Some(url) = common::redis_url().await else {
        return;
    };
    let store = RedisStore::connect_cached(&url, common::config(), NearCacheConfig::default())
        .await
        .expect("connect_cached");
    assert!(store.is_subscribed());
    let prefix_store = store.inner().clone();
    let shared: Arc<dyn SessionStore> = Arc::new(store);
    store_conformance::run_all(shared, &RealTime).await;
    common::cleanup(&prefix_store, &url).await;
}
