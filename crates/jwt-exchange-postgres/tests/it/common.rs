//! Shared helpers: a fresh schema per test, raw SQL access, and dropping the schema.

use std::time::Duration;

use jwt_exchange::session::{Session, SessionId};
use jwt_exchange_postgres::{PostgresStore, PostgresStoreConfig};
use jwt_exchange_testkit::proxy::TcpProxy;
use jwt_exchange_testkit::require_service;
use tokio_postgres::NoTls;

/// The PostgreSQL URL, or `None` (test skipped) when no server answers outside CI.
pub(crate) async fn postgres_url() -> Option<String> {
    require_service(
        "postgres",
        "JWTX_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    )
    .await
}

/// A random schema name, so parallel tests and runs never share tables.
pub(crate) fn random_schema() -> String {
    let id = SessionId::generate();
    let suffix: String = id
        .as_str()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    format!("jwtx_test_{}", suffix.to_ascii_lowercase())
}

/// A config with a random schema and short timeouts.
pub(crate) fn config() -> PostgresStoreConfig {
    PostgresStoreConfig::default()
        .with_schema(random_schema())
        .with_max_connections(8)
        .with_query_timeout(Duration::from_millis(1500))
        .with_connect_timeout(Duration::from_secs(2))
}

/// A store on its own schema, or `None` when the test is skipped.
pub(crate) async fn store() -> Option<(PostgresStore, String)> {
    let url = postgres_url().await?;
    let store = PostgresStore::connect(&url, config())
        .await
        .expect("connect to postgres");
    Some((store, url))
}

/// A proxy in front of the server and the store's URL through it.
pub(crate) async fn proxied(url: &str) -> (TcpProxy, String) {
    let config: tokio_postgres::Config = url.parse().expect("url");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => panic!("JWTX_POSTGRES_URL must name a TCP host for the fault tests"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let proxy = TcpProxy::start(format!("{host}:{port}"))
        .await
        .expect("proxy");
    let mut through = config.clone();
    through.host("127.0.0.1").port(proxy.addr().port());
    // Rebuild a key/value connection string (tokio_postgres::Config has no Display).
    let user = through.get_user().unwrap_or("postgres").to_owned();
    let db = through.get_dbname().unwrap_or("postgres").to_owned();
    let password = through
        .get_password()
        .map(|p| format!(" password='{}'", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    let s = format!(
        "host=127.0.0.1 port={} user={user} dbname={db}{password}",
        proxy.addr().port()
    );
    (proxy, s)
}

/// A plain client for inspecting and tampering with rows.
pub(crate) async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("raw connection");
    tokio::spawn(conn);
    client
}

/// Drops the store's schema.
pub(crate) async fn cleanup(store: &PostgresStore, url: &str) {
    let schema = &store.config().schema;
    raw(url)
        .await
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .expect("drop schema");
}

/// A session valid for `ttl` seconds from now.
pub(crate) fn session(identity: &str, ttl: i64) -> Session {
    let now = now();
    Session::new(
        SessionId::generate(),
        "https://idp.test",
        identity,
        now,
        now + ttl,
    )
}

pub(crate) fn now() -> i64 {
    jwt_exchange::Clock::unix_seconds(&jwt_exchange::SystemClock)
}
