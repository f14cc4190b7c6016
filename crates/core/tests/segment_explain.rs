//! Explanations: per segment, each condition with the profile's value and whether it held.

mod segment_support;

use segment_support::*;
use serde_json::json;
use weft_core::segment::Segments;
use weft_core::time::HOUR;

#[test]
fn explain_gives_each_condition_its_value_and_verdict() {
    let segments = Segments::compile(&segment_files()).unwrap();
    let spec = segments.spec().clone();
    let t = at("2024-05-01T10:00:00Z");
    let mut p = visitor(t);
    apply(&mut p, &spec, &landing("/", "cpc", "google", "spring", t));
    apply(&mut p, &spec, &page("/pricing", t + HOUR));
    apply(&mut p, &spec, &page("/pricing", t + 2 * HOUR));
    let now = t + 3 * HOUR;

    let all = segments.explain(&p, now);
    let demo = &all["paid-pricing-interest"];
    assert_eq!(
        *demo,
        json!({
            "member": true,
            "bot": false,
            "excludedAsBot": false,
            "validUntil": "2024-05-31T00:00:00.000Z",
            "rule": {"all": [
                {"condition": {"firstTouch": "medium", "eq": "cpc"}, "value": "cpc", "held": true},
                {"condition": {"count": {"page": "/pricing", "within": "30d", "gte": 2}},
                 "value": 2, "held": true, "flipsAt": "2024-05-31T00:00:00.000Z"}
            ], "held": true}
        })
    );
    let members: Vec<&String> = all
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v["member"] == json!(true))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        members,
        segments
            .evaluate(&p, now)
            .segments
            .iter()
            .collect::<Vec<_>>()
    );

    let lapsed = &all["lapsed-customers"]["rule"]["all"];
    assert_eq!(
        lapsed[0],
        json!({"condition": {"identified": true}, "value": false, "held": false})
    );
    assert_eq!(
        lapsed[2]["value"],
        json!("2024-05-01T12:00:00.000Z"),
        "last seen is the value"
    );

    let eu = &all["eu-mobile-docs-readers"]["rule"]["all"];
    assert_eq!(eu[0]["value"], json!(null), "no device known");
    assert_eq!(eu[3]["not"]["value"], json!(null), "no plan trait");
    assert_eq!(eu[3]["held"], json!(true));
}
