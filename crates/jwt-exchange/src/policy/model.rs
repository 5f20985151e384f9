//! Policy documents: statements, policies and the `groups`/`policies` configuration block.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::{Decision, Pattern};
use crate::ConfigError;

/// Whether a matching statement grants or refuses.
///
/// Written in lowercase in configuration: `allow` or `deny`.
///
/// ```
/// use jwt_exchange::policy::Effect;
/// let e: Effect = serde_json::from_value(serde_json::json!("deny")).unwrap();
/// assert_eq!(e, Effect::Deny);
/// assert!(serde_json::from_value::<Effect>(serde_json::json!("Deny")).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Grants the matched actions, unless a deny statement also matches.
    Allow,
    /// Refuses the matched actions, whatever any allow statement says.
    Deny,
}

/// One rule: an effect on every (action, resource) pair matched by one of `action` and one of
/// `resource`.
///
/// `action` and `resource` accept a single string or a list. Unknown keys are an error.
///
/// ```
/// use jwt_exchange::policy::{Effect, Statement};
/// let s: Statement = serde_json::from_value(serde_json::json!({
///     "effect": "allow",
///     "action": ["fs:Read*", "fs:List*"],
///     "resource": "repo/data/*"
/// })).unwrap();
/// assert_eq!(s.effect, Effect::Allow);
/// assert!(s.matches("fs:ListObjects", "repo/data/x"));
/// assert!(!s.matches("fs:WriteObject", "repo/data/x"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Statement {
    /// `allow` or `deny`.
    pub effect: Effect,
    /// `service:Verb` patterns, or `*`. A string or a list.
    #[serde(deserialize_with = "one_or_many")]
    pub action: Vec<Pattern>,
    /// Resource patterns (`*`, `repo/data/*`, …). A string or a list.
    #[serde(deserialize_with = "one_or_many")]
    pub resource: Vec<Pattern>,
}

impl Statement {
    /// A statement with the given effect, actions and resources.
    ///
    /// ```
    /// use jwt_exchange::policy::{Effect, Statement};
    /// let s = Statement::new(Effect::Deny, ["fs:Delete*"], ["*"]);
    /// assert!(s.matches("fs:DeleteObject", "repo/x"));
    /// ```
    pub fn new<A, R>(effect: Effect, action: A, resource: R) -> Self
    where
        A: IntoIterator,
        A::Item: Into<Pattern>,
        R: IntoIterator,
        R::Item: Into<Pattern>,
    {
        Statement {
            effect,
            action: action.into_iter().map(Into::into).collect(),
            resource: resource.into_iter().map(Into::into).collect(),
        }
    }

    /// An `allow` statement.
    ///
    /// ```
    /// use jwt_exchange::policy::{Effect, Statement};
    /// assert_eq!(Statement::allow(["fs:*"], ["*"]).effect, Effect::Allow);
    /// ```
    pub fn allow<A, R>(action: A, resource: R) -> Self
    where
        A: IntoIterator,
        A::Item: Into<Pattern>,
        R: IntoIterator,
        R::Item: Into<Pattern>,
    {
        Statement::new(Effect::Allow, action, resource)
    }

    /// A `deny` statement.
    ///
    /// ```
    /// use jwt_exchange::policy::{Effect, Statement};
    /// assert_eq!(Statement::deny(["fs:*"], ["*"]).effect, Effect::Deny);
    /// ```
    pub fn deny<A, R>(action: A, resource: R) -> Self
    where
        A: IntoIterator,
        A::Item: Into<Pattern>,
        R: IntoIterator,
        R::Item: Into<Pattern>,
    {
        Statement::new(Effect::Deny, action, resource)
    }

