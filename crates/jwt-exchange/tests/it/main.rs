//! Integration tests of the `jwt-exchange` core crate (one binary, one module per area).

mod common;
mod jwks_cache;
mod verify;
mod wycheproof;
