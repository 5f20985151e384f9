//! Provider configuration (serde). Key names follow lakeFS's `auth.providers.jwt` block.
//!
//! See `docs/configuration.md` for the full reference.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::Algorithm;

/// One identity provider: where its keys are, which tokens it may issue, how to read them.
///
/// Durations are humantime strings (`60s`, `5m`, `1h`). Unknown keys are an error.
///
/// ```
/// use jwt_exchange::ProviderConfig;
/// let yaml_like = serde_json::json!({
///     "jwks_url": "https://login.microsoftonline.com/TENANT/discovery/v2.0/keys",
///     "issuer": "https://login.microsoftonline.com/TENANT/v2.0",
///     "audiences": ["api://lakefs"],
///     "required_claims": {"tid": "TENANT"},
///     "leeway": "30s"
/// });
/// let p: ProviderConfig = serde_json::from_value(yaml_like).unwrap();
/// p.validate().unwrap();
/// assert_eq!(p.identity_claim_ref, "/oid");
/// assert_eq!(p.session_max_ttl, std::time::Duration::from_secs(3600));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// URL of the IdP's JWKS document. One of `jwks_url` and `discovery_url` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// OpenID Connect discovery document URL (`.../.well-known/openid-configuration`); its
    /// `issuer` must equal [`ProviderConfig::issuer`] and its `jwks_uri` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// Exact value `iss` must equal. Required.
    pub issuer: String,
    /// Accepted `aud` values; one match passes. Empty skips the audience check (a warning is
    /// logged at start-up). Defaults to empty.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// RFC 6901 JSON Pointer to the principal id. Defaults to `/oid`.
    #[serde(default = "default_identity_ref")]
    pub identity_claim_ref: String,
    /// RFC 6901 JSON Pointer to the group/role list. Defaults to `/roles`.
    #[serde(default = "default_groups_ref")]
    pub groups_claim_ref: String,
    /// Cap on a session's lifetime. Defaults to 1 h.
    #[serde(default = "default_session_max_ttl", with = "duration")]
    pub session_max_ttl: Duration,
    /// Clock-skew tolerance for `exp`, `nbf` and `iat`. Defaults to 60 s.
    #[serde(default = "default_leeway", with = "duration")]
    pub leeway: Duration,
    /// Period of the expired-session sweep. Defaults to 5 min.
    #[serde(default = "default_cleanup_interval", with = "duration")]
    pub cleanup_interval: Duration,
    /// Claim → exact string value every token must carry (a key starting with `/` is a JSON
    /// Pointer). Defaults to none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub required_claims: BTreeMap<String, String>,
    /// Algorithm allow-list. Defaults to every supported asymmetric algorithm.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// Accepted `typ` header values when the header has one. Defaults to `JWT`, `at+jwt`,
    /// `application/at+jwt`.
    #[serde(default = "default_allowed_types")]
    pub allowed_types: Vec<String>,
    /// Largest accepted token, in bytes. Defaults to 16 KiB.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// When set, tokens whose `iat` is older than this are refused (`iat` becomes required).
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_token_age: Option<Duration>,
    /// Period of the background JWKS refresh. Defaults to 15 min.
    #[serde(default = "default_jwks_refresh_interval", with = "duration")]
    pub jwks_refresh_interval: Duration,
    /// Minimum gap between refetches caused by an unknown `kid`. Defaults to 30 s.
    #[serde(default = "default_jwks_refetch_cooldown", with = "duration")]
    pub jwks_refetch_cooldown: Duration,
    /// How long the last good key set keeps serving while the IdP is unreachable. Defaults to
    /// 24 h.
    #[serde(default = "default_jwks_max_stale", with = "duration")]
    pub jwks_max_stale: Duration,
    /// Timeout of one JWKS or discovery request. Defaults to 5 s.
    #[serde(default = "default_jwks_timeout", with = "duration")]
    pub jwks_timeout: Duration,
    /// Allows `http://` JWKS and discovery URLs on hosts other than loopback. Defaults to
    /// `false`: keys fetched over plain HTTP can be replaced by anyone on the path.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_allow_http: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

