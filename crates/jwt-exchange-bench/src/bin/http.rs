//! HTTP over loopback: starts a loopback IdP and one axum server (the jwt-exchange router, an
//! unauthenticated `GET /healthz`, and `GET /jwt/protected` guarded by a middleware that runs
//! `jsonwebtoken::decode` on the IdP token of every request — what the `jwt-authorizer` crate
//! does), loads it with a closed-loop HTTP/1.1 generator, stops everything.
//!
//! Rows: `POST /auth/jwt/login` (vs. the in-process login rate × cores), `GET /auth/check` with
//! a bearer (vs. `GET /healthz` of the same server), and the bearer request vs.
//! `GET /jwt/protected` (RS256 and ES256 IdP tokens).
//!
//! `cargo run --release -p jwt-exchange-bench --bin http [-- --quick] [--connections N]
//! [--seconds S] [--rounds R] [--server-threads N] [--client-threads N] [--multi-thread]
//! [--generator-preempts] [--rows a,b]`
//!
//! The server runs thread per core as `jwt-exchange serve` does (each thread its own
//! single-threaded runtime, accepting from one socket); `--multi-thread` serves from one
//! work-stealing tokio runtime instead. The generator shares the machine's cores with the
//! server; every figure is for that set-up. Its threads run under `SCHED_BATCH` so that their
//! wake-ups do not preempt server threads mid-request (`--generator-preempts`: the normal
//! policy).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header::AUTHORIZATION, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use jwt_exchange::{Algorithm, Exchange};
use jwt_exchange_bench::fixture::{
    entra_token, runtime, standard_roles, EntraClaims, Fixture, JsonWebToken, Options, ACTION,
    RESOURCE,
};
use jwt_exchange_bench::harness::{
    batch_schedule, fmt_ns, fmt_rate, header, median, percentile, target, thread_cpu_seconds,
};
use jwt_exchange_bench::load::{self, Limits, Server, Target};
use jwt_exchange_bench::Bench;

/// `kid` → the `jsonwebtoken` decoder for that key: the state of the comparison middleware.
#[derive(Clone)]
struct JwtKeys(Arc<HashMap<String, JsonWebToken>>);

