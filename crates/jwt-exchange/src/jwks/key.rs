//! One JWK, checked and parsed into ready-to-verify form.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::ParsedPublicKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::alg::{Algorithm, KeyFamily};

/// Why a JWK from a key set was left out. Skipped keys are logged (with their `kid`) when a key
/// set is loaded; they never verify anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkipReason {
    /// `use` is present and is not `sig`.
    #[error("`use` is not `sig`")]
    NotForSignatures,
    /// `key_ops` is present and does not contain `verify`.
    #[error("`key_ops` does not include `verify`")]
    NoVerifyOperation,
    /// The JWK carries private key members (`d`, `p`, `k`, ...): a published key set must not.
    #[error("the key has private members")]
    PrivateMaterial,
    /// A symmetric (`oct`) key: never trusted from a JWKS.
    #[error("symmetric (`oct`) key")]
    Symmetric,
    /// `kty` or `crv` is not one this crate verifies with.
    #[error("unsupported key type or curve")]
    UnsupportedKeyType,
    /// `alg` names an algorithm that is not supported, or that does not fit the key type.
    #[error("`alg` is unsupported or does not fit the key type")]
    AlgorithmMismatch,
    /// A required member is missing, has the wrong type, or is not valid base64url.
    #[error("a member is missing or invalid")]
    InvalidMember,
    /// RSA modulus under 2048 or over 8192 bits, a bad public exponent, or a modulus with the
    /// ROCA (CVE-2017-15361) fingerprint.
    #[error("weak or malformed RSA key")]
    WeakRsaKey,
    /// The key material is rejected by the crypto library (for instance an EC point that is not
    /// on the curve).
    #[error("key material rejected")]
    Rejected,
    /// No algorithm in the provider's allow-list can use this key.
    #[error("no allowed algorithm uses this key")]
    NotAllowed,
}

/// A public key from a JWKS, parsed once for every algorithm it may verify.
pub struct VerifyingKey {
    kid: Option<String>,
    family: KeyFamily,
    bound: Option<Algorithm>,
    /// Indexed by [`Algorithm::index`]; `Some` for each algorithm this key may verify.
    parsed: [Option<ParsedPublicKey>; 9],
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("alg", &self.bound)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the JWK's `alg` binds this key to, if any.
    pub fn bound_algorithm(&self) -> Option<Algorithm> {
        self.bound
    }

    /// `true` if this key may verify `alg` signatures (family, curve, binding and allow-list).
    pub fn supports(&self, alg: Algorithm) -> bool {
        self.parsed[alg.index()].is_some()
    }

    /// Verifies `signature` over `message` with `alg`. `false` when the signature is wrong or the
    /// key cannot be used with `alg`.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        match &self.parsed[alg.index()] {
            Some(k) => k.verify_sig(message, signature).is_ok(),
            None => false,
        }
    }

    /// Parses one JWK object. `allowed` is the provider's algorithm allow-list.
    pub(crate) fn from_jwk(
        jwk: &Map<String, Value>,
        allowed: &[Algorithm],
    ) -> Result<Self, (Option<String>, SkipReason)> {
        let kid = match jwk.get("kid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err((None, SkipReason::InvalidMember)),
        };
        parse(jwk, allowed)
            .map_err(|r| (kid.clone(), r))
            .map(|(family, bound, parsed)| VerifyingKey {
                kid,
                family,
                bound,
                parsed,
            })
    }
}

/// JWK members that only private (or symmetric) keys carry.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

type Parsed = (KeyFamily, Option<Algorithm>, [Option<ParsedPublicKey>; 9]);

