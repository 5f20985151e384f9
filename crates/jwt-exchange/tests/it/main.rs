//! Integration tests of the `jwt-exchange` core crate (one binary, one module per area).
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too; a panic is a failed test

mod common;
mod exchange;
#[cfg(feature = "axum")]
mod http;
mod jwks_cache;
mod logs;
mod props;
mod store;
mod verify;
mod wycheproof;