fn default_identity_ref() -> String {
    "/oid".to_owned()
}
fn default_groups_ref() -> String {
    "/roles".to_owned()
}
fn default_session_max_ttl() -> Duration {
    Duration::from_secs(3600)
}
fn default_leeway() -> Duration {
    Duration::from_secs(60)
}
fn default_cleanup_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_algorithms() -> Vec<Algorithm> {
    Algorithm::ALL.to_vec()
}
fn default_allowed_types() -> Vec<String> {
    vec!["JWT".into(), "at+jwt".into(), "application/at+jwt".into()]
}
fn default_max_token_bytes() -> usize {
    16 * 1024
}
fn default_jwks_refresh_interval() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_jwks_refetch_cooldown() -> Duration {
    Duration::from_secs(30)
}
fn default_jwks_max_stale() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_jwks_timeout() -> Duration {
    Duration::from_secs(5)
}

impl ProviderConfig {
    /// A provider whose keys are at `jwks_url`, with every other setting at its default.
    pub fn new(issuer: impl Into<String>, jwks_url: impl Into<String>) -> Self {
        ProviderConfig {
            jwks_url: Some(jwks_url.into()),
            discovery_url: None,
            issuer: issuer.into(),
            audiences: Vec::new(),
            identity_claim_ref: default_identity_ref(),
            groups_claim_ref: default_groups_ref(),
            session_max_ttl: default_session_max_ttl(),
            leeway: default_leeway(),
            cleanup_interval: default_cleanup_interval(),
            required_claims: BTreeMap::new(),
            algorithms: default_algorithms(),
            allowed_types: default_allowed_types(),
            max_token_bytes: default_max_token_bytes(),
            max_token_age: None,
            jwks_refresh_interval: default_jwks_refresh_interval(),
            jwks_refetch_cooldown: default_jwks_refetch_cooldown(),
            jwks_max_stale: default_jwks_max_stale(),
            jwks_timeout: default_jwks_timeout(),
            insecure_allow_http: false,
        }
    }

    /// A provider found through OpenID discovery at `discovery_url`.
    pub fn with_discovery(issuer: impl Into<String>, discovery_url: impl Into<String>) -> Self {
        let mut p = ProviderConfig::new(issuer, String::new());
        p.jwks_url = None;
        p.discovery_url = Some(discovery_url.into());
        p
    }

    /// Sets the accepted audiences.
    #[must_use]
    pub fn with_audiences<I: IntoIterator<Item = S>, S: Into<String>>(mut self, aud: I) -> Self {
        self.audiences = aud.into_iter().map(Into::into).collect();
        self
    }

    /// Pins a claim (name, or JSON Pointer starting with `/`) to an exact string value.
    #[must_use]
    pub fn with_required_claim(
        mut self,
        claim: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.required_claims.insert(claim.into(), value.into());
        self
    }

    /// Sets the identity claim pointer.
    #[must_use]
    pub fn with_identity_claim_ref(mut self, pointer: impl Into<String>) -> Self {
        self.identity_claim_ref = pointer.into();
        self
    }

    /// Sets the groups claim pointer.
    #[must_use]
    pub fn with_groups_claim_ref(mut self, pointer: impl Into<String>) -> Self {
        self.groups_claim_ref = pointer.into();
        self
    }

    /// Sets the algorithm allow-list.
    #[must_use]
    pub fn with_algorithms(mut self, algs: impl Into<Vec<Algorithm>>) -> Self {
        self.algorithms = algs.into();
        self
    }

    /// Sets the clock-skew leeway.
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets the session lifetime cap.
    #[must_use]
    pub fn with_session_max_ttl(mut self, ttl: Duration) -> Self {
        self.session_max_ttl = ttl;
        self
    }

    /// Sets the oldest accepted `iat`.
    #[must_use]
    pub fn with_max_token_age(mut self, age: Duration) -> Self {
        self.max_token_age = Some(age);
        self
    }

    /// Sets the minimum gap between unknown-`kid` refetches.
    #[must_use]
    pub fn with_jwks_refetch_cooldown(mut self, d: Duration) -> Self {
        self.jwks_refetch_cooldown = d;
        self
    }

    /// Sets how long the last good key set serves while the IdP is unreachable.
    #[must_use]
    pub fn with_jwks_max_stale(mut self, d: Duration) -> Self {
        self.jwks_max_stale = d;
        self
    }

