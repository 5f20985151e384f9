//! Error responses: the one place where errors become HTTP statuses.
//!
//! Every error body is a small JSON object in the RFC 6749 §5.2 shape,
//! `{"error": "<code>", "error_description": "<text>"}`, built from constants: a body never
//! contains anything taken from the request (no token, no claim value, no parameter).

use std::borrow::Cow;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::{ExchangeError, StoreError};

/// The one body of every `401` answered to a token that was presented and refused, whatever
/// the reason (expired, bad signature, wrong audience, unknown `kid`, revoked session, ...):
/// the reason is audited and counted, never told to the caller.
pub const INVALID_TOKEN_BODY: &str =
    r#"{"error":"invalid_token","error_description":"The access token is invalid."}"#;

/// The body of a `401` to a request that carried no credentials at all.
pub const UNAUTHORIZED_BODY: &str =
    r#"{"error":"unauthorized","error_description":"Authentication is required."}"#;

/// The one body of every refused `assertion` of the JWT bearer grant (RFC 7523 §3.1:
/// `invalid_grant`) at `POST /oauth2/token`, whatever the reason.
pub const INVALID_GRANT_BODY: &str =
    r#"{"error":"invalid_grant","error_description":"The assertion is invalid."}"#;

/// The one body of every refused `subject_token` of the token exchange grant (RFC 8693
/// §2.2.2 requires `invalid_request` there) at `POST /oauth2/token`, whatever the reason.
pub const INVALID_SUBJECT_TOKEN_BODY: &str =
    r#"{"error":"invalid_request","error_description":"The subject token is invalid."}"#;

const BEARER_CHALLENGE: &str = r#"Bearer realm="jwt-exchange""#;
const BEARER_INVALID_CHALLENGE: &str = r#"Bearer realm="jwt-exchange", error="invalid_token""#;
const BEARER_SCOPE_CHALLENGE: &str = r#"Bearer realm="jwt-exchange", error="insufficient_scope""#;
const BASIC_CHALLENGE: &str = r#"Basic realm="jwt-exchange""#;

