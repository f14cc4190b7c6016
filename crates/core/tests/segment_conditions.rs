//! Every operator and every condition of the rule language, evaluated against profiles.

mod segment_support;

use segment_support::*;
use serde_json::{json, Value};
use weft_core::profile::Profile;
use weft_core::time::{DAY, HOUR};
use weft_core::touch::Touchpoint;

fn holds(rule: Value, p: &Profile, now: i64) -> bool {
    one(rule.clone()).evaluate(p, now).segments == ["s"]
}

#[test]
fn every_trait_operator_holds_and_fails() {
    let now = at("2024-05-01T12:00:00Z");
    let mut p = visitor(now);
    for (name, value) in [
        ("plan", json!("pro")),
        ("seats", json!(12)),
        ("email", json!("jo@acme.com")),
        ("tags", json!(["beta", "vip"])),
        ("renews", json!("2024-09-01")),
        ("nothing", Value::Null),
    ] {
        set_trait(&mut p, name, value, now);
    }
    let cases = [
        (json!({"trait": "plan", "eq": "pro"}), true),
        (json!({"trait": "plan", "eq": "Pro"}), false),
        (json!({"trait": "seats", "eq": 12.0}), true),
        (json!({"trait": "plan", "ne": "free"}), true),
        (json!({"trait": "plan", "ne": "pro"}), false),
        (json!({"trait": "missing", "ne": "pro"}), true),
        (json!({"trait": "plan", "in": ["pro", "enterprise"]}), true),
        (json!({"trait": "plan", "in": ["free"]}), false),
        (json!({"trait": "email", "contains": "@acme."}), true),
        (json!({"trait": "email", "contains": "@other."}), false),
        (json!({"trait": "tags", "contains": "vip"}), true),
        (json!({"trait": "tags", "contains": "alpha"}), false),
        (json!({"trait": "email", "starts_with": "jo@"}), true),
        (json!({"trait": "email", "starts_with": "al@"}), false),
        (json!({"trait": "seats", "gt": 11}), true),
        (json!({"trait": "seats", "gt": 12}), false),
        (json!({"trait": "seats", "gte": 12}), true),
        (json!({"trait": "seats", "gte": 13}), false),
        (json!({"trait": "seats", "lt": 13}), true),
        (json!({"trait": "seats", "lt": 12}), false),
        (json!({"trait": "seats", "lte": 12}), true),
        (json!({"trait": "seats", "lte": 11}), false),
        (json!({"trait": "renews", "gt": "2024-06-01"}), true),
        (json!({"trait": "renews", "lt": "2024-06-01"}), false),
        (json!({"trait": "plan", "gt": 3}), false),
        (json!({"trait": "plan", "exists": true}), true),
        (json!({"trait": "missing", "exists": true}), false),
        (json!({"trait": "missing", "exists": false}), true),
        (json!({"trait": "nothing", "exists": false}), true),
        (json!({"trait": "missing", "eq": "pro"}), false),
        (json!({"trait": "missing", "lt": 5}), false),
    ];
    for (rule, want) in cases {
        assert_eq!(holds(rule.clone(), &p, now), want, "{rule}");
    }
}

#[test]
fn every_touchpoint_field_of_first_and_last_touch() {
    let now = at("2024-05-01T12:00:00Z");
    let mut p = visitor(now);
    p.first_touch = Some(Touchpoint {
        at: now - DAY,
        channel: "paid_search".into(),
        source: Some("google".into()),
        medium: Some("cpc".into()),
        campaign: Some("spring-sale".into()),
        click_id: Some("gclid".into()),
        referrer: Some("www.google.com".into()),
        landing: Some("/pricing".into()),
    });
    p.last_touch = Some(Touchpoint {
        at: now,
        channel: "email".into(),
        source: Some("newsletter".into()),
        medium: Some("email".into()),
        ..Touchpoint::default()
    });
    let cases = [
        (json!({"firstTouch": "channel", "eq": "paid_search"}), true),
        (json!({"firstTouch": "source", "eq": "google"}), true),
        (json!({"firstTouch": "medium", "eq": "cpc"}), true),
        (
            json!({"firstTouch": "campaign", "starts_with": "spring"}),
            true,
        ),
        (json!({"firstTouch": "clickId", "exists": true}), true),
        (
            json!({"firstTouch": "referrer", "contains": "google"}),
            true,
        ),
        (json!({"firstTouch": "landing", "eq": "/pricing"}), true),
        (json!({"lastTouch": "channel", "eq": "email"}), true),
        (json!({"lastTouch": "medium", "eq": "cpc"}), false),
        (
            json!({"lastTouch": "source", "in": ["newsletter", "digest"]}),
            true,
        ),
        (json!({"lastTouch": "clickId", "exists": true}), false),
        (json!({"lastTouch": "clickId", "exists": false}), true),
        (json!({"lastTouch": "campaign", "ne": "spring-sale"}), true),
    ];
    for (rule, want) in cases {
        assert_eq!(holds(rule.clone(), &p, now), want, "{rule}");
    }
    let untouched = visitor(now);
    assert!(!holds(
        json!({"firstTouch": "medium", "eq": "cpc"}),
        &untouched,
        now
    ));
    assert!(holds(
        json!({"firstTouch": "medium", "exists": false}),
        &untouched,
        now
    ));
}

