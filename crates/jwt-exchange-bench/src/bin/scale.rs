//! Cost against the number of stored sessions: login and authenticate + authorize with the
//! memory store holding 1k, 10k, 100k and 1M sessions (`--quick`: 1k and 20k), measured
//! interleaved in the same run; bytes per session.
//!
//! `cargo run --release -p jwt-exchange-bench --bin scale [-- --quick] [--max N]`

use std::hint::black_box;
use std::mem::size_of;
use std::time::Instant;

use jwt_exchange::session::{Session, SessionId};
use jwt_exchange::store::{MemoryStore, SessionStore};
use jwt_exchange::{Algorithm, Clock, SystemClock};
use jwt_exchange_bench::fixture::{
    entra_token, runtime, standard_roles, Fixture, Options, ACTION, RESOURCE,
};
use jwt_exchange_bench::harness::{fmt_ns, header, rss_bytes, target, Stats};
use jwt_exchange_bench::{Bench, Case};
use jwt_exchange_testkit::claims::ENTRA_ISSUER;

/// Bearers of this many stored sessions (spread over the table; with fewer sessions, each
/// session several times) are cycled through in a shuffled order, so authenticate reads the
/// whole table rather than one hot entry.
const PROBES: usize = 4096;

struct Sized {
    count: usize,
    /// How much the process grew while the store was filled (the store's footprint), in bytes.
    bytes: u64,
    fx: Fixture,
    bearers: Vec<String>,
    token: String,
}

fn main() {
    let bench = Bench::from_env();
    header("scale", &bench);
    let max: usize = bench
        .value("--max")
        .map_or(bench.pick(20_000, 1_000_000), |v| {
            v.parse().expect("--max N")
        });
    let mut counts = vec![1_000];
    let mut c = 10_000;
    while c < max {
        counts.push(c);
        c *= 10;
    }
    counts.push(max);
    let rt = runtime();
    let now = SystemClock.unix_seconds();

    let sized: Vec<Sized> = counts.iter().map(|&count| fill(&rt, count, now)).collect();

    let label = |n: usize| {
        if n >= 1_000_000 {
            format!("{}M", n / 1_000_000)
        } else {
            format!("{}k", n / 1_000)
        }
    };
    let mut auth_cases = Vec::new();
    for s in &sized {
        let rt = &rt;
        let mut i = 0usize;
        auth_cases.push(Case::new(
            format!("authenticate + authorize, {} sessions", label(s.count)),
            move |n| {
                rt.block_on(async {
                    for _ in 0..n {
                        i = (i + 1) % s.bearers.len();
                        let who =
                            s.fx.exchange
                                .authenticate(&s.bearers[i])
                                .await
                                .expect("stored session");
                        black_box(
                            s.fx.exchange
                                .authorize(&who, ACTION, RESOURCE)
                                .await
                                .is_ok(),
                        );
                    }
                });
            },
        ));
    }
    let auth = bench.compare(
        "authenticate + authorize vs. stored sessions (random session per request; ratio to 1k)",
        &mut auth_cases,
    );
    drop(auth_cases);

    let mut login_cases = Vec::new();
    for s in &sized {
        let rt = &rt;
        login_cases.push(
            Case::new(
                format!("login RS256, {} sessions", label(s.count)),
                move |n| {
                    rt.block_on(async {
                        for _ in 0..n {
                            black_box(s.fx.exchange.login(&s.token).await.is_ok());
                        }
                    });
                },
            )
            .with_reset(move || s.fx.clear_sessions(rt)),
        );
    }
    let login = bench.compare("login vs. stored sessions (ratio to 1k)", &mut login_cases);
    drop(login_cases);

    let last = sized.len() - 1;
    let floor = memory_floor(&bench, &sized, &label);
    for (what, stats) in [("authenticate + authorize", &auth), ("login", &login)] {
        let r = stats[last].ratio.unwrap_or(f64::NAN);
        target(
            &format!("{what} at {} vs. 1k sessions", label(sized[last].count)),
            &format!(
                "{r:.2}× ({} vs. {})",
                fmt_ns(stats[last].median),
                fmt_ns(stats[0].median)
            ),
            "within 10% (≤ 1.10×)",
            r <= 1.10,
        );
    }
    report_floor(&floor, &auth, &label(sized[last].count));
    // Keep the fixtures alive until here; dropping a million sessions takes a moment.
    let t = Instant::now();
    drop(sized);
    println!("dropped the stores in {:.2} s", t.elapsed().as_secs_f64());
}

