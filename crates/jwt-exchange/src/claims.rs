//! Claim checks after the signature verified, and RFC 6901 JSON Pointer evaluation.

use serde_json::{Map, Value};

use crate::config::ProviderConfig;
use crate::json::{Doc, Json};
use crate::verify::error::VerifyError;

/// Evaluates an RFC 6901 JSON Pointer against a claim set.
///
/// `~1` is `/` and `~0` is `~`; array indexes are decimal without leading zeros, and `-` (the
/// element after the last) never resolves. `""` would be the whole claim set, which is not a
/// claim value, so it resolves to `None` (as does a pointer without its leading `/`).
///
/// ```
/// use jwt_exchange::pointer;
/// let claims = serde_json::json!({"realm_access": {"roles": ["a"]}, "a/b": 1, "m~n": 2});
/// let map = claims.as_object().unwrap();
/// assert_eq!(pointer(map, "/realm_access/roles/0"), Some(&serde_json::json!("a")));
/// assert_eq!(pointer(map, "/a~1b"), Some(&serde_json::json!(1)));
/// assert_eq!(pointer(map, "/m~0n"), Some(&serde_json::json!(2)));
/// assert_eq!(pointer(map, "/realm_access/roles/01"), None);
/// assert_eq!(pointer(map, ""), None);
/// ```
pub fn pointer<'a>(doc: &'a Map<String, Value>, ptr: &str) -> Option<&'a Value> {
    walk(ptr, |name| doc.get(name))
}

/// A JSON value an RFC 6901 walk can step into: `serde_json`'s for [`pointer`], the strict
/// parser's for the claim checks, so both follow one set of rules.
trait Step {
    /// The member named `tok` (objects) or the element at index `tok` (arrays).
    fn step(&self, tok: &str) -> Option<&Self>;
}

impl Step for Value {
    fn step(&self, tok: &str) -> Option<&Self> {
        match self {
            Value::Object(m) => m.get(tok),
            Value::Array(a) => a.get(array_index(tok)?),
            _ => None,
        }
    }
}

impl Step for Json<'_> {
    fn step(&self, tok: &str) -> Option<&Self> {
        match self {
            Json::Object(m) => m.get(tok),
            Json::Array(a) => a.get(array_index(tok)?),
            _ => None,
        }
    }
}

/// Resolves `ptr`, whose first reference token is looked up with `root` (a claim set is an
/// object): `None` for `""`, a pointer without a leading `/`, a bad escape or a missing step.
fn walk<'d, N: Step + ?Sized>(
    ptr: &str,
    root: impl FnOnce(&str) -> Option<&'d N>,
) -> Option<&'d N> {
    let mut tokens = ptr.strip_prefix('/')?.split('/');
    let first = unescape(tokens.next()?)?;
    let mut cur = root(first.as_ref())?;
    for raw in tokens {
        cur = cur.step(unescape(raw)?.as_ref())?;
    }
    Some(cur)
}

fn unescape(tok: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !tok.contains('~') {
        return Some(std::borrow::Cow::Borrowed(tok));
    }
    let mut out = String::with_capacity(tok.len());
    let mut chars = tok.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(std::borrow::Cow::Owned(out))
}

fn array_index(tok: &str) -> Option<usize> {
    if tok.is_empty()
        || !tok.bytes().all(|b| b.is_ascii_digit())
        || (tok.len() > 1 && tok.starts_with('0'))
    {
        return None;
    }
    tok.parse().ok()
}

/// The checked, signature-verified contents of an external token.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct VerifiedClaims {
    /// `iss`, equal to the provider's configured issuer.
    pub issuer: String,
    /// The value at `identity_claim_ref`.
    pub identity: String,
    /// The values at `groups_claim_ref` (empty when absent).
    pub groups: Vec<String>,
    /// `exp`, whole seconds since the epoch.
    pub expires_at: i64,
    /// `iat`, if present.
    pub issued_at: Option<i64>,
    /// `nbf`, if present.
    pub not_before: Option<i64>,
    /// `sub`, if present.
    pub subject: Option<String>,
    /// `jti`, if present.
    pub jti: Option<String>,
    /// The signature algorithm.
    pub algorithm: crate::Algorithm,
    /// The `kid` of the key that verified the signature, if the token named one.
    pub key_id: Option<String>,
    /// Every claim of the token, for application-specific reads.
    pub claims: Map<String, Value>,
}

