//! The identity field reports (`shared/cases/field-reports.jsonl`, area `identity`) as
//! tests named after them, with siblings of each kind: junk ids never merge anyone, two
//! identified people are never joined, an anonymous id another user owns is not taken over.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

use std::collections::BTreeSet;

use serde_json::{json, Value};
use weft_core::event::Event;
use weft_core::identity::{
    ingest, operator_merge, IdKind, Identifier, IdentityConfig, IngestError, MemStore, Outcome,
    Store,
};
use weft_core::segment::FeatureSpec;
use weft_core::time::{format_rfc3339, Millis};

/// An event from its wire JSON, stored at `at`.
fn event(mut wire: Value, at: Millis) -> Event {
    let obj = wire.as_object_mut().unwrap();
    obj.insert("timestamp".into(), json!(format_rfc3339(at)));
    obj.insert("receivedAt".into(), json!(format_rfc3339(at)));
    obj.entry("weft").or_insert(json!({"source": "web"}));
    serde_json::from_value(wire).unwrap()
}

fn run(store: &mut MemStore, config: &IdentityConfig, events: &[Value]) -> Vec<Outcome> {
    let spec = FeatureSpec::default();
    let mut out = Vec::new();
    for (i, wire) in events.iter().enumerate() {
        let e = event(wire.clone(), 1_700_000_000_000 + i as Millis * 1_000);
        out.push(ingest(store, config, &spec, &e).unwrap());
    }
    out
}

fn id(text: &str) -> Identifier {
    Identifier::parse(text).unwrap()
}

/// The identifiers of the profile holding `text`, as `kind:value` texts.
fn profile_ids(store: &MemStore, text: &str) -> BTreeSet<String> {
    let p = store
        .profile_of(&id(text))
        .unwrap()
        .unwrap_or_else(|| panic!("no profile: {text}"));
    let profile = store.load(p).unwrap().unwrap();
    profile
        .identifiers
        .iter()
        .map(|h| h.id.to_string())
        .collect()
}

fn set(texts: &[&str]) -> BTreeSet<String> {
    texts.iter().map(|t| (*t).to_owned()).collect()
}

fn codes(outcome: &Outcome) -> Vec<&'static str> {
    outcome.warnings.iter().map(|w| w.code()).collect()
}

fn nullish_events() -> Vec<Value> {
    vec![
        json!({"type": "identify", "userId": "user-123", "anonymousId": "anon-a",
               "messageId": "m-1", "traits": {"email": "a@example.com"}}),
        json!({"type": "alias", "userId": "user-456", "previousId": "undefined", "messageId": "m-2"}),
        json!({"type": "alias", "userId": "user-789", "previousId": "[object Object]",
               "messageId": "m-3"}),
        json!({"type": "identify", "userId": "undefined", "anonymousId": "anon-b", "messageId": "m-4"}),
        json!({"type": "identify", "userId": "None", "anonymousId": "anon-c", "messageId": "m-5"}),
        json!({"type": "identify", "userId": "null", "anonymousId": "anon-d", "messageId": "m-6"}),
        json!({"type": "identify", "userId": "   ", "anonymousId": "anon-e", "messageId": "m-7"}),
    ]
}

