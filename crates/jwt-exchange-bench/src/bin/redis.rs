//! `authenticate` with the Redis store: without a near-cache (one round trip per request) and
//! with it (answered from memory), against the raw HMAC baseline and the memory store in the
//! same run; and how soon a revocation on one instance is visible on another.
//!
//! Needs a Redis server: `JWTX_REDIS_URL` (default `redis://127.0.0.1:6379`); skipped (exit 0)
//! when none answers, except under `CI=true`. Keys live under a per-run prefix.
//!
//! `cargo run --release -p jwt-exchange-bench --bin redis [-- --quick]`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_exchange::store::{CachedStore, NearCacheConfig, SessionStore};
use jwt_exchange::{Algorithm, Exchange, ExchangeError, Verifier};
use jwt_exchange_bench::fixture::{
    bearer_keys, entra_token, standard_policies, standard_roles, Fixture, Options, RawHmac, ACTION,
    RESOURCE,
};
use jwt_exchange_bench::harness::{fmt_ns, header, median, target};
use jwt_exchange_bench::{Bench, Case};
use jwt_exchange_redis::{RedisStore, RedisStoreConfig};
use jwt_exchange_testkit::require_service;

fn exchange(verifier: &Verifier, store: Arc<dyn SessionStore>) -> Exchange {
    Exchange::builder(verifier.clone(), bearer_keys())
        .store(store)
        .policies(standard_policies())
        .sweep(false)
        .build()
        .expect("valid exchange")
}

fn main() {
    let bench = Bench::from_env();
    header("redis", &bench);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let Some(url) = rt.block_on(require_service(
        "redis",
        "JWTX_REDIS_URL",
        "redis://127.0.0.1:6379",
    )) else {
        return;
    };
    let fx = rt.block_on(Fixture::start(Options::default()));
    let verifier = fx.exchange.verifier().clone();
    let (plain, a, b) = rt.block_on(connect(&url));
    let a = Arc::new(a);
    let ex_plain = exchange(&verifier, Arc::new(plain));
    let ex_a = exchange(&verifier, Arc::clone(&a) as Arc<dyn SessionStore>);
    let ex_b = exchange(&verifier, Arc::new(b));
    let token = entra_token(fx.key(Algorithm::RS256), &standard_roles());

    let mem_bearer = rt
        .block_on(fx.exchange.login(&token))
        .expect("login")
        .token
        .into_string();
    let login = rt.block_on(ex_a.login(&token)).expect("login (Redis)");
    let bearer = login.token.as_str().to_owned();
    let raw = RawHmac::new(&bearer);
    let hits_before = a.stats().hits;

    let auth = |ex: &Exchange, bearer: &str, n: u64| {
        rt.block_on(async {
            for _ in 0..n {
                let who = ex.authenticate(bearer).await.expect("valid bearer");
                black_box(ex.authorize(&who, ACTION, RESOURCE).await.is_ok());
            }
        });
    };
    let mut calls = 0u64;
    let stats = bench.compare(
        "authenticate + authorize by store",
        &mut [
            Case::new("raw HMAC-SHA256 verify of the bearer", |n| {
                for _ in 0..n {
                    black_box(raw.verify());
                }
            }),
            Case::new("memory store", |n| auth(&fx.exchange, &mem_bearer, n)),
            Case::new("Redis, no near-cache (a round trip each)", |n| {
                auth(&ex_plain, &bearer, n);
            }),
            Case::new("Redis + near-cache (cached session)", |n| {
                calls += n;
                auth(&ex_a, &bearer, n);
            }),
        ],
    );
    let st = a.stats();
    println!(
        "near-cache of instance A: {} hits for {calls} authenticate calls, {} misses, {} bypassed",
        st.hits - hits_before,
        st.misses,
        st.bypassed
    );
    target(
        "Redis + near-cache authenticate without a round trip",
        &format!(
            "{} of {calls} served from memory; {} vs. {} without the cache",
            st.hits - hits_before,
            fmt_ns(stats[3].median),
            fmt_ns(stats[2].median)
        ),
        "every call a cache hit",
        st.hits - hits_before >= calls,
    );

    let rounds = bench.pick(5, 50);
    let mut lag = revocation_lag(&rt, &ex_a, &ex_b, &token, rounds);
    lag.sort_by(f64::total_cmp);
    let max = lag.last().copied().unwrap_or(f64::NAN);
    println!(
        "\nrevocation on B visible on A ({rounds} rounds): median {}, max {}",
        fmt_ns(median(&lag)),
        fmt_ns(max)
    );
    target(
        "revocation visible on the other instance",
        &format!("max {}", fmt_ns(max)),
        "within 10 ms",
        max <= 10e6,
    );
}

/// Revocation on instance B, seen by instance A: A polls its (cached) authenticate until it
/// refuses; each figure (ns) is the time from B's `revoke` returning to A's first refusal.
fn revocation_lag(
    rt: &tokio::runtime::Runtime,
    ex_a: &Exchange,
    ex_b: &Exchange,
    token: &str,
    rounds: usize,
) -> Vec<f64> {
    let mut lag = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let login = rt.block_on(ex_a.login(token)).expect("login");
        let bearer = login.token.as_str().to_owned();
        let (ex_a, ex_b) = (ex_a.clone(), ex_b.clone());
        let d = rt.block_on(async move {
            ex_a.authenticate(&bearer).await.expect("cached");
            let poller = {
                let ex_a = ex_a.clone();
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(5);
                    loop {
                        match ex_a.authenticate(&bearer).await {
                            Err(ExchangeError::SessionNotFound) => return Some(Instant::now()),
                            _ if Instant::now() > deadline => return None,
                            _ => tokio::task::yield_now().await,
                        }
                    }
                })
            };
            ex_b.revoke(&login.session.id).await.expect("revoke");
            let returned = Instant::now();
            let refused = poller.await.expect("poller").expect("refused within 5 s");
            refused.saturating_duration_since(returned)
        });
        lag.push(d.as_nanos() as f64);
    }
    lag
}

/// A Redis store without near-cache and two with one (instances A and B), under a per-run key
/// prefix.
async fn connect(url: &str) -> (RedisStore, CachedStore<RedisStore>, CachedStore<RedisStore>) {
    let cfg =
        RedisStoreConfig::default().with_key_prefix(format!("jxbench:{}:", std::process::id()));
    let plain = RedisStore::connect(url, cfg.clone())
        .await
        .expect("Redis store");
    let a = RedisStore::connect_cached(url, cfg.clone(), NearCacheConfig::default())
        .await
        .expect("Redis store with near-cache (instance A)");
    let b = RedisStore::connect_cached(url, cfg, NearCacheConfig::default())
        .await
        .expect("Redis store with near-cache (instance B)");
    (plain, a, b)
}
