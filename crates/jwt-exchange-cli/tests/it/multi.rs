//! Several `jwt-exchange serve` processes sharing one session store (Redis, PostgreSQL, and
//! each again with the near-cache on): a bearer minted by one instance works on the other,
//! and a revocation on either holds on both from the next request.
//!
//! Every test uses its own namespace (Redis key prefix / Postgres schema) and removes it at
//! the end. Without a server the tests print `skipped: …`, except under `CI=true`.

use std::time::{Duration, Instant};

use jwt_exchange::Algorithm;
use jwt_exchange_testkit::services::{
    postgres_tls_url, POSTGRES_SSL_BY_APPLICATION, POSTGRES_TLS_CERT,
};
use jwt_exchange_testkit::tls_redis::TlsRedis;
use jwt_exchange_testkit::{jwks, require_service, JwksServer, TestKey};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{config_yaml, run, ServerProcess, TempDir};
use crate::probe::Metrics;

pub const ISS: &str = "https://idp.multi.test/";

/// The shared stores the tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Redis,
    Postgres,
}

impl Backend {
    /// The server's URL, or `None` when the test is skipped.
    pub async fn url(self) -> Option<String> {
        match self {
            Backend::Redis => {
                require_service("redis", "JWTX_REDIS_URL", "redis://127.0.0.1:6379").await
            }
            Backend::Postgres => {
                require_service(
                    "postgres",
                    "JWTX_POSTGRES_URL",
                    "postgres://postgres@127.0.0.1:5432/test",
                )
                .await
            }
        }
    }

    /// A fresh namespace valid for this backend (a Redis prefix or a Postgres schema).
    pub fn namespace(self) -> String {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let tag = format!("{:x}{:x}", std::process::id(), n % (1 << 40));
        match self {
            Backend::Redis => format!("jwtx-e2e-{tag}"),
            Backend::Postgres => format!("jwtx_e2e_{tag}"),
        }
    }

    /// The `session_store` block.
    pub fn store_yaml(self, url: &str, namespace: &str, near_cache: bool) -> String {
        let kind = match self {
            Backend::Redis => "redis",
            Backend::Postgres => "postgres",
        };
        let near = if near_cache {
            "  near_cache:\n    max_entries: 1000\n    max_age: 60s\n"
        } else {
            ""
        };
        format!(
            "session_store:\n  type: {kind}\n  url: \"{url}\"\n  namespace: {namespace}\n{near}"
        )
    }

    /// Number of sessions stored under `namespace` (keys or rows, expired ones included).
    pub async fn sessions(self, url: &str, namespace: &str) -> usize {
        match self {
            Backend::Redis => redis_keys(url, &format!("\\{{{namespace}:?\\}}:s:*"))
                .await
                .len(),
            Backend::Postgres => {
                let n: i64 = pg(url)
                    .await
                    .query_one(
                        &format!("SELECT count(*) FROM \"{namespace}\".sessions"),
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                usize::try_from(n).unwrap()
            }
        }
    }

    /// Removes everything stored under `namespace`.
    pub async fn cleanup(self, url: &str, namespace: &str) {
        match self {
            Backend::Redis => {
                let mut keys = redis_keys(url, &format!("\\{{{namespace}:?\\}}:*")).await;
                keys.extend(redis_keys(url, &format!("{namespace}:*")).await);
                if !keys.is_empty() {
                    let mut conn = redis_conn(url).await;
                    let _: usize = redis::cmd("DEL")
                        .arg(&keys)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                }
            }
            Backend::Postgres => {
                pg(url)
                    .await
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{namespace}\" CASCADE"))
                    .await
                    .unwrap();
            }
        }
    }
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn redis_keys(url: &str, pattern: &str) -> Vec<String> {
    let mut conn = redis_conn(url).await;
    let mut out = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        out.extend(batch);
        if next == 0 {
            return out;
        }
        cursor = next;
    }
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// A loopback IdP, a key, and a config directory whose `config.yaml` uses `store_yaml`.
pub struct Setup {
    pub key: TestKey,
    /// Kept alive for the servers' key fetches.
    _idp: JwksServer,
    pub dir: TempDir,
    pub config: std::path::PathBuf,
}