#[test]
fn nullish_id_no_merge() {
    let mut store = MemStore::new();
    let config = IdentityConfig::default();
    let outcomes = run(&mut store, &config, &nullish_events());

    assert!(outcomes[0].warnings.is_empty());
    for (i, o) in outcomes.iter().enumerate().skip(1) {
        assert!(o.merges.is_empty(), "m-{} merged: {o:?}", i + 1);
        assert_eq!(codes(o), ["junk_id"], "m-{}", i + 1);
        let p = o.profile.unwrap();
        assert_eq!(
            store.events_of(p).unwrap().len(),
            1,
            "m-{} stored once",
            i + 1
        );
    }
    assert_eq!(
        profile_ids(&store, "user_id:user-123"),
        set(&[
            "user_id:user-123",
            "anonymous_id:anon-a",
            "email:a@example.com"
        ])
    );
    for alone in ["user_id:user-456", "user_id:user-789"] {
        assert_eq!(profile_ids(&store, alone), set(&[alone]));
    }
    for anon in ["anon-b", "anon-c", "anon-d", "anon-e"] {
        let text = format!("anonymous_id:{anon}");
        assert_eq!(profile_ids(&store, &text), set(&[&text]));
    }
    assert_eq!(store.profiles().count(), 7);

    // The same input again: all duplicates, and no profile keyed by a placeholder.
    let again = run(&mut store, &config, &nullish_events());
    assert!(again.iter().all(|o| o.duplicate));
    assert_eq!(store.profiles().count(), 7);
    for junk in ["undefined", "None", "null", "[object Object]", "", "   "] {
        for kind in [IdKind::UserId, IdKind::AnonymousId] {
            let probe = Identifier::new(kind, junk);
            assert_eq!(store.profile_of(&probe).unwrap(), None, "{probe}");
        }
    }
}

#[test]
fn nullish_ids_sent_again_under_new_message_ids_still_merge_nobody() {
    let mut store = MemStore::new();
    let config = IdentityConfig::default();
    run(&mut store, &config, &nullish_events());
    let renamed: Vec<Value> = nullish_events()
        .into_iter()
        .map(|mut e| {
            let m = e["messageId"].as_str().unwrap().to_owned();
            e["messageId"] = json!(format!("{m}-again"));
            e
        })
        .collect();
    let outcomes = run(&mut store, &config, &renamed);
    assert!(outcomes.iter().all(|o| !o.duplicate && o.merges.is_empty()));
    assert_eq!(store.profiles().count(), 7);
}

#[test]
fn junk_in_email_trait_is_a_warning_and_the_event_is_kept() {
    let cases = [
        "null",
        "\"undefined\"",
        "",
        "not-an-email",
        "[object Object]",
    ];
    for email in cases {
        let mut store = MemStore::new();
        let o = run(
            &mut store,
            &IdentityConfig::default(),
            &[
                json!({"type": "identify", "userId": "u-1", "messageId": "m-1",
                      "traits": {"email": email}}),
            ],
        );
        assert_eq!(codes(&o[0]), ["junk_id"], "{email:?}");
        assert_eq!(
            profile_ids(&store, "user_id:u-1"),
            set(&["user_id:u-1"]),
            "{email:?}"
        );
    }
}

#[test]
fn nullish_id_no_merge_invisible_and_non_text_values() {
    // A zero-width space, a NUL or `true` sent by a buggy client for every visitor would
    // join them all like "undefined" does: each is junk, and the events stay apart.
    let values = [
        json!("\u{200B}"),
        json!("\u{0}"),
        json!("a\u{0}b"),
        json!(true),
        json!([]),
        json!({}),
    ];
    for value in values {
        let mut store = MemStore::new();
        let events: Vec<Value> = ["a-1", "a-2"]
            .iter()
            .enumerate()
            .map(|(i, anon)| {
                json!({"type": "identify", "anonymousId": anon, "messageId": format!("m-{i}"),
                       "traits": {"email": value.clone()}, "context": {"device": {"id": value.clone()}}})
            })
            .collect();
        let mut config = IdentityConfig::default();
        config
            .fields
            .insert("context.device.id".into(), "device_id".into());
        let out = run(&mut store, &config, &events);
        assert_eq!(codes(&out[1]), ["junk_id", "junk_id"], "{value}");
        assert_eq!(
            profile_ids(&store, "anonymous_id:a-2"),
            set(&["anonymous_id:a-2"]),
            "{value}"
        );
        if let Value::String(text) = &value {
            let mut store = MemStore::new();
            let wire: Vec<Value> = ["a-1", "a-2"]
                .iter()
                .enumerate()
                .map(|(i, anon)| {
                    json!({"type": "identify", "anonymousId": anon, "userId": text,
                           "messageId": format!("u-{i}")})
                })
                .collect();
            let out = run(&mut store, &IdentityConfig::default(), &wire);
            assert_eq!(codes(&out[1]), ["junk_id"], "{value}");
            assert_eq!(
                profile_ids(&store, "anonymous_id:a-2"),
                set(&["anonymous_id:a-2"])
            );
        }
    }
}

