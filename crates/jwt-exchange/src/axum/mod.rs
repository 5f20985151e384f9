//! The HTTP API for axum: a login router, session and admin endpoints, forward-auth for
//! gateways, OAuth 2.0 token exchange / revocation / introspection, and extractors for an
//! application's own routes.
//!
//! ```no_run
//! use axum::routing::get;
//! use axum::Router;
//! use jwt_exchange::axum::{Authorized, Permission};
//! use jwt_exchange::Exchange;
//!
//! struct ReadReports;
//! impl Permission for ReadReports {
//!     const ACTION: &'static str = "reports:Read";
//! }
//!
//! async fn reports(who: Authorized<ReadReports>) -> String {
//!     format!("reports for {}", who.subject)
//! }
//!
//! # async fn run(exchange: Exchange) -> std::io::Result<()> {
//! let app = Router::new()
//!     .route("/reports", get(reports))
//!     .with_state(exchange.clone())
//!     .nest("/api/v1", jwt_exchange::axum::router(exchange));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! # Routes
//!
//! Paths are relative to where the router is mounted. The full reference, with every status,
//! body and header, is `docs/http-api.md` and `docs/openapi.yaml`.
//!
//! | route | what |
//! |---|---|
//! | `POST /auth/jwt/login` | `{"token": "<external JWT>"}` → `{"token": "<bearer>", "token_expiration": <unix s>}` |
//! | `GET /auth/session` | who am I: the session behind the presented bearer |
//! | `DELETE /auth/session` | logout: revoke the presented bearer's session (`204`) |
//! | `GET /auth/sessions?subject=…` | list a subject's sessions; needs [`LIST_SESSIONS`] on the subject |
//! | `DELETE /auth/sessions?subject=…` | revoke a subject's sessions; needs [`DELETE_SESSION`] on the subject |
//! | `DELETE /auth/sessions/{id}` | revoke one session; needs [`DELETE_SESSION`] on its subject |
//! | `GET /auth/check` | forward-auth: `204` + `X-Auth-*` headers, `401`, `403` |
//! | `POST /oauth2/token` | RFC 8693 token exchange, RFC 7523 JWT bearer grant |
//! | `POST /oauth2/revoke` | RFC 7009 revocation |
//! | `POST /oauth2/introspect` | RFC 7662 introspection; needs [`INTROSPECT_SESSION`] on `*` |
//!
//! # Statuses
//!
//! [`Rejection`] is the only place errors become statuses. Every refused credential is `401`
//! with one constant body ([`INVALID_TOKEN_BODY`]) whatever the reason — the reason goes to the
//! audit log and the metrics, never to the caller — and no answer ever contains the submitted
//! token. Outages (the IdP's keys unavailable past `jwks_max_stale`, the session store or the
//! policy directory down) are `503` with `Retry-After`; a corrupt store record is `500`; no
//! configured provider makes the login endpoints `501`.
//!
//! # Credentials
//!
//! The [`Principal`](crate::Principal) extractor reads `Authorization: Bearer <bearer>` or
//! HTTP Basic with user [`BASIC_USER`] (`_jwt`) and the bearer as password, so git and git-lfs
//! can use a bearer as a password. [`Authorized<P>`] and [`require_permission`] add a policy
//! check.

mod extract;
mod forward_auth;
mod handlers;
mod oauth;
mod params;
mod rejection;
mod router;

pub use extract::{request_path, require_permission, Authorized, Permission, BASIC_USER};
pub use forward_auth::{
    encode_header, ForwardAuthConfig, Template, X_AUTH_GROUPS, X_AUTH_SESSION_ID, X_AUTH_SUBJECT,
};
pub use handlers::{DELETE_SESSION, LIST_SESSIONS};
pub use oauth::{
    GRANT_JWT_BEARER, GRANT_TOKEN_EXCHANGE, INTROSPECT_SESSION, TOKEN_TYPE_ACCESS_TOKEN,
    TOKEN_TYPE_JWT,
};
pub use params::BODY_LIMIT;
pub use rejection::{
    Rejection, INVALID_GRANT_BODY, INVALID_SUBJECT_TOKEN_BODY, INVALID_TOKEN_BODY,
    UNAUTHORIZED_BODY,
};
pub use router::{router, routes, HttpConfig, RouterBuilder};
