//! The [`SessionStore`] conformance suite, shared by every backend.
//!
//! [`run_all`] runs every case; each case is also a public function so a backend can run them
//! one per test, or skip one it documents as not applicable. Cases use fresh random ids and
//! subjects, so they can share one backend without colliding. Run them in parallel only with
//! [`RealTime`]: advancing a shared [`MockClock`] in one case would expire another case's
//! short-lived records early.
//!
//! Time is driven through [`TimeControl`]: a store built on a
//! [`MockClock`] passes the same clock (it implements [`TimeControl`]),
//! a networked backend with native TTLs passes [`RealTime`], which really sleeps. Cases that
//! need a session to expire use [`SHORT_TTL`] seconds and advance by one more second, so with
//! [`RealTime`] the whole suite takes about fifteen seconds.
//!
//! ```
//! use std::sync::Arc;
//! use jwt_exchange::store::{MemoryStore, SessionStore};
//! use jwt_exchange::MockClock;
//! use jwt_exchange_testkit::store_conformance;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let clock = MockClock::at_unix(1_700_000_000);
//! let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new(Arc::new(clock.clone())));
//! store_conformance::run_all(store, &clock).await;
//! # });
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jwt_exchange::session::{Session, SessionId};
use jwt_exchange::store::{SessionStore, StoreError};
use jwt_exchange::{Clock, MockClock};
use tokio::sync::Barrier;

/// Lifetime, in seconds, of the records a case lets expire.
pub const SHORT_TTL: i64 = 2;

/// Lifetime, in seconds, of records that must outlive the suite.
const LONG_TTL: i64 = 3600;

/// Issuer of every session the suite creates.
const ISSUER: &str = "https://conformance.test/tenant/ü";

/// Tasks racing in the concurrency cases.
const RACERS: usize = 16;

/// How the suite reads and moves the store's clock.
///
/// ```
/// use jwt_exchange::MockClock;
/// use jwt_exchange_testkit::store_conformance::TimeControl;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = MockClock::at_unix(100);
/// TimeControl::advance(&clock, 5).await;
/// assert_eq!(TimeControl::now(&clock), 105);
/// # });
/// ```
#[async_trait::async_trait]
pub trait TimeControl: Send + Sync {
    /// The store's current time, in Unix seconds.
    fn now(&self) -> i64;

    /// Moves the store's time forward by `secs` seconds (or waits that long).
    async fn advance(&self, secs: u64);
}

#[async_trait::async_trait]
impl TimeControl for MockClock {
    fn now(&self) -> i64 {
        self.unix_seconds()
    }

    async fn advance(&self, secs: u64) {
        MockClock::advance(self, Duration::from_secs(secs));
    }
}

/// The wall clock: [`TimeControl::advance`] sleeps. For backends with server-side TTLs.
///
/// ```
/// use jwt_exchange_testkit::store_conformance::{RealTime, TimeControl};
/// assert!(RealTime.now() > 1_600_000_000);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct RealTime;

#[async_trait::async_trait]
impl TimeControl for RealTime {
    fn now(&self) -> i64 {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        i64::try_from(secs).unwrap_or(i64::MAX)
    }

