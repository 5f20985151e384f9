//! The bearer token this server mints at login and checks on every request.
//!
//! A bearer is a compact JWS, HS256 with a server secret, whose header names the secret by
//! `kid` so secrets can rotate (one signing secret, any number of verification secrets). The
//! claims are exactly `iss` (this server), `sub` (the session id), `iat` and `exp` (Unix
//! seconds); the session itself lives in the store, so deleting it revokes the bearer even
//! before `exp`. The checks, in order, are listed on [`BearerKeys::verify`].

use std::borrow::Cow;
use std::fmt;

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::b64url;
use crate::{Malformed, Part};

/// The only accepted `alg`.
const ALG: &str = "HS256";
/// The `typ` minted, and the only one accepted when present.
const TYP: &str = "JWT";
/// An HMAC-SHA256 tag, base64url without padding, is 43 characters.
const TAG_B64_LEN: usize = 43;
/// Claim sets up to this many bytes are decoded on the stack.
const PAYLOAD_STACK: usize = 256;

/// A bearer-signing secret: at least [`BearerSecret::MIN_LEN`] bytes.
///
/// `Debug` prints `BearerSecret(<redacted>)`; there is no `Display`, no `Clone`, and the bytes
/// are overwritten with zeros (best effort) when the value is dropped.
///
/// ```
/// use jwt_exchange::session::BearerSecret;
/// let s = BearerSecret::generate();
/// assert_eq!(format!("{s:?}"), "BearerSecret(<redacted>)");
/// assert!(BearerSecret::from_bytes(vec![7u8; 32]).is_ok());
/// assert!(BearerSecret::from_bytes(b"too short".to_vec()).is_err());
/// ```
pub struct BearerSecret(Vec<u8>);

impl BearerSecret {
    /// The shortest accepted secret, in bytes (the HMAC-SHA256 output size, RFC 7518 §3.2).
    pub const MIN_LEN: usize = 32;

    /// Takes `bytes` as a secret.
    ///
    /// ```
    /// use jwt_exchange::session::{BearerError, BearerSecret};
    /// let e = BearerSecret::from_bytes(vec![0u8; 16]).unwrap_err();
    /// assert_eq!(e, BearerError::SecretTooShort { len: 16 });
    /// ```
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Self, BearerError> {
        // Wrap first, so a rejected secret is zeroed on drop like an accepted one.
        let secret = BearerSecret(bytes.into());
        if secret.0.len() < Self::MIN_LEN {
            return Err(BearerError::SecretTooShort {
                len: secret.0.len(),
            });
        }
        Ok(secret)
    }

    /// A fresh secret of [`BearerSecret::MIN_LEN`] random bytes from the system CSPRNG.
    ///
    /// ```
    /// use jwt_exchange::session::{BearerKeys, BearerSecret};
    /// let keys = BearerKeys::new("https://lakefs.example", "k1", BearerSecret::generate());
    /// let bearer = keys.mint("session-id", 0, 60);
    /// assert!(keys.verify(bearer.as_str(), 30).is_ok());
    /// ```
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails, which leaves no safe way to
    /// make a secret.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; Self::MIN_LEN];
        aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut bytes)
            .expect("system random number generator failed");
        BearerSecret(bytes)
    }
}

impl fmt::Debug for BearerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerSecret(<redacted>)")
    }
}

impl Drop for BearerSecret {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Overwrites key material with zeros before it is freed, in the `Drop` of every type that
/// holds some ([`BearerSecret`], the store TLS client key). Best effort, not a guarantee:
/// copies made before (by a caller, by a library handed the bytes) are out of reach.
pub(crate) fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    // Keeps the writes from being optimized away as dead stores.
    std::hint::black_box(bytes);
}

/// A bearer token minted by [`BearerKeys::mint`]: the `token` of a login response.
///
/// `Debug` prints `Bearer(<redacted>)`, there is no `Display`, and `==` runs in constant time.
///
/// ```
/// use jwt_exchange::session::{Bearer, BearerKeys, BearerSecret};
/// let keys = BearerKeys::new("https://lakefs.example", "k1", BearerSecret::generate());
/// let b = keys.mint("session-id", 0, 60);
/// assert_eq!(format!("{b:?}"), "Bearer(<redacted>)");
/// assert_eq!(b, Bearer::from(b.as_str().to_owned()));
/// ```
#[derive(Clone)]
pub struct Bearer(String);

impl Bearer {
    /// The compact JWS, as sent to the client.
    ///
    /// ```
    /// use jwt_exchange::session::{BearerKeys, BearerSecret};
    /// let keys = BearerKeys::new("https://lakefs.example", "k1", BearerSecret::generate());
    /// assert_eq!(keys.mint("sid", 0, 60).as_str().split('.').count(), 3);
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The compact JWS as an owned string.
    ///
    /// ```
    /// use jwt_exchange::session::{BearerKeys, BearerSecret};
    /// let keys = BearerKeys::new("https://lakefs.example", "k1", BearerSecret::generate());
    /// let s: String = keys.mint("sid", 0, 60).into_string();
    /// assert!(s.starts_with("eyJ"));
    /// ```
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<String> for Bearer {
    fn from(token: String) -> Self {
        Bearer(token)
    }
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bearer(<redacted>)")
    }
}

impl PartialEq for Bearer {
    fn eq(&self, other: &Self) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(self.0.as_bytes(), other.0.as_bytes())
            .is_ok()
    }
}

impl Eq for Bearer {}

