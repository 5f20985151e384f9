//! The login and session endpoints: `POST /auth/jwt/login`, `GET`/`DELETE /auth/session`,
//! `GET`/`DELETE /auth/sessions`, `DELETE /auth/sessions/{id}`.

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::extract::authorize;
use super::params::{self, Params};
use super::{HttpConfig, Rejection};
use crate::session::{Session, SessionId};
use crate::{Exchange, ExchangeError, Principal};

/// Action needed to list another subject's sessions (resource: that subject).
pub const LIST_SESSIONS: &str = "auth:ListSessions";
/// Action needed to revoke sessions (resource: the sessions' subject).
pub const DELETE_SESSION: &str = "auth:DeleteSession";

/// A JSON body with `Cache-Control: no-store` and `Pragma: no-cache`: every answer of these
/// endpoints carries a credential or names a session.
pub(crate) fn no_store<T: Serialize>(status: StatusCode, body: &T) -> Response {
    no_store_sized(status, body, 128)
}

/// [`no_store`] with the body written into a buffer of `capacity` bytes to begin with (one
/// allocation when the body fits).
pub(crate) fn no_store_sized<T: Serialize>(
    status: StatusCode,
    body: &T,
    capacity: usize,
) -> Response {
    let mut json = Vec::with_capacity(capacity);
    if serde_json::to_writer(&mut json, body).is_err() {
        // Only a map with non-string keys fails to serialize; no answer here has one.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut headers = no_store_headers(1);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    answer(status, headers, Body::from(json))
}

/// An empty answer with `Cache-Control: no-store` and `Pragma: no-cache`.
pub(crate) fn no_store_empty(status: StatusCode) -> Response {
    answer(status, no_store_headers(0), Body::empty())
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, in a header map allocated with room for
/// `more` headers besides.
pub(crate) fn no_store_headers(more: usize) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(2 + more);
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    h
}

/// A response of these parts.
pub(crate) fn answer(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    *res.headers_mut() = headers;
    res
}

/// `204 No Content`.
pub(crate) fn no_content() -> Response {
    no_store_empty(StatusCode::NO_CONTENT)
}

/// The login body: a JSON object with a string `token` (other members are ignored).
///
/// Deserialized by hand because serde's derive also maps a JSON array onto a struct, so
/// `["<token>"]` would have been a login: only an object is accepted, and a repeated `token`
/// member is an error. Member names and the token borrow from the body unless they contain
/// escapes (a JWT never does), so reading a login costs no copy of the token.
struct LoginRequest<'a> {
    token: Cow<'a, str>,
}

/// A JSON string, borrowed from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visit)
    }
}

impl<'de> Deserialize<'de> for LoginRequest<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = LoginRequest<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object with a string `token`")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<LoginRequest<'de>, A::Error> {
                let mut token = None;
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    if key == "token" {
                        if token.is_some() {
                            return Err(serde::de::Error::duplicate_field("token"));
                        }
                        token = Some(map.next_value::<Text<'de>>()?.0);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                token
                    .map(|token| LoginRequest { token })
                    .ok_or_else(|| serde::de::Error::missing_field("token"))
            }
        }
        d.deserialize_map(Object)
    }
}

#[derive(Serialize)]
struct LoginResponse<'a> {
    token: &'a str,
    token_expiration: i64,
}

const LOGIN_BODY: &str = "The request body must be a JSON object with a string `token`.";

/// `POST /auth/jwt/login`.
pub(crate) async fn login(State(exchange): State<Exchange>, req: Request) -> Response {
    if exchange.verifier().is_empty() {
        return Rejection::NotConfigured.into_response();
    }
    let retry_after = HttpConfig::of_request(&req).retry_after;
    let body = match params::json_body(req, LOGIN_BODY).await {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let body: LoginRequest<'_> = match params::from_json(&body, LOGIN_BODY) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    match exchange.login(&body.token).await {
        Ok(login) => no_store_sized(
            StatusCode::OK,
            &LoginResponse {
                token: login.token.as_str(),
                token_expiration: login.token_expiration,
            },
            // `{"token":"…","token_expiration":…}`: the bearer needs no escaping.
            login.token.as_str().len() + 48,
        ),
        Err(e) => {
            Rejection::from_exchange(&e, retry_after, Rejection::InvalidToken).into_response()
        }
    }
}

/// The who-am-I answer.
#[derive(Serialize)]
struct WhoAmI<'a> {
    subject: &'a str,
    principal_type: &'a str,
    session_id: &'a str,
    identity: &'a str,
    issuer: &'a str,
    groups: &'a [String],
    policies: &'a [String],
    created_at: i64,
    expires_at: i64,
}

impl<'a> From<&'a Principal> for WhoAmI<'a> {
    fn from(p: &'a Principal) -> Self {
        WhoAmI {
            subject: &p.subject,
            principal_type: &p.principal_type,
            session_id: p.session_id().as_str(),
            identity: &p.identity,
            issuer: &p.issuer,
            groups: &p.groups,
            policies: &p.policies,
            created_at: p.created_at,
            expires_at: p.expires_at,
        }
    }
}

/// `GET /auth/session`.
pub(crate) async fn who_am_i(principal: Principal) -> Response {
    no_store(StatusCode::OK, &WhoAmI::from(&principal))
}

