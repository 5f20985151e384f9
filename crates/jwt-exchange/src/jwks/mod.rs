//! JSON Web Key Sets: parsing, fetching and caching.
//!
//! * [`KeySet`]: one parsed JWKS, indexed by `kid`.
//! * [`JwksCache`]: an issuer's key set kept fresh from its `jwks_url` (or discovery), with a
//!   single-flight, rate-limited refetch for unknown `kid`s and stale-if-error serving.

mod cache;
mod fetch;
pub(crate) mod key;
mod set;

pub use cache::{JwksCache, KeyStatus};
pub use key::{SkipReason, VerifyingKey};
pub use set::{KeySet, SkippedKey, MAX_KEYS};

/// Largest JWKS or discovery document accepted, in bytes (checked while streaming).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Why a key set could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// Not a JSON object with a `keys` array (or a repeated member name).
    #[error("the JWKS document is not a JSON object with a `keys` array")]
    InvalidDocument,
    /// More keys than [`MAX_KEYS`].
    #[error("the JWKS has {count} keys, more than the limit of {MAX_KEYS}")]
    TooManyKeys {
        /// Number of keys in the document.
        count: usize,
    },
    /// Every key was skipped; the previous set (if any) stays in use.
    #[error("the JWKS has no usable key ({skipped} skipped)")]
    NoUsableKeys {
        /// How many keys were skipped.
        skipped: usize,
    },
    /// Connecting, sending or reading failed (including the timeout).
    #[error("request failed")]
    Http(#[source] reqwest::Error),
    /// The server answered with a status other than 200 (redirects are not followed).
    #[error("unexpected HTTP status {status}")]
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// The body is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("response body is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
    /// The discovery document is not JSON with string `issuer` and `jwks_uri`.
    #[error("the discovery document is invalid")]
    InvalidDiscovery,
    /// The discovery document's `issuer` differs from the configured issuer.
    #[error("the discovery document's issuer does not match the configured issuer")]
    DiscoveryIssuerMismatch,
    /// The discovered `jwks_uri` is not https (or loopback http).
    #[error("the discovered jwks_uri is not an allowed URL")]
    InvalidJwksUri,
}
