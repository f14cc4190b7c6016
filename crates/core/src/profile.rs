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

use crate::event::{Event, EventKind};
use crate::identity::Identifier;
use crate::segment::{FeatureSpec, Features};
use crate::time::Millis;
use crate::touch::{self, Touchpoint};

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
        self.identifiers
            .iter()
            .any(|h| h.id.kind == crate::identity::IdKind::UserId)
    }

    /// Whether the profile holds this identifier.
    pub fn holds(&self, id: &Identifier) -> bool {
        self.identifiers.iter().any(|h| &h.id == id)
    }

    /// Takes one event into the profile: traits, touches, times, geo, bot flag, counters.
    ///
    /// Traits come from an `identify` event's `traits` and any event's `context.traits`;
    /// per trait the value of the latest event wins (on equal timestamps, the greater
    /// value as JSON text), so any delivery order gives the same traits. First touch is
    /// the earliest touchpoint, last touch the latest. The profile stays a bot only while
    /// every event is.
    ///
    /// # Limitations
    /// Country, device and account keep the value of the latest event that had one only
    /// when events arrive in time order: a late event older than the profile's
    /// `last_seen` fills them only while they are empty, since the profile keeps no time
    /// per field.
    pub fn observe(&mut self, event: &Event, spec: &FeatureSpec) {
        let at = event.timestamp;
        if event.kind == EventKind::Identify {
            for (name, value) in &event.traits {
                self.set_trait(name, value, at);
            }
        }
        if let Some(serde_json::Value::Object(traits)) = event.context.get("traits") {
            for (name, value) in traits {
                self.set_trait(name, value, at);
            }
        }

        if let Some(touch) = touch::from_event(event) {
            if self.first_touch.as_ref().is_none_or(|t| touch.at < t.at) {
                self.first_touch = Some(touch.clone());
            }
            if self.last_touch.as_ref().is_none_or(|t| touch.at >= t.at) {
                self.last_touch = Some(touch);
            }
        }

        let latest = self.events == 0 || at >= self.last_seen;
        let update = |field: &mut Option<String>, value: &Option<String>| {
            if let Some(value) = value {
                if (latest || field.is_none()) && field.as_ref() != Some(value) {
                    *field = Some(value.clone());
                }
            }
        };
        update(&mut self.country, &event.weft.country);
        update(&mut self.device, &event.weft.device);
        if event.kind == EventKind::Group {
            update(&mut self.account, &event.group_id);
        }

        if self.events == 0 {
            self.first_seen = at;
            self.last_seen = at;
            self.created_at = at;
            self.bot = event.weft.bot;
        } else {
            self.first_seen = self.first_seen.min(at);
            self.last_seen = self.last_seen.max(at);
            self.created_at = self.created_at.min(at);
            self.bot &= event.weft.bot;
        }
        self.events += 1;
        // Without counters there is nothing to count, and no page path worth parsing.
        if !spec.is_empty() {
            self.features.observe(spec, event);
        }
    }

    /// Folds another profile into this one (a merge): identifiers, traits, touches,
    /// times, counters.
    ///
    /// The result does not depend on which of the two absorbs the other, except for the
    /// id, which stays this profile's. Identifiers are appended without duplicates; the
    /// caller relinks them in its store.
    pub fn absorb(&mut self, other: Profile, _spec: &FeatureSpec) {
        for held in other.identifiers {
            match self.identifiers.iter_mut().find(|h| h.id == held.id) {
                Some(mine) => mine.first_seen = mine.first_seen.min(held.first_seen),
                None => self.identifiers.push(held),
            }
        }
        for (name, t) in &other.traits {
            self.set_trait(name, &t.value, t.at);
        }
        if let Some(touch) = other.first_touch {
            if self.first_touch.as_ref().is_none_or(|t| touch.at < t.at) {
                self.first_touch = Some(touch);
            }
        }
        if let Some(touch) = other.last_touch {
            if self.last_touch.as_ref().is_none_or(|t| touch.at > t.at) {
                self.last_touch = Some(touch);
            }
        }

        let theirs_later = other.last_seen > self.last_seen;
        let pick = |mine: &mut Option<String>, theirs: Option<String>| {
            if theirs.is_some() && (theirs_later || mine.is_none()) {
                *mine = theirs;
            }
        };
        pick(&mut self.country, other.country);
        pick(&mut self.device, other.device);
        pick(&mut self.account, other.account);

        if other.events > 0 {
            if self.events == 0 {
                self.first_seen = other.first_seen;
                self.last_seen = other.last_seen;
                self.bot = other.bot;
            } else {
                self.first_seen = self.first_seen.min(other.first_seen);
                self.last_seen = self.last_seen.max(other.last_seen);
                self.bot &= other.bot;
            }
        }
        self.created_at = self.created_at.min(other.created_at);
        self.events += other.events;
        self.features.merge(&other.features);
    }

    /// Sets a trait unless the profile holds a value from a later event.
    pub fn set_trait(&mut self, name: &str, value: &serde_json::Value, at: Millis) {
        match self.traits.get_mut(name) {
            Some(old) => {
                // Equal times: order by JSON text so every delivery order agrees.
                let wins = at > old.at
                    || (at == old.at && value != &old.value && {
                        let (new_text, old_text) = (value.to_string(), old.value.to_string());
                        new_text > old_text
                    });
                if wins {
                    *old = Trait {
                        value: value.clone(),
                        at,
                    };
                }
            }
            None => {
                self.traits.insert(
                    name.to_owned(),
                    Trait {
                        value: value.clone(),
                        at,
                    },
                );
            }
        }
    }
}
