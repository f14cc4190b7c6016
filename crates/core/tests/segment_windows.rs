//! Windows lapsing: `validUntil` is the exact moment a windowed or recency condition
//! changes a segment's answer with no new event, and membership flips when `now` passes it.

mod segment_support;

use proptest::prelude::*;
use segment_support::*;
use serde_json::json;
use weft_core::event::Event;
use weft_core::segment::{Evaluation, Segments};
use weft_core::time::{Millis, DAY, HOUR, MINUTE};

/// Asserts the profile is in `name` just before `valid_until` and out at it.
fn flips_at(
    segments: &Segments,
    p: &weft_core::profile::Profile,
    now: Millis,
    name: &str,
    want_until: Millis,
) {
    let before = segments.evaluate(p, now);
    assert_eq!(before.valid_until, Some(want_until));
    assert!(
        before.segments.iter().any(|s| s == name),
        "in {name} at first: {before:?}"
    );
    let last_moment = segments.evaluate(p, want_until - 1);
    assert!(
        last_moment.segments.iter().any(|s| s == name),
        "still in {name} 1 ms before"
    );
    let after = segments.evaluate(p, want_until);
    assert!(
        !after.segments.iter().any(|s| s == name),
        "out of {name} at validUntil: {after:?}"
    );
}

#[test]
fn pricing_views_lapse_when_the_older_view_leaves_the_30_day_window() {
    let segments = compile(
        &segment_files()
            .iter()
            .map(|(n, d)| (n.as_str(), d.clone()))
            .collect::<Vec<_>>(),
    );
    let spec = segments.spec().clone();
    let day0 = at("2024-05-01T10:00:00Z");
    let mut p = visitor(day0);
    apply(
        &mut p,
        &spec,
        &landing("/", "cpc", "google", "spring", day0),
    );
    apply(&mut p, &spec, &page("/pricing", day0 + HOUR));
    apply(&mut p, &spec, &page("/pricing", day0 + 2 * DAY + 5 * HOUR));
    let now = day0 + 3 * DAY;

    // The first view's day bucket (2024-05-01) leaves the window at the start of the
    // 31st day after it.
    flips_at(
        &segments,
        &p,
        now,
        "paid-pricing-interest",
        at("2024-05-31T00:00:00Z"),
    );
    assert_eq!(
        segments
            .evaluate(&p, at("2024-05-31T00:00:00Z"))
            .valid_until,
        None,
        "nothing left to lapse"
    );
}

#[test]
fn cart_abandonment_lapses_after_three_days_and_an_order_ends_it_at_once() {
    let segments = compile(
        &segment_files()
            .iter()
            .map(|(n, d)| (n.as_str(), d.clone()))
            .collect::<Vec<_>>(),
    );
    let spec = segments.spec().clone();
    let t = at("2024-05-01T18:30:00Z");
    let mut p = visitor(t);
    apply(
        &mut p,
        &spec,
        &track("Product Added", json!({"sku": "a"}), t),
    );
    flips_at(
        &segments,
        &p,
        t,
        "cart-abandoners",
        at("2024-05-04T00:00:00Z"),
    );

    apply(
        &mut p,
        &spec,
        &track("Order Completed", json!({"total": 30}), t + HOUR),
    );
    let e = segments.evaluate(&p, t + HOUR);
    assert!(!e.segments.contains(&"cart-abandoners".to_owned()), "{e:?}");
}

#[test]
fn an_at_most_count_becomes_true_when_enough_events_leave_the_window() {
    let segments = one(json!({"count": {"event": "Login Failed", "within": "7d", "lte": 1}}));
    let spec = segments.spec().clone();
    let day = |n: i64| at("2024-05-01T00:00:00Z") + n * DAY;
    let mut p = visitor(day(0));
    for n in 0..3 {
        apply(
            &mut p,
            &spec,
            &track("Login Failed", json!({}), day(n) + HOUR),
        );
    }
    let e = segments.evaluate(&p, day(3));
    assert!(e.segments.is_empty());
    assert_eq!(
        e.valid_until,
        Some(day(8)),
        "count drops to 1 when day 1 leaves"
    );
    assert_eq!(segments.evaluate(&p, day(8) - 1).segments.len(), 0);
    assert_eq!(segments.evaluate(&p, day(8)).segments, ["s"]);
}

