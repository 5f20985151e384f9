//! `jwt-exchange keygen --alg RS256|ES256|EdDSA --kid KID --out DIR`: a private key PEM
//! (`DIR/KID.pem`, mode 0600) and the public JWKS (`DIR/jwks.json`; an existing file keeps its
//! other keys, so a new key can be published next to the old one during rotation).

use std::path::PathBuf;

use jwt_exchange::dev::SigningKey;
use jwt_exchange::Algorithm;
use serde_json::Value;

use crate::Failure;

/// Key algorithms `keygen` offers.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum KeyAlg {
    /// RSA 2048, RS256.
    #[value(name = "RS256")]
    Rs256,
    /// P-256, ES256.
    #[value(name = "ES256")]
    Es256,
    /// Ed25519, EdDSA.
    #[value(name = "EdDSA")]
    EdDsa,
}

/// `keygen` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Key algorithm.
    #[arg(long, value_enum)]
    alg: KeyAlg,
    /// Key id published in the JWKS and put in minted tokens' headers.
    #[arg(long)]
    kid: String,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing `KID.pem` (and that kid's JWKS entry). Without it an existing key
    /// is never overwritten: its tokens would stop verifying.
    #[arg(long)]
    force: bool,
}

pub(crate) fn run(a: &Args) -> Result<(), Failure> {
    let alg = match a.alg {
        KeyAlg::Rs256 => Algorithm::RS256,
        KeyAlg::Es256 => Algorithm::ES256,
        KeyAlg::EdDsa => Algorithm::EdDSA,
    };
    if a.kid.is_empty() || a.kid.contains(['/', '\\']) || a.kid.starts_with('.') {
        return Err(Failure::Config(
            "--kid must be non-empty and usable as a file name".into(),
        ));
    }
    let key = SigningKey::generate(alg, &a.kid).map_err(|e| Failure::Run(e.to_string()))?;
    std::fs::create_dir_all(&a.out)
        .map_err(|e| Failure::Run(format!("creating {}: {e}", a.out.display())))?;
    let pem_path = a.out.join(format!("{}.pem", a.kid));
    if pem_path.exists() && !a.force {
        return Err(Failure::Config(format!(
            "{} exists: choose another --kid for a new key (rotation), or --force to replace it",
            pem_path.display()
        )));
    }
    let jwks_path = a.out.join("jwks.json");
    // Read (and check) the published keys before writing anything: a JWKS that cannot be read
    // must not be replaced by one holding only the new key in the middle of a rotation.
    let mut keys: Vec<Value> = match std::fs::read_to_string(&jwks_path) {
        Ok(text) => {
            let doc: Value = serde_json::from_str(&text).map_err(|e| {
                Failure::Run(format!(
                    "{} exists but is not JSON: {e}",
                    jwks_path.display()
                ))
            })?;
            doc.get("keys")
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| {
                    Failure::Run(format!("{} has no `keys` array", jwks_path.display()))
                })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(Failure::Run(format!(
                "reading {}: {e}",
                jwks_path.display()
            )))
        }
    };
    jwt_exchange::client::write_secret_file(&pem_path, &key.private_pem())
        .map_err(|e| Failure::Run(e.to_string()))?;
    keys.retain(|k| k.get("kid").and_then(Value::as_str) != Some(a.kid.as_str()));
    keys.push(key.public_jwk());
    let doc = serde_json::json!({ "keys": keys });
    std::fs::write(
        &jwks_path,
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n",
    )
    .map_err(|e| Failure::Run(format!("writing {}: {e}", jwks_path.display())))?;
    println!("private key: {}", pem_path.display());
    println!(
        "public JWKS: {} ({} key(s))",
        jwks_path.display(),
        keys.len()
    );
    Ok(())
}
