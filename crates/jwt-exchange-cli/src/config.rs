//! The server's configuration file (YAML or TOML by extension), lakeFS layout:
//!
//! ```yaml
//! listen_address: 127.0.0.1:8000
//! auth:
//!   providers:
//!     jwt: { issuer: ..., jwks_url: ..., ... }   # one map, or a list of maps
//!   groups: { readers: [ReadAll] }
//!   policies: { ReadAll: { statement: [ ... ] } }
//!   replay_protection: false
//! session_store: { type: embedded, path: ./jwt-exchange-sessions.redb }
//! # or: { type: redis, url: redis://…, namespace: jwtx, near_cache: { max_entries: 10000, max_age: 60s } }
//! # TLS: { type: redis, url: rediss://…, tls: { ca_file: ca.pem, cert_file: c.pem, key_file: k.pem } }
//! bearer: { issuer: jwt-exchange, secret_file: ./jwt-exchange-bearer.secret }
//! ```
//!
//! Every error names the key path (`auth.providers.jwt[0].issuer`) and is reported with exit
//! code 2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_exchange::policy::{Policy, PolicyConfig};
use jwt_exchange::session::{BearerKeys, BearerSecret};
use jwt_exchange::{ConfigError, Providers};
use serde::Deserialize;

/// Default listen address.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8000";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the file name must end in .yaml, .yml or .toml")]
    Format { path: PathBuf },
    #[error("{path}: invalid configuration at `{key}`: {message}")]
    Parse {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{path}: {source}")]
    Invalid { path: PathBuf, source: ConfigError },
    #[error("{path}: cannot use bearer secret file {file}: {message}")]
    Secret {
        path: PathBuf,
        file: PathBuf,
        message: String,
    },
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    #[serde(default)]
    pub(crate) listen_address: Option<String>,
    #[serde(default)]
    pub(crate) auth: AuthSection,
    #[serde(default)]
    pub(crate) session_store: StoreSection,
    #[serde(default)]
    pub(crate) bearer: BearerSection,
    #[serde(default)]
    pub(crate) forward_auth: Option<jwt_exchange::axum::ForwardAuthConfig>,
    #[serde(default)]
    pub(crate) server: ServerSection,
}

/// `server`: connection hygiene against slow or stuck clients.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSection {
    /// How long a client may take to send its request headers. Defaults to 10 s.
    #[serde(
        default = "default_header_read_timeout",
        with = "jwt_exchange::duration"
    )]
    pub(crate) header_read_timeout: std::time::Duration,
    /// How long one request may take, body included (408 after it). Defaults to 30 s.
    #[serde(default = "default_request_timeout", with = "jwt_exchange::duration")]
    pub(crate) request_timeout: std::time::Duration,
    /// Most connections served at once; further ones wait in the accept queue. Defaults to 4096.
    #[serde(default = "default_max_connections")]
    pub(crate) max_connections: usize,
    /// HTTP threads, each with its own single-threaded runtime; each new connection goes to
    /// the thread serving the fewest and stays there. Defaults to the number of CPUs the
    /// process may use.
    #[serde(default = "default_threads")]
    pub(crate) threads: usize,
    /// Where `/healthz`, `/readyz` and `/metrics` are served instead of the API's listener
    /// (an IP address and port). Absent: on the API's listener.
    #[serde(default)]
    pub(crate) ops_listen_address: Option<std::net::SocketAddr>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            header_read_timeout: default_header_read_timeout(),
            request_timeout: default_request_timeout(),
            max_connections: default_max_connections(),
            threads: default_threads(),
            ops_listen_address: None,
        }
    }
}

fn default_header_read_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(10)
}
fn default_request_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(30)
}
fn default_max_connections() -> usize {
    4096
}
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
/// The most `server.threads` accepted: far above any core count, low enough that a typo
/// (`100000`) is an error rather than a hundred thousand threads.
const MAX_THREADS: usize = 1024;

/// `auth`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthSection {
    #[serde(default)]
    pub(crate) providers: ProvidersSection,
    #[serde(default)]
    pub(crate) groups: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub(crate) policies: BTreeMap<String, Policy>,
    #[serde(default)]
    pub(crate) replay_protection: bool,
}

