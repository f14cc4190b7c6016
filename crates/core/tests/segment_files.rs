//! The committed definitions, the bench mix, the documentation's examples and the JSON
//! Schema agree with the engine.

mod segment_support;

use segment_support::*;
use serde_json::{json, Value};
use weft_core::segment::{ops, Definition, Segments};
use weft_core::time::{DAY, HOUR};

fn doc_examples() -> Vec<(String, Value)> {
    let text =
        std::fs::read_to_string(repo_root().join("docs/segments.md")).expect("docs/segments.md");
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("```json ") {
        let after = &rest[start + 8..];
        let (kind, body) = after.split_once('\n').expect("fence line ends");
        let end = body.find("```").expect("fence closes");
        let value: Value =
            serde_json::from_str(&body[..end]).unwrap_or_else(|e| panic!("{kind} example: {e}"));
        let doc = if kind == "rule" {
            json!({ "rule": value })
        } else {
            value
        };
        out.push((format!("example-{}", out.len()), doc));
        rest = &body[end..];
    }
    out
}

#[test]
fn every_segment_file_compiles() {
    let defs = segment_files();
    let names: Vec<&str> = defs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "cart-abandoners",
            "eu-mobile-docs-readers",
            "lapsed-customers",
            "paid-pricing-interest"
        ]
    );
    let segments = Segments::compile(&defs).unwrap();
    assert_eq!(segments.len(), 4);
    assert!(segments
        .get("paid-pricing-interest")
        .unwrap()
        .description
        .is_some());
}

#[test]
fn the_demo_segment_needs_a_cpc_first_touch_and_two_pricing_views() {
    let segments = Segments::compile(&segment_files()).unwrap();
    let spec = segments.spec().clone();
    let t = at("2024-05-01T10:00:00Z");
    let in_demo = |p: &weft_core::profile::Profile| {
        segments
            .evaluate(p, t + DAY)
            .segments
            .contains(&"paid-pricing-interest".to_owned())
    };

    let mut ad = visitor(t);
    apply(&mut ad, &spec, &landing("/", "cpc", "google", "spring", t));
    apply(&mut ad, &spec, &page("/pricing", t + HOUR));
    assert!(!in_demo(&ad), "one view is not enough");
    apply(&mut ad, &spec, &page("/pricing", t + 2 * HOUR));
    assert!(in_demo(&ad));

    let mut organic = visitor(t);
    apply(
        &mut organic,
        &spec,
        &landing("/", "organic", "google", "spring", t),
    );
    apply(&mut organic, &spec, &page("/pricing", t + HOUR));
    apply(&mut organic, &spec, &page("/pricing", t + 2 * HOUR));
    assert!(!in_demo(&organic), "first touch was not cpc");

    let mut later_ad = visitor(t);
    apply(&mut later_ad, &spec, &page("/pricing", t));
    apply(
        &mut later_ad,
        &spec,
        &landing("/pricing", "cpc", "google", "spring", t + HOUR),
    );
    assert!(
        !in_demo(&later_ad),
        "the ad was the last touch, not the first"
    );
}

#[test]
fn the_bench_mix_has_fifty_rules_over_ten_windowed_counters() {
    let text =
        std::fs::read_to_string(repo_root().join("crates/core/benches/data/rules50.json")).unwrap();
    let map: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    let defs: Vec<(String, Value)> = map.into_iter().collect();
    let segments = Segments::compile(&defs).unwrap();
    assert_eq!(segments.len(), 50);
    assert_eq!(segments.spec().counters().len(), 10);
    for kind in ["\"trait\"", "\"count\"", "\"within\"", "Touch\""] {
        assert!(text.contains(kind), "the mix uses {kind}");
    }
}

#[test]
fn every_example_in_the_docs_parses() {
    let examples = doc_examples();
    assert!(examples.len() >= 10, "found {} examples", examples.len());
    for (name, doc) in &examples {
        Definition::parse(name, doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
    }
}

#[test]
fn the_schema_names_every_condition_operator_and_field() {
    let text = std::fs::read_to_string(repo_root().join("docs/segment.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(schema["required"], json!(["rule"]));
    let keys = [
        "all",
        "any",
        "not",
        "trait",
        "firstTouch",
        "lastTouch",
        "count",
        "firstSeen",
        "lastSeen",
        "identified",
        "country",
        "device",
        "within",
        "before",
        "after",
        "where",
        "includeBots",
    ];
    let fields = [
        "channel", "source", "medium", "campaign", "clickId", "referrer", "landing",
    ];
    for word in keys.iter().chain(ops::NAMES.iter()).chain(fields.iter()) {
        assert!(
            text.contains(&format!("\"{word}\"")),
            "schema mentions {word}"
        );
    }
}

#[test]
fn evaluating_into_a_used_buffer_gives_the_same_answer() {
    let segments = Segments::compile(&segment_files()).unwrap();
    let spec = segments.spec().clone();
    let t = at("2024-05-01T10:00:00Z");
    let mut busy = visitor(t);
    busy.country = Some("DE".into());
    busy.device = Some("mobile".into());
    apply(
        &mut busy,
        &spec,
        &landing("/", "cpc", "google", "spring", t),
    );
    for i in 0..5 {
        apply(&mut busy, &spec, &page("/pricing", t + i));
        apply(&mut busy, &spec, &page("/docs/a", t + i));
    }
    apply(&mut busy, &spec, &track("Product Added", json!({}), t));
    let quiet = visitor(t);

    let mut out = weft_core::segment::Evaluation {
        segments: vec!["left-over".into(); 6],
        valid_until: Some(1),
        bot: true,
    };
    for p in [&busy, &quiet, &busy, &busy] {
        segments.evaluate_into(p, t + HOUR, &mut out);
        assert_eq!(out, segments.evaluate(p, t + HOUR));
    }
    assert_eq!(out.segments.len(), 3, "{out:?}");
}
