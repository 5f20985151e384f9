//! A small closed-loop HTTP/1.1 load generator for loopback servers, and the servers it loads.
//!
//! Each connection is one keep-alive HTTP/1.1 connection that sends the next request as soon as
//! the previous response body has been read. Like `wrk`, the generator does the least it can per
//! request, so that on a machine it shares with the server it takes as little CPU from it as
//! possible: the request's bytes are built once and written with one call, and a response is
//! read only as far as its status and `Content-Length` (it must have one, or be `204`/`304`;
//! anything else counts as an error). A run is bounded both by time and by a request count,
//! and only ever targets the address it is given (the benches give it `127.0.0.1`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::Method;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// One request, sent over and over.
#[derive(Clone)]
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

    /// The request as it goes on the wire: HTTP/1.1, `Host`, the extra headers, and the body
    /// with its `Content-Type` and `Content-Length`. Built once per connection and written as
    /// is for every request.
    fn wire(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(256 + self.body.len());
        w.extend_from_slice(self.method.as_str().as_bytes());
        w.push(b' ');
        w.extend_from_slice(self.path.as_bytes());
        w.extend_from_slice(b" HTTP/1.1\r\nhost: 127.0.0.1\r\n");
        for (k, v) in &self.headers {
            w.extend_from_slice(k.as_str().as_bytes());
            w.extend_from_slice(b": ");
            w.extend_from_slice(v.as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        if !self.body.is_empty() || self.method == Method::POST {
            w.extend_from_slice(CONTENT_TYPE.as_str().as_bytes());
            w.extend_from_slice(b": application/json\r\ncontent-length: ");
            w.extend_from_slice(self.body.len().to_string().as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        w.extend_from_slice(b"\r\n");
        w.extend_from_slice(&self.body);
        w
    }
}

/// One response read off a connection: its status, once its head and its whole body
/// (`Content-Length` bytes; none for `204` and `304`) have arrived.
///
/// `buf` holds what was read and not yet consumed; the response is removed from it. `None`
/// when the connection closed or the response is not one this generator reads (chunked, no
/// length, a malformed head): the run counts an error and drops the connection.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<u16> {
    loop {
        if let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..head_end]).ok()?;
            let mut lines = head.split("\r\n");
            let status: u16 = lines
                .next()?
                .strip_prefix("HTTP/1.1 ")?
                .get(..3)?
                .parse()
                .ok()?;
            let mut length = None;
            for line in lines {
                let (name, value) = line.split_once(':')?;
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.trim().parse::<usize>().ok()?);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    return None;
                }
            }
            let body = match (status, length) {
                (204 | 304, _) => 0,
                (_, Some(n)) => n,
                (_, None) => return None,
            };
            let total = head_end + 4 + body;
            while buf.len() < total {
                if read_more(stream, buf).await? == 0 {
                    return None;
                }
            }
            buf.drain(..total);
            return Some(status);
        }
        if read_more(stream, buf).await? == 0 {
            return None;
        }
    }
}

/// Reads what the socket has into `buf`; `Some(0)` at the end of the stream.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    buf.reserve(16 * 1024);
    stream.read_buf(buf).await.ok()
}

/// Names the request without its credentials: header values (a bearer) and the body (an IdP
/// token) are left out.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("method", &self.method)
            .field("path", &self.path)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("body_bytes", &self.body.len())
            .field("expect", &self.expect)
            .finish()
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
    let mut stream = TcpStream::connect(addr).await.expect("connect to loopback");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let request = target.wire();
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut out = Outcome::default();
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        if sent.fetch_add(1, Ordering::Relaxed) >= max {
            stop.store(true, Ordering::Relaxed);
            break;
        }
        let t = Instant::now();
        let status = match stream.write_all(&request).await {
            Ok(()) => read_response(&mut stream, &mut buf).await,
            Err(_) => None,
        };
        let latency = t.elapsed().as_nanos() as f64;
        let Some(status) = status else {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_leaves_out_credentials() {
        let t = Target::post_json(
            "login",
            "/auth/jwt/login",
            r#"{"token":"idp.secret.jwt"}"#.into(),
        )
        .bearer("bearer.secret.tag");
        let shown = format!("{t:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("authorization") && shown.contains("/auth/jwt/login"));
    }
}