#[test]
fn quoted_junk_user_id_never_becomes_an_identifier() {
    for user in ["\"null\"", "'undefined'", "\"None\"", "\"\"", " \"NaN\" "] {
        let mut store = MemStore::new();
        let events = [
            json!({"type": "identify", "userId": user, "anonymousId": "anon-1", "messageId": "m-1"}),
            json!({"type": "identify", "userId": user, "anonymousId": "anon-2", "messageId": "m-2"}),
        ];
        let o = run(&mut store, &IdentityConfig::default(), &events);
        assert!(
            o.iter()
                .all(|o| o.merges.is_empty() && codes(o) == ["junk_id"]),
            "{user:?}"
        );
        assert_eq!(store.profiles().count(), 2, "{user:?}");
    }
}

#[test]
fn workspace_junk_list_keeps_its_values_out_of_the_graph() {
    let config = IdentityConfig {
        junk: vec!["test@example.com".into(), "guest-user".into()],
        ..IdentityConfig::default()
    };
    let mut store = MemStore::new();
    let events = [
        json!({"type": "identify", "userId": "u-1", "messageId": "m-1",
               "traits": {"email": "TEST@example.com"}}),
        json!({"type": "identify", "userId": "u-2", "messageId": "m-2",
               "traits": {"email": "test@example.com"}}),
        json!({"type": "identify", "userId": "guest-user", "anonymousId": "a-3", "messageId": "m-3"}),
    ];
    let o = run(&mut store, &config, &events);
    assert!(o
        .iter()
        .all(|o| o.merges.is_empty() && codes(o) == ["junk_id"]));
    assert_eq!(store.profiles().count(), 3);
}

#[test]
fn event_whose_every_id_is_junk_is_refused_with_the_reasons() {
    let mut store = MemStore::new();
    let spec = FeatureSpec::default();
    let e = event(
        json!({"type": "track", "event": "x", "userId": "undefined",
                          "anonymousId": "null", "messageId": "m-1"}),
        0,
    );
    let err = ingest(&mut store, &IdentityConfig::default(), &spec, &e).unwrap_err();
    let IngestError::NoIdentifier(warnings) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(warnings.len(), 2);
    assert!(err.to_string().contains("userId"), "{err}");
    // Not remembered: the corrected event is accepted under the same message id.
    let fixed = event(
        json!({"type": "track", "event": "x", "anonymousId": "anon-1",
                              "messageId": "m-1"}),
        0,
    );
    assert!(
        !ingest(&mut store, &IdentityConfig::default(), &spec, &fixed)
            .unwrap()
            .duplicate
    );
}

fn two_identified_events() -> Vec<Value> {
    vec![
        json!({"type": "identify", "userId": "user-a", "anonymousId": "anon-1", "messageId": "m-1"}),
        json!({"type": "identify", "userId": "user-b", "anonymousId": "anon-2", "messageId": "m-2"}),
        json!({"type": "identify", "userId": "user-a", "anonymousId": "anon-2", "messageId": "m-3"}),
        json!({"type": "alias", "userId": "user-a", "previousId": "user-b", "messageId": "m-4"}),
    ]
}

