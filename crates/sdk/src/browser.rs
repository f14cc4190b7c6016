//! The browser's stores behind [`Stores`]: `document.cookie` and localStorage, guarded.
//!
//! Every access goes through one small JavaScript function (`io`) that catches what
//! the browser throws, so nothing thrown reaches the host page (field report
//! `storage-throws-fallback`): a read that throws answers nothing, a write that throws
//! answers nothing instead of an empty string. localStorage is probed once with a write
//! and a removal; when the probe fails (Safari private mode, site data blocked, quota
//! full) the SDK runs without it. One import with an operation code keeps the wasm and
//! its glue smaller than binding each browser API (web-sys) would.

use alloc::string::String;

use wasm_bindgen::prelude::wasm_bindgen;

use crate::identity::Stores;

#[wasm_bindgen(inline_js = "export function io(op, k, v) {
  try {
    const d = document;
    if (op < 2) return op ? ((d.cookie = k), '') : d.cookie;
    const s = localStorage;
    if (op == 2) return s.getItem(k);
    op == 3 ? s.setItem(k, v) : s.removeItem(k);
    return '';
  } catch (e) {}
}")]
extern "C" {
    /// One guarded browser operation: 0 reads `document.cookie`, 1 assigns `k` to it,
    /// 2 reads localStorage entry `k`, 3 writes `v` there, 4 removes it. `None` when the
    /// browser threw (or the entry is missing); writes answer an empty string when they
    /// went through.
    fn io(op: u32, k: &str, v: &str) -> Option<String>;
}

const PROBE: &str = "weft_probe";

/// The page's cookie jar and localStorage; localStorage may be unusable.
pub struct Browser {
    local: bool,
}

impl Browser {
    /// Opens the stores of the current page, probing localStorage.
    pub fn open() -> Browser {
        let local = io(3, PROBE, "1").is_some() && io(4, PROBE, "").is_some();
        Browser { local }
    }

    /// A browser whose localStorage is left alone, as if it threw (tests of the fallback).
    pub fn without_storage() -> Browser {
        Browser { local: false }
    }

    fn storage(&self, op: u32, key: &str, value: &str) -> Option<String> {
        if self.local {
            io(op, key, value)
        } else {
            None
        }
    }
}

impl Stores for Browser {
    fn cookies(&self) -> String {
        io(0, "", "").unwrap_or_default()
    }

    fn set_cookie(&self, line: &str) {
        io(1, line, "");
    }

    fn get(&self, key: &str) -> Option<String> {
        self.storage(2, key, "")
    }

    fn set(&self, key: &str, value: &str) -> bool {
        self.storage(3, key, value).is_some()
    }

    fn remove(&self, key: &str) {
        self.storage(4, key, "");
    }

    fn has_storage(&self) -> bool {
        self.local
    }
}
