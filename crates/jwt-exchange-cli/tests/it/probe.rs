//! What the hostile-input, fault-injection and soak tests (`attacks`, `faults`, `soak`) share:
//! HTTP calls against a running `serve`, its `/metrics`, its memory (`VmRSS`) and checks of its
//! TRACE log (no token or bearer, one line per event).

use std::collections::HashSet;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{json, Value};

pub const AUD: &str = "api://lakefs";

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// One HTTP client for a test (connection pool, 30 s timeout).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// An answer: status, body text, headers.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: HeaderMap,
}

/// `POST {base}{path}` with an optional `Content-Type`.
pub async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Answer {
    let mut req = http.post(format!("{base}{path}")).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Answer {
        status,
        body: r.text().await.unwrap_or_default(),
        headers,
    }
}

/// `POST /auth/jwt/login` with `{"token": token}`.
pub async fn login(http: &reqwest::Client, base: &str, token: &str) -> Answer {
    let body = json!({ "token": token }).to_string();
    post(
        http,
        base,
        "/auth/jwt/login",
        Some("application/json"),
        body,
    )
    .await
}

/// `POST /oauth2/token`, JWT bearer grant (RFC 7523) with `assertion`.
pub async fn token_grant(http: &reqwest::Client, base: &str, assertion: &str) -> Answer {
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
        form_encode(assertion)
    );
    post(
        http,
        base,
        "/oauth2/token",
        Some("application/x-www-form-urlencoded"),
        form,
    )
    .await
}