/// The claims of a verified bearer.
///
/// `Debug` shows only the first four characters of `sub`, which is a session id.
///
/// ```
/// use jwt_exchange::session::{BearerKeys, BearerSecret};
/// let keys = BearerKeys::new("https://lakefs.example", "k1", BearerSecret::generate());
/// let claims = keys.verify(keys.mint("abcdefgh", 100, 160).as_str(), 120).unwrap();
/// assert_eq!((claims.sub.as_str(), claims.iat, claims.exp), ("abcdefgh", 100, 160));
/// assert_eq!(format!("{claims:?}"), r#"BearerClaims { sub: "abcd…", iat: 100, exp: 160 }"#);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BearerClaims {
    /// The session id.
    pub sub: String,
    /// When the bearer was minted, Unix seconds.
    pub iat: i64,
    /// When the bearer (and its session) expires, Unix seconds, exclusive.
    pub exp: i64,
}

impl fmt::Debug for BearerClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self
            .sub
            .char_indices()
            .nth(4)
            .map_or(self.sub.len(), |(i, _)| i);
        f.debug_struct("BearerClaims")
            .field("sub", &format_args!("\"{}…\"", &self.sub[..end]))
            .field("iat", &self.iat)
            .field("exp", &self.exp)
            .finish()
    }
}

/// Why a bearer secret was refused or a bearer did not verify.
///
/// Messages never contain token bytes or secrets.
///
/// ```
/// use jwt_exchange::session::{BearerError, BearerKeys, BearerSecret};
/// let keys = BearerKeys::new("https://lakefs.example", "k1", BearerSecret::generate());
/// let b = keys.mint("sid", 100, 160);
/// assert_eq!(keys.verify(b.as_str(), 160), Err(BearerError::Expired { exp: 160, now: 160 }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// A secret is shorter than [`BearerSecret::MIN_LEN`] bytes.
    #[error(
        "bearer secret is {len} bytes; at least {} are required",
        BearerSecret::MIN_LEN
    )]
    SecretTooShort {
        /// The secret's length in bytes.
        len: usize,
    },
    /// The token is longer than [`BearerKeys::MAX_TOKEN_BYTES`].
    #[error("bearer is {len} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Length of the presented token.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token is not a well-formed compact JWS with strict JSON header and claims.
    #[error("malformed bearer: {0}")]
    Malformed(Malformed),
    /// A header parameter is missing (`alg`, `kid`) or has a refused value (`typ`).
    #[error("bearer header parameter `{param}` is missing or not accepted")]
    InvalidHeader {
        /// The parameter name.
        param: &'static str,
    },
    /// `alg` is not exactly `HS256`.
    #[error("bearer `alg` is not HS256")]
    DisallowedAlgorithm,
    /// No signing or verification key has the header's `kid`.
    #[error("no bearer key has this `kid`")]
    UnknownKeyId,
    /// The signature does not verify with the key named by `kid`.
    #[error("bearer signature does not verify")]
    InvalidSignature,
    /// `iss` is not this server's name.
    #[error("bearer `iss` is not this server")]
    WrongIssuer,
    /// `now` is at or after `exp`.
    #[error("bearer expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The time of the check.
        now: i64,
    },
    /// `sub` is the empty string.
    #[error("bearer `sub` is empty")]
    EmptySubject,
}

impl From<Malformed> for BearerError {
    fn from(m: Malformed) -> Self {
        BearerError::Malformed(m)
    }
}

/// One secret and what is precomputed from it.
#[derive(Clone)]
struct Key {
    kid: Box<str>,
    /// `BASE64URL({"alg":"HS256","typ":"JWT","kid":…})`: minted headers, byte for byte, so
    /// the common case needs no JSON parsing.
    header_b64: Box<str>,
    hmac: hmac::Key,
}

impl Key {
    fn new(kid: String, secret: &BearerSecret) -> Self {
        #[derive(Serialize)]
        struct HeaderOut<'a> {
            alg: &'static str,
            typ: &'static str,
            kid: &'a str,
        }
        let json = serde_json::to_vec(&HeaderOut {
            alg: ALG,
            typ: TYP,
            kid: &kid,
        })
        .expect("a struct of strings always serializes");
        Key {
            header_b64: URL_SAFE_NO_PAD.encode(json).into_boxed_str(),
            kid: kid.into_boxed_str(),
            hmac: hmac::Key::new(hmac::HMAC_SHA256, &secret.0),
        }
    }
}

/// The keys that mint and verify bearers: one signing key, plus verification-only keys for
/// secrets being rotated out.
///
/// `Debug` shows the issuer and the key ids, never the secrets.
///
/// Rotation: start signing with a new `kid` and keep the old secret as a verification key
/// until every bearer signed with it has expired (the session TTL), then drop it.
///
/// ```
/// use jwt_exchange::session::{BearerError, BearerKeys, BearerSecret};
/// let old = BearerKeys::new("https://lakefs.example", "2024-01", BearerSecret::from_bytes([1u8; 32].to_vec()).unwrap());
/// let issued_before = old.mint("sid", 0, 3600);
///
/// let new = BearerKeys::new("https://lakefs.example", "2024-02", BearerSecret::generate())
///     .with_verification_key("2024-01", BearerSecret::from_bytes([1u8; 32].to_vec()).unwrap());
/// assert!(new.verify(issued_before.as_str(), 10).is_ok());
/// assert!(new.verify(new.mint("sid", 0, 3600).as_str(), 10).is_ok());
///
/// let newest = BearerKeys::new("https://lakefs.example", "2024-03", BearerSecret::generate());
/// assert_eq!(newest.verify(issued_before.as_str(), 10), Err(BearerError::UnknownKeyId));
/// ```
#[derive(Clone)]
pub struct BearerKeys {
    issuer: Box<str>,
    /// `{"iss":<issuer as JSON>,"sub":` — the start of every minted claim set.
    claims_prefix: Box<str>,
    /// `keys[0]` signs; every key verifies.
    keys: Vec<Key>,
}

