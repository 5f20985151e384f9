//! Where group → policy assignments and policy documents come from.

use std::collections::{BTreeMap, HashMap};
use std::error::Error as StdError;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::{Decision, Policy, PolicyConfig};
use crate::ConfigError;

/// The source of policies: which policies a set of IdP groups gets at login, and what a policy
/// says at check time.
///
/// The default is [`StaticDirectory`], built from configuration. An application with its own
/// store (a database, an RBAC service) implements this trait and passes it as
/// `Arc<dyn Directory>`.
///
/// Sessions keep the policy **ids** resolved at login; statements are read through
/// [`Directory::policy`] on every check, so editing a policy changes the decisions of live
/// sessions, while changing a group's assignments only affects later logins.
///
/// ```
/// use std::sync::Arc;
/// use jwt_exchange::policy::{Directory, DirectoryError, Policy, Statement};
///
/// /// Everyone gets one hard-coded policy.
/// #[derive(Debug)]
/// struct ReadOnly(Arc<Policy>);
///
/// #[async_trait::async_trait]
/// impl Directory for ReadOnly {
///     async fn policies_for_groups(&self, _groups: &[String]) -> Result<Vec<String>, DirectoryError> {
///         Ok(vec!["ReadOnly".to_owned()])
///     }
///     async fn policy(&self, id: &str) -> Result<Option<Arc<Policy>>, DirectoryError> {
///         Ok((id == "ReadOnly").then(|| Arc::clone(&self.0)))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let dir = ReadOnly(Arc::new(Policy::new(vec![Statement::allow(["fs:Read*"], ["*"])])));
/// let ids = dir.policies_for_groups(&[]).await.unwrap();
/// let d = jwt_exchange::policy::authorize(&dir, &ids, "fs:ReadObject", "repo/a").await.unwrap();
/// assert!(d.is_allowed());
/// # }
/// ```
#[async_trait::async_trait]
pub trait Directory: Send + Sync + fmt::Debug {
    /// Policy ids attached to these groups (union, deduplicated, sorted). Unmatched groups are
    /// skipped.
    async fn policies_for_groups(&self, groups: &[String]) -> Result<Vec<String>, DirectoryError>;

    /// The current statements of a policy, read at check time (so editing a policy changes live
    /// sessions). `None` when no policy has this id.
    async fn policy(&self, id: &str) -> Result<Option<Arc<Policy>>, DirectoryError>;

    /// Decides `action` on `resource` under the policies `ids`: what
    /// [`authorize`](super::authorize) returns. Policies are taken in order, ids this directory
    /// does not know are skipped (logged at `debug`), and the first explicit deny ends the check.
    ///
    /// The default loads each id through [`Directory::policy`]. Override it only to answer the
    /// same way faster, as [`StaticDirectory`] does (one configuration snapshot for the whole
    /// check, no call per id).
    async fn decide(
        &self,
        ids: &[String],
        action: &str,
        resource: &str,
    ) -> Result<Decision, DirectoryError> {
        let mut decision = Decision::NoMatch;
        for id in ids {
            let policy = self.policy(id).await?;
            if super::step(&mut decision, id, policy.as_deref(), action, resource) {
                break;
            }
        }
        Ok(decision)
    }
}

/// Why a [`Directory`] could not answer.
///
/// ```
/// use jwt_exchange::policy::DirectoryError;
/// let e = DirectoryError::unavailable(std::io::Error::other("connection refused"));
/// assert_eq!(e.to_string(), "policy directory unavailable");
/// assert!(std::error::Error::source(&e).is_some());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The backing store failed; the source says why. This is an outage, not a denial.
    #[error("policy directory unavailable")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),
}

impl DirectoryError {
    /// Wraps a backend error as [`DirectoryError::Unavailable`].
    ///
    /// ```
    /// use jwt_exchange::policy::DirectoryError;
    /// let e = DirectoryError::unavailable("timed out");
    /// assert!(matches!(e, DirectoryError::Unavailable(_)));
    /// ```
    pub fn unavailable(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        DirectoryError::Unavailable(source.into())
    }
}

