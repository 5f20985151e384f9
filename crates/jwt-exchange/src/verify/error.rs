//! Why a token was refused.

use std::fmt;

/// The part of a compact JWS a parse error is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// The protected header.
    Header,
    /// The payload (the claim set).
    Payload,
    /// The signature.
    Signature,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Payload => "payload",
            Part::Signature => "signature",
        })
    }
}

/// How a token fails to be a well-formed compact JWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// Not three dot-separated segments (a JWE has five).
    #[error("{count} segments instead of 3")]
    SegmentCount {
        /// How many segments the token has.
        count: usize,
    },
    /// A segment is empty (for instance a stripped signature).
    #[error("empty {0} segment")]
    EmptySegment(Part),
    /// A segment is not unpadded, canonical base64url.
    #[error("{0} is not unpadded base64url")]
    Base64(Part),
    /// A segment is not valid JSON.
    #[error("{0} is not valid JSON")]
    Json(Part),
    /// A JSON object repeats a member name.
    #[error("{0} has a duplicate JSON member name")]
    DuplicateMember(Part),
    /// The JSON is not an object.
    #[error("{0} is not a JSON object")]
    NotAnObject(Part),
}

/// Why a token was not verified.
///
/// Each variant is one check of the verification order documented in `docs/security.md`.
/// Messages name the check and, where useful, the claim name; they never contain token bytes or
/// claim values (the exception is the numeric times in [`VerifyError::Expired`] and friends,
/// which identify no one and are what an operator needs to diagnose clock skew).
///
/// ```
/// use jwt_exchange::VerifyError;
/// let e = VerifyError::Expired { exp: 10, now: 100 };
/// assert_eq!(e.check(), "exp");
/// assert!(!e.is_unavailable());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is longer than `max_token_bytes`.
    #[error("token is {len} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Length of the presented token.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The token is not a well-formed compact JWS.
    #[error("malformed token: {0}")]
    Malformed(Malformed),
    /// A header parameter has the wrong JSON type, or `alg` is missing.
    #[error("header parameter `{param}` is missing or has the wrong type")]
    InvalidHeader {
        /// The parameter name.
        param: &'static str,
    },
    /// `alg` is `none`, an HMAC algorithm, or not an algorithm this crate supports.
    #[error("unsupported or forbidden `alg`")]
    UnsupportedAlgorithm,
    /// `alg` is supported but not in the provider's `algorithms` allow-list.
    #[error("algorithm {alg} is not allowed for this issuer")]
    AlgorithmNotAllowed {
        /// The token's algorithm.
        alg: crate::Algorithm,
    },
    /// The header has `crit`: no extension is understood, so every critical one is refused.
    #[error("header has `crit`; no critical extension is supported")]
    CriticalHeader,
    /// The header carries a parameter this verifier refuses (`jku`, `x5u`, `jwk`, `x5c`, `b64`,
    /// `zip`, `enc`): keys come only from the configured JWKS and are never fetched from a token.
    #[error("header parameter `{param}` is not accepted")]
    ForbiddenHeaderParameter {
        /// The parameter name.
        param: &'static str,
    },
    /// `typ` is present and not one of `allowed_types`.
    #[error("header `typ` is not an accepted type")]
    DisallowedType,
    /// No provider is configured for the token's `iss`.
    #[error("no provider is configured for this issuer")]
    UnknownIssuer,
    /// No key in the issuer's JWKS has the token's `kid`, even after a refetch.
    #[error("no key in the issuer's key set has this `kid`")]
    UnknownKeyId,
    /// Several keys in the issuer's JWKS share the token's `kid`.
    #[error("several keys in the issuer's key set share this `kid`")]
    AmbiguousKeyId,
    /// The token has no `kid` and the key set does not have exactly one key for its `alg`.
    #[error("token has no `kid` and the key set does not have exactly one key for its algorithm")]
    NoUniqueKey,
    /// The key named by `kid` cannot be used with the token's `alg` (other key type, curve, or a
    /// key bound to another algorithm by its JWK `alg`).
    #[error("the key for this `kid` is not usable with algorithm {alg}")]
    KeyAlgorithmMismatch {
        /// The token's algorithm.
        alg: crate::Algorithm,
    },
    /// The issuer's keys could not be fetched and the last good set is older than
    /// `jwks_max_stale` (or there never was one). This is an outage, not a bad token.
    #[error("the issuer's signing keys are unavailable")]
    KeysUnavailable,
    /// The signature does not verify.
    #[error("signature does not verify")]
    InvalidSignature,
    /// A registered claim has the wrong JSON type (it is never treated as absent).
    #[error("claim `{claim}` has the wrong type")]
    InvalidClaimType {
        /// The claim name.
        claim: &'static str,
    },
    /// A claim that the configuration requires is absent.
    #[error("claim `{claim}` is required")]
    MissingClaim {
        /// The claim name.
        claim: &'static str,
    },
    /// No `aud` value is one of the configured `audiences`.
    #[error("no audience in `aud` is accepted")]
    InvalidAudience,
    /// `exp` plus the leeway is not after now.
    #[error("token expired (exp {exp}, now {now})")]
    Expired {
        /// The token's `exp` (seconds).
        exp: i64,
        /// The verifier's time (seconds).
        now: i64,
    },
    /// `nbf` minus the leeway is after now.
    #[error("token not yet valid (nbf {nbf}, now {now})")]
    NotYetValid {
        /// The token's `nbf` (seconds).
        nbf: i64,
        /// The verifier's time (seconds).
        now: i64,
    },
    /// `iat` is later than now plus the leeway.
    #[error("token issued in the future (iat {iat}, now {now})")]
    IssuedInFuture {
        /// The token's `iat` (seconds).
        iat: i64,
        /// The verifier's time (seconds).
        now: i64,
    },
    /// `iat` is older than `max_token_age` (plus the leeway).
    #[error("token too old (iat {iat}, now {now})")]
    TooOld {
        /// The token's `iat` (seconds).
        iat: i64,
        /// The verifier's time (seconds).
        now: i64,
    },
    /// A `required_claims` entry is absent, not a string, or not the pinned value.
    #[error("required claim `{claim}` does not have the configured value")]
    RequiredClaimMismatch {
        /// The configured claim name or JSON Pointer.
        claim: String,
    },
    /// The identity claim is absent, not a string, or empty.
    #[error("identity claim `{pointer}` is missing, empty or not a string")]
    InvalidIdentity {
        /// The configured JSON Pointer.
        pointer: String,
    },
    /// The groups claim is neither an array of strings nor a string.
    #[error("groups claim `{pointer}` is not a list of strings")]
    InvalidGroups {
        /// The configured JSON Pointer.
        pointer: String,
    },
}

