//! TLS (`rediss://`, feature `tls`) against a `redis-server` of the test's own (the test kit's
//! [`TlsRedis`]: TLS only, certificates made by `openssl` for the run). Without `redis-server`
//! or `openssl` on the `PATH` the tests print `skipped: …`, except under `CI=true`.

use std::time::{Duration, Instant};

use jwt_exchange::session::{Session, SessionId};
use jwt_exchange::store::StoreTls;
use jwt_exchange::store::{NearCacheConfig, SessionStore};
use jwt_exchange_redis::{ConnectError, RedisStore};
use jwt_exchange_testkit::tls_redis::{error_chain as chain, TlsRedis};

use crate::common::config;

/// Trusts the test CA.
fn tls(server: &TlsRedis) -> StoreTls {
    StoreTls::new().with_ca_pem(server.pem("ca.crt"))
}

/// Trusts the test CA and presents the test client certificate.
fn mutual_tls(server: &TlsRedis) -> StoreTls {
    tls(server).with_client_identity(server.pem("client.crt"), server.pem("client.key"))
}

/// A session valid for an hour from now (Redis expires keys on its own clock).
fn session(identity: &str) -> Session {
    let now = jwt_exchange::Clock::unix_seconds(&jwt_exchange::SystemClock);
    Session::new(
        SessionId::generate(),
        "https://idp",
        identity,
        now,
        now + 3600,
    )
}

#[tokio::test]
async fn tls_with_the_ca_works_and_nothing_else_connects() {
    let Some(server) = TlsRedis::start(false).await else {
        return;
    };
    let cfg = config;

    let store = RedisStore::connect(&server.url(), cfg().with_tls(tls(&server)))
        .await
        .expect("rediss:// with the test CA connects");
    let s = session("alice");
    store.create(&s).await.expect("store answers");
    assert_eq!(
        store.get(&s.id).await.expect("store answers"),
        Some(s.clone())
    );
    assert_eq!(
        store
            .delete_subject(&s.subject)
            .await
            .expect("store answers"),
        1
    );
    assert_eq!(store.get(&s.id).await.expect("store answers"), None);

    // The system's roots do not know the test CA: the handshake fails, nothing falls back.
    let e = RedisStore::connect(&server.url(), cfg())
        .await
        .expect_err("an unknown CA is refused");
    let why = chain(&e);
    assert!(
        matches!(e, ConnectError::Store(_)) && why.contains("UnknownIssuer"),
        "{why}"
    );
    // The certificate names `localhost` only: by IP address the host name check fails.
    let by_ip = format!("rediss://127.0.0.1:{}", server.port());
    let e = RedisStore::connect(&by_ip, cfg().with_tls(tls(&server)))
        .await
        .expect_err("a certificate for another name");
    let why = chain(&e);
    assert!(
        matches!(e, ConnectError::Store(_)) && why.contains("not valid for name"),
        "{why}"
    );
    // A plaintext client on the TLS port gets nowhere either.
    let plain = format!("redis://127.0.0.1:{}", server.port());
    assert!(RedisStore::connect(&plain, cfg()).await.is_err());
    // TLS settings with a plaintext URL, and a URL that turns verification off, are refused
    // before any connection is made.
    assert!(matches!(
        RedisStore::connect(&plain, cfg().with_tls(tls(&server))).await,
        Err(ConnectError::TlsWithoutRediss)
    ));
    assert!(matches!(
        RedisStore::connect(&format!("{}/#insecure", server.url()), cfg()).await,
        Err(ConnectError::InsecureTls)
    ));
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let Some(server) = TlsRedis::start(true).await else {
        return;
    };
    let e = RedisStore::connect(&server.url(), config().with_tls(tls(&server)))
        .await
        .expect_err("the server asks for a client certificate");
    assert!(chain(&e).contains("CertificateRequired"), "{}", chain(&e));
    // Nothing of the key material is in an error.
    let bad_key =
        tls(&server).with_client_identity(server.pem("client.crt"), b"not a key".to_vec());
    let e = RedisStore::connect(&server.url(), config().with_tls(bad_key))
        .await
        .expect_err("a key that does not parse");
    assert!(!chain(&e).contains("not a key"), "{}", chain(&e));

    let store = RedisStore::connect(&server.url(), config().with_tls(mutual_tls(&server)))
        .await
        .expect("connects with the client certificate");
    let s = session("bob");
    store.create(&s).await.expect("store answers");
    assert_eq!(
        store.get(&s.id).await.expect("store answers"),
        Some(s.clone())
    );
    assert!(store.delete(&s.id).await.expect("store answers"));
}

#[tokio::test]
async fn near_cache_subscribes_over_tls() {
    let Some(server) = TlsRedis::start(true).await else {
        return;
    };
    let cfg = config().with_tls(mutual_tls(&server));
    let a = RedisStore::connect_cached(&server.url(), cfg.clone(), NearCacheConfig::default())
        .await
        .expect("store and subscription connect over TLS");
    let b = RedisStore::connect_cached(&server.url(), cfg, NearCacheConfig::default())
        .await
        .expect("second instance");
    assert!(a.is_subscribed() && b.is_subscribed());
    let s = session("carol");
    a.create(&s).await.expect("store answers");
    assert_eq!(b.get(&s.id).await.expect("store answers"), Some(s.clone()));
    assert_eq!(b.get(&s.id).await.expect("store answers"), Some(s.clone()));
    assert!(b.stats().hits >= 1, "{:?}", b.stats());
    // A revocation on A reaches B over the TLS subscription.
    assert!(a.delete(&s.id).await.expect("store answers"));
    let deadline = Instant::now() + Duration::from_secs(2);
    while b.get(&s.id).await.expect("store answers").is_some() {
        assert!(
            Instant::now() < deadline,
            "B still serves the revoked session"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