#[test]
fn counts_of_events_and_page_views_with_every_comparison() {
    let start = at("2024-05-01T09:00:00Z");
    let rules = [
        (
            "ev-gte",
            json!({"count": {"event": "Product Added", "within": "7d", "gte": 2}}),
        ),
        (
            "ev-gt",
            json!({"count": {"event": "Product Added", "within": "7d", "gt": 2}}),
        ),
        (
            "ev-lte",
            json!({"count": {"event": "Product Added", "within": "7d", "lte": 2}}),
        ),
        (
            "ev-lt",
            json!({"count": {"event": "Product Added", "within": "7d", "lt": 2}}),
        ),
        (
            "ev-eq",
            json!({"count": {"event": "Product Added", "within": "7d", "eq": 2}}),
        ),
        (
            "big-orders",
            json!({
                "count": {
                    "event": "Order Completed",
                    "where": {"total": {"gte": 100}, "currency": "EUR"},
                    "gte": 1
                }
            }),
        ),
        (
            "pricing",
            json!({"count": {"page": "/pricing", "within": "30d", "gte": 3}}),
        ),
        (
            "reviews",
            json!({"count": {"page": "/product/*/reviews", "within": "24h", "eq": 2}}),
        ),
        (
            "docs",
            json!({"count": {"page": "/docs/**", "within": "90m", "gte": 1}}),
        ),
        (
            "utm-pricing",
            json!({
                "count": {
                    "page": "/pricing",
                    "where": {"title": {"starts_with": "Pricing"}},
                    "gte": 1
                }
            }),
        ),
    ];
    let defs: Vec<(&str, Value)> = rules
        .iter()
        .map(|(n, r)| (*n, json!({ "rule": r })))
        .collect();
    let segments = compile(&defs);
    let spec = segments.spec().clone();
    let mut p = visitor(start);
    let mut titled = page("/pricing", start + 5);
    titled
        .properties
        .insert("title".into(), json!("Pricing - Acme"));
    let events = [
        track("Product Added", json!({}), start),
        track("Product Added", json!({}), start + HOUR),
        track("product added", json!({}), start + HOUR),
        track(
            "Order Completed",
            json!({"total": 99, "currency": "EUR"}),
            start,
        ),
        track(
            "Order Completed",
            json!({"total": 120, "currency": "USD"}),
            start,
        ),
        track(
            "Order Completed",
            json!({"total": 150, "currency": "EUR"}),
            start,
        ),
        page("/pricing", start),
        page("/pricing/teams", start + HOUR),
        page("/pricing-old", start + HOUR),
        titled,
        page("/product/42/reviews", start + 2 * HOUR),
        page("/product/7/reviews", start + 3 * HOUR),
        page("/product/7/reviews/2", start + 3 * HOUR),
        page("/docs/api/events", start + 3 * HOUR),
    ];
    for e in &events {
        apply(&mut p, &spec, e);
    }
    let now = start + 4 * HOUR;
    let got = segments.evaluate(&p, now).segments;
    assert_eq!(
        got,
        [
            "big-orders",
            "docs",
            "ev-eq",
            "ev-gte",
            "ev-lte",
            "pricing",
            "reviews",
            "utm-pricing"
        ]
    );

    apply(&mut p, &spec, &track("Product Added", json!({}), now));
    let got = segments.evaluate(&p, now).segments;
    assert!(
        got.contains(&"ev-gt".to_owned()) && !got.contains(&"ev-eq".to_owned()),
        "{got:?}"
    );
    assert!(!got.contains(&"ev-lt".to_owned()));
}

