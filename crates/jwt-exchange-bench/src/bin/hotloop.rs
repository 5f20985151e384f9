//! Runs one hot path in a tight loop for a while, for a profiler (`perf record`, `valgrind
//! --tool=callgrind`): `hotloop raw|login|verify|authenticate|authorize|mint|check [SECONDS]
//! [--alg ALG] [--groups N]`. `check` is `GET /auth/check` through the axum router in process
//! (no sockets); `raw` is the baseline of `login` and `verify`, the signature check alone with a
//! pre-parsed key.
//!
//! `cargo build --release -p jwt-exchange-bench --bin hotloop`, then for instance
//! `perf record -g target/release/hotloop login 10` or
//! `valgrind --tool=callgrind target/release/hotloop login 0.2`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jwt_exchange::store::SessionStore;
use jwt_exchange::Algorithm;
use jwt_exchange_bench::fixture::{
    entra_token, runtime, scaled_policies, standard_roles, Fixture, Options, ACTION, RESOURCE,
};
use jwt_exchange_bench::Bench;

fn main() {
    let bench = Bench::from_env();
    // Positional arguments: everything that is neither a flag nor a flag's value.
    let mut args: Vec<String> = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--alg" | "--groups" | "--samples" | "--sample-ms" => {
                it.next();
            }
            _ if a.starts_with("--") => {}
            _ => args.push(a),
        }
    }
    let what = args.first().map_or("login", String::as_str).to_owned();
    let secs: f64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(if bench.quick() { 0.05 } else { 5.0 });
    let alg: Algorithm = bench
        .value("--alg")
        .unwrap_or("RS256")
        .parse()
        .expect("--alg RS256|ES256|EdDSA|PS256");
    // `--groups N`: a token with N groups, each mapped to its own policy (the login bench's
    // "groups per token" table), instead of the standard two app roles.
    let groups: Option<usize> = bench
        .value("--groups")
        .map(|v| v.parse().expect("--groups N"));
    let rt = runtime();
    let options = match groups {
        Some(n) => Options::default().with_policies(scaled_policies(n)),
        None => Options::default(),
    };
    let fx = rt.block_on(Fixture::start(options));
    let ex = &fx.exchange;
    let token = entra_token(
        fx.key(alg),
        &groups.map_or_else(standard_roles, jwt_exchange_bench::fixture::roles),
    );
    let login = rt.block_on(ex.login(&token)).expect("login");
    let bearer = login.token.as_str().to_owned();
    let raw = jwt_exchange_bench::fixture::RawSignature::new(fx.key(alg), &token);
    let who = rt.block_on(ex.authenticate(&bearer)).expect("authenticate");
    let router = jwt_exchange::axum::RouterBuilder::new(ex.clone()).build();
    let check_uri = format!("/auth/check?action={ACTION}&resource={RESOURCE}");
    let authorization = format!("Bearer {bearer}");
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut n = 0u64;
    rt.block_on(async {
        while Instant::now() < end {
            if n.is_multiple_of(4096) && what == "login" {
                // Keep the store at a steady size, as the login bench does.
                let subject = jwt_exchange::Session::subject_for(
                    jwt_exchange_testkit::claims::ENTRA_ISSUER,
                    jwt_exchange_bench::fixture::OID,
                );
                let _ = fx.store.delete_subject(&subject).await;
            }
            for _ in 0..64 {
                match what.as_str() {
                    "login" => {
                        black_box(ex.login(&token).await.is_ok());
                    }
                    "raw" => {
                        black_box(raw.verify());
                    }
                    "verify" => {
                        black_box(ex.verifier().verify(&token).await.is_ok());
                    }
                    "authenticate" => {
                        black_box(ex.authenticate(&bearer).await.is_ok());
                    }
                    "authorize" => {
                        black_box(ex.authorize(&who, ACTION, RESOURCE).await.is_ok());
                    }
                    "mint" => {
                        black_box(fx.bearer.mint(who.session_id().as_str(), 0, 60));
                    }
                    "check" => {
                        use tower::ServiceExt as _;
                        let req = axum::http::Request::builder()
                            .uri(check_uri.as_str())
                            .header(axum::http::header::AUTHORIZATION, authorization.as_str())
                            .body(axum::body::Body::empty())
                            .expect("request");
                        let res = router.clone().oneshot(req).await.expect("infallible");
                        assert_eq!(res.status(), axum::http::StatusCode::NO_CONTENT);
                    }
                    other => panic!("unknown hot path {other}"),
                }
                n += 1;
            }
        }
    });
    println!("{what}: {n} iterations in {secs} s");
}
