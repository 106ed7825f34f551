//! JSON decoding (strict and lenient) of arbitrary bytes must never panic,
//! and whatever it accepts must survive encode → decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_selfhost::framework::codec::json;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (ty, bytes) = common::split(data);
    for decode in [json::decode, json::decode_lenient] {
        if let Ok(v) = decode(bytes, &ty) {
            let again = json::encode(&v, &ty).expect("a decoded value encodes");
            assert_eq!(json::decode(&again, &ty).expect("our encoding decodes"), v);
        }
    }
});
