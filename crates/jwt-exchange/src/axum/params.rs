//! Request bodies and parameters: JSON and form bodies with a size cap and a content-type check,
//! and query strings where every parameter may appear at most once.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::Rejection;

/// The largest body `POST /auth/jwt/login` and the `/oauth2/*` endpoints read: 64 KiB.
pub const BODY_LIMIT: usize = 64 * 1024;

const FORM: &str = "application/x-www-form-urlencoded";

/// Reads a JSON body, mapping every failure to a constant answer: a missing or non-JSON
/// `Content-Type` is `415`, a body over the route's `DefaultBodyLimit` is `413`, a body that
/// cannot be read is `400` with `invalid`. Parse it with [`from_json`], which can borrow from it.
pub(crate) async fn json_body(req: Request, invalid: &'static str) -> Result<Bytes, Rejection> {
    let media_type = is_json(req.headers());
    read_body(req, media_type, invalid).await
}

/// Parses a JSON body read by [`json_body`]: anything but exactly one `T` (syntax, wrong shape,
/// duplicate fields, trailing data) is `400` with `invalid`.
pub(crate) fn from_json<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    invalid: &'static str,
) -> Result<T, Rejection> {
    serde_json::from_slice(body).map_err(|_| Rejection::InvalidRequest(invalid))
}

/// Reads an `application/x-www-form-urlencoded` body; parse it with [`Params::parse`], whose
/// parameters borrow from it.
///
/// A parameter given twice is `400` (RFC 6749 §3.2: "parameters MUST NOT be included more than
/// once"); an empty value counts as absent (§3.1). Wrong `Content-Type` is `415`, a body over
/// the route's `DefaultBodyLimit` is `413`.
pub(crate) async fn form(req: Request) -> Result<Bytes, Rejection> {
    let media_type = has_media_type(req.headers(), FORM);
    read_body(
        req,
        media_type,
        "The form body is not valid application/x-www-form-urlencoded.",
    )
    .await
}

/// The body, once the content type is right (`415` otherwise) and it is within the route's
/// `DefaultBodyLimit` (`413`, before a byte is read when `Content-Length` says so); a body that
/// cannot be read is `400` with `unreadable`.
async fn read_body(
    req: Request,
    media_type: bool,
    unreadable: &'static str,
) -> Result<Bytes, Rejection> {
    if !media_type {
        return Err(Rejection::UnsupportedMediaType);
    }
    if announced_over_limit(req.headers()) {
        return Err(Rejection::PayloadTooLarge);
    }
    Bytes::from_request(req, &()).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Rejection::PayloadTooLarge
        } else {
            Rejection::InvalidRequest(unreadable)
        }
    })
}

/// Whether `Content-Length` announces more than [`BODY_LIMIT`]. Such a body is refused before a
/// byte of it is read: without this check the server would wait for (and read 64 KiB of) a body
/// it is going to refuse anyway, and a client announcing gigabytes while sending nothing would
/// hold the request open.
fn announced_over_limit(headers: &HeaderMap) -> bool {
    headers.get_all(CONTENT_LENGTH).iter().any(|v| {
        v.to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > BODY_LIMIT as u64)
    })
}

/// Whether `Content-Type` is JSON as axum's `Json` sees it: `application/json` or
/// `application/*+json`.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .is_some_and(|t| {
            t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
        })
}

/// Whether `Content-Type` is `essence` (case-insensitive, parameters such as `charset` ignored).
fn has_media_type(headers: &HeaderMap, essence: &str) -> bool {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let (Some(v), None) = (values.next(), values.next()) else {
        return false;
    };
    v.to_str().is_ok_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(essence))
    })
}

