//! Per-request auth: the jwt-exchange bearer request against the `jwt-authorizer` crate
//! verifying the IdP's JWT on every request, in one process, in one run, interleaved.
//!
//! - **Ours**: the jwt-exchange axum 0.8 router. The client logged in once with the IdP token
//!   (`POST /auth/jwt/login` equivalent, `Exchange::login`) and presents the HMAC bearer it got
//!   on every request: `GET /auth/check` (authenticate + authorize against the session's two
//!   policies → `204`, the project's "bearer request", as in the `http` bench) and, like-for-like
//!   with theirs, `GET /protected` whose handler takes the `Principal` extractor (authenticate
//!   only → `200` + the identity).
//! - **Theirs**: `jwt-authorizer` 0.15 (the latest release; it needs axum 0.7, hence this
//!   standalone project) layered on an axum 0.7 router with one route, `GET /protected`, whose
//!   handler takes `JwtClaims<EntraClaims>` (→ `200` + the `oid`). Every request verifies the
//!   IdP's JWT: signature (RS256, or ES256 in a second row) with the key from the JWKS, `exp`,
//!   `nbf`, issuer, audience, and the tenant through a claims check — what our provider checks at
//!   login.
//!
//! Fairness: the same IdP (the bench fixture's loopback JWKS server), the same keys, the same
//! Entra-shaped token (ours exchanged it once for the bearer; theirs verifies it every time),
//! keys cached on both sides — our verifier loaded the JWKS at start-up, jwt-authorizer loads it
//! on a warm-up request before any timing, and the JWKS server's hit counter proves neither side
//! fetches it again while timed. Both sides get the same requests, built the same way, through
//! `tower::Service::call` (in-process) or over the same loopback HTTP/1.1 load generator, on the
//! same runtimes; the cases run round-robin so a busy machine slows both alike.
//!
//! Two tables, each with our `GET /auth/check` as the baseline, so a jwt-authorizer row's ratio
//! is its time per request ÷ ours = **our throughput ÷ jwt-authorizer's**:
//!
//! 1. in-process through the router (no sockets: the cost of the auth layer + routing);
//! 2. over loopback HTTP (`jwt_exchange_bench::load`, closed loop, keep-alive connections).
//!
//! Timings are reported, never asserted. The process exits non-zero if any request got another
//! status than expected or the JWKS was fetched during timing: a broken comparison.
//!
//! `cargo run --release --manifest-path benches/peers/jwt-authorizer/Cargo.toml -- [--quick]
//! [--samples N] [--sample-ms MS] [--http-sample-ms MS] [--connections N] [--server-threads N]
//! [--client-threads N]`

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use jwt_authorizer::{Authorizer, IntoLayer as _, JwtAuthorizer, JwtClaims, Validation};
use jwt_exchange::{Algorithm, Exchange, Principal};
use jwt_exchange_bench::fixture::{
    entra_token, runtime, standard_roles, EntraClaims, Fixture, Options, ACTION, RESOURCE,
};
use jwt_exchange_bench::harness::{fmt_ns, header, target, Stats};
use jwt_exchange_bench::load::{self, Limits, Server, Target};
use jwt_exchange_bench::{Bench, Case};
use jwt_exchange_testkit::claims::{ENTRA_AUDIENCE, ENTRA_ISSUER, ENTRA_TENANT};
use tokio::runtime::Runtime;
use tower::{Service, ServiceExt as _};

/// Row names, in the order the cases run (the first is the baseline of both tables).
const ROWS: [&str; 4] = [
    "ours: GET /auth/check, jwt-exchange HMAC bearer (authenticate + authorize, 2 policies → 204)",
    "ours: GET /protected, jwt-exchange HMAC bearer, Principal extractor (authenticate → 200)",
    "jwt-authorizer 0.15: GET /protected, RS256 IdP JWT verified per request (→ 200 + claims)",
    "jwt-authorizer 0.15: GET /protected, ES256 IdP JWT verified per request (→ 200 + claims)",
];

/// The goal of issue 7: our bearer request at least this many times jwt-authorizer's throughput.
const GOAL: f64 = 5.0;

/// One row's request: path and query, `Authorization: Bearer` credential, the status it must get.
struct Req {
    uri: Uri,
    auth: HeaderValue,
    expect: StatusCode,
}

impl Req {
    fn new(path: &str, credential: &str, expect: StatusCode) -> Self {
        Req {
            uri: path.parse().expect("a valid path"),
            auth: HeaderValue::from_str(&format!("Bearer {credential}")).expect("header value"),
            expect,
        }
    }

