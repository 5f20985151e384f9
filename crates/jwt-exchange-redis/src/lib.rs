//! A Redis [`SessionStore`](jwt_exchange::store::SessionStore) for
//! [jwt-exchange](jwt_exchange): sessions shared by every instance of a deployment, expiring
//! natively, revocable at once everywhere.
//!
//! ```no_run
//! use std::sync::Arc;
//! use jwt_exchange::session::{Session, SessionId};
//! use jwt_exchange::store::SessionStore;
//! use jwt_exchange_redis::{RedisStore, RedisStoreConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = RedisStoreConfig::default().with_key_prefix("jwtx");
//! let store: Arc<dyn SessionStore> =
//!     Arc::new(RedisStore::connect("redis://127.0.0.1:6379", config).await?);
//!
//! let now = 1_700_000_000;
//! let session = Session::new(SessionId::generate(), "https://idp", "alice", now, now + 3600);
//! store.create(&session).await?;                       // SET NX PXAT + index, atomically
//! assert_eq!(store.get(&session.id).await?, Some(session.clone()));
//! assert_eq!(store.delete_subject(&session.subject).await?, 1); // revoke everywhere
//! # Ok(()) }
//! ```
//!
//! Pass the store to `ExchangeBuilder::store`. Requires Redis 6.2 or later (or a compatible
//! server such as Valkey) for `SET … PXAT`.
//!
//! # Key layout
//!
//! Every key starts with the configured prefix `P` ([`RedisStoreConfig::key_prefix`],
//! default `jwtx`). A session belongs to one of 16 buckets `b` (`0`–`f`), given by the first
//! character of its random id, and its keys carry the bucket's hash tag `{P:b}`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{P:b}:s:<session id>` | string | the session as JSON (`serde_json` of `Session`), expiring natively at `expires_at` (`PXAT`) |
//! | `{P:b}:u:<subject>` | sorted set | ids of the subject's sessions in bucket `b`, scored by `expires_at`; the key expires with its longest-lived entry |
//! | `{P:b}:x` | sorted set | ids of every session of bucket `b`, scored by `expires_at`; emptied of expired entries by `sweep` |
//! | `P:j:<len(issuer)>:<issuer>:<jti>` | string | `1`, expiring natively when the token does (replay protection) |
//!
//! | operation | round trips | how |
//! |---|---|---|
//! | `create` | 1 | Lua: `SET NX PXAT`; only if it was set, `ZADD` to the subject and expiry indexes (pruning the subject's expired entries) |
//! | `get` | 1 | `GET`, decode, compare id and expiry with the configured clock |
//! | `delete` | 2 | `GET` (to learn the subject), then Lua compare-and-delete of the record and both index entries |
//! | `list_subject` | 2 per bucket, buckets concurrently | `ZRANGEBYSCORE` of the live ids, `MGET` of the records |
//! | `delete_subject` | 2 per bucket, buckets concurrently | `ZRANGEBYSCORE`, then Lua: `DEL` those records, `ZREM` their index entries |
//! | `sweep` | 1 per bucket, concurrently | `ZREMRANGEBYSCORE` of the expiry index; returns how many sessions expired since the last sweep |
//! | `claim_jti` | 1 | `SET NX PXAT` |
//!
//! Invariant: a live session is always in its subject index, because the record and its
//! index entries are written and removed by one script. The reverse does not have to hold: an
//! index entry whose record is gone (expired natively, or deleted while undecodable) is
//! skipped when listing and pruned once its score has passed.
//!
//! # Redis Cluster
//!
//! Every key a script or a multi-key command touches carries the same hash tag `{P:b}`, and
//! every key is declared to the script, so all operations are legal and atomic on Redis
//! Cluster (enable the `cluster` feature and use [`RedisStore::connect_cluster`]). Sessions
//! spread over 16 hash slots, so a cluster shares the load between up to 16 primaries; `get`
//! and `create` stay single-slot, single-round-trip operations. A subject's sessions are
//! spread over the buckets too, so `list_subject` and `delete_subject` visit all 16 (in
//! parallel). `delete_subject` is atomic per bucket, not across buckets: a session created
//! while it runs may survive it, exactly as if it had been created a moment later — every
//! session that existed when it started is gone when it returns. The bucket count is part of
//! the layout: changing it would orphan existing sessions.
//!
//! Why not one slot per subject: `get` only knows the session id, so the id alone must
//! determine the slot of the record; the subject index therefore lives in the id's slot,
//! one index key per (bucket, subject).
//!
//! # Expiry and time
//!
//! Records and `jti` keys expire natively on Redis's clock at `expires_at`. The store also
//! checks each record against [`RedisStoreConfig::clock`] and never returns one that is
//! expired by it, so the behaviour matches the other backends even when clocks drift. Index
//! scores are compared with that clock too.
//!
//! # Failures
//!
//! Every operation is bounded by [`RedisStoreConfig::command_timeout`] (default 2 s),
//! including waiting for a reconnect; connection attempts by
//! [`RedisStoreConfig::connect_timeout`] (default 5 s). The single-server connection is
//! multiplexed and reconnects on its own, so a store survives a Redis restart without being
//! rebuilt. Errors map into [`StoreError`](jwt_exchange::store::StoreError): a value of the
//! wrong type under one of our keys (`WRONGTYPE`) or one that is not a session record →
//! `Corrupt`; everything else (I/O, timeouts, refused connections, `LOADING`, `READONLY`,
//! out of memory, cluster errors) → `Unavailable`, which the HTTP layer answers with 503.
//! An undecodable record makes `get` and `list_subject` fail with `Corrupt`, but never blocks
//! `delete` or `delete_subject`.
//!
//! # Near-cache (optional)
//!
//! [`RedisStore::connect_cached`] wraps the store in a
//! [`CachedStore`](jwt_exchange::store::CachedStore): a bounded in-process cache of sessions,
//! so `authenticate` on a recently seen session needs no round trip. Revocations publish an
//! invalidation on the pub/sub channel `<key_prefix>:inv` ([`RedisInvalidator`]) before they
//! return; each instance holds one extra connection subscribed to it, checked every second by
//! an [`EchoHeartbeat`](jwt_exchange::store::EchoHeartbeat) published on the channel that must
//! come back ([`RedisInvalidatorConfig::heartbeat`]). While that subscription is down (or deaf)
//! the cache is flushed and bypassed; it is flushed again on re-subscription. Every instance sharing a
//! prefix must use the near-cache, since a revocation that publishes nothing leaves cached
//! copies elsewhere alive for up to `max_age` (default 60 s). See `docs/operations.md`.
//!
//! # Cargo features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `cluster` | off | [`RedisStore::connect_cluster`] (the `redis` crate's `cluster-async`) |
//! | `tls` | off | `rediss://` URLs and [`StoreTls`](jwt_exchange::store::StoreTls) (a private CA, client certificates), with rustls; the server's certificate and host name are always verified |

#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod conn;
mod error;
mod invalidate;
mod keys;
mod scripts;
mod store;
mod tls;

pub use config::RedisStoreConfig;
pub use error::ConnectError;
pub use invalidate::{RedisInvalidator, RedisInvalidatorConfig};
pub use store::RedisStore;
pub use tls::check_url;
