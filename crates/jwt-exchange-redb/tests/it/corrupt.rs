//! Damaged records and files: `Corrupt` or a clear open error, never a panic.

use std::sync::Arc;

use jwt_exchange::session::{Session, SessionId};
use jwt_exchange::store::{SessionStore, StoreError};
use jwt_exchange::MockClock;
use jwt_exchange_redb::{OpenError, RedbStore};
use redb::{Database, TableDefinition};

use crate::common::TempDir;

const T0: i64 = 1_700_000_000;

/// The documented `sessions` table.
const SESSIONS: TableDefinition<'_, &str, &str> = TableDefinition::new("sessions");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

fn session(identity: &str) -> Session {
    Session::new(SessionId::generate(), "https://idp", identity, T0, T0 + 600)
}

/// Overwrites records in the closed file directly.
fn tamper(path: &std::path::Path, records: &[(&SessionId, &str)]) {
    let db = Database::create(path).expect("raw open");
    let tx = db.begin_write().expect("tx");
    {
        let mut t = tx.open_table(SESSIONS).expect("table");
        for (id, raw) in records {
            t.insert(id.as_str(), *raw).expect("insert");
        }
    }
    tx.commit().expect("commit");
}

#[tokio::test]
async fn garbage_records_are_corrupt_and_still_removable() {
    let dir = TempDir::new();
    let path = dir.file("sessions.redb");
    let clock = MockClock::at_unix(T0);
    let (a, b, c, other) = (session("a"), session("b"), session("c"), session("c"));
    {
        let store = RedbStore::open(&path, Arc::new(clock.clone())).expect("open");
        for s in [&a, &b, &c] {
            store.create(s).await.expect("create");
        }
    }
    let other_json = serde_json::to_string(&other).expect("json");
    tamper(
        &path,
        &[
            (&a.id, "not json"),
            (&b.id, "{\"id\":1}"),
            (&c.id, &other_json),
        ],
    );

    let store = RedbStore::open(&path, Arc::new(clock.clone())).expect("reopen");
    for s in [&a, &b, &c] {
        assert!(matches!(
            store.get(&s.id).await,
            Err(StoreError::Corrupt(_))
        ));
    }
    assert!(matches!(
        store.list_subject(&a.subject).await,
        Err(StoreError::Corrupt(_))
    ));
    // A corrupt record is never overwritten by a create of the same id.
    assert!(matches!(
        store.create(&a).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(store.delete(&a.id).await.expect("delete garbage"));
    assert_eq!(
        store
            .delete_subject(&b.subject)
            .await
            .expect("revoke garbage"),
        1
    );
    assert_eq!(store.get(&b.id).await.expect("get"), None);

    clock.advance(std::time::Duration::from_secs(600));
    assert!(
        store.sweep().await.expect("sweep") >= 1,
        "sweep removes the rest"
    );
    assert_eq!(store.get(&c.id).await.expect("get"), None);
}

#[tokio::test]
async fn files_that_cannot_be_opened() {
    let dir = TempDir::new();
    let clock: Arc<MockClock> = Arc::new(MockClock::at_unix(T0));

    let junk = dir.file("junk.redb");
    std::fs::write(&junk, vec![0x5a; 8192]).expect("write junk");
    let err = RedbStore::open(&junk, clock.clone()).expect_err("not a database");
    assert!(matches!(err, OpenError::Open(_)), "{err:?}");

    let path = dir.file("sessions.redb");
    let store = RedbStore::open(&path, clock.clone()).expect("open");
    let err = RedbStore::open(&path, clock.clone()).expect_err("already open");
    assert!(matches!(err, OpenError::Open(_)), "{err:?}");
    drop(store);

    {
        let db = Database::create(&path).expect("raw open");
        let tx = db.begin_write().expect("tx");
        tx.open_table(META)
            .expect("meta")
            .insert("layout", 9)
            .expect("insert");
        tx.commit().expect("commit");
    }
    let err = RedbStore::open(&path, clock.clone()).expect_err("newer layout");
    assert!(
        matches!(err, OpenError::UnsupportedLayout { found: 9 }),
        "{err:?}"
    );

    let err = RedbStore::open(dir.file("missing-dir/x.redb"), clock).expect_err("no directory");
    assert!(matches!(err, OpenError::Open(_)), "{err:?}");
}
