//! The session store trait, the in-memory store and the background sweeper.
//!
//! A [`SessionStore`] keeps [`Session`]s by id, indexes them by subject for listing and bulk
//! revocation, and records `(issuer, jti)` pairs for replay protection. It is object-safe, so the
//! backend can be picked at runtime as `Arc<dyn SessionStore>`; [`MemoryStore`] is the default,
//! and backend crates (Redis, Postgres) implement the same trait and pass the same conformance
//! suite (`jwt_exchange_testkit::store_conformance`).
//!
//! Expired sessions are never returned: backends reap them lazily on read and in bulk in
//! [`SessionStore::sweep`], which [`spawn_sweeper`] runs periodically.
//!
//! [`CachedStore`] optionally puts a bounded in-process near-cache in front of a shared store,
//! kept coherent across instances by [`Invalidation`] messages over an [`Invalidator`] (Redis
//! pub/sub, PostgreSQL `LISTEN`/`NOTIFY`); see [`CachedStore`] for the rules.

use std::error::Error;
use std::sync::Arc;

use crate::session::{Session, SessionId};

mod memory;
mod near_cache;
mod sweep;
mod tls;

pub use memory::MemoryStore;
pub use near_cache::{
    CachedStore, EchoHeartbeat, Invalidation, InvalidationListener, Invalidator, ListenGuard,
    LocalInvalidator, NearCacheConfig, NearCacheStats,
};
pub use sweep::{spawn_sweeper, SweeperHandle};
pub use tls::StoreTls;

/// A boxed error from a store backend, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn Error + Send + Sync>;

