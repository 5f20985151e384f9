//! The exchange service: login, authenticate, authorize, revoke.

use std::fmt;
use std::sync::Arc;

use crate::audit::{self, Counters, Metrics};
use crate::clock::Clock;
use crate::config::ConfigError;
use crate::policy::{self, Decision, Directory, DirectoryError, PolicyConfig, StaticDirectory};
use crate::session::{session_expiry, Bearer, BearerError, BearerKeys, Session, SessionId};
use crate::store::{spawn_sweeper, MemoryStore, SessionStore, StoreError, SweeperHandle};
use crate::{Verifier, VerifyError};

/// Why an exchange operation failed.
///
/// [`ExchangeError::is_unavailable`] errors are outages on our side (HTTP 503); the others are
/// the caller's fault (HTTP 401). The messages never contain a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The external token was refused (or its issuer's keys are unavailable).
    #[error("external token refused: {0}")]
    Verify(#[from] VerifyError),
    /// `replay_protection` is on and this token's `jti` was already exchanged (or it has none).
    #[error("token replay: this jti was already exchanged, or the token has no jti")]
    Replayed,
    /// The bearer is malformed, forged, expired or signed with an unknown key.
    #[error("bearer refused: {0}")]
    InvalidBearer(#[source] BearerError),
    /// The bearer is genuine but its session is gone (revoked or expired).
    #[error("the session was revoked or has expired")]
    SessionNotFound,
    /// The session store failed.
    #[error("session store error")]
    Store(#[source] StoreError),
    /// The policy directory failed.
    #[error("policy directory error")]
    Directory(#[source] DirectoryError),
}

impl ExchangeError {
    /// `true` for outages on our side: keys unavailable, store or directory down (HTTP 503).
    pub fn is_unavailable(&self) -> bool {
        match self {
            ExchangeError::Verify(e) => e.is_unavailable(),
            ExchangeError::Store(_) | ExchangeError::Directory(_) => true,
            _ => false,
        }
    }

    /// A short, stable name of what failed, for metrics labels and audit records.
    pub fn check(&self) -> &'static str {
        match self {
            ExchangeError::Verify(e) => e.check(),
            ExchangeError::Replayed => "replay",
            ExchangeError::InvalidBearer(_) => "bearer",
            ExchangeError::SessionNotFound => "session",
            ExchangeError::Store(_) => "store",
            ExchangeError::Directory(_) => "directory",
        }
    }
}

/// The result of a login: the bearer and when it expires.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Login {
    /// The server-signed bearer (redacted in `Debug`).
    pub token: Bearer,
    /// When the bearer and its session expire, in Unix seconds.
    pub token_expiration: i64,
    /// The session that was created (shared with the store when it keeps sessions in memory).
    pub session: Arc<Session>,
}

/// An authenticated caller: the session behind a valid bearer.
///
/// A cheap handle on the stored session (an `Arc`: cloning it, or handing it to a request's
/// extensions, copies nothing). It dereferences to the [`Session`], so the session's fields
/// read directly — `principal.subject`, `principal.groups`, `principal.policies`,
/// `principal.expires_at` — and [`Principal::session_id`] names the session to revoke.
///
/// ```
/// use jwt_exchange::session::{Session, SessionId};
/// use jwt_exchange::Principal;
///
/// let s = Session::new(SessionId::generate(), "https://idp", "alice", 0, 60)
///     .with_policies(["ReadAll"]);
/// let p = Principal::from(s.clone());
/// assert_eq!(p.subject, "jwt:https://idp:alice");
/// assert_eq!(p.policies, ["ReadAll"]);
/// assert_eq!(p.session_id(), &s.id);
/// assert_eq!(*p.session(), s);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    session: Arc<Session>,
}

impl Principal {
    /// The session behind the bearer.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The shared session, for callers that keep it beyond the request.
    pub fn shared_session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The session id (what `DELETE /auth/session` revokes).
    pub fn session_id(&self) -> &SessionId {
        &self.session.id
    }
}

