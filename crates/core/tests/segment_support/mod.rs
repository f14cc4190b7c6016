//! Shared helpers for the segment integration tests: events, profiles and a minimal
//! stand-in for the identity graph's per-event profile update.
//!
//! The stand-in does what segment rules read (counters, seen times, touchpoints, traits,
//! geo, user id) and nothing else, so these tests exercise the segment engine alone.

#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::{json, Value};
use weft_core::event::{Event, EventKind};
use weft_core::identity::{IdKind, Identifier};
use weft_core::profile::{Held, Profile, Trait};
use weft_core::segment::{FeatureSpec, Segments};
use weft_core::time::{parse_rfc3339, Millis};
use weft_core::touch;

/// An instant from RFC 3339 text.
pub fn at(text: &str) -> Millis {
    parse_rfc3339(text).expect("test timestamps are valid").at
}

/// A page view of `path` at `when`.
pub fn page(path: &str, when: Millis) -> Event {
    let mut e = Event::new(EventKind::Page, format!("p-{path}-{when}"), when);
    e.context.insert("page".into(), json!({ "path": path }));
    e
}

/// A page view that arrived with a campaign (`utm_medium`, `utm_source`, `utm_campaign`).
pub fn landing(path: &str, medium: &str, source: &str, campaign: &str, when: Millis) -> Event {
    let mut e = page(path, when);
    e.context.insert(
        "campaign".into(),
        json!({"medium": medium, "source": source, "name": campaign}),
    );
    e
}

/// A track event named `name` at `when`, with properties.
pub fn track(name: &str, props: Value, when: Millis) -> Event {
    let mut e = Event::new(EventKind::Track, format!("t-{name}-{when}"), when);
    e.event = Some(name.into());
    if let Value::Object(map) = props {
        e.properties = map;
    }
    e
}

/// A human visitor's empty profile first seen at `when`.
pub fn visitor(when: Millis) -> Profile {
    let mut p = Profile::new(1, when);
    p.bot = false;
    p
}

/// Sets a trait as an identify event at `when` would.
pub fn set_trait(p: &mut Profile, name: &str, value: Value, when: Millis) {
    p.traits.insert(name.into(), Trait { value, at: when });
}

/// Gives the profile a user id.
pub fn identify(p: &mut Profile, user_id: &str, when: Millis) {
    let id = Identifier {
        kind: IdKind::UserId,
        value: user_id.into(),
    };
    p.identifiers.push(Held {
        id,
        first_seen: when,
    });
}

/// Takes one event into the profile the way the identity graph does for the fields
/// segment rules read.
pub fn apply(p: &mut Profile, spec: &FeatureSpec, e: &Event) {
    p.features.observe(spec, e);
    p.first_seen = p.first_seen.min(e.timestamp);
    p.last_seen = p.last_seen.max(e.timestamp);
    p.events += 1;
    if !e.weft.bot {
        p.bot = false;
    }
    if let Some(t) = touch::from_event(e) {
        if p.first_touch.as_ref().is_none_or(|f| t.at < f.at) {
            p.first_touch = Some(t.clone());
        }
        if p.last_touch.as_ref().is_none_or(|l| t.at >= l.at) {
            p.last_touch = Some(t);
        }
    }
    if let Some(c) = &e.weft.country {
        p.country = Some(c.clone());
    }
    if let Some(d) = &e.weft.device {
        p.device = Some(d.clone());
    }
    if e.kind == EventKind::Identify {
        for (k, v) in &e.traits {
            set_trait(p, k, v.clone(), e.timestamp);
        }
    }
    if let Some(user) = &e.user_id {
        if !p.is_identified() {
            identify(p, user, e.timestamp);
        }
    }
}

/// Compiles inline definitions.
pub fn compile(defs: &[(&str, Value)]) -> Segments {
    let owned: Vec<(String, Value)> = defs
        .iter()
        .map(|(n, d)| ((*n).to_owned(), d.clone()))
        .collect();
    Segments::compile(&owned).unwrap_or_else(|e| panic!("{e}"))
}

/// One segment named `s` with this rule.
pub fn one(rule: Value) -> Segments {
    compile(&[("s", json!({ "rule": rule }))])
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The definitions in the repository's `segments/` folder, named after their files.
pub fn segment_files() -> Vec<(String, Value)> {
    let dir = repo_root().join("segments");
    let mut defs = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("segments/ exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 file name")
            .to_owned();
        let text = std::fs::read_to_string(&path).expect("readable file");
        let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        defs.push((name, doc));
    }
    defs.sort_by(|a, b| a.0.cmp(&b.0));
    defs
}
