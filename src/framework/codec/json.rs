//! The JSON object format (DynamicValue fallback and raw state JSON).

use super::CodecError;
use crate::framework::{Type, Value};

/// Decode a JSON value of type `ty`. JSON has no unknowns.
pub fn decode(_bytes: &[u8], _ty: &Type) -> Result<Value, CodecError> {
    Err(CodecError {
        message: "JSON decoding not implemented yet".into(),
        path: Default::default(),
    })
}

/// Encode a wholly known `value` as JSON under `ty`.
pub fn encode(_value: &Value, _ty: &Type) -> Result<Vec<u8>, CodecError> {
    Err(CodecError {
        message: "JSON encoding not implemented yet".into(),
        path: Default::default(),
    })
}