/// Form or query parameters, each present at most once, empty values dropped.
///
/// Names and values borrow from the input unless they had to be decoded (`%XX`, `+`), and the
/// pairs sit in one vector sorted by name: a `GET /auth/check?action=…&resource=…` costs one
/// allocation here, not one per name and value plus a tree node. Sorting also finds repeated
/// names in O(n log n), however many parameters a request carries.
#[derive(Default)]
pub(crate) struct Params<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Params<'a> {
    /// Parses `a=1&b=2` (percent- and `+`-decoding). Repeated names are an error.
    pub(crate) fn parse(input: &'a [u8]) -> Result<Self, Rejection> {
        // Empty values are kept (so a repeat of an empty parameter is still a repeat) and hidden
        // by the getters.
        let mut pairs: Vec<_> = url::form_urlencoded::parse(input).collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(Rejection::InvalidRequest("A parameter is repeated."));
        }
        Ok(Params(pairs))
    }

    /// The parameters of a query string (none when there is no query).
    pub(crate) fn query(query: Option<&'a str>) -> Result<Self, Rejection> {
        query.map_or_else(|| Ok(Params::default()), |q| Params::parse(q.as_bytes()))
    }

    /// The value of `name`, if present and non-empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_ref().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_ref())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, or `400` with `missing`.
    pub(crate) fn require(&self, name: &str, missing: &'static str) -> Result<&str, Rejection> {
        self.get(name).ok_or(Rejection::InvalidRequest(missing))
    }

    /// Whether `name` is present with a non-empty value.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn params_refuse_repeats_and_drop_empty_values() {
        let p = Params::parse(b"a=1&b=&c=x+y%21").expect("parse");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert!(!p.has("b"));
        assert_eq!(p.get("c"), Some("x y!"));
        assert!(Params::parse(b"a=1&a=1").is_err());
        assert!(
            Params::parse(b"a=&a=1").is_err(),
            "an empty repeat is a repeat"
        );
        assert!(
            Params::parse(b"a%3D=1&a%3d=2").is_err(),
            "names compare decoded"
        );
        assert_eq!(
            Params::query(None).expect("empty").require("x", "`x`"),
            Err(Rejection::InvalidRequest("`x`"))
        );
    }

    #[tokio::test]
    async fn an_announced_length_over_the_limit_is_413_before_reading() {
        // The body is empty: had it been read, the answer would be a 400 for empty JSON. The
        // announced length alone decides (end to end, the server answers without waiting for
        // a body that never comes: `jwt-exchange-cli` tests `attacks::oversized_*`).
        let announced = |ct: &str, len: String| {
            Request::builder()
                .method("POST")
                .header(CONTENT_TYPE, ct)
                .header(CONTENT_LENGTH, len)
                .body(axum::body::Body::empty())
                .expect("request")
        };
        let r = json_body(announced("application/json", "8388608".into()), "x");
        assert_eq!(r.await.err(), Some(Rejection::PayloadTooLarge));
        let r = json_body(announced("application/jwt+json", "99999999999".into()), "x");
        assert_eq!(r.await.err(), Some(Rejection::PayloadTooLarge));
        let r = form(announced(FORM, (BODY_LIMIT + 1).to_string())).await;
        assert!(matches!(r, Err(Rejection::PayloadTooLarge)));
        // At the limit the body is read (and here it is empty JSON: 400).
        let body = json_body(announced("application/json", BODY_LIMIT.to_string()), "x")
            .await
            .expect("read");
        assert_eq!(
            from_json::<serde_json::Value>(&body, "x").err(),
            Some(Rejection::InvalidRequest("x"))
        );
        // The content type is still checked first.
        let r = json_body(announced("text/plain", "8388608".into()), "x");
        assert_eq!(r.await.err(), Some(Rejection::UnsupportedMediaType));
        let r = json_body(announced("application/x-json", "1".into()), "x");
        assert_eq!(r.await.err(), Some(Rejection::UnsupportedMediaType));
        let r = form(announced("application/json", "8388608".into())).await;
        assert!(matches!(r, Err(Rejection::UnsupportedMediaType)));
    }

    #[test]
    fn media_type_essence() {
        let mut h = HeaderMap::new();
        assert!(!has_media_type(&h, FORM));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
        );
        assert!(has_media_type(&h, FORM));
        h.append(CONTENT_TYPE, HeaderValue::from_static(FORM));
        assert!(!has_media_type(&h, FORM), "two content types are ambiguous");
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!has_media_type(&h, FORM));
    }
}
