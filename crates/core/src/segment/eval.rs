//! Evaluating a compiled rule against a profile, and when the answer can next change by
//! itself.
//!
//! Besides whether a rule holds, evaluation finds the earliest moment at which one of the
//! conditions it looked at flips with no new event: a page view leaving a 7-day window, a
//! visitor passing 30 days since last seen. That moment becomes the decision's
//! `validUntil`. Evaluation short-circuits (`all` stops at the first condition that fails),
//! which keeps that moment exact: the conditions it skipped cannot change the answer until
//! one it did look at changes first.

use serde_json::{json, Value};

use crate::profile::Profile;
use crate::segment::compile::{Node, Slots, Tally};
use crate::segment::ops::Subject;
use crate::segment::rule::{Cmp, TouchField, When, Which};
use crate::time::{format_rfc3339, Millis};
use crate::touch::Touchpoint;

/// What evaluation reads: the profile, its looked-up slots, and the moment.
#[derive(Debug, Clone)]
pub struct Ctx<'p> {
    /// The profile.
    pub profile: &'p Profile,
    /// Its traits and counters, by slot.
    pub slots: Slots<'p>,
    /// The moment of evaluation.
    pub now: Millis,
}

/// The earliest of two optional moments.
pub fn earliest(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Whether `node` holds; lowers `lapse` to the earliest moment a condition that was
/// looked at flips by itself.
pub fn holds(node: &Node, cx: &Ctx<'_>, lapse: &mut Option<Millis>) -> bool {
    match node {
        Node::All(nodes) => nodes.iter().all(|n| holds(n, cx, lapse)),
        Node::Any(nodes) => nodes.iter().any(|n| holds(n, cx, lapse)),
        Node::Not(n) => !holds(n, cx, lapse),
        Node::Trait { slot, op } => op.holds(Subject::json(cx.slots.trait_value(*slot))),
        Node::Touch { which, field, op } => {
            op.holds(touch_field(touch(cx.profile, *which), *field))
        }
        Node::Count {
            window,
            unit,
            span,
            cmp,
            n,
        } => {
            let Tally { live, total } = cx.slots.window(*window);
            let held = cmp.holds(total, *n);
            if *span > 0 && can_flip(*cmp, held, total, *n) {
                // Buckets leave the window oldest first, each at the start of the bucket
                // `span` after it; the first departure that changes the answer is the
                // lapse. Departures later than the lapse already found cannot lower it.
                let span = i64::from(*span);
                let mut remaining = total;
                for &(bucket, count) in live {
                    let leaves = (bucket + span) * unit.millis();
                    if lapse.is_some_and(|l| leaves >= l) {
                        break;
                    }
                    remaining -= u64::from(count);
                    if cmp.holds(remaining, *n) != held {
                        *lapse = Some(leaves);
                        break;
                    }
                }
            }
            held
        }
        Node::Seen { which, when } => {
            let (held, flips) = seen_holds(*which, *when, cx.profile, cx.now);
            *lapse = earliest(*lapse, flips);
            held
        }
        Node::Identified(want) => cx.slots.identified == *want,
        Node::Country(codes) => cx
            .profile
            .country
            .as_deref()
            .is_some_and(|c| codes.iter().any(|x| x.eq_ignore_ascii_case(c))),
        Node::Device(kinds) => cx
            .profile
            .device
            .as_deref()
            .is_some_and(|d| kinds.iter().any(|x| x.eq_ignore_ascii_case(d))),
    }
}

/// Whether a count's answer can change as buckets leave its window (counts only fall).
fn can_flip(cmp: Cmp, held: bool, total: u64, n: u64) -> bool {
    match cmp {
        Cmp::Gte | Cmp::Gt => held,
        Cmp::Lte | Cmp::Lt => !held,
        Cmp::Eq => total > n || (held && n > 0),
    }
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

/// The explanation of `node` (written as `source`): every condition, the profile's value
/// it was tested on, whether it held, and when it flips by itself (`flipsAt`).
///
/// Unlike [`holds`], every branch is explained, including those evaluation would skip.
pub fn explain(node: &Node, source: &Value, cx: &Ctx<'_>) -> Value {
    let children = |key: &str, nodes: &[Node]| -> Vec<Value> {
        nodes
            .iter()
            .enumerate()
            .map(|(i, n)| explain(n, &source[key][i], cx))
            .collect()
    };
    let held_of = |v: &Value| v["held"].as_bool().unwrap_or(false);
    match node {
        Node::All(nodes) => {
            let parts = children("all", nodes);
            let held = parts.iter().all(held_of);
            json!({"all": parts, "held": held})
        }
        Node::Any(nodes) => {
            let parts = children("any", nodes);
            let held = parts.iter().any(held_of);
            json!({"any": parts, "held": held})
        }
        Node::Not(n) => {
            let inner = explain(n, &source["not"], cx);
            let held = !held_of(&inner);
            json!({"not": inner, "held": held})
        }
        leaf => {
            let mut lapse = None;
            let held = holds(leaf, cx, &mut lapse);
            let mut out = json!({"condition": source, "value": observed(leaf, cx), "held": held});
            if let Some(at) = lapse {
                out["flipsAt"] = Value::String(format_rfc3339(at));
            }
            out
        }
    }
}

/// The profile's value a leaf condition tests, as JSON.
fn observed(node: &Node, cx: &Ctx<'_>) -> Value {
    let p = cx.profile;
    match node {
        Node::Trait { slot, .. } => cx.slots.trait_value(*slot).cloned().unwrap_or(Value::Null),
        Node::Touch { which, field, .. } => touch_field(touch(p, *which), *field).to_json(),
        Node::Count { window, .. } => json!(cx.slots.window(*window).total),
        Node::Seen {
            which: Which::First,
            ..
        } => json!(format_rfc3339(p.first_seen)),
        Node::Seen {
            which: Which::Last, ..
        } => json!(format_rfc3339(p.last_seen)),
        Node::Identified(_) => json!(cx.slots.identified),
        Node::Country(_) => json!(p.country),
        Node::Device(_) => json!(p.device),
        Node::All(_) | Node::Any(_) | Node::Not(_) => Value::Null,
    }
}
