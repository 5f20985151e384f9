//! The in-memory [`SessionStore`]: sharded hash maps with a subject index.
//!
//! Layout and locking:
//! * Sessions live in [`SHARDS`] `Mutex<HashSet<Stored>>` shards chosen by the id's last
//!   characters (ids are random), where a [`Stored`] is the shared session itself, found by its
//!   own id: a table slot is one pointer, and `get_shared` — the per-request read — is one
//!   lock, one lookup and one reference-count increment: no copy, no allocation. Comparing a
//!   candidate's id reads the session, which the reference count touches anyway, and keeps
//!   the table at 8 bytes per session instead of 56 (an inline id) — at a million sessions that
//!   is 8 MB of table rather than 56 MB for the CPU caches and the TLB. `get` copies the
//!   session out.
//! * The subject index (subject → ids) is sharded the same way by subject. Locks are only ever
//!   nested in one order, **session shard, then subject shard**; paths that start from the index
//!   (`list_subject`, `delete_subject`) copy or take the id set and release the index lock before
//!   touching session shards. Every session is in the index under its subject once `create`
//!   returns; removal paths clean the index while still holding the session shard.
//! * `jti` records live in their own shards, keyed by `(issuer, jti)`.
//! * No lock is held across an `.await` (nothing here awaits), and no lock is held while
//!   cloning more than one record.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::mem::size_of;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::clock::Clock;
use crate::session::{Session, SessionId};
use crate::store::{SessionStore, StoreError};

/// Number of shards of each map.
const SHARDS: usize = 32;

type SessionShard = HashSet<Stored, IdHash>;
type SubjectShard = HashMap<String, HashSet<SessionId, IdHash>>;
type JtiShard = HashMap<(String, String), i64>;

