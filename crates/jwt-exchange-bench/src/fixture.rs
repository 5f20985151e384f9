//! The shared set-up: a loopback IdP, an Entra-shaped provider, an exchange on the memory store,
//! and the raw-crypto baselines (the same token's signature with a pre-parsed key; the same
//! bearer's HMAC with a ready key).

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_exchange::policy::{Policy, PolicyConfig, Statement};
use jwt_exchange::session::{BearerKeys, BearerSecret};
use jwt_exchange::store::{MemoryStore, SessionStore};
use jwt_exchange::{Algorithm, Clock, Exchange, ProviderConfig, Providers, SystemClock, Verifier};
use jwt_exchange_testkit::claims::{entra, ENTRA_AUDIENCE, ENTRA_ISSUER, ENTRA_TENANT};
use jwt_exchange_testkit::{jwks, JwksServer, TestKey};

/// The algorithms every login figure is reported for.
pub const ALGS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
    Algorithm::PS256,
];

/// This server's name in bearers.
pub const SERVER: &str = "https://jwt-exchange.bench";

/// The bearer secret (fixed, so the raw HMAC baseline can use the same bytes).
pub const BEARER_SECRET: [u8; 32] = [7; 32];

/// The `oid` of the bench's service principal.
pub const OID: &str = "5b9a7c1e-3f2d-4e8a-9b6c-1d2e3f4a5b6c";

/// The action and resource of the standard authorization check.
pub const ACTION: &str = "fs:ReadObject";
/// See [`ACTION`].
pub const RESOURCE: &str = "repo/data/file";

/// What to build.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Groups → policies mapping; defaults to [`standard_policies`].
    pub policies: PolicyConfig,
    /// The provider's `jwks_refetch_cooldown`. Defaults to 30 s (the crate default).
    pub refetch_cooldown: Duration,
    /// Extra `kid`s of keys the JWKS does **not** serve at start (for stampede tests):
    /// keys are generated for them but left out of the served set.
    pub unpublished: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policies: standard_policies(),
            refetch_cooldown: Duration::from_secs(30),
            unpublished: 0,
        }
    }
}

impl Options {
    /// Sets the policies.
    #[must_use]
    pub fn with_policies(mut self, p: PolicyConfig) -> Self {
        self.policies = p;
        self
    }

    /// Sets the refetch cool-down.
    #[must_use]
    pub fn with_refetch_cooldown(mut self, d: Duration) -> Self {
        self.refetch_cooldown = d;
        self
    }

    /// Generates `n` keys that the JWKS does not serve yet.
    #[must_use]
    pub fn with_unpublished(mut self, n: usize) -> Self {
        self.unpublished = n;
        self
    }
}

/// A running IdP plus an exchange configured for it.
pub struct Fixture {
    /// The loopback IdP (JWKS server); keep it alive.
    pub server: JwksServer,
    /// One published key per algorithm of [`ALGS`], in that order (`kid` = the algorithm).
    pub keys: Vec<TestKey>,
    /// Keys generated but not published (`kid` `new-0`, `new-1`, …, RS256).
    pub unpublished: Vec<TestKey>,
    /// The exchange (memory store, the standard policies, no sweeper, no background refresh).
    pub exchange: Exchange,
    /// The bearer keys the exchange uses.
    pub bearer: BearerKeys,
    /// The exchange's store.
    pub store: Arc<MemoryStore>,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture").finish_non_exhaustive()
    }
}

impl Fixture {
    /// Starts the IdP on loopback (inside the current Tokio runtime), builds the exchange and
    /// loads the keys.
    ///
    /// # Panics
    ///
    /// If the set-up fails (a broken bench).
    pub async fn start(opts: Options) -> Fixture {
        let keys: Vec<TestKey> = ALGS
            .iter()
            .map(|a| TestKey::generate(*a, a.as_str()))
            .collect();
        let unpublished: Vec<TestKey> = (0..opts.unpublished)
            .map(|i| TestKey::generate(Algorithm::RS256, format!("new-{i}")))
            .collect();
        let server = JwksServer::start(jwks(&keys.iter().collect::<Vec<_>>())).await;
        let provider =
            entra_provider(&server.jwks_url()).with_jwks_refetch_cooldown(opts.refetch_cooldown);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let verifier = Verifier::builder(Providers(vec![provider]))
            .shared_clock(Arc::clone(&clock))
            .background_refresh(false)
            .build()
            .expect("valid provider");
        verifier.refresh_keys().await.expect("JWKS loads");
        let bearer = bearer_keys();
        let store = Arc::new(MemoryStore::new(clock));
        let exchange = Exchange::builder(verifier, bearer.clone())
            .store(Arc::clone(&store) as Arc<dyn SessionStore>)
            .policies(opts.policies)
            .sweep(false)
            .build()
            .expect("valid exchange");
        Fixture {
            server,
            keys,
            unpublished,
            exchange,
            bearer,
            store,
        }
    }

