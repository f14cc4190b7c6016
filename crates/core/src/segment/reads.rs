//! What an event changes in a profile, and what a segment's rule reads: the two sides of
//! incremental evaluation.
//!
//! An event touches a few parts of a profile (its counters, its traits, its touchpoints,
//! when it was last seen); a segment needs re-evaluating only when its rule reads one of
//! them. Both sides are small sets (a bit per profile field, and counter indexes into the
//! [`FeatureSpec`]), so the check costs a few instructions per segment.

use serde_json::Value;

use crate::event::{Event, EventKind};
use crate::segment::features::FeatureSpec;
use crate::segment::rule::Rule;

/// Parts of a profile, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fields(u8);

impl Fields {
    /// Traits.
    pub const TRAITS: Fields = Fields(1);
    /// First and last touchpoint.
    pub const TOUCH: Fields = Fields(1 << 1);
    /// First and last seen.
    pub const SEEN: Fields = Fields(1 << 2);
    /// Identifiers (identified or anonymous).
    pub const IDENTITY: Fields = Fields(1 << 3);
    /// Country.
    pub const COUNTRY: Fields = Fields(1 << 4);
    /// Device type.
    pub const DEVICE: Fields = Fields(1 << 5);

    /// Both sets.
    pub fn with(self, other: Fields) -> Fields {
        Fields(self.0 | other.0)
    }

    /// Whether the sets share a part.
    pub fn overlaps(self, other: Fields) -> bool {
        self.0 & other.0 != 0
    }
}

/// What one event changed in a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Profile fields the event may have changed.
    pub fields: Fields,
    /// Indexes (into [`FeatureSpec::counters`]) of the counters it counted in, ascending.
    pub counters: Vec<u32>,
}

impl Touched {
    /// What `event` changes in the profile it is attributed to.
    ///
    /// Every event moves last seen (and may move first seen, if it arrived late); page and
    /// screen views carry touchpoints; identify and group events, or any event with
    /// traits, set traits; a user id, an alias or a merge changes identity; the collector's
    /// geo and device lookups change country and device.
    pub fn by(spec: &FeatureSpec, event: &Event) -> Touched {
        let mut fields = Fields::SEEN;
        if matches!(event.kind, EventKind::Page | EventKind::Screen) {
            fields = fields.with(Fields::TOUCH);
        }
        let context_traits = event
            .context
            .get("traits")
            .and_then(Value::as_object)
            .is_some_and(|t| !t.is_empty());
        if matches!(event.kind, EventKind::Identify | EventKind::Group)
            || !event.traits.is_empty()
            || context_traits
        {
            fields = fields.with(Fields::TRAITS);
        }
        if event.user_id.is_some() || event.kind == EventKind::Alias || event.weft.sid.is_some() {
            fields = fields.with(Fields::IDENTITY);
        }
        if event.weft.country.is_some() {
            fields = fields.with(Fields::COUNTRY);
        }
        if event.weft.device.is_some() {
            fields = fields.with(Fields::DEVICE);
        }
        let mut counters = Vec::new();
        spec.each_match(event, |i| counters.push(i));
        counters.sort_unstable();
        Touched { fields, counters }
    }
}

/// What one segment's rule reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// Profile fields the rule reads.
    pub fields: Fields,
    /// Indexes of the counters it reads, ascending.
    pub counters: Vec<u32>,
}

impl Reads {
    /// What `rule` reads, with its counters' indexes looked up in `spec`.
    pub fn of(rule: &Rule, spec: &FeatureSpec) -> Reads {
        let mut reads = Reads::default();
        reads.collect(rule, spec);
        reads.counters.sort_unstable();
        reads.counters.dedup();
        reads
    }

    /// Whether an event that touched `touched` can change this rule's answer.
    pub fn is_touched_by(&self, touched: &Touched) -> bool {
        self.fields.overlaps(touched.fields)
            || self
                .counters
                .iter()
                .any(|c| touched.counters.binary_search(c).is_ok())
    }

    fn collect(&mut self, rule: &Rule, spec: &FeatureSpec) {
        let field = match rule {
            Rule::All(rules) | Rule::Any(rules) => {
                rules.iter().for_each(|r| self.collect(r, spec));
                return;
            }
            Rule::Not(r) => return self.collect(r, spec),
            Rule::Count(c) => {
                if let Some(i) = spec.counters().iter().position(|x| x.id == c.counter.id) {
                    self.counters.push(i as u32);
                }
                return;
            }
            Rule::Trait { .. } => Fields::TRAITS,
            Rule::Touch { .. } => Fields::TOUCH,
            Rule::Seen { .. } => Fields::SEEN,
            Rule::Identified(_) => Fields::IDENTITY,
            Rule::Country(_) => Fields::COUNTRY,
            Rule::Device(_) => Fields::DEVICE,
        };
        self.fields = self.fields.with(field);
    }
}