#[test]
fn minute_and_hour_windows_lapse_on_their_bucket_boundaries() {
    let segments = compile(&[
        (
            "minutes",
            json!({"rule": {"count": {"page": "/docs", "within": "90m", "gte": 1}}}),
        ),
        (
            "hours",
            json!({"rule": {"count": {"event": "Video Played", "within": "24h", "gte": 1}}}),
        ),
    ]);
    let spec = segments.spec().clone();
    let t = at("2024-05-01T10:15:30Z");
    let mut p = visitor(t);
    apply(&mut p, &spec, &page("/docs/start", t));
    apply(&mut p, &spec, &track("Video Played", json!({}), t));
    flips_at(&segments, &p, t, "minutes", at("2024-05-01T11:45:00Z"));
    let later = at("2024-05-01T12:00:00Z");
    assert_eq!(
        segments.evaluate(&p, later).valid_until,
        Some(at("2024-05-02T10:00:00Z"))
    );
    assert!(segments
        .evaluate(&p, at("2024-05-02T09:59:59.999Z"))
        .segments
        .contains(&"hours".to_owned()));
    assert!(segments
        .evaluate(&p, at("2024-05-02T10:00:00Z"))
        .segments
        .is_empty());
}

#[test]
fn recency_lapses_exactly_at_seen_plus_the_span() {
    let segments = compile(&[
        ("active", json!({"rule": {"lastSeen": {"within": "7d"}}})),
        ("veteran", json!({"rule": {"firstSeen": {"before": "30d"}}})),
        ("new", json!({"rule": {"firstSeen": {"within": "3d"}}})),
    ]);
    let first = at("2024-05-01T08:00:00Z");
    let mut p = visitor(first);
    p.last_seen = first + 2 * DAY;
    let e = segments.evaluate(&p, first + 2 * DAY);
    assert_eq!(e.segments, ["active", "new"]);
    assert_eq!(e.valid_until, Some(first + 3 * DAY), "new lapses first");
    let e = segments.evaluate(&p, first + 3 * DAY);
    assert_eq!(e.segments, ["active"]);
    assert_eq!(e.valid_until, Some(first + 9 * DAY));
    let e = segments.evaluate(&p, first + 9 * DAY);
    assert!(e.segments.is_empty());
    assert_eq!(
        e.valid_until,
        Some(first + 30 * DAY),
        "veteran starts to hold"
    );
    assert_eq!(
        segments.evaluate(&p, first + 30 * DAY).segments,
        ["veteran"]
    );
    assert_eq!(segments.evaluate(&p, first + 30 * DAY).valid_until, None);
}

#[test]
fn counts_over_all_time_and_event_only_conditions_never_lapse() {
    let segments = compile(&[
        (
            "buyers",
            json!({"rule": {"count": {"event": "Order Completed", "gte": 1}}}),
        ),
        (
            "known-viewers",
            json!({"rule": {"all": [
                {"identified": true},
                {"count": {"page": "/pricing", "within": "7d", "gte": 1}}
            ]}}),
        ),
    ]);
    let spec = segments.spec().clone();
    let t = at("2024-05-01T00:00:00Z");
    let mut p = visitor(t);
    apply(&mut p, &spec, &track("Order Completed", json!({}), t));
    apply(&mut p, &spec, &page("/pricing", t));
    let e = segments.evaluate(&p, t + 400 * DAY);
    assert_eq!(e.segments, ["buyers"]);
    let e = segments.evaluate(&p, t + HOUR);
    assert_eq!(
        e.valid_until, None,
        "the window cannot matter while the profile is anonymous"
    );
    identify(&mut p, "u-1", t + HOUR);
    assert_eq!(
        segments.evaluate(&p, t + HOUR).valid_until,
        Some(t + 7 * DAY)
    );
}

