//! Segment rules, the features they compile to, and the decisions they produce.
//!
//! A segment is a named rule over a profile. Rules are written as JSON (see
//! `docs/segments.md`), compiled once into the [`FeatureSpec`] of counters they need, and
//! evaluated against a profile whose [`Features`] every event keeps current in O(1).

pub mod features;
pub mod ops;

pub use features::{CounterSpec, FeatureSpec, Features, Matcher, PathPattern, Unit};