/// The default [`SessionStore`]: process-local, sharded, TTL-correct with the injected clock.
///
/// Sessions do not survive a restart and are not shared between processes; use a backend crate
/// for that. Expired sessions are reaped on read and by [`SessionStore::sweep`] (run it
/// periodically with [`spawn_sweeper`](crate::store::spawn_sweeper)); until then they still
/// take memory, see [`MemoryStore::approx_bytes_per_session`].
///
/// ```
/// use std::sync::Arc;
/// use jwt_exchange::store::{MemoryStore, SessionStore};
/// use jwt_exchange::SystemClock;
///
/// let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new(Arc::new(SystemClock)));
/// # let _ = store;
/// ```
pub struct MemoryStore {
    clock: Arc<dyn Clock>,
    /// Picks the shard of a subject or a `jti` (see [`IdHash`] for why not SipHash there).
    shard_hash: IdHash,
    sessions: Box<[Mutex<SessionShard>]>,
    subjects: Box<[Mutex<SubjectShard>]>,
    jtis: Box<[Mutex<JtiShard>]>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.len())
            .field("shards", &SHARDS)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store reading the time from `clock`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use jwt_exchange::store::MemoryStore;
    /// use jwt_exchange::MockClock;
    ///
    /// let store = MemoryStore::new(Arc::new(MockClock::at_unix(0)));
    /// assert!(store.is_empty());
    /// ```
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        fn shards<T: Default>() -> Box<[Mutex<T>]> {
            (0..SHARDS).map(|_| Mutex::new(T::default())).collect()
        }
        MemoryStore {
            clock,
            shard_hash: IdHash::default(),
            sessions: shards(),
            subjects: shards(),
            jtis: shards(),
        }
    }

    /// Number of stored sessions, including expired ones not yet reaped.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use jwt_exchange::store::MemoryStore;
    /// use jwt_exchange::SystemClock;
    /// assert_eq!(MemoryStore::new(Arc::new(SystemClock)).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.sessions.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no sessions are stored (expired ones not yet reaped count as stored).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use jwt_exchange::store::MemoryStore;
    /// use jwt_exchange::SystemClock;
    /// assert!(MemoryStore::new(Arc::new(SystemClock)).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.sessions.iter().all(|s| lock(s).is_empty())
    }

    /// A rough estimate of the heap memory `session` occupies once stored, in bytes: the shared
    /// session (one allocation per string, each rounded to the allocator's granule), its map
    /// slot (the inline id and the `Arc`), its subject-index entry and hash-table slack. Expect
    /// it to be within a factor of two of the truth; a session with a handful of groups and
    /// policies costs about 1 KiB. Memory per session is bounded by the sizes of its strings,
    /// which the exchange takes from a verified token.
    ///
    /// ```
    /// use jwt_exchange::session::{Session, SessionId};
    /// use jwt_exchange::store::MemoryStore;
    ///
    /// let s = Session::new(SessionId::generate(), "https://idp.example", "alice", 0, 3600)
    ///     .with_groups(["admins", "developers"]);
    /// assert!(MemoryStore::approx_bytes_per_session(&s) < 1536);
    /// ```
    pub fn approx_bytes_per_session(session: &Session) -> usize {
        let strings = session
            .groups
            .iter()
            .chain(&session.policies)
            .chain(&session.jti);
        // Table slot (the `Arc` + control byte), the shared session (reference counts, the
        // struct, its strings and vectors, each allocation rounded up to the allocator's
        // 16-byte granule).
        let alloc = |n: usize| if n == 0 { 0 } else { n.div_ceil(16) * 16 + 8 };
        let record = size_of::<Stored>()
            + 1
            + alloc(2 * size_of::<usize>() + size_of::<Session>())
            + [
                &session.principal_type,
                &session.subject,
                &session.identity,
                &session.issuer,
            ]
            .into_iter()
            .chain(strings)
            .map(|s| alloc(s.len()))
            .sum::<usize>()
            + alloc(session.groups.len() * size_of::<String>())
            + alloc(session.policies.len() * size_of::<String>());
        // Subject-index entry (the subject string itself is shared by all of its sessions).
        let index = size_of::<SessionId>() + 1;
        // Hash tables run at most 7/8 full.
        (record + index) * 8 / 7
    }

    fn shard_of<K: Hash + ?Sized>(&self, key: &K) -> usize {
        (self.shard_hash.hash_one(key) as usize) % SHARDS
    }

    /// The shard of a session. Ids are 256 random bits (or, for ids a caller made up, at worst
    /// skewed towards some shards: a matter of lock contention, not of correctness), so their
    /// last characters pick the shard without hashing the id twice per lookup; the map inside
    /// still uses the keyed hasher.
    fn session_shard(&self, id: &SessionId) -> MutexGuard<'_, SessionShard> {
        let b = id.as_str().as_bytes();
        let pick = b
            .iter()
            .rev()
            .take(2)
            .fold(0usize, |acc, c| acc * 131 + usize::from(*c));
        lock(&self.sessions[pick % SHARDS])
    }

    fn subject_shard(&self, subject: &str) -> MutexGuard<'_, SubjectShard> {
        lock(&self.subjects[self.shard_of(subject)])
    }

    /// Adds `id` to `subject`'s index entry. Callers hold `id`'s session shard.
    fn index_add(&self, subject: &str, id: &SessionId) {
        let mut idx = self.subject_shard(subject);
        match idx.get_mut(subject) {
            Some(set) => {
                set.insert(id.clone());
            }
            None => {
                idx.insert(subject.to_owned(), HashSet::from_iter([id.clone()]));
            }
        }
    }

    /// Removes `id` from `subject`'s index entry. Callers hold `id`'s session shard.
    fn index_remove(&self, subject: &str, id: &SessionId) {
        let mut idx = self.subject_shard(subject);
        if let Some(set) = idx.get_mut(subject) {
            set.remove(id);
            if set.is_empty() {
                idx.remove(subject);
            }
        }
    }

    /// The ids indexed under `subject`, copied out so the index lock is released at once.
    fn indexed(&self, subject: &str) -> Vec<SessionId> {
        self.subject_shard(subject)
            .get(subject)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn now(&self) -> i64 {
        self.clock.unix_seconds()
    }

    /// `create`: never overwrites a live session; an expired one's id may be reused.
    fn insert(&self, session: Arc<Session>) -> Result<(), StoreError> {
        let now = self.now();
        let mut shard = self.session_shard(&session.id);
        let new = Arc::clone(&session);
        // One probe for a new id (every login); an id already stored is the rare case.
        if !shard.insert(Stored(session)) {
            if shard.get(&new.id).is_some_and(|s| !s.0.is_expired(now)) {
                return Err(StoreError::AlreadyExists);
            }
            if let Some(old) = shard.replace(Stored(Arc::clone(&new))) {
                self.index_remove(&old.0.subject, &old.0.id);
            }
        }
        self.index_add(&new.subject, &new.id);
        Ok(())
    }

    /// The live session under `id`; an expired one is reaped here.
    fn lookup(&self, id: &SessionId) -> Option<Arc<Session>> {
        let now = self.now();
        let mut shard = self.session_shard(id);
        match shard.get(id) {
            None => None,
            Some(s) if !s.0.is_expired(now) => Some(Arc::clone(&s.0)),
            Some(_) => {
                if let Some(old) = shard.take(id) {
                    self.index_remove(&old.0.subject, id);
                }
                None
            }
        }
    }
}