/// `DELETE /auth/session`: logout.
pub(crate) async fn logout(
    State(exchange): State<Exchange>,
    principal: Principal,
    req: Request,
) -> Result<Response, Rejection> {
    let retry_after = HttpConfig::of_request(&req).retry_after;
    exchange
        .revoke(principal.session_id())
        .await
        .map_err(|e| Rejection::from_exchange(&e, retry_after, Rejection::InvalidCredentials))?;
    Ok(no_content())
}

/// One session in a listing.
#[derive(Serialize)]
struct SessionInfo<'a> {
    session_id: &'a str,
    subject: &'a str,
    identity: &'a str,
    issuer: &'a str,
    groups: &'a [String],
    policies: &'a [String],
    created_at: i64,
    expires_at: i64,
}

impl<'a> From<&'a Session> for SessionInfo<'a> {
    fn from(s: &'a Session) -> Self {
        SessionInfo {
            session_id: s.id.as_str(),
            subject: &s.subject,
            identity: &s.identity,
            issuer: &s.issuer,
            groups: &s.groups,
            policies: &s.policies,
            created_at: s.created_at,
            expires_at: s.expires_at,
        }
    }
}

#[derive(Serialize)]
struct SessionList<'a> {
    sessions: Vec<SessionInfo<'a>>,
}

/// The `subject` query parameter of the admin endpoints.
fn subject(uri: &Uri) -> Result<String, Rejection> {
    Params::query(uri.query())?
        .require("subject", "`subject` is required.")
        .map(str::to_owned)
}

/// `GET /auth/sessions?subject=…` — needs `auth:ListSessions` on the subject.
pub(crate) async fn list_sessions(
    State(exchange): State<Exchange>,
    principal: Principal,
    req: Request,
) -> Result<Response, Rejection> {
    let retry_after = HttpConfig::of_request(&req).retry_after;
    let subject = subject(req.uri())?;
    authorize(&exchange, &principal, LIST_SESSIONS, &subject, retry_after).await?;
    let sessions = exchange
        .sessions_for(&subject)
        .await
        .map_err(|e| Rejection::from_exchange(&e, retry_after, Rejection::Internal))?;
    Ok(no_store(
        StatusCode::OK,
        &SessionList {
            sessions: sessions.iter().map(SessionInfo::from).collect(),
        },
    ))
}

/// `DELETE /auth/sessions?subject=…` — needs `auth:DeleteSession` on the subject.
pub(crate) async fn delete_subject(
    State(exchange): State<Exchange>,
    principal: Principal,
    req: Request,
) -> Result<Response, Rejection> {
    let retry_after = HttpConfig::of_request(&req).retry_after;
    let subject = subject(req.uri())?;
    authorize(&exchange, &principal, DELETE_SESSION, &subject, retry_after).await?;
    exchange
        .revoke_subject(&subject)
        .await
        .map_err(|e| Rejection::from_exchange(&e, retry_after, Rejection::Internal))?;
    Ok(no_content())
}

/// `DELETE /auth/sessions/{id}` — needs `auth:DeleteSession` on the session's subject.
///
/// An id that is not a session id, or names no live session, is checked against `*`: `204`
/// for a caller who may delete any session, `403` for everyone else. A caller allowed on some
/// subjects only therefore cannot tell "another subject's session" from "no such session".
pub(crate) async fn delete_session(
    State(exchange): State<Exchange>,
    principal: Principal,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Result<Response, Rejection> {
    let retry_after = HttpConfig::of_request(&req).retry_after;
    // An undecodable path segment is just another unknown id (never echoed).
    let id = id.ok().and_then(|Path(id)| SessionId::parse(&id).ok());
    let session = match id {
        Some(id) => exchange.store().get(&id).await.map_err(|e| {
            Rejection::from_exchange(&ExchangeError::Store(e), retry_after, Rejection::Internal)
        })?,
        None => None,
    };
    match session {
        Some(s) => {
            authorize(
                &exchange,
                &principal,
                DELETE_SESSION,
                &s.subject,
                retry_after,
            )
            .await?;
            exchange
                .revoke(&s.id)
                .await
                .map_err(|e| Rejection::from_exchange(&e, retry_after, Rejection::Internal))?;
        }
        None => authorize(&exchange, &principal, DELETE_SESSION, "*", retry_after).await?,
    }
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Option<LoginRequest<'_>> {
        serde_json::from_str(body).ok()
    }

    #[test]
    fn the_login_body_borrows_the_token_unless_it_has_escapes() {
        let plain = parse(r#"{"other": [1, {"token": 2}], "token": "a.b.c"}"#).expect("plain");
        assert!(matches!(plain.token, Cow::Borrowed("a.b.c")));
        // Escapes are decoded, in the token and in member names alike.
        let escaped = parse(r#"{"tok\u0065n": "a\/b"}"#).expect("escaped");
        assert!(matches!(escaped.token, Cow::Owned(ref t) if t == "a/b"));
        assert!(parse(r#"{"token": "a", "tok\u0065n": "b"}"#).is_none());
        assert!(parse(r#"{"token": "a"} x"#).is_none());
        assert!(parse(r#"["a"]"#).is_none());
    }
}
