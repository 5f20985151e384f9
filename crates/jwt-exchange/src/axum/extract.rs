//! Extractors: the caller's [`Principal`] (from `Authorization: Bearer` or Basic `_jwt`) and
//! [`Authorized<P>`], a principal whose policies allow a [`Permission`].

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{HttpConfig, Rejection};
use crate::{Exchange, Principal};

/// The user name that marks HTTP Basic credentials whose password is a bearer (as git and
/// git-lfs send them: `https://_jwt:<bearer>@host/...`).
pub const BASIC_USER: &str = "_jwt";

/// The caller behind `Authorization: Bearer <bearer>` or `Authorization: Basic` with user
/// [`BASIC_USER`] and the bearer as password.
///
/// The scheme name is case-insensitive. Anything else is refused with `401` and two
/// `WWW-Authenticate` challenges, `Bearer realm="jwt-exchange"` and `Basic realm="jwt-exchange"`
/// (the Bearer one with `error="invalid_token"` when credentials were presented):
/// no header or an unknown scheme ([`Rejection::MissingCredentials`]); a bearer that does not
/// verify, a revoked or expired session, Basic with another user, bad base64, several
/// `Authorization` headers ([`Rejection::InvalidCredentials`], one constant body). A store
/// outage is `503` ([`Rejection::Unavailable`]).
///
/// Works with any router state `S` from which the [`Exchange`] can be taken (`Exchange:
/// FromRef<S>`). The principal is cached in the request's extensions, so extracting it twice
/// (in a middleware and in the handler) costs one store read.
///
/// ```
/// use axum::routing::get;
/// use axum::Router;
/// use jwt_exchange::{Exchange, Principal};
///
/// async fn hello(who: Principal) -> String {
///     format!("hello {}", who.subject)
/// }
///
/// fn app(exchange: Exchange) -> Router {
///     Router::new().route("/hello", get(hello)).with_state(exchange)
/// }
/// ```
impl<S> FromRequestParts<S> for Principal
where
    Exchange: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let exchange = Exchange::from_ref(state);
        let retry_after = HttpConfig::of(parts).retry_after;
        let bearer = bearer(&parts.headers)?;
        let principal = exchange.authenticate(&bearer).await.map_err(|e| {
            Rejection::from_exchange(&e, retry_after, Rejection::InvalidCredentials)
        })?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// Reads the bearer from `Authorization` (Bearer or Basic `_jwt`); borrowed from the header
/// unless it had to be decoded.
fn bearer(headers: &HeaderMap) -> Result<std::borrow::Cow<'_, str>, Rejection> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Rejection::MissingCredentials);
    };
    if values.next().is_some() {
        return Err(Rejection::InvalidCredentials);
    }
    let value = value.to_str().map_err(|_| Rejection::InvalidCredentials)?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim_matches(' ');
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() || rest.contains(' ') {
            return Err(Rejection::InvalidCredentials);
        }
        Ok(rest.into())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(Rejection::InvalidCredentials)?;
        match decoded.split_once(':') {
            Some((BASIC_USER, password)) if !password.is_empty() => Ok(password.to_owned().into()),
            _ => Err(Rejection::InvalidCredentials),
        }
    } else {
        Err(Rejection::MissingCredentials)
    }
}

/// A permission a route requires: an action, and the resource it is checked on.
///
/// Use it through [`Authorized<P>`] (an extractor) or [`require_permission`] (a middleware).
///
/// A resource taken from the request should come through [`request_path`], never from
/// `parts.uri.path()` itself: the raw path is still percent-encoded, so `/reports/2026%2Fq1`
/// would be checked as `reports/2026%2Fq1` — past a deny on `reports/2026/*` — while axum's
/// `Path` extractor hands the handler `2026/q1`.
///
/// ```
/// use axum::http::request::Parts;
/// use jwt_exchange::axum::{request_path, Permission, Rejection};
///
/// /// `reports:Read` on the requested path, e.g. `reports/2026/q1`.
/// struct ReadReports;
///
/// impl Permission for ReadReports {
///     const ACTION: &'static str = "reports:Read";
///
///     fn resource(parts: &Parts) -> Result<String, Rejection> {
///         Ok(request_path(parts)?.trim_start_matches('/').to_owned())
///     }
/// }
/// ```
pub trait Permission: 'static {
    /// The action, e.g. `fs:ReadObject`.
    const ACTION: &'static str;

    /// The resource for this request, or the answer to give instead (a `400` for a path that
    /// cannot be mapped). Defaults to `*`.
    fn resource(parts: &Parts) -> Result<String, Rejection> {
        let _ = parts;
        Ok("*".to_owned())
    }
}

/// The request's path as a resource: percent-decoded (so `/%72eports` is checked as
/// `/reports`, as the handler sees it), and refused with `400 invalid_request` when it is
/// ambiguous — `.` or `..` segments, empty segments (`//`), `;`, backslashes, control
/// characters or invalid UTF-8, raw or encoded — rather than guessed at. The same rules as the
/// `{path}` of [`ForwardAuthConfig`](super::ForwardAuthConfig).
///
/// ```
/// use axum::http::Request;
/// use jwt_exchange::axum::request_path;
///
/// let parts = |uri: &str| Request::get(uri).body(()).unwrap().into_parts().0;
/// assert_eq!(request_path(&parts("/reports/2026%2Fq1?x=1")).unwrap(), "/reports/2026/q1");
/// assert!(request_path(&parts("/reports/../admin")).is_err());
/// assert!(request_path(&parts("/reports//2026")).is_err());
/// ```
pub fn request_path(parts: &Parts) -> Result<String, Rejection> {
    super::forward_auth::canonical_path(parts.uri.path()).ok_or(Rejection::InvalidRequest(
        "The request path cannot be mapped to a resource.",
    ))
}

