//! The decision doc: the answer `GET /v1/decide` gives, stored as-is in KV.
//!
//! ```json
//! {"segments":["paid-pricing-interest"],"version":3,"validUntil":"2024-05-08T00:00:00.000Z"}
//! ```
//!
//! The Durable Object writes one doc per id a profile can be asked by, and only when the
//! answer changes ([`Decision::follow`]); the decide route reads it and answers with the
//! same JSON. `validUntil` is the moment a windowed rule could change the answer with no new
//! event; it is absent when nothing lapses.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::segment::Evaluation;
use crate::time::{format_rfc3339, parse_rfc3339, Millis};

/// The segments a profile is in, as served.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// The segment names, sorted.
    pub segments: Vec<String>,
    /// Counts up by one with every doc written for the profile.
    pub version: u64,
    /// When a windowed rule could change the answer with no new event; `None` (absent in
    /// JSON, `null` accepted) when nothing lapses.
    #[serde(default, with = "instant_opt")]
    pub valid_until: Option<Millis>,
}

/// Why bytes could not be read as a decision doc.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecisionError {
    /// The bytes are not a decision doc.
    #[error("decision doc is not valid: {0}")]
    Json(#[from] serde_json::Error),
}

impl Decision {
    /// The doc for an evaluation, at a given version.
    pub fn new(evaluation: &Evaluation, version: u64) -> Decision {
        Decision {
            segments: evaluation.segments.clone(),
            version,
            valid_until: evaluation.valid_until,
        }
    }

    /// The doc to write after `evaluation`, or `None` when the stored `previous` doc still
    /// answers right at `now`.
    ///
    /// A new doc (one version up) is needed when the segments differ, when the new
    /// `validUntil` is earlier than the stored one (a cache would otherwise trust it too
    /// long), or when the stored one has passed. A later `validUntil` alone writes nothing:
    /// the stored, earlier one only makes readers look again sooner.
    pub fn follow(
        previous: Option<&Decision>,
        evaluation: &Evaluation,
        now: Millis,
    ) -> Option<Decision> {
        let Some(prev) = previous else {
            return Some(Decision::new(evaluation, 1));
        };
        let earlier = match (prev.valid_until, evaluation.valid_until) {
            (None, Some(_)) => true,
            (Some(old), Some(new)) => new < old,
            _ => false,
        };
        let passed = prev.valid_until.is_some_and(|t| t <= now);
        if prev.segments != evaluation.segments || earlier || passed {
            return Some(Decision::new(evaluation, prev.version + 1));
        }
        None
    }

    /// Reads a doc from JSON bytes (a KV value).
    ///
    /// # Errors
    /// [`DecisionError::Json`] when the bytes are not a decision doc.
    pub fn from_slice(bytes: &[u8]) -> Result<Decision, DecisionError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The doc as the JSON text the decide route answers with.
    pub fn to_json(&self) -> String {
        let mut out =
            String::with_capacity(48 + self.segments.iter().map(|s| s.len() + 3).sum::<usize>());
        out.push_str("{\"segments\":[");
        for (i, name) in self.segments.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(&mut out, name);
        }
        out.push_str("],\"version\":");
        out.push_str(&self.version.to_string());
        match self.valid_until {
            Some(at) => {
                out.push_str(",\"validUntil\":\"");
                out.push_str(&format_rfc3339(at));
                out.push('"');
            }
            // Always present, so readers of the doc see one shape.
            None => out.push_str(",\"validUntil\":null"),
        }
        out.push('}');
        out
    }
}

fn push_json_string(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::Value::from(s).to_string());
    }
}

mod instant_opt {
    use super::*;

    pub fn serialize<S: Serializer>(at: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&format_rfc3339(*at)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
        let Some(text) = Option::<std::borrow::Cow<'de, str>>::deserialize(d)? else {
            return Ok(None);
        };
        parse_rfc3339(&text).map(|p| Some(p.at)).map_err(|e| {
            serde::de::Error::custom(format!("validUntil: {} (got {text:?})", e.as_str()))
        })
    }
}
