//! `jwt-exchange serve --config FILE [--listen ADDR]`: the standalone server — the full router
//! plus `GET /healthz`, `GET /readyz` and `GET /metrics` — with graceful shutdown on SIGTERM /
//! SIGINT (in-flight requests finish).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use jwt_exchange::jwks::KeyStatus;
use jwt_exchange::store::{CachedStore, MemoryStore, NearCacheStats, SessionStore};
use jwt_exchange::{Exchange, SystemClock, Verifier};

use crate::config::{Loaded, StoreKind};
use crate::latency::Latency;
use crate::Failure;

/// `serve` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Configuration file (`.yaml`, `.yml` or `.toml`).
    #[arg(long)]
    config: PathBuf,
    /// Listen address; overrides `listen_address` from the file (default 127.0.0.1:8000).
    #[arg(long)]
    listen: Option<String>,
    /// Only check the configuration (nothing is connected, fetched or written), then exit:
    /// 0 when it is valid, 2 otherwise.
    #[arg(long)]
    check: bool,
}

pub(crate) async fn run(a: Args) -> Result<(), Failure> {
    let loaded = crate::config::load(&a.config)?;
    if let Some(listen) = &a.listen {
        // The same rule as `listen_address` in the file: a configuration error (exit 2), not
        // a failure to bind (exit 1).
        listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| Failure::Config(format!("--listen {listen:?}: not an address: {e}")))?;
    }
    if a.check {
        loaded.check_bearer_keys()?;
        println!(
            "{}: configuration OK ({} provider(s), {} group(s), {} polic(ies), {:?} session store, listening on {})",
            a.config.display(),
            loaded.file.auth.providers.jwt.0.len(),
            loaded.policies.groups.len(),
            loaded.policies.policies.len(),
            loaded.file.session_store.kind,
            loaded.listen_address(a.listen.as_deref()),
        );
        return Ok(());
    }
    let addr = loaded.listen_address(a.listen.as_deref());
    let mut server = Server::build(&loaded).await?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| Failure::Run(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::Run(e.to_string()))?;
    tracing::info!(address = %local, store = ?loaded.file.session_store.kind, providers = server.exchange.verifier().issuers().count(), threads = server.threads, "jwt-exchange listening");
    let ops = match server.ops.take() {
        Some((addr, router)) => Some(serve_ops(addr, router).await?),
        None => None,
    };
    let draining = Arc::clone(&server.draining);
    let signal = async move {
        shutdown_signal().await;
        draining.store(true, Ordering::Relaxed);
    };
    let result = server.serve(listener, signal).await;
    // The probes and metrics answer (`/readyz` with 503) until the API has drained, then stop
    // too, waiting for their own requests no longer than the API's did.
    if let Some((stop, task)) = ops {
        let _ = stop.send(());
        if tokio::time::timeout(DRAIN_TIMEOUT, task).await.is_err() {
            tracing::warn!("the probe and metrics listener did not stop within {DRAIN_TIMEOUT:?}");
        }
    }
    result
}

/// Serves the operational routes on their own listener (`server.ops_listen_address`) on the
/// main runtime, until `stop` fires. They are cheap and few, so plain `axum::serve` (one
/// connection task each, no thread per core) is enough; the address is meant to be reachable
/// only by the orchestrator and the metrics scraper.
async fn serve_ops(
    addr: std::net::SocketAddr,
    router: Router,
) -> Result<
    (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ),
    Failure,
> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::Run(format!("cannot listen on {addr} (ops): {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::Run(e.to_string()))?;
    tracing::info!(address = %local, "probes and metrics listening");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the probe and metrics listener failed");
        }
    });
    Ok((stop, task))
}

/// A built server: the exchange and the HTTP application.
pub(crate) struct Server {
    pub(crate) exchange: Exchange,
    pub(crate) app: Router,
    /// `server.ops_listen_address` and the operational routes it serves apart from `app`.
    pub(crate) ops: Option<(std::net::SocketAddr, Router)>,
    /// Set when shutdown begins (see [`Ops::draining`]).
    draining: Arc<std::sync::atomic::AtomicBool>,
    header_read_timeout: std::time::Duration,
    max_connections: usize,
    threads: usize,
}

