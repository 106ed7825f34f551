//! The msgpack object wire format (unknowns as extensions, refinements as
//! extension 12, numbers as ints, floats or decimal strings).
//!
//! Follows go-cty's `cty/msgpack` (what Terraform and OpenTofu use) and the
//! object wire format in Terraform's `docs/plugin-protocol`. Where go-cty is
//! lax we are stricter, so a malformed message fails loudly here instead of
//! turning into a wrong plan: trailing bytes, duplicate keys and missing or
//! extra object attributes are errors. Decoding never panics, never recurses
//! deeper than [`MAX_DEPTH`] and never allocates more than the input could
//! fill.

use std::collections::BTreeMap;

use rmp::Marker;

use super::CodecError;
use super::number;
use crate::framework::{AttributePath, Number, PathStep, Refinements, Type, Value};

/// Deepest nesting of collections, objects and dynamic values accepted.
pub const MAX_DEPTH: usize = 128;

/// Extension type of a refined unknown (go-cty `unknownWithRefinementsExt`).
const REFINED_UNKNOWN_EXT: i8 = 12;

/// Largest refinement payload accepted, as go-cty (an abusive size otherwise).
const MAX_REFINEMENT_LEN: usize = 1024;

/// Refinement map keys (go-cty `unknownValRefinementKey`).
const KEY_NULLNESS: i64 = 1;
const KEY_STRING_PREFIX: i64 = 2;
const KEY_NUMBER_MIN: i64 = 3;
const KEY_NUMBER_MAX: i64 = 4;
const KEY_LENGTH_MIN: i64 = 5;
const KEY_LENGTH_MAX: i64 = 6;

/// A wholly unknown value: fixext1 of type 0 with one zero byte, what
/// Terraform writes.
const UNKNOWN_BYTES: [u8; 3] = [0xd4, 0, 0];

/// Decode a msgpack value of type `ty`.
///
/// # Errors
/// When the bytes are not a msgpack encoding of a value of `ty`; the error's
/// path says where.
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let mut path = Vec::new();
    let value = r.value(ty, &mut path, 0)?;
    if r.pos != bytes.len() {
        return Err(error(
            &path,
            format!("{} unexpected bytes after the value", bytes.len() - r.pos),
        ));
    }
    Ok(value)
}

/// Encode `value` as msgpack under type `ty`.
///
/// Lists, sets and tuples are interchangeable under any of those types (the
/// type decides), as are maps and objects; a missing object attribute is
/// written as null. Values of `dynamic` attributes must be
/// [`Value::Dynamic`] (or null or unknown).
///
/// # Errors
/// When `value` does not conform to `ty`.
pub fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    encode_value(value, ty, &mut path, &mut out, 0)?;
    Ok(out)
}

fn error(path: &[PathStep], message: impl Into<String>) -> CodecError {
    CodecError {
        message: message.into(),
        path: AttributePath(path.to_vec()),
    }
}

