//! Shared set-up: a loopback IdP with fresh keys and a verifier on a mock clock.
#![allow(unreachable_pub)]

use std::time::Duration;

use jwt_exchange::{Algorithm, MockClock, ProviderConfig, Providers, Verifier};
use jwt_exchange_testkit::{jwks, JwksServer, TestKey};
use serde_json::Value;

pub const NOW: i64 = 1_750_000_000;
pub const ISS: &str = "https://idp.test/";
pub const AUD: &str = "api://lakefs";

pub struct Idp {
    pub server: JwksServer,
    pub rsa: TestKey,
    pub ec: TestKey,
    pub ed: TestKey,
    pub clock: MockClock,
}

impl Idp {
    pub async fn start() -> Self {
        let rsa = TestKey::generate(Algorithm::RS256, "rsa-1");
        let ec = TestKey::generate(Algorithm::ES256, "ec-1");
        let ed = TestKey::generate(Algorithm::EdDSA, "ed-1");
        let server = JwksServer::start(jwks(&[&rsa, &ec, &ed])).await;
        Idp {
            server,
            rsa,
            ec,
            ed,
            clock: MockClock::at_unix(NOW),
        }
    }

    /// A provider for [`ISS`] with audience [`AUD`], fast timeouts for tests.
    pub fn provider(&self) -> ProviderConfig {
        ProviderConfig::new(ISS, self.server.jwks_url())
            .with_audiences([AUD])
            .with_jwks_timeout(Duration::from_millis(500))
    }

    pub fn verifier(&self, p: ProviderConfig) -> Verifier {
        verifier_for(vec![p], &self.clock)
    }
}

pub fn verifier_for(providers: Vec<ProviderConfig>, clock: &MockClock) -> Verifier {
    Verifier::builder(Providers(providers))
        .clock(clock.clone())
        .background_refresh(false)
        .build()
        .expect("valid config")
}

/// Standard claims for [`ISS`]/[`AUD`], valid for an hour from [`NOW`].
pub fn claims() -> Value {
    serde_json::json!({
        "iss": ISS,
        "aud": AUD,
        "sub": "svc-1",
        "oid": "00000000-0000-0000-0000-000000000001",
        "roles": ["readers", "writers"],
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 3600,
        "jti": "jti-1",
    })
}

/// `claims()` with `key` set to `value` (or removed when `value` is null).
pub fn claims_with(key: &str, value: Value) -> Value {
    let mut c = claims();
    if value.is_null() {
        c.as_object_mut().expect("object").remove(key);
    } else {
        c[key] = value;
    }
    c
}