#[test]
fn recency_of_first_and_last_seen() {
    let first = at("2024-01-10T00:00:00Z");
    let last = at("2024-04-25T00:00:00Z");
    let now = at("2024-05-01T00:00:00Z");
    let mut p = visitor(first);
    p.last_seen = last;
    let cases = [
        (json!({"lastSeen": {"within": "7d"}}), true),
        (json!({"lastSeen": {"within": "5d"}}), false),
        (json!({"lastSeen": {"before": "5d"}}), true),
        (json!({"lastSeen": {"before": "7d"}}), false),
        (json!({"firstSeen": {"before": "30d"}}), true),
        (json!({"firstSeen": {"within": "30d"}}), false),
        (
            json!({"firstSeen": {"before": "2024-02-01T00:00:00Z"}}),
            true,
        ),
        (
            json!({"firstSeen": {"before": "2024-01-01T00:00:00Z"}}),
            false,
        ),
        (json!({"lastSeen": {"after": "2024-04-01T00:00:00Z"}}), true),
        (
            json!({"firstSeen": {"after": "2024-04-01T00:00:00Z"}}),
            false,
        ),
        (json!({"lastSeen": {"within": "200h"}}), true),
        (json!({"lastSeen": {"within": "2w"}}), true),
    ];
    for (rule, want) in cases {
        assert_eq!(holds(rule.clone(), &p, now), want, "{rule}");
    }
}

#[test]
fn identified_country_and_device() {
    let now = at("2024-05-01T00:00:00Z");
    let mut p = visitor(now);
    p.country = Some("de".into());
    p.device = Some("mobile".into());
    assert!(holds(json!({"identified": false}), &p, now));
    assert!(!holds(json!({"identified": true}), &p, now));
    identify(&mut p, "u-1", now);
    let cases = [
        (json!({"identified": true}), true),
        (json!({"identified": false}), false),
        (json!({"country": "DE"}), true),
        (json!({"country": ["AT", "DE"]}), true),
        (json!({"country": "FR"}), false),
        (json!({"device": "mobile"}), true),
        (json!({"device": ["desktop", "tablet"]}), false),
    ];
    for (rule, want) in cases {
        assert_eq!(holds(rule.clone(), &p, now), want, "{rule}");
    }
    let unknown = visitor(now);
    assert!(!holds(json!({"country": "DE"}), &unknown, now));
    assert!(!holds(json!({"device": "desktop"}), &unknown, now));
}

#[test]
fn all_any_and_not_combine() {
    let now = at("2024-05-01T00:00:00Z");
    let p = visitor(now);
    let yes = json!({"identified": false});
    let no = json!({"identified": true});
    let cases = [
        (json!({"all": [yes, yes]}), true),
        (json!({"all": [yes, no]}), false),
        (json!({"all": []}), true),
        (json!({"any": [no, yes]}), true),
        (json!({"any": [no, no]}), false),
        (json!({"any": []}), false),
        (json!({"not": no}), true),
        (json!({"not": {"any": [no, yes]}}), false),
        (
            json!({"all": [{"not": no}, {"any": [no, {"all": [yes]}]}]}),
            true,
        ),
    ];
    for (rule, want) in cases {
        assert_eq!(holds(rule.clone(), &p, now), want, "{rule}");
    }
}

/// A reference evaluator over the rule's JSON, for rules made of boolean traits.
fn reference(rule: &Value, p: &Profile) -> bool {
    if let Some(list) = rule.get("all").and_then(Value::as_array) {
        return list.iter().all(|r| reference(r, p));
    }
    if let Some(list) = rule.get("any").and_then(Value::as_array) {
        return list.iter().any(|r| reference(r, p));
    }
    if let Some(inner) = rule.get("not") {
        return !reference(inner, p);
    }
    let name = rule["trait"]
        .as_str()
        .expect("generated leaves name a trait");
    p.traits.get(name).map(|t| &t.value) == Some(&rule["eq"])
}

fn tree() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = (0..5u8).prop_map(|i| json!({"trait": format!("t{i}"), "eq": true}));
    leaf.prop_recursive(5, 40, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| json!({ "all": v })),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| json!({ "any": v })),
            inner.prop_map(|r| json!({ "not": r })),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn compiled_rules_agree_with_a_reference_evaluator(
        rules in proptest::collection::vec(tree(), 1..6),
        values in proptest::collection::vec(proptest::bool::ANY, 5),
    ) {
        let now = at("2024-05-01T00:00:00Z");
        let mut p = visitor(now);
        for (i, v) in values.iter().enumerate() {
            set_trait(&mut p, &format!("t{i}"), json!(v), now);
        }
        let defs: Vec<(String, Value)> =
            rules.iter().enumerate().map(|(i, r)| (format!("r{i}"), json!({"rule": r}))).collect();
        let segments = weft_core::segment::Segments::compile(&defs).unwrap();
        let got = segments.evaluate(&p, now).segments;
        let explained = segments.explain(&p, now);
        for (name, def) in &defs {
            let want = reference(&def["rule"], &p);
            proptest::prop_assert_eq!(got.contains(name), want, "{}", def);
            proptest::prop_assert_eq!(&explained[name]["member"], &json!(want));
        }
    }
}
