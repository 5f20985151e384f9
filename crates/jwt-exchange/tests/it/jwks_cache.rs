//! The key cache against a real loopback JWKS server: single flight, cool-down (unknown `kid`s),
//! stale-if-error, rotation, removal, and hostile or broken IdP answers.

use std::sync::Arc;
use std::time::Duration;

use jwt_exchange::{Algorithm, JwksError, ProviderConfig, VerifyError};
use jwt_exchange_testkit::{jwks, Behavior, JwksServer, TestKey};
use serde_json::json;

use crate::common::{claims, verifier_for, Idp, ISS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_kid_under_a_stampede_causes_exactly_one_fetch() {
    let idp = Idp::start().await;
    let v = idp.verifier(idp.provider());
    v.refresh_keys().await.unwrap();
    assert_eq!(idp.server.jwks_hits(), 1);
    // Past the cool-down, the IdP rotates in a new key.
    idp.clock.advance(Duration::from_secs(31));
    let new = TestKey::generate(Algorithm::ES256, "ec-2");
    idp.server.set_jwks(jwks(&[&idp.rsa, &idp.ec, &new]));
    let token = Arc::new(new.mint(&claims()));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (v, t) = (v.clone(), Arc::clone(&token));
        tasks.push(tokio::spawn(async move { v.verify(&t).await.map(|_| ()) }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(()));
    }
    assert_eq!(
        idp.server.jwks_hits(),
        2,
        "exactly one refetch for 1,000 logins"
    );
}

#[tokio::test]
async fn unknown_kids_are_rate_limited_by_the_cooldown() {
    let idp = Idp::start().await;
    let v = idp.verifier(idp.provider());
    v.refresh_keys().await.unwrap();
    let stranger = TestKey::generate(Algorithm::RS256, "not-published");
    let t = stranger.mint(&claims());
    // Inside the cool-down after the initial fetch: no refetch at all.
    assert_eq!(v.verify(&t).await.unwrap_err(), VerifyError::UnknownKeyId);
    assert_eq!(idp.server.jwks_hits(), 1);
    // Past it: one refetch, then quiet again.
    idp.clock.advance(Duration::from_secs(30));
    assert_eq!(v.verify(&t).await.unwrap_err(), VerifyError::UnknownKeyId);
    assert_eq!(idp.server.jwks_hits(), 2);
    for _ in 0..10 {
        assert_eq!(v.verify(&t).await.unwrap_err(), VerifyError::UnknownKeyId);
    }
    assert_eq!(idp.server.jwks_hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_kid_flood_costs_at_most_one_fetch_per_cooldown() {
    let idp = Idp::start().await;
    let v = idp.verifier(idp.provider());
    v.refresh_keys().await.unwrap();
    idp.clock.advance(Duration::from_secs(31));
    let header_for = |i: usize| json!({"alg": "RS256", "kid": format!("random-{i}")}).to_string();
    let body = claims().to_string();
    let mut tasks = Vec::new();
    for i in 0..10_000 {
        let t = idp.rsa.sign_raw(Algorithm::RS256, &header_for(i), &body);
        let vc = v.clone();
        tasks.push(tokio::spawn(async move { vc.verify(&t).await }));
        if i % 1000 == 999 {
            // Known-kid logins keep working during the flood.
            assert!(v.verify(&idp.rsa.mint(&claims())).await.is_ok());
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap_err(), VerifyError::UnknownKeyId);
    }
    assert_eq!(idp.server.jwks_hits(), 2, "one refetch for the whole flood");
}

#[tokio::test]
async fn rotation_and_removal() {
    let idp = Idp::start().await;
    let v = idp.verifier(
        idp.provider()
            .with_jwks_refetch_cooldown(Duration::from_secs(5)),
    );
    assert!(v.verify(&idp.rsa.mint(&claims())).await.is_ok());
    assert_eq!(idp.server.jwks_hits(), 1, "first token fetched the keys");
    // Rotate: rsa-2 replaces rsa-1.
    let rsa2 = TestKey::generate(Algorithm::RS256, "rsa-2");
    idp.server.set_jwks(jwks(&[&rsa2, &idp.ec]));
    idp.clock.advance(Duration::from_secs(6));
    assert!(
        v.verify(&rsa2.mint(&claims())).await.is_ok(),
        "new kid after one refetch"
    );
    assert_eq!(idp.server.jwks_hits(), 2);
    // The removed key no longer verifies once the set has been refreshed.
    assert_eq!(
        v.verify(&idp.rsa.mint(&claims())).await.unwrap_err(),
        VerifyError::UnknownKeyId
    );
}

#[tokio::test]
async fn last_good_keys_serve_until_max_stale() {
    let idp = Idp::start().await;
    let p = idp
        .provider()
        .with_jwks_max_stale(Duration::from_secs(3600));
    let v = idp.verifier(p);
    v.refresh_keys().await.unwrap();
    let good = idp.rsa.mint(&claims_with_exp_far());
    idp.server.set_behavior(Behavior::Status(500));
    idp.clock.advance(Duration::from_secs(1800));
    assert!(v.refresh_keys().await.is_err());
    assert!(v.verify(&good).await.is_ok(), "stale-if-error");
    let status = &v.key_status()[0];
    assert!(status.usable);
    assert_eq!(status.fetch_failures, 1);
    assert!(status.last_error.as_deref().unwrap().contains("500"));
    idp.clock.advance(Duration::from_secs(1800));
    let e = v.verify(&good).await.unwrap_err();
    assert_eq!(e, VerifyError::KeysUnavailable);
    assert!(e.is_unavailable());
    assert!(!v.key_status()[0].usable);
    // The IdP comes back: the next attempt after the cool-down restores service.
    idp.server.set_behavior(Behavior::Serve);
    idp.clock.advance(Duration::from_secs(31));
    assert!(v.verify(&good).await.is_ok());
}

fn claims_with_exp_far() -> serde_json::Value {
    crate::common::claims_with("exp", json!(crate::common::NOW + 86_400))
}

#[tokio::test]
async fn idp_down_at_start_is_unavailable_not_unauthorized() {
    let idp = Idp::start().await;
    idp.server.set_behavior(Behavior::Status(503));
    let v = idp.verifier(idp.provider());
    let e = v.verify(&idp.rsa.mint(&claims())).await.unwrap_err();
    assert_eq!(e, VerifyError::KeysUnavailable);
    // Within the cool-down nobody hammers the IdP.
    let _ = v.verify(&idp.rsa.mint(&claims())).await;
    assert_eq!(idp.server.jwks_hits(), 1);
}

#[tokio::test]
async fn broken_answers_keep_the_previous_set() {
    let idp = Idp::start().await;
    let v = idp.verifier(idp.provider());
    v.refresh_keys().await.unwrap();
    let other = JwksServer::start(jwks(&[&idp.rsa])).await;
    let cases = [
        (Behavior::Garbage, "InvalidDocument"),
        (Behavior::Huge(2 * 1024 * 1024), "TooLarge"),
        (Behavior::HugeWithLength(2 * 1024 * 1024), "TooLarge"),
        (Behavior::Redirect(other.jwks_url()), "Status"),
        (Behavior::Status(404), "Status"),
    ];
    for (b, want) in cases {
        idp.server.set_behavior(b.clone());
        let e = v.refresh_keys().await.unwrap_err();
        assert!(format!("{e:?}").starts_with(want), "{b:?}: {e:?}");
        assert!(v.verify(&idp.rsa.mint(&claims())).await.is_ok(), "{b:?}");
    }
    assert_eq!(other.total_hits(), 0, "redirects are not followed");
    // A set without any usable key is refused too.
    idp.server.set_behavior(Behavior::Serve);
    idp.server
        .set_jwks(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0c2VjcmV0"}]}));
    assert!(matches!(
        v.refresh_keys().await,
        Err(JwksError::NoUsableKeys { skipped: 1 })
    ));
    assert!(v.verify(&idp.rsa.mint(&claims())).await.is_ok());
}

#[tokio::test]
async fn a_stalled_idp_times_out() {
    let idp = Idp::start().await;
    idp.server
        .set_behavior(Behavior::Stall(Duration::from_secs(30)));
    let v = idp.verifier(idp.provider().with_jwks_timeout(Duration::from_millis(200)));
    let started = std::time::Instant::now();
    let e = v.refresh_keys().await.unwrap_err();
    assert!(matches!(e, JwksError::Http(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn discovery_finds_the_jwks_and_checks_the_issuer() {
    let idp = Idp::start().await;
    idp.server.set_discovery_issuer(ISS);
    let p = ProviderConfig::with_discovery(ISS, idp.server.discovery_url())
        .with_audiences([crate::common::AUD]);
    let v = verifier_for(vec![p], &idp.clock);
    assert!(v.verify(&idp.rsa.mint(&claims())).await.is_ok());
    assert_eq!(
        (idp.server.discovery_hits(), idp.server.jwks_hits()),
        (1, 1)
    );

    idp.server.set_discovery_issuer("https://impostor.test/");
    let p = ProviderConfig::with_discovery(ISS, idp.server.discovery_url());
    let v = verifier_for(vec![p], &idp.clock);
    assert!(matches!(
        v.refresh_keys().await,
        Err(JwksError::DiscoveryIssuerMismatch)
    ));
    assert_eq!(
        v.verify(&idp.rsa.mint(&claims())).await.unwrap_err(),
        VerifyError::KeysUnavailable
    );
}

#[tokio::test]
async fn background_refresh_runs_and_stops_when_dropped() {
    let idp = Idp::start().await;
    let p = idp
        .provider()
        .with_jwks_refresh_interval(Duration::from_millis(100));
    let v = jwt_exchange::Verifier::builder(jwt_exchange::Providers(vec![p]))
        .clock(idp.clock.clone())
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(450)).await;
    let seen = idp.server.jwks_hits();
    assert!(
        seen >= 3,
        "initial fetch plus periodic refreshes, saw {seen}"
    );
    drop(v);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after_drop = idp.server.jwks_hits();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        idp.server.jwks_hits(),
        after_drop,
        "no refresh after the verifier is dropped"
    );
}