impl Server {
    /// Builds stores, verifier, exchange and router from a loaded configuration.
    pub(crate) async fn build(loaded: &Loaded) -> Result<Server, Failure> {
        let providers = loaded.file.auth.providers.jwt.clone();
        let verifier = Verifier::new(providers).map_err(|e| Failure::Config(e.to_string()))?;
        let opened = open_store(loaded).await?;
        let exchange = Exchange::builder(verifier, loaded.bearer_keys()?)
            .store(opened.store)
            .policies(loaded.policies.clone())
            .replay_protection(loaded.file.auth.replay_protection)
            .build()
            .map_err(|e| Failure::Config(e.to_string()))?;
        let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut auth = jwt_exchange::axum::RouterBuilder::new(exchange.clone());
        if let Some(fa) = &loaded.file.forward_auth {
            auth = auth.forward_auth(fa.clone());
        }
        // One list serves the router and the duration histograms, so no route of either is
        // missing from the other.
        let ops_routes = [
            ("/healthz", get(healthz)),
            ("/readyz", get(readyz)),
            ("/metrics", get(metrics)),
        ];
        let latency = Latency::new(
            jwt_exchange::axum::routes()
                .into_iter()
                .chain(ops_routes.iter().map(|(path, _)| (Method::GET, *path))),
        );
        let ops = ops_routes
            .into_iter()
            .fold(Router::new(), |router, (path, handler)| {
                router.route(path, handler)
            })
            .with_state(Ops {
                exchange: exchange.clone(),
                near_cache: opened.near_cache,
                latency: Arc::clone(&latency),
                draining: Arc::clone(&draining),
            });
        let server = &loaded.file.server;
        // The duration layer is outermost, so a request cut off by the timeout counts too.
        let layered = |router: Router| {
            router
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    server.request_timeout,
                ))
                .layer(axum::middleware::from_fn_with_state(
                    Arc::clone(&latency),
                    crate::latency::record,
                ))
        };
        let (app, ops) = match server.ops_listen_address {
            Some(addr) => (layered(auth.build()), Some((addr, layered(ops)))),
            None => (layered(auth.build().merge(ops)), None),
        };
        Ok(Server {
            app,
            ops,
            draining,
            exchange,
            header_read_timeout: server.header_read_timeout,
            max_connections: server.max_connections,
            threads: server.threads,
        })
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (for at most
    /// [`DRAIN_TIMEOUT`]).
    ///
    /// Thread per core: `server.threads` HTTP threads, each running its own single-threaded
    /// runtime, and a connection is served start to end by one of them, so a request never
    /// wakes another thread (tokio's work-stealing runtime wakes a parked worker whenever one
    /// has queued work, and a login's 15–25 µs signature check is long enough for that to
    /// happen mid-request: on the two-vCPU benchmark VM this serves ~10 % more logins per
    /// second, see docs/performance.md). Connections are accepted here, on the
    /// main runtime, and each goes to the thread serving the fewest connections at that moment:
    /// threads accepting from a shared socket themselves would let one thread take a whole
    /// burst of new connections (a gateway opening its pool) and leave the other cores idle
    /// (Envoy's "exact balance" answers the same problem). The exchange's background work (key
    /// refreshes, store connections, the session sweeper) stays on the main runtime.
    ///
    /// A hand-rolled accept loop rather than `axum::serve`, also for what the latter cannot do:
    /// a header-read timeout (slowloris), and a cap on concurrent connections (descriptor
    /// exhaustion). The request timeout (slow bodies, stuck handlers) is a layer on the app.
    pub(crate) async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), Failure> {
        let failed = |what: &str, e: std::io::Error| Failure::Run(format!("{what}: {e}"));
        let permits = Arc::new(tokio::sync::Semaphore::new(self.max_connections));
        let mut lanes = Vec::with_capacity(self.threads);
        let mut finished = Vec::with_capacity(self.threads);
        for i in 0..self.threads {
            let (connections, incoming) = tokio::sync::mpsc::unbounded_channel();
            let live = Arc::new(AtomicUsize::new(0));
            let worker = Worker {
                app: self.app.clone(),
                header_read_timeout: self.header_read_timeout,
                live: Arc::clone(&live),
            };
            // The thread builds its own runtime (a runtime may not be dropped on an async
            // task, which a failure here would otherwise do) and says whether it could.
            let (started, start) = tokio::sync::oneshot::channel::<std::io::Result<()>>();
            let (done, finish) = tokio::sync::oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("http-{i}"))
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = started.send(Err(e));
                            return;
                        }
                    };
                    let _ = started.send(Ok(()));
                    runtime.block_on(worker.run(incoming));
                    // Blocking work still running (a DNS lookup, a redb write) gets a bounded
                    // wait, as in-flight requests do.
                    runtime.shutdown_timeout(DRAIN_TIMEOUT);
                    let _ = done.send(());
                })
                // The threads started so far stop when `lanes` is dropped.
                .map_err(|e| failed("cannot start an HTTP thread", e))?;
            match start.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(failed("cannot start an HTTP runtime", e)),
                Err(_) => {
                    return Err(Failure::Run(
                        "an HTTP thread stopped while starting".to_owned(),
                    ))
                }
            }
            lanes.push(Lane { connections, live });
            finished.push(finish);
        }
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = &mut shutdown => break,
            };
            let stream = match accepted.and_then(|(s, _)| {
                let _ = s.set_nodelay(true);
                s.into_std()
            }) {
                Ok(stream) => stream,
                Err(e) => {
                    // Out of descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (thread, lane) = lanes
                .iter()
                .enumerate()
                .min_by_key(|(_, l)| l.live.load(Ordering::Relaxed))
                .expect("at least one HTTP thread");
            let live = lane.live.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::debug!(thread, live, "connection handed to an HTTP thread");
            if lane.connections.send((stream, permit)).is_err() {
                // Only if the thread panicked; the connection is closed, and the lane is never
                // the least busy again.
                lane.live.store(usize::MAX / 2, Ordering::Relaxed);
                tracing::error!(thread, "an HTTP thread has stopped");
            }
        }
        drop(listener);
        // Closing the channels tells the threads to drain and stop.
        drop(lanes);
        for finish in finished {
            // A thread that ended early (it cannot, short of a panic) counts as finished.
            let _ = finish.await;
        }
        tracing::info!("jwt-exchange stopped");
        Ok(())
    }
}

