//! The axum router through `tower::ServiceExt::oneshot`: every route, status, header and body
//! shape documented in `docs/http-api.md` and `docs/openapi.yaml`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::{Body, Bytes};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::BodyExt as _;
use jwt_exchange::axum::{
    request_path, require_permission, routes, Authorized, ForwardAuthConfig, HttpConfig,
    Permission, Rejection, RouterBuilder, INVALID_GRANT_BODY, INVALID_SUBJECT_TOKEN_BODY,
    INVALID_TOKEN_BODY,
};
use jwt_exchange::policy::{Directory, DirectoryError, Policy, PolicyConfig};
use jwt_exchange::session::{BearerKeys, BearerSecret, Session, SessionId};
use jwt_exchange::store::{SessionStore, StoreError};
use jwt_exchange::{Algorithm, Exchange, Principal, ProviderConfig};
use jwt_exchange_testkit::{b64, Behavior, TestKey};
use serde_json::{json, Value};
use tower::ServiceExt as _;

use crate::common::{claims, verifier_for, Idp, ISS, NOW};

const LOGIN: &str = "/auth/jwt/login";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TT_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const TT_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const FORM: &str = "application/x-www-form-urlencoded";

fn policies() -> PolicyConfig {
    serde_json::from_value(json!({
        "groups": {
            "admins": ["AuthAdmin"],
            "support": ["SupportAlice"],
            "readers": ["ReadPublic"],
            "introspectors": ["Introspect"]
        },
        "policies": {
            "AuthAdmin": {"statement": [
                {"effect": "allow", "action": "auth:*", "resource": "*"}
            ]},
            "SupportAlice": {"statement": [
                {"effect": "allow", "action": ["auth:ListSessions", "auth:DeleteSession"],
                 "resource": subject("alice")}
            ]},
            "ReadPublic": {"statement": [
                {"effect": "allow", "action": "http:GET", "resource": "/public/*"},
                {"effect": "allow", "action": "http:GET", "resource": "/"},
                {"effect": "allow", "action": "http:OPTIONS", "resource": "/public/*"},
                {"effect": "deny", "action": "http:*", "resource": "/public/secret/*"},
                {"effect": "allow", "action": "api:GET", "resource": "example.com/public/*"},
                {"effect": "allow", "action": "reports:Read", "resource": "reports/*"}
            ]},
            "Introspect": {"statement": [
                {"effect": "allow", "action": "auth:IntrospectSession", "resource": "*"}
            ]}
        }
    }))
    .unwrap()
}

fn subject(oid: &str) -> String {
    Session::subject_for(ISS, oid)
}

fn bearer_keys() -> BearerKeys {
    BearerKeys::new(
        "jwt-exchange-test",
        "b1",
        BearerSecret::from_bytes(vec![9u8; 32]).unwrap(),
    )
}

fn exchange_with(idp: &Idp, p: ProviderConfig, store: Option<Arc<dyn SessionStore>>) -> Exchange {
    let mut b = Exchange::builder(idp.verifier(p), bearer_keys()).policies(policies());
    if let Some(s) = store {
        b = b.store(s);
    }
    b.build().unwrap()
}

/// An external token for `oid` in `roles`, valid for an hour from [`NOW`].
fn external(idp: &Idp, oid: &str, roles: &[&str]) -> String {
    let mut c = claims();
    c["oid"] = json!(oid);
    c["roles"] = json!(roles);
    idp.rsa.mint(&c)
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A decoded answer.
#[derive(Debug)]
struct Res {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Res {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    /// The body and every header value, for "never echoes" checks.
    fn everything(&self) -> String {
        let mut s = self.text();
        for (k, v) in &self.headers {
            let _ = write!(s, "\n{k}: {}", String::from_utf8_lossy(v.as_bytes()));
        }
        s
    }
}

async fn send(app: &Router, req: Request<Body>) -> Res {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    Res {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

fn req(method: Method, uri: &str, bearer: Option<&str>) -> axum::http::request::Builder {
    let b = Request::builder().method(method).uri(uri);
    match bearer {
        Some(t) => b.header(AUTHORIZATION, format!("Bearer {t}")),
        None => b,
    }
}

fn get_req(uri: &str, bearer: Option<&str>) -> Request<Body> {
    req(Method::GET, uri, bearer).body(Body::empty()).unwrap()
}

fn delete_req(uri: &str, bearer: Option<&str>) -> Request<Body> {
    req(Method::DELETE, uri, bearer)
        .body(Body::empty())
        .unwrap()
}

fn json_req(uri: &str, body: impl Into<Body>) -> Request<Body> {
    req(Method::POST, uri, None)
        .header(CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

fn login_req(token: &str) -> Request<Body> {
    json_req(LOGIN, json!({ "token": token }).to_string())
}

fn form_req(uri: &str, pairs: &[(&str, &str)], bearer: Option<&str>) -> Request<Body> {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    req(Method::POST, uri, bearer)
        .header(CONTENT_TYPE, FORM)
        .body(Body::from(body))
        .unwrap()
}

/// An API on a loopback IdP with the test policies.
struct Api {
    idp: Idp,
    ex: Exchange,
    app: Router,
}

impl Api {
    async fn start() -> Self {
        let idp = Idp::start().await;
        let ex = exchange_with(&idp, idp.provider(), None);
        let app = jwt_exchange::axum::router(ex.clone());
        Api { idp, ex, app }
    }

    async fn send(&self, req: Request<Body>) -> Res {
        send(&self.app, req).await
    }

    /// Logs in over HTTP and returns the bearer.
    async fn login(&self, oid: &str, roles: &[&str]) -> String {
        let r = self.send(login_req(&external(&self.idp, oid, roles))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["token"].as_str().unwrap().to_owned()
    }

    async fn who(&self, bearer: &str) -> Res {
        self.send(get_req("/auth/session", Some(bearer))).await
    }
}

fn assert_invalid_token_401(r: &Res) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.text(), INVALID_TOKEN_BODY);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.all("www-authenticate"),
        [
            r#"Bearer realm="jwt-exchange", error="invalid_token""#,
            r#"Basic realm="jwt-exchange""#
        ]
    );
}

fn assert_invalid_request(r: &Res, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["error"], "invalid_request", "{v}");
    assert!(v["error_description"].is_string());
}

mod embed;
mod forward_auth;
mod login;
mod oauth;
mod openapi;
mod session;