impl BearerKeys {
    /// The longest accepted bearer, in bytes. Minted bearers are far shorter (about 200 bytes
    /// for a 43-character session id), provided `sub`, issuer and `kid` are of ordinary size.
    pub const MAX_TOKEN_BYTES: usize = 4096;

    /// Keys that sign with `secret` under `kid` and accept only bearers whose `iss` is
    /// `issuer` (this server's own name).
    ///
    /// ```
    /// use jwt_exchange::session::{BearerKeys, BearerSecret};
    /// let keys = BearerKeys::new("https://lakefs.example", "k1", BearerSecret::generate());
    /// assert_eq!(keys.signing_kid(), "k1");
    /// assert_eq!(keys.issuer(), "https://lakefs.example");
    /// ```
    pub fn new(issuer: impl Into<String>, kid: impl Into<String>, secret: BearerSecret) -> Self {
        let key = Key::new(kid.into(), &secret);
        // The HMAC key holds its own copy; this one is zeroed now.
        drop(secret);
        let issuer = issuer.into();
        let mut claims_prefix = String::from(r#"{"iss":"#);
        claims_prefix
            .push_str(&serde_json::to_string(&issuer).expect("a string always serializes"));
        claims_prefix.push_str(r#","sub":"#);
        BearerKeys {
            issuer: issuer.into_boxed_str(),
            claims_prefix: claims_prefix.into_boxed_str(),
            keys: vec![key],
        }
    }

    /// Also accepts bearers signed with `secret` under `kid` (a secret being rotated out).
    ///
    /// A `kid` already added as a verification key is replaced. The signing `kid` cannot be
    /// replaced: such a call is ignored with a warning log, since the signing secret must
    /// verify what it signs.
    ///
    /// ```
    /// use jwt_exchange::session::{BearerKeys, BearerSecret};
    /// let keys = BearerKeys::new("https://lakefs.example", "new", BearerSecret::generate())
    ///     .with_verification_key("old", BearerSecret::generate());
    /// assert_eq!(keys.kids().collect::<Vec<_>>(), ["new", "old"]);
    /// ```
    #[must_use]
    pub fn with_verification_key(mut self, kid: impl Into<String>, secret: BearerSecret) -> Self {
        let kid = kid.into();
        if *self.keys[0].kid == *kid {
            tracing::warn!(
                target: "jwt_exchange::session",
                kid = %kid,
                "verification key has the signing key's kid; ignored"
            );
            return self;
        }
        let key = Key::new(kid, &secret);
        drop(secret);
        match self.keys[1..].iter_mut().find(|k| k.kid == key.kid) {
            Some(existing) => *existing = key,
            None => self.keys.push(key),
        }
        self
    }

    /// This server's name: the `iss` of every bearer.
    ///
    /// ```
    /// use jwt_exchange::session::{BearerKeys, BearerSecret};
    /// assert_eq!(BearerKeys::new("me", "k", BearerSecret::generate()).issuer(), "me");
    /// ```
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `kid` new bearers are signed under.
    ///
    /// ```
    /// use jwt_exchange::session::{BearerKeys, BearerSecret};
    /// assert_eq!(BearerKeys::new("me", "k", BearerSecret::generate()).signing_kid(), "k");
    /// ```
    pub fn signing_kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// Every accepted `kid`, the signing one first.
    ///
    /// ```
    /// use jwt_exchange::session::{BearerKeys, BearerSecret};
    /// let keys = BearerKeys::new("me", "k", BearerSecret::generate());
    /// assert_eq!(keys.kids().count(), 1);
    /// ```
    pub fn kids(&self) -> impl Iterator<Item = &str> + '_ {
        self.keys.iter().map(|k| &*k.kid)
    }

    /// Mints a bearer for session `sub`, issued at `iat` and expiring at `exp` (Unix seconds).
    ///
    /// ```
    /// use jwt_exchange::session::{BearerKeys, BearerSecret};
    /// let keys = BearerKeys::new("https://lakefs.example", "k1", BearerSecret::generate());
    /// let b = keys.mint("sid", 1_700_000_000, 1_700_003_600);
    /// let claims = keys.verify(b.as_str(), 1_700_000_001).unwrap();
    /// assert_eq!(claims.sub, "sid");
    /// ```
    pub fn mint(&self, sub: &str, iat: i64, exp: i64) -> Bearer {
        let signing = &self.keys[0];
        // The claim set, byte for byte what `serde_json` writes for
        // `{"iss": issuer, "sub": sub, "iat": iat, "exp": exp}`, from the precomputed prefix.
        let mut payload = String::with_capacity(self.claims_prefix.len() + sub.len() + 48);
        payload.push_str(&self.claims_prefix);
        if sub.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            // Nothing to escape (`serde_json` escapes only `"`, `\` and control characters).
            payload.push('"');
            payload.push_str(sub);
            payload.push('"');
        } else {
            payload.push_str(&serde_json::to_string(sub).expect("a string always serializes"));
        }
        payload.push_str(r#","iat":"#);
        push_int(&mut payload, iat);
        payload.push_str(r#","exp":"#);
        push_int(&mut payload, exp);
        payload.push('}');
        let mut token = String::with_capacity(
            signing.header_b64.len() + 2 + payload.len().div_ceil(3) * 4 + TAG_B64_LEN,
        );
        token.push_str(&signing.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload.as_bytes(), &mut token);
        let tag = hmac::sign(&signing.hmac, token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut token);
        Bearer(token)
    }

    /// Verifies `token` at `now` (Unix seconds) and returns its claims.
    ///
    /// Checks, in this order, stopping at the first failure:
    ///
    /// 1. length at most [`BearerKeys::MAX_TOKEN_BYTES`];
    /// 2. three non-empty dot-separated segments;
    /// 3. header: unpadded base64url of a strict JSON object with only `alg`, `kid` and
    ///    optionally `typ`, no repeated member; `alg` exactly `HS256`, `typ` (if present)
    ///    exactly `JWT`, `kid` one of ours (a header byte-identical to a minted one skips the
    ///    parse);
    /// 4. signature: HMAC-SHA256 with that `kid`'s secret, compared in constant time;
    /// 5. claims: unpadded base64url of a strict JSON object with exactly `iss`, `sub`, `iat`,
    ///    `exp` (integers for the times), no repeated member;
    /// 6. `iss` equals this server's name;
    /// 7. `now < exp`, with no leeway: the server is its own clock;
    /// 8. `sub` non-empty.
    ///
    /// Errors never contain token bytes.
    ///
    /// ```
    /// use jwt_exchange::session::{BearerError, BearerKeys, BearerSecret};
    /// let keys = BearerKeys::new("https://lakefs.example", "k1", BearerSecret::generate());
    /// let b = keys.mint("sid", 100, 160);
    /// assert!(keys.verify(b.as_str(), 159).is_ok());
    /// assert_eq!(keys.verify("a.b", 0), Err(BearerError::Malformed(
    ///     jwt_exchange::Malformed::SegmentCount { count: 2 })));
    /// ```
    pub fn verify(&self, token: &str, now: i64) -> Result<BearerClaims, BearerError> {
        self.verify_with(token, now, |sub, iat, exp| BearerClaims {
            sub: sub.to_owned(),
            iat,
            exp,
        })
    }

    /// [`BearerKeys::verify`], handing the checked `sub`, `iat` and `exp` to `f` without
    /// copying `sub` out of the decoded token.
    pub(crate) fn verify_with<R>(
        &self,
        token: &str,
        now: i64,
        f: impl FnOnce(&str, i64, i64) -> R,
    ) -> Result<R, BearerError> {
        if token.len() > Self::MAX_TOKEN_BYTES {
            return Err(BearerError::TooLarge {
                len: token.len(),
                max: Self::MAX_TOKEN_BYTES,
            });
        }
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            let count = token.bytes().filter(|b| *b == b'.').count() + 1;
            return Err(Malformed::SegmentCount { count }.into());
        };
        for (seg, part) in [
            (header, Part::Header),
            (payload, Part::Payload),
            (signature, Part::Signature),
        ] {
            if seg.is_empty() {
                return Err(Malformed::EmptySegment(part).into());
            }
        }

        let key = match self.keys.iter().find(|k| *k.header_b64 == *header) {
            Some(k) => k,
            None => self.key_for_header(header)?,
        };

        let mut tag = [0u8; 64];
        // Longer than any HMAC-SHA256 tag could be encoded (64 bytes): cannot verify.
        if signature.len() > 86 {
            return Err(BearerError::InvalidSignature);
        }
        let tag_len = b64url::decode_to_slice(signature.as_bytes(), &mut tag)
            .map_err(|_| Malformed::Base64(Part::Signature))?;
        let signing_input = &token.as_bytes()[..header.len() + 1 + payload.len()];
        hmac::verify(&key.hmac, signing_input, &tag[..tag_len])
            .map_err(|_| BearerError::InvalidSignature)?;

        // Minted claim sets are about 130 bytes: decode on the stack (same engine and rules as
        // a heap decode; the buffer cannot be too small for the estimate).
        let mut stack = [0u8; PAYLOAD_STACK];
        let heap;
        let bytes: &[u8] = if base64::decoded_len_estimate(payload.len()) <= PAYLOAD_STACK {
            let n = b64url::decode_to_slice(payload.as_bytes(), &mut stack)
                .map_err(|_| Malformed::Base64(Part::Payload))?;
            &stack[..n]
        } else {
            heap = URL_SAFE_NO_PAD
                .decode(payload)
                .map_err(|_| Malformed::Base64(Part::Payload))?;
            &heap
        };
        // A claim set in exactly the minted form is read without the JSON parser (its `iss` is
        // ours by construction); anything else goes through the strict parser.
        let claims = if let Some(c) = minted_claims(bytes, &self.claims_prefix) {
            c
        } else {
            let c: ClaimsIn<'_> = strict_object(bytes, Part::Payload)?;
            if *c.iss != *self.issuer {
                return Err(BearerError::WrongIssuer);
            }
            c
        };
        if now >= claims.exp {
            return Err(BearerError::Expired {
                exp: claims.exp,
                now,
            });
        }
        if claims.sub.is_empty() {
            return Err(BearerError::EmptySubject);
        }
        Ok(f(&claims.sub, claims.iat, claims.exp))
    }

    /// The slow path for a header that is not byte-for-byte one we mint: parse and check it.
    fn key_for_header(&self, header: &str) -> Result<&Key, BearerError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| Malformed::Base64(Part::Header))?;
        let h: HeaderIn<'_> = strict_object(&bytes, Part::Header)?;
        match h.alg.as_deref() {
            None => return Err(BearerError::InvalidHeader { param: "alg" }),
            Some(ALG) => {}
            Some(_) => return Err(BearerError::DisallowedAlgorithm),
        }
        if h.typ.as_deref().is_some_and(|t| t != TYP) {
            return Err(BearerError::InvalidHeader { param: "typ" });
        }
        let kid = h.kid.ok_or(BearerError::InvalidHeader { param: "kid" })?;
        self.keys
            .iter()
            .find(|k| *k.kid == *kid)
            .ok_or(BearerError::UnknownKeyId)
    }
}

