//! Google Wycheproof JOSE vectors through the real header / key / signature path
//! ([`KeySet::from_json`] + [`KeySet::verify_compact`]).
//!
//! Every vector passes, or is in [`EXPECTED_DIFFERENCES`] with the reason.

use jwt_exchange::{Algorithm, KeySet};
use serde_json::{json, Value};

/// Vectors whose expected result we deliberately do not match, and why. Besides these, every
/// vector of a symmetric (`oct`, HS*) group that is marked valid is refused: this verifier never
/// accepts symmetric algorithms (see `docs/security.md`).
const EXPECTED_DIFFERENCES: &[(u64, &str)] = &[
    (346, "RFC 7520 Figure 20: a PS384 token verified with a JWK whose `alg` is PS256. A JWK `alg` binds the key to exactly that algorithm (RFC 7517 §4.4), so it is refused."),
    (350, "The same vector with `key_ops: [verify]`; refused for the same reason."),
    (347, "RFC 7520 Figure 27: ES512 on P-521, which is not in the supported algorithm set."),
    (351, "The same vector with `key_ops: [verify]`; ES512 is not supported."),
];

fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/wycheproof")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn key_set_document(group: &Value) -> Option<Value> {
    let public = group.get("public")?;
    if public.get("keys").is_some() {
        Some(public.clone())
    } else {
        Some(json!({ "keys": [public] }))
    }
}

fn is_symmetric_group(group: &Value) -> bool {
    let private = &group["private"];
    private["kty"] == "oct"
        || private["keys"]
            .as_array()
            .is_some_and(|ks| ks.iter().all(|k| k["kty"] == "oct"))
}

fn run(file: &str) -> (usize, usize) {
    let doc = load(file);
    let mut checked = 0;
    let mut allowed = 0;
    let mut failures = Vec::new();
    for group in doc["testGroups"].as_array().unwrap() {
        // Keys are parsed once per group, as a verifier would hold them.
        let set = key_set_document(group)
            .and_then(|d| KeySet::from_json(d.to_string().as_bytes(), &Algorithm::ALL).ok());
        for t in group["tests"].as_array().unwrap() {
            checked += 1;
            // JSON-serialized JWS vectors are objects: give the verifier their JSON text.
            let jws = t["jws"]
                .as_str()
                .map_or_else(|| t["jws"].to_string(), str::to_owned);
            let got_valid = set.as_ref().is_some_and(|s| s.verify_compact(&jws).is_ok());
            let expected = t["result"].as_str().unwrap();
            let ok = match expected {
                "valid" => got_valid,
                "invalid" => !got_valid,
                _ => true, // "acceptable": either outcome is conformant
            };
            if ok {
                continue;
            }
            if expected == "valid"
                && (is_symmetric_group(group)
                    || EXPECTED_DIFFERENCES.iter().any(|(id, _)| t["tcId"] == *id))
            {
                allowed += 1;
                continue;
            }
            failures.push(format!(
                "tcId {} ({}, {}) expected {expected}, got {}",
                t["tcId"],
                group["comment"],
                t["comment"],
                if got_valid { "valid" } else { "invalid" }
            ));
        }
    }
    assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
    (checked, allowed)
}

#[test]
fn json_web_signature_vectors() {
    let (checked, allowed) = run("json_web_signature_test.json");
    assert_eq!(checked, 401);
    assert!(
        allowed > 0 && allowed < 40,
        "{allowed} HMAC vectors skipped by design"
    );
}

#[test]
fn json_web_key_vectors() {
    let (checked, _) = run("json_web_key_test.json");
    assert_eq!(checked, 26);
}
