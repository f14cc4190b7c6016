//! Evaluating compiled rules against a profile, and when the answer can next change by
//! itself.
//!
//! Besides whether a rule holds, evaluation finds the earliest moment at which one of the
//! conditions it looked at flips with no new event: a page view leaving a 7-day window, a
//! visitor passing 30 days since last seen. That moment becomes the decision's
//! `validUntil`. Evaluation short-circuits (`all` stops at the first condition that fails),
//! which keeps that moment exact: the conditions it skipped cannot change the answer until
//! one it did look at changes first. Each distinct condition is judged at most once per
//! profile and remembered, with its own flip moment, for the other rules that share it.

use serde_json::{json, Value};

use crate::profile::Profile;
use crate::segment::compile::{Leaf, Node, Slots, Step, Tally};
use crate::segment::ops::Subject;
use crate::segment::rule::{Cmp, TouchField, When, Which};
use crate::time::{format_rfc3339, Millis};
use crate::touch::Touchpoint;

/// What evaluation reads: the profile, its looked-up slots, the moment, and the verdicts
/// of the conditions judged so far.
#[derive(Debug, Clone)]
pub struct Ctx<'p> {
    /// The profile.
    pub profile: &'p Profile,
    /// Its traits and counters, by slot.
    pub slots: Slots<'p>,
    /// The moment of evaluation.
    pub now: Millis,
    /// The compiled program's distinct conditions.
    pub leaves: &'p [Leaf],
    memo: Vec<Verdict>,
}

/// A remembered verdict: not judged yet, or whether it held and when it flips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Unknown,
    Known { held: bool, flips: Option<Millis> },
}

impl<'p> Ctx<'p> {
    /// A context for evaluating `leaves` against `profile` at `now`.
    pub fn new(profile: &'p Profile, slots: Slots<'p>, now: Millis, leaves: &'p [Leaf]) -> Ctx<'p> {
        Ctx {
            profile,
            slots,
            now,
            leaves,
            memo: vec![Verdict::Unknown; leaves.len()],
        }
    }

    /// Whether the leaf at `index` holds, and when it flips by itself; judged once.
    fn verdict(&mut self, index: usize) -> (bool, Option<Millis>) {
        if let Some(Verdict::Known { held, flips }) = self.memo.get(index) {
            return (*held, *flips);
        }
        let Some(leaf) = self.leaves.get(index) else {
            return (false, None);
        };
        let (held, flips) = judge_leaf(leaf, self);
        if let Some(slot) = self.memo.get_mut(index) {
            *slot = Verdict::Known { held, flips };
        }
        (held, flips)
    }
}

/// The earliest of two optional moments.
pub fn earliest(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Whether a rule compiled to `steps` holds; lowers `lapse` to the earliest moment a
/// condition that was looked at flips by itself.
pub fn run(steps: &[Step], cx: &mut Ctx<'_>, lapse: &mut Option<Millis>) -> bool {
    let mut answer = false;
    let mut pc = 0;
    while let Some(step) = steps.get(pc) {
        pc += 1;
        match *step {
            Step::Test(i) => {
                let (held, flips) = cx.verdict(i);
                if flips.is_some() {
                    *lapse = earliest(*lapse, flips);
                }
                answer = held;
            }
            Step::Const(b) => answer = b,
            Step::Not => answer = !answer,
            Step::JumpIfFalse(to) if !answer => pc = to,
            Step::JumpIfTrue(to) if answer => pc = to,
            Step::JumpIfFalse(_) | Step::JumpIfTrue(_) => {}
        }
    }
    answer
}

/// Whether a condition holds, and when it flips with no new event.
#[inline(never)]
fn judge_leaf(leaf: &Leaf, cx: &Ctx<'_>) -> (bool, Option<Millis>) {
    let held = match leaf {
        Leaf::Trait { slot, op } => op.holds(Subject::json(cx.slots.trait_value(*slot))),
        Leaf::Touch { which, field, op } => {
            op.holds(touch_field(touch(cx.profile, *which), *field))
        }
        Leaf::Count {
            window,
            unit,
            span,
            cmp,
            n,
        } => {
            let Tally { live, total } = cx.slots.window(*window);
            let held = cmp.holds(total, *n);
            if *span == 0 || !can_flip(*cmp, held, total, *n) {
                return (held, None);
            }

            // Buckets leave the window oldest first, each at the start of the bucket
            // `span` after it; the first departure that changes the answer is the lapse.
            let span = i64::from(*span);
            let mut remaining = total;
            for &(bucket, count) in live {
                remaining -= u64::from(count);
                if cmp.holds(remaining, *n) != held {
                    return (held, Some((bucket + span) * unit.millis()));
                }
            }
            held
        }
        Leaf::Seen { which, when } => return seen_holds(*which, *when, cx.profile, cx.now),
        Leaf::Identified(want) => cx.slots.identified == *want,
        Leaf::Country(codes) => cx
            .profile
            .country
            .as_deref()
            .is_some_and(|c| codes.iter().any(|x| x.eq_ignore_ascii_case(c))),
        Leaf::Device(kinds) => cx
            .profile
            .device
            .as_deref()
            .is_some_and(|d| kinds.iter().any(|x| x.eq_ignore_ascii_case(d))),
    };
    (held, None)
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
/// Unlike [`run`], every branch is explained, including those evaluation would skip.
pub fn explain(node: &Node, source: &Value, cx: &mut Ctx<'_>) -> Value {
    let held_of = |v: &Value| v["held"].as_bool().unwrap_or(false);
    let (key, nodes) = match node {
        Node::All(nodes) => ("all", nodes),
        Node::Any(nodes) => ("any", nodes),
        Node::Not(n) => {
            let inner = explain(n, &source["not"], cx);
            let held = !held_of(&inner);
            return json!({"not": inner, "held": held});
        }
        Node::Leaf(i) => {
            let (held, flips) = cx.verdict(*i);
            let value = cx
                .leaves
                .get(*i)
                .map_or(Value::Null, |leaf| observed(leaf, cx));
            let mut out = json!({"condition": source, "value": value, "held": held});
            if let Some(at) = flips {
                out["flipsAt"] = Value::String(format_rfc3339(at));
            }
            return out;
        }
    };
    let parts: Vec<Value> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| explain(n, &source[key][i], cx))
        .collect();
    let held = if key == "all" {
        parts.iter().all(held_of)
    } else {
        parts.iter().any(held_of)
    };
    json!({ key: parts, "held": held })
}

/// The profile's value a condition tests, as JSON.
fn observed(leaf: &Leaf, cx: &Ctx<'_>) -> Value {
    let p = cx.profile;
    match leaf {
        Leaf::Trait { slot, .. } => cx.slots.trait_value(*slot).cloned().unwrap_or(Value::Null),
        Leaf::Touch { which, field, .. } => touch_field(touch(p, *which), *field).to_json(),
        Leaf::Count { window, .. } => json!(cx.slots.window(*window).total),
        Leaf::Seen {
            which: Which::First,
            ..
        } => json!(format_rfc3339(p.first_seen)),
        Leaf::Seen {
            which: Which::Last, ..
        } => json!(format_rfc3339(p.last_seen)),
        Leaf::Identified(_) => json!(cx.slots.identified),
        Leaf::Country(_) => json!(p.country),
        Leaf::Device(_) => json!(p.device),
    }
}
