//! Integration tests of the Redis store against a real server (`JWTX_REDIS_URL`, default
//! `redis://127.0.0.1:6379`). Without a server they print `skipped: …`, except under
//! `CI=true`, where they fail.

#[cfg(feature = "cluster")]
mod cluster;
mod common;
mod conformance;
mod corrupt;
mod eviction;
mod faults;
mod layout;
mod near_cache;
#[cfg(feature = "tls")]
mod tls;
