//! Session records, session ids, and the bearer token that carries a session id to clients.
//!
//! A successful exchange creates a [`Session`]: who logged in ([`Session::subject`]), through
//! which issuer, with which groups and policies, and until when. The record lives in a
//! [`SessionStore`](crate::store::SessionStore) under a random [`SessionId`]; deleting it revokes
//! the session at once.
//!
//! [`SessionId`] is a secret: its `Debug` shows only the first four characters, it has no
//! `Display`, and it compares in constant time.
//!
//! [`BearerKeys`] mints and verifies the [`Bearer`] handed out at login (its `sub` is the
//! session id).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::secs_i64;

mod bearer;
mod id_pool;

pub use bearer::*;

/// Random bytes in a session id.
const ID_BYTES: usize = 32;

/// A random, unguessable session id: 256 bits from the system CSPRNG, encoded as base64url
/// without padding (always [`SessionId::LEN`] characters).
///
/// Only canonical encodings parse, so every id has exactly one spelling and attacker input can
/// never become an odd store key. `Debug` is redacted, there is no `Display` (use
/// [`SessionId::as_str`] where the raw value is really needed), and `==` runs in constant time.
///
/// ```
/// use jwt_exchange::session::SessionId;
///
/// let id = SessionId::generate();
/// assert_eq!(id.as_str().len(), SessionId::LEN);
/// assert_eq!(SessionId::parse(id.as_str()), Ok(id.clone()));
/// assert!(format!("{id:?}").ends_with("…)"));
/// assert!(SessionId::parse("not-an-id").is_err());
/// ```
// Held inline (43 ASCII bytes, `Copy`-cheap to clone): no allocation per id, and a hash-map
// key that compares without chasing a pointer.
#[derive(Clone)]
pub struct SessionId([u8; SessionId::LEN]);

/// Why a string is not a [`SessionId`]. Never carries the input, which may be a secret.
///
/// ```
/// use jwt_exchange::session::{InvalidSessionId, SessionId};
///
/// assert_eq!(SessionId::parse("abc"), Err(InvalidSessionId::Length { len: 3 }));
/// assert_eq!(SessionId::parse(&"*".repeat(43)), Err(InvalidSessionId::Encoding));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidSessionId {
    /// The input does not have [`SessionId::LEN`] characters.
    #[error("session id must be {} characters, got {len}", SessionId::LEN)]
    Length {
        /// The input's length in bytes.
        len: usize,
    },
    /// The input is not canonical unpadded base64url.
    #[error("session id is not canonical base64url")]
    Encoding,
}

impl SessionId {
    /// Length of every session id, in characters (256 bits as unpadded base64url).
    pub const LEN: usize = 43;

    /// A fresh id: 256 bits from the system CSPRNG (AWS-LC's `RAND_bytes`).
    ///
    /// The bits are drawn a kilobyte at a time into a per-thread pool and handed out once each
    /// (the handed-out bytes are wiped from the pool): one `RAND_bytes` call costs about as much
    /// for 1 KiB as for 32 bytes on the machines we measured, so this takes an id's share of a
    /// login from ~0.6 µs to ~20 ns. As with any user-space CSPRNG pool (`rand`'s
    /// `ThreadRng`), a process that `fork`s without `exec` after drawing ids must not draw ids
    /// in both parent and child; Rust servers do not do that (see `docs/security.md`).
    ///
    /// ```
    /// use jwt_exchange::session::SessionId;
    /// assert_ne!(SessionId::generate(), SessionId::generate());
    /// ```
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails, which leaves no safe way to
    /// mint a secret.
    pub fn generate() -> Self {
        let bytes = id_pool::draw();
        let mut out = [0u8; Self::LEN];
        let n = URL_SAFE_NO_PAD
            .encode_slice(bytes, &mut out)
            .expect("32 bytes encode to 43 characters");
        debug_assert_eq!(n, Self::LEN);
        SessionId(out)
    }