impl fmt::Debug for BearerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerKeys")
            .field("issuer", &self.issuer)
            .field("signing_kid", &self.signing_kid())
            .field(
                "verification_kids",
                &self.keys[1..].iter().map(|k| &*k.kid).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The accepted header members. Unknown members and repeated known members are errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderIn<'a> {
    #[serde(borrow, default)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
}

/// The claims, all required. Unknown members and repeated members are errors; the times must
/// be JSON integers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimsIn<'a> {
    #[serde(borrow)]
    iss: Cow<'a, str>,
    #[serde(borrow)]
    sub: Cow<'a, str>,
    iat: i64,
    exp: i64,
}

/// Reads a claim set of exactly the minted form — `prefix` (`{"iss":<ours>,"sub":`), then
/// `"<printable ASCII without \\>","iat":<integer>,"exp":<integer>}` and nothing after — without
/// the JSON parser. `None` for anything else (including forms the parser would accept, such as
/// extra whitespace or escapes): those take the strict path, which decides.
///
/// For every input it accepts, [`strict_object`] yields the same claims: the integers are
/// plain JSON integers of at most 18 digits without leading zeros, and `sub` needs no
/// unescaping.
fn minted_claims<'a>(bytes: &'a [u8], prefix: &str) -> Option<ClaimsIn<'a>> {
    /// A JSON integer of 1 to 18 digits, no leading zero, no `-0`; and the rest of the input.
    fn int(b: &[u8]) -> Option<(i64, &[u8])> {
        let (neg, digits) = match b.split_first() {
            Some((b'-', d)) => (true, d),
            _ => (false, b),
        };
        let mut v = 0i64;
        let mut n = 0;
        while n < digits.len() && digits[n].is_ascii_digit() {
            if n == 18 {
                return None;
            }
            v = v * 10 + i64::from(digits[n] - b'0');
            n += 1;
        }
        // `-0` is a float to serde_json (it keeps the sign), so it is not an integer here.
        if n == 0 || (digits[0] == b'0' && (n > 1 || neg)) {
            return None;
        }
        Some((if neg { -v } else { v }, &digits[n..]))
    }
    let rest = bytes.strip_prefix(prefix.as_bytes())?.strip_prefix(b"\"")?;
    let end = rest.iter().position(|b| *b == b'"')?;
    let (sub, rest) = rest.split_at(end);
    if !sub.iter().all(|b| (0x20..0x7f).contains(b) && *b != b'\\') {
        return None;
    }
    let rest = rest.strip_prefix(br#"","iat":"#)?;
    let (iat, rest) = int(rest)?;
    let (exp, rest) = int(rest.strip_prefix(br#","exp":"#)?)?;
    if rest != b"}" {
        return None;
    }
    Some(ClaimsIn {
        iss: Cow::Borrowed(""),
        sub: Cow::Borrowed(std::str::from_utf8(sub).ok()?),
        iat,
        exp,
    })
}

/// Deserializes a JSON object into `T`, mapping serde's errors onto [`Malformed`].
///
/// serde's derived `Deserialize` rejects a repeated known field ("duplicate field"), and
/// `deny_unknown_fields` rejects every other member, so no member name can appear twice. A
/// derived struct would also accept a JSON array, hence the explicit object check.
fn strict_object<'a, T: Deserialize<'a>>(bytes: &'a [u8], part: Part) -> Result<T, BearerError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Malformed::NotAnObject(part).into());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() && e.to_string().starts_with("duplicate field") {
            Malformed::DuplicateMember(part).into()
        } else {
            Malformed::Json(part).into()
        }
    })
}