/// What `jwt-authorizer` does per request: read the bearer, decode the header, pick the key by
/// `kid`, `jsonwebtoken::decode` + validate, put the claims in the request.
async fn jwt_authorizer_like(
    State(keys): State<JwtKeys>,
    mut req: Request,
    next: Next,
) -> Response {
    let claims = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| {
            let header = jsonwebtoken::decode_header(token).ok()?;
            keys.0.get(header.kid.as_deref()?)?.decode(token).ok()
        });
    match claims {
        Some(c) => {
            req.extensions_mut().insert(c);
            next.run(req).await
        }
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn protected(Extension(c): Extension<EntraClaims>) -> String {
    c.oid
}

struct Row {
    target: Target,
    rates: Vec<f64>,
    latencies: Vec<f64>,
    errors: u64,
    /// Server threads' and load-generator threads' CPU seconds, and responses, summed over the
    /// rounds.
    server_cpu: f64,
    client_cpu: f64,
    served: u64,
}

fn main() {
    let bench = Bench::from_env();
    header("http", &bench);
    let num = |name: &str, default: usize| -> usize {
        bench
            .value(name)
            .map_or(default, |v| v.parse().expect("a number"))
    };
    let connections = num("--connections", bench.pick(4, 32));
    let rounds = num("--rounds", bench.pick(1, 7));
    let seconds: f64 = bench
        .value("--seconds")
        .map_or(bench.pick(0.25, 1.0), |v| v.parse().expect("seconds"));
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let server_threads = num("--server-threads", cores);
    let client_threads = num("--client-threads", 1);
    let multi_thread = bench.flag("--multi-thread");
    println!(
        "set-up: server {server_threads} threads ({}), load generator {client_threads} thread(s), {connections} keep-alive connections, {seconds} s per row, {rounds} round(s)",
        if multi_thread {
            "one work-stealing tokio runtime"
        } else {
            "one single-threaded runtime each, as `jwt-exchange serve`"
        }
    );

    let server_rt = named_runtime("server", server_threads);
    let client_rt = named_runtime("loadgen", client_threads);
    if !bench.flag("--generator-preempts") {
        batch_generator(client_threads);
    }
    let fx = server_rt.block_on(Fixture::start(Options::default()));
    let ex = fx.exchange.clone();
    let rs = fx.key(Algorithm::RS256);
    let es = fx.key(Algorithm::ES256);
    let rsa_token = entra_token(rs, &standard_roles());
    let ec_token = entra_token(es, &standard_roles());
    server_rt.block_on(ex.login(&rsa_token)).expect("login");
    // The checked session belongs to another identity than the logins' sessions, which are
    // cleared between rows.
    let bearer = fx.session_bearer(&server_rt, "checker");

    let keys = JwtKeys(Arc::new(HashMap::from([
        (rs.kid.clone(), JsonWebToken::new(rs)),
        (es.kid.clone(), JsonWebToken::new(es)),
    ])));
    // Thread per core, as `jwt-exchange serve` runs; `--multi-thread` serves from tokio's
    // work-stealing runtime instead (what an application that mounts the router usually has).
    let app = Router::new().merge(app(ex.clone(), keys));
    let server = if multi_thread {
        Server::start(&server_rt, app)
    } else {
        Server::start_per_core(&server_rt, server_threads, &app)
    };
    let addr = server.addr;

    // The in-process login rate on one core, same exchange, same token: the ceiling of the
    // HTTP login row is this × cores.
    let inproc = || {
        let rt = runtime();
        let t = Instant::now();
        let mut n = 0u64;
        let budget = Duration::from_secs_f64(bench.pick(0.1, 1.0));
        rt.block_on(async {
            while t.elapsed() < budget {
                for _ in 0..32 {
                    black_box(ex.login(&rsa_token).await.is_ok());
                }
                n += 32;
            }
        });
        fx.clear_sessions(&server_rt);
        n as f64 / t.elapsed().as_secs_f64()
    };
    let mut rows = rows(&bearer, &rsa_token, &ec_token);
    // `--rows a,b`: only the rows whose name contains one of these (for profiling one row).
    if let Some(only) = bench.value("--rows") {
        rows.retain(|r| only.split(',').any(|w| r.target.name.contains(w)));
    }
    let with_login = rows.iter().any(|r| r.target.method == hyper::Method::POST);
    let inproc_before = if with_login { inproc() } else { f64::NAN };

    let limits = Limits {
        connections,
        duration: Duration::from_secs_f64(seconds),
        max_requests: 10_000_000,
    };
    for _ in 0..rounds {
        for row in &mut rows {
            let cpu = || thread_cpu_seconds("server").zip(thread_cpu_seconds("loadgen"));
            let before = cpu();
            let out = client_rt.block_on(load::run(addr, &row.target, limits));
            if let (Some(a), Some(b)) = (before, cpu()) {
                row.server_cpu += b.0 - a.0;
                row.client_cpu += b.1 - a.1;
                row.served += out.requests;
            }
            row.rates.push(out.rate());
            row.errors += out.errors;
            if out.errors > 0 {
                eprintln!(
                    "{}: unexpected statuses {:?}",
                    row.target.name, out.statuses
                );
            }
            row.latencies.extend(out.latencies);
            fx.clear_sessions(&server_rt);
        }
    }
    let inproc_after = if with_login { inproc() } else { f64::NAN };
    drop(server);

    report(&mut rows, inproc_before, inproc_after, cores);
}

/// Puts the load generator's threads under `SCHED_BATCH`, so that their wake-ups do not
/// preempt server threads mid-request (`--generator-preempts` skips this).
fn batch_generator(threads: usize) {
    // A new thread names itself once it runs: wait (briefly) until all of them have.
    let mut moved = batch_schedule("loadgen");
    for _ in 0..100 {
        if !matches!(moved, Ok(n) if n < threads) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        moved = batch_schedule("loadgen");
    }
    match moved {
        Ok(n) => println!(
            "load generator: {n} thread(s) under SCHED_BATCH (they do not preempt server threads when they wake up)"
        ),
        Err(e) => println!("load generator: under the normal policy ({e})"),
    }
}

/// A work-stealing runtime whose threads are named `name` (the CPU accounting finds them by
/// name).
fn named_runtime(name: &str, threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Prints the table and the targets; exits non-zero when a request failed.
fn report(rows: &mut [Row], inproc_before: f64, inproc_after: f64, cores: usize) {
    println!("\n## HTTP over loopback\n");
    println!(
        "| row | median rate | min–max | p50 latency | p99 latency | server CPU per request | load-generator CPU per request | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows.iter_mut() {
        row.latencies.sort_by(f64::total_cmp);
        let mut r = row.rates.clone();
        r.sort_by(f64::total_cmp);
        println!(
            "| {} | {} | {}–{} | {} | {} | {} | {} | {} |",
            row.target.name,
            fmt_rate(median(&r)),
            fmt_rate(r[0]),
            fmt_rate(r[r.len() - 1]),
            fmt_ns(percentile(&row.latencies, 50.0)),
            fmt_ns(percentile(&row.latencies, 99.0)),
            row.cpu_per_request()
                .map_or_else(|| "?".to_owned(), |s| fmt_ns(s * 1e9)),
            row.client_cpu_per_request()
                .map_or_else(|| "?".to_owned(), |s| fmt_ns(s * 1e9)),
            row.errors
        );
    }
    let inproc_rate = inproc_before.max(inproc_after);
    if inproc_rate.is_finite() {
        println!(
        "\nin-process login: {} / {} on one core (before / after the HTTP rows); × {cores} cores = {}",
        fmt_rate(inproc_before),
        fmt_rate(inproc_after),
        fmt_rate(inproc_rate * cores as f64)
    );
    }
    let find = |prefix: &str| rows.iter().position(|r| r.target.name.starts_with(prefix));
    let per_round = |a: usize, b: usize| -> f64 {
        let mut r: Vec<f64> = rows[a]
            .rates
            .iter()
            .zip(&rows[b].rates)
            .map(|(x, y)| x / y)
            .collect();
        r.sort_by(f64::total_cmp);
        median(&r)
    };
    let health = find("GET /healthz");
    let check = find("GET /auth/check");
    let jwt_rsa = find("GET /jwt/protected, jsonwebtoken::decode per request (RS256)");
    let jwt_ec = find("GET /jwt/protected, jsonwebtoken::decode per request (ES256)");
    if let Some(login) = find("POST /auth/jwt/login") {
        login_target(rows, login, health, inproc_rate, cores);
    }
    if let (Some(check), Some(health)) = (check, health) {
        let ratio = per_round(check, health);
        target(
            "GET /auth/check / GET /healthz throughput",
            &format!("{ratio:.2}"),
            "≥ 0.8",
            ratio >= 0.8,
        );
        // The throughput ratio is only the server's when the server is the bottleneck of both
        // rows; with one load-generator thread on the same cores, `/healthz` is partly limited
        // by the generator. Server CPU per request is what the server itself spends, so its
        // inverse ratio is the throughput ratio on cores of the server's own.
        if let (Some(c), Some(h)) = (
            rows[check].cpu_per_request(),
            rows[health].cpu_per_request(),
        ) {
            println!(
                "server CPU per request: GET /auth/check {} vs. GET /healthz {}: throughput ratio on dedicated server cores ≈ {:.2}",
                fmt_ns(c * 1e9),
                fmt_ns(h * 1e9),
                h / c
            );
        }
    }
    if let (Some(check), Some(jwt)) = (check, jwt_rsa) {
        let ratio = per_round(check, jwt);
        target(
            "bearer request / jsonwebtoken-per-request (RS256) throughput",
            &format!("{ratio:.2}×"),
            "≥ 5×",
            ratio >= 5.0,
        );
    }
    if let (Some(check), Some(jwt)) = (check, jwt_ec) {
        let ratio = per_round(check, jwt);
        println!("bearer request / jsonwebtoken-per-request (ES256) throughput: {ratio:.2}×");
    }
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    if errors > 0 {
        eprintln!("{errors} requests failed or had an unexpected status");
        std::process::exit(1);
    }
}

/// The HTTP login target, and the ceiling that the `/healthz` round trip puts on it.
fn login_target(rows: &[Row], login: usize, health: Option<usize>, inproc_rate: f64, cores: usize) {
    let mut rates = rows[login].rates.clone();
    rates.sort_by(f64::total_cmp);
    let ratio = median(&rates) / (inproc_rate * cores as f64);
    target(
        "HTTP login rate / (in-process login rate × cores)",
        &format!("{ratio:.2}"),
        "≥ 0.6",
        ratio >= 0.6,
    );
    if let Some(trip) = health.and_then(|h| rows[h].total_cpu_per_request()) {
        // What the loopback round trip itself costs here: the CPU time of one `/healthz`
        // request, server and load generator together (each end's kernel TCP work is charged
        // to the thread that does it). A login over HTTP costs at least that plus the
        // in-process login, which caps the ratio.
        let login_cost = 1.0 / inproc_rate;
        let ceiling = login_cost / (login_cost + trip);
        println!(
            "transport floor: one `GET /healthz` costs {} of CPU (load generator + server, loopback TCP included); with an in-process login of {}, the HTTP login ratio cannot exceed {ceiling:.2} on this machine; measured {ratio:.2} = {:.2} of that ceiling",
            fmt_ns(trip * 1e9),
            fmt_ns(login_cost * 1e9),
            ratio / ceiling
        );
    }
}

impl Row {
    /// Server CPU seconds per response over all rounds (`None` without `/proc`).
    fn cpu_per_request(&self) -> Option<f64> {
        (self.served > 0 && self.server_cpu > 0.0).then(|| self.server_cpu / self.served as f64)
    }

    /// Load-generator CPU seconds per response (`None` without `/proc`).
    fn client_cpu_per_request(&self) -> Option<f64> {
        (self.served > 0 && self.client_cpu > 0.0).then(|| self.client_cpu / self.served as f64)
    }

    /// Server and load-generator CPU seconds per response (`None` without `/proc`).
    fn total_cpu_per_request(&self) -> Option<f64> {
        self.cpu_per_request()
            .map(|s| s + self.client_cpu / self.served as f64)
    }

    fn new(target: Target) -> Self {
        Row {
            target,
            rates: Vec::new(),
            latencies: Vec::new(),
            errors: 0,
            server_cpu: 0.0,
            client_cpu: 0.0,
            served: 0,
        }
    }
}

/// The rows, in the order they run each round.
fn rows(bearer: &str, rsa_token: &str, ec_token: &str) -> Vec<Row> {
    let check = format!("/auth/check?action={ACTION}&resource={RESOURCE}");
    vec![
        Row::new(Target::get("GET /healthz (unauthenticated)", "/healthz")),
        Row::new(
            Target::get("GET /auth/check (bearer, allowed: 204)", &check)
                .bearer(bearer)
                .expect(204),
        ),
        Row::new(Target::post_json(
            "POST /auth/jwt/login (RS256 Entra token)",
            "/auth/jwt/login",
            serde_json::json!({ "token": rsa_token }).to_string(),
        )),
        Row::new(
            Target::get(
                "GET /jwt/protected, jsonwebtoken::decode per request (RS256)",
                "/jwt/protected",
            )
            .bearer(rsa_token),
        ),
        Row::new(
            Target::get(
                "GET /jwt/protected, jsonwebtoken::decode per request (ES256)",
                "/jwt/protected",
            )
            .bearer(ec_token),
        ),
    ]
}

/// The jwt-exchange router plus `GET /healthz` and the `jsonwebtoken`-per-request route.
fn app(ex: Exchange, keys: JwtKeys) -> Router {
    jwt_exchange::axum::RouterBuilder::new(ex)
        .build()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/jwt/protected",
            get(protected).layer(axum::middleware::from_fn_with_state(
                keys,
                jwt_authorizer_like,
            )),
        )
}
