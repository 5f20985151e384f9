//! Groups → policies, and authorization decisions.
//!
//! The configuration (lakeFS/AWS style) maps the group values the IdP emits to policy ids, and
//! policy ids to statements:
//!
//! ```yaml
//! groups:
//!   lakefs-data-engineers: [ReadAll, WriteData]
//! policies:
//!   ReadAll:
//!     statement:
//!       - effect: allow                    # allow | deny
//!         action: ["fs:Read*", "fs:List*"] # `*` or `service:Verb` patterns; string or list
//!         resource: "*"                    # patterns; string or list
//! ```
//!
//! At login, [`Directory::policies_for_groups`] turns the token's groups into policy ids, which
//! the session keeps. On each request, [`authorize`] loads those policies by id and
//! [`evaluate`]s them: an explicit deny wins, then any allow, else the request matches nothing
//! (an implicit deny). Patterns are compiled when the configuration is loaded, so a check does
//! no allocation beyond what the [`Directory`] needs to hand out its policies.
//!
//! ```
//! use jwt_exchange::policy::{authorize, Decision, Directory, PolicyConfig, StaticDirectory};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let cfg: PolicyConfig = serde_json::from_value(serde_json::json!({
//!     "groups": {"lakefs-data-engineers": ["ReadAll", "ProtectProd"]},
//!     "policies": {
//!         "ReadAll": {"statement": [
//!             {"effect": "allow", "action": ["fs:Read*", "fs:List*"], "resource": "*"}
//!         ]},
//!         "ProtectProd": {"statement": [
//!             {"effect": "deny", "action": "fs:*", "resource": "repo/prod/*"}
//!         ]}
//!     }
//! })).unwrap();
//! let dir = StaticDirectory::new(cfg).unwrap();
//! let ids = dir.policies_for_groups(&["lakefs-data-engineers".into()]).await.unwrap();
//! assert_eq!(authorize(&dir, &ids, "fs:ReadObject", "repo/dev/a").await.unwrap(), Decision::Allow);
//! assert_eq!(authorize(&dir, &ids, "fs:ReadObject", "repo/prod/a").await.unwrap(), Decision::Deny);
//! assert_eq!(authorize(&dir, &ids, "fs:WriteObject", "repo/dev/a").await.unwrap(), Decision::NoMatch);
//! # }
//! ```

mod directory;
mod model;
mod pattern;

use std::sync::Arc;

pub use directory::{Directory, DirectoryError, StaticDirectory};
pub use model::{Effect, Policy, PolicyConfig, Statement};
pub use pattern::Pattern;

/// The outcome of an authorization check.
///
/// ```
/// use jwt_exchange::policy::Decision;
/// assert!(Decision::Allow.is_allowed());
/// assert!(!Decision::Deny.is_allowed());
/// assert!(!Decision::NoMatch.is_allowed());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// An allow statement matched and no deny statement did.
    Allow,
    /// An explicit deny statement matched.
    Deny,
    /// No statement matched: an implicit deny.
    NoMatch,
}

impl Decision {
    /// Whether the request may proceed (only [`Decision::Allow`]).
    ///
    /// ```
    /// use jwt_exchange::policy::Decision;
    /// assert!(Decision::Allow.is_allowed());
    /// ```
    pub const fn is_allowed(self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// A stable lowercase name for logs and audit events: `allow`, `deny` or `no_match`.
    ///
    /// ```
    /// use jwt_exchange::policy::Decision;
    /// assert_eq!(Decision::NoMatch.as_str(), "no_match");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::NoMatch => "no_match",
        }
    }
}

