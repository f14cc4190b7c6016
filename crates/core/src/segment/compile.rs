//! Compiling parsed rules into the form evaluation runs: shared conditions, resolved slots.
//!
//! A parsed [`Rule`] names traits by string and counters by id, and fifty rules repeat
//! many of the same conditions. Evaluating them in a couple of microseconds leaves no room
//! for a map lookup per condition, so compilation
//! - stores every distinct condition once ([`Leaf`]); rules become trees of
//!   `all`/`any`/`not` over leaf indexes ([`Node`]), and evaluation judges each leaf at
//!   most once per profile;
//! - gives every trait name a slot and every counter-and-window pair a [`Window`];
//!   evaluation looks each up once per profile ([`Slots`]) and the leaves read arrays.

use std::cmp::Ordering;

use serde_json::Value;

use crate::profile::Profile;
use crate::segment::features::{FeatureSpec, Unit};
use crate::segment::ops::Op;
use crate::segment::rule::{Cmp, Count, Rule, TouchField, When, Which};
use crate::time::Millis;

/// A compiled rule: a tree of combinators over shared leaves.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Every node holds.
    All(Box<[Node]>),
    /// At least one node holds.
    Any(Box<[Node]>),
    /// The node does not hold.
    Not(Box<Node>),
    /// The condition at this index of [`Program::leaves`].
    Leaf(usize),
}

/// One step of a rule compiled to straight-line code, for [`crate::segment::eval::run`].
///
/// Evaluation keeps one boolean, the answer so far: `all` jumps to its end on the first
/// false, `any` on the first true, so short-circuiting needs no recursion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The answer is the verdict of this leaf.
    Test(usize),
    /// The answer is this constant (an empty `all` or `any`).
    Const(bool),
    /// The answer is negated.
    Not,
    /// Go to this step when the answer is false.
    JumpIfFalse(usize),
    /// Go to this step when the answer is true.
    JumpIfTrue(usize),
}

impl Node {
    /// The node as straight-line [`Step`]s.
    pub fn to_steps(&self) -> Vec<Step> {
        let mut steps = Vec::new();
        self.emit(&mut steps);
        steps
    }

    fn emit(&self, steps: &mut Vec<Step>) {
        let (nodes, all) = match self {
            Node::Leaf(i) => return steps.push(Step::Test(*i)),
            Node::Not(n) => {
                n.emit(steps);
                return steps.push(Step::Not);
            }
            Node::All(nodes) => (nodes, true),
            Node::Any(nodes) => (nodes, false),
        };
        if nodes.is_empty() {
            return steps.push(Step::Const(all));
        }

        // Each jump out of the list is patched to the list's end once it is known.
        let mut jumps = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            node.emit(steps);
            if i + 1 < nodes.len() {
                jumps.push(steps.len());
                steps.push(if all {
                    Step::JumpIfFalse(0)
                } else {
                    Step::JumpIfTrue(0)
                });
            }
        }
        let end = steps.len();
        for j in jumps {
            steps[j] = if all {
                Step::JumpIfFalse(end)
            } else {
                Step::JumpIfTrue(end)
            };
        }
    }
}

/// One distinct condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    /// The trait in `slot` compared with `op`.
    Trait {
        /// Index into [`Program::traits`].
        slot: usize,
        /// The comparison.
        op: Op,
    },
    /// A touchpoint field compared with `op`.
    Touch {
        /// First or last touch.
        which: Which,
        /// The field.
        field: TouchField,
        /// The comparison.
        op: Op,
    },
    /// A counter's total over a window, compared with `n`.
    Count {
        /// Index into [`Program::windows`].
        window: usize,
        /// The counter's bucket size.
        unit: Unit,
        /// Window length in buckets (0: all time).
        span: u32,
        /// The comparison.
        cmp: Cmp,
        /// The number compared with.
        n: u64,
    },
    /// A recency test.
    Seen {
        /// First or last seen.
        which: Which,
        /// The test.
        when: When,
    },
    /// Identified or anonymous.
    Identified(bool),
    /// Country in the list.
    Country(Box<[String]>),
    /// Device type in the list.
    Device(Box<[String]>),
}

/// The distinct conditions, trait names and count windows that rules read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Program {
    traits: Vec<String>,
    windows: Vec<Window>,
    leaves: Vec<Leaf>,
}

/// One counter over one window; rules that count the same thing over the same window share
/// it, so its total is summed once per profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Index into [`FeatureSpec::counters`].
    pub counter: usize,
    /// The counter's bucket size.
    pub unit: Unit,
    /// Length in buckets (0: all time).
    pub span: u32,
}

impl Program {
    /// A program for these rules, whose counters must already be in `spec`.
    pub fn new(rules: &[&Rule], spec: &FeatureSpec) -> Program {
        let mut traits = Vec::new();
        let mut windows = Vec::new();
        for rule in rules {
            collect(rule, spec, &mut traits, &mut windows);
        }
        traits.sort_unstable();
        traits.dedup();
        Program {
            traits,
            windows,
            leaves: Vec::new(),
        }
    }

    /// The distinct conditions, by index.
    pub fn leaves(&self) -> &[Leaf] {
        &self.leaves
    }

