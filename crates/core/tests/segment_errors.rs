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

#[test]
fn every_kind_of_mistake_names_its_path() {
    let cases = [
        (json!([]), "definition: expected an object (got [])"),
        (json!({}), "definition: missing key \"rule\""),
        (
            json!({"rule": {}, "owner": "me"}),
            "owner: unknown key \"owner\" (expected one of rule, description, includeBots, \
             name, $schema)",
        ),
        (
            json!({"rule": {}, "name": "y"}),
            "name: does not match the segment's name \"x\" (got \"y\")",
        ),
        (
            json!({"rule": {}, "includeBots": "yes"}),
            "includeBots: expected true or false (got \"yes\")",
        ),
        (
            json!({"rule": {}}),
            "rule: expected a condition, one of all, any, not, trait, firstTouch, \
             lastTouch, count, firstSeen, lastSeen, identified, country, device (got keys \
             none)",
        ),
        (
            json!({
                "rule": {
                    "all": [
                        {"identified": true},
                        {"count": {"page": "/p", "within": "7 days", "gte": 2}}
                    ]
                }
            }),
            "rule.all[1].count.within: expected a duration like \"7d\" (got \"7 days\")",
        ),
        (
            json!({"rule": {"all": {"identified": true}}}),
            "rule.all: expected a list of conditions (got {\"identified\":true})",
        ),
        (
            json!({"rule": {"any": [{"trait": "plan", "equals": "pro"}]}}),
            "rule.any[0].equals: unknown key \"equals\" (expected an operator, one of eq, \
             ne, in, contains, starts_with, gt, gte, lt, lte, exists)",
        ),
        (
            json!({"rule": {"trait": "plan"}}),
            "rule: expected an operator beside \"trait\", one of eq, ne, in, contains, \
             starts_with, gt, gte, lt, lte, exists",
        ),
        (
            json!({"rule": {"trait": "plan", "eq": "a", "ne": "b"}}),
            "rule: expected exactly one operator beside \"trait\" (got several); combine \
             them with \"all\"",
        ),
        (
            json!({"rule": {"trait": "", "eq": "a"}}),
            "rule.trait: expected a non-empty string (got \"\")",
        ),
        (
            json!({"rule": {"trait": "age", "gt": [1]}}),
            "rule.gt: expected a number or a string (got [1])",
        ),
        (
            json!({"rule": {"trait": "x", "eq": 1, "identified": true}}),
            "rule: one condition per object (got both \"identified\" and \"trait\"); \
             combine them with \"all\"",
        ),
        (
            json!({"rule": {"firstTouch": "utm_medium", "eq": "cpc"}}),
            "rule.firstTouch: expected a touchpoint field, one of channel, source, medium, \
             campaign, clickId, referrer, landing (got \"utm_medium\")",
        ),
        (
            json!({"rule": {"count": {"page": "/p", "gte": 2, "lt": 5}}}),
            "rule.count: expected exactly one comparison of gte, gt, lte, lt, eq (got several)",
        ),
        (
            json!({"rule": {"count": {"page": "/p"}}}),
            "rule.count: expected a comparison: one of gte, gt, lte, lt, eq with a count",
        ),
        (
            json!({"rule": {"count": {"page": "/p", "gte": -1}}}),
            "rule.count.gte: expected a whole number of at least 0 (got -1)",
        ),
        (
            json!({"rule": {"count": {"page": "pricing", "gte": 1}}}),
            "rule.count.page: expected a path starting with '/' (got \"pricing\")",
        ),
        (
            json!({"rule": {"count": {"gte": 1}}}),
            "rule.count: expected \"event\" (a track event's name) or \"page\" (a path \
             prefix or glob)",
        ),
        (
            json!({"rule": {"count": {"event": "a", "page": "/", "gte": 1}}}),
            "rule.count: count either \"event\" or \"page\", not both",
        ),
        (
            json!({"rule": {"count": {"event": "a", "within": "0d", "gte": 1}}}),
            "rule.count.within: a duration must be longer than zero (got \"0d\")",
        ),
        (
            json!({"rule": {"count": {"event": "a", "within": "500m", "gte": 1}}}),
            "rule.count.within: window too long (got \"500m\", at most \"120m\"; count in \
             hours instead)",
        ),
        (
            json!({"rule": {"count": {"event": "a", "within": "2y", "gte": 1}}}),
            "rule.count.within: expected a duration like \"7d\" (got \"2y\")",
        ),
        (
            json!({
                "rule": {
                    "count": {"event": "a", "where": {"total": {"gte": 1, "lt": 9}}, "gte": 1}
                }
            }),
            "rule.count.where.total: expected one operator like {\"eq\": ...} (got \
             {\"gte\":1,\"lt\":9})",
        ),
        (
            json!({
                "rule": {"count": {"event": "a", "where": {"total": {"between": 1}}, "gte": 1}}
            }),
            "rule.count.where.total.between: unknown operator \"between\" (expected one of \
             eq, ne, in, contains, starts_with, gt, gte, lt, lte, exists)",
        ),
        (
            json!({
                "rule": {"count": {"event": "a", "within": "7d", "gte": 1, "unique": true}}
            }),
            "rule.count.unique: unknown key \"unique\" (expected one of event, page, \
             within, where, gte, gt, lte, lt, eq)",
        ),
        (
            json!({"rule": {"lastSeen": {"within": "7d", "before": "1d"}}}),
            "rule.lastSeen: expected exactly one of \"within\", \"before\", \"after\"",
        ),
        (
            json!({"rule": {"firstSeen": {"before": "last year"}}}),
            "rule.firstSeen.before: expected a duration like \"30d\" or a timestamp like \
             \"2024-01-01T00:00:00Z\" (got \"last year\")",
        ),
        (
            json!({"rule": {"firstSeen": {"after": "7d"}}}),
            "rule.firstSeen.after: expected a timestamp like \"2024-01-01T00:00:00Z\" (got \
             \"7d\")",
        ),
        (
            json!({"rule": {"identified": "yes"}}),
            "rule.identified: expected true or false (got \"yes\")",
        ),
        (
            json!({"rule": {"country": ["DE", "Germany"]}}),
            "rule.country[1]: expected a two-letter country code like \"DE\" (got \"Germany\")",
        ),
        (
            json!({"rule": {"device": "phone"}}),
            "rule.device: expected a device type, one of desktop, mobile, tablet, bot (got \
             \"phone\")",
        ),
        (
            json!({"rule": {"not": [{"identified": true}]}}),
            "rule.not: expected an object (got [{\"identified\":true}])",
        ),
        (
            json!({"rule": {"not": {"identified": true}, "any": []}}),
            "rule: one condition per object (got both \"any\" and \"not\"); combine them \
             with \"all\"",
        ),
    ];
    for (doc, want) in cases {
        let got = Definition::parse("x", &doc).unwrap_err().to_string();
        assert_eq!(got, format!("segment \"x\": {want}"), "{doc}");
    }
}
