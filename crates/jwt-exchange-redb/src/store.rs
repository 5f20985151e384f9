//! [`RedbStore`]: the [`SessionStore`] implementation.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jwt_exchange::session::{Session, SessionId};
use jwt_exchange::store::{SessionStore, StoreError};
use jwt_exchange::Clock;
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use crate::error::{map_err, OpenError};

/// Session id → the session as JSON.
pub(crate) const SESSIONS: TableDefinition<'_, &str, &str> = TableDefinition::new("sessions");
/// (subject, session id) → nothing: the subject index.
pub(crate) const BY_SUBJECT: TableDefinition<'_, (&str, &str), ()> =
    TableDefinition::new("sessions_by_subject");
/// (expires_at, session id) → nothing: the expiry index, for `sweep`.
pub(crate) const BY_EXPIRY: TableDefinition<'_, (i64, &str), ()> =
    TableDefinition::new("sessions_by_expiry");
/// (issuer, jti) → expires_at.
pub(crate) const JTIS: TableDefinition<'_, (&str, &str), i64> = TableDefinition::new("jtis");
/// Store metadata: `layout` → [`LAYOUT`].
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// Most sessions one sweep transaction removes (see `Inner::sweep`).
pub(crate) const SWEEP_BATCH: usize = 1024;

/// Version of the table layout above, recorded in [`META`].
const LAYOUT: u64 = 1;

