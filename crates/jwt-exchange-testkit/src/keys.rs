//! Test keys: [`jwt_exchange::dev::SigningKey`] plus minting through `jsonwebtoken`, an
//! implementation independent of this project, so well-formed test tokens prove interop.

use std::ops::Deref;

use jwt_exchange::dev::SigningKey;
use jwt_exchange::Algorithm;
use serde_json::Value;

pub use jwt_exchange::dev::b64;

/// A JWKS document holding the public keys of `keys`.
pub fn jwks(keys: &[&TestKey]) -> Value {
    let inner: Vec<&SigningKey> = keys.iter().map(|k| &k.key).collect();
    jwt_exchange::dev::jwks(&inner)
}

/// A signing key with a `kid` and a default algorithm (derefs to [`SigningKey`]).
#[derive(Debug)]
pub struct TestKey {
    /// The algorithm [`TestKey::mint`] uses and the JWK's `alg`.
    pub alg: Algorithm,
    /// The key id.
    pub kid: String,
    key: SigningKey,
}

impl Deref for TestKey {
    type Target = SigningKey;
    fn deref(&self) -> &SigningKey {
        &self.key
    }
}

impl TestKey {
    /// A fresh key for `alg` (RSA keys are 2048 bits).
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Self {
        Self::wrap(SigningKey::generate(alg, kid).expect("key generation"))
    }

    /// Loads a PKCS#8 PEM private key.
    pub fn from_pem(alg: Algorithm, kid: impl Into<String>, pem: &str) -> Self {
        Self::wrap(SigningKey::from_pem(alg, kid, pem).expect("PKCS#8 PEM key"))
    }

    fn wrap(key: SigningKey) -> Self {
        TestKey {
            alg: key.alg(),
            kid: key.kid().to_owned(),
            key,
        }
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
        let key = match self.alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes())
            }
            Algorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes()),
            _ => jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .expect("encoding key");
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &key).expect("jsonwebtoken encode")
    }

    /// Mints with a hand-built header, without going through `jsonwebtoken`.
    pub fn mint_raw(&self, claims: &Value) -> String {
        self.key.mint(claims)
    }
}
