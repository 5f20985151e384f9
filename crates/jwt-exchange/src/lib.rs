#![doc = include_str!("../../../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
//!
//! # Crate layout
//!
//! | module | what |
//! |---|---|
//! | [`ProviderConfig`], [`Providers`] | provider configuration (lakeFS key names) |
//! | [`Verifier`] | external-token verification, returns [`VerifiedClaims`] |
//! | [`KeySet`], [`JwksCache`] | JWKS parsing, fetching, caching |
//! | [`Clock`] | injectable time |
//!
//! # Cargo features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `axum` | off | the `axum` module: login router, session, admin, forward-auth and OAuth 2.0 endpoints; `Principal` / `Authorized` extractors; rejections (see `docs/http-api.md`) |
//! | `dev` | off | the `dev` module: key generation and token minting for development IdPs, demos and tests |
//! | `__fuzzing` | off | internal: hidden entry points for the fuzz targets in `fuzz/` (not an API) |

mod alg;
pub mod audit;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
mod b64url;
mod claims;
pub mod client;
mod clock;
mod config;
#[cfg(feature = "dev")]
#[cfg_attr(docsrs, doc(cfg(feature = "dev")))]
pub mod dev;
mod exchange;
mod json;
pub mod jwks;
pub mod policy;
pub mod session;
pub mod store;
mod verify;

/// A small deterministic xorshift generator for the unit tests' random inputs (no dependency).
#[cfg(test)]
pub(crate) fn test_rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

pub use alg::{Algorithm, AlgorithmError};
pub use claims::{pointer, VerifiedClaims};
pub use clock::{Clock, MockClock, SystemClock};
pub use config::{duration, opt_duration, ConfigError, ProviderConfig, Providers};
pub use exchange::{Exchange, ExchangeBuilder, ExchangeError, Login, Principal};
pub use jwks::{JwksCache, JwksError, KeySet, KeyStatus};
pub use verify::error::{Malformed, Part, VerifyError};
pub use verify::{Verifier, VerifierBuilder};

// Re-exports of policy/session/store (keep each module's lines together).
pub use policy::{Decision, Directory, DirectoryError, PolicyConfig, StaticDirectory};
pub use session::{session_expiry, InvalidSessionId, Session, SessionId};
pub use session::{Bearer, BearerClaims, BearerError, BearerKeys, BearerSecret};
pub use store::{spawn_sweeper, MemoryStore, SessionStore, StoreError, SweeperHandle};

/// Entry points of the fuzz targets in `fuzz/` into crate-private code (feature `__fuzzing`,
/// which only the fuzz crate turns on). Not an API: hidden, unstable, and behaviour stays as it
/// is with or without it.
#[cfg(feature = "__fuzzing")]
#[doc(hidden)]
pub mod __fuzzing {
    /// Parses `bytes` with the strict parser every token header and claim set goes through and
    /// with its `serde_json`-based reference; `Err` says how they disagree.
    pub fn strict_json_differential(bytes: &[u8]) -> Result<(), String> {
        crate::json::differential(bytes)
    }
}
