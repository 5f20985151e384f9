//! `POST /auth/jwt/login`: the answer, one 401 for every refusal, 400 / 413 / 415 / 501, and
//! outages (503 + `Retry-After`, 500).

use super::*;

#[tokio::test]
async fn login_returns_a_bearer_that_authenticates() {
    let api = Api::start().await;
    let r = api
        .send(login_req(&external(&api.idp, "alice", &["readers"])))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    assert_eq!(v["token_expiration"], NOW + 3600);
    let bearer = v["token"].as_str().unwrap();

    let who = api.who(bearer).await;
    assert_eq!(who.status, StatusCode::OK);
    assert_eq!(who.header("cache-control"), Some("no-store"));
    let w = who.json();
    assert_eq!(w["subject"], subject("alice"));
    assert_eq!(w["principal_type"], "session");
    assert_eq!(w["identity"], "alice");
    assert_eq!(w["issuer"], ISS);
    assert_eq!(w["groups"], json!(["readers"]));
    assert_eq!(w["policies"], json!(["ReadPublic"]));
    assert_eq!(w["created_at"], NOW);
    assert_eq!(w["expires_at"], NOW + 3600);
    let sid = w["session_id"].as_str().unwrap();
    assert!(SessionId::parse(sid).is_ok());
    // A charset parameter and a `+json` type are fine.
    let r = api
        .send(
            req(Method::POST, LOGIN, None)
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .body(Body::from(
                    json!({"token": external(&api.idp, "alice", &[])}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

/// Tokens refused for many different reasons (by a provider pinning `tid` = `tenant-a`), and
/// one valid control token first.
fn refusal_cases(idp: &Idp) -> Vec<(&'static str, String)> {
    let base = || {
        let mut c = claims();
        c["tid"] = json!("tenant-a");
        c
    };
    let with = |k: &str, v: Value| {
        let mut c = base();
        c[k] = v;
        c
    };
    let stranger = TestKey::generate(Algorithm::RS256, "rsa-1"); // same kid, other key
    let unknown = TestKey::generate(Algorithm::RS256, "no-such-kid");
    let payload = base().to_string();
    vec![
        ("valid control", idp.rsa.mint(&base())),
        ("expired", idp.rsa.mint(&with("exp", json!(NOW - 3600)))),
        ("bad signature", stranger.mint(&base())),
        (
            "wrong aud",
            idp.rsa.mint(&with("aud", json!("api://other"))),
        ),
        ("unknown kid", unknown.mint(&base())),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(r#"{"alg":"none","typ":"JWT"}"#),
                b64(&payload)
            ),
        ),
        (
            "alg none with a signature",
            format!(
                "{}.{}.{}",
                b64(r#"{"alg":"none","kid":"rsa-1"}"#),
                b64(&payload),
                b64("sig")
            ),
        ),
        (
            "HS256 with the public key",
            idp.rsa.sign_raw(
                Algorithm::RS256,
                r#"{"alg":"HS256","kid":"rsa-1"}"#,
                &payload,
            ),
        ),
        ("malformed", "not-a-jwt".to_owned()),
        ("malformed segments", "a.b.c.d.e".to_owned()),
        (
            "wrong issuer",
            idp.rsa.mint(&with("iss", json!("https://evil.example/"))),
        ),
        (
            "required claim mismatch",
            idp.rsa.mint(&with("tid", json!("tenant-b"))),
        ),
        (
            "not yet valid",
            idp.rsa.mint(&with("nbf", json!(NOW + 3600))),
        ),
        ("too large", "a".repeat(20_000)),
        ("empty", String::new()),
    ]
}

/// Eight and more different reasons, one answer.
#[tokio::test]
async fn every_refused_login_gets_the_same_401() {
    let idp = Idp::start().await;
    let ex = exchange_with(
        &idp,
        idp.provider().with_required_claim("tid", "tenant-a"),
        None,
    );
    let app = jwt_exchange::axum::router(ex.clone());
    let cases = refusal_cases(&idp);
    let mut first: Option<Res> = None;
    for (why, token) in &cases {
        let r = send(&app, login_req(token)).await;
        if *why == "valid control" {
            assert_eq!(r.status, StatusCode::OK, "{why}");
            continue;
        }
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{why}: {}", r.text());
        assert_eq!(r.text(), INVALID_TOKEN_BODY, "{why}");
        assert_eq!(
            r.all("www-authenticate"),
            [r#"Bearer realm="jwt-exchange", error="invalid_token""#],
            "{why}"
        );
        assert_eq!(r.header("cache-control"), Some("no-store"), "{why}");
        if let Some(f) = &first {
            assert_eq!(f.body, r.body, "{why}");
            assert_eq!(f.headers, r.headers, "{why}: identical headers too");
        }
        first = Some(r);
    }
    // The reasons were told apart where they belong: the metrics (and the audit log).
    let failed = ex.metrics().logins_failed;
    for check in [
        "exp",
        "signature",
        "aud",
        "kid",
        "alg",
        "format",
        "iss",
        "required_claims",
        "nbf",
        "size",
    ] {
        assert!(failed.contains_key(check), "{check} in {failed:?}");
    }
}

#[tokio::test]
async fn a_rejected_login_never_contains_the_submitted_token() {
    let api = Api::start().await;
    let stranger = TestKey::generate(Algorithm::ES256, "ec-1");
    let mut expired = claims();
    expired["exp"] = json!(NOW - 3600);
    let tokens = [
        stranger.mint(&claims()),
        api.idp.rsa.mint(&expired),
        format!(
            "{}.{}.",
            b64(r#"{"alg":"none"}"#),
            b64(claims().to_string())
        ),
    ];
    for token in &tokens {
        let bodies = [
            json!({ "token": token }).to_string(),
            // 400s must not echo it either.
            format!(r#"{{"token": "{token}", "token": "{token}"}}"#),
            format!(r#"{{"token": ["{token}"]}}"#),
            format!(r#"{{"token": "{token}""#),
            format!(r#"{{"tokne": "{token}"}}"#),
        ];
        for body in bodies {
            let r = api.send(json_req(LOGIN, body.clone())).await;
            assert!(r.status.is_client_error(), "{body}: {}", r.status);
            let all = r.everything();
            assert!(!all.contains(token.as_str()), "{all}");
            for segment in token.split('.').filter(|s| s.len() >= 4) {
                assert!(!all.contains(segment), "segment echoed: {all}");
            }
        }
    }
}

#[tokio::test]
async fn login_body_errors_are_400_413_415_with_json_bodies() {
    let api = Api::start().await;
    for bad in [
        "{",
        "[]",
        // A one-element array once mapped onto the body struct (serde's derive accepts both
        // shapes) and went on to verification: only an object is a login body.
        r#"["a.b.c"]"#,
        r#""token""#,
        "{}",
        r#"{"token": null}"#,
        r#"{"token": 42}"#,
        r#"{"token": {"a": 1}}"#,
        r#"{"token": "a", "token": "b"}"#,
        "",
    ] {
        let r = api.send(json_req(LOGIN, bad)).await;
        assert_invalid_request(&r, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.json()["error_description"],
            "The request body must be a JSON object with a string `token`."
        );
    }
    let body = json!({"token": "x"}).to_string();
    for ct in [
        None,
        Some("text/plain"),
        Some(FORM),
        Some("application/jsonx"),
    ] {
        let mut b = req(Method::POST, LOGIN, None);
        if let Some(ct) = ct {
            b = b.header(CONTENT_TYPE, ct);
        }
        let r = api.send(b.body(Body::from(body.clone())).unwrap()).await;
        assert_invalid_request(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    // Exactly 64 KiB is read (and refused as a token: 401); one byte more is 413.
    let frame = r#"{"token":""}"#.len();
    let exact = format!(r#"{{"token":"{}"}}"#, "a".repeat(64 * 1024 - frame));
    assert_eq!(exact.len(), 64 * 1024);
    let r = api.send(json_req(LOGIN, exact)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let over = format!(r#"{{"token":"{}"}}"#, "a".repeat(64 * 1024 - frame + 1));
    let r = api.send(json_req(LOGIN, over)).await;
    assert_invalid_request(&r, StatusCode::PAYLOAD_TOO_LARGE);
    // Wrong methods and unknown routes are axum's 405 / 404.
    let r = api.send(get_req(LOGIN, None)).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = api.send(get_req("/auth/nope", None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn login_without_a_provider_is_501() {
    let idp = Idp::start().await;
    let ex = Exchange::builder(verifier_for(vec![], &idp.clock), bearer_keys())
        .build()
        .unwrap();
    let app = jwt_exchange::axum::router(ex);
    let r = send(&app, login_req(&external(&idp, "alice", &[]))).await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(r.json()["error"], "not_implemented");
    let r = send(
        &app,
        form_req(
            "/oauth2/token",
            &[("grant_type", JWT_BEARER), ("assertion", "x")],
            None,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(r.json()["error"], "not_implemented");
}

fn assert_503(r: &Res, retry_after: &str) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some(retry_after));
    assert_eq!(r.json()["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn keys_unavailable_past_max_stale_is_503_with_retry_after() {
    let idp = Idp::start().await;
    let ex = exchange_with(
        &idp,
        idp.provider()
            .with_jwks_max_stale(Duration::from_secs(3600)),
        None,
    );
    let app = RouterBuilder::new(ex.clone())
        .retry_after(Duration::from_secs(30))
        .build();
    ex.verifier().refresh_keys().await.unwrap();
    let mut c = claims();
    c["exp"] = json!(NOW + 86_400);
    let token = idp.rsa.mint(&c);
    idp.server.set_behavior(Behavior::Status(500));
    idp.clock.advance(Duration::from_secs(1800));
    assert_eq!(
        send(&app, login_req(&token)).await.status,
        StatusCode::OK,
        "stale keys still serve"
    );
    idp.clock.advance(Duration::from_secs(1801));
    let r = send(&app, login_req(&token)).await;
    assert_503(&r, "30");
    assert!(!r.everything().contains(&token));
    let r = send(
        &app,
        form_req(
            "/oauth2/token",
            &[("grant_type", JWT_BEARER), ("assertion", &token)],
            None,
        ),
    )
    .await;
    assert_503(&r, "30");
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn an_idp_down_at_start_is_503_not_401() {
    let idp = Idp::start().await;
    idp.server.set_behavior(Behavior::Status(503));
    let ex = exchange_with(&idp, idp.provider(), None);
    let app = jwt_exchange::axum::router(ex);
    let r = send(&app, login_req(&external(&idp, "alice", &[]))).await;
    assert_503(&r, "5");
}

/// A store that is down, or whose records do not decode.
#[derive(Debug)]
struct Failing {
    corrupt: bool,
}

impl Failing {
    fn err(&self) -> StoreError {
        if self.corrupt {
            StoreError::corrupt("undecodable record")
        } else {
            StoreError::unavailable("connection refused")
        }
    }
}

#[async_trait]
impl SessionStore for Failing {
    async fn create(&self, _: &Session) -> Result<(), StoreError> {
        Err(self.err())
    }
    async fn get(&self, _: &SessionId) -> Result<Option<Session>, StoreError> {
        Err(self.err())
    }
    async fn delete(&self, _: &SessionId) -> Result<bool, StoreError> {
        Err(self.err())
    }
    async fn delete_subject(&self, _: &str) -> Result<usize, StoreError> {
        Err(self.err())
    }
    async fn list_subject(&self, _: &str) -> Result<Vec<Session>, StoreError> {
        Err(self.err())
    }
    async fn sweep(&self) -> Result<usize, StoreError> {
        Err(self.err())
    }
    async fn claim_jti(&self, _: &str, _: &str, _: i64) -> Result<bool, StoreError> {
        Err(self.err())
    }
}

#[tokio::test]
async fn a_failing_store_is_503_and_a_corrupt_one_500() {
    let api = Api::start().await;
    let bearer = api.login("alice", &["readers"]).await;
    let admin = api.login("root", &["admins", "introspectors"]).await;

    let down = exchange_with(
        &api.idp,
        api.idp.provider(),
        Some(Arc::new(Failing { corrupt: false })),
    );
    let app = jwt_exchange::axum::router(down);
    assert_503(
        &send(&app, login_req(&external(&api.idp, "alice", &[]))).await,
        "5",
    );
    // Same bearer keys: the bearers verify, then the store read fails.
    assert_503(
        &send(&app, get_req("/auth/session", Some(&bearer))).await,
        "5",
    );
    assert_503(
        &send(&app, delete_req("/auth/session", Some(&bearer))).await,
        "5",
    );
    assert_503(
        &send(
            &app,
            get_req(
                "/auth/check?action=http:GET&resource=/public/a",
                Some(&bearer),
            ),
        )
        .await,
        "5",
    );
    assert_503(
        &send(
            &app,
            form_req("/oauth2/revoke", &[("token", &bearer)], None),
        )
        .await,
        "5",
    );
    assert_503(
        &send(
            &app,
            form_req(
                "/oauth2/token",
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &external(&api.idp, "alice", &[])),
                    ("subject_token_type", TT_JWT),
                ],
                None,
            ),
        )
        .await,
        "5",
    );

    let corrupt = exchange_with(
        &api.idp,
        api.idp.provider(),
        Some(Arc::new(Failing { corrupt: true })),
    );
    let app = jwt_exchange::axum::router(corrupt);
    for r in [
        send(&app, get_req("/auth/session", Some(&bearer))).await,
        send(&app, login_req(&external(&api.idp, "alice", &[]))).await,
        send(
            &app,
            form_req("/oauth2/introspect", &[("token", &bearer)], Some(&admin)),
        )
        .await,
    ] {
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text());
        assert_eq!(
            r.text(),
            r#"{"error":"server_error","error_description":"An unexpected error occurred."}"#
        );
        assert!(r.header("retry-after").is_none());
    }
}
