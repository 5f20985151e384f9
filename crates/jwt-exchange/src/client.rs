//! The workload side: exchange an external JWT for a bearer over HTTP, and keep it fresh.
//!
//! [`ExchangeClient`] posts to `/auth/jwt/login`; [`TokenFileRefresher`] implements the
//! "token file" pattern of Kubernetes projected service-account tokens and token operators:
//! read the external JWT from a file, exchange it, write the bearer atomically (mode 0600), and
//! re-exchange before expiry and whenever the token file changes, backing off on errors.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::session::Bearer;

/// Largest token file read, in bytes.
pub const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// Why an exchange by HTTP failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached or the request timed out.
    #[error("request failed")]
    Http(#[source] reqwest::Error),
    /// The server refused the token (401), or answered another error status.
    #[error("the server answered {status}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// `true` when retrying later may help (429, 5xx).
        retryable: bool,
    },
    /// The server's answer is not `{"token": …, "token_expiration": …}`.
    #[error("the server's answer is not a login response")]
    InvalidResponse,
    /// Reading the token file or writing the bearer file failed.
    #[error("{what} {path}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The token file is empty or larger than [`MAX_TOKEN_FILE_BYTES`].
    #[error("token file {0} is empty or too large")]
    BadTokenFile(PathBuf),
}

impl ClientError {
    /// `true` when a retry may succeed (network errors, 429, 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Http(_) | ClientError::Io { .. } => true,
            ClientError::Status { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

/// A bearer from the server, with its expiry.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IssuedBearer {
    /// The bearer (redacted in `Debug`).
    pub token: Bearer,
    /// Expiry, Unix seconds (the server's clock).
    pub expires_at: i64,
    /// The server's time when it answered (its `Date` header), Unix seconds; `None` without a
    /// valid header. [`lifetime`](Self::lifetime) prefers it to this machine's clock.
    pub server_time: Option<i64>,
}

impl IssuedBearer {
    /// How long the bearer lives from the answer on, by the server's clock when its `Date`
    /// header said (so a client clock minutes off does not renew too late or too often), else
    /// by this machine's. Zero for a bearer that has already expired.
    ///
    /// ```
    /// use std::time::Duration;
    /// # fn f(b: jwt_exchange::client::IssuedBearer) {
    /// let left: Duration = b.lifetime();
    /// # }
    /// ```
    pub fn lifetime(&self) -> Duration {
        let now = self.server_time.unwrap_or_else(unix_now);
        Duration::from_secs(u64::try_from(self.expires_at.saturating_sub(now)).unwrap_or(0))
    }
}

/// Exchanges external JWTs for bearers at a jwt-exchange server.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use jwt_exchange::client::ExchangeClient;
/// let client = ExchangeClient::new("https://lakefs.example.com/api/v1")?;
/// let issued = client.exchange("eyJ...external-jwt").await?;
/// println!("bearer valid until {}", issued.expires_at);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ExchangeClient {
    http: reqwest::Client,
    login_url: String,
}

impl fmt::Debug for ExchangeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExchangeClient")
            .field("login_url", &self.login_url)
            .finish_non_exhaustive()
    }
}

