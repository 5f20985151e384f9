//! Test support for `jwt-exchange` (not published).
//!
//! * [`TestKey`]: generate or load RSA / P-256 / P-384 / Ed25519 keys, publish them as JWKs,
//!   mint well-formed tokens (through `jsonwebtoken`, an independent implementation) or craft
//!   arbitrary ones (any header bytes, any signature) for attack tests.
//! * [`JwksServer`]: a loopback IdP serving a JWKS and an OpenID discovery document; it counts
//!   requests and can be told to fail, stall, serve garbage or a huge body, or redirect.
//! * [`claims`]: Entra-shaped and Auth0-shaped claim sets.
//! * [`fixtures`]: the checked-in keys and tokens under `fixtures/`.
//! * [`services`]: [`services::require_service`] for tests against real Redis / PostgreSQL
//!   servers (skip locally, fail under `CI=true`); [`proxy::TcpProxy`] to cut them off.

pub mod claims;
pub mod fixtures;
mod keys;
pub mod proxy;
mod server;
pub mod services;
pub mod store_conformance;
pub mod tls_redis;

pub use keys::{b64, jwks, TestKey};
pub use server::{Behavior, JwksServer};
pub use services::require_service;
