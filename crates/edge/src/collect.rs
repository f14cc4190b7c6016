//! The collector: Segment-spec routes that take events and store them durably.
//!
//! A request is authenticated by its write key, decompressed within the size limit,
//! read by core's payload reader (one verdict per event), enriched (source, bot flag,
//! device, country, IP, the worker's own id cookie) and handed to the identity graph's
//! Durable Object. The answer is 200 only once the Durable Object has stored the events;
//! invalid events are listed in `rejected` and never cost the valid ones.

use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_core::event::{Event, EventKind};
use weft_core::payload::{self, Limits};
use weft_core::time::Millis;
use weft_core::useragent;
use worker::{Env, Headers, Request, Response};

use crate::config::{Config, SourceKind};
use crate::error::ApiError;
use crate::{cookies, graph_client};

/// What the Durable Object answers to an ingest.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    /// Events newly stored.
    pub accepted: usize,
    /// Warnings per messageId from the graph (duplicates, junk ids, refused links).
    #[serde(default)]
    pub warnings: Vec<GraphWarning>,
}

/// A warning the graph raised for one stored event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphWarning {
    /// The event's messageId.
    pub message_id: String,
    /// The event's position in [`Ingest::events`]: a batch may repeat a messageId, and
    /// only the repeat is the duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// What was ignored.
    pub warning: String,
}

/// What the worker sends the Durable Object to store.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ingest {
    /// Valid, enriched events.
    pub events: Vec<Event>,
    /// Rejected events and refused requests, by reason, for the metrics.
    #[serde(default)]
    pub rejected: Vec<(String, u64)>,
    /// Warnings raised while reading the payload, by reason, for the metrics.
    #[serde(default)]
    pub warned: Vec<(String, u64)>,
}

/// The event type a collector route implies (`Some(None)` for the batch routes), or
/// `None` when the name is no collector route.
pub fn route_kind(route: &str) -> Option<Option<EventKind>> {
    match route {
        "batch" | "b" | "import" => Some(None),
        other => EventKind::parse(other).map(Some),
    }
}

