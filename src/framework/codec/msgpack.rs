//! The msgpack object wire format (unknowns as extensions, refinements as
//! extension 12, numbers as ints, floats or decimal strings).

use super::CodecError;
use crate::framework::{Type, Value};

/// Decode a msgpack value of type `ty`.
pub fn decode(_bytes: &[u8], _ty: &Type) -> Result<Value, CodecError> {
    Err(CodecError {
        message: "msgpack decoding not implemented yet".into(),
        path: Default::default(),
    })
}

/// Encode `value` as msgpack under type `ty`.
pub fn encode(_value: &Value, _ty: &Type) -> Result<Vec<u8>, CodecError> {
    Err(CodecError {
        message: "msgpack encoding not implemented yet".into(),
        path: Default::default(),
    })
}
