//! Fuzzes the URL, query-string, campaign, referrer and stored-id readers the SDK and the
//! worker share: any text is read without panicking, and decoding never grows text that
//! has no escapes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::campaign::Campaign;
use weft_core::{referrer, stored_id, url};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let query = url::query(text);
    let _ = url::pairs(query);
    let _ = url::host(text);
    let decoded = url::decode(text);
    if !text.contains(['%', '+']) {
        assert_eq!(decoded, text, "text without escapes decodes to itself");
    }
    let campaign = Campaign::from_query(query);
    let host = url::host(text).unwrap_or_default();
    let _ = referrer::classify(&campaign, Some(text), &host);
    let _ = stored_id::parse(text);
    let _ = stored_id::cookie_id(text, "weft_aid");
    let _ = stored_id::domain_candidates(&host);
});