/// A durable [`SessionStore`] in one local file (redb): sessions survive a restart of a
/// single-node server. Not shared between processes; see the [crate docs](crate).
///
/// Clones are cheap and share the open database.
///
/// ```
/// use std::sync::Arc;
/// use jwt_exchange::session::{Session, SessionId};
/// use jwt_exchange::store::SessionStore;
/// use jwt_exchange::SystemClock;
/// use jwt_exchange_redb::RedbStore;
///
/// # let dir = std::env::temp_dir().join(format!("jwtx-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("store-doc.redb");
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = RedbStore::open(&path, Arc::new(SystemClock))?;
/// let now = jwt_exchange::Clock::unix_seconds(&SystemClock);
/// let s = Session::new(SessionId::generate(), "https://idp", "alice", now, now + 60);
/// store.create(&s).await?;
/// drop(store);
///
/// let reopened = RedbStore::open(&path, Arc::new(SystemClock))?;
/// assert_eq!(reopened.get(&s.id).await?, Some(s));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.inner.path)
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the database file at `path`, creating it (and its tables) if missing. Times are
    /// read from `clock`.
    ///
    /// Blocks: opening reads the file header and, after a crash, checks and repairs the file
    /// (which can take a while for a large file). Call it at start-up, or inside
    /// `tokio::task::spawn_blocking`. A file can be open in one store at a time.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use jwt_exchange::SystemClock;
    /// use jwt_exchange_redb::RedbStore;
    ///
    /// let store = RedbStore::open("/var/lib/jwt-exchange/sessions.redb", Arc::new(SystemClock))?;
    /// # Ok::<(), jwt_exchange_redb::OpenError>(())
    /// ```
    pub fn open(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Self, OpenError> {
        let path = path.as_ref().to_path_buf();
        let db = Database::create(&path).map_err(OpenError::Open)?;
        let tx = db.begin_write().map_err(map_err)?;
        {
            tx.open_table(SESSIONS).map_err(map_err)?;
            tx.open_table(BY_SUBJECT).map_err(map_err)?;
            tx.open_table(BY_EXPIRY).map_err(map_err)?;
            tx.open_table(JTIS).map_err(map_err)?;
            let mut meta = tx.open_table(META).map_err(map_err)?;
            let found = meta.get("layout").map_err(map_err)?.map(|g| g.value());
            match found {
                None => {
                    meta.insert("layout", LAYOUT).map_err(map_err)?;
                }
                Some(LAYOUT) => {}
                Some(found) => return Err(OpenError::UnsupportedLayout { found }),
            }
        }
        tx.commit().map_err(map_err)?;
        Ok(RedbStore {
            inner: Arc::new(Inner { db, path, clock }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs a short blocking operation on Tokio's blocking pool, so the async workers never
    /// wait on a disk sync.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, i64) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let now = inner.clock.unix_seconds();
            f(&inner, now)
        })
        .await
        .map_err(StoreError::unavailable)?
    }
}

impl Inner {
    fn create(&self, session: &Session, json: &str, now: i64) -> Result<(), StoreError> {
        let id = session.id.as_str();
        let tx = self.db.begin_write().map_err(map_err)?;
        {
            let mut sessions = tx.open_table(SESSIONS).map_err(map_err)?;
            let old = sessions
                .get(id)
                .map_err(map_err)?
                .map(|g| g.value().to_owned());
            if let Some(old) = old {
                // A live (or unreadable) record is never overwritten; an expired one no
                // longer exists and is replaced.
                let old = decode(&old)?;
                if !old.is_expired(now) {
                    return Err(StoreError::AlreadyExists);
                }
                unindex(&tx, &old)?;
            }
            sessions.insert(id, json).map_err(map_err)?;
            tx.open_table(BY_SUBJECT)
                .map_err(map_err)?
                .insert((session.subject.as_str(), id), ())
                .map_err(map_err)?;
            tx.open_table(BY_EXPIRY)
                .map_err(map_err)?
                .insert((session.expires_at, id), ())
                .map_err(map_err)?;
        }
        tx.commit().map_err(map_err)
    }

    fn get(&self, id: &SessionId, now: i64) -> Result<Option<Session>, StoreError> {
        let tx = self.db.begin_read().map_err(map_err)?;
        let sessions = tx.open_table(SESSIONS).map_err(map_err)?;
        let Some(raw) = sessions.get(id.as_str()).map_err(map_err)? else {
            return Ok(None);
        };
        let s = decode(raw.value())?;
        if s.id != *id {
            return Err(StoreError::corrupt("record id does not match its key"));
        }
        Ok((!s.is_expired(now)).then_some(s))
    }

    fn delete(&self, id: &SessionId, now: i64) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(map_err)?;
        let live = {
            let mut sessions = tx.open_table(SESSIONS).map_err(map_err)?;
            let old = sessions
                .remove(id.as_str())
                .map_err(map_err)?
                .map(|g| g.value().to_owned());
            match old {
                None => false,
                Some(raw) => match decode(&raw) {
                    Ok(old) => {
                        unindex(&tx, &old)?;
                        !old.is_expired(now)
                    }
                    // Garbage is deleted too, so it never blocks a revocation; its index
                    // entries (if any) are skipped on read and removed by sweep.
                    Err(_) => true,
                },
            }
        };
        tx.commit().map_err(map_err)?;
        Ok(live)
    }

    fn delete_subject(&self, subject: &str, now: i64) -> Result<usize, StoreError> {
        let tx = self.db.begin_write().map_err(map_err)?;
        let mut deleted = 0;
        {
            let ids = indexed(&tx, subject)?;
            let mut sessions = tx.open_table(SESSIONS).map_err(map_err)?;
            let mut by_subject = tx.open_table(BY_SUBJECT).map_err(map_err)?;
            let mut by_expiry = tx.open_table(BY_EXPIRY).map_err(map_err)?;
            for id in &ids {
                by_subject.remove((subject, id.as_str())).map_err(map_err)?;
                let raw = sessions
                    .get(id.as_str())
                    .map_err(map_err)?
                    .map(|g| g.value().to_owned());
                let Some(raw) = raw else { continue };
                match decode(&raw) {
                    Ok(s) if s.subject != subject => {}
                    Ok(s) => {
                        sessions.remove(id.as_str()).map_err(map_err)?;
                        by_expiry
                            .remove((s.expires_at, id.as_str()))
                            .map_err(map_err)?;
                        if !s.is_expired(now) {
                            deleted += 1;
                        }
                    }
                    Err(_) => {
                        sessions.remove(id.as_str()).map_err(map_err)?;
                        deleted += 1;
                    }
                }
            }
        }
        tx.commit().map_err(map_err)?;
        Ok(deleted)
    }

    fn list_subject(&self, subject: &str, now: i64) -> Result<Vec<Session>, StoreError> {
        let tx = self.db.begin_read().map_err(map_err)?;
        let by_subject = tx.open_table(BY_SUBJECT).map_err(map_err)?;
        let sessions = tx.open_table(SESSIONS).map_err(map_err)?;
        let mut out = Vec::new();
        for entry in by_subject.range((subject, "")..).map_err(map_err)? {
            let (key, _) = entry.map_err(map_err)?;
            let (s, id) = (key.value().0, key.value().1);
            if s != subject {
                break;
            }
            if let Some(raw) = sessions.get(id).map_err(map_err)? {
                let session = decode(raw.value())?;
                if session.subject == subject && !session.is_expired(now) {
                    out.push(session);
                }
            }
        }
        out.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
        Ok(out)
    }

    /// Sweeps in transactions of at most [`SWEEP_BATCH`] sessions, then drops expired `jti`
    /// records in one more: redb has a single writer, so logins and revocations wait for one
    /// batch at a time instead of for the whole sweep (thousands of sessions after downtime).
    fn sweep(&self, now: i64) -> Result<usize, StoreError> {
        let mut removed = 0;
        loop {
            let (n, more) = self.sweep_batch(now)?;
            removed += n;
            if !more {
                break;
            }
        }
        // `jti` records have no expiry index: a scan of their table, in a transaction of its own.
        let tx = self.db.begin_write().map_err(map_err)?;
        tx.open_table(JTIS)
            .map_err(map_err)?
            .retain(|_, expires_at| now < expires_at)
            .map_err(map_err)?;
        tx.commit().map_err(map_err)?;
        Ok(removed)
    }

    /// Removes up to [`SWEEP_BATCH`] expiry-index entries due at `now` (and their sessions) in
    /// one transaction: how many sessions went, and whether more entries are due.
    fn sweep_batch(&self, now: i64) -> Result<(usize, bool), StoreError> {
        let tx = self.db.begin_write().map_err(map_err)?;
        let mut removed = 0;
        let more;
        {
            let mut by_expiry = tx.open_table(BY_EXPIRY).map_err(map_err)?;
            let mut due = Vec::new();
            for entry in by_expiry
                .range((i64::MIN, "")..(now.saturating_add(1), ""))
                .map_err(map_err)?
                .take(SWEEP_BATCH + 1)
            {
                let (key, _) = entry.map_err(map_err)?;
                due.push((key.value().0, key.value().1.to_owned()));
            }
            more = due.len() > SWEEP_BATCH;
            due.truncate(SWEEP_BATCH);
            let mut sessions = tx.open_table(SESSIONS).map_err(map_err)?;
            let mut by_subject = tx.open_table(BY_SUBJECT).map_err(map_err)?;
            for (expires_at, id) in &due {
                by_expiry
                    .remove((*expires_at, id.as_str()))
                    .map_err(map_err)?;
                let raw = sessions
                    .get(id.as_str())
                    .map_err(map_err)?
                    .map(|g| g.value().to_owned());
                let Some(raw) = raw else { continue };
                match decode(&raw) {
                    // A stale entry: the id now holds a later session.
                    Ok(s) if s.expires_at != *expires_at => {}
                    Ok(s) => {
                        sessions.remove(id.as_str()).map_err(map_err)?;
                        by_subject
                            .remove((s.subject.as_str(), id.as_str()))
                            .map_err(map_err)?;
                        removed += 1;
                    }
                    Err(_) => {
                        sessions.remove(id.as_str()).map_err(map_err)?;
                        removed += 1;
                    }
                }
            }
        }
        tx.commit().map_err(map_err)?;
        Ok((removed, more))
    }

    fn claim_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(map_err)?;
        {
            let mut jtis = tx.open_table(JTIS).map_err(map_err)?;
            let current = jtis.get((issuer, jti)).map_err(map_err)?.map(|g| g.value());
            if current.is_some_and(|exp| now < exp) {
                return Ok(false);
            }
            jtis.insert((issuer, jti), expires_at).map_err(map_err)?;
        }
        tx.commit().map_err(map_err)?;
        Ok(true)
    }
}