impl Setup {
    pub async fn new(tag: &str, store_yaml: &str) -> Self {
        let key = TestKey::generate(Algorithm::ES256, "k1");
        let idp = JwksServer::start(jwks(&[&key])).await;
        let dir = TempDir::new(tag);
        let yaml = config_yaml(ISS, &idp.jwks_url(), "", "");
        let memory = "session_store:\n  type: memory\n";
        assert!(yaml.contains(memory));
        let config = dir.write("config.yaml", &yaml.replace(memory, store_yaml));
        Setup {
            key,
            _idp: idp,
            dir,
            config,
        }
    }

    pub async fn server(&self) -> ServerProcess {
        ServerProcess::start(&self.config, self.dir.path()).await
    }

    /// A fresh external token for `oid`.
    pub fn token(&self, oid: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        self.key.mint(&json!({
            "iss": ISS, "aud": "api://lakefs", "oid": oid, "roles": ["readers"],
            "iat": now, "nbf": now, "exp": now + 3600,
        }))
    }
}

/// `POST /auth/jwt/login`: the status, the `Retry-After` header, and the body.
pub async fn login(base: &str, token: &str) -> (StatusCode, Option<String>, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/auth/jwt/login"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

/// Logs in and returns the bearer.
pub async fn bearer(base: &str, token: &str) -> String {
    let (status, _, body) = login(base, token).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// `GET /auth/session`: status and `Retry-After`.
pub async fn whoami(base: &str, bearer: &str) -> (StatusCode, Option<String>) {
    let r = reqwest::Client::new()
        .get(format!("{base}/auth/session"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status(), retry)
}

/// `DELETE /auth/session`.
pub async fn revoke(base: &str, bearer: &str) -> StatusCode {
    reqwest::Client::new()
        .delete(format!("{base}/auth/session"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .status()
}

/// Login on A, use on B, revoke on B, refused on A; returns how long A took to refuse the
/// bearer after B's revocation answered (zero when its very next request did).
async fn shared_sessions(backend: Backend, near_cache: bool) -> Option<Duration> {
    let url = backend.url().await?;
    let ns = backend.namespace();
    let setup = Setup::new("multi", &backend.store_yaml(&url, &ns, near_cache)).await;
    let a = setup.server().await;
    let b = setup.server().await;
    if near_cache {
        assert!(
            a.log_text().contains("session near-cache on"),
            "{}",
            a.log_text()
        );
    }

    let bearer_a = bearer(&a.base, &setup.token("svc-a")).await;
    let other = bearer(&b.base, &setup.token("svc-b")).await;
    for _ in 0..3 {
        assert_eq!(whoami(&b.base, &bearer_a).await.0, 200, "A's bearer on B");
        assert_eq!(whoami(&a.base, &bearer_a).await.0, 200, "A's bearer on A");
        assert_eq!(whoami(&a.base, &other).await.0, 200, "B's bearer on A");
    }

    assert_eq!(revoke(&b.base, &bearer_a).await, 204, "revoked on B");
    let revoked = Instant::now();
    let mut first = true;
    let took = loop {
        match whoami(&a.base, &bearer_a).await.0 {
            StatusCode::UNAUTHORIZED => break revoked.elapsed(),
            StatusCode::OK if near_cache => {
                assert!(
                    revoked.elapsed() < Duration::from_secs(1),
                    "the near-cache on A still accepts a bearer revoked on B"
                );
                first = false;
            }
            s => panic!("A answered {s} after the revocation on B"),
        }
    };
    if !near_cache {
        assert!(first, "without a near-cache A refuses at its next request");
    }
    near_cache_metrics(&a.base, near_cache).await;
    assert_eq!(whoami(&b.base, &bearer_a).await.0, 401);
    // The other session is untouched, on both.
    assert_eq!(whoami(&a.base, &other).await.0, 200);
    assert_eq!(whoami(&b.base, &other).await.0, 200);
    assert_eq!(backend.sessions(&url, &ns).await, 1);

    drop((a, b));
    backend.cleanup(&url, &ns).await;
    Some(if first { Duration::ZERO } else { took })
}

/// A's `/metrics` after the exchange above (three reads of each bearer, then B's revocation):
/// the near-cache families are there exactly when a near-cache is configured, and they count
/// what happened.
async fn near_cache_metrics(base: &str, near_cache: bool) {
    let m = Metrics::fetch(&reqwest::Client::new(), base).await;
    if !near_cache {
        assert!(!m.0.contains("jwtx_near_cache_"), "{}", m.0);
        return;
    }
    let hits = m.value(r#"jwtx_near_cache_lookups_total{result="hit"}"#);
    let misses = m.value(r#"jwtx_near_cache_lookups_total{result="miss"}"#);
    // A read each of its own and of B's bearer: the first read of each may miss, the repeats
    // hit.
    assert!(hits.is_some_and(|h| h >= 2), "{}", m.0);
    assert!(misses.is_some_and(|n| n >= 1), "{}", m.0);
    assert!(
        m.value(r#"jwtx_near_cache_lookups_total{result="bypassed"}"#)
            .is_some(),
        "{}",
        m.0
    );
    assert_eq!(m.value("jwtx_near_cache_subscribed"), Some(1), "{}", m.0);
    // B's revocation reached A as an invalidation, and dropped the entry.
    assert!(
        m.value("jwtx_near_cache_invalidations_total")
            .is_some_and(|n| n >= 1),
        "{}",
        m.0
    );
    assert!(m.value("jwtx_near_cache_entries").is_some(), "{}", m.0);
    assert_eq!(
        m.value("jwtx_near_cache_evictions_total"),
        Some(0),
        "{}",
        m.0
    );
    assert!(
        m.value("jwtx_near_cache_flushes_total").is_some(),
        "{}",
        m.0
    );
    assert!(
        m.0.contains("# TYPE jwtx_near_cache_lookups_total counter")
            && m.0.contains("# TYPE jwtx_near_cache_subscribed gauge"),
        "{}",
        m.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_sessions_through_redis() {
    shared_sessions(Backend::Redis, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_sessions_through_postgres() {
    shared_sessions(Backend::Postgres, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_with_redis_near_cache() {
    if let Some(took) = shared_sessions(Backend::Redis, true).await {
        println!(
            "redis near-cache: A refused the revoked bearer after {took:?} (0 = next request)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_with_postgres_near_cache() {
    if let Some(took) = shared_sessions(Backend::Postgres, true).await {
        println!(
            "postgres near-cache: A refused the revoked bearer after {took:?} (0 = next request)"
        );
    }
}

/// `session_store.migrate: false`: `serve` runs no DDL (its role may lack the privilege), so a
/// schema nobody migrated stays absent and logins fail with 503; `jwt-exchange migrate` (run
/// with a privileged role before a deploy) creates it, and the same `serve` then works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_migrate_off_runs_no_ddl() {
    let Some(url) = Backend::Postgres.url().await else {
        return;
    };
    let schema = Backend::Postgres.namespace();
    let setup = Setup::new(
        "pg-nomigrate",
        &format!("session_store:\n  type: postgres\n  url: {url}\n  namespace: {schema}\n  migrate: false\n"),
    )
    .await;
    let exists = || async {
        pg(&url)
            .await
            .query_one(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
                &[&schema],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let a = setup.server().await;
    assert_eq!(exists().await, 0, "serve created nothing");
    assert_eq!(
        bearer_status(&a.base, &setup.token("svc-nomigrate")).await,
        503
    );
    let config = setup.config.display().to_string();
    let out = crate::common::run(&["migrate", "--config", &config], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(exists().await, 1);
    assert_eq!(
        bearer_status(&a.base, &setup.token("svc-nomigrate")).await,
        200
    );
    pg(&url)
        .await
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

/// The status of a login with `token`.
async fn bearer_status(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/auth/jwt/login"))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `near_cache` is refused for stores that cannot share it, naming the key.
#[test]
fn near_cache_is_only_for_shared_stores() {
    let dir = TempDir::new("multi-config");
    for (store, key) in [
        (
            "session_store:\n  type: memory\n  near_cache: {}\n",
            "session_store.near_cache",
        ),
        (
            "session_store:\n  type: redis\n  url: redis://127.0.0.1\n  near_cache: { max_entries: 0 }\n",
            "session_store.near_cache.max_entries",
        ),
    ] {
        let yaml = config_yaml(ISS, "http://127.0.0.1:1/jwks", "", "")
            .replace("session_store:\n  type: memory\n", store);
        let cfg = dir.write("config.yaml", &yaml);
        let out = crate::common::run(&["serve", "--config", cfg.to_str().unwrap()], None);
        assert_eq!(out.status.code(), Some(2), "{store}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{store}: {err}");
    }
}

/// `session_store.tls` end to end: `serve` logs in, authenticates and revokes through a
/// TLS-only Redis that requires a client certificate (CA and client key pair from files, the
/// near-cache's subscription over TLS too); without the client certificate it does not start,
/// and says why; a missing file fails `--check` naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_over_redis_with_mutual_tls() {
    let Some(redis) = TlsRedis::start(true).await else {
        return;
    };
    let d = redis.dir().display();
    let store = |tls: &str| {
        format!(
            "session_store:\n  type: redis\n  url: {}\n  namespace: {}\n  near_cache: {{ max_entries: 100, max_age: 60s }}\n  tls:\n{tls}",
            redis.url(),
            Backend::Redis.namespace()
        )
    };
    let full = format!(
        "    ca_file: {d}/ca.crt\n    cert_file: {d}/client.crt\n    key_file: {d}/client.key\n"
    );
    let setup = Setup::new("tls", &store(&full)).await;
    let a = setup.server().await;
    assert!(
        a.log_text().contains("session near-cache on"),
        "{}",
        a.log_text()
    );
    let bearer = bearer(&a.base, &setup.token("svc-tls")).await;
    assert_eq!(whoami(&a.base, &bearer).await.0, 200);
    assert_eq!(revoke(&a.base, &bearer).await, 204);
    assert_eq!(whoami(&a.base, &bearer).await.0, 401);
    drop(a);

    // The server asks for a client certificate this configuration does not give.
    let no_identity = Setup::new(
        "tls-no-identity",
        &store(&format!("    ca_file: {d}/ca.crt\n")),
    )
    .await;
    let config = no_identity.config.display().to_string();
    let out = run(
        &["serve", "--config", &config, "--listen", "127.0.0.1:0"],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("connecting to the Redis session store"),
        "{stderr}"
    );
    // "… received fatal alert: CertificateRequired", not "timed out".
    assert!(
        stderr.contains("CertificateRequired") && !stderr.contains("timed out"),
        "the cause is named: {stderr}"
    );

    let missing = Setup::new("tls-missing", &store("    ca_file: /nonexistent/ca.pem\n")).await;
    let config = missing.config.display().to_string();
    let out = run(&["serve", "--config", &config, "--check"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("session_store.tls.ca_file"), "{stderr}");
}

/// `session_store.tls` with PostgreSQL: `serve` logs in, authenticates and revokes over TLS,
/// trusting the local server's own ("snakeoil", `localhost`) certificate as the CA, and the
/// server reports every connection of the schema's instance as encrypted. Skipped like the
/// store crate's TLS tests when the server has no such certificate (a failure under CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_over_postgres_with_tls() {
    let Some(url) = Backend::Postgres.url().await else {
        return;
    };
    let ssl: String = pg(&url)
        .await
        .query_one("SHOW ssl", &[])
        .await
        .unwrap()
        .get(0);
    let Some(tls_url) = postgres_tls_url(&url, &ssl) else {
        return;
    };
    let ns = Backend::Postgres.namespace();
    let app = format!("jwtx-e2e-tls-{ns}");
    let sep = if tls_url.contains('?') { '&' } else { '?' };
    let yaml = format!(
        "session_store:\n  type: postgres\n  url: '{tls_url}{sep}application_name={app}'\n  namespace: {ns}\n  near_cache: {{ max_entries: 100, max_age: 60s }}\n  tls:\n    ca_file: {POSTGRES_TLS_CERT}\n"
    );
    let setup = Setup::new("pg-tls", &yaml).await;
    let a = setup.server().await;
    let bearer = bearer(&a.base, &setup.token("svc-pg-tls")).await;
    assert_eq!(whoami(&a.base, &bearer).await.0, 200);
    assert_eq!(revoke(&a.base, &bearer).await, 204);
    assert_eq!(whoami(&a.base, &bearer).await.0, 401);
    // The pool's connections and the listener's (`<app>-listen`) are encrypted.
    let encrypted = |name: String| {
        let url = url.clone();
        async move {
            pg(&url)
                .await
                .query(POSTGRES_SSL_BY_APPLICATION, &[&name])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, bool>(0))
                .collect::<Vec<bool>>()
        }
    };
    let pool = encrypted(app.clone()).await;
    assert!(!pool.is_empty() && pool.iter().all(|ssl| *ssl), "{pool:?}");
    assert_eq!(encrypted(format!("{app}-listen")).await, [true]);
    drop(a);
    Backend::Postgres.cleanup(&url, &ns).await;
}
