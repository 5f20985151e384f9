//! The route table, the router built from it, and its options.

use std::sync::LazyLock;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{Extensions, Method};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};

use super::params::BODY_LIMIT;
use super::{forward_auth, handlers, oauth, ForwardAuthConfig, Rejection};
use crate::Exchange;

/// Options of the HTTP API. Serde: `{"forward_auth": {...}, "retry_after": "5s"}`, every key
/// optional, unknown keys refused.
///
/// The router built by [`RouterBuilder`] puts its `HttpConfig` in every request's extensions;
/// extractors used on an application's own routes read it from there too, and fall back to
/// [`HttpConfig::default`] when it is absent (add `.layer(axum::Extension(config))` to those
/// routes to change that).
///
/// ```
/// use std::time::Duration;
/// use jwt_exchange::axum::HttpConfig;
///
/// let c: HttpConfig = serde_json::from_str(r#"{"retry_after": "30s"}"#).unwrap();
/// assert_eq!(c.retry_after, Duration::from_secs(30));
/// assert_eq!(c.forward_auth, Default::default());
/// assert!(serde_json::from_str::<HttpConfig>(r#"{"retry_afer": "30s"}"#).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpConfig {
    /// How `GET /auth/check` maps `X-Forwarded-*` headers to an action and a resource.
    /// Defaults to [`ForwardAuthConfig::default`].
    #[serde(default)]
    pub forward_auth: ForwardAuthConfig,
    /// `Retry-After` of every `503`, in whole seconds. Defaults to 5 s.
    #[serde(default = "default_retry_after", with = "crate::duration")]
    pub retry_after: Duration,
}

fn default_retry_after() -> Duration {
    Rejection::DEFAULT_RETRY_AFTER
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            forward_auth: ForwardAuthConfig::default(),
            retry_after: default_retry_after(),
        }
    }
}

static DEFAULT_CONFIG: LazyLock<HttpConfig> = LazyLock::new(HttpConfig::default);

impl HttpConfig {
    /// Sets the forward-auth mapping.
    #[must_use]
    pub fn with_forward_auth(mut self, forward_auth: ForwardAuthConfig) -> Self {
        self.forward_auth = forward_auth;
        self
    }

    /// Sets `Retry-After` of every `503` (whole seconds).
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// The configuration in these extensions, or the default.
    fn in_extensions(ext: &Extensions) -> &HttpConfig {
        // The router's own layer shares one `Arc` (cloning it per request copies nothing); an
        // application may also add a plain `Extension(HttpConfig)` to its routes.
        ext.get::<std::sync::Arc<HttpConfig>>()
            .map(|c| &**c)
            .or_else(|| ext.get::<HttpConfig>())
            .unwrap_or(&DEFAULT_CONFIG)
    }

    /// The configuration this request is served with.
    pub(crate) fn of(parts: &Parts) -> &HttpConfig {
        Self::in_extensions(&parts.extensions)
    }

    /// The configuration this request is served with.
    pub(crate) fn of_request(req: &Request) -> &HttpConfig {
        Self::in_extensions(req.extensions())
    }
}

/// One route: method, path (relative to where the router is mounted, axum / OpenAPI `{param}`
/// syntax) and handler.
struct Route {
    method: Method,
    path: &'static str,
    handler: MethodRouter<Exchange>,
}

/// The table every router and [`routes`] listing is built from. Adding a route here without
/// documenting it in `docs/openapi.yaml` fails the test suite.
fn table() -> Vec<Route> {
    fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
    where
        H: Handler<T, Exchange>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        Route {
            method,
            path,
            handler: on(filter, handler),
        }
    }
    let limited = |mut r: Route| {
        r.handler = r.handler.layer(DefaultBodyLimit::max(BODY_LIMIT));
        r
    };
    let mut table = vec![
        limited(route(Method::POST, "/auth/jwt/login", handlers::login)),
        route(Method::GET, "/auth/session", handlers::who_am_i),
        route(Method::DELETE, "/auth/session", handlers::logout),
        route(Method::GET, "/auth/sessions", handlers::list_sessions),
        route(Method::DELETE, "/auth/sessions", handlers::delete_subject),
        route(
            Method::DELETE,
            "/auth/sessions/{id}",
            handlers::delete_session,
        ),
        route(Method::GET, "/auth/check", forward_auth::check),
        // Envoy ext_authz (HTTP service): the checked request's own method and path. A
        // request for the site root arrives as `/auth/check/`, which `{*path}` does not match.
    ];
    for path in ["/auth/check/", "/auth/check/{*path}"] {
        for method in ENVOY_METHODS {
            table.push(route(method, path, forward_auth::check_envoy));
        }
    }
    table.extend([
        limited(route(Method::POST, "/oauth2/token", oauth::token)),
        limited(route(Method::POST, "/oauth2/revoke", oauth::revoke)),
        limited(route(Method::POST, "/oauth2/introspect", oauth::introspect)),
    ]);
    table
}

