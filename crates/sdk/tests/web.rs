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

use js_sys::{Object, Reflect, JSON};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use weft_sdk::browser::Browser;
use weft_sdk::identity::{self, Jar, Stores, ANON_KEY, LEGACY_ANON_KEYS};

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

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o: JsValue = Object::new().into();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o
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

#[wasm_bindgen_test]
fn without_local_storage_the_cookie_keeps_the_id_and_events_still_batch() {
    let browser = Browser::without_storage();
    clear(&Browser::open());
    assert!(!browser.has_storage());
    assert_eq!(browser.get(ANON_KEY), None);
    assert!(!browser.set(ANON_KEY, "x"));

    weft_sdk::boot(obj(&[
        ("writeKey", "demo-write-key".into()),
        ("noStorage", JsValue::TRUE),
        ("tab", "tab-memory".into()),
    ]));
    weft_sdk::set_anonymous_id("anon-fixed-1");
    weft_sdk::record("track", obj(&[("event", "EVENT_1".into())]));
    let batch = weft_sdk::take(65_536, 100);
    let body = Reflect::get(&batch, &JsValue::from_f64(1.0))
        .unwrap()
        .as_string()
        .unwrap();
    let parsed = JSON::parse(&body).unwrap();
    let events = Reflect::get(&parsed, &"batch".into()).unwrap();
    let first = Reflect::get(&events, &JsValue::from_f64(0.0)).unwrap();
    let field = |k: &str| Reflect::get(&first, &k.into()).unwrap().as_string();
    assert_eq!(field("anonymousId").as_deref(), Some("anon-fixed-1"));
    assert_eq!(field("event").as_deref(), Some("EVENT_1"));
    assert!(browser.cookies().contains("weft_aid=anon-fixed-1"));
    assert_eq!(Browser::open().get(ANON_KEY), None);
    assert_eq!(weft_sdk::settle(1, 200, 0.0), 0.0);
    clear(&Browser::open());
}

#[wasm_bindgen_test]
fn a_booted_sdk_keeps_the_stored_id_and_batches_under_the_budget() {
    let browser = Browser::open();
    clear(&browser);
    browser.set_cookie("weft_aid=\"kept-1\"; path=/");
    weft_sdk::boot(obj(&[("writeKey", "k".into()), ("tab", "tab-web".into())]));
    let user = weft_sdk::user();
    let anon = Reflect::get(&user, &"anonymousId".into())
        .unwrap()
        .as_string();
    assert_eq!(anon.as_deref(), Some("kept-1"));
    assert_eq!(browser.get(ANON_KEY).as_deref(), Some("kept-1"));

    let pad = "p".repeat(3000);
    for _ in 0..30 {
        let properties = obj(&[("pad", JsValue::from_str(&pad))]);
        weft_sdk::record(
            "track",
            obj(&[("event", "Big".into()), ("properties", properties)]),
        );
    }
    let batch = weft_sdk::take(16_384, 100);
    let bytes = Reflect::get(&batch, &JsValue::from_f64(2.0))
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(bytes <= 16_384.0, "{bytes}");
    weft_sdk::persist();
    assert!(browser
        .get("weft_q:tab-web")
        .is_some_and(|t| t.lines().count() == 31));
    browser.remove("weft_q:tab-web");
    clear(&browser);
}