/// A [`Directory`] holding a validated [`PolicyConfig`] in memory, replaceable at runtime.
///
/// Lookups take a read lock only long enough to clone an `Arc` of the current configuration;
/// [`StaticDirectory::replace`] swaps it, and the next check of every live session sees the new
/// statements. Group values that match no configured group are skipped, logged at `debug`
/// (target `jwt_exchange::policy`) and counted by [`StaticDirectory::unmatched_groups`].
///
/// ```
/// use jwt_exchange::policy::{authorize, Directory, PolicyConfig, StaticDirectory};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cfg: PolicyConfig = serde_json::from_value(serde_json::json!({
///     "groups": {"readers": ["ReadAll"]},
///     "policies": {"ReadAll": {"statement": [
///         {"effect": "allow", "action": "fs:Read*", "resource": "*"}
///     ]}}
/// })).unwrap();
/// let dir = StaticDirectory::new(cfg).unwrap();
/// let ids = dir.policies_for_groups(&["readers".into(), "strangers".into()]).await.unwrap();
/// assert_eq!(ids, ["ReadAll"]);
/// assert_eq!(dir.unmatched_groups(), 1);
/// let d = authorize(&dir, &ids, "fs:ReadObject", "repo/a").await.unwrap();
/// assert!(d.is_allowed());
/// # }
/// ```
pub struct StaticDirectory {
    state: RwLock<Arc<State>>,
    unmatched: AtomicU64,
}

/// One immutable configuration, with policies behind `Arc` so lookups hand out clones cheaply.
#[derive(Debug)]
struct State {
    groups: BTreeMap<String, Vec<String>>,
    policies: BTreeMap<String, Arc<Policy>>,
    /// The policy ids in sorted order (the order of `policies`).
    ids: Box<[String]>,
    /// Each group's policies as positions in `ids`, ascending and without repeats. A login
    /// looks its groups up here (one hash each instead of a B-tree descent of string
    /// comparisons) and merges small integers instead of sorting strings: with 200 groups,
    /// that was about a sixth of a login.
    group_index: HashMap<String, Box<[u32]>>,
}

impl State {
    fn build(cfg: PolicyConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let ids: Box<[String]> = cfg.policies.keys().cloned().collect();
        // `validate` has checked that every attached policy exists; should that ever change,
        // an unknown id is still an error here, never a policy (a deny, say) silently dropped.
        let position = |group: &str, id: &String| {
            ids.binary_search(id)
                .ok()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| {
                    ConfigError::new(
                        format!("groups.{group}"),
                        format!("references undefined policy {id:?}"),
                    )
                })
        };
        let group_index = cfg
            .groups
            .iter()
            .map(|(g, attached)| {
                let mut at = attached
                    .iter()
                    .map(|id| position(g, id))
                    .collect::<Result<Vec<u32>, _>>()?;
                at.sort_unstable();
                at.dedup();
                Ok((g.clone(), at.into_boxed_slice()))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(State {
            groups: cfg.groups,
            policies: cfg
                .policies
                .into_iter()
                .map(|(k, v)| (k, Arc::new(v)))
                .collect(),
            ids,
            group_index,
        })
    }
}

impl StaticDirectory {
    /// Validates `cfg` (see [`PolicyConfig::validate`]) and serves it.
    ///
    /// ```
    /// use jwt_exchange::policy::{PolicyConfig, StaticDirectory};
    /// let bad: PolicyConfig =
    ///     serde_json::from_value(serde_json::json!({"groups": {"g": ["Missing"]}})).unwrap();
    /// assert_eq!(StaticDirectory::new(bad).unwrap_err().key(), "groups.g");
    /// ```
    pub fn new(cfg: PolicyConfig) -> Result<Self, ConfigError> {
        Ok(StaticDirectory {
            state: RwLock::new(Arc::new(State::build(cfg)?)),
            unmatched: AtomicU64::new(0),
        })
    }