    /// The count windows, by slot.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// The trait names, by slot.
    pub fn traits(&self) -> &[String] {
        &self.traits
    }

    /// Compiles `rule`, adding its new conditions; its counters must already be in
    /// `spec`.
    pub fn compile(&mut self, rule: &Rule, spec: &FeatureSpec) -> Node {
        let leaf = match rule {
            Rule::All(rules) => {
                return Node::All(rules.iter().map(|r| self.compile(r, spec)).collect())
            }
            Rule::Any(rules) => {
                return Node::Any(rules.iter().map(|r| self.compile(r, spec)).collect())
            }
            Rule::Not(r) => return Node::Not(Box::new(self.compile(r, spec))),
            Rule::Trait { name, op } => Leaf::Trait {
                slot: self.traits.binary_search(name).unwrap_or(usize::MAX),
                op: op.clone(),
            },
            Rule::Touch { which, field, op } => Leaf::Touch {
                which: *which,
                field: *field,
                op: op.clone(),
            },
            Rule::Count(c) => Leaf::Count {
                window: self
                    .windows
                    .iter()
                    .position(|w| *w == window_of(c, spec))
                    .unwrap_or(usize::MAX),
                unit: c.counter.unit,
                span: c.window,
                cmp: c.cmp,
                n: c.n,
            },
            Rule::Seen { which, when } => Leaf::Seen {
                which: *which,
                when: *when,
            },
            Rule::Identified(b) => Leaf::Identified(*b),
            Rule::Country(codes) => Leaf::Country(codes.clone().into_boxed_slice()),
            Rule::Device(kinds) => Leaf::Device(kinds.clone().into_boxed_slice()),
        };
        let index = match self.leaves.iter().position(|l| *l == leaf) {
            Some(i) => i,
            None => {
                self.leaves.push(leaf);
                self.leaves.len() - 1
            }
        };
        Node::Leaf(index)
    }

    /// Looks up, once, every trait and counter the compiled rules read in `profile`.
    pub fn slots<'p>(&self, profile: &'p Profile, spec: &FeatureSpec, now: Millis) -> Slots<'p> {
        // Both the slot names and the profile's traits are sorted: one merge pass.
        let mut traits = Vec::with_capacity(self.traits.len());
        let mut theirs = profile.traits.iter();
        let mut next = theirs.next();
        for name in &self.traits {
            let value = loop {
                let Some((key, t)) = next else { break None };
                match key.as_str().cmp(name.as_str()) {
                    Ordering::Less => next = theirs.next(),
                    Ordering::Equal => {
                        next = theirs.next();
                        break Some(&t.value);
                    }
                    Ordering::Greater => break None,
                }
            };
            traits.push(value);
        }
        let now_bucket = |w: &Window| w.unit.bucket(now);
        let windows = self
            .windows
            .iter()
            .map(|w| {
                let all = spec
                    .counters()
                    .get(w.counter)
                    .map_or(&[][..], |c| profile.features.buckets(c.id));
                let live = if w.span == 0 {
                    all
                } else {
                    let oldest = now_bucket(w) - i64::from(w.span);
                    &all[all.partition_point(|&(b, _)| b <= oldest)..]
                };
                Tally {
                    live,
                    total: live.iter().map(|&(_, c)| u64::from(c)).sum(),
                }
            })
            .collect();
        Slots {
            traits,
            windows,
            identified: profile.is_identified(),
        }
    }
}

/// One profile's values for a program's slots.
#[derive(Debug, Clone)]
pub struct Slots<'p> {
    /// Trait values by slot (`None`: the profile lacks the trait).
    pub traits: Vec<Option<&'p Value>>,
    /// Each window's buckets and total at the moment of evaluation, by window slot.
    pub windows: Vec<Tally<'p>>,
    /// Whether the profile holds a user id.
    pub identified: bool,
}

impl<'p> Slots<'p> {
    /// The trait in `slot`.
    pub fn trait_value(&self, slot: usize) -> Option<&'p Value> {
        self.traits.get(slot).copied().flatten()
    }

    /// The tally of the window in `slot`.
    pub fn window(&self, slot: usize) -> Tally<'p> {
        self.windows.get(slot).copied().unwrap_or_default()
    }
}

/// A counter's buckets inside one window, and their total.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally<'p> {
    /// The buckets still in the window, oldest first.
    pub live: &'p [(i64, u32)],
    /// Their total.
    pub total: u64,
}

fn window_of(count: &Count, spec: &FeatureSpec) -> Window {
    Window {
        counter: spec
            .counters()
            .iter()
            .position(|x| x.id == count.counter.id)
            .unwrap_or(usize::MAX),
        unit: count.counter.unit,
        span: count.window,
    }
}

fn collect(rule: &Rule, spec: &FeatureSpec, traits: &mut Vec<String>, windows: &mut Vec<Window>) {
    match rule {
        Rule::All(rules) | Rule::Any(rules) => {
            rules.iter().for_each(|r| collect(r, spec, traits, windows))
        }
        Rule::Not(r) => collect(r, spec, traits, windows),
        Rule::Trait { name, .. } => traits.push(name.clone()),
        Rule::Count(c) => {
            let w = window_of(c, spec);
            if !windows.contains(&w) {
                windows.push(w);
            }
        }
        _ => {}
    }
}
