//! An issuer's key set, kept fresh in the background and refetched (once) on unknown `kid`s.
//!
//! Concurrency model:
//! * The current [`KeySet`] sits behind a `std::sync::RwLock<Arc<..>>` that is only held to clone
//!   or swap the `Arc`, never across an `.await`. A token whose `kid` is known never waits.
//! * Refetches go through `flight`, an async mutex used purely as a single-flight guard (it
//!   protects no data). Whoever holds it fetches; whoever waited behind it sees that the attempt
//!   counter moved and reuses that result, so 1,000 concurrent logins with a new `kid` cause one
//!   fetch.
//! * Unknown-`kid` refetches are spaced by `jwks_refetch_cooldown`; inside the cool-down an unknown
//!   `kid` fails at once, after two hash lookups in the current set and without touching the
//!   guard, so a flood of random `kid`s costs no fetch, no lock and no memory. (An earlier
//!   negative cache of missing `kid`s saved one of those lookups and held up to 4,096
//!   attacker-chosen strings; the cool-down check made it redundant.)
//! * On fetch failure the last good set keeps serving until it is older than `jwks_max_stale`;
//!   after that verification fails with [`VerifyError::KeysUnavailable`] (a 503, not a 401).

use std::fmt;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::config::ProviderConfig;
use crate::jwks::fetch;
use crate::jwks::key::SharedKey;
use crate::jwks::{JwksError, KeySet};
use crate::verify::error::VerifyError;
use crate::Algorithm;

/// A snapshot of a key cache's health, for readiness checks and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStatus {
    /// The provider's issuer.
    pub issuer: String,
    /// `true` when a key set is loaded and younger than `jwks_max_stale`.
    pub usable: bool,
    /// Number of usable keys in the current set.
    pub keys: usize,
    /// When the current set was fetched.
    pub fetched_at: Option<SystemTime>,
    /// Successful fetches since start.
    pub fetch_successes: u64,
    /// Failed fetches since start.
    pub fetch_failures: u64,
    /// The last fetch error, if the last attempt failed.
    pub last_error: Option<String>,
}

#[derive(Clone, Debug)]
enum Source {
    Jwks(String),
    Discovery(String),
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<SystemTime>,
    attempted_at: Option<SystemTime>,
    /// Completed fetch attempts (success or failure); waiters compare it to skip a refetch.
    attempts: u64,
    successes: u64,
    failures: u64,
    consecutive_failures: u32,
    last_error: Option<String>,
    /// `jwks_uri` found through discovery.
    discovered: Option<String>,
}

struct Inner {
    issuer: String,
    source: Source,
    allowed: Vec<Algorithm>,
    refresh_interval: Duration,
    cooldown: Duration,
    max_stale: Duration,
    timeout: Duration,
    insecure_allow_http: bool,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    state: RwLock<State>,
    /// Single-flight guard for fetches; protects no data.
    flight: tokio::sync::Mutex<()>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut t) = self.task.lock() {
            if let Some(h) = t.take() {
                h.abort();
            }
        }
    }
}

