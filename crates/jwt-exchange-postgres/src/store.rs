//! [`PostgresStore`]: the [`SessionStore`] implementation.

use std::fmt;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use jwt_exchange::session::{Session, SessionId};
use jwt_exchange::store::{SessionStore, StoreError};
use tokio::time::{error::Elapsed, timeout_at, Instant};
use tokio_postgres::config::SslMode;
use tokio_postgres::Row;

use crate::tls::Connector;

use crate::config::PostgresStoreConfig;
use crate::error::{timed_out, unavailable, ConnectError};
use crate::migrate;

/// Rows deleted per statement by `sweep`, so no statement holds locks for long.
const SWEEP_BATCH: i64 = 5_000;

/// A [`SessionStore`] in PostgreSQL, shared by every instance that uses the same database and
/// schema. See the [crate docs](crate) for the schema.
///
/// Clones are cheap and share the pool.
///
/// ```no_run
/// use std::sync::Arc;
/// use jwt_exchange::store::SessionStore;
/// use jwt_exchange_postgres::{PostgresStore, PostgresStoreConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::connect(
///     "postgres://jwtx@db.internal:5432/auth",
///     PostgresStoreConfig::default(),
/// )
/// .await?;
/// let store: Arc<dyn SessionStore> = Arc::new(store);
/// store.ping().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    sql: Sql,
    config: PostgresStoreConfig,
    /// How the pool's connections are opened (TLS or not), for the invalidator's own
    /// connections too.
    connector: (SslMode, Connector),
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore")
            .field("config", &self.config)
            .field("connections", &status.size)
            .field("idle", &status.available)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Builds the connection pool, checks the server, and (unless
    /// [`migrate_on_connect`](PostgresStoreConfig::migrate_on_connect) is off) applies the
    /// embedded migrations, creating the schema if needed.
    ///
    /// `url` is a libpq-style URL or key/value string (`postgres://user:pw@host:5432/db`,
    /// `host=/run/postgresql dbname=auth`). Connections use TLS when the URL says
    /// `sslmode=require` or [`PostgresStoreConfig::tls`] is set (feature `tls`; the server's
    /// certificate and host name are verified), and are plain TCP or Unix sockets otherwise:
    /// `sslmode=prefer`, libpq's default, is treated as `disable`, since a TLS that an attacker
    /// in the path can refuse protects nothing. Needs a Tokio runtime with I/O and time
    /// enabled.
    ///
    /// ```no_run
    /// use jwt_exchange_postgres::{PostgresStore, PostgresStoreConfig};
    ///
    /// # async fn run() -> Result<(), jwt_exchange_postgres::ConnectError> {
    /// let config = PostgresStoreConfig::default().with_schema("sessions_prod");
    /// let store = PostgresStore::connect("postgres://jwtx@127.0.0.1/auth", config).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub async fn connect(url: &str, config: PostgresStoreConfig) -> Result<Self, ConnectError> {
        config.validate()?;
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| ConnectError::InvalidUrl(Box::new(e)))?;
        pg.connect_timeout(config.connect_timeout);
        if pg.get_application_name().is_none() {
            pg.application_name("jwt-exchange");
        }
        let connector = crate::tls::connector(&mut pg, config.tls.as_ref())?;
        let connector = (pg.get_ssl_mode(), connector);
        let manager = Manager::from_config(
            pg,
            // `Clone::clone`: the connector is `NoTls` (`Copy`) without the `tls` feature.
            Clone::clone(&connector.1),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.query_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.query_timeout))
            .build()
            .map_err(|e| ConnectError::Pool(Box::new(e)))?;
        let store = PostgresStore {
            pool,
            sql: Sql::new(&config.schema),
            config,
            connector,
        };
        if store.config.migrate_on_connect {
            store.migrate().await?;
        } else {
            store.ping().await?;
        }
        Ok(store)
    }

    /// Applies the embedded migrations that the schema lacks (creating the schema and its
    /// `schema_migrations` table if needed) and returns the versions applied now. Safe to run
    /// concurrently from several instances and to run again.
    ///
    /// ```no_run
    /// # async fn run(store: jwt_exchange_postgres::PostgresStore) -> Result<(), jwt_exchange::StoreError> {
    /// let applied = store.migrate().await?;
    /// println!("applied migrations {applied:?}");
    /// # Ok(()) }
    /// ```
    pub async fn migrate(&self) -> Result<Vec<i32>, StoreError> {
        let (mut client, deadline) = self.checkout("migrate").await?;
        // Migrations may take longer than a query: give them ten query timeouts.
        let deadline = deadline + self.config.query_timeout * 9;
        let r = timeout_at(deadline, migrate::run(&mut client, &self.config.schema)).await;
        settle("migrate", client, self.config.query_timeout * 10, r)
    }

    /// The newest schema version this build knows (what [`migrate`](Self::migrate) brings
    /// a schema to).
    ///
    /// ```
    /// assert!(jwt_exchange_postgres::PostgresStore::latest_schema_version() >= 1);
    /// ```
    pub fn latest_schema_version() -> i32 {
        migrate::MIGRATIONS.last().map_or(0, |m| m.version)
    }

    /// The store's options.
    pub fn config(&self) -> &PostgresStoreConfig {
        &self.config
    }

    /// Whether the pool's connections use TLS.
    pub(crate) fn uses_tls(&self) -> bool {
        self.connector.0 == SslMode::Require
    }

    /// Opens a connection of its own for `pg` (a listener's), the way the pool opens its:
    /// the same `sslmode` and connector.
    pub(crate) async fn connect_like_pool(
        &self,
        mut pg: tokio_postgres::Config,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<
                tokio_postgres::Socket,
                <Connector as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream,
            >,
        ),
        tokio_postgres::Error,
    > {
        pg.ssl_mode(self.connector.0);
        pg.connect(Clone::clone(&self.connector.1)).await
    }

    fn now(&self) -> i64 {
        self.config.clock.unix_seconds()
    }

    /// A pooled connection and the deadline of the operation that takes it.
    async fn checkout(&self, op: &'static str) -> Result<(Object, Instant), StoreError> {
        let deadline = Instant::now() + self.config.query_timeout;
        match timeout_at(deadline, self.pool.get()).await {
            Ok(Ok(client)) => Ok((client, deadline)),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(timed_out(op, self.config.query_timeout)),
        }
    }
}

