//! Reading a collector request body into events, one verdict per event.
//!
//! Whatever a client sends, this module answers with a [`Payload`]: the events that are
//! valid, normalised and clock-corrected; the ones that are not, each with its index,
//! `messageId` and a message naming the fault; and warnings for events kept with
//! something ignored. Only a body that cannot be read at all (not UTF-8, not JSON, not an
//! object) is a [`BodyError`]. One bad event never costs the others: the batch is split
//! into raw JSON values first, and each is parsed and checked on its own.
//!
//! Clock skew: a client's clock may be wrong by days. When the batch carries `sentAt`,
//! the event's time is `receivedAt − (sentAt − timestamp)`: the client's own clock
//! measures only the delay. No event is stored in the future.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::event::{Event, EventKind, Meta};
use crate::identity::normalise::{self, Junk};
use crate::identity::IdKind;
use crate::time::{parse_rfc3339, Millis, MINUTE};

/// Size and shape limits, measured on the decompressed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted body, in bytes.
    pub max_body: usize,
    /// Largest accepted event, in bytes of its JSON text.
    pub max_event: usize,
    /// Deepest nesting of objects and arrays inside an event.
    pub max_depth: usize,
    /// Longest string (in bytes) anywhere inside an event.
    pub max_string: usize,
    /// Most events in one batch.
    pub max_events: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body: 500 * 1024,
            max_event: 32 * 1024,
            max_depth: 32,
            max_string: 16 * 1024,
            max_events: 2_000,
        }
    }
}

/// The longest id (`anonymousId`, `userId`, `previousId`, `groupId`) an event may carry:
/// longer ones could not be asked about at `/v1/decide` (its KV keys hold 512 bytes).
pub const MAX_ID_BYTES: usize = 400;

/// How far ahead of `receivedAt` a timestamp may be, without `sentAt`, before it is
/// clamped and flagged.
pub const FUTURE_TOLERANCE: Millis = MINUTE;

/// Why a whole body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is larger than [`Limits::max_body`].
    #[error("body exceeds {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The body is empty.
    #[error("body is empty")]
    Empty,
    /// The body is not UTF-8 text.
    #[error("body is not valid utf-8 (bad byte at offset {0})")]
    NotUtf8(usize),
    /// The body is not JSON.
    #[error("body is not valid json: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error("body must be a json object (got {0})")]
    NotObject(&'static str),
    /// `batch` is not an array.
    #[error("batch must be an array of events (got {0})")]
    BatchNotArray(&'static str),
    /// More events than [`Limits::max_events`].
    #[error("batch holds {got} events; the limit is {limit}")]
    TooManyEvents {
        /// Events in the batch.
        got: usize,
        /// The limit in force.
        limit: usize,
    },
}

/// One event that was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Its position in the batch (0 for a single-event route).
    pub index: usize,
    /// Its `messageId`, when it had a readable one.
    pub message_id: Option<String>,
    /// What is wrong, in lowercase words naming the fault.
    pub error: String,
}

/// One event that is stored, with something ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Its position in the batch.
    pub index: usize,
    /// Its `messageId`.
    pub message_id: String,
    /// What was ignored or corrected.
    pub warning: String,
}

/// A body read into events.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// The write key from the body, when it had one.
    pub write_key: Option<String>,
    /// Valid events with their index in the batch.
    pub events: Vec<(usize, Event)>,
    /// Invalid events.
    pub rejected: Vec<Rejection>,
    /// Kept events with something ignored.
    pub warnings: Vec<Warning>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    batch: Option<&'a RawValue>,
    #[serde(default, rename = "writeKey")]
    write_key: Option<&'a RawValue>,
    #[serde(default, rename = "sentAt")]
    sent_at: Option<&'a RawValue>,
    #[serde(default)]
    context: Option<&'a RawValue>,
}

