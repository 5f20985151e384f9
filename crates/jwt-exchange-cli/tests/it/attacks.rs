//! The attack playbook, over HTTP, against the real `jwt-exchange serve` binary.
//!
//! Every forged, tampered, confused or oversized token gets the one constant `401` body from
//! `POST /auth/jwt/login` (or `400 invalid_grant` from `POST /oauth2/token`); malformed requests
//! get `400` / `413` / `415`. After each playbook the server has created no session
//! (`jwtx_active_sessions 0`, no successful login in `/metrics`), counted every refused token,
//! never contacted a URL named by a token, and its TRACE log holds none of the tokens sent and
//! stays one line per event. Then a positive control logs in, proving the refusals were not a
//! misconfiguration.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use jwt_exchange::axum::{INVALID_GRANT_BODY, INVALID_TOKEN_BODY};
use jwt_exchange::Algorithm;
use jwt_exchange_testkit::{b64, jwks, JwksServer, TestKey};
use serde_json::{json, Value};

use crate::common::{config_yaml, ServerProcess, TempDir};
use crate::probe::{self, Answer, Metrics};

const ISS: &str = "https://idp.attacks.test/";
const TENANT: &str = "tenant-a";
const CLIENT: &str = "client-a";

/// A server pinned to one tenant and client, an IdP with an RSA and a P-256 key, and the record
/// of everything sent.
struct Range {
    idp: JwksServer,
    rsa: TestKey,
    ec: TestKey,
    server: ServerProcess,
    http: reqwest::Client,
    /// Every token and bearer sent, for the log check.
    sent: Vec<String>,
    /// Requests that reached token verification (login or token endpoint).
    verifications: usize,
    _dir: TempDir,
}

impl Range {
    async fn start(tag: &str) -> Range {
        let rsa = TestKey::generate(Algorithm::RS256, "k1");
        let ec = TestKey::generate(Algorithm::ES256, "e1");
        let idp = JwksServer::start(jwks(&[&rsa, &ec])).await;
        let dir = TempDir::new(tag);
        let pinned = format!("      required_claims: {{tid: {TENANT}, azp: {CLIENT}}}");
        let cfg = dir.write(
            "config.yaml",
            &config_yaml(ISS, &idp.jwks_url(), &pinned, ""),
        );
        let server = ServerProcess::start(&cfg, dir.path()).await;
        Range {
            idp,
            rsa,
            ec,
            server,
            http: probe::client(),
            sent: Vec::new(),
            verifications: 0,
            _dir: dir,
        }
    }

