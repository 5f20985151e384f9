//! `jwt-exchange inspect [TOKEN|-]`: the header and claims of a token, clearly marked
//! UNVERIFIED, with times in human form. The signature is never printed.

use std::time::{Duration, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_exchange::{Clock as _, SystemClock};
use serde_json::Value;

use crate::Failure;

/// `inspect` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The token, or `-` (or nothing) to read it from stdin.
    token: Option<String>,
}

pub(crate) fn run(a: &Args) -> Result<(), Failure> {
    let token = super::token_arg(a.token.as_deref())?;
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(Failure::Run(format!(
            "not a compact JWS: {} segments instead of 3{}",
            parts.len(),
            if parts.len() == 5 {
                " (this looks like an encrypted JWE)"
            } else {
                ""
            }
        )));
    }
    let decode = |seg: &str, what: &str| -> Result<Value, Failure> {
        let bytes = URL_SAFE_NO_PAD
            .decode(seg)
            .map_err(|_| Failure::Run(format!("the {what} is not base64url")))?;
        serde_json::from_slice(&bytes).map_err(|_| Failure::Run(format!("the {what} is not JSON")))
    };
    let header = decode(parts[0], "header")?;
    let claims = decode(parts[1], "payload")?;
    println!(
        "UNVERIFIED — decoded only; nothing here has been checked. Use `jwt-exchange verify`."
    );
    println!("\nheader:\n{}", pretty(&header));
    println!("\nclaims:\n{}", pretty(&claims));
    let now = SystemClock.unix_seconds();
    let mut times = Vec::new();
    for name in ["iat", "nbf", "exp"] {
        if let Some(t) = claims.get(name).and_then(Value::as_i64) {
            times.push(format!("  {name}: {} ({})", rfc3339(t), relative(t, now)));
        }
    }
    if !times.is_empty() {
        println!("\ntimes:\n{}", times.join("\n"));
    }
    println!(
        "\nsignature: {} bytes (not shown)",
        URL_SAFE_NO_PAD.decode(parts[2]).map_or(0, |s| s.len())
    );
    Ok(())
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn rfc3339(t: i64) -> String {
    u64::try_from(t).map_or_else(
        |_| t.to_string(),
        |s| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string(),
    )
}

/// `in 59m 58s`, `3h 2m ago`, `now`.
pub(crate) fn relative(t: i64, now: i64) -> String {
    let d = Duration::from_secs((t - now).unsigned_abs());
    let rounded = humantime::format_duration(d).to_string();
    match t.cmp(&now) {
        std::cmp::Ordering::Greater => format!("in {rounded}"),
        std::cmp::Ordering::Less => format!("{rounded} ago"),
        std::cmp::Ordering::Equal => "now".to_owned(),
    }
}