/// Reads a decompressed body.
///
/// `route` is the event type a single-event route implies (`/v1/track` → `Track`), or
/// `None` for the batch routes. `received_at` is the collector's clock.
///
/// # Errors
/// [`BodyError`] when the body as a whole cannot be read; per-event faults are in
/// [`Payload::rejected`] instead.
///
/// # Limitations
/// A JSON syntax error anywhere in the body (`NaN`, a bare word, a bad escape) refuses the
/// whole body: until the text is valid JSON there is no telling where one event ends and
/// the next begins. Events that are valid JSON but wrong in any other way are rejected one
/// by one.
pub fn parse(
    body: &[u8],
    route: Option<EventKind>,
    received_at: Millis,
    limits: &Limits,
) -> Result<Payload, BodyError> {
    if body.len() > limits.max_body {
        return Err(BodyError::TooLarge {
            limit: limits.max_body,
        });
    }
    let text = std::str::from_utf8(body).map_err(|e| BodyError::NotUtf8(e.valid_up_to()))?;
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return Err(BodyError::Empty);
    }
    let first = text.trim_start().as_bytes()[0];
    if first != b'{' {
        // Tell a JSON array or scalar apart from text that is not JSON at all.
        return Err(match serde_json::from_str::<&RawValue>(text) {
            Ok(_) => BodyError::NotObject(if first == b'[' {
                "an array"
            } else {
                "a scalar"
            }),
            Err(e) => BodyError::NotJson(e.to_string()),
        });
    }
    let envelope: Envelope<'_> =
        serde_json::from_str(text).map_err(|e| BodyError::NotJson(e.to_string()))?;
    let write_key = envelope
        .write_key
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
    let batch_sent_at = envelope.sent_at.and_then(|raw| time_of(raw.get()));
    let batch_context: Option<Map<String, Value>> = envelope
        .context
        .and_then(|raw| serde_json::from_str(raw.get()).ok());

    let raws: Vec<&RawValue> = match (route, envelope.batch) {
        (None, Some(batch)) => {
            let b = batch.get().trim_start().as_bytes().first().copied();
            if b != Some(b'[') {
                return Err(BodyError::BatchNotArray(json_kind(batch.get())));
            }
            serde_json::from_str(batch.get()).map_err(|e| BodyError::NotJson(e.to_string()))?
        }
        // A batch route without `batch` carries one event as the body itself.
        _ => vec![serde_json::from_str(text).map_err(|e| BodyError::NotJson(e.to_string()))?],
    };
    if raws.len() > limits.max_events {
        return Err(BodyError::TooManyEvents {
            got: raws.len(),
            limit: limits.max_events,
        });
    }

    let mut payload = Payload {
        write_key,
        events: Vec::new(),
        rejected: Vec::new(),
        warnings: Vec::new(),
    };
    let batch = Batch {
        route,
        received_at,
        sent_at: batch_sent_at,
        context: batch_context,
    };
    for (index, raw) in raws.into_iter().enumerate() {
        let mut warnings = Vec::new();
        match read_event(raw, &batch, limits, &mut warnings) {
            Ok(event) => {
                for warning in warnings {
                    payload.warnings.push(Warning {
                        index,
                        message_id: event.message_id.clone(),
                        warning,
                    });
                }
                payload.events.push((index, event));
            }
            Err((message_id, error)) => payload.rejected.push(Rejection {
                index,
                message_id,
                error,
            }),
        }
    }
    Ok(payload)
}

struct Batch {
    route: Option<EventKind>,
    received_at: Millis,
    sent_at: Option<Millis>,
    context: Option<Map<String, Value>>,
}

type Fault = (Option<String>, String);

