//! Benchmarks for the segment engine's hot paths: evaluating the committed 50-rule mix
//! (`data/rules50.json`: trait, windowed-count and touchpoint conditions) against a profile
//! with 20 traits and 10 windowed counters, the incremental update after one event,
//! counting one event into the counters, and the decide route's native work (decoding a
//! decision doc from KV bytes and writing the answer body).
//!
//! The profile is in 33 of the 50 segments, so `evaluate` also allocates 33 names;
//! `evaluate_into` shows the rule work alone, with the answer's buffers reused.
//!
//! Targets (issue 4): 50 rules under 2 µs; the decide path under 20 µs.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use weft_core::event::{Event, EventKind};
use weft_core::identity::{IdKind, Identifier};
use weft_core::profile::{Held, Profile, Trait};
use weft_core::segment::{Decision, Segments};
use weft_core::time::{parse_rfc3339, Millis, DAY, HOUR};
use weft_core::touch::Touchpoint;

fn mix() -> Segments {
    let text = include_str!("data/rules50.json");
    let map: serde_json::Map<String, Value> =
        serde_json::from_str(text).expect("rules50.json is JSON");
    let defs: Vec<(String, Value)> = map.into_iter().collect();
    Segments::compile(&defs).expect("rules50.json compiles")
}

fn page(path: &str, at: Millis) -> Event {
    let mut e = Event::new(EventKind::Page, "m", at);
    e.context.insert("page".into(), json!({ "path": path }));
    e
}

fn track(name: &str, at: Millis) -> Event {
    let mut e = Event::new(EventKind::Track, "m", at);
    e.event = Some(name.into());
    e
}

/// A signed-in visitor from a paid search ad with 20 traits and activity in all 10 counters.
fn profile(segments: &Segments, now: Millis) -> Profile {
    let mut p = Profile::new(1, now - 20 * DAY);
    p.bot = false;
    p.last_seen = now - HOUR;
    p.country = Some("DE".into());
    p.device = Some("mobile".into());
    p.identifiers.push(Held {
        id: Identifier {
            kind: IdKind::UserId,
            value: "u-1".into(),
        },
        first_seen: now,
    });
    let traits = [
        ("plan", json!("pro")),
        ("company_size", json!(120)),
        ("industry", json!("retail")),
        ("role", json!("engineering manager")),
        ("email", json!("jo@acme.com")),
        ("ltv", json!(830.5)),
        ("orders", json!(4)),
        ("newsletter", json!(true)),
        ("beta", json!("wave-2")),
        ("locale", json!("de-DE")),
        ("seats", json!(12)),
        ("trial_days_left", json!(0)),
        ("score", json!(64)),
        ("tags", json!(["vip", "early"])),
        ("signup_source", json!("ads")),
        ("last_plan_change", json!("2024-03-02")),
        ("first_name", json!("Jo")),
        ("timezone", json!("Europe/Berlin")),
        ("company", json!("Acme GmbH")),
        ("lifecycle", json!("customer")),
    ];
    for (name, value) in traits {
        p.traits.insert(
            name.into(),
            Trait {
                value,
                at: now - DAY,
            },
        );
    }
    let touch = |channel: &str, source: &str, medium: &str| Touchpoint {
        at: now - 20 * DAY,
        channel: channel.into(),
        source: Some(source.into()),
        medium: Some(medium.into()),
        campaign: Some("spring-sale".into()),
        click_id: Some("gclid".into()),
        referrer: None,
        landing: Some("/".into()),
    };
    p.first_touch = Some(touch("paid_search", "google", "cpc"));
    p.last_touch = Some(touch("email", "newsletter", "email"));

    let spec = segments.spec();
    for day in 0..20 {
        let at = now - day * DAY - 2 * HOUR;
        for e in [
            track("Product Viewed", at),
            track("Product Added", at),
            track("Order Completed", at),
            track("Signed Up", at),
            track("Video Played", at),
            page("/pricing", at),
            page("/docs/guide/start", at),
            page("/blog/launch", at),
            page("/careers", at),
            page("/product/7/reviews", at),
        ] {
            p.features.observe(spec, &e);
        }
    }
    assert_eq!(p.features.len(), 10, "ten windowed counters");
    p
}

fn bench(c: &mut Criterion) {
    let segments = mix();
    let now = parse_rfc3339("2024-05-20T12:00:00Z").expect("valid").at;
    let p = profile(&segments, now);
    let evaluation = segments.evaluate(&p, now);
    assert_eq!(
        evaluation.segments.len(),
        33,
        "the profile is in 33 of the 50 segments"
    );

    c.bench_function("evaluate 50 rules", |b| {
        b.iter(|| segments.evaluate(black_box(&p), black_box(now)))
    });

    // The same work with the answer's name buffers reused, as a loop over profiles does.
    let mut out = evaluation.clone();
    c.bench_function("evaluate 50 rules into a reused answer", |b| {
        b.iter(|| segments.evaluate_into(black_box(&p), black_box(now), &mut out))
    });

    let event = page("/pricing", now);
    let touched = segments.touched_by(&event);
    c.bench_function("update after a page view", |b| {
        b.iter(|| {
            segments.update(
                black_box(&evaluation),
                black_box(&p),
                now,
                black_box(&touched),
            )
        })
    });

    let mut features = p.features.clone();
    c.bench_function("observe one page view", |b| {
        b.iter(|| features.observe(black_box(segments.spec()), black_box(&event)))
    });

    let doc = Decision::new(&evaluation, 42).to_json();
    let bytes = doc.as_bytes();
    c.bench_function("decide: decode doc and write body", |b| {
        b.iter(|| Decision::from_slice(black_box(bytes)).map(|d| d.to_json()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