impl VerifyError {
    /// A short, stable name of the failed check, for metrics labels and audit records.
    pub fn check(&self) -> &'static str {
        match self {
            VerifyError::TooLarge { .. } => "size",
            VerifyError::Malformed(_) => "format",
            VerifyError::InvalidHeader { .. } => "header",
            VerifyError::UnsupportedAlgorithm | VerifyError::AlgorithmNotAllowed { .. } => "alg",
            VerifyError::CriticalHeader => "crit",
            VerifyError::ForbiddenHeaderParameter { .. } => "header_param",
            VerifyError::DisallowedType => "typ",
            VerifyError::UnknownIssuer => "iss",
            VerifyError::UnknownKeyId | VerifyError::AmbiguousKeyId | VerifyError::NoUniqueKey => {
                "kid"
            }
            VerifyError::KeyAlgorithmMismatch { .. } => "key_alg",
            VerifyError::KeysUnavailable => "keys_unavailable",
            VerifyError::InvalidSignature => "signature",
            VerifyError::InvalidClaimType { .. } => "claim_type",
            VerifyError::MissingClaim { .. } => "missing_claim",
            VerifyError::InvalidAudience => "aud",
            VerifyError::Expired { .. } => "exp",
            VerifyError::NotYetValid { .. } => "nbf",
            VerifyError::IssuedInFuture { .. } => "iat",
            VerifyError::TooOld { .. } => "max_token_age",
            VerifyError::RequiredClaimMismatch { .. } => "required_claims",
            VerifyError::InvalidIdentity { .. } => "identity",
            VerifyError::InvalidGroups { .. } => "groups",
        }
    }

    /// `true` when the failure is an outage on our side (keys unavailable), which the HTTP layer
    /// answers with 503 instead of 401.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, VerifyError::KeysUnavailable)
    }
}

impl From<Malformed> for VerifyError {
    fn from(m: Malformed) -> Self {
        VerifyError::Malformed(m)
    }
}