    async fn advance(&self, secs: u64) {
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
}

/// Runs every case in order. Panics (with a message naming the case) on the first failure.
///
/// Needs a Tokio runtime; the concurrency cases spawn tasks, so a multi-threaded runtime tests
/// more interleavings.
pub async fn run_all(store: Arc<dyn SessionStore>, time: &dyn TimeControl) {
    let store = &store;
    ping(store).await;
    create_never_overwrites(store, time).await;
    get_and_delete(store, time).await;
    subject_operations(store, time).await;
    round_trip(store, time).await;
    control_characters(store, time).await;
    concurrent_create_same_id(store, time).await;
    concurrent_create_many(store, time).await;
    claim_jti_once(store, time).await;
    claim_jti_concurrent(store, time).await;
    ttl_expiry(store, time).await;
    expired_id_reusable(store, time).await;
    sweep_removes_expired(store, time).await;
    jti_reclaimable_after_expiry(store, time).await;
}

/// `ping` succeeds on a healthy store.
pub async fn ping(store: &Arc<dyn SessionStore>) {
    store
        .ping()
        .await
        .expect("ping: a healthy store answers Ok");
}

/// `create` never overwrites: the same id twice gives `AlreadyExists` and keeps the original.
pub async fn create_never_overwrites(store: &Arc<dyn SessionStore>, time: &dyn TimeControl) {
    let original = session(time, &unique("orig"), LONG_TTL).with_groups(["a"]);
    store
        .create(&original)
        .await
        .expect("create_never_overwrites: first create");

    let mut intruder = session(time, &unique("intruder"), LONG_TTL).with_groups(["admins"]);
    intruder.id = original.id.clone();
    let second = store.create(&intruder).await;
    assert!(
        matches!(second, Err(StoreError::AlreadyExists)),
        "create_never_overwrites: second create with the same id must be AlreadyExists, got {second:?}"
    );
    assert_eq!(
        get(store, &original.id).await,
        Some(original.clone()),
        "create_never_overwrites: the original record must be kept"
    );
    assert!(
        list(store, &intruder.subject).await.is_empty(),
        "create_never_overwrites: the rejected record must not be indexed under its subject"
    );
    assert_eq!(
        list(store, &original.subject).await,
        vec![original.clone()],
        "create_never_overwrites: the original stays listed"
    );
    store.delete(&original.id).await.expect("cleanup");
}

/// `get` of an unknown id is `None`; `delete` reports whether the session existed.
pub async fn get_and_delete(store: &Arc<dyn SessionStore>, time: &dyn TimeControl) {
    assert_eq!(
        get(store, &SessionId::generate()).await,
        None,
        "get_and_delete: unknown id"
    );
    let s = session(time, &unique("gd"), LONG_TTL);
    store.create(&s).await.expect("get_and_delete: create");
    assert_eq!(
        get(store, &s.id).await,
        Some(s.clone()),
        "get_and_delete: get after create"
    );

    let deleted = store.delete(&s.id).await.expect("get_and_delete: delete");
    assert!(
        deleted,
        "get_and_delete: delete of an existing session returns true"
    );
    assert_eq!(
        get(store, &s.id).await,
        None,
        "get_and_delete: get after delete"
    );
    assert!(
        list(store, &s.subject).await.is_empty(),
        "get_and_delete: list after delete"
    );
    let again = store
        .delete(&s.id)
        .await
        .expect("get_and_delete: second delete");
    assert!(!again, "get_and_delete: second delete returns false");
    let unknown = store
        .delete(&SessionId::generate())
        .await
        .expect("get_and_delete: delete unknown");
    assert!(
        !unknown,
        "get_and_delete: delete of an unknown id returns false"
    );
}

/// `list_subject` returns exactly a subject's sessions, sorted by `created_at` then id;
/// `delete_subject` removes exactly them and counts them; other subjects are untouched.
pub async fn subject_operations(store: &Arc<dyn SessionStore>, time: &dyn TimeControl) {
    let alice = unique("alice");
    let bob = unique("bob");
    let now = time.now();
    let mut mine = Vec::new();
    for (i, age) in [20, 0, 10, 10].into_iter().enumerate() {
        let mut s = session(time, &alice, LONG_TTL).with_groups([format!("g{i}")]);
        s.created_at = now - age;
        store.create(&s).await.expect("subject_operations: create");
        mine.push(s);
    }
    let mut theirs = Vec::new();
    for _ in 0..2 {
        let s = session(time, &bob, LONG_TTL);
        store.create(&s).await.expect("subject_operations: create");
        theirs.push(s);
    }
    mine.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
    theirs.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
    let alice_subject = mine[0].subject.clone();
    let bob_subject = theirs[0].subject.clone();

    assert_eq!(
        list(store, &alice_subject).await,
        mine,
        "subject_operations: list_subject returns the subject's sessions sorted by created_at, id"
    );
    let deleted = store
        .delete_subject(&alice_subject)
        .await
        .expect("subject_operations: delete_subject");
    assert_eq!(
        deleted, 4,
        "subject_operations: delete_subject counts the deleted sessions"
    );
    for s in &mine {
        assert_eq!(
            get(store, &s.id).await,
            None,
            "subject_operations: deleted session is gone"
        );
    }
    assert!(
        list(store, &alice_subject).await.is_empty(),
        "subject_operations: list after delete_subject"
    );
    assert_eq!(
        list(store, &bob_subject).await,
        theirs,
        "subject_operations: other subjects are untouched"
    );
    for s in &theirs {
        assert_eq!(
            get(store, &s.id).await.as_ref(),
            Some(s),
            "subject_operations: other subject's session still readable"
        );
    }
    let again = store
        .delete_subject(&alice_subject)
        .await
        .expect("subject_operations: second delete_subject");
    assert_eq!(
        again, 0,
        "subject_operations: second delete_subject deletes nothing"
    );
    let unknown = store
        .delete_subject(&Session::subject_for(ISSUER, &unique("nobody")))
        .await
        .expect("subject_operations: delete_subject unknown");
    assert_eq!(unknown, 0, "subject_operations: unknown subject");
    assert_eq!(
        store.delete_subject(&bob_subject).await.expect("cleanup"),
        2,
        "subject_operations: cleanup"
    );
}

/// Records come back exactly as stored: every field, `jti` both `None` and `Some`, unicode,
/// quotes and separators, many groups.
pub async fn round_trip(store: &Arc<dyn SessionStore>, time: &dyn TimeControl) {
    let identity = format!(
        "ünïcødé 👩‍💻 \"q\" 'q' \\ / : ; , {{}} [] %00 {}",
        unique("rt")
    );
    let groups: Vec<String> = (0..200)
        .map(|i| format!("grp-{i}-ä/β:γ \"x\""))
        .chain([String::new(), " ".to_owned(), "日本語".to_owned()])
        .collect();
    let with_jti = session(time, &identity, LONG_TTL)
        .with_groups(groups.clone())
        .with_policies(["FSFullAccess", "Pølicy with spaces", "p:1"])
        .with_jti(Some(format!("jti-✓-{}", unique("j"))));
    let mut without_jti = session(time, &identity, LONG_TTL + 1).with_jti(None);
    without_jti.created_at = with_jti.created_at - 1;
    assert_eq!(without_jti.subject, with_jti.subject);

    for s in [&with_jti, &without_jti] {
        store.create(s).await.expect("round_trip: create");
        assert_eq!(
            get(store, &s.id).await.as_ref(),
            Some(s),
            "round_trip: get returns the record exactly"
        );
    }
    assert_eq!(
        list(store, &with_jti.subject).await,
        vec![without_jti.clone(), with_jti.clone()],
        "round_trip: list_subject returns the records exactly"
    );
    assert_eq!(
        store
            .delete_subject(&with_jti.subject)
            .await
            .expect("cleanup"),
        2,
        "round_trip: cleanup"
    );
}

/// Strings from a token may hold any character, NUL and other control characters included:
/// sessions, subjects, issuers and `jti`s with them are stored, found and deleted like any
/// other.
pub async fn control_characters(store: &Arc<dyn SessionStore>, time: &dyn TimeControl) {
    let identity = format!("nul\0ctl\u{1}\u{1f}\n\t\r\u{7f}\u{fffe}-{}", unique("cc"));
    let s = session(time, &identity, LONG_TTL)
        .with_groups(["\0", "a\0b", "\u{1}"])
        .with_jti(Some("j\0ti".to_owned()));
    store.create(&s).await.expect("control_characters: create");
    assert_eq!(
        get(store, &s.id).await.as_ref(),
        Some(&s),
        "control_characters: get returns the record exactly"
    );
    assert_eq!(
        list(store, &s.subject).await,
        vec![s.clone()],
        "control_characters: list_subject finds it by its subject"
    );
    let nul_issuer = format!("{ISSUER}\0");
    let jti = format!("\0{}\0", unique("jti"));
    let exp = time.now() + LONG_TTL;
    assert!(
        claim(store, &nul_issuer, &jti, exp).await,
        "control_characters: claim_jti with NUL characters"
    );
    assert!(
        !claim(store, &nul_issuer, &jti, exp).await,
        "control_characters: the claim is recorded"
    );
    assert!(
        claim(store, ISSUER, &jti, exp).await,
        "control_characters: an issuer differing by a trailing NUL is another issuer"
    );
    assert_eq!(
        store
            .delete_subject(&s.subject)
            .await
            .expect("control_characters: delete_subject"),
        1,
        "control_characters: delete_subject finds it by its subject"
    );
}

/// Concurrent creates of one id: exactly one succeeds, the rest get `AlreadyExists`, and the
/// winner's record is the one stored.
pub async fn concurrent_create_same_id(store: &Arc<dyn SessionStore>, time: &dyn TimeControl) {
    let id = SessionId::generate();
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let mut s = session(time, &unique(&format!("racer{i}")), LONG_TTL);
        s.id = id.clone();
        let store = Arc::clone(store);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let result = store.create(&s).await;
            (s, result)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (s, result) = t.await.expect("concurrent_create_same_id: task panicked");
        match result {
            Ok(()) => winners.push(s),
            Err(StoreError::AlreadyExists) => {}
            Err(e) => panic!("concurrent_create_same_id: unexpected error {e:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "concurrent_create_same_id: exactly one concurrent create must succeed"
    );
    assert_eq!(
        get(store, &id).await.as_ref(),
        winners.first(),
        "concurrent_create_same_id: the stored record is the winner's"
    );
    store.delete(&id).await.expect("cleanup");
}

/// Concurrent creates of many ids under one subject: all succeed, all are readable and listed.
pub async fn concurrent_create_many(store: &Arc<dyn SessionStore>, time: &dyn TimeControl) {
    const PER_TASK: usize = 25;
    let identity = unique("many");
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let batch: Vec<Session> = (0..PER_TASK)
            .map(|_| session(time, &identity, LONG_TTL))
            .collect();
        let store = Arc::clone(store);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            for s in &batch {
                store
                    .create(s)
                    .await
                    .expect("concurrent_create_many: create");
            }
            batch
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("concurrent_create_many: task panicked"));
    }
    for s in &all {
        assert_eq!(
            get(store, &s.id).await.as_ref(),
            Some(s),
            "concurrent_create_many: every created session is readable"
        );
    }
    let subject = all[0].subject.clone();
    assert_eq!(
        list(store, &subject).await.len(),
        RACERS * PER_TASK,
        "concurrent_create_many: every created session is listed"
    );
    assert_eq!(
        store.delete_subject(&subject).await.expect("cleanup"),
        RACERS * PER_TASK,
        "concurrent_create_many: delete_subject removes them all"
    );
}

