//! Key-cache behaviour under load, against a loopback IdP that counts its requests:
//!
//! * **cold-start stampede**: 1,000 concurrent logins with a `kid` the cache has not seen
//!   (the IdP has just published it) must cause exactly one JWKS fetch;
//! * **random-`kid` flood**: 10,000 concurrent tokens with random `kid`s (the IdP's answer to
//!   the one refetch stalls for 200 ms) must cost at most one fetch per refetch cool-down, while
//!   logins with a known `kid`, running alongside on the other core, keep their latency: p99
//!   within 1.5× of the p99 without the flood.
//!
//! `cargo run --release -p jwt-exchange-bench --bin jwks [-- --quick]`
//!
//! Fetch counts are behaviour and fail the run when wrong; latencies are only reported.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_exchange::{Algorithm, Exchange, ExchangeError, VerifyError};
use jwt_exchange_bench::fixture::{entra_token, runtime, standard_roles, Fixture, Options};
use jwt_exchange_bench::harness::{fmt_ns, header, percentile, target};
use jwt_exchange_bench::Bench;
use jwt_exchange_testkit::Behavior;

fn main() {
    let bench = Bench::from_env();
    header("jwks", &bench);
    let mut failed = false;
    failed |= stampede();
    failed |= flood(&bench);
    if failed {
        std::process::exit(1);
    }
}

/// The IdP and exchange run on a runtime of their own, so the IdP answers whatever the
/// measuring threads do.
fn idp_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("IdP runtime")
}

fn stampede() -> bool {
    const LOGINS: usize = 1_000;
    let idp = idp_runtime();
    let cooldown = Duration::from_millis(100);
    let fx = idp.block_on(Fixture::start(
        Options::default()
            .with_refetch_cooldown(cooldown)
            .with_unpublished(1),
    ));
    let token = entra_token(&fx.unpublished[0], &standard_roles());
    // Past the cool-down of the start-up fetch, the IdP publishes a new key.
    std::thread::sleep(cooldown + Duration::from_millis(50));
    fx.publish_all();
    let before = fx.server.jwks_hits();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let t = Instant::now();
    let results: Vec<(bool, f64)> = rt.block_on(async {
        let tasks: Vec<_> = (0..LOGINS)
            .map(|_| {
                let (ex, token) = (fx.exchange.clone(), token.clone());
                tokio::spawn(async move {
                    let t = Instant::now();
                    let ok = ex.login(&token).await.is_ok();
                    (ok, t.elapsed().as_nanos() as f64)
                })
            })
            .collect();
        let mut out = Vec::with_capacity(LOGINS);
        for task in tasks {
            out.push(task.await.expect("login task"));
        }
        out
    });
    let total = t.elapsed();
    let fetches = fx.server.jwks_hits() - before;
    let ok = results.iter().filter(|r| r.0).count();
    let mut lat: Vec<f64> = results.iter().map(|r| r.1).collect();
    lat.sort_by(f64::total_cmp);
    println!("\n## Cold-start stampede: {LOGINS} concurrent logins with a new kid\n");
    println!("| JWKS fetches | logins accepted | all done in | p50 | p99 | max |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {fetches} | {ok} / {LOGINS} | {} | {} | {} | {} |",
        fmt_ns(total.as_nanos() as f64),
        fmt_ns(percentile(&lat, 50.0)),
        fmt_ns(percentile(&lat, 99.0)),
        fmt_ns(lat.last().copied().unwrap_or(f64::NAN)),
    );
    let good = fetches == 1 && ok == LOGINS;
    target(
        "stampede JWKS fetches",
        &fetches.to_string(),
        "exactly 1",
        fetches == 1,
    );
    !good
}

/// A token with the known token's claims and signature but header `kid` `kid`: refused at key
/// selection, before its signature is looked at.
fn with_kid(known: &str, kid: &str) -> String {
    let (_, rest) = known.split_once('.').expect("compact JWS");
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string();
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header))
}

/// Logs in with `token` on a thread of its own, one login at a time, at least `min` times and
/// until `until` is set; returns each login's latency (ns), sorted.
fn known_series(
    ex: Exchange,
    token: String,
    min: usize,
    until: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<f64>> {
    std::thread::spawn(move || {
        let rt = runtime();
        let mut lat = Vec::with_capacity(min * 2);
        rt.block_on(async {
            while lat.len() < min || !until.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = ex.login(&token).await;
                lat.push(t.elapsed().as_nanos() as f64);
                assert!(r.is_ok(), "a known-kid login failed: {r:?}");
            }
        });
        lat.sort_by(f64::total_cmp);
        lat
    })
}