    /// Sets the timeout of one JWKS or discovery request.
    #[must_use]
    pub fn with_jwks_timeout(mut self, d: Duration) -> Self {
        self.jwks_timeout = d;
        self
    }

    /// Sets the background refresh period.
    #[must_use]
    pub fn with_jwks_refresh_interval(mut self, d: Duration) -> Self {
        self.jwks_refresh_interval = d;
        self
    }

    /// Checks what serde cannot: one of `jwks_url`/`discovery_url`, URL schemes, pointers,
    /// non-empty lists and positive durations. The error names the offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.jwks_url, &self.discovery_url) {
            (None, None) => {
                return Err(ConfigError::new(
                    "jwks_url",
                    "one of `jwks_url` and `discovery_url` is required",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "discovery_url",
                    "set either `jwks_url` or `discovery_url`, not both",
                ))
            }
            (Some(u), None) => check_url("jwks_url", u, self.insecure_allow_http)?,
            (None, Some(u)) => check_url("discovery_url", u, self.insecure_allow_http)?,
        }
        if self.issuer.is_empty() {
            return Err(ConfigError::new("issuer", "must not be empty"));
        }
        check_pointer("identity_claim_ref", &self.identity_claim_ref)?;
        check_pointer("groups_claim_ref", &self.groups_claim_ref)?;
        for k in self.required_claims.keys() {
            if k.is_empty() {
                return Err(ConfigError::new(
                    "required_claims",
                    "claim names must not be empty",
                ));
            }
            if k.starts_with('/') {
                check_pointer("required_claims", k)?;
            }
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::new(
                "algorithms",
                "must list at least one algorithm",
            ));
        }
        if self.allowed_types.is_empty() {
            return Err(ConfigError::new(
                "allowed_types",
                "must list at least one type",
            ));
        }
        if self.max_token_bytes < 64 {
            return Err(ConfigError::new("max_token_bytes", "must be at least 64"));
        }
        for (key, d) in [
            ("session_max_ttl", self.session_max_ttl),
            ("cleanup_interval", self.cleanup_interval),
            ("jwks_refresh_interval", self.jwks_refresh_interval),
            ("jwks_timeout", self.jwks_timeout),
            ("jwks_max_stale", self.jwks_max_stale),
            // Zero would let every unknown `kid` trigger a fetch.
            ("jwks_refetch_cooldown", self.jwks_refetch_cooldown),
        ] {
            if d.is_zero() {
                return Err(ConfigError::new(key, "must be greater than zero"));
            }
        }
        if self.max_token_age.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::new(
                "max_token_age",
                "must be greater than zero",
            ));
        }
        Ok(())
    }
}

pub(crate) fn check_url(
    key: &'static str,
    url: &str,
    insecure_allow_http: bool,
) -> Result<(), ConfigError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| ConfigError::new(key, format!("not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if insecure_allow_http || is_loopback(&parsed) => Ok(()),
        "http" => Err(ConfigError::new(
            key,
            "plain http is only allowed to loopback hosts (set insecure_allow_http to override)",
        )),
        _ => Err(ConfigError::new(key, "must be an https URL")),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks RFC 6901 syntax: empty, or `/`-separated tokens where `~` is followed by `0` or `1`.
pub(crate) fn check_pointer(key: &'static str, p: &str) -> Result<(), ConfigError> {
    if !p.is_empty() && !p.starts_with('/') {
        return Err(ConfigError::new(key, "a JSON Pointer must start with `/`"));
    }
    let bytes = p.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')) {
            return Err(ConfigError::new(
                key,
                "`~` in a JSON Pointer must be followed by 0 or 1",
            ));
        }
    }
    Ok(())
}

/// One provider map or a list of them: the value of lakeFS's `auth.providers.jwt`.
///
/// ```
/// use jwt_exchange::Providers;
/// let one: Providers = serde_json::from_str(
///     r#"{"issuer":"https://a.example/","jwks_url":"https://a.example/jwks"}"#).unwrap();
/// let many: Providers = serde_json::from_str(
///     r#"[{"issuer":"https://a.example/","jwks_url":"https://a.example/jwks"},
///         {"issuer":"https://b.example/","jwks_url":"https://b.example/jwks"}]"#).unwrap();
/// assert_eq!(one.0.len(), 1);
/// assert_eq!(many.0.len(), 2);
/// many.validate().unwrap();
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Providers(pub Vec<ProviderConfig>);