/// `claim_jti` is true once per `(issuer, jti)` until it expires; issuers are separate.
pub async fn claim_jti_once(store: &Arc<dyn SessionStore>, time: &dyn TimeControl) {
    let jti = unique("jti");
    let exp = time.now() + LONG_TTL;
    assert!(
        claim(store, ISSUER, &jti, exp).await,
        "claim_jti_once: first claim succeeds"
    );
    assert!(
        !claim(store, ISSUER, &jti, exp).await,
        "claim_jti_once: a replay is refused"
    );
    assert!(
        !claim(store, ISSUER, &jti, exp + 100).await,
        "claim_jti_once: a replay with a later expiry is refused"
    );
    assert!(
        claim(store, "https://other-issuer.test", &jti, exp).await,
        "claim_jti_once: the same jti at another issuer is a different token"
    );
    assert!(
        claim(store, ISSUER, &format!("{jti}x"), exp).await,
        "claim_jti_once: another jti"
    );
}

/// Concurrent claims of one `(issuer, jti)`: exactly one is true.
pub async fn claim_jti_concurrent(store: &Arc<dyn SessionStore>, time: &dyn TimeControl) {
    let jti = unique("race");
    let exp = time.now() + LONG_TTL;
    let barrier = Arc::new(Barrier::new(RACERS * 2));
    let mut tasks = Vec::new();
    for _ in 0..RACERS * 2 {
        let store = Arc::clone(store);
        let barrier = Arc::clone(&barrier);
        let jti = jti.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .claim_jti(ISSUER, &jti, exp)
                .await
                .expect("claim_jti_concurrent: claim_jti")
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.expect("claim_jti_concurrent: task panicked") {
            wins += 1;
        }
    }
    assert_eq!(
        wins, 1,
        "claim_jti_concurrent: exactly one concurrent claim wins"
    );
}

