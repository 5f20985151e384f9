//! `GET /auth/check`: forward authentication for gateways (nginx `auth_request`, Traefik
//! ForwardAuth, APISIX `forward-auth`), and `ANY /auth/check/{*path}` for Envoy `ext_authz` in
//! HTTP-service mode.

use std::fmt;
use std::str::FromStr;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::extract::authorize;
use super::params::Params;
use super::{HttpConfig, Rejection};
use crate::{ConfigError, Exchange, Principal};

/// Response header: the caller's subject (`jwt:<issuer>:<identity>`), [encoded](encode_header).
pub const X_AUTH_SUBJECT: &str = "x-auth-subject";
/// Response header: the caller's session id.
pub const X_AUTH_SESSION_ID: &str = "x-auth-session-id";
/// Response header: the caller's groups, each [encoded](encode_header), joined by `,`.
pub const X_AUTH_GROUPS: &str = "x-auth-groups";

const UNMAPPABLE: &str = "The forwarded request cannot be mapped to an action and a resource.";
const MISSING: &str = "`action` and `resource` are required, as query parameters or through \
X-Forwarded-Method, X-Forwarded-Uri and X-Forwarded-Host.";

/// How `GET /auth/check` derives the action and the resource when the `action` / `resource`
/// query parameters are absent: from the gateway's `X-Forwarded-*` headers, through two
/// templates.
///
/// Placeholders:
///
/// | placeholder | value | when the header is missing or unusable |
/// |---|---|---|
/// | `{method}` | `X-Forwarded-Method`, upper-cased (letters only) | `400` |
/// | `{path}` | the path of `X-Forwarded-Uri` (a path or an absolute URI), query and fragment dropped, percent-decoded | `400` |
/// | `{host}` | the host name of `X-Forwarded-Host`, lower-cased, without its port and a trailing dot | `400` |
///
/// A decoded path must start with `/` and may not contain `.` or `..` segments, empty segments
/// (`//`), `;`, backslashes, control characters or invalid UTF-8: such requests are refused
/// (`400`) rather than guessing how the upstream would normalise them. Decoding means
/// `/%61dmin` is checked as `/admin`, so a percent-encoded path cannot slip past a deny
/// statement. For the same reason `{host}` drops the port and a trailing dot:
/// `Admin.Example.com.:8443` is checked as `admin.example.com`, the virtual host a gateway
/// serves it from.
///
/// Each of `action` and `resource` falls back independently: `?action=fs:ReadObject` with
/// `X-Forwarded-Uri` gives the resource from the template.
///
/// Serde: `{"action": "...", "resource": "..."}`, both optional, unknown keys refused;
/// templates are checked when parsed (unknown placeholders and stray braces are errors).
///
/// ```
/// use jwt_exchange::axum::ForwardAuthConfig;
///
/// let d = ForwardAuthConfig::default();
/// assert_eq!(d.action.as_str(), "http:{method}");
/// assert_eq!(d.resource.as_str(), "{path}");
///
/// let c: ForwardAuthConfig = serde_json::from_str(r#"{"resource": "{host}{path}"}"#).unwrap();
/// assert_eq!(c.action.as_str(), "http:{method}");
/// assert!(serde_json::from_str::<ForwardAuthConfig>(r#"{"resource": "{query}"}"#).is_err());
/// assert!(serde_json::from_str::<ForwardAuthConfig>(r#"{"extra": "x"}"#).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ForwardAuthConfig {
    /// The action template. Defaults to `http:{method}`.
    #[serde(default = "default_action")]
    pub action: Template,
    /// The resource template. Defaults to `{path}`.
    #[serde(default = "default_resource")]
    pub resource: Template,
}

impl Default for ForwardAuthConfig {
    fn default() -> Self {
        ForwardAuthConfig {
            action: default_action(),
            resource: default_resource(),
        }
    }
}

