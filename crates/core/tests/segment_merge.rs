//! Merging profiles: counters add bucket by bucket, so membership follows the merged person.

mod segment_support;

use segment_support::*;
use serde_json::json;
use weft_core::segment::Features;
use weft_core::time::{DAY, HOUR};

#[test]
fn two_profiles_counts_add_after_a_merge() {
    let segments = compile(
        &segment_files()
            .iter()
            .map(|(n, d)| (n.as_str(), d.clone()))
            .collect::<Vec<_>>(),
    );
    let spec = segments.spec().clone();
    let t = at("2024-05-01T10:00:00Z");

    // One pricing view on the phone (which came from the ad), one on the laptop.
    let mut phone = visitor(t);
    apply(
        &mut phone,
        &spec,
        &landing("/pricing", "cpc", "google", "spring", t),
    );
    let mut laptop = visitor(t + HOUR);
    apply(&mut laptop, &spec, &page("/pricing", t + DAY));
    assert!(segments.evaluate(&phone, t + DAY).segments.is_empty());
    assert!(segments.evaluate(&laptop, t + DAY).segments.is_empty());

    let mut merged = phone.clone();
    merged.features.merge(&laptop.features);
    merged.last_seen = laptop.last_seen.max(phone.last_seen);
    let e = segments.evaluate(&merged, t + DAY);
    assert_eq!(e.segments, ["paid-pricing-interest"]);
    assert_eq!(e.valid_until, Some(at("2024-05-31T00:00:00Z")));

    // Each side alone stays out: the merge did not write into the other profile.
    assert!(segments.evaluate(&phone, t + DAY).segments.is_empty());
}

#[test]
fn merge_is_bucket_wise_and_order_independent() {
    let segments = one(json!({"count": {"event": "Product Viewed", "within": "7d", "gte": 4}}));
    let spec = segments.spec().clone();
    let t = at("2024-05-01T10:00:00Z");
    let (mut a, mut b) = (Features::default(), Features::default());
    for at in [t, t + DAY, t + DAY + HOUR] {
        a.observe(&spec, &track("Product Viewed", json!({}), at));
    }
    for at in [t + DAY, t + 2 * DAY] {
        b.observe(&spec, &track("Product Viewed", json!({}), at));
    }
    let mut ab = a.clone();
    ab.merge(&b);
    let mut ba = b.clone();
    ba.merge(&a);
    assert_eq!(ab, ba);
    let id = spec.counters()[0].id;
    let day = |n: i64| (t + n * DAY).div_euclid(DAY);
    assert_eq!(ab.buckets(id), &[(day(0), 1), (day(1), 3), (day(2), 1)]);

    let mut p = visitor(t);
    p.features = ab;
    assert_eq!(segments.evaluate(&p, t + 2 * DAY).segments, ["s"]);
}

#[test]
fn merging_with_an_empty_profile_changes_nothing() {
    let segments = one(json!({"count": {"page": "/pricing", "within": "30d", "gte": 1}}));
    let spec = segments.spec().clone();
    let mut f = Features::default();
    f.observe(&spec, &page("/pricing", at("2024-05-01T00:00:00Z")));
    let before = f.clone();
    f.merge(&Features::default());
    assert_eq!(f, before);
}
