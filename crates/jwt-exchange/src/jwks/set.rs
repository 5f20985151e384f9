//! A parsed JSON Web Key Set (RFC 7517 §5) with its `kid` index.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::jwks::key::{SharedKey, SkipReason, VerifyingKey};
use crate::jwks::JwksError;
use crate::verify::error::{Part, VerifyError};
use crate::verify::jws::{self, Header};
use crate::Algorithm;

/// Most keys a set may hold; a larger document is refused (real IdPs publish a handful).
pub const MAX_KEYS: usize = 256;

/// A key the set left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    /// The JWK's `kid`, if it had one.
    pub kid: Option<String>,
    /// Why it was left out.
    pub reason: SkipReason,
}

enum Slot {
    One(SharedKey),
    /// Several usable keys share this `kid`: tokens naming it are refused.
    Ambiguous,
}

/// An issuer's verification keys, parsed once and indexed by `kid`.
///
/// Keys that must not verify anything (`use: enc`, no `verify` in `key_ops`, private members,
/// symmetric keys, weak RSA, points off the curve, algorithms outside the allow-list) are left
/// out and listed by [`KeySet::skipped`].
///
/// ```
/// use jwt_exchange::{Algorithm, KeySet};
/// let jwks = br#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig",
///   "x":"04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY",
///   "y":"UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw"},
///   {"kty":"oct","k":"c2VjcmV0"}]}"#;
/// let set = KeySet::from_json(jwks, &Algorithm::ALL).unwrap();
/// assert_eq!(set.len(), 1);
/// assert_eq!(set.skipped().len(), 1);
/// ```
pub struct KeySet {
    keys: Vec<SharedKey>,
    by_kid: HashMap<String, Slot>,
    skipped: Vec<SkippedKey>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.keys)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// Parses a JWKS document, keeping the keys usable with `allowed` algorithms.
    ///
    /// Errors when the document is not a JSON object with a `keys` array, repeats a member name,
    /// has more than [`MAX_KEYS`] keys, or leaves no usable key.
    pub fn from_json(bytes: &[u8], allowed: &[Algorithm]) -> Result<Self, JwksError> {
        let doc = crate::json::parse_object(bytes).map_err(|_| JwksError::InvalidDocument)?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JwksError::InvalidDocument);
        };
        if entries.len() > MAX_KEYS {
            return Err(JwksError::TooManyKeys {
                count: entries.len(),
            });
        }
        let mut keys = Vec::with_capacity(entries.len());
        let mut skipped = Vec::new();
        for entry in entries {
            let Some(obj) = entry.as_object() else {
                skipped.push(SkippedKey {
                    kid: None,
                    reason: SkipReason::InvalidMember,
                });
                continue;
            };
            match VerifyingKey::from_jwk(obj, allowed) {
                Ok(k) => keys.push(Arc::new(k)),
                Err((kid, reason)) => skipped.push(SkippedKey { kid, reason }),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys {
                skipped: skipped.len(),
            });
        }
        let mut by_kid: HashMap<String, Slot> = HashMap::with_capacity(keys.len());
        for k in &keys {
            if let Some(kid) = k.kid() {
                by_kid
                    .entry(kid.to_owned())
                    .and_modify(|s| *s = Slot::Ambiguous)
                    .or_insert_with(|| Slot::One(Arc::clone(k)));
            }
        }
        Ok(KeySet {
            keys,
            by_kid,
            skipped,
        })
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// `true` if there is no usable key (never the case for a set built by
    /// [`KeySet::from_json`]).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys that were left out, and why.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// `true` if a usable key has this `kid` (even an ambiguous one).
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// Picks the key for a token.
    ///
    /// With a `kid`: the one usable key with that `kid`, which must support `alg`.
    /// Without a `kid`: the single usable key that supports `alg`; none or several is an error
    /// (a verifier that tried every key would let the token pick among them).
    pub(crate) fn select(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<&SharedKey, VerifyError> {
        if let Some(kid) = kid {
            return match self.by_kid.get(kid) {
                Some(Slot::One(k)) if k.supports(alg) => Ok(k),
                Some(Slot::One(_)) => Err(VerifyError::KeyAlgorithmMismatch { alg }),
                Some(Slot::Ambiguous) => Err(VerifyError::AmbiguousKeyId),
                None => Err(VerifyError::UnknownKeyId),
            };
        }
        let mut fitting = self.keys.iter().filter(|k| k.supports(alg));
        match (fitting.next(), fitting.next()) {
            (Some(k), None) => Ok(k),
            _ => Err(VerifyError::NoUniqueKey),
        }
    }

    /// Verifies a compact JWS against this set alone and returns its payload bytes.
    ///
    /// This is the header, key-selection and signature layer of token verification, without
    /// issuer routing or claim checks: the header rules of [`crate::Verifier`] apply (`alg`
    /// must be asymmetric and supported, no `crit`, no `jku`/`x5u`/`jwk`/`x5c`/`b64`/`zip`/`enc`),
    /// then key selection, then the signature. The payload need not be JSON.
    pub fn verify_compact(&self, token: &str) -> Result<Vec<u8>, VerifyError> {
        let seg = jws::split(token)?;
        let header = Header::decode(seg.header)?;
        let payload = jws::b64(seg.payload, Part::Payload)?;
        let signature = jws::b64(seg.signature, Part::Signature)?;
        let key = self.select(header.kid.as_deref(), header.alg)?;
        if key.verify(header.alg, seg.signing_input.as_bytes(), &signature) {
            Ok(payload)
        } else {
            Err(VerifyError::InvalidSignature)
        }
    }
}
