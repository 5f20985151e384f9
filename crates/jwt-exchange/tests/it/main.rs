//! Integration tests of the `jwt-exchange` core crate (one binary, one module per area).

mod common;
mod exchange;
mod jwks_cache;
mod logs;
mod verify;
mod wycheproof;