impl ExchangeClient {
    /// A client for the server at `base_url` (where the router is mounted, e.g.
    /// `https://host/api/v1`); `/auth/jwt/login` is appended unless the URL already ends with it.
    pub fn new(base_url: &str) -> Result<Self, crate::ConfigError> {
        let url = reqwest::Url::parse(base_url)
            .map_err(|e| crate::ConfigError::new("url", format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(crate::ConfigError::new("url", "must be http or https"));
        }
        let base = base_url.trim_end_matches('/');
        let login_url = if base.ends_with("/auth/jwt/login") {
            base.to_owned()
        } else {
            format!("{base}/auth/jwt/login")
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("jwt-exchange-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Ok(ExchangeClient { http, login_url })
    }

    /// The login endpoint this client posts to.
    pub fn login_url(&self) -> &str {
        &self.login_url
    }

    /// Posts `{"token": external_token}` and returns the bearer.
    pub async fn exchange(&self, external_token: &str) -> Result<IssuedBearer, ClientError> {
        let resp = self
            .http
            .post(&self.login_url)
            .json(&serde_json::json!({ "token": external_token }))
            .send()
            .await
            .map_err(ClientError::Http)?;
        let status = resp.status();
        let server_time = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok());
        if !status.is_success() {
            return Err(ClientError::Status {
                status: status.as_u16(),
                retryable: status.as_u16() == 429 || status.is_server_error(),
            });
        }
        let body = resp.bytes().await.map_err(ClientError::Http)?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| ClientError::InvalidResponse)?;
        match (
            v.get("token").and_then(|t| t.as_str()),
            v.get("token_expiration")
                .and_then(serde_json::Value::as_i64),
        ) {
            (Some(t), Some(exp)) if !t.is_empty() => Ok(IssuedBearer {
                token: Bearer::from(t.to_owned()),
                expires_at: exp,
                server_time,
            }),
            _ => Err(ClientError::InvalidResponse),
        }
    }

    /// Reads the external JWT from `path` (surrounding white space is ignored) and exchanges it.
    pub async fn exchange_file(&self, path: &Path) -> Result<IssuedBearer, ClientError> {
        let token = read_token_file(path)?;
        self.exchange(&token).await
    }
}

/// Reads a token file: at most [`MAX_TOKEN_FILE_BYTES`], trimmed, non-empty.
pub fn read_token_file(path: &Path) -> Result<String, ClientError> {
    let io = |source| ClientError::Io {
        what: "reading",
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_TOKEN_FILE_BYTES {
        return Err(ClientError::BadTokenFile(path.to_owned()));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let t = text.trim();
    if t.is_empty() {
        return Err(ClientError::BadTokenFile(path.to_owned()));
    }
    Ok(t.to_owned())
}

/// Writes `contents` to `path` atomically: a new temporary file with a random name in the same
/// directory (created exclusively, mode 0600 on Unix), flushed to disk, then renamed over
/// `path`. Readers see the old or the new bearer, never
/// a partial one.
pub fn write_secret_file(path: &Path, contents: &str) -> Result<(), ClientError> {
    use std::io::Write;
    let io = |source| ClientError::Io {
        what: "writing",
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "bearer".into(), |n| n.to_string_lossy().into_owned());
    // A fresh name that must not exist yet (`create_new`: no following a planted symlink, no
    // reusing a file someone else created with wider permissions), in case the directory is
    // writable by others.
    let random = crate::session::SessionId::generate();
    let tmp = dir.join(format!(".{name}.{}.tmp", &random.as_str()[..16]));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Keeps a bearer file fresh from a token file (`jwt-exchange login --watch`).
///
/// Each round: exchange the current token file, write the bearer, then wait until
/// `refresh_before` ahead of its expiry — but at least half its life and at least a second, by
/// the server's clock (its `Date` header) so that a skewed local clock does not matter — or
/// until the token file's contents change, and go again. An exchange that brings back no later
/// expiry (the session is capped by the token's own `exp`) waits for the token file to change,
/// or at the latest for that bearer's end.
/// Errors back off exponentially (1 s doubling to 60 s, never past the bearer's end minus a
/// second, and cut short when the token file changes) and are reported to `on_event`.
///
/// With replay protection on, exchanging the same token file again is refused: give the server
/// a `session_max_ttl` close to the token's lifetime, so that the bearer lasts until the token
/// is rotated.
#[derive(Debug)]
pub struct TokenFileRefresher {
    client: ExchangeClient,
    token_file: PathBuf,
    refresh_before: Duration,
    poll: Duration,
}

/// What [`TokenFileRefresher::run`] reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum RefreshEvent<'a> {
    /// A new bearer (already written by the sink).
    Refreshed {
        /// Expiry of the new bearer, Unix seconds.
        expires_at: i64,
    },
    /// An exchange failed; the next try is after `retry_in`.
    Failed {
        /// The error.
        error: &'a ClientError,
        /// The back-off before the next try.
        retry_in: Duration,
    },
}

impl TokenFileRefresher {
    /// A refresher exchanging `token_file` with `client`, renewing `refresh_before` ahead of
    /// expiry. The token file is checked for changes every 2 s.
    pub fn new(
        client: ExchangeClient,
        token_file: impl Into<PathBuf>,
        refresh_before: Duration,
    ) -> Self {
        TokenFileRefresher {
            client,
            token_file: token_file.into(),
            refresh_before,
            poll: Duration::from_secs(2),
        }
    }

    /// Changes how often the token file is checked for changes.
    #[must_use]
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(10));
        self
    }

    /// Runs until the future is dropped: `sink` receives every new bearer (write it somewhere),
    /// `on_event` every outcome.
    pub async fn run<S, E>(&self, mut sink: S, mut on_event: E)
    where
        S: FnMut(&IssuedBearer) -> Result<(), ClientError>,
        E: FnMut(RefreshEvent<'_>),
    {
        let mut backoff = Duration::from_secs(1);
        // The current bearer: its expiry (server clock) and when it ends on this machine's
        // monotonic clock.
        let mut current: Option<(i64, tokio::time::Instant)> = None;
        loop {
            let seen = std::fs::read(&self.token_file).ok();
            let result = match self.client.exchange_file(&self.token_file).await {
                Ok(b) => sink(&b).map(|()| b),
                Err(e) => Err(e),
            };
            let wait = match result {
                Ok(b) => {
                    backoff = Duration::from_secs(1);
                    let lifetime = b.lifetime();
                    // No later expiry than the last bearer (most often: the session is capped
                    // by the token's own `exp`): exchanging again before the token file changes
                    // would bring the same expiry back, so wait for the file — or, at the
                    // latest, for this bearer's end, then try again (a failure is reported).
                    let progress = current.is_none_or(|(exp, _)| b.expires_at > exp);
                    current = Some((b.expires_at, tokio::time::Instant::now() + lifetime));
                    on_event(RefreshEvent::Refreshed {
                        expires_at: b.expires_at,
                    });
                    if progress {
                        renew_after(lifetime, self.refresh_before)
                    } else {
                        lifetime.max(Duration::from_secs(1))
                    }
                }
                Err(e) => {
                    let mut retry_in = backoff;
                    if let Some((_, ends)) = current {
                        let left = ends.saturating_duration_since(tokio::time::Instant::now());
                        let before_end = left
                            .checked_sub(Duration::from_secs(1))
                            .filter(|d| !d.is_zero());
                        if let Some(before_end) = before_end {
                            retry_in = retry_in.min(before_end);
                        }
                    }
                    on_event(RefreshEvent::Failed {
                        error: &e,
                        retry_in,
                    });
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    retry_in
                }
            };
            self.wait(seen.as_deref(), wait).await;
        }
    }

    /// Sleeps for `wait`, waking early when the token file's contents are no longer `seen`: a
    /// rotated token is exchanged at once.
    async fn wait(&self, seen: Option<&[u8]>, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return;
            }
            let step = (deadline - now).min(self.poll);
            tokio::time::sleep(step).await;
            if std::fs::read(&self.token_file).ok().as_deref() != seen {
                return;
            }
        }
    }
}