#[async_trait::async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        self.insert(Arc::new(session.clone()))
    }

    async fn create_shared(&self, session: Arc<Session>) -> Result<(), StoreError> {
        self.insert(session)
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.lookup(id).map(|s| (*s).clone()))
    }

    async fn get_shared(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        Ok(self.lookup(id))
    }

    fn get_now(&self, id: &SessionId) -> Option<Result<Option<Arc<Session>>, StoreError>> {
        Some(Ok(self.lookup(id)))
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let now = self.now();
        let mut shard = self.session_shard(id);
        match shard.take(id) {
            Some(old) => {
                self.index_remove(&old.0.subject, id);
                Ok(!old.0.is_expired(now))
            }
            None => Ok(false),
        }
    }

    /// Counts only live sessions; expired ones of the subject are removed too.
    async fn delete_subject(&self, subject: &str) -> Result<usize, StoreError> {
        let now = self.now();
        let ids = self.subject_shard(subject).remove(subject);
        let mut deleted = 0;
        for id in ids.into_iter().flatten() {
            let mut shard = self.session_shard(&id);
            // The id may have been deleted and reused for another subject in the meantime.
            if shard.get(&id).is_some_and(|s| s.0.subject == subject) {
                if let Some(old) = shard.take(&id) {
                    if !old.0.is_expired(now) {
                        deleted += 1;
                    }
                }
                // An expired session replaced under the same id after the set was taken has
                // re-indexed itself; drop that entry too.
                self.index_remove(subject, &id);
            }
        }
        Ok(deleted)
    }

    async fn list_subject(&self, subject: &str) -> Result<Vec<Session>, StoreError> {
        let now = self.now();
        let mut out = Vec::new();
        for id in self.indexed(subject) {
            let mut shard = self.session_shard(&id);
            match shard.get(&id) {
                Some(s) if s.0.subject != subject => {}
                Some(s) if !s.0.is_expired(now) => out.push((*s.0).clone()),
                Some(_) => {
                    shard.remove(&id);
                    self.index_remove(subject, &id);
                }
                None => {}
            }
        }
        out.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
        Ok(out)
    }

    /// Removes expired sessions (the count) and expired `jti` records (not counted).
    async fn sweep(&self) -> Result<usize, StoreError> {
        let now = self.now();
        let mut removed = 0;
        for shard in &*self.sessions {
            let mut shard = lock(shard);
            let mut expired = Vec::new();
            shard.retain(|Stored(s)| {
                let keep = !s.is_expired(now);
                if !keep {
                    expired.push((s.subject.clone(), s.id.clone()));
                }
                keep
            });
            removed += expired.len();
            for (subject, id) in expired {
                self.index_remove(&subject, &id);
            }
        }
        for shard in &*self.jtis {
            lock(shard).retain(|_, exp| now < *exp);
        }
        Ok(removed)
    }

    async fn count(&self) -> Result<Option<u64>, StoreError> {
        Ok(Some(self.len() as u64))
    }

    async fn claim_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let key = (issuer.to_owned(), jti.to_owned());
        let mut shard = lock(&self.jtis[self.shard_of(&key)]);
        match shard.entry(key) {
            Entry::Occupied(e) if now < *e.get() => Ok(false),
            Entry::Occupied(mut e) => {
                e.insert(expires_at);
                Ok(true)
            }
            Entry::Vacant(e) => {
                e.insert(expires_at);
                Ok(true)
            }
        }
    }
}

