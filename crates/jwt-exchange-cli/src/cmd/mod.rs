//! One module per subcommand.

pub(crate) mod demo;
pub(crate) mod git_credential;
pub(crate) mod inspect;
pub(crate) mod keygen;
pub(crate) mod login;
pub(crate) mod migrate;
pub(crate) mod mint;
pub(crate) mod serve;
pub(crate) mod verify;

use std::io::Read;

use crate::Failure;

/// Reads a token from the argument, or from stdin when it is `-` or absent.
pub(crate) fn token_arg(arg: Option<&str>) -> Result<String, Failure> {
    let raw = match arg {
        Some(t) if t != "-" => t.to_owned(),
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .take(jwt_exchange::client::MAX_TOKEN_FILE_BYTES)
                .read_to_string(&mut s)
                .map_err(|e| Failure::Run(format!("reading the token from stdin: {e}")))?;
            s
        }
    };
    let t = raw.trim();
    if t.is_empty() {
        return Err(Failure::Config(
            "no token given (pass it as an argument or on stdin)".into(),
        ));
    }
    Ok(t.to_owned())
}
