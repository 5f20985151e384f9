//! Property-based tests (proptest) of every entry point that parses hostile input: token
//! verification, JWKS parsing, configuration parsing, JSON Pointer evaluation, bearer checks and
//! (with `axum`) the login / token-endpoint request bodies.
//!
//! The same entry points are fuzzed with cargo-fuzz (`fuzz/`, `docs/fuzzing.md`); these
//! properties are the bounded version CI runs on every change. Each property runs a fixed number
//! of random cases (a few hundred; `JWTX_PROPTEST_CASES` overrides them all), so the whole module
//! stays well under 30 s in a debug build. A failure prints the minimal (shrunk) input.
//!
//! Invariants, besides "never panics":
//! * a valid token changed in any way (characters, segments, claims re-encoded under the old
//!   signature, `alg` swapped) never verifies; only the unchanged token does;
//! * tokens with random headers and claims, signed by keys that are not in the JWKS (even with a
//!   published `kid`), never verify;
//! * a key set parsed from random bytes or random JWK-shaped JSON has 1..=256 keys, and never
//!   verifies a token signed by an unpublished key;
//! * JSON Pointer agrees with `serde_json::Value::pointer` on well-formed pointers, resolves
//!   every path of a document to its node, and the configuration check accepts exactly the
//!   well-formed pointers;
//! * a provider configuration that validates builds a verifier and survives a serialize / parse
//!   round trip; random YAML / JSON text never panics the parsers;
//! * a changed bearer never authenticates;
//! * the login and token endpoints answer only 200 / 400 / 401 / 413 / 415 to random bodies,
//!   every refused token gets the one constant body, and no answer echoes the input.

use jwt_exchange::jwks::MAX_KEYS;
use jwt_exchange::session::{BearerKeys, BearerSecret};
use jwt_exchange::{Algorithm, Exchange, KeySet, ProviderConfig, Providers, Verifier};
use jwt_exchange_testkit::{b64, jwks, TestKey};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};

use crate::common::{claims, Idp, AUD, ISS, NOW};

/// A runner with `cases` cases (or `JWTX_PROPTEST_CASES`), no regression files.
fn runner(cases: u32) -> TestRunner {
    let cases = std::env::var("JWTX_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cases);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// A multi-threaded runtime: the loopback IdP keeps answering while a case blocks on it.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `prop` over `strategy` and fails the test with the shrunk input.
fn check<S: Strategy>(
    cases: u32,
    strategy: S,
    prop: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    if let Err(e) = runner(cases).run(&strategy, prop) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies

/// Characters a mutation inserts: the base64url alphabet, separators and a few hostile bytes.
fn mutation_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => proptest::char::ranges(vec!['A'..='Z', 'a'..='z', '0'..='9'].into()),
        2 => prop::sample::select(vec!['-', '_', '.', '=', '+', '/', ' ', '\n', '\0', 'é', '~']),
    ]
}

/// One edit of a token string.
#[derive(Clone, Debug)]
enum Edit {
    Replace(Index, char),
    Insert(Index, char),
    Delete(Index),
    Truncate(Index),
    SwapSegments(Index, Index),
    DuplicateSegment(Index),
    DropSegment(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<Index>(), mutation_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
        2 => (any::<Index>(), mutation_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
        2 => any::<Index>().prop_map(Edit::Delete),
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapSegments(a, b)),
        1 => any::<Index>().prop_map(Edit::DuplicateSegment),
        1 => any::<Index>().prop_map(Edit::DropSegment),
    ]
}

fn apply(token: &str, edit: &Edit) -> String {
    let chars: Vec<char> = token.chars().collect();
    let segs: Vec<&str> = token.split('.').collect();
    let join = |v: Vec<&str>| v.join(".");
    match edit {
        Edit::Replace(i, c) => {
            let mut c2 = chars.clone();
            c2[i.index(chars.len())] = *c;
            c2.into_iter().collect()
        }
        Edit::Insert(i, c) => {
            let mut c2 = chars.clone();
            c2.insert(i.index(chars.len() + 1), *c);
            c2.into_iter().collect()
        }
        Edit::Delete(i) => {
            let mut c2 = chars.clone();
            c2.remove(i.index(chars.len()));
            c2.into_iter().collect()
        }
        Edit::Truncate(i) => chars[..i.index(chars.len())].iter().collect(),
        Edit::SwapSegments(a, b) => {
            let mut s = segs.clone();
            s.swap(a.index(segs.len()), b.index(segs.len()));
            join(s)
        }
        Edit::DuplicateSegment(i) => {
            let mut s = segs.clone();
            let at = i.index(segs.len());
            s.insert(at, segs[at]);
            join(s)
        }
        Edit::DropSegment(i) => {
            let mut s = segs.clone();
            s.remove(i.index(segs.len()));
            join(s)
        }
    }
}

/// A JSON leaf, biased towards values that look like claims.
fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        (NOW - 100_000..NOW + 100_000).prop_map(Value::from),
        "[a-z0-9/~ ._:-]{0,12}".prop_map(Value::String),
        // Any characters, multi-byte ones at every position ("H\u{305}S256" once panicked).
        "[HhRrEe]?.{0,5}".prop_map(Value::String),
        prop::sample::select(vec![
            ISS, AUD, "none", "RS256", "HS256", "rsa-1", "ec-1", ""
        ])
        .prop_map(Value::from),
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z0-9/~]{0,4}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON object (the shape a header or a claim set must have).
fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z0-9/~]{0,4}", json_value(), 0..6)
        .prop_map(|m| m.into_iter().collect())
}