/// An error answer of the HTTP API.
///
/// Handlers and extractors return this; [`IntoResponse`] turns it into the status, headers and
/// constant JSON body listed in `docs/http-api.md`. [`Rejection::from_exchange`] is the single
/// mapping from [`ExchangeError`] to a status: outages ([`ExchangeError::is_unavailable`]) are
/// `503`, a corrupt store record is `500`, everything else is the caller's `401` (or
/// `invalid_grant` at the token endpoint).
///
/// ```
/// use axum::http::StatusCode;
/// use axum::response::IntoResponse;
/// use jwt_exchange::axum::Rejection;
///
/// let r = Rejection::InvalidCredentials.into_response();
/// assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(r.headers().get_all("www-authenticate").iter().count(), 2);
/// assert_eq!(Rejection::Forbidden.status(), StatusCode::FORBIDDEN);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// `400 invalid_request`: a missing, repeated or malformed parameter or body. The text is
    /// the `error_description`: a constant saying what was expected, never request input.
    InvalidRequest(&'static str),
    /// `401`: the request carried no `Authorization` the server understands. Challenges
    /// `Bearer` and `Basic` (user `_jwt`).
    MissingCredentials,
    /// `401`: credentials were presented and refused. Challenges `Bearer` (with
    /// `error="invalid_token"`) and `Basic`; the body is [`INVALID_TOKEN_BODY`].
    InvalidCredentials,
    /// `401` from `POST /auth/jwt/login`: the external token in the body was refused. Challenges
    /// `Bearer` with `error="invalid_token"`; the body is [`INVALID_TOKEN_BODY`].
    InvalidToken,
    /// `403 insufficient_scope`: authenticated, but the policies do not allow the action.
    /// Challenges `Bearer` with `error="insufficient_scope"` (RFC 6750 §3.1).
    Forbidden,
    /// `413 invalid_request`: the body is larger than the endpoint accepts.
    PayloadTooLarge,
    /// `415 invalid_request`: the body does not have the required `Content-Type`.
    UnsupportedMediaType,
    /// `400 invalid_grant` (RFC 6749 §5.2, RFC 7523 §3.1): the JWT bearer grant's assertion was
    /// refused. The body is [`INVALID_GRANT_BODY`].
    InvalidGrant,
    /// `400 invalid_request` (RFC 8693 §2.2.2): the token exchange grant's subject token was
    /// refused. The body is [`INVALID_SUBJECT_TOKEN_BODY`].
    InvalidSubjectToken,
    /// `400 unsupported_grant_type`.
    UnsupportedGrantType,
    /// `400 invalid_target` (RFC 8693): `resource` or `audience` names a target this server
    /// does not issue tokens for.
    InvalidTarget,
    /// `500 server_error`: something that should not happen (a corrupt store record). Logged.
    Internal,
    /// `501 not_implemented`: no identity provider is configured, so no token can be exchanged.
    NotConfigured,
    /// `503 temporarily_unavailable` with `Retry-After`: the IdP's keys are unavailable past
    /// `jwks_max_stale`, or the session store or policy directory is down.
    Unavailable {
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
}

impl Rejection {
    /// `Retry-After` used when nothing else is configured: 5 seconds.
    pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

    /// The HTTP status of this answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::InvalidRequest(_)
            | Rejection::InvalidGrant
            | Rejection::InvalidSubjectToken
            | Rejection::UnsupportedGrantType
            | Rejection::InvalidTarget => StatusCode::BAD_REQUEST,
            Rejection::MissingCredentials
            | Rejection::InvalidCredentials
            | Rejection::InvalidToken => StatusCode::UNAUTHORIZED,
            Rejection::Forbidden => StatusCode::FORBIDDEN,
            Rejection::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Rejection::NotConfigured => StatusCode::NOT_IMPLEMENTED,
            Rejection::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// `503` with `Retry-After` rounded to whole seconds.
    pub fn unavailable(retry_after: Duration) -> Self {
        Rejection::Unavailable {
            retry_after: retry_after.as_secs(),
        }
    }

    /// Maps an [`ExchangeError`]: an outage is [`Rejection::Unavailable`], a store record that
    /// cannot be decoded (or any other non-transient store failure) is [`Rejection::Internal`],
    /// and everything else — the caller's fault — is `refused`.
    ///
    /// Outages and internal errors are logged here (target `jwt_exchange::axum`); refusals are
    /// already audited by [`Exchange::login`](crate::Exchange::login) or are logged at `debug`.
    /// No log line contains a token.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jwt_exchange::axum::Rejection;
    /// use jwt_exchange::{ExchangeError, StoreError, VerifyError};
    ///
    /// let retry = Duration::from_secs(5);
    /// let refused = Rejection::InvalidToken;
    /// let e = ExchangeError::Verify(VerifyError::InvalidSignature);
    /// assert_eq!(Rejection::from_exchange(&e, retry, refused.clone()), Rejection::InvalidToken);
    /// let e = ExchangeError::Verify(VerifyError::KeysUnavailable);
    /// assert_eq!(
    ///     Rejection::from_exchange(&e, retry, refused.clone()),
    ///     Rejection::Unavailable { retry_after: 5 }
    /// );
    /// let e = ExchangeError::Store(StoreError::corrupt("bad record"));
    /// assert_eq!(Rejection::from_exchange(&e, retry, refused), Rejection::Internal);
    /// ```
    pub fn from_exchange(e: &ExchangeError, retry_after: Duration, refused: Rejection) -> Self {
        Rejection::outage(e, retry_after).unwrap_or_else(|| {
            tracing::debug!(
                target: "jwt_exchange::axum",
                check = e.check(),
                error = %e,
                "credentials refused"
            );
            refused
        })
    }

    /// The answer to an [`ExchangeError`] that is not the caller's fault: `503` for an outage,
    /// `500` for a corrupt (or otherwise unexpected) store failure; `None` for a refusal.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jwt_exchange::axum::Rejection;
    /// use jwt_exchange::{ExchangeError, StoreError};
    ///
    /// let retry = Duration::from_secs(5);
    /// assert_eq!(Rejection::outage(&ExchangeError::SessionNotFound, retry), None);
    /// let down = ExchangeError::Store(StoreError::unavailable("connection refused"));
    /// assert_eq!(
    ///     Rejection::outage(&down, retry),
    ///     Some(Rejection::Unavailable { retry_after: 5 })
    /// );
    /// ```
    pub fn outage(e: &ExchangeError, retry_after: Duration) -> Option<Self> {
        match e {
            ExchangeError::Store(s) if !s.is_unavailable() => {
                let what = match s {
                    StoreError::Corrupt(_) => "corrupt session record",
                    _ => "unexpected session store error",
                };
                tracing::error!(
                    target: "jwt_exchange::axum",
                    check = e.check(),
                    error = %e,
                    source = ?std::error::Error::source(s),
                    "answering 500: {what}"
                );
                Some(Rejection::Internal)
            }
            e if e.is_unavailable() => {
                tracing::warn!(
                    target: "jwt_exchange::axum",
                    check = e.check(),
                    error = %e,
                    "answering 503: a dependency is unavailable"
                );
                Some(Rejection::unavailable(retry_after))
            }
            _ => None,
        }
    }

    fn body(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Rejection::InvalidRequest(what) => {
                let body =
                    serde_json::json!({"error": "invalid_request", "error_description": what});
                return Cow::Owned(body.to_string());
            }
            Rejection::MissingCredentials => UNAUTHORIZED_BODY,
            Rejection::InvalidCredentials | Rejection::InvalidToken => INVALID_TOKEN_BODY,
            Rejection::Forbidden => {
                r#"{"error":"insufficient_scope","error_description":"The caller is not allowed to perform this action."}"#
            }
            Rejection::PayloadTooLarge => {
                r#"{"error":"invalid_request","error_description":"The request body is too large."}"#
            }
            Rejection::UnsupportedMediaType => {
                r#"{"error":"invalid_request","error_description":"The request body has an unsupported Content-Type."}"#
            }
            Rejection::InvalidGrant => INVALID_GRANT_BODY,
            Rejection::InvalidSubjectToken => INVALID_SUBJECT_TOKEN_BODY,
            Rejection::UnsupportedGrantType => {
                r#"{"error":"unsupported_grant_type","error_description":"The grant type is not supported."}"#
            }
            Rejection::InvalidTarget => {
                r#"{"error":"invalid_target","error_description":"Tokens are only issued for this server."}"#
            }
            Rejection::Internal => {
                r#"{"error":"server_error","error_description":"An unexpected error occurred."}"#
            }
            Rejection::NotConfigured => {
                r#"{"error":"not_implemented","error_description":"No identity provider is configured."}"#
            }
            Rejection::Unavailable { .. } => {
                r#"{"error":"temporarily_unavailable","error_description":"The service is temporarily unavailable; retry later."}"#
            }
        })
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        // Room for the content type, two challenges and `Retry-After`.
        let mut headers = super::handlers::no_store_headers(3);
        let h = &mut headers;
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match &self {
            Rejection::MissingCredentials => {
                h.append(WWW_AUTHENTICATE, HeaderValue::from_static(BEARER_CHALLENGE));
                h.append(WWW_AUTHENTICATE, HeaderValue::from_static(BASIC_CHALLENGE));
            }
            Rejection::InvalidCredentials => {
                h.append(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(BEARER_INVALID_CHALLENGE),
                );
                h.append(WWW_AUTHENTICATE, HeaderValue::from_static(BASIC_CHALLENGE));
            }
            Rejection::InvalidToken => {
                h.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(BEARER_INVALID_CHALLENGE),
                );
            }
            // RFC 6750 §3.1: the token is fine but does not allow this request.
            Rejection::Forbidden => {
                h.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(BEARER_SCOPE_CHALLENGE),
                );
            }
            Rejection::Unavailable { retry_after } => {
                h.insert(RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        super::handlers::answer(self.status(), headers, Body::from(self.body()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_body_is_json_with_an_error_code() {
        let all = [
            Rejection::InvalidRequest("`token` is required."),
            Rejection::MissingCredentials,
            Rejection::InvalidCredentials,
            Rejection::InvalidToken,
            Rejection::Forbidden,
            Rejection::PayloadTooLarge,
            Rejection::UnsupportedMediaType,
            Rejection::InvalidGrant,
            Rejection::InvalidSubjectToken,
            Rejection::UnsupportedGrantType,
            Rejection::InvalidTarget,
            Rejection::Internal,
            Rejection::NotConfigured,
            Rejection::Unavailable { retry_after: 5 },
        ];
        for r in all {
            let v: serde_json::Value = serde_json::from_str(&r.body()).expect("json");
            assert!(v["error"].is_string(), "{r:?}");
            assert!(v["error_description"].is_string(), "{r:?}");
            assert_eq!(v.as_object().map(serde_json::Map::len), Some(2));
        }
        assert_eq!(
            Rejection::InvalidRequest("`token` is required.").body(),
            r#"{"error":"invalid_request","error_description":"`token` is required."}"#
        );
    }

    #[test]
    fn retry_after_is_whole_seconds() {
        let r = Rejection::unavailable(Duration::from_millis(30_900)).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[RETRY_AFTER], "30");
    }
}