fn read_event(
    raw: &RawValue,
    batch: &Batch,
    limits: &Limits,
    warnings: &mut Vec<String>,
) -> Result<Event, Fault> {
    let text = raw.get();
    if text.len() > limits.max_event {
        // Still try to name the event: a cheap look for its messageId.
        let id = serde_json::from_str::<IdOnly>(text)
            .ok()
            .and_then(|i| i.message_id);
        let msg = format!(
            "event exceeds {} KiB (got {} bytes)",
            limits.max_event / 1024,
            text.len()
        );
        return Err((id, msg));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| (None, format!("event is not valid json: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err((
            None,
            format!("event must be a json object (got {})", json_kind(text)),
        ));
    };

    let message_id = match obj.remove("messageId") {
        // A placeholder sent by every client ("undefined", "null", "0") would make each
        // event after the first a duplicate of it.
        Some(Value::String(s)) if is_placeholder(&s) => {
            warnings.push(format!(
                "messageId {s:?} is a placeholder; derived from the event's content"
            ));
            derived_message_id(text)
        }
        Some(Value::Number(n)) if !n.is_f64() && is_placeholder(&n.to_string()) => {
            warnings.push(format!(
                "messageId {n} is a placeholder; derived from the event's content"
            ));
            derived_message_id(text)
        }
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::Number(n)) if !n.is_f64() => n.to_string(),
        // Past 64 bits a number arrives rounded: two messages could share it and the
        // second be dropped as a duplicate.
        Some(Value::Number(n)) => {
            warnings.push(format!(
                "messageId {n} is not a whole number within 64 bits; derived from the \
                 event's content (send messageIds as strings)"
            ));
            derived_message_id(text)
        }
        None | Some(Value::Null) => {
            warnings.push("messageId missing; derived from the event's content".into());
            derived_message_id(text)
        }
        Some(Value::String(_)) => {
            warnings.push("messageId empty; derived from the event's content".into());
            derived_message_id(text)
        }
        Some(other) => {
            return Err((
                None,
                format!("messageId must be a string (got {})", value_kind(&other)),
            ))
        }
    };
    // The shape check below sees the event without its messageId: bound it here.
    if message_id.len() > limits.max_string {
        let msg = format!(
            "messageId exceeds {} bytes (got {})",
            limits.max_string,
            message_id.len()
        );
        return Err((None, msg));
    }
    let fail = |msg: String| (Some(message_id.clone()), msg);

    check_shape(&Value::Object(obj.clone()), limits, 0, &mut String::new()).map_err(fail)?;

    let kind = match (obj.remove("type"), batch.route) {
        (Some(Value::String(t)), route) => match EventKind::parse(&t) {
            Some(kind) if route.is_none_or(|r| r == kind) => kind,
            Some(kind) => {
                let route = route.map_or("", EventKind::as_str);
                return Err(fail(format!(
                    "event type {:?} sent to the /v1/{route} route",
                    kind.as_str()
                )));
            }
            None => {
                return Err(fail(format!(
                "unknown event type {t:?} (expected track, page, screen, identify, group or alias)"
            )))
            }
        },
        (None | Some(Value::Null), Some(route)) => route,
        (None | Some(Value::Null), None) => return Err(fail("event has no type".into())),
        (Some(other), _) => {
            return Err(fail(format!(
                "type must be a string (got {})",
                value_kind(&other)
            )))
        }
    };

    let mut event = Event::new(kind, message_id.clone(), batch.received_at);
    event.anonymous_id = id_field(&mut obj, "anonymousId").map_err(fail)?;
    event.user_id = id_field(&mut obj, "userId").map_err(fail)?;
    event.previous_id = id_field(&mut obj, "previousId").map_err(fail)?;
    event.group_id = id_field(&mut obj, "groupId").map_err(fail)?;
    event.event = string_field(&mut obj, "event").map_err(fail)?;
    event.name = string_field(&mut obj, "name").map_err(fail)?;
    event.properties = object_field(&mut obj, "properties").map_err(fail)?;
    event.traits = object_field(&mut obj, "traits").map_err(fail)?;
    event.context = object_field(&mut obj, "context").map_err(fail)?;
    event.integrations = object_field(&mut obj, "integrations").map_err(fail)?;
    if let Some(shared) = &batch.context {
        for (key, value) in shared {
            event
                .context
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
    }

    if event.anonymous_id.is_none() && event.user_id.is_none() {
        return Err(fail("event has neither userId nor anonymousId".into()));
    }
    match kind {
        EventKind::Track if event.event.as_deref().is_none_or(|e| e.trim().is_empty()) => {
            return Err(fail(
                "track event has no event name (field \"event\")".into(),
            ))
        }
        EventKind::Alias if event.previous_id.is_none() => {
            return Err(fail("alias event has no previousId".into()))
        }
        EventKind::Alias if event.user_id.is_none() => {
            return Err(fail("alias event has no userId".into()))
        }
        EventKind::Group if event.group_id.is_none() => {
            return Err(fail("group event has no groupId".into()))
        }
        _ => {}
    }
    for (field, id) in [
        ("anonymousId", &event.anonymous_id),
        ("userId", &event.user_id),
        ("previousId", &event.previous_id),
        ("groupId", &event.group_id),
    ] {
        if let Some(id) = id.as_deref().filter(|id| id.len() > MAX_ID_BYTES) {
            return Err(fail(format!(
                "{field} is {} bytes long; the limit is {MAX_ID_BYTES}",
                id.len()
            )));
        }
    }
    if let Some(group) = event.group_id.as_deref() {
        let kind = crate::identity::IdKind::Other("group_id".into());
        if crate::identity::normalise::is_junk(&kind, group, &[]) {
            return Err(fail(format!(
                "groupId {group:?} is a placeholder, not an account id"
            )));
        }
    }

    let client_time = time_field(&mut obj, "timestamp", warnings)
        .or_else(|| time_field(&mut obj, "originalTimestamp", warnings));
    let sent_at = time_field(&mut obj, "sentAt", warnings).or(batch.sent_at);
    event.original_timestamp = client_time;
    event.sent_at = sent_at;
    event.timestamp = corrected_time(client_time, sent_at, batch.received_at, warnings);
    // Clients echo these back; they are the collector's to set.
    obj.remove("receivedAt");
    obj.remove("writeKey");
    obj.remove("weft");
    event.weft = Meta::default();
    Ok(event)
}