/// A fixture whose store holds `count` sessions (one per identity, shaped like a login's: two
/// groups, two policies), with bearers of [`PROBES`] of them spread over the table.
fn fill(rt: &tokio::runtime::Runtime, count: usize, now: i64) -> Sized {
    let fx = rt.block_on(Fixture::start(Options::default()));
    let rss_before = rss_bytes();
    let t = Instant::now();
    let mut sample = Vec::with_capacity(PROBES);
    // A session per identity, shaped like a login's: two groups, two policies.
    let step = (count / PROBES).max(1);
    rt.block_on(async {
        for i in 0..count {
            let s = Session::new(
                SessionId::generate(),
                ENTRA_ISSUER,
                format!("00000000-0000-0000-0000-{i:012}"),
                now,
                now + 3600,
            )
            .with_groups(standard_roles())
            .with_policies(["ProtectProd", "ReadAll"]);
            fx.store.create(&s).await.expect("memory store creates");
            if i % step == 0 && sample.len() < PROBES {
                sample.push(s);
            }
        }
    });
    let filled = t.elapsed();
    let rss = rss_before
        .zip(rss_bytes())
        .map(|(a, b)| b.saturating_sub(a));
    let approx = sample
        .first()
        .map_or(0, MemoryStore::approx_bytes_per_session);
    println!(
        "{count} sessions: filled in {:.2} s; RSS grew {} ({} per session); approx_bytes_per_session {approx} B",
        filled.as_secs_f64(),
        rss.map_or_else(|| "?".to_owned(), |b| format!("{:.1} MiB", b as f64 / 1_048_576.0)),
        rss.map_or_else(|| "?".to_owned(), |b| format!("{} B", b / count as u64)),
    );
    // Always `PROBES` bearers, each its own string, in a shuffled order: at 1k sessions each
    // session has about four of them. So the bench's own footprint (the bearer strings it
    // reads) is the same at every size and only the store grows, and the probes do not walk
    // the table in the order the sessions were allocated (which would let the hardware
    // prefetcher hide the misses that a random workload pays).
    let mut order: Vec<usize> = (0..PROBES).map(|k| k % sample.len()).collect();
    let mut next = xorshift(0x2545_F491_4F6C_DD1D);
    for k in (1..order.len()).rev() {
        order.swap(k, (next() % (k as u64 + 1)) as usize);
    }
    let bearers = order
        .iter()
        .map(|&k| {
            let s = &sample[k];
            fx.bearer
                .mint(s.id.as_str(), now, s.expires_at)
                .into_string()
        })
        .collect();
    let token = entra_token(fx.key(Algorithm::RS256), &standard_roles());
    Sized {
        count,
        bytes: rss.unwrap_or(approx as u64 * count as u64),
        fx,
        bearers,
        token,
    }
}

/// The least any store could add at the largest size: one memory access per request, with the
/// same probes (`floor` from [`memory_floor`], `auth` the `authenticate + authorize` table).
fn report_floor(floor: &[Stats], auth: &[Stats], largest: &str) {
    if let (Some(read), Some(base), Some(measured)) = (floor.last(), auth.first(), auth.last()) {
        let bound = (base.median + read.median - floor[0].median) / base.median;
        println!(
            "floor: a store that answered with one memory access (one random line per probe, \
             in a region the size of the {largest} store: {} against {} for the 1k store's) \
             could not do better than {bound:.2}× at {largest}; measured {:.2}×",
            fmt_ns(read.median),
            fmt_ns(floor[0].median),
            measured.ratio.unwrap_or(f64::NAN),
        );
        // The region is one large allocation, the store many small ones: with transparent huge
        // pages `always`, the region may get huge pages the store does not, and the bound is
        // then too optimistic.
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .ok()
            .and_then(|s| Some(s.split_once('[')?.1.split_once(']')?.0.to_owned()))
            .unwrap_or_else(|| "unknown".to_owned());
        println!("transparent huge pages: {thp} (the bound assumes the region and the store are paged alike)");
    }
}

/// The latency of one dependent memory access with the access pattern of the
/// `authenticate + authorize` table: [`PROBES`] cache lines at random places in a region as
/// large as each store's footprint (every page of it touched, as a store's are), visited in a
/// random cycle, each read waiting on the one before. A request must read at least one line of
/// its session, so the difference between the largest region and the 1k one is a lower bound
/// on what the larger store adds to a request, whatever its layout.
fn memory_floor(bench: &Bench, sized: &[Sized], label: &dyn Fn(usize) -> String) -> Vec<Stats> {
    const LINE: usize = 64 / size_of::<u64>();
    const PAGE: usize = 4096 / size_of::<u64>();
    let arenas: Vec<(usize, Vec<u64>)> = sized
        .iter()
        .map(|s| {
            let words = (s.bytes as usize / size_of::<u64>()).max(PROBES * LINE);
            let mut arena = vec![0u64; words];
            // Touch every page, so the region is resident like the store's.
            for w in arena.iter_mut().step_by(PAGE) {
                *w = 1;
            }
            let lines = words / LINE;
            let mut next = xorshift(0x9E37_79B9_7F4A_7C15 ^ s.count as u64);
            let mut picked: Vec<usize> = Vec::with_capacity(PROBES);
            let mut seen = std::collections::HashSet::with_capacity(PROBES);
            while picked.len() < PROBES.min(lines) {
                let line = (next() % lines as u64) as usize;
                if seen.insert(line) {
                    picked.push(line * LINE);
                }
            }
            // `picked` is in random order: link it into one cycle.
            for k in 0..picked.len() {
                arena[picked[k]] = picked[(k + 1) % picked.len()] as u64;
            }
            (picked[0], arena)
        })
        .collect();
    let mut cases: Vec<Case<'_>> = arenas
        .iter()
        .zip(sized)
        .map(|((start, arena), s)| {
            let mut at = *start;
            Case::new(
                format!(
                    "one dependent read, {:.0} MiB region ({} store)",
                    arena.len() as f64 * 8.0 / 1_048_576.0,
                    label(s.count)
                ),
                move |n| {
                    for _ in 0..n {
                        at = arena[at] as usize;
                    }
                    black_box(at);
                },
            )
        })
        .collect();
    bench.compare(
        "the memory floor: one dependent read per probe, regions as large as the stores",
        &mut cases,
    )
}

/// A small deterministic xorshift generator (no dependency): the probes' shuffle and the
/// floor's line picks.
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