/// Appends `n` in decimal, as `serde_json` and `Display` write it.
fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut v = n.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // ASCII digits: one copy instead of a `char` push per digit.
    out.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://lakefs.example";
    const SID: &str = "q5Yk1b0Ai7mG6QnK4ms2cJxS0DqW3pN8uVbT9eLhXyA";

    fn secret(b: u8) -> BearerSecret {
        BearerSecret::from_bytes(vec![b; 32]).unwrap()
    }

    fn keys() -> BearerKeys {
        BearerKeys::new(ISS, "k1", secret(1))
    }

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    /// Signs arbitrary header and payload JSON with `keys`' signing secret.
    fn sign_raw(keys: &BearerKeys, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let tag = hmac::sign(&keys.keys[0].hmac, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    fn payload(iss: &str, exp: i64) -> String {
        format!(r#"{{"iss":"{iss}","sub":"{SID}","iat":100,"exp":{exp}}}"#)
    }

    const HEADER: &str = r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#;

    #[test]
    fn round_trip() {
        let k = keys();
        let b = k.mint(SID, 100, 160);
        let parts: Vec<&str> = b.as_str().split('.').collect();
        assert_eq!(parts[0], b64(HEADER));
        let body: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"iss": ISS, "sub": SID, "iat": 100, "exp": 160})
        );
        assert_eq!(parts[2].len(), TAG_B64_LEN);
        let c = k.verify(b.as_str(), 100).unwrap();
        assert_eq!(
            c,
            BearerClaims {
                sub: SID.to_owned(),
                iat: 100,
                exp: 160
            }
        );
        // Same input, same token; the slow header path accepts what the fast path does.
        assert_eq!(k.mint(SID, 100, 160), b);
        assert_eq!(
            sign_raw(&k, HEADER, &payload(ISS, 160)).split('.').next(),
            Some(parts[0])
        );
    }

    #[test]
    fn expired_at_exactly_exp() {
        let k = keys();
        let b = k.mint(SID, 100, 160);
        assert!(k.verify(b.as_str(), 159).is_ok());
        assert_eq!(
            k.verify(b.as_str(), 160),
            Err(BearerError::Expired { exp: 160, now: 160 })
        );
        assert_eq!(
            k.verify(b.as_str(), 1000),
            Err(BearerError::Expired {
                exp: 160,
                now: 1000
            })
        );
    }

    #[test]
    fn tampering_is_detected() {
        let k = keys();
        let b = k.mint(SID, 100, 160).into_string();
        let parts: Vec<&str> = b.split('.').collect();

        let forged_payload = b64(&payload(ISS, 99_999));
        let t = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_eq!(k.verify(&t, 120), Err(BearerError::InvalidSignature));

        // A different but acceptable header spelling reaches the signature check and fails it.
        let reordered = b64(r#"{"kid":"k1","alg":"HS256"}"#);
        let t = format!("{reordered}.{}.{}", parts[1], parts[2]);
        assert_eq!(k.verify(&t, 120), Err(BearerError::InvalidSignature));

        let mut sig = parts[2].as_bytes().to_vec();
        sig[0] = if sig[0] == b'A' { b'B' } else { b'A' };
        let t = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            String::from_utf8(sig).unwrap()
        );
        assert_eq!(k.verify(&t, 120), Err(BearerError::InvalidSignature));

        let t = format!("{}.{}.{}", parts[0], parts[1], &parts[2][..40]);
        assert_eq!(k.verify(&t, 120), Err(BearerError::InvalidSignature));
        let t = format!("{}.{}.{}", parts[0], parts[1], "A".repeat(200));
        assert_eq!(k.verify(&t, 120), Err(BearerError::InvalidSignature));
        let t = format!("{}.{}.{}=", parts[0], parts[1], parts[2]);
        assert_eq!(
            k.verify(&t, 120),
            Err(BearerError::Malformed(Malformed::Base64(Part::Signature)))
        );
    }

    #[test]
    fn wrong_secret_and_rotation() {
        let b = keys().mint(SID, 100, 160);
        let other = BearerKeys::new(ISS, "k1", secret(2));
        assert_eq!(
            other.verify(b.as_str(), 120),
            Err(BearerError::InvalidSignature)
        );

        let rotated = BearerKeys::new(ISS, "k2", secret(2)).with_verification_key("k1", secret(1));
        assert!(rotated.verify(b.as_str(), 120).is_ok());
        let new = rotated.mint(SID, 100, 160);
        assert!(rotated.verify(new.as_str(), 120).is_ok());
        assert_eq!(
            keys().verify(new.as_str(), 120),
            Err(BearerError::UnknownKeyId)
        );

        let dropped = BearerKeys::new(ISS, "k2", secret(2));
        assert_eq!(
            dropped.verify(b.as_str(), 120),
            Err(BearerError::UnknownKeyId)
        );

        // Replacing a verification key, and refusing to shadow the signing key.
        let replaced = rotated.clone().with_verification_key("k1", secret(3));
        assert_eq!(
            replaced.verify(b.as_str(), 120),
            Err(BearerError::InvalidSignature)
        );
        assert_eq!(replaced.kids().collect::<Vec<_>>(), ["k2", "k1"]);
        let shadow = rotated.clone().with_verification_key("k2", secret(3));
        assert!(shadow.verify(new.as_str(), 120).is_ok());
        assert_eq!(shadow.kids().count(), 2);
    }

    #[test]
    fn wrong_issuer() {
        let theirs = BearerKeys::new("https://other.example", "k1", secret(1));
        let b = theirs.mint(SID, 100, 160);
        assert_eq!(
            keys().verify(b.as_str(), 120),
            Err(BearerError::WrongIssuer)
        );
    }

    #[test]
    fn header_rules() {
        let k = keys();
        let p = payload(ISS, 160);
        let cases: [(&str, BearerError); 10] = [
            (
                r#"{"alg":"none","kid":"k1"}"#,
                BearerError::DisallowedAlgorithm,
            ),
            (
                r#"{"alg":"HS512","typ":"JWT","kid":"k1"}"#,
                BearerError::DisallowedAlgorithm,
            ),
            (
                r#"{"alg":"hs256","kid":"k1"}"#,
                BearerError::DisallowedAlgorithm,
            ),
            (
                r#"{"alg":"RS256","kid":"k1"}"#,
                BearerError::DisallowedAlgorithm,
            ),
            (
                r#"{"kid":"k1"}"#,
                BearerError::InvalidHeader { param: "alg" },
            ),
            (
                r#"{"alg":"HS256"}"#,
                BearerError::InvalidHeader { param: "kid" },
            ),
            (
                r#"{"alg":"HS256","kid":"k1","typ":"at+jwt"}"#,
                BearerError::InvalidHeader { param: "typ" },
            ),
            (r#"{"alg":"HS256","kid":"zz"}"#, BearerError::UnknownKeyId),
            (
                r#"{"alg":"HS256","alg":"HS256","kid":"k1"}"#,
                BearerError::Malformed(Malformed::DuplicateMember(Part::Header)),
            ),
            (
                r#"{"alg":"HS256","kid":"k1","crit":["exp"]}"#,
                BearerError::Malformed(Malformed::Json(Part::Header)),
            ),
        ];
        for (h, want) in cases {
            assert_eq!(k.verify(&sign_raw(&k, h, &p), 120), Err(want), "{h}");
        }
        for h in [
            r#"{"kid":"k1","alg":"HS256"}"#,
            r#"{"alg":"HS256","kid":"k1"}"#,
            HEADER,
        ] {
            assert!(k.verify(&sign_raw(&k, h, &p), 120).is_ok(), "{h}");
        }
        assert_eq!(
            k.verify(&sign_raw(&k, r#"["HS256"]"#, &p), 120),
            Err(BearerError::Malformed(Malformed::NotAnObject(Part::Header)))
        );
        let t = format!("{}=.{}.{}", b64(HEADER), b64(&p), "A".repeat(43));
        assert_eq!(
            k.verify(&t, 120),
            Err(BearerError::Malformed(Malformed::Base64(Part::Header)))
        );
    }

    #[test]
    fn claim_rules() {
        let k = keys();
        let v = |p: &str| k.verify(&sign_raw(&k, HEADER, p), 120);
        let dup = |p| BearerError::Malformed(Malformed::DuplicateMember(p));
        let json = |p| BearerError::Malformed(Malformed::Json(p));
        assert_eq!(
            v(&format!(
                r#"{{"iss":"{ISS}","sub":"{SID}","sub":"other","iat":100,"exp":160}}"#
            )),
            Err(dup(Part::Payload))
        );
        assert_eq!(
            v(&format!(
                r#"{{"iss":"evil","iss":"{ISS}","sub":"{SID}","iat":100,"exp":160}}"#
            )),
            Err(dup(Part::Payload))
        );
        assert_eq!(
            v(&format!(
                r#"{{"iss":"{ISS}","sub":"{SID}","iat":100,"exp":160,"nbf":1}}"#
            )),
            Err(json(Part::Payload))
        );
        assert_eq!(
            v(&format!(
                r#"{{"iss":"{ISS}","sub":"{SID}","iat":100,"exp":160.5}}"#
            )),
            Err(json(Part::Payload))
        );
        assert_eq!(
            v(&format!(
                r#"{{"iss":"{ISS}","sub":"{SID}","iat":100,"exp":"160"}}"#
            )),
            Err(json(Part::Payload))
        );
        assert_eq!(
            v(&format!(r#"{{"iss":"{ISS}","sub":"{SID}","iat":100}}"#)),
            Err(json(Part::Payload))
        );
        assert_eq!(
            v(&format!(r#"{{"iss":"{ISS}","sub":7,"iat":100,"exp":160}}"#)),
            Err(json(Part::Payload))
        );
        assert_eq!(
            v(&format!(r#"["{ISS}","{SID}",100,160]"#)),
            Err(BearerError::Malformed(Malformed::NotAnObject(
                Part::Payload
            )))
        );
        assert_eq!(
            v(&format!(
                r#"{{"iss":"{ISS}","sub":"","iat":100,"exp":160}}"#
            )),
            Err(BearerError::EmptySubject)
        );
        // Checks run in the documented order: iss before exp before sub.
        assert_eq!(
            v(r#"{"iss":"x","sub":"","iat":100,"exp":1}"#),
            Err(BearerError::WrongIssuer)
        );
        assert_eq!(
            v(&format!(r#"{{"iss":"{ISS}","sub":"","iat":100,"exp":1}}"#)),
            Err(BearerError::Expired { exp: 1, now: 120 })
        );
        // Escaped strings are compared after unescaping.
        let escaped = ISS.replace('/', "\\/");
        assert!(v(&format!(
            r#"{{"iss":"{escaped}","sub":"{SID}","iat":100,"exp":160}}"#
        ))
        .is_ok());
    }

    #[test]
    fn structure_rules() {
        let k = keys();
        let b = k.mint(SID, 100, 160).into_string();
        let seg = |count| Err(BearerError::Malformed(Malformed::SegmentCount { count }));
        assert_eq!(k.verify("", 0), seg(1));
        assert_eq!(k.verify("abc", 0), seg(1));
        assert_eq!(k.verify(&format!("{b}.x"), 0), seg(4));
        assert_eq!(k.verify("a.b.c.d.e", 0), seg(5));
        let parts: Vec<&str> = b.split('.').collect();
        assert_eq!(
            k.verify(&format!("{}..{}", parts[0], parts[2]), 0),
            Err(BearerError::Malformed(Malformed::EmptySegment(
                Part::Payload
            )))
        );
        assert_eq!(
            k.verify(&format!("{}.{}.", parts[0], parts[1]), 0),
            Err(BearerError::Malformed(Malformed::EmptySegment(
                Part::Signature
            )))
        );
        let long = "a".repeat(BearerKeys::MAX_TOKEN_BYTES + 1);
        assert_eq!(
            k.verify(&long, 0),
            Err(BearerError::TooLarge {
                len: BearerKeys::MAX_TOKEN_BYTES + 1,
                max: BearerKeys::MAX_TOKEN_BYTES
            })
        );
        // A payload as long as the cap allows still decodes into the stack buffer.
        let big_sub = "s".repeat(BearerKeys::MAX_TOKEN_BYTES);
        let t = k.mint(&big_sub[..3000], 100, 160);
        assert!(t.as_str().len() > BearerKeys::MAX_TOKEN_BYTES);
        assert!(matches!(
            k.verify(t.as_str(), 120),
            Err(BearerError::TooLarge { .. })
        ));
        let t = k.mint(&big_sub[..2900], 100, 160);
        assert!(t.as_str().len() > BearerKeys::MAX_TOKEN_BYTES - 60);
        assert_eq!(k.verify(t.as_str(), 120).unwrap().sub.len(), 2900);
    }

    #[test]
    fn short_secret_rejected() {
        assert_eq!(
            BearerSecret::from_bytes(vec![1u8; 31]).unwrap_err(),
            BearerError::SecretTooShort { len: 31 }
        );
        assert_eq!(
            BearerSecret::from_bytes(Vec::new()).unwrap_err(),
            BearerError::SecretTooShort { len: 0 }
        );
        assert!(BearerSecret::from_bytes(vec![1u8; 64]).is_ok());
        let a = BearerSecret::generate();
        let b = BearerSecret::generate();
        assert_eq!(a.0.len(), BearerSecret::MIN_LEN);
        assert_ne!(a.0, b.0);
    }

    #[test]
    fn debug_output_is_redacted() {
        let raw = b"correct horse battery staple!!!!".to_vec();
        let strong = BearerSecret::from_bytes(raw.clone()).unwrap();
        let dbg = format!("{strong:?}");
        assert_eq!(dbg, "BearerSecret(<redacted>)");
        assert!(!dbg.contains("horse"));

        let keys = BearerKeys::new(ISS, "k1", strong).with_verification_key("k0", secret(9));
        let dbg = format!("{keys:?}");
        assert_eq!(
            dbg,
            format!(
                r#"BearerKeys {{ issuer: "{ISS}", signing_kid: "k1", verification_kids: ["k0"], .. }}"#
            )
        );
        assert!(!dbg.contains("horse"));

        let bearer = keys.mint(SID, 100, 160);
        let dbg = format!("{bearer:?}");
        assert_eq!(dbg, "Bearer(<redacted>)");
        for part in bearer.as_str().split('.') {
            assert!(!dbg.contains(part));
        }

        let claims = keys.verify(bearer.as_str(), 120).unwrap();
        let dbg = format!("{claims:?}");
        assert!(!dbg.contains(SID), "{dbg}");
        assert!(dbg.contains(&format!("\"{}…\"", &SID[..4])), "{dbg}");
        let short = BearerClaims {
            sub: "ab".into(),
            iat: 0,
            exp: 1,
        };
        assert_eq!(
            format!("{short:?}"),
            r#"BearerClaims { sub: "ab…", iat: 0, exp: 1 }"#
        );
        let wide = BearerClaims {
            sub: "ééééé".into(),
            iat: 0,
            exp: 1,
        };
        assert!(format!("{wide:?}").contains("\"éééé…\""));
    }

    #[test]
    fn errors_carry_no_token_bytes() {
        let k = keys();
        let b = k.mint(SID, 100, 160).into_string();
        let parts: Vec<&str> = b.split('.').collect();
        let bad = [
            format!(
                "{}.{}.{}",
                b64(r#"{"alg":"none","kid":"k1"}"#),
                parts[1],
                parts[2]
            ),
            format!("{}.{}.{}", parts[0], b64(&payload(ISS, 1)), parts[2]),
            format!("{}.{}", parts[0], parts[1]),
        ];
        for t in &bad {
            let e = k.verify(t, 120).unwrap_err();
            let msg = format!("{e} {e:?}");
            for part in t.split('.') {
                assert!(!msg.contains(part), "{msg}");
            }
            assert!(!msg.contains(SID));
        }
    }

    #[test]
    fn bearer_equality() {
        let k = keys();
        let a = k.mint(SID, 100, 160);
        assert_eq!(a, a.clone());
        assert_ne!(a, k.mint(SID, 100, 161));
        assert_ne!(a, Bearer::from(String::new()));
    }

    /// The hand-written claim set is byte for byte what `serde_json` writes.
    #[test]
    fn minted_claims_match_serde_json() {
        #[derive(Serialize)]
        struct ClaimsOut<'a> {
            iss: &'a str,
            sub: &'a str,
            iat: i64,
            exp: i64,
        }
        for iss in [ISS, "", "a\"b\\c\u{1}\u{7f}é/"] {
            let k = BearerKeys::new(iss, "k1", secret(1));
            for sub in [
                SID,
                "",
                "quote\"",
                "back\\slash",
                "tab\t",
                "\u{0}",
                "\u{7f}",
                "é👩‍💻",
                "a/b",
            ] {
                for (iat, exp) in [
                    (0, 1),
                    (-5, i64::MAX),
                    (i64::MIN, -1),
                    (9, 10),
                    (-10, 1_764_000_099),
                ] {
                    let token = k.mint(sub, iat, exp);
                    let payload = token.as_str().split('.').nth(1).unwrap();
                    let got = URL_SAFE_NO_PAD.decode(payload).unwrap();
                    let want = serde_json::to_vec(&ClaimsOut { iss, sub, iat, exp }).unwrap();
                    assert_eq!(got, want, "{sub:?}");
                }
            }
        }
    }

    /// The parser-free reading of minted claim sets agrees with the strict parser.
    #[test]
    fn minted_claims_fast_path_agrees_with_the_parser() {
        let k = keys();
        let prefix = &k.claims_prefix;
        let parse = |json: &str| {
            strict_object::<ClaimsIn<'_>>(json.as_bytes(), Part::Payload)
                .ok()
                .map(|c| (c.iss.into_owned(), c.sub.into_owned(), c.iat, c.exp))
        };
        for tail in [
            r#""abc","iat":1,"exp":2}"#,
            r#""","iat":0,"exp":-0}"#,
            r#""a b~","iat":-5,"exp":999999999999999999}"#,
            r#""abc","iat":01,"exp":2}"#,
            r#""abc","iat":1.0,"exp":2}"#,
            r#""abc","iat":1e3,"exp":2}"#,
            r#""abc","iat":1,"exp":2} "#,
            r#""abc","iat":1,"exp":2,"x":1}"#,
            r#""a\"b","iat":1,"exp":2}"#,
            r#""a\u0041","iat":1,"exp":2}"#,
            r#""abc","iat":1,"exp":9999999999999999999}"#,
            r#""abc","iat":-,"exp":2}"#,
            r#""abc","iat":1,"iat":1,"exp":2}"#,
            "\"\u{e9}\",\"iat\":1,\"exp\":2}",
            "\"\t\",\"iat\":1,\"exp\":2}",
        ] {
            let json = format!("{prefix}{tail}");
            let fast = minted_claims(json.as_bytes(), prefix)
                .map(|c| (ISS.to_owned(), c.sub.into_owned(), c.iat, c.exp));
            let slow = parse(&json);
            if let Some(f) = fast {
                assert_eq!(Some(f), slow, "{json}");
            }
        }
        // The minted form itself takes the fast path.
        let b = k.mint(SID, 100, 160);
        let payload = URL_SAFE_NO_PAD
            .decode(b.as_str().split('.').nth(1).unwrap())
            .unwrap();
        let c = minted_claims(&payload, prefix).expect("fast path");
        assert_eq!((&*c.sub, c.iat, c.exp), (SID, 100, 160));
    }
}