/// Handles one collector request.
pub async fn collect(
    mut req: Request,
    env: &Env,
    route: Option<EventKind>,
    now: Millis,
) -> Result<Response, ApiError> {
    let config = Config::bundled();
    let limits = Limits::default();
    let headers = req.headers().clone();

    let declared = headers
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok());
    let encoding = headers
        .get("content-encoding")
        .ok()
        .flatten()
        .unwrap_or_default();
    let encoding = encoding.trim().to_ascii_lowercase();
    let gzip = match encoding.as_str() {
        "" | "identity" => false,
        "gzip" | "x-gzip" => true,
        other => return Err(ApiError::UnsupportedEncoding(other.to_owned())),
    };
    if !gzip && declared.is_some_and(|n: usize| n > limits.max_body) {
        return Err(ApiError::TooLarge(limits.max_body));
    }
    let raw = req.bytes().await?;
    let body = if gzip {
        inflate(&raw, limits.max_body)?
    } else {
        raw
    };
    if body.len() > limits.max_body {
        return Err(ApiError::TooLarge(limits.max_body));
    }

    let basic_key = basic_user(&headers);
    let parsed = payload::parse(&body, route, now, &limits);
    let body_key = match &parsed {
        Ok(p) => p.write_key.clone(),
        // A body refused as a whole may still name its key: its fault is the answer then.
        Err(_) => payload::write_key_of(&body),
    };
    let key = basic_key
        .or(body_key)
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::MissingWriteKey)?;
    let source = config.source(&key).ok_or(ApiError::UnknownWriteKey)?;
    let mut parsed = parsed.map_err(|e| ApiError::BadBody(e.to_string()))?;

    let request_ua = headers.get("user-agent").ok().flatten().unwrap_or_default();
    let country = req
        .cf()
        .and_then(|cf| cf.country())
        .filter(|c| c.len() == 2 && c != "XX");
    let ip = headers.get("cf-connecting-ip").ok().flatten();
    let cookie_header = headers.get("cookie").ok().flatten().unwrap_or_default();
    let sid = cookies::get(&cookie_header, cookies::SID);
    let browser = source.kind == SourceKind::Browser;

    let mut agents = Agents::new(&config.collector.bot_patterns);
    let mut events = Vec::with_capacity(parsed.events.len());
    let mut index_of = Vec::with_capacity(parsed.events.len());
    for (index, mut event) in parsed.events.drain(..) {
        index_of.push((index, event.message_id.clone()));
        event.weft.source = source.name.clone();
        let event_ua = event.context_str(&["userAgent"]).map(str::to_owned);
        if browser && event_ua.is_none() && !request_ua.is_empty() {
            event
                .context
                .insert("userAgent".into(), Value::String(request_ua.clone()));
        }
        // A server-side library is not the visitor: only a browser's own request speaks
        // for the visitor's user agent, IP and cookies.
        let ua = event_ua
            .as_deref()
            .unwrap_or(if browser { &request_ua } else { "" });
        let (bot, device) = agents.judge(ua);
        event.weft.bot = bot || (browser && agents.judge(&request_ua).0);
        if !ua.is_empty() {
            event.weft.device = Some(device.to_owned());
        }
        if browser {
            event.weft.country.clone_from(&country);
            if let Some(ip) = &ip {
                event
                    .context
                    .entry("ip")
                    .or_insert_with(|| Value::String(ip.clone()));
            }
            if let Some(sid) = &sid {
                if event.anonymous_id.as_deref() != Some(sid.as_str()) {
                    event.weft.sid = Some(sid.clone());
                }
            }
        }
        if config.collector.truncate_ip {
            if let Some(Value::String(ip)) = event.context.get_mut("ip") {
                *ip = truncate_ip(ip);
            }
        }
        events.push(event);
    }

    let rejected: Vec<Value> = parsed
        .rejected
        .iter()
        .map(|r| json!({"index": r.index, "messageId": r.message_id, "error": r.error}))
        .collect();
    let mut ingest = Ingest {
        events,
        rejected: count_reasons(parsed.rejected.iter().map(|r| r.error.as_str())),
        warned: count_reasons(parsed.warnings.iter().map(|w| w.warning.as_str())),
    };

    if ingest.events.is_empty() {
        let first = parsed.rejected.first().map(|r| r.error.clone());
        // The request's own refusal is counted in the same call as its events'.
        ingest.rejected.push(("nothing_valid".to_owned(), 1));
        graph_client::ingest(env, &ingest).await?;
        let first = first.unwrap_or_else(|| "the batch is empty".to_owned());
        return Err(ApiError::NothingValid {
            first,
            rejected: Value::Array(rejected),
        });
    }

    let stored = crate::ratelimit::ingest(env, &ingest).await?;
    ingest.events.clear();

    let mut warnings: Vec<Value> = parsed
        .warnings
        .iter()
        .map(|w| json!({"index": w.index, "messageId": w.message_id, "warning": w.warning}))
        .collect();
    for w in stored.warnings {
        let index = batch_index(&index_of, &w);
        warnings.push(json!({"index": index, "messageId": w.message_id, "warning": w.warning}));
    }

    let answer = json!({
        "ok": true,
        "accepted": stored.accepted,
        "rejected": rejected,
        "warnings": warnings,
    });
    let mut response = Response::from_json(&answer)?;
    if browser && sid.is_none() {
        let secure = req.url().map(|u| u.scheme() == "https").unwrap_or(false);
        let cookie = cookies::new_sid_cookie(&config.collector.cookie_domain, secure)
            .map_err(ApiError::Internal)?;
        response.headers_mut().append("set-cookie", &cookie)?;
    }
    Ok(response)
}

/// What a request's user agents are, judged once each: a batch's events nearly always
/// share one.
struct Agents<'p> {
    patterns: &'p [String],
    judged: Vec<(String, bool, &'static str)>,
}

impl<'p> Agents<'p> {
    fn new(patterns: &'p [String]) -> Agents<'p> {
        Agents {
            patterns,
            judged: Vec::new(),
        }
    }

    /// Whether `ua` is a bot's, and its device type.
    fn judge(&mut self, ua: &str) -> (bool, &'static str) {
        if let Some((_, bot, device)) = self.judged.iter().find(|(seen, ..)| seen == ua) {
            return (*bot, device);
        }
        let device = useragent::device_of(ua, self.patterns);
        let bot = device == "bot";
        // A hostile batch may carry a new agent per event: keep the memo small.
        if self.judged.len() < 8 {
            self.judged.push((ua.to_owned(), bot, device));
        }
        (bot, device)
    }
}

/// The batch index a graph warning is about: by its position among the events sent to the
/// graph, else by its messageId.
fn batch_index(index_of: &[(usize, String)], warning: &GraphWarning) -> Option<usize> {
    match warning.position {
        Some(p) => index_of.get(p).map(|(i, _)| *i),
        None => index_of
            .iter()
            .find(|(_, id)| *id == warning.message_id)
            .map(|(i, _)| *i),
    }
}

/// Counts messages by reason: the message's leading words, up to the first value.
pub fn count_reasons<'a>(messages: impl Iterator<Item = &'a str>) -> Vec<(String, u64)> {
    let mut counts: Vec<(String, u64)> = Vec::new();
    for message in messages {
        let reason = reason_of(message);
        match counts.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => counts.push((reason, 1)),
        }
    }
    counts
}

