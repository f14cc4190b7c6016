//! weft's browser SDK: ids, touchpoints, sessions and the outbox, compiled to WebAssembly.
//!
//! The SDK is split for size. This crate holds the logic worth having in Rust and shared
//! with the worker through `weft-core`: reading and keeping the anonymous id, the campaign
//! and session of each event (`context.campaign`, `context.session`), and the bounded,
//! persisted outbox that cuts batches to a byte budget. The hand-written loader
//! `www/sdk/loader.js` holds what the browser does best in JavaScript: the public `weft`
//! API, the event objects and their `context.page`, timers, page-exit listeners, `fetch`,
//! cross-tab locks. The loader calls one exported function, [`call`], passing strings and
//! numbers only; nothing else calls it.
//!
//! Size rules (`scripts/build-sdk.sh` measures them): no serde, no `format!` or other
//! `core::fmt` use, JSON written by hand ([`json`]) or by the browser, one import and one
//! export across the boundary, a small allocator instead of std's.
//!
//! # Limitations
//! One SDK instance per page: the state is a static, and a second boot replaces the
//! first.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod browser;
pub mod identity;
pub mod json;
pub mod queue;
mod sdk;

pub use sdk::*;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
