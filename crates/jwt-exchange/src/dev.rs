//! Development signing keys: generate or load RSA / P-256 / P-384 / Ed25519 keys, publish them as
//! JWKs, mint tokens. For development identity providers, demos, tests and the CLI's `keygen` and
//! `mint` — never needed to *verify* tokens.
//!
//! ```
//! use jwt_exchange::dev::{jwks, SigningKey};
//! use jwt_exchange::{Algorithm, KeySet};
//! let key = SigningKey::generate(Algorithm::ES256, "dev-1").unwrap();
//! let token = key.mint(&serde_json::json!({"iss": "https://dev.example/", "sub": "me"}));
//! let set = KeySet::from_json(jwks(&[&key]).to_string().as_bytes(), &Algorithm::ALL).unwrap();
//! assert!(set.verify_compact(&token).is_ok());
//! ```

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::Algorithm;

/// Unpadded base64url, as JOSE uses it.
///
/// ```
/// assert_eq!(jwt_exchange::dev::b64("hi?"), "aGk_");
/// ```
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWKS document holding the public keys of `keys`.
///
/// ```
/// use jwt_exchange::dev::{jwks, SigningKey};
/// let k = SigningKey::generate(jwt_exchange::Algorithm::EdDSA, "k").unwrap();
/// assert_eq!(jwks(&[&k])["keys"][0]["kid"], "k");
/// ```
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}

/// Why a key could not be generated or loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM text is not a PKCS#8 `PRIVATE KEY` block.
    #[error("not a PKCS#8 PEM private key")]
    Pem,
    /// The key does not match the algorithm, or is malformed.
    #[error("the key is not a valid {0} key")]
    Rejected(Algorithm),
    /// The crypto library failed to generate a key.
    #[error("key generation failed")]
    Generation,
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private signing key with a `kid` and an algorithm. `Debug` shows only `alg` and `kid`.
pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    pkcs8: Vec<u8>,
    pair: Pair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn ec_alg(alg: Algorithm) -> &'static signature::EcdsaSigningAlgorithm {
    if alg == Algorithm::ES384 {
        &signature::ECDSA_P384_SHA384_FIXED_SIGNING
    } else {
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING
    }
}

impl SigningKey {
    /// A fresh key for `alg` (RSA keys are 2048 bits).
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Result<Self, KeyError> {
        let pkcs8 = match alg.family() {
            crate::alg::KeyFamily::P256 | crate::alg::KeyFamily::P384 => {
                EcdsaKeyPair::generate(ec_alg(alg))
                    .and_then(|k| k.to_pkcs8v1())
                    .map(|d| d.as_ref().to_vec())
            }
            crate::alg::KeyFamily::Ed25519 => Ed25519KeyPair::generate()
                .and_then(|k| k.to_pkcs8())
                .map(|d| d.as_ref().to_vec()),
            crate::alg::KeyFamily::Rsa => RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .and_then(|k| {
                    let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = k.as_der()?;
                    Ok(der.as_ref().to_vec())
                }),
        }
        .map_err(|_| KeyError::Generation)?;
        Self::from_pkcs8(alg, kid, &pkcs8)
    }