    /// The request, built the same way for both sides (only the body type differs: each axum
    /// version's own empty body).
    fn build<B>(&self, body: B) -> Request<B> {
        let mut req = Request::new(body);
        *req.uri_mut() = self.uri.clone();
        req.headers_mut().insert(AUTHORIZATION, self.auth.clone());
        req
    }

    /// The load generator's equivalent of this request.
    fn target(&self, name: &str, credential: &str) -> Target {
        Target::get(name, self.uri.to_string())
            .bearer(credential)
            .expect(self.expect.as_u16())
    }
}

fn main() {
    let bench = Bench::from_env();
    header("peers/jwt-authorizer", &bench);
    let setup = Setup::from_bench(&bench);
    let server_rt = multi_thread(setup.server_threads, "server runtime");
    let client_rt = multi_thread(setup.client_threads, "client runtime");
    let rt = runtime();

    let subjects = Subjects::start(&server_rt);
    let jwks_hits = subjects.warm_up(&server_rt);

    let refused: [Cell<u64>; 4] = Default::default();
    let inproc = in_process_table(&bench, &rt, &subjects, &refused);
    let failed: [Cell<u64>; 4] = Default::default();
    let over_http = http_table(&setup, &server_rt, &client_rt, &subjects, &failed);

    println!();
    report("in-process", &inproc);
    report("loopback HTTP", &over_http);
    let refetched = subjects.fx.server.jwks_hits() - jwks_hits;
    if !sound(refetched, &refused, &failed) {
        std::process::exit(1);
    }
}

/// The options beyond the harness's (`--quick`, `--samples`, `--sample-ms`).
struct Setup {
    connections: usize,
    server_threads: usize,
    client_threads: usize,
    /// The harness for the HTTP table: same options, longer samples (`--http-sample-ms`).
    http_bench: Bench,
}

impl Setup {
    fn from_bench(bench: &Bench) -> Self {
        let num = |name: &str, default: usize| -> usize {
            bench
                .value(name)
                .map_or(default, |v| v.parse().expect("a number"))
        };
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let connections = num("--connections", bench.pick(4, 32));
        assert!(connections > 0, "--connections must be at least 1");
        let server_threads = num("--server-threads", cores);
        let client_threads = num("--client-threads", 1);
        let http_sample_ms = num("--http-sample-ms", bench.pick(20, 250));
        // The HTTP rows open their connections once per sample: longer samples keep that
        // overhead negligible. `--samples` and `--quick` apply to both tables.
        let http_bench = Bench::from_args(
            std::env::args()
                .skip(1)
                .chain(["--sample-ms".to_owned(), http_sample_ms.to_string()]),
        );
        println!(
            "set-up: in-process on one current-thread runtime; HTTP: both servers on one runtime \
             of {server_threads} threads, load generator {client_threads} thread(s), \
             {connections} keep-alive connections, {http_sample_ms} ms samples"
        );
        Setup {
            connections,
            server_threads,
            client_threads,
            http_bench,
        }
    }
}

/// A multi-thread runtime with I/O and timers.
fn multi_thread(threads: usize, what: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect(what)
}

/// The IdP, both routers, and the request of each row.
struct Subjects {
    fx: Fixture,
    ours: axum::Router,
    theirs: axum07::Router,
    /// Per row (see [`ROWS`]): the request and the credential it presents.
    reqs: [(Req, String); 4],
}

impl Subjects {
    /// Starts the IdP and our exchange on `rt` (its verifier loads the JWKS), logs in once with
    /// the RS256 IdP token for our bearer, builds both routers.
    fn start(rt: &Runtime) -> Self {
        let fx = rt.block_on(Fixture::start(Options::default()));
        let rsa_token = entra_token(fx.key(Algorithm::RS256), &standard_roles());
        let ec_token = entra_token(fx.key(Algorithm::ES256), &standard_roles());
        let bearer = rt
            .block_on(fx.exchange.login(&rsa_token))
            .expect("login with the RS256 IdP token")
            .token
            .as_str()
            .to_owned();
        let ours = ours(fx.exchange.clone());
        let theirs = rt.block_on(theirs(&fx.server.jwks_url()));
        let check = format!("/auth/check?action={ACTION}&resource={RESOURCE}");
        let row = |path: &str, credential: String, expect| {
            (Req::new(path, &credential, expect), credential)
        };
        let reqs = [
            row(&check, bearer.clone(), StatusCode::NO_CONTENT),
            row("/protected", bearer, StatusCode::OK),
            row("/protected", rsa_token, StatusCode::OK),
            row("/protected", ec_token, StatusCode::OK),
        ];
        Subjects {
            fx,
            ours,
            theirs,
            reqs,
        }
    }

