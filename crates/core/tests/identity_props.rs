//! Properties of the identity graph, checked with proptest: delivery order does not
//! change the profiles, replaying a message changes nothing, no profile ever holds two
//! user ids, and every kind's limit holds after every event.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{json, Value};
use weft_core::event::{Event, EventKind};
use weft_core::identity::{ingest, IdKind, IdentityConfig, KindRule, MemStore, Store};
use weft_core::segment::FeatureSpec;
use weft_core::time::{Millis, DAY, MINUTE};

const T0: Millis = 1_700_000_000_000;

/// A store that keeps only two profiles unpacked, so packing is exercised on every
/// event.
fn store() -> MemStore {
    MemStore::new().with_hot_capacity(2)
}

/// One event's ids and content, before it becomes an [`Event`].
#[derive(Debug, Clone)]
struct Spec {
    kind: EventKind,
    user: Option<String>,
    anon: Option<String>,
    previous: Option<String>,
    email: Option<String>,
    plan: Option<u8>,
    at: Millis,
}

fn build(i: usize, s: &Spec) -> Event {
    let mut e = Event::new(s.kind, format!("m-{i}"), s.at);
    e.weft.source = "web".into();
    e.user_id = s.user.clone();
    e.anonymous_id = s.anon.clone();
    e.previous_id = s.previous.clone();
    if s.kind == EventKind::Track {
        e.event = Some("Clicked".into());
    }
    if s.kind == EventKind::Page {
        e.context
            .insert("page".into(), json!({"path": format!("/p{}", s.at % 7)}));
    }
    let mut traits = serde_json::Map::new();
    if let Some(email) = &s.email {
        traits.insert("email".into(), json!(email));
    }
    if let Some(plan) = s.plan {
        traits.insert("plan".into(), json!(format!("plan-{plan}")));
    }
    if !traits.is_empty() {
        e.context.insert("traits".into(), Value::Object(traits));
    }
    e
}

/// Events of a few people; each event only names ids of one person, so nothing conflicts.
fn people_events() -> impl Strategy<Value = Vec<Spec>> {
    let person = (any::<bool>(), 1usize..=3, any::<bool>());
    let people = prop::collection::vec(person, 1..6);
    people.prop_flat_map(|people| {
        let n = people.len();
        let event = (
            0..n,
            prop::sample::select(vec![EventKind::Page, EventKind::Track, EventKind::Identify]),
            any::<prop::sample::Index>(),
            any::<(bool, bool, bool)>(),
            prop::option::of(0u8..4),
            0i64..(20 * DAY / MINUTE),
        );
        prop::collection::vec(event, 1..30).prop_map(move |events| {
            events
                .into_iter()
                .enumerate()
                .map(
                    |(i, (p, kind, anon_pick, (with_user, with_anon, with_email), plan, at))| {
                        let (has_user, anons, has_email) = people[p];
                        let user = (has_user && with_user).then(|| format!("u{p}"));
                        let mut anon =
                            with_anon.then(|| format!("a{p}-{}", anon_pick.index(anons)));
                        if user.is_none() && anon.is_none() {
                            anon = Some(format!("a{p}-0"));
                        }
                        Spec {
                            kind,
                            user,
                            anon,
                            previous: None,
                            email: (has_email && with_email).then(|| format!("e{p}@x.io")),
                            plan,
                            // Distinct times: equal ones would still agree, but this keeps
                            // failures readable.
                            at: T0 + at * MINUTE + i as Millis,
                        }
                    },
                )
                .collect()
        })
    })
}

/// Events over small shared pools of ids, so they conflict: two users on one browser,
/// aliases between users, emails reused.
fn conflicting_events() -> impl Strategy<Value = Vec<Spec>> {
    let pick = |prefix: &'static str, n: usize| {
        prop::option::of((0..n).prop_map(move |i| format!("{prefix}{i}")))
    };
    let event = (
        prop::sample::select(vec![
            EventKind::Page,
            EventKind::Identify,
            EventKind::Alias,
            EventKind::Track,
        ]),
        pick("u", 4),
        pick("a", 10),
        pick("p", 6),
        pick("e", 4),
        prop::option::of(0u8..4),
        0i64..(30 * DAY / MINUTE),
    );
    prop::collection::vec(event, 1..60).prop_map(|events| {
        events
            .into_iter()
            .map(|(kind, user, anon, previous, email, plan, at)| {
                let previous =
                    previous.map(|p| p.replace('p', if at % 2 == 0 { "u" } else { "a" }));
                let anon = if user.is_none() && anon.is_none() {
                    Some("a0".into())
                } else {
                    anon
                };
                Spec {
                    kind,
                    user,
                    anon,
                    previous: (kind == EventKind::Alias).then_some(previous).flatten(),
                    email: email.map(|e| format!("{e}@x.io")),
                    plan,
                    at: T0 + at * MINUTE,
                }
            })
            .collect()
    })
}