/// The methods the Envoy routes answer (`HEAD` with `GET`). Envoy checks every request; one
/// with another method (`TRACE`, WebDAV's) gets `405`, which Envoy passes on as a denial.
const ENVOY_METHODS: [Method; 6] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// Every route of the API as `(method, path)`, paths relative to where the router is mounted
/// and written with `{param}` placeholders (the OpenAPI syntax).
///
/// ```
/// use axum::http::Method;
/// let routes = jwt_exchange::axum::routes();
/// assert!(routes.contains(&(Method::POST, "/auth/jwt/login")));
/// assert!(routes.contains(&(Method::DELETE, "/auth/sessions/{id}")));
/// ```
pub fn routes() -> Vec<(Method, &'static str)> {
    table()
        .into_iter()
        .map(|r| (r.method, openapi_path(r.path)))
        .collect()
}

/// The OpenAPI spelling of an axum path: the catch-all `{*path}` is written `{path}`.
fn openapi_path(path: &'static str) -> &'static str {
    match path {
        "/auth/check/{*path}" => "/auth/check/{path}",
        other => other,
    }
}

/// The API router with default options ([`HttpConfig::default`]); see [`RouterBuilder`].
///
/// Nest it wherever the application wants it; its state is already applied, so it nests into a
/// router of any state once that router has its own state applied:
///
/// ```
/// use axum::routing::get;
/// use axum::Router;
/// use jwt_exchange::Exchange;
///
/// #[derive(Clone)]
/// struct AppState {
///     greeting: &'static str,
/// }
///
/// fn app(exchange: Exchange) -> Router {
///     Router::new()
///         .route("/", get(|| async { "hello" }))
///         .with_state(AppState { greeting: "hi" })
///         .nest("/api/v1", jwt_exchange::axum::router(exchange))
/// }
/// ```
pub fn router(exchange: Exchange) -> Router {
    RouterBuilder::new(exchange).build()
}

/// Builds the API router with options.
///
/// ```
/// use std::time::Duration;
/// use jwt_exchange::axum::{ForwardAuthConfig, RouterBuilder};
/// # fn f(exchange: jwt_exchange::Exchange) -> axum::Router {
/// RouterBuilder::new(exchange)
///     .forward_auth(ForwardAuthConfig::new("api:{method}", "{host}{path}").unwrap())
///     .retry_after(Duration::from_secs(30))
///     .build()
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct RouterBuilder {
    exchange: Exchange,
    config: HttpConfig,
}

impl RouterBuilder {
    /// Starts from default options.
    pub fn new(exchange: Exchange) -> Self {
        RouterBuilder {
            exchange,
            config: HttpConfig::default(),
        }
    }

    /// Replaces every option (e.g. with an [`HttpConfig`] read from a configuration file).
    pub fn config(mut self, config: HttpConfig) -> Self {
        self.config = config;
        self
    }

    /// The forward-auth mapping. Defaults to [`ForwardAuthConfig::default`].
    pub fn forward_auth(mut self, forward_auth: ForwardAuthConfig) -> Self {
        self.config.forward_auth = forward_auth;
        self
    }

    /// `Retry-After` of every `503`. Defaults to 5 s.
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.config.retry_after = retry_after;
        self
    }

    /// The router, built from the route table, with the [`Exchange`] as state.
    pub fn build(self) -> Router {
        let mut router = Router::new();
        for r in table() {
            router = router.route(r.path, r.handler);
        }
        router
            .layer(Extension(std::sync::Arc::new(self.config)))
            .with_state(self.exchange)
    }
}
