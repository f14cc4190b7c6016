//! Bots are in no segment unless the segment's definition opts in with `"includeBots": true`.

mod segment_support;

use segment_support::*;
use serde_json::json;
use weft_core::profile::Profile;

#[test]
fn bot_profiles_are_in_no_segment_unless_it_opts_in() {
    let segments = compile(&[
        ("everyone", json!({"rule": {"all": []}})),
        (
            "pricing",
            json!({"rule": {"count": {"page": "/pricing", "within": "1d", "gte": 1}}}),
        ),
        (
            "crawlers",
            json!({"includeBots": true, "rule": {"device": "bot"}}),
        ),
    ]);
    let spec = segments.spec().clone();
    let t = at("2024-05-01T00:00:00Z");
    let mut crawler = Profile::new(9, t);
    assert!(
        crawler.bot,
        "a new profile is a bot until a human event arrives"
    );
    let mut hit = page("/pricing", t);
    hit.weft.bot = true;
    hit.weft.device = Some("bot".into());
    apply(&mut crawler, &spec, &hit);
    let e = segments.evaluate(&crawler, t);
    assert_eq!(e.segments, ["crawlers"]);
    assert_eq!(
        e.valid_until, None,
        "the excluded windowed segment sets no lapse"
    );
    assert!(e.bot);

    let explained = segments.explain(&crawler, t);
    assert_eq!(explained["pricing"]["excludedAsBot"], json!(true));
    assert_eq!(explained["pricing"]["member"], json!(false));
    assert_eq!(explained["crawlers"]["member"], json!(true));

    // A first human event makes the profile a person, and every segment counts again.
    let mut human = page("/pricing", t + 1);
    human.weft.device = Some("desktop".into());
    let previous = e;
    apply(&mut crawler, &spec, &human);
    let touched = segments.touched_by(&human);
    let updated = segments.update(&previous, &crawler, t + 1, &touched);
    assert_eq!(updated.segments, ["everyone", "pricing"]);
    assert_eq!(updated, segments.evaluate(&crawler, t + 1));
}