/// `auth.providers`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProvidersSection {
    #[serde(default)]
    pub(crate) jwt: Providers,
}

/// `session_store`.
/// `Debug` leaves the URL out (it may hold a password).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreSection {
    #[serde(rename = "type", default)]
    pub(crate) kind: StoreKind,
    /// File of the embedded store.
    #[serde(default)]
    pub(crate) path: Option<PathBuf>,
    /// URL of a Redis or Postgres store.
    #[serde(default)]
    pub(crate) url: Option<String>,
    /// Key prefix (Redis) or schema (Postgres).
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    /// In-process near-cache of sessions with pushed invalidations (Redis, Postgres); absent:
    /// off.
    #[serde(default)]
    pub(crate) near_cache: Option<NearCacheSection>,
    /// TLS settings of a Redis (`rediss://`) or PostgreSQL store; absent: the system's roots
    /// (when the URL asks for TLS), no client certificate.
    #[serde(default)]
    pub(crate) tls: Option<TlsSection>,
    /// Redis only: connect even to a server that may evict keys.
    #[serde(default)]
    pub(crate) insecure_allow_eviction: bool,
    /// PostgreSQL only: whether `serve` applies the embedded migrations at start-up; absent:
    /// yes.
    #[serde(default)]
    pub(crate) migrate: Option<bool>,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            kind: StoreKind::Embedded,
            path: None,
            url: None,
            namespace: None,
            near_cache: None,
            tls: None,
            insecure_allow_eviction: false,
            migrate: None,
        }
    }
}

impl std::fmt::Debug for StoreSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSection")
            .field("kind", &self.kind)
            .field("path", &self.path)
            .field("url", &self.url.as_ref().map(|_| "<set>"))
            .field("namespace", &self.namespace)
            .field("near_cache", &self.near_cache)
            .field("tls", &self.tls)
            .field("insecure_allow_eviction", &self.insecure_allow_eviction)
            .field("migrate", &self.migrate)
            .finish()
    }
}

/// `session_store.tls`: PEM files, relative to the configuration file's directory.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
// The field names are the configuration keys (`ca_file`, `cert_file`, `key_file`).
#[allow(clippy::struct_field_names)]
pub(crate) struct TlsSection {
    /// CA certificate(s) the server's certificate must chain to, instead of the system's roots.
    #[serde(default)]
    pub(crate) ca_file: Option<PathBuf>,
    /// Client certificate chain, for servers that require one (with `key_file`).
    #[serde(default)]
    pub(crate) cert_file: Option<PathBuf>,
    /// The client certificate's private key (with `cert_file`).
    #[serde(default)]
    pub(crate) key_file: Option<PathBuf>,
}

/// `session_store.near_cache`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NearCacheSection {
    /// Most sessions cached per instance. Defaults to 10 000.
    #[serde(default = "default_near_cache_max_entries")]
    pub(crate) max_entries: usize,
    /// Longest time a cached session is trusted without reading the store. Defaults to 60 s.
    #[serde(
        default = "default_near_cache_max_age",
        with = "jwt_exchange::duration"
    )]
    pub(crate) max_age: Duration,
}

fn default_near_cache_max_entries() -> usize {
    jwt_exchange::store::NearCacheConfig::default().max_entries
}

fn default_near_cache_max_age() -> Duration {
    jwt_exchange::store::NearCacheConfig::default().max_age
}

impl NearCacheSection {
    /// The core configuration.
    pub(crate) fn config(&self) -> jwt_exchange::store::NearCacheConfig {
        jwt_exchange::store::NearCacheConfig::default()
            .with_max_entries(self.max_entries)
            .with_max_age(self.max_age)
    }
}

