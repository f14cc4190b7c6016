//! Finding an event's identifiers: its ids, the worker's cookie, and the traits and
//! context fields the workspace maps to a kind.
//!
//! Extraction is pure: it normalises every value it finds and sets junk aside as
//! warnings, but does not look at the graph. The one question that needs the graph, what
//! kind an `alias` event's `previousId` is, is left to [`ingest`](super::ingest) through
//! [`Extracted::previous`].

use std::borrow::Cow;

use serde_json::Value;

use super::normalise::{self, Junk};
use super::{IdKind, Identifier, IdentityConfig, Warning};
use crate::event::Event;

/// One identifier found in an event, with the field it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'c> {
    /// The normalised identifier.
    pub id: Identifier,
    /// Where it was found (`userId`, `anonymousId`, `traits.email`, ...).
    pub field: &'c str,
}

/// What [`extract`] found in an event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted<'c> {
    /// Usable identifiers, each once, in the order the event names them: `userId`,
    /// `anonymousId`, the worker's cookie id, then configured fields.
    pub ids: Vec<Found<'c>>,
    /// An `alias` event's normalised `previousId`, whose kind depends on the graph.
    pub previous: Option<String>,
    /// The junk values set aside, one warning each.
    pub warnings: Vec<Warning>,
}

/// Finds and normalises the identifiers of `event` under `config`.
pub fn extract<'c>(event: &Event, config: &'c IdentityConfig) -> Extracted<'c> {
    let mut out = Extracted::default();
    each(event, config, |item| match item {
        Item::Id { kind, value, field } => out.add(
            Identifier {
                kind,
                value: value.into_owned(),
            },
            field,
        ),
        Item::Previous(value) => out.previous = Some(value.into_owned()),
        Item::Junk { field, junk } => out.warn(field, junk),
    });
    out
}

/// One thing [`each`] finds in an event, borrowed from it where it can be.
#[derive(Debug)]
pub(crate) enum Item<'e, 'c> {
    /// A usable identifier, possibly one already found (the caller drops repeats).
    Id {
        kind: IdKind,
        value: Cow<'e, str>,
        field: &'c str,
    },
    /// An `alias` event's normalised `previousId`.
    Previous(Cow<'e, str>),
    /// A junk value.
    Junk { field: &'c str, junk: Junk },
}

/// Calls `on` with every identifier, previous id and junk value of `event`, in the order
/// [`Extracted::ids`] lists them, copying no value that normalising leaves as sent.
pub(crate) fn each<'e, 'c>(
    event: &'e Event,
    config: &'c IdentityConfig,
    mut on: impl FnMut(Item<'e, 'c>),
) {
    let junk = &config.junk;
    let item =
        |kind: IdKind, raw: &'e str, field: &'c str| match normalise::value_ref(&kind, raw, junk) {
            Ok(value) => Item::Id { kind, value, field },
            Err(junk) => Item::Junk { field, junk },
        };
    if let Some(raw) = &event.user_id {
        on(item(IdKind::UserId, raw, "userId"));
    }
    if let Some(raw) = &event.anonymous_id {
        on(item(IdKind::AnonymousId, raw, "anonymousId"));
    }
    if let Some(raw) = &event.weft.sid {
        on(item(IdKind::AnonymousId, raw, "weft.sid"));
    }
    if let Some(raw) = &event.previous_id {
        on(match normalise::value_ref(&IdKind::UserId, raw, junk) {
            Ok(value) => Item::Previous(value),
            Err(junk) => Item::Junk {
                field: "previousId",
                junk,
            },
        });
    }
    for (path, kind) in &config.fields {
        match lookup(event, path) {
            Some(Ok(Cow::Borrowed(raw))) => on(item(IdKind::from_name(kind), raw, path)),
            Some(Err(junk)) => on(Item::Junk { field: path, junk }),
            Some(Ok(Cow::Owned(raw))) => {
                let kind = IdKind::from_name(kind);
                on(match normalise::value_ref(&kind, &raw, junk) {
                    Ok(value) => Item::Id {
                        kind,
                        value: Cow::Owned(value.into_owned()),
                        field: path,
                    },
                    Err(junk) => Item::Junk { field: path, junk },
                });
            }
            None => {}
        }
    }
    for path in &config.ga_cookie {
        if let Some(raw) = lookup(event, path) {
            on(match raw.and_then(|raw| normalise::ga_client_id(&raw)) {
                Ok(value) => Item::Id {
                    kind: IdKind::Other("ga_client_id".into()),
                    value: Cow::Owned(value),
                    field: path,
                },
                Err(junk) => Item::Junk { field: path, junk },
            });
        }
    }
}

impl<'c> Extracted<'c> {
    fn add(&mut self, id: Identifier, field: &'c str) {
        if !self.ids.iter().any(|f| f.id == id) {
            self.ids.push(Found { id, field });
        }
    }

    fn warn(&mut self, field: &str, junk: Junk) {
        self.warnings.push(Warning::Junk {
            field: field.to_owned(),
            junk,
        });
    }
}

/// The string (or whole number, as text) at a dotted path from the event's root; `None`
/// when nothing or `null` is there, [`Junk::NotText`] for any other value.
fn lookup<'e>(event: &'e Event, path: &str) -> Option<Result<Cow<'e, str>, Junk>> {
    let roots = [
        ("traits.", &event.traits),
        ("context.", &event.context),
        ("properties.", &event.properties),
    ];
    let (map, mut rest) = roots
        .into_iter()
        .find_map(|(root, map)| Some((map, path.strip_prefix(root)?)))?;
    if map.is_empty() {
        return None;
    }
    let (first, tail) = split_dot(rest).unwrap_or((rest, ""));
    let mut value = map.get(first)?;
    rest = tail;
    while !rest.is_empty() {
        let (key, tail) = split_dot(rest).unwrap_or((rest, ""));
        value = value.as_object()?.get(key)?;
        rest = tail;
    }
    match value {
        Value::String(s) => Some(Ok(Cow::Borrowed(s))),
        Value::Number(n) if n.is_f64() => {
            Some(Err(Junk::NotText("a fractional or rounded number")))
        }
        Value::Number(n) => Some(Ok(Cow::Owned(n.to_string()))),
        Value::Null => None,
        Value::Bool(_) => Some(Err(Junk::NotText("a boolean"))),
        Value::Array(_) => Some(Err(Junk::NotText("an array"))),
        Value::Object(_) => Some(Err(Junk::NotText("an object"))),
    }
}

