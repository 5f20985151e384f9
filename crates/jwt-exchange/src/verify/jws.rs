//! Compact JWS parsing and protected-header checks (RFC 7515 §7.1).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::json::{self, StrictJsonError};
use crate::verify::error::{Malformed, Part, VerifyError};
use crate::Algorithm;

/// Header parameters that would let a token choose its own key, or that change how the payload
/// is processed. They are refused outright; keys come only from the configured JWKS.
pub(crate) const FORBIDDEN_HEADER_PARAMS: [&str; 7] =
    ["jku", "x5u", "jwk", "x5c", "b64", "zip", "enc"];

/// The three segments of a compact JWS, borrowed from the token.
pub(crate) struct Segments<'a> {
    /// `BASE64URL(header) '.' BASE64URL(payload)`: the signed bytes.
    pub(crate) signing_input: &'a str,
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
}

/// The checked protected header.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    pub(crate) typ: Option<String>,
}

/// Splits a compact JWS into its three segments; the header and signature must be non-empty.
/// (An empty payload is a valid JWS; as a JWT it then fails the claim-set JSON check.)
pub(crate) fn split(token: &str) -> Result<Segments<'_>, VerifyError> {
    let count = token.bytes().filter(|b| *b == b'.').count() + 1;
    if count != 3 {
        return Err(Malformed::SegmentCount { count }.into());
    }
    let mut it = token.splitn(3, '.');
    let (Some(header), Some(payload), Some(signature)) = (it.next(), it.next(), it.next()) else {
        return Err(Malformed::SegmentCount { count }.into());
    };
    for (seg, part) in [(header, Part::Header), (signature, Part::Signature)] {
        if seg.is_empty() {
            return Err(Malformed::EmptySegment(part).into());
        }
    }
    let signing_input = &token[..header.len() + 1 + payload.len()];
    Ok(Segments {
        signing_input,
        header,
        payload,
        signature,
    })
}

/// Decodes one segment as unpadded, canonical base64url.
pub(crate) fn b64(seg: &str, part: Part) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD
        .decode(seg)
        .map_err(|_| Malformed::Base64(part).into())
}

/// Decodes a segment as a strict JSON object.
pub(crate) fn json_object(seg: &str, part: Part) -> Result<Map<String, Value>, VerifyError> {
    let bytes = b64(seg, part)?;
    json::parse_object(&bytes).map_err(|e| {
        match e {
            StrictJsonError::Syntax => Malformed::Json(part),
            StrictJsonError::Duplicate => Malformed::DuplicateMember(part),
            StrictJsonError::NotAnObject => Malformed::NotAnObject(part),
        }
        .into()
    })
}

