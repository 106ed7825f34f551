//! The JSON object format (DynamicValue fallback and raw state JSON).
//!
//! Follows go-cty's `cty/json`: numbers are JSON numbers (kept exactly, so
//! the text is parsed here rather than through `f64`), `dynamic` values are
//! `{"value": ..., "type": ...}`, a missing object attribute is null and an
//! unexpected one is an error (or dropped, by [`decode_lenient`]). As in
//! go-cty, a string is accepted where a number or bool is expected and a
//! number or bool where a string is. JSON has no unknowns.
//!
//! Why a small lexer of our own instead of `serde_json::from_slice`: exact
//! numbers there need serde_json's `arbitrary_precision` feature, which is
//! crate-wide by Cargo feature unification and changes how every dependency
//! sees numbers (it breaks numbers inside `#[serde(flatten)]` and untagged
//! enums, which the Kubernetes client crates rely on). The lexer also
//! rejects duplicate keys, which serde_json silently resolves to the last.
//! It is covered by property tests and the `fuzz/` targets.

use std::collections::BTreeMap;

use super::CodecError;
use super::msgpack::{MAX_DEPTH, type_name};
use super::number;
use crate::framework::{AttributePath, PathStep, Type, Value};

/// Decode a JSON value of type `ty`. JSON has no unknowns.
///
/// # Errors
/// When the bytes are not JSON, or not a value of `ty`; unexpected object
/// attributes are errors.
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let json = parse(bytes)?;
    convert(&json, ty, &mut Vec::new(), 0, Mode::Strict)
}

/// Decode raw state JSON written under an older schema: object attributes no
/// longer in `ty` are dropped and missing ones are null, at every depth.
///
/// # Errors
/// When the bytes are not JSON, or a value cannot be read as its type.
pub fn decode_lenient(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let json = parse(bytes)?;
    convert(&json, ty, &mut Vec::new(), 0, Mode::Lenient)
}

/// Encode a wholly known `value` as JSON under `ty`.
///
/// # Errors
/// When `value` contains an unknown or does not conform to `ty`.
pub fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut out = String::new();
    encode_value(value, ty, &mut Vec::new(), &mut out, 0)?;
    Ok(out.into_bytes())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    Lenient,
}

fn error(path: &[PathStep], message: impl Into<String>) -> CodecError {
    CodecError {
        message: message.into(),
        path: AttributePath(path.to_vec()),
    }
}