impl ForwardAuthConfig {
    /// A mapping from two templates.
    ///
    /// ```
    /// use jwt_exchange::axum::ForwardAuthConfig;
    /// let c = ForwardAuthConfig::new("api:{method}", "{host}{path}").unwrap();
    /// assert_eq!(c.resource.as_str(), "{host}{path}");
    /// assert!(ForwardAuthConfig::new("api:{verb}", "{path}").is_err());
    /// ```
    pub fn new(action: &str, resource: &str) -> Result<Self, ConfigError> {
        let parse =
            |key: &str, t: &str| Template::new(t).map_err(|e| ConfigError::new(key, e.reason()));
        Ok(ForwardAuthConfig {
            action: parse("action", action)?,
            resource: parse("resource", resource)?,
        })
    }
}

fn default_action() -> Template {
    Template::new("http:{method}").expect("a valid template")
}

fn default_resource() -> Template {
    Template::new("{path}").expect("a valid template")
}

/// A checked template of literal text and `{method}`, `{path}`, `{host}` placeholders.
///
/// Write a literal brace as `{{` or `}}`.
///
/// ```
/// use jwt_exchange::axum::Template;
/// assert!("http:{method}".parse::<Template>().is_ok());
/// assert!("{{literal}}".parse::<Template>().is_ok());
/// assert!("{nope}".parse::<Template>().is_err());
/// assert!("{path".parse::<Template>().is_err());
/// assert!("a}b".parse::<Template>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Method,
    Path,
    Host,
}

impl Template {
    /// Parses and checks a template.
    pub fn new(s: &str) -> Result<Self, ConfigError> {
        let err = |reason: &str| ConfigError::new("template", reason.to_owned());
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => return Err(err("unmatched `}` (write `}}` for a literal brace)")),
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    let part = match name.as_str() {
                        "method" if closed => Part::Method,
                        "path" if closed => Part::Path,
                        "host" if closed => Part::Host,
                        _ => return Err(err(
                            "unknown or unterminated placeholder; use {method}, {path} or {host}",
                        )),
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(part);
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        if parts.is_empty() {
            return Err(err("empty template"));
        }
        Ok(Template {
            source: s.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Fills the template from the forwarded request's headers.
    fn render(&self, headers: &HeaderMap) -> Result<String, Rejection> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(l) => out.push_str(l),
                Part::Method => out.push_str(&forwarded_method(headers)?),
                Part::Path => out.push_str(&forwarded_path(headers)?),
                Part::Host => out.push_str(&forwarded_host(headers)?),
            }
        }
        Ok(out)
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.as_str())
    }
}

impl FromStr for Template {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Template::new(s)
    }
}

impl Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Template::new(&s).map_err(serde::de::Error::custom)
    }
}

/// The single value of header `name`, if present exactly once and visible ASCII.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, Rejection> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v
            .to_str()
            .map_err(|_| Rejection::InvalidRequest(UNMAPPABLE)),
        (None, _) => Err(Rejection::InvalidRequest(MISSING)),
        _ => Err(Rejection::InvalidRequest(UNMAPPABLE)),
    }
}

fn forwarded_method(headers: &HeaderMap) -> Result<String, Rejection> {
    let m = single(headers, "x-forwarded-method")?.trim();
    if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Rejection::InvalidRequest(UNMAPPABLE));
    }
    Ok(m.to_ascii_uppercase())
}

fn forwarded_host(headers: &HeaderMap) -> Result<String, Rejection> {
    host_name(single(headers, "x-forwarded-host")?.trim())
        .map(str::to_ascii_lowercase)
        .ok_or(Rejection::InvalidRequest(UNMAPPABLE))
}

/// The host name of a `Host` value: without its port and one trailing dot, so that
/// `admin.example.com.` and `admin.example.com:443` — which a gateway routes to the same
/// virtual host — are checked as `admin.example.com`. `None` for anything that is not a
/// DNS name, an IPv4 address or a bracketed IPv6 address with an optional numeric port.
fn host_name(h: &str) -> Option<&str> {
    // The port follows the last `:`, unless that `:` is inside an IPv6 address's brackets.
    let (name, port) = match h.rfind(':') {
        Some(i) if !h[i..].contains(']') => (&h[..i], Some(&h[i + 1..])),
        _ => (h, None),
    };
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        let valid = !v6.is_empty()
            && v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b":.".contains(&b));
        return valid.then_some(name);
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then_some(name)
}