impl std::ops::Deref for Principal {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl From<Session> for Principal {
    fn from(s: Session) -> Self {
        Principal {
            session: Arc::new(s),
        }
    }
}

impl From<Arc<Session>> for Principal {
    fn from(session: Arc<Session>) -> Self {
        Principal { session }
    }
}

struct Inner {
    verifier: Verifier,
    directory: Arc<dyn Directory>,
    store: Arc<dyn SessionStore>,
    bearer: BearerKeys,
    clock: Arc<dyn Clock>,
    replay_protection: bool,
    counters: Counters,
    _sweeper: Option<SweeperHandle>,
}

impl Inner {
    /// The store as a trait object. Calling through `&dyn SessionStore` rather than on the
    /// `Arc` (which is itself a `SessionStore`) costs one boxed future per call instead of two.
    fn store(&self) -> &dyn SessionStore {
        &*self.store
    }
}

/// The exchange service: verifies external tokens, creates sessions, mints and checks bearers,
/// authorizes, revokes.
///
/// Cheap to clone (an `Arc` inside), `Send + Sync`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use jwt_exchange::session::{BearerKeys, BearerSecret};
/// use jwt_exchange::{Exchange, ProviderConfig, Providers, Verifier};
///
/// let verifier = Verifier::new(Providers(vec![ProviderConfig::new(
///     "https://idp.example/",
///     "https://idp.example/jwks",
/// )]))
/// .unwrap();
/// let bearer = BearerKeys::new("jwt-exchange", "k1", BearerSecret::generate());
/// let exchange = Exchange::builder(verifier, bearer).build().unwrap();
/// // exchange.login(external_jwt).await? -> Login { token, token_expiration, .. }
/// // exchange.authenticate(bearer).await? -> Principal
/// assert!(exchange.authenticate("not-a-bearer").await.is_err());
/// # }
/// ```
#[derive(Clone)]
pub struct Exchange {
    inner: Arc<Inner>,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("verifier", &self.inner.verifier)
            .field("store", &self.inner.store)
            .field("replay_protection", &self.inner.replay_protection)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Exchange`].
#[must_use]
pub struct ExchangeBuilder {
    verifier: Verifier,
    bearer: BearerKeys,
    store: Option<Arc<dyn SessionStore>>,
    directory: Option<Arc<dyn Directory>>,
    policies: Option<PolicyConfig>,
    replay_protection: bool,
    sweep: bool,
}

impl fmt::Debug for ExchangeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExchangeBuilder").finish_non_exhaustive()
    }
}

impl ExchangeBuilder {
    /// The session store. Defaults to a [`MemoryStore`] on the verifier's clock.
    pub fn store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// A custom group → policy directory (database, RBAC service). Defaults to a
    /// [`StaticDirectory`] of [`ExchangeBuilder::policies`].
    pub fn directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Groups and policies for the default [`StaticDirectory`]. Defaults to none (sessions
    /// authenticate but have no permissions).
    pub fn policies(mut self, cfg: PolicyConfig) -> Self {
        self.policies = Some(cfg);
        self
    }

    /// Lets each external token's `jti` be exchanged only once; tokens without `jti` are then
    /// refused. Defaults to `false`.
    pub fn replay_protection(mut self, on: bool) -> Self {
        self.replay_protection = on;
        self
    }

    /// Whether to run the expired-session sweep every `cleanup_interval` (the shortest of all
    /// providers) when built inside a Tokio runtime. Defaults to `true`.
    pub fn sweep(mut self, on: bool) -> Self {
        self.sweep = on;
        self
    }

    /// Builds the service.
    pub fn build(self) -> Result<Exchange, ConfigError> {
        let clock = Arc::clone(self.verifier.clock());
        let directory: Arc<dyn Directory> = match (self.directory, self.policies) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "policies",
                    "set either a custom directory or policies, not both",
                ))
            }
            (Some(d), None) => d,
            (None, p) => Arc::new(StaticDirectory::new(p.unwrap_or_default())?),
        };
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryStore::new(Arc::clone(&clock))));
        let interval = self
            .verifier
            .issuers()
            .filter_map(|i| self.verifier.provider(i))
            .map(|p| p.cleanup_interval)
            .min();
        let sweeper = match interval {
            Some(i) if self.sweep && tokio::runtime::Handle::try_current().is_ok() => {
                Some(spawn_sweeper(Arc::clone(&store), i))
            }
            _ => None,
        };
        Ok(Exchange {
            inner: Arc::new(Inner {
                verifier: self.verifier,
                directory,
                store,
                bearer: self.bearer,
                clock,
                replay_protection: self.replay_protection,
                counters: Counters::default(),
                _sweeper: sweeper,
            }),
        })
    }
}

impl Exchange {
    /// Starts a builder from a verifier (providers, keys, clock) and the bearer keys.
    pub fn builder(verifier: Verifier, bearer: BearerKeys) -> ExchangeBuilder {
        ExchangeBuilder {
            verifier,
            bearer,
            store: None,
            directory: None,
            policies: None,
            replay_protection: false,
            sweep: true,
        }
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.inner.verifier
    }

    /// The `iss` of the bearers this exchange mints ([`BearerKeys::issuer`]).
    ///
    /// ```
    /// use jwt_exchange::session::{BearerKeys, BearerSecret};
    /// use jwt_exchange::{Exchange, Providers, Verifier};
    ///
    /// let keys = BearerKeys::new("jwt-exchange", "k1", BearerSecret::generate());
    /// let exchange = Exchange::builder(Verifier::new(Providers(vec![])).unwrap(), keys)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(exchange.bearer_issuer(), "jwt-exchange");
    /// ```
    pub fn bearer_issuer(&self) -> &str {
        self.inner.bearer.issuer()
    }

