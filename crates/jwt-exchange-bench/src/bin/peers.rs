//! Peer comparison of the login hot path: PyJWT and Node `jose` verifying the same RS256
//! Entra-shaped token with the same pre-parsed key, as ratios to the raw aws-lc-rs RS256
//! verification measured in the same run. Run it through `benches/peers/run.sh`, which installs
//! the peers; without `--python` / `--node` only the Rust side runs.
//!
//! `peers --out DIR [--peers-dir DIR] [--python PATH] [--node PATH] [--quick]`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

use jwt_exchange::Algorithm;
use jwt_exchange_bench::fixture::{
    entra_token, runtime, standard_roles, Fixture, JsonWebToken, Options, RawSignature, OID,
};
use jwt_exchange_bench::harness::{fmt_ns, header};
use jwt_exchange_bench::{Bench, Case};
use jwt_exchange_testkit::claims::{ENTRA_AUDIENCE, ENTRA_ISSUER};

/// Runs one peer script; its last `ns_per_op` line gives median, min and max.
fn peer(cmd: &str, script: &Path, work: &Path, bench: &Bench) -> Option<(f64, f64, f64, String)> {
    let rounds = if bench.quick() { "2" } else { "9" };
    let secs = if bench.quick() { "0.1" } else { "0.5" };
    let out = Command::new(cmd)
        .arg(script)
        .arg(work)
        .args([rounds, secs])
        .output()
        .map_err(|e| eprintln!("cannot run {cmd}: {e}"))
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("ns_per_op "))?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let lib = text
        .lines()
        .find_map(|l| l.strip_prefix("library "))
        .unwrap_or("")
        .to_owned();
    Some((*nums.first()?, *nums.get(1)?, *nums.get(2)?, lib))
}

fn main() {
    let bench = Bench::from_env();
    header("peers", &bench);
    let work = PathBuf::from(bench.value("--out").unwrap_or("benches/peers/.work"));
    let peers_dir = PathBuf::from(bench.value("--peers-dir").unwrap_or("benches/peers"));
    std::fs::create_dir_all(&work).expect("output directory");
    let rt = runtime();
    let fx = rt.block_on(Fixture::start(Options::default()));
    let key = fx.key(Algorithm::RS256);
    let token = entra_token(key, &standard_roles());
    std::fs::write(work.join("token.txt"), &token).expect("write token");
    std::fs::write(work.join("jwk.json"), key.public_jwk().to_string()).expect("write key");
    std::fs::write(
        work.join("expect.json"),
        serde_json::json!({"iss": ENTRA_ISSUER, "aud": ENTRA_AUDIENCE, "oid": OID}).to_string(),
    )
    .expect("write expectations");

    let raw = RawSignature::new(key, &token);
    let jwt = JsonWebToken::new(key);
    let ex = &fx.exchange;
    let rust = bench.compare(
        "Rust side (RS256, same token and key as the peers)",
        &mut [
            Case::new("raw aws-lc-rs RS256 verify, pre-parsed key", |n| {
                for _ in 0..n {
                    black_box(raw.verify());
                }
            }),
            Case::new("`Verifier::verify`", |n| {
                rt.block_on(async {
                    for _ in 0..n {
                        black_box(ex.verifier().verify(&token).await.is_ok());
                    }
                });
            }),
            Case::new("`jsonwebtoken::decode` + validate", |n| {
                for _ in 0..n {
                    black_box(jwt.decode(&token).is_ok());
                }
            }),
        ],
    );

    let mut rows = Vec::new();
    for (flag, script, name) in [
        ("--python", "verify_pyjwt.py", "PyJWT `jwt.decode` (Python)"),
        ("--node", "verify_jose.mjs", "jose `jwtVerify` (Node)"),
    ] {
        match bench.value(flag).filter(|c| !c.is_empty()) {
            Some(cmd) => match peer(cmd, &peers_dir.join(script), &work, &bench) {
                Some(r) => rows.push((name, r)),
                None => println!("{name}: failed, see above"),
            },
            None => println!("{name}: skipped (not installed; run benches/peers/run.sh)"),
        }
    }
    // The baseline again, after the peers, so slow drift shows.
    let after = bench.compare(
        "raw baseline after the peers",
        &mut [Case::new(
            "raw aws-lc-rs RS256 verify, pre-parsed key",
            |n| {
                for _ in 0..n {
                    black_box(raw.verify());
                }
            },
        )],
    );
    let base = f64::midpoint(rust[0].median, after[0].median);
    println!(
        "\n## Peers: the same RS256 token and key\n\nbaseline: raw aws-lc-rs RS256 verify, {} before and {} after the peers (ratios use the mean, {})\n",
        fmt_ns(rust[0].median),
        fmt_ns(after[0].median),
        fmt_ns(base)
    );
    println!("| implementation | median | min–max | ratio to the raw verify |");
    println!("|---|---:|---:|---:|");
    for s in &rust[1..] {
        println!(
            "| {} | {} | {}–{} | {:.2}× |",
            s.name,
            fmt_ns(s.median),
            fmt_ns(s.min),
            fmt_ns(s.max),
            s.median / base
        );
    }
    for (name, (med, min, max, lib)) in &rows {
        println!(
            "| {name} ({lib}) | {} | {}–{} | {:.2}× |",
            fmt_ns(*med),
            fmt_ns(*min),
            fmt_ns(*max),
            med / base
        );
    }
}
