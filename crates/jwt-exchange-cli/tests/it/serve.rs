//! `jwt-exchange serve` over a real socket, with a loopback JWKS server.

use std::time::{Duration, Instant};

use jwt_exchange::Algorithm;
use jwt_exchange_testkit::{jwks, Behavior, JwksServer, TestKey};
use serde_json::{json, Value};

use crate::common::{config_yaml, free_port, run, ServerProcess, TempDir};

const ISS: &str = "https://idp.e2e.test/";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(oid: &str, roles: &[&str]) -> Value {
    let n = now();
    json!({"iss": ISS, "aud": "api://lakefs", "oid": oid, "roles": roles, "iat": n, "nbf": n, "exp": n + 3600})
}

async fn login(base: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/auth/jwt/login"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_whoami_forward_auth_revoke_and_metrics() {
    let key = TestKey::generate(Algorithm::RS256, "k1");
    let idp = JwksServer::start(jwks(&[&key])).await;
    let dir = TempDir::new("serve");
    let cfg = dir.write("config.yaml", &config_yaml(ISS, &idp.jwks_url(), "", ""));
    let mut server = ServerProcess::start(&cfg, dir.path()).await;
    let base = server.base.clone();
    let http = reqwest::Client::new();

    let token = key.mint(&claims("svc-1", &["readers"]));
    let (status, body) = login(&base, &token).await;
    assert_eq!(status, 200, "{body}");
    let bearer = body["token"].as_str().unwrap().to_owned();
    assert!(body["token_expiration"].as_i64().unwrap() > now());

    let who: Value = http
        .get(format!("{base}/auth/session"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["subject"], format!("jwt:{ISS}:svc-1"));

    let allowed = http
        .get(format!(
            "{base}/auth/check?action=fs:ReadObject&resource=repo/x"
        ))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 204);
    assert_eq!(
        allowed.headers()["x-auth-subject"],
        format!("jwt:{ISS}:svc-1").as_str()
    );
    let denied = http
        .get(format!(
            "{base}/auth/check?action=fs:DeleteObject&resource=repo/x"
        ))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);

    // A forged token: 401.
    let forger = TestKey::generate(Algorithm::RS256, "k1");
    assert_eq!(
        login(&base, &forger.mint(&claims("svc-1", &["readers"])))
            .await
            .0,
        401
    );

    // Revoke and the bearer is refused at once.
    let r = http
        .delete(format!("{base}/auth/session"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .get(format!("{base}/auth/session"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A path no route declares (carrying a secret someone pasted into a URL): 404, counted
    // under `route="unmatched"`, and the path is not a label.
    let pasted = format!("{base}/auth/jwt/{bearer}");
    assert_eq!(http.get(&pasted).send().await.unwrap().status(), 404);

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("jwtx_logins_total{outcome=\"success\",check=\"\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("jwtx_logins_total{outcome=\"failure\",check=\"signature\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "jwtx_jwks_fetches_total{{issuer=\"{ISS}\",result=\"success\"}}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("jwtx_authorization_decisions_total{decision=\"allow\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("jwtx_authorization_decisions_total{decision=\"no_match\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("jwtx_sessions_revoked_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("jwtx_active_sessions 0"), "{metrics}");
    // Request durations per declared route: both logins, both checks, the two reads of the
    // session and the logout; the rest under one series; never a path as a label.
    let duration = "jwtx_http_request_duration_seconds";
    for (method, route, n) in [
        ("POST", "/auth/jwt/login", 2),
        ("GET", "/auth/check", 2),
        ("GET", "/auth/session", 2),
        ("DELETE", "/auth/session", 1),
        ("", "unmatched", 1),
    ] {
        let labels = format!("method=\"{method}\",route=\"{route}\"");
        for line in [
            format!("{duration}_count{{{labels}}} {n}"),
            format!("{duration}_bucket{{{labels},le=\"+Inf\"}} {n}"),
        ] {
            assert!(metrics.contains(&line), "{line} in {metrics}");
        }
    }
    assert!(metrics.contains(&format!("# TYPE {duration} histogram")));
    assert!(!metrics.contains(&bearer), "{metrics}");

    // Graceful shutdown on SIGTERM, and no token in the (TRACE-level) log.
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let log = server.log_text();
    assert!(
        log.contains("jwt_exchange::audit"),
        "audit events are logged"
    );
    for secret in [&token, &bearer] {
        for seg in secret.split('.') {
            assert!(
                !log.contains(seg),
                "a token segment leaked into the server log"
            );
        }
    }
}

#[tokio::test]
async fn readyz_follows_the_keys_and_501_without_provider() {
    let key = TestKey::generate(Algorithm::ES256, "k1");
    let idp = JwksServer::start(jwks(&[&key])).await;
    idp.set_behavior(Behavior::Status(500));
    let dir = TempDir::new("ready");
    let cfg = dir.write("config.yaml", &config_yaml(ISS, &idp.jwks_url(), "", ""));
    let server = ServerProcess::start(&cfg, dir.path()).await;
    let ready = || async {
        reqwest::get(format!("{}/readyz", server.base))
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ready().await, 503, "keys not loaded yet");
    idp.set_behavior(Behavior::Serve);
    // The background refresh retries with back-off starting at the 1 s cool-down.
    let deadline = Instant::now() + Duration::from_secs(15);
    while ready().await != 200 {
        assert!(Instant::now() < deadline, "never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // With two providers, one IdP down degrades the instance but keeps it in service; both down
    // takes it out.
    let other_key = TestKey::generate(Algorithm::ES256, "k2");
    let other = JwksServer::start(jwks(&[&other_key])).await;
    other.set_behavior(Behavior::Status(500));
    let dir = TempDir::new("ready-two");
    let yaml = format!(
        "auth:\n  providers:\n    jwt:\n\
         \x20     - issuer: {ISS}\n        jwks_url: {}\n        audiences: [api://lakefs]\n\
         \x20     - issuer: https://other.e2e.test/\n        jwks_url: {}\n        audiences: [api://lakefs]\n\
         session_store:\n  type: memory\n\
         bearer:\n  secrets:\n    - kid: k\n      secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",
        idp.jwks_url(),
        other.jwks_url()
    );
    let cfg = dir.write("config.yaml", &yaml);
    let two = ServerProcess::start(&cfg, dir.path()).await;
    let answer = || async {
        let r = reqwest::get(format!("{}/readyz", two.base)).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let (status, body) = loop {
        let a = answer().await;
        if a.0 == 200 || Instant::now() > deadline {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("degraded") && body.contains("https://other.e2e.test/"),
        "{body}"
    );
    assert_eq!(login(&two.base, &key.mint(&claims("a", &[]))).await.0, 200);
    idp.set_behavior(Behavior::Status(500));
    drop(two);
    let both_down = ServerProcess::start(&cfg, dir.path()).await;
    let r = reqwest::get(format!("{}/readyz", both_down.base))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);

    let dir = TempDir::new("noprov");
    let cfg = dir.write(
        "config.yaml",
        "session_store:\n  type: memory\nbearer:\n  secrets:\n    - kid: k\n      secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",
    );
    let server = ServerProcess::start(&cfg, dir.path()).await;
    assert_eq!(login(&server.base, "a.b.c").await.0, 501);
}

#[test]
fn bad_configuration_exits_2_naming_the_key() {
    let dir = TempDir::new("badcfg");
    let cases = [
        ("auth:\n  providers:\n    jwt:\n      issuer: i\n      jwks_url: https://i/k\n      audience: x\n", "auth.providers.jwt"),
        ("auth:\n  providers:\n    jwt:\n      issuer: i\n      jwks_url: https://i/k\n      algorithms: [HS256]\n", "algorithms"),
        ("auth:\n  providers:\n    jwt:\n      issuer: i\n      jwks_url: https://i/k\n      leeway: soon\n", "leeway"),
        ("auth:\n  providers:\n    jwt:\n      issuer: i\n      jwks_url: http://idp.example/k\n", "auth.providers.jwt.jwks_url"),
        ("listen_adress: 1\n", "listen_adress"),
        ("session_store:\n  type: redis\n", "session_store.url"),
        ("auth:\n  groups:\n    g: [Missing]\n", "auth.groups.g"),
        ("bearer:\n  secrets:\n    - kid: k\n      secret: c2hvcnQ\n", "bearer.secrets[0].secret"),
        ("server:\n  threads: 0\n", "server.threads"),
        ("session_store:\n  type: postgres\n  url: postgres://h/db\n  insecure_allow_eviction: true\n", "session_store.insecure_allow_eviction"),
        ("session_store:\n  type: postgres\n  url: postgres://h/db\n  namespace: My-Schema\n", "session_store.namespace"),
        ("session_store:\n  type: redis\n  url: redis://h\n  namespace: \"a b\"\n", "session_store.namespace"),
        ("server:\n  threads: 100000\n", "server.threads"),
    ];
    for (i, (yaml, key)) in cases.iter().enumerate() {
        let cfg = dir.write(&format!("c{i}.yaml"), yaml);
        let out = run(&["serve", "--config", cfg.to_str().unwrap()], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {i}: {err}");
        assert!(
            err.contains(key),
            "case {i}: message should name `{key}`: {err}"
        );
        assert_eq!(
            err.trim()
                .lines()
                .filter(|l| l.starts_with("error"))
                .count(),
            1,
            "one clear message: {err}"
        );
    }
    let toml = dir.write(
        "c.toml",
        "[auth.providers.jwt]\nissuer = \"i\"\njwks_url = \"https://i/k\"\nbogus = 1\n",
    );
    let out = run(&["serve", "--config", toml.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
    let txt = dir.write("c.txt", "");
    assert_eq!(
        run(&["serve", "--config", txt.to_str().unwrap()], None)
            .status
            .code(),
        Some(2)
    );
}

/// `serve --check` checks what `serve` would refuse at start-up: a `--listen` that is not an
/// address, and a bearer secret file that exists but is malformed (a missing one is fine:
/// `serve` generates it, `--check` writes nothing).
#[test]
fn check_refuses_a_bad_listen_flag_and_a_malformed_secret_file() {
    let dir = TempDir::new("checkflags");
    let cfg = dir.write("ok.yaml", "bearer:\n  secret_file: bearer.secret\n");
    let check = |extra: &[&str]| {
        let mut args = vec!["serve", "--config", cfg.to_str().unwrap(), "--check"];
        args.extend_from_slice(extra);
        run(&args, None)
    };
    let out = check(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.path().join("bearer.secret").exists(),
        "--check writes nothing"
    );
    for listen in ["bogus", "127.0.0.1", "localhost:99999", ""] {
        let out = check(&["--listen", listen]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{listen:?}: {err}");
        assert!(err.contains("--listen"), "{err}");
    }
    // Without --check too: a configuration error, before anything is connected.
    let out = run(
        &[
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--listen",
            "bogus",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    dir.write("bearer.secret", "k1 not-base64url!\n");
    let out = check(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bearer.secret") && err.contains("line 1"),
        "{err}"
    );
}

/// `server.ops_listen_address` moves `/healthz`, `/readyz` and `/metrics` off the API's
/// listener (whose refusal counters would otherwise tell any client why its token was refused),
/// and the API's routes are not on the ops listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics_can_be_served_apart_from_the_api() {
    let key = TestKey::generate(Algorithm::ES256, "k1");
    let idp = JwksServer::start(jwks(&[&key])).await;
    let dir = TempDir::new("ops");
    let ops_port = free_port();
    let cfg = dir.write(
        "config.yaml",
        &config_yaml(
            ISS,
            &idp.jwks_url(),
            "",
            &format!("server:\n  ops_listen_address: 127.0.0.1:{ops_port}\n"),
        ),
    );
    let server = ServerProcess::spawn(&cfg, dir.path());
    let ops = format!("http://127.0.0.1:{ops_port}");
    let status =
        |url: String| async move { reqwest::get(url).await.map(|r| r.status().as_u16()).ok() };
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(format!("{ops}/readyz")).await != Some(200) {
        assert!(
            Instant::now() < deadline,
            "not ready: {}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        login(&server.base, &key.mint(&claims("a", &[]))).await.0,
        200
    );
    assert_eq!(login(&server.base, "a.b.c").await.0, 401);
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            status(format!("{}{path}", server.base)).await,
            Some(404),
            "{path}"
        );
        assert_eq!(status(format!("{ops}{path}")).await, Some(200), "{path}");
    }
    assert_eq!(status(format!("{ops}/auth/session")).await, Some(404));
    let metrics = reqwest::get(format!("{ops}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"jwtx_logins_total{outcome="success",check=""} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="/auth/jwt/login""#),
        "the API's durations are still counted: {metrics}"
    );
    assert!(server.log_text().contains("probes and metrics listening"));

    // Draining: a login whose body is still coming keeps the API busy after SIGTERM; the ops
    // listener, still up, says 503 so that a load balancer probing it stops sending traffic.
    let api = server.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(api).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut slow,
        b"POST /auth/jwt/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"to",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log_text().contains("shutdown signal received") {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = reqwest::get(format!("{ops}/readyz")).await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.text().await.unwrap().contains("shutting down"));
    assert_eq!(status(format!("{ops}/healthz")).await, Some(200), "alive");
    drop(slow);
}

#[tokio::test]
async fn a_missing_bearer_secret_file_is_generated_with_0600() {
    let key = TestKey::generate(Algorithm::EdDSA, "k1");
    let idp = JwksServer::start(jwks(&[&key])).await;
    let dir = TempDir::new("secret");
    let yaml = config_yaml(ISS, &idp.jwks_url(), "", "")
        .replace("  secrets:\n    - kid: test-1\n      secret: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n", "  secret_file: bearer.secret\n");
    let cfg = dir.write("config.yaml", &yaml);
    let server = ServerProcess::start(&cfg, dir.path()).await;
    let secret = dir.path().join("bearer.secret");
    assert!(secret.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(server.log_text().contains("generated a new signing secret"));
    assert_eq!(
        login(&server.base, &key.mint(&claims("a", &[]))).await.0,
        200
    );
}

#[test]
fn demo_exits_zero() {
    let out = run(&["demo"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("every step behaved as expected"));
    assert!(stdout.contains("curl "));
    assert!(!stdout.contains("eyJ"), "the demo prints no token");
}

#[test]
fn the_example_configurations_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let out = run(
            &["serve", "--config", path.to_str().unwrap(), "--check"],
            None,
        );
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));
        seen += 1;
    }
    assert!(seen >= 3, "entra, auth0 and multi-tenant examples");
    assert!(
        !dir.join("jwt-exchange-bearer.secret").exists(),
        "--check writes nothing"
    );
}

/// Slow clients cannot hold connections: unfinished headers are cut after
/// `server.header_read_timeout`, an unfinished body answers 408 after `server.request_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let key = TestKey::generate(Algorithm::ES256, "k1");
    let idp = JwksServer::start(jwks(&[&key])).await;
    let dir = TempDir::new("slow");
    let cfg = dir.write(
        "config.yaml",
        &config_yaml(
            ISS,
            &idp.jwks_url(),
            "",
            "server:\n  header_read_timeout: 1s\n  request_timeout: 1s",
        ),
    );
    let server = ServerProcess::start(&cfg, dir.path()).await;
    let addr = server.base.trim_start_matches("http://").to_owned();

    let started = Instant::now();
    let mut slow_headers = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow_headers
        .write_all(b"POST /auth/jwt/login HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(8), slow_headers.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the connection with unfinished headers was closed"
    );
    assert!(started.elapsed() < Duration::from_secs(8));

    let started = Instant::now();
    let mut slow_body = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow_body
        .write_all(b"POST /auth/jwt/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"token\":")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(8), slow_body.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(8));

    // Normal clients are unaffected.
    assert_eq!(
        login(&server.base, &key.mint(&claims("ok", &[]))).await.0,
        200
    );
}

/// `server.threads` HTTP threads serve concurrent connections, share one `server.max_connections`
/// cap, and all stop on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_threads_balance_share_the_connection_cap_and_stop() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let key = TestKey::generate(Algorithm::ES256, "k1");
    let idp = JwksServer::start(jwks(&[&key])).await;
    let dir = TempDir::new("threads");
    let cfg = dir.write(
        "config.yaml",
        &config_yaml(ISS, &idp.jwks_url(), "", "server:\n  threads: 3"),
    );
    let mut server = ServerProcess::start(&cfg, dir.path()).await;
    assert!(
        server.log_text().contains("threads=3"),
        "{}",
        server.log_text()
    );
    // 24 logins at once, each on its own connection.
    let logins = (0..24).map(|i| {
        let (base, token) = (
            server.base.clone(),
            key.mint(&claims(&format!("u{i}"), &[])),
        );
        tokio::spawn(async move { login(&base, &token).await.0 })
    });
    for l in logins.collect::<Vec<_>>() {
        assert_eq!(l.await.unwrap(), 200);
    }
    assert!(server.terminate().success(), "{}", server.log_text());

    // A request in flight when SIGTERM arrives is still answered.
    let mut server = ServerProcess::start(&cfg, dir.path()).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let body = json!({ "token": key.mint(&claims("late", &[])) }).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(
        format!(
            "POST /auth/jwt/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(server.terminate().success(), "{}", server.log_text());
    let handed = |log: &str, thread: usize| {
        log.lines()
            .filter(|l| l.contains("connection handed to an HTTP thread"))
            .filter(|l| l.contains(&format!("thread={thread} ")))
            .count()
    };

    // Each new connection goes to the thread serving the fewest: six connections held open
    // one after another land two on each of the three threads.
    let server = ServerProcess::start(&cfg, dir.path()).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let before: Vec<usize> = (0..3).map(|t| handed(&server.log_text(), t)).collect();
    let mut open = Vec::new();
    let mut buf = [0u8; 512];
    for _ in 0..6 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(request).await.unwrap();
        let n = c.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        open.push(c);
    }
    let log = server.log_text();
    for (t, b) in before.iter().enumerate() {
        assert_eq!(handed(&log, t) - b, 2, "thread {t}: {log}");
    }
    drop(open);

    // One connection at most, across three threads: a second connection is not served while
    // the first is open, and is served once it closes.
    let cfg = dir.write(
        "capped.yaml",
        &config_yaml(
            ISS,
            &idp.jwks_url(),
            "",
            "server:\n  threads: 3\n  max_connections: 1",
        ),
    );
    let server = ServerProcess::start(&cfg, dir.path()).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    first.write_all(request).await.unwrap();
    let mut buf = [0u8; 512];
    let n = first.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let mut second = tokio::net::TcpStream::connect(&addr).await.unwrap();
    second.write_all(request).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(500), second.read(&mut buf)).await;
    assert!(waited.is_err(), "served past the connection cap");
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(10), second.read(&mut buf))
        .await
        .expect("served once the first connection closed")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
}