/// An accepted connection and its share of `server.max_connections`.
type Connection = (std::net::TcpStream, tokio::sync::OwnedSemaphorePermit);

/// The accept loop's handle on one HTTP thread.
struct Lane {
    connections: tokio::sync::mpsc::UnboundedSender<Connection>,
    /// Connections the thread is serving.
    live: Arc<AtomicUsize>,
}

/// One connection in a thread's `live` count, taken off when dropped.
struct Serving(Arc<AtomicUsize>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one HTTP thread needs.
struct Worker {
    app: Router,
    header_read_timeout: std::time::Duration,
    live: Arc<AtomicUsize>,
}

impl Worker {
    /// Serves the connections it is handed on this thread's runtime until the channel closes,
    /// then waits for its in-flight requests (at most [`DRAIN_TIMEOUT`]).
    async fn run(self, mut incoming: tokio::sync::mpsc::UnboundedReceiver<Connection>) {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use hyper_util::server::conn::auto::Builder;
        use hyper_util::service::TowerToHyperService;

        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        let builder = builder.http1_only();
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let service = TowerToHyperService::new(self.app);
        while let Some((stream, permit)) = incoming.recv().await {
            // Counts the connection until it ends, however it ends.
            let serving = Serving(Arc::clone(&self.live));
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot serve an accepted connection");
                    continue;
                }
            };
            let conn =
                builder.serve_connection_with_upgrades(TokioIo::new(stream), service.clone());
            let conn = graceful.watch(conn.into_owned());
            tokio::spawn(async move {
                let _ = conn.await;
                drop(serving);
                drop(permit);
            });
        }
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(DRAIN_TIMEOUT) => {
                tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}; stopping anyway");
            }
        }
    }
}

