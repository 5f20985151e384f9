//! TLS (feature `tls`) against the test server's own certificate: the local PostgreSQL serves
//! TLS with the distribution's self-signed "snakeoil" certificate for `localhost`, which the
//! tests trust as the CA. What the server saw is read back from `pg_stat_ssl`.
//!
//! Skipped (printing why) when the server is unreachable outside CI, or when it has no TLS or
//! its certificate is not the `localhost` snakeoil one; under `CI=true` those fail.

use jwt_exchange::store::{NearCacheConfig, SessionStore, StoreTls};
use jwt_exchange_postgres::{ConnectError, PostgresStore};
use jwt_exchange_testkit::services::{
    postgres_tls_url, POSTGRES_SSL_BY_APPLICATION, POSTGRES_TLS_CERT,
};
use jwt_exchange_testkit::tls_redis::{error_chain as chain, make_certificates};

use crate::common::{cleanup, config, postgres_url, raw, session};

/// The server's URL with `localhost` for its host (the certificate's name), and the CA.
async fn tls_server() -> Option<(String, StoreTls)> {
    let url = postgres_url().await?;
    let ssl: String = raw(&url)
        .await
        .query_one("SHOW ssl", &[])
        .await
        .expect("SHOW ssl")
        .get(0);
    let url = postgres_tls_url(&url, &ssl)?;
    let ca = std::fs::read(POSTGRES_TLS_CERT).expect("the server's certificate");
    Some((url, StoreTls::new().with_ca_pem(ca)))
}

/// `url` with `key=value` appended to its query.
fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// Whether each of the server's connections named `app` uses TLS.
async fn tls_of(url: &str, app: &str) -> Vec<bool> {
    raw(url)
        .await
        .query(POSTGRES_SSL_BY_APPLICATION, &[&app])
        .await
        .expect("pg_stat_ssl")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A unique `application_name`, to find this test's connections on the server.
fn app_name(tag: &str) -> String {
    format!("jwtx-tls-{tag}-{}", &crate::common::random_schema()[10..])
}

#[tokio::test]
async fn store_and_listener_connect_over_verified_tls() {
    let Some((url, ca)) = tls_server().await else {
        return;
    };
    let app = app_name("ok");
    let tls_url = with_param(&url, &format!("application_name={app}"));
    let store = PostgresStore::connect_cached(
        &tls_url,
        config().with_tls(ca.clone()),
        NearCacheConfig::default(),
    )
    .await
    .expect("TLS with the server's certificate as the CA");
    assert!(store.is_subscribed());
    let s = session("alice", 3600);
    store.create(&s).await.expect("create over TLS");
    assert_eq!(store.get(&s.id).await.expect("get"), Some(s.clone()));
    // Pool and listener (named `<app>-listen`): every connection of this store is encrypted.
    let pool = tls_of(&url, &app).await;
    let listener = tls_of(&url, &format!("{app}-listen")).await;
    assert!(!pool.is_empty() && pool.iter().all(|ssl| *ssl), "{pool:?}");
    assert_eq!(listener, [true]);
    cleanup(store.inner(), &url).await;
}

#[tokio::test]
async fn a_wrong_name_or_an_unknown_ca_is_refused() {
    let Some((url, ca)) = tls_server().await else {
        return;
    };
    // The certificate names `localhost`, not `127.0.0.1`: the host name is checked.
    let by_ip = url.replace("@localhost", "@127.0.0.1");
    let e = PostgresStore::connect(&by_ip, config().with_tls(ca.clone()))
        .await
        .expect_err("a certificate for another name");
    let why = chain(&e);
    assert!(
        matches!(e, ConnectError::Store(_)) && why.contains("not valid for name"),
        "{why}"
    );
    // A CA that did not sign the server's certificate.
    let other = StoreTls::new().with_ca_pem(other_ca());
    let e = PostgresStore::connect(&url, config().with_tls(other))
        .await
        .expect_err("an unknown issuer");
    let why = chain(&e);
    assert!(
        matches!(e, ConnectError::Store(_)) && why.contains("UnknownIssuer"),
        "{why}"
    );
    // TLS settings with a connection string that turns TLS off.
    let plain = with_param(&url, "sslmode=disable");
    assert!(matches!(
        PostgresStore::connect(&plain, config().with_tls(ca)).await,
        Err(ConnectError::TlsWithSslmodeDisable)
    ));
}

/// Without TLS settings and without `sslmode=require` the store stays on plaintext, even
/// though the server offers TLS (libpq's default `prefer` is treated as `disable`).
#[tokio::test]
async fn plaintext_unless_asked() {
    let Some((url, _)) = tls_server().await else {
        return;
    };
    let app = app_name("plain");
    let store = PostgresStore::connect(
        &with_param(&url, &format!("application_name={app}")),
        config(),
    )
    .await
    .expect("plaintext connect");
    store.ping().await.expect("ping");
    let seen = tls_of(&url, &app).await;
    assert!(!seen.is_empty() && seen.iter().all(|ssl| !*ssl), "{seen:?}");
    cleanup(&store, &url).await;
}

/// A CA made for this run, which signed nothing the server has.
fn other_ca() -> Vec<u8> {
    let dir = std::env::temp_dir().join(app_name("ca"));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    make_certificates(&dir);
    let pem = std::fs::read(dir.join("ca.crt")).expect("ca.crt");
    let _ = std::fs::remove_dir_all(&dir);
    pem
}