/// Percent-encodes everything but unreserved characters.
pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `GET {base}{path}` with `Authorization: Bearer {bearer}`.
pub async fn get_with_bearer(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    bearer: &str,
) -> Answer {
    let r = http
        .get(format!("{base}{path}"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Answer {
        status,
        body: r.text().await.unwrap_or_default(),
        headers,
    }
}

/// The Prometheus text of `/metrics`.
pub struct Metrics(pub String);

impl Metrics {
    pub async fn fetch(http: &reqwest::Client, base: &str) -> Metrics {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        Metrics(text)
    }

    /// The value of the series written exactly as `series` (name and labels), if it is an
    /// integer (every series but the request-duration histogram's `_sum` is).
    pub fn value(&self, series: &str) -> Option<u64> {
        self.0.lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
    }

    /// The sum of every series whose line starts with `prefix`.
    pub fn sum(&self, prefix: &str) -> u64 {
        self.0
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    pub fn logins_succeeded(&self) -> u64 {
        self.value(r#"jwtx_logins_total{outcome="success",check=""}"#)
            .expect("jwtx_logins_total success series")
    }

    pub fn logins_failed(&self) -> u64 {
        self.sum(r#"jwtx_logins_total{outcome="failure""#)
    }

    pub fn active_sessions(&self) -> u64 {
        self.value("jwtx_active_sessions")
            .expect("jwtx_active_sessions (memory and embedded stores)")
    }

    pub fn jwks_fetches(&self, issuer: &str, result: &str) -> u64 {
        self.value(&format!(
            r#"jwtx_jwks_fetches_total{{issuer="{issuer}",result="{result}"}}"#
        ))
        .unwrap_or(0)
    }
}

/// Resident memory of a process, in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// Fails if any token or bearer segment of 8+ characters in `secrets` appears in `log`.
///
/// Small inputs are searched as substrings. Large ones (a soak sends thousands of tokens) are
/// matched against every maximal run of base64url characters in the log: a token, or any of its
/// segments, logged in any field shows up as such a run, since `.`, quotes, spaces and `=`
/// delimit it.
pub fn assert_no_secrets(log: &str, secrets: &[String]) {
    let segments: HashSet<&str> = secrets
        .iter()
        .flat_map(|s| s.split('.'))
        .filter(|seg| seg.len() >= 8)
        .collect();
    assert!(
        !secrets.is_empty() && !segments.is_empty(),
        "nothing to look for"
    );
    let work = log.len().saturating_mul(segments.len());
    if work <= 4_000_000_000 {
        for seg in &segments {
            assert!(
                !log.contains(seg),
                "a token or bearer segment leaked into the server log: {}...",
                &seg[..8]
            );
        }
    } else {
        let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        for run in log.split(|c: char| !is_b64(c)).filter(|r| r.len() >= 8) {
            assert!(
                !segments.contains(run),
                "a token or bearer segment leaked into the server log: {}...",
                &run[..8]
            );
        }
    }
}

/// Every line of the log is one event: it starts with a timestamp (`2026-...T...Z`), and the log
/// holds no raw control characters (an injected CR / LF / ESC would show as a line that does
/// not start with a timestamp, or as the byte itself).
pub fn assert_log_lines_well_formed(log: &str) {
    assert!(!log.is_empty(), "the server logged something");
    for (i, line) in log.lines().enumerate() {
        let b = line.as_bytes();
        let stamped =
            b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T';
        assert!(
            stamped,
            "log line {} is not one event (injected line break?): {line:?}",
            i + 1
        );
        assert!(
            !line.chars().any(|c| c.is_control() && c != '\t'),
            "log line {} holds a raw control character: {line:?}",
            i + 1
        );
    }
}

/// Standard valid claims for `iss`, an hour from now, with `extra` merged in (a `null` value
/// removes the claim).
pub fn claims(iss: &str, oid: &str, extra: &Value) -> Value {
    let n = now();
    let mut c = json!({
        "iss": iss, "aud": AUD, "sub": oid, "oid": oid, "roles": ["readers"],
        "iat": n, "nbf": n, "exp": n + 3600, "jti": format!("{oid}-{n}-{}", rand_u64()),
    });
    if let Some(extra) = extra.as_object() {
        for (k, v) in extra {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
    }
    c
}

/// A random `u64` (from the OS, through aws-lc).
pub fn rand_u64() -> u64 {
    use aws_lc_rs::rand::SecureRandom as _;
    let mut b = [0u8; 8];
    aws_lc_rs::rand::SystemRandom::new().fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

/// How [`raw_post`] frames a body it never finishes sending.
pub enum Framing<'a> {
    /// `Content-Length: n`, and no body bytes at all.
    Announced(usize),
    /// `Transfer-Encoding: chunked`, these bytes in 8 KiB chunks, and no final chunk.
    Chunked(&'a [u8]),
}

/// A `POST` over a raw socket for bodies the server must refuse before reading them whole:
/// everything sent is something the server reads, so its early answer is not lost to a reset
/// (an HTTP client writing the whole body would see a broken pipe instead of the status).
pub async fn raw_post(base: &str, path: &str, content_type: &str, framing: &Framing<'_>) -> Answer {
    use std::fmt::Write as _;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\n"
    );
    match framing {
        Framing::Announced(n) => {
            let _ = write!(head, "Content-Length: {n}\r\n\r\n");
        }
        Framing::Chunked(_) => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
    }
    s.write_all(head.as_bytes()).await.unwrap();
    if let Framing::Chunked(body) = framing {
        for chunk in body.chunks(8 * 1024) {
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(chunk);
            frame.extend_from_slice(b"\r\n");
            if s.write_all(&frame).await.is_err() {
                break;
            }
        }
    }
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .unwrap_or_else(|_| {
            panic!("{path} ({content_type}): no answer before the rest of the body")
        })
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = HeaderMap::new();
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            if let (Ok(k), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()),
                reqwest::header::HeaderValue::from_str(v.trim()),
            ) {
                headers.append(k, v);
            }
        }
    }
    // A chunked answer body: keep the JSON between the chunk-size lines.
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        body.lines()
            .filter(|l| l.starts_with('{'))
            .collect::<String>()
    } else {
        body.to_owned()
    };
    Answer {
        status,
        body,
        headers,
    }
}

#[test]
fn the_leak_check_finds_a_logged_segment_in_small_and_large_logs() {
    let secret = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz".to_owned();
    let clean = "2026-01-01T00:00:00.000000Z  INFO jwt_exchange::audit: fine\n".repeat(10);
    assert_no_secrets(&clean, std::slice::from_ref(&secret));
    assert_log_lines_well_formed(&clean);
    let payload = secret.split('.').nth(1).unwrap();
    let leaky = format!("{clean}2026-01-01T00:00:00.000000Z  INFO x: token=\"{payload}\"\n");
    let caught =
        std::panic::catch_unwind(|| assert_no_secrets(&leaky, std::slice::from_ref(&secret)));
    assert!(caught.is_err(), "small log: leak found");
    // Large: thousands of secrets against a megabyte of log takes the run-matching path.
    let many: Vec<String> = (0..5000)
        .map(|i| format!("aaaaaaaa.segment{i:08}.bbbbbbbb"))
        .collect();
    let big = clean.repeat(2_000);
    assert!(big.len() * 5000 > 4_000_000_000);
    assert_no_secrets(&big, &many);
    let big_leaky = format!("{big}2026-01-01T00:00:00.000000Z  INFO x: sub=segment00004321 ok\n");
    let caught = std::panic::catch_unwind(|| assert_no_secrets(&big_leaky, &many));
    assert!(caught.is_err(), "large log: leak found");
    let injected = format!("{clean}INJECTED fake line\n");
    let caught = std::panic::catch_unwind(|| assert_log_lines_well_formed(&injected));
    assert!(caught.is_err(), "an injected line is found");
}
