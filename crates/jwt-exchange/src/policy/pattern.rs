//! `*` wildcard patterns, compiled once.

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An action or resource pattern where `*` matches any sequence of characters, the empty one
/// included. Everything else is literal and matching is case-sensitive.
///
/// The pattern is split on `*` when it is built, so [`Pattern::matches`] never allocates: it
/// checks the literal prefix and suffix, then finds each literal middle part left to right.
///
/// ```
/// use jwt_exchange::policy::Pattern;
/// let p = Pattern::new("fs:Read*");
/// assert!(p.matches("fs:ReadObject"));
/// assert!(p.matches("fs:Read"));
/// assert!(!p.matches("fs:readObject"));
/// assert!(Pattern::new("repo/*/data/*").matches("repo/a/data/b.parquet"));
/// assert!(Pattern::new("*").matches(""));
/// ```
#[derive(Clone)]
pub struct Pattern {
    source: Box<str>,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    /// Only stars: matches everything.
    Any,
    /// No star: the whole string must equal the source.
    Exact,
    /// `prefix*middle*…*suffix`, as byte ranges into the source.
    Wild {
        prefix: Range<usize>,
        middles: Box<[Range<usize>]>,
        suffix: Range<usize>,
    },
}

impl Pattern {
    /// Compiles `pattern`. Every string is a valid pattern.
    ///
    /// ```
    /// use jwt_exchange::policy::Pattern;
    /// assert_eq!(Pattern::new("fs:*").as_str(), "fs:*");
    /// ```
    pub fn new(pattern: &str) -> Self {
        Self::from_boxed(pattern.into())
    }

    fn from_boxed(source: Box<str>) -> Self {
        let kind = if !source.contains('*') {
            Kind::Exact
        } else if source.bytes().all(|b| b == b'*') {
            Kind::Any
        } else {
            let mut parts = Vec::new();
            let mut start = 0;
            for (i, b) in source.bytes().enumerate() {
                if b == b'*' {
                    parts.push(start..i);
                    start = i + 1;
                }
            }
            parts.push(start..source.len());
            // At least one star, so at least two parts: the first is the prefix, the last the
            // suffix; empty middles (from `**`) match nothing specific and are dropped.
            let suffix = parts.pop().unwrap_or_default();
            let prefix = parts.remove(0);
            let middles: Box<[Range<usize>]> =
                parts.into_iter().filter(|r| !r.is_empty()).collect();
            Kind::Wild {
                prefix,
                middles,
                suffix,
            }
        };
        Pattern { source, kind }
    }

    /// The pattern as written.
    ///
    /// ```
    /// use jwt_exchange::policy::Pattern;
    /// assert_eq!(Pattern::new("repo/*").as_str(), "repo/*");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern is only stars, so it matches every string.
    ///
    /// ```
    /// use jwt_exchange::policy::Pattern;
    /// assert!(Pattern::new("*").is_any());
    /// assert!(!Pattern::new("fs:*").is_any());
    /// ```
    pub fn is_any(&self) -> bool {
        matches!(self.kind, Kind::Any)
    }

