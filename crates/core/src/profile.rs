//! The profile: everything weft knows about one person, stitched from their events.
//!
//! A profile is owned by the identity graph ([`crate::identity`]), which decides which
//! events belong to it and merges profiles; the segment engine ([`crate::segment`]) reads
//! it to decide membership. The fields here are the contract between the two: traits with
//! the time they were set (so the latest event wins whatever the delivery order), first and
//! last touch, when the person was first and last seen, and the features the compiled
//! segment rules asked for.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::identity::Identifier;
use crate::segment::Features;
use crate::time::Millis;
use crate::touch::Touchpoint;

/// A profile's id, assigned by the graph's store in creation order.
pub type ProfileId = u64;

/// One person, as far as weft can tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The profile's id.
    pub id: ProfileId,
    /// The timestamp of the earliest event seen for this profile; the oldest profile
    /// survives a merge.
    pub created_at: Millis,
    /// The identifiers that point to this profile, with when each was first seen.
    pub identifiers: Vec<Held>,
    /// Traits by name; per trait, the value from the latest event wins.
    #[serde(default)]
    pub traits: BTreeMap<String, Trait>,
    /// The account (`group` event) the person belongs to, with its traits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The earliest touchpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_touch: Option<Touchpoint>,
    /// The latest touchpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_touch: Option<Touchpoint>,
    /// The timestamp of the earliest event.
    pub first_seen: Millis,
    /// The timestamp of the latest event.
    pub last_seen: Millis,
    /// Country of the latest event that had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Device type of the latest event that had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Every event so far came from a bot.
    #[serde(default)]
    pub bot: bool,
    /// How many events were attributed to this profile.
    #[serde(default)]
    pub events: u64,
    /// The features the segment rules need, updated per event.
    #[serde(default)]
    pub features: Features,
}

/// An identifier held by a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    /// The identifier.
    pub id: Identifier,
    /// The timestamp of the event that first linked it.
    pub first_seen: Millis,
}

/// A trait's value and when it was set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trait {
    /// The value as sent.
    pub value: Value,
    /// The timestamp of the event that set it.
    pub at: Millis,
}

impl Profile {
    /// An empty profile created by an event at `at`.
    pub fn new(id: ProfileId, at: Millis) -> Profile {
        Profile {
            id,
            created_at: at,
            identifiers: Vec::new(),
            traits: BTreeMap::new(),
            account: None,
            first_touch: None,
            last_touch: None,
            first_seen: at,
            last_seen: at,
            country: None,
            device: None,
            bot: true,
            events: 0,
            features: Features::default(),
        }
    }

    /// Whether the profile holds a user id.
    pub fn is_identified(&self) -> bool {
        self.identifiers.iter().any(|h| h.id.kind == crate::identity::IdKind::UserId)
    }

    /// Whether the profile holds this identifier.
    pub fn holds(&self, id: &Identifier) -> bool {
        self.identifiers.iter().any(|h| &h.id == id)
    }
}