/// Parsed JSON, numbers kept as their text.
#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a bool",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// As a `serde_json::Value`, for type JSON.
    fn to_serde(&self) -> Result<serde_json::Value, String> {
        use serde_json::Value as J;
        Ok(match self {
            Json::Null => J::Null,
            Json::Bool(b) => J::Bool(*b),
            Json::Number(_) => return Err("a type cannot contain a number".to_owned()),
            Json::String(s) => J::String(s.clone()),
            Json::Array(items) => J::Array(items.iter().map(Json::to_serde).collect::<Result<_, _>>()?),
            Json::Object(items) => J::Object(
                items
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.to_serde()?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
}

/// Deepest JSON nesting parsed; a dynamic value's wrapper object adds one
/// level per value level, hence twice the value limit.
const MAX_JSON_DEPTH: usize = 2 * MAX_DEPTH + 2;

fn parse(bytes: &[u8]) -> Result<Json, CodecError> {
    let text = std::str::from_utf8(bytes).map_err(|e| error(&[], format!("JSON is not valid UTF-8: {e}")))?;
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err("unexpected data after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> CodecError {
        error(&[], format!("invalid JSON at byte {}: {message}", self.pos))
    }

    fn ws(&mut self) {
        while matches!(self.s.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, CodecError> {
        if self.s.get(self.pos..self.pos + word.len()) == Some(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("unexpected character"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, CodecError> {
        if depth > MAX_JSON_DEPTH {
            return Err(self.err(&format!("nested deeper than {MAX_JSON_DEPTH} levels")));
        }
        match self.s.get(self.pos) {
            None => Err(self.err("unexpected end of input")),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'{') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(items));
                }
                loop {
                    self.ws();
                    if self.s.get(self.pos) != Some(&b'"') {
                        return Err(self.err("expected a string key"));
                    }
                    let key = self.string()?;
                    self.ws();
                    if self.s.get(self.pos) != Some(&b':') {
                        return Err(self.err("expected ':'"));
                    }
                    self.pos += 1;
                    self.ws();
                    let v = self.value(depth + 1)?;
                    items.push((key, v));
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Object(items));
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Json, CodecError> {
        let start = self.pos;
        if self.s.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = self.digits();
        if n == 0 || (n > 1 && self.s.get(int_start) == Some(&b'0')) {
            return Err(self.err("invalid number"));
        }
        if self.s.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number: no digits after '.'"));
            }
        }
        if matches!(self.s.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.s.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number: no digits in exponent"));
            }
        }
        let text = self
            .text
            .get(start..self.pos)
            .ok_or_else(|| self.err("invalid number"))?;
        Ok(Json::Number(text.to_owned()))
    }

    fn hex4(&mut self) -> Result<u32, CodecError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("short \\u escape"))?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.err("invalid \\u escape"));
        }
        let v = u32::from_str_radix(digits, 16).map_err(|_| self.err("invalid \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    /// A string; the opening quote is at `pos`.
    fn string(&mut self) -> Result<String, CodecError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while matches!(self.s.get(self.pos), Some(c) if *c != b'"' && *c != b'\\' && *c >= 0x20) {
                self.pos += 1;
            }
            // Runs end at ASCII bytes, so they are whole UTF-8 sequences.
            out.push_str(
                self.text
                    .get(run_start..self.pos)
                    .ok_or_else(|| self.err("invalid string"))?,
            );
            match self.s.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = *self.s.get(self.pos).ok_or_else(|| self.err("unterminated escape"))?;
                    self.pos += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi)
                                && self.s.get(self.pos..self.pos + 2) == Some(b"\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                } else {
                                    self.pos = save;
                                    hi
                                }
                            } else {
                                hi
                            };
                            // Lone surrogates become U+FFFD, as Go's decoder does.
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
                None => return Err(self.err("unterminated string")),
            }
        }
    }
}

