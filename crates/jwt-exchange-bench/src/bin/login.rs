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
    let mut sweep = move || {
        for b in &mut buf {
            *b = b.wrapping_add(1);
        }
        black_box(&buf);
    };
    let mut sweep2 = sweep.clone();
    let stats = bench.compare(
        "raw RS256 verify back to back vs. with other work in between",
        &mut [
            Case::new("raw verify, back to back", |n| {
                for _ in 0..n {
                    black_box(raw.verify());
                }
            }),
            Case::new("spin 20 µs (filler alone)", |n| {
                for _ in 0..n {
                    spin();
                }
            }),
            Case::new("spin 20 µs, then raw verify", |n| {
                for _ in 0..n {
                    spin();
                    black_box(raw.verify());
                }
            }),
            Case::new("write 1 MiB (filler alone)", |n| {
                for _ in 0..n {
                    sweep();
                }
            }),
            Case::new("write 1 MiB, then raw verify", |n| {
                for _ in 0..n {
                    sweep2();
                    black_box(raw.verify());
                }
            }),
            Case::new("sleep 100 µs (filler alone)", |n| {
                for _ in 0..n {
                    std::thread::sleep(NAP);
                }
            }),
            Case::new("sleep 100 µs, then raw verify", |n| {
                for _ in 0..n {
                    std::thread::sleep(NAP);
                    black_box(raw.verify());
                }
            }),
        ],
    );
    let alone = stats[0].median;
    for (filler, pair, what) in [
        (1, 2, "spinning 20 µs"),
        (3, 4, "writing 1 MiB"),
        (5, 6, "sleeping 100 µs"),
    ] {
        let own = stats[pair].median - stats[filler].median;
        println!(
            "raw verify after {what}: {} ({:.2}× back to back)",
            fmt_ns(own),
            own / alone
        );
    }
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
