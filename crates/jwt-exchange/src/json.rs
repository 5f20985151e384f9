//! Strict JSON: objects with a repeated member name are an error.
//!
//! `serde_json` keeps the last of duplicate members, so `{"iss":"good","iss":"evil"}` would mean
//! different things to different parsers. RFC 7515 §5.2 and RFC 7519 §7.2 allow a recipient to
//! reject such input; this crate always does.

use std::borrow::Cow;
use std::collections::HashSet;
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

/// A JSON value borrowing its strings from the input where it can (strings without escapes):
/// the token hot path parses header and claims into this, without an allocation per member.
///
/// [`parse_doc`] accepts exactly what [`parse_object`] accepts and fails the same way on the same
/// input; [`Doc::into_map`] gives the same map.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Doc<'a>),
}

/// A JSON object with unique member names, in document order. Each name carries a [`tag`], so
/// a lookup compares one integer per member and the name itself only on a tag match.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Doc<'a> {
    members: Vec<(u64, Cow<'a, str>, Json<'a>)>,
}

/// The length and the first seven bytes of a name: equal names have equal tags, and names of up
/// to seven bytes are equal exactly when their tags are.
fn tag(name: &str) -> u64 {
    let b = name.as_bytes();
    let mut t = (b.len() as u64) << 56;
    for (i, byte) in b.iter().take(7).enumerate() {
        t |= u64::from(*byte) << (8 * i);
    }
    t
}

impl Json<'_> {
    /// The string, if this is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The same value as a `serde_json::Value`.
    pub(crate) fn into_value(self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => Value::Number(n),
            Json::String(s) => Value::String(s.into_owned()),
            Json::Array(a) => Value::Array(a.into_iter().map(Json::into_value).collect()),
            Json::Object(o) => Value::Object(o.into_map()),
        }
    }
}

impl<'a> Doc<'a> {
    /// The member named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Json<'a>> {
        let t = tag(name);
        self.members
            .iter()
            .find(|(kt, k, _)| *kt == t && (name.len() <= 7 || k.as_ref() == name))
            .map(|(_, _, v)| v)
    }

    /// Whether a member is named `name`.
    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The same object as a `serde_json::Map`.
    pub(crate) fn into_map(self) -> Map<String, Value> {
        self.members
            .into_iter()
            .map(|(_, k, v)| (k.into_owned(), v.into_value()))
            .collect()
    }
}

/// Parses `bytes` as a JSON object, rejecting duplicate member names at every depth, borrowing
/// strings from `bytes` where possible. Same acceptance and errors as [`parse_object`].
pub(crate) fn parse_doc(bytes: &[u8]) -> Result<Doc<'_>, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match BorrowedValue.deserialize(&mut de) {
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
        Json::Object(m) => Ok(m),
        _ => Err(StrictJsonError::NotAnObject),
    }
}

/// Objects up to this many members are checked for duplicates by a scan of their tags; larger
/// ones switch to a hash set, so the check stays linear.
const SCAN_MAX: usize = 32;

/// A `DeserializeSeed` producing a [`Json`], failing on duplicate member names.
struct BorrowedValue;

impl<'de> DeserializeSeed<'de> for BorrowedValue {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

/// A member name, borrowed when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

impl<'de> Visitor<'de> for BorrowedValue {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        BorrowedValue.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(BorrowedValue)? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut members: Vec<(u64, Cow<'de, str>, Json<'de>)> = Vec::new();
        let mut large: Option<HashSet<String>> = None;
        while let Some(key) = map.next_key_seed(Key)? {
            // As in `parse_object`: the value is parsed before the name is checked, so an error
            // inside the value comes first.
            let value = map.next_value_seed(BorrowedValue)?;
            let t = tag(&key);
            let duplicate = if let Some(set) = &mut large {
                !set.insert(key.as_ref().to_owned())
            } else {
                let dup = members
                    .iter()
                    .any(|(kt, k, _)| *kt == t && (key.len() <= 7 || *k == key));
                if !dup && members.len() >= SCAN_MAX {
                    let mut set: HashSet<String> = members
                        .iter()
                        .map(|(_, k, _)| k.as_ref().to_owned())
                        .collect();
                    set.insert(key.as_ref().to_owned());
                    large = Some(set);
                }
                dup
            };
            if duplicate {
                return Err(de::Error::custom(DUPLICATE));
            }
            members.push((t, key, value));
        }
        Ok(Json::Object(Doc { members }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `parse_doc` and `parse_object` agree on acceptance, errors and values.
    fn same(input: &[u8]) {
        let a = parse_object(input);
        let b = parse_doc(input).map(Doc::into_map);
        assert_eq!(a, b, "{}", String::from_utf8_lossy(input));
    }

    #[test]
    fn borrowed_parser_matches_the_map_parser() {
        let many = (0..100).fold(String::new(), |mut s, i| {
            use std::fmt::Write as _;
            let _ = write!(s, "\"k{i}\":{i},");
            s
        });
        let many_dup_late = format!("{{{many}\"k7\":1}}");
        let many_ok = format!("{{{}}}", many.trim_end_matches(','));
        for input in [
            &br#"{"a":1,"a":2}"#[..],
            br#"{"a":{"b":1,"b":1}}"#,
            br#"{"a":[{"b":1,"b":1}]}"#,
            br#"[{"b":1,"b":1}]"#,
            b"[1] x",
            b"[1]",
            b"\"foo\"",
            b"{} {}",
            b"{",
            b"",
            b"null",
            br#"{"a":1,"a":2,"#,
            br#"{"a":1,"a":{"#,
            br#"{"a":1,"\u0061":2}"#,
            br#"{"\u0061":1,"a":2}"#,
            br#"{"ab":1,"ba":2,"a\u0062":3}"#,
            br#"{"a":[1,"x",true,null,{"b":-2.5}],"c":18446744073709551615,"d":-9223372036854775808}"#,
            br#"{"s":"\ud83d\ude00 \n","t":"plain","n":1e400}"#,
            br#"{"s":"\ud800"}"#,
            br#"{"":1,"":2}"#,
            br#"{"x":1.0,"y":1e-5,"z":-0}"#,
            b"{\"a\":1}\n\t ",
            many_dup_late.as_bytes(),
            many_ok.as_bytes(),
        ] {
            same(input);
        }
        let deep = format!("{{\"a\":{}}}", "[".repeat(100_000));
        same(deep.as_bytes());
        let deep_ok = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        same(deep_ok.as_bytes());
    }

    #[test]
    fn borrowed_parser_borrows_plain_strings() {
        let doc = parse_doc(br#"{"iss":"https://idp","esc":"a\/b"}"#).unwrap();
        assert!(matches!(
            doc.get("iss"),
            Some(Json::String(Cow::Borrowed("https://idp")))
        ));
        assert_eq!(doc.get("esc").and_then(Json::as_str), Some("a/b"));
        assert!(doc.contains_key("esc") && !doc.contains_key("nope"));
    }

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
