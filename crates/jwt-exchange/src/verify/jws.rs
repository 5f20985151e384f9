//! Compact JWS parsing and protected-header checks (RFC 7515 §7.1).

use crate::json::{self, Doc, Json, StrictJsonError};
use crate::verify::error::{Malformed, Part, VerifyError};
use crate::Algorithm;

/// Header parameters that would let a token choose its own key, or that change how the payload
/// is processed. They are refused outright; keys come only from the configured JWKS.
pub(crate) const FORBIDDEN_HEADER_PARAMS: [&str; 7] =
    ["jku", "x5u", "jwk", "x5c", "b64", "zip", "enc"];

/// Longest `kid` a token may carry, in bytes. RFC 7515 sets no limit; IdPs use 20–90 characters
/// (thumbprints, UUIDs, hashes). A longer `kid` is refused as an invalid header before any key
/// lookup: nothing legitimate is lost, and no attacker-sized string is ever hashed, compared or
/// kept.
pub(crate) const MAX_KID_BYTES: usize = 256;

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
    // Two searches for the separators and one for a third (all memchr-fast); the full count is
    // only needed for the error.
    let count = || token.bytes().filter(|b| *b == b'.').count() + 1;
    let Some(first) = token.find('.') else {
        return Err(Malformed::SegmentCount { count: 1 }.into());
    };
    let Some(second) = token[first + 1..].find('.').map(|i| first + 1 + i) else {
        return Err(Malformed::SegmentCount { count: 2 }.into());
    };
    let signature = &token[second + 1..];
    if signature.contains('.') {
        return Err(Malformed::SegmentCount { count: count() }.into());
    }
    let header = &token[..first];
    let payload = &token[first + 1..second];
    for (seg, part) in [(header, Part::Header), (signature, Part::Signature)] {
        if seg.is_empty() {
            return Err(Malformed::EmptySegment(part).into());
        }
    }
    Ok(Segments {
        signing_input: &token[..second],
        header,
        payload,
        signature,
    })
}

/// A decoded claim set in a buffer that this thread reuses for its next token: a login decodes
/// about a kilobyte of claims, and allocating (and zeroing) that afresh for every token cost
/// more than decoding it — allocations of a kilobyte or more also make glibc's malloc
/// consolidate its free lists. The buffer is wiped before it is put back, so no claim set
/// outlives its verification; buffers over [`Scratch::KEEP`] bytes are freed instead.
pub(crate) struct Scratch {
    buf: Vec<u8>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Scratch {
    /// Claim sets up to this many bytes keep their buffer for the next token.
    const KEEP: usize = 16 * 1024;

    /// Decodes `seg` like [`b64`] into this thread's buffer (taken out of the thread while it
    /// is in use, so a task that moves between threads, or two tokens on one thread, never
    /// share it).
    pub(crate) fn decode(seg: &str, part: Part) -> Result<Scratch, VerifyError> {
        let mut buf = SCRATCH.try_with(std::cell::Cell::take).unwrap_or_default();
        buf.clear();
        let bad = || VerifyError::from(Malformed::Base64(part));
        let len = crate::b64url::decoded_len(seg.len()).ok_or_else(bad)?;
        buf.resize(len, 0);
        let mut out = Scratch { buf };
        crate::b64url::decode_to_slice(seg.as_bytes(), &mut out.buf).map_err(|_| bad())?;
        Ok(out)
    }
}

impl std::ops::Deref for Scratch {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.buf.capacity() <= Self::KEEP {
            self.buf.fill(0);
            let buf = std::mem::take(&mut self.buf);
            // Fails only while the thread is being torn down; the buffer is then just freed.
            let _ = SCRATCH.try_with(|slot| slot.set(buf));
        }
    }
}

/// Signatures up to this many bytes are decoded on the stack (RSA-4096 is 512).
pub(crate) const SIGNATURE_STACK: usize = 512;

/// Decodes the signature segment into `stack` when it fits, else onto the heap (`heap`).
pub(crate) fn signature<'b>(
    seg: &str,
    stack: &'b mut [u8; SIGNATURE_STACK],
    heap: &'b mut Vec<u8>,
) -> Result<&'b [u8], VerifyError> {
    let bad = || VerifyError::from(Malformed::Base64(Part::Signature));
    let len = crate::b64url::decoded_len(seg.len()).ok_or_else(bad)?;
    let out: &mut [u8] = if len <= SIGNATURE_STACK {
        &mut stack[..]
    } else {
        heap.resize(len, 0);
        heap
    };
    let n = crate::b64url::decode_to_slice(seg.as_bytes(), out).map_err(|_| bad())?;
    Ok(&out[..n])
}

/// Decodes one segment as unpadded, canonical base64url.
pub(crate) fn b64(seg: &str, part: Part) -> Result<Vec<u8>, VerifyError> {
    crate::b64url::decode_vec(seg.as_bytes()).map_err(|_| Malformed::Base64(part).into())
}

/// Parses decoded segment bytes as a strict JSON object (strings borrowed where possible).
pub(crate) fn json_doc(bytes: &[u8], part: Part) -> Result<Doc<'_>, VerifyError> {
    json::parse_doc(bytes).map_err(|e| {
        match e {
            StrictJsonError::Syntax => Malformed::Json(part),
            StrictJsonError::Duplicate => Malformed::DuplicateMember(part),
            StrictJsonError::NotAnObject => Malformed::NotAnObject(part),
        }
        .into()
    })
}