/// Expired sessions are invisible: `get` returns `None` and `list_subject` leaves them out,
/// while live sessions of the same subject stay.
pub async fn ttl_expiry(store: &Arc<dyn SessionStore>, time: &dyn TimeControl) {
    let identity = unique("ttl");
    let short = session(time, &identity, SHORT_TTL);
    let mut long = session(time, &identity, LONG_TTL);
    long.created_at += 1;
    store.create(&short).await.expect("ttl_expiry: create");
    store.create(&long).await.expect("ttl_expiry: create");
    assert_eq!(
        get(store, &short.id).await.as_ref(),
        Some(&short),
        "ttl_expiry: live before expiry"
    );

    time.advance(expire_secs()).await;

    assert_eq!(
        get(store, &short.id).await,
        None,
        "ttl_expiry: get after expiry"
    );
    assert_eq!(
        list(store, &long.subject).await,
        vec![long.clone()],
        "ttl_expiry: list_subject excludes expired sessions"
    );
    assert_eq!(
        get(store, &long.id).await.as_ref(),
        Some(&long),
        "ttl_expiry: the live session is kept"
    );
    store.delete_subject(&long.subject).await.expect("cleanup");
}

/// An expired session no longer exists: its id can be created again (here for another
/// subject), the new record is the one read and listed, and the old subject's operations no
/// longer see or touch it.
pub async fn expired_id_reusable(store: &Arc<dyn SessionStore>, time: &dyn TimeControl) {
    let old = session(time, &unique("old"), SHORT_TTL);
    store
        .create(&old)
        .await
        .expect("expired_id_reusable: first create");

    time.advance(expire_secs()).await;

    let mut new = session(time, &unique("new"), LONG_TTL).with_groups(["g"]);
    new.id = old.id.clone();
    store
        .create(&new)
        .await
        .expect("expired_id_reusable: create over an expired id succeeds");
    assert_eq!(
        get(store, &new.id).await.as_ref(),
        Some(&new),
        "expired_id_reusable: get returns the new record"
    );
    assert!(
        list(store, &old.subject).await.is_empty(),
        "expired_id_reusable: the old subject no longer lists the id"
    );
    assert_eq!(
        list(store, &new.subject).await,
        vec![new.clone()],
        "expired_id_reusable: the new subject lists it"
    );
    let again = store.create(&new).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists)),
        "expired_id_reusable: the live record is not overwritten, got {again:?}"
    );
    assert_eq!(
        store
            .delete_subject(&old.subject)
            .await
            .expect("expired_id_reusable: delete_subject of the old subject"),
        0,
        "expired_id_reusable: the old subject has nothing left to delete"
    );
    assert_eq!(
        get(store, &new.id).await.as_ref(),
        Some(&new),
        "expired_id_reusable: deleting the old subject keeps the new record"
    );
    assert_eq!(
        store.delete_subject(&new.subject).await.expect("cleanup"),
        1,
        "expired_id_reusable: cleanup"
    );
}