    /// Whether `s` matches the whole pattern.
    ///
    /// ```
    /// use jwt_exchange::policy::Pattern;
    /// let p = Pattern::new("a*b*c");
    /// assert!(p.matches("abc"));
    /// assert!(p.matches("a-b-c"));
    /// assert!(!p.matches("ac"));
    /// ```
    pub fn matches(&self, s: &str) -> bool {
        match &self.kind {
            Kind::Any => true,
            Kind::Exact => *self.source == *s,
            Kind::Wild {
                prefix,
                middles,
                suffix,
            } => {
                let src = &*self.source;
                // Stripping the prefix first and the suffix from what remains means the two can
                // never overlap (`a*a` does not match `a`).
                let Some(rest) = s.strip_prefix(&src[prefix.clone()]) else {
                    return false;
                };
                let Some(mut rest) = rest.strip_suffix(&src[suffix.clone()]) else {
                    return false;
                };
                // Leftmost match of each middle part is optimal for `*`-only globs: taking the
                // earliest occurrence leaves the most room for the parts after it.
                for m in &**middles {
                    let needle = &src[m.clone()];
                    match rest.find(needle) {
                        Some(i) => rest = &rest[i + needle.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl std::hash::Hash for Pattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.source.hash(state);
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl From<&str> for Pattern {
    fn from(s: &str) -> Self {
        Pattern::new(s)
    }
}

impl From<String> for Pattern {
    fn from(s: String) -> Self {
        Pattern::from_boxed(s.into_boxed_str())
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Pattern::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::new(p).matches(s)
    }

    #[test]
    fn literal_is_exact_and_case_sensitive() {
        assert!(m("fs:ReadObject", "fs:ReadObject"));
        assert!(!m("fs:ReadObject", "fs:readobject"));
        assert!(!m("fs:ReadObject", "fs:ReadObjectX"));
        assert!(!m("fs:ReadObject", "fs:ReadObjec"));
        assert!(!m("fs:Read?", "fs:ReadX"), "only `*` is special");
        assert!(m("fs:Read?", "fs:Read?"));
    }

    #[test]
    fn star_alone_matches_everything() {
        for p in ["*", "**", "***"] {
            assert!(Pattern::new(p).is_any());
            for s in ["", "a", "fs:Read", "repo/a/b"] {
                assert!(m(p, s), "{p} {s}");
            }
        }
    }

    #[test]
    fn prefix_suffix_and_middle() {
        assert!(m("fs:Read*", "fs:Read"));
        assert!(m("fs:Read*", "fs:ReadObject"));
        assert!(!m("fs:Read*", "fs:Rea"));
        assert!(!m("fs:Read*", "xfs:Read"));

        assert!(m("*Object", "fs:ReadObject"));
        assert!(m("*Object", "Object"));
        assert!(!m("*Object", "fs:ReadObjects"));

        assert!(m("repo/*/data", "repo/x/data"));
        assert!(m("repo/*/data", "repo//data"));
        assert!(m("repo/*/data", "repo/a/b/data"));
        assert!(!m("repo/*/data", "repo/data"));
        assert!(!m("repo/*/data", "repo/x/data/y"));
    }

    #[test]
    fn several_stars() {
        assert!(m("*a*b*", "ab"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b*", "ba"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "abbbc"));
        assert!(
            m("a*b*c", "acbc"),
            "leftmost middle must not block a later suffix"
        );
        assert!(!m("a*b*c", "acb"));
        assert!(m("a**b", "ab"));
        assert!(m("a**b", "a-b"));
        assert!(m("*aa*aa*", "aaaa"));
        assert!(!m("*aa*aa*", "aaa"));
        assert!(!m("a*a", "a"), "prefix and suffix must not overlap");
        assert!(m("a*a", "aa"));
    }

    #[test]
    fn empty_pattern_and_empty_input() {
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(!m("a*", ""));
        assert!(!m("*a", ""));
        assert!(m("*", ""));
    }

    #[test]
    fn non_ascii_literals() {
        assert!(m("dépôt/*", "dépôt/é"));
        assert!(m("*ö*", "aöb"));
        assert!(!m("*ö*", "aob"));
    }

    #[test]
    fn serde_and_equality_use_the_source() {
        let p: Pattern = serde_json::from_value(serde_json::json!("fs:*")).unwrap();
        assert_eq!(p, Pattern::new("fs:*"));
        assert_eq!(serde_json::to_value(&p).unwrap(), serde_json::json!("fs:*"));
        assert_eq!(format!("{p:?}"), r#"Pattern("fs:*")"#);
        assert_eq!(p.to_string(), "fs:*");
        assert!(serde_json::from_value::<Pattern>(serde_json::json!(3)).is_err());
    }
}