/// A random protected header: a real or hostile `alg`, a published or random `kid`, extras.
fn header() -> impl Strategy<Value = Value> {
    let alg = prop_oneof![
        prop::sample::select(Algorithm::ALL.to_vec()).prop_map(|a| json!(a.as_str())),
        prop::sample::select(vec![
            "none", "None", "HS256", "HS512", "ES512", "RSA-OAEP", ""
        ])
        .prop_map(|s| json!(s)),
        json_leaf(),
    ];
    let kid = prop_oneof![
        prop::sample::select(vec!["rsa-1", "ec-1", "ed-1"]).prop_map(|s| Some(json!(s))),
        Just(None),
        json_leaf().prop_map(Some),
    ];
    let typ = prop_oneof![
        Just(None),
        Just(Some(json!("JWT"))),
        json_leaf().prop_map(Some)
    ];
    (alg, kid, typ, json_object()).prop_map(|(alg, kid, typ, extra)| {
        let mut h = extra;
        h.insert("alg".into(), alg);
        if let Some(k) = kid {
            h.insert("kid".into(), k);
        }
        if let Some(t) = typ {
            h.insert("typ".into(), t);
        }
        Value::Object(h)
    })
}

/// Random claims around the valid ones: each registered claim kept, dropped or replaced.
fn claim_set() -> impl Strategy<Value = Value> {
    let slot = |v: Value| {
        prop_oneof![
            6 => Just(Some(v)),
            1 => Just(None),
            2 => json_value().prop_map(Some),
        ]
    };
    let base = claims();
    let keys = [
        "iss", "aud", "sub", "oid", "roles", "iat", "nbf", "exp", "jti",
    ];
    let slots: Vec<_> = keys.iter().map(|k| slot(base[*k].clone())).collect();
    (slots, json_object()).prop_map(move |(vals, extra)| {
        let mut c = extra;
        for (k, v) in keys.iter().zip(vals) {
            match v {
                Some(v) => c.insert((*k).to_owned(), v),
                None => c.remove(*k),
            };
        }
        Value::Object(c)
    })
}

// ---------------------------------------------------------------------------------------------
// Token verification

