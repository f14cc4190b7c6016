//! Segment rules, the features they compile to, and the decisions they produce.
//!
//! A segment is a named rule over a profile, written as JSON (`docs/segments.md`):
//!
//! ```json
//! {"description": "came from paid search and looked at pricing twice",
//!  "rule": {"all": [
//!    {"firstTouch": "medium", "eq": "cpc"},
//!    {"count": {"page": "/pricing", "within": "30d", "gte": 2}}]}}
//! ```
//!
//! [`Segments::compile`] reads every definition ([`rule`]) and gathers the counters the
//! rules need into one [`FeatureSpec`]; each profile keeps only those ([`features`]),
//! updated per event in O(1). [`Segments::evaluate`] then answers which segments a profile
//! is in and until when that answer holds by itself ([`eval`], over the shared, resolved
//! conditions of [`compile`]); [`Segments::update`]
//! re-evaluates only the segments an event could have changed ([`reads`]); the answer is
//! served as a [`Decision`] doc.
//!
//! Bots: a profile whose every event came from a bot (`Profile::bot`) is in no segment,
//! unless the segment's definition opts in with `"includeBots": true`.

pub mod compile;
pub mod decision;
pub mod eval;
pub mod features;
pub mod ops;
pub mod reads;
pub mod rule;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub use decision::{Decision, DecisionError};
pub use features::{CounterSpec, FeatureSpec, Features, Matcher, PathPattern, Unit};
pub use reads::{Reads, Touched};
pub use rule::{Definition, Rule, RuleError};

use crate::event::Event;
use crate::profile::Profile;
use crate::segment::compile::{Node, Program, Step};
use crate::segment::eval::Ctx;
use crate::time::{format_rfc3339, Millis};

/// Which segments a profile is in, and until when that holds with no new event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// The names of the segments the profile is in, sorted.
    pub segments: Vec<String>,
    /// The earliest moment a windowed or recency condition could change a segment's answer
    /// by itself; `None` when no answer lapses.
    pub valid_until: Option<Millis>,
    /// Whether the profile counted as a bot; a change means every segment is evaluated
    /// again.
    #[serde(default)]
    pub bot: bool,
}

/// One compiled segment.
#[derive(Debug, Clone, PartialEq)]
struct Segment {
    definition: Definition,
    node: Node,
    steps: Vec<Step>,
    reads: Reads,
}

/// A workspace's segments, compiled: the rules, sorted by name, and the features they need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Segments {
    segments: Vec<Segment>,
    spec: FeatureSpec,
    program: Program,
}

impl Segments {
    /// Reads and compiles named definitions (the `segments/` files, the admin API's).
    ///
    /// ```
    /// use weft_core::segment::Segments;
    /// let defs = vec![("known".to_owned(), serde_json::json!({"rule": {"identified": true}}))];
    /// let segments = Segments::compile(&defs).unwrap();
    /// assert_eq!(segments.names().collect::<Vec<_>>(), ["known"]);
    /// assert!(segments.spec().is_empty());
    /// ```
    ///
    /// # Errors
    /// The first definition's [`RuleError`], naming the segment and the JSON path at fault,
    /// or [`RuleError::Duplicate`] when two definitions share a name.
    pub fn compile(defs: &[(String, Value)]) -> Result<Segments, RuleError> {
        let parsed = defs
            .iter()
            .map(|(name, doc)| Definition::parse(name, doc))
            .collect::<Result<Vec<_>, _>>()?;
        Segments::from_definitions(parsed)
    }