/// How long shutdown waits for in-flight requests.
pub(crate) const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The opened session store, and a way to read its near-cache's counters for `/metrics` when
/// one is configured (behind `dyn SessionStore` the cache's own type is gone).
pub(crate) struct Opened {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) near_cache: Option<NearCacheProbe>,
}

/// Reads the near-cache's counters.
pub(crate) type NearCacheProbe = Arc<dyn Fn() -> NearCacheStats + Send + Sync>;

impl Opened {
    fn plain(store: impl SessionStore + 'static) -> Self {
        Opened {
            store: Arc::new(store),
            near_cache: None,
        }
    }

    fn cached<S: SessionStore + 'static>(store: CachedStore<S>) -> Self {
        let store = Arc::new(store);
        let probe = Arc::clone(&store);
        Opened {
            store,
            near_cache: Some(Arc::new(move || probe.stats())),
        }
    }
}

/// Opens the configured session store. A store that cannot be reached at start-up is a start-up
/// failure (exit 1); once running, an outage answers 503 and the store reconnects by itself.
pub(crate) async fn open_store(loaded: &Loaded) -> Result<Opened, Failure> {
    let s = &loaded.file.session_store;
    let url = s.url.as_deref().unwrap_or_default();
    Ok(match s.kind {
        StoreKind::Memory => Opened::plain(MemoryStore::new(Arc::new(SystemClock))),
        StoreKind::Embedded => {
            let path = loaded.embedded_store_path();
            let store =
                jwt_exchange_redb::RedbStore::open(&path, Arc::new(SystemClock)).map_err(|e| {
                    Failure::Run(format!(
                        "opening the embedded store {}: {e}",
                        path.display()
                    ))
                })?;
            Opened::plain(store)
        }
        StoreKind::Redis => {
            let mut cfg = jwt_exchange_redis::RedisStoreConfig::default();
            if let Some(ns) = &s.namespace {
                cfg = cfg.with_key_prefix(ns.clone());
            }
            if let Some(tls) = &loaded.store_tls {
                cfg = cfg.with_tls(tls.clone());
            }
            cfg = cfg.with_insecure_allow_eviction(s.insecure_allow_eviction);
            let failed = |e: jwt_exchange_redis::ConnectError| {
                Failure::Run(format!(
                    "connecting to the Redis session store: {}",
                    chain(&e)
                ))
            };
            match &s.near_cache {
                None => Opened::plain(
                    jwt_exchange_redis::RedisStore::connect(url, cfg)
                        .await
                        .map_err(failed)?,
                ),
                Some(nc) => {
                    let store =
                        jwt_exchange_redis::RedisStore::connect_cached(url, cfg, nc.config())
                            .await
                            .map_err(failed)?;
                    tracing::info!(
                        max_entries = nc.max_entries,
                        max_age = ?nc.max_age,
                        channel = %store.inner().invalidation_channel(),
                        "session near-cache on (invalidations over Redis pub/sub)"
                    );
                    Opened::cached(store)
                }
            }
        }
        StoreKind::Postgres => match &s.near_cache {
            None => Opened::plain(connect_postgres(loaded, s.migrate.unwrap_or(true)).await?),
            Some(nc) => {
                let store = jwt_exchange_postgres::PostgresStore::connect_cached(
                    url,
                    postgres_config(loaded, s.migrate.unwrap_or(true)),
                    nc.config(),
                )
                .await
                .map_err(|e| postgres_failed(&e))?;
                tracing::info!(
                    max_entries = nc.max_entries,
                    max_age = ?nc.max_age,
                    channel = %store.inner().invalidation_channel(),
                    "session near-cache on (invalidations over Postgres LISTEN/NOTIFY)"
                );
                Opened::cached(store)
            }
        },
    })
}