fn convert(j: &Json, ty: &Type, path: &mut Vec<PathStep>, depth: usize, mode: Mode) -> Result<Value, CodecError> {
    if depth > MAX_DEPTH {
        return Err(error(path, format!("value nested deeper than {MAX_DEPTH} levels")));
    }
    if let Json::Null = j {
        return Ok(Value::Null);
    }
    let mismatch = |what: &str| error(path, format!("{what} is required, found {}", j.kind()));
    match ty {
        Type::Dynamic => dynamic(j, path, depth, mode),
        Type::Bool => match j {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::String(s) if s == "true" => Ok(Value::Bool(true)),
            Json::String(s) if s == "false" => Ok(Value::Bool(false)),
            _ => Err(mismatch("a bool")),
        },
        Type::Number => match j {
            Json::Number(text) | Json::String(text) => number::parse_decimal(text)
                .map(Value::Number)
                .map_err(|m| error(path, m)),
            _ => Err(mismatch("a number")),
        },
        Type::String => match j {
            Json::String(s) | Json::Number(s) => Ok(Value::String(s.clone())),
            Json::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err(mismatch("a string")),
        },
        Type::List(elem) | Type::Set(elem) => {
            let Json::Array(items) = j else {
                return Err(mismatch(if matches!(ty, Type::List(_)) { "a list" } else { "a set" }));
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(PathStep::Index(i as i64));
                out.push(convert(item, elem, path, depth + 1, mode)?);
                path.pop();
            }
            Ok(if matches!(ty, Type::List(_)) {
                Value::List(out)
            } else {
                Value::Set(out)
            })
        }
        Type::Tuple(elems) => {
            let Json::Array(items) = j else {
                return Err(mismatch("a tuple"));
            };
            if items.len() != elems.len() {
                return Err(error(
                    path,
                    format!(
                        "a tuple of {} elements is required, found {} elements",
                        elems.len(),
                        items.len()
                    ),
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, (item, elem)) in items.iter().zip(elems).enumerate() {
                path.push(PathStep::Index(i as i64));
                out.push(convert(item, elem, path, depth + 1, mode)?);
                path.pop();
            }
            Ok(Value::Tuple(out))
        }
        Type::Map(elem) => {
            let Json::Object(items) = j else {
                return Err(mismatch("a map"));
            };
            let mut out = BTreeMap::new();
            for (k, item) in items {
                path.push(PathStep::Key(k.clone()));
                if out.contains_key(k) {
                    return Err(error(path, "duplicate map key"));
                }
                out.insert(k.clone(), convert(item, elem, path, depth + 1, mode)?);
                path.pop();
            }
            Ok(Value::Map(out))
        }
        Type::Object(attrs, _) => {
            let Json::Object(items) = j else {
                return Err(mismatch("an object"));
            };
            let mut out = BTreeMap::new();
            for (k, item) in items {
                path.push(PathStep::Attribute(k.clone()));
                if out.contains_key(k) {
                    return Err(error(path, "duplicate attribute"));
                }
                match attrs.get(k) {
                    Some(attr_ty) => {
                        out.insert(k.clone(), convert(item, attr_ty, path, depth + 1, mode)?);
                    }
                    None if mode == Mode::Lenient => {}
                    None => return Err(error(path, "unsupported attribute: the schema has no such attribute")),
                }
                path.pop();
            }
            for name in attrs.keys() {
                if !out.contains_key(name) {
                    out.insert(name.clone(), Value::Null);
                }
            }
            Ok(Value::Object(out))
        }
    }
}

/// `{"value": ..., "type": ...}`.
fn dynamic(j: &Json, path: &mut Vec<PathStep>, depth: usize, mode: Mode) -> Result<Value, CodecError> {
    let Json::Object(items) = j else {
        return Err(error(
            path,
            format!(
                "a dynamic value {{\"value\", \"type\"}} is required, found {}",
                j.kind()
            ),
        ));
    };
    let mut ty = None;
    let mut value = None;
    for (k, item) in items {
        let slot = match k.as_str() {
            "type" => &mut ty,
            "value" => &mut value,
            other => return Err(error(path, format!("invalid key {other:?} in a dynamic value"))),
        };
        if slot.replace(item).is_some() {
            return Err(error(path, format!("duplicate key {k:?} in a dynamic value")));
        }
    }
    let ty = ty.ok_or_else(|| error(path, "missing \"type\" in a dynamic value"))?;
    let value = value.ok_or_else(|| error(path, "missing \"value\" in a dynamic value"))?;
    let ty = ty
        .to_serde()
        .and_then(|t| Type::from_json(&t))
        .map_err(|e| error(path, format!("a dynamic value's type is invalid: {e}")))?;
    let inner = convert(value, &ty, path, depth + 1, mode)?;
    Ok(match (ty, inner) {
        (Type::Dynamic, inner) => inner,
        (_, Value::Null) => Value::Null,
        (ty, inner) => Value::Dynamic(ty, Box::new(inner)),
    })
}

fn write_str(out: &mut String, s: &str) {
    // Infallible for a str: serde_json only fails on non-string map keys.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

fn encode_value(
    v: &Value,
    ty: &Type,
    path: &mut Vec<PathStep>,
    out: &mut String,
    depth: usize,
) -> Result<(), CodecError> {
    if depth > MAX_DEPTH {
        return Err(error(path, format!("value nested deeper than {MAX_DEPTH} levels")));
    }
    match (ty, v) {
        (_, Value::Null) => out.push_str("null"),
        (_, Value::Unknown(_)) => return Err(error(path, "an unknown value cannot be encoded as JSON")),
        (Type::Dynamic, Value::Dynamic(inner_ty, inner)) => {
            if *inner_ty == Type::Dynamic {
                return Err(error(path, "a dynamic value's type cannot itself be dynamic"));
            }
            out.push_str("{\"value\":");
            encode_value(inner, inner_ty, path, out, depth + 1)?;
            out.push_str(",\"type\":");
            out.push_str(&inner_ty.to_json().to_string());
            out.push('}');
        }
        (Type::Dynamic, _) => {
            return Err(error(
                path,
                format!(
                    "{} cannot be encoded as dynamic: it must carry its type (Value::Dynamic)",
                    v.kind()
                ),
            ));
        }
        (Type::Bool, Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        (Type::Number, Value::Number(n)) => out.push_str(&number::to_text(n)),
        (Type::String, Value::String(s)) => write_str(out, s),
        (Type::List(elem) | Type::Set(elem), Value::List(items) | Value::Set(items) | Value::Tuple(items)) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                path.push(PathStep::Index(i as i64));
                encode_value(item, elem, path, out, depth + 1)?;
                path.pop();
            }
            out.push(']');
        }
        (Type::Tuple(elems), Value::List(items) | Value::Set(items) | Value::Tuple(items)) => {
            if items.len() != elems.len() {
                return Err(error(
                    path,
                    format!(
                        "a tuple of {} elements is required, found {} elements",
                        elems.len(),
                        items.len()
                    ),
                ));
            }
            out.push('[');
            for (i, (item, elem)) in items.iter().zip(elems).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                path.push(PathStep::Index(i as i64));
                encode_value(item, elem, path, out, depth + 1)?;
                path.pop();
            }
            out.push(']');
        }
        (Type::Map(elem), Value::Map(items) | Value::Object(items)) => {
            out.push('{');
            for (i, (k, item)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                path.push(PathStep::Key(k.clone()));
                encode_value(item, elem, path, out, depth + 1)?;
                path.pop();
            }
            out.push('}');
        }
        (Type::Object(attrs, _), Value::Object(items) | Value::Map(items)) => {
            if let Some(extra) = items.keys().find(|k| !attrs.contains_key(*k)) {
                path.push(PathStep::Attribute(extra.clone()));
                return Err(error(path, "unsupported attribute: the type has no such attribute"));
            }
            out.push('{');
            for (i, (name, attr_ty)) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, name);
                out.push(':');
                path.push(PathStep::Attribute(name.clone()));
                encode_value(items.get(name).unwrap_or(&Value::Null), attr_ty, path, out, depth + 1)?;
                path.pop();
            }
            out.push('}');
        }
        _ => {
            return Err(error(
                path,
                format!("{} cannot be encoded as {}", v.kind(), type_name(ty)),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Number;

    fn num(text: &str) -> Value {
        Value::Number(number::parse_decimal(text).unwrap())
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn obj_ty(pairs: &[(&str, Type)]) -> Type {
        Type::object(pairs.iter().map(|(k, t)| (k.to_string(), t.clone())))
    }

    #[test]
    fn numbers_keep_full_precision() {
        for text in [
            "1",
            "-1",
            "1.5",
            "12345678901234567890.123",
            "9223372036854775808",
            "0.1",
        ] {
            let v = decode(text.as_bytes(), &Type::Number).unwrap();
            assert_eq!(v, num(text));
            assert_eq!(String::from_utf8(encode(&v, &Type::Number).unwrap()).unwrap(), text);
        }
        assert_eq!(
            decode(b"1e3", &Type::Number).unwrap(),
            Value::Number(Number::from(1000))
        );
        assert_eq!(encode(&num("1.50"), &Type::Number).unwrap(), b"1.5");
        // As go-cty, a string is accepted for a number.
        assert_eq!(decode(b"\"42\"", &Type::Number).unwrap(), num("42"));
        for bad in ["01", "1.", "-", "+1", "1e", ".5", "NaN"] {
            assert!(decode(bad.as_bytes(), &Type::Number).is_err(), "{bad}");
        }
    }

    #[test]
    fn objects_fill_missing_and_reject_extra() {
        let ty = obj_ty(&[("a", Type::String), ("b", Type::list(Type::Bool))]);
        let v = decode(br#" {"a": "x\u00e9\ud83e\udd37\n"} "#, &ty).unwrap();
        assert_eq!(v, obj(&[("a", "xé🤷\n".into()), ("b", Value::Null)]));
        assert_eq!(
            String::from_utf8(encode(&v, &ty).unwrap()).unwrap(),
            r#"{"a":"xé🤷\n","b":null}"#
        );

        let err = decode(br#"{"a": "x", "old": 1}"#, &ty).unwrap_err();
        assert_eq!(err.path, AttributePath::root("old"));
        let v = decode_lenient(br#"{"a": "x", "old": {"deep": [1]}}"#, &ty).unwrap();
        assert_eq!(v, obj(&[("a", "x".into()), ("b", Value::Null)]));
        assert!(decode(br#"{"a": "x", "a": "y"}"#, &ty).is_err());
    }

    #[test]
    fn lenient_applies_at_every_depth() {
        let ty = obj_ty(&[(
            "rules",
            Type::list(obj_ty(&[("port", Type::Number), ("new", Type::Bool)])),
        )]);
        let v = decode_lenient(br#"{"rules": [{"port": 22, "gone": "x"}], "removed": true}"#, &ty).unwrap();
        assert_eq!(
            v,
            obj(&[(
                "rules",
                Value::List(vec![obj(&[("port", 22.into()), ("new", Value::Null)])])
            )])
        );
    }

    #[test]
    fn dynamic_is_value_and_type() {
        let v = Value::Dynamic(
            Type::map(Type::Number),
            Box::new(Value::Map([("k".to_string(), num("0.5"))].into())),
        );
        let bytes = encode(&v, &Type::Dynamic).unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"value":{"k":0.5},"type":["map","number"]}"#
        );
        assert_eq!(decode(&bytes, &Type::Dynamic).unwrap(), v);
        assert_eq!(
            decode(br#"{"type":"string","value":"s"}"#, &Type::Dynamic).unwrap(),
            Value::Dynamic(Type::String, Box::new("s".into()))
        );
        assert_eq!(decode(b"null", &Type::Dynamic).unwrap(), Value::Null);
        assert!(
            decode(br#"{"value":1}"#, &Type::Dynamic)
                .unwrap_err()
                .message
                .contains("missing \"type\"")
        );
        assert!(decode(br#""s""#, &Type::Dynamic).is_err());
    }

    #[test]
    fn unknowns_cannot_be_json() {
        let ty = obj_ty(&[("id", Type::String)]);
        let err = encode(&obj(&[("id", Value::unknown())]), &ty).unwrap_err();
        assert_eq!(err.path, AttributePath::root("id"));
        assert_eq!(err.to_string(), "an unknown value cannot be encoded as JSON at id");
    }

    #[test]
    fn primitive_conversions_as_go_cty() {
        assert_eq!(decode(b"\"true\"", &Type::Bool).unwrap(), Value::Bool(true));
        assert_eq!(decode(b"12.50", &Type::String).unwrap(), Value::from("12.50"));
        assert_eq!(decode(b"false", &Type::String).unwrap(), Value::from("false"));
        assert!(decode(b"\"yes\"", &Type::Bool).is_err());
        assert!(
            decode(b"[]", &Type::String)
                .unwrap_err()
                .message
                .contains("a string is required, found an array")
        );
    }

    #[test]
    fn malformed_json_is_an_error() {
        for bad in [
            &b""[..],
            b"[1,]",
            b"{\"a\" 1}",
            b"\"abc",
            b"\"\\x\"",
            b"tru",
            b"[1] x",
            b"\"\x01\"",
            b"\xff",
        ] {
            assert!(decode(bad, &Type::list(Type::Number)).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(10_000);
        assert!(decode(deep.as_bytes(), &Type::Dynamic).is_err());
    }
}