/// Decides `action` on `resource` under `policies`: [`Decision::Deny`] if any deny statement
/// matches, else [`Decision::Allow`] if any allow statement matches, else
/// [`Decision::NoMatch`]. The order of policies and statements does not matter.
///
/// ```
/// use std::sync::Arc;
/// use jwt_exchange::policy::{evaluate, Decision, Policy, Statement};
/// let read = Arc::new(Policy::new(vec![Statement::allow(["fs:Read*"], ["*"])]));
/// let no_prod = Arc::new(Policy::new(vec![Statement::deny(["*"], ["repo/prod/*"])]));
/// let both = [read, no_prod];
/// assert_eq!(evaluate(&both, "fs:ReadObject", "repo/dev/x"), Decision::Allow);
/// assert_eq!(evaluate(&both, "fs:ReadObject", "repo/prod/x"), Decision::Deny);
/// assert_eq!(evaluate(&[], "fs:ReadObject", "repo/dev/x"), Decision::NoMatch);
/// ```
pub fn evaluate(policies: &[Arc<Policy>], action: &str, resource: &str) -> Decision {
    let mut decision = Decision::NoMatch;
    for p in policies {
        decision = combine(decision, p.evaluate(action, resource));
        if decision == Decision::Deny {
            break;
        }
    }
    decision
}

/// Loads each of `policy_ids` from `dir` at check time and [`evaluate`]s them, stopping at the
/// first explicit deny. Ids the directory does not know are skipped (logged at `debug`, target
/// `jwt_exchange::policy`): a policy removed from the configuration grants nothing.
///
/// A [`DirectoryError`] means the decision could not be made; callers must treat it as an
/// outage (refuse the request), never as an allow.
///
/// ```
/// use jwt_exchange::policy::{authorize, Decision, Policy, PolicyConfig, StaticDirectory, Statement};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let dir = StaticDirectory::new(PolicyConfig::default()
///     .with_policy("ReadAll", Policy::new(vec![Statement::allow(["fs:Read*"], ["*"])])))
///     .unwrap();
/// let ids = vec!["ReadAll".to_owned(), "Deleted".to_owned()];
/// assert_eq!(authorize(&dir, &ids, "fs:ReadObject", "r").await.unwrap(), Decision::Allow);
/// # }
/// ```
pub async fn authorize(
    dir: &dyn Directory,
    policy_ids: &[String],
    action: &str,
    resource: &str,
) -> Result<Decision, DirectoryError> {
    dir.decide(policy_ids, action, resource).await
}

/// One step of a check: folds policy `id` (`None` when the directory does not know it, which
/// is logged and skipped) into `decision`; `true` once the decision is a deny, which ends the
/// check.
fn step(
    decision: &mut Decision,
    id: &str,
    policy: Option<&Policy>,
    action: &str,
    resource: &str,
) -> bool {
    if let Some(p) = policy {
        *decision = combine(*decision, p.evaluate(action, resource));
    } else {
        tracing::debug!(
            target: "jwt_exchange::policy",
            policy = %id,
            "session references an unknown policy id; skipped"
        );
    }
    *decision == Decision::Deny
}