/// The `writeKey` of a body that [`parse`] refused as a whole, when its envelope is still
/// readable (`{"writeKey":"…","batch":{}}`), so that the caller can answer the body's
/// fault rather than a missing key.
pub fn write_key_of(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body)
        .ok()?
        .trim_start_matches('\u{feff}');
    let envelope: Envelope<'_> = serde_json::from_str(text).ok()?;
    serde_json::from_str(envelope.write_key?.get()).ok()
}

/// The event's time: `receivedAt − (sentAt − timestamp)` when both client clocks are
/// known, else the client's timestamp clamped to `receivedAt` (+ a minute's tolerance,
/// flagged), else `receivedAt`. A time before 1970 (a clock reset to zero, or a delay of
/// centuries) is no event time anyone can use: it is stored as `receivedAt`, flagged.
pub fn corrected_time(
    client: Option<Millis>,
    sent_at: Option<Millis>,
    received_at: Millis,
    warnings: &mut Vec<String>,
) -> Millis {
    let at = corrected_or_early(client, sent_at, received_at, warnings);
    if at < EARLIEST {
        warnings.push("timestamp is before 1970; stored as receivedAt".into());
        return received_at;
    }
    at
}

/// The earliest event time kept: the Unix epoch.
const EARLIEST: Millis = 0;

fn corrected_or_early(
    client: Option<Millis>,
    sent_at: Option<Millis>,
    received_at: Millis,
    warnings: &mut Vec<String>,
) -> Millis {
    match (client, sent_at) {
        (Some(ts), Some(sent)) => {
            let delay = sent - ts;
            if delay < 0 {
                warnings.push("timestamp is after sentAt; stored as receivedAt".into());
                received_at
            } else {
                received_at - delay
            }
        }
        (Some(ts), None) if ts > received_at + FUTURE_TOLERANCE => {
            warnings.push(
                "timestamp is in the future and there is no sentAt; clamped to receivedAt".into(),
            );
            received_at
        }
        (Some(ts), None) => ts.min(received_at),
        (None, _) => received_at,
    }
}

#[derive(Deserialize)]
struct IdOnly {
    #[serde(rename = "messageId")]
    message_id: Option<String>,
}

fn time_of(raw: &str) -> Option<Millis> {
    let text: String = serde_json::from_str(raw).ok()?;
    parse_rfc3339(&text).ok().map(|p| p.at)
}

fn time_field(
    obj: &mut Map<String, Value>,
    key: &str,
    warnings: &mut Vec<String>,
) -> Option<Millis> {
    match obj.remove(key)? {
        Value::String(text) => match parse_rfc3339(&text) {
            Ok(p) => {
                if !p.had_zone {
                    warnings.push(format!("{key} has no time zone; read as utc"));
                }
                Some(p.at)
            }
            Err(e) => {
                warnings.push(format!("{key} {text:?} ignored: {}", e.as_str()));
                None
            }
        },
        Value::Null => None,
        other => {
            warnings.push(format!(
                "{key} ignored: expected a string (got {})",
                value_kind(&other)
            ));
            None
        }
    }
}

fn id_field(obj: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        // Some clients send numeric ids; they are the same id as text. Past 64 bits (or
        // with a fraction) the number arrived rounded, and two people could share it.
        Some(Value::Number(n)) if !n.is_f64() => Ok(Some(n.to_string())),
        Some(Value::Number(n)) => Err(format!(
            "{key} {n} is not a whole number within 64 bits: it may have been rounded \
             (send long ids as strings)"
        )),
        Some(other) => Err(format!(
            "{key} must be a string (got {})",
            value_kind(&other)
        )),
    }
}

