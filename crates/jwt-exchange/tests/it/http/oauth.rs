//! `/oauth2/token` (RFC 8693, RFC 7523), `/oauth2/revoke` (RFC 7009), `/oauth2/introspect`
//! (RFC 7662).

use super::*;

fn assert_token_response(r: &Res, expires_in: i64) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let v = r.json();
    assert_eq!(v["issued_token_type"], TT_ACCESS);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], expires_in);
    assert_eq!(v.as_object().unwrap().len(), 4, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

fn assert_oauth_error(r: &Res, code: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    assert_eq!(r.json()["error"], code, "{}", r.text());
}

#[tokio::test]
async fn token_exchange_and_jwt_bearer_grants() {
    let api = Api::start().await;
    let ext = external(&api.idp, "alice", &["readers"]);
    for tt in [TT_JWT, TT_ACCESS] {
        let r = api
            .send(form_req(
                "/oauth2/token",
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &ext),
                    ("subject_token_type", tt),
                ],
                None,
            ))
            .await;
        let bearer = assert_token_response(&r, 3600);
        assert_eq!(api.who(&bearer).await.json()["subject"], subject("alice"));
    }
    // `expires_in` counts from the exchange's clock.
    api.idp.clock.advance(Duration::from_secs(600));
    let r = api
        .send(form_req(
            "/oauth2/token",
            &[
                ("grant_type", JWT_BEARER),
                ("assertion", &ext),
                ("scope", "ignored"),
            ],
            None,
        ))
        .await;
    assert_token_response(&r, 3000);
    let r = api
        .send(form_req(
            "/oauth2/token",
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &ext),
                ("subject_token_type", TT_JWT),
                ("requested_token_type", TT_ACCESS),
            ],
            None,
        ))
        .await;
    assert_token_response(&r, 3000);
}

#[tokio::test]
async fn token_endpoint_errors_have_the_rfc_6749_shape() {
    let api = Api::start().await;
    let ext = external(&api.idp, "alice", &["readers"]);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "invalid_request"),
        (vec![("grant_type", "password")], "unsupported_grant_type"),
        (
            vec![("grant_type", "client_credentials")],
            "unsupported_grant_type",
        ),
        (vec![("grant_type", EXCHANGE)], "invalid_request"),
        (
            vec![("grant_type", EXCHANGE), ("subject_token", &ext)],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", &ext),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:saml2",
                ),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", &ext),
                ("subject_token_type", TT_JWT),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", &ext),
                ("subject_token_type", TT_JWT),
                ("actor_token", &ext),
                ("actor_token_type", TT_JWT),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", &ext),
                ("subject_token_type", TT_JWT),
                ("audience", "https://elsewhere.example"),
            ],
            "invalid_target",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", &ext),
                ("subject_token_type", TT_JWT),
                ("subject_token", &ext),
            ],
            "invalid_request",
        ),
        (vec![("grant_type", JWT_BEARER)], "invalid_request"),
        (
            vec![("grant_type", JWT_BEARER), ("assertion", "")],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", JWT_BEARER),
                ("grant_type", JWT_BEARER),
                ("assertion", &ext),
            ],
            "invalid_request",
        ),
    ];
    for (pairs, code) in &cases {
        let r = api.send(form_req("/oauth2/token", pairs, None)).await;
        assert_oauth_error(&r, code);
        assert!(!r.everything().contains(ext.as_str()));
    }
}

