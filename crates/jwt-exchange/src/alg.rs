//! The signature algorithms this crate accepts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An asymmetric JWS algorithm (RFC 7518 §3, RFC 8037).
///
/// Only asymmetric algorithms exist in this type: `none` and the HMAC family (`HS*`) cannot be
/// represented, so no configuration or token can select them.
///
/// ```
/// use jwt_exchange::Algorithm;
/// assert_eq!("ES256".parse::<Algorithm>().unwrap(), Algorithm::ES256);
/// assert!("HS256".parse::<Algorithm>().is_err());
/// assert!("none".parse::<Algorithm>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(clippy::upper_case_acronyms)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519 (RFC 8037).
    EdDSA,
}

/// What kind of key an algorithm needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Algorithm {
    /// Every supported algorithm, the default allow-list.
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// The name used in the JWS `alg` header.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub(crate) const fn family(self) -> KeyFamily {
        match self {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyFamily::Rsa,
            Algorithm::ES256 => KeyFamily::P256,
            Algorithm::ES384 => KeyFamily::P384,
            Algorithm::EdDSA => KeyFamily::Ed25519,
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn verification(self) -> &'static dyn aws_lc_rs::signature::VerificationAlgorithm {
        use aws_lc_rs::signature as s;
        match self {
            Algorithm::RS256 => &s::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::RS384 => &s::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &s::RSA_PKCS1_2048_8192_SHA512,
            Algorithm::PS256 => &s::RSA_PSS_2048_8192_SHA256,
            Algorithm::PS384 => &s::RSA_PSS_2048_8192_SHA384,
            Algorithm::PS512 => &s::RSA_PSS_2048_8192_SHA512,
            Algorithm::ES256 => &s::ECDSA_P256_SHA256_FIXED,
            Algorithm::ES384 => &s::ECDSA_P384_SHA384_FIXED,
            Algorithm::EdDSA => &s::ED25519,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not an accepted [`Algorithm`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlgorithmError {
    /// `none` (in any letter case): unsigned tokens are never accepted.
    #[error("`none` means an unsigned token and is never accepted")]
    None,
    /// A symmetric (HMAC) algorithm such as `HS256`.
    #[error("HS* algorithms are symmetric: a key published in a JWKS cannot be trusted for them; use RS*, PS*, ES* or EdDSA")]
    Symmetric,
    /// Anything else.
    #[error("unsupported algorithm; supported: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA")]
    Unsupported,
}

impl FromStr for Algorithm {
    type Err = AlgorithmError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(a) = Algorithm::ALL.iter().find(|a| a.as_str() == s) {
            return Ok(*a);
        }
        if s.eq_ignore_ascii_case("none") {
            Err(AlgorithmError::None)
        } else if s.len() > 2 && s.as_bytes()[..2].eq_ignore_ascii_case(b"HS") {
            // Bytes, not `&s[..2]`: a multi-byte character at byte 1 (`"H\u{305}"`, from a
            // token header) must not panic.
            Err(AlgorithmError::Symmetric)
        } else {
            Err(AlgorithmError::Unsupported)
        }
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|e: AlgorithmError| {
            serde::de::Error::custom(format_args!("algorithm {s:?}: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_hmac_are_unrepresentable() {
        for s in ["none", "None", "NONE", "nOnE"] {
            assert_eq!(s.parse::<Algorithm>(), Err(AlgorithmError::None));
        }
        for s in ["HS256", "HS384", "HS512", "hs256"] {
            assert_eq!(s.parse::<Algorithm>(), Err(AlgorithmError::Symmetric));
        }
        assert_eq!(
            "rs256".parse::<Algorithm>(),
            Err(AlgorithmError::Unsupported)
        );
        assert_eq!(
            "ES512".parse::<Algorithm>(),
            Err(AlgorithmError::Unsupported)
        );
    }

    #[test]
    fn multi_byte_names_are_unsupported_not_a_panic() {
        // Found by the `token` fuzz target: `&s[..2]` split the combining overline.
        for s in ["H\u{305}S256", "\u{305}", "é", "Hé", "ÉS256", "H\u{10FFFF}"] {
            assert_eq!(
                s.parse::<Algorithm>(),
                Err(AlgorithmError::Unsupported),
                "{s:?}"
            );
        }
        assert_eq!(
            "hs\u{305}".parse::<Algorithm>(),
            Err(AlgorithmError::Symmetric)
        );
    }

    #[test]
    fn round_trips_every_name() {
        for a in Algorithm::ALL {
            assert_eq!(a.as_str().parse::<Algorithm>(), Ok(a));
            assert_eq!(Algorithm::ALL[a.index()], a);
        }
    }
}