/// Locks a shard, ignoring poisoning: every critical section leaves the maps consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A stored session in its shard's set, hashed and compared by its id (so the set is looked up
/// with a `&SessionId`, through `Borrow`). The id of a stored session never changes: the
/// store holds one reference, so `Arc::make_mut` elsewhere copies instead of writing.
#[derive(Clone)]
struct Stored(Arc<Session>);

impl std::borrow::Borrow<SessionId> for Stored {
    fn borrow(&self) -> &SessionId {
        &self.0.id
    }
}

impl Hash for Stored {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Exactly as the id hashes, as `Borrow` requires.
        self.0.id.hash(state);
    }
}

impl PartialEq for Stored {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for Stored {}

/// The hasher of the maps and sets keyed by [`SessionId`]: a folded 64×64→128-bit multiply per
/// eight bytes under two random keys drawn per map, instead of the standard library's SipHash.
///
/// Why not SipHash: a session id is 43 characters, and hashing it is on every `authenticate`
/// and twice on every login; SipHash-1-3 costs about 200 instructions for that, this about 30.
/// Why this is still safe for these maps: their keys are ids this crate drew from the CSPRNG
/// (256 bits; a caller of [`SessionStore::create`] may pass its own ids, and a caller that can
/// do that is trusted anyway), and each map has its own secret keys, so nobody outside the
/// process can precompute colliding ids. Keys an attacker chooses freely — subjects, `jti`s —
/// stay under the keyed SipHash of [`RandomState`] inside their maps; only the choice of their
/// shard uses this hash, where the worst a skew could do is put more of them behind one lock
/// (a login used to hash its subject with SipHash twice, once for the shard and once in it).
#[derive(Clone)]
struct IdHash {
    seed: u64,
    mul: u64,
}

impl Default for IdHash {
    fn default() -> Self {
        let keys = RandomState::new();
        IdHash {
            seed: keys.hash_one(0u8),
            // Odd, so the multiply keeps every bit of the state in play.
            mul: keys.hash_one(1u8) | 1,
        }
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            state: self.seed,
            mul: self.mul,
        }
    }
}

/// See [`IdHash`].
struct IdHasher {
    state: u64,
    mul: u64,
}