fn flood(bench: &Bench) -> bool {
    const FLOOD: usize = 10_000;
    let idp = idp_runtime();
    let cooldown = Duration::from_millis(bench.pick(300, 1000));
    let fx = idp.block_on(Fixture::start(
        Options::default().with_refetch_cooldown(cooldown),
    ));
    let known = entra_token(fx.key(Algorithm::RS256), &standard_roles());
    let flood_tokens: Vec<String> = (0..FLOOD)
        .map(|i| with_kid(&known, &format!("random-{i}-{:x}", i * 7919 + 13)))
        .collect();
    let min = bench.pick(300, 5_000);

    let no_flood = |label: &str| {
        let done = Arc::new(AtomicBool::new(true));
        let lat = known_series(fx.exchange.clone(), known.clone(), min, done)
            .join()
            .expect("known-kid thread");
        fx.clear_sessions(&idp);
        println!(
            "known-kid logins, no flood ({label}): {} logins, p50 {}, p99 {}",
            lat.len(),
            fmt_ns(percentile(&lat, 50.0)),
            fmt_ns(percentile(&lat, 99.0))
        );
        lat
    };
    let before = no_flood("before");

    // The one refetch the flood triggers is answered after 200 ms: a known-kid login that
    // waited behind it would show.
    std::thread::sleep(cooldown + Duration::from_millis(50));
    fx.server
        .set_behavior(Behavior::Stall(Duration::from_millis(200)));
    let hits = fx.server.jwks_hits();
    let done = Arc::new(AtomicBool::new(false));
    let series = known_series(fx.exchange.clone(), known.clone(), min, Arc::clone(&done));
    let ex = fx.exchange.clone();
    let flood_thread = std::thread::spawn(move || {
        let rt = runtime();
        let t = Instant::now();
        let refused = rt.block_on(async {
            let tasks: Vec<_> = flood_tokens
                .into_iter()
                .map(|tok| {
                    let ex = ex.clone();
                    tokio::spawn(async move {
                        matches!(
                            ex.login(&tok).await,
                            Err(ExchangeError::Verify(VerifyError::UnknownKeyId))
                        )
                    })
                })
                .collect();
            let mut refused = 0;
            for task in tasks {
                refused += usize::from(task.await.expect("flood task"));
            }
            refused
        });
        (refused, t.elapsed())
    });
    let (refused, flood_time) = flood_thread.join().expect("flood thread");
    done.store(true, Ordering::Relaxed);
    let during = series.join().expect("known-kid thread");
    let fetches = fx.server.jwks_hits() - hits;
    fx.server.set_behavior(Behavior::Serve);
    fx.clear_sessions(&idp);
    let after = no_flood("after");

    let allowed = (flood_time.as_secs_f64() / cooldown.as_secs_f64()).floor() as usize + 1;
    let p99 = |l: &[f64]| percentile(l, 99.0);
    let base = p99(&before).min(p99(&after));
    println!("\n## Random-kid flood: {FLOOD} concurrent tokens with random kids\n");
    println!("| JWKS fetches | allowed (1 per cool-down of {} over {}) | flood tokens refused (unknown kid) | known-kid logins during | p50 during | p99 during | p99 without flood |", fmt_ns(cooldown.as_nanos() as f64), fmt_ns(flood_time.as_nanos() as f64));
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {fetches} | ≤ {allowed} | {refused} / {FLOOD} | {} | {} | {} | {} |",
        during.len(),
        fmt_ns(percentile(&during, 50.0)),
        fmt_ns(p99(&during)),
        fmt_ns(base),
    );
    target(
        "flood JWKS fetches",
        &fetches.to_string(),
        &format!("≤ 1 per cool-down (≤ {allowed})"),
        fetches <= allowed,
    );
    let ratio = p99(&during) / base;
    target(
        "known-kid login p99 during the flood / without",
        &format!("{ratio:.2}×"),
        "≤ 1.5×",
        ratio <= 1.5,
    );
    let max = during.last().copied().unwrap_or(0.0);
    println!(
        "slowest known-kid login during the flood: {} (a login that waited behind the stalled fetch would take ≥ 200 ms)",
        fmt_ns(max)
    );
    // Behaviour, not timing: the flood is refused as unknown kids and fetches stay bounded.
    refused != FLOOD || fetches > allowed
}
