//! Verification order and every check, positive and negative.

use std::time::Duration;

use jwt_exchange::{Algorithm, Malformed, Part, ProviderConfig, VerifyError};
use jwt_exchange_testkit::claims::{
    auth0, AUTH0_AUDIENCE, AUTH0_ISSUER, ENTRA_AUDIENCE, ENTRA_ISSUER, ENTRA_TENANT,
};
use jwt_exchange_testkit::fixtures::{self, FIXTURE_NOW};
use jwt_exchange_testkit::{b64, jwks, JwksServer, TestKey};
use serde_json::{json, Value};

use crate::common::{claims, claims_with, verifier_for, Idp, AUD, ISS, NOW};

async fn verify(idp: &Idp, token: &str) -> Result<jwt_exchange::VerifiedClaims, VerifyError> {
    idp.verifier(idp.provider()).verify(token).await
}

#[tokio::test]
async fn fixture_tokens_verify_entra_and_auth0_shapes() {
    let set: Value = serde_json::from_str(&fixtures::read("jwks.json")).unwrap();
    let server = JwksServer::start(set).await;
    let clock = jwt_exchange::MockClock::at_unix(FIXTURE_NOW + 10);
    let entra_p = ProviderConfig::new(ENTRA_ISSUER, server.jwks_url())
        .with_audiences([ENTRA_AUDIENCE])
        .with_required_claim("tid", ENTRA_TENANT);
    let auth0_p = ProviderConfig::new(AUTH0_ISSUER, server.jwks_url())
        .with_audiences([AUTH0_AUDIENCE])
        .with_identity_claim_ref("/sub")
        .with_groups_claim_ref("/permissions");
    let v = verifier_for(vec![entra_p, auth0_p], &clock);

    let c = v.verify(&fixtures::token("entra-rs256")).await.unwrap();
    assert_eq!(c.issuer, ENTRA_ISSUER);
    assert_eq!(c.identity, "7f3c2a9e-1b4d-4e8f-a2c6-5d9e0f1a2b3c");
    assert_eq!(c.groups, vec!["lakefs-data-engineers", "readers"]);
    assert_eq!(c.algorithm, Algorithm::RS256);
    assert_eq!(c.key_id.as_deref(), Some("rsa-2048"));
    assert_eq!(c.expires_at, FIXTURE_NOW + 3600);

    let c = v.verify(&fixtures::token("entra-eddsa")).await.unwrap();
    assert_eq!(c.algorithm, Algorithm::EdDSA);
    assert_eq!(c.groups, vec!["readers"]);

    let c = v.verify(&fixtures::token("auth0-es256")).await.unwrap();
    assert_eq!(c.identity, "ZYDPLLBWSK3MVQJSIYHB1OR2JXCY0X2C@clients");
    assert_eq!(c.groups, vec!["read:data", "write:data"]);
    assert_eq!(c.algorithm, Algorithm::ES256);
}

#[tokio::test]
async fn fixtures_are_consistent_with_the_testkit_keys() {
    // The checked-in private keys produce the checked-in public JWKS.
    let keys = fixtures::keys();
    let set: Value = serde_json::from_str(&fixtures::read("jwks.json")).unwrap();
    let expected = jwks(&[&keys[0], &keys[1], &keys[2]]);
    assert_eq!(set, expected);
}

#[tokio::test]
async fn auth0_scope_string_is_a_group_list() {
    let idp = Idp::start().await;
    let mut c = auth0(NOW, "client-1", &["read:data", "write:data"]);
    c["iss"] = json!(ISS);
    c["aud"] = json!(AUD);
    let p = idp
        .provider()
        .with_identity_claim_ref("/sub")
        .with_groups_claim_ref("/scope");
    let out = idp.verifier(p).verify(&idp.ec.mint(&c)).await.unwrap();
    assert_eq!(out.groups, vec!["read:data", "write:data"]);
    assert_eq!(out.identity, "client-1@clients");
}

