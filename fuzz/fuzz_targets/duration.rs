//! Durations (`framework::validator::parse_duration`, behind `timeouts {}`
//! and the `IsDuration` validator): never panic (a configuration is checked
//! at every plan); an accepted duration adds up: `d` written twice is `2d`
//! (or refused as too long: beyond `MAX_DURATION`, Go's ≈ 292 years), and
//! whole seconds re-parse from `"<n>s"`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_selfhost::framework::validator::{MAX_DURATION, parse_duration};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(d) = parse_duration(s) else { return };
    assert!(d <= MAX_DURATION, "{s:?} accepted as {d:?}");
    let t = s.trim();
    match (parse_duration(&format!("{t}{t}")), d.checked_mul(2)) {
        (Ok(twice), Some(want)) => assert_eq!(twice, want, "{t:?} twice"),
        (Err(_), None) => {}
        (Err(_), Some(want)) if want > MAX_DURATION => {}
        (got, want) => panic!("{t:?} twice: {got:?}, expected {want:?}"),
    }
    if d.subsec_nanos() == 0 {
        assert_eq!(parse_duration(&format!("{}s", d.as_secs())), Ok(d), "{s:?}");
    }
});