fn forwarded_path(headers: &HeaderMap) -> Result<String, Rejection> {
    let raw = single(headers, "x-forwarded-uri")?.trim();
    let uri: Uri = raw
        .parse()
        .map_err(|_| Rejection::InvalidRequest(UNMAPPABLE))?;
    if uri.scheme().is_none() && !raw.starts_with('/') {
        return Err(Rejection::InvalidRequest(UNMAPPABLE));
    }
    canonical_path(uri.path()).ok_or(Rejection::InvalidRequest(UNMAPPABLE))
}

/// `path` percent-decoded, or `None` when it is malformed or ambiguous: not starting with `/`,
/// or holding `.` / `..` segments, empty segments (`//`), `;`, backslashes, control characters
/// or invalid UTF-8, raw or encoded. Refused, not normalised: an upstream may merge `//`, drop
/// `;params` (servlet containers), resolve dot segments or read `\\` as `/`, so what is
/// checked would not be what it serves.
pub(crate) fn canonical_path(path: &str) -> Option<String> {
    let path = percent_decode(path)?;
    let ambiguous = !path.starts_with('/')
        || path.contains('\\')
        || path.contains("//")
        || path.contains(';')
        || path.chars().any(char::is_control)
        || path.split('/').any(|seg| seg == "." || seg == "..");
    (!ambiguous).then_some(path)
}

/// Percent-decodes `s`; `None` for a malformed escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Makes any string safe as a header value: bytes outside visible ASCII (controls, space,
/// non-ASCII UTF-8), `%` and `,` become `%XX`. Everything else passes unchanged, so typical
/// group names (`lakefs-data-engineers`, `read:data`, GUIDs) arrive as they are.
///
/// ```
/// use jwt_exchange::axum::encode_header;
/// assert_eq!(encode_header("read:data"), "read:data");
/// assert_eq!(encode_header("Data Engineers, EU"), "Data%20Engineers%2C%20EU");
/// assert_eq!(encode_header("bell\u{7}é"), "bell%07%C3%A9");
/// ```
pub fn encode_header(s: &str) -> String {
    let mut out = String::with_capacity(encoded_len(s));
    push_header_encoded(&mut out, s);
    out
}

/// Whether `b` passes [`encode_header`] unchanged.
fn plain(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b'%' && b != b','
}

/// The length of `s` encoded as [`encode_header`] does.
fn encoded_len(s: &str) -> usize {
    // Without a short circuit the loop has no branch per byte and vectorises.
    s.len() + 2 * s.bytes().map(|b| usize::from(!plain(b))).sum::<usize>()
}

/// Appends `s` to `out` encoded as [`encode_header`] does.
fn push_header_encoded(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if s.bytes().fold(true, |all, b| all & plain(b)) {
        // The usual case (subjects, GUIDs, group names): nothing to escape.
        out.push_str(s);
        return;
    }
    for &b in s.as_bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.extend([
                '%',
                char::from(HEX[usize::from(b >> 4)]),
                char::from(HEX[usize::from(b & 0x0F)]),
            ]);
        }
    }
}

/// `GET /auth/check`.
pub(crate) async fn check(
    State(exchange): State<Exchange>,
    principal: Principal,
    req: Request,
) -> Result<Response, Rejection> {
    let cfg = HttpConfig::of_request(&req);
    let query = Params::query(req.uri().query())?;
    let action = match query.get("action") {
        Some(a) => std::borrow::Cow::Borrowed(a),
        None => cfg.forward_auth.action.render(req.headers())?.into(),
    };
    let resource = match query.get("resource") {
        Some(r) => std::borrow::Cow::Borrowed(r),
        None => cfg.forward_auth.resource.render(req.headers())?.into(),
    };
    let retry_after = cfg.retry_after;
    authorize(&exchange, &principal, &action, &resource, retry_after).await?;
    Ok(allowed(StatusCode::NO_CONTENT, &principal))
}

/// The path prefix of the Envoy-style catch-all route.
const CHECK_PREFIX: &str = "/auth/check";

