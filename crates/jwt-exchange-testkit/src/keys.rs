//! Test keys: generation, JWK export, token minting and crafting.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jwt_exchange::Algorithm;
use serde_json::{json, Value};

/// Unpadded base64url, as JOSE uses it.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWKS document holding the public keys of `keys`.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A signing key with a `kid` and a default algorithm.
pub struct TestKey {
    /// The algorithm [`TestKey::mint`] uses and the JWK's `alg`.
    pub alg: Algorithm,
    /// The key id.
    pub kid: String,
    pkcs8: Vec<u8>,
    pair: Pair,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn ec_alg(alg: Algorithm) -> &'static signature::EcdsaSigningAlgorithm {
    match alg {
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        _ => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    }
}

impl TestKey {
    /// A fresh key for `alg` (RSA keys are 2048 bits).
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Self {
        let pkcs8 = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EcdsaKeyPair::generate(ec_alg(alg))
                .expect("ec keygen")
                .to_pkcs8v1()
                .expect("pkcs8")
                .as_ref()
                .to_vec(),
            Algorithm::EdDSA => Ed25519KeyPair::generate()
                .expect("ed keygen")
                .to_pkcs8()
                .expect("pkcs8")
                .as_ref()
                .to_vec(),
            _ => {
                let k = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa keygen");
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = k.as_der().expect("pkcs8");
                der.as_ref().to_vec()
            }
        };
        Self::from_pkcs8(alg, kid, &pkcs8)
    }

    /// Loads a PKCS#8 DER private key.
    pub fn from_pkcs8(alg: Algorithm, kid: impl Into<String>, pkcs8: &[u8]) -> Self {
        let pair = match alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                Pair::Ec(EcdsaKeyPair::from_pkcs8(ec_alg(alg), pkcs8).expect("ec pkcs8"))
            }
            Algorithm::EdDSA => Pair::Ed(Ed25519KeyPair::from_pkcs8(pkcs8).expect("ed pkcs8")),
            _ => Pair::Rsa(RsaKeyPair::from_pkcs8(pkcs8).expect("rsa pkcs8")),
        };
        TestKey {
            alg,
            kid: kid.into(),
            pkcs8: pkcs8.to_vec(),
            pair,
        }
    }

    /// Loads a PKCS#8 PEM private key.
    pub fn from_pem(alg: Algorithm, kid: impl Into<String>, pem: &str) -> Self {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body.trim()).expect("pem base64");
        Self::from_pkcs8(alg, kid, &der)
    }

    /// The private key as PKCS#8 PEM.
    pub fn private_pem(&self) -> String {
        let b = STANDARD.encode(&self.pkcs8);
        let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).expect("ascii"));
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

    /// The public key members only (`kty`, `n`/`e`, `crv`/`x`/`y`), without `kid`/`alg`/`use`.
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
            Pair::Ed(k) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(k.public_key().as_ref()),
            }),
        }
    }

    /// The public key's raw bytes as a verifier would see them: PKCS#1 DER for RSA, the
    /// uncompressed point for EC, the 32-byte key for Ed25519 (used for key-confusion attacks).
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(k) => k.public_key().as_ref().to_vec(),
            Pair::Ec(k) => k.public_key().as_ref().to_vec(),
            Pair::Ed(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// Signs `message` with `alg` (which must fit the key type).
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
                k.sign(enc, &rng, message, &mut sig).expect("rsa sign");
                sig
            }
            Pair::Ec(k) => k.sign(&rng, message).expect("ec sign").as_ref().to_vec(),
            Pair::Ed(k) => k.sign(message).as_ref().to_vec(),
        }
    }

    /// Crafts a token from raw header and payload JSON text (any bytes, duplicates and all),
    /// signed with `alg`.
    pub fn sign_raw(&self, alg: Algorithm, header_json: &str, payload_json: &str) -> String {
        let input = format!("{}.{}", b64(header_json), b64(payload_json));
        let sig = self.sign_bytes(alg, input.as_bytes());
        format!("{input}.{}", b64(sig))
    }

    /// Mints a well-formed token (`{"alg", "typ": "JWT", "kid"}` header) with `jsonwebtoken`.
    pub fn mint(&self, claims: &Value) -> String {
        let alg = match self.alg {
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::RS384 => jsonwebtoken::Algorithm::RS384,
            Algorithm::RS512 => jsonwebtoken::Algorithm::RS512,
            Algorithm::PS256 => jsonwebtoken::Algorithm::PS256,
            Algorithm::PS384 => jsonwebtoken::Algorithm::PS384,
            Algorithm::PS512 => jsonwebtoken::Algorithm::PS512,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::ES384 => jsonwebtoken::Algorithm::ES384,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        };
        let pem = self.private_pem();
        let key = match self.pair {
            Pair::Rsa(_) => jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()),
            Pair::Ec(_) => jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()),
            Pair::Ed(_) => jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()),
        }
        .expect("encoding key");
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &key).expect("jsonwebtoken encode")
    }

    /// Mints with a hand-built header (`alg` of this key, `typ: JWT`, this `kid`) — the same
    /// shape as [`TestKey::mint`], without going through `jsonwebtoken`.
    pub fn mint_raw(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg.as_str(), "typ": "JWT", "kid": self.kid});
        self.sign_raw(self.alg, &header.to_string(), &claims.to_string())
    }
}