#[test]
fn no_merge_two_identified() {
    let mut store = MemStore::new();
    let outcomes = run(
        &mut store,
        &IdentityConfig::default(),
        &two_identified_events(),
    );

    assert_eq!(store.profiles().count(), 2);
    let a = profile_ids(&store, "user_id:user-a");
    assert_eq!(a, set(&["user_id:user-a", "anonymous_id:anon-1"]));
    assert_eq!(
        profile_ids(&store, "user_id:user-b"),
        set(&["user_id:user-b", "anonymous_id:anon-2"])
    );

    let pa = store.profile_of(&id("user_id:user-a")).unwrap();
    assert_eq!(outcomes[2].profile, pa, "m-3 is attributed to user-a");
    assert_eq!(codes(&outcomes[2]), ["link_refused_owned"]);
    assert_eq!(outcomes[3].profile, pa);
    assert_eq!(codes(&outcomes[3]), ["merge_refused_both_identified"]);
    let text = outcomes[3].warnings[0].to_string();
    assert!(text.starts_with("merge refused: both identified"), "{text}");
    assert!(outcomes.iter().all(|o| o.merges.is_empty()));

    // Only an operator may join them.
    let spec = FeatureSpec::default();
    let m = operator_merge(
        &mut store,
        &spec,
        &id("user_id:user-b"),
        &id("user_id:user-a"),
        9,
    )
    .unwrap();
    assert!(m.operator && m.message_id.is_none());
    assert_eq!(store.profiles().count(), 1);
    assert_eq!(profile_ids(&store, "user_id:user-b").len(), 4);
}

#[test]
fn alias_between_two_known_users_is_refused_whichever_way_round() {
    for (user, previous) in [("user-a", "user-b"), ("user-b", "user-a")] {
        let mut store = MemStore::new();
        let mut events = two_identified_events()[..2].to_vec();
        events.push(
            json!({"type": "alias", "userId": user, "previousId": previous,
                           "messageId": "m-9"}),
        );
        let o = run(&mut store, &IdentityConfig::default(), &events);
        assert_eq!(codes(&o[2]), ["merge_refused_both_identified"]);
        assert_eq!(
            o[2].profile,
            store.profile_of(&id(&format!("user_id:{user}"))).unwrap()
        );
        assert_eq!(store.profiles().count(), 2);
    }
}

#[test]
fn anonymous_id_owned_by_another_user_stays_with_that_user() {
    let mut store = MemStore::new();
    let mut events = two_identified_events()[..2].to_vec();
    // A new user signs in on user-b's browser: a profile of their own, anon-2 untouched.
    events.push(
        json!({"type": "identify", "userId": "user-c", "anonymousId": "anon-2",
                       "messageId": "m-5", "traits": {"email": "c@example.com"}}),
    );
    let o = run(&mut store, &IdentityConfig::default(), &events);
    assert_eq!(codes(&o[2]), ["link_refused_owned"]);
    assert_eq!(
        profile_ids(&store, "user_id:user-c"),
        set(&["user_id:user-c", "email:c@example.com"])
    );
    assert_eq!(
        profile_ids(&store, "anonymous_id:anon-2"),
        set(&["user_id:user-b", "anonymous_id:anon-2"])
    );
}

#[test]
fn email_owned_by_another_user_is_not_shared() {
    let mut store = MemStore::new();
    let events = [
        json!({"type": "identify", "userId": "u-1", "messageId": "m-1",
               "traits": {"email": "shared@example.com"}}),
        json!({"type": "identify", "userId": "u-2", "anonymousId": "a-2", "messageId": "m-2",
               "traits": {"email": "shared@example.com"}}),
    ];
    let o = run(&mut store, &IdentityConfig::default(), &events);
    assert_eq!(codes(&o[1]), ["link_refused_owned"]);
    assert_eq!(
        profile_ids(&store, "user_id:u-2"),
        set(&["user_id:u-2", "anonymous_id:a-2"])
    );
}

#[test]
fn anonymous_visitor_who_identifies_joins_the_user_and_the_older_profile_survives() {
    let mut store = MemStore::new();
    let events = [
        json!({"type": "page", "anonymousId": "anon-1", "messageId": "m-1"}),
        json!({"type": "identify", "userId": "u-1", "anonymousId": "anon-9", "messageId": "m-2"}),
        json!({"type": "alias", "userId": "u-1", "previousId": "anon-1", "messageId": "m-3"}),
    ];
    let o = run(&mut store, &IdentityConfig::default(), &events);
    let older = o[0].profile.unwrap();
    let younger = o[1].profile.unwrap();
    assert_eq!(o[2].profile, Some(older), "the oldest profile survives");
    assert_eq!(o[2].deleted, [younger]);
    let merge = &o[2].merges[0];
    assert_eq!((merge.from, merge.into), (younger, older));
    assert_eq!(merge.message_id.as_deref(), Some("m-3"));
    assert_eq!(merge.at, 1_700_000_002_000);
    assert_eq!(store.merges_of(older).unwrap(), vec![merge.clone()]);
    assert_eq!(store.events_of(older).unwrap().len(), 3);
    assert_eq!(store.load(older).unwrap().unwrap().events, 3);
}

