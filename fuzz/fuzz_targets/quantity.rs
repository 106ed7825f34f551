//! Kubernetes quantities (`kube::drift::quantity`, the resources/limits
//! validator `kube::names::check_quantity`): never panic, answer quickly
//! (they are compared at every plan), and mean what they say: a binary or
//! decimal suffix multiplies the number it follows, an accepted quantity
//! is not negative and compares equal to itself rewritten with a suffix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_selfhost::kube::drift::quantity;
use terraform_provider_selfhost::kube::names::check_quantity;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let q = quantity(s);
    if check_quantity(s).is_ok() {
        let q = q.clone().expect("a checked quantity parses");
        assert!(q.sign() != bigdecimal::num_bigint::Sign::Minus, "{s:?} accepted but negative");
    }
    let Some(q) = q else { return };
    // The comparisons the provider makes (drift, request <= limit).
    let zero = bigdecimal::BigDecimal::from(0);
    let _ = q < zero;
    assert_eq!(quantity(s), Some(q.clone()));
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    if suffix.is_empty() {
        let kib = quantity(&format!("{num}Ki")).expect("a number takes a suffix");
        assert_eq!(kib, q.clone() * bigdecimal::BigDecimal::from(1024), "{s:?}Ki");
        let milli = quantity(&format!("{num}m")).expect("a number takes a suffix");
        assert_eq!(milli * bigdecimal::BigDecimal::from(1000), q, "{s:?}m");
    } else {
        let n = quantity(num).expect("the number before an accepted suffix parses");
        let _ = n <= q;
    }
});
