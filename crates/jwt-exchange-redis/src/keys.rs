//! The key layout: which Redis keys hold what, and which hash slot each lands in.
//!
//! Everything is under the configured prefix `P`. A session belongs to one of [`BUCKETS`]
//! buckets, chosen by the first character of its (uniformly random) id, and every key that a
//! single-session operation touches carries the bucket's hash tag `{P:b}`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{P:b}:s:<session id>` | string | the session as JSON, expiring natively at `expires_at` |
//! | `{P:b}:u:<subject>` | sorted set | ids of the subject's sessions in bucket `b`, scored by `expires_at` |
//! | `{P:b}:x` | sorted set | ids of all sessions in bucket `b`, scored by `expires_at` (for `sweep`) |
//! | `P:j:<len(issuer)>:<issuer>:<jti>` | string | a claimed `jti`, expiring natively |
//!
//! Because the tag only depends on the id, `get` needs nothing but the id, and `create` /
//! `delete` touch keys of one slot only, so their Lua scripts are atomic on Redis Cluster too.

use jwt_exchange::session::SessionId;

/// Number of buckets a store's sessions are spread over (hash slots on Redis Cluster).
///
/// Part of the key layout: changing it would make existing sessions unreachable.
pub(crate) const BUCKETS: u8 = 16;

/// Builds the keys of one store (one prefix).
#[derive(Debug, Clone)]
pub(crate) struct KeySpace {
    prefix: String,
}

impl KeySpace {
    /// A key space for a validated prefix.
    pub(crate) fn new(prefix: &str) -> Self {
        KeySpace {
            prefix: prefix.to_owned(),
        }
    }

    /// The bucket of a session id: the low four bits of its first base64url character.
    pub(crate) fn bucket_of(id: &SessionId) -> u8 {
        let first = id.as_str().as_bytes().first().copied().unwrap_or(b'A');
        sextet(first) % BUCKETS
    }

    /// `{P:b}` for bucket `b`.
    fn tag(&self, bucket: u8) -> String {
        format!("{{{}:{bucket:x}}}", self.prefix)
    }

    /// `{P:b}:s:<id>`.
    pub(crate) fn session(&self, id: &SessionId) -> String {
        format!("{}:s:{}", self.tag(Self::bucket_of(id)), id.as_str())
    }

    /// `{P:b}:s:<id>` for an id already known to be in `bucket`.
    pub(crate) fn session_in(&self, bucket: u8, id: &str) -> String {
        format!("{}:s:{id}", self.tag(bucket))
    }

    /// `{P:b}:u:<subject>`.
    pub(crate) fn subject(&self, bucket: u8, subject: &str) -> String {
        format!("{}:u:{subject}", self.tag(bucket))
    }

    /// `{P:b}:x`.
    pub(crate) fn expiry(&self, bucket: u8) -> String {
        format!("{}:x", self.tag(bucket))
    }

    /// `P:j:<len(issuer)>:<issuer>:<jti>`; the length makes `("a", "b:c")` and `("a:b", "c")`
    /// different keys.
    pub(crate) fn jti(&self, issuer: &str, jti: &str) -> String {
        format!("{}:j:{}:{issuer}:{jti}", self.prefix, issuer.len())
    }

    /// A `SCAN MATCH` pattern for every key of this store (tests and tooling).
    pub(crate) fn patterns(&self) -> [String; 2] {
        // Glob metacharacters in the prefix are escaped.
        let p: String = self
            .prefix
            .chars()
            .flat_map(|c| match c {
                '*' | '?' | '[' | ']' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        [format!("\\{{{p}:?\\}}:*"), format!("{p}:j:*")]
    }
}

/// The value (0..64) of a base64url character.
fn sextet(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        _ => 63,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn layout() {
        let ks = KeySpace::new("jwtx");
        let id = SessionId::parse(&format!("B{}", "A".repeat(41) + "E")).expect("id");
        assert_eq!(KeySpace::bucket_of(&id), 1);
        assert_eq!(ks.session(&id), format!("{{jwtx:1}}:s:{}", id.as_str()));
        assert_eq!(ks.subject(1, "jwt:i:a"), "{jwtx:1}:u:jwt:i:a");
        assert_eq!(ks.expiry(15), "{jwtx:f}:x");
        assert_eq!(ks.jti("a", "b:c"), "jwtx:j:1:a:b:c");
        assert_eq!(ks.jti("a:b", "c"), "jwtx:j:3:a:b:c");
        assert_eq!(ks.patterns(), ["\\{jwtx:?\\}:*", "jwtx:j:*"]);
        assert_eq!(KeySpace::new("a*b").patterns()[1], "a\\*b:j:*");
    }

    #[test]
    fn buckets_are_uniform() {
        let mut counts = HashMap::new();
        for _ in 0..16_000 {
            *counts
                .entry(KeySpace::bucket_of(&SessionId::generate()))
                .or_insert(0) += 1;
        }
        assert_eq!(counts.len(), usize::from(BUCKETS));
        assert!(
            counts.values().all(|&n| (700..1300).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn sextets() {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for (i, c) in alphabet.iter().enumerate() {
            assert_eq!(usize::from(sextet(*c)), i);
        }
    }
}