    /// Loads a PKCS#8 DER private key for `alg`.
    pub fn from_pkcs8(
        alg: Algorithm,
        kid: impl Into<String>,
        pkcs8: &[u8],
    ) -> Result<Self, KeyError> {
        let rejected = |_| KeyError::Rejected(alg);
        let pair = match alg.family() {
            crate::alg::KeyFamily::P256 | crate::alg::KeyFamily::P384 => {
                Pair::Ec(EcdsaKeyPair::from_pkcs8(ec_alg(alg), pkcs8).map_err(rejected)?)
            }
            crate::alg::KeyFamily::Ed25519 => {
                Pair::Ed(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(rejected)?)
            }
            crate::alg::KeyFamily::Rsa => {
                Pair::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected)?)
            }
        };
        Ok(SigningKey {
            alg,
            kid: kid.into(),
            pkcs8: pkcs8.to_vec(),
            pair,
        })
    }

    /// Loads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) private key for `alg`.
    pub fn from_pem(alg: Algorithm, kid: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        let pem = pem.trim();
        let body = pem
            .strip_prefix("-----BEGIN PRIVATE KEY-----")
            .and_then(|r| r.strip_suffix("-----END PRIVATE KEY-----"))
            .ok_or(KeyError::Pem)?;
        let b64: String = body.split_ascii_whitespace().collect();
        let der = STANDARD.decode(b64).map_err(|_| KeyError::Pem)?;
        Self::from_pkcs8(alg, kid, &der)
    }

    /// The algorithm [`SigningKey::mint`] uses and the JWK's `alg`.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as PKCS#8 PEM.
    pub fn private_pem(&self) -> String {
        let b = STANDARD.encode(&self.pkcs8);
        let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END PRIVATE KEY-----\n");
        out
    }

    /// The public key as a JWK with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.public_jwk_bare();
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!(self.alg.as_str());
        jwk["use"] = json!("sig");
        jwk
    }

    /// The public key members only (`kty`, `n`/`e`, `crv`/`x`/`y`).
    pub fn public_jwk_bare(&self) -> Value {
        match &self.pair {
            Pair::Rsa(k) => {
                let p = k.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(p.modulus().big_endian_without_leading_zero()),
                    "e": b64(p.exponent().big_endian_without_leading_zero()),
                })
            }
            Pair::Ec(k) => {
                let point = k.public_key().as_ref();
                let len = (point.len() - 1) / 2;
                json!({
                    "kty": "EC",
                    "crv": if len == 32 { "P-256" } else { "P-384" },
                    "x": b64(&point[1..=len]),
                    "y": b64(&point[1 + len..]),
                })
            }
            Pair::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
        }
    }

    /// The public key's raw bytes: PKCS#1 DER for RSA, the uncompressed point for EC, the 32-byte
    /// key for Ed25519.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(k) => k.public_key().as_ref().to_vec(),
            Pair::Ec(k) => k.public_key().as_ref().to_vec(),
            Pair::Ed(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// Signs `message` with `alg`.
    ///
    /// # Panics
    /// If `alg` does not fit the key type (a programming error in a caller).
    pub fn sign_bytes(&self, alg: Algorithm, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Rsa(k) => {
                let enc: &'static dyn signature::RsaEncoding = match alg {
                    Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                    Algorithm::PS512 => &signature::RSA_PSS_SHA512,
                    other => panic!("{other} does not fit an RSA key"),
                };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(enc, &rng, message, &mut sig)
                    .expect("RSA signing with a valid key");
                sig
            }
            Pair::Ec(k) => k
                .sign(&rng, message)
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
            Pair::Ed(k) => k.sign(message).as_ref().to_vec(),
        }
    }

    /// Signs raw header and payload JSON text (any bytes) with `alg`: a compact JWS.
    pub fn sign_raw(&self, alg: Algorithm, header_json: &str, payload_json: &str) -> String {
        let input = format!("{}.{}", b64(header_json), b64(payload_json));
        let sig = self.sign_bytes(alg, input.as_bytes());
        format!("{input}.{}", b64(sig))
    }

    /// Mints a token with header `{"alg", "typ": "JWT", "kid"}` and `claims` as payload.
    pub fn mint(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg.as_str(), "typ": "JWT", "kid": self.kid});
        self.sign_raw(self.alg, &header.to_string(), &claims.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_through_pem_and_verifies() {
        for alg in Algorithm::ALL {
            let k = SigningKey::generate(alg, "k").unwrap();
            let again = SigningKey::from_pem(alg, "k", &k.private_pem()).unwrap();
            assert_eq!(again.public_jwk(), k.public_jwk());
            let set = crate::KeySet::from_json(jwks(&[&k]).to_string().as_bytes(), &Algorithm::ALL)
                .unwrap();
            assert_eq!(
                set.verify_compact(&again.mint(&json!({"a": 1}))).unwrap(),
                br#"{"a":1}"#
            );
        }
    }

    #[test]
    fn bad_pem_and_wrong_algorithm() {
        assert_eq!(
            SigningKey::from_pem(Algorithm::RS256, "k", "nope").unwrap_err(),
            KeyError::Pem
        );
        let ec = SigningKey::generate(Algorithm::ES256, "k").unwrap();
        assert_eq!(
            SigningKey::from_pem(Algorithm::RS256, "k", &ec.private_pem()).unwrap_err(),
            KeyError::Rejected(Algorithm::RS256)
        );
        assert!(!format!("{ec:?}").contains("BEGIN"));
    }
}
