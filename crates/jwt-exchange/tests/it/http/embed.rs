//! The router nested next to an application's own routes, with `Authorized<P>` and
//! `require_permission`.

use super::*;

struct ReadReport;

impl Permission for ReadReport {
    const ACTION: &'static str = "reports:Read";

    fn resource(parts: &Parts) -> Result<String, Rejection> {
        Ok(request_path(parts)?.trim_start_matches('/').to_owned())
    }
}

struct Admin;

impl Permission for Admin {
    const ACTION: &'static str = "auth:Anything";
}

async fn report(who: Authorized<ReadReport>) -> String {
    format!("report for {}", who.subject)
}

async fn admin_page(who: Principal) -> String {
    format!("admin {}", who.subject)
}

#[tokio::test]
async fn embedded_next_to_application_routes() {
    let idp = Idp::start().await;
    let ex = exchange_with(&idp, idp.provider(), None);
    let app = Router::new()
        .route("/reports/{name}", get(report))
        .route(
            "/admin",
            get(admin_page)
                .route_layer(from_fn_with_state(ex.clone(), require_permission::<Admin>)),
        )
        .with_state(ex.clone())
        .nest("/api/v1", jwt_exchange::axum::router(ex));
    let r = send(
        &app,
        json_req(
            "/api/v1/auth/jwt/login",
            json!({"token": external(&idp, "alice", &["readers"])}).to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let reader = r.json()["token"].as_str().unwrap().to_owned();
    let r = send(
        &app,
        login_req_at("/api/v1", &external(&idp, "root", &["admins"])),
    )
    .await;
    let admin = r.json()["token"].as_str().unwrap().to_owned();

    let r = send(&app, get_req("/reports/q1", Some(&reader))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), format!("report for {}", subject("alice")));
    // The resource is the decoded path (as the handler sees it); an ambiguous one is 400, not
    // checked as some other path. Credentials come first.
    let r = send(&app, get_req("/reports/%71%31", Some(&reader))).await;
    assert_eq!(r.status, StatusCode::OK);
    for ambiguous in ["/reports/a;b", "/reports/%2e%2e", "/reports/a%00"] {
        let r = send(&app, get_req(ambiguous, Some(&reader))).await;
        assert_invalid_request(&r, StatusCode::BAD_REQUEST);
        assert_eq!(
            send(&app, get_req(ambiguous, None)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        send(&app, get_req("/reports/q1", Some(&admin)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, get_req("/reports/q1", None)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = send(&app, get_req("/admin", Some(&admin))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), format!("admin {}", subject("root")));
    assert_eq!(
        send(&app, get_req("/admin", Some(&reader))).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&app, get_req("/api/v1/auth/session", Some(&reader)))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, get_req("/auth/session", Some(&reader)))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

fn login_req_at(prefix: &str, token: &str) -> Request<Body> {
    json_req(
        &format!("{prefix}{LOGIN}"),
        json!({ "token": token }).to_string(),
    )
}