#[tokio::test]
async fn every_refused_grant_gets_its_grants_one_constant_answer() {
    let api = Api::start().await;
    let stranger = TestKey::generate(Algorithm::RS256, "rsa-1").mint(&claims());
    let mut expired = claims();
    expired["exp"] = json!(NOW - 3600);
    let expired = api.idp.rsa.mint(&expired);
    // Every refused token: one answer per grant whatever the reason, never the token. RFC 8693
    // §2.2.2 says `invalid_request` for a refused subject token, RFC 7523 §3.1 `invalid_grant`
    // for a refused assertion.
    for bad in [&stranger, &expired, "garbage"] {
        for (pairs, code, body) in [
            (
                vec![
                    ("grant_type", EXCHANGE),
                    ("subject_token", bad),
                    ("subject_token_type", TT_JWT),
                ],
                "invalid_request",
                INVALID_SUBJECT_TOKEN_BODY,
            ),
            (
                vec![("grant_type", JWT_BEARER), ("assertion", bad)],
                "invalid_grant",
                INVALID_GRANT_BODY,
            ),
        ] {
            let r = api.send(form_req("/oauth2/token", &pairs, None)).await;
            assert_oauth_error(&r, code);
            assert_eq!(r.text(), body);
            assert!(!r.everything().contains(bad));
        }
    }
    // Not a form: 415; too large: 413 (both with an RFC 6749 body).
    let r = api
        .send(json_req(
            "/oauth2/token",
            json!({"grant_type": JWT_BEARER}).to_string(),
        ))
        .await;
    assert_invalid_request(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = format!(
        "grant_type={JWT_BEARER}&assertion={}",
        "a".repeat(65 * 1024)
    );
    let r = api
        .send(
            req(Method::POST, "/oauth2/token", None)
                .header(CONTENT_TYPE, FORM)
                .body(Body::from(big))
                .unwrap(),
        )
        .await;
    assert_invalid_request(&r, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn revocation_endpoint() {
    let api = Api::start().await;
    let a = api.login("alice", &["readers"]).await;
    let b = api.login("alice", &["readers"]).await;
    let r = api
        .send(form_req(
            "/oauth2/revoke",
            &[("token", &a), ("token_type_hint", "access_token")],
            None,
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    assert_invalid_token_401(&api.who(&a).await);
    assert_eq!(api.who(&b).await.status, StatusCode::OK);
    // Unknown, already revoked, garbage, an IdP token: still 200.
    for t in [a.as_str(), "garbage", &external(&api.idp, "alice", &[])] {
        let r = api
            .send(form_req("/oauth2/revoke", &[("token", t)], None))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(!r.everything().contains(t));
    }
    assert_eq!(api.who(&b).await.status, StatusCode::OK);
    let r = api
        .send(form_req(
            "/oauth2/revoke",
            &[("token_type_hint", "x")],
            None,
        ))
        .await;
    assert_oauth_error(&r, "invalid_request");
    let r = api
        .send(json_req("/oauth2/revoke", json!({"token": b}).to_string()))
        .await;
    assert_invalid_request(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn introspection_endpoint() {
    let api = Api::start().await;
    let caller = api.login("monitor", &["introspectors"]).await;
    let target = api.login("alice", &["readers"]).await;
    let mut short = claims();
    short["oid"] = json!("bob");
    short["exp"] = json!(NOW + 120);
    let r = api.send(login_req(&api.idp.rsa.mint(&short))).await;
    let short_lived = r.json()["token"].as_str().unwrap().to_owned();
    let sid = api.who(&target).await.json()["session_id"].clone();
    let introspect =
        |t: &str, by: Option<&str>| form_req("/oauth2/introspect", &[("token", t)], by);

    let r = api.send(introspect(&target, Some(&caller))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        r.json(),
        json!({
            "active": true,
            "sub": subject("alice"),
            "exp": NOW + 3600,
            "iat": NOW,
            "iss": "jwt-exchange-test",
            "issuer": ISS,
            "token_type": "Bearer",
            "session_id": sid,
            "groups": ["readers"],
            "policies": ["ReadPublic"],
        })
    );
    // The caller needs auth:IntrospectSession, and must be authenticated first.
    let r = api.send(introspect(&target, Some(&target))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api.send(introspect(&target, None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_invalid_token_401(&api.send(introspect(&target, Some("forged"))).await);
    // Anything invalid is inactive.
    for t in ["garbage", &external(&api.idp, "alice", &[])] {
        let r = api.send(introspect(t, Some(&caller))).await;
        assert_eq!(r.json(), json!({"active": false}));
    }
    api.idp.clock.advance(Duration::from_secs(120));
    let r = api.send(introspect(&short_lived, Some(&caller))).await;
    assert_eq!(r.json(), json!({"active": false}), "expired");
    api.send(delete_req("/auth/session", Some(&target))).await;
    let r = api.send(introspect(&target, Some(&caller))).await;
    assert_eq!(r.json(), json!({"active": false}), "revoked");
    let r = api
        .send(form_req("/oauth2/introspect", &[], Some(&caller)))
        .await;
    assert_oauth_error(&r, "invalid_request");
}