impl TlsSection {
    /// Reads the PEM files (relative paths from `dir`, the configuration file's directory).
    fn read(&self, dir: &Path) -> Result<jwt_exchange::store::StoreTls, ConfigError> {
        let pem = |key: &str, file: &Path| -> Result<Vec<u8>, ConfigError> {
            let full = if file.is_relative() {
                dir.join(file)
            } else {
                file.to_owned()
            };
            let bytes = std::fs::read(&full).map_err(|e| {
                ConfigError::new(key, format!("cannot read {}: {e}", full.display()))
            })?;
            if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
                Ok(bytes)
            } else {
                Err(ConfigError::new(
                    key,
                    format!("{} is not a PEM file", full.display()),
                ))
            }
        };
        let mut tls = jwt_exchange::store::StoreTls::new();
        if let Some(ca) = &self.ca_file {
            tls = tls.with_ca_pem(pem("tls.ca_file", ca)?);
        }
        if let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) {
            tls = tls.with_client_identity(pem("tls.cert_file", cert)?, pem("tls.key_file", key)?);
        }
        Ok(tls)
    }
}

/// `session_store.type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StoreKind {
    /// In process: sessions die with the process.
    Memory,
    /// A single file on disk (the default for `serve`).
    #[default]
    Embedded,
    /// Redis (shared by several instances).
    Redis,
    /// PostgreSQL (shared by several instances).
    Postgres,
}

/// `bearer`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BearerSection {
    /// The `iss` of minted bearers.
    #[serde(default = "default_bearer_issuer")]
    pub(crate) issuer: String,
    /// File with one `<kid> <base64url secret>` per line; the first signs. Generated (0600) on
    /// first start when missing.
    #[serde(default)]
    pub(crate) secret_file: Option<PathBuf>,
    /// Inline secrets (tests): the first signs.
    #[serde(default)]
    pub(crate) secrets: Vec<InlineSecret>,
}

impl Default for BearerSection {
    fn default() -> Self {
        BearerSection {
            issuer: default_bearer_issuer(),
            secret_file: None,
            secrets: Vec::new(),
        }
    }
}

fn default_bearer_issuer() -> String {
    "jwt-exchange".to_owned()
}

/// One inline bearer secret. `Debug` shows the `kid` only.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InlineSecret {
    pub(crate) kid: String,
    /// base64url (no padding) of at least 32 bytes.
    pub(crate) secret: String,
}

impl std::fmt::Debug for InlineSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineSecret")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A loaded, validated configuration.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) path: PathBuf,
    pub(crate) file: FileConfig,
    pub(crate) policies: PolicyConfig,
    /// `session_store.tls` with its PEM files read (so `--check` finds a missing one).
    pub(crate) store_tls: Option<jwt_exchange::store::StoreTls>,
}

/// Reads, parses and validates `path`.
pub(crate) fn load(path: &Path) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let parse_err = |key: String, message: String| LoadError::Parse {
        path: path.to_owned(),
        key,
        message,
    };
    let file: FileConfig = match ext.as_deref() {
        Some("yaml" | "yml") => {
            let de = serde_norway::Deserializer::from_str(&text);
            serde_path_to_error::deserialize(de)
                .map_err(|e| parse_err(key_of(e.path()), e.inner().to_string()))?
        }
        Some("toml") => {
            let de = toml::Deserializer::parse(&text)
                .map_err(|e| parse_err(String::from("(file)"), e.to_string()))?;
            serde_path_to_error::deserialize(de)
                .map_err(|e| parse_err(key_of(e.path()), e.inner().to_string()))?
        }
        _ => {
            return Err(LoadError::Format {
                path: path.to_owned(),
            })
        }
    };
    let invalid = |source: ConfigError| LoadError::Invalid {
        path: path.to_owned(),
        source,
    };
    file.auth
        .providers
        .jwt
        .validate()
        .map_err(|e| invalid(e.under("auth.providers.jwt")))?;
    let mut policies = PolicyConfig::default();
    policies.groups.clone_from(&file.auth.groups);
    policies.policies.clone_from(&file.auth.policies);
    policies.validate().map_err(|e| invalid(e.under("auth")))?;
    if let Some(addr) = &file.listen_address {
        addr.parse::<std::net::SocketAddr>().map_err(|e| {
            invalid(ConfigError::new(
                "listen_address",
                format!("not an address: {e}"),
            ))
        })?;
    }
    for (key, d) in [
        (
            "server.header_read_timeout",
            file.server.header_read_timeout,
        ),
        ("server.request_timeout", file.server.request_timeout),
    ] {
        if d.is_zero() {
            return Err(invalid(ConfigError::new(key, "must be greater than zero")));
        }
    }
    if file.server.max_connections == 0 {
        return Err(invalid(ConfigError::new(
            "server.max_connections",
            "must be at least 1",
        )));
    }
    if !(1..=MAX_THREADS).contains(&file.server.threads) {
        return Err(invalid(ConfigError::new(
            "server.threads",
            format!("must be between 1 and {MAX_THREADS}"),
        )));
    }
    validate_store(&file.session_store).map_err(|e| invalid(e.under("session_store")))?;
    let store_tls = file
        .session_store
        .tls
        .as_ref()
        .map(|t| t.read(path.parent().unwrap_or(Path::new("."))))
        .transpose()
        .map_err(|e| invalid(e.under("session_store")))?;
    for (i, s) in file.bearer.secrets.iter().enumerate() {
        decode_secret(&s.secret)
            .map_err(|m| invalid(ConfigError::new(format!("bearer.secrets[{i}].secret"), m)))?;
    }
    if file.bearer.issuer.is_empty() {
        return Err(invalid(ConfigError::new(
            "bearer.issuer",
            "must not be empty",
        )));
    }
    Ok(Loaded {
        path: path.to_owned(),
        file,
        policies,
        store_tls,
    })
}