    /// Whether one action pattern matches `action` and one resource pattern matches `resource`.
    ///
    /// ```
    /// use jwt_exchange::policy::Statement;
    /// let s = Statement::allow(["fs:Read*"], ["repo/*"]);
    /// assert!(s.matches("fs:ReadObject", "repo/a"));
    /// assert!(!s.matches("fs:ReadObject", "other/a"));
    /// ```
    pub fn matches(&self, action: &str, resource: &str) -> bool {
        self.action.iter().any(|p| p.matches(action))
            && self.resource.iter().any(|p| p.matches(resource))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.action.is_empty() {
            return Err(ConfigError::new("action", "must list at least one action"));
        }
        for a in &self.action {
            let s = a.as_str();
            if s == "*" {
                continue;
            }
            let mut halves = s.split(':');
            let ok = matches!(
                (halves.next(), halves.next(), halves.next()),
                (Some(service), Some(verb), None) if !service.is_empty() && !verb.is_empty()
            );
            if !ok {
                return Err(ConfigError::new(
                    "action",
                    format!("{s:?} is not `*` or a `service:Verb` pattern"),
                ));
            }
        }
        if self.resource.is_empty() {
            return Err(ConfigError::new(
                "resource",
                "must list at least one resource",
            ));
        }
        if self.resource.iter().any(|r| r.as_str().is_empty()) {
            return Err(ConfigError::new(
                "resource",
                "resource patterns must not be empty",
            ));
        }
        Ok(())
    }
}

/// A named set of statements. Unknown keys are an error.
///
/// ```
/// use jwt_exchange::policy::{Decision, Policy};
/// let p: Policy = serde_json::from_value(serde_json::json!({
///     "statement": [
///         {"effect": "allow", "action": "fs:*", "resource": "*"},
///         {"effect": "deny", "action": "fs:Delete*", "resource": "repo/prod/*"}
///     ]
/// })).unwrap();
/// assert_eq!(p.evaluate("fs:ReadObject", "repo/prod/a"), Decision::Allow);
/// assert_eq!(p.evaluate("fs:DeleteObject", "repo/prod/a"), Decision::Deny);
/// assert_eq!(p.evaluate("auth:CreateUser", "*"), Decision::NoMatch);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Policy {
    /// The statements, in no meaningful order: a matching deny wins over any allow.
    pub statement: Vec<Statement>,
}

impl Policy {
    /// A policy made of `statements`.
    ///
    /// ```
    /// use jwt_exchange::policy::{Policy, Statement};
    /// let p = Policy::new(vec![Statement::allow(["fs:Read*"], ["*"])]);
    /// assert_eq!(p.statement.len(), 1);
    /// ```
    pub fn new(statements: impl Into<Vec<Statement>>) -> Self {
        Policy {
            statement: statements.into(),
        }
    }

    /// The decision of this policy alone: [`Decision::Deny`] if a deny statement matches, else
    /// [`Decision::Allow`] if an allow statement matches, else [`Decision::NoMatch`].
    ///
    /// ```
    /// use jwt_exchange::policy::{Decision, Policy, Statement};
    /// let p = Policy::new(vec![Statement::allow(["fs:Read*"], ["*"])]);
    /// assert!(p.evaluate("fs:ReadObject", "repo/a").is_allowed());
    /// assert_eq!(p.evaluate("fs:WriteObject", "repo/a"), Decision::NoMatch);
    /// ```
    pub fn evaluate(&self, action: &str, resource: &str) -> Decision {
        let mut decision = Decision::NoMatch;
        for s in &self.statement {
            // An allow that already matched cannot change the outcome unless a deny follows, so
            // later allow statements are skipped without matching.
            if s.effect == Effect::Allow && decision == Decision::Allow {
                continue;
            }
            if s.matches(action, resource) {
                match s.effect {
                    Effect::Deny => return Decision::Deny,
                    Effect::Allow => decision = Decision::Allow,
                }
            }
        }
        decision
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.statement.is_empty() {
            return Err(ConfigError::new(
                "statement",
                "must contain at least one statement",
            ));
        }
        for (i, s) in self.statement.iter().enumerate() {
            s.validate()
                .map_err(|e| e.under(&format!("statement[{i}]")))?;
        }
        Ok(())
    }
}

/// The `groups` and `policies` configuration block: which policies each IdP group gets, and
/// what each policy says. Both default to empty; unknown keys are an error.
///
/// Group ids are the values the IdP emits in the groups claim (`groups_claim_ref`); a group
/// that is not listed here grants nothing.
///
/// ```
/// use jwt_exchange::policy::PolicyConfig;
/// let cfg: PolicyConfig = serde_json::from_value(serde_json::json!({
///     "groups": {"lakefs-data-engineers": ["ReadAll", "WriteData"]},
///     "policies": {
///         "ReadAll": {"statement": [
///             {"effect": "allow", "action": ["fs:Read*", "fs:List*"], "resource": "*"}
///         ]},
///         "WriteData": {"statement": [
///             {"effect": "allow", "action": "fs:Write*", "resource": "repo/data/*"}
///         ]}
///     }
/// })).unwrap();
/// cfg.validate().unwrap();
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyConfig {
    /// Group id → ids of the policies attached to it. Defaults to empty.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Policy id → policy. Defaults to empty.
    pub policies: BTreeMap<String, Policy>,
}