impl Header {
    /// Decodes and checks the protected header: `alg`, then `crit`, then the forbidden
    /// parameters, then the types of `kid` and `typ`.
    pub(crate) fn decode(seg: &str) -> Result<Header, VerifyError> {
        let map = json_object(seg, Part::Header)?;
        let alg = match map.get("alg") {
            Some(Value::String(s)) => s
                .parse::<Algorithm>()
                .map_err(|_| VerifyError::UnsupportedAlgorithm)?,
            _ => return Err(VerifyError::InvalidHeader { param: "alg" }),
        };
        if map.contains_key("crit") {
            return Err(VerifyError::CriticalHeader);
        }
        if let Some(param) = FORBIDDEN_HEADER_PARAMS
            .iter()
            .find(|p| map.contains_key(**p))
        {
            return Err(VerifyError::ForbiddenHeaderParameter { param });
        }
        let opt_str = |param: &'static str| match map.get(param) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(VerifyError::InvalidHeader { param }),
        };
        Ok(Header {
            alg,
            kid: opt_str("kid")?,
            typ: opt_str("typ")?,
        })
    }

    /// `typ` check: absent, or one of `allowed` compared ASCII case-insensitively, with the
    /// `application/` prefix optional (RFC 7515 §4.1.9).
    pub(crate) fn check_typ(&self, allowed: &[String]) -> Result<(), VerifyError> {
        let Some(typ) = &self.typ else {
            return Ok(());
        };
        let bare = |s: &str| -> String {
            let lower = s.to_ascii_lowercase();
            lower
                .strip_prefix("application/")
                .map_or(lower.clone(), str::to_owned)
        };
        let t = bare(typ);
        if allowed.iter().any(|a| bare(a) == t) {
            Ok(())
        } else {
            Err(VerifyError::DisallowedType)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn segment_rules() {
        assert_eq!(
            split("a.b").err(),
            Some(Malformed::SegmentCount { count: 2 }.into())
        );
        assert_eq!(
            split("a.b.c.d.e").err(),
            Some(Malformed::SegmentCount { count: 5 }.into())
        );
        assert_eq!(
            split("a.b.").err(),
            Some(Malformed::EmptySegment(Part::Signature).into())
        );
        assert_eq!(split("a..c").unwrap().signing_input, "a.");
        let s = split("aa.bb.cc").unwrap();
        assert_eq!(s.signing_input, "aa.bb");
        assert_eq!(s.signature, "cc");
    }

    #[test]
    fn base64_must_be_unpadded_and_canonical() {
        assert!(b64("Zm9v", Part::Payload).is_ok());
        assert!(b64("Zm8=", Part::Payload).is_err());
        assert!(b64("Zm8", Part::Payload).is_ok());
        assert!(b64("Zm9", Part::Payload).is_err());
        // Non-zero trailing bits are not canonical.
        assert!(b64("Zm9=", Part::Payload).is_err());
        assert!(b64("Zm-_", Part::Payload).is_ok());
        assert!(b64("Zm+/", Part::Payload).is_err());
        assert!(b64("Zm 9v", Part::Payload).is_err());
    }

    #[test]
    fn header_checks_in_order() {
        let h = |j: &str| Header::decode(&enc(j));
        assert_eq!(
            h(r#"{"alg":"none"}"#).unwrap_err(),
            VerifyError::UnsupportedAlgorithm
        );
        assert_eq!(
            h(r#"{"alg":"HS256"}"#).unwrap_err(),
            VerifyError::UnsupportedAlgorithm
        );
        assert_eq!(
            h(r#"{"kid":"x"}"#).unwrap_err(),
            VerifyError::InvalidHeader { param: "alg" }
        );
        assert_eq!(
            h(r#"{"alg":["RS256"]}"#).unwrap_err(),
            VerifyError::InvalidHeader { param: "alg" }
        );
        assert_eq!(
            h(r#"{"alg":"RS256","crit":["exp"],"exp":1}"#).unwrap_err(),
            VerifyError::CriticalHeader
        );
        assert_eq!(
            h(r#"{"alg":"RS256","jku":"http://127.0.0.1/"}"#).unwrap_err(),
            VerifyError::ForbiddenHeaderParameter { param: "jku" }
        );
        assert_eq!(
            h(r#"{"alg":"RS256","kid":7}"#).unwrap_err(),
            VerifyError::InvalidHeader { param: "kid" }
        );
        assert_eq!(
            h(r#"{"alg":"RS256","alg":"RS256"}"#).unwrap_err(),
            Malformed::DuplicateMember(Part::Header).into()
        );
        let ok = h(r#"{"alg":"RS256","kid":"k1","typ":"JWT","x5t":"abc"}"#).unwrap();
        assert_eq!(ok.alg, Algorithm::RS256);
        assert_eq!(ok.kid.as_deref(), Some("k1"));
    }

    #[test]
    fn typ_matching() {
        let allowed = vec!["JWT".to_owned(), "at+jwt".to_owned()];
        let with = |t: Option<&str>| Header {
            alg: Algorithm::RS256,
            kid: None,
            typ: t.map(str::to_owned),
        };
        assert!(with(None).check_typ(&allowed).is_ok());
        assert!(with(Some("jwt")).check_typ(&allowed).is_ok());
        assert!(with(Some("application/at+jwt")).check_typ(&allowed).is_ok());
        assert_eq!(
            with(Some("dpop+jwt")).check_typ(&allowed).unwrap_err(),
            VerifyError::DisallowedType
        );
    }
}