fn validate_store(s: &StoreSection) -> Result<(), ConfigError> {
    match s.kind {
        StoreKind::Redis | StoreKind::Postgres if s.url.is_none() => Err(ConfigError::new(
            "url",
            "required for redis and postgres stores",
        )),
        StoreKind::Memory | StoreKind::Embedded if s.url.is_some() => Err(ConfigError::new(
            "url",
            "only redis and postgres stores take a url",
        )),
        StoreKind::Memory | StoreKind::Redis | StoreKind::Postgres if s.path.is_some() => Err(
            ConfigError::new("path", "only the embedded store takes a path"),
        ),
        StoreKind::Memory | StoreKind::Embedded if s.namespace.is_some() => Err(ConfigError::new(
            "namespace",
            "only redis (key prefix) and postgres (schema) stores take a namespace",
        )),
        StoreKind::Memory | StoreKind::Embedded if s.near_cache.is_some() => Err(ConfigError::new(
            "near_cache",
            "only redis and postgres stores take a near_cache (the other stores are in process already)",
        )),
        StoreKind::Memory | StoreKind::Embedded if s.tls.is_some() => Err(ConfigError::new(
            "tls",
            "only redis and postgres stores take tls settings",
        )),
        StoreKind::Memory | StoreKind::Embedded | StoreKind::Postgres
            if s.insecure_allow_eviction =>
        {
            Err(ConfigError::new(
                "insecure_allow_eviction",
                "only the redis store evicts keys",
            ))
        }
        StoreKind::Memory | StoreKind::Embedded | StoreKind::Redis if s.migrate.is_some() => {
            Err(ConfigError::new(
                "migrate",
                "only the postgres store has migrations",
            ))
        }
        _ => {
            validate_tls(s)?;
            validate_namespace(s)?;
            match &s.near_cache {
                Some(nc) if nc.max_entries == 0 => Err(ConfigError::new(
                    "near_cache.max_entries",
                    "must be at least 1 (remove near_cache to turn it off)",
                )),
                Some(nc) if nc.max_age.is_zero() => Err(ConfigError::new(
                    "near_cache.max_age",
                    "must be positive (remove near_cache to turn it off)",
                )),
                _ => Ok(()),
            }
        }
    }
}

/// The namespace as the store crate will check it at start-up: a Redis key prefix or a
/// PostgreSQL schema name.
fn validate_namespace(s: &StoreSection) -> Result<(), ConfigError> {
    let Some(ns) = &s.namespace else {
        return Ok(());
    };
    let checked = match s.kind {
        StoreKind::Redis => jwt_exchange_redis::RedisStoreConfig::default()
            .with_key_prefix(ns.clone())
            .validate()
            .map_err(|e| e.to_string()),
        StoreKind::Postgres => jwt_exchange_postgres::PostgresStoreConfig::default()
            .with_schema(ns.clone())
            .validate()
            .map_err(|e| e.to_string()),
        StoreKind::Memory | StoreKind::Embedded => Ok(()),
    };
    checked.map_err(|m| ConfigError::new("namespace", m))
}