    /// Validates `cfg` and makes it the current configuration. On error the old configuration
    /// stays in place.
    ///
    /// ```
    /// use jwt_exchange::policy::{authorize, Policy, PolicyConfig, StaticDirectory, Statement};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let read = PolicyConfig::default()
    ///     .with_policy("P", Policy::new(vec![Statement::allow(["fs:Read*"], ["*"])]));
    /// let dir = StaticDirectory::new(read).unwrap();
    /// let ids = vec!["P".to_owned()];
    /// assert!(!authorize(&dir, &ids, "fs:WriteObject", "r").await.unwrap().is_allowed());
    /// dir.replace(PolicyConfig::default()
    ///     .with_policy("P", Policy::new(vec![Statement::allow(["fs:*"], ["*"])]))).unwrap();
    /// assert!(authorize(&dir, &ids, "fs:WriteObject", "r").await.unwrap().is_allowed());
    /// # }
    /// ```
    pub fn replace(&self, cfg: PolicyConfig) -> Result<(), ConfigError> {
        let next = Arc::new(State::build(cfg)?);
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = next;
        Ok(())
    }

    /// A copy of the current configuration.
    ///
    /// ```
    /// use jwt_exchange::policy::{PolicyConfig, StaticDirectory};
    /// let dir = StaticDirectory::new(PolicyConfig::default()).unwrap();
    /// assert_eq!(dir.config(), PolicyConfig::default());
    /// ```
    pub fn config(&self) -> PolicyConfig {
        let state = self.snapshot();
        let mut cfg = PolicyConfig::default();
        cfg.groups.clone_from(&state.groups);
        cfg.policies = state
            .policies
            .iter()
            .map(|(k, v)| (k.clone(), Policy::clone(v)))
            .collect();
        cfg
    }