/// Deny beats allow beats no match.
fn combine(a: Decision, b: Decision) -> Decision {
    match (a, b) {
        (Decision::Deny, _) | (_, Decision::Deny) => Decision::Deny,
        (Decision::Allow, _) | (_, Decision::Allow) => Decision::Allow,
        (Decision::NoMatch, Decision::NoMatch) => Decision::NoMatch,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn policies() -> Vec<Arc<Policy>> {
        let cfg: PolicyConfig = serde_json::from_value(json!({
            "policies": {
                "ReadAll": {"statement": [
                    {"effect":"allow","action":["fs:Read*","fs:List*"],"resource":"*"}
                ]},
                "WriteData": {"statement": [
                    {"effect":"allow","action":"fs:Write*","resource":["repo/data/*","repo/scratch/*"]},
                    {"effect":"deny","action":"fs:WriteConfig","resource":"*"}
                ]},
                "ProtectProd": {"statement": [
                    {"effect":"deny","action":["fs:Write*","fs:Delete*"],"resource":"repo/prod/*"}
                ]}
            }
        }))
        .unwrap();
        cfg.validate().unwrap();
        cfg.policies.into_values().map(Arc::new).collect()
    }

    #[test]
    fn deny_wins_regardless_of_order() {
        let mut ps = policies();
        for _ in 0..ps.len() {
            assert_eq!(
                evaluate(&ps, "fs:ReadObject", "repo/prod/x"),
                Decision::Allow
            );
            assert_eq!(
                evaluate(&ps, "fs:WriteObject", "repo/data/x"),
                Decision::Allow
            );
            assert_eq!(
                evaluate(&ps, "fs:WriteObject", "repo/scratch/x"),
                Decision::Allow
            );
            assert_eq!(
                evaluate(&ps, "fs:WriteConfig", "repo/data/x"),
                Decision::Deny
            );
            assert_eq!(
                evaluate(&ps, "fs:DeleteObject", "repo/prod/x"),
                Decision::Deny
            );
            assert_eq!(
                evaluate(&ps, "fs:DeleteObject", "repo/data/x"),
                Decision::NoMatch
            );
            assert_eq!(evaluate(&ps, "auth:CreateUser", "*"), Decision::NoMatch);
            ps.rotate_left(1);
        }
        ps.reverse();
        assert_eq!(
            evaluate(&ps, "fs:WriteObject", "repo/prod/x"),
            Decision::Deny
        );
    }

    #[test]
    fn combine_is_a_total_order() {
        use Decision::{Allow, Deny, NoMatch};
        for (a, b, want) in [
            (NoMatch, NoMatch, NoMatch),
            (NoMatch, Allow, Allow),
            (Allow, NoMatch, Allow),
            (Allow, Allow, Allow),
            (Allow, Deny, Deny),
            (Deny, Allow, Deny),
            (NoMatch, Deny, Deny),
            (Deny, NoMatch, Deny),
        ] {
            assert_eq!(combine(a, b), want, "{a:?} {b:?}");
        }
    }

    #[tokio::test]
    async fn authorize_reads_policies_at_check_time() {
        let cfg: PolicyConfig = serde_json::from_value(json!({
            "groups": {"eng": ["ReadAll"]},
            "policies": {"ReadAll": {"statement": [
                {"effect":"allow","action":"fs:Read*","resource":"*"}
            ]}}
        }))
        .unwrap();
        let dir = StaticDirectory::new(cfg.clone()).unwrap();
        let ids = dir.policies_for_groups(&["eng".to_owned()]).await.unwrap();
        assert_eq!(
            authorize(&dir, &ids, "fs:ReadObject", "repo/a")
                .await
                .unwrap(),
            Decision::Allow
        );

        // Editing the policy changes the decision for the ids a live session already holds.
        let edited = cfg.clone().with_policy(
            "ReadAll",
            Policy::new(vec![
                Statement::allow(["fs:Read*"], ["*"]),
                Statement::deny(["fs:ReadObject"], ["repo/a"]),
            ]),
        );
        dir.replace(edited).unwrap();
        assert_eq!(
            authorize(&dir, &ids, "fs:ReadObject", "repo/a")
                .await
                .unwrap(),
            Decision::Deny
        );
        assert_eq!(
            authorize(&dir, &ids, "fs:ReadObject", "repo/b")
                .await
                .unwrap(),
            Decision::Allow
        );

        // Removing it (and its group) turns it into an unknown id: nothing is granted.
        dir.replace(PolicyConfig::default()).unwrap();
        assert_eq!(
            authorize(&dir, &ids, "fs:ReadObject", "repo/b")
                .await
                .unwrap(),
            Decision::NoMatch
        );
    }

    #[derive(Debug)]
    struct Down;

    #[async_trait::async_trait]
    impl Directory for Down {
        async fn policies_for_groups(&self, _: &[String]) -> Result<Vec<String>, DirectoryError> {
            Err(DirectoryError::unavailable("down"))
        }
        async fn policy(&self, _: &str) -> Result<Option<Arc<Policy>>, DirectoryError> {
            Err(DirectoryError::unavailable("down"))
        }
    }

    #[tokio::test]
    async fn directory_errors_propagate() {
        let e = authorize(&Down, &["P".to_owned()], "fs:Read", "r")
            .await
            .unwrap_err();
        assert!(matches!(e, DirectoryError::Unavailable(_)));
        // No ids means no lookups, so no error: an empty session simply matches nothing.
        assert_eq!(
            authorize(&Down, &[], "fs:Read", "r").await.unwrap(),
            Decision::NoMatch
        );
    }

    #[test]
    fn authorize_future_is_send() {
        fn assert_send<T: Send>(_: T) {}
        let dir = StaticDirectory::new(PolicyConfig::default()).unwrap();
        assert_send(authorize(&dir, &[], "a", "b"));
    }
}