/// The URL as the store crate will read it at start-up (parsed; never `#insecure`; with
/// `session_store.tls`, a `rediss://` URL or no `sslmode=disable`), and a client certificate
/// with its key.
fn validate_tls(s: &StoreSection) -> Result<(), ConfigError> {
    let url = s.url.as_deref().unwrap_or_default();
    let tls = s.tls.is_some();
    let checked = match s.kind {
        StoreKind::Redis => jwt_exchange_redis::check_url(url, tls).map_err(|e| {
            let key = match e {
                jwt_exchange_redis::ConnectError::TlsWithoutRediss => "tls",
                _ => "url",
            };
            (key, crate::cmd::serve::chain(&e))
        }),
        StoreKind::Postgres => {
            jwt_exchange_postgres::check_connection_string(url, tls).map_err(|e| {
                let key = match e {
                    jwt_exchange_postgres::ConnectError::TlsWithSslmodeDisable if tls => "tls",
                    _ => "url",
                };
                (key, crate::cmd::serve::chain(&e))
            })
        }
        StoreKind::Memory | StoreKind::Embedded => Ok(false),
    };
    checked.map_err(|(key, why)| ConfigError::new(key, why))?;
    match s.tls.as_ref().map(|t| (&t.cert_file, &t.key_file)) {
        Some((Some(_), None)) => Err(ConfigError::new(
            "tls.key_file",
            "required with tls.cert_file",
        )),
        Some((None, Some(_))) => Err(ConfigError::new(
            "tls.cert_file",
            "required with tls.key_file",
        )),
        _ => Ok(()),
    }
}

fn key_of(path: &serde_path_to_error::Path) -> String {
    let s = path.to_string();
    if s == "." {
        "(top level)".to_owned()
    } else {
        s
    }
}

fn decode_secret(s: &str) -> Result<BearerSecret, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(s.trim())
        .map_err(|_| "not unpadded base64url".to_owned())?;
    let n = bytes.len();
    BearerSecret::from_bytes(bytes)
        .map_err(|_| format!("decodes to {n} bytes; at least 32 are required"))
}

impl Loaded {
    /// The bearer keys: inline secrets, else the secret file (generated with mode 0600 when
    /// missing).
    pub(crate) fn bearer_keys(&self) -> Result<BearerKeys, LoadError> {
        self.read_bearer_keys(true)
            .map(|keys| keys.expect("a missing secret file was generated"))
    }

    /// Checks the bearer secrets as [`Loaded::bearer_keys`] reads them, without generating a
    /// missing secret file (`serve --check` writes nothing; `serve` would generate it).
    pub(crate) fn check_bearer_keys(&self) -> Result<(), LoadError> {
        self.read_bearer_keys(false).map(drop)
    }

