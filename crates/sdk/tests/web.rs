//! The SDK's id and storage logic in a real browser (headless Chromium via
//! wasm-bindgen-test): `document.cookie` and localStorage as they really behave, the
//! cookie-wins resync, tolerant reading, the memory fallback, and a first event built and
//! batched by the exported functions.
//!
//! Run with `cargo test -p weft-sdk --target wasm32-unknown-unknown` (the runner is set in
//! `.cargo/config.toml`); tests/sdk_wasm.test.mjs runs it within `make test`.

#![cfg(target_arch = "wasm32")]
// wasm_bindgen_test functions are tests, but clippy's test detection only knows #[test].
#![allow(clippy::unwrap_used)]

use js_sys::{Reflect, JSON};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use weft_sdk::browser::Browser;
use weft_sdk::identity::{self, Jar, Stores, ANON_KEY, LEGACY_ANON_KEYS};
use weft_sdk::{op, Sdk, Settings};

const NOW: f64 = 1_700_000_000_000.0;

wasm_bindgen_test_configure!(run_in_browser);

fn jar() -> Jar {
    Jar {
        domain: None,
        secure: false,
        persist: true,
    }
}

fn clear(browser: &Browser) {
    for name in [ANON_KEY, "ajs_anonymous_id", "weft_test"] {
        browser.set_cookie(&jar().cookie_line(name, None));
        browser.remove(name);
    }
}

#[wasm_bindgen_test]
fn an_id_written_to_the_browser_reads_back_from_cookie_and_storage() {
    let browser = Browser::open();
    clear(&browser);
    assert!(browser.has_storage());
    assert!(identity::write(&browser, &jar(), "weft_test", Some("id 1")));
    assert!(browser.cookies().contains("weft_test=id%201"));
    assert_eq!(browser.get("weft_test").as_deref(), Some("id 1"));
    assert_eq!(
        identity::read(&browser, "weft_test", &[]).as_deref(),
        Some("id 1")
    );
    clear(&browser);
}

#[wasm_bindgen_test]
fn the_cookie_wins_and_local_storage_is_resynced() {
    let browser = Browser::open();
    clear(&browser);
    browser.set_cookie("ajs_anonymous_id=%22anon-shared%22; path=/");
    browser.set("ajs_anonymous_id", "\"anon-stale\"");
    browser.set(ANON_KEY, "anon-stale");
    let id = identity::read(&browser, ANON_KEY, LEGACY_ANON_KEYS);
    assert_eq!(id.as_deref(), Some("anon-shared"));
    identity::write(&browser, &jar(), ANON_KEY, id.as_deref());
    assert_eq!(browser.get(ANON_KEY).as_deref(), Some("anon-shared"));
    assert!(browser
        .cookies()
        .contains("ajs_anonymous_id=%22anon-shared%22"));
    clear(&browser);
}

#[wasm_bindgen_test]
fn loopback_hosts_get_host_only_cookies() {
    let browser = Browser::open();
    assert_eq!(identity::registrable_domain(&browser, "127.0.0.1"), None);
    assert!(!browser.cookies().contains("weft_probe"));
}

fn settings(tab: &str) -> String {
    let fields = [
        "demo-write-key",
        "granted",
        tab,
        "fresh-id",
        "",
        "1000",
        "1000000",
        "1000",
        "60000",
        "127.0.0.1",
        "",
    ];
    fields.join("\0")
}

fn call(op: u32, fields: &[&str]) -> String {
    weft_sdk::call(op, NOW, &fields.join("\0"))
}

fn parse(text: &str) -> JsValue {
    JSON::parse(text).unwrap()
}

fn field(obj: &JsValue, path: &[&str]) -> JsValue {
    path.iter().fold(obj.clone(), |o, k| {
        Reflect::get(&o, &JsValue::from_str(k)).unwrap()
    })
}

#[wasm_bindgen_test]
fn without_local_storage_the_cookie_keeps_the_id_and_events_still_batch() {
    clear(&Browser::open());
    let browser = Browser::without_storage();
    assert!(!browser.has_storage());
    assert_eq!(browser.get(ANON_KEY), None);
    assert!(!browser.set(ANON_KEY, "x"));

    let settings = settings("tab-memory");
    let mut sdk = Sdk::open(browser, Settings::parse(&settings));
    let mut call = |op, fields: &[&str]| sdk.call(op, NOW as i64, &fields.join("\0"));
    call(op::SET_ANONYMOUS_ID, &["anon-fixed-1"]);
    assert_eq!(call(op::IDS, &[]), "anon-fixed-1\0");
    let event = "{\"messageId\":\"m-1\",\"anonymousId\":\"anon-fixed-1\"}";
    call(op::PUSH, &["m-1", event]);
    let batch = call(op::TAKE, &["65536", "100", "2024-01-01T00:00:00.000Z"]);
    let fields: Vec<&str> = batch.split('\0').collect();
    assert_eq!(fields[0], "1");
    let body = parse(fields[2]);
    assert_eq!(
        field(&body, &["batch", "0", "anonymousId"])
            .as_string()
            .as_deref(),
        Some("anon-fixed-1")
    );
    assert_eq!(
        field(&body, &["writeKey"]).as_string().as_deref(),
        Some("demo-write-key")
    );
    assert_eq!(call(op::SETTLE, &["1", "200", "0", "500"]), "0");
    let browser = Browser::open();
    assert!(browser.cookies().contains("weft_aid=anon-fixed-1"));
    assert_eq!(browser.get(ANON_KEY), None);
    clear(&Browser::open());
}

#[wasm_bindgen_test]
fn a_booted_sdk_keeps_the_stored_id_and_reads_the_campaign_of_the_page() {
    let browser = Browser::open();
    clear(&browser);
    browser.set_cookie("weft_aid=\"kept-1\"; path=/");
    weft_sdk::call(op::BOOT, NOW, &settings("tab-web"));
    assert_eq!(call(op::IDS, &[]), "kept-1\0");
    assert_eq!(browser.get(ANON_KEY).as_deref(), Some("kept-1"));

    let landing = "https://shop.example.com/landing?utm_source=newsletter&utm_content=hero";
    let context = parse(&call(op::TOUCH, &[landing, ""]));
    let text = |path: &[&str]| field(&context, path).as_string();
    assert_eq!(text(&["campaign", "source"]).as_deref(), Some("newsletter"));
    assert_eq!(text(&["campaign", "content"]).as_deref(), Some("hero"));
    assert_eq!(field(&context, &["session", "count"]).as_f64(), Some(1.0));
    assert_eq!(
        browser
            .get("weft_ses")
            .map(|s| s.starts_with("1700000000000.1.")),
        Some(true)
    );

    let pad = "p".repeat(3000);
    for n in 0..30 {
        let id = ["m-", &n.to_string()].concat();
        let json = ["{\"messageId\":\"", &id, "\",\"pad\":\"", &pad, "\"}"].concat();
        call(op::PUSH, &[&id, &json]);
    }
    let batch = call(op::TAKE, &["16384", "100", "2024-01-01T00:00:00.000Z"]);
    let fields: Vec<&str> = batch.split('\0').collect();
    let bytes: usize = fields[1].parse().unwrap();
    assert_eq!(bytes, fields[2].len());
    assert!(bytes <= 16_384, "{bytes}");
    call(op::PERSIST, &[]);
    assert!(browser
        .get("weft_q:tab-web")
        .is_some_and(|t| t.lines().count() == 31));
    browser.remove("weft_q:tab-web");
    clear(&browser);
}
