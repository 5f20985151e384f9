//! Shared helpers: connecting with a fresh key prefix, and removing its keys afterwards.

use std::time::Duration;

use jwt_exchange::session::{Session, SessionId};
use jwt_exchange_redis::{RedisStore, RedisStoreConfig};
use jwt_exchange_testkit::proxy::TcpProxy;
use jwt_exchange_testkit::require_service;

/// The Redis URL, or `None` (test skipped) when no server answers outside CI.
pub(crate) async fn redis_url() -> Option<String> {
    require_service("redis", "JWTX_REDIS_URL", "redis://127.0.0.1:6379").await
}

/// A random key prefix, so parallel tests and runs never share keys.
pub(crate) fn random_prefix() -> String {
    format!("jwtx-test-{}", &SessionId::generate().as_str()[..12])
}

/// A config with a random prefix and short timeouts.
pub(crate) fn config() -> RedisStoreConfig {
    RedisStoreConfig::default()
        .with_key_prefix(random_prefix())
        .with_command_timeout(Duration::from_millis(1500))
        .with_connect_timeout(Duration::from_secs(3))
}

/// A store on its own prefix, or `None` when the test is skipped.
pub(crate) async fn store() -> Option<(RedisStore, String)> {
    let url = redis_url().await?;
    let store = RedisStore::connect(&url, config())
        .await
        .expect("connect to redis");
    Some((store, url))
}

/// A proxy in front of the server and the server's URL through it.
pub(crate) async fn proxied(url: &str) -> (TcpProxy, String) {
    let client = redis::Client::open(url).expect("url");
    let redis::ConnectionAddr::Tcp(host, port) = client.get_connection_info().addr().clone() else {
        panic!("JWTX_REDIS_URL must be a TCP URL for the fault tests");
    };
    let proxy = TcpProxy::start(format!("{host}:{port}"))
        .await
        .expect("proxy");
    let authority = format!("{host}:{port}");
    let proxied = if url.contains(&authority) {
        url.replacen(&authority, &proxy.addr().to_string(), 1)
    } else {
        format!("redis://{}", proxy.addr())
    };
    (proxy, proxied)
}

/// A plain connection for inspecting and tampering with keys.
pub(crate) async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

/// Every key matching the store's patterns.
pub(crate) async fn keys_of(store: &RedisStore, url: &str) -> Vec<String> {
    let mut conn = raw(url).await;
    let mut out = Vec::new();
    for pattern in store.key_patterns() {
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .expect("scan");
            out.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    out.sort();
    out
}

/// Deletes every key of the store's prefix.
pub(crate) async fn cleanup(store: &RedisStore, url: &str) {
    let keys = keys_of(store, url).await;
    if keys.is_empty() {
        return;
    }
    let mut conn = raw(url).await;
    let _: usize = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .expect("del");
}

/// The store's key holding session `id` (found by scanning, independent of the layout).
pub(crate) async fn session_key(store: &RedisStore, url: &str, id: &SessionId) -> String {
    keys_of(store, url)
        .await
        .into_iter()
        .find(|k| k.ends_with(&format!(":s:{}", id.as_str())))
        .expect("session key")
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