/// A [`Principal`] whose policies allow the [`Permission`] `P`.
///
/// Extracting it authenticates the caller like [`Principal`] (`401`/`503`), then asks
/// [`Exchange::authorize`] for `P::ACTION` on `P::resource(parts)`: anything but
/// [`Decision::Allow`](crate::Decision::Allow) is `403` ([`Rejection::Forbidden`]); a policy
/// directory outage is `503`. The decision is audited by [`Exchange::authorize`].
///
/// ```
/// use axum::routing::get;
/// use axum::Router;
/// use jwt_exchange::axum::{Authorized, Permission};
/// use jwt_exchange::Exchange;
///
/// struct ReadReports;
/// impl Permission for ReadReports {
///     const ACTION: &'static str = "reports:Read";
/// }
///
/// async fn reports(who: Authorized<ReadReports>) -> String {
///     format!("reports for {}", who.subject) // derefs to the Principal
/// }
///
/// fn app(exchange: Exchange) -> Router {
///     Router::new().route("/reports", get(reports)).with_state(exchange)
/// }
/// ```
pub struct Authorized<P> {
    principal: Principal,
    _permission: PhantomData<fn() -> P>,
}

impl<P> Authorized<P> {
    /// The authorized caller.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The authorized caller, by value.
    pub fn into_principal(self) -> Principal {
        self.principal
    }
}

impl<P> Deref for Authorized<P> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<P> Clone for Authorized<P> {
    fn clone(&self) -> Self {
        Authorized {
            principal: self.principal.clone(),
            _permission: PhantomData,
        }
    }
}

impl<P: Permission> fmt::Debug for Authorized<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorized")
            .field("action", &P::ACTION)
            .field("principal", &self.principal)
            .finish()
    }
}

impl<S, P> FromRequestParts<S> for Authorized<P>
where
    Exchange: FromRef<S>,
    S: Send + Sync,
    P: Permission,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let resource = P::resource(parts)?;
        let retry_after = HttpConfig::of(parts).retry_after;
        let exchange = Exchange::from_ref(state);
        authorize(&exchange, &principal, P::ACTION, &resource, retry_after).await?;
        Ok(Authorized {
            principal,
            _permission: PhantomData,
        })
    }
}

/// `Ok` when `principal` may do `action` on `resource`; `403` when not, `503` when the policy
/// directory is down.
pub(crate) async fn authorize(
    exchange: &Exchange,
    principal: &Principal,
    action: &str,
    resource: &str,
    retry_after: Duration,
) -> Result<(), Rejection> {
    let decision = exchange
        .authorize(principal, action, resource)
        .await
        .map_err(|e| Rejection::from_exchange(&e, retry_after, Rejection::Forbidden))?;
    if decision.is_allowed() {
        Ok(())
    } else {
        Err(Rejection::Forbidden)
    }
}

/// Middleware requiring the [`Permission`] `P` on every route it wraps (`401`/`403`/`503`
/// like [`Authorized<P>`]); the caller's [`Principal`] is then available to the handlers as an
/// extractor without a second store read.
///
/// Use it with [`axum::middleware::from_fn_with_state`] and `route_layer`:
///
/// ```
/// use axum::middleware::from_fn_with_state;
/// use axum::routing::get;
/// use axum::Router;
/// use jwt_exchange::axum::{require_permission, Permission};
/// use jwt_exchange::{Exchange, Principal};
///
/// struct Admin;
/// impl Permission for Admin {
///     const ACTION: &'static str = "admin:Access";
/// }
///
/// async fn dashboard(who: Principal) -> String {
///     format!("welcome {}", who.subject)
/// }
///
/// fn admin_routes(exchange: Exchange) -> Router {
///     Router::new()
///         .route("/admin/dashboard", get(dashboard))
///         .route_layer(from_fn_with_state(exchange.clone(), require_permission::<Admin>))
///         .with_state(exchange)
/// }
/// ```
pub async fn require_permission<P: Permission>(
    authorized: Authorized<P>,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(authorized.into_principal());
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn bearer_of(value: &str) -> Result<String, Rejection> {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).expect("value"));
        bearer(&h).map(std::borrow::Cow::into_owned)
    }

    #[test]
    fn authorization_header_forms() {
        assert_eq!(bearer_of("Bearer abc").as_deref(), Ok("abc"));
        assert_eq!(bearer_of("bearer  abc ").as_deref(), Ok("abc"));
        assert_eq!(bearer_of("BEARER abc").as_deref(), Ok("abc"));
        let basic = format!("Basic {}", STANDARD.encode("_jwt:abc"));
        assert_eq!(bearer_of(&basic).as_deref(), Ok("abc"));
        let basic = format!("basic {}", STANDARD.encode("_jwt:a:b"));
        assert_eq!(bearer_of(&basic).as_deref(), Ok("a:b"));

        for refused in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Basic !!!",
            &format!("Basic {}", STANDARD.encode("alice:abc")),
            &format!("Basic {}", STANDARD.encode("_jwt:")),
            &format!("Basic {}", STANDARD.encode("_jwt")),
            &format!("Basic {}", STANDARD.encode("_JWT:abc")),
        ] {
            assert_eq!(
                bearer_of(refused),
                Err(Rejection::InvalidCredentials),
                "{refused}"
            );
        }
        for missing in ["Digest abc", "Token abc", ""] {
            assert_eq!(
                bearer_of(missing),
                Err(Rejection::MissingCredentials),
                "{missing}"
            );
        }
        assert_eq!(
            bearer(&HeaderMap::new()),
            Err(Rejection::MissingCredentials)
        );
        let mut two = HeaderMap::new();
        two.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        two.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(bearer(&two), Err(Rejection::InvalidCredentials));
    }
}
