//! Integration tests of the PostgreSQL store against a real server (`JWTX_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`). Without a server they print
//! `skipped: …`, except under `CI=true`, where they fail.

mod common;
mod conformance;
mod corrupt;
mod faults;
mod migrations;
mod near_cache;
#[cfg(feature = "tls")]
mod tls;