/// Connects to the configured Postgres store (running migrations when `migrate` is set).
pub(crate) async fn connect_postgres(
    loaded: &Loaded,
    migrate: bool,
) -> Result<jwt_exchange_postgres::PostgresStore, Failure> {
    let url = loaded.file.session_store.url.as_deref().unwrap_or_default();
    jwt_exchange_postgres::PostgresStore::connect(url, postgres_config(loaded, migrate))
        .await
        .map_err(|e| postgres_failed(&e))
}

/// The Postgres store options of the configuration.
fn postgres_config(loaded: &Loaded, migrate: bool) -> jwt_exchange_postgres::PostgresStoreConfig {
    let mut cfg =
        jwt_exchange_postgres::PostgresStoreConfig::default().with_migrate_on_connect(migrate);
    if let Some(ns) = &loaded.file.session_store.namespace {
        cfg = cfg.with_schema(ns.clone());
    }
    if let Some(tls) = &loaded.store_tls {
        cfg = cfg.with_tls(tls.clone());
    }
    cfg
}

fn postgres_failed(e: &jwt_exchange_postgres::ConnectError) -> Failure {
    Failure::Run(format!(
        "connecting to the Postgres session store: {}",
        chain(e)
    ))
}

/// An error and its sources, `: `-separated.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// The state of the operational routes: the exchange, and the near-cache's counters when one
/// is on.
#[derive(Clone)]
struct Ops {
    exchange: Exchange,
    near_cache: Option<NearCacheProbe>,
    latency: Arc<Latency>,
    /// Set when shutdown begins: `/readyz` answers 503 from then on, so a load balancer that
    /// probes the ops listener (which outlives the API's) stops sending traffic.
    draining: Arc<std::sync::atomic::AtomicBool>,
}

/// 200 once the store answers and at least one provider's keys are usable; 503 otherwise,
/// with the reasons. One IdP that is down (or past `jwks_max_stale`) does not take the instance
/// out of service: bearers, and logins through the other providers, still work, and an unready
/// fleet would refuse them all; the answer then says `degraded` and names the provider
/// (`jwtx_jwks_keys` has it per issuer). A near-cache that lost its invalidation subscription
/// does not make the instance unready either: reads then go to the store, which is slower but
/// correct (`/metrics` shows it). From the shutdown signal on it is 503.
async fn readyz(State(ops): State<Ops>) -> Response {
    if ops.draining.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n",
        )
            .into_response();
    }
    let ex = &ops.exchange;
    let mut problems = Vec::new();
    if ex.verifier().is_empty() {
        problems.push("no provider configured".to_owned());
    }
    let keys = ex.verifier().key_status();
    let missing: Vec<String> = keys
        .iter()
        .filter(|s| !s.usable)
        .map(|s| format!("keys of {} not loaded", s.issuer))
        .collect();
    let degraded = if missing.len() < keys.len() {
        missing
    } else {
        problems.extend(missing);
        Vec::new()
    };
    if let Err(e) = ex.store().ping().await {
        problems.push(format!("session store: {e}"));
    }
    if problems.is_empty() && degraded.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else if problems.is_empty() {
        (
            StatusCode::OK,
            format!("ready, degraded: {}\n", degraded.join("; ")),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", problems.join("; ")),
        )
            .into_response()
    }
}

