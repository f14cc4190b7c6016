//! The browser's stores behind [`Stores`]: `document.cookie` and localStorage, guarded.
//!
//! localStorage is probed once with a write and a removal; when the probe throws
//! (Safari private mode, site data blocked, quota full) the SDK runs without it. Every
//! later access catches its exception too, so nothing the browser throws reaches the
//! host page (field report `storage-throws-fallback`).

use wasm_bindgen::prelude::*;
use web_sys::{HtmlDocument, Storage};

use crate::identity::Stores;

// `globalThis.document` and `globalThis.localStorage`, bound directly: web-sys's
// `window()` costs four global lookups and an `instanceof` in the JavaScript glue.
#[wasm_bindgen]
extern "C" {
    type Global;

    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL: Global;

    #[wasm_bindgen(method, structural, getter)]
    fn document(this: &Global) -> Option<HtmlDocument>;

    // Throws in Safari private mode and when site data is blocked.
    #[wasm_bindgen(method, structural, catch, getter, js_name = localStorage)]
    fn local_storage(this: &Global) -> Result<Option<Storage>, JsValue>;
}

/// The page's cookie jar and localStorage, either of which may be missing.
pub struct Browser {
    document: Option<HtmlDocument>,
    local: Option<Storage>,
}

impl Browser {
    /// Opens the stores of the current page, probing localStorage.
    pub fn open() -> Browser {
        let document = GLOBAL.with(Global::document);
        let local = GLOBAL
            .with(Global::local_storage)
            .ok()
            .flatten()
            .filter(|s| {
                s.set_item("weft_probe", "1").is_ok() && s.remove_item("weft_probe").is_ok()
            });
        Browser { document, local }
    }

    /// A browser without localStorage (for tests of the fallback).
    pub fn without_storage() -> Browser {
        Browser {
            local: None,
            ..Browser::open()
        }
    }

    /// The page's host name, and whether it is served over https.
    pub fn host(&self) -> (String, bool) {
        let Some(location) = self.document.as_ref().and_then(|d| d.location()) else {
            return (String::new(), false);
        };
        let host = location.hostname().unwrap_or_default();
        let secure = location.protocol().is_ok_and(|p| p == "https:");
        (host, secure)
    }

    /// True when localStorage answered the probe.
    pub fn has_storage(&self) -> bool {
        self.local.is_some()
    }

    /// The localStorage keys starting with `prefix`, without it.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        let Some(local) = &self.local else {
            return Vec::new();
        };
        let len = local.length().unwrap_or(0);
        (0..len)
            .filter_map(|i| local.key(i).ok().flatten())
            .filter_map(|k| k.strip_prefix(prefix).map(str::to_owned))
            .collect()
    }
}

impl Stores for Browser {
    fn cookies(&self) -> String {
        self.document
            .as_ref()
            .and_then(|d| d.cookie().ok())
            .unwrap_or_default()
    }

    fn set_cookie(&self, line: &str) {
        if let Some(d) = &self.document {
            let _ignored_when_blocked = d.set_cookie(line);
        }
    }

    fn get(&self, key: &str) -> Option<String> {
        self.local.as_ref()?.get_item(key).ok().flatten()
    }

    fn set(&self, key: &str, value: &str) -> bool {
        self.local
            .as_ref()
            .is_some_and(|s| s.set_item(key, value).is_ok())
    }

    fn remove(&self, key: &str) {
        if let Some(s) = &self.local {
            let _ignored_when_blocked = s.remove_item(key);
        }
    }
}