    /// Valid claims for this range, with `extra` merged in (`null` removes a claim).
    fn claims(extra: &Value) -> Value {
        let mut c = probe::claims(ISS, "svc-1", &json!({"tid": TENANT, "azp": CLIENT}));
        if let Some(extra) = extra.as_object() {
            for (k, v) in extra {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
        }
        c
    }

    fn base(&self) -> &str {
        &self.server.base
    }

    /// The token must be refused with the one constant 401 body.
    async fn refused(&mut self, case: &str, token: &str) {
        self.sent.push(token.to_owned());
        self.verifications += 1;
        let a = probe::login(&self.http, self.base(), token).await;
        assert_eq!(a.status, 401, "{case}: {}", a.body);
        assert_eq!(a.body, INVALID_TOKEN_BODY, "{case}");
        assert_eq!(a.headers["cache-control"], "no-store", "{case}");
        assert!(
            a.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{case}"
        );
    }

    /// The token must be refused by the token endpoint with the one `invalid_grant` body.
    async fn refused_grant(&mut self, case: &str, token: &str) {
        self.sent.push(token.to_owned());
        self.verifications += 1;
        let a = probe::token_grant(&self.http, self.base(), token).await;
        assert_eq!(a.status, 400, "{case}: {}", a.body);
        assert_eq!(a.body, INVALID_GRANT_BODY, "{case}");
    }

    /// A malformed request: `status` with an `invalid_request` body that echoes nothing.
    async fn malformed(
        &mut self,
        case: &str,
        path: &str,
        ct: Option<&str>,
        body: Vec<u8>,
        status: u16,
    ) {
        let a: Answer = probe::post(&self.http, self.base(), path, ct, body.clone()).await;
        assert_eq!(a.status, status, "{case}: {}", a.body);
        let v: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(v["error"], "invalid_request", "{case}");
        assert_eq!(v.as_object().unwrap().len(), 2, "{case}");
        if let Ok(text) = std::str::from_utf8(&body) {
            for seg in text.split('.').filter(|s| s.len() >= 8) {
                assert!(
                    !a.body.contains(seg),
                    "{case}: the answer echoes the request"
                );
            }
            if text.len() <= 128 * 1024 {
                self.sent.push(text.to_owned());
            }
        }
    }

    /// Checks that nothing got in, then runs a positive control and the log checks.
    async fn finish(mut self) {
        let m = Metrics::fetch(&self.http, self.base()).await;
        assert_eq!(m.logins_succeeded(), 0, "no login succeeded\n{}", m.0);
        assert_eq!(m.active_sessions(), 0, "no session exists\n{}", m.0);
        assert_eq!(
            m.logins_failed(),
            self.verifications as u64,
            "every refused token was counted once\n{}",
            m.0
        );
        // Positive control: the same server lets the right token in.
        let good = self.rsa.mint(&Range::claims(&json!({})));
        let a = probe::login(&self.http, self.base(), &good).await;
        assert_eq!(a.status, 200, "control login: {}", a.body);
        let bearer = serde_json::from_str::<Value>(&a.body).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let who = probe::get_with_bearer(&self.http, self.base(), "/auth/session", &bearer).await;
        assert_eq!(who.status, 200);
        self.sent.push(good);
        self.sent.push(bearer);
        let m = Metrics::fetch(&self.http, self.base()).await;
        assert_eq!(m.logins_succeeded(), 1);
        assert_eq!(m.active_sessions(), 1);
        assert_eq!(
            self.server.child.try_wait().unwrap(),
            None,
            "the server is still running"
        );
        let log = self.server.log_text();
        assert!(
            log.contains("jwt_exchange::audit"),
            "audit events are logged"
        );
        probe::assert_no_secrets(&log, &self.sent);
        probe::assert_log_lines_well_formed(&log);
    }
}

/// `BASE64URL(header).BASE64URL(payload).sig` from JSON text.
fn compact(header: &str, payload: &str, sig: &str) -> String {
    format!("{}.{}.{sig}", b64(header), b64(payload))
}

/// HMAC-signs `header.payload` with `secret` (the classic RS256 → HS256 key confusion).
fn hmac_token(alg: &str, kid: &str, claims: &Value, secret: &[u8]) -> String {
    let h = match alg {
        "HS256" => hmac::HMAC_SHA256,
        "HS384" => hmac::HMAC_SHA384,
        _ => hmac::HMAC_SHA512,
    };
    let header = json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string();
    let input = format!("{}.{}", b64(&header), b64(claims.to_string()));
    let tag = hmac::sign(&hmac::Key::new(h, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// DER length octets.
fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        vec![n as u8]
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        let mut out = vec![0x80 | bytes.len() as u8];
        out.extend(bytes);
        out
    }
}

/// SubjectPublicKeyInfo DER of a PKCS#1 RSA public key.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    let alg_id = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x03];
    bit_string.extend(der_len(pkcs1.len() + 1));
    bit_string.push(0);
    bit_string.extend_from_slice(pkcs1);
    let mut body = alg_id.to_vec();
    body.extend(bit_string);
    let mut out = vec![0x30];
    out.extend(der_len(body.len()));
    out.extend(body);
    out
}

/// PEM armour with 64-column lines and a trailing newline.
fn pem(label: &str, der: &[u8]) -> String {
    let b = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alg_none_hmac_confusion_and_token_supplied_keys_are_refused() {
    let mut r = Range::start("atk-alg").await;
    let c = Range::claims(&json!({})).to_string();

    // alg none, every case variant, stripped / bogus / real signature.
    let real_sig = r.rsa.mint(&Range::claims(&json!({})));
    let real_sig = real_sig.rsplit('.').next().unwrap().to_owned();
    for alg in ["none", "None", "NONE", "nOnE", "NoNe", "none ", " none"] {
        for kid in [None, Some("k1")] {
            let mut h = json!({"alg": alg, "typ": "JWT"});
            if let Some(k) = kid {
                h["kid"] = json!(k);
            }
            let h = h.to_string();
            r.refused(&format!("alg {alg:?} stripped"), &compact(&h, &c, ""))
                .await;
            r.refused(&format!("alg {alg:?} bogus sig"), &compact(&h, &c, "AAAA"))
                .await;
            r.refused(
                &format!("alg {alg:?} real sig"),
                &compact(&h, &c, &real_sig),
            )
            .await;
        }
    }
    // Look-alike and multi-byte names. `"H\u{305}S256"` once panicked the request (a string
    // slice inside a character, found by the `token` fuzz target).
    for alg in [
        "H\u{305}S256",
        "\u{305}",
        "é",
        "ＲＳ256",
        "RS256\u{0}",
        "rs256",
        "RS256 ",
        "ES512",
    ] {
        let h = json!({"alg": alg, "kid": "k1"}).to_string();
        r.refused(&format!("alg {alg:?}"), &compact(&h, &c, &real_sig))
            .await;
        let t = r.rsa.sign_raw(Algorithm::RS256, &h, &c);
        r.refused_grant(&format!("token endpoint, alg {alg:?}"), &t)
            .await;
    }
    r.refused("no alg", &compact(r#"{"kid":"k1"}"#, &c, &real_sig))
        .await;
    r.refused(
        "alg null",
        &compact(r#"{"alg":null,"kid":"k1"}"#, &c, &real_sig),
    )
    .await;
    r.refused(
        "alg array",
        &compact(r#"{"alg":["RS256"],"kid":"k1"}"#, &c, &real_sig),
    )
    .await;

    // HS256/384/512 "signed" with the public key in every encoding an attacker would try.
    let pkcs1 = r.rsa.public_key_bytes();
    let spki = rsa_spki(&pkcs1);
    let jwk = r.rsa.public_jwk();
    let n_text = jwk["n"].as_str().unwrap().to_owned();
    let n_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&n_text)
        .unwrap();
    let jwks_text = jwks(&[&r.rsa, &r.ec]).to_string();
    let pem_pkcs1 = pem("RSA PUBLIC KEY", &pkcs1);
    let pem_spki = pem("PUBLIC KEY", &spki);
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("DER PKCS#1", pkcs1.clone()),
        ("DER SPKI", spki.clone()),
        ("PEM PKCS#1", pem_pkcs1.clone().into_bytes()),
        (
            "PEM PKCS#1 no newline",
            pem_pkcs1.trim_end().as_bytes().to_vec(),
        ),
        ("PEM SPKI", pem_spki.clone().into_bytes()),
        (
            "PEM SPKI no newline",
            pem_spki.trim_end().as_bytes().to_vec(),
        ),
        ("JWK n text", n_text.into_bytes()),
        ("JWK n bytes", n_bytes),
        ("JWK JSON", jwk.to_string().into_bytes()),
        ("JWKS JSON", jwks_text.into_bytes()),
        ("EC point", r.ec.public_key_bytes()),
        ("empty", Vec::new()),
    ];
    let claims = Range::claims(&json!({}));
    for alg in ["HS256", "HS384", "HS512"] {
        for (what, secret) in &secrets {
            for kid in ["k1", "e1"] {
                let t = hmac_token(alg, kid, &claims, secret);
                r.refused(&format!("{alg} with {what}, kid {kid}"), &t)
                    .await;
            }
        }
    }

    // Keys supplied by the token: embedded jwk, jku / x5u at a loopback attacker, x5c.
    let attacker = TestKey::generate(Algorithm::RS256, "attacker");
    let evil = JwksServer::start(jwks(&[&attacker])).await;
    let cert = STANDARD.encode(attacker.public_key_bytes());
    let headers = [
        (
            "jwk",
            json!({"alg": "RS256", "kid": "attacker", "jwk": attacker.public_jwk()}),
        ),
        (
            "jwk with a published kid",
            json!({"alg": "RS256", "kid": "k1", "jwk": attacker.public_jwk()}),
        ),
        (
            "jwk without kid",
            json!({"alg": "RS256", "jwk": attacker.public_jwk()}),
        ),
        (
            "jku",
            json!({"alg": "RS256", "kid": "attacker", "jku": evil.jwks_url()}),
        ),
        (
            "jku with a published kid",
            json!({"alg": "RS256", "kid": "k1", "jku": evil.jwks_url()}),
        ),
        (
            "x5u",
            json!({"alg": "RS256", "kid": "attacker", "x5u": format!("{}/cert.pem", evil.base_url())}),
        ),
        (
            "x5c",
            json!({"alg": "RS256", "kid": "attacker", "x5c": [cert]}),
        ),
        (
            "x5c with a published kid",
            json!({"alg": "RS256", "kid": "k1", "x5c": [cert]}),
        ),
    ];
    for (what, h) in &headers {
        let t = attacker.sign_raw(Algorithm::RS256, &h.to_string(), &c);
        r.refused(&format!("token-supplied key: {what}"), &t).await;
        r.refused_grant(&format!("token endpoint, {what}"), &t)
            .await;
    }
    // Forged with the attacker's key under the published kid, no header tricks at all.
    let t = attacker.sign_raw(Algorithm::RS256, r#"{"alg":"RS256","kid":"k1"}"#, &c);
    r.refused("another key under the published kid", &t).await;
    assert_eq!(
        evil.total_hits(),
        0,
        "the attacker's server was never contacted"
    );
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kid_injection_is_refused_and_stays_out_of_the_log() {
    let mut r = Range::start("atk-kid").await;
    let started = std::time::Instant::now();
    let fetches_before = r.idp.jwks_hits();
    let c = Range::claims(&json!({})).to_string();
    let ten_kib = "A".repeat(10 * 1024);
    let kids: Vec<Value> = vec![
        json!("../../dev/null"),
        json!("../../../../../../etc/passwd"),
        json!("/dev/null"),
        json!("file:///dev/null"),
        json!("' OR '1'='1"),
        json!("k1'; DROP TABLE sessions; --"),
        json!("$(touch /tmp/jwtx-attack-pwned)"),
        json!("`touch /tmp/jwtx-attack-pwned`"),
        json!("k1 | cat /etc/passwd"),
        json!("k1\r\n2026-01-01T00:00:00.000000Z  INFO jwt_exchange::audit: event=\"login\" outcome=\"success\" INJECTED"),
        json!("k1\nINJECTED-LF"),
        json!("k1\rINJECTED-CR"),
        json!("\u{1b}[2J\u{1b}[31mINJECTED-ANSI"),
        json!("k1\u{0}"),
        json!("k1\u{2028}INJECTED-LS"),
        json!("K1"),
        json!("k1 "),
        json!("k1\u{200b}"),
        json!(""),
        json!(ten_kib),
        json!(1),
        json!(-1),
        json!(1e308),
        json!(null),
        json!(true),
        json!(["k1"]),
        json!({"kid": "k1"}),
    ];
    for kid in &kids {
        let h = json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string();
        // Signed by the real key: only the kid is wrong.
        let t = r.rsa.sign_raw(Algorithm::RS256, &h, &c);
        let label: String = kid.to_string().chars().take(40).collect();
        r.refused(&format!("kid {label}"), &t).await;
    }
    // One of them through the token endpoint too.
    let h = json!({"alg": "RS256", "kid": "k1\r\nINJECTED-GRANT"}).to_string();
    let t = r.rsa.sign_raw(Algorithm::RS256, &h, &c);
    r.refused_grant("kid CR/LF at the token endpoint", &t).await;

    assert!(
        !std::path::Path::new("/tmp/jwtx-attack-pwned").exists(),
        "no shell ran"
    );
    // Unknown kids refetch at most once per 1 s cool-down: a kid flood cannot amplify into
    // requests to the IdP.
    let fetches = r.idp.jwks_hits() - fetches_before;
    let budget = started.elapsed().as_secs() as usize + 2;
    assert!(
        fetches <= budget,
        "{fetches} JWKS fetches in {:?}",
        started.elapsed()
    );

    let log = r.server.log_text();
    for marker in [
        "INJECTED",
        "\u{1b}[",
        "DROP TABLE",
        "/etc/passwd",
        "jwtx-attack-pwned",
    ] {
        assert!(
            !log.contains(marker),
            "attacker-controlled kid reached the log: {marker:?}"
        );
    }
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggled_malformed_and_confused_tokens_are_refused() {
    let mut r = Range::start("atk-shape").await;
    let claims = Range::claims(&json!({}));
    let c = claims.to_string();
    let good = r.rsa.mint(&claims);
    let seg: Vec<&str> = good.split('.').collect();
    let (gh, gp, gs) = (seg[0], seg[1], seg[2]);

    // crit, b64:false (RFC 7797), unencoded and detached payloads — all validly signed.
    let crit = r#"{"alg":"RS256","kid":"k1","crit":["exp"],"exp":1}"#;
    r.refused("crit", &r.rsa.sign_raw(Algorithm::RS256, crit, &c))
        .await;
    let crit_b64 = r#"{"alg":"RS256","kid":"k1","b64":false,"crit":["b64"]}"#;
    let input = format!("{}.{c}", b64(crit_b64));
    let sig = b64(r.rsa.sign_bytes(Algorithm::RS256, input.as_bytes()));
    r.refused("b64:false unencoded payload", &format!("{input}.{sig}"))
        .await;
    r.refused(
        "b64:false detached payload",
        &format!("{}..{sig}", b64(crit_b64)),
    )
    .await;
    let b64_only = r#"{"alg":"RS256","kid":"k1","b64":false}"#;
    r.refused(
        "b64:false without crit",
        &r.rsa.sign_raw(Algorithm::RS256, b64_only, &c),
    )
    .await;
    let zip = r#"{"alg":"RS256","kid":"k1","zip":"DEF"}"#;
    r.refused("zip", &r.rsa.sign_raw(Algorithm::RS256, zip, &c))
        .await;

    // JWE (5 segments) and JWS JSON serializations of a valid token.
    let jwe_h = b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM","kid":"k1"}"#);
    r.refused("JWE", &format!("{jwe_h}.AAAA.AAAA.AAAA.AAAA"))
        .await;
    let dir_h = b64(r#"{"alg":"dir","enc":"A256GCM"}"#);
    r.refused("JWE dir", &format!("{dir_h}..AAAA.AAAA.AAAA"))
        .await;
    let flattened = json!({"protected": gh, "payload": gp, "signature": gs}).to_string();
    r.refused("JWS flattened JSON", &flattened).await;
    let general = json!({"payload": gp, "signatures": [{"protected": gh, "signature": gs}]});
    r.refused("JWS general JSON", &general.to_string()).await;
    // The token as a JSON object instead of a string is a malformed request.
    let body = json!({"token": {"protected": gh, "payload": gp, "signature": gs}});
    r.malformed(
        "token as an object",
        "/auth/jwt/login",
        Some("application/json"),
        body.to_string().into_bytes(),
        400,
    )
    .await;

    // Signature stripping and segment games on a valid token.
    r.refused("stripped signature", &format!("{gh}.{gp}."))
        .await;
    r.refused("two segments", &format!("{gh}.{gp}")).await;
    r.refused("four segments", &format!("{good}.{gs}")).await;
    r.refused(
        "signature of another token",
        &format!(
            "{gh}.{}.{gs}",
            b64(Range::claims(&json!({"oid": "admin"})).to_string())
        ),
    )
    .await;
    r.refused("padded base64", &format!("{gh}=.{gp}.{gs}"))
        .await;
    r.refused(
        "standard base64 alphabet",
        &format!("{gh}.{gp}.{}", gs.replace('-', "+").replace('_', "/")),
    )
    .await;
    r.refused("whitespace", &format!(" {good}")).await;
    r.refused("trailing newline", &format!("{good}\n")).await;
    r.refused(
        "alg swapped to PS256",
        &format!(
            "{}.{gp}.{gs}",
            b64(r#"{"alg":"PS256","typ":"JWT","kid":"k1"}"#)
        ),
    )
    .await;
    r.refused(
        "alg swapped to none",
        &format!("{}.{gp}.", b64(r#"{"alg":"none"}"#)),
    )
    .await;

    // Duplicate members: the last one would win in a lenient parser.
    let dup_h = r#"{"alg":"RS256","kid":"e1","kid":"k1"}"#;
    r.refused(
        "duplicate header member",
        &r.rsa.sign_raw(Algorithm::RS256, dup_h, &c),
    )
    .await;
    let original: Value = serde_json::from_str(&c).unwrap();
    for (name, dup) in [
        ("tid", format!(r#","tid":"tenant-b","tid":"{TENANT}"}}"#)),
        (
            "iss",
            format!(r#","iss":"https://evil.example/","iss":"{ISS}"}}"#),
        ),
        ("oid", r#","oid":"victim","oid":"svc-1"}"#.to_owned()),
    ] {
        // Drop the member, then append it twice: the last value is the legitimate one, so a
        // parser that keeps the last duplicate would accept the token.
        let mut without = original.as_object().unwrap().clone();
        without.remove(name);
        let text = Value::Object(without).to_string();
        let payload = format!("{}{dup}", text.trim_end_matches('}'));
        let t = r
            .rsa
            .sign_raw(Algorithm::RS256, r#"{"alg":"RS256","kid":"k1"}"#, &payload);
        r.refused(&format!("duplicate claim {name}"), &t).await;
    }

    // Psychic ECDSA (CVE-2022-21449) and other impossible ECDSA signatures.
    let eh = r#"{"alg":"ES256","kid":"e1"}"#;
    let n = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    let n: Vec<u8> = (0..n.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&n[i..i + 2], 16).unwrap())
        .collect();
    let real_es = r.ec.sign_raw(Algorithm::ES256, eh, &c);
    let real_es_sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(real_es.rsplit('.').next().unwrap())
        .unwrap();
    for (what, sig) in [
        ("r = s = 0", vec![0u8; 64]),
        ("r = s = n", [n.clone(), n.clone()].concat()),
        (
            "r = 0, s = real",
            [vec![0u8; 32], real_es_sig[32..].to_vec()].concat(),
        ),
        (
            "r = real, s = 0",
            [real_es_sig[..32].to_vec(), vec![0u8; 32]].concat(),
        ),
        (
            "DER r = s = 0",
            vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00],
        ),
        ("one byte", vec![0u8]),
        ("real signature, truncated", real_es_sig[..63].to_vec()),
    ] {
        r.refused(&format!("ECDSA {what}"), &compact(eh, &c, &b64(sig)))
            .await;
    }
    // Key / algorithm confusion: the EC key named with an RSA alg and the reverse.
    let t =
        r.ec.sign_raw(Algorithm::ES256, r#"{"alg":"RS256","kid":"e1"}"#, &c);
    r.refused("RS256 header on the EC key", &t).await;
    let t = r
        .rsa
        .sign_raw(Algorithm::PS256, r#"{"alg":"PS256","kid":"k1"}"#, &c);
    r.refused("PS256 with the RS256-bound key", &t).await;

    // Claim type confusion, validly signed.
    for (what, extra) in [
        ("iss array", json!({"iss": [ISS]})),
        ("iss object", json!({"iss": {"iss": ISS}})),
        ("aud number", json!({"aud": 12345})),
        ("aud array with a number", json!({"aud": [probe::AUD, 1]})),
        (
            "exp string",
            json!({"exp": (probe::now() + 3600).to_string()}),
        ),
        ("exp missing", json!({"exp": null})),
        ("exp bool", json!({"exp": true})),
        ("nbf string", json!({"nbf": "0"})),
        ("iat string", json!({"iat": "now"})),
        ("sub number", json!({"sub": 7})),
        ("jti number", json!({"jti": 7})),
        ("oid number", json!({"oid": 12})),
        ("oid empty", json!({"oid": ""})),
        ("roles object", json!({"roles": {"admins": true}})),
        ("roles with a number", json!({"roles": ["readers", 1]})),
        ("tid array", json!({"tid": [TENANT]})),
        ("tid number", json!({"tid": 1})),
        ("azp null", json!({"azp": null})),
    ] {
        let t = r.rsa.mint(&Range::claims(&extra));
        r.refused(&format!("claim type: {what}"), &t).await;
    }
    let t = r
        .rsa
        .sign_raw(Algorithm::RS256, r#"{"alg":"RS256","kid":"k1"}"#, "[1,2,3]");
    r.refused("payload not an object", &t).await;
    let t = r
        .rsa
        .sign_raw(Algorithm::RS256, r#"{"alg":"RS256","kid":"k1"}"#, "");
    r.refused("empty payload", &t).await;
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_tenant_and_lifetime_attacks_are_refused() {
    let mut r = Range::start("atk-tenant").await;
    let n = probe::now();
    let cases = [
        // Same issuer and audience, another tenant or client: required_claims refuse them.
        ("other tenant", json!({"tid": "tenant-b"})),
        ("other client", json!({"azp": "client-b"})),
        ("no tenant", json!({"tid": null})),
        ("tenant in upper case", json!({"tid": "TENANT-A"})),
        ("tenant with a trailing space", json!({"tid": "tenant-a "})),
        ("tenant as a prefix", json!({"tid": "tenant-ab"})),
        // Issuer and audience near misses.
        (
            "issuer without the trailing slash",
            json!({"iss": ISS.trim_end_matches('/')}),
        ),
        ("issuer in upper case", json!({"iss": ISS.to_uppercase()})),
        ("other audience", json!({"aud": "api://other"})),
        ("other audience in a list", json!({"aud": ["api://other"]})),
        ("no audience", json!({"aud": null})),
        // Lifetime around the 60 s leeway.
        (
            "expired beyond the leeway",
            json!({"exp": n - 60 - 5, "iat": n - 600, "nbf": n - 600}),
        ),
        (
            "expired inside the leeway (session would be born expired)",
            json!({"exp": n - 30, "iat": n - 600, "nbf": n - 600}),
        ),
        ("expired long ago", json!({"exp": 1, "iat": 0, "nbf": 0})),
        (
            "not yet valid beyond the leeway",
            json!({"nbf": n + 60 + 5}),
        ),
        (
            "issued in the future beyond the leeway",
            json!({"iat": n + 60 + 5}),
        ),
        ("exp at i64::MIN", json!({"exp": i64::MIN})),
        ("exp as a huge float", json!({"exp": -1e300})),
    ];
    for (what, extra) in &cases {
        let t = r.rsa.mint(&Range::claims(extra));
        r.refused(what, &t).await;
    }
    // The same tokens at the OAuth token endpoint.
    for (what, extra) in cases.iter().take(4) {
        let t = r.ec.mint(&Range::claims(extra));
        r.refused_grant(&format!("token endpoint, {what}"), &t)
            .await;
    }
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_requests_get_constant_answers() {
    let mut r = Range::start("atk-size").await;
    let good = r.rsa.mint(&Range::claims(&json!({})));
    let login = "/auth/jwt/login";
    let json_ct = Some("application/json");

    // A validly signed token over max_token_bytes (16 KiB): refused before any parsing.
    let big = r
        .rsa
        .mint(&Range::claims(&json!({"pad": "x".repeat(17 * 1024)})));
    assert!(big.len() > 16 * 1024);
    r.refused("token over max_token_bytes", &big).await;
    r.refused("60 KiB of dots", &".".repeat(60 * 1024)).await;
    r.refused("60 KiB of garbage", &"eyJ".repeat(20 * 1024))
        .await;
    r.refused("empty token", "").await;

    // Bodies over the 64 KiB limit: 413 whatever they hold (a valid token included), decided
    // on the announced length or after 64 KiB of a chunked body — never read to the end.
    let form_ct = "application/x-www-form-urlencoded";
    let padded = format!(r#"{{"token":"{good}","pad":"{}"#, " ".repeat(64 * 1024));
    let grant = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
    let form = format!("{grant}&assertion={good}&pad={}", "A".repeat(64 * 1024));
    for (what, path, ct, framing) in [
        (
            "8 MiB announced",
            login,
            "application/json",
            probe::Framing::Announced(8 << 20),
        ),
        (
            "4 GiB announced",
            login,
            "application/json",
            probe::Framing::Announced(4 << 30),
        ),
        (
            "chunked, a valid token then 64 KiB",
            login,
            "application/json",
            probe::Framing::Chunked(padded.as_bytes()),
        ),
        (
            "form, 8 MiB announced",
            "/oauth2/token",
            form_ct,
            probe::Framing::Announced(8 << 20),
        ),
        (
            "form, chunked, a valid assertion then 64 KiB",
            "/oauth2/token",
            form_ct,
            probe::Framing::Chunked(form.as_bytes()),
        ),
    ] {
        let a = probe::raw_post(r.base(), path, ct, &framing).await;
        assert_eq!(a.status, 413, "{what}: {}", a.body);
        let v: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(v["error"], "invalid_request", "{what}");
        assert!(
            !a.body.contains(&good[..20]),
            "{what}: the answer echoes the request"
        );
    }

    // Content type and shape.
    let body = json!({ "token": good }).to_string().into_bytes();
    r.malformed("no content type", login, None, body.clone(), 415)
        .await;
    r.malformed("text/plain", login, Some("text/plain"), body.clone(), 415)
        .await;
    r.malformed(
        "form content type",
        login,
        Some("application/x-www-form-urlencoded"),
        body.clone(),
        415,
    )
    .await;
    r.malformed(
        "not JSON",
        login,
        json_ct,
        b"token=abc.def.ghi".to_vec(),
        400,
    )
    .await;
    r.malformed("empty body", login, json_ct, Vec::new(), 400)
        .await;
    r.malformed("no token", login, json_ct, b"{}".to_vec(), 400)
        .await;
    r.malformed(
        "token number",
        login,
        json_ct,
        br#"{"token":5}"#.to_vec(),
        400,
    )
    .await;
    r.malformed(
        "token null",
        login,
        json_ct,
        br#"{"token":null}"#.to_vec(),
        400,
    )
    .await;
    r.malformed(
        "array body",
        login,
        json_ct,
        format!(r#"["{good}"]"#).into_bytes(),
        400,
    )
    .await;
    r.malformed(
        "truncated JSON",
        login,
        json_ct,
        format!(r#"{{"token":"{good}""#).into_bytes(),
        400,
    )
    .await;
    r.malformed(
        "deeply nested",
        login,
        json_ct,
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        400,
    )
    .await;
    // A repeated member carrying a valid token twice: refused, never a login.
    let dup = format!(r#"{{"token":"{good}","token":"{good}"}}"#);
    r.malformed(
        "duplicate token member",
        login,
        json_ct,
        dup.into_bytes(),
        400,
    )
    .await;

    // The token endpoint: wrong type, repeats and missing parameters never reach verification.
    let ok_form = format!("{grant}&assertion={good}");
    r.malformed(
        "token endpoint with JSON",
        "/oauth2/token",
        json_ct,
        ok_form.clone().into_bytes(),
        415,
    )
    .await;
    r.malformed(
        "repeated assertion",
        "/oauth2/token",
        Some("application/x-www-form-urlencoded"),
        format!("{ok_form}&assertion={good}").into_bytes(),
        400,
    )
    .await;
    r.malformed(
        "missing assertion",
        "/oauth2/token",
        Some("application/x-www-form-urlencoded"),
        grant.as_bytes().to_vec(),
        400,
    )
    .await;
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_bearers_are_refused_on_every_authenticated_route() {
    let mut r = Range::start("atk-bearer").await;
    let external = r.rsa.mint(&Range::claims(&json!({})));
    let n = probe::now();
    let sub = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let bearer_claims = json!({"iss": "jwt-exchange", "sub": sub, "iat": n, "exp": n + 600});
    let forged_hs = |secret: &[u8], kid: &str| hmac_token("HS256", kid, &bearer_claims, secret);
    let bearers = vec![
        ("the external IdP token itself", external.clone()),
        (
            "alg none",
            compact(
                r#"{"alg":"none","kid":"test-1"}"#,
                &bearer_claims.to_string(),
                "",
            ),
        ),
        (
            "alg none with a signature",
            compact(
                r#"{"alg":"none","kid":"test-1"}"#,
                &bearer_claims.to_string(),
                "AAAA",
            ),
        ),
        (
            "HS256 with a guessed secret",
            forged_hs(b"secret", "test-1"),
        ),
        ("HS256 with an empty secret", forged_hs(b"", "test-1")),
        (
            "HS256 with the JWKS as secret",
            forged_hs(jwks(&[&r.rsa]).to_string().as_bytes(), "test-1"),
        ),
        (
            "HS256, kid path traversal",
            forged_hs(b"", "../../dev/null"),
        ),
        (
            "HS256, kid CR/LF",
            forged_hs(b"", "test-1\r\nINJECTED-BEARER"),
        ),
        (
            "RS256 by the IdP key",
            r.rsa.sign_raw(
                Algorithm::RS256,
                r#"{"alg":"RS256","kid":"test-1"}"#,
                &bearer_claims.to_string(),
            ),
        ),
        ("garbage", "not-a-bearer".to_owned()),
    ];
    for (what, b) in &bearers {
        r.sent.push(b.clone());
        for path in [
            "/auth/session",
            "/auth/check?action=fs:ReadObject&resource=x",
        ] {
            let a = probe::get_with_bearer(&r.http, r.base(), path, b).await;
            assert_eq!(a.status, 401, "{what} at {path}: {}", a.body);
            assert_eq!(a.body, INVALID_TOKEN_BODY, "{what} at {path}");
        }
        // HTTP Basic with the git user and the forgery as password.
        let a = r
            .http
            .get(format!("{}/auth/session", r.base()))
            .basic_auth("_jwt", Some(b))
            .send()
            .await
            .unwrap();
        assert_eq!(a.status().as_u16(), 401, "{what} as Basic password");
        // Introspection with a forged caller.
        let a = r
            .http
            .post(format!("{}/oauth2/introspect", r.base()))
            .bearer_auth(b)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={}", probe::form_encode(b)))
            .send()
            .await
            .unwrap();
        assert_eq!(a.status().as_u16(), 401, "{what} at introspect");
    }
    assert!(!r.server.log_text().contains("INJECTED"));
    r.finish().await;
}