/// How long to wait before renewing a bearer that lives `lifetime`: until `refresh_before`
/// ahead of its end, but never before half its life and never sooner than a second, so a
/// `refresh_before` as long as the session (a short `session_max_ttl`, a token about to
/// expire) cannot make the refresher exchange again and again without pause.
fn renew_after(lifetime: Duration, refresh_before: Duration) -> Duration {
    let early = refresh_before.min(lifetime / 2);
    lifetime.saturating_sub(early).max(Duration::from_secs(1))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_url_is_derived_from_the_base() {
        let c = ExchangeClient::new("https://h.example/api/v1/").unwrap();
        assert_eq!(c.login_url(), "https://h.example/api/v1/auth/jwt/login");
        let c = ExchangeClient::new("http://127.0.0.1:8000/auth/jwt/login").unwrap();
        assert_eq!(c.login_url(), "http://127.0.0.1:8000/auth/jwt/login");
        assert!(ExchangeClient::new("ftp://x").is_err());
        assert!(ExchangeClient::new("not a url").is_err());
    }

    #[test]
    fn renewal_waits_at_least_half_the_life_and_a_second() {
        let s = Duration::from_secs;
        // The usual case: `refresh_before` ahead of the end.
        assert_eq!(renew_after(s(3600), s(300)), s(3300));
        // `refresh_before` as long as the session or longer: half-life, not at once.
        assert_eq!(renew_after(s(300), s(300)), s(150));
        assert_eq!(renew_after(s(3), s(300)), Duration::from_millis(1500));
        // Nothing left: a second, not a spin.
        assert_eq!(renew_after(s(0), s(300)), s(1));
    }

    #[test]
    fn lifetime_is_measured_on_the_servers_clock_when_it_says() {
        let bearer = |server_time| IssuedBearer {
            token: Bearer::from("b".to_owned()),
            expires_at: 10_000,
            server_time,
        };
        // The client's clock may be anywhere; the server said it was 9 400.
        assert_eq!(bearer(Some(9_400)).lifetime(), Duration::from_secs(600));
        assert_eq!(bearer(Some(10_400)).lifetime(), Duration::ZERO);
        // Without a Date header, this machine's clock (long past 10 000).
        assert_eq!(bearer(None).lifetime(), Duration::ZERO);
    }

    #[test]
    fn secret_files_are_written_atomically_with_0600() {
        let dir = std::env::temp_dir().join(format!("jwtx-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bearer");
        write_secret_file(&p, "one").unwrap();
        write_secret_file(&p, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn token_files_are_trimmed_and_bounded() {
        let dir = std::env::temp_dir().join(format!("jwtx-tokfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("token");
        std::fs::write(&p, "  abc.def.ghi\n").unwrap();
        assert_eq!(read_token_file(&p).unwrap(), "abc.def.ghi");
        std::fs::write(&p, "\n").unwrap();
        assert!(matches!(
            read_token_file(&p),
            Err(ClientError::BadTokenFile(_))
        ));
        std::fs::write(&p, vec![b'a'; 70 * 1024]).unwrap();
        assert!(matches!(
            read_token_file(&p),
            Err(ClientError::BadTokenFile(_))
        ));
        assert!(matches!(
            read_token_file(&dir.join("missing")),
            Err(ClientError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
