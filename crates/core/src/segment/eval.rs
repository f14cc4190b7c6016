//! Evaluating a rule against a profile, and when the answer can next change by itself.
//!
//! Besides whether a rule holds, evaluation finds the earliest moment at which one of the
//! conditions it looked at flips with no new event: a page view leaving a 7-day window, a
//! visitor passing 30 days since last seen. That moment becomes the decision's
//! `validUntil`. Evaluation short-circuits (`all` stops at the first condition that fails),
//! which keeps that moment exact: the conditions it skipped cannot change the answer until
//! one it did look at changes first.

use serde_json::{json, Value};

use crate::profile::Profile;
use crate::segment::ops::Subject;
use crate::segment::rule::{Count, Rule, TouchField, When, Which};
use crate::time::{format_rfc3339, Millis};
use crate::touch::Touchpoint;

/// The earliest of two optional moments.
pub fn earliest(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Whether `rule` holds for `profile` at `now`; lowers `lapse` to the earliest moment a
/// condition that was looked at flips by itself.
pub fn holds(rule: &Rule, profile: &Profile, now: Millis, lapse: &mut Option<Millis>) -> bool {
    match rule {
        Rule::All(rules) => rules.iter().all(|r| holds(r, profile, now, lapse)),
        Rule::Any(rules) => rules.iter().any(|r| holds(r, profile, now, lapse)),
        Rule::Not(r) => !holds(r, profile, now, lapse),
        Rule::Count(c) => {
            let (held, flips) = count_holds(c, profile, now);
            *lapse = earliest(*lapse, flips);
            held
        }
        Rule::Seen { which, when } => {
            let (held, flips) = seen_holds(*which, *when, profile, now);
            *lapse = earliest(*lapse, flips);
            held
        }
        leaf => leaf_holds(leaf, profile),
    }
}

/// A condition that only an event can change.
fn leaf_holds(rule: &Rule, profile: &Profile) -> bool {
    match rule {
        Rule::Trait { name, op } => {
            op.holds(Subject::json(profile.traits.get(name).map(|t| &t.value)))
        }
        Rule::Touch { which, field, op } => op.holds(touch_field(touch(profile, *which), *field)),
        Rule::Identified(want) => profile.is_identified() == *want,
        Rule::Country(codes) => profile
            .country
            .as_deref()
            .is_some_and(|c| codes.iter().any(|x| x.eq_ignore_ascii_case(c))),
        Rule::Device(kinds) => profile
            .device
            .as_deref()
            .is_some_and(|d| kinds.iter().any(|x| x.eq_ignore_ascii_case(d))),
        _ => false,
    }
}

/// Whether a count condition holds, and when it would flip as buckets leave the window.
fn count_holds(c: &Count, profile: &Profile, now: Millis) -> (bool, Option<Millis>) {
    let counter = &c.counter;
    let total = profile
        .features
        .count(counter.id, counter.unit, c.window, now);
    let held = c.cmp.holds(total, c.n);
    if c.window == 0 {
        return (held, None);
    }

    // Walk the buckets still in the window, oldest first: each leaves at the start of the
    // bucket `window` buckets after it; the first departure that changes the answer is the
    // moment this condition lapses.
    let window = i64::from(c.window);
    let oldest = counter.unit.bucket(now) - window;
    let mut remaining = total;
    for &(bucket, n) in profile
        .features
        .buckets(counter.id)
        .iter()
        .filter(|(b, _)| *b > oldest)
    {
        remaining -= u64::from(n);
        if c.cmp.holds(remaining, c.n) != held {
            return (held, Some((bucket + window) * counter.unit.millis()));
        }
    }
    (held, None)
}

/// Whether a recency condition holds, and when it flips with no new event.
fn seen_holds(which: Which, when: When, profile: &Profile, now: Millis) -> (bool, Option<Millis>) {
    let seen = match which {
        Which::First => profile.first_seen,
        Which::Last => profile.last_seen,
    };
    match when {
        When::Within(span) => {
            let held = now < seen + span;
            (held, held.then_some(seen + span))
        }
        When::Ago(span) => {
            let held = now >= seen + span;
            (held, (!held).then_some(seen + span))
        }
        When::Before(at) => (seen < at, None),
        When::After(at) => (seen > at, None),
    }
}

fn touch(profile: &Profile, which: Which) -> Option<&Touchpoint> {
    match which {
        Which::First => profile.first_touch.as_ref(),
        Which::Last => profile.last_touch.as_ref(),
    }
}

fn touch_field(touch: Option<&Touchpoint>, field: TouchField) -> Subject<'_> {
    let Some(t) = touch else {
        return Subject::Missing;
    };
    let value = match field {
        TouchField::Channel => Some(t.channel.as_str()),
        TouchField::Source => t.source.as_deref(),
        TouchField::Medium => t.medium.as_deref(),
        TouchField::Campaign => t.campaign.as_deref(),
        TouchField::ClickId => t.click_id.as_deref(),
        TouchField::Referrer => t.referrer.as_deref(),
        TouchField::Landing => t.landing.as_deref(),
    };
    Subject::text(value)
}

/// The explanation of `rule` (written as `source`) for `profile` at `now`: every condition,
/// the profile's value it was tested on, and whether it held.
///
/// Unlike [`holds`], every branch is explained, including those evaluation would skip.
pub fn explain(rule: &Rule, source: &Value, profile: &Profile, now: Millis) -> Value {
    let children = |key: &str, rules: &[Rule]| -> Vec<Value> {
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| explain(r, &source[key][i], profile, now))
            .collect()
    };
    let held_of = |v: &Value| v["held"].as_bool().unwrap_or(false);
    match rule {
        Rule::All(rules) => {
            let parts = children("all", rules);
            let held = parts.iter().all(held_of);
            json!({"all": parts, "held": held})
        }
        Rule::Any(rules) => {
            let parts = children("any", rules);
            let held = parts.iter().any(held_of);
            json!({"any": parts, "held": held})
        }
        Rule::Not(r) => {
            let inner = explain(r, &source["not"], profile, now);
            let held = !held_of(&inner);
            json!({"not": inner, "held": held})
        }
        leaf => {
            let mut lapse = None;
            let held = holds(leaf, profile, now, &mut lapse);
            let mut out =
                json!({"condition": source, "value": observed(leaf, profile, now), "held": held});
            if let Some(at) = lapse {
                out["flipsAt"] = Value::String(format_rfc3339(at));
            }
            out
        }
    }
}

/// The profile's value a leaf condition tests, as JSON.
fn observed(rule: &Rule, profile: &Profile, now: Millis) -> Value {
    match rule {
        Rule::Trait { name, .. } => profile
            .traits
            .get(name)
            .map_or(Value::Null, |t| t.value.clone()),
        Rule::Touch { which, field, .. } => touch_field(touch(profile, *which), *field).to_json(),
        Rule::Count(c) => {
            json!(profile
                .features
                .count(c.counter.id, c.counter.unit, c.window, now))
        }
        Rule::Seen {
            which: Which::First,
            ..
        } => json!(format_rfc3339(profile.first_seen)),
        Rule::Seen {
            which: Which::Last, ..
        } => json!(format_rfc3339(profile.last_seen)),
        Rule::Identified(_) => json!(profile.is_identified()),
        Rule::Country(_) => json!(profile.country),
        Rule::Device(_) => json!(profile.device),
        _ => Value::Null,
    }
}