/// Prometheus text exposition format 0.0.4. Every family is listed in docs/operations.md.
async fn metrics(State(ops): State<Ops>) -> Response {
    let ex = &ops.exchange;
    let m = ex.metrics();
    let mut out = String::new();
    family(
        &mut out,
        "jwtx_logins_total",
        "counter",
        "Logins by outcome and failed check.",
    );
    let _ = writeln!(
        out,
        "jwtx_logins_total{{outcome=\"success\",check=\"\"}} {}",
        m.logins_succeeded
    );
    for (check, n) in &m.logins_failed {
        let _ = writeln!(
            out,
            "jwtx_logins_total{{outcome=\"failure\",check=\"{check}\"}} {n}"
        );
    }
    jwks_metrics(&mut out, &ex.verifier().key_status());
    if let Ok(Some(n)) = ex.store().count().await {
        family(
            &mut out,
            "jwtx_active_sessions",
            "gauge",
            "Sessions in the store.",
        );
        let _ = writeln!(out, "jwtx_active_sessions {n}");
    }
    family(
        &mut out,
        "jwtx_authorization_decisions_total",
        "counter",
        "Authorization decisions by outcome.",
    );
    for (decision, n) in [
        ("allow", m.decisions_allow),
        ("deny", m.decisions_deny),
        ("no_match", m.decisions_no_match),
    ] {
        let _ = writeln!(
            out,
            "jwtx_authorization_decisions_total{{decision=\"{decision}\"}} {n}"
        );
    }
    family(
        &mut out,
        "jwtx_sessions_revoked_total",
        "counter",
        "Sessions revoked.",
    );
    let _ = writeln!(out, "jwtx_sessions_revoked_total {}", m.sessions_revoked);
    if let Some(probe) = &ops.near_cache {
        near_cache_metrics(&mut out, &probe());
    }
    ops.latency.write(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// The key cache's families, per issuer.
fn jwks_metrics(out: &mut String, status: &[KeyStatus]) {
    family(
        out,
        "jwtx_jwks_fetches_total",
        "counter",
        "JWKS fetches by issuer and result.",
    );
    for s in status {
        let iss = escape(&s.issuer);
        let _ = writeln!(
            out,
            "jwtx_jwks_fetches_total{{issuer=\"{iss}\",result=\"success\"}} {}",
            s.fetch_successes
        );
        let _ = writeln!(
            out,
            "jwtx_jwks_fetches_total{{issuer=\"{iss}\",result=\"failure\"}} {}",
            s.fetch_failures
        );
    }
    family(
        out,
        "jwtx_jwks_last_success_timestamp_seconds",
        "gauge",
        "Time of the last successful JWKS fetch.",
    );
    for s in status {
        if let Some(t) = s
            .fetched_at
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        {
            let _ = writeln!(
                out,
                "jwtx_jwks_last_success_timestamp_seconds{{issuer=\"{}\"}} {}",
                escape(&s.issuer),
                t.as_secs()
            );
        }
    }
    family(out, "jwtx_jwks_keys", "gauge", "Usable keys per issuer.");
    for s in status {
        let _ = writeln!(
            out,
            "jwtx_jwks_keys{{issuer=\"{}\"}} {}",
            escape(&s.issuer),
            s.keys
        );
    }
}

/// The near-cache's families (only when `session_store.near_cache` is configured).
fn near_cache_metrics(out: &mut String, st: &NearCacheStats) {
    family(
        out,
        "jwtx_near_cache_lookups_total",
        "counter",
        "Session reads by how the near-cache answered: hit (from memory), miss (read the store), bypassed (read the store: no invalidation subscription).",
    );
    for (result, n) in [
        ("hit", st.hits),
        ("miss", st.misses),
        ("bypassed", st.bypassed),
    ] {
        let _ = writeln!(
            out,
            "jwtx_near_cache_lookups_total{{result=\"{result}\"}} {n}"
        );
    }
    for (name, kind, help, value) in [
        (
            "jwtx_near_cache_evictions_total",
            "counter",
            "Entries evicted to stay within near_cache.max_entries.",
            st.evictions,
        ),
        (
            "jwtx_near_cache_invalidations_total",
            "counter",
            "Invalidations applied (received from other instances, and local revocations).",
            st.invalidations,
        ),
        (
            "jwtx_near_cache_flushes_total",
            "counter",
            "Whole-cache flushes (subscription lost or re-established).",
            st.flushes,
        ),
        (
            "jwtx_near_cache_entries",
            "gauge",
            "Sessions held in the near-cache.",
            st.entries as u64,
        ),
        (
            "jwtx_near_cache_subscribed",
            "gauge",
            "1 while the invalidation subscription is live (entries are served), else 0.",
            u64::from(st.subscribed),
        ),
    ] {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// The `# HELP` and `# TYPE` lines of a metric family.
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a Prometheus label value.
pub(crate) fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