impl Providers {
    /// Validates each provider and checks that no two share an issuer. Errors name the key,
    /// prefixed by the provider's index when there are several.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let many = self.0.len() > 1;
        for (i, p) in self.0.iter().enumerate() {
            p.validate()
                .map_err(|e| if many { e.at_index(i) } else { e })?;
            if self.0[..i].iter().any(|q| q.issuer == p.issuer) {
                let e = ConfigError::new("issuer", "two providers have the same issuer");
                return Err(if many { e.at_index(i) } else { e });
            }
            // Session subjects are `jwt:<issuer>:<identity>`. If one issuer were another's
            // prefix followed by `:`, an identity of the shorter one could spell a subject of
            // the longer one; refuse such sets so subjects stay unambiguous.
            if let Some(q) = self.0.iter().find(|q| {
                p.issuer.len() > q.issuer.len()
                    && p.issuer.starts_with(&q.issuer)
                    && p.issuer.as_bytes()[q.issuer.len()] == b':'
            }) {
                let e = ConfigError::new(
                    "issuer",
                    format!(
                        "starts with another provider's issuer followed by `:` ({}), which would make session subjects ambiguous",
                        q.issuer
                    ),
                );
                return Err(if many { e.at_index(i) } else { e });
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Providers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Providers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a provider map or a list of provider maps")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Providers, A::Error> {
                let p = ProviderConfig::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Providers(vec![p]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Providers, A::Error> {
                let v =
                    Vec::<ProviderConfig>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Providers(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Providers, E> {
                Ok(Providers(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A configuration value that is present but wrong.
///
/// ```
/// use jwt_exchange::ProviderConfig;
/// let mut p = ProviderConfig::new("https://idp.example/", "ftp://idp.example/jwks");
/// let e = p.validate().unwrap_err();
/// assert_eq!(e.key(), "jwks_url");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration at `{key}`: {reason}")]
pub struct ConfigError {
    key: String,
    reason: String,
}

impl ConfigError {
    /// A new error about `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The configuration key the error is about.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Prefixes the key with a list index, `[i].key`.
    #[must_use]
    pub fn at_index(self, i: usize) -> Self {
        ConfigError {
            key: format!("[{i}].{}", self.key),
            reason: self.reason,
        }
    }

    /// Prefixes the key with a parent path, `parent.key`.
    #[must_use]
    pub fn under(self, parent: &str) -> Self {
        let key = if self.key.starts_with('[') {
            format!("{parent}{}", self.key)
        } else {
            format!("{parent}.{}", self.key)
        };
        ConfigError {
            key,
            reason: self.reason,
        }
    }
}

/// serde helpers for humantime durations (`"90s"`, `"5m"`, `"1h 30m"`).
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as a humantime string.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    /// Deserializes from a humantime string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format_args!(
                "invalid duration {s:?} ({e}); use e.g. 60s, 5m, 1h"
            ))
        })
    }
}

/// serde helpers for optional humantime durations.
pub mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as a humantime string, or none.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Deserializes from a humantime string or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => humantime::parse_duration(&s).map(Some).map_err(|e| {
                serde::de::Error::custom(format_args!(
                    "invalid duration {s:?} ({e}); use e.g. 60s, 5m, 1h"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<ProviderConfig, String> {
        serde_json::from_value::<ProviderConfig>(v).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_match_the_reference() {
        let p = parse(serde_json::json!({"issuer":"https://i/","jwks_url":"https://i/k"})).unwrap();
        assert_eq!(p, ProviderConfig::new("https://i/", "https://i/k"));
        assert!(p.audiences.is_empty());
        assert_eq!(p.identity_claim_ref, "/oid");
        assert_eq!(p.groups_claim_ref, "/roles");
        assert_eq!(p.session_max_ttl, Duration::from_secs(3600));
        assert_eq!(p.leeway, Duration::from_secs(60));
        assert_eq!(p.cleanup_interval, Duration::from_secs(300));
        assert_eq!(p.algorithms, Algorithm::ALL.to_vec());
        assert_eq!(p.max_token_bytes, 16384);
        assert_eq!(p.jwks_refresh_interval, Duration::from_secs(900));
        assert_eq!(p.jwks_refetch_cooldown, Duration::from_secs(30));
        assert_eq!(p.jwks_max_stale, Duration::from_secs(86400));
        assert_eq!(p.jwks_timeout, Duration::from_secs(5));
        assert_eq!(p.max_token_age, None);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = parse(serde_json::json!({"issuer":"i","jwks_url":"https://i/k","audience":"x"}))
            .unwrap_err();
        assert!(e.contains("unknown field `audience`"), "{e}");
        let e = parse(serde_json::json!({"issuer":"i","jwks_url":"https://i/k","algorithms":["RS256","HS256"]}))
            .unwrap_err();
        assert!(e.contains("HS256") && e.contains("symmetric"), "{e}");
        let e =
            parse(serde_json::json!({"issuer":"i","jwks_url":"https://i/k","algorithms":["none"]}))
                .unwrap_err();
        assert!(e.contains("never accepted"), "{e}");
        let e = parse(serde_json::json!({"issuer":"i","jwks_url":"https://i/k","leeway":"soon"}))
            .unwrap_err();
        assert!(e.contains("invalid duration"), "{e}");
    }

    #[test]
    fn validation_rules() {
        let base = ProviderConfig::new("https://i/", "https://i/k");
        assert!(base.validate().is_ok());
        let mut p = base.clone();
        p.jwks_url = None;
        assert_eq!(p.validate().unwrap_err().key(), "jwks_url");
        let p = ProviderConfig::new("https://i/", "http://idp.example/k");
        assert_eq!(p.validate().unwrap_err().key(), "jwks_url");
        let mut p = ProviderConfig::new("https://i/", "http://idp.example/k");
        p.insecure_allow_http = true;
        assert!(p.validate().is_ok());
        assert!(ProviderConfig::new("https://i/", "http://127.0.0.1:9/k")
            .validate()
            .is_ok());
        assert!(ProviderConfig::new("https://i/", "http://[::1]:9/k")
            .validate()
            .is_ok());
        let p = base.clone().with_identity_claim_ref("oid");
        assert_eq!(p.validate().unwrap_err().key(), "identity_claim_ref");
        let p = base.clone().with_groups_claim_ref("/a~2");
        assert_eq!(p.validate().unwrap_err().key(), "groups_claim_ref");
        let p = base.clone().with_algorithms(vec![]);
        assert_eq!(p.validate().unwrap_err().key(), "algorithms");
        let mut both = base.clone();
        both.discovery_url = Some("https://i/.well-known/openid-configuration".into());
        assert_eq!(both.validate().unwrap_err().key(), "discovery_url");
        let p = base.clone().with_jwks_refetch_cooldown(Duration::ZERO);
        assert_eq!(p.validate().unwrap_err().key(), "jwks_refetch_cooldown");
    }

    #[test]
    fn one_or_many_providers() {
        let one: Providers = serde_json::from_value(
            serde_json::json!({"issuer":"https://a/","jwks_url":"https://a/k"}),
        )
        .unwrap();
        assert_eq!(one.0.len(), 1);
        let dup: Providers = serde_json::from_value(serde_json::json!([
            {"issuer":"https://a/","jwks_url":"https://a/k"},
            {"issuer":"https://a/","jwks_url":"https://a/k2"}
        ]))
        .unwrap();
        let e = dup.validate().unwrap_err();
        assert_eq!(e.key(), "[1].issuer");
        assert_eq!(
            e.clone().under("auth.providers.jwt").key(),
            "auth.providers.jwt[1].issuer"
        );
        let prefix: Providers = serde_json::from_value(serde_json::json!([
            {"issuer":"https://a:8443","jwks_url":"https://a/k"},
            {"issuer":"https://a","jwks_url":"https://a/k2"}
        ]))
        .unwrap();
        assert_eq!(prefix.validate().unwrap_err().key(), "[0].issuer");
        let e = serde_json::from_value::<Providers>(serde_json::json!([
            {"issuer":"https://a/","jwks_url":"https://a/k","bogus":1}
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("bogus"));
    }

    #[test]
    fn durations_round_trip() {
        let p = ProviderConfig::new("https://i/", "https://i/k")
            .with_max_token_age(Duration::from_secs(90));
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["max_token_age"], "1m 30s");
        let back: ProviderConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
    }
}
