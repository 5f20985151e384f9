//! `jwt-exchange mint --key PEM --kid KID --iss … --aud … --sub … [--claim k=v …] [--exp +1h]`:
//! development tokens, the role `pyjwt encode` plays in guides. `--claim` values are JSON when
//! they parse as JSON (`--claim 'roles=["a","b"]'`, `--claim n=3`), strings otherwise.

use std::path::PathBuf;
use std::time::Duration;

use jwt_exchange::dev::SigningKey;
use jwt_exchange::{Algorithm, Clock as _, SystemClock};
use serde_json::{Map, Value};

use crate::Failure;

/// `mint` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// PKCS#8 PEM private key (as written by `keygen`).
    #[arg(long)]
    key: PathBuf,
    /// Key id for the header.
    #[arg(long)]
    kid: String,
    /// Algorithm; inferred from the key when absent (RSA keys: RS256).
    #[arg(long)]
    alg: Option<Algorithm>,
    /// `iss` claim.
    #[arg(long)]
    iss: String,
    /// `aud` claim (repeat for several).
    #[arg(long)]
    aud: Vec<String>,
    /// `sub` claim.
    #[arg(long)]
    sub: String,
    /// Extra claim `name=value` (repeatable); JSON values allowed.
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    claims: Vec<String>,
    /// Expiry: `+DURATION` from now (`+1h`, `+90s`) or absolute Unix seconds.
    #[arg(long, default_value = "+1h")]
    exp: String,
}

pub(crate) fn run(a: &Args) -> Result<(), Failure> {
    let pem = std::fs::read_to_string(&a.key)
        .map_err(|e| Failure::Config(format!("--key {}: {e}", a.key.display())))?;
    let key = load_key(&pem, &a.kid, a.alg).ok_or_else(|| {
        Failure::Config(format!(
            "--key {}: not a PKCS#8 PEM private key{}",
            a.key.display(),
            a.alg.map(|x| format!(" for {x}")).unwrap_or_default()
        ))
    })?;
    let now = SystemClock.unix_seconds();
    let exp = parse_exp(&a.exp, now).ok_or_else(|| {
        Failure::Config(format!(
            "--exp {:?}: use +DURATION (e.g. +1h) or Unix seconds",
            a.exp
        ))
    })?;
    let mut claims = Map::new();
    claims.insert("iss".into(), a.iss.clone().into());
    claims.insert("sub".into(), a.sub.clone().into());
    match a.aud.as_slice() {
        [] => {}
        [one] => {
            claims.insert("aud".into(), one.clone().into());
        }
        many => {
            claims.insert("aud".into(), many.to_vec().into());
        }
    }
    claims.insert("iat".into(), now.into());
    claims.insert("nbf".into(), now.into());
    claims.insert("exp".into(), exp.into());
    for c in &a.claims {
        let (name, value) = c
            .split_once('=')
            .ok_or_else(|| Failure::Config(format!("--claim {c:?}: expected NAME=VALUE")))?;
        if name.is_empty() {
            return Err(Failure::Config(format!("--claim {c:?}: empty name")));
        }
        let v = serde_json::from_str::<Value>(value)
            .unwrap_or_else(|_| Value::String(value.to_owned()));
        claims.insert(name.to_owned(), v);
    }
    println!("{}", key.mint(&Value::Object(claims)));
    Ok(())
}

/// Loads a PEM key, trying the given algorithm or each key family in turn.
pub(crate) fn load_key(pem: &str, kid: &str, alg: Option<Algorithm>) -> Option<SigningKey> {
    match alg {
        Some(alg) => SigningKey::from_pem(alg, kid, pem).ok(),
        None => [
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ]
        .into_iter()
        .find_map(|alg| SigningKey::from_pem(alg, kid, pem).ok()),
    }
}

fn parse_exp(s: &str, now: i64) -> Option<i64> {
    if let Some(rel) = s.strip_prefix('+') {
        let d: Duration = humantime::parse_duration(rel).ok()?;
        return now.checked_add(i64::try_from(d.as_secs()).ok()?);
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_forms() {
        assert_eq!(parse_exp("+1h", 100), Some(3700));
        assert_eq!(parse_exp("+90s", 0), Some(90));
        assert_eq!(parse_exp("1700000000", 0), Some(1_700_000_000));
        assert_eq!(parse_exp("tomorrow", 0), None);
    }
}