#[test]
fn only_segments_reading_what_an_event_touched_are_reevaluated() {
    let segments = compile(&[
        ("pro", json!({"rule": {"trait": "plan", "eq": "pro"}})),
        (
            "pricing",
            json!({"rule": {"count": {"page": "/pricing", "gte": 1}}}),
        ),
        (
            "buyers",
            json!({"rule": {"count": {"event": "Order Completed", "gte": 1}}}),
        ),
        (
            "from-ads",
            json!({"rule": {"firstTouch": "medium", "eq": "cpc"}}),
        ),
    ]);
    let touched = segments.touched_by(&page("/pricing", 0));
    let read: Vec<&str> = segments
        .names()
        .filter(|n| segments.reads(n, &touched))
        .collect();
    assert_eq!(read, ["from-ads", "pricing"]);
    let touched = segments.touched_by(&track("Order Completed", json!({}), 0));
    let read: Vec<&str> = segments
        .names()
        .filter(|n| segments.reads(n, &touched))
        .collect();
    assert_eq!(read, ["buyers"]);
}

fn event_strategy() -> impl Strategy<Value = (u8, i64)> {
    (0u8..8, 0i64..(20 * DAY / MINUTE))
}

fn make_event(kind: u8, minute: i64) -> Event {
    let t = at("2024-05-01T00:00:00Z") + minute * MINUTE;
    match kind {
        0 => page("/pricing", t),
        1 => landing("/", "cpc", "google", "spring", t),
        2 => track("Product Added", json!({}), t),
        3 => track("Order Completed", json!({"total": 40}), t),
        4 => page("/docs/api", t),
        5 => {
            let mut e = track("Signed Up", json!({}), t);
            e.user_id = Some("u-1".into());
            e
        }
        6 => {
            let mut e = page("/docs/guide", t);
            e.weft.country = Some("DE".into());
            e.weft.device = Some("mobile".into());
            e
        }
        _ => {
            let mut e = Event::new(weft_core::event::EventKind::Identify, "i", t);
            e.traits.insert("plan".into(), json!("pro"));
            e
        }
    }
}

proptest! {
    #[test]
    fn incremental_update_agrees_with_full_evaluation(
        mut stream in proptest::collection::vec(event_strategy(), 1..40),
        gaps in proptest::collection::vec(0i64..(3 * DAY), 40),
    ) {
        let mut defs = segment_files();
        defs.push(("active".into(), json!({"rule": {"lastSeen": {"within": "2d"}}})));
        let pro_or_known = json!({
            "rule": {"any": [{"trait": "plan", "eq": "pro"}, {"identified": true}]}
        });
        defs.push(("pro-or-known".into(), pro_or_known));
        let segments = Segments::compile(&defs).unwrap();
        let spec = segments.spec().clone();
        stream.sort_by_key(|&(_, m)| m);
        let start = at("2024-05-01T00:00:00Z");
        let mut p = visitor(start);
        let mut previous = Evaluation::default();
        let mut now = start;
        for (i, &(kind, minute)) in stream.iter().enumerate() {
            let e = make_event(kind, minute);
            now = now.max(e.timestamp) + gaps[i];
            apply(&mut p, &spec, &e);
            let full = segments.evaluate(&p, now);
            let step = if i == 0 {
                full.clone()
            } else {
                segments.update(&previous, &p, now, &segments.touched_by(&e))
            };
            prop_assert_eq!(&step.segments, &full.segments);
            if let Some(t) = full.valid_until {
                let at_most = step.valid_until.is_some_and(|s| s <= t);
                prop_assert!(at_most, "{:?} later than {}", step.valid_until, t);
            }
            previous = step;
        }
    }
}