    /// The session store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// The policy directory.
    pub fn directory(&self) -> &Arc<dyn Directory> {
        &self.inner.directory
    }

    /// Counters since start.
    pub fn metrics(&self) -> Metrics {
        self.inner.counters.snapshot()
    }

    /// Exchanges an external JWT for a session and its bearer.
    ///
    /// The session expires at `min(now + session_max_ttl, token exp)`. If the store write (or
    /// the policy lookup) fails nothing is created and the error is an outage
    /// ([`ExchangeError::is_unavailable`]). Every outcome is audited without the token.
    pub async fn login(&self, external_token: &str) -> Result<Login, ExchangeError> {
        let result = self.login_inner(external_token).await;
        match &result {
            Ok(l) => {
                self.inner.counters.login_ok();
                tracing::info!(
                    target: audit::TARGET,
                    event = "login",
                    outcome = "success",
                    principal_type = Session::PRINCIPAL_TYPE,
                    subject = %audit::Text(&l.session.subject),
                    session_id = %l.session.id.as_str(),
                    issuer = %audit::Text(&l.session.issuer),
                    groups = ?l.session.groups,
                    policies = ?l.session.policies,
                    expires_at = l.token_expiration,
                );
            }
            Err(e) => {
                self.inner.counters.login_failed(e.check());
                tracing::warn!(
                    target: audit::TARGET,
                    event = "login",
                    outcome = "failure",
                    principal_type = Session::PRINCIPAL_TYPE,
                    check = e.check(),
                    reason = %e,
                    unavailable = e.is_unavailable(),
                );
            }
        }
        result
    }

    async fn login_inner(&self, external_token: &str) -> Result<Login, ExchangeError> {
        let inner = &*self.inner;
        let (claims, provider) = inner.verifier.verify_for_login(external_token).await?;
        if inner.replay_protection && claims.jti.is_none() {
            return Err(ExchangeError::Replayed);
        }
        let now = inner.clock.unix_seconds();
        let expires_at = session_expiry(now, provider.session_max_ttl, claims.expires_at);
        // The token, not its session, decides how long its `jti` stays claimed: a session may
        // end long before the token (`session_max_ttl`), and the token can log in until its
        // `exp` (within the leeway past `exp` it verifies, but its session would be born
        // expired and is refused just below).
        let replay_until = claims.expires_at;
        if expires_at <= now {
            // Accepted only thanks to the leeway: a session would be born expired.
            return Err(VerifyError::Expired {
                exp: claims.expires_at,
                now,
            }
            .into());
        }
        let policies = inner
            .directory
            .policies_for_groups(&claims.groups)
            .await
            .map_err(ExchangeError::Directory)?;
        let mut session = Arc::new(
            Session::new(
                SessionId::generate(),
                claims.issuer,
                claims.identity,
                now,
                expires_at,
            )
            .with_groups(claims.groups)
            .with_policies(policies)
            .with_jti(claims.jti),
        );
        if let Err(e) = inner.store().create_shared(Arc::clone(&session)).await {
            match e {
                // 256 random bits collided: draw again, once.
                StoreError::AlreadyExists => {
                    Arc::make_mut(&mut session).id = SessionId::generate();
                    inner
                        .store()
                        .create_shared(Arc::clone(&session))
                        .await
                        .map_err(ExchangeError::Store)?;
                }
                e => return Err(ExchangeError::Store(e)),
            }
        }
        if inner.replay_protection {
            // The session is created first so that a failed claim leaves nothing behind: on
            // a replay or a store error the session is removed again.
            let jti = session.jti.as_deref().unwrap_or_default();
            let claimed = inner
                .store()
                .claim_jti(&session.issuer, jti, replay_until)
                .await;
            if !matches!(claimed, Ok(true)) {
                if let Err(e) = inner.store().delete(&session.id).await {
                    // No bearer was minted for it, so nobody can use it; it stays listed for
                    // its subject until it expires or is revoked.
                    tracing::warn!(
                        session_id = %session.id.as_str(),
                        error = %e,
                        "a login refused after its session was stored could not remove it"
                    );
                }
                return Err(match claimed {
                    Err(e) => ExchangeError::Store(e),
                    _ => ExchangeError::Replayed,
                });
            }
        }
        let token = inner.bearer.mint(session.id.as_str(), now, expires_at);
        Ok(Login {
            token,
            token_expiration: expires_at,
            session,
        })
    }