fn parse(jwk: &Map<String, Value>, allowed: &[Algorithm]) -> Result<Parsed, SkipReason> {
    let kty = str_member(jwk, "kty")?;
    if let Some(u) = jwk.get("use") {
        if u.as_str() != Some("sig") {
            return Err(SkipReason::NotForSignatures);
        }
    }
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops.as_array().ok_or(SkipReason::InvalidMember)?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return Err(SkipReason::NoVerifyOperation);
        }
    }
    if kty == "oct" {
        return Err(SkipReason::Symmetric);
    }
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(SkipReason::PrivateMaterial);
    }
    let (family, material) = match kty {
        "RSA" => (KeyFamily::Rsa, rsa_material(jwk)?),
        "EC" => ec_material(jwk)?,
        "OKP" => {
            if str_member(jwk, "crv")? != "Ed25519" {
                return Err(SkipReason::UnsupportedKeyType);
            }
            (KeyFamily::Ed25519, fixed_b64(jwk, "x", 32)?)
        }
        _ => return Err(SkipReason::UnsupportedKeyType),
    };
    let bound = match jwk.get("alg") {
        None => None,
        Some(Value::String(s)) => {
            let a: Algorithm = s.parse().map_err(|_| SkipReason::AlgorithmMismatch)?;
            if a.family() != family {
                return Err(SkipReason::AlgorithmMismatch);
            }
            Some(a)
        }
        Some(_) => return Err(SkipReason::InvalidMember),
    };
    let mut parsed: [Option<ParsedPublicKey>; 9] = Default::default();
    let mut any = false;
    for alg in allowed {
        if alg.family() != family || bound.is_some_and(|b| b != *alg) {
            continue;
        }
        let key = ParsedPublicKey::new(alg.verification(), &material)
            .map_err(|_| SkipReason::Rejected)?;
        parsed[alg.index()] = Some(key);
        any = true;
    }
    if !any {
        return Err(SkipReason::NotAllowed);
    }
    Ok((family, bound, parsed))
}

fn str_member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, SkipReason> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or(SkipReason::InvalidMember)
}

fn b64_member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, SkipReason> {
    URL_SAFE_NO_PAD
        .decode(str_member(jwk, name)?)
        .map_err(|_| SkipReason::InvalidMember)
}

fn fixed_b64(jwk: &Map<String, Value>, name: &str, len: usize) -> Result<Vec<u8>, SkipReason> {
    let v = b64_member(jwk, name)?;
    if v.len() == len {
        Ok(v)
    } else {
        Err(SkipReason::InvalidMember)
    }
}

fn ec_material(jwk: &Map<String, Value>) -> Result<(KeyFamily, Vec<u8>), SkipReason> {
    let (family, len) = match str_member(jwk, "crv")? {
        "P-256" => (KeyFamily::P256, 32),
        "P-384" => (KeyFamily::P384, 48),
        _ => return Err(SkipReason::UnsupportedKeyType),
    };
    let x = fixed_b64(jwk, "x", len)?;
    let y = fixed_b64(jwk, "y", len)?;
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok((family, point))
}

/// Checks an RSA JWK and returns its PKCS#1 `RSAPublicKey` DER encoding.
fn rsa_material(jwk: &Map<String, Value>) -> Result<Vec<u8>, SkipReason> {
    let n = b64_member(jwk, "n")?;
    let e = b64_member(jwk, "e")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = bit_len(n);
    if !(2048..=8192).contains(&bits) || n.last().is_none_or(|b| b & 1 == 0) {
        return Err(SkipReason::WeakRsaKey);
    }
    // Public exponent: odd, at least 3, at most 2^32 - 1 (what AWS-LC accepts for verification).
    if e.is_empty() || e.len() > 4 || e.last().is_none_or(|b| b & 1 == 0) {
        return Err(SkipReason::WeakRsaKey);
    }
    let e_val = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    if e_val < 3 {
        return Err(SkipReason::WeakRsaKey);
    }
    if has_roca_fingerprint(n) {
        return Err(SkipReason::WeakRsaKey);
    }
    Ok(der_sequence(&[der_uint(n), der_uint(e)]))
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[first..]
}

