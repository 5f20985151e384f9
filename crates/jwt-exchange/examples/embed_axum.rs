//! Embedding jwt-exchange in an axum application: the API router mounted under `/api/v1`, next
//! to an application route protected by a permission.
//!
//! `cargo run -p jwt-exchange --features axum --example embed_axum` starts a development IdP on
//! loopback, prints a token it signed, and serves on `http://127.0.0.1:3000`:
//!
//! ```sh
//! curl -s -X POST localhost:3000/api/v1/auth/jwt/login \
//!      -H 'content-type: application/json' -d '{"token": "<printed token>"}'
//! curl -s localhost:3000/api/v1/reports/q1 -H 'authorization: Bearer <bearer>'   # 200
//! curl -s localhost:3000/api/v1/reports/secret -H 'authorization: Bearer <bearer>' # 403
//! curl -s localhost:3000/api/v1/auth/session -H 'authorization: Bearer <bearer>'  # who am I
//! ```

use std::time::Duration;

use axum::extract::Path;
use axum::http::request::Parts;
use axum::routing::get;
use axum::Router;
use jwt_exchange::axum::{request_path, Authorized, Permission, Rejection, RouterBuilder};
use jwt_exchange::policy::PolicyConfig;
use jwt_exchange::session::{BearerKeys, BearerSecret};
use jwt_exchange::{Algorithm, Clock, Exchange, ProviderConfig, Providers, SystemClock, Verifier};
use jwt_exchange_testkit::{jwks, JwksServer, TestKey};
use serde_json::json;

/// `reports:Read` on `reports/<name>`.
struct ReadReport;

impl Permission for ReadReport {
    const ACTION: &'static str = "reports:Read";

    fn resource(parts: &Parts) -> Result<String, Rejection> {
        // `/api/v1/reports/q1` -> `reports/q1` (the path as the handler sees it: decoded, and
        // refused with 400 when ambiguous).
        let path = request_path(parts)?;
        Ok(path
            .find("reports/")
            .map_or_else(|| path.clone(), |i| path[i..].to_owned()))
    }
}

async fn report(who: Authorized<ReadReport>, Path(name): Path<String>) -> String {
    format!("report {name} for {}\n", who.subject)
}

/// The application: its own routes with the [`Exchange`] as state, and the jwt-exchange API.
fn app(exchange: Exchange) -> Router {
    let api = RouterBuilder::new(exchange.clone())
        .retry_after(Duration::from_secs(10))
        .build();
    Router::new()
        .route("/api/v1/reports/{name}", get(report))
        .with_state(exchange)
        .nest("/api/v1", api)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A development IdP on loopback. In production the provider is Entra, Auth0, Keycloak...
    let key = TestKey::generate(Algorithm::ES256, "dev-key-1");
    let idp = JwksServer::start(jwks(&[&key])).await;
    let issuer = "https://idp.example/";
    let audience = "api://reports";

    let policies: PolicyConfig = serde_json::from_value(json!({
        "groups": {"analysts": ["ReadReports"]},
        "policies": {"ReadReports": {"statement": [
            {"effect": "allow", "action": "reports:Read", "resource": "reports/*"},
            {"effect": "deny", "action": "reports:Read", "resource": "reports/secret"}
        ]}}
    }))?;
    let verifier = Verifier::new(Providers(vec![
        ProviderConfig::new(issuer, idp.jwks_url()).with_audiences([audience])
    ]))?;
    let exchange = Exchange::builder(
        verifier,
        BearerKeys::new("embed-axum-example", "bearer-1", BearerSecret::generate()),
    )
    .policies(policies)
    .build()?;

    let now = SystemClock.unix_seconds();
    let token = key.mint(&json!({
        "iss": issuer, "aud": audience, "oid": "analyst-1", "roles": ["analysts"],
        "iat": now, "nbf": now, "exp": now + 3600,
    }));
    println!("external token (valid 1 h):\n{token}\n");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(exchange)).await?;
    Ok(())
}
