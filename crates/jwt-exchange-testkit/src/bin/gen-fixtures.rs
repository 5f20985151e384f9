//! Regenerates `fixtures/`: keys, the public JWKS and the Entra/Auth0-shaped tokens.
//!
//! `cargo run -p jwt-exchange-testkit --bin gen-fixtures -- [DIR]` (default: the workspace's
//! `fixtures/`). Keys are random, so every run produces new files; tests only rely on the files
//! being consistent with each other.

use std::path::PathBuf;

use jwt_exchange::Algorithm;
use jwt_exchange_testkit::claims::{auth0, entra};
use jwt_exchange_testkit::fixtures::FIXTURE_NOW;
use jwt_exchange_testkit::{jwks, TestKey};

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(jwt_exchange_testkit::fixtures::dir, PathBuf::from);
    std::fs::create_dir_all(dir.join("keys"))?;
    std::fs::create_dir_all(dir.join("tokens"))?;
    let rsa = TestKey::generate(Algorithm::RS256, "rsa-2048");
    let ec = TestKey::generate(Algorithm::ES256, "p-256");
    let ed = TestKey::generate(Algorithm::EdDSA, "ed25519");
    for (k, name) in [(&rsa, "rsa-2048"), (&ec, "p-256"), (&ed, "ed25519")] {
        std::fs::write(dir.join(format!("keys/{name}.pem")), k.private_pem())?;
    }
    let set = jwks(&[&rsa, &ec, &ed]);
    std::fs::write(
        dir.join("jwks.json"),
        serde_json::to_string_pretty(&set).expect("json") + "\n",
    )?;
    let oid = "7f3c2a9e-1b4d-4e8f-a2c6-5d9e0f1a2b3c";
    let tokens = [
        (
            "entra-rs256",
            rsa.mint(&entra(
                FIXTURE_NOW,
                oid,
                &["lakefs-data-engineers", "readers"],
            )),
        ),
        (
            "entra-eddsa",
            ed.mint(&entra(FIXTURE_NOW, oid, &["readers"])),
        ),
        (
            "auth0-es256",
            ec.mint(&auth0(
                FIXTURE_NOW,
                "ZYDPLLBWSK3MVQJSIYHB1OR2JXCY0X2C",
                &["read:data", "write:data"],
            )),
        ),
    ];
    for (name, t) in tokens {
        std::fs::write(dir.join(format!("tokens/{name}.jwt")), t + "\n")?;
    }
    println!("fixtures written to {}", dir.display());
    Ok(())
}