    /// Parses an id, accepting only the exact form [`SessionId::generate`] produces: 43
    /// characters of the base64url alphabet that decode, canonically, to 32 bytes.
    ///
    /// ```
    /// use jwt_exchange::session::SessionId;
    ///
    /// let id = SessionId::generate();
    /// assert!(SessionId::parse(id.as_str()).is_ok());
    /// assert!(SessionId::parse(&format!("{} ", id.as_str())).is_err());
    /// assert!(SessionId::parse(&"+".repeat(43)).is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, InvalidSessionId> {
        if s.len() != Self::LEN {
            return Err(InvalidSessionId::Length { len: s.len() });
        }
        let b = s.as_bytes();
        if b.iter().any(|&c| crate::b64url::symbol(c).is_none()) {
            return Err(InvalidSessionId::Encoding);
        }
        // Canonical: 43 symbols carry 258 bits for 256, so the last symbol's two low bits must
        // be zero; then each id has exactly one spelling (what canonical decoding with
        // `URL_SAFE_NO_PAD` accepts, without decoding).
        if crate::b64url::symbol(b[Self::LEN - 1]).is_none_or(|v| v & 0x03 != 0) {
            return Err(InvalidSessionId::Encoding);
        }
        let mut out = [0u8; Self::LEN];
        out.copy_from_slice(b);
        Ok(SessionId(out))
    }

    /// The id as sent to and from clients and used as a store key.
    ///
    /// ```
    /// use jwt_exchange::session::SessionId;
    /// let id = SessionId::generate();
    /// assert_eq!(id.as_str().len(), 43);
    /// ```
    pub fn as_str(&self) -> &str {
        // Only `generate` and `parse` build ids, and both leave 43 base64url (ASCII) bytes.
        std::str::from_utf8(&self.0).expect("session ids are ASCII")
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.as_str().get(..4).unwrap_or("");
        write!(f, "SessionId({prefix}…)")
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }
}

impl Eq for SessionId {}

impl Hash for SessionId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Fixed length, so no length prefix is needed to keep the encoding prefix-free.
        state.write(&self.0);
    }
}

impl FromStr for SessionId {
    type Err = InvalidSessionId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        SessionId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A server-side session: the result of one successful token exchange.
///
/// Build one with [`Session::new`] and the `with_*` methods. The fields are public for reading;
/// `#[non_exhaustive]` keeps new fields from being a breaking change. `Debug` redacts the id.
///
/// ```
/// use jwt_exchange::session::{Session, SessionId};
///
/// let s = Session::new(SessionId::generate(), "https://idp.example", "alice", 1_000, 4_600)
///     .with_groups(["admins", "dev"])
///     .with_policies(["FSFullAccess"])
///     .with_jti(Some("token-1".to_owned()));
/// assert_eq!(s.subject, "jwt:https://idp.example:alice");
/// assert_eq!(s.principal_type, "session");
/// assert!(!s.is_expired(4_599));
/// assert!(s.is_expired(4_600));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Session {
    /// The session's id (the store key).
    pub id: SessionId,
    /// Always [`Session::PRINCIPAL_TYPE`].
    pub principal_type: String,
    /// `jwt:<issuer>:<identity>`, see [`Session::subject_for`].
    pub subject: String,
    /// The identity extracted from the external token.
    pub identity: String,
    /// The external token's issuer.
    pub issuer: String,
    /// Groups extracted from the external token.
    pub groups: Vec<String>,
    /// Ids of the policies the session was granted.
    pub policies: Vec<String>,
    /// When the session was created, in Unix seconds.
    pub created_at: i64,
    /// When the session stops being valid, in Unix seconds (exclusive).
    pub expires_at: i64,
    /// The external token's `jti`, if it had one.
    pub jti: Option<String>,
}

impl Session {
    /// The [`Session::principal_type`] of every session.
    pub const PRINCIPAL_TYPE: &'static str = "session";

    /// A session for `identity` at `issuer`, valid from `created_at` until `expires_at` (Unix
    /// seconds), with no groups, no policies and no `jti`.
    ///
    /// ```
    /// use jwt_exchange::session::{Session, SessionId};
    /// let s = Session::new(SessionId::generate(), "iss", "bob", 10, 20);
    /// assert_eq!(s.subject, Session::subject_for("iss", "bob"));
    /// assert!(s.groups.is_empty() && s.policies.is_empty() && s.jti.is_none());
    /// ```
    pub fn new(
        id: SessionId,
        issuer: impl Into<String>,
        identity: impl Into<String>,
        created_at: i64,
        expires_at: i64,
    ) -> Self {
        let issuer = issuer.into();
        let identity = identity.into();
        Session {
            id,
            principal_type: Self::PRINCIPAL_TYPE.to_owned(),
            subject: Self::subject_for(&issuer, &identity),
            identity,
            issuer,
            groups: Vec::new(),
            policies: Vec::new(),
            created_at,
            expires_at,
            jti: None,
        }
    }

