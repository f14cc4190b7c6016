//! Undoing merges: the profiles after an undo are those of a graph in which the link was
//! refused from the start, the link stays refused afterwards, and operator merges are
//! undoable like any other.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

use serde_json::{json, Value};
use weft_core::event::Event;
use weft_core::identity::{
    ingest, operator_merge, undo, Identifier, IdentityConfig, MemStore, Merge, Outcome, Store,
    UndoError,
};
use weft_core::profile::Profile;
use weft_core::segment::FeatureSpec;
use weft_core::time::{format_rfc3339, Millis, MINUTE};

fn event(mut wire: Value, at: Millis) -> Event {
    let obj = wire.as_object_mut().unwrap();
    obj.insert("timestamp".into(), json!(format_rfc3339(at)));
    obj.insert("receivedAt".into(), json!(format_rfc3339(at)));
    obj.insert("weft".into(), json!({"source": "web", "country": "FR"}));
    serde_json::from_value(wire).unwrap()
}

fn id(text: &str) -> Identifier {
    Identifier::parse(text).unwrap()
}

fn run(store: &mut MemStore, events: &[Value], start: usize) -> Vec<Outcome> {
    let spec = FeatureSpec::default();
    let config = IdentityConfig::default();
    let mut out = Vec::new();
    for (i, wire) in events.iter().enumerate() {
        let at = 1_700_000_000_000 + (start + i) as Millis * MINUTE;
        out.push(ingest(store, &config, &spec, &event(wire.clone(), at)).unwrap());
    }
    out
}

/// Every profile without its id (ids differ between graphs built differently).
fn snapshot(store: &MemStore) -> Vec<String> {
    let mut all: Vec<String> = store
        .profiles()
        .map(|mut p: Profile| {
            p.id = 0;
            p.identifiers.sort_by(|a, b| a.id.cmp(&b.id));
            format!("{p:?}")
        })
        .collect();
    all.sort();
    all
}

fn story() -> Vec<Value> {
    vec![
        json!({"type": "page", "anonymousId": "anon-1", "messageId": "m-1",
               "context": {"page": {"path": "/", "referrer": "https://news.example/a"}}}),
        json!({"type": "page", "anonymousId": "anon-2", "messageId": "m-2",
               "context": {"campaign": {"source": "mail", "medium": "email"}}}),
        json!({"type": "identify", "userId": "user-1", "anonymousId": "anon-1", "messageId": "m-3",
               "traits": {"plan": "free", "email": "one@example.com"}}),
        json!({"type": "track", "event": "Viewed", "anonymousId": "anon-2", "messageId": "m-4",
               "context": {"traits": {"plan": "trial"}}}),
        // An admin signs in as user-1 on anon-2's laptop: the merge to undo.
        json!({"type": "identify", "userId": "user-1", "anonymousId": "anon-2", "messageId": "m-5",
               "traits": {"plan": "pro"}}),
        json!({"type": "page", "anonymousId": "anon-2", "messageId": "m-6",
               "context": {"page": {"path": "/pricing"}}}),
        json!({"type": "group", "groupId": "acme", "anonymousId": "anon-1", "messageId": "m-7"}),
    ]
}

#[test]
fn merge_then_undo_gives_the_profiles_of_a_graph_that_never_linked() {
    // No profile stays unpacked: undo must work from packed profiles too.
    let mut store = MemStore::new().with_hot_capacity(0);
    let outcomes = run(&mut store, &story(), 0);
    let merge = outcomes[4].merges[0].clone();
    assert_eq!(store.profiles().count(), 1);
    assert_eq!(merge.message_id.as_deref(), Some("m-5"));

    let spec = FeatureSpec::default();
    let undone = undo(&mut store, &IdentityConfig::default(), &spec, merge.id, 42).unwrap();
    assert_eq!(undone.merge.undone, Some(42));
    assert_eq!(undone.changed.len(), 2);
    assert_eq!(undone.deleted, [merge.into]);
    assert!(
        undone.warnings.iter().any(|w| w.code() == "link_blocked"),
        "{:?}",
        undone.warnings
    );

    let mut never = MemStore::new();
    for a in &merge.from_ids {
        for b in &merge.into_ids {
            never.block(a, b).unwrap();
        }
    }
    run(&mut never, &story(), 0);
    assert_eq!(snapshot(&store), snapshot(&never));

    let p2 = store
        .profile_of(&id("anonymous_id:anon-2"))
        .unwrap()
        .unwrap();
    let p2 = store.load(p2).unwrap().unwrap();
    assert!(!p2.is_identified());
    assert_eq!(p2.events, 3);
    assert_eq!(p2.traits["plan"].value, json!("trial"));
    assert_eq!(store.merge(merge.id).unwrap().unwrap().undone, Some(42));
}