/// One issuer's verification keys, fetched from its JWKS and kept fresh.
///
/// Cheap to clone; clones share the cache. The background refresh task (started by
/// [`JwksCache::spawn_refresh`]) stops when the last clone is dropped.
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("issuer", &self.inner.issuer)
            .field("source", &self.inner.source)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache for `provider`'s keys. Nothing is fetched until [`JwksCache::refresh`], the
    /// background task, or the first token.
    pub fn new(provider: &ProviderConfig, http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        let source = match (&provider.jwks_url, &provider.discovery_url) {
            (Some(u), _) => Source::Jwks(u.clone()),
            (None, Some(d)) => Source::Discovery(d.clone()),
            (None, None) => Source::Jwks(String::new()),
        };
        JwksCache {
            inner: Arc::new(Inner {
                issuer: provider.issuer.clone(),
                source,
                allowed: provider.algorithms.clone(),
                refresh_interval: provider.jwks_refresh_interval,
                cooldown: provider.jwks_refetch_cooldown,
                max_stale: provider.jwks_max_stale,
                timeout: provider.jwks_timeout,
                insecure_allow_http: provider.insecure_allow_http,
                http,
                clock,
                state: RwLock::new(State::default()),
                flight: tokio::sync::Mutex::new(()),
                task: Mutex::new(None),
            }),
        }
    }

    /// A client with the settings this crate uses for key fetches (rustls, no redirects).
    pub fn http_client(timeout: Duration) -> reqwest::Client {
        fetch::default_client(timeout)
    }

    /// Starts the background refresh (every `jwks_refresh_interval`; after a failure, sooner,
    /// with exponential back-off starting at the refetch cool-down). Needs a Tokio runtime; does
    /// nothing without one, or if already started. The task ends when the cache is dropped.
    pub fn spawn_refresh(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(issuer = %self.inner.issuer, "no Tokio runtime: JWKS background refresh not started");
            return;
        };
        let Ok(mut slot) = self.inner.task.lock() else {
            return;
        };
        if slot.is_some() {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let task = handle.spawn(async move {
            loop {
                let delay = match weak.upgrade() {
                    Some(inner) => inner.next_delay(),
                    None => return,
                };
                tokio::time::sleep(delay).await;
                let Some(inner) = weak.upgrade() else { return };
                let cache = JwksCache { inner };
                let _ = cache.refresh().await;
            }
        });
        *slot = Some(task.abort_handle());
    }

    /// Fetches the key set now (waiting for an in-flight fetch instead of starting a second
    /// one), ignoring the cool-down. Re-runs discovery when configured.
    pub async fn refresh(&self) -> Result<(), JwksError> {
        let _guard = self.inner.flight.lock().await;
        self.fetch_and_store(true).await
    }

    /// The health of this cache.
    pub fn status(&self) -> KeyStatus {
        let now = self.inner.clock.now();
        let st = self.read_state();
        KeyStatus {
            issuer: self.inner.issuer.clone(),
            usable: self.inner.is_fresh(&st, now),
            keys: st.keys.as_ref().map_or(0, |k| k.len()),
            fetched_at: st.fetched_at,
            fetch_successes: st.successes,
            fetch_failures: st.failures,
            last_error: if st.consecutive_failures > 0 {
                st.last_error.clone()
            } else {
                None
            },
        }
    }

    /// The current key set, if one is loaded (stale or not).
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.read_state().keys.clone()
    }

    /// Finds the key for a token's `kid` and `alg`, refetching once (single-flight, rate-limited)
    /// when the `kid` is unknown or no usable set is loaded.
    pub(crate) async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<SharedKey, VerifyError> {
        let (keys, attempts) = self.usable_snapshot();
        if let Some(keys) = &keys {
            match keys.select(kid, alg) {
                Err(VerifyError::UnknownKeyId) => {}
                other => return other.cloned(),
            }
        }
        self.refetch_after(attempts).await;
        let (keys, _) = self.usable_snapshot();
        let Some(keys) = keys else {
            return Err(VerifyError::KeysUnavailable);
        };
        keys.select(kid, alg).cloned()
    }

    /// Refetches unless another fetch completed since `observed` or the cool-down has not passed.
    async fn refetch_after(&self, observed: u64) {
        // Inside the cool-down nothing is fetched, so the answer needs no guard: a flood of
        // unknown `kid`s does not queue behind a fetch in flight (one the background refresh
        // started, say) only to learn that.
        if self.cooling_down(observed) {
            return;
        }
        let _guard = self.inner.flight.lock().await;
        if self.read_state().attempts != observed || self.cooling_down(observed) {
            return;
        }
        let _ = self.fetch_and_store(false).await;
    }

    /// Whether attempt `observed` is still the last one and was made inside the cool-down.
    fn cooling_down(&self, observed: u64) -> bool {
        let st = self.read_state();
        st.attempts == observed
            && st.attempted_at.is_some_and(|at| {
                self.inner
                    .clock
                    .now()
                    .duration_since(at)
                    .unwrap_or(Duration::ZERO)
                    < self.inner.cooldown
            })
    }

    /// Fetches and installs a key set. Callers hold `flight`.
    async fn fetch_and_store(&self, rediscover: bool) -> Result<(), JwksError> {
        let result = self.fetch(rediscover).await;
        let now = self.inner.clock.now();
        let mut st = self.write_state();
        st.attempts += 1;
        st.attempted_at = Some(now);
        match result {
            Ok(set) => {
                for s in set.skipped() {
                    tracing::warn!(issuer = %self.inner.issuer, kid = ?s.kid, reason = %s.reason, "JWKS key skipped");
                }
                tracing::debug!(issuer = %self.inner.issuer, keys = set.len(), "JWKS loaded");
                st.keys = Some(Arc::new(set));
                st.fetched_at = Some(now);
                st.successes += 1;
                st.consecutive_failures = 0;
                st.last_error = None;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(issuer = %self.inner.issuer, error = %e, source = ?std::error::Error::source(&e).map(ToString::to_string), "JWKS fetch failed; keeping the last good key set");
                st.failures += 1;
                st.consecutive_failures = st.consecutive_failures.saturating_add(1);
                st.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    async fn fetch(&self, rediscover: bool) -> Result<KeySet, JwksError> {
        let inner = &self.inner;
        let url = match &inner.source {
            Source::Jwks(u) => u.clone(),
            Source::Discovery(d) => {
                let cached = if rediscover {
                    None
                } else {
                    self.read_state().discovered.clone()
                };
                if let Some(u) = cached {
                    u
                } else {
                    let u = fetch::discover(
                        &inner.http,
                        d,
                        &inner.issuer,
                        inner.timeout,
                        inner.insecure_allow_http,
                    )
                    .await?;
                    self.write_state().discovered = Some(u.clone());
                    u
                }
            }
        };
        let body = fetch::get_capped(&inner.http, &url, inner.timeout).await?;
        KeySet::from_json(&body, &inner.allowed)
    }

    /// The current set if it is fresh enough to use, and the attempt counter.
    fn usable_snapshot(&self) -> (Option<Arc<KeySet>>, u64) {
        let now = self.inner.clock.now();
        let st = self.read_state();
        let keys = if self.inner.is_fresh(&st, now) {
            st.keys.clone()
        } else {
            None
        };
        (keys, st.attempts)
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Inner {
    fn is_fresh(&self, st: &State, now: SystemTime) -> bool {
        match (&st.keys, st.fetched_at) {
            (Some(_), Some(at)) => {
                now.duration_since(at).unwrap_or(Duration::ZERO) < self.max_stale
            }
            _ => false,
        }
    }

    /// Time until the next background refresh: the interval, or a back-off after failures.
    fn next_delay(&self) -> Duration {
        let st = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if st.attempts == 0 {
            return Duration::ZERO;
        }
        if st.consecutive_failures == 0 && st.keys.is_some() {
            return self.refresh_interval;
        }
        let base = self.cooldown.max(Duration::from_secs(1));
        let factor = 1u32 << st.consecutive_failures.saturating_sub(1).min(16);
        base.saturating_mul(factor).min(self.refresh_interval)
    }
}