/// The high and low halves of the 128-bit product, folded together.
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
            self.state = fold_mul(self.state ^ w, self.mul);
        }
        let rest = words.remainder();
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        // The length goes into the last word, so inputs that differ only by trailing zero
        // bytes hash differently.
        let last = u64::from_le_bytes(last) ^ ((bytes.len() as u64) << 56);
        self.state = fold_mul(self.state ^ last, self.mul);
    }

    fn finish(&self) -> u64 {
        fold_mul(self.state, self.mul.rotate_left(32) | 1)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::MockClock;

    const T0: i64 = 1_700_000_000;

    fn store() -> (Arc<MemoryStore>, MockClock) {
        let clock = MockClock::at_unix(T0);
        (Arc::new(MemoryStore::new(Arc::new(clock.clone()))), clock)
    }

    fn session(identity: &str, ttl: i64) -> Session {
        Session::new(SessionId::generate(), "https://idp", identity, T0, T0 + ttl)
    }

    impl MemoryStore {
        /// Checks the subject index against the sessions, exactly (no concurrent writers).
        fn assert_consistent(&self) {
            let mut from_sessions: HashMap<String, HashSet<SessionId>> = HashMap::new();
            for shard in &*self.sessions {
                for Stored(s) in lock(shard).iter() {
                    let id = &s.id;
                    from_sessions
                        .entry(s.subject.clone())
                        .or_default()
                        .insert(id.clone());
                }
            }
            let mut from_index: HashMap<String, HashSet<SessionId>> = HashMap::new();
            for shard in &*self.subjects {
                for (subject, ids) in lock(shard).iter() {
                    assert!(!ids.is_empty(), "empty index entry for {subject}");
                    from_index.insert(subject.clone(), ids.iter().cloned().collect());
                }
            }
            assert_eq!(from_sessions, from_index, "subject index out of sync");
        }

        fn jti_len(&self) -> usize {
            self.jtis.iter().map(|s| lock(s).len()).sum()
        }

        fn non_empty_shards(&self) -> usize {
            self.sessions.iter().filter(|s| !lock(s).is_empty()).count()
        }
    }

    #[tokio::test]
    async fn sessions_spread_over_shards() {
        let (store, _) = store();
        for i in 0..1000 {
            store
                .create(&session(&format!("u{}", i % 10), 60))
                .await
                .expect("create");
        }
        assert_eq!(store.len(), 1000);
        assert!(
            store.non_empty_shards() > SHARDS / 2,
            "only {} shards used",
            store.non_empty_shards()
        );
        store.assert_consistent();
        let subject = Session::subject_for("https://idp", "u3");
        assert_eq!(store.list_subject(&subject).await.expect("list").len(), 100);
    }

    #[tokio::test]
    async fn index_follows_delete_and_delete_subject() {
        let (store, _) = store();
        let a1 = session("a", 60);
        let a2 = session("a", 60);
        let b = session("b", 60);
        for s in [&a1, &a2, &b] {
            store.create(s).await.expect("create");
        }
        store.assert_consistent();
        assert!(store.delete(&a1.id).await.expect("delete"));
        assert!(!store.delete(&a1.id).await.expect("delete again"));
        store.assert_consistent();
        assert_eq!(store.delete_subject(&a2.subject).await.expect("ds"), 1);
        assert_eq!(store.delete_subject(&a2.subject).await.expect("ds"), 0);
        store.assert_consistent();
        assert_eq!(store.len(), 1);
        assert_eq!(store.get(&b.id).await.expect("get"), Some(b));
    }

    #[tokio::test]
    async fn expiry_is_exact_and_reaps_index() {
        let (store, clock) = store();
        let s = session("a", 10);
        let keep = session("a", 100);
        store.create(&s).await.expect("create");
        store.create(&keep).await.expect("create");

        clock.set_unix(T0 + 9);
        assert!(store.get(&s.id).await.expect("get").is_some());
        clock.set_unix(T0 + 10);
        assert_eq!(store.get(&s.id).await.expect("get"), None);
        assert_eq!(store.len(), 1, "get reaps the expired session");
        store.assert_consistent();

        // Reaped through list_subject.
        let s2 = Session::new(SessionId::generate(), "https://idp", "a", T0, T0 + 10);
        store.create(&s2).await.expect("create");
        assert_eq!(store.len(), 2);
        let listed = store.list_subject(&keep.subject).await.expect("list");
        assert_eq!(listed, vec![keep.clone()]);
        assert_eq!(store.len(), 1);
        store.assert_consistent();

        // delete of an expired session reports false, delete_subject does not count it.
        let s3 = Session::new(SessionId::generate(), "https://idp", "a", T0, T0 + 10);
        store.create(&s3).await.expect("create");
        assert!(!store.delete(&s3.id).await.expect("delete"));
        store.create(&s3).await.expect("create");
        assert_eq!(store.delete_subject(&keep.subject).await.expect("ds"), 1);
        assert!(store.is_empty());
        store.assert_consistent();
    }

    #[tokio::test]
    async fn sweep_removes_expired_sessions_and_jtis() {
        let (store, clock) = store();
        let short: Vec<_> = (0..50).map(|i| session(&format!("s{i}"), 5)).collect();
        let long: Vec<_> = (0..50).map(|i| session(&format!("s{i}"), 500)).collect();
        for s in short.iter().chain(&long) {
            store.create(s).await.expect("create");
        }
        assert!(store.claim_jti("i", "old", T0 + 5).await.expect("claim"));
        assert!(store.claim_jti("i", "new", T0 + 500).await.expect("claim"));
        assert_eq!(store.sweep().await.expect("sweep"), 0);

        clock.advance(Duration::from_secs(5));
        assert_eq!(store.sweep().await.expect("sweep"), 50);
        assert_eq!(store.sweep().await.expect("sweep"), 0);
        assert_eq!(store.len(), 50);
        assert_eq!(store.jti_len(), 1);
        store.assert_consistent();
        for s in &long {
            assert_eq!(store.get(&s.id).await.expect("get").as_ref(), Some(s));
        }
    }

    #[tokio::test]
    async fn expired_id_can_be_reused() {
        let (store, clock) = store();
        let old = session("a", 5);
        store.create(&old).await.expect("create");
        clock.advance(Duration::from_secs(5));
        let mut new = Session::new(old.id.clone(), "https://other", "b", T0 + 5, T0 + 50);
        new.groups.push("g".into());
        store.create(&new).await.expect("reuse an expired id");
        store.assert_consistent();
        assert_eq!(store.get(&old.id).await.expect("get"), Some(new.clone()));
        assert!(store
            .list_subject(&old.subject)
            .await
            .expect("list")
            .is_empty());
        assert!(matches!(
            store.create(&new).await,
            Err(StoreError::AlreadyExists)
        ));
    }

    #[tokio::test]
    async fn jti_claims() {
        let (store, clock) = store();
        assert!(store.claim_jti("i", "j", T0 + 10).await.expect("claim"));
        assert!(!store.claim_jti("i", "j", T0 + 10).await.expect("claim"));
        assert!(store.claim_jti("i2", "j", T0 + 10).await.expect("claim"));
        // ("a", "b:c") and ("a:b", "c") are different keys.
        assert!(store.claim_jti("a", "b:c", T0 + 10).await.expect("claim"));
        assert!(store.claim_jti("a:b", "c", T0 + 10).await.expect("claim"));
        clock.set_unix(T0 + 9);
        assert!(!store.claim_jti("i", "j", T0 + 10).await.expect("claim"));
        clock.set_unix(T0 + 10);
        assert!(store.claim_jti("i", "j", T0 + 20).await.expect("claim"));
        assert!(!store.claim_jti("i", "j", T0 + 20).await.expect("claim"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_mixed_operations_keep_the_index_consistent() {
        let (store, clock) = store();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let store = Arc::clone(&store);
            let clock = clock.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..200 {
                    let s = session(&format!("u{}", (t + i) % 7), (i % 13) + 1);
                    store.create(&s).await.expect("create");
                    match i % 5 {
                        0 => {
                            store.delete(&s.id).await.expect("delete");
                        }
                        1 => {
                            store.delete_subject(&s.subject).await.expect("ds");
                        }
                        2 => {
                            store.list_subject(&s.subject).await.expect("list");
                        }
                        3 => {
                            store.sweep().await.expect("sweep");
                        }
                        _ => clock.advance(Duration::from_millis(300)),
                    }
                    store.get(&s.id).await.expect("get");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        store.assert_consistent();
        clock.advance(Duration::from_secs(60));
        store.sweep().await.expect("sweep");
        assert!(store.is_empty());
        store.assert_consistent();
    }

    #[tokio::test]
    async fn gives_back_the_exact_session() {
        let base = Session::new(SessionId::generate(), "https://idp", "alice", T0, T0 + 60);
        let mut odd = Session::new(SessionId::generate(), "", "", -1, i64::MAX)
            .with_groups(["", "ü 👩‍💻", "a\u{0}b", ""])
            .with_policies(Vec::<String>::new())
            .with_jti(Some(String::new()));
        odd.principal_type = "something-else".to_owned();
        odd.subject = "not derived from issuer and identity".to_owned();
        let mut many = base
            .clone()
            .with_groups((0..300).map(|i| format!("g{i}")))
            .with_policies((0..300).map(|i| format!("p{i}")))
            .with_jti(Some("j".repeat(1000)));
        many.id = SessionId::generate();
        let (store, _) = store();
        for s in [base, odd, many] {
            store.create(&s).await.expect("create");
            assert_eq!(store.get(&s.id).await.expect("get"), Some(s.clone()));
            assert_eq!(*store.get_shared(&s.id).await.expect("get").unwrap(), s);
        }
    }

    #[test]
    fn approx_size_is_small_for_typical_sessions() {
        let typical = Session::new(
            SessionId::generate(),
            "https://login.microsoftonline.com/0000-tenant-id/v2.0",
            "alice@example.com",
            T0,
            T0 + 3600,
        )
        .with_groups([
            "engineering",
            "data-platform",
            "oncall",
            "admins",
            "readers",
        ])
        .with_policies([
            "FSFullAccess",
            "AuthManageOwnCredentials",
            "RepoManagementReadAll",
        ])
        .with_jti(Some("0123456789abcdef0123456789abcdef".into()));
        let bytes = MemoryStore::approx_bytes_per_session(&typical);
        assert!((600..1536).contains(&bytes), "{bytes} bytes");

        // Grows linearly with the strings, nothing else.
        let bigger = typical.clone().with_groups(vec!["g".repeat(100); 100]);
        let grown = MemoryStore::approx_bytes_per_session(&bigger);
        assert!(grown > bytes + 100 * 100, "{grown} bytes");
        assert!(grown < bytes + 100 * (100 + 24 + 24) * 2, "{grown} bytes");
    }

    #[test]
    fn the_id_hasher_is_deterministic_per_map_and_spreads_ids() {
        let (a, b) = (IdHash::default(), IdHash::default());
        let ids: Vec<SessionId> = (0..4096).map(|_| SessionId::generate()).collect();
        for id in &ids[..8] {
            assert_eq!(a.hash_one(id), a.hash_one(id.clone()));
        }
        // Another map has other keys.
        assert!(ids[..8].iter().any(|id| a.hash_one(id) != b.hash_one(id)));
        // No two of 4096 ids share a hash, and both ends of the hash that the table uses (low
        // bits: the bucket; top seven bits: the control byte) are spread: every one of the 128
        // values of each is hit, and none more than four times its share.
        let hashes: HashSet<u64> = ids.iter().map(|id| a.hash_one(id)).collect();
        assert_eq!(hashes.len(), ids.len());
        for take in [|h: u64| h & 0x7F, |h: u64| h >> 57] {
            let mut counts = [0usize; 128];
            for h in &hashes {
                counts[take(*h) as usize] += 1;
            }
            assert!(
                counts.iter().all(|&c| c > 0 && c < 4 * 4096 / 128),
                "{counts:?}"
            );
        }
        // Inputs that differ only by trailing zero bytes or by one byte differ.
        let h = |bytes: &[u8]| {
            let mut s = a.build_hasher();
            std::hash::Hasher::write(&mut s, bytes);
            std::hash::Hasher::finish(&s)
        };
        assert_ne!(h(b"abc"), h(b"abc\0"));
        assert_ne!(h(&[0; 16]), h(&[0; 17]));
        assert_ne!(h(b"aaaaaaaaaaaaaaaaa"), h(b"aaaaaaaaaaaaaaaab"));
    }
}
