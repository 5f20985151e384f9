//! The route table against `docs/openapi.yaml`.

use super::*;

fn openapi() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::from_str(&text).unwrap()
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `(METHOD, path)` of every operation in the OpenAPI document.
fn documented() -> Vec<(Method, String, Value)> {
    let doc = openapi();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            if METHODS.contains(&m.as_str()) {
                ops.push((
                    Method::from_bytes(m.to_uppercase().as_bytes()).unwrap(),
                    path.clone(),
                    op.clone(),
                ));
            }
        }
    }
    ops
}

#[test]
fn every_route_is_documented_in_openapi_and_nothing_else_is() {
    let doc = openapi();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    let ops = documented();
    let table = routes();
    for (m, p) in &table {
        assert!(
            ops.iter().any(|(dm, dp, _)| dm == m && dp == p),
            "{m} {p} is a route but not in docs/openapi.yaml"
        );
    }
    for (m, p, op) in &ops {
        assert!(
            table.iter().any(|(tm, tp)| tm == m && tp == p),
            "{m} {p} is in docs/openapi.yaml but not a route"
        );
        assert!(op["operationId"].is_string(), "{m} {p}: operationId");
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{m} {p}: responses"
        );
    }
    assert_eq!(ops.len(), table.len());
}

#[tokio::test]
async fn every_documented_operation_is_served_and_its_bare_answer_documented() {
    let api = Api::start().await;
    for (method, path, op) in documented() {
        let uri = path
            .replace("{id}", SessionId::generate().as_str())
            .replace("{path}", "repo/data/file");
        let r = api
            .send(
                Request::builder()
                    .method(method.clone())
                    .uri(&uri)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_ne!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let code = r.status.as_str().to_owned();
        assert!(
            op["responses"].get(&code).is_some(),
            "{method} {path} answered {code}, which docs/openapi.yaml does not list"
        );
    }
}

#[test]
fn documented_statuses_match_observed_ones() {
    // Each status this suite observes for a route is listed for it in docs/openapi.yaml.
    let observed: &[(&str, &str, &[u16])] = &[
        (
            "post",
            "/auth/jwt/login",
            &[200, 400, 401, 413, 415, 500, 501, 503],
        ),
        ("get", "/auth/session", &[200, 401, 500, 503]),
        ("delete", "/auth/session", &[204, 401, 503]),
        ("get", "/auth/sessions", &[200, 400, 401, 403]),
        ("delete", "/auth/sessions", &[204, 400, 401, 403]),
        ("delete", "/auth/sessions/{id}", &[204, 401, 403]),
        ("get", "/auth/check", &[204, 400, 401, 403, 503]),
        ("post", "/oauth2/token", &[200, 400, 413, 415, 501, 503]),
        ("post", "/oauth2/revoke", &[200, 400, 415, 503]),
        ("post", "/oauth2/introspect", &[200, 400, 401, 403, 500]),
    ];
    let doc = openapi();
    for (m, p, codes) in observed {
        let responses = &doc["paths"][p][m]["responses"];
        for c in *codes {
            assert!(
                responses.get(c.to_string()).is_some(),
                "{m} {p}: {c} not documented"
            );
        }
    }
}
