//! Shared harness of the fuzz targets (see `docs/fuzzing.md`).
//!
//! Each `check_*` function takes the raw fuzzer input, drives one entry point of `jwt-exchange`,
//! and asserts its invariants (a failed assertion is a crash libFuzzer reports):
//!
//! | target | entry point | invariants |
//! |---|---|---|
//! | `token` | [`KeySet::verify_compact`], [`Verifier::verify`] | no panic; nothing verifies unless it is one of the checked-in fixture tokens; error messages never contain a token segment |
//! | `jwks` | [`KeySet::from_json`] | no panic; a loaded set has 1..=[`MAX_KEYS`] keys; tokens signed by keys the set cannot know (fresh keys, HMAC, `none`) never verify against it |
//! | `config` | `Providers` / `PolicyConfig` / `HttpConfig` from JSON, YAML and TOML, `validate`, `ForwardAuthConfig::new` | no panic; a configuration that validates builds a verifier and an exchange; it survives a serialize / parse round trip unchanged |
//! | `json` | the strict JSON parser of headers and claim sets (`jwt_exchange::__fuzzing`) | no panic; same acceptance, error kind and value as its `serde_json`-based reference |
//! | `pointer` | [`jwt_exchange::pointer`] | no panic; same answer as `serde_json::Value::pointer` for every well-formed pointer |
//! | `login_body` | `POST /auth/jwt/login` and `POST /oauth2/token` through the axum router | no panic; only 200 / 400 / 401 / 413 / 415; every error body is the constant `{"error","error_description"}` shape; a 200's bearer authenticates; a login that succeeded had a JSON object body |
//!
//! The keys are the checked-in fixtures (`fixtures/jwks.json`), served by a loopback
//! [`JwksServer`]; the verifier runs on a [`MockClock`] at [`FIXTURE_NOW`] + 10 s so the fixture
//! tokens are valid and nothing depends on wall-clock time.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use jwt_exchange::axum::ForwardAuthConfig;
use jwt_exchange::dev::{b64, SigningKey};
use jwt_exchange::jwks::MAX_KEYS;
use jwt_exchange::policy::PolicyConfig;
use jwt_exchange::session::{BearerKeys, BearerSecret};
use jwt_exchange::{
    Algorithm, Exchange, KeySet, MockClock, ProviderConfig, Providers, Verifier, VerifyError,
};
use jwt_exchange_testkit::claims::{
    AUTH0_AUDIENCE, AUTH0_ISSUER, ENTRA_AUDIENCE, ENTRA_ISSUER, ENTRA_TENANT,
};
use jwt_exchange_testkit::fixtures::FIXTURE_NOW;
use jwt_exchange_testkit::JwksServer;
use serde_json::Value;
use tower::ServiceExt as _;

/// The checked-in JWKS (fixture keys `rsa-2048`, `p-256`, `ed25519`).
pub const FIXTURE_JWKS: &str = include_str!("../../fixtures/jwks.json");

const FIXTURE_TOKENS: [&str; 3] = [
    include_str!("../../fixtures/tokens/entra-rs256.jwt"),
    include_str!("../../fixtures/tokens/entra-eddsa.jwt"),
    include_str!("../../fixtures/tokens/auth0-es256.jwt"),
];

/// The checked-in fixture tokens: the only inputs that may verify.
pub fn valid_tokens() -> impl Iterator<Item = &'static str> {
    FIXTURE_TOKENS.iter().map(|t| t.trim())
}

/// The process-wide set-up, built on first use.
pub struct Harness {
    /// Runs the loopback IdP and the async entry points.
    pub rt: tokio::runtime::Runtime,
    /// The fixture key set.
    pub keys: KeySet,
    /// Entra- and Auth0-shaped providers on the fixture keys.
    pub verifier: Verifier,
    /// An exchange on `verifier` with an in-memory store.
    pub exchange: Exchange,
    /// `jwt_exchange::axum::router(exchange)`.
    pub app: axum::Router,
    /// Tokens signed by keys that are published nowhere (and HMAC / `none` forgeries).
    pub forged: Vec<String>,
    /// One HTTP client for every verifier the `config` target builds.
    pub http: reqwest::Client,
    _idp: JwksServer,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

/// The shared harness.
pub fn harness() -> &'static Harness {
    HARNESS.get_or_init(build)
}

