//! Bad segment definitions are refused with the segment's name, the JSON path at fault and
//! what is wrong.

mod segment_support;

use serde_json::json;
use weft_core::segment::{Definition, RuleError, Segments};

#[test]
fn bad_rules_name_the_segment_and_the_json_path() {
    let cases = [
        (
            json!({
                "rule": {
                    "all": [
                        {"identified": true},
                        {"count": {"page": "/pricing", "within": "7 days", "gte": 2}}
                    ]
                }
            }),
            "segment \"x\": rule.all[1].count.within: expected a duration like \"7d\" (got \"7 \
             days\")",
        ),
        (
            json!({
                "rule": {
                    "any": [{"trait": "plan", "eq": "pro"}, {"trait": "plan", "like": "ent%"}]
                }
            }),
            "segment \"x\": rule.any[1].like: unknown key \"like\" (expected an operator, one \
             of eq, ne, in, contains, starts_with, gt, gte, lt, lte, exists)",
        ),
        (
            json!({"rule": {"not": {"firstTouch": "utm_medium", "eq": "cpc"}}}),
            "segment \"x\": rule.not.firstTouch: expected a touchpoint field, one of channel, \
             source, medium, campaign, clickId, referrer, landing (got \"utm_medium\")",
        ),
        (
            json!({
                "rule": {
                    "count": {
                        "event": "Order Completed",
                        "where": {"total": {"gte": "a lot", "x": 1}},
                        "gte": 1
                    }
                }
            }),
            "segment \"x\": rule.count.where.total: expected one operator like {\"eq\": ...} \
             (got {\"gte\":\"a lot\",\"x\":1})",
        ),
        (
            json!({"rule": {"count": {"event": "Order Completed", "within": "2d", "gte": 1.5}}}),
            r#"segment "x": rule.count.gte: expected a whole number of at least 0 (got 1.5)"#,
        ),
        (
            json!({"rule": {"all": [{"lastSeen": {"within": "7"}}]}}),
            r#"segment "x": rule.all[0].lastSeen.within: expected a duration like "7d" (got "7")"#,
        ),
        (
            json!({"rule": {"trait": "plan", "in": "pro"}}),
            r#"segment "x": rule.in: expected a non-empty list (got "pro")"#,
        ),
        (
            json!({"rule": {"device": ["mobile", "smartwatch"]}}),
            "segment \"x\": rule.device[1]: expected a device type, one of desktop, mobile, \
             tablet, bot (got \"smartwatch\")",
        ),
        (
            json!({"rule": {"count": {"event": "a", "within": "100h", "gte": 1}}}),
            "segment \"x\": rule.count.within: window too long (got \"100h\", at most \"72h\"; \
             count in days instead)",
        ),
        (
            json!("identified"),
            r#"segment "x": definition: expected an object (got "identified")"#,
        ),
    ];
    for (doc, want) in cases {
        let defs = vec![
            ("ok".to_owned(), json!({"rule": {"identified": true}})),
            ("x".to_owned(), doc.clone()),
        ];
        let got = Segments::compile(&defs).unwrap_err().to_string();
        assert_eq!(got, want, "{doc}");
        assert_eq!(Definition::parse("x", &doc).unwrap_err().to_string(), want);
    }
}

#[test]
fn duplicate_and_unusable_names_are_refused() {
    let rule = json!({"rule": {"identified": true}});
    let dup = vec![
        ("a".to_owned(), rule.clone()),
        ("a".to_owned(), rule.clone()),
    ];
    assert_eq!(
        Segments::compile(&dup).unwrap_err(),
        RuleError::Duplicate("a".into())
    );
    let bad = vec![("has space".to_owned(), rule)];
    assert_eq!(
        Segments::compile(&bad).unwrap_err().to_string(),
        r#"segment name "has space" is not allowed: use 1 to 64 letters, digits, '-' or '_'"#
    );
}
