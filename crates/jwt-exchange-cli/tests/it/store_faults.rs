//! The session store fails under a running server: a shared store that stops mid-run (the
//! server reaches it through a proxy in this process, which the test cuts and restores),
//! and an embedded store whose server is killed with SIGKILL.
//!
//! The runtime is multi-threaded: the proxy's tasks must keep running while the test blocks
//! on processes.

use std::time::{Duration, Instant};

use jwt_exchange_testkit::proxy::{ProxyMode, TcpProxy};
use reqwest::StatusCode;

use crate::multi::{bearer, login, whoami, Backend, Setup};

/// A proxy in front of the backend's server, and the backend URL through it.
async fn proxied(backend: Backend, url: &str) -> (TcpProxy, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, hostpath) = rest.rsplit_once('@').map_or(("", rest), |(u, h)| (u, h));
    let (authority, path) = hostpath
        .find('/')
        .map_or((hostpath, ""), |i| hostpath.split_at(i));
    let upstream = if authority.contains(':') {
        authority.to_owned()
    } else {
        let port = if backend == Backend::Redis {
            6379
        } else {
            5432
        };
        format!("{authority}:{port}")
    };
    let proxy = TcpProxy::start(upstream).await.unwrap();
    let at = if userinfo.is_empty() {
        String::new()
    } else {
        format!("{userinfo}@")
    };
    let through = format!("{scheme}://{at}{}{path}", proxy.addr());
    (proxy, through)
}

/// Store outage → 503 with `Retry-After` for login (creating nothing) and for
/// authentication (never 401 or 500); the server recovers on its own once the store is back.
async fn outage_and_recovery(backend: Backend, modes: &[ProxyMode]) {
    let Some(url) = backend.url().await else {
        return;
    };
    let (proxy, through) = proxied(backend, &url).await;
    let ns = backend.namespace();
    let setup = Setup::new("faults", &backend.store_yaml(&through, &ns, false)).await;
    let server = setup.server().await;
    let base = server.base.clone();
    let before = [
        bearer(&base, &setup.token("before-1")).await,
        bearer(&base, &setup.token("before-2")).await,
    ];
    assert_eq!(backend.sessions(&url, &ns).await, 2);

    for &mode in modes {
        proxy.set_mode(mode);
        let started = Instant::now();
        let (status, retry, body) = login(&base, &setup.token("during")).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{mode:?} login: {body}"
        );
        assert!(retry.is_some(), "{mode:?}: login 503 without Retry-After");
        for b in &before {
            let (status, retry) = whoami(&base, b).await;
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{mode:?} authenticate"
            );
            assert!(retry.is_some(), "{mode:?}: 503 without Retry-After");
        }
        println!(
            "{backend:?} {mode:?}: three requests answered 503 in {:?}",
            started.elapsed()
        );

        proxy.set_mode(ProxyMode::Forward);
        let started = Instant::now();
        loop {
            match whoami(&base, &before[0]).await.0 {
                StatusCode::OK => break,
                StatusCode::SERVICE_UNAVAILABLE => {}
                s => panic!("{mode:?}: {s} while recovering"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "no recovery without a restart"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "{backend:?} {mode:?}: serving again {:?} after the store came back",
            started.elapsed()
        );
        assert_eq!(whoami(&base, &before[1]).await.0, StatusCode::OK);
    }
    // Nothing was created by the failed logins; a login now works.
    assert_eq!(
        backend.sessions(&url, &ns).await,
        2,
        "the outage created nothing"
    );
    let after = bearer(&base, &setup.token("after")).await;
    assert_eq!(whoami(&base, &after).await.0, StatusCode::OK);
    assert_eq!(backend.sessions(&url, &ns).await, 3);
    assert!(
        !server.log_text().contains("panicked"),
        "{}",
        server.log_text()
    );
    drop(server);
    backend.cleanup(&url, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_answers_503_and_recovers() {
    // Refused: the first request fails at once, later ones within the 2 s command timeout
    // while the connection retries; a black hole always takes the timeout.
    outage_and_recovery(Backend::Redis, &[ProxyMode::Refuse, ProxyMode::Blackhole]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_answers_503_and_recovers() {
    // A black hole would take the 5 s query timeout per request; the Postgres crate's own
    // fault tests cover it.
    outage_and_recovery(Backend::Postgres, &[ProxyMode::Refuse]).await;
}

/// SIGKILL after several logins: restarted on the same file, every unexpired bearer works
/// (every write is durable before the login answers), and a revocation stays revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_survives_kill_9() {
    let setup = Setup::new(
        "kill9",
        "session_store:\n  type: embedded\n  path: sessions.redb\n",
    )
    .await;
    let mut server = setup.server().await;
    let mut bearers = Vec::new();
    for i in 0..6 {
        bearers.push(bearer(&server.base, &setup.token(&format!("svc-{i}"))).await);
    }
    let revoked = bearers.pop().unwrap();
    assert_eq!(
        crate::multi::revoke(&server.base, &revoked).await,
        StatusCode::NO_CONTENT
    );
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    assert!(setup.dir.path().join("sessions.redb").exists());

    let server = setup.server().await;
    for b in &bearers {
        assert_eq!(whoami(&server.base, b).await.0, StatusCode::OK);
    }
    assert_eq!(
        whoami(&server.base, &revoked).await.0,
        StatusCode::UNAUTHORIZED
    );
    // And it keeps working after the crash.
    let fresh = bearer(&server.base, &setup.token("svc-new")).await;
    assert_eq!(whoami(&server.base, &fresh).await.0, StatusCode::OK);
    // The embedded store counts its sessions for `/metrics`: the five that survived the crash
    // and the fresh one.
    let metrics = crate::probe::Metrics::fetch(&reqwest::Client::new(), &server.base).await;
    assert_eq!(metrics.active_sessions(), 6, "{}", metrics.0);
}