#[test]
fn link_is_refused_with_a_warning_after_undo() {
    let mut store = MemStore::new();
    let outcomes = run(&mut store, &story(), 0);
    let spec = FeatureSpec::default();
    let merge_id = outcomes[4].merges[0].id;
    undo(&mut store, &IdentityConfig::default(), &spec, merge_id, 42).unwrap();

    let again = [
        json!({"type": "identify", "userId": "user-1", "anonymousId": "anon-2",
                        "messageId": "m-8"}),
    ];
    let o = run(&mut store, &again, 10);
    assert!(o[0].merges.is_empty());
    assert_eq!(
        o[0].warnings.iter().map(|w| w.code()).collect::<Vec<_>>(),
        ["link_blocked"]
    );
    assert_eq!(
        o[0].profile,
        store.profile_of(&id("user_id:user-1")).unwrap()
    );
    assert_eq!(store.profiles().count(), 2);

    let err = undo(&mut store, &IdentityConfig::default(), &spec, merge_id, 43).unwrap_err();
    assert_eq!(err, UndoError::AlreadyUndone(merge_id));
    let err = undo(&mut store, &IdentityConfig::default(), &spec, 999, 43).unwrap_err();
    assert_eq!(err, UndoError::NoMerge(999));
}

#[test]
fn undo_keeps_the_other_merges_of_the_profile() {
    let mut store = MemStore::new();
    let events = [
        json!({"type": "page", "anonymousId": "a", "messageId": "m-1"}),
        json!({"type": "page", "anonymousId": "b", "messageId": "m-2"}),
        json!({"type": "page", "anonymousId": "c", "messageId": "m-3"}),
        json!({"type": "identify", "userId": "u", "anonymousId": "a", "messageId": "m-4"}),
        json!({"type": "alias", "userId": "u", "previousId": "b", "messageId": "m-5"}),
        json!({"type": "alias", "userId": "u", "previousId": "c", "messageId": "m-6"}),
    ];
    let o = run(&mut store, &events, 0);
    let (ab, ac) = (o[4].merges[0].id, o[5].merges[0].id);
    assert_eq!(store.profiles().count(), 1);
    undo(
        &mut store,
        &IdentityConfig::default(),
        &FeatureSpec::default(),
        ab,
        7,
    )
    .unwrap();
    assert_eq!(store.profiles().count(), 2);
    let u = store.profile_of(&id("user_id:u")).unwrap();
    assert_eq!(
        store.profile_of(&id("anonymous_id:c")).unwrap(),
        u,
        "c stays with u"
    );
    assert_ne!(store.profile_of(&id("anonymous_id:b")).unwrap(), u);
    // The log still holds the first c merge; it no longer describes a live profile.
    assert!(store.merge(ac).unwrap().is_some());
}

#[test]
fn operator_merge_is_logged_and_undoable() {
    let mut store = MemStore::new();
    let events = [
        json!({"type": "identify", "userId": "u-1", "anonymousId": "a-1", "messageId": "m-1"}),
        json!({"type": "identify", "userId": "u-2", "anonymousId": "a-2", "messageId": "m-2"}),
    ];
    run(&mut store, &events, 0);
    let before = snapshot(&store);
    let spec = FeatureSpec::default();
    let m = operator_merge(&mut store, &spec, &id("user_id:u-2"), &id("user_id:u-1"), 5).unwrap();
    assert!(m.operator);
    assert_eq!(store.profiles().count(), 1);
    let err = operator_merge(
        &mut store,
        &spec,
        &id("user_id:u-2"),
        &id("anonymous_id:a-1"),
        6,
    )
    .unwrap_err();
    assert!(matches!(err, UndoError::SameProfile(..)), "{err}");
    let err = operator_merge(
        &mut store,
        &spec,
        &id("user_id:nobody"),
        &id("user_id:u-1"),
        6,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "no profile holds user_id:nobody");

    undo(&mut store, &IdentityConfig::default(), &spec, m.id, 7).unwrap();
    assert_eq!(snapshot(&store), before);
}

#[test]
fn operator_merge_survives_the_undo_of_another_merge() {
    let mut store = MemStore::new();
    let events = [
        json!({"type": "identify", "userId": "u-1", "anonymousId": "a-1", "messageId": "m-1"}),
        json!({"type": "identify", "userId": "u-2", "anonymousId": "a-2", "messageId": "m-2"}),
        json!({"type": "page", "anonymousId": "a-3", "messageId": "m-3"}),
    ];
    run(&mut store, &events, 0);
    let spec = FeatureSpec::default();
    operator_merge(&mut store, &spec, &id("user_id:u-2"), &id("user_id:u-1"), 5).unwrap();
    let o = run(
        &mut store,
        &[json!({"type": "alias", "userId": "u-1", "previousId": "a-3", "messageId": "m-4"})],
        5,
    );
    undo(
        &mut store,
        &IdentityConfig::default(),
        &spec,
        o[0].merges[0].id,
        9,
    )
    .unwrap();
    let u1 = store.profile_of(&id("user_id:u-1")).unwrap();
    assert_eq!(
        store.profile_of(&id("user_id:u-2")).unwrap(),
        u1,
        "operator merge kept"
    );
    assert_ne!(
        store.profile_of(&id("anonymous_id:a-3")).unwrap(),
        u1,
        "undone merge split"
    );
}

