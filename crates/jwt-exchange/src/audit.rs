//! Audit events and counters.
//!
//! Every login (success and failure, with the failed check's name), revocation and
//! authorization decision emits a `tracing` event on target [`TARGET`] with the fields
//! `event`, `outcome`, `principal_type`, and where known `subject`, `session_id`, `issuer`.
//! Neither the external token nor the bearer is ever a field. Filter with
//! `RUST_LOG=jwt_exchange::audit=info`.
//!
//! Session ids appear in audit events so an operator can correlate and revoke; a session id is
//! not a credential (a bearer also needs the server's HMAC secret).
//!
//! Strings that come from a request or a token (`subject`, `issuer`, `action`, `resource`) are
//! written through [`Text`]: a line break or another control character in them becomes an
//! escape (`\n`, `\u{1b}`), so a crafted `resource` cannot start a forged line in a text log;
//! every other character (quotes, non-ASCII) is written as it is, so JSON logs hold the value
//! itself.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::policy::Decision;

/// The `tracing` target of audit events.
pub const TARGET: &str = "jwt_exchange::audit";

/// A request- or token-supplied string for a log field, with control characters (and the
/// Unicode line and paragraph separators) escaped as `char::escape_default` writes them.
pub(crate) struct Text<'a>(pub(crate) &'a str);

impl std::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// Counters of an [`crate::Exchange`], for metrics endpoints.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    logins_ok: AtomicU64,
    logins_failed: Mutex<BTreeMap<&'static str, u64>>,
    allow: AtomicU64,
    deny: AtomicU64,
    no_match: AtomicU64,
    revocations: AtomicU64,
}

/// A snapshot of an exchange's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Successful logins.
    pub logins_succeeded: u64,
    /// Failed logins by the failed check's name (`exp`, `signature`, `store`, ...).
    pub logins_failed: BTreeMap<&'static str, u64>,
    /// Authorization decisions: allowed.
    pub decisions_allow: u64,
    /// Authorization decisions: explicit deny.
    pub decisions_deny: u64,
    /// Authorization decisions: no statement matched.
    pub decisions_no_match: u64,
    /// Sessions revoked.
    pub sessions_revoked: u64,
}

impl Counters {
    pub(crate) fn login_ok(&self) {
        self.logins_ok.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn login_failed(&self, check: &'static str) {
        let mut m = self
            .logins_failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry(check).or_default() += 1;
    }

    pub(crate) fn decision(&self, d: Decision) {
        match d {
            Decision::Allow => &self.allow,
            Decision::Deny => &self.deny,
            Decision::NoMatch => &self.no_match,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn revoked(&self, n: u64) {
        self.revocations.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Metrics {
        Metrics {
            logins_succeeded: self.logins_ok.load(Ordering::Relaxed),
            logins_failed: self
                .logins_failed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            decisions_allow: self.allow.load(Ordering::Relaxed),
            decisions_deny: self.deny.load(Ordering::Relaxed),
            decisions_no_match: self.no_match.load(Ordering::Relaxed),
            sessions_revoked: self.revocations.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod text_tests {
    use super::Text;

    #[test]
    fn text_escapes_control_characters_only() {
        let t = |s: &str| Text(s).to_string();
        assert_eq!(t("o'brien \"q\" ünï"), "o'brien \"q\" ünï");
        assert_eq!(t("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(t("\u{1b}[31m\u{0}\u{2028}"), "\\u{1b}[31m\\u{0}\\u{2028}");
    }
}