impl PolicyConfig {
    /// Attaches policies to a group (replacing what the group had).
    ///
    /// ```
    /// use jwt_exchange::policy::{Policy, PolicyConfig, Statement};
    /// let cfg = PolicyConfig::default()
    ///     .with_policy("ReadAll", Policy::new(vec![Statement::allow(["fs:Read*"], ["*"])]))
    ///     .with_group("readers", ["ReadAll"]);
    /// cfg.validate().unwrap();
    /// ```
    #[must_use]
    pub fn with_group<I, S>(mut self, group: impl Into<String>, policies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups
            .insert(group.into(), policies.into_iter().map(Into::into).collect());
        self
    }

    /// Adds (or replaces) a policy.
    ///
    /// ```
    /// use jwt_exchange::policy::{Policy, PolicyConfig, Statement};
    /// let cfg = PolicyConfig::default()
    ///     .with_policy("ReadAll", Policy::new(vec![Statement::allow(["fs:Read*"], ["*"])]));
    /// assert!(cfg.policies.contains_key("ReadAll"));
    /// ```
    #[must_use]
    pub fn with_policy(mut self, id: impl Into<String>, policy: Policy) -> Self {
        self.policies.insert(id.into(), policy);
        self
    }

    /// Checks what serde cannot: every group names existing policies, every policy has at least
    /// one statement, actions are `*` or `service:Verb` patterns (exactly one `:`, both sides
    /// non-empty), and every statement has at least one non-empty resource pattern.
    ///
    /// The error key is the path of the offending value, such as `groups.readers` or
    /// `policies.ReadAll.statement[0].action`.
    ///
    /// ```
    /// use jwt_exchange::policy::PolicyConfig;
    /// let cfg: PolicyConfig = serde_json::from_value(serde_json::json!({
    ///     "groups": {"readers": ["ReadAll"]}
    /// })).unwrap();
    /// assert_eq!(cfg.validate().unwrap_err().key(), "groups.readers");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (group, ids) in &self.groups {
            if group.is_empty() {
                return Err(ConfigError::new("groups", "group ids must not be empty"));
            }
            if let Some(missing) = ids.iter().find(|id| !self.policies.contains_key(*id)) {
                return Err(ConfigError::new(
                    format!("groups.{group}"),
                    format!("references policy {missing:?}, which is not defined under `policies`"),
                ));
            }
        }
        for (id, policy) in &self.policies {
            if id.is_empty() {
                return Err(ConfigError::new("policies", "policy ids must not be empty"));
            }
            policy
                .validate()
                .map_err(|e| e.under(&format!("policies.{id}")))?;
        }
        Ok(())
    }
}