    /// Checks a bearer: signature and `exp` first (no I/O), then the session must still exist —
    /// a revoked session fails at once even though its bearers' signatures are valid.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, ExchangeError> {
        let inner = &*self.inner;
        let now = inner.clock.unix_seconds();
        let id = inner
            .bearer
            .verify_with(bearer, now, |sub, _, _| SessionId::parse(sub))
            .map_err(ExchangeError::InvalidBearer)?
            .map_err(|_| ExchangeError::SessionNotFound)?;
        let store = inner.store();
        let found = match store.get_now(&id) {
            Some(found) => found,
            None => store.get_shared(&id).await,
        };
        match found {
            Ok(Some(s)) => Ok(Principal::from(s)),
            Ok(None) => Err(ExchangeError::SessionNotFound),
            Err(e) => Err(ExchangeError::Store(e)),
        }
    }

    /// Decides `action` on `resource` for `principal`: explicit deny wins, then any allow, else
    /// deny. Policies are read by id now, so edits apply to live sessions.
    pub async fn authorize(
        &self,
        principal: &Principal,
        action: &str,
        resource: &str,
    ) -> Result<Decision, ExchangeError> {
        let d = policy::authorize(
            &*self.inner.directory,
            &principal.policies,
            action,
            resource,
        )
        .await
        .map_err(ExchangeError::Directory)?;
        self.inner.counters.decision(d);
        tracing::info!(
            target: audit::TARGET,
            event = "authorize",
            outcome = d.as_str(),
            principal_type = %principal.principal_type,
            subject = %audit::Text(&principal.subject),
            session_id = %principal.id.as_str(),
            issuer = %audit::Text(&principal.issuer),
            action = %audit::Text(action),
            resource = %audit::Text(resource),
        );
        Ok(d)
    }

    /// Deletes one session; every bearer minted for it fails from the next request on.
    /// `Ok(false)` if it did not exist.
    pub async fn revoke(&self, id: &SessionId) -> Result<bool, ExchangeError> {
        let existed = self
            .inner
            .store()
            .delete(id)
            .await
            .map_err(ExchangeError::Store)?;
        self.inner.counters.revoked(u64::from(existed));
        tracing::info!(
            target: audit::TARGET,
            event = "revoke",
            outcome = if existed { "revoked" } else { "not_found" },
            principal_type = Session::PRINCIPAL_TYPE,
            session_id = %id.as_str(),
        );
        Ok(existed)
    }

    /// Deletes every session of `subject`; returns how many.
    pub async fn revoke_subject(&self, subject: &str) -> Result<usize, ExchangeError> {
        let n = self
            .inner
            .store()
            .delete_subject(subject)
            .await
            .map_err(ExchangeError::Store)?;
        self.inner.counters.revoked(n as u64);
        tracing::info!(
            target: audit::TARGET,
            event = "revoke_subject",
            outcome = "revoked",
            principal_type = Session::PRINCIPAL_TYPE,
            subject = %audit::Text(subject),
            count = n,
        );
        Ok(n)
    }

    /// The live sessions of `subject`.
    pub async fn sessions_for(&self, subject: &str) -> Result<Vec<Session>, ExchangeError> {
        self.inner
            .store()
            .list_subject(subject)
            .await
            .map_err(ExchangeError::Store)
    }
}
