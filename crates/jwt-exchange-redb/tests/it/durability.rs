//! Sessions survive a restart (drop and reopen) and a crash (the writing process killed with
//! SIGKILL right after its writes returned).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use jwt_exchange::session::{Session, SessionId};
use jwt_exchange::store::SessionStore;
use jwt_exchange::{MockClock, SystemClock};
use jwt_exchange_redb::RedbStore;

use crate::common::TempDir;

const T0: i64 = 1_700_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unexpired_session_survives_a_restart() {
    let dir = TempDir::new();
    let path = dir.file("sessions.redb");
    let clock = MockClock::at_unix(T0);
    let store = RedbStore::open(&path, Arc::new(clock.clone())).expect("open");
    let live: Vec<Session> = (0..40)
        .map(|i| {
            Session::new(
                SessionId::generate(),
                "https://idp",
                format!("u{}", i % 4),
                T0,
                T0 + 600,
            )
            .with_groups([format!("g{i}")])
        })
        .collect();
    let expiring: Vec<Session> = (0..10)
        .map(|i| {
            Session::new(
                SessionId::generate(),
                "https://idp",
                format!("u{}", i % 4),
                T0,
                T0 + 5,
            )
        })
        .collect();
    for s in live.iter().chain(&expiring) {
        store.create(s).await.expect("create");
    }
    assert!(store
        .claim_jti("https://idp", "j1", T0 + 600)
        .await
        .expect("claim"));
    // A deletion before the restart stays deleted.
    store.delete(&live[0].id).await.expect("delete");
    drop(store);

    clock.advance(Duration::from_secs(10));
    let store = RedbStore::open(&path, Arc::new(clock.clone())).expect("reopen");
    assert_eq!(store.get(&live[0].id).await.expect("get"), None);
    for s in &live[1..] {
        assert_eq!(store.get(&s.id).await.expect("get").as_ref(), Some(s));
    }
    for s in &expiring {
        assert_eq!(store.get(&s.id).await.expect("get"), None);
    }
    let mut u1: Vec<Session> = live
        .iter()
        .filter(|s| s.identity == "u1")
        .cloned()
        .collect();
    u1.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    assert_eq!(store.list_subject(&u1[0].subject).await.expect("list"), u1);
    assert!(!store
        .claim_jti("https://idp", "j1", T0 + 600)
        .await
        .expect("claim"));
    assert_eq!(store.sweep().await.expect("sweep"), expiring.len());
    assert_eq!(
        store.delete_subject(&u1[0].subject).await.expect("revoke"),
        u1.len()
    );
}

/// Set by [`durable_after_sigkill`] for the child process it starts.
const CHILD_ENV: &str = "JWTX_REDB_CRASH_CHILD_PATH";

/// The child half of [`durable_after_sigkill`]: writes sessions, prints their ids, then
/// waits to be killed. A no-op in a normal test run.
#[tokio::test]
async fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = RedbStore::open(&path, Arc::new(SystemClock)).expect("open");
    let now = jwt_exchange::Clock::unix_seconds(&SystemClock);
    for _ in 0..20 {
        let s = Session::new(
            SessionId::generate(),
            "https://idp",
            "crash",
            now,
            now + 3600,
        );
        store.create(&s).await.expect("create");
        println!("WROTE {}", s.id.as_str());
    }
    println!("DONE");
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test]
async fn durable_after_sigkill() {
    let dir = TempDir::new();
    let path = dir.file("crash.redb");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "durability::crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut ids = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        // libtest may print "test … ... " before the first line of output.
        if let Some(at) = line.find("WROTE ") {
            ids.push(SessionId::parse(line[at + 6..].trim_end()).expect("id"));
        }
        if line.trim_end().ends_with("DONE") {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert_eq!(ids.len(), 20, "the child wrote its sessions");

    let store = RedbStore::open(&path, Arc::new(SystemClock)).expect("reopen after a crash");
    for id in &ids {
        assert!(
            store.get(id).await.expect("get").is_some(),
            "a session whose create returned is on disk"
        );
    }
    let subject = Session::subject_for("https://idp", "crash");
    assert_eq!(store.list_subject(&subject).await.expect("list").len(), 20);
}

/// Disk per session and create latency, for docs/operations.md:
/// `cargo test -p jwt-exchange-redb --test it sizing -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn sizing() {
    const N: u32 = 5_000;
    let dir = TempDir::new();
    let path = dir.file("sizing.redb");
    let store = RedbStore::open(&path, Arc::new(MockClock::at_unix(T0))).expect("open");
    let started = std::time::Instant::now();
    for i in 0..N {
        let s = jwt_exchange_testkit::store_conformance::typical_session(
            &format!("user{}@example.com", i % 1000),
            T0,
        );
        store.create(&s).await.expect("create");
    }
    let took = started.elapsed();
    drop(store);
    let bytes = std::fs::metadata(&path).expect("metadata").len();
    println!(
        "redb: {} bytes of file per session ({N} sessions, {bytes} bytes), {:?} per durable create",
        bytes / u64::from(N),
        took / N
    );
}
