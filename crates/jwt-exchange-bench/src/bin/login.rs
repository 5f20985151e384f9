//! In-process login cost against its physical limit, the raw signature verification of the same
//! token with a pre-parsed key, measured in the same run. Per algorithm (RS256, ES256, EdDSA,
//! PS256), plus `jsonwebtoken`'s decode + validate for comparison, plus the cost of groups per
//! token.
//!
//! `cargo run --release -p jwt-exchange-bench --bin login [-- --quick]`

use std::hint::black_box;

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
