//! A loopback IdP: JWKS + OpenID discovery, with request counting and fault injection.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};

/// What the JWKS endpoint does on the next requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Serve the current JWKS (the default).
    Serve,
    /// Answer with this status and an empty body.
    Status(u16),
    /// Wait this long, then serve the JWKS.
    Stall(Duration),
    /// Serve `200` with a body that is not JSON.
    Garbage,
    /// Serve `200` with this many bytes, streamed in chunks without a `Content-Length`.
    Huge(usize),
    /// Serve `200` with this many bytes and a `Content-Length` header.
    HugeWithLength(usize),
    /// Answer `302` to this location.
    Redirect(String),
}

struct Shared {
    jwks: Mutex<Value>,
    discovery_issuer: Mutex<Option<String>>,
    behavior: Mutex<Behavior>,
    jwks_hits: AtomicUsize,
    discovery_hits: AtomicUsize,
    other_hits: AtomicUsize,
    base: String,
}

/// A JWKS / discovery server on `127.0.0.1`, stopped when dropped.
///
/// Routes: `GET /jwks` (the key set, subject to [`Behavior`]),
/// `GET /.well-known/openid-configuration` (issuer + `jwks_uri`), anything else → 404 (counted,
/// so an "attacker" server can prove it received nothing).
pub struct JwksServer {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for JwksServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksServer")
            .field("base", &self.shared.base)
            .finish_non_exhaustive()
    }
}

impl JwksServer {
    /// Starts a server serving `jwks` on an ephemeral loopback port.
    pub async fn start(jwks: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            jwks: Mutex::new(jwks),
            discovery_issuer: Mutex::new(None),
            behavior: Mutex::new(Behavior::Serve),
            jwks_hits: AtomicUsize::new(0),
            discovery_hits: AtomicUsize::new(0),
            other_hits: AtomicUsize::new(0),
            base: format!("http://{addr}"),
        });
        let app = Router::new()
            .route("/jwks", get(serve_jwks))
            .route("/.well-known/openid-configuration", get(serve_discovery))
            .fallback(fallback)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        JwksServer { shared, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.shared.base
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.shared.base)
    }

    /// The discovery document URL.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.shared.base)
    }

    /// Replaces the served key set (rotation, removal).
    pub fn set_jwks(&self, jwks: Value) {
        *self.shared.jwks.lock().expect("lock") = jwks;
    }

    /// Sets the `issuer` the discovery document announces.
    pub fn set_discovery_issuer(&self, issuer: impl Into<String>) {
        *self.shared.discovery_issuer.lock().expect("lock") = Some(issuer.into());
    }

    /// Changes what the JWKS endpoint does.
    pub fn set_behavior(&self, b: Behavior) {
        *self.shared.behavior.lock().expect("lock") = b;
    }

    /// Requests received by `/jwks`.
    pub fn jwks_hits(&self) -> usize {
        self.shared.jwks_hits.load(Ordering::SeqCst)
    }

    /// Requests received by the discovery route.
    pub fn discovery_hits(&self) -> usize {
        self.shared.discovery_hits.load(Ordering::SeqCst)
    }

    /// Every request received, on any route.
    pub fn total_hits(&self) -> usize {
        self.jwks_hits() + self.discovery_hits() + self.shared.other_hits.load(Ordering::SeqCst)
    }
}

async fn serve_jwks(State(s): State<Arc<Shared>>) -> Response {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let behavior = s.behavior.lock().expect("lock").clone();
    match behavior {
        Behavior::Serve => json_response(&s.jwks.lock().expect("lock")),
        Behavior::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Behavior::Stall(d) => {
            tokio::time::sleep(d).await;
            json_response(&s.jwks.lock().expect("lock"))
        }
        Behavior::Garbage => (
            [(header::CONTENT_TYPE, "application/json")],
            "<html>definitely not json",
        )
            .into_response(),
        Behavior::Huge(n) => Response::new(Body::new(Zeros { left: n })),
        Behavior::HugeWithLength(n) => {
            ([(header::CONTENT_TYPE, "application/json")], vec![b' '; n]).into_response()
        }
        Behavior::Redirect(to) => {
            let mut r = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
    }
}

async fn serve_discovery(State(s): State<Arc<Shared>>) -> Response {
    s.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let issuer = s
        .discovery_issuer
        .lock()
        .expect("lock")
        .clone()
        .unwrap_or_else(|| format!("{}/", s.base));
    json_response(&json!({
        "issuer": issuer,
        "jwks_uri": format!("{}/jwks", s.base),
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    }))
}

async fn fallback(State(s): State<Arc<Shared>>) -> StatusCode {
    s.other_hits.fetch_add(1, Ordering::SeqCst);
    StatusCode::NOT_FOUND
}

fn json_response(v: &Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// A body of `left` zero bytes (well, spaces), in 64 KiB chunks, with no size hint.
struct Zeros {
    left: usize,
}

impl http_body::Body for Zeros {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![b' '; n])))))
    }
}