/// Removes `old`'s index entries.
fn unindex(tx: &WriteTransaction, old: &Session) -> Result<(), StoreError> {
    let id = old.id.as_str();
    tx.open_table(BY_SUBJECT)
        .map_err(map_err)?
        .remove((old.subject.as_str(), id))
        .map_err(map_err)?;
    tx.open_table(BY_EXPIRY)
        .map_err(map_err)?
        .remove((old.expires_at, id))
        .map_err(map_err)?;
    Ok(())
}

/// The ids indexed under `subject`.
fn indexed(tx: &WriteTransaction, subject: &str) -> Result<Vec<String>, StoreError> {
    let by_subject = tx.open_table(BY_SUBJECT).map_err(map_err)?;
    let mut ids = Vec::new();
    for entry in by_subject.range((subject, "")..).map_err(map_err)? {
        let (key, _) = entry.map_err(map_err)?;
        if key.value().0 != subject {
            break;
        }
        ids.push(key.value().1.to_owned());
    }
    Ok(ids)
}

/// Decodes a stored record; anything else is `Corrupt`.
fn decode(raw: &str) -> Result<Session, StoreError> {
    serde_json::from_str(raw).map_err(StoreError::corrupt)
}

#[async_trait::async_trait]
impl SessionStore for RedbStore {
    /// One durable write transaction: refuse a live record, replace an expired one, write the
    /// record and both index entries.
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let json = serde_json::to_string(session).map_err(StoreError::corrupt)?;
        let session = session.clone();
        self.run(move |db, now| db.create(&session, &json, now))
            .await
    }

    /// One read transaction (no write: expired records stay until `sweep`).
    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let id = id.clone();
        self.run(move |db, now| db.get(&id, now)).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.run(move |db, now| db.delete(&id, now)).await
    }

    async fn delete_subject(&self, subject: &str) -> Result<usize, StoreError> {
        let subject = subject.to_owned();
        self.run(move |db, now| db.delete_subject(&subject, now))
            .await
    }

    async fn list_subject(&self, subject: &str) -> Result<Vec<Session>, StoreError> {
        let subject = subject.to_owned();
        self.run(move |db, now| db.list_subject(&subject, now))
            .await
    }

    /// Walks the expiry index up to now, at most 1,024 sessions per write transaction (so other
    /// writers wait for a batch, not the whole sweep); also drops expired `jti` records (not
    /// counted), in a transaction of their own.
    async fn sweep(&self) -> Result<usize, StoreError> {
        self.run(Inner::sweep).await
    }

    async fn claim_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let (issuer, jti) = (issuer.to_owned(), jti.to_owned());
        self.run(move |db, now| db.claim_jti(&issuer, &jti, expires_at, now))
            .await
    }

    /// Opens a read transaction.
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|db, _| db.db.begin_read().map(drop).map_err(map_err))
            .await
    }

    /// The sessions in the file, expired ones not yet swept included. redb keeps each table's
    /// length in its root, so this is one read transaction and no scan.
    async fn count(&self) -> Result<Option<u64>, StoreError> {
        self.run(|db, _| {
            let tx = db.db.begin_read().map_err(map_err)?;
            let sessions = tx.open_table(SESSIONS).map_err(map_err)?;
            sessions.len().map(Some).map_err(map_err)
        })
        .await
    }
}
