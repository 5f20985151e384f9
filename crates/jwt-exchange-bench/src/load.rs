//! A small closed-loop HTTP/1.1 load generator for loopback servers, and the servers it loads.
//!
//! Each connection is one keep-alive HTTP/1.1 connection (hyper's client connection, no pool)
//! that sends the next request as soon as the previous response body has been read. A run is
//! bounded both by time and by a request count, and only ever targets the address it is given
//! (the benches give it `127.0.0.1`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One request, sent over and over.
#[derive(Clone, Debug)]
pub struct Target {
    /// A label for reports.
    pub name: String,
    /// `GET` or `POST`.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body (`POST`), sent as `application/json` when not empty.
    pub body: Bytes,
    /// The status every response must have.
    pub expect: u16,
}

impl Target {
    /// `GET path`, expecting `200`.
    pub fn get(name: impl Into<String>, path: impl Into<String>) -> Self {
        Target {
            name: name.into(),
            method: Method::GET,
            path: path.into(),
            headers: Vec::new(),
            body: Bytes::new(),
            expect: 200,
        }
    }

    /// `POST path` with a JSON body, expecting `200`.
    pub fn post_json(name: impl Into<String>, path: impl Into<String>, body: String) -> Self {
        Target {
            method: Method::POST,
            body: Bytes::from(body),
            ..Target::get(name, path)
        }
    }

    /// Adds `Authorization: Bearer <token>`.
    ///
    /// # Panics
    ///
    /// If the token is not a valid header value.
    #[must_use]
    pub fn bearer(mut self, token: &str) -> Self {
        self.headers.push((
            hyper::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).expect("header value"),
        ));
        self
    }

    /// Expects `status` instead of `200`.
    #[must_use]
    pub fn expect(mut self, status: u16) -> Self {
        self.expect = status;
        self
    }

    fn request(&self) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(HOST, "127.0.0.1");
        if !self.body.is_empty() {
            b = b.header(CONTENT_TYPE, "application/json");
        }
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b.body(Full::new(self.body.clone()))
            .expect("a valid request")
    }
}

/// What one load run measured.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Responses received.
    pub requests: u64,
    /// Responses with another status than expected, and transport errors.
    pub errors: u64,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// Responses by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Latency of every response, nanoseconds, sorted.
    pub latencies: Vec<f64>,
}

impl Outcome {
    /// Responses per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// Limits of one run.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Concurrent connections.
    pub connections: usize,
    /// Stop after this long.
    pub duration: Duration,
    /// Stop after this many requests (across connections).
    pub max_requests: u64,
}

/// Loads `addr` with `target` until a limit is reached.
///
/// # Panics
///
/// If `addr` is not a loopback address (this generator only loads local servers) or a
/// connection cannot be opened.
pub async fn run(addr: SocketAddr, target: &Target, limits: Limits) -> Outcome {
    assert!(
        addr.ip().is_loopback(),
        "the load generator only targets loopback"
    );
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + limits.duration;
    let mut tasks = Vec::with_capacity(limits.connections);
    for _ in 0..limits.connections {
        let target = target.clone();
        let (sent, stop) = (Arc::clone(&sent), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            connection(addr, &target, deadline, limits.max_requests, &sent, &stop).await
        }));
    }
    let mut out = Outcome::default();
    for t in tasks {
        let part = t.await.expect("load task");
        out.requests += part.requests;
        out.errors += part.errors;
        for (k, v) in part.statuses {
            *out.statuses.entry(k).or_default() += v;
        }
        out.latencies.extend(part.latencies);
    }
    out.elapsed = start.elapsed();
    out.latencies.sort_by(f64::total_cmp);
    out
}

async fn connection(
    addr: SocketAddr,
    target: &Target,
    deadline: Instant,
    max: u64,
    sent: &AtomicU64,
    stop: &AtomicBool,
) -> Outcome {
    let stream = TcpStream::connect(addr).await.expect("connect to loopback");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake");
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut out = Outcome::default();
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        if sent.fetch_add(1, Ordering::Relaxed) >= max {
            stop.store(true, Ordering::Relaxed);
            break;
        }
        let t = Instant::now();
        let ok = async {
            sender.ready().await.ok()?;
            let resp = sender.send_request(target.request()).await.ok()?;
            let status = resp.status().as_u16();
            resp.into_body().collect().await.ok()?;
            Some(status)
        }
        .await;
        let latency = t.elapsed().as_nanos() as f64;
        let Some(status) = ok else {
            out.errors += 1;
            break;
        };
        out.requests += 1;
        out.latencies.push(latency);
        *out.statuses.entry(status).or_default() += 1;
        if status != target.expect {
            out.errors += 1;
        }
    }
    drop(sender);
    driver.abort();
    out
}

/// A server on `127.0.0.1:0`, stopped when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Serves `app` on an ephemeral loopback port from `rt`.
    ///
    /// # Panics
    ///
    /// If the port cannot be bound.
    pub fn start(rt: &tokio::runtime::Runtime, app: Router) -> Server {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Server {
            addr,
            stop: Some(tx),
        }
    }
}

impl Server {
    /// Serves `app` on an ephemeral loopback port thread per core, as `jwt-exchange serve`
    /// does: `threads` threads named `server`, each with its own single-threaded runtime,
    /// serve the connections an acceptor on `rt` hands them, each new connection to the thread
    /// serving the fewest. Without the CLI's header-read timeout and connection cap.
    ///
    /// # Panics
    ///
    /// If the port cannot be bound or a thread cannot be started.
    pub fn start_per_core(rt: &tokio::runtime::Runtime, threads: usize, app: &Router) -> Server {
        use hyper_util::service::TowerToHyperService;

        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let mut lanes = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<std::net::TcpStream>();
            let live = Arc::new(AtomicU64::new(0));
            let service = TowerToHyperService::new(app.clone());
            let served = Arc::clone(&live);
            std::thread::Builder::new()
                .name("server".into())
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("server runtime");
                    // Ends (and drops its connections) when the acceptor stops.
                    rt.block_on(async move {
                        while let Some(stream) = rx.recv().await {
                            let stream = TcpStream::from_std(stream).expect("a tokio stream");
                            let conn = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service.clone());
                            let served = Arc::clone(&served);
                            tokio::spawn(async move {
                                let _ = conn.await;
                                served.fetch_sub(1, Ordering::Relaxed);
                            });
                        }
                    });
                })
                .expect("server thread");
            lanes.push((tx, live));
        }
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = &mut rx => break,
                };
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let Ok(stream) = stream.into_std() else {
                    continue;
                };
                let (lane, live) = lanes
                    .iter()
                    .min_by_key(|(_, live)| live.load(Ordering::Relaxed))
                    .expect("at least one thread");
                live.fetch_add(1, Ordering::Relaxed);
                let _ = lane.send(stream);
            }
        });
        Server {
            addr,
            stop: Some(tx),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