/// Header bytes up to this length are decoded on the stack.
const HEADER_STACK: usize = 384;

impl Header {
    /// Decodes and checks the protected header: `alg`, then `crit`, then the forbidden
    /// parameters, then the types of `kid` and `typ`.
    pub(crate) fn decode(seg: &str) -> Result<Header, VerifyError> {
        let mut stack = [0u8; HEADER_STACK];
        let heap;
        let bytes: &[u8] = if base64::decoded_len_estimate(seg.len()) <= HEADER_STACK {
            // Same rules as `b64`, into a stack buffer (it cannot be too small).
            let n = crate::b64url::decode_to_slice(seg.as_bytes(), &mut stack)
                .map_err(|_| VerifyError::from(Malformed::Base64(Part::Header)))?;
            &stack[..n]
        } else {
            heap = b64(seg, Part::Header)?;
            &heap
        };
        let map = json_doc(bytes, Part::Header)?;
        let alg = match map.get("alg") {
            Some(Json::String(s)) => s
                .parse::<Algorithm>()
                .map_err(|_| VerifyError::UnsupportedAlgorithm)?,
            _ => return Err(VerifyError::InvalidHeader { param: "alg" }),
        };
        if map.contains_key("crit") {
            return Err(VerifyError::CriticalHeader);
        }
        if let Some(param) = FORBIDDEN_HEADER_PARAMS.iter().find(|p| map.contains_key(p)) {
            return Err(VerifyError::ForbiddenHeaderParameter { param });
        }
        let opt_str = |param: &'static str| match map.get(param) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.as_ref().to_owned())),
            Some(_) => Err(VerifyError::InvalidHeader { param }),
        };
        let kid = opt_str("kid")?;
        if kid.as_ref().is_some_and(|k| k.len() > MAX_KID_BYTES) {
            return Err(VerifyError::InvalidHeader { param: "kid" });
        }
        Ok(Header {
            alg,
            kid,
            typ: opt_str("typ")?,
        })
    }

    /// `typ` check: absent, or one of `allowed` compared ASCII case-insensitively, with the
    /// `application/` prefix optional (RFC 7515 §4.1.9).
    pub(crate) fn check_typ(&self, allowed: &[String]) -> Result<(), VerifyError> {
        // Lower-cased, then without an `application/` prefix; compared without allocating.
        fn bare(s: &str) -> &str {
            const PREFIX: &str = "application/";
            match s.get(..PREFIX.len()) {
                Some(p) if p.eq_ignore_ascii_case(PREFIX) => &s[PREFIX.len()..],
                _ => s,
            }
        }
        let Some(typ) = &self.typ else {
            return Ok(());
        };
        let t = bare(typ);
        if allowed.iter().any(|a| bare(a).eq_ignore_ascii_case(t)) {
            Ok(())
        } else {
            Err(VerifyError::DisallowedType)
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::*;

    fn enc(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn the_claim_buffer_is_reused_wiped_and_never_shows_a_previous_claim_set() {
        let long = enc(&"x".repeat(600));
        let short = enc("{}");
        let first = Scratch::decode(&long, Part::Payload).unwrap();
        assert_eq!(&*first, "x".repeat(600).as_bytes());
        // A second token on the same thread while the first is in use gets its own buffer.
        let second = Scratch::decode(&short, Part::Payload).unwrap();
        assert_eq!(&*second, b"{}");
        drop(second);
        drop(first);
        // What is parked for the next token is wiped.
        let parked = SCRATCH.with(std::cell::Cell::take);
        assert!(parked.capacity() >= 600, "the larger buffer is kept");
        assert!(parked.is_empty() || parked.iter().all(|b| *b == 0));
        SCRATCH.with(|c| c.set(parked));
        let again = Scratch::decode(&short, Part::Payload).unwrap();
        assert_eq!(&*again, b"{}", "no bytes of an earlier claim set");
        drop(again);
        assert!(matches!(
            Scratch::decode("a", Part::Payload),
            Err(VerifyError::Malformed(Malformed::Base64(Part::Payload)))
        ));
        // Oversized buffers are freed rather than kept.
        drop(Scratch::decode(&enc(&"y".repeat(Scratch::KEEP + 1)), Part::Payload).unwrap());
        assert!(SCRATCH.with(std::cell::Cell::take).capacity() <= Scratch::KEEP);
    }

    #[test]
    fn signatures_decode_on_the_stack_or_beyond_it_on_the_heap() {
        for len in [0, 64, 256, SIGNATURE_STACK, SIGNATURE_STACK + 1, 1024] {
            let sig: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let (mut stack, mut heap) = ([0u8; SIGNATURE_STACK], Vec::new());
            let got = signature(&URL_SAFE_NO_PAD.encode(&sig), &mut stack, &mut heap).unwrap();
            assert_eq!(got, &sig[..]);
        }
        let (mut stack, mut heap) = ([0u8; SIGNATURE_STACK], Vec::new());
        assert!(matches!(
            signature("ab=c", &mut stack, &mut heap),
            Err(VerifyError::Malformed(Malformed::Base64(Part::Signature)))
        ));
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