/// Evaluates an RFC 6901 JSON Pointer against a parsed claim set: the same rules as
/// [`pointer`].
fn pointer_doc<'d, 'a>(doc: &'d Doc<'a>, ptr: &str) -> Option<&'d Json<'a>> {
    walk(ptr, |name| doc.get(name))
}

/// Reads a NumericDate claim: absent, or a JSON number (fractions allowed).
fn numeric(claims: &Doc<'_>, name: &'static str) -> Result<Option<f64>, VerifyError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Json::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or(VerifyError::InvalidClaimType { claim: name }),
        Some(_) => Err(VerifyError::InvalidClaimType { claim: name }),
    }
}

fn opt_string(claims: &Doc<'_>, name: &'static str) -> Result<Option<String>, VerifyError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.as_ref().to_owned())),
        Some(_) => Err(VerifyError::InvalidClaimType { claim: name }),
    }
}

fn floor_i64(x: f64) -> i64 {
    x.floor() as i64
}

/// Checks the claims of a signature-verified token, in the documented order:
/// `aud`, `exp`, `nbf`, `iat`, `max_token_age`, the types of `sub`/`jti`, `required_claims`,
/// identity, groups. (`iss` was matched when the provider was chosen.) With `keep_claims`,
/// [`VerifiedClaims::claims`] holds every claim; without, it is empty.
pub(crate) fn check(
    provider: &ProviderConfig,
    claims: Doc<'_>,
    now: i64,
    algorithm: crate::Algorithm,
    key_id: Option<String>,
    keep_claims: bool,
) -> Result<VerifiedClaims, VerifyError> {
    let leeway = crate::clock::secs_i64(provider.leeway) as f64;
    let now_f = now as f64;

    // aud: a string or an array of strings; one accepted value passes.
    let aud: &[Json<'_>] = match claims.get("aud") {
        None => &[],
        Some(one @ Json::String(_)) => std::slice::from_ref(one),
        Some(Json::Array(a)) => {
            if a.iter().any(|v| v.as_str().is_none()) {
                return Err(VerifyError::InvalidClaimType { claim: "aud" });
            }
            a
        }
        Some(_) => return Err(VerifyError::InvalidClaimType { claim: "aud" }),
    };
    if !provider.audiences.is_empty() {
        if !claims.contains_key("aud") {
            return Err(VerifyError::MissingClaim { claim: "aud" });
        }
        if !aud
            .iter()
            .filter_map(Json::as_str)
            .any(|a| provider.audiences.iter().any(|c| c == a))
        {
            return Err(VerifyError::InvalidAudience);
        }
    }

    let exp = numeric(&claims, "exp")?.ok_or(VerifyError::MissingClaim { claim: "exp" })?;
    if now_f >= exp + leeway {
        return Err(VerifyError::Expired {
            exp: floor_i64(exp),
            now,
        });
    }
    let nbf = numeric(&claims, "nbf")?;
    if let Some(nbf) = nbf {
        if now_f < nbf - leeway {
            return Err(VerifyError::NotYetValid {
                nbf: floor_i64(nbf),
                now,
            });
        }
    }
    let iat = numeric(&claims, "iat")?;
    if let Some(iat) = iat {
        if iat > now_f + leeway {
            return Err(VerifyError::IssuedInFuture {
                iat: floor_i64(iat),
                now,
            });
        }
    }
    if let Some(max_age) = provider.max_token_age {
        let iat = iat.ok_or(VerifyError::MissingClaim { claim: "iat" })?;
        if now_f >= iat + crate::clock::secs_i64(max_age) as f64 + leeway {
            return Err(VerifyError::TooOld {
                iat: floor_i64(iat),
                now,
            });
        }
    }
    let subject = opt_string(&claims, "sub")?;
    let jti = opt_string(&claims, "jti")?;

    for (name, want) in &provider.required_claims {
        let got = if name.starts_with('/') {
            pointer_doc(&claims, name)
        } else {
            claims.get(name)
        };
        if got.and_then(Json::as_str) != Some(want.as_str()) {
            return Err(VerifyError::RequiredClaimMismatch {
                claim: name.clone(),
            });
        }
    }

    let identity = match pointer_doc(&claims, &provider.identity_claim_ref) {
        Some(Json::String(s)) if !s.is_empty() => s.as_ref().to_owned(),
        _ => {
            return Err(VerifyError::InvalidIdentity {
                pointer: provider.identity_claim_ref.clone(),
            })
        }
    };
    let groups = groups(&claims, &provider.groups_claim_ref)?;

    Ok(VerifiedClaims {
        issuer: provider.issuer.clone(),
        identity,
        groups,
        expires_at: floor_i64(exp),
        issued_at: iat.map(floor_i64),
        not_before: nbf.map(floor_i64),
        subject,
        jti,
        algorithm,
        key_id,
        claims: if keep_claims {
            claims.into_map()
        } else {
            Map::new()
        },
    })
}

