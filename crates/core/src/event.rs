//! The event: one Segment-spec message as weft stores it.
//!
//! Collected events are validated and normalised by [`crate::payload`] into [`Event`],
//! which is what the identity graph stores, replays and archives. Every Segment common
//! field is kept (`context`, `integrations`, `traits`, `properties` and the clocks), so
//! nothing a client sent is lost; what the collector adds (source, corrected time, bot
//! flag, geo) lives beside it under `weft`.
//!
//! ```json
//! {"type":"page","messageId":"m-1","anonymousId":"anon-1",
//!  "context":{"page":{"path":"/pricing"}},
//!  "timestamp":"2024-05-01T11:59:55.000Z","receivedAt":"2024-05-01T12:00:00.000Z",
//!  "weft":{"source":"web","bot":false}}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::time::Millis;

/// The Segment-spec event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A named action (`event` holds its name).
    Track,
    /// A web page view.
    Page,
    /// A mobile screen view.
    Screen,
    /// Who the visitor is (`userId`, `traits`).
    Identify,
    /// The visitor belongs to an account (`groupId`, `traits`).
    Group,
    /// Two ids are the same person (`previousId` → `userId`).
    Alias,
}

impl EventKind {
    /// Reads a type name, also the one-letter forms of the browser routes.
    pub fn parse(name: &str) -> Option<EventKind> {
        Some(match name {
            "track" | "t" => EventKind::Track,
            "page" | "p" => EventKind::Page,
            "screen" | "s" => EventKind::Screen,
            "identify" | "i" => EventKind::Identify,
            "group" | "g" => EventKind::Group,
            "alias" | "a" => EventKind::Alias,
            _ => return None,
        })
    }

    /// The spec's name for this type.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Track => "track",
            EventKind::Page => "page",
            EventKind::Screen => "screen",
            EventKind::Identify => "identify",
            EventKind::Group => "group",
            EventKind::Alias => "alias",
        }
    }
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The event type.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The client's id for this message; deduplication key together with the source.
    pub message_id: String,
    /// The anonymous id, when it is a usable identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    /// The user id, when it is a usable identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// `alias` only: the id being aliased to `userId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_id: Option<String>,
    /// `group` only: the account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// `track` only: the action's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `page` / `screen`: the page's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `track`, `page`, `screen`: free-form properties.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
    /// `identify`, `group`: traits of the person or account.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub traits: Map<String, Value>,
    /// The spec's `context` (page, campaign, userAgent, ip, library, locale, ...).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: Map<String, Value>,
    /// The spec's `integrations`, kept as sent.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub integrations: Map<String, Value>,
    /// When the event happened, corrected for the client's clock skew.
    #[serde(with = "rfc3339")]
    pub timestamp: Millis,
    /// The client's own `timestamp`, as it sent it.
    #[serde(default, with = "rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub original_timestamp: Option<Millis>,
    /// When the client sent the batch, by its own clock.
    #[serde(default, with = "rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Millis>,
    /// When the collector received the event.
    #[serde(with = "rfc3339")]
    pub received_at: Millis,
    /// What the collector added.
    #[serde(default)]
    pub weft: Meta,
}

/// What the collector adds to an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The source (from its write key) that sent the event.
    #[serde(default)]
    pub source: String,
    /// The event came from a crawler, headless browser or monitor.
    #[serde(default)]
    pub bot: bool,
    /// ISO country code from the runtime's request metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// `desktop`, `mobile`, `tablet` or `bot`, from the user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The id cookie the worker set itself (`weft_sid`), when it differs from
    /// `anonymousId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl Event {
    /// A minimal event, for tests and tools: the given type and message id at `at`.
    pub fn new(kind: EventKind, message_id: impl Into<String>, at: Millis) -> Event {
        Event {
            kind,
            message_id: message_id.into(),
            anonymous_id: None,
            user_id: None,
            previous_id: None,
            group_id: None,
            event: None,
            name: None,
            properties: Map::new(),
            traits: Map::new(),
            context: Map::new(),
            integrations: Map::new(),
            timestamp: at,
            original_timestamp: None,
            sent_at: None,
            received_at: at,
            weft: Meta::default(),
        }
    }

    /// A string inside `context`, by path (`["page", "path"]`).
    pub fn context_str(&self, path: &[&str]) -> Option<&str> {
        let (last, parents) = path.split_last()?;
        let mut map = &self.context;
        for key in parents {
            map = map.get(*key)?.as_object()?;
        }
        map.get(*last)?.as_str()
    }
}

mod rfc3339 {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    use crate::time::{format_rfc3339, parse_rfc3339, Millis};

    pub fn serialize<S: Serializer>(at: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        let text = String::deserialize(d)?;
        parse_rfc3339(&text)
            .map(|p| p.at)
            .map_err(|e| D::Error::custom(e.as_str()))
    }
}

mod rfc3339_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::time::Millis;

    pub fn serialize<S: Serializer>(at: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::rfc3339::serialize(at, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::rfc3339")] Millis);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trips_through_json() {
        let mut e = Event::new(EventKind::Page, "m-1", 1_714_564_795_000);
        e.anonymous_id = Some("anon-1".into());
        e.original_timestamp = Some(1_714_737_600_000);
        e.context
            .insert("page".into(), serde_json::json!({"path": "/pricing"}));
        e.weft.source = "web".into();
        let text = serde_json::to_string(&e).unwrap();
        assert!(
            text.contains(r#""timestamp":"2024-05-01T11:59:55.000Z""#),
            "{text}"
        );
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.context_str(&["page", "path"]), Some("/pricing"));
    }

    #[test]
    fn one_letter_types_are_read() {
        for (name, kind) in [("t", EventKind::Track), ("alias", EventKind::Alias)] {
            assert_eq!(EventKind::parse(name), Some(kind));
        }
        assert_eq!(EventKind::parse("tr"), None);
    }
}