/// The result of an operation run on `client`; a connection that timed out or broke is
/// discarded instead of going back to the pool.
fn settle<T>(
    op: &'static str,
    client: Object,
    limit: std::time::Duration,
    r: Result<Result<T, StoreError>, Elapsed>,
) -> Result<T, StoreError> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            if client.is_closed() {
                drop(Object::take(client));
            }
            Err(e)
        }
        Err(_) => {
            drop(Object::take(client));
            Err(timed_out(op, limit))
        }
    }
}

/// Runs `$body` (an expression using `$client: &Object`) under the operation's deadline.
macro_rules! with_client {
    ($self:ident, $op:literal, |$client:ident| $body:expr) => {{
        let (client, deadline) = $self.checkout($op).await?;
        let r = {
            let $client = &client;
            timeout_at(deadline, async { $body }).await
        };
        settle($op, client, $self.config.query_timeout, r)
    }};
}

impl PostgresStore {
    /// `SELECT pg_notify(channel, payload)` (for the near-cache's invalidations).
    pub(crate) async fn notify(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        with_client!(self, "notify", |client| {
            client
                .execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
                .await
                .map(drop)
                .map_err(unavailable)
        })
    }
}

#[async_trait::async_trait]
impl SessionStore for PostgresStore {
    /// `INSERT … ON CONFLICT (id) DO UPDATE … WHERE expires_at <= now`: inserts, or replaces
    /// a row whose session has expired (an expired session no longer exists); a live row is
    /// never touched and gives `AlreadyExists`.
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let record = serde_json::to_string(session).map_err(StoreError::corrupt)?;
        let now = self.now();
        with_client!(self, "create", |client| {
            let stmt = client
                .prepare_cached(&self.sql.create)
                .await
                .map_err(unavailable)?;
            let n = client
                .execute(
                    &stmt,
                    &[
                        &session.id.as_str(),
                        &session.subject.as_bytes(),
                        &session.created_at,
                        &session.expires_at,
                        &record,
                        &now,
                    ],
                )
                .await
                .map_err(unavailable)?;
            if n == 1 {
                Ok(())
            } else {
                Err(StoreError::AlreadyExists)
            }
        })
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = self.now();
        with_client!(self, "get", |client| {
            let stmt = client
                .prepare_cached(&self.sql.get)
                .await
                .map_err(unavailable)?;
            let row = client
                .query_opt(&stmt, &[&id.as_str(), &now])
                .await
                .map_err(unavailable)?;
            match row {
                None => Ok(None),
                Some(row) => {
                    let s = decode(&row)?;
                    if s.id == *id {
                        Ok(Some(s))
                    } else {
                        Err(StoreError::corrupt("record id does not match its row"))
                    }
                }
            }
        })
    }

    /// Deletes the row whether or not it has expired; `true` only if it was live.
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let now = self.now();
        with_client!(self, "delete", |client| {
            let stmt = client
                .prepare_cached(&self.sql.delete)
                .await
                .map_err(unavailable)?;
            let rows = client
                .query(&stmt, &[&id.as_str()])
                .await
                .map_err(unavailable)?;
            Ok(count_live(&rows, now)? > 0)
        })
    }

    /// One `DELETE … WHERE subject = $1`; counts the rows that were live.
    async fn delete_subject(&self, subject: &str) -> Result<usize, StoreError> {
        let now = self.now();
        with_client!(self, "delete_subject", |client| {
            let stmt = client
                .prepare_cached(&self.sql.delete_subject)
                .await
                .map_err(unavailable)?;
            let rows = client
                .query(&stmt, &[&subject.as_bytes()])
                .await
                .map_err(unavailable)?;
            count_live(&rows, now)
        })
    }

    async fn list_subject(&self, subject: &str) -> Result<Vec<Session>, StoreError> {
        let now = self.now();
        with_client!(self, "list_subject", |client| {
            let stmt = client
                .prepare_cached(&self.sql.list_subject)
                .await
                .map_err(unavailable)?;
            let rows = client
                .query(&stmt, &[&subject.as_bytes(), &now])
                .await
                .map_err(unavailable)?;
            rows.iter().map(decode).collect()
        })
    }

    /// Deletes expired sessions and `jti` records in batches of 5 000 rows; returns the number
    /// of sessions.
    async fn sweep(&self) -> Result<usize, StoreError> {
        let now = self.now();
        with_client!(self, "sweep", |client| {
            let mut removed = 0;
            for (sql, counted) in [
                (&self.sql.sweep_sessions, true),
                (&self.sql.sweep_jtis, false),
            ] {
                let stmt = client.prepare_cached(sql).await.map_err(unavailable)?;
                loop {
                    let n = client
                        .execute(&stmt, &[&now, &SWEEP_BATCH])
                        .await
                        .map_err(unavailable)?;
                    if counted {
                        removed += usize::try_from(n).unwrap_or(usize::MAX);
                    }
                    if n < SWEEP_BATCH.unsigned_abs() {
                        break;
                    }
                }
            }
            Ok(removed)
        })
    }

    /// `INSERT … ON CONFLICT (issuer, jti) DO UPDATE … WHERE expires_at <= now`.
    async fn claim_jti(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        with_client!(self, "claim_jti", |client| {
            let stmt = client
                .prepare_cached(&self.sql.claim_jti)
                .await
                .map_err(unavailable)?;
            let n = client
                .execute(
                    &stmt,
                    &[&issuer.as_bytes(), &jti.as_bytes(), &expires_at, &now],
                )
                .await
                .map_err(unavailable)?;
            Ok(n == 1)
        })
    }

    /// `SELECT 1` on a pooled connection.
    async fn ping(&self) -> Result<(), StoreError> {
        with_client!(self, "ping", |client| {
            client
                .simple_query("SELECT 1")
                .await
                .map(drop)
                .map_err(unavailable)
        })
    }
}

