//! Token verification: the ordered checks from the raw string to [`VerifiedClaims`].

pub(crate) mod error;
pub(crate) mod jws;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::claims::{self, VerifiedClaims};
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, ProviderConfig, Providers};
use crate::json::Json;
use crate::jwks::{JwksCache, JwksError, KeyStatus};
use error::{Part, VerifyError};
use jws::Header;

struct Provider {
    config: ProviderConfig,
    keys: JwksCache,
}

struct Inner {
    providers: Vec<Provider>,
    by_issuer: HashMap<String, usize>,
    clock: Arc<dyn Clock>,
    /// The largest `max_token_bytes` of any provider: the size cap before the issuer is known.
    max_token_bytes: usize,
    /// Decoded headers of tokens that verified, by their base64url text.
    headers: HeaderCache,
}

/// Most headers [`HeaderCache`] keeps; when full it starts over.
const HEADER_CACHE_MAX: usize = 32;

/// An IdP signs every token of a key with the same protected header, byte for byte, so the
/// decoded header of a token that verified is kept under its base64url text and a later token
/// with an identical header skips base64 and JSON (~0.4 µs of a login). Only headers of tokens
/// whose signature verified are inserted, so the cache holds at most [`HEADER_CACHE_MAX`]
/// genuine headers whatever an attacker sends; everything that depends on the provider
/// (allowed algorithms, `typ`, the key) is still checked on every token.
#[derive(Default)]
struct HeaderCache(std::sync::RwLock<Vec<(Box<str>, Arc<Header>)>>);

impl HeaderCache {
    fn get(&self, b64: &str) -> Option<Arc<Header>> {
        let entries = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .iter()
            .find(|(k, _)| **k == *b64)
            .map(|(_, h)| Arc::clone(h))
    }

    fn insert(&self, b64: &str, header: Arc<Header>) {
        let mut entries = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.iter().any(|(k, _)| **k == *b64) {
            return;
        }
        if entries.len() >= HEADER_CACHE_MAX {
            entries.clear();
        }
        entries.push((b64.into(), header));
    }
}

/// Verifies external JWTs against the configured providers.
///
/// Cheap to clone (an `Arc` inside) and `Send + Sync`. The order of checks, and what each
/// failure means, is in `docs/security.md`.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use jwt_exchange::{ProviderConfig, Providers, Verifier};
/// let provider = ProviderConfig::new(
///     "https://login.microsoftonline.com/TENANT/v2.0",
///     "https://login.microsoftonline.com/TENANT/discovery/v2.0/keys",
/// )
/// .with_audiences(["api://lakefs"]);
/// let verifier = Verifier::new(Providers(vec![provider]))?;
/// verifier.refresh_keys().await?;
/// # let token = "";
/// let claims = verifier.verify(token).await?;
/// println!("{} in groups {:?}", claims.identity, claims.groups);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "issuers",
                &self
                    .inner
                    .providers
                    .iter()
                    .map(|p| &p.config.issuer)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Builds a [`Verifier`] with a custom clock or HTTP client.
///
/// ```
/// use jwt_exchange::{MockClock, ProviderConfig, Providers, Verifier};
/// let verifier = Verifier::builder(Providers(vec![
///     ProviderConfig::new("https://idp.example/", "https://idp.example/jwks"),
/// ]))
/// .clock(MockClock::at_unix(1_700_000_000))
/// .background_refresh(false)
/// .build()
/// .unwrap();
/// assert_eq!(verifier.issuers().count(), 1);
/// ```
#[must_use]
pub struct VerifierBuilder {
    providers: Providers,
    clock: Arc<dyn Clock>,
    http: Option<reqwest::Client>,
    background_refresh: bool,
}

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierBuilder").finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// Uses `clock` for every time decision. Defaults to [`SystemClock`].
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Uses a shared clock.
    pub fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `client` for JWKS and discovery requests. It should not follow redirects. Defaults
    /// to [`JwksCache::http_client`].
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Whether to start each provider's background refresh when built inside a Tokio runtime.
    /// Defaults to `true`.
    pub fn background_refresh(mut self, on: bool) -> Self {
        self.background_refresh = on;
        self
    }

    /// Validates the configuration and builds the verifier. Keys are fetched by the
    /// background refresh, by [`Verifier::refresh_keys`], or on the first token.
    pub fn build(self) -> Result<Verifier, ConfigError> {
        self.providers.validate()?;
        let mut providers = Vec::with_capacity(self.providers.0.len());
        let mut by_issuer = HashMap::new();
        for (i, config) in self.providers.0.into_iter().enumerate() {
            if config.audiences.is_empty() {
                tracing::warn!(issuer = %config.issuer, "no `audiences` configured: the audience check is skipped for this issuer");
            }
            let http = self
                .http
                .clone()
                .unwrap_or_else(|| JwksCache::http_client(config.jwks_timeout));
            let keys = JwksCache::new(&config, http, Arc::clone(&self.clock));
            if self.background_refresh {
                keys.spawn_refresh();
            }
            by_issuer.insert(config.issuer.clone(), i);
            providers.push(Provider { config, keys });
        }
        let max_token_bytes = providers
            .iter()
            .map(|p| p.config.max_token_bytes)
            .max()
            .unwrap_or(0);
        Ok(Verifier {
            inner: Arc::new(Inner {
                providers,
                by_issuer,
                clock: self.clock,
                max_token_bytes,
                headers: HeaderCache::default(),
            }),
        })
    }
}