    /// The published key for `alg`.
    ///
    /// # Panics
    ///
    /// If `alg` is not one of [`ALGS`].
    pub fn key(&self, alg: Algorithm) -> &TestKey {
        self.keys
            .iter()
            .find(|k| k.alg == alg)
            .expect("a key per bench algorithm")
    }

    /// Deletes every session the bench's logins created (the store keeps its capacity), so a
    /// bench that logs in over and over measures a store of steady size rather than one that
    /// grows without bound. The `scale` bench measures growth.
    pub fn clear_sessions(&self, rt: &tokio::runtime::Runtime) {
        let subject = jwt_exchange::Session::subject_for(ENTRA_ISSUER, OID);
        rt.block_on(self.store.delete_subject(&subject))
            .expect("memory store deletes");
    }

    /// Stores a session for `identity` (the standard groups and policies, an hour long) and
    /// mints its bearer: a session that [`Fixture::clear_sessions`] leaves alone.
    ///
    /// # Panics
    ///
    /// If the store refuses the session.
    pub fn session_bearer(&self, rt: &tokio::runtime::Runtime, identity: &str) -> String {
        let now = SystemClock.unix_seconds();
        let session = jwt_exchange::Session::new(
            jwt_exchange::SessionId::generate(),
            ENTRA_ISSUER,
            identity,
            now,
            now + 3600,
        )
        .with_groups(standard_roles())
        .with_policies(["ProtectProd", "ReadAll"]);
        rt.block_on(self.store.create(&session))
            .expect("memory store creates");
        self.bearer
            .mint(session.id.as_str(), now, session.expires_at)
            .into_string()
    }

    /// Publishes every key (the unpublished ones too): the next unknown-`kid` refetch sees them.
    pub fn publish_all(&self) {
        let all: Vec<&TestKey> = self.keys.iter().chain(&self.unpublished).collect();
        self.server.set_jwks(jwks(&all));
    }
}

/// The Entra-shaped provider: issuer, audience, pinned tenant, `/oid` identity, `/roles` groups.
pub fn entra_provider(jwks_url: &str) -> ProviderConfig {
    ProviderConfig::new(ENTRA_ISSUER, jwks_url)
        .with_audiences([ENTRA_AUDIENCE])
        .with_required_claim("tid", ENTRA_TENANT)
}

/// The bench's bearer keys ([`SERVER`], `kid` `bench-1`, [`BEARER_SECRET`]).
///
/// # Panics
///
/// Never: the secret has the minimum length.
pub fn bearer_keys() -> BearerKeys {
    BearerKeys::new(
        SERVER,
        "bench-1",
        BearerSecret::from_bytes(BEARER_SECRET.to_vec()).expect("32-byte secret"),
    )
}

/// An Entra-shaped app-only token from `key`, valid for an hour from now, with `roles`.
pub fn entra_token(key: &TestKey, roles: &[String]) -> String {
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    key.mint_raw(&entra(SystemClock.unix_seconds(), OID, &roles))
}

/// `n` role names: `role-0`, `role-1`, …
pub fn roles(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("role-{i}")).collect()
}

/// The standard roles of a bench token: two roles mapped to a read policy and a deny policy.
pub fn standard_roles() -> Vec<String> {
    vec!["lakefs.readers".to_owned(), "lakefs.prod-guard".to_owned()]
}

/// `lakefs.readers` → `ReadAll` (allow `fs:Read*`, `fs:List*` on `*`), `lakefs.prod-guard` →
/// `ProtectProd` (deny writes and deletes on `repo/prod/*`): a session with two policies, the
/// standard check ([`ACTION`] on [`RESOURCE`]) evaluates both and is allowed.
pub fn standard_policies() -> PolicyConfig {
    PolicyConfig::default()
        .with_group("lakefs.readers", ["ReadAll"])
        .with_group("lakefs.prod-guard", ["ProtectProd"])
        .with_policy(
            "ReadAll",
            Policy::new(vec![Statement::allow(["fs:Read*", "fs:List*"], ["*"])]),
        )
        .with_policy(
            "ProtectProd",
            Policy::new(vec![Statement::deny(
                ["fs:Write*", "fs:Delete*"],
                ["repo/prod/*"],
            )]),
        )
}

