//! Per-request cost: in-process `authenticate` + `authorize` (memory store) against the raw
//! HMAC-SHA256 verification of the same bearer, measured in the same run; plus the cost of
//! policies per session.
//!
//! `cargo run --release -p jwt-exchange-bench --bin authenticate [-- --quick]`

use std::hint::black_box;

use jwt_exchange::policy::Decision;
use jwt_exchange::Algorithm;
use jwt_exchange_bench::fixture::{
    entra_token, roles, runtime, scaled_policies, standard_roles, Fixture, Options, RawHmac,
    ACTION, RESOURCE,
};
use jwt_exchange_bench::harness::{fmt_ns, header, target};
use jwt_exchange_bench::{Bench, Case};

fn main() {
    let bench = Bench::from_env();
    header("authenticate", &bench);
    let rt = runtime();
    let fx = rt.block_on(Fixture::start(Options::default()));
    let ex = &fx.exchange;
    let token = entra_token(fx.key(Algorithm::RS256), &standard_roles());
    let login = rt.block_on(ex.login(&token)).expect("login succeeds");
    let bearer = login.token.as_str().to_owned();
    let raw = RawHmac::new(&bearer);
    assert!(raw.verify(), "baseline verifies");
    let who = rt
        .block_on(ex.authenticate(&bearer))
        .expect("authenticates");
    assert_eq!(who.policies.len(), 2);
    let decision = rt
        .block_on(ex.authorize(&who, ACTION, RESOURCE))
        .expect("decides");
    assert_eq!(decision, Decision::Allow);

    let stats = bench.compare(
        "authenticate + authorize, memory store, a session with 2 policies",
        &mut [
            Case::new("raw HMAC-SHA256 verify of the bearer", |n| {
                for _ in 0..n {
                    black_box(raw.verify());
                }
            }),
            Case::new("`BearerKeys::verify` (signature + claims)", |n| {
                for _ in 0..n {
                    black_box(fx.bearer.verify(&bearer, 0).is_ok());
                }
            }),
            Case::new("`Exchange::authenticate`", |n| {
                rt.block_on(async {
                    for _ in 0..n {
                        black_box(ex.authenticate(&bearer).await.is_ok());
                    }
                });
            }),
            Case::new("`Exchange::authorize` (2 policies)", |n| {
                rt.block_on(async {
                    for _ in 0..n {
                        black_box(ex.authorize(&who, ACTION, RESOURCE).await.is_ok());
                    }
                });
            }),
            Case::new("`authenticate` + `authorize`", |n| {
                rt.block_on(async {
                    for _ in 0..n {
                        let who = ex.authenticate(&bearer).await.expect("valid bearer");
                        black_box(ex.authorize(&who, ACTION, RESOURCE).await.is_ok());
                    }
                });
            }),
        ],
    );
    let both = &stats[4];
    let ratio = both.ratio.unwrap_or(f64::NAN);
    target(
        "authenticate + authorize / raw HMAC",
        &format!("{ratio:.2}×"),
        "≤ 3×",
        ratio <= 3.0,
    );
    target(
        "authenticate + authorize median",
        &fmt_ns(both.median),
        "≤ 2 µs",
        both.median <= 2_000.0,
    );

    policies_per_session(&bench, &rt);
}

/// Cost against policies per session: policy i allows only `repo/p<i>/*`, the check is on the
/// last one's resource, so every policy of the session is loaded and evaluated.
fn policies_per_session(bench: &Bench, rt: &tokio::runtime::Runtime) {
    let counts = if bench.quick() {
        vec![1, 10]
    } else {
        vec![1, 10, 50, 100, 200]
    };
    let max = counts.iter().copied().max().unwrap_or(1);
    let fx = rt.block_on(Fixture::start(
        Options::default().with_policies(scaled_policies(max)),
    ));
    let ex = &fx.exchange;
    let key = fx.key(Algorithm::RS256);
    let sessions: Vec<(usize, String, String)> = counts
        .iter()
        .map(|n| {
            let login = rt
                .block_on(ex.login(&entra_token(key, &roles(*n))))
                .expect("login succeeds");
            assert_eq!(login.session.policies.len(), *n);
            (
                *n,
                login.token.as_str().to_owned(),
                format!("repo/p{}/file", n - 1),
            )
        })
        .collect();
    let raw = RawHmac::new(&sessions[0].1);
    let mut cases = vec![Case::new("raw HMAC-SHA256 verify of the bearer", |n| {
        for _ in 0..n {
            black_box(raw.verify());
        }
    })];
    for (count, bearer, resource) in &sessions {
        let who = rt.block_on(ex.authenticate(bearer)).expect("authenticates");
        assert_eq!(
            rt.block_on(ex.authorize(&who, ACTION, resource))
                .expect("decides"),
            Decision::Allow
        );
        cases.push(Case::new(
            format!("authenticate + authorize, {count} policies"),
            move |n| {
                rt.block_on(async {
                    for _ in 0..n {
                        let who = ex.authenticate(bearer).await.expect("valid bearer");
                        black_box(ex.authorize(&who, ACTION, resource).await.is_ok());
                    }
                });
            },
        ));
    }
    bench.compare(
        "authenticate + authorize vs. policies per session",
        &mut cases,
    );
}
