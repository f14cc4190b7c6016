//! Fuzzes the segment rule parser: any JSON document given as a segment definition is
//! either refused with an error or compiles, and a compiled rule evaluates (and explains)
//! against a profile without panicking, with a `validUntil` never in the past.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::profile::Profile;
use weft_core::segment::{Definition, Segments};

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(definition) = Definition::parse("fuzz", &doc) else { return };
    let segments = Segments::from_definitions(vec![definition]).expect("one definition compiles");
    let now = 1_714_564_800_000;
    let profile = Profile::new(1, now - 1_000);
    let evaluation = segments.evaluate(&profile, now);
    if let Some(until) = evaluation.valid_until {
        assert!(until > now, "validUntil {until} is not after now {now}");
    }
    let _ = segments.explain(&profile, now);
});
