//! In-process login cost against its physical limit, the raw signature verification of the same
//! token with a pre-parsed key, measured in the same run. Per algorithm (RS256, ES256, EdDSA,
//! PS256), plus `jsonwebtoken`'s decode + validate for comparison, plus the cost of groups per
//! token.
//!
//! `cargo run --release -p jwt-exchange-bench --bin login [-- --quick]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use jwt_exchange::Algorithm;
use jwt_exchange_bench::fixture::{
    entra_token, roles, runtime, scaled_policies, standard_roles, Fixture, JsonWebToken, Options,
    RawSignature, ALGS,
};
use jwt_exchange_bench::harness::{fmt_ns, header, target};
use jwt_exchange_bench::{Bench, Case};

fn main() {
    let bench = Bench::from_env();
    header("login", &bench);
    let rt = runtime();
    let fx = rt.block_on(Fixture::start(Options::default()));
    let ex = &fx.exchange;
    let roles_std = standard_roles();

    for alg in ALGS {
        let key = fx.key(alg);
        let token = entra_token(key, &roles_std);
        let raw = RawSignature::new(key, &token);
        let jwt = JsonWebToken::new(key);
        assert!(raw.verify(), "baseline verifies");
        let login = rt.block_on(ex.login(&token)).expect("login succeeds");
        assert_eq!(login.session.policies.len(), 2);
        jwt.decode(&token).expect("jsonwebtoken accepts the token");

        let stats = bench.compare(
            &format!("login, {alg}, Entra-shaped token, memory store"),
            &mut [
                Case::new(format!("raw aws-lc-rs {alg} verify, pre-parsed key"), |n| {
                    for _ in 0..n {
                        black_box(raw.verify());
                    }
                }),
                Case::new("`Verifier::verify` (verification only)", |n| {
                    rt.block_on(async {
                        for _ in 0..n {
                            black_box(ex.verifier().verify(&token).await.is_ok());
                        }
                    });
                }),
                Case::new("`Exchange::login` (verify + session + bearer)", |n| {
                    rt.block_on(async {
                        for _ in 0..n {
                            black_box(ex.login(&token).await.is_ok());
                        }
                    });
                })
                .with_reset(|| fx.clear_sessions(&rt)),
                Case::new("`jsonwebtoken::decode` + validate (comparison)", |n| {
                    for _ in 0..n {
                        black_box(jwt.decode(&token).is_ok());
                    }
                }),
            ],
        );
        let ratio = stats[2].ratio.unwrap_or(f64::NAN);
        target(
            &format!("in-process login {alg} / raw verify"),
            &format!("{ratio:.2}× ({})", fmt_ns(stats[2].median)),
            "≤ 1.20×",
            ratio <= 1.20,
        );
    }

    groups_per_token(&bench, &rt);
    interleaved(&bench, &fx);
}

/// The raw signature check when it does not run back to back, as in a server, where other work
/// (the HTTP stack, the kernel's TCP) runs between two checks, and a thread with nothing to do
/// sleeps: after spinning for 20 µs (keeps the core busy, touches no memory), after writing
/// 1 MiB (evicts what the check keeps in L1/L2) and after sleeping 100 µs (the core idles; on
/// a VM the hypervisor may run something else on it). Each variant's own cost is the pair's
/// time minus the filler's, both measured in this run. Explains part of why a login over HTTP
/// costs the server more than in process.
fn interleaved(bench: &Bench, fx: &Fixture) {
    const SPIN: Duration = Duration::from_micros(20);
    const NAP: Duration = Duration::from_micros(100);
    let key = fx.key(Algorithm::RS256);
    let raw = RawSignature::new(key, &entra_token(key, &standard_roles()));
    let spin = || {
        let t = Instant::now();
        while t.elapsed() < SPIN {
            std::hint::spin_loop();
        }
    };
    let mut buf = vec![0u8; 1 << 20];
    let sweep = move || {
        for b in &mut buf {
            *b = b.wrapping_add(1);
        }
        black_box(&buf);
    };
    let nap = || std::thread::sleep(NAP);
    let mut cases = vec![Case::new("raw verify, back to back", |n| {
        for _ in 0..n {
            black_box(raw.verify());
        }
    })];
    cases.extend(with_filler("spin 20 µs", spin, &raw));
    cases.extend(with_filler("write 1 MiB", sweep, &raw));
    cases.extend(with_filler("sleep 100 µs", nap, &raw));
    let stats = bench.compare(
        "raw RS256 verify back to back vs. with other work in between",
        &mut cases,
    );
    let alone = stats[0].median;
    for pair in stats[1..].chunks_exact(2) {
        let own = pair[1].median - pair[0].median;
        println!(
            "raw verify after {}: {} ({:.2}× back to back)",
            pair[0].name.trim_end_matches(FILLER_ALONE),
            fmt_ns(own),
            own / alone
        );
    }
}

/// The name suffix of a filler's own case.
const FILLER_ALONE: &str = " (filler alone)";

/// Two cases: `filler` alone, and `filler` followed by the raw check (each with its own copy of
/// the filler's state).
fn with_filler<'a>(
    name: &str,
    mut filler: impl FnMut() + Clone + 'a,
    raw: &'a RawSignature,
) -> [Case<'a>; 2] {
    let mut first = filler.clone();
    [
        Case::new(format!("{name}{FILLER_ALONE}"), move |n| {
            for _ in 0..n {
                first();
            }
        }),
        Case::new(format!("{name}, then raw verify"), move |n| {
            for _ in 0..n {
                filler();
                black_box(raw.verify());
            }
        }),
    ]
}

/// Cost against groups per token (each group maps to one policy, so the session also holds
/// that many policy ids).
fn groups_per_token(bench: &Bench, rt: &tokio::runtime::Runtime) {
    let counts = if bench.quick() {
        vec![0, 10]
    } else {
        vec![0, 10, 50, 100, 200]
    };
    let max = counts.iter().copied().max().unwrap_or(0);
    let fx = rt.block_on(Fixture::start(
        Options::default().with_policies(scaled_policies(max)),
    ));
    let key = fx.key(Algorithm::RS256);
    let tokens: Vec<(usize, String)> = counts
        .iter()
        .map(|n| (*n, entra_token(key, &roles(*n))))
        .collect();
    let raw = RawSignature::new(key, &tokens[0].1);
    let ex = &fx.exchange;
    let mut cases = vec![Case::new("raw aws-lc-rs RS256 verify", |n| {
        for _ in 0..n {
            black_box(raw.verify());
        }
    })];
    for (count, token) in &tokens {
        let login = rt.block_on(ex.login(token)).expect("login succeeds");
        assert_eq!(login.session.groups.len(), *count);
        assert_eq!(login.session.policies.len(), *count);
        let fx = &fx;
        cases.push(
            Case::new(
                format!("login, {count} groups ({} B token)", token.len()),
                move |n| {
                    rt.block_on(async {
                        for _ in 0..n {
                            black_box(ex.login(token).await.is_ok());
                        }
                    });
                },
            )
            .with_reset(move || fx.clear_sessions(rt)),
        );
    }
    bench.compare("login cost vs. groups per token (RS256)", &mut cases);
}