#[tokio::test]
async fn every_asymmetric_algorithm_verifies() {
    let mut keys = Vec::new();
    for (alg, kid) in [
        (Algorithm::RS256, "rs256"),
        (Algorithm::RS384, "rs384"),
        (Algorithm::RS512, "rs512"),
        (Algorithm::PS256, "ps256"),
        (Algorithm::PS384, "ps384"),
        (Algorithm::PS512, "ps512"),
        (Algorithm::ES256, "es256"),
        (Algorithm::ES384, "es384"),
        (Algorithm::EdDSA, "eddsa"),
    ] {
        keys.push(TestKey::generate(alg, kid));
    }
    let refs: Vec<&TestKey> = keys.iter().collect();
    let server = JwksServer::start(jwks(&refs)).await;
    let clock = jwt_exchange::MockClock::at_unix(NOW);
    let v = verifier_for(
        vec![ProviderConfig::new(ISS, server.jwks_url()).with_audiences([AUD])],
        &clock,
    );
    for k in &keys {
        let out = v.verify(&k.mint(&claims())).await;
        assert_eq!(out.map(|c| c.algorithm), Ok(k.alg), "{}", k.alg);
        // The hand-built token (no jsonwebtoken) verifies too.
        assert!(v.verify(&k.mint_raw(&claims())).await.is_ok(), "{}", k.alg);
    }
    assert_eq!(server.jwks_hits(), 1);
}

#[tokio::test]
async fn expiry_boundaries_with_leeway() {
    let idp = Idp::start().await;
    let v = idp.verifier(idp.provider()); // leeway 60 s
    let exp = NOW + 100;
    let t = idp.rsa.mint(&claims_with("exp", json!(exp)));
    idp.clock.set_unix(exp + 60 - 1);
    assert!(v.verify(&t).await.is_ok(), "exp + leeway - 1 is accepted");
    idp.clock.set_unix(exp + 60);
    assert_eq!(
        v.verify(&t).await.unwrap_err(),
        VerifyError::Expired { exp, now: exp + 60 }
    );
}

#[tokio::test]
async fn not_before_boundaries_with_leeway() {
    let idp = Idp::start().await;
    let v = idp.verifier(idp.provider());
    let nbf = NOW + 1000;
    let t = idp.rsa.mint(&claims_with("nbf", json!(nbf)));
    idp.clock.set_unix(nbf - 60);
    assert!(v.verify(&t).await.is_ok(), "nbf - leeway is accepted");
    idp.clock.set_unix(nbf - 60 - 1);
    assert_eq!(
        v.verify(&t).await.unwrap_err(),
        VerifyError::NotYetValid { nbf, now: nbf - 61 }
    );
}

#[tokio::test]
async fn issued_in_the_future_and_max_token_age() {
    let idp = Idp::start().await;
    let v = idp.verifier(idp.provider());
    let mut c = claims();
    c["iat"] = json!(NOW + 60);
    c.as_object_mut().unwrap().remove("nbf");
    assert!(
        v.verify(&idp.rsa.mint(&c)).await.is_ok(),
        "iat = now + leeway"
    );
    c["iat"] = json!(NOW + 61);
    assert_eq!(
        v.verify(&idp.rsa.mint(&c)).await.unwrap_err(),
        VerifyError::IssuedInFuture {
            iat: NOW + 61,
            now: NOW
        }
    );

    let v = idp.verifier(idp.provider().with_max_token_age(Duration::from_secs(300)));
    let old = idp.rsa.mint(&claims_with("iat", json!(NOW - 300 - 60 + 1)));
    assert!(v.verify(&old).await.is_ok());
    let too_old = idp.rsa.mint(&claims_with("iat", json!(NOW - 300 - 60)));
    assert_eq!(
        v.verify(&too_old).await.unwrap_err(),
        VerifyError::TooOld {
            iat: NOW - 360,
            now: NOW
        }
    );
    let no_iat = idp.rsa.mint(&claims_with("iat", Value::Null));
    assert_eq!(
        v.verify(&no_iat).await.unwrap_err(),
        VerifyError::MissingClaim { claim: "iat" }
    );
}