/// A metric label for a message: its leading words, up to the first value or hint.
pub fn reason_of(message: &str) -> String {
    let clause = message.split(';').next().unwrap_or(message);
    let words: Vec<&str> = clause
        .split_whitespace()
        .take_while(|w| {
            !w.starts_with(['(', '"', '{', '['])
                && !w.contains(':')
                && !w.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
        .take(6)
        .collect();
    let reason = words.join("_").to_ascii_lowercase();
    if reason.is_empty() {
        "other".to_owned()
    } else {
        reason
    }
}

fn inflate(raw: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit + 1));
    let decoder = flate2::read::GzDecoder::new(raw);
    // Read one byte past the limit: a body that inflates past it is refused while
    // inflating, without inflating the rest.
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::BadBody(format!("body is not valid gzip: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::TooLarge(limit));
    }
    Ok(out)
}

fn basic_user(headers: &Headers) -> Option<String> {
    let value = headers.get("authorization").ok().flatten()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = decode_base64(encoded.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
    Some(user.to_owned())
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Keeps the network part of an IP address: three octets of IPv4, three groups of IPv6.
pub fn truncate_ip(ip: &str) -> String {
    if ip.contains(':') {
        let groups: Vec<&str> = ip.split(':').take(3).collect();
        format!("{}::", groups.join(":"))
    } else {
        let octets: Vec<&str> = ip.split('.').take(3).collect();
        format!("{}.0", octets.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_user_name_is_the_write_key() {
        // "demo-write-key:" in base64, as analytics-node sends it.
        assert_eq!(
            decode_base64("ZGVtby13cml0ZS1rZXk6").unwrap(),
            b"demo-write-key:"
        );
        assert_eq!(
            decode_base64("ZGVtby13cml0ZS1rZXk=").unwrap(),
            b"demo-write-key"
        );
        assert!(decode_base64("not base64!").is_none());
    }

    #[test]
    fn reasons_are_the_leading_words() {
        let cases = [
            ("event exceeds 32 KiB (got 40000 bytes)", "event_exceeds"),
            (
                "unknown event type \"purchase\" (expected ...)",
                "unknown_event_type",
            ),
            (
                "properties must be an object (got a string)",
                "properties_must_be_an_object",
            ),
            (
                "timestamp has no time zone; read as utc",
                "timestamp_has_no_time_zone",
            ),
            ("\"weird\"", "other"),
        ];
        for (message, reason) in cases {
            assert_eq!(reason_of(message), reason, "{message}");
        }
    }

    #[test]
    fn gzip_bodies_are_inflated_within_the_limit() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b' '; 600 * 1024]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 10 * 1024);
        assert!(matches!(
            inflate(&bomb, 500 * 1024),
            Err(ApiError::TooLarge(_))
        ));
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"{\"batch\":[]}").unwrap();
        assert_eq!(
            inflate(&enc.finish().unwrap(), 1024).unwrap(),
            b"{\"batch\":[]}"
        );
        assert!(matches!(inflate(b"plain", 1024), Err(ApiError::BadBody(_))));
    }

    #[test]
    fn a_repeated_message_ids_warning_names_the_repeat() {
        // dedupe-batch-by-messageid: batch [a, b, c, c] with a invalid at index 1 (not sent).
        let index_of: Vec<(usize, String)> = [(0, "a"), (2, "b"), (3, "c"), (4, "c")]
            .iter()
            .map(|(i, id)| (*i, (*id).to_owned()))
            .collect();
        let warning = |id: &str, position| GraphWarning {
            message_id: id.to_owned(),
            position,
            warning: "duplicate messageId; already stored".into(),
        };
        assert_eq!(batch_index(&index_of, &warning("c", Some(3))), Some(4));
        assert_eq!(batch_index(&index_of, &warning("a", Some(0))), Some(0));
        assert_eq!(batch_index(&index_of, &warning("c", None)), Some(3));
        assert_eq!(batch_index(&index_of, &warning("c", Some(9))), None);
    }

    #[test]
    fn ips_truncate_to_their_network() {
        assert_eq!(truncate_ip("203.0.113.77"), "203.0.113.0");
        assert_eq!(
            truncate_ip("2001:db8:85a3:8d3:1319:8a2e:370:7348"),
            "2001:db8:85a3::"
        );
    }
}