/// Deserializes a single pattern or a list of them.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Pattern>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<Pattern>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Vec<Pattern>, E> {
            Ok(vec![Pattern::new(s)])
        }
        fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Vec<Pattern>, E> {
            Ok(vec![Pattern::from(s)])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Pattern>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(p) = seq.next_element::<Pattern>()? {
                out.push(p);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cfg(v: serde_json::Value) -> PolicyConfig {
        serde_json::from_value(v).unwrap()
    }

    fn key_of(v: serde_json::Value) -> String {
        cfg(v).validate().unwrap_err().key().to_owned()
    }

    #[test]
    fn string_or_list() {
        let one: Statement =
            serde_json::from_value(json!({"effect":"allow","action":"fs:Read*","resource":"*"}))
                .unwrap();
        let many: Statement = serde_json::from_value(
            json!({"effect":"allow","action":["fs:Read*"],"resource":["*"]}),
        )
        .unwrap();
        assert_eq!(one, many);
        assert_eq!(one, Statement::allow(["fs:Read*"], ["*"]));
        let e = serde_json::from_value::<Statement>(
            json!({"effect":"allow","action":7,"resource":"*"}),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("a string or a list of strings"),
            "{e}"
        );
        let e = serde_json::from_value::<Statement>(
            json!({"effect":"allow","action":[7],"resource":"*"}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
    }

    #[test]
    fn unknown_fields_are_rejected_everywhere() {
        for (v, field) in [
            (json!({"groups":{}, "policy":{}}), "policy"),
            (json!({"policies":{"P":{"statement":[], "id":"P"}}}), "id"),
            (
                json!({"policies":{"P":{"statement":[{"effect":"allow","action":"*","resource":"*","sid":"x"}]}}}),
                "sid",
            ),
        ] {
            let e = serde_json::from_value::<PolicyConfig>(v)
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("unknown field `{field}`")), "{e}");
        }
    }

    #[test]
    fn effect_is_lowercase_only() {
        let bad = json!({"effect":"Allow","action":"*","resource":"*"});
        assert!(serde_json::from_value::<Statement>(bad).is_err());
        let missing = json!({"action":"*","resource":"*"});
        let e = serde_json::from_value::<Statement>(missing)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `effect`"), "{e}");
    }

    #[test]
    fn defaults_are_empty() {
        let c = cfg(json!({}));
        assert_eq!(c, PolicyConfig::default());
        c.validate().unwrap();
    }

    #[test]
    fn validation_keys() {
        assert_eq!(
            key_of(json!({"groups":{"readers":["ReadAll"]}})),
            "groups.readers"
        );
        assert_eq!(
            key_of(json!({"policies":{"ReadAll":{"statement":[]}}})),
            "policies.ReadAll.statement"
        );
        for bad in [
            json!("Read"),
            json!("fs:Read:x"),
            json!(":Read"),
            json!("fs:"),
            json!(""),
        ] {
            let v = json!({"policies":{"ReadAll":{"statement":[
                {"effect":"allow","action":"fs:Read*","resource":"*"},
                {"effect":"allow","action":["fs:List*", bad],"resource":"*"}
            ]}}});
            assert_eq!(key_of(v), "policies.ReadAll.statement[1].action", "{bad}");
        }
        assert_eq!(
            key_of(json!({"policies":{"ReadAll":{"statement":[
                {"effect":"allow","action":[],"resource":"*"}
            ]}}})),
            "policies.ReadAll.statement[0].action"
        );
        assert_eq!(
            key_of(json!({"policies":{"ReadAll":{"statement":[
                {"effect":"allow","action":"fs:Read*","resource":[]}
            ]}}})),
            "policies.ReadAll.statement[0].resource"
        );
        assert_eq!(
            key_of(json!({"policies":{"ReadAll":{"statement":[
                {"effect":"allow","action":"fs:Read*","resource":["repo/*", ""]}
            ]}}})),
            "policies.ReadAll.statement[0].resource"
        );
        assert_eq!(key_of(json!({"groups":{"":[]}})), "groups");
        let e = cfg(json!({"groups":{"readers":["Nope"]}}))
            .validate()
            .unwrap_err();
        assert!(e.reason().contains("\"Nope\""), "{e}");
    }

    #[test]
    fn valid_actions() {
        let c = cfg(json!({
            "groups": {"g": ["P"], "empty": []},
            "policies": {"P": {"statement": [
                {"effect":"allow","action":["*","fs:*","*:Read*","fs:ReadObject"],"resource":"*"}
            ]}}
        }));
        c.validate().unwrap();
    }

    #[test]
    fn policy_evaluation_deny_wins_within_a_policy() {
        let p = Policy::new(vec![
            Statement::allow(["fs:*"], ["*"]),
            Statement::deny(["fs:Delete*"], ["repo/prod/*"]),
            Statement::allow(["fs:DeleteObject"], ["repo/prod/*"]),
        ]);
        assert_eq!(p.evaluate("fs:DeleteObject", "repo/prod/x"), Decision::Deny);
        assert_eq!(p.evaluate("fs:DeleteObject", "repo/dev/x"), Decision::Allow);
        assert_eq!(p.evaluate("auth:ListUsers", "*"), Decision::NoMatch);
        assert_eq!(
            Policy::default().evaluate("fs:Read", "x"),
            Decision::NoMatch
        );
    }

    #[test]
    fn serializes_back_to_the_same_shape() {
        let v = json!({
            "groups": {"g": ["P"]},
            "policies": {"P": {"statement": [
                {"effect":"deny","action":["fs:*"],"resource":["repo/*"]}
            ]}}
        });
        let c = cfg(v.clone());
        assert_eq!(serde_json::to_value(&c).unwrap(), v);
    }
}