#[tokio::test]
async fn fractional_numeric_dates_are_accepted() {
    let idp = Idp::start().await;
    let t = idp
        .rsa
        .mint(&claims_with("exp", json!((NOW + 10) as f64 + 0.5)));
    assert_eq!(verify(&idp, &t).await.unwrap().expires_at, NOW + 10);
}

#[tokio::test]
async fn wrong_claim_types_are_errors_never_absent() {
    let idp = Idp::start().await;
    let cases: Vec<(&str, Value, VerifyError)> = vec![
        (
            "exp",
            json!(String::from("9999999999")),
            VerifyError::InvalidClaimType { claim: "exp" },
        ),
        (
            "exp",
            Value::Null,
            VerifyError::MissingClaim { claim: "exp" },
        ),
        (
            "nbf",
            json!("0"),
            VerifyError::InvalidClaimType { claim: "nbf" },
        ),
        (
            "iat",
            json!(true),
            VerifyError::InvalidClaimType { claim: "iat" },
        ),
        (
            "aud",
            json!(42),
            VerifyError::InvalidClaimType { claim: "aud" },
        ),
        (
            "aud",
            json!([AUD, 42]),
            VerifyError::InvalidClaimType { claim: "aud" },
        ),
        (
            "iss",
            json!([ISS]),
            VerifyError::InvalidClaimType { claim: "iss" },
        ),
        (
            "iss",
            Value::Null,
            VerifyError::MissingClaim { claim: "iss" },
        ),
        (
            "sub",
            json!({"id": 1}),
            VerifyError::InvalidClaimType { claim: "sub" },
        ),
        (
            "jti",
            json!(7),
            VerifyError::InvalidClaimType { claim: "jti" },
        ),
    ];
    for (claim, value, want) in cases {
        let t = idp.rsa.mint(&claims_with(claim, value.clone()));
        assert_eq!(
            verify(&idp, &t).await.unwrap_err(),
            want,
            "{claim} = {value}"
        );
    }
}

#[tokio::test]
async fn audience_rules() {
    let idp = Idp::start().await;
    let ok = idp.rsa.mint(&claims_with("aud", json!(["other", AUD])));
    assert!(
        verify(&idp, &ok).await.is_ok(),
        "one of several audiences matches"
    );
    let wrong = idp.rsa.mint(&claims_with("aud", json!("api://other")));
    assert_eq!(
        verify(&idp, &wrong).await.unwrap_err(),
        VerifyError::InvalidAudience
    );
    let none = idp.rsa.mint(&claims_with("aud", Value::Null));
    assert_eq!(
        verify(&idp, &none).await.unwrap_err(),
        VerifyError::MissingClaim { claim: "aud" }
    );
    // Empty `audiences` skips the check (but not the type check).
    let mut p = idp.provider();
    p.audiences.clear();
    let v = idp.verifier(p);
    assert!(v.verify(&wrong).await.is_ok());
    assert!(v.verify(&none).await.is_ok());
    let bad_type = idp.rsa.mint(&claims_with("aud", json!(1)));
    assert!(v.verify(&bad_type).await.is_err());
}

