//! OAuth 2.0 endpoints: token exchange (RFC 8693) and JWT bearer grants (RFC 7523) at
//! `POST /oauth2/token`, revocation (RFC 7009) at `POST /oauth2/revoke`, introspection
//! (RFC 7662) at `POST /oauth2/introspect`.
//!
//! Bodies are `application/x-www-form-urlencoded` (at most 64 KiB, each parameter at most
//! once, an empty value counts as absent); errors are RFC 6749 §5.2 JSON objects.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::extract::{Authorized, Permission};
use super::handlers::{no_store, no_store_empty};
use super::params::{self, Params};
use super::{HttpConfig, Rejection};
use crate::Exchange;

/// `grant_type` of an RFC 8693 token exchange.
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// `grant_type` of an RFC 7523 JWT bearer grant.
pub const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// RFC 8693 token type of a JWT (accepted as `subject_token_type`).
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// RFC 8693 token type of an access token (accepted as `subject_token_type`; the
/// `issued_token_type` of every answer, and the only accepted `requested_token_type`).
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Action the caller of `POST /oauth2/introspect` needs, on resource `*`.
pub const INTROSPECT_SESSION: &str = "auth:IntrospectSession";

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    issued_token_type: &'static str,
    token_type: &'static str,
    expires_in: i64,
}

/// `POST /oauth2/token`.
pub(crate) async fn token(State(exchange): State<Exchange>, req: Request) -> Response {
    token_inner(exchange, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn token_inner(exchange: Exchange, req: Request) -> Result<Response, Rejection> {
    if exchange.verifier().is_empty() {
        return Err(Rejection::NotConfigured);
    }
    let retry_after = HttpConfig::of_request(&req).retry_after;
    let body = params::form(req).await?;
    let form = Params::parse(&body)?;
    let grant = form.require("grant_type", "`grant_type` is required.")?;
    // How a refused token is answered: one constant body per grant, whatever the reason.
    let refused = if grant == GRANT_JWT_BEARER {
        Rejection::InvalidGrant
    } else {
        Rejection::InvalidSubjectToken
    };
    let external = match grant {
        GRANT_TOKEN_EXCHANGE => {
            if form.has("actor_token") || form.has("actor_token_type") {
                return Err(Rejection::InvalidRequest("`actor_token` is not supported."));
            }
            if form.has("resource") || form.has("audience") {
                return Err(Rejection::InvalidTarget);
            }
            let token = form.require("subject_token", "`subject_token` is required.")?;
            match form.require("subject_token_type", "`subject_token_type` is required.")? {
                TOKEN_TYPE_JWT | TOKEN_TYPE_ACCESS_TOKEN => token,
                _ => {
                    return Err(Rejection::InvalidRequest(
                        "`subject_token_type` must be urn:ietf:params:oauth:token-type:jwt or \
                         urn:ietf:params:oauth:token-type:access_token.",
                    ))
                }
            }
        }
        GRANT_JWT_BEARER => form.require("assertion", "`assertion` is required.")?,
        _ => return Err(Rejection::UnsupportedGrantType),
    };
    if form
        .get("requested_token_type")
        .is_some_and(|t| t != TOKEN_TYPE_ACCESS_TOKEN)
    {
        return Err(Rejection::InvalidRequest(
            "`requested_token_type` must be urn:ietf:params:oauth:token-type:access_token.",
        ));
    }
    let login = exchange
        .login(external)
        .await
        .map_err(|e| Rejection::from_exchange(&e, retry_after, refused))?;
    let now = exchange.verifier().clock().unix_seconds();
    Ok(no_store(
        StatusCode::OK,
        &TokenResponse {
            access_token: login.token.as_str(),
            issued_token_type: TOKEN_TYPE_ACCESS_TOKEN,
            token_type: "Bearer",
            expires_in: login.token_expiration.saturating_sub(now).max(0),
        },
    ))
}

/// `POST /oauth2/revoke`: deletes the session behind `token` if it is a valid bearer; `200`
/// whatever the token was (RFC 7009 §2.2), `400` only without `token`, `503` in an outage.
pub(crate) async fn revoke(
    State(exchange): State<Exchange>,
    req: Request,
) -> Result<Response, Rejection> {
    let retry_after = HttpConfig::of_request(&req).retry_after;
    let body = params::form(req).await?;
    let form = Params::parse(&body)?;
    // `token_type_hint` is optional and there is one kind of token: it is ignored.
    let token = form.require("token", "`token` is required.")?;
    let principal = match exchange.authenticate(token).await {
        Ok(p) => Some(p),
        Err(e) => match Rejection::outage(&e, retry_after) {
            Some(r) => return Err(r),
            None => None,
        },
    };
    if let Some(p) = principal {
        exchange
            .revoke(p.session_id())
            .await
            .map_err(|e| Rejection::from_exchange(&e, retry_after, Rejection::Internal))?;
    }
    Ok(no_store_empty(StatusCode::OK))
}

/// The permission of `POST /oauth2/introspect`.
pub(crate) struct IntrospectSession;

impl Permission for IntrospectSession {
    const ACTION: &'static str = INTROSPECT_SESSION;
}

#[derive(Serialize)]
#[serde(untagged)]
enum Introspection<'a> {
    Active {
        active: bool,
        sub: &'a str,
        exp: i64,
        iat: i64,
        /// The introspected token's issuer (RFC 7662 §2.2): this server, as in its bearers.
        iss: &'a str,
        /// The external token's issuer, as in `GET /auth/session`.
        issuer: &'a str,
        token_type: &'static str,
        session_id: &'a str,
        groups: &'a [String],
        policies: &'a [String],
    },
    Inactive {
        active: bool,
    },
}

/// `POST /oauth2/introspect`: the caller needs `auth:IntrospectSession` on `*`.
pub(crate) async fn introspect(
    State(exchange): State<Exchange>,
    _caller: Authorized<IntrospectSession>,
    req: Request,
) -> Result<Response, Rejection> {
    let retry_after = HttpConfig::of_request(&req).retry_after;
    let body = params::form(req).await?;
    let form = Params::parse(&body)?;
    let token = form.require("token", "`token` is required.")?;
    let principal = match exchange.authenticate(token).await {
        Ok(p) => Some(p),
        Err(e) => match Rejection::outage(&e, retry_after) {
            Some(r) => return Err(r),
            None => None,
        },
    };
    let answer = match &principal {
        Some(p) => Introspection::Active {
            active: true,
            sub: &p.subject,
            exp: p.expires_at,
            iat: p.created_at,
            iss: exchange.bearer_issuer(),
            issuer: &p.issuer,
            token_type: "Bearer",
            session_id: p.session_id().as_str(),
            groups: &p.groups,
            policies: &p.policies,
        },
        None => Introspection::Inactive { active: false },
    };
    Ok(no_store(StatusCode::OK, &answer))
}
