//! The decision doc: JSON round trip, the exact body the decide route answers with, and when
//! a new doc must be written.

mod segment_support;

use segment_support::*;
use weft_core::segment::{Decision, Evaluation};

#[test]
fn decision_round_trips_through_json() {
    let docs = [
        Decision {
            segments: vec!["a".into(), "paid-pricing-interest".into()],
            version: 7,
            valid_until: Some(at("2024-05-31T00:00:00Z")),
        },
        Decision {
            segments: vec![],
            version: 1,
            valid_until: None,
        },
        Decision {
            segments: vec!["quo\"te".into()],
            version: u64::from(u32::MAX) + 1,
            valid_until: Some(0),
        },
    ];
    for doc in docs {
        let text = doc.to_json();
        assert_eq!(
            text,
            serde_json::to_string(&doc).unwrap(),
            "hand-written body equals serde's"
        );
        assert_eq!(Decision::from_slice(text.as_bytes()).unwrap(), doc);
        assert_eq!(serde_json::from_str::<Decision>(&text).unwrap(), doc);
    }
}

#[test]
fn decision_json_has_the_documented_shape() {
    let doc = Decision {
        segments: vec!["paid-pricing-interest".into()],
        version: 3,
        valid_until: Some(at("2024-05-08T00:00:00Z")),
    };
    assert_eq!(
        doc.to_json(),
        concat!(
            r#"{"segments":["paid-pricing-interest"],"version":3,"#,
            r#""validUntil":"2024-05-08T00:00:00.000Z"}"#
        )
    );
    let none = Decision {
        segments: vec![],
        version: 1,
        valid_until: None,
    };
    assert_eq!(
        none.to_json(),
        r#"{"segments":[],"version":1,"validUntil":null}"#
    );
    let with_null =
        Decision::from_slice(br#"{"segments":[],"version":1,"validUntil":null}"#).unwrap();
    assert_eq!(with_null, none);
}

#[test]
fn bad_decision_docs_are_errors_naming_the_fault() {
    let cases = [
        (
            &br#"{"segments":[],"version":1,"validUntil":"soon"}"#[..],
            "validUntil: not an rfc 3339 timestamp",
        ),
        (&br#"{"segments":"a","version":1}"#[..], "invalid type"),
        (&b"not json"[..], "expected ident"),
    ];
    for (bytes, want) in cases {
        let got = Decision::from_slice(bytes).unwrap_err().to_string();
        assert!(
            got.starts_with("decision doc is not valid: ") && got.contains(want),
            "{got}"
        );
    }
}

#[test]
fn a_new_doc_is_written_only_when_the_answer_changes() {
    let now = at("2024-05-01T00:00:00Z");
    let eval = |segments: &[&str], valid_until: Option<i64>| Evaluation {
        segments: segments.iter().map(|s| (*s).to_owned()).collect(),
        valid_until,
        bot: false,
    };
    let first = Decision::follow(None, &eval(&["a"], Some(now + 100)), now).unwrap();
    assert_eq!(first.version, 1);
    let cases = [
        (eval(&["a"], Some(now + 100)), now, None),
        (eval(&["a"], Some(now + 500)), now, None),
        (eval(&["a"], Some(now + 50)), now, Some(2)),
        (eval(&["a"], None), now, None),
        (eval(&["a", "b"], Some(now + 100)), now, Some(2)),
        (eval(&[], Some(now + 100)), now, Some(2)),
        (eval(&["a"], Some(now + 500)), now + 100, Some(2)),
    ];
    for (evaluation, at_time, want) in cases {
        let got = Decision::follow(Some(&first), &evaluation, at_time);
        assert_eq!(
            got.as_ref().map(|d| d.version),
            want,
            "{evaluation:?} at {at_time}"
        );
        if let Some(doc) = got {
            assert_eq!(doc.segments, evaluation.segments);
            assert_eq!(doc.valid_until, evaluation.valid_until);
        }
    }
    let no_lapse = Decision {
        valid_until: None,
        ..first
    };
    assert_eq!(
        Decision::follow(Some(&no_lapse), &eval(&["a"], Some(now + 9)), now).map(|d| d.version),
        Some(2)
    );
}