#[tokio::test]
async fn required_claims_isolate_tenants() {
    let idp = Idp::start().await;
    let p = idp
        .provider()
        .with_required_claim("tid", "tenant-a")
        .with_required_claim("/org/id", "org-1");
    let v = idp.verifier(p);
    let mut c = claims();
    c["tid"] = json!("tenant-a");
    c["org"] = json!({"id": "org-1"});
    assert!(v.verify(&idp.rsa.mint(&c)).await.is_ok());

    let mut other_tenant = c.clone();
    other_tenant["tid"] = json!("tenant-b");
    assert_eq!(
        v.verify(&idp.rsa.mint(&other_tenant)).await.unwrap_err(),
        VerifyError::RequiredClaimMismatch {
            claim: "tid".into()
        }
    );
    let mut other_org = c.clone();
    other_org["org"] = json!({"id": "org-2"});
    assert_eq!(
        v.verify(&idp.rsa.mint(&other_org)).await.unwrap_err(),
        VerifyError::RequiredClaimMismatch {
            claim: "/org/id".into()
        }
    );
    let mut not_string = c.clone();
    not_string["tid"] = json!(["tenant-a"]);
    assert!(v.verify(&idp.rsa.mint(&not_string)).await.is_err());
    let mut missing = c;
    missing.as_object_mut().unwrap().remove("tid");
    assert!(v.verify(&idp.rsa.mint(&missing)).await.is_err());
}

#[tokio::test]
async fn identity_and_groups_claims() {
    let idp = Idp::start().await;
    for bad in [Value::Null, json!(""), json!(17), json!(["a"])] {
        let t = idp.rsa.mint(&claims_with("oid", bad.clone()));
        assert_eq!(
            verify(&idp, &t).await.unwrap_err(),
            VerifyError::InvalidIdentity {
                pointer: "/oid".into()
            },
            "oid = {bad}"
        );
    }
    let t = idp.rsa.mint(&claims_with("roles", json!(["a", 1])));
    assert_eq!(
        verify(&idp, &t).await.unwrap_err(),
        VerifyError::InvalidGroups {
            pointer: "/roles".into()
        }
    );
    let t = idp.rsa.mint(&claims_with("roles", Value::Null));
    assert_eq!(verify(&idp, &t).await.unwrap().groups, Vec::<String>::new());
    // Keycloak-style nested roles through a JSON Pointer.
    let p = idp.provider().with_groups_claim_ref("/realm_access/roles");
    let t = idp
        .rsa
        .mint(&claims_with("realm_access", json!({"roles": ["kc-admin"]})));
    assert_eq!(
        idp.verifier(p).verify(&t).await.unwrap().groups,
        vec!["kc-admin"]
    );
}

fn unsigned(header: &Value, payload: &Value, sig: &str) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string()),
        b64(payload.to_string()),
        sig
    )
}

#[tokio::test]
async fn alg_none_in_every_case_variant_is_refused() {
    let idp = Idp::start().await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = json!({"alg": alg, "typ": "JWT"});
        let stripped = unsigned(&h, &claims(), "");
        assert_eq!(
            verify(&idp, &stripped).await.unwrap_err(),
            VerifyError::Malformed(Malformed::EmptySegment(Part::Signature))
        );
        let with_sig = unsigned(&h, &claims(), "AAAA");
        assert_eq!(
            verify(&idp, &with_sig).await.unwrap_err(),
            VerifyError::UnsupportedAlgorithm
        );
    }
}

#[tokio::test]
async fn hmac_signed_with_the_public_key_is_refused() {
    use aws_lc_rs::hmac;
    let idp = Idp::start().await;
    let jwk = idp.rsa.public_jwk();
    let secrets: Vec<Vec<u8>> = vec![
        idp.rsa.public_key_bytes(),                     // PKCS#1 DER
        jwk.to_string().into_bytes(),                   // the JWK text
        jwk["n"].as_str().unwrap().as_bytes().to_vec(), // the modulus as published
    ];
    for (alg, h) in [
        ("HS256", hmac::HMAC_SHA256),
        ("HS384", hmac::HMAC_SHA384),
        ("HS512", hmac::HMAC_SHA512),
    ] {
        for secret in &secrets {
            let header = json!({"alg": alg, "typ": "JWT", "kid": "rsa-1"});
            let input = format!("{}.{}", b64(header.to_string()), b64(claims().to_string()));
            let tag = hmac::sign(&hmac::Key::new(h, secret), input.as_bytes());
            let t = format!("{input}.{}", b64(tag.as_ref()));
            assert_eq!(
                verify(&idp, &t).await.unwrap_err(),
                VerifyError::UnsupportedAlgorithm
            );
        }
    }
}

