//! The server goes away (connections reset, or silently black-holed) and comes back: every
//! operation fails with `Unavailable` within the query timeout, nothing is half-created, and
//! the same store object recovers on its own.

use std::time::{Duration, Instant};

use jwt_exchange::store::{SessionStore, StoreError};
use jwt_exchange_postgres::{ConnectError, PostgresStore};
use jwt_exchange_testkit::proxy::{ProxyMode, TcpProxy};

use crate::common::{self, session};

/// A proxy in front of the server and the store's URL through it.
async fn proxied(url: &str) -> (TcpProxy, String) {
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

async fn assert_all_unavailable(store: &PostgresStore) {
    let s = session("outage", 600);
    let results: Vec<(&str, Result<(), StoreError>)> = vec![
        ("ping", store.ping().await),
        ("create", store.create(&s).await),
        ("get", store.get(&s.id).await.map(drop)),
        ("delete", store.delete(&s.id).await.map(drop)),
        (
            "list_subject",
            store.list_subject(&s.subject).await.map(drop),
        ),
        (
            "delete_subject",
            store.delete_subject(&s.subject).await.map(drop),
        ),
        ("sweep", store.sweep().await.map(drop)),
        (
            "claim_jti",
            store
                .claim_jti("iss", "j", common::now() + 60)
                .await
                .map(drop),
        ),
        ("migrate", store.migrate().await.map(drop)),
    ];
    for (op, r) in results {
        assert!(
            matches!(r, Err(StoreError::Unavailable(_))),
            "{op} during the outage: {r:?}"
        );
    }
}

async fn wait_until_recovered(store: &PostgresStore) -> Duration {
    let started = Instant::now();
    loop {
        if store.ping().await.is_ok() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the store did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_reset_then_back() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let (proxy, proxied) = proxied(&url).await;
    let store = PostgresStore::connect(&proxied, common::config())
        .await
        .expect("connect");
    let before = session("before", 600);
    store.create(&before).await.expect("create");

    proxy.set_mode(ProxyMode::Refuse);
    let started = Instant::now();
    assert_all_unavailable(&store).await;
    println!("nine failed operations took {:?}", started.elapsed());

    proxy.set_mode(ProxyMode::Forward);
    let took = wait_until_recovered(&store).await;
    println!("recovered {took:?} after the server came back");
    assert_eq!(
        store.get(&before.id).await.expect("get after recovery"),
        Some(before.clone())
    );
    store
        .create(&session("after", 600))
        .await
        .expect("create after recovery");
    common::cleanup(&store, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_partition_times_out_then_recovers() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let (proxy, proxied) = proxied(&url).await;
    let config = common::config().with_query_timeout(Duration::from_millis(500));
    let store = PostgresStore::connect(&proxied, config)
        .await
        .expect("connect");
    let s = session("partition", 600);
    store.create(&s).await.expect("create");

    proxy.set_mode(ProxyMode::Blackhole);
    let started = Instant::now();
    let r = store.get(&s.id).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let lost = session("partition", 600);
    assert!(store.create(&lost).await.is_err());

    proxy.set_mode(ProxyMode::Forward);
    wait_until_recovered(&store).await;
    assert_eq!(store.get(&s.id).await.expect("get"), Some(s.clone()));
    assert_eq!(
        store.get(&lost.id).await.expect("get"),
        None,
        "a create that timed out before reaching the server left nothing"
    );
    common::cleanup(&store, &url).await;
}

#[tokio::test]
async fn unreachable_at_start() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let (proxy, proxied) = proxied(&url).await;
    proxy.set_mode(ProxyMode::Refuse);
    let started = Instant::now();
    let err = PostgresStore::connect(&proxied, common::config())
        .await
        .expect_err("nothing answers");
    assert!(
        matches!(err, ConnectError::Store(StoreError::Unavailable(_))),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