fn bit_len(b: &[u8]) -> usize {
    match b.first() {
        None => 0,
        Some(top) => (b.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// DER INTEGER for an unsigned big-endian magnitude without leading zeros.
fn der_uint(mag: &[u8]) -> Vec<u8> {
    let pad = mag.first().is_some_and(|b| b & 0x80 != 0);
    let mut out = vec![0x02];
    der_len(mag.len() + usize::from(pad), &mut out);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(mag);
    out
}

fn der_sequence(items: &[Vec<u8>]) -> Vec<u8> {
    let body: usize = items.iter().map(Vec::len).sum();
    let mut out = vec![0x30];
    der_len(body, &mut out);
    for i in items {
        out.extend_from_slice(i);
    }
    out
}

/// The ROCA test of Nemec et al. (CCS 2017): moduli made by the vulnerable Infineon library are
/// congruent, modulo each small prime `p` below, to a power of 65537. A random modulus passes all
/// of these tests with negligible probability.
fn has_roca_fingerprint(n: &[u8]) -> bool {
    const PRIMES: [u32; 39] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173,
    ];
    PRIMES.iter().all(|&p| {
        let r = n
            .iter()
            .fold(0u32, |acc, b| ((acc << 8) | u32::from(*b)) % p);
        let g = 65_537 % p;
        let mut x = 1u32;
        for _ in 0..p {
            if x == r {
                return true;
            }
            x = x * g % p;
        }
        false
    })
}

/// A key shared by the key set's indexes.
pub(crate) type SharedKey = Arc<VerifyingKey>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_integer_pads_high_bit() {
        assert_eq!(der_uint(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_uint(&[0x01, 0x00, 0x01]), vec![0x02, 0x03, 1, 0, 1]);
        let mut long = Vec::new();
        der_len(300, &mut long);
        assert_eq!(long, vec![0x82, 0x01, 0x2c]);
    }

    #[test]
    fn bit_length() {
        assert_eq!(bit_len(&[0x01, 0x00]), 9);
        assert_eq!(bit_len(&[0xff]), 8);
        assert_eq!(bit_len(&[]), 0);
    }

    #[test]
    fn skip_rules() {
        let all = Algorithm::ALL;
        let parse = |v: serde_json::Value| {
            VerifyingKey::from_jwk(v.as_object().unwrap(), &all).map_err(|e| e.1)
        };
        let ec = serde_json::json!({
            "kty":"EC","crv":"P-256",
            "x":"04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY",
            "y":"UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw"});
        assert!(parse(ec.clone()).is_ok());
        let with = |k: &str, v: serde_json::Value| {
            let mut j = ec.clone();
            j[k] = v;
            parse(j)
        };
        assert_eq!(
            with("use", "enc".into()).unwrap_err(),
            SkipReason::NotForSignatures
        );
        assert_eq!(
            with("key_ops", serde_json::json!(["sign"])).unwrap_err(),
            SkipReason::NoVerifyOperation
        );
        assert_eq!(
            with("d", "AA".into()).unwrap_err(),
            SkipReason::PrivateMaterial
        );
        assert_eq!(
            with("alg", "RS256".into()).unwrap_err(),
            SkipReason::AlgorithmMismatch
        );
        assert_eq!(
            with("alg", "HS256".into()).unwrap_err(),
            SkipReason::AlgorithmMismatch
        );
        assert_eq!(
            with("crv", "P-384".into()).unwrap_err(),
            SkipReason::InvalidMember
        );
        assert_eq!(
            with("crv", "P-521".into()).unwrap_err(),
            SkipReason::UnsupportedKeyType
        );
        assert_eq!(
            with("kty", "oct".into()).unwrap_err(),
            SkipReason::Symmetric
        );
        assert_eq!(
            with("y", "UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgnw".into()).unwrap_err(),
            SkipReason::Rejected
        );
        let k = with("alg", "ES256".into()).unwrap();
        assert!(k.supports(Algorithm::ES256));
        assert_eq!(k.bound_algorithm(), Some(Algorithm::ES256));
        let es384_only =
            VerifyingKey::from_jwk(ec.as_object().unwrap(), &[Algorithm::ES384]).unwrap_err();
        assert_eq!(es384_only.1, SkipReason::NotAllowed);
    }
}
