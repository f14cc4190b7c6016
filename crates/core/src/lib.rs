//! weft's domain, in plain Rust.
//!
//! Everything that can be decided without a browser or the Workers runtime is decided
//! here and tested natively: the event model and its wire format, time handling,
//! touchpoints (campaign parameters, click ids, referrer classes), identifiers and the
//! identity graph, segment rules and the decisions they produce. The browser SDK and the
//! edge worker both depend on this crate; it depends on neither.
//!
//! The `engine` feature (on by default) carries the parts that need serde. The SDK turns
//! it off and keeps the serde-free modules, so the same parsing code runs in both places
//! without costing the browser bundle serde's weight. Without `engine` the crate is
//! `no_std` (it needs `alloc` only), so nothing of `std` reaches the browser's wasm.

#![cfg_attr(not(any(feature = "engine", test)), no_std)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

// The serde-free modules name `alloc`'s types explicitly, so that without `engine` (the
// browser SDK's build) the crate needs no `std`.
extern crate alloc;

pub mod campaign;
pub mod referrer;
pub mod session;
pub mod stored_id;
pub mod text;
pub mod time;
pub mod url;

#[cfg(feature = "engine")]
pub mod event;
#[cfg(feature = "engine")]
pub mod identity;
#[cfg(feature = "engine")]
pub mod payload;
#[cfg(feature = "engine")]
pub mod profile;
#[cfg(feature = "engine")]
pub mod segment;
#[cfg(feature = "engine")]
pub mod touch;
pub mod useragent;
