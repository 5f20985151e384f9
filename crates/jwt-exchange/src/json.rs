//! Strict JSON: objects with a repeated member name are an error.
//!
//! `serde_json` keeps the last of duplicate members, so `{"iss":"good","iss":"evil"}` would mean
//! different things to different parsers. RFC 7515 §5.2 and RFC 7519 §7.2 allow a recipient to
//! reject such input; this crate always does.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a byte string is not a strict JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrictJsonError {
    Syntax,
    Duplicate,
    NotAnObject,
}

const DUPLICATE: &str = "duplicate member";

/// Parses `bytes` as a JSON object, rejecting duplicate member names at every depth.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match StrictValue.deserialize(&mut de) {
        Ok(v) => v,
        Err(e) => {
            return Err(if e.to_string().starts_with(DUPLICATE) {
                StrictJsonError::Duplicate
            } else {
                StrictJsonError::Syntax
            })
        }
    };
    if de.end().is_err() {
        return Err(StrictJsonError::Syntax);
    }
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(StrictJsonError::NotAnObject),
    }
}

/// A `DeserializeSeed` producing a `serde_json::Value`, failing on duplicate member names.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictValue)?;
            if out.insert(key, value).is_some() {
                return Err(de::Error::custom(DUPLICATE));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_duplicates_at_any_depth() {
        assert_eq!(
            parse_object(br#"{"a":1,"a":2}"#),
            Err(StrictJsonError::Duplicate)
        );
        assert_eq!(
            parse_object(br#"{"a":{"b":1,"b":1}}"#),
            Err(StrictJsonError::Duplicate)
        );
        assert_eq!(
            parse_object(br#"{"a":[{"b":1,"b":1}]}"#),
            Err(StrictJsonError::Duplicate)
        );
    }

    #[test]
    fn rejects_non_objects_and_trailing_data() {
        assert_eq!(parse_object(b"[1]"), Err(StrictJsonError::NotAnObject));
        assert_eq!(parse_object(b"\"foo\""), Err(StrictJsonError::NotAnObject));
        assert_eq!(parse_object(b"{} {}"), Err(StrictJsonError::Syntax));
        assert_eq!(parse_object(b"{"), Err(StrictJsonError::Syntax));
        assert_eq!(parse_object(b""), Err(StrictJsonError::Syntax));
    }

    #[test]
    fn keeps_values_exactly() {
        let m = parse_object(br#"{"a":[1,"x",true,null,{"b":-2.5}],"c":18446744073709551615}"#)
            .unwrap();
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"a":[1,"x",true,null,{"b":-2.5}],"c":18_446_744_073_709_551_615_u64})
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        let doc = format!("{{\"a\":{deep}}}");
        assert_eq!(parse_object(doc.as_bytes()), Err(StrictJsonError::Syntax));
    }
}