/// What a groups pointer found, in either claim-set representation.
enum Found<'x> {
    Absent,
    Str(&'x str),
    Values(&'x [Value]),
    Items(&'x [Json<'x>]),
    Other,
}

/// A claim set that a groups pointer can be evaluated against.
trait GroupsClaim {
    fn groups_value(&self, ptr: &str) -> Found<'_>;
}

impl GroupsClaim for Map<String, Value> {
    fn groups_value(&self, ptr: &str) -> Found<'_> {
        match pointer(self, ptr) {
            None => Found::Absent,
            Some(Value::String(s)) => Found::Str(s),
            Some(Value::Array(a)) => Found::Values(a),
            Some(_) => Found::Other,
        }
    }
}

impl GroupsClaim for Doc<'_> {
    fn groups_value(&self, ptr: &str) -> Found<'_> {
        match pointer_doc(self, ptr) {
            None => Found::Absent,
            Some(Json::String(s)) => Found::Str(s),
            Some(Json::Array(a)) => Found::Items(a),
            Some(_) => Found::Other,
        }
    }
}

/// Reads the groups claim: absent → no groups; an array of strings; or one string holding a
/// space-separated list (as OAuth `scope` does). Anything else is an error.
fn groups(claims: &impl GroupsClaim, ptr: &str) -> Result<Vec<String>, VerifyError> {
    let err = || VerifyError::InvalidGroups {
        pointer: ptr.to_owned(),
    };
    match claims.groups_value(ptr) {
        Found::Absent => Ok(Vec::new()),
        Found::Str(s) => Ok(s.split_ascii_whitespace().map(str::to_owned).collect()),
        Found::Values(a) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(err))
            .collect(),
        Found::Items(a) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(err))
            .collect(),
        Found::Other => Err(err()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointer_rules() {
        let d = json!({"": 0, "a": {"b": [10, 11]}, "x/y": 1, "t~": 2});
        let m = d.as_object().unwrap();
        assert_eq!(pointer(m, "/"), Some(&json!(0)));
        assert_eq!(pointer(m, "/a/b/1"), Some(&json!(11)));
        assert_eq!(pointer(m, "/a/b/-"), None);
        assert_eq!(pointer(m, "/a/b/2"), None);
        assert_eq!(pointer(m, "/a/b/+1"), None);
        assert_eq!(pointer(m, "/x~1y"), Some(&json!(1)));
        assert_eq!(pointer(m, "/t~0"), Some(&json!(2)));
        assert_eq!(pointer(m, "/t~2"), None);
        assert_eq!(pointer(m, "a"), None);
        assert_eq!(pointer(m, ""), None);
    }

    #[test]
    fn groups_shapes() {
        let d = json!({"roles": ["a", "b"], "scope": "read  write", "bad": [1], "num": 3});
        let m = d.as_object().unwrap();
        assert_eq!(groups(m, "/roles").unwrap(), vec!["a", "b"]);
        assert_eq!(groups(m, "/scope").unwrap(), vec!["read", "write"]);
        assert_eq!(groups(m, "/missing").unwrap(), Vec::<String>::new());
        assert!(groups(m, "/bad").is_err());
        assert!(groups(m, "/num").is_err());
    }
}
