//! A PostgreSQL [`SessionStore`](jwt_exchange::store::SessionStore) for
//! [jwt-exchange](jwt_exchange): sessions shared by every instance of a deployment, durable,
//! revocable at once everywhere.
//!
//! ```no_run
//! use std::sync::Arc;
//! use jwt_exchange::session::{Session, SessionId};
//! use jwt_exchange::store::SessionStore;
//! use jwt_exchange_postgres::{PostgresStore, PostgresStoreConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Creates the schema and tables on first start (embedded migrations).
//! let store = PostgresStore::connect(
//!     "postgres://jwtx@127.0.0.1:5432/auth",
//!     PostgresStoreConfig::default().with_schema("jwt_exchange"),
//! )
//! .await?;
//! let store: Arc<dyn SessionStore> = Arc::new(store);
//!
//! let now = 1_700_000_000;
//! let session = Session::new(SessionId::generate(), "https://idp", "alice", now, now + 3600);
//! store.create(&session).await?;                 // INSERT … ON CONFLICT: never overwrites
//! assert_eq!(store.delete_subject(&session.subject).await?, 1); // revoke everywhere
//! # Ok(()) }
//! ```
//!
//! Pass the store to `ExchangeBuilder::store`. Tested against PostgreSQL 15; any version
//! from 9.5 (`ON CONFLICT`) should do.
//!
//! # Schema
//!
//! Everything lives in one schema ([`PostgresStoreConfig::schema`], default
//! `jwt_exchange`), so tests and several deployments can share a database:
//!
//! ```sql
//! sessions (
//!     id          TEXT COLLATE "C" PRIMARY KEY,   -- the session id
//!     subject     BYTEA NOT NULL,                 -- jwt:<issuer>:<identity>, UTF-8 bytes
//!     created_at  BIGINT NOT NULL,                -- Unix seconds
//!     expires_at  BIGINT NOT NULL,                -- Unix seconds, exclusive
//!     record      TEXT NOT NULL                   -- the whole Session as JSON
//! )
//! -- indexes: (subject, created_at, id) for listing and revoking a subject; (expires_at) for sweep
//! jtis (issuer BYTEA, jti BYTEA, expires_at BIGINT, PRIMARY KEY (issuer, jti))
//! -- index: (expires_at)
//! schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TIMESTAMPTZ)
//! ```
//!
//! Strings taken from a token (subject, issuer, `jti`) are stored as bytes because `TEXT`
//! cannot hold a NUL character and a signed token may contain one; look a subject up with
//! `WHERE subject = convert_to('jwt:https://idp:alice', 'UTF8')`.
//!
//! | operation | statement |
//! |---|---|
//! | `create` | `INSERT … ON CONFLICT (id) DO UPDATE … WHERE old.expires_at <= now` (0 rows → `AlreadyExists`) |
//! | `get` | `SELECT record … WHERE id = $1 AND expires_at > now` |
//! | `delete` | `DELETE … WHERE id = $1 RETURNING expires_at` |
//! | `list_subject` | `SELECT record … WHERE subject = $1 AND expires_at > now ORDER BY created_at, id` |
//! | `delete_subject` | `DELETE … WHERE subject = $1 RETURNING expires_at` |
//! | `sweep` | `DELETE` of rows with `expires_at <= now`, 5 000 at a time, sessions then `jti`s |
//! | `claim_jti` | `INSERT … ON CONFLICT (issuer, jti) DO UPDATE … WHERE old.expires_at <= now` |
//!
//! `create` replaces a row only when its session has expired (an expired session no longer
//! exists, as in every backend); a live row is never touched. Each statement is atomic on its
//! own, so concurrent creates of one id have exactly one winner.
//!
//! # Migrations
//!
//! The SQL files under `migrations/` are compiled in. [`PostgresStore::connect`] applies the
//! missing ones (unless [`PostgresStoreConfig::migrate_on_connect`] is off), and
//! [`PostgresStore::migrate`] does so on demand (for a `migrate` command run by a role that
//! may change the schema). Each run is one transaction holding an advisory lock, so
//! instances starting together never race, and a failed migration leaves nothing behind.
//! Applied versions are recorded in `schema_migrations`.
//!
//! # Time
//!
//! Every expiry comparison uses the configured [`Clock`](jwt_exchange::Clock)
//! ([`PostgresStoreConfig::clock`], seconds) passed as a query parameter, never the
//! database's `now()`: the store agrees with the rest of the service and with the other
//! backends, and tests can drive it with a `MockClock`. Instances should run NTP, as they
//! must for token validation anyway.
//!
//! # Failures
//!
//! Connections come from a pool ([`PostgresStoreConfig::max_connections`], default 16)
//! created lazily and replaced when broken, so the store survives a database restart without
//! being rebuilt. Every operation, waiting for a connection included, is bounded by
//! [`PostgresStoreConfig::query_timeout`] (default 5 s); a connection that timed out is
//! discarded rather than reused. Errors map into
//! [`StoreError`](jwt_exchange::store::StoreError): a row that does not decode as a session
//! (or holds another session's id) → `Corrupt`; every server, network, pool or timeout error
//! → `Unavailable`, which the HTTP layer answers with 503. An undecodable row makes `get` and
//! `list_subject` fail with `Corrupt`, but never blocks `delete` or `delete_subject`.

//!
//! # Near-cache (optional)
//!
//! [`PostgresStore::connect_cached`] wraps the store in a
//! [`CachedStore`](jwt_exchange::store::CachedStore): a bounded in-process cache of sessions,
//! so `authenticate` on a recently seen session needs no query. Revocations send
//! `pg_notify('<schema>:inv', …)` ([`PostgresInvalidator`]) before they return; each instance
//! holds one extra connection `LISTEN`ing on that channel, checked every second by an
//! [`EchoHeartbeat`](jwt_exchange::store::EchoHeartbeat) sent through the pool that must come
//! back on it. While it is down (or deaf) the cache is flushed and bypassed; it is flushed
//! again when it listens again. Every instance sharing a schema must use the near-cache, since a revocation
//! that notifies nobody leaves cached copies elsewhere alive for up to `max_age` (default
//! 60 s). See `docs/operations.md`.
//!
//! # TLS
//!
//! With the `tls` feature, connections (the pool's and the listener's) use TLS when the URL
//! says `sslmode=require` or [`PostgresStoreConfig::tls`] is set: rustls on AWS-LC, the
//! server's certificate verified against the system's roots or the given CA
//! ([`StoreTls`](jwt_exchange::store::StoreTls)), host name included, and a client
//! certificate presented when one is given. Otherwise connections are plaintext; libpq's
//! default `sslmode=prefer` counts as `disable`, because TLS that anyone in the path can
//! decline protects nothing.
//!
//! # Cargo features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `tls` | off | TLS as above (`tokio-postgres-rustls`, rustls) |

mod config;
mod error;
mod invalidate;
mod migrate;
mod store;
mod tls;

pub use config::PostgresStoreConfig;
pub use error::ConnectError;
pub use invalidate::{PostgresInvalidator, PostgresInvalidatorConfig};
pub use store::PostgresStore;
pub use tls::check_connection_string;
