//! Credentials (Bearer, Basic `_jwt`), who-am-I, logout, expiry, and the admin endpoints
//! `GET`/`DELETE /auth/sessions` and `DELETE /auth/sessions/{id}`.

use super::*;

#[tokio::test]
async fn who_am_i_needs_a_valid_bearer() {
    let api = Api::start().await;
    let r = api.send(get_req("/auth/session", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.all("www-authenticate"),
        [
            r#"Bearer realm="jwt-exchange""#,
            r#"Basic realm="jwt-exchange""#
        ]
    );
    assert_eq!(r.json()["error"], "unauthorized");
    for bad in [
        "garbage",
        &external(&api.idp, "alice", &[]), // an IdP token is not a bearer
        "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
    ] {
        assert_invalid_token_401(&api.who(bad).await);
    }
    let r = api
        .send(
            req(Method::GET, "/auth/session", None)
                .header(AUTHORIZATION, "Digest username=x")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "unauthorized");
}

#[tokio::test]
async fn basic_auth_with_user_jwt_carries_a_bearer() {
    let api = Api::start().await;
    let bearer = api.login("alice", &["readers"]).await;
    let basic = |user: &str, pass: &str| {
        req(Method::GET, "/auth/session", None)
            .header(
                AUTHORIZATION,
                format!("Basic {}", STANDARD.encode(format!("{user}:{pass}"))),
            )
            .body(Body::empty())
            .unwrap()
    };
    let r = api.send(basic("_jwt", &bearer)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["subject"], subject("alice"));
    assert_invalid_token_401(&api.send(basic("alice", &bearer)).await);
    assert_invalid_token_401(&api.send(basic("_jwt", "not-a-bearer")).await);
    let r = api
        .send(
            req(Method::GET, "/auth/session", None)
                .header(AUTHORIZATION, "Basic %%%")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_invalid_token_401(&r);
}

#[tokio::test]
async fn logout_revokes_only_the_presented_session() {
    let api = Api::start().await;
    let a = api.login("alice", &["readers"]).await;
    let b = api.login("alice", &["readers"]).await;
    let r = api.send(delete_req("/auth/session", Some(&a))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    assert_invalid_token_401(&api.who(&a).await);
    assert_invalid_token_401(&api.send(delete_req("/auth/session", Some(&a))).await);
    assert_eq!(api.who(&b).await.status, StatusCode::OK);
    assert_eq!(
        api.send(delete_req("/auth/session", None)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_expired_bearer_is_401() {
    let api = Api::start().await;
    let a = api.login("alice", &[]).await;
    api.idp.clock.advance(Duration::from_secs(3599));
    assert_eq!(api.who(&a).await.status, StatusCode::OK);
    api.idp.clock.advance(Duration::from_secs(1));
    assert_invalid_token_401(&api.who(&a).await);
}

#[tokio::test]
async fn listing_sessions_needs_auth_list_sessions_on_the_subject() {
    let api = Api::start().await;
    let _a1 = api.login("alice", &["readers"]).await;
    let _a2 = api.login("alice", &["readers"]).await;
    let _b = api.login("bob", &["readers"]).await;
    let admin = api.login("root", &["admins"]).await;
    let support = api.login("helpdesk", &["support"]).await;
    let reader = api.login("carol", &["readers"]).await;
    let list = |who: &str| format!("/auth/sessions?subject={}", enc(&subject(who)));

    let r = api.send(get_req(&list("alice"), Some(&admin))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let sessions = r.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    for s in &sessions {
        assert_eq!(s["subject"], subject("alice"));
        assert_eq!(s["identity"], "alice");
        assert_eq!(s["issuer"], ISS);
        assert_eq!(s["groups"], json!(["readers"]));
        assert_eq!(s["policies"], json!(["ReadPublic"]));
        assert_eq!(s["created_at"], NOW);
        assert_eq!(s["expires_at"], NOW + 3600);
        assert!(SessionId::parse(s["session_id"].as_str().unwrap()).is_ok());
    }
    let r = api.send(get_req(&list("nobody"), Some(&admin))).await;
    assert_eq!(r.json(), json!({"sessions": []}));

    assert_eq!(
        api.send(get_req(&list("alice"), Some(&support)))
            .await
            .status,
        StatusCode::OK
    );
    let r = api.send(get_req(&list("bob"), Some(&support))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"], "insufficient_scope");
    // RFC 6750 §3.1: the challenge says why, for clients that read it.
    assert_eq!(
        r.all("www-authenticate"),
        [r#"Bearer realm="jwt-exchange", error="insufficient_scope""#]
    );
    assert_eq!(
        api.send(get_req(&list("alice"), Some(&reader)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.send(get_req(&list("alice"), None)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Without `subject` (or with it twice): 400, after authentication.
    for uri in [
        "/auth/sessions".to_owned(),
        "/auth/sessions?subject=".to_owned(),
        format!("{}&subject=x", list("alice")),
    ] {
        assert_invalid_request(
            &api.send(get_req(&uri, Some(&admin))).await,
            StatusCode::BAD_REQUEST,
        );
        assert_eq!(
            api.send(get_req(&uri, None)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn deleting_sessions_needs_auth_delete_session_on_the_subject() {
    let api = Api::start().await;
    let a1 = api.login("alice", &["readers"]).await;
    let a2 = api.login("alice", &["readers"]).await;
    let b = api.login("bob", &["readers"]).await;
    let admin = api.login("root", &["admins"]).await;
    let support = api.login("helpdesk", &["support"]).await;
    let reader = api.login("carol", &["readers"]).await;
    let sid = |who: Res| who.json()["session_id"].as_str().unwrap().to_owned();
    let a1_id = sid(api.who(&a1).await);
    let b_id = sid(api.who(&b).await);
    let one = |id: &str| format!("/auth/sessions/{id}");

    // Another subject's session and no session at all look the same to a scoped caller.
    for id in [
        b_id.clone(),
        SessionId::generate().as_str().to_owned(),
        "not-a-session-id".to_owned(),
        "%FF%FE".to_owned(),
    ] {
        let r = api.send(delete_req(&one(&id), Some(&support))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{id}");
        assert!(!r.text().contains(&id), "never echoed");
    }
    assert_eq!(api.who(&b).await.status, StatusCode::OK);
    // A caller allowed on `*` gets 204 for unknown and malformed ids.
    for id in [SessionId::generate().as_str(), "not-a-session-id", "%FF%FE"] {
        let r = api.send(delete_req(&one(id), Some(&admin))).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{id}");
    }
    assert_eq!(
        api.send(delete_req(&one(&a1_id), Some(&reader)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.send(delete_req(&one(&a1_id), None)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = api.send(delete_req(&one(&a1_id), Some(&support))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_invalid_token_401(&api.who(&a1).await);
    assert_eq!(api.who(&a2).await.status, StatusCode::OK);

    // By subject.
    let all = |who: &str| format!("/auth/sessions?subject={}", enc(&subject(who)));
    assert_eq!(
        api.send(delete_req(&all("alice"), Some(&reader)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.send(delete_req(&all("bob"), Some(&support)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.send(delete_req(&all("alice"), Some(&support)))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_invalid_token_401(&api.who(&a2).await);
    assert_eq!(
        api.send(delete_req(&all("bob"), Some(&admin))).await.status,
        StatusCode::NO_CONTENT
    );
    assert_invalid_token_401(&api.who(&b).await);
    assert_eq!(api.who(&reader).await.status, StatusCode::OK);
    assert_invalid_request(
        &api.send(delete_req("/auth/sessions", Some(&admin))).await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(
        api.ex.metrics().sessions_revoked,
        3,
        "a1, then alice's a2, then bob"
    );
}