/// Why a store operation failed.
///
/// ```
/// use jwt_exchange::store::StoreError;
///
/// let e = StoreError::unavailable(std::io::Error::other("connection refused"));
/// assert!(e.is_unavailable());
/// assert_eq!(e.to_string(), "session store unavailable");
/// assert!(std::error::Error::source(&e).is_some());
/// assert!(!StoreError::AlreadyExists.is_unavailable());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// [`SessionStore::create`] found a session with the same id; nothing was written.
    #[error("a session with this id already exists")]
    AlreadyExists,
    /// The backend could not be reached or did not answer (the HTTP layer answers 503).
    #[error("session store unavailable")]
    Unavailable(#[source] BoxError),
    /// A stored record could not be decoded.
    #[error("corrupt session record")]
    Corrupt(#[source] BoxError),
}

impl StoreError {
    /// Wraps a backend error as [`StoreError::Unavailable`].
    ///
    /// ```
    /// use jwt_exchange::store::StoreError;
    /// let e = StoreError::unavailable("timed out");
    /// assert!(matches!(e, StoreError::Unavailable(_)));
    /// ```
    pub fn unavailable(e: impl Into<BoxError>) -> Self {
        StoreError::Unavailable(e.into())
    }

    /// Wraps a decoding error as [`StoreError::Corrupt`].
    ///
    /// ```
    /// use jwt_exchange::store::StoreError;
    /// let e = StoreError::corrupt(serde_json::from_str::<u8>("x").unwrap_err());
    /// assert!(matches!(e, StoreError::Corrupt(_)));
    /// ```
    pub fn corrupt(e: impl Into<BoxError>) -> Self {
        StoreError::Corrupt(e.into())
    }

    /// Whether this is [`StoreError::Unavailable`] (a transient backend failure).
    ///
    /// ```
    /// use jwt_exchange::store::StoreError;
    /// assert!(StoreError::unavailable("down").is_unavailable());
    /// assert!(!StoreError::corrupt("bad json").is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Where sessions and `jti` records live.
///
/// All times are Unix seconds from the store's clock; a session is live while
/// `now < expires_at`. Implementations must be safe to call concurrently, must make
/// [`create`](SessionStore::create) and [`claim_jti`](SessionStore::claim_jti) atomic, and must
/// never return an expired session.
///
/// ```
/// use std::sync::Arc;
/// use jwt_exchange::session::{Session, SessionId};
/// use jwt_exchange::store::{MemoryStore, SessionStore, StoreError};
/// use jwt_exchange::{Clock, MockClock};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = MockClock::at_unix(1_000);
/// let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
///
/// let s = Session::new(SessionId::generate(), "https://idp", "alice", 1_000, 1_060);
/// store.create(&s).await?;
/// assert!(matches!(store.create(&s).await, Err(StoreError::AlreadyExists)));
/// assert_eq!(store.get(&s.id).await?, Some(s.clone()));
/// assert_eq!(store.list_subject(&s.subject).await?.len(), 1);
///
/// clock.advance(std::time::Duration::from_secs(60));
/// assert_eq!(store.get(&s.id).await?, None);
///
/// assert!(store.claim_jti("https://idp", "j1", 2_000).await?);
/// assert!(!store.claim_jti("https://idp", "j1", 2_000).await?);
/// # Ok::<(), StoreError>(())
/// # }).unwrap();
/// ```
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// Atomically inserts; never overwrites: an existing id -> Err(StoreError::AlreadyExists).
    async fn create(&self, session: &Session) -> Result<(), StoreError>;

    /// The live session; expired ones are reaped lazily here and reported as None.
    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError>;

    /// Deletes one session; Ok(true) if it existed.
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError>;

    /// Deletes every session of a subject; returns how many.
    async fn delete_subject(&self, subject: &str) -> Result<usize, StoreError>;

    /// Live sessions of a subject (sorted by created_at then id).
    async fn list_subject(&self, subject: &str) -> Result<Vec<Session>, StoreError>;

    /// Removes expired sessions; returns how many.
    async fn sweep(&self) -> Result<usize, StoreError>;

    /// Replay protection: atomically records (issuer, jti) until `expires_at`; Ok(true) the first
    /// time, Ok(false) if already recorded and not yet expired.
    async fn claim_jti(&self, issuer: &str, jti: &str, expires_at: i64)
        -> Result<bool, StoreError>;

    /// Liveness probe for readiness checks (memory: always Ok).
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Approximate number of stored sessions (expired ones not yet swept may count), for the
    /// `active sessions` metric. `Ok(None)` when the backend cannot count cheaply (the default).
    async fn count(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// [`SessionStore::create`] for a session the caller already shares: what
    /// [`Exchange::login`](crate::Exchange::login) calls. The default calls `create`; a store
    /// that keeps sessions in process memory ([`MemoryStore`], [`CachedStore`]) overrides it to
    /// keep this `Arc` instead of copying the session.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwt_exchange::session::{Session, SessionId};
    /// # use jwt_exchange::store::{MemoryStore, SessionStore};
    /// # use jwt_exchange::MockClock;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(Arc::new(MockClock::at_unix(0)));
    /// let s = Arc::new(Session::new(SessionId::generate(), "https://idp", "alice", 0, 60));
    /// store.create_shared(Arc::clone(&s)).await.unwrap();
    /// assert!(Arc::ptr_eq(&store.get_shared(&s.id).await.unwrap().unwrap(), &s));
    /// # });
    /// ```
    async fn create_shared(&self, session: Arc<Session>) -> Result<(), StoreError> {
        self.create(&session).await
    }

    /// [`SessionStore::get`] as a shared session: what
    /// [`Exchange::authenticate`](crate::Exchange::authenticate) calls on every request. The
    /// default wraps `get`'s result; a store that keeps sessions in process memory overrides it
    /// to hand out its own `Arc` (no copy, no allocation).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwt_exchange::session::{Session, SessionId};
    /// # use jwt_exchange::store::{MemoryStore, SessionStore};
    /// # use jwt_exchange::MockClock;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new(Arc::new(MockClock::at_unix(0)));
    /// let s = Session::new(SessionId::generate(), "https://idp", "alice", 0, 60);
    /// store.create(&s).await.unwrap();
    /// assert_eq!(*store.get_shared(&s.id).await.unwrap().unwrap(), s);
    /// # });
    /// ```
    async fn get_shared(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        Ok(self.get(id).await?.map(Arc::new))
    }

    /// A read that needs no I/O: `Some(answer)` when the store can answer from process memory
    /// at once — the memory store always, the near-cache on a hit — and `None` to have the
    /// caller await [`SessionStore::get_shared`] instead (the default). `authenticate` tries
    /// this first, so a request served from memory costs no future and no allocation.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use jwt_exchange::session::{Session, SessionId};
    /// # use jwt_exchange::store::{MemoryStore, SessionStore};
    /// # use jwt_exchange::MockClock;
    /// let store = MemoryStore::new(Arc::new(MockClock::at_unix(0)));
    /// let id = SessionId::generate();
    /// assert!(matches!(store.get_now(&id), Some(Ok(None))));
    /// ```
    fn get_now(&self, id: &SessionId) -> Option<Result<Option<Arc<Session>>, StoreError>> {
        let _ = id;
        None
    }
}

/// A shared store is a store: `Arc<MemoryStore>` or `Arc<dyn SessionStore>` can be wrapped (by
/// a [`CachedStore`], for instance) while other owners keep using it.
#[async_trait::async_trait]
impl<T: SessionStore + ?Sized> SessionStore for Arc<T> {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        (**self).create(session).await
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        (**self).get(id).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        (**self).delete(id).await
    }

    async fn delete_subject(&self, subject: &str) -> Result<usize, StoreError> {
        (**self).delete_subject(subject).await
    }

    async fn list_subject(&self, subject: &str) -> Result<Vec<Session>, StoreError> {
        (**self).list_subject(subject).await
    }

    async fn sweep(&self) -> Result<usize, StoreError> {
        (**self).sweep().await
    }

    async fn claim_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        (**self).claim_jti(issuer, jti, expires_at).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        (**self).ping().await
    }

    async fn count(&self) -> Result<Option<u64>, StoreError> {
        (**self).count().await
    }

    async fn create_shared(&self, session: Arc<Session>) -> Result<(), StoreError> {
        (**self).create_shared(session).await
    }

    async fn get_shared(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        (**self).get_shared(id).await
    }

    fn get_now(&self, id: &SessionId) -> Option<Result<Option<Arc<Session>>, StoreError>> {
        (**self).get_now(id)
    }
}