    /// Once, untimed: every row gets its status; jwt-authorizer fetches the JWKS here. Returns
    /// the JWKS server's hit count after it.
    fn warm_up(&self, rt: &Runtime) -> usize {
        let before = self.fx.server.jwks_hits();
        rt.block_on(async {
            for (r, _) in &self.reqs[..2] {
                let req = r.build(axum::body::Body::empty());
                expect_status(&mut self.ours.clone(), req, r).await;
            }
            for (r, _) in &self.reqs[2..] {
                let req = r.build(axum07::body::Body::empty());
                expect_status(&mut self.theirs.clone(), req, r).await;
            }
        });
        let after = self.fx.server.jwks_hits();
        println!(
            "JWKS fetches before timing: {before} by jwt-exchange (start-up), {} by \
             jwt-authorizer (warm-up request)",
            after - before
        );
        after
    }
}

/// Table 1: every row through its router in-process, on `rt`.
fn in_process_table(
    bench: &Bench,
    rt: &Runtime,
    s: &Subjects,
    refused: &[Cell<u64>; 4],
) -> Vec<Stats> {
    let ours_body = || axum::body::Body::empty();
    let theirs_body = || axum07::body::Body::empty();
    let r = &s.reqs;
    let mut cases = [
        in_process(ROWS[0], rt, s.ours.clone(), &r[0].0, &refused[0], ours_body),
        in_process(ROWS[1], rt, s.ours.clone(), &r[1].0, &refused[1], ours_body),
        in_process(
            ROWS[2],
            rt,
            s.theirs.clone(),
            &r[2].0,
            &refused[2],
            theirs_body,
        ),
        in_process(
            ROWS[3],
            rt,
            s.theirs.clone(),
            &r[3].0,
            &refused[3],
            theirs_body,
        ),
    ];
    bench.compare(
        "In-process through the router, no sockets (ratio: time per request ÷ the baseline's; \
         for a jwt-authorizer row, our throughput ÷ its throughput)",
        &mut cases,
    )
}

/// Table 2: both routers served on loopback from `server_rt`, loaded from `client_rt`.
fn http_table(
    setup: &Setup,
    server_rt: &Runtime,
    client_rt: &Runtime,
    s: &Subjects,
    failed: &[Cell<u64>; 4],
) -> Vec<Stats> {
    let our_server = Server::start(server_rt, s.ours.clone());
    let (their_addr, their_server) = serve07(server_rt, s.theirs.clone());
    let addrs = [our_server.addr, our_server.addr, their_addr, their_addr];
    let mut cases: Vec<Case<'_>> = (0..4)
        .map(|i| {
            let (req, credential) = &s.reqs[i];
            let target = req.target(ROWS[i], credential);
            loopback(client_rt, addrs[i], target, setup.connections, &failed[i])
        })
        .collect();
    let stats = setup.http_bench.compare(
        "Over loopback HTTP/1.1 (ratio: time per request ÷ the baseline's; for a \
         jwt-authorizer row, our throughput ÷ its throughput)",
        &mut cases,
    );
    drop(our_server);
    their_server.abort();
    stats
}

/// Whether the comparison held: no JWKS fetch while timed, every request got its status.
fn sound(refetched: usize, refused: &[Cell<u64>; 4], failed: &[Cell<u64>; 4]) -> bool {
    let mut ok = true;
    if refetched > 0 {
        eprintln!("the JWKS was fetched {refetched} time(s) during timing: keys were not cached");
        ok = false;
    }
    for (table, counts) in [("in-process", refused), ("loopback HTTP", failed)] {
        for (name, n) in ROWS.iter().zip(counts) {
            if n.get() > 0 {
                eprintln!(
                    "{table}: {} request(s) of `{name}` failed or got another status",
                    n.get()
                );
                ok = false;
            }
        }
    }
    ok
}

/// Prints the target line and the secondary figures of one table.
fn report(table: &str, stats: &[Stats]) {
    let ratio = |i: usize| stats[i].ratio.unwrap_or(f64::NAN);
    target(
        &format!("bearer request / jwt-authorizer ({table}, RS256)"),
        &format!("{:.2}×", ratio(2)),
        &format!("≥ {GOAL}×"),
        ratio(2) >= GOAL,
    );
    println!(
        "  {table}: bearer request / jwt-authorizer (ES256): {:.2}×; like-for-like `GET /protected` \
         (`Principal`, {}) / jwt-authorizer: {:.2}× (RS256), {:.2}× (ES256), ratios of medians",
        ratio(3),
        fmt_ns(stats[1].median),
        stats[2].median / stats[1].median,
        stats[3].median / stats[1].median,
    );
}