/// Users x, a and b; an operator joins a into x (the first merge), then b into x.
fn a_and_b_joined_to_x_by_an_operator() -> (MemStore, Merge, Merge) {
    let mut store = MemStore::new();
    let events = [
        json!({"type": "identify", "userId": "x", "anonymousId": "a-x", "messageId": "m-1"}),
        json!({"type": "identify", "userId": "a", "anonymousId": "a-a", "messageId": "m-2"}),
        json!({"type": "identify", "userId": "b", "anonymousId": "a-b", "messageId": "m-3"}),
    ];
    run(&mut store, &events, 0);
    let spec = FeatureSpec::default();
    let first = operator_merge(&mut store, &spec, &id("user_id:a"), &id("user_id:x"), 5).unwrap();
    let second = operator_merge(&mut store, &spec, &id("user_id:b"), &id("user_id:x"), 6).unwrap();
    (store, first, second)
}

#[test]
fn operator_merge_applied_again_by_an_undo_is_undone_by_its_first_id() {
    let (mut store, first, second) = a_and_b_joined_to_x_by_an_operator();
    let spec = FeatureSpec::default();
    let config = IdentityConfig::default();
    // Undoing the second rebuilds the profile and joins a and x again under a new record.
    undo(&mut store, &config, &spec, second.id, 7).unwrap();
    let x = store.profile_of(&id("user_id:x")).unwrap();
    assert_eq!(store.profile_of(&id("user_id:a")).unwrap(), x);
    assert_ne!(store.profile_of(&id("user_id:b")).unwrap(), x);

    // The operator names the merge they made: a leaves x.
    let undone = undo(&mut store, &config, &spec, first.id, 8).unwrap();
    assert_eq!(undone.merge.id, first.id);
    let x = store.profile_of(&id("user_id:x")).unwrap();
    assert_ne!(
        store.profile_of(&id("user_id:a")).unwrap(),
        x,
        "a split from x"
    );
    assert_ne!(
        store.profile_of(&id("user_id:b")).unwrap(),
        x,
        "b stays apart"
    );
    assert_eq!(store.profiles().count(), 3);
    // The copy is marked undone with it; neither can be undone twice.
    let copies: Vec<_> = (1..=first.id + 10)
        .filter_map(|m| store.merge(m).unwrap())
        .filter(|m| m.reapplies == Some(first.id))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(copies[0].undone, Some(8));
    let again = undo(&mut store, &config, &spec, copies[0].id, 9).unwrap_err();
    assert_eq!(again, UndoError::AlreadyUndone(copies[0].id));
}

#[test]
fn undoing_the_copy_of_an_operator_merge_marks_the_original_undone() {
    let (mut store, first, second) = a_and_b_joined_to_x_by_an_operator();
    let spec = FeatureSpec::default();
    let config = IdentityConfig::default();
    undo(&mut store, &config, &spec, second.id, 7).unwrap();
    // The profile's log shows the copy: that is the record an operator undoes.
    let x = store.profile_of(&id("user_id:x")).unwrap().unwrap();
    let copy = store
        .merges_of(x)
        .unwrap()
        .into_iter()
        .find(|m| m.reapplies == Some(first.id))
        .unwrap();
    undo(&mut store, &config, &spec, copy.id, 8).unwrap();
    assert_ne!(
        store.profile_of(&id("user_id:a")).unwrap(),
        store.profile_of(&id("user_id:x")).unwrap()
    );
    assert_eq!(store.merge(first.id).unwrap().unwrap().undone, Some(8));
}

#[test]
fn undo_without_stored_events_is_refused_and_changes_nothing() {
    let mut store = MemStore::without_events();
    let o = run(&mut store, &story(), 0);
    let before = snapshot(&store);
    let id = o[4].merges[0].id;
    let spec = FeatureSpec::default();
    let err = undo(&mut store, &IdentityConfig::default(), &spec, id, 1).unwrap_err();
    assert_eq!(err, UndoError::NoEvents(id));
    assert_eq!(snapshot(&store), before);
    assert_eq!(store.merge(id).unwrap().unwrap().undone, None);
}
