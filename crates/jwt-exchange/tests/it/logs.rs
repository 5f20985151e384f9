//! No token, bearer or signature ever appears in log output, even at TRACE.

use std::io::Write;
use std::sync::{Arc, Mutex};

use jwt_exchange::session::{BearerKeys, BearerSecret};
use jwt_exchange::{Exchange, ProviderConfig};
use serde_json::json;

use crate::common::{claims, claims_with, Idp, NOW};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// Runs logins (good and every kind of bad), authentications, authorizations and revocations
/// with TRACE logging of every crate captured, then searches the output for every token,
/// bearer and token segment that was used.
#[tokio::test(flavor = "current_thread")]
async fn no_token_or_bearer_reaches_the_logs() {
    let out = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(out.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let idp = Idp::start().await;
    let p: ProviderConfig = idp.provider().with_required_claim("tid", "t-1");
    let ex = Exchange::builder(
        idp.verifier(p),
        BearerKeys::new(
            "jwt-exchange-test",
            "b1",
            BearerSecret::from_bytes(vec![9u8; 32]).unwrap(),
        ),
    )
    .replay_protection(true)
    .build()
    .unwrap();

    let mut secrets: Vec<String> = Vec::new();
    let good = idp.rsa.mint(&claims_with("tid", json!("t-1")));
    let login = ex.login(&good).await.unwrap();
    secrets.push(good.clone());
    secrets.push(login.token.as_str().to_owned());
    let who = ex.authenticate(login.token.as_str()).await.unwrap();
    let _ = ex.authorize(&who, "fs:ReadObject", "repo/x").await.unwrap();
    // Request text with line breaks cannot forge a line in a text log.
    let forged = "repo/x\n2026-01-01T00:00:00Z  INFO jwt_exchange::audit: FORGED outcome=\"allow\"";
    let _ = ex
        .authorize(&who, "fs:Read\r\nFORGED", forged)
        .await
        .unwrap();
    let _ = ex.revoke_subject("nobody\nFORGED").await.unwrap();

    let mut bad = vec![
        good.clone(), // replay
        idp.rsa.mint(&claims_with("tid", json!("t-2"))),
        idp.rsa.mint(&claims_with("exp", json!(NOW - 1000))),
        idp.rsa.mint(&claims()),
        format!("{good}x"),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.c2ln".to_owned(),
    ];
    bad.push(idp.rsa.sign_raw(
        jwt_exchange::Algorithm::RS256,
        r#"{"alg":"RS256","kid":"../../dev/null\r\nINJECTED"}"#,
        &claims().to_string(),
    ));
    for t in &bad {
        assert!(ex.login(t).await.is_err());
        secrets.push(t.clone());
    }
    let forged_bearer = format!("{}x", login.token.as_str());
    assert!(ex.authenticate(&forged_bearer).await.is_err());
    secrets.push(forged_bearer);
    ex.revoke(who.session_id()).await.unwrap();
    assert!(ex.authenticate(login.token.as_str()).await.is_err());

    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("jwt_exchange::audit"),
        "audit events were captured"
    );
    assert!(text.contains("outcome=\"failure\"") || text.contains("outcome=failure"));
    for s in &secrets {
        for segment in s.split('.').filter(|seg| seg.len() >= 8) {
            assert!(
                !text.contains(segment),
                "a token segment leaked into the logs"
            );
        }
    }
    assert!(
        !text.contains("INJECTED"),
        "attacker-controlled kid is not logged raw"
    );
    for line in text.lines() {
        assert!(
            !line.starts_with("FORGED") && !line.starts_with("2026-01-01T00:00:00Z"),
            "request text started a log line: {line}"
        );
    }
    assert!(
        text.contains(r"repo/x\n2026"),
        "the resource is logged, escaped"
    );
}