    /// The bearer keys; `None` when the secret file is missing and `generate` is false.
    fn read_bearer_keys(&self, generate: bool) -> Result<Option<BearerKeys>, LoadError> {
        let b = &self.file.bearer;
        let mut pairs: Vec<(String, BearerSecret)> = Vec::new();
        if b.secrets.is_empty() {
            let file = b
                .secret_file
                .clone()
                .unwrap_or_else(|| PathBuf::from("jwt-exchange-bearer.secret"));
            let file = if file.is_relative() {
                self.path.parent().unwrap_or(Path::new(".")).join(file)
            } else {
                file
            };
            let err = |message: String| LoadError::Secret {
                path: self.path.clone(),
                file: file.clone(),
                message,
            };
            if !file.exists() {
                if !generate {
                    return Ok(None);
                }
                generate_secret_file(&file).map_err(|e| err(e.to_string()))?;
                tracing::warn!(file = %file.display(), "bearer secret file was missing: generated a new signing secret (mode 0600)");
            }
            let text = std::fs::read_to_string(&file).map_err(|e| err(e.to_string()))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (kid, secret) = line
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| err(format!("line {}: expected `<kid> <secret>`", n + 1)))?;
                let secret =
                    decode_secret(secret).map_err(|m| err(format!("line {}: {m}", n + 1)))?;
                pairs.push((kid.to_owned(), secret));
            }
            if pairs.is_empty() {
                return Err(err("no secret in the file".into()));
            }
        } else {
            for s in &b.secrets {
                let secret = decode_secret(&s.secret).map_err(|m| LoadError::Invalid {
                    path: self.path.clone(),
                    source: ConfigError::new("bearer.secrets", m),
                })?;
                pairs.push((s.kid.clone(), secret));
            }
        }
        let mut it = pairs.into_iter();
        let (kid, secret) = it.next().expect("at least one secret");
        let mut keys = BearerKeys::new(b.issuer.clone(), kid, secret);
        for (kid, secret) in it {
            keys = keys.with_verification_key(kid, secret);
        }
        Ok(Some(keys))
    }

    /// The embedded store's file: `session_store.path`, relative to the configuration file's
    /// directory; default `jwt-exchange-sessions.redb` there.
    pub(crate) fn embedded_store_path(&self) -> PathBuf {
        let p = self
            .file
            .session_store
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from("jwt-exchange-sessions.redb"));
        if p.is_relative() {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        } else {
            p
        }
    }

    /// The listen address (`--listen` wins over the file).
    pub(crate) fn listen_address(&self, flag: Option<&str>) -> String {
        flag.map(str::to_owned)
            .or_else(|| self.file.listen_address.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned())
    }
}

