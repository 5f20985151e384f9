//! `keygen`, `mint`, `inspect`, `verify`, `login` and `git-credential`.

use std::time::{Duration, Instant};

use jwt_exchange_testkit::JwksServer;
use serde_json::Value;

use crate::common::{config_yaml, run, ServerProcess, TempDir, BIN};

const ISS: &str = "https://idp.tools.test/";

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// keygen → JWKS served → mint → verify (accepted), then a wrong audience (refused, explained).
/// (Multi-threaded: the test blocks on child processes while the JWKS server answers them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_mint_verify_round_trip() {
    let dir = TempDir::new("tools");
    let keys = dir.path().join("keys");
    for (alg, kid) in [("RS256", "r1"), ("ES256", "e1"), ("EdDSA", "d1")] {
        let out = run(
            &[
                "keygen",
                "--alg",
                alg,
                "--kid",
                kid,
                "--out",
                keys.to_str().unwrap(),
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keys.join("r1.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let set: Value =
        serde_json::from_str(&std::fs::read_to_string(keys.join("jwks.json")).unwrap()).unwrap();
    assert_eq!(
        set["keys"].as_array().unwrap().len(),
        3,
        "keygen accumulates keys in jwks.json"
    );
    // An existing key is not replaced without --force (its tokens would stop verifying).
    let keygen = |kid: &str, extra: &[&str]| {
        let mut args = vec!["keygen", "--alg", "ES256", "--kid", kid, "--out"];
        args.push(keys.to_str().unwrap());
        args.extend_from_slice(extra);
        run(&args, None)
    };
    let pem = std::fs::read(keys.join("e1.pem")).unwrap();
    let again = keygen("e1", &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(
        std::fs::read(keys.join("e1.pem")).unwrap(),
        pem,
        "untouched"
    );
    let forced = keygen("e1", &["--force"]);
    assert!(forced.status.success());
    assert_ne!(std::fs::read(keys.join("e1.pem")).unwrap(), pem, "replaced");
    let set: Value =
        serde_json::from_str(&std::fs::read_to_string(keys.join("jwks.json")).unwrap()).unwrap();
    assert_eq!(
        set["keys"].as_array().unwrap().len(),
        3,
        "e1's entry replaced"
    );
    // A JWKS that cannot be read is never replaced by one holding only the new key.
    let unreadable = dir.path().join("unreadable");
    std::fs::create_dir_all(unreadable.join("jwks.json")).unwrap();
    let out = run(
        &[
            "keygen",
            "--alg",
            "ES256",
            "--kid",
            "x1",
            "--out",
            unreadable.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!unreadable.join("x1.pem").exists(), "nothing written");
    let idp = JwksServer::start(set).await;
    let cfg = dir.write("config.yaml", &config_yaml(ISS, &idp.jwks_url(), "", ""));

    for kid in ["r1", "e1", "d1"] {
        let pem = keys.join(format!("{kid}.pem"));
        let minted = run(
            &[
                "mint",
                "--key",
                pem.to_str().unwrap(),
                "--kid",
                kid,
                "--iss",
                ISS,
                "--aud",
                "api://lakefs",
                "--sub",
                "svc",
                "--claim",
                "oid=svc-oid",
                "--claim",
                r#"roles=["readers","x"]"#,
                "--exp",
                "+10m",
            ],
            None,
        );
        assert!(
            minted.status.success(),
            "{}",
            String::from_utf8_lossy(&minted.stderr)
        );
        let token = stdout(&minted).trim().to_owned();
        let verified = run(
            &["verify", "--config", cfg.to_str().unwrap(), "-"],
            Some(&token),
        );
        let text = stdout(&verified);
        assert!(
            verified.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&verified.stderr)
        );
        assert!(text.contains("ACCEPTED"), "{text}");
        assert!(text.contains(&format!("jwt:{ISS}:svc-oid")), "{text}");
        assert!(text.contains("ReadAll"), "{text}");
    }

    let pem = keys.join("r1.pem");
    let wrong_aud = run(
        &[
            "mint",
            "--key",
            pem.to_str().unwrap(),
            "--kid",
            "r1",
            "--iss",
            ISS,
            "--aud",
            "api://other",
            "--sub",
            "svc",
            "--claim",
            "oid=o",
        ],
        None,
    );
    let token = stdout(&wrong_aud).trim().to_owned();
    let verified = run(&["verify", "--config", cfg.to_str().unwrap(), &token], None);
    assert_eq!(verified.status.code(), Some(1));
    let text = stdout(&verified);
    assert!(
        text.contains("REFUSED") && text.contains("failed check: aud"),
        "{text}"
    );
}

#[test]
fn inspect_marks_unverified_and_hides_the_signature() {
    let dir = TempDir::new("inspect");
    let keys = dir.path().join("k");
    assert!(run(
        &[
            "keygen",
            "--alg",
            "ES256",
            "--kid",
            "k",
            "--out",
            keys.to_str().unwrap()
        ],
        None
    )
    .status
    .success());
    let pem = keys.join("k.pem");
    let token = stdout(&run(
        &[
            "mint",
            "--key",
            pem.to_str().unwrap(),
            "--kid",
            "k",
            "--iss",
            ISS,
            "--sub",
            "me",
            "--exp",
            "+2h",
        ],
        None,
    ))
    .trim()
    .to_owned();
    let out = run(&["inspect"], Some(&token));
    let text = stdout(&out);
    assert!(out.status.success());
    assert!(text.starts_with("UNVERIFIED"), "{text}");
    assert!(
        text.contains("\"iss\": \"https://idp.tools.test/\""),
        "{text}"
    );
    assert!(
        text.contains("exp: ") && text.contains("in 1h 59m") || text.contains("in 2h"),
        "{text}"
    );
    let sig = token.rsplit('.').next().unwrap();
    assert!(!text.contains(sig), "the signature is not printed");
    let bad = run(&["inspect", "a.b"], None);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn git_credential_helper_prints_the_bearer_as_password() {
    let dir = TempDir::new("gitcred");
    let f = dir.write("bearer", "b1.b2.b3\n");
    let out = run(
        &[
            "git-credential",
            "--bearer-file",
            f.to_str().unwrap(),
            "get",
        ],
        Some("protocol=https\nhost=lakefs.example.com\n\n"),
    );
    assert!(out.status.success());
    assert_eq!(stdout(&out), "username=_jwt\npassword=b1.b2.b3\n");
    // Not in clear text, and only to the named host: no credential, and git asks elsewhere.
    for (request, extra) in [
        ("protocol=http\nhost=lakefs.example.com\n\n", None),
        (
            "protocol=https\nhost=evil.example\n\n",
            Some("lakefs.example.com"),
        ),
    ] {
        let mut args = vec!["git-credential", "--bearer-file", f.to_str().unwrap()];
        if let Some(h) = extra {
            args.extend(["--host", h]);
        }
        args.push("get");
        let out = run(&args, Some(request));
        assert!(out.status.success(), "{request}");
        assert_eq!(stdout(&out), "", "{request}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("no credential given"));
    }
    let out = run(
        &[
            "git-credential",
            "--bearer-file",
            f.to_str().unwrap(),
            "store",
        ],
        Some("x=y\n"),
    );
    assert!(out.status.success());
    assert_eq!(stdout(&out), "");
}

/// `login --watch` keeps a bearer file fresh against a 3-second session TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_watch_refreshes_before_expiry() {
    let key = jwt_exchange_testkit::TestKey::generate(jwt_exchange::Algorithm::ES256, "k1");
    let idp = JwksServer::start(jwt_exchange_testkit::jwks(&[&key])).await;
    let dir = TempDir::new("watch");
    let cfg = dir.write(
        "config.yaml",
        &config_yaml(ISS, &idp.jwks_url(), "      session_max_ttl: 3s", ""),
    );
    let server = ServerProcess::start(&cfg, dir.path()).await;
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token = key.mint(&serde_json::json!({"iss": ISS, "aud": "api://lakefs", "oid": "w", "iat": n, "exp": n + 600}));
    let token_file = dir.write("token", &token);
    let out = dir.path().join("bearer");

    // One-shot first.
    let once = run(
        &[
            "login",
            "--url",
            &server.base,
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    assert_eq!(stdout(&once).trim().split('.').count(), 3);

    let mut child = std::process::Command::new(BIN)
        .args([
            "login",
            "--url",
            &server.base,
            "--token-file",
            token_file.to_str().unwrap(),
        ])
        .args([
            "--out",
            out.to_str().unwrap(),
            "--watch",
            "--refresh-before",
            "2s",
            "--poll-interval",
            "100ms",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 3 && Instant::now() < deadline {
        if let Ok(b) = std::fs::read_to_string(&out) {
            seen.insert(b);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.len() >= 3,
        "bearer refreshed at least twice, saw {}",
        seen.len()
    );
    // The latest bearer works.
    let latest = std::fs::read_to_string(&out).unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}/auth/session", server.base))
        .bearer_auth(latest.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `login --watch` never exchanges in a tight loop: with `--refresh-before` longer than the
/// session (3 s here, 5 min asked) it renews at half the bearer's life, and a token whose
/// sessions all end at its own `exp` is exchanged again only once its file changes. Counted
/// from the server's login counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_watch_never_spins() {
    let key = jwt_exchange_testkit::TestKey::generate(jwt_exchange::Algorithm::ES256, "k1");
    let idp = JwksServer::start(jwt_exchange_testkit::jwks(&[&key])).await;
    let dir = TempDir::new("nospin");
    let cfg = dir.write(
        "config.yaml",
        &config_yaml(ISS, &idp.jwks_url(), "      session_max_ttl: 3s", ""),
    );
    let server = ServerProcess::start(&cfg, dir.path()).await;
    let logins = || async {
        let text = reqwest::get(format!("{}/metrics", server.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(r#"jwtx_logins_total{outcome="success",check=""} "#))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let watch = |token: &str, name: &str| {
        let token_file = dir.write(name, token);
        std::process::Command::new(BIN)
            .args(["login", "--url", &server.base, "--token-file"])
            .arg(token_file)
            .arg("--out")
            .arg(dir.path().join(format!("{name}.bearer")))
            .args([
                "--watch",
                "--refresh-before",
                "5m",
                "--poll-interval",
                "100ms",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // Sessions of 3 s, renewed every 1.5 s: about 3 logins in 4 s (a spinning loop: thousands).
    let claims = |exp: i64| serde_json::json!({"iss": ISS, "aud": "api://lakefs", "oid": "w", "iat": exp - 600, "exp": exp});
    let mut child = watch(&key.mint(&claims(n + 600)), "long");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let _ = child.kill();
    let _ = child.wait();
    let long = logins().await;
    assert!((2..=5).contains(&long), "{long} logins in 4 s");
    // A token expiring in 3 s caps its session at its `exp`: one renewal at half-life brings
    // the same expiry back, and then nothing until the file changes.
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut child = watch(&key.mint(&claims(n + 3)), "short");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let _ = child.kill();
    let _ = child.wait();
    let short = logins().await - long;
    assert!(
        (1..=2).contains(&short),
        "{short} logins of a token about to expire"
    );
}

/// `login --watch` re-exchanges as soon as the token file changes (a rotated projected token),
/// long before the bearer's own refresh time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_watch_follows_a_rotated_token_file() {
    let key = jwt_exchange_testkit::TestKey::generate(jwt_exchange::Algorithm::ES256, "k1");
    let idp = JwksServer::start(jwt_exchange_testkit::jwks(&[&key])).await;
    let dir = TempDir::new("rotate");
    let cfg = dir.write("config.yaml", &config_yaml(ISS, &idp.jwks_url(), "", ""));
    let server = ServerProcess::start(&cfg, dir.path()).await;
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mint = |oid: &str| {
        key.mint(&serde_json::json!({"iss": ISS, "aud": "api://lakefs", "oid": oid, "iat": n, "exp": n + 3600}))
    };
    let token_file = dir.write("token", &mint("first"));
    let out = dir.path().join("bearer");
    let mut child = std::process::Command::new(BIN)
        .args([
            "login",
            "--url",
            &server.base,
            "--token-file",
            token_file.to_str().unwrap(),
        ])
        .args([
            "--out",
            out.to_str().unwrap(),
            "--watch",
            "--poll-interval",
            "100ms",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let who = |bearer: String| {
        let base = server.base.clone();
        async move {
            let r = reqwest::Client::new()
                .get(format!("{base}/auth/session"))
                .bearer_auth(bearer.trim())
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()["identity"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let wait_for = |identity: &'static str| {
        let out = out.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(b) = std::fs::read_to_string(&out) {
                    if who(b).await == identity {
                        return true;
                    }
                }
                if Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let first = wait_for("first").await;
    std::fs::write(&token_file, mint("second")).unwrap();
    let second = wait_for("second").await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(first, "initial exchange");
    assert!(second, "re-exchanged after the token file changed");
}