#[tokio::test]
async fn header_alg_must_fit_the_key() {
    let idp = Idp::start().await;
    // The RSA JWK is bound to RS256; a PS256 signature by the same key is refused.
    let header = json!({"alg": "PS256", "kid": "rsa-1"}).to_string();
    let t = idp
        .rsa
        .sign_raw(Algorithm::PS256, &header, &claims().to_string());
    assert_eq!(
        verify(&idp, &t).await.unwrap_err(),
        VerifyError::KeyAlgorithmMismatch {
            alg: Algorithm::PS256
        }
    );
    // ES256 header naming the RSA key.
    let header = json!({"alg": "ES256", "kid": "rsa-1"}).to_string();
    let t = idp
        .ec
        .sign_raw(Algorithm::ES256, &header, &claims().to_string());
    assert_eq!(
        verify(&idp, &t).await.unwrap_err(),
        VerifyError::KeyAlgorithmMismatch {
            alg: Algorithm::ES256
        }
    );
    // Outside the provider's allow-list.
    let v = idp.verifier(idp.provider().with_algorithms(vec![Algorithm::ES256]));
    assert_eq!(
        v.verify(&idp.rsa.mint(&claims())).await.unwrap_err(),
        VerifyError::AlgorithmNotAllowed {
            alg: Algorithm::RS256
        }
    );
}

#[tokio::test]
async fn encryption_keys_never_verify() {
    let idp = Idp::start().await;
    let mut enc = idp.rsa.public_jwk();
    enc["use"] = json!("enc");
    enc["kid"] = json!("enc-1");
    let mut set = jwks(&[&idp.ec]);
    set["keys"].as_array_mut().unwrap().push(enc);
    idp.server.set_jwks(set);
    let header = json!({"alg": "RS256", "kid": "enc-1"}).to_string();
    let t = idp
        .rsa
        .sign_raw(Algorithm::RS256, &header, &claims().to_string());
    assert_eq!(
        verify(&idp, &t).await.unwrap_err(),
        VerifyError::UnknownKeyId
    );
}

#[tokio::test]
async fn psychic_ecdsa_signature_is_refused() {
    let idp = Idp::start().await;
    let header = json!({"alg": "ES256", "kid": "ec-1"});
    for sig in [
        vec![0u8; 64],
        vec![0u8; 0x40].into_iter().chain([0u8; 0]).collect(),
    ] {
        let t = unsigned(&header, &claims(), &b64(&sig));
        assert_eq!(
            verify(&idp, &t).await.unwrap_err(),
            VerifyError::InvalidSignature
        );
    }
    // r = s = n (the group order) is just as invalid.
    let n = hex_to_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let t = unsigned(&header, &claims(), &b64([n.clone(), n].concat()));
    assert_eq!(
        verify(&idp, &t).await.unwrap_err(),
        VerifyError::InvalidSignature
    );
}

fn hex_to_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn token_supplied_keys_are_never_used_or_fetched() {
    let idp = Idp::start().await;
    let attacker = TestKey::generate(Algorithm::RS256, "attacker");
    let evil = JwksServer::start(jwks(&[&attacker])).await;
    let cases = [
        (
            "jwk",
            json!({"alg": "RS256", "kid": "attacker", "jwk": attacker.public_jwk()}),
        ),
        (
            "jku",
            json!({"alg": "RS256", "kid": "attacker", "jku": evil.jwks_url()}),
        ),
        (
            "x5u",
            json!({"alg": "RS256", "kid": "attacker", "x5u": format!("{}/cert.pem", evil.base_url())}),
        ),
        (
            "x5c",
            json!({"alg": "RS256", "kid": "attacker", "x5c": ["MIIB"]}),
        ),
    ];
    for (param, header) in cases {
        let t = attacker.sign_raw(Algorithm::RS256, &header.to_string(), &claims().to_string());
        assert_eq!(
            verify(&idp, &t).await.unwrap_err(),
            VerifyError::ForbiddenHeaderParameter { param },
        );
    }
    assert_eq!(evil.total_hits(), 0, "the attacker's server saw no request");
}