#[test]
fn mutated_tokens_never_verify_unless_identical() {
    let rt = runtime();
    let idp = rt.block_on(Idp::start());
    let v = idp.verifier(idp.provider());
    let set_json = jwks(&[&idp.rsa, &idp.ec, &idp.ed]).to_string();
    let set = KeySet::from_json(set_json.as_bytes(), &Algorithm::ALL).unwrap();
    let originals: Vec<String> = [&idp.rsa, &idp.ec, &idp.ed]
        .iter()
        .map(|k| k.mint(&claims()))
        .collect();
    for t in &originals {
        assert!(
            rt.block_on(v.verify(t)).is_ok(),
            "the unchanged token verifies"
        );
    }
    let strategy = (0..originals.len(), prop::collection::vec(edit(), 1..4));
    check(300, strategy, |(which, edits)| {
        let original = &originals[which];
        let mut t = original.clone();
        for e in &edits {
            if t.is_empty() {
                break;
            }
            t = apply(&t, e);
        }
        prop_assume!(t != *original);
        prop_assert!(set.verify_compact(&t).is_err(), "KeySet accepted {t:?}");
        prop_assert!(
            rt.block_on(v.verify(&t)).is_err(),
            "Verifier accepted {t:?}"
        );
        Ok(())
    });
}

#[test]
fn tampered_claims_or_alg_under_the_original_signature_never_verify() {
    let rt = runtime();
    let idp = rt.block_on(Idp::start());
    let v = idp.verifier(idp.provider());
    let keys = [&idp.rsa, &idp.ec, &idp.ed];
    let originals: Vec<String> = keys.iter().map(|k| k.mint(&claims())).collect();
    let strategy = (
        0..originals.len(),
        prop_oneof![
            // Re-encode the payload with one claim changed, keep header and signature.
            (
                prop::sample::select(vec![
                    "iss", "aud", "sub", "oid", "roles", "exp", "nbf", "iat", "tid", "admin"
                ]),
                json_value()
            )
                .prop_map(|(k, v)| (Some((k, v)), None)),
            // Re-encode the header with another `alg`, keep payload and signature.
            prop::sample::select(Algorithm::ALL.to_vec()).prop_map(|a| (None, Some(a))),
        ],
    );
    check(200, strategy, |(which, (claim, alg))| {
        let original = &originals[which];
        let mut segs: Vec<String> = original.split('.').map(str::to_owned).collect();
        if let Some((k, val)) = claim {
            let mut c = claims();
            c[k] = val;
            segs[1] = b64(c.to_string());
        }
        if let Some(a) = alg {
            let h = json!({"alg": a.as_str(), "typ": "JWT", "kid": keys[which].kid});
            segs[0] = b64(h.to_string());
        }
        let t = segs.join(".");
        prop_assume!(t != *original);
        prop_assert!(
            rt.block_on(v.verify(&t)).is_err(),
            "accepted a tampered token"
        );
        Ok(())
    });
}

#[test]
fn random_headers_and_claims_signed_by_unpublished_keys_never_verify() {
    let rt = runtime();
    let idp = rt.block_on(Idp::start());
    let v = idp.verifier(idp.provider());
    // Same kids as the published keys: a forger knows them.
    let forgers = [
        TestKey::generate(Algorithm::RS256, "rsa-1"),
        TestKey::generate(Algorithm::ES256, "ec-1"),
        TestKey::generate(Algorithm::EdDSA, "ed-1"),
        TestKey::generate(Algorithm::ES384, "ec-1"),
    ];
    let signing_alg = |k: &TestKey, i: usize| match k.alg {
        Algorithm::RS256 => [Algorithm::RS256, Algorithm::RS512, Algorithm::PS256][i % 3],
        other => other,
    };
    let strategy = (0..forgers.len(), any::<usize>(), header(), claim_set());
    check(200, strategy, |(which, pick, header, claims)| {
        let k = &forgers[which];
        let t = k.sign_raw(
            signing_alg(k, pick),
            &header.to_string(),
            &claims.to_string(),
        );
        let out = rt.block_on(v.verify(&t));
        prop_assert!(
            out.is_err(),
            "a token signed by an unpublished key verified"
        );
        prop_assert_ne!(out.unwrap_err(), jwt_exchange::VerifyError::KeysUnavailable);
        Ok(())
    });
    // Positive control: the same machinery with the published key does verify.
    let good = idp.rsa.sign_raw(
        Algorithm::RS256,
        &json!({"alg": "RS256", "kid": "rsa-1"}).to_string(),
        &claims().to_string(),
    );
    assert!(rt.block_on(v.verify(&good)).is_ok());
}