/// `role-i` → `Policy-i` for `i < n`; `Policy-i` allows `fs:Read*` on `repo/p<i>/*` only, so a
/// check on `repo/p<n-1>/file` evaluates every policy of a session and is allowed by the last.
pub fn scaled_policies(n: usize) -> PolicyConfig {
    let mut cfg = PolicyConfig::default();
    for i in 0..n {
        cfg = cfg
            .with_group(format!("role-{i}"), [format!("Policy-{i}")])
            .with_policy(
                format!("Policy-{i}"),
                Policy::new(vec![Statement::allow(
                    ["fs:Read*"],
                    [format!("repo/p{i}/*")],
                )]),
            );
    }
    cfg
}

/// The physical limit of a login: one signature verification with a pre-parsed key, the
/// message and the decoded signature ready.
pub struct RawSignature {
    key: ParsedPublicKey,
    message: Vec<u8>,
    signature: Vec<u8>,
}

impl RawSignature {
    /// The baseline for `token` signed by `key`.
    ///
    /// # Panics
    ///
    /// If `token` is not a compact JWS or the key does not parse (a broken bench).
    pub fn new(key: &TestKey, token: &str) -> Self {
        let (message, sig) = token.rsplit_once('.').expect("compact JWS");
        let key = ParsedPublicKey::new(verification(key.alg), key.public_key_bytes())
            .expect("public key parses");
        RawSignature {
            key,
            message: message.as_bytes().to_vec(),
            signature: URL_SAFE_NO_PAD.decode(sig).expect("base64url signature"),
        }
    }

    /// Verifies once; `true` when the signature is good.
    pub fn verify(&self) -> bool {
        self.key.verify_sig(&self.message, &self.signature).is_ok()
    }
}

/// The floor of a bearer check: HMAC-SHA256 verification of the bearer with a ready key, the
/// tag already decoded.
pub struct RawHmac {
    key: hmac::Key,
    message: Vec<u8>,
    tag: Vec<u8>,
}

impl RawHmac {
    /// The baseline for `bearer` minted with [`bearer_keys`].
    ///
    /// # Panics
    ///
    /// If `bearer` is not a compact JWS (a broken bench).
    pub fn new(bearer: &str) -> Self {
        let (message, tag) = bearer.rsplit_once('.').expect("compact JWS");
        RawHmac {
            key: hmac::Key::new(hmac::HMAC_SHA256, &BEARER_SECRET),
            message: message.as_bytes().to_vec(),
            tag: URL_SAFE_NO_PAD.decode(tag).expect("base64url tag"),
        }
    }

    /// Verifies once; `true` when the tag is good.
    pub fn verify(&self) -> bool {
        hmac::verify(&self.key, &self.message, &self.tag).is_ok()
    }
}

/// The aws-lc-rs algorithm the core uses for `alg`.
fn verification(alg: Algorithm) -> &'static dyn VerificationAlgorithm {
    match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
    }
}

/// `jsonwebtoken`'s view of the same token: a pre-parsed decoding key and a validation with the
/// provider's issuer and audience (what `jwt-authorizer` runs on every request).
pub struct JsonWebToken {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
}

/// The claims `jsonwebtoken` decodes into: what an application using it typically reads.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct EntraClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Object id (the identity).
    pub oid: String,
    /// Tenant.
    pub tid: String,
    /// App roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Expiry.
    pub exp: i64,
}

impl JsonWebToken {
    /// For tokens signed by `key`.
    ///
    /// # Panics
    ///
    /// If `jsonwebtoken` refuses the key (a broken bench).
    pub fn new(key: &TestKey) -> Self {
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(key.public_jwk()).expect("jsonwebtoken reads the JWK");
        let alg = match key.alg {
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::PS256 => jsonwebtoken::Algorithm::PS256,
            _ => jsonwebtoken::Algorithm::RS256,
        };
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.set_issuer(&[ENTRA_ISSUER]);
        validation.set_audience(&[ENTRA_AUDIENCE]);
        JsonWebToken {
            key: jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("decoding key"),
            validation,
        }
    }

    /// Decodes and validates `token`.
    pub fn decode(&self, token: &str) -> Result<EntraClaims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<EntraClaims>(token, &self.key, &self.validation).map(|d| d.claims)
    }
}

/// A current-thread Tokio runtime with I/O and timers.
///
/// # Panics
///
/// If the runtime cannot be built.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