    /// How many group values, since start-up, matched no configured group and were skipped.
    ///
    /// ```
    /// use jwt_exchange::policy::{PolicyConfig, StaticDirectory};
    /// let dir = StaticDirectory::new(PolicyConfig::default()).unwrap();
    /// assert_eq!(dir.unmatched_groups(), 0);
    /// ```
    pub fn unmatched_groups(&self) -> u64 {
        self.unmatched.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Arc<State> {
        // The lock only guards an `Arc` swap, so a poisoned lock still holds a valid value.
        Arc::clone(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl fmt::Debug for StaticDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.snapshot();
        f.debug_struct("StaticDirectory")
            .field("groups", &state.groups.len())
            .field("policies", &state.policies.len())
            .field("unmatched_groups", &self.unmatched_groups())
            .finish()
    }
}

#[async_trait::async_trait]
impl Directory for StaticDirectory {
    async fn policies_for_groups(&self, groups: &[String]) -> Result<Vec<String>, DirectoryError> {
        let state = self.snapshot();
        // Typically one policy per group: one allocation, no growth.
        let mut at: Vec<u32> = Vec::with_capacity(groups.len());
        let mut sorted = true;
        for g in groups {
            if let Some(attached) = state.group_index.get(g.as_str()) {
                // Each group's list is sorted; the union needs a sort only if they interleave.
                sorted &= match (at.last(), attached.first()) {
                    (Some(last), Some(first)) => last < first,
                    _ => true,
                };
                at.extend_from_slice(attached);
            } else {
                self.unmatched.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    target: "jwt_exchange::policy",
                    group = %g,
                    "group matches no configured group; skipped"
                );
            }
        }
        if !sorted {
            at.sort_unstable();
            at.dedup();
        }
        Ok(at.iter().map(|&i| state.ids[i as usize].clone()).collect())
    }

    async fn policy(&self, id: &str) -> Result<Option<Arc<Policy>>, DirectoryError> {
        Ok(self.snapshot().policies.get(id).cloned())
    }

    async fn decide(
        &self,
        ids: &[String],
        action: &str,
        resource: &str,
    ) -> Result<Decision, DirectoryError> {
        let state = self.snapshot();
        let mut decision = Decision::NoMatch;
        for id in ids {
            let policy = state.policies.get(id.as_str()).map(|p| &**p);
            if super::step(&mut decision, id, policy, action, resource) {
                break;
            }
        }
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy::Statement;

    fn dir() -> StaticDirectory {
        let cfg: PolicyConfig = serde_json::from_value(json!({
            "groups": {
                "engineers": ["ReadAll", "WriteData"],
                "readers": ["ReadAll"],
                "nobody": []
            },
            "policies": {
                "ReadAll": {"statement": [{"effect":"allow","action":["fs:Read*","fs:List*"],"resource":"*"}]},
                "WriteData": {"statement": [{"effect":"allow","action":"fs:Write*","resource":"repo/data/*"}]}
            }
        }))
        .unwrap();
        StaticDirectory::new(cfg).unwrap()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[tokio::test]
    async fn union_sorted_deduplicated() {
        let d = dir();
        let ids = d
            .policies_for_groups(&s(&["readers", "engineers", "readers", "nobody"]))
            .await
            .unwrap();
        assert_eq!(ids, s(&["ReadAll", "WriteData"]));
        assert_eq!(d.unmatched_groups(), 0);
        assert!(d.policies_for_groups(&[]).await.unwrap().is_empty());
    }

    /// The group index gives what the plain definition gives: the union of the groups'
    /// policy ids, sorted and without repeats, over many overlapping and interleaving groups
    /// (lists in any order, with repeats) and token group lists with repeats and strangers.
    #[tokio::test]
    async fn group_index_matches_the_union_of_the_configured_lists() {
        let mut rng = crate::test_rng(0x853C_49E6_748F_EA9B);
        let mut next = |n: u64| rng() % n;
        let allow = || Policy::new(vec![Statement::allow(["a:*"], ["*"])]);
        let mut cfg = PolicyConfig::default();
        for p in 0..40 {
            cfg = cfg.with_policy(format!("P{p:02}"), allow());
        }
        for g in 0..30 {
            let attached: Vec<String> = (0..next(5)).map(|_| format!("P{:02}", next(40))).collect();
            cfg = cfg.with_group(format!("g{g}"), attached);
        }
        let d = StaticDirectory::new(cfg.clone()).unwrap();
        for _ in 0..500 {
            let groups: Vec<String> = (0..next(8)).map(|_| format!("g{}", next(35))).collect();
            let expected: Vec<String> = groups
                .iter()
                .filter_map(|g| cfg.groups.get(g))
                .flatten()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(
                d.policies_for_groups(&groups).await.unwrap(),
                expected,
                "{groups:?}"
            );
        }
    }

    #[tokio::test]
    async fn unmatched_groups_are_skipped_and_counted() {
        let d = dir();
        let ids = d
            .policies_for_groups(&s(&["Readers", "readers", "admins"]))
            .await
            .unwrap();
        assert_eq!(ids, s(&["ReadAll"]));
        assert_eq!(d.unmatched_groups(), 2, "group ids are case-sensitive");
        d.policies_for_groups(&s(&["x"])).await.unwrap();
        assert_eq!(d.unmatched_groups(), 3);
    }

    #[tokio::test]
    async fn policy_lookup_and_replace() {
        let d = dir();
        assert!(d.policy("ReadAll").await.unwrap().is_some());
        assert!(d.policy("Nope").await.unwrap().is_none());
        let before = d.policy("ReadAll").await.unwrap().unwrap();

        let next = d.config().with_policy(
            "ReadAll",
            Policy::new(vec![Statement::allow(["fs:ReadObject"], ["repo/a"])]),
        );
        d.replace(next).unwrap();
        let after = d.policy("ReadAll").await.unwrap().unwrap();
        assert_ne!(before, after);
        assert_eq!(
            after.statement[0],
            Statement::allow(["fs:ReadObject"], ["repo/a"])
        );
        // A snapshot handed out earlier is unaffected.
        assert_eq!(before.statement[0].action.len(), 2);
    }

    #[tokio::test]
    async fn invalid_replace_keeps_the_old_config() {
        let d = dir();
        let old = d.config();
        let bad = old.clone().with_group("g", ["Missing"]);
        assert_eq!(d.replace(bad).unwrap_err().key(), "groups.g");
        assert_eq!(d.config(), old);
    }

    #[test]
    fn debug_is_a_summary() {
        let d = dir();
        assert_eq!(
            format!("{d:?}"),
            "StaticDirectory { groups: 3, policies: 2, unmatched_groups: 0 }"
        );
    }
}