impl Verifier {
    /// A verifier on the system clock with background key refresh.
    pub fn new(providers: Providers) -> Result<Self, ConfigError> {
        Verifier::builder(providers).build()
    }

    /// Starts a [`VerifierBuilder`].
    pub fn builder(providers: Providers) -> VerifierBuilder {
        VerifierBuilder {
            providers,
            clock: Arc::new(SystemClock),
            http: None,
            background_refresh: true,
        }
    }

    /// The configured issuers, in configuration order.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.inner
            .providers
            .iter()
            .map(|p| p.config.issuer.as_str())
    }

    /// `true` when no provider is configured (every token is refused with `UnknownIssuer`).
    pub fn is_empty(&self) -> bool {
        self.inner.providers.is_empty()
    }

    /// The configuration of the provider for `issuer`.
    pub fn provider(&self, issuer: &str) -> Option<&ProviderConfig> {
        self.inner
            .by_issuer
            .get(issuer)
            .map(|i| &self.inner.providers[*i].config)
    }

    /// The key cache of the provider for `issuer`.
    pub fn keys(&self, issuer: &str) -> Option<&JwksCache> {
        self.inner
            .by_issuer
            .get(issuer)
            .map(|i| &self.inner.providers[*i].keys)
    }

    /// The clock this verifier reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Fetches every provider's keys now; the first error is returned after all have been tried.
    pub async fn refresh_keys(&self) -> Result<(), JwksError> {
        let mut first = None;
        for p in &self.inner.providers {
            if let Err(e) = p.keys.refresh().await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The key-cache health of every provider.
    pub fn key_status(&self) -> Vec<KeyStatus> {
        self.inner
            .providers
            .iter()
            .map(|p| p.keys.status())
            .collect()
    }

    /// Verifies an external token and returns its checked claims.
    ///
    /// Order: size cap → compact JWS shape → header (`alg`, `crit`, forbidden parameters, types)
    /// → payload JSON → provider by `iss` → `alg` allow-list → `typ` → key by `kid` (one
    /// rate-limited refetch when unknown) → signature → claims (`aud`, `exp`, `nbf`, `iat`,
    /// `max_token_age`, `required_claims`, identity, groups).
    pub async fn verify(&self, token: &str) -> Result<VerifiedClaims, VerifyError> {
        Ok(self.verify_inner(token, true).await?.0)
    }

    /// [`Verifier::verify`] for the login path: the same checks in the same order, but
    /// [`VerifiedClaims::claims`] is left empty (login reads only the checked fields), which
    /// saves copying every claim into a map. Also returns the configuration of the provider
    /// that issued the token, so the caller need not look it up again by issuer.
    pub(crate) async fn verify_for_login(
        &self,
        token: &str,
    ) -> Result<(VerifiedClaims, &ProviderConfig), VerifyError> {
        self.verify_inner(token, false).await
    }

    async fn verify_inner(
        &self,
        token: &str,
        keep_claims: bool,
    ) -> Result<(VerifiedClaims, &ProviderConfig), VerifyError> {
        let inner = &*self.inner;
        if token.len() > inner.max_token_bytes {
            return Err(VerifyError::TooLarge {
                len: token.len(),
                max: inner.max_token_bytes,
            });
        }
        let seg = jws::split(token)?;
        let cached = inner.headers.get(seg.header);
        let header = match &cached {
            Some(h) => Arc::clone(h),
            None => Arc::new(Header::decode(seg.header)?),
        };
        let payload = jws::Scratch::decode(seg.payload, Part::Payload)?;
        let claims = jws::json_doc(&payload, Part::Payload)?;
        let (mut sig_stack, mut sig_heap) = ([0u8; jws::SIGNATURE_STACK], Vec::new());
        let signature = jws::signature(seg.signature, &mut sig_stack, &mut sig_heap)?;
        let provider = match claims.get("iss") {
            Some(Json::String(iss)) => inner
                .by_issuer
                .get(iss.as_ref())
                .map(|i| &inner.providers[*i])
                .ok_or(VerifyError::UnknownIssuer)?,
            Some(_) => return Err(VerifyError::InvalidClaimType { claim: "iss" }),
            None => return Err(VerifyError::MissingClaim { claim: "iss" }),
        };
        let config = &provider.config;
        if token.len() > config.max_token_bytes {
            return Err(VerifyError::TooLarge {
                len: token.len(),
                max: config.max_token_bytes,
            });
        }
        if !config.algorithms.contains(&header.alg) {
            return Err(VerifyError::AlgorithmNotAllowed { alg: header.alg });
        }
        header.check_typ(&config.allowed_types)?;
        let key = provider
            .keys
            .key_for(header.kid.as_deref(), header.alg)
            .await?;
        if !key.verify(header.alg, seg.signing_input.as_bytes(), signature) {
            return Err(VerifyError::InvalidSignature);
        }
        if cached.is_none() {
            inner.headers.insert(seg.header, Arc::clone(&header));
        }
        let verified = claims::check(
            config,
            claims,
            inner.clock.unix_seconds(),
            header.alg,
            header.kid.clone(),
            keep_claims,
        )?;
        Ok((verified, config))
    }
}