/// `sweep` removes expired sessions (and counts at least those) and keeps live ones.
///
/// A backend whose records expire natively may have nothing left to count; it can run the
/// other cases individually and test its own sweep.
pub async fn sweep_removes_expired(store: &Arc<dyn SessionStore>, time: &dyn TimeControl) {
    let identity = unique("sweep");
    let expiring: Vec<Session> = (0..5)
        .map(|_| session(time, &identity, SHORT_TTL))
        .collect();
    let mut live: Vec<Session> = (0..2).map(|_| session(time, &identity, LONG_TTL)).collect();
    for s in expiring.iter().chain(&live) {
        store
            .create(s)
            .await
            .expect("sweep_removes_expired: create");
    }

    time.advance(expire_secs()).await;

    let removed = store.sweep().await.expect("sweep_removes_expired: sweep");
    assert!(
        removed >= expiring.len(),
        "sweep_removes_expired: sweep reported {removed} removals, expected at least {}",
        expiring.len()
    );
    for s in &expiring {
        assert_eq!(
            get(store, &s.id).await,
            None,
            "sweep_removes_expired: expired session gone"
        );
    }
    for s in &live {
        assert_eq!(
            get(store, &s.id).await.as_ref(),
            Some(s),
            "sweep_removes_expired: live session kept"
        );
    }
    live.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
    assert_eq!(
        list(store, &live[0].subject).await,
        live,
        "sweep_removes_expired: only live sessions listed"
    );
    store
        .delete_subject(&live[0].subject)
        .await
        .expect("cleanup");
}