    /// Sets the groups.
    ///
    /// ```
    /// use jwt_exchange::session::{Session, SessionId};
    /// let s = Session::new(SessionId::generate(), "iss", "bob", 10, 20).with_groups(["a", "b"]);
    /// assert_eq!(s.groups, ["a", "b"]);
    /// ```
    #[must_use]
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the policy ids.
    ///
    /// ```
    /// use jwt_exchange::session::{Session, SessionId};
    /// let s = Session::new(SessionId::generate(), "iss", "bob", 10, 20).with_policies(vec!["p".to_owned()]);
    /// assert_eq!(s.policies, ["p"]);
    /// ```
    #[must_use]
    pub fn with_policies<I, S>(mut self, policies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.policies = policies.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the external token's `jti`.
    ///
    /// ```
    /// use jwt_exchange::session::{Session, SessionId};
    /// let s = Session::new(SessionId::generate(), "iss", "bob", 10, 20).with_jti(Some("j1".into()));
    /// assert_eq!(s.jti.as_deref(), Some("j1"));
    /// ```
    #[must_use]
    pub fn with_jti(mut self, jti: Option<String>) -> Self {
        self.jti = jti;
        self
    }

    /// The subject string for `identity` at `issuer`: `jwt:<issuer>:<identity>`.
    ///
    /// The format is plain concatenation, so it is only unambiguous when no configured issuer
    /// is a `:`-prefix of another followed by something an identity could also start with
    /// (e.g. `https://idp` and `https://idp:8443`).
    ///
    /// ```
    /// use jwt_exchange::session::Session;
    /// assert_eq!(Session::subject_for("https://idp.example", "alice"), "jwt:https://idp.example:alice");
    /// ```
    pub fn subject_for(issuer: &str, identity: &str) -> String {
        // `format!("jwt:{issuer}:{identity}")`, without the formatting machinery (login path).
        let mut s = String::with_capacity(5 + issuer.len() + identity.len());
        s.push_str("jwt:");
        s.push_str(issuer);
        s.push(':');
        s.push_str(identity);
        s
    }

    /// Whether the session has expired at `now` (Unix seconds): `now >= expires_at`.
    ///
    /// ```
    /// use jwt_exchange::session::{Session, SessionId};
    /// let s = Session::new(SessionId::generate(), "iss", "bob", 10, 20);
    /// assert!(!s.is_expired(19));
    /// assert!(s.is_expired(20));
    /// ```
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }

    /// Time left at `now` (Unix seconds); zero once expired. Useful for stores with native TTLs.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jwt_exchange::session::{Session, SessionId};
    /// let s = Session::new(SessionId::generate(), "iss", "bob", 10, 20);
    /// assert_eq!(s.remaining(15), Duration::from_secs(5));
    /// assert_eq!(s.remaining(25), Duration::ZERO);
    /// ```
    pub fn remaining(&self, now: i64) -> Duration {
        Duration::from_secs(u64::try_from(self.expires_at.saturating_sub(now)).unwrap_or(0))
    }
}

