//! The whole exchange in one process: a development IdP on loopback, Entra- and Auth0-shaped
//! client-credentials tokens, login, who-am-I, an allowed and a denied authorization, a forged
//! token refused, revocation and the refusal after it.
//!
//! `cargo run -p jwt-exchange --example quickstart` — exits 0 when every step behaved as
//! expected.

use std::process::ExitCode;

use jwt_exchange::policy::{Decision, PolicyConfig};
use jwt_exchange::session::{BearerKeys, BearerSecret};
use jwt_exchange::{Algorithm, Clock, Exchange, ProviderConfig, Providers, SystemClock, Verifier};
use jwt_exchange_testkit::claims::{
    auth0, entra, AUTH0_AUDIENCE, AUTH0_ISSUER, ENTRA_AUDIENCE, ENTRA_ISSUER, ENTRA_TENANT,
};
use jwt_exchange_testkit::{jwks, JwksServer, TestKey};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("\nall steps behaved as expected");
            ExitCode::SUCCESS
        }
        Err(step) => {
            eprintln!("\nFAILED: {step}");
            ExitCode::FAILURE
        }
    }
}

fn step(n: u32, what: &str) {
    println!("\n[{n}] {what}");
}

async fn run() -> Result<(), String> {
    step(
        1,
        "start a development IdP (RSA and P-256 keys, JWKS on loopback)",
    );
    let rsa = TestKey::generate(Algorithm::RS256, "entra-key-1");
    let ec = TestKey::generate(Algorithm::ES256, "auth0-key-1");
    let idp = JwksServer::start(jwks(&[&rsa, &ec])).await;
    println!("    JWKS at {}", idp.jwks_url());

    step(
        2,
        "configure two providers (Entra with tenant pinning, Auth0) and policies",
    );
    let providers = Providers(vec![
        ProviderConfig::new(ENTRA_ISSUER, idp.jwks_url())
            .with_audiences([ENTRA_AUDIENCE])
            .with_required_claim("tid", ENTRA_TENANT),
        ProviderConfig::new(AUTH0_ISSUER, idp.jwks_url())
            .with_audiences([AUTH0_AUDIENCE])
            .with_identity_claim_ref("/sub")
            .with_groups_claim_ref("/permissions"),
    ]);
    let policies: PolicyConfig = serde_json::from_value(serde_json::json!({
        "groups": {"lakefs-data-engineers": ["ReadAll", "WriteData"], "read:data": ["ReadAll"]},
        "policies": {
            "ReadAll": {"statement": [{"effect": "allow", "action": ["fs:Read*", "fs:List*"], "resource": "*"}]},
            "WriteData": {"statement": [{"effect": "allow", "action": "fs:Write*", "resource": "repo/data/*"}]}
        }
    }))
    .map_err(|e| e.to_string())?;
    let verifier = Verifier::new(providers).map_err(|e| e.to_string())?;
    let exchange = Exchange::builder(
        verifier,
        BearerKeys::new(
            "jwt-exchange-quickstart",
            "bearer-1",
            BearerSecret::generate(),
        ),
    )
    .policies(policies)
    .build()
    .map_err(|e| e.to_string())?;

    let now = SystemClock.unix_seconds();
    step(3, "log in with an Entra-shaped client-credentials token");
    let entra_token = rsa.mint(&entra(
        now,
        "7f3c2a9e-1b4d-4e8f-a2c6-5d9e0f1a2b3c",
        &["lakefs-data-engineers"],
    ));
    let login = exchange
        .login(&entra_token)
        .await
        .map_err(|e| format!("entra login: {e}"))?;
    println!(
        "    bearer issued, expires at {} (unix)",
        login.token_expiration
    );

    step(4, "who am I");
    let me = exchange
        .authenticate(login.token.as_str())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "    subject {}\n    groups {:?}\n    policies {:?}",
        me.subject, me.groups, me.policies
    );

    step(
        5,
        "authorize: fs:ReadObject on repo/data/file (expected: allow)",
    );
    let d = exchange
        .authorize(&me, "fs:ReadObject", "repo/data/file")
        .await
        .map_err(|e| e.to_string())?;
    println!("    {}", d.as_str());
    if d != Decision::Allow {
        return Err("expected allow".into());
    }
    step(6, "authorize: fs:DeleteRepository on repo (expected: deny)");
    let d = exchange
        .authorize(&me, "fs:DeleteRepository", "repo")
        .await
        .map_err(|e| e.to_string())?;
    println!("    {}", d.as_str());
    if d.is_allowed() {
        return Err("expected deny".into());
    }

    step(7, "log in with an Auth0-shaped machine-to-machine token");
    let auth0_token = ec.mint(&auth0(
        now,
        "ZYDPLLBWSK3MVQJSIYHB1OR2JXCY0X2C",
        &["read:data"],
    ));
    let l2 = exchange
        .login(&auth0_token)
        .await
        .map_err(|e| format!("auth0 login: {e}"))?;
    let who = exchange
        .authenticate(l2.token.as_str())
        .await
        .map_err(|e| e.to_string())?;
    println!("    subject {}", who.subject);

    step(
        8,
        "a forged token (signed by a key the IdP never published) is refused",
    );
    let forger = TestKey::generate(Algorithm::RS256, "entra-key-1");
    match exchange
        .login(&forger.mint(&entra(now, "attacker", &["lakefs-data-engineers"])))
        .await
    {
        Err(e) => println!("    refused: {e}"),
        Ok(_) => return Err("a forged token was accepted".into()),
    }

    step(
        9,
        "revoke the Entra session; its bearer stops working at once",
    );
    exchange
        .revoke(me.session_id())
        .await
        .map_err(|e| e.to_string())?;
    match exchange.authenticate(login.token.as_str()).await {
        Err(e) => println!("    refused: {e}"),
        Ok(_) => return Err("a revoked bearer was accepted".into()),
    }
    Ok(())
}