/// A `kid` over 256 bytes is refused when the header is read, before any key lookup or fetch.
#[tokio::test]
async fn an_oversized_kid_is_an_invalid_header() {
    let idp = Idp::start().await;
    let v = idp.verifier(idp.provider());
    v.refresh_keys().await.unwrap();
    let hits = idp.server.jwks_hits();
    let sign = |kid: &str| {
        idp.rsa.sign_raw(
            Algorithm::RS256,
            &json!({"alg": "RS256", "kid": kid}).to_string(),
            &claims().to_string(),
        )
    };
    assert_eq!(
        v.verify(&sign(&"k".repeat(257))).await.unwrap_err(),
        VerifyError::InvalidHeader { param: "kid" }
    );
    assert_eq!(
        idp.server.jwks_hits(),
        hits,
        "no fetch for a refused header"
    );
    // 256 bytes is a `kid` like any other: unknown here, so it costs the one refetch.
    assert_eq!(
        v.verify(&sign(&"k".repeat(256))).await.unwrap_err(),
        VerifyError::UnknownKeyId
    );
}

#[tokio::test]
async fn crit_b64_and_typ() {
    let idp = Idp::start().await;
    let sign = |h: Value| {
        idp.rsa
            .sign_raw(Algorithm::RS256, &h.to_string(), &claims().to_string())
    };
    assert_eq!(
        verify(
            &idp,
            &sign(json!({"alg":"RS256","kid":"rsa-1","crit":["exp"],"exp":1}))
        )
        .await
        .unwrap_err(),
        VerifyError::CriticalHeader
    );
    assert_eq!(
        verify(
            &idp,
            &sign(json!({"alg":"RS256","kid":"rsa-1","b64":false}))
        )
        .await
        .unwrap_err(),
        VerifyError::ForbiddenHeaderParameter { param: "b64" }
    );
    assert_eq!(
        verify(
            &idp,
            &sign(json!({"alg":"RS256","kid":"rsa-1","typ":"dpop+jwt"}))
        )
        .await
        .unwrap_err(),
        VerifyError::DisallowedType
    );
    for typ in ["JWT", "at+jwt", "application/at+JWT"] {
        assert!(
            verify(&idp, &sign(json!({"alg":"RS256","kid":"rsa-1","typ":typ})))
                .await
                .is_ok(),
            "{typ}"
        );
    }
}