/// When a session created at `now` expires: `min(now + max_ttl, token_exp)`, saturating.
///
/// A session never outlives the external token that created it.
///
/// ```
/// use std::time::Duration;
/// use jwt_exchange::session::session_expiry;
///
/// let hour = Duration::from_secs(3600);
/// assert_eq!(session_expiry(1_000, hour, 100_000), 4_600);
/// assert_eq!(session_expiry(1_000, hour, 2_000), 2_000);
/// ```
pub fn session_expiry(now: i64, max_ttl: Duration, token_exp: i64) -> i64 {
    now.saturating_add(secs_i64(max_ttl)).min(token_exp)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn generated_ids_are_canonical_and_distinct() {
        let ids: HashSet<SessionId> = (0..1000).map(|_| SessionId::generate()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.as_str().len(), SessionId::LEN);
            assert_eq!(SessionId::parse(id.as_str()).as_ref(), Ok(id));
        }
    }

    #[test]
    fn parse_accepts_exactly_the_canonical_encodings() {
        let id = SessionId::generate();
        let prefix = &id.as_str()[..SessionId::LEN - 1];
        for c in (0u8..=255).filter(u8::is_ascii_graphic) {
            let s = format!("{prefix}{}", char::from(c));
            let canonical = URL_SAFE_NO_PAD
                .decode(&s)
                .is_ok_and(|b| b.len() == ID_BYTES && URL_SAFE_NO_PAD.encode(&b) == s);
            assert_eq!(SessionId::parse(&s).is_ok(), canonical, "{s}");
        }
    }

    #[test]
    fn parse_rejects_everything_else() {
        let good = SessionId::generate();
        let s = good.as_str();
        assert_eq!(
            SessionId::parse(""),
            Err(InvalidSessionId::Length { len: 0 })
        );
        assert_eq!(
            SessionId::parse(&s[..42]),
            Err(InvalidSessionId::Length { len: 42 })
        );
        assert_eq!(
            SessionId::parse(&format!("{s}A")),
            Err(InvalidSessionId::Length { len: 44 })
        );
        // Standard (not url-safe) alphabet, padding, whitespace, non-ASCII.
        for bad in ['+', '/', '=', ' ', '.'] {
            let t = format!("{}{bad}", &s[..42]);
            assert_eq!(SessionId::parse(&t), Err(InvalidSessionId::Encoding), "{t}");
        }
        let t = format!("{}é", &s[..41]);
        assert_eq!(t.len(), 43);
        assert_eq!(SessionId::parse(&t), Err(InvalidSessionId::Encoding));
        // Non-canonical: last char carries non-zero padding bits ('B' = 000001).
        let t = format!("{}B", &"A".repeat(42));
        assert_eq!(SessionId::parse(&t), Err(InvalidSessionId::Encoding));
        let t = format!("{}E", &"A".repeat(42));
        assert!(SessionId::parse(&t).is_ok());
    }

    #[test]
    fn debug_is_redacted() {
        let id = SessionId::generate();
        let dbg = format!("{id:?}");
        assert_eq!(dbg, format!("SessionId({}…)", &id.as_str()[..4]));
        let s = Session::new(id.clone(), "iss", "alice", 1, 2);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains(id.as_str()), "{dbg}");
        assert!(dbg.contains("alice"));
    }

    #[test]
    fn equality_and_hash() {
        let a = SessionId::generate();
        let b = SessionId::parse(a.as_str()).expect("valid");
        assert_eq!(a, b);
        assert_ne!(a, SessionId::generate());
        let set: HashSet<_> = [a.clone(), b].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn serde_roundtrip_validates() {
        let s = Session::new(SessionId::generate(), "https://i", "ü 👩‍💻", 5, 10)
            .with_groups(["g1", "g2"])
            .with_policies(["p"])
            .with_jti(Some("j".into()));
        let json = serde_json::to_string(&s).expect("serialize");
        let back: Session = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, s);
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(v["id"], s.id.as_str());
        assert_eq!(v["principal_type"], "session");
        assert_eq!(v["subject"], "jwt:https://i:ü 👩‍💻");

        let err = serde_json::from_str::<SessionId>("\"short\"");
        assert!(err.is_err());
        let ok: SessionId =
            serde_json::from_str(&format!("\"{}\"", s.id.as_str())).expect("valid id");
        assert_eq!(ok, s.id);
    }

    #[test]
    fn expiry_helpers() {
        let s = Session::new(SessionId::generate(), "i", "a", 0, 100);
        assert!(!s.is_expired(99));
        assert!(s.is_expired(100));
        assert_eq!(s.remaining(40), Duration::from_secs(60));
        assert_eq!(s.remaining(i64::MIN), Duration::from_secs(i64::MAX as u64));
        assert_eq!(s.remaining(101), Duration::ZERO);
        assert_eq!(session_expiry(10, Duration::from_secs(5), 100), 15);
        assert_eq!(session_expiry(10, Duration::from_secs(500), 100), 100);
        assert_eq!(
            session_expiry(i64::MAX - 1, Duration::MAX, i64::MAX),
            i64::MAX
        );
    }
}