fn build() -> Harness {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let jwks: Value = serde_json::from_str(FIXTURE_JWKS).expect("fixture JWKS is JSON");
    let idp = rt.block_on(JwksServer::start(jwks));
    let clock = MockClock::at_unix(FIXTURE_NOW + 10);
    let entra = ProviderConfig::new(ENTRA_ISSUER, idp.jwks_url())
        .with_audiences([ENTRA_AUDIENCE])
        .with_required_claim("tid", ENTRA_TENANT);
    let auth0 = ProviderConfig::new(AUTH0_ISSUER, idp.jwks_url())
        .with_audiences([AUTH0_AUDIENCE])
        .with_identity_claim_ref("/sub")
        .with_groups_claim_ref("/permissions");
    let http = jwt_exchange::JwksCache::http_client(std::time::Duration::from_secs(2));
    let verifier = Verifier::builder(Providers(vec![entra, auth0]))
        .clock(clock)
        .http_client(http.clone())
        .background_refresh(false)
        .build()
        .expect("valid providers");
    rt.block_on(verifier.refresh_keys())
        .expect("fixture keys load");
    let bearer = BearerKeys::new(
        "jwt-exchange-fuzz",
        "fuzz-1",
        BearerSecret::from_bytes(vec![7u8; 32]).expect("32-byte secret"),
    );
    let exchange = Exchange::builder(verifier.clone(), bearer)
        .build()
        .expect("exchange");
    let app = jwt_exchange::axum::router(exchange.clone());
    let keys = KeySet::from_json(FIXTURE_JWKS.as_bytes(), &Algorithm::ALL).expect("fixture set");
    Harness {
        rt,
        keys,
        verifier,
        exchange,
        app,
        forged: forged_tokens(),
        http,
        _idp: idp,
    }
}

