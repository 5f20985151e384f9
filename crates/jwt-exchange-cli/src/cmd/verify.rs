//! `jwt-exchange verify --config FILE [TOKEN|-]`: the real verification and group → policy
//! mapping, run locally (the keys are fetched from the IdP as the server would), with an
//! explanation of the outcome. The tool to reach for when a workload gets 401.

use std::path::PathBuf;

use jwt_exchange::policy::{Directory, StaticDirectory};
use jwt_exchange::session::{session_expiry, Session};
use jwt_exchange::{Clock as _, SystemClock, Verifier, VerifyError};

use crate::Failure;

/// `verify` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The server's configuration file.
    #[arg(long)]
    config: PathBuf,
    /// The token, or `-` (or nothing) to read it from stdin.
    token: Option<String>,
}

pub(crate) async fn run(a: Args) -> Result<(), Failure> {
    let loaded = crate::config::load(&a.config)?;
    let token = super::token_arg(a.token.as_deref())?;
    let providers = loaded.file.auth.providers.jwt.clone();
    if providers.0.is_empty() {
        return Err(Failure::Config(format!(
            "{}: no provider under auth.providers.jwt",
            a.config.display()
        )));
    }
    let verifier = Verifier::builder(providers)
        .background_refresh(false)
        .build()
        .map_err(|e| Failure::Config(e.to_string()))?;
    let directory = StaticDirectory::new(loaded.policies.clone())
        .map_err(|e| Failure::Config(e.to_string()))?;
    match verifier.verify(&token).await {
        Ok(c) => {
            let now = SystemClock.unix_seconds();
            let policies = directory
                .policies_for_groups(&c.groups)
                .await
                .map_err(|e| Failure::Run(e.to_string()))?;
            let ttl = verifier
                .provider(&c.issuer)
                .map(|p| p.session_max_ttl)
                .unwrap_or_default();
            let expires = session_expiry(now, ttl, c.expires_at);
            println!("ACCEPTED");
            println!("  issuer:    {}", c.issuer);
            println!(
                "  algorithm: {} (kid {})",
                c.algorithm,
                c.key_id.as_deref().unwrap_or("-")
            );
            println!(
                "  subject:   {}",
                Session::subject_for(&c.issuer, &c.identity)
            );
            println!("  groups:    {:?}", c.groups);
            println!("  policies:  {policies:?}");
            let unmatched: Vec<_> = c
                .groups
                .iter()
                .filter(|g| !loaded.policies.groups.contains_key(*g))
                .collect();
            if !unmatched.is_empty() {
                println!(
                    "  note: groups without a mapping (no permissions from them): {unmatched:?}"
                );
            }
            println!(
                "  a session would expire at {expires} ({})",
                super::inspect::relative(expires, now)
            );
            Ok(())
        }
        Err(e) => {
            println!("REFUSED");
            println!("  failed check: {}", e.check());
            println!("  reason:       {e}");
            if let Some(hint) = hint(&e, &verifier) {
                println!("  hint:         {hint}");
            }
            for s in verifier.key_status() {
                if let Some(err) = s.last_error {
                    println!("  keys of {}: {err}", s.issuer);
                }
            }
            let status = if e.is_unavailable() {
                "503 (an outage on our side, not the token's fault)"
            } else {
                "401"
            };
            println!("  the server answers this token with {status}");
            Err(Failure::Run("the token was refused".into()))
        }
    }
}

fn hint(e: &VerifyError, v: &Verifier) -> Option<String> {
    Some(match e {
        VerifyError::UnknownIssuer => format!(
            "the token's `iss` must equal one of the configured issuers exactly: {:?}",
            v.issuers().collect::<Vec<_>>()
        ),
        VerifyError::InvalidAudience | VerifyError::MissingClaim { claim: "aud" } => {
            "check `audiences` against the token's `aud` (`jwt-exchange inspect` shows it)".into()
        }
        VerifyError::Expired { .. }
        | VerifyError::NotYetValid { .. }
        | VerifyError::IssuedInFuture { .. } => {
            "compare this machine's clock with the IdP's; `leeway` tolerates small skew".into()
        }
        VerifyError::UnknownKeyId => {
            "the IdP's JWKS has no key with this `kid`: wrong issuer, or a key rotated away".into()
        }
        VerifyError::RequiredClaimMismatch { .. } => {
            "the token belongs to another tenant or client than `required_claims` pins".into()
        }
        VerifyError::InvalidIdentity { .. } => {
            "`identity_claim_ref` does not point at a non-empty string claim".into()
        }
        VerifyError::KeysUnavailable => "the JWKS could not be fetched (see below)".into(),
        _ => return None,
    })
}