/// Writes a new secret file: one line `<kid> <base64url of 32 random bytes>`, mode 0600.
pub(crate) fn generate_secret_file(path: &Path) -> Result<(), jwt_exchange::client::ClientError> {
    use jwt_exchange::Clock as _;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random number generator failed");
    let kid = format!("k{}", jwt_exchange::SystemClock.unix_seconds());
    let line = format!(
        "# jwt-exchange bearer secrets: `<kid> <base64url secret>` per line; the first signs.\n{kid} {}\n",
        URL_SAFE_NO_PAD.encode(bytes)
    );
    jwt_exchange::client::write_secret_file(path, &line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(yaml: &str) -> Result<(), String> {
        let s: StoreSection = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
        validate_store(&s).map_err(|e| e.under("session_store").to_string())
    }

    #[test]
    fn near_cache_defaults_and_validation() {
        let s: StoreSection =
            serde_norway::from_str("{ type: redis, url: 'redis://127.0.0.1', near_cache: {} }")
                .unwrap_or_else(|e| panic!("{e}"));
        let nc = s.near_cache.unwrap_or_else(|| panic!("near_cache"));
        assert_eq!(nc.max_entries, 10_000);
        assert_eq!(nc.max_age, Duration::from_secs(60));
        assert_eq!(nc.config().max_entries, 10_000);

        for ok in [
            "{ type: redis, url: 'redis://h', near_cache: { max_entries: 5, max_age: 2s } }",
            "{ type: postgres, url: 'postgres://h/db', near_cache: { max_age: 1m } }",
            "{ type: redis, url: 'redis://h' }",
        ] {
            assert_eq!(store(ok), Ok(()), "{ok}");
        }
        for (bad, key) in [
            (
                "{ type: memory, near_cache: {} }",
                "session_store.near_cache",
            ),
            (
                "{ type: embedded, near_cache: {} }",
                "session_store.near_cache",
            ),
            (
                "{ type: redis, url: 'redis://h', near_cache: { max_entries: 0 } }",
                "session_store.near_cache.max_entries",
            ),
            (
                "{ type: redis, url: 'redis://h', near_cache: { max_age: 0s } }",
                "session_store.near_cache.max_age",
            ),
        ] {
            let e = store(bad).expect_err(bad);
            assert!(e.contains(key), "{bad}: {e}");
        }
        for (bad, what) in [
            (
                "{ type: redis, url: 'redis://h', near_cache: { max_entires: 5 } }",
                "unknown field `max_entires`",
            ),
            (
                "{ type: redis, url: 'redis://h', near_cache: { max_age: soon } }",
                "invalid duration",
            ),
        ] {
            let e = store(bad).expect_err(bad);
            assert!(e.contains(what), "{bad}: {e}");
        }
    }

    #[test]
    fn tls_goes_with_rediss_and_a_key_with_its_certificate() {
        for ok in [
            "{ type: redis, url: 'rediss://h' }",
            "{ type: redis, url: 'rediss://h', tls: {} }",
            "{ type: redis, url: 'rediss://h:6380', tls: { ca_file: ca.pem } }",
            "{ type: redis, url: 'rediss://h', tls: { cert_file: c.pem, key_file: k.pem } }",
            "{ type: postgres, url: 'postgres://h/db', tls: { ca_file: ca.pem } }",
            "{ type: postgres, url: 'postgres://h/db?sslmode=require' }",
            "{ type: redis, url: 'REDISS://h', tls: {} }",
            "{ type: postgres, url: 'postgres://h/db?sslmode=disable&sslmode=require', tls: {} }",
        ] {
            assert_eq!(store(ok), Ok(()), "{ok}");
        }
        for (bad, key) in [
            (
                "{ type: redis, url: 'redis://h', tls: { ca_file: ca.pem } }",
                "`session_store.tls`: TLS settings need a rediss:// URL",
            ),
            (
                "{ type: postgres, url: 'postgres://h/db?sslmode=disable', tls: {} }",
                "`session_store.tls`: TLS settings were given but the connection string says sslmode=disable",
            ),
            (
                "{ type: memory, tls: {} }",
                "`session_store.tls`: only redis and postgres stores",
            ),
            (
                "{ type: redis, url: 'rediss://h', tls: { cert_file: c.pem } }",
                "`session_store.tls.key_file`",
            ),
            (
                "{ type: redis, url: 'rediss://h', tls: { key_file: k.pem } }",
                "`session_store.tls.cert_file`",
            ),
            (
                "{ type: redis, url: 'rediss://h/#insecure' }",
                "`session_store.url`: rediss://…#insecure (no certificate verification) is refused",
            ),
            (
                "{ type: redis, url: 'rediss://h', tls: { ca: x } }",
                "unknown field `ca`",
            ),
            (
                "{ type: postgres, url: 'host=h sslmode = disable', tls: {} }",
                "`session_store.tls`: TLS settings were given",
            ),
            (
                "{ type: postgres, url: 'postgres://h/db?sslnegotiation=direct&sslmode=disable' }",
                "`session_store.url`: TLS settings were given",
            ),
            (
                "{ type: redis, url: 'http://h' }",
                "`session_store.url`: invalid Redis URL",
            ),
        ] {
            let e = store(bad).expect_err(bad);
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn debug_shows_no_secret_and_no_store_url() {
        let file: FileConfig = serde_norway::from_str(
            "session_store: { type: redis, url: 'redis://:hunter2@h:6379' }\n\
             bearer: { secrets: [ { kid: k1, secret: AAAAsecretAAAA } ] }\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{file:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("AAAAsecretAAAA"),
            "{shown}"
        );
        assert!(shown.contains("k1") && shown.contains("Redis"), "{shown}");
    }

    #[test]
    fn tls_files_are_read_from_the_configuration_directory() {
        let dir = std::env::temp_dir().join(format!(
            "jwtx-tls-config-{}",
            &jwt_exchange::session::SessionId::generate().as_str()[..12]
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        std::fs::write(dir.join("ca.pem"), pem).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("junk.pem"), "not pem").unwrap_or_else(|e| panic!("{e}"));
        let section = |ca: &str| TlsSection {
            ca_file: Some(PathBuf::from(ca)),
            cert_file: None,
            key_file: None,
        };
        let tls = section("ca.pem")
            .read(&dir)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(format!("{tls:?}").contains("ca: \"given\""), "{tls:?}");
        let missing = section("nope.pem").read(&dir).expect_err("missing file");
        assert!(
            missing.to_string().contains("tls.ca_file") && missing.to_string().contains("nope.pem"),
            "{missing}"
        );
        let junk = section("junk.pem").read(&dir).expect_err("not PEM");
        assert!(junk.to_string().contains("not a PEM file"), "{junk}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