#[test]
fn sixth_anonymous_id_in_a_week_is_dropped_and_the_next_week_accepted() {
    let mut store = MemStore::new();
    let config = IdentityConfig::default();
    let spec = FeatureSpec::default();
    let day = weft_core::time::DAY;
    let mut last = Outcome::default();
    for i in 0..6 {
        let e = event(
            json!({"type": "page", "userId": "u-1", "anonymousId": format!("a-{i}"),
                   "messageId": format!("m-{i}")}),
            i * day / 2,
        );
        last = ingest(&mut store, &config, &spec, &e).unwrap();
    }
    assert_eq!(codes(&last), ["limit_reached"]);
    assert!(
        last.warnings[0].to_string().contains("5 anonymous_id"),
        "{:?}",
        last.warnings
    );
    assert_eq!(profile_ids(&store, "user_id:u-1").len(), 6);
    let e = event(
        json!({"type": "page", "userId": "u-1", "anonymousId": "a-late",
                          "messageId": "m-late"}),
        9 * day,
    );
    assert!(ingest(&mut store, &config, &spec, &e)
        .unwrap()
        .warnings
        .is_empty());
    assert_eq!(profile_ids(&store, "user_id:u-1").len(), 7);
}

#[test]
fn ga_cookie_client_id_joins_server_and_browser_events_of_one_visitor() {
    let config = IdentityConfig {
        ga_cookie: vec!["context.cookies._ga".into()],
        ..IdentityConfig::default()
    };
    let mut store = MemStore::new();
    let events = [
        json!({"type": "page", "anonymousId": "anon-1", "messageId": "m-1",
               "context": {"cookies": {"_ga": "GA1.2.1234567890.1700000000"}}}),
        json!({"type": "track", "event": "Order Completed", "userId": "u-1", "messageId": "m-2",
               "context": {"cookies": {"_ga": "_ga=GA1.3-2.1234567890.1700000000"}}}),
        json!({"type": "page", "anonymousId": "anon-2", "messageId": "m-3",
               "context": {"cookies": {"_ga": "garbage"}}}),
    ];
    let o = run(&mut store, &config, &events);
    assert_eq!(
        o[1].profile, o[0].profile,
        "the server event finds the browser visitor"
    );
    assert_eq!(
        profile_ids(&store, "user_id:u-1"),
        set(&[
            "user_id:u-1",
            "anonymous_id:anon-1",
            "ga_client_id:1234567890.1700000000"
        ])
    );
    assert_eq!(
        codes(&o[2]),
        ["junk_id"],
        "garbage is flagged, no id invented"
    );
    assert_eq!(
        profile_ids(&store, "anonymous_id:anon-2"),
        set(&["anonymous_id:anon-2"])
    );
}

#[test]
fn worker_cookie_id_and_anonymous_id_are_one_visitor() {
    let mut store = MemStore::new();
    let events = [
        json!({"type": "page", "anonymousId": "script-1", "messageId": "m-1",
               "weft": {"source": "web", "sid": "sid-1"}}),
        json!({"type": "page", "anonymousId": "script-2", "messageId": "m-2",
               "weft": {"source": "web", "sid": "sid-1"}}),
    ];
    run(&mut store, &IdentityConfig::default(), &events);
    assert_eq!(
        profile_ids(&store, "anonymous_id:sid-1"),
        set(&[
            "anonymous_id:script-1",
            "anonymous_id:script-2",
            "anonymous_id:sid-1"
        ])
    );
}