/// `path` split at its first `.`: a byte loop, as paths are too short for `memchr`.
fn split_dot(path: &str) -> Option<(&str, &str)> {
    let at = path.bytes().position(|b| b == b'.')?;
    Some((path.get(..at)?, path.get(at + 1..)?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::EventKind;

    fn ids(x: &Extracted<'_>) -> Vec<String> {
        x.ids
            .iter()
            .map(|f| format!("{}@{}", f.id, f.field))
            .collect()
    }

    #[test]
    fn ids_traits_and_context_fields_are_found_in_order() {
        let mut config = IdentityConfig::default();
        config
            .fields
            .insert("context.traits.phone".into(), "phone".into());
        let mut e = Event::new(EventKind::Identify, "m-1", 0);
        e.user_id = Some(" user-1 ".into());
        e.anonymous_id = Some("anon-1".into());
        e.weft.sid = Some("sid-1".into());
        e.traits.insert("email".into(), json!("Ann@Example.com"));
        e.context.insert(
            "traits".into(),
            json!({"phone": 33612, "email": "ann@example.com"}),
        );
        let x = extract(&e, &config);
        assert_eq!(
            ids(&x),
            [
                "user_id:user-1@userId",
                "anonymous_id:anon-1@anonymousId",
                "anonymous_id:sid-1@weft.sid",
                "email:ann@example.com@context.traits.email",
                "phone:33612@context.traits.phone",
            ]
        );
        assert!(x.warnings.is_empty());
    }

    #[test]
    fn junk_ids_become_warnings_and_the_rest_stays() {
        let mut e = Event::new(EventKind::Alias, "m-2", 0);
        e.user_id = Some("undefined".into());
        e.anonymous_id = Some("anon-1".into());
        e.previous_id = Some("[object Object]".into());
        e.traits.insert("email".into(), json!("\"null\""));
        let config = IdentityConfig::default();
        let x = extract(&e, &config);
        assert_eq!(ids(&x), ["anonymous_id:anon-1@anonymousId"]);
        assert_eq!(x.previous, None);
        let fields: Vec<_> = x.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(fields.len(), 3, "{fields:?}");
        assert!(
            fields[0].starts_with("junk identifier in userId"),
            "{fields:?}"
        );
    }

    #[test]
    fn ga_cookie_field_gives_a_client_id_or_a_warning() {
        let mut config = IdentityConfig::default();
        config.ga_cookie.push("context.cookies._ga".into());
        let mut e = Event::new(EventKind::Page, "m-3", 0);
        e.anonymous_id = Some("anon-1".into());
        e.context.insert(
            "cookies".into(),
            json!({"_ga": "GA1.2.1234567890.1700000000"}),
        );
        let x = extract(&e, &config);
        assert_eq!(
            ids(&x)[1],
            "ga_client_id:1234567890.1700000000@context.cookies._ga"
        );

        e.context
            .insert("cookies".into(), json!({"_ga": "garbage"}));
        let x = extract(&e, &config);
        assert_eq!(x.ids.len(), 1);
        assert_eq!(x.warnings.len(), 1);
    }
}