/// The partition of identifiers into profiles, with each profile's traits and counts.
type Shape = BTreeMap<BTreeSet<String>, (BTreeMap<String, Value>, u64, Millis, Millis)>;

fn shape(store: &MemStore) -> Shape {
    store
        .profiles()
        .map(|p| {
            let ids = p.identifiers.iter().map(|h| h.id.to_string()).collect();
            let traits = p
                .traits
                .iter()
                .map(|(k, t)| (k.clone(), t.value.clone()))
                .collect();
            (ids, (traits, p.events, p.first_seen, p.last_seen))
        })
        .collect()
}

fn ingest_all(store: &mut MemStore, config: &IdentityConfig, events: &[(usize, Spec)]) {
    let spec = FeatureSpec::default();
    for (i, s) in events {
        ingest(store, config, &spec, &build(*i, s)).unwrap();
    }
}

fn tight_config() -> IdentityConfig {
    let mut config = IdentityConfig::default();
    config.kinds.insert(
        "anonymous_id".into(),
        KindRule {
            limit: 2,
            window_days: Some(7),
            priority: 10,
        },
    );
    config.kinds.insert(
        "email".into(),
        KindRule {
            limit: 1,
            window_days: None,
            priority: 50,
        },
    );
    config
}

/// Every profile keeps every limit, and the index agrees with the profiles.
fn check_invariants(store: &MemStore, config: &IdentityConfig) -> Result<(), TestCaseError> {
    let mut seen = BTreeSet::new();
    for p in store.profiles() {
        let users = p
            .identifiers
            .iter()
            .filter(|h| h.id.kind == IdKind::UserId)
            .count();
        prop_assert!(users <= 1, "profile {} holds {users} user ids", p.id);
        let mut by_kind: BTreeMap<&IdKind, Vec<Millis>> = BTreeMap::new();
        for h in &p.identifiers {
            by_kind.entry(&h.id.kind).or_default().push(h.first_seen);
            prop_assert_eq!(store.profile_of(&h.id).unwrap(), Some(p.id));
            prop_assert!(seen.insert(h.id.clone()), "{} in two profiles", h.id);
        }
        for (kind, mut times) in by_kind {
            let rule = config.rule(kind);
            let limit = rule.limit as usize;
            times.sort_unstable();
            match rule.window() {
                None => prop_assert!(times.len() <= limit, "{kind}: {times:?}"),
                Some(w) => {
                    for run in times.windows(limit + 1) {
                        prop_assert!(run[limit] - run[0] >= w, "{kind} over limit: {times:?}");
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_delivery_order_gives_the_same_profiles(
        (events, order) in people_events().prop_flat_map(|events| {
            let n = events.len();
            let order: Vec<usize> = (0..n).collect();
            (Just(events), Just(order).prop_shuffle())
        })
    ) {
        let config = IdentityConfig::default();
        let indexed: Vec<(usize, Spec)> = events.iter().cloned().enumerate().collect();
        let shuffled: Vec<(usize, Spec)> = order.iter().map(|&i| indexed[i].clone()).collect();
        let (mut a, mut b) = (store(), store());
        ingest_all(&mut a, &config, &indexed);
        ingest_all(&mut b, &config, &shuffled);
        prop_assert_eq!(shape(&a), shape(&b));
    }

    #[test]
    fn replaying_messages_changes_nothing(
        events in conflicting_events(),
        replays in prop::collection::vec(any::<prop::sample::Index>(), 1..20),
    ) {
        let config = tight_config();
        let spec = FeatureSpec::default();
        let indexed: Vec<(usize, Spec)> = events.iter().cloned().enumerate().collect();
        let mut store = store();
        ingest_all(&mut store, &config, &indexed);
        let before = shape(&store);
        for pick in replays {
            let (i, s) = &indexed[pick.index(indexed.len())];
            let outcome = ingest(&mut store, &config, &spec, &build(*i, s)).unwrap();
            prop_assert!(outcome.duplicate);
        }
        prop_assert_eq!(shape(&store), before);
    }

    #[test]
    fn no_profile_holds_two_user_ids_and_limits_hold_after_every_event(
        events in conflicting_events()
    ) {
        let config = tight_config();
        let spec = FeatureSpec::default();
        let mut store = store();
        let mut stored = 0;
        for (i, s) in events.iter().enumerate() {
            let outcome = ingest(&mut store, &config, &spec, &build(i, s)).unwrap();
            stored += usize::from(!outcome.duplicate);
            check_invariants(&store, &config)?;
        }
        let mut total = 0;
        for p in store.profiles() {
            total += store.events_of(p.id).unwrap().len();
            prop_assert_eq!(store.events_of(p.id).unwrap().len() as u64, p.events);
        }
        prop_assert_eq!(total, stored, "every event stored once");
    }
}