/// A cursor over the input; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn peek(&self, path: &[PathStep]) -> Result<Marker, CodecError> {
        match self.buf.get(self.pos) {
            Some(b) => Ok(Marker::from_u8(*b)),
            None => Err(error(path, "unexpected end of input")),
        }
    }

    fn marker(&mut self, path: &[PathStep]) -> Result<Marker, CodecError> {
        let m = self.peek(path)?;
        self.pos += 1;
        Ok(m)
    }

    fn take(&mut self, n: usize, path: &[PathStep]) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.buf.len());
        match end {
            Some(end) => {
                let s = self
                    .buf
                    .get(self.pos..end)
                    .ok_or_else(|| error(path, "unexpected end of input"))?;
                self.pos = end;
                Ok(s)
            }
            None => Err(error(
                path,
                format!("unexpected end of input: {n} more bytes announced"),
            )),
        }
    }

    fn array<const N: usize>(&mut self, path: &[PathStep]) -> Result<[u8; N], CodecError> {
        let s = self.take(N, path)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, path: &[PathStep]) -> Result<u8, CodecError> {
        Ok(self.array::<1>(path)?[0])
    }
    fn u16(&mut self, path: &[PathStep]) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array(path)?))
    }
    fn u32(&mut self, path: &[PathStep]) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array(path)?))
    }
    fn u64(&mut self, path: &[PathStep]) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.array(path)?))
    }

    /// Length of a str or bin whose marker was read; `None` for other markers.
    fn bytes_len(&mut self, m: Marker, path: &[PathStep]) -> Result<Option<usize>, CodecError> {
        Ok(Some(match m {
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 | Marker::Bin8 => usize::from(self.u8(path)?),
            Marker::Str16 | Marker::Bin16 => usize::from(self.u16(path)?),
            Marker::Str32 | Marker::Bin32 => self.u32(path)? as usize,
            _ => return Ok(None),
        }))
    }

    /// A str (or bin) as raw bytes, or `None` (nothing consumed but the
    /// marker) when the marker is something else.
    fn raw_string(&mut self, m: Marker, path: &[PathStep]) -> Result<Option<&'a [u8]>, CodecError> {
        match self.bytes_len(m, path)? {
            Some(n) => Ok(Some(self.take(n, path)?)),
            None => Ok(None),
        }
    }

    /// A UTF-8 string; `what` names the expected thing for the error.
    fn string(&mut self, what: &str, path: &[PathStep]) -> Result<String, CodecError> {
        let m = self.marker(path)?;
        match self.raw_string(m, path)? {
            Some(raw) => std::str::from_utf8(raw)
                .map(str::to_owned)
                .map_err(|_| error(path, format!("{what} is not valid UTF-8"))),
            None => Err(error(path, format!("{what} is required, found {}", kind(m)))),
        }
    }

    fn array_len(&mut self, m: Marker, path: &[PathStep]) -> Result<Option<usize>, CodecError> {
        Ok(Some(match m {
            Marker::FixArray(n) => usize::from(n),
            Marker::Array16 => usize::from(self.u16(path)?),
            Marker::Array32 => self.u32(path)? as usize,
            _ => return Ok(None),
        }))
    }

    fn map_len(&mut self, m: Marker, path: &[PathStep]) -> Result<Option<usize>, CodecError> {
        Ok(Some(match m {
            Marker::FixMap(n) => usize::from(n),
            Marker::Map16 => usize::from(self.u16(path)?),
            Marker::Map32 => self.u32(path)? as usize,
            _ => return Ok(None),
        }))
    }

    /// Extension header after its marker: (type, length); `None` for other
    /// markers.
    fn ext_header(&mut self, m: Marker, path: &[PathStep]) -> Result<Option<(i8, usize)>, CodecError> {
        let len = match m {
            Marker::FixExt1 => 1,
            Marker::FixExt2 => 2,
            Marker::FixExt4 => 4,
            Marker::FixExt8 => 8,
            Marker::FixExt16 => 16,
            Marker::Ext8 => usize::from(self.u8(path)?),
            Marker::Ext16 => usize::from(self.u16(path)?),
            Marker::Ext32 => self.u32(path)? as usize,
            _ => return Ok(None),
        };
        let ty = self.u8(path)? as i8;
        Ok(Some((ty, len)))
    }

    /// An integer of any width; `None` (marker consumed) for non-integers.
    fn int(&mut self, m: Marker, path: &[PathStep]) -> Result<Option<Int>, CodecError> {
        Ok(Some(match m {
            Marker::FixPos(n) => Int::Signed(i64::from(n)),
            Marker::FixNeg(n) => Int::Signed(i64::from(n)),
            Marker::U8 => Int::Signed(i64::from(self.u8(path)?)),
            Marker::U16 => Int::Signed(i64::from(self.u16(path)?)),
            Marker::U32 => Int::Signed(i64::from(self.u32(path)?)),
            Marker::U64 => Int::Unsigned(self.u64(path)?),
            Marker::I8 => Int::Signed(i64::from(self.u8(path)? as i8)),
            Marker::I16 => Int::Signed(i64::from(self.u16(path)? as i16)),
            Marker::I32 => Int::Signed(i64::from(self.u32(path)? as i32)),
            Marker::I64 => Int::Signed(self.u64(path)? as i64),
            _ => return Ok(None),
        }))
    }

    /// Skip one msgpack item of any kind (an unrecognised refinement).
    fn skip(&mut self, path: &[PathStep], depth: usize) -> Result<(), CodecError> {
        if depth > MAX_DEPTH {
            return Err(error(path, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let m = self.marker(path)?;
        if self.raw_string(m, path)?.is_some() {
            return Ok(());
        }
        if self.int(m, path)?.is_some() {
            return Ok(());
        }
        if let Some(n) = self.array_len(m, path)? {
            for _ in 0..n {
                self.skip(path, depth + 1)?;
            }
            return Ok(());
        }
        if let Some(n) = self.map_len(m, path)? {
            for _ in 0..n {
                self.skip(path, depth + 1)?;
                self.skip(path, depth + 1)?;
            }
            return Ok(());
        }
        if let Some((_, len)) = self.ext_header(m, path)? {
            self.take(len, path)?;
            return Ok(());
        }
        match m {
            Marker::Null | Marker::True | Marker::False => Ok(()),
            Marker::F32 => self.take(4, path).map(drop),
            Marker::F64 => self.take(8, path).map(drop),
            _ => Err(error(path, "invalid msgpack marker 0xc1")),
        }
    }

    fn value(&mut self, ty: &Type, path: &mut Vec<PathStep>, depth: usize) -> Result<Value, CodecError> {
        if depth > MAX_DEPTH {
            return Err(error(path, format!("value nested deeper than {MAX_DEPTH} levels")));
        }
        let m = self.marker(path)?;
        if let Some((ext, len)) = self.ext_header(m, path)? {
            let body = self.take(len, path)?;
            return unknown(ext, body, ty, path, depth);
        }
        if m == Marker::Null {
            return Ok(Value::Null);
        }
        match ty {
            Type::Dynamic => self.dynamic(m, path, depth),
            Type::Bool => match m {
                Marker::True => Ok(Value::Bool(true)),
                Marker::False => Ok(Value::Bool(false)),
                _ => Err(error(path, format!("a bool is required, found {}", kind(m)))),
            },
            Type::Number => self.number(m, path).map(Value::Number),
            Type::String => match self.raw_string(m, path)? {
                Some(raw) => std::str::from_utf8(raw)
                    .map(|s| Value::String(s.to_owned()))
                    .map_err(|_| error(path, "string is not valid UTF-8")),
                None => Err(error(path, format!("a string is required, found {}", kind(m)))),
            },
            Type::List(elem) | Type::Set(elem) => {
                let what = if matches!(ty, Type::List(_)) { "a list" } else { "a set" };
                let n = self
                    .array_len(m, path)?
                    .ok_or_else(|| error(path, format!("{what} is required, found {}", kind(m))))?;
                let mut items = Vec::with_capacity(n.min(self.remaining()));
                for i in 0..n {
                    path.push(PathStep::Index(i as i64));
                    items.push(self.value(elem, path, depth + 1)?);
                    path.pop();
                }
                Ok(if matches!(ty, Type::List(_)) {
                    Value::List(items)
                } else {
                    Value::Set(items)
                })
            }
            Type::Tuple(elems) => {
                let n = self
                    .array_len(m, path)?
                    .ok_or_else(|| error(path, format!("a tuple is required, found {}", kind(m))))?;
                if n != elems.len() {
                    return Err(error(
                        path,
                        format!("a tuple of {} elements is required, found {n} elements", elems.len()),
                    ));
                }
                let mut items = Vec::with_capacity(n);
                for (i, elem) in elems.iter().enumerate() {
                    path.push(PathStep::Index(i as i64));
                    items.push(self.value(elem, path, depth + 1)?);
                    path.pop();
                }
                Ok(Value::Tuple(items))
            }
            Type::Map(elem) => {
                let n = self
                    .map_len(m, path)?
                    .ok_or_else(|| error(path, format!("a map is required, found {}", kind(m))))?;
                let mut items = BTreeMap::new();
                for _ in 0..n {
                    let key = self.string("a map key", path)?;
                    path.push(PathStep::Key(key.clone()));
                    if items.contains_key(&key) {
                        return Err(error(path, "duplicate map key"));
                    }
                    let v = self.value(elem, path, depth + 1)?;
                    path.pop();
                    items.insert(key, v);
                }
                Ok(Value::Map(items))
            }
            Type::Object(attrs, _) => {
                let n = self
                    .map_len(m, path)?
                    .ok_or_else(|| error(path, format!("an object is required, found {}", kind(m))))?;
                let mut items = BTreeMap::new();
                for _ in 0..n {
                    let name = self.string("an attribute name", path)?;
                    path.push(PathStep::Attribute(name.clone()));
                    let Some(attr_ty) = attrs.get(&name) else {
                        return Err(error(path, "unsupported attribute: the schema has no such attribute"));
                    };
                    if items.contains_key(&name) {
                        return Err(error(path, "duplicate attribute"));
                    }
                    let v = self.value(attr_ty, path, depth + 1)?;
                    path.pop();
                    items.insert(name, v);
                }
                if let Some(missing) = attrs.keys().find(|k| !items.contains_key(*k)) {
                    return Err(error(path, format!("attribute {missing:?} is required but missing")));
                }
                Ok(Value::Object(items))
            }
        }
    }

    fn number(&mut self, m: Marker, path: &[PathStep]) -> Result<Number, CodecError> {
        if let Some(i) = self.int(m, path)? {
            return Ok(match i {
                Int::Signed(v) => Number::from(v),
                Int::Unsigned(v) => Number(v.into()),
            });
        }
        let n = match m {
            Marker::F32 => number::from_f64_exact(f64::from(f32::from_bits(self.u32(path)?))),
            Marker::F64 => number::from_f64_exact(f64::from_bits(self.u64(path)?)),
            _ => match self.raw_string(m, path)? {
                Some(raw) => match std::str::from_utf8(raw) {
                    Ok(text) => number::parse_decimal(text),
                    Err(_) => Err("number text is not valid UTF-8".to_owned()),
                },
                None => return Err(error(path, format!("a number is required, found {}", kind(m)))),
            },
        };
        n.map_err(|message| error(path, message))
    }

    /// `[type-json, value]`, the marker already read.
    fn dynamic(&mut self, m: Marker, path: &mut Vec<PathStep>, depth: usize) -> Result<Value, CodecError> {
        let n = self.array_len(m, path)?.ok_or_else(|| {
            error(
                path,
                format!("a dynamic value [type, value] is required, found {}", kind(m)),
            )
        })?;
        if n != 2 {
            return Err(error(
                path,
                format!("a dynamic value must be a [type, value] array, found {n} elements"),
            ));
        }
        let tm = self.marker(path)?;
        let raw = self.raw_string(tm, path)?.ok_or_else(|| {
            error(
                path,
                format!("a dynamic value's type must be JSON bytes, found {}", kind(tm)),
            )
        })?;
        let json: serde_json::Value = serde_json::from_slice(raw)
            .map_err(|e| error(path, format!("a dynamic value's type is not valid JSON: {e}")))?;
        let ty = Type::from_json(&json).map_err(|e| error(path, format!("a dynamic value's type is invalid: {e}")))?;
        let inner = self.value(&ty, path, depth + 1)?;
        Ok(match (ty, inner) {
            // A value of type `dynamic` is only ever null or unknown.
            (Type::Dynamic, inner) => inner,
            (_, Value::Null) => Value::Null,
            (ty, inner) => Value::Dynamic(ty, Box::new(inner)),
        })
    }
}

/// A decoded msgpack integer.
enum Int {
    Signed(i64),
    Unsigned(u64),
}

/// Decode an extension as an unknown of type `ty`.
///
/// go-cty reads every extension of up to one byte as a plain unknown and a
/// longer one as refinements only under type 12. We are more lenient than it
/// on other types: any other extension is still a plain unknown.
fn unknown(ext: i8, body: &[u8], ty: &Type, path: &[PathStep], depth: usize) -> Result<Value, CodecError> {
    if body.len() <= 1 || ext != REFINED_UNKNOWN_EXT {
        return Ok(Value::unknown());
    }
    if body.len() > MAX_REFINEMENT_LEN {
        return Err(error(path, "oversize unknown value refinement"));
    }
    let mut r = Reader { buf: body, pos: 0 };
    let m = r.marker(path)?;
    let n = r
        .map_len(m, path)?
        .ok_or_else(|| error(path, "unknown value refinements are not a map"))?;
    // cty.DynamicVal can never have refinements; go-cty ignores them.
    if *ty == Type::Dynamic {
        return Ok(Value::unknown());
    }
    let bad = |what: &str| error(path, format!("invalid unknown value refinement: {what}"));
    let mut refs = Refinements::default();
    for _ in 0..n {
        let km = r.marker(path)?;
        let key = match r.int(km, path)? {
            Some(Int::Signed(k)) => k,
            _ => return Err(bad("non-integer key")),
        };
        match key {
            KEY_NULLNESS => {
                refs.nullable = Some(match r.marker(path)? {
                    Marker::True => true,
                    Marker::False => false,
                    _ => return Err(bad("nullness is not a bool")),
                });
            }
            KEY_STRING_PREFIX => {
                if *ty != Type::String {
                    return Err(bad("string prefix for a non-string type"));
                }
                refs.string_prefix = Some(r.string("a string prefix refinement", path)?);
            }
            KEY_NUMBER_MIN | KEY_NUMBER_MAX => {
                if *ty != Type::Number {
                    return Err(bad("number bound for a non-number type"));
                }
                let bound_ty = Type::Tuple(vec![Type::Number, Type::Bool]);
                let mut sub_path = path.to_vec();
                let bound = match r.value(&bound_ty, &mut sub_path, depth + 1)? {
                    Value::Tuple(parts) => match parts.as_slice() {
                        [Value::Number(n), Value::Bool(inclusive)] => (n.clone(), *inclusive),
                        _ => return Err(bad("number bound must be a known [number, bool]")),
                    },
                    _ => return Err(bad("number bound must be a known [number, bool]")),
                };
                if key == KEY_NUMBER_MIN {
                    refs.number_lower = Some(bound);
                } else {
                    refs.number_upper = Some(bound);
                }
            }
            KEY_LENGTH_MIN | KEY_LENGTH_MAX => {
                if !matches!(ty, Type::List(_) | Type::Set(_) | Type::Map(_)) {
                    return Err(bad("length bound for a non-collection type"));
                }
                let lm = r.marker(path)?;
                let bound = match r.int(lm, path)? {
                    Some(Int::Signed(v)) => u64::try_from(v).map_err(|_| bad("negative length bound"))?,
                    Some(Int::Unsigned(v)) => v,
                    None => return Err(bad("length bound is not an integer")),
                };
                if key == KEY_LENGTH_MIN {
                    refs.length_lower = Some(bound);
                } else {
                    refs.length_upper = Some(bound);
                }
            }
            // Unknown keys are for future refinements: ignore them.
            _ => r.skip(path, depth + 1)?,
        }
    }
    // Trailing bytes in the payload are reserved by go-cty: ignored.
    Ok(Value::Unknown(Box::new(refs)))
}

/// Longest string prefix refinement written, as go-cty.
const MAX_PREFIX_LEN: usize = 256;

/// go-cty cuts long prefixes to 256 bytes and drops the last (maybe partial)
/// character, so a refinement stays small and never splits a character.
fn truncate_prefix(prefix: &str) -> &str {
    if prefix.len() <= MAX_PREFIX_LEN {
        return prefix;
    }
    let mut end = MAX_PREFIX_LEN - 1;
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    prefix.get(..end).unwrap_or_default()
}

/// What a marker announces, for error messages.
fn kind(m: Marker) -> &'static str {
    match m {
        Marker::Null => "null",
        Marker::True | Marker::False => "a bool",
        Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::U8
        | Marker::U16
        | Marker::U32
        | Marker::U64
        | Marker::I8
        | Marker::I16
        | Marker::I32
        | Marker::I64 => "an integer",
        Marker::F32 | Marker::F64 => "a float",
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => "a string",
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => "binary data",
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => "an array",
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => "a map",
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => "an extension",
        Marker::Reserved => "the reserved marker 0xc1",
    }
}

/// A short name of a type, for error messages.
pub(crate) fn type_name(ty: &Type) -> String {
    ty.to_json().to_string()
}

fn write<T, E: std::fmt::Display>(r: Result<T, E>, path: &[PathStep]) -> Result<(), CodecError> {
    r.map(drop)
        .map_err(|e| error(path, format!("cannot write msgpack: {e}")))
}

fn len32(n: usize, path: &[PathStep]) -> Result<u32, CodecError> {
    u32::try_from(n).map_err(|_| error(path, format!("{n} elements are more than msgpack can hold")))
}

fn encode_value(
    v: &Value,
    ty: &Type,
    path: &mut Vec<PathStep>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), CodecError> {
    if depth > MAX_DEPTH {
        return Err(error(path, format!("value nested deeper than {MAX_DEPTH} levels")));
    }
    let mismatch = || error(path, format!("{} cannot be encoded as {}", v.kind(), type_name(ty)));
    match (ty, v) {
        (_, Value::Null) => write(rmp::encode::write_nil(out), path),
        (Type::Dynamic, Value::Unknown(_)) => {
            out.extend_from_slice(&UNKNOWN_BYTES);
            Ok(())
        }
        (_, Value::Unknown(refs)) => encode_unknown(refs, ty, path, out),
        (Type::Dynamic, Value::Dynamic(inner_ty, inner)) => {
            if *inner_ty == Type::Dynamic {
                return Err(error(path, "a dynamic value's type cannot itself be dynamic"));
            }
            let type_json = serde_json::to_vec(&inner_ty.to_json())
                .map_err(|e| error(path, format!("cannot write a type as JSON: {e}")))?;
            write(rmp::encode::write_array_len(out, 2), path)?;
            write(rmp::encode::write_bin(out, &type_json), path)?;
            encode_value(inner, inner_ty, path, out, depth + 1)
        }
        (Type::Dynamic, _) => Err(error(
            path,
            format!(
                "{} cannot be encoded as dynamic: it must carry its type (Value::Dynamic)",
                v.kind()
            ),
        )),
        (Type::Bool, Value::Bool(b)) => write(rmp::encode::write_bool(out, *b), path),
        (Type::Number, Value::Number(n)) => encode_number(n, path, out),
        (Type::String, Value::String(s)) => write(rmp::encode::write_str(out, s), path),
        (Type::List(elem) | Type::Set(elem), Value::List(items) | Value::Set(items) | Value::Tuple(items)) => {
            write(rmp::encode::write_array_len(out, len32(items.len(), path)?), path)?;
            for (i, item) in items.iter().enumerate() {
                path.push(PathStep::Index(i as i64));
                encode_value(item, elem, path, out, depth + 1)?;
                path.pop();
            }
            Ok(())
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
            write(rmp::encode::write_array_len(out, len32(items.len(), path)?), path)?;
            for (i, (item, elem)) in items.iter().zip(elems).enumerate() {
                path.push(PathStep::Index(i as i64));
                encode_value(item, elem, path, out, depth + 1)?;
                path.pop();
            }
            Ok(())
        }
        (Type::Map(elem), Value::Map(items) | Value::Object(items)) => {
            write(rmp::encode::write_map_len(out, len32(items.len(), path)?), path)?;
            for (k, item) in items {
                write(rmp::encode::write_str(out, k), path)?;
                path.push(PathStep::Key(k.clone()));
                encode_value(item, elem, path, out, depth + 1)?;
                path.pop();
            }
            Ok(())
        }
        (Type::Object(attrs, _), Value::Object(items) | Value::Map(items)) => {
            if let Some(extra) = items.keys().find(|k| !attrs.contains_key(*k)) {
                path.push(PathStep::Attribute(extra.clone()));
                return Err(error(path, "unsupported attribute: the type has no such attribute"));
            }
            write(rmp::encode::write_map_len(out, len32(attrs.len(), path)?), path)?;
            for (name, attr_ty) in attrs {
                write(rmp::encode::write_str(out, name), path)?;
                path.push(PathStep::Attribute(name.clone()));
                encode_value(items.get(name).unwrap_or(&Value::Null), attr_ty, path, out, depth + 1)?;
                path.pop();
            }
            Ok(())
        }
        _ => Err(mismatch()),
    }
}

/// As go-cty: an integer when it fits, else a float when exact, else text.
fn encode_number(n: &Number, path: &[PathStep], out: &mut Vec<u8>) -> Result<(), CodecError> {
    if n.0.is_integer() {
        use bigdecimal::ToPrimitive;
        if let Some(i) = n.0.to_i64() {
            return write(rmp::encode::write_sint(out, i), path);
        }
        if let Some(u) = n.0.to_u64() {
            return write(rmp::encode::write_uint(out, u), path);
        }
    }
    if let Some(f) = number::to_f64_exact(n) {
        return write(rmp::encode::write_f64(out, f), path);
    }
    write(rmp::encode::write_str(out, &number::to_text(n)), path)
}

/// A plain unknown as `d4 00 00`; with refinements that apply to `ty`, as
/// extension 12 holding the refinement map (go-cty `marshalUnknownValue`).
/// Refinements that cannot apply to `ty` are dropped, since Terraform
/// rejects them.
fn encode_unknown(refs: &Refinements, ty: &Type, path: &[PathStep], out: &mut Vec<u8>) -> Result<(), CodecError> {
    let mut body = Vec::new();
    let mut entries = 0u32;
    if let Some(is_null) = refs.nullable {
        entries += 1;
        write(rmp::encode::write_sint(&mut body, KEY_NULLNESS), path)?;
        write(rmp::encode::write_bool(&mut body, is_null), path)?;
    }
    match ty {
        Type::String => {
            if let Some(prefix) = &refs.string_prefix {
                entries += 1;
                write(rmp::encode::write_sint(&mut body, KEY_STRING_PREFIX), path)?;
                write(rmp::encode::write_str(&mut body, truncate_prefix(prefix)), path)?;
            }
        }
        Type::Number => {
            for (key, bound) in [
                (KEY_NUMBER_MIN, &refs.number_lower),
                (KEY_NUMBER_MAX, &refs.number_upper),
            ] {
                if let Some((n, inclusive)) = bound {
                    entries += 1;
                    write(rmp::encode::write_sint(&mut body, key), path)?;
                    write(rmp::encode::write_array_len(&mut body, 2), path)?;
                    encode_number(n, path, &mut body)?;
                    write(rmp::encode::write_bool(&mut body, *inclusive), path)?;
                }
            }
        }
        Type::List(_) | Type::Set(_) | Type::Map(_) => {
            for (key, bound) in [(KEY_LENGTH_MIN, refs.length_lower), (KEY_LENGTH_MAX, refs.length_upper)] {
                if let Some(n) = bound {
                    entries += 1;
                    write(rmp::encode::write_sint(&mut body, key), path)?;
                    write(rmp::encode::write_uint(&mut body, n), path)?;
                }
            }
        }
        _ => {}
    }
    if entries == 0 {
        out.extend_from_slice(&UNKNOWN_BYTES);
        return Ok(());
    }
    let mut payload = Vec::with_capacity(body.len() + 5);
    write(rmp::encode::write_map_len(&mut payload, entries), path)?;
    payload.extend_from_slice(&body);
    write(
        rmp::encode::write_ext_meta(out, len32(payload.len(), path)?, REFINED_UNKNOWN_EXT),
        path,
    )?;
    out.extend_from_slice(&payload);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

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
    fn plain_unknown_is_d4_00_00() {
        assert_eq!(encode(&Value::unknown(), &Type::String).unwrap(), vec![0xd4, 0, 0]);
        assert_eq!(decode(&[0xd4, 0, 0], &Type::String).unwrap(), Value::unknown());
        // Any extension counts, even one go-cty would reject.
        assert_eq!(decode(&[0xc7, 0, 5], &Type::Number).unwrap(), Value::unknown());
        assert_eq!(decode(&[0xd5, 7, 1, 2], &Type::Bool).unwrap(), Value::unknown());
    }

    #[test]
    fn null_is_nil() {
        for ty in [
            Type::String,
            Type::Dynamic,
            Type::list(Type::Bool),
            obj_ty(&[("a", Type::Number)]),
        ] {
            assert_eq!(decode(&[0xc0], &ty).unwrap(), Value::Null);
            assert_eq!(encode(&Value::Null, &ty).unwrap(), vec![0xc0]);
        }
    }

    #[test]
    fn refined_unknown_not_null_string_prefix() {
        // go-cty: cty.UnknownVal(cty.String).Refine().NotNull().StringPrefix("foo-").NewValue()
        // = ext 12 { 1: false, 2: "foo-" }
        let bytes = [0xc7, 0x09, 0x0c, 0x82, 0x01, 0xc2, 0x02, 0xa4, b'f', b'o', b'o', b'-'];
        let v = decode(&bytes, &Type::String).unwrap();
        let want = Value::Unknown(Box::new(Refinements {
            nullable: Some(false),
            string_prefix: Some("foo-".into()),
            ..Default::default()
        }));
        assert_eq!(v, want);
        assert_eq!(encode(&want, &Type::String).unwrap(), bytes);
    }

    #[test]
    fn refined_unknown_number_and_length_bounds() {
        let n = Value::Unknown(Box::new(Refinements {
            nullable: Some(false),
            number_lower: Some((Number::from(1), true)),
            number_upper: Some((number::parse_decimal("0.1").unwrap(), false)),
            ..Default::default()
        }));
        let bytes = encode(&n, &Type::Number).unwrap();
        // ext 12, map of 3: 1→false, 3→[1,true], 4→["0.1",false]
        assert_eq!(
            bytes,
            [
                0xc7, 0x0e, 0x0c, 0x83, 0x01, 0xc2, 0x03, 0x92, 0x01, 0xc3, 0x04, 0x92, 0xa3, b'0', b'.', b'1', 0xc2
            ]
        );
        assert_eq!(decode(&bytes, &Type::Number).unwrap(), n);

        let l = Value::Unknown(Box::new(Refinements {
            length_lower: Some(1),
            length_upper: Some(300),
            ..Default::default()
        }));
        let bytes = encode(&l, &Type::list(Type::String)).unwrap();
        assert_eq!(bytes, [0xc7, 0x07, 0x0c, 0x82, 0x05, 0x01, 0x06, 0xcd, 0x01, 0x2c]);
        assert_eq!(decode(&bytes, &Type::list(Type::String)).unwrap(), l);
    }

    #[test]
    fn refinements_not_for_the_type_are_dropped_or_rejected() {
        let r = Value::Unknown(Box::new(Refinements {
            string_prefix: Some("x".into()),
            ..Default::default()
        }));
        assert_eq!(encode(&r, &Type::Number).unwrap(), UNKNOWN_BYTES);
        // A string prefix sent for a number is an error, as in go-cty.
        let bytes = encode(&r, &Type::String).unwrap();
        let err = decode(&bytes, &Type::Number).unwrap_err();
        assert!(err.message.contains("string prefix"), "{err}");
        // Under dynamic, refinements are ignored.
        assert_eq!(decode(&bytes, &Type::Dynamic).unwrap(), Value::unknown());
        // Unknown keys are skipped.
        let bytes = [0xc7, 0x05, 0x0c, 0x82, 0x09, 0x90, 0x01, 0xc2];
        assert_eq!(
            decode(&bytes[..], &Type::Bool).unwrap(),
            Value::Unknown(Box::new(Refinements {
                nullable: Some(false),
                ..Default::default()
            }))
        );
    }

    #[test]
    fn long_string_prefixes_are_truncated_as_go_cty() {
        // Cases from go-cty TestRoundTrip_truncatesStringPrefixRefinement.
        let cases = [
            ("a".repeat(1024), "a".repeat(255)),
            ("c".repeat(255) + "-", "c".repeat(255) + "-"),
            ("d".repeat(255) + "🤷🤷", "d".repeat(255)),
        ];
        for (prefix, want) in cases {
            let v = Value::Unknown(Box::new(Refinements {
                string_prefix: Some(prefix),
                ..Default::default()
            }));
            let got = decode(&encode(&v, &Type::String).unwrap(), &Type::String).unwrap();
            let want = Value::Unknown(Box::new(Refinements {
                string_prefix: Some(want),
                ..Default::default()
            }));
            assert_eq!(got, want);
        }
    }

    #[test]
    fn numbers_in_every_encoding() {
        let cases: &[(&[u8], &str)] = &[
            (&[0x01], "1"),
            (&[0xff], "-1"),
            (&[0xcc, 0xc8], "200"),
            (&[0xcd, 0x01, 0x00], "256"),
            (&[0xce, 0x00, 0x01, 0x00, 0x00], "65536"),
            (&[0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0], "9223372036854775808"),
            (
                &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "18446744073709551615",
            ),
            (&[0xd0, 0x80], "-128"),
            (&[0xd1, 0x80, 0x00], "-32768"),
            (&[0xd2, 0x80, 0, 0, 0], "-2147483648"),
            (&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], "-9223372036854775808"),
            (&[0xca, 0x3f, 0xc0, 0, 0], "1.5"),
            (&[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0], "1.5"),
            (&[0xa2, b'4', b'2'], "42"),
            (&[0xc4, 0x03, b'1', b'e', b'3'], "1000"),
        ];
        for (bytes, want) in cases {
            assert_eq!(decode(bytes, &Type::Number).unwrap(), num(want), "{bytes:02x?}");
        }
        let big = "12345678901234567890.123";
        let mut bytes = vec![0xb8];
        bytes.extend_from_slice(big.as_bytes());
        assert_eq!(decode(&bytes, &Type::Number).unwrap(), num(big));
        assert_eq!(encode(&num(big), &Type::Number).unwrap(), bytes);

        // Encoding: smallest int, u64 beyond i64, exact float, else text.
        assert_eq!(encode(&num("1"), &Type::Number).unwrap(), [0x01]);
        assert_eq!(encode(&num("-1"), &Type::Number).unwrap(), [0xff]);
        assert_eq!(encode(&num("1.0"), &Type::Number).unwrap(), [0x01]);
        assert_eq!(
            encode(&num("9223372036854775808").clone(), &Type::Number).unwrap(),
            [0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            encode(&num("1.5"), &Type::Number).unwrap(),
            [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(encode(&num("0.1"), &Type::Number).unwrap(), [0xa3, b'0', b'.', b'1']);
        // 2^64 is an exact float.
        assert_eq!(
            encode(&num("18446744073709551616"), &Type::Number).unwrap(),
            [0xcb, 0x43, 0xf0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn non_finite_and_bad_numbers_are_errors() {
        let inf = [0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0];
        assert!(decode(&inf, &Type::Number).unwrap_err().message.contains("finite"));
        assert!(decode(&[0xa3, b'i', b'n', b'f'], &Type::Number).is_err());
        let err = decode(&[0xa1, b'x'], &Type::Number).unwrap_err();
        assert!(err.message.contains("not a decimal number"), "{err}");
        assert!(
            decode(&[0xc3], &Type::Number)
                .unwrap_err()
                .message
                .contains("a number is required, found a bool")
        );
    }

    #[test]
    fn object_attributes_any_order_all_required() {
        let ty = obj_ty(&[("a", Type::String), ("b", Type::Number)]);
        // {"b": 1, "a": "x"}
        let bytes = [0x82, 0xa1, b'b', 0x01, 0xa1, b'a', 0xa1, b'x'];
        assert_eq!(decode(&bytes, &ty).unwrap(), obj(&[("a", "x".into()), ("b", 1.into())]));
        // Encoded sorted, missing attribute as null.
        assert_eq!(
            encode(&obj(&[("b", 1.into())]), &ty).unwrap(),
            [0x82, 0xa1, b'a', 0xc0, 0xa1, b'b', 0x01]
        );

        let missing = decode(&[0x81, 0xa1, b'a', 0xa1, b'x'], &ty).unwrap_err();
        assert_eq!(missing.message, "attribute \"b\" is required but missing");
        let extra = decode(&[0x83, 0xa1, b'a', 0xc0, 0xa1, b'b', 0xc0, 0xa1, b'c', 0xc0], &ty).unwrap_err();
        assert_eq!(extra.path, AttributePath::root("c"));
        let dup = decode(&[0x82, 0xa1, b'a', 0xc0, 0xa1, b'a', 0xc0], &ty).unwrap_err();
        assert!(dup.message.contains("duplicate"), "{dup}");
        let err = encode(&obj(&[("z", 1.into())]), &ty).unwrap_err();
        assert_eq!(err.path, AttributePath::root("z"));
    }

    #[test]
    fn errors_carry_the_path() {
        let ty = obj_ty(&[("keepers", Type::map(Type::list(Type::Number)))]);
        // {"keepers": {"k": [1, "x"]}}
        let bytes = [
            0x81, 0xa7, b'k', b'e', b'e', b'p', b'e', b'r', b's', 0x81, 0xa1, b'k', 0x92, 0x01, 0xa1, b'x',
        ];
        let err = decode(&bytes, &ty).unwrap_err();
        assert_eq!(err.path, AttributePath::root("keepers").key("k").index(1));
        assert_eq!(err.to_string(), "\"x\" is not a decimal number at keepers[\"k\"][1]");
        let v = obj(&[(
            "keepers",
            Value::Map([("k".to_string(), Value::List(vec![1.into(), "x".into()]))].into()),
        )]);
        let err = encode(&v, &ty).unwrap_err();
        assert_eq!(err.path, AttributePath::root("keepers").key("k").index(1));
        assert_eq!(err.message, "a string cannot be encoded as \"number\"");
    }

    #[test]
    fn dynamic_values_carry_their_type() {
        // ["string" as bin, "hi"] — go-cty writes the type JSON with EncodeBytes.
        let bytes = [
            0x92, 0xc4, 0x08, b'"', b's', b't', b'r', b'i', b'n', b'g', b'"', 0xa2, b'h', b'i',
        ];
        let v = Value::Dynamic(Type::String, Box::new("hi".into()));
        assert_eq!(decode(&bytes, &Type::Dynamic).unwrap(), v);
        assert_eq!(encode(&v, &Type::Dynamic).unwrap(), bytes);
        // The type may also arrive as a str.
        let mut as_str = bytes;
        as_str[1] = 0xd9;
        assert_eq!(decode(&as_str, &Type::Dynamic).unwrap(), v);
        assert_eq!(encode(&Value::unknown(), &Type::Dynamic).unwrap(), UNKNOWN_BYTES);
        assert!(encode(&Value::from("hi"), &Type::Dynamic).is_err());

        let ty = Type::list(Type::Object(
            [("x".to_string(), Type::Dynamic)].into(),
            BTreeSet::from(["x".to_string()]),
        ));
        let v = Value::List(vec![obj(&[(
            "x",
            Value::Dynamic(
                Type::list(Type::Number),
                Box::new(Value::List(vec![1.into(), Value::unknown()])),
            ),
        )])]);
        let bytes = encode(&v, &ty).unwrap();
        assert_eq!(decode(&bytes, &ty).unwrap(), v);
    }

    #[test]
    fn collections_and_tuples() {
        let ty = Type::Tuple(vec![Type::set(Type::String), Type::map(Type::Bool)]);
        let v = Value::Tuple(vec![
            Value::Set(vec!["b".into(), "a".into()]),
            Value::Map([("k".to_string(), true.into())].into()),
        ]);
        let bytes = encode(&v, &ty).unwrap();
        assert_eq!(bytes, [0x92, 0x92, 0xa1, b'b', 0xa1, b'a', 0x81, 0xa1, b'k', 0xc3]);
        assert_eq!(decode(&bytes, &ty).unwrap(), v);
        let err = decode(&[0x91, 0x90], &ty).unwrap_err();
        assert_eq!(err.message, "a tuple of 2 elements is required, found 1 elements");
        let dup = decode(&[0x82, 0xa1, b'k', 0xc3, 0xa1, b'k', 0xc2], &Type::map(Type::Bool)).unwrap_err();
        assert_eq!(dup.path, AttributePath(vec![PathStep::Key("k".into())]));
    }

    #[test]
    fn hostile_input_is_rejected_without_panic() {
        // Trailing bytes.
        assert!(
            decode(&[0xc0, 0xc0], &Type::String)
                .unwrap_err()
                .message
                .contains("after the value")
        );
        // Empty input.
        assert!(decode(&[], &Type::String).is_err());
        // Array announcing 2^32-1 elements with none present.
        assert!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff], &Type::list(Type::String)).is_err());
        // Ext announcing more bytes than there are.
        assert!(decode(&[0xc9, 0xff, 0xff, 0xff, 0xff, 0x0c], &Type::String).is_err());
        // Deep nesting under dynamic: [["list", ...], [[[...]]]]
        let mut ty = Type::String;
        for _ in 0..200 {
            ty = Type::list(ty);
        }
        let mut bytes = vec![0x91; 200];
        bytes.push(0xa0);
        let err = decode(&bytes, &ty).unwrap_err();
        assert!(err.message.contains("nested deeper"), "{err}");
        // Oversize refinements.
        let mut big = vec![0xc8, 0x08, 0x00, 0x0c];
        big.extend(std::iter::repeat_n(0u8, 2048));
        assert!(decode(&big, &Type::String).unwrap_err().message.contains("oversize"));
        // Invalid UTF-8.
        assert!(decode(&[0xa1, 0xff], &Type::String).is_err());
    }
}