/// `ANY /auth/check/{*path}`: Envoy `ext_authz` in HTTP-service mode.
///
/// Envoy sends the checked request's own method, and `path_prefix` + its path and query, to the
/// authorization service, and treats only `200` as allowed. Here the checked request *is* this
/// request: its method fills `{method}`, the path after `/auth/check` fills `{path}`, its `Host`
/// fills `{host}` (any `X-Forwarded-*` headers the client sent are ignored), and the query
/// string belongs to the checked request, so `action` / `resource` parameters are not read.
/// Allowed → `200` with the `X-Auth-*` headers; otherwise the same 401 / 403 / 503 answers as
/// `GET /auth/check`.
pub(crate) async fn check_envoy(
    State(exchange): State<Exchange>,
    principal: Principal,
    req: Request,
) -> Result<Response, Rejection> {
    let cfg = HttpConfig::of_request(&req);
    let raw = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let forwarded = raw
        .strip_prefix(CHECK_PREFIX)
        .filter(|rest| rest.starts_with('/'))
        .ok_or(Rejection::InvalidRequest(UNMAPPABLE))?;
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    put("x-forwarded-method", req.method().as_str());
    put("x-forwarded-uri", forwarded);
    if let Some(host) = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        put("x-forwarded-host", host);
    }
    let action = cfg.forward_auth.action.render(&headers)?;
    let resource = cfg.forward_auth.resource.render(&headers)?;
    authorize(&exchange, &principal, &action, &resource, cfg.retry_after).await?;
    Ok(allowed(StatusCode::OK, &principal))
}