/// Tokens no key set the fuzzer builds can verify: signed by freshly generated keys (the fuzzer
/// never sees their public halves), HMAC-"signed", or `alg: none`.
fn forged_tokens() -> Vec<String> {
    let mut out = Vec::new();
    let claims = serde_json::json!({"iss": ENTRA_ISSUER, "aud": ENTRA_AUDIENCE, "oid": "x",
        "tid": ENTRA_TENANT, "exp": FIXTURE_NOW + 3600});
    for (alg, kid) in [
        (Algorithm::RS256, "rsa-2048"),
        (Algorithm::PS256, "rsa-2048"),
        (Algorithm::ES256, "p-256"),
        (Algorithm::ES384, "p-384"),
        (Algorithm::EdDSA, "ed25519"),
    ] {
        let key = SigningKey::generate(alg, kid).expect("key generation");
        out.push(key.mint(&claims));
        // Without a kid: picks "the one key for this alg" if the set has exactly one.
        let header = format!(r#"{{"alg":"{}"}}"#, alg.as_str());
        out.push(key.sign_raw(alg, &header, &claims.to_string()));
    }
    for alg in ["none", "None", "HS256", "HS384", "HS512"] {
        let input = format!(
            "{}.{}",
            b64(format!(r#"{{"alg":"{alg}","kid":"k"}}"#)),
            b64(claims.to_string())
        );
        out.push(format!("{input}.{}", b64([0u8; 32])));
        out.push(format!("{input}."));
    }
    out
}

/// Whether `token` is one of the fixture tokens.
pub fn is_valid_seed(token: &str) -> bool {
    valid_tokens().any(|t| t == token)
}

/// Whether `seg` looks like token material worth searching for in a message: 16 or more
/// base64url characters.
pub fn is_token_material(seg: &str) -> bool {
    seg.len() >= 16
        && seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `token` target.
pub fn check_token(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let h = harness();
    let seed = is_valid_seed(token);
    let compact = h.keys.verify_compact(token);
    assert!(
        seed || compact.is_err(),
        "verify_compact accepted a token that is not a fixture"
    );
    let full = h.rt.block_on(h.verifier.verify(token));
    match &full {
        Ok(_) => assert!(
            seed,
            "Verifier::verify accepted a token that is not a fixture"
        ),
        Err(e) => {
            assert_ne!(
                *e,
                VerifyError::KeysUnavailable,
                "the loopback IdP is up: never 503"
            );
            // Token material: base64url runs of 16+ characters (shorter ones, or ones with
            // spaces, can be spelled by the constant message text itself).
            let msg = e.to_string();
            for seg in token.split('.').filter(|s| is_token_material(s)) {
                assert!(!msg.contains(seg), "error message contains token bytes");
            }
        }
    }
}

/// `jwks` target.
pub fn check_jwks(data: &[u8]) {
    let h = harness();
    let Ok(set) = KeySet::from_json(data, &Algorithm::ALL) else {
        return;
    };
    assert!(!set.is_empty(), "a loaded key set has a usable key");
    assert!(set.len() <= MAX_KEYS, "a loaded key set is capped");
    for t in &h.forged {
        assert!(
            set.verify_compact(t).is_err(),
            "a key set verified a token signed by an unpublished key"
        );
    }
    for t in valid_tokens() {
        let _ = set.verify_compact(t);
    }
}

/// `config` target.
pub fn check_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let h = harness();
    let candidates = [
        serde_json::from_str::<Providers>(text).ok(),
        serde_norway::from_str::<Providers>(text).ok(),
        toml::from_str::<Providers>(text).ok(),
    ];
    for providers in candidates.into_iter().flatten() {
        if providers.validate().is_err() {
            continue;
        }
        let verifier = Verifier::builder(providers.clone())
            .http_client(h.http.clone())
            .background_refresh(false)
            .build()
            .expect("a validated configuration builds a verifier");
        // Round trip: what validated serializes and parses back to the same thing.
        let json = serde_json::to_string(&providers).expect("serializes");
        let back: Providers = serde_json::from_str(&json).expect("parses back");
        assert_eq!(back, providers, "serialize / parse round trip");
        drop(verifier);
    }
    for policies in [
        serde_json::from_str::<PolicyConfig>(text).ok(),
        serde_norway::from_str::<PolicyConfig>(text).ok(),
    ]
    .into_iter()
    .flatten()
    {
        if policies.validate().is_ok() {
            let bearer = BearerKeys::new(
                "fuzz",
                "k",
                BearerSecret::from_bytes(vec![1u8; 32]).expect("secret"),
            );
            Exchange::builder(h.verifier.clone(), bearer)
                .policies(policies)
                .sweep(false)
                .build()
                .expect("validated policies build an exchange");
        }
    }
    let _ = serde_norway::from_str::<jwt_exchange::axum::HttpConfig>(text);
    let _ = serde_json::from_str::<jwt_exchange::axum::HttpConfig>(text);
    let (action, resource) = text.split_once('\n').unwrap_or((text, "{path}"));
    if let Ok(fa) = ForwardAuthConfig::new(action, resource) {
        let _ = format!("{fa:?}");
    }
}

/// Whether every `~` in `ptr` starts a valid escape (`~0` or `~1`).
pub fn escapes_are_valid(ptr: &str) -> bool {
    let b = ptr.as_bytes();
    b.iter()
        .enumerate()
        .all(|(i, c)| *c != b'~' || matches!(b.get(i + 1), Some(b'0' | b'1')))
}

/// `json` target: the strict parser that reads every token header and claim set (hand-written,
/// borrowing, duplicate members refused at every depth) gives exactly what its `serde_json`-based
/// reference gives on any bytes: the same acceptance, the same error kind, the same value.
pub fn check_json(data: &[u8]) {
    if let Err(e) = jwt_exchange::__fuzzing::strict_json_differential(data) {
        panic!("{e}");
    }
}

/// `pointer` target: the first line is the pointer, the rest a JSON document.
pub fn check_pointer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (ptr, doc) = text.split_once('\n').unwrap_or((text, "{}"));
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(doc) else {
        return;
    };
    let ours = jwt_exchange::pointer(&map, ptr);
    if !ptr.is_empty() && escapes_are_valid(ptr) {
        let whole = Value::Object(map.clone());
        assert_eq!(ours, whole.pointer(ptr), "RFC 6901 evaluation differs");
    } else {
        assert_eq!(
            ours, None,
            "an empty or ill-escaped pointer resolves to nothing"
        );
    }
    let config_ok = ProviderConfig::new("https://i.example/", "https://i.example/k")
        .with_identity_claim_ref(ptr)
        .validate()
        .is_ok();
    assert_eq!(
        config_ok,
        ptr.is_empty() || (ptr.starts_with('/') && escapes_are_valid(ptr)),
        "configuration check of a pointer"
    );
}

const CONTENT_TYPES: [Option<&str>; 6] = [
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("application/jwt+json; charset=utf-8"),
    Some("text/plain"),
    Some("APPLICATION/X-WWW-FORM-URLENCODED; charset=UTF-8"),
    None,
];

/// `login_body` target: the first byte picks the endpoint and the `Content-Type`, the rest is
/// the body.
pub fn check_login_body(data: &[u8]) {
    let Some((sel, body)) = data.split_first() else {
        return;
    };
    let h = harness();
    let path = if sel & 1 == 0 {
        "/auth/jwt/login"
    } else {
        "/oauth2/token"
    };
    let mut req = Request::post(path);
    if let Some(ct) = CONTENT_TYPES[usize::from(sel >> 1) % CONTENT_TYPES.len()] {
        req = req.header("content-type", ct);
    }
    let req = req.body(Body::from(body.to_vec())).expect("request");
    let (status, bytes) = h.rt.block_on(async {
        let resp = h.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (status, bytes)
    });
    assert!(
        matches!(
            status,
            StatusCode::OK
                | StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNSUPPORTED_MEDIA_TYPE
        ),
        "unexpected status {status}"
    );
    let v: Value = serde_json::from_slice(&bytes).expect("every answer is JSON");
    if status == StatusCode::OK {
        if path == "/auth/jwt/login" {
            // Only a JSON object is a login body (serde's derive once accepted `["<token>"]`).
            assert!(
                serde_json::from_slice::<Value>(body).is_ok_and(|b| b.is_object()),
                "a login body that is not a JSON object was accepted"
            );
        }
        let bearer = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(Value::as_str)
            .expect("a 200 carries a bearer");
        let who =
            h.rt.block_on(h.exchange.authenticate(bearer))
                .expect("a freshly issued bearer authenticates");
        // Revoke it again, so the in-memory store stays small however often the fixtures log in.
        h.rt.block_on(h.exchange.revoke(who.session_id()))
            .expect("revocation");
    } else {
        let obj = v.as_object().expect("error body is an object");
        assert!(
            obj.len() == 2 && obj.contains_key("error") && obj.contains_key("error_description"),
            "error body shape"
        );
    }
}