    /// Compiles definitions already parsed with [`Definition::parse`].
    ///
    /// # Errors
    /// [`RuleError::Duplicate`] when two definitions share a name.
    pub fn from_definitions(mut definitions: Vec<Definition>) -> Result<Segments, RuleError> {
        definitions.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = definitions.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(RuleError::Duplicate(pair[0].name.clone()));
        }
        let mut spec = FeatureSpec::default();
        for def in &definitions {
            def.rule.each_count(&mut |c| {
                spec.add(c.counter.clone());
            });
        }
        let rules: Vec<&Rule> = definitions.iter().map(|d| &d.rule).collect();
        let mut program = Program::new(&rules, &spec);
        let segments = definitions
            .into_iter()
            .map(|definition| {
                let reads = Reads::of(&definition.rule, &spec);
                let node = program.compile(&definition.rule, &spec);
                let steps = node.to_steps();
                Segment {
                    definition,
                    node,
                    steps,
                    reads,
                }
            })
            .collect();
        Ok(Segments {
            segments,
            spec,
            program,
        })
    }

    /// The counters every profile must keep for these rules.
    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }

    /// The segment names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|s| s.definition.name.as_str())
    }

    /// A segment's definition, by name.
    pub fn get(&self, name: &str) -> Option<&Definition> {
        self.find(name).map(|i| &self.segments[i].definition)
    }

    /// How many segments there are.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether there are no segments.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Which segments `profile` is in at `now`, and until when that holds.
    ///
    /// # Limitations
    /// Windowed counts are measured in whole UTC buckets (minutes, hours or days, as the
    /// window was written): `"7d"` covers the current day and the six before it, not
    /// exactly 168 hours. Recency conditions (`lastSeen`, `firstSeen`) are exact.
    pub fn evaluate(&self, profile: &Profile, now: Millis) -> Evaluation {
        let mut out = Evaluation::default();
        self.evaluate_into(profile, now, &mut out);
        out
    }

    /// [`Segments::evaluate`] into an existing evaluation, reusing its name buffers.
    ///
    /// For loops over many profiles (backfill, alarms): after the first few calls, an
    /// evaluation allocates nothing for the names it returns.
    pub fn evaluate_into(&self, profile: &Profile, now: Millis, out: &mut Evaluation) {
        let mut cx = self.context(profile, now);
        let mut valid_until = None;
        let mut members = Members::new(self.segments.len());
        for (i, segment) in self.segments.iter().enumerate() {
            if let Some(true) = judge(segment, &mut cx, &mut valid_until) {
                members.insert(i);
            }
        }
        self.write_names(&members, out);
        out.valid_until = valid_until;
        out.bot = profile.bot;
    }

    /// What `event` changes that these rules read; pass it to [`Segments::update`].
    pub fn touched_by(&self, event: &Event) -> Touched {
        Touched::by(&self.spec, event)
    }

    /// Whether the named segment's rule reads something `touched` changed.
    pub fn reads(&self, name: &str, touched: &Touched) -> bool {
        self.find(name)
            .is_some_and(|i| self.segments[i].reads.is_touched_by(touched))
    }

    /// The evaluation after one event, re-evaluating only the segments whose rules read
    /// what the event `touched`; `previous` is the evaluation before it.
    ///
    /// Falls back to a full [`Segments::evaluate`] when `previous` has lapsed (`now` is at
    /// or past its `valid_until`) or the profile's bot status changed. The `valid_until`
    /// it returns may be earlier than a full evaluation's (a lapse of a segment that was
    /// re-evaluated is kept), never later.
    ///
    /// # Limitations
    /// `previous` must come from these same segment definitions and the same profile:
    /// after a definition changes, a merge or an undo, call [`Segments::evaluate`].
    pub fn update(
        &self,
        previous: &Evaluation,
        profile: &Profile,
        now: Millis,
        touched: &Touched,
    ) -> Evaluation {
        if previous.bot != profile.bot || previous.valid_until.is_some_and(|t| t <= now) {
            return self.evaluate(profile, now);
        }
        let mut valid_until = previous.valid_until;
        let mut members = Members::new(self.segments.len());
        let mut cx = self.context(profile, now);

        // Both lists are sorted by name: walk the previous answer alongside.
        let mut before = previous.segments.iter().peekable();
        for (i, segment) in self.segments.iter().enumerate() {
            let name = segment.definition.name.as_str();
            while before.next_if(|b| b.as_str() < name).is_some() {}
            let was = before.next_if(|b| b.as_str() == name).is_some();
            let member = if segment.reads.is_touched_by(touched) {
                judge(segment, &mut cx, &mut valid_until).unwrap_or(false)
            } else {
                was
            };
            if member {
                members.insert(i);
            }
        }
        let mut out = Evaluation {
            segments: Vec::new(),
            valid_until,
            bot: profile.bot,
        };
        self.write_names(&members, &mut out);
        out
    }

    /// Per segment, whether `profile` is in it at `now` and why: each condition with the
    /// profile's value and whether it held.
    ///
    /// ```json
    /// {"known": {"member": true, "bot": false, "excludedAsBot": false,
    ///   "rule": {"condition": {"identified": true}, "value": true, "held": true}}}
    /// ```
    pub fn explain(&self, profile: &Profile, now: Millis) -> Value {
        let mut cx = self.context(profile, now);
        let mut out = Map::new();
        for segment in &self.segments {
            let def = &segment.definition;
            let mut lapse = None;
            let verdict = judge(segment, &mut cx, &mut lapse);
            let mut entry = json!({
                "member": verdict == Some(true),
                "bot": profile.bot,
                "excludedAsBot": verdict.is_none(),
                "rule": eval::explain(&segment.node, &def.source, &mut cx),
            });
            if let Some(at) = lapse {
                entry["validUntil"] = Value::String(format_rfc3339(at));
            }
            out.insert(def.name.clone(), entry);
        }
        Value::Object(out)
    }

    /// Writes the names of `members` into `out.segments`, reusing its strings.
    fn write_names(&self, members: &Members, out: &mut Evaluation) {
        let count = members.len();
        out.segments.truncate(count);
        out.segments.reserve_exact(count - out.segments.len());
        let names = self
            .segments
            .iter()
            .enumerate()
            .filter(|(i, _)| members.contains(*i));
        for (written, (_, segment)) in names.enumerate() {
            let name = &segment.definition.name;
            match out.segments.get_mut(written) {
                Some(slot) => {
                    slot.clear();
                    slot.push_str(name);
                }
                None => out.segments.push(name.clone()),
            }
        }
    }

    fn context<'p>(&'p self, profile: &'p Profile, now: Millis) -> Ctx<'p> {
        let slots = self.program.slots(profile, &self.spec, now);
        Ctx::new(profile, slots, now, self.program.leaves())
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.segments
            .binary_search_by(|s| s.definition.name.as_str().cmp(name))
            .ok()
    }
}

/// Whether the profile is in the segment (`None`: excluded as a bot).
fn judge(segment: &Segment, cx: &mut Ctx<'_>, lapse: &mut Option<Millis>) -> Option<bool> {
    if cx.profile.bot && !segment.definition.include_bots {
        return None;
    }
    Some(eval::run(&segment.steps, cx, lapse))
}

/// A set of segment indexes; on the stack for up to 256 segments.
enum Members {
    Small([u64; 4]),
    Large(Vec<u64>),
}

impl Members {
    fn new(segments: usize) -> Members {
        let words = segments.div_ceil(64);
        if words <= 4 {
            Members::Small([0; 4])
        } else {
            Members::Large(vec![0; words])
        }
    }

    fn words(&self) -> &[u64] {
        match self {
            Members::Small(w) => w,
            Members::Large(w) => w,
        }
    }

    fn insert(&mut self, i: usize) {
        let words = match self {
            Members::Small(w) => &mut w[..],
            Members::Large(w) => &mut w[..],
        };
        if let Some(word) = words.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }

    fn contains(&self, i: usize) -> bool {
        self.words()
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn len(&self) -> usize {
        self.words().iter().map(|w| w.count_ones() as usize).sum()
    }
}
