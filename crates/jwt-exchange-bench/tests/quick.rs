//! Runs every bench binary once in `--quick` mode, so CI keeps them compiling and working.
//!
//! This checks behaviour only (a bench exits non-zero when a behavioural check fails, such as
//! the JWKS fetch count of a stampede, or an HTTP status); it never asserts a timing. The
//! binaries are the ones `cargo test` builds for this package, in the test profile: the figures
//! they print here are meaningless — run them with `--release` for numbers.
//!
//! `cargo test -p jwt-exchange-bench -- --nocapture` shows their output.

use std::process::Command;

fn quick(name: &str, exe: &str, extra: &[&str]) {
    let out = Command::new(exe)
        .arg("--quick")
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "{name} --quick failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn login() {
    quick("login", env!("CARGO_BIN_EXE_login"), &[]);
}

#[test]
fn authenticate() {
    quick("authenticate", env!("CARGO_BIN_EXE_authenticate"), &[]);
}

#[test]
fn scale() {
    quick("scale", env!("CARGO_BIN_EXE_scale"), &[]);
}

#[test]
fn jwks() {
    quick("jwks", env!("CARGO_BIN_EXE_jwks"), &[]);
}

#[test]
fn http() {
    quick("http", env!("CARGO_BIN_EXE_http"), &[]);
    // The same server on one work-stealing runtime instead of thread per core.
    quick(
        "http --multi-thread",
        env!("CARGO_BIN_EXE_http"),
        &["--multi-thread", "--rows", "healthz,check"],
    );
}

#[test]
fn redis() {
    quick("redis", env!("CARGO_BIN_EXE_redis"), &[]);
}

#[test]
fn hotloop() {
    for path in [
        "login",
        "verify",
        "authenticate",
        "authorize",
        "mint",
        "check",
    ] {
        quick("hotloop", env!("CARGO_BIN_EXE_hotloop"), &[path]);
    }
    quick("hotloop", env!("CARGO_BIN_EXE_hotloop"), &["raw"]);
    quick(
        "hotloop",
        env!("CARGO_BIN_EXE_hotloop"),
        &["login", "--groups", "5"],
    );
}

#[test]
fn peers_rust_side() {
    // The peers themselves need a network install (benches/peers/run.sh); this keeps the Rust
    // side working.
    let out = std::env::temp_dir().join(format!("jxbench-peers-{}", std::process::id()));
    let out = out.to_str().expect("UTF-8 temp path").to_owned();
    quick("peers", env!("CARGO_BIN_EXE_peers"), &["--out", &out]);
    let _ = std::fs::remove_dir_all(&out);
}