#[tokio::test]
async fn size_and_shape() {
    let idp = Idp::start().await;
    let mut big = claims();
    big["pad"] = json!("x".repeat(20_000));
    let t = idp.rsa.mint(&big);
    assert!(matches!(
        verify(&idp, &t).await.unwrap_err(),
        VerifyError::TooLarge { max: 16384, .. }
    ));

    let good = idp.rsa.mint(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    let cases: Vec<(String, VerifyError)> = vec![
        (
            format!("{}.{}", parts[0], parts[1]),
            Malformed::SegmentCount { count: 2 }.into(),
        ),
        (
            format!("{good}.x.y"),
            Malformed::SegmentCount { count: 5 }.into(),
        ),
        (
            format!("{}.{}.", parts[0], parts[1]),
            Malformed::EmptySegment(Part::Signature).into(),
        ),
        (
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            Malformed::Base64(Part::Header).into(),
        ),
        (
            format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
            Malformed::Base64(Part::Signature).into(),
        ),
        (
            format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
            Malformed::Json(Part::Header).into(),
        ),
        (
            format!("{}.{}.{}", parts[0], b64("[1,2]"), parts[2]),
            Malformed::NotAnObject(Part::Payload).into(),
        ),
        (String::new(), Malformed::SegmentCount { count: 1 }.into()),
        (
            json!({"payload": parts[1], "signatures": []}).to_string(),
            Malformed::SegmentCount { count: 1 }.into(),
        ),
    ];
    for (t, want) in cases {
        assert_eq!(verify(&idp, &t).await.unwrap_err(), want);
    }
    // A JWE (five segments) is refused before anything is decoded.
    let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d";
    assert_eq!(
        verify(&idp, jwe).await.unwrap_err(),
        Malformed::SegmentCount { count: 5 }.into()
    );
}

#[tokio::test]
async fn duplicate_members_are_refused() {
    let idp = Idp::start().await;
    let h = r#"{"alg":"RS256","kid":"rsa-1","kid":"rsa-1"}"#;
    let t = idp.rsa.sign_raw(Algorithm::RS256, h, &claims().to_string());
    assert_eq!(
        verify(&idp, &t).await.unwrap_err(),
        Malformed::DuplicateMember(Part::Header).into()
    );
    let body = claims().to_string();
    let dup = body.replacen('{', "{\"iss\":\"https://evil.test/\",", 1);
    let t = idp
        .rsa
        .sign_raw(Algorithm::RS256, r#"{"alg":"RS256","kid":"rsa-1"}"#, &dup);
    assert_eq!(
        verify(&idp, &t).await.unwrap_err(),
        Malformed::DuplicateMember(Part::Payload).into()
    );
}

#[tokio::test]
async fn issuer_routing_keeps_keys_apart() {
    let a = Idp::start().await;
    let b_key = TestKey::generate(Algorithm::RS256, "rsa-1"); // same kid as A's key
    let b = JwksServer::start(jwks(&[&b_key])).await;
    let b_iss = "https://other-idp.test/";
    let v = verifier_for(
        vec![
            a.provider(),
            ProviderConfig::new(b_iss, b.jwks_url()).with_audiences([AUD]),
        ],
        &a.clock,
    );
    // A's key signs a token claiming B's issuer: B's key (same kid) must not accept it.
    let forged = a.rsa.mint(&claims_with("iss", json!(b_iss)));
    assert_eq!(
        v.verify(&forged).await.unwrap_err(),
        VerifyError::InvalidSignature
    );
    // And B's key does not verify A's tokens.
    let forged = b_key.mint(&claims());
    assert_eq!(
        v.verify(&forged).await.unwrap_err(),
        VerifyError::InvalidSignature
    );
    assert!(v.verify(&a.rsa.mint(&claims())).await.is_ok());
    assert!(v
        .verify(&b_key.mint(&claims_with("iss", json!(b_iss))))
        .await
        .is_ok());
    let unknown = a
        .rsa
        .mint(&claims_with("iss", json!("https://nobody.test/")));
    assert_eq!(
        v.verify(&unknown).await.unwrap_err(),
        VerifyError::UnknownIssuer
    );
}

#[tokio::test]
async fn tokens_without_kid_need_exactly_one_fitting_key() {
    let idp = Idp::start().await;
    let no_kid = |k: &TestKey| {
        let h = json!({"alg": k.alg.as_str(), "typ": "JWT"}).to_string();
        k.sign_raw(k.alg, &h, &claims().to_string())
    };
    // One RSA, one EC, one Ed25519 key: each alg has exactly one fitting key.
    assert!(verify(&idp, &no_kid(&idp.rsa)).await.is_ok());
    assert!(verify(&idp, &no_kid(&idp.ed)).await.is_ok());
    // A second RSA key makes an RS256 token without kid ambiguous.
    let rsa2 = TestKey::generate(Algorithm::RS256, "rsa-2");
    idp.server.set_jwks(jwks(&[&idp.rsa, &rsa2, &idp.ec]));
    let idp_v = idp.verifier(idp.provider());
    assert_eq!(
        idp_v.verify(&no_kid(&idp.rsa)).await.unwrap_err(),
        VerifyError::NoUniqueKey
    );
    assert!(idp_v.verify(&no_kid(&idp.ec)).await.is_ok());
}

#[tokio::test]
async fn duplicate_kids_make_that_kid_ambiguous() {
    let idp = Idp::start().await;
    let twin = TestKey::generate(Algorithm::RS256, "rsa-1");
    idp.server.set_jwks(jwks(&[&idp.rsa, &twin, &idp.ec]));
    let v = idp.verifier(idp.provider());
    assert_eq!(
        v.verify(&idp.rsa.mint(&claims())).await.unwrap_err(),
        VerifyError::AmbiguousKeyId
    );
    assert!(
        v.verify(&idp.ec.mint(&claims())).await.is_ok(),
        "other kids still work"
    );
}

#[tokio::test]
async fn signature_by_another_key_with_the_same_kid_is_refused() {
    let idp = Idp::start().await;
    let impostor = TestKey::generate(Algorithm::RS256, "rsa-1");
    let t = impostor.mint(&claims());
    assert_eq!(
        verify(&idp, &t).await.unwrap_err(),
        VerifyError::InvalidSignature
    );
    // Tampering with the payload of a genuine token.
    let good = idp.rsa.mint(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    let evil = b64(claims_with("oid", json!("admin")).to_string());
    let t = format!("{}.{}.{}", parts[0], evil, parts[2]);
    assert_eq!(
        verify(&idp, &t).await.unwrap_err(),
        VerifyError::InvalidSignature
    );
}

#[tokio::test]
async fn error_messages_never_contain_token_material() {
    let idp = Idp::start().await;
    let mut c = claims();
    c["oid"] = json!("secret-identity-value");
    c["tid"] = json!("tenant-secret-value");
    let v = idp.verifier(idp.provider().with_required_claim("tid", "tenant-a"));
    let t = idp.rsa.mint(&c);
    let e = v.verify(&t).await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("tenant-secret-value"), "{shown}");
    assert!(!shown.contains("secret-identity-value"), "{shown}");
    for part in t.split('.') {
        assert!(!shown.contains(part), "{shown}");
    }
}

/// The verifier remembers decoded headers of tokens that verified; a later token with the same
/// header bytes must still pass every check that depends on its provider and its signature.
#[tokio::test]
async fn a_remembered_header_is_still_checked_per_provider_and_signature() {
    let a = Idp::start().await;
    let b = JwksServer::start(jwks(&[&a.rsa])).await;
    let b_iss = "https://es-only.test/";
    let v = verifier_for(
        vec![
            a.provider(),
            ProviderConfig::new(b_iss, b.jwks_url())
                .with_audiences([AUD])
                .with_algorithms([Algorithm::ES256]),
        ],
        &a.clock,
    );
    let good = a.rsa.mint(&claims());
    assert!(v.verify(&good).await.is_ok());
    assert!(
        v.verify(&good).await.is_ok(),
        "and again, header remembered"
    );
    // Same key, same header bytes, but issued for a provider that allows only ES256.
    let other = a.rsa.mint(&claims_with("iss", json!(b_iss)));
    assert_eq!(other.split('.').next(), good.split('.').next());
    assert_eq!(
        v.verify(&other).await.unwrap_err(),
        VerifyError::AlgorithmNotAllowed {
            alg: Algorithm::RS256
        }
    );
    // Same header bytes, tampered payload: the signature still decides.
    let parts: Vec<&str> = good.split('.').collect();
    let evil = b64(claims_with("oid", json!("admin")).to_string());
    assert_eq!(
        v.verify(&format!("{}.{}.{}", parts[0], evil, parts[2]))
            .await
            .unwrap_err(),
        VerifyError::InvalidSignature
    );
    // A header that never verified is decoded and refused as before.
    let none = unsigned(&json!({"alg": "none"}), &claims(), "AAAA");
    assert_eq!(
        v.verify(&none).await.unwrap_err(),
        VerifyError::UnsupportedAlgorithm
    );
}
