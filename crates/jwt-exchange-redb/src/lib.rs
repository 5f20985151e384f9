//! An embedded, durable [`SessionStore`](jwt_exchange::store::SessionStore) for
//! [jwt-exchange](jwt_exchange): sessions in one local file ([redb](https://www.redb.org)),
//! so a restart of a single-node server logs nobody out.
//!
//! ```
//! use std::sync::Arc;
//! use jwt_exchange::session::{Session, SessionId};
//! use jwt_exchange::store::SessionStore;
//! use jwt_exchange::MockClock;
//! use jwt_exchange_redb::RedbStore;
//!
//! # let dir = std::env::temp_dir().join(format!("jwtx-crate-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let path = dir.join("sessions.redb");
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = MockClock::at_unix(1_700_000_000);
//! let store: Arc<dyn SessionStore> = Arc::new(RedbStore::open(&path, Arc::new(clock.clone()))?);
//!
//! let s = Session::new(SessionId::generate(), "https://idp", "alice", 1_700_000_000, 1_700_003_600);
//! store.create(&s).await?;                  // one durable write transaction
//! assert_eq!(store.get(&s.id).await?, Some(s.clone()));
//! assert_eq!(store.delete_subject(&s.subject).await?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
//!
//! Use it for a single instance that must keep sessions across restarts. It is not shared:
//! one process opens the file at a time, so several instances need Redis or PostgreSQL.
//!
//! # Tables
//!
//! | table | key → value | purpose |
//! |---|---|---|
//! | `sessions` | session id (`&str`) → the session as JSON (`&str`) | the records |
//! | `sessions_by_subject` | (subject, session id) → `()` | `list_subject`, `delete_subject` |
//! | `sessions_by_expiry` | (expires_at, session id) → `()` | `sweep` |
//! | `jtis` | (issuer, jti) → expires_at (`i64`) | replay protection |
//! | `meta` | `"layout"` → `1` | layout version, checked at open |
//!
//! Every write (create, delete, delete_subject, sweep, claim_jti) is one write transaction
//! with immediate durability: when it returns, the change is on disk, and a crash never
//! leaves a record without its index entries. Reads use read transactions, which never
//! block and are never blocked by writes. Expired records are filtered on read (against the
//! injected [`Clock`](jwt_exchange::Clock)) and removed by `sweep`; an expired id may be
//! created again.
//!
//! # Threads
//!
//! redb is synchronous, and a durable commit waits for the disk (an `fsync`, typically
//! 0.1–10 ms). Each operation therefore runs on Tokio's blocking pool
//! (`tokio::task::spawn_blocking`), so async workers never stall on the disk. Writers are
//! serialised by redb; readers run in parallel.
//!
//! # Failures and backups
//!
//! An undecodable record makes `get` and `list_subject` fail with `Corrupt` (and `create` of
//! the same id too: it is never overwritten); `delete`, `delete_subject` and `sweep` remove
//! it. I/O errors (disk full, read-only file system)
//! → `Unavailable`; a damaged file → `Corrupt`. After a crash, [`RedbStore::open`] checks and
//! repairs the file. To back up, copy the file while the server is stopped (or from a
//! file-system snapshot); see `docs/operations.md`.

mod error;
mod store;

pub use error::OpenError;
pub use store::RedbStore;