/// An empty "allowed" answer with `status`: `Cache-Control: no-store`, `Pragma: no-cache` and
/// the `X-Auth-*` headers.
///
/// The header map is allocated once at its final size, and each `X-Auth-*` value is written
/// into a string of its exact length that the header value then takes over without a copy.
fn allowed(status: StatusCode, principal: &Principal) -> Response {
    // Names checked at compile time, not per answer.
    const SUBJECT: HeaderName = HeaderName::from_static(X_AUTH_SUBJECT);
    const SESSION_ID: HeaderName = HeaderName::from_static(X_AUTH_SESSION_ID);
    const GROUPS: HeaderName = HeaderName::from_static(X_AUTH_GROUPS);
    let groups_len = principal
        .groups
        .iter()
        .map(|g| encoded_len(g))
        .sum::<usize>()
        + principal.groups.len().saturating_sub(1);
    let mut groups = String::with_capacity(groups_len);
    for (i, g) in principal.groups.iter().enumerate() {
        if i > 0 {
            groups.push(',');
        }
        push_header_encoded(&mut groups, g);
    }
    let mut h = super::handlers::no_store_headers(3);
    for (name, value) in [
        (SUBJECT, encode_header(&principal.subject)),
        (SESSION_ID, principal.session_id().as_str().to_owned()),
        (GROUPS, groups),
    ] {
        // Every value is visible ASCII by construction; the conversion (which takes the string
        // without copying it) cannot fail, but a failure would drop the header, not panic.
        if let Ok(v) = HeaderValue::try_from(value) {
            h.insert(name, v);
        }
    }
    super::handlers::answer(status, h, Body::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn templates_parse_and_print() {
        for t in [
            "http:{method}",
            "{path}",
            "{host}{path}",
            "x{{y}}z:{method}",
        ] {
            assert_eq!(Template::new(t).expect(t).as_str(), t);
        }
        for bad in ["", "{", "}", "{path", "{}", "{Method}", "a}b", "{path}}"] {
            assert!(Template::new(bad).is_err(), "{bad}");
        }
        let e = ForwardAuthConfig::new("{x}", "{path}").unwrap_err();
        assert_eq!(e.key(), "action");
    }

    #[test]
    fn rendering_from_forwarded_headers() {
        let cfg = ForwardAuthConfig::new("api:{method}", "{host}{path}").expect("cfg");
        let h = headers(&[
            ("x-forwarded-method", "get"),
            ("x-forwarded-uri", "/a/%62/c?x=1#f"),
            ("x-forwarded-host", "Example.COM:8443"),
        ]);
        assert_eq!(cfg.action.render(&h).expect("action"), "api:GET");
        assert_eq!(
            cfg.resource.render(&h).expect("resource"),
            "example.com/a/b/c"
        );
        let abs = headers(&[("x-forwarded-uri", "https://h.example/x/y?q")]);
        assert_eq!(
            Template::new("{path}").unwrap().render(&abs).unwrap(),
            "/x/y"
        );
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        let t = Template::new("{path}").expect("t");
        for bad in [
            "/a/../b",
            "/a/./b",
            "/a/%2e%2E/b",
            "/a/%2E/b",
            "/..",
            "/a%5cb",
            "/a%00b",
            "/a%0ab",
            "/%ff",
            "/%zz",
            "/%2",
            "/%+1",
            "relative/path",
            "*",
            // Upstreams that merge slashes or drop path parameters would serve `/admin/x`.
            "//admin/x",
            "/public//admin",
            "/a%2F%2Fb",
            "/admin;x/secret",
            "/admin%3bx",
        ] {
            let h = headers(&[("x-forwarded-uri", bad)]);
            assert_eq!(
                t.render(&h),
                Err(Rejection::InvalidRequest(UNMAPPABLE)),
                "{bad}"
            );
        }
        assert_eq!(
            t.render(&HeaderMap::new()),
            Err(Rejection::InvalidRequest(MISSING))
        );
        let two = headers(&[("x-forwarded-uri", "/a"), ("x-forwarded-uri", "/b")]);
        assert!(t.render(&two).is_err());
        for ok in ["/", "/a/b.c/..d/...", "/a%20b"] {
            let h = headers(&[("x-forwarded-uri", ok)]);
            assert!(t.render(&h).is_ok(), "{ok}");
        }
    }

    #[test]
    fn methods_and_hosts_are_checked() {
        let m = Template::new("{method}").expect("t");
        assert!(m
            .render(&headers(&[("x-forwarded-method", "G3T")]))
            .is_err());
        assert!(m.render(&headers(&[("x-forwarded-method", "")])).is_err());
        let h = Template::new("{host}").expect("t");
        assert!(h.render(&headers(&[("x-forwarded-host", "a b")])).is_err());
        assert!(h.render(&headers(&[("x-forwarded-host", "a/b")])).is_err());
        // The virtual host a gateway serves, whatever port or trailing dot the client sent.
        for (sent, checked) in [
            ("admin.example.com", "admin.example.com"),
            ("Admin.Example.COM.", "admin.example.com"),
            ("admin.example.com:443", "admin.example.com"),
            ("admin.example.com.:8443", "admin.example.com"),
            ("10.0.0.1:80", "10.0.0.1"),
            ("[::1]", "[::1]"),
            ("[2001:DB8::1]:8080", "[2001:db8::1]"),
        ] {
            let r = h.render(&headers(&[("x-forwarded-host", sent)]));
            assert_eq!(r.as_deref(), Ok(checked), "{sent}");
        }
        for bad in [
            "",
            ".",
            "a..b",
            ".a",
            "a.:",
            "a:",
            "a:x",
            "a:123456",
            "a:1:2",
            "::1",
            "[::1",
            "[]",
            "[::1]x",
            "[::1]:",
            "[fe80::1%25eth0]",
            "a]b:1",
        ] {
            let r = h.render(&headers(&[("x-forwarded-host", bad)]));
            assert_eq!(r, Err(Rejection::InvalidRequest(UNMAPPABLE)), "{bad:?}");
        }
    }

    #[test]
    fn header_encoding_is_always_a_valid_value() {
        for s in ["", "a,b", "%", "\u{0}\u{7f}\r\n", "ü 👩‍💻", "\t x "] {
            let e = encode_header(s);
            assert!(HeaderValue::from_str(&e).is_ok(), "{s:?} -> {e}");
            assert!(!e.contains(','), "{e}");
            assert_eq!(e.len(), encoded_len(s), "{s:?}");
        }
        assert_eq!(encode_header("100%"), "100%25");
    }
}