/// A `jti` can be claimed again once its record has expired.
pub async fn jti_reclaimable_after_expiry(store: &Arc<dyn SessionStore>, time: &dyn TimeControl) {
    let jti = unique("reclaim");
    assert!(
        claim(store, ISSUER, &jti, time.now() + SHORT_TTL).await,
        "jti_reclaimable_after_expiry: first claim"
    );
    assert!(
        !claim(store, ISSUER, &jti, time.now() + SHORT_TTL).await,
        "jti_reclaimable_after_expiry: replay before expiry"
    );

    time.advance(expire_secs()).await;

    let exp = time.now() + LONG_TTL;
    assert!(
        claim(store, ISSUER, &jti, exp).await,
        "jti_reclaimable_after_expiry: claim after expiry succeeds"
    );
    assert!(
        !claim(store, ISSUER, &jti, exp).await,
        "jti_reclaimable_after_expiry: the new claim is recorded"
    );
}

/// A session shaped like a typical Entra ID login (long issuer, e-mail identity, five groups,
/// three policies, a 32-character `jti`), for sizing measurements: `identity` should differ
/// between sessions of different subjects.
///
/// ```
/// use jwt_exchange_testkit::store_conformance::typical_session;
/// let s = typical_session("alice@example.com", 1_700_000_000);
/// assert_eq!(s.groups.len(), 5);
/// assert_eq!(s.expires_at, 1_700_000_000 + 3600);
/// ```
pub fn typical_session(identity: &str, now: i64) -> Session {
    Session::new(
        SessionId::generate(),
        "https://login.microsoftonline.com/0000-tenant-id/v2.0",
        identity,
        now,
        now + 3600,
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
    .with_jti(Some("0123456789abcdef0123456789abcdef".into()))
}

/// Seconds to advance so that a [`SHORT_TTL`] record has surely expired.
fn expire_secs() -> u64 {
    SHORT_TTL.unsigned_abs() + 1
}

/// A unique string, so cases never collide on a shared backend.
/// Two near-caches of one deployment (`a`, `b`: the same store and channel), each with an echo
/// heartbeat every `beat`: for 25 beats neither counts the heartbeats — its own or the
/// other's — as invalidations, loses its subscription or drops its cached entry; then a
/// revocation on `a` still reaches `b` (within 2 s). For the backends' near-cache tests.
///
/// # Panics
///
/// When any of that does not hold.
pub async fn echo_heartbeats_keep_a_healthy_cache<S: SessionStore>(
    a: &jwt_exchange::store::CachedStore<S>,
    b: &jwt_exchange::store::CachedStore<S>,
    beat: Duration,
) {
    let s = session(&RealTime, &unique("heartbeat"), LONG_TTL);
    a.create(&s).await.expect("create");
    b.get(&s.id).await.expect("cache on b");
    let before = [a.stats(), b.stats()];
    tokio::time::sleep(beat * 25).await;
    for (cache, before) in [a, b].into_iter().zip(before) {
        let now = cache.stats();
        assert!(cache.is_subscribed(), "still subscribed");
        assert_eq!(now.entries, 1, "still cached");
        assert_eq!(now.flushes, before.flushes, "no flush");
        assert_eq!(
            now.invalidations, before.invalidations,
            "heartbeats invalidate nothing"
        );
    }
    assert!(a.delete(&s.id).await.expect("revoke"));
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while b.stats().entries != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "revocation never reached b"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &SessionId::generate().as_str()[..16])
}

fn session(time: &dyn TimeControl, identity: &str, ttl: i64) -> Session {
    let now = time.now();
    Session::new(SessionId::generate(), ISSUER, identity, now, now + ttl)
}

async fn get(store: &Arc<dyn SessionStore>, id: &SessionId) -> Option<Session> {
    store.get(id).await.expect("get")
}

async fn list(store: &Arc<dyn SessionStore>, subject: &str) -> Vec<Session> {
    store.list_subject(subject).await.expect("list_subject")
}

async fn claim(store: &Arc<dyn SessionStore>, issuer: &str, jti: &str, exp: i64) -> bool {
    store.claim_jti(issuer, jti, exp).await.expect("claim_jti")
}