/// The statements, with the schema spliced in.
#[derive(Debug, Clone)]
struct Sql {
    create: String,
    get: String,
    delete: String,
    delete_subject: String,
    list_subject: String,
    sweep_sessions: String,
    sweep_jtis: String,
    claim_jti: String,
}

impl Sql {
    /// `schema` is validated (lower-case identifier), and quoted anyway.
    fn new(schema: &str) -> Self {
        let s = format!("\"{schema}\".sessions");
        let j = format!("\"{schema}\".jtis");
        Sql {
            create: format!(
                "INSERT INTO {s} AS old (id, subject, created_at, expires_at, record) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET subject = EXCLUDED.subject, \
                 created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, \
                 record = EXCLUDED.record \
                 WHERE old.expires_at <= $6"
            ),
            get: format!("SELECT record FROM {s} WHERE id = $1 AND expires_at > $2"),
            delete: format!("DELETE FROM {s} WHERE id = $1 RETURNING expires_at"),
            delete_subject: format!("DELETE FROM {s} WHERE subject = $1 RETURNING expires_at"),
            list_subject: format!(
                "SELECT record FROM {s} WHERE subject = $1 AND expires_at > $2 \
                 ORDER BY created_at, id"
            ),
            sweep_sessions: format!(
                "DELETE FROM {s} WHERE id IN (SELECT id FROM {s} WHERE expires_at <= $1 \
                 LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
            sweep_jtis: format!(
                "DELETE FROM {j} WHERE (issuer, jti) IN (SELECT issuer, jti FROM {j} \
                 WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
            claim_jti: format!(
                "INSERT INTO {j} AS old (issuer, jti, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at \
                 WHERE old.expires_at <= $4"
            ),
        }
    }
}

/// Decodes the `record` column; anything else is `Corrupt`.
fn decode(row: &Row) -> Result<Session, StoreError> {
    let record: &str = row.try_get(0).map_err(StoreError::corrupt)?;
    serde_json::from_str(record).map_err(StoreError::corrupt)
}

/// How many of the `RETURNING expires_at` rows were live at `now`.
fn count_live(rows: &[Row], now: i64) -> Result<usize, StoreError> {
    let mut live = 0;
    for row in rows {
        let expires_at: i64 = row.try_get(0).map_err(StoreError::corrupt)?;
        if now < expires_at {
            live += 1;
        }
    }
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_schema_qualified() {
        let sql = Sql::new("my_schema");
        for s in [
            &sql.create,
            &sql.get,
            &sql.delete,
            &sql.delete_subject,
            &sql.list_subject,
            &sql.sweep_sessions,
            &sql.sweep_jtis,
            &sql.claim_jti,
        ] {
            assert!(s.contains("\"my_schema\"."), "{s}");
        }
    }
}