fn string_field(obj: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "{key} must be a string (got {})",
            value_kind(&other)
        )),
    }
}

fn object_field(obj: &mut Map<String, Value>, key: &str) -> Result<Map<String, Value>, String> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(format!(
            "{key} must be an object (got {})",
            value_kind(&other)
        )),
    }
}

fn check_shape(
    value: &Value,
    limits: &Limits,
    depth: usize,
    path: &mut String,
) -> Result<(), String> {
    if depth > limits.max_depth {
        return Err(format!(
            "event nests deeper than {} levels (at {path})",
            limits.max_depth
        ));
    }
    match value {
        Value::String(s) if s.len() > limits.max_string => Err(format!(
            "string at {path} exceeds {} bytes (got {})",
            limits.max_string,
            s.len()
        )),
        Value::Array(items) => {
            let len = path.len();
            for (i, item) in items.iter().enumerate() {
                path.push_str(&format!("[{i}]"));
                check_shape(item, limits, depth + 1, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            let len = path.len();
            for (key, item) in map {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                check_shape(item, limits, depth + 1, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn json_kind(text: &str) -> &'static str {
    match text.trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value no client means as an id of its own (the identity junk list's placeholders).
fn is_placeholder(text: &str) -> bool {
    matches!(
        normalise::value(&IdKind::UserId, text, &[]),
        Err(Junk::Placeholder(_))
    )
}

// FNV-1a over the event's text: the same event sent twice gets the same id, so a client
// that omits messageId still has its retries deduplicated.
fn derived_message_id(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("weft-{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_rfc3339;

    const NOW: Millis = 1_714_564_800_000; // 2024-05-01T12:00:00Z

    fn read(body: &str) -> Payload {
        parse(body.as_bytes(), None, NOW, &Limits::default()).unwrap()
    }

    fn ids(p: &Payload) -> Vec<&str> {
        p.events
            .iter()
            .map(|(_, e)| e.message_id.as_str())
            .collect()
    }

    #[test]
    fn client_clock_skew_correction() {
        let p = read(
            r#"{"sentAt":"2024-05-03T12:00:05Z","batch":[
            {"messageId":"m-1","type":"track","event":"Clicked","anonymousId":"anon-1","timestamp":"2024-05-03T12:00:00Z"},
            {"messageId":"m-2","type":"track","event":"Clicked","anonymousId":"anon-1","timestamp":"2024-05-03T11:59:00Z"},
            {"messageId":"m-3","type":"track","event":"Clicked","anonymousId":"anon-1","timestamp":"2024-05-03T12:00:00"}]}"#,
        );
        let at: Vec<String> = p
            .events
            .iter()
            .map(|(_, e)| format_rfc3339(e.timestamp))
            .collect();
        assert_eq!(
            at,
            [
                "2024-05-01T11:59:55.000Z",
                "2024-05-01T11:58:55.000Z",
                "2024-05-01T11:59:55.000Z"
            ]
        );
        assert_eq!(
            p.events[0].1.original_timestamp,
            Some(NOW + 2 * crate::time::DAY)
        );
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(p.warnings[0].message_id, "m-3");
        assert!(p.warnings[0].warning.contains("no time zone"));
    }

    #[test]
    fn future_timestamps_without_sent_at_are_clamped_and_flagged() {
        let p = read(
            r#"{"batch":[
            {"messageId":"f","type":"page","anonymousId":"a","timestamp":"2030-01-01T00:00:00Z"},
            {"messageId":"s","type":"page","anonymousId":"a","timestamp":"2024-05-01T12:00:30Z"},
            {"messageId":"p","type":"page","anonymousId":"a","timestamp":"2024-04-01T00:00:00Z"}]}"#,
        );
        let at: Vec<Millis> = p.events.iter().map(|(_, e)| e.timestamp).collect();
        assert_eq!(at[0], NOW);
        assert_eq!(
            at[1], NOW,
            "within tolerance: kept, but never after receivedAt"
        );
        assert!(at[2] < NOW);
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].warning.contains("future"));
    }

    #[test]
    fn no_event_is_stored_in_the_future() {
        // sentAt before timestamp: a client clock that moved backwards mid-batch.
        let p = read(
            r#"{"sentAt":"2024-05-01T00:00:00Z","batch":[
            {"messageId":"x","type":"page","anonymousId":"a","timestamp":"2024-05-02T00:00:00Z"}]}"#,
        );
        assert!(p.events[0].1.timestamp <= NOW);
    }

    #[test]
    fn nullish_id_no_merge_rounded_numbers() {
        // A numeric id past 64 bits arrives rounded: two people could share the rounded
        // value, so it is refused, while whole numbers are kept exactly as text.
        let p = read(
            r#"{"batch":[
              {"type":"identify","messageId":"big","anonymousId":"a-1","userId":12345678901234567890123},
              {"type":"identify","messageId":"frac","anonymousId":"a-2","userId":12.5},
              {"type":"identify","messageId":"ok","anonymousId":"a-3","userId":18446744073709551615},
              {"type":"page","messageId":1e30,"anonymousId":"a-4"}
            ]}"#,
        );
        let refused: Vec<_> = p
            .rejected
            .iter()
            .map(|r| r.message_id.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(refused, ["big", "frac"]);
        assert!(
            p.rejected[0].error.contains("send long ids as strings"),
            "{:?}",
            p.rejected
        );
        let kept: Vec<_> = p.events.iter().map(|(_, e)| e.user_id.clone()).collect();
        assert_eq!(kept, [Some("18446744073709551615".to_owned()), None]);
        // A rounded messageId is replaced by one derived from the event, with a warning.
        assert!(p.events[1].1.message_id.starts_with("weft-"));
        assert!(
            p.warnings
                .iter()
                .any(|w| w.warning.contains("messageId 1e+30 is not a whole number")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn nullish_id_no_merge_placeholder_message_ids() {
        // A client sending "null" as every messageId would have each event after the
        // first dropped as a duplicate: placeholders are replaced like a missing id.
        let p = read(
            r#"{"batch":[
              {"type":"track","event":"A","messageId":"null","userId":"u-1"},
              {"type":"track","event":"B","messageId":"null","userId":"u-2"},
              {"type":"track","event":"C","messageId":"\"undefined\"","userId":"u-3"},
              {"type":"track","event":"D","messageId":"[object Object]","userId":"u-4"},
              {"type":"track","event":"E","messageId":0,"userId":"u-5"},
              {"type":"track","event":"F","messageId":"null-7","userId":"u-6"}
            ]}"#,
        );
        let ids: Vec<_> = p
            .events
            .iter()
            .map(|(_, e)| e.message_id.as_str())
            .collect();
        assert_eq!(ids.len(), 6);
        assert!(ids[..5].iter().all(|id| id.starts_with("weft-")), "{ids:?}");
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 6, "{ids:?}");
        assert_eq!(ids[5], "null-7");
        let placeholders = p
            .warnings
            .iter()
            .filter(|w| w.warning.contains("is a placeholder; derived"))
            .count();
        assert_eq!(placeholders, 5, "{:?}", p.warnings);
    }

    #[test]
    fn text_plain_json_accepted() {
        // The content type is the route's business; the body is read as JSON whatever it says.
        let p = read(r#"{"batch":[{"type":"page","anonymousId":"anon-1","messageId":"m-1"}]}"#);
        assert_eq!(ids(&p), ["m-1"]);
        assert!(matches!(
            parse(b"not json", None, NOW, &Limits::default()),
            Err(BodyError::NotJson(_))
        ));
    }

    #[test]
    fn bad_events_are_rejected_one_by_one() {
        let p = read(
            r#"{"writeKey":"wk","batch":[
            {"messageId":"ok-1","type":"page","anonymousId":"a"},
            {"messageId":"no-type","anonymousId":"a"},
            {"messageId":"bad-type","type":"purchase","anonymousId":"a"},
            {"messageId":"no-ids","type":"page"},
            {"messageId":"no-name","type":"track","anonymousId":"a"},
            {"messageId":"bad-props","type":"page","anonymousId":"a","properties":"x"},
            {"messageId":"bad-uid","type":"page","userId":{"id":1}},
            {"messageId":"alias","type":"alias","userId":"u"},
            {"messageId":"group","type":"group","userId":"u"},
            17,
            {"messageId":["m"],"type":"page","anonymousId":"a"},
            {"messageId":"ok-2","type":"identify","userId":42}]}"#,
        );
        assert_eq!(p.write_key.as_deref(), Some("wk"));
        assert_eq!(ids(&p), ["ok-1", "ok-2"]);
        assert_eq!(p.events[1].1.user_id.as_deref(), Some("42"));
        let errors: Vec<(usize, &str)> = p
            .rejected
            .iter()
            .map(|r| (r.index, r.error.as_str()))
            .collect();
        let expected = [
            (1, "event has no type"),
            (2, "unknown event type \"purchase\""),
            (3, "event has neither userId nor anonymousId"),
            (4, "track event has no event name"),
            (5, "properties must be an object (got a string)"),
            (6, "userId must be a string (got an object)"),
            (7, "alias event has no previousId"),
            (8, "group event has no groupId"),
            (9, "event must be a json object (got a number)"),
            (10, "messageId must be a string (got an array)"),
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:?}");
        for ((i, got), (j, want)) in errors.iter().zip(expected) {
            assert_eq!(*i, j);
            assert!(got.starts_with(want), "{got} vs {want}");
        }
        assert_eq!(p.rejected[0].message_id.as_deref(), Some("no-type"));
    }

    #[test]
    fn oversized_and_deep_events_are_rejected_alone() {
        let big = "x".repeat(33 * 1024);
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let body = format!(
            r#"{{"batch":[{{"messageId":"big","type":"page","anonymousId":"a","properties":{{"p":"{big}"}}}},
            {{"messageId":"deep","type":"page","anonymousId":"a","properties":{{"d":{deep}}}}},
            {{"messageId":"fine","type":"page","anonymousId":"a"}}]}}"#
        );
        let p = read(&body);
        assert_eq!(ids(&p), ["fine"]);
        assert_eq!(p.rejected[0].message_id.as_deref(), Some("big"));
        assert!(
            p.rejected[0].error.starts_with("event exceeds 32 KiB"),
            "{:?}",
            p.rejected[0]
        );
        assert!(
            p.rejected[1].error.contains("deeper than 32"),
            "{:?}",
            p.rejected[1]
        );
    }

    #[test]
    fn a_message_id_longer_than_any_string_may_be_is_rejected_unechoed() {
        let long = "m".repeat(16 * 1024 + 1);
        let body = format!(
            r#"{{"batch":[{{"messageId":"{long}","type":"page","anonymousId":"a"}},
            {{"messageId":"ok","type":"page","anonymousId":"a"}}]}}"#
        );
        let p = read(&body);
        assert_eq!(ids(&p), ["ok"]);
        assert_eq!(p.rejected[0].message_id, None);
        assert_eq!(
            p.rejected[0].error,
            "messageId exceeds 16384 bytes (got 16385)"
        );
    }

    #[test]
    fn huge_numbers_cost_only_their_event() {
        let p = read(
            r#"{"batch":[{"messageId":"n","type":"page","anonymousId":"a","properties":{"v":1e999}},
            {"messageId":"ok","type":"page","anonymousId":"a","properties":{"v":123456789012345678901234567890}}]}"#,
        );
        assert_eq!(ids(&p), ["ok"]);
        assert!(
            p.rejected[0].error.contains("not valid json"),
            "{:?}",
            p.rejected
        );
    }

    #[test]
    fn whole_body_faults_are_named() {
        let cases: [(&[u8], &str); 6] = [
            (b"", "body is empty"),
            (b"[1,2]", "body must be a json object (got an array)"),
            (b"\"hi\"", "body must be a json object (got a scalar)"),
            (
                b"{\"batch\":{}}",
                "batch must be an array of events (got an object)",
            ),
            (b"{\"batch\":[}", "body is not valid json"),
            (b"\xff\xfe{}", "body is not valid utf-8"),
        ];
        for (body, want) in cases {
            let got = parse(body, None, NOW, &Limits::default())
                .unwrap_err()
                .to_string();
            assert!(got.starts_with(want), "{got} vs {want}");
        }
        let limits = Limits {
            max_body: 10,
            ..Limits::default()
        };
        assert_eq!(
            parse(b"{\"batch\":[]}", None, NOW, &limits),
            Err(BodyError::TooLarge { limit: 10 })
        );
    }

    #[test]
    fn single_event_routes_imply_the_type() {
        let body = br#"{"anonymousId":"a","event":"Signed Up","messageId":"m","writeKey":"k"}"#;
        let p = parse(body, Some(EventKind::Track), NOW, &Limits::default()).unwrap();
        assert_eq!(p.events[0].1.kind, EventKind::Track);
        assert_eq!(p.write_key.as_deref(), Some("k"));
        let body = br#"{"type":"page","anonymousId":"a","messageId":"m"}"#;
        let p = parse(body, Some(EventKind::Track), NOW, &Limits::default()).unwrap();
        assert!(p.rejected[0].error.contains("sent to the /v1/track route"));
    }

    #[test]
    fn missing_message_ids_are_derived_stably() {
        let body = r#"{"batch":[{"type":"page","anonymousId":"a"},{"type":"page","anonymousId":"a"},{"type":"page","anonymousId":"b"}]}"#;
        let p = read(body);
        let got = ids(&p);
        assert_eq!(got[0], got[1]);
        assert_ne!(got[0], got[2]);
        assert!(got[0].starts_with("weft-"));
        assert_eq!(p.warnings.len(), 3);
    }

    #[test]
    fn batch_context_fills_events() {
        let p = read(
            r#"{"context":{"library":{"name":"x"},"ip":"1.2.3.4"},"batch":[
            {"messageId":"m","type":"page","anonymousId":"a","context":{"ip":"5.6.7.8"}}]}"#,
        );
        let e = &p.events[0].1;
        assert_eq!(e.context_str(&["ip"]), Some("5.6.7.8"));
        assert_eq!(e.context_str(&["library", "name"]), Some("x"));
    }

    #[test]
    fn times_before_1970_are_stored_as_received_at() {
        // Found by the fuzzer: a delay of 8,000 years came back from the round trip to
        // the Durable Object as a time after receivedAt.
        let p = read(
            r#"{"sentAt":"9999-12-31T23:59:59Z","batch":[
            {"messageId":"a","type":"page","anonymousId":"t","timestamp":"0000-01-01T00:00:00Z"},
            {"messageId":"b","type":"page","anonymousId":"t","timestamp":"9999-12-31T23:59:58Z"}]}"#,
        );
        let at: Vec<Millis> = p.events.iter().map(|(_, e)| e.timestamp).collect();
        assert_eq!(at, [NOW, NOW - 1_000]);
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(p.warnings[0].message_id, "a");
        assert!(p.warnings[0].warning.contains("before 1970"));
        let p = read(
            r#"{"batch":[{"messageId":"c","type":"page","anonymousId":"t","timestamp":"1969-12-31T23:59:59Z"}]}"#,
        );
        assert_eq!(p.events[0].1.timestamp, NOW);
    }

    #[test]
    fn the_write_key_of_a_refused_body_is_still_found() {
        let cases: [(&[u8], Option<&str>); 5] = [
            (br#"{"writeKey":"k","batch":{}}"#, Some("k")),
            (br#"{"batch":7,"writeKey":"k"}"#, Some("k")),
            (br#"{"writeKey":7,"batch":{}}"#, None),
            (b"not json", None),
            (b"[\"k\"]", None),
        ];
        for (body, want) in cases {
            assert!(parse(body, None, NOW, &Limits::default()).is_err());
            assert_eq!(write_key_of(body).as_deref(), want, "{:?}", body);
        }
    }

    #[test]
    fn overlong_ids_and_placeholder_group_ids_are_rejected() {
        let long = "a".repeat(MAX_ID_BYTES + 1);
        let body = format!(
            r#"{{"batch":[{{"messageId":"l","type":"page","anonymousId":"{long}"}},
            {{"messageId":"g","type":"group","userId":"u","groupId":"null"}},
            {{"messageId":"g2","type":"group","userId":"u","groupId":" undefined "}},
            {{"messageId":"ok","type":"group","userId":"u","groupId":"acme"}}]}}"#
        );
        let p = read(&body);
        assert_eq!(ids(&p), ["ok"]);
        assert!(
            p.rejected[0]
                .error
                .starts_with("anonymousId is 401 bytes long"),
            "{:?}",
            p.rejected
        );
        assert!(
            p.rejected[1].error.contains("placeholder"),
            "{:?}",
            p.rejected
        );
        assert!(
            p.rejected[2].error.contains("placeholder"),
            "{:?}",
            p.rejected
        );
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        let p = read(
            r#"{"batch":[{"messageId":"m","type":"page","anonymousId":"a","anonymousId":"b"}]}"#,
        );
        assert_eq!(p.events[0].1.anonymous_id.as_deref(), Some("b"));
    }
}
