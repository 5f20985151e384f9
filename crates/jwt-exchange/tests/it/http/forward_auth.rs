//! `GET /auth/check`: query parameters, the `X-Forwarded-*` mapping, response headers.

use super::*;

fn check_req(uri: &str, bearer: Option<&str>, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = req(Method::GET, uri, bearer);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn forward_auth_with_query_parameters() {
    let api = Api::start().await;
    let reader = api.login("alice", &["readers"]).await;
    let sid = api.who(&reader).await.json()["session_id"].clone();
    let r = api
        .send(check_req(
            "/auth/check?action=http:GET&resource=/public/a",
            Some(&reader),
            &[],
        ))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    assert_eq!(r.header("x-auth-subject"), Some(subject("alice").as_str()));
    assert_eq!(r.header("x-auth-session-id"), sid.as_str());
    assert_eq!(r.header("x-auth-groups"), Some("readers"));
    assert_eq!(r.header("cache-control"), Some("no-store"));

    for denied in [
        "/auth/check?action=http:GET&resource=/private",
        "/auth/check?action=http:GET&resource=/public/secret/x",
        "/auth/check?action=http:POST&resource=/public/a",
    ] {
        let r = api.send(check_req(denied, Some(&reader), &[])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{denied}");
        assert!(r.header("x-auth-subject").is_none());
    }
    let r = api
        .send(check_req(
            "/auth/check?action=http:GET&resource=/public/a",
            None,
            &[],
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.all("www-authenticate").len(), 2);
    assert_invalid_token_401(
        &api.send(check_req(
            "/auth/check?action=http:GET&resource=/public/a",
            Some("forged"),
            &[],
        ))
        .await,
    );
    // Repeated parameters are refused.
    assert_invalid_request(
        &api.send(check_req(
            "/auth/check?action=http:GET&action=http:GET&resource=/public/a",
            Some(&reader),
            &[],
        ))
        .await,
        StatusCode::BAD_REQUEST,
    );
}

#[tokio::test]
async fn forward_auth_maps_x_forwarded_headers() {
    let api = Api::start().await;
    let reader = api.login("alice", &["readers"]).await;
    let check = |headers: &'static [(&'static str, &'static str)]| {
        check_req("/auth/check", Some(&reader), headers)
    };
    let cases: &[(&[(&str, &str)], StatusCode)] = &[
        (
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/public/a?x=1"),
            ],
            StatusCode::NO_CONTENT,
        ),
        (
            &[
                ("x-forwarded-method", "get"),
                ("x-forwarded-uri", "/public/%61"),
            ],
            StatusCode::NO_CONTENT,
        ),
        (
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "https://app.example/public/a"),
            ],
            StatusCode::NO_CONTENT,
        ),
        (
            &[
                ("x-forwarded-method", "POST"),
                ("x-forwarded-uri", "/public/a"),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/public/secret/x"),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            // Encoding does not dodge a deny statement.
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/public/%73ecret/x"),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/public/../private"),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/public/%2e%2e/private"),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (&[("x-forwarded-uri", "/public/a")], StatusCode::BAD_REQUEST),
        (&[("x-forwarded-method", "GET")], StatusCode::BAD_REQUEST),
        (&[], StatusCode::BAD_REQUEST),
    ];
    for (headers, want) in cases {
        let r = api.send(check(headers)).await;
        assert_eq!(r.status, *want, "{headers:?}: {}", r.text());
        if *want == StatusCode::BAD_REQUEST {
            assert_invalid_request(&r, StatusCode::BAD_REQUEST);
        }
    }
    // A query parameter wins over the header; the other one still comes from its template.
    let r = api
        .send(check_req(
            "/auth/check?action=http:GET",
            Some(&reader),
            &[
                ("x-forwarded-method", "DELETE"),
                ("x-forwarded-uri", "/public/a"),
            ],
        ))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Authentication comes before the mapping.
    assert_eq!(
        api.send(check_req("/auth/check", None, &[])).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn forward_auth_mapping_is_configurable() {
    let idp = Idp::start().await;
    let ex = exchange_with(&idp, idp.provider(), None);
    let cfg: HttpConfig = serde_json::from_value(json!({
        "forward_auth": {"action": "api:{method}", "resource": "{host}{path}"},
        "retry_after": "10s"
    }))
    .unwrap();
    let app = RouterBuilder::new(ex).config(cfg).build();
    let r = send(&app, login_req(&external(&idp, "alice", &["readers"]))).await;
    let bearer = r.json()["token"].as_str().unwrap().to_owned();
    let fwd = |host: &str| {
        check_req(
            "/auth/check",
            Some(&bearer),
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/public/a"),
                ("x-forwarded-host", host),
            ],
        )
    };
    assert_eq!(
        send(&app, fwd("Example.com")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&app, fwd("other.example")).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(ForwardAuthConfig::new("api:{verb}", "{path}").is_err());
}

#[tokio::test]
async fn forward_auth_headers_are_always_valid() {
    let api = Api::start().await;
    let groups = [
        "readers",
        "a,b",
        "bell\u{7}x",
        "new\r\nline",
        "é",
        "100%",
        " sp ",
    ];
    let bearer = api.login("ü ser", &groups).await;
    let r = api
        .send(check_req(
            "/auth/check?action=http:GET&resource=/public/a",
            Some(&bearer),
            &[],
        ))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        r.header("x-auth-groups"),
        Some("readers,a%2Cb,bell%07x,new%0D%0Aline,%C3%A9,100%25,%20sp%20")
    );
    assert_eq!(
        r.header("x-auth-subject"),
        Some(format!("jwt:{ISS}:%C3%BC%20ser").as_str())
    );
}

/// A policy directory that resolves groups at login but cannot be read at check time.
#[derive(Debug)]
struct DirectoryDown;

#[async_trait]
impl Directory for DirectoryDown {
    async fn policies_for_groups(&self, _: &[String]) -> Result<Vec<String>, DirectoryError> {
        Ok(vec!["ReadPublic".to_owned()])
    }
    async fn policy(&self, _: &str) -> Result<Option<Arc<Policy>>, DirectoryError> {
        Err(DirectoryError::unavailable("connection refused"))
    }
}

#[tokio::test]
async fn a_policy_directory_outage_is_503_never_an_allow_or_a_deny() {
    let idp = Idp::start().await;
    let ex = Exchange::builder(idp.verifier(idp.provider()), bearer_keys())
        .directory(Arc::new(DirectoryDown))
        .build()
        .unwrap();
    let app = jwt_exchange::axum::router(ex);
    let r = send(&app, login_req(&external(&idp, "alice", &["readers"]))).await;
    let bearer = r.json()["token"].as_str().unwrap().to_owned();
    for req in [
        check_req(
            "/auth/check?action=http:GET&resource=/public/a",
            Some(&bearer),
            &[],
        ),
        get_req(
            &format!("/auth/sessions?subject={}", enc(&subject("alice"))),
            Some(&bearer),
        ),
        form_req("/oauth2/introspect", &[("token", &bearer)], Some(&bearer)),
    ] {
        let r = send(&app, req).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
        assert_eq!(r.header("retry-after"), Some("5"));
    }
}

/// An Envoy-mode case: method, URI, extra headers, expected status.
type EnvoyCase<'a> = (Method, &'a str, &'a [(&'a str, &'a str)], StatusCode);

fn envoy_req(
    method: Method,
    uri: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
) -> Request<Body> {
    let mut b = req(method, uri, bearer);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn envoy_mode_checks_the_request_itself_and_answers_200() {
    let api = Api::start().await;
    let reader = api.login("alice", &["readers"]).await;
    let r = api
        .send(envoy_req(
            Method::GET,
            "/auth/check/public/a?x=1",
            Some(&reader),
            &[],
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "Envoy treats only 200 as allowed");
    assert_eq!(r.header("x-auth-subject"), Some(subject("alice").as_str()));
    assert_eq!(r.header("x-auth-groups"), Some("readers"));
    assert!(r.body.is_empty());

    let cases: &[EnvoyCase<'_>] = &[
        (
            Method::POST,
            "/auth/check/public/a",
            &[],
            StatusCode::FORBIDDEN,
        ),
        (
            Method::DELETE,
            "/auth/check/public/a",
            &[],
            StatusCode::FORBIDDEN,
        ),
        (
            Method::GET,
            "/auth/check/public/%73ecret/x",
            &[],
            StatusCode::FORBIDDEN,
        ),
        (
            Method::GET,
            "/auth/check/private",
            &[],
            StatusCode::FORBIDDEN,
        ),
        // The client's own X-Forwarded-* headers and query parameters do not count.
        (
            Method::GET,
            "/auth/check/private",
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/public/a"),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            Method::GET,
            "/auth/check/private?action=http:GET&resource=/public/a",
            &[],
            StatusCode::FORBIDDEN,
        ),
        (
            Method::GET,
            "/auth/check/public/../private",
            &[],
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/auth/check/public/%2e%2e/private",
            &[],
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (method, uri, headers, want) in cases {
        let r = api
            .send(envoy_req(method.clone(), uri, Some(&reader), headers))
            .await;
        assert_eq!(r.status, *want, "{method} {uri}");
        assert!(r.header("x-auth-subject").is_none(), "{method} {uri}");
    }
    let r = api
        .send(envoy_req(Method::GET, "/auth/check/public/a", None, &[]))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_invalid_token_401(
        &api.send(envoy_req(
            Method::PUT,
            "/auth/check/public/a",
            Some("forged"),
            &[],
        ))
        .await,
    );
}

/// Paths an upstream might serve as another path are refused, from `X-Forwarded-Uri` and in
/// Envoy mode alike: `/public//secret/x` matches the allow and not the deny on
/// `/public/secret/*`, and an upstream that merges slashes (or drops `;` parameters) would
/// serve the denied path.
#[tokio::test]
async fn ambiguous_paths_are_refused_in_both_modes() {
    let api = Api::start().await;
    let reader = api.login("alice", &["readers"]).await;
    for path in [
        "/public//secret/x",
        "/public/secret;v=1/x",
        "/public/secret%3bv=1/x",
    ] {
        let forwarded = [("x-forwarded-method", "GET"), ("x-forwarded-uri", path)];
        let r = api
            .send(check_req("/auth/check", Some(&reader), &forwarded))
            .await;
        assert_invalid_request(&r, StatusCode::BAD_REQUEST);
        let envoy = format!("/auth/check{path}");
        let r = api
            .send(envoy_req(Method::GET, &envoy, Some(&reader), &[]))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{envoy}");
    }
}

/// Envoy checks every request: the site root arrives as `/auth/check/` (which `{*path}` does
/// not match), and `OPTIONS` (a CORS preflight) and `HEAD` are checked like other methods.
#[tokio::test]
async fn envoy_mode_checks_the_site_root_and_options() {
    let api = Api::start().await;
    let reader = api.login("alice", &["readers"]).await;
    let cases = [
        (Method::GET, "/auth/check/", StatusCode::OK),
        (Method::GET, "/auth/check/?q=1", StatusCode::OK),
        (Method::OPTIONS, "/auth/check/public/a", StatusCode::OK),
        (Method::POST, "/auth/check/", StatusCode::FORBIDDEN),
        (Method::OPTIONS, "/auth/check/", StatusCode::FORBIDDEN),
        (Method::HEAD, "/auth/check/public/a", StatusCode::FORBIDDEN),
        (
            Method::OPTIONS,
            "/auth/check/private",
            StatusCode::FORBIDDEN,
        ),
    ];
    for (method, uri, want) in cases {
        let r = api
            .send(envoy_req(method.clone(), uri, Some(&reader), &[]))
            .await;
        assert_eq!(r.status, want, "{method} {uri}");
        let subject = subject("alice");
        let expected = (want == StatusCode::OK).then_some(subject.as_str());
        assert_eq!(r.header("x-auth-subject"), expected, "{method} {uri}");
    }
}
