//! msgpack decoding of arbitrary bytes must never panic, and whatever it
//! accepts must survive encode → decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_selfhost::framework::codec::msgpack;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (ty, bytes) = common::split(data);
    if let Ok(v) = msgpack::decode(bytes, &ty) {
        let again = msgpack::encode(&v, &ty).expect("a decoded value encodes");
        assert_eq!(msgpack::decode(&again, &ty).expect("our encoding decodes"), v);
    }
});