/// The jwt-exchange router plus `GET /protected`, an application route taking the `Principal`.
fn ours(exchange: Exchange) -> axum::Router {
    jwt_exchange::axum::router(exchange.clone()).merge(
        axum::Router::new()
            .route("/protected", axum::routing::get(ours_protected))
            .with_state(exchange),
    )
}

async fn ours_protected(who: Principal) -> String {
    who.identity.clone()
}

/// An axum 0.7 router with `GET /protected` behind jwt-authorizer, configured for the fixture's
/// IdP: its JWKS URL (keys loaded lazily, on the first request, then cached: the default
/// refresh strategy refetches only for an unknown `kid`), `exp`, `nbf`, issuer, audience, and
/// the pinned tenant — what our provider validates at login.
async fn theirs(jwks_url: &str) -> axum07::Router {
    let authorizer: Authorizer<EntraClaims> = JwtAuthorizer::from_jwks_url(jwks_url)
        .validation(
            Validation::new()
                .iss(&[ENTRA_ISSUER])
                .aud(&[ENTRA_AUDIENCE])
                .nbf(true),
        )
        .check(|c: &EntraClaims| c.tid == ENTRA_TENANT)
        .build()
        .await
        .expect("jwt-authorizer builds");
    axum07::Router::new()
        .route("/protected", axum07::routing::get(theirs_protected))
        .layer(authorizer.into_layer())
}

async fn theirs_protected(JwtClaims(claims): JwtClaims<EntraClaims>) -> String {
    claims.oid
}

/// Serves the axum 0.7 router on an ephemeral loopback port from `rt`; abort the task to stop.
fn serve07(rt: &Runtime, app: axum07::Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let task = rt.spawn(async move {
        let _ = axum07::serve(listener, app).await;
    });
    (addr, task)
}

/// Sends `req` through `svc` (waiting until it is ready) and returns the response.
async fn send<S, B, R>(svc: &mut S, req: Request<B>) -> Response<R>
where
    S: Service<Request<B>, Response = Response<R>, Error = Infallible>,
{
    let Ok(ready) = svc.ready().await;
    let Ok(resp) = ready.call(req).await;
    resp
}

/// Untimed check: `req` gets `expected.expect`, or the comparison is broken.
async fn expect_status<S, B, R>(svc: &mut S, req: Request<B>, expected: &Req)
where
    S: Service<Request<B>, Response = Response<R>, Error = Infallible>,
{
    let resp = send(svc, req).await;
    assert_eq!(
        resp.status(),
        expected.expect,
        "{} answered {} ({:?})",
        expected.uri,
        resp.status(),
        resp.headers().get(http::header::WWW_AUTHENTICATE)
    );
}

/// A case sending `req` through the router `svc` `n` times on `rt` (no sockets), counting the
/// responses with another status in `refused` (never panicking while timed).
fn in_process<'a, S, B, R>(
    name: &str,
    rt: &'a Runtime,
    mut svc: S,
    req: &'a Req,
    refused: &'a Cell<u64>,
    body: impl Fn() -> B + 'a,
) -> Case<'a>
where
    S: Service<Request<B>, Response = Response<R>, Error = Infallible> + 'a,
{
    Case::new(name, move |n| {
        rt.block_on(async {
            let mut bad = 0;
            for _ in 0..n {
                if send(&mut svc, req.build(body())).await.status() != req.expect {
                    bad += 1;
                }
            }
            refused.set(refused.get() + bad);
        });
    })
}

/// A case sending `n` requests to `addr` over `connections` keep-alive loopback connections
/// (bounded by the count, and by a minute as a safety net), counting failures and unexpected
/// statuses in `failed`.
fn loopback<'a>(
    client_rt: &'a Runtime,
    addr: SocketAddr,
    target: Target,
    connections: usize,
    failed: &'a Cell<u64>,
) -> Case<'a> {
    Case::new(target.name.clone(), move |n| {
        let limits = Limits {
            connections,
            duration: Duration::from_secs(60),
            max_requests: n,
        };
        let out = client_rt.block_on(load::run(addr, &target, limits));
        failed.set(failed.get() + out.errors + n.saturating_sub(out.requests));
    })
}