#[test]
fn random_token_shaped_strings_never_verify_or_panic() {
    let rt = runtime();
    let idp = rt.block_on(Idp::start());
    let v = idp.verifier(idp.provider());
    let segment = prop_oneof![
        "[A-Za-z0-9_-]{0,40}",
        json_value().prop_map(|j| b64(j.to_string())),
        header().prop_map(|h| b64(h.to_string())),
        claim_set().prop_map(|c| b64(c.to_string())),
        ".{0,20}",
    ];
    check(300, prop::collection::vec(segment, 1..7), |segs| {
        let t = segs.join(".");
        let out = rt.block_on(v.verify(&t));
        prop_assert!(out.is_err());
        // Token material: base64url runs of 16+ characters (shorter ones, or ones with spaces,
        // can be spelled by the constant message text itself: "segments", "instead of").
        let msg = out.unwrap_err().to_string();
        let material = |s: &&str| {
            s.len() >= 16
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        for seg in t.split('.').filter(material) {
            prop_assert!(!msg.contains(seg), "error message contains token bytes");
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// JWKS parsing

/// Tokens signed by keys that are published nowhere, plus HMAC and `none` forgeries.
fn forged_tokens() -> Vec<String> {
    let mut out: Vec<String> = [
        (Algorithm::RS256, "rsa-1"),
        (Algorithm::ES256, "ec-1"),
        (Algorithm::EdDSA, "ed-1"),
    ]
    .iter()
    .flat_map(|(alg, kid)| {
        let k = TestKey::generate(*alg, *kid);
        let no_kid = json!({"alg": alg.as_str()}).to_string();
        [
            k.mint(&claims()),
            k.sign_raw(*alg, &no_kid, &claims().to_string()),
        ]
    })
    .collect();
    for alg in ["none", "HS256"] {
        let h = b64(json!({"alg": alg, "kid": "rsa-1"}).to_string());
        out.push(format!(
            "{h}.{}.{}",
            b64(claims().to_string()),
            b64([0u8; 32])
        ));
    }
    out
}

/// A JWK-shaped object: real members with random, real or borrowed values.
fn jwk(material: Vec<Value>) -> impl Strategy<Value = Value> {
    let kty = prop_oneof![
        prop::sample::select(vec!["RSA", "EC", "OKP", "oct", "rsa", ""]).prop_map(|s| json!(s)),
        json_leaf(),
    ];
    let b64_value = prop_oneof![
        "[A-Za-z0-9_-]{0,64}".prop_map(Value::String),
        prop::collection::vec(any::<u8>(), 0..80).prop_map(|b| Value::String(b64(b))),
        json_leaf(),
    ];
    let member = prop::sample::select(vec![
        "n", "e", "x", "y", "crv", "d", "k", "kid", "use", "alg", "key_ops", "p",
    ]);
    (
        prop::sample::select(material),
        kty,
        prop::collection::vec((member, b64_value), 0..6),
    )
        .prop_map(|(base, kty, members)| {
            let mut o = base.as_object().cloned().unwrap_or_default();
            if o.is_empty() {
                o.insert("kty".into(), kty);
            }
            for (m, v) in members {
                o.insert(m.to_owned(), v);
            }
            Value::Object(o)
        })
}

#[test]
fn key_sets_from_random_input_never_panic_nor_verify_forgeries() {
    let published = [
        TestKey::generate(Algorithm::RS256, "rsa-1"),
        TestKey::generate(Algorithm::ES384, "ec-1"),
        TestKey::generate(Algorithm::EdDSA, "ed-1"),
    ];
    let mut material: Vec<Value> = published.iter().map(|k| k.public_jwk()).collect();
    material.extend(published.iter().map(|k| k.public_jwk_bare()));
    material.push(json!({}));
    let forged = forged_tokens();
    let doc = prop_oneof![
        // Raw bytes.
        prop::collection::vec(any::<u8>(), 0..256).prop_map(|b| (b, false)),
        // Any JSON.
        json_value().prop_map(|v| (v.to_string().into_bytes(), false)),
        // JWK-shaped key sets.
        prop::collection::vec(jwk(material), 0..8)
            .prop_map(|keys| (json!({ "keys": keys }).to_string().into_bytes(), true)),
    ];
    check(400, doc, |(bytes, _)| {
        let Ok(set) = KeySet::from_json(&bytes, &Algorithm::ALL) else {
            return Ok(());
        };
        prop_assert!(!set.is_empty() && set.len() <= MAX_KEYS);
        for t in &forged {
            prop_assert!(set.verify_compact(t).is_err(), "a forgery verified");
        }
        Ok(())
    });
    // Control: the published keys load and verify their own tokens.
    let refs: Vec<&TestKey> = published.iter().collect();
    let set = KeySet::from_json(jwks(&refs).to_string().as_bytes(), &Algorithm::ALL).unwrap();
    assert_eq!(set.len(), 3);
    assert!(set.verify_compact(&published[0].mint(&claims())).is_ok());
}

// ---------------------------------------------------------------------------------------------
// JSON Pointer

fn escape_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Every (pointer, node) pair of a document, root excluded.
fn paths<'a>(prefix: &str, v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{prefix}/{}", escape_token(k));
                out.push((p.clone(), child));
                paths(&p, child, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{prefix}/{i}");
                out.push((p.clone(), child));
                paths(&p, child, out);
            }
        }
        _ => {}
    }
}

fn escapes_are_valid(ptr: &str) -> bool {
    let b = ptr.as_bytes();
    b.iter()
        .enumerate()
        .all(|(i, c)| *c != b'~' || matches!(b.get(i + 1), Some(b'0' | b'1')))
}

#[test]
fn json_pointer_never_panics_and_agrees_with_rfc_6901() {
    let pointer = prop_oneof![
        "(/[a-z0-9~]{0,4}){0,5}",
        "[/~01a-z+-]{0,12}",
        ".{0,16}",
        Just("/00".to_owned()),
        Just("/-".to_owned()),
        Just("/99999999999999999999999".to_owned()),
    ];
    check(
        500,
        (json_object(), pointer, any::<Index>()),
        |(doc, ptr, pick)| {
            let ours = jwt_exchange::pointer(&doc, &ptr);
            let whole = Value::Object(doc.clone());
            if !ptr.is_empty() && escapes_are_valid(&ptr) {
                prop_assert_eq!(ours, whole.pointer(&ptr));
            } else {
                prop_assert_eq!(ours, None);
            }
            // Every node of the document is reachable by its escaped path.
            let mut all = Vec::new();
            paths("", &whole, &mut all);
            if !all.is_empty() {
                let (p, node) = &all[pick.index(all.len())];
                prop_assert_eq!(jwt_exchange::pointer(&doc, p), Some(*node));
            }
            // The configuration accepts exactly the well-formed pointers.
            let accepted = ProviderConfig::new("https://i.example/", "https://i.example/k")
                .with_groups_claim_ref(ptr.clone())
                .validate()
                .is_ok();
            prop_assert_eq!(
                accepted,
                ptr.is_empty() || (ptr.starts_with('/') && escapes_are_valid(&ptr))
            );
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration parsing

/// Valid settings a provider configuration may carry.
fn valid_provider_settings() -> Vec<(&'static str, Value)> {
    vec![
        ("audiences", json!(["api://lakefs"])),
        ("identity_claim_ref", json!("/sub")),
        ("groups_claim_ref", json!("/realm_access/roles")),
        ("leeway", json!("30s")),
        ("session_max_ttl", json!("15m")),
        ("required_claims", json!({"tid": "t-1", "/azp": "c"})),
        ("algorithms", json!(["ES256", "EdDSA"])),
        ("allowed_types", json!(["JWT"])),
        ("max_token_bytes", json!(4096)),
        ("max_token_age", json!("1h 30m")),
        ("jwks_timeout", json!("250ms")),
        ("jwks_max_stale", json!("2days")),
        ("insecure_allow_http", json!(true)),
    ]
}

/// A provider-configuration-shaped JSON object: known keys with plausible or hostile values.
fn provider_json() -> impl Strategy<Value = Value> {
    let duration = prop_oneof![
        prop::sample::select(vec![
            "30s",
            "0s",
            "1ms",
            "5m",
            "1h 30m",
            "24h",
            "-1s",
            "1e400s",
            "",
            "soon",
            "18446744073709551615s",
            "999999999999y",
        ])
        .prop_map(|s| json!(s)),
        json_leaf(),
    ];
    let url = prop_oneof![
        prop::sample::select(vec![
            "https://idp.example/jwks",
            "http://127.0.0.1:9/jwks",
            "http://[::1]:9/k",
            "http://idp.example/jwks",
            "ftp://x/",
            "https://",
            "not a url",
        ])
        .prop_map(|s| json!(s)),
        json_leaf(),
    ];
    let ptr = prop_oneof![
        prop::sample::select(vec!["/oid", "/a~1b", "", "oid", "/~2", "/roles/0"])
            .prop_map(|s| json!(s)),
        json_leaf(),
    ];
    let list = prop_oneof![
        prop::collection::vec("[HhRr]?.{0,4}", 0..3).prop_map(|v| json!(v)),
        Just(json!(["RS256", "ES256"])),
        Just(json!(["HS256"])),
        Just(json!(["none"])),
        Just(json!([])),
        prop::collection::vec(json_leaf(), 0..3).prop_map(Value::Array),
    ];
    let key = prop::sample::select(vec![
        "issuer",
        "jwks_url",
        "discovery_url",
        "audiences",
        "identity_claim_ref",
        "groups_claim_ref",
        "session_max_ttl",
        "leeway",
        "cleanup_interval",
        "required_claims",
        "algorithms",
        "allowed_types",
        "max_token_bytes",
        "max_token_age",
        "jwks_refresh_interval",
        "jwks_refetch_cooldown",
        "jwks_max_stale",
        "jwks_timeout",
        "insecure_allow_http",
        "unknown_key",
    ]);
    let value = prop_oneof![duration, url, ptr, list, json_leaf(), json_value()];
    let valid = prop::sample::subsequence(valid_provider_settings(), 0..8);
    (valid, prop::collection::vec((key, value), 0..4), 0..3u8).prop_map(
        |(settings, hostile, base)| {
            let mut o = Map::new();
            if base > 0 {
                o.insert("issuer".into(), json!("https://idp.example/"));
                o.insert("jwks_url".into(), json!("https://idp.example/jwks"));
            }
            for (k, v) in settings {
                o.insert(k.to_owned(), v);
            }
            // Half the time (when `base` is 2) the valid configuration stays as it is.
            if base != 2 {
                for (k, v) in hostile {
                    o.insert(k.to_owned(), v);
                }
            }
            Value::Object(o)
        },
    )
}

#[test]
fn configuration_parsing_never_panics_and_what_validates_builds() {
    let http = jwt_exchange::JwksCache::http_client(std::time::Duration::from_secs(1));
    let text = prop_oneof![
        // Structured providers (one or a list) as JSON and as YAML text.
        prop::collection::vec(provider_json(), 1..3).prop_map(|ps| {
            let v = if ps.len() == 1 {
                ps[0].clone()
            } else {
                Value::Array(ps)
            };
            vec![
                v.to_string(),
                serde_norway::to_string(&v).unwrap_or_default(),
            ]
        }),
        // Random text, which YAML is very liberal about.
        ".{0,64}".prop_map(|s| vec![s]),
        "[a-z_]{1,12}: [a-z0-9:/ ._-]{0,20}(\n[a-z_]{1,12}: [a-z0-9 -]{0,10}){0,4}"
            .prop_map(|s| vec![s]),
    ];
    let validated = std::sync::atomic::AtomicUsize::new(0);
    check(300, text, |texts| {
        for t in &texts {
            let parsed = [
                serde_json::from_str::<Providers>(t).ok(),
                serde_norway::from_str::<Providers>(t).ok(),
            ];
            for providers in parsed.into_iter().flatten() {
                if providers.validate().is_err() {
                    continue;
                }
                validated.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let built = Verifier::builder(providers.clone())
                    .http_client(http.clone())
                    .background_refresh(false)
                    .build();
                prop_assert!(built.is_ok(), "validated but did not build: {built:?}");
                let json = serde_json::to_string(&providers).unwrap();
                let back: Providers = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(&back, &providers, "round trip through {}", json);
            }
            let _ = serde_norway::from_str::<jwt_exchange::PolicyConfig>(t)
                .map(|p| p.validate().is_ok());
            let _ =
                serde_json::from_str::<jwt_exchange::PolicyConfig>(t).map(|p| p.validate().is_ok());
        }
        Ok(())
    });
    // Not vacuous: a fair share of the generated configurations is valid.
    let validated = validated.into_inner();
    eprintln!("validated configurations: {validated}");
    assert!(validated >= 10, "only {validated} configurations validated");
}

// ---------------------------------------------------------------------------------------------
// Bearers

#[test]
fn changed_bearers_never_authenticate() {
    let rt = runtime();
    let idp = rt.block_on(Idp::start());
    let ex = Exchange::builder(
        idp.verifier(idp.provider()),
        BearerKeys::new(
            "jwt-exchange-props",
            "b1",
            BearerSecret::from_bytes(vec![3u8; 32]).unwrap(),
        ),
    )
    .build()
    .unwrap();
    let bearer = rt
        .block_on(ex.login(&idp.ec.mint(&claims())))
        .unwrap()
        .token
        .as_str()
        .to_owned();
    assert!(rt.block_on(ex.authenticate(&bearer)).is_ok());
    check(300, prop::collection::vec(edit(), 1..4), |edits| {
        let mut t = bearer.clone();
        for e in &edits {
            if t.is_empty() {
                break;
            }
            t = apply(&t, e);
        }
        prop_assume!(t != bearer);
        prop_assert!(
            rt.block_on(ex.authenticate(&t)).is_err(),
            "changed bearer accepted"
        );
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// HTTP request bodies

#[cfg(feature = "axum")]
mod http_bodies {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt as _;
    use jwt_exchange::axum::{INVALID_GRANT_BODY, INVALID_TOKEN_BODY};
    use tower::ServiceExt as _;

    use super::*;

    const CONTENT_TYPES: [Option<&str>; 6] = [
        Some("application/json"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jwt+json; charset=utf-8"),
        Some("text/plain"),
        Some("application/json, application/json"),
        None,
    ];

    async fn send(
        app: &axum::Router,
        path: &str,
        ctype: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let mut req = Request::post(path);
        if let Some(ct) = ctype {
            req = req.header("content-type", ct);
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, bytes)
    }

    fn setup(rt: &tokio::runtime::Runtime) -> (Idp, Exchange, axum::Router) {
        let idp = rt.block_on(Idp::start());
        let ex = Exchange::builder(
            idp.verifier(idp.provider()),
            BearerKeys::new(
                "jwt-exchange-props",
                "b1",
                BearerSecret::from_bytes(vec![5u8; 32]).unwrap(),
            ),
        )
        .build()
        .unwrap();
        let app = jwt_exchange::axum::router(ex.clone());
        (idp, ex, app)
    }

    /// No answer contains a sizeable piece of what was sent.
    fn echoes(answer: &[u8], sent: &[u8]) -> bool {
        const W: usize = 12;
        sent.len() >= W
            && sent
                .windows(W)
                .filter(|w| w.iter().all(u8::is_ascii_alphanumeric))
                .any(|w| answer.windows(W).any(|a| a == w))
    }

    #[test]
    fn random_login_and_token_bodies_get_only_documented_answers() {
        let rt = runtime();
        let (_idp, ex, app) = setup(&rt);
        let body = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            json_value().prop_map(|v| v.to_string().into_bytes()),
            json_value().prop_map(|v| json!({ "token": v }).to_string().into_bytes()),
            "[a-z_]{1,14}=[A-Za-z0-9%.+_-]{0,40}(&[a-z_]{1,14}=[A-Za-z0-9%.+_-]{0,20}){0,4}"
                .prop_map(String::into_bytes),
        ];
        let strategy = (any::<bool>(), 0..CONTENT_TYPES.len(), body);
        check(300, strategy, |(oauth, ct, body)| {
            let path = if oauth {
                "/oauth2/token"
            } else {
                "/auth/jwt/login"
            };
            let (status, answer) = rt.block_on(send(&app, path, CONTENT_TYPES[ct], body.clone()));
            prop_assert!(
                matches!(status.as_u16(), 200 | 400 | 401 | 413 | 415),
                "{} answered {}",
                path,
                status
            );
            if status == StatusCode::OK {
                let v: Value = serde_json::from_slice(&answer).unwrap();
                let bearer = v["token"].as_str().or(v["access_token"].as_str()).unwrap();
                prop_assert!(rt.block_on(ex.authenticate(bearer)).is_ok());
            } else {
                prop_assert!(!echoes(&answer, &body), "the answer echoes the request");
                let v: Value = serde_json::from_slice(&answer).unwrap();
                prop_assert!(v["error"].is_string() && v["error_description"].is_string());
            }
            Ok(())
        });
    }

    #[test]
    fn every_refused_token_gets_the_one_constant_answer() {
        let rt = runtime();
        let (idp, _ex, app) = setup(&rt);
        let good = idp.rsa.mint(&claims());
        let token = prop_oneof![
            prop::collection::vec(edit(), 1..3).prop_map(move |edits| {
                edits.iter().fold(
                    good.clone(),
                    |t, e| if t.is_empty() { t } else { apply(&t, e) },
                )
            }),
            (header(), claim_set()).prop_map(|(h, c)| {
                format!(
                    "{}.{}.{}",
                    b64(h.to_string()),
                    b64(c.to_string()),
                    b64([1u8; 64])
                )
            }),
        ];
        let good = idp.rsa.mint(&claims());
        check(200, token, |t| {
            prop_assume!(t != good && !t.is_empty());
            let login = json!({ "token": t }).to_string().into_bytes();
            let (s, body) = rt.block_on(send(
                &app,
                "/auth/jwt/login",
                Some("application/json"),
                login,
            ));
            prop_assert_eq!(s, StatusCode::UNAUTHORIZED);
            prop_assert_eq!(std::str::from_utf8(&body).unwrap(), INVALID_TOKEN_BODY);
            let form = format!(
                "grant_type={}&assertion={}",
                "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
                url_encode(&t)
            );
            let (s, body) = rt.block_on(send(
                &app,
                "/oauth2/token",
                Some("application/x-www-form-urlencoded"),
                form.into_bytes(),
            ));
            prop_assert_eq!(s, StatusCode::BAD_REQUEST);
            prop_assert_eq!(std::str::from_utf8(&body).unwrap(), INVALID_GRANT_BODY);
            Ok(())
        });
    }

    fn url_encode(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }
}
