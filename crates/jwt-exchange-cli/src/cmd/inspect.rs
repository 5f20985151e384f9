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

/// First second of the year 10000, which RFC 3339 (four-digit years) cannot write.
const YEAR_10000: i64 = 253_402_300_800;

/// The time as RFC 3339, or the number as it is when no date can be written for it. A value
/// past the year 9999 is most often milliseconds where seconds belong, the very mistake this
/// tool is used to find.
fn rfc3339(t: i64) -> String {
    match u64::try_from(t) {
        Ok(s) if t < YEAR_10000 => {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s)).to_string()
        }
        Ok(_) => format!("{t} (not a plausible Unix time in seconds; milliseconds?)"),
        Err(_) => t.to_string(),
    }
}

/// `in 59m 58s`, `3h 2m ago`, `now`.
pub(crate) fn relative(t: i64, now: i64) -> String {
    let d = Duration::from_secs(t.abs_diff(now));
    let rounded = humantime::format_duration(d).to_string();
    match t.cmp(&now) {
        std::cmp::Ordering::Greater => format!("in {rounded}"),
        std::cmp::Ordering::Less => format!("{rounded} ago"),
        std::cmp::Ordering::Equal => "now".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any claimed time prints, the year 10000 and `i64` extremes included (a token's `exp` in
    /// milliseconds made `inspect` panic).
    #[test]
    fn every_time_prints_without_panicking() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(YEAR_10000 - 1), "9999-12-31T23:59:59Z");
        assert!(rfc3339(1_700_000_000_000).contains("milliseconds?"));
        assert!(rfc3339(YEAR_10000).contains("milliseconds?"));
        assert_eq!(rfc3339(-5), "-5");
        for t in [i64::MIN, -1, 0, 1, i64::MAX] {
            let _ = rfc3339(t);
            for now in [i64::MIN, 0, 1_700_000_000, i64::MAX] {
                let _ = relative(t, now);
            }
        }
        assert_eq!(relative(10, 10), "now");
        assert_eq!(relative(70, 10), "in 1m");
    }
}
