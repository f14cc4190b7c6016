//! The rule language: a segment definition's JSON read into a [`Rule`] tree.
//!
//! Parsing is strict and names the JSON path at fault, because definitions are written by
//! hand and arrive over the admin API: an unknown key, a misspelt operator or a duration
//! like `"7 days"` is an error such as
//! `segment "x": rule.all[1].count.within: expected a duration like "7d" (got "7 days")`,
//! never a rule that silently matches nobody. `docs/segments.md` describes the language
//! with examples; `docs/segment.schema.json` is its JSON Schema.

use serde_json::{Map, Value};

use crate::segment::features::{CounterSpec, Matcher, PathPattern, Unit};
use crate::segment::ops::{self, Op};
use crate::time::{parse_rfc3339, Millis, DAY, HOUR, MINUTE};

/// Rules nested deeper than this are refused, so a definition cannot exhaust the stack.
pub const MAX_DEPTH: usize = 32;

/// Why a segment definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// A part of the definition is wrong; `path` is the JSON path from the definition's
    /// root (`rule.all[1].count.within`), or `definition` for the whole document.
    #[error("segment {segment:?}: {path}: {message}")]
    Invalid {
        /// The segment's name.
        segment: String,
        /// Where in the definition.
        path: String,
        /// What is wrong, with the value found.
        message: String,
    },
    /// The name cannot be used in KV keys and URLs.
    #[error("segment name {0:?} is not allowed: use 1 to 64 letters, digits, '-' or '_'")]
    Name(String),
    /// Two definitions share a name.
    #[error("segment {0:?} is defined twice")]
    Duplicate(String),
}

/// One segment definition, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// The segment's name (from the file name or the admin API path).
    pub name: String,
    /// What the segment is for, in the operator's words.
    pub description: Option<String>,
    /// Whether profiles judged to be bots may be members (off unless written
    /// `"includeBots": true`).
    pub include_bots: bool,
    /// The rule.
    pub rule: Rule,
    /// The rule's JSON as written, for explanations.
    pub source: Value,
}

/// A condition over a profile, or a combination of conditions.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Rule {
    /// Every condition holds (an empty list holds).
    All(Vec<Rule>),
    /// At least one condition holds (an empty list does not).
    Any(Vec<Rule>),
    /// The condition does not hold.
    Not(Box<Rule>),
    /// A trait compared with an operator: `{"trait": "plan", "eq": "pro"}`.
    Trait {
        /// The trait's name.
        name: String,
        /// The comparison.
        op: Op,
    },
    /// A field of the first or last touchpoint: `{"firstTouch": "medium", "eq": "cpc"}`.
    Touch {
        /// Which touchpoint.
        which: Which,
        /// Which field of it.
        field: TouchField,
        /// The comparison.
        op: Op,
    },
    /// A count of events or page views, within a window or over all time.
    Count(Count),
    /// When the profile was first or last seen: `{"lastSeen": {"within": "7d"}}`.
    Seen {
        /// First or last seen.
        which: Which,
        /// The test.
        when: When,
    },
    /// The profile holds a user id (`true`) or does not (`false`).
    Identified(bool),
    /// The latest known country is one of these ISO codes (upper case).
    Country(Vec<String>),
    /// The latest known device type is one of these (`desktop`, `mobile`, `tablet`, `bot`).
    Device(Vec<String>),
}

/// First or last (touchpoint, time seen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The earliest.
    First,
    /// The latest.
    Last,
}

/// A touchpoint field a rule can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchField {
    /// `direct`, `paid_search`, `email`, ...
    Channel,
    /// `utm_source` or the referring host.
    Source,
    /// `utm_medium`.
    Medium,
    /// `utm_campaign`.
    Campaign,
    /// The click id parameter's name (`gclid`, ...); test presence with `exists`.
    ClickId,
    /// The referring host.
    Referrer,
    /// The landing page's path.
    Landing,
}

/// The touchpoint fields by their names in rules.
pub const TOUCH_FIELDS: [(&str, TouchField); 7] = [
    ("channel", TouchField::Channel),
    ("source", TouchField::Source),
    ("medium", TouchField::Medium),
    ("campaign", TouchField::Campaign),
    ("clickId", TouchField::ClickId),
    ("referrer", TouchField::Referrer),
    ("landing", TouchField::Landing),
];

/// A counted condition: `{"count": {"page": "/pricing", "within": "30d", "gte": 2}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    /// The counter that keeps the number; its `keep` is this window's bucket count.
    pub counter: CounterSpec,
    /// The window in buckets of `counter.unit` (0 for a count over all time).
    pub window: u32,
    /// How the count is compared.
    pub cmp: Cmp,
    /// The number it is compared with.
    pub n: u64,
}

/// A count comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// At least.
    Gte,
    /// More than.
    Gt,
    /// At most.
    Lte,
    /// Fewer than.
    Lt,
    /// Exactly.
    Eq,
}

impl Cmp {
    const NAMES: [(&'static str, Cmp); 5] = [
        ("gte", Cmp::Gte),
        ("gt", Cmp::Gt),
        ("lte", Cmp::Lte),
        ("lt", Cmp::Lt),
        ("eq", Cmp::Eq),
    ];

    /// Whether `count` compares right with `n`.
    pub fn holds(self, count: u64, n: u64) -> bool {
        match self {
            Cmp::Gte => count >= n,
            Cmp::Gt => count > n,
            Cmp::Lte => count <= n,
            Cmp::Lt => count < n,
            Cmp::Eq => count == n,
        }
    }
}

/// A recency test on first or last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Less than this long ago.
    Within(Millis),
    /// At least this long ago.
    Ago(Millis),
    /// Before this instant.
    Before(Millis),
    /// After this instant.
    After(Millis),
}

const CONDITIONS: [&str; 12] = [
    "all",
    "any",
    "not",
    "trait",
    "firstTouch",
    "lastTouch",
    "count",
    "firstSeen",
    "lastSeen",
    "identified",
    "country",
    "device",
];

const DEVICES: [&str; 4] = ["desktop", "mobile", "tablet", "bot"];

/// Whether a segment name can be used in KV keys and URLs.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Definition {
    /// Reads one definition document, e.g. for `PUT /admin/segments/<name>`.
    ///
    /// ```
    /// use weft_core::segment::Definition;
    /// let doc = serde_json::json!({"rule": {"lastTouch": "medium", "eq": "email"}});
    /// assert!(Definition::parse("from-email", &doc).is_ok());
    /// let bad = serde_json::json!({"rule": {"lastSeen": {"within": "7 days"}}});
    /// assert_eq!(
    ///     Definition::parse("x", &bad).unwrap_err().to_string(),
    ///     r#"segment "x": rule.lastSeen.within: expected a duration like "7d" (got "7 days")"#
    /// );
    /// ```
    ///
    /// # Errors
    /// [`RuleError::Name`] for a name unfit for keys and URLs, [`RuleError::Invalid`]
    /// naming the JSON path at fault otherwise.
    pub fn parse(name: &str, doc: &Value) -> Result<Definition, RuleError> {
        if !is_valid_name(name) {
            return Err(RuleError::Name(name.to_owned()));
        }
        let fail = |(path, message): (String, String)| RuleError::Invalid {
            segment: name.to_owned(),
            path: if path.is_empty() {
                "definition".to_owned()
            } else {
                path
            },
            message,
        };
        let obj = object(doc, "").map_err(fail)?;
        only_keys(
            obj,
            "",
            &["rule", "description", "includeBots", "name", "$schema"],
        )
        .map_err(fail)?;
        if let Some(written) = obj.get("name") {
            if written.as_str() != Some(name) {
                return Err(fail((
                    "name".into(),
                    format!(
                        "does not match the segment's name {name:?} (got {})",
                        ops::show(written)
                    ),
                )));
            }
        }
        let description = match obj.get("description") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(fail((
                    "description".into(),
                    format!("expected a string (got {})", ops::show(other)),
                )))
            }
        };
        let include_bots = match obj.get("includeBots") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(fail((
                    "includeBots".into(),
                    format!("expected true or false (got {})", ops::show(other)),
                )))
            }
        };
        let source = obj
            .get("rule")
            .ok_or_else(|| fail((String::new(), "missing key \"rule\"".into())))?;
        let rule = parse_rule(source, "rule", 0).map_err(fail)?;
        Ok(Definition {
            name: name.to_owned(),
            description,
            include_bots,
            rule,
            source: source.clone(),
        })
    }
}

type Fault = (String, String);

fn err<T>(path: &str, message: impl Into<String>) -> Result<T, Fault> {
    Err((path.to_owned(), message.into()))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Fault> {
    value.as_object().map_or_else(
        || {
            err(
                path,
                format!("expected an object (got {})", ops::show(value)),
            )
        },
        Ok,
    )
}

fn only_keys(obj: &Map<String, Value>, path: &str, allowed: &[&str]) -> Result<(), Fault> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => err(
            &join(path, k),
            format!("unknown key {k:?} (expected one of {})", allowed.join(", ")),
        ),
        None => Ok(()),
    }
}

fn text<'a>(value: &'a Value, path: &str) -> Result<&'a str, Fault> {
    match value {
        Value::String(s) if !s.is_empty() => Ok(s),
        other => err(
            path,
            format!("expected a non-empty string (got {})", ops::show(other)),
        ),
    }
}

/// Parses one rule node at `path`.
fn parse_rule(value: &Value, path: &str, depth: usize) -> Result<Rule, Fault> {
    if depth > MAX_DEPTH {
        return err(path, format!("rules nest deeper than {MAX_DEPTH} levels"));
    }
    let obj = object(value, path)?;
    let mut kinds = obj.keys().filter(|k| CONDITIONS.contains(&k.as_str()));
    let kind = match (kinds.next(), kinds.next()) {
        (Some(k), None) => k.as_str(),
        (Some(a), Some(b)) => {
            return err(
                path,
                format!(
                "one condition per object (got both {a:?} and {b:?}); combine them with \"all\""
            ),
            )
        }
        (None, _) => {
            let got = obj
                .keys()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            return err(
                path,
                format!(
                    "expected a condition, one of {} (got keys {})",
                    CONDITIONS.join(", "),
                    if got.is_empty() { "none".into() } else { got }
                ),
            );
        }
    };
    let here = join(path, kind);
    let inner = &obj[kind];
    match kind {
        "all" | "any" => {
            only_keys(obj, path, &[kind])?;
            let Value::Array(items) = inner else {
                return err(
                    &here,
                    format!("expected a list of conditions (got {})", ops::show(inner)),
                );
            };
            let rules = items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_rule(item, &format!("{here}[{i}]"), depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if kind == "all" {
                Rule::All(rules)
            } else {
                Rule::Any(rules)
            })
        }
        "not" => {
            only_keys(obj, path, &["not"])?;
            Ok(Rule::Not(Box::new(parse_rule(inner, &here, depth + 1)?)))
        }
        "trait" => {
            let name = text(inner, &here)?.to_owned();
            Ok(Rule::Trait {
                name,
                op: one_op(obj, path, "trait")?,
            })
        }
        "firstTouch" | "lastTouch" => {
            let which = if kind == "firstTouch" {
                Which::First
            } else {
                Which::Last
            };
            let field = match TOUCH_FIELDS
                .iter()
                .find(|(n, _)| Some(*n) == inner.as_str())
            {
                Some(&(_, field)) => field,
                None => {
                    let names: Vec<&str> = TOUCH_FIELDS.iter().map(|(n, _)| *n).collect();
                    return err(
                        &here,
                        format!(
                            "expected a touchpoint field, one of {} (got {})",
                            names.join(", "),
                            ops::show(inner)
                        ),
                    );
                }
            };
            Ok(Rule::Touch {
                which,
                field,
                op: one_op(obj, path, kind)?,
            })
        }
        "count" => {
            only_keys(obj, path, &["count"])?;
            Ok(Rule::Count(parse_count(inner, &here)?))
        }
        "firstSeen" | "lastSeen" => {
            only_keys(obj, path, &[kind])?;
            let which = if kind == "firstSeen" {
                Which::First
            } else {
                Which::Last
            };
            Ok(Rule::Seen {
                which,
                when: parse_when(inner, &here)?,
            })
        }
        "identified" => {
            only_keys(obj, path, &["identified"])?;
            match inner {
                Value::Bool(b) => Ok(Rule::Identified(*b)),
                other => err(
                    &here,
                    format!("expected true or false (got {})", ops::show(other)),
                ),
            }
        }
        _ => {
            only_keys(obj, path, &[kind])?;
            let values = one_or_list(inner, &here)?;
            if kind == "country" {
                for (v, p) in &values {
                    if v.len() != 2 || !v.bytes().all(|b| b.is_ascii_alphabetic()) {
                        return err(
                            p,
                            format!("expected a two-letter country code like \"DE\" (got {v:?})"),
                        );
                    }
                }
                Ok(Rule::Country(
                    values
                        .into_iter()
                        .map(|(v, _)| v.to_ascii_uppercase())
                        .collect(),
                ))
            } else {
                for (v, p) in &values {
                    if !DEVICES.contains(&v.as_str()) {
                        return err(
                            p,
                            format!(
                                "expected a device type, one of {} (got {v:?})",
                                DEVICES.join(", ")
                            ),
                        );
                    }
                }
                Ok(Rule::Device(values.into_iter().map(|(v, _)| v).collect()))
            }
        }
    }
}

/// The one operator key beside a subject key (`trait`, `firstTouch`, ...).
fn one_op(obj: &Map<String, Value>, path: &str, subject: &str) -> Result<Op, Fault> {
    let mut found = None;
    for (key, value) in obj {
        if key == subject {
            continue;
        }
        if !ops::NAMES.contains(&key.as_str()) {
            return err(
                &join(path, key),
                format!(
                    "unknown key {key:?} (expected an operator, one of {})",
                    ops::NAMES.join(", ")
                ),
            );
        }
        if found.is_some() {
            return err(
                path,
                format!(
                    "expected exactly one operator beside {subject:?} (got several); \
                     combine them with \"all\""
                ),
            );
        }
        found = Some(Op::parse(key, value).map_err(|m| (join(path, key), m))?);
    }
    found.map_or_else(
        || {
            err(
                path,
                format!(
                    "expected an operator beside {subject:?}, one of {}",
                    ops::NAMES.join(", ")
                ),
            )
        },
        Ok,
    )
}

fn one_or_list(value: &Value, path: &str) -> Result<Vec<(String, String)>, Fault> {
    match value {
        Value::String(s) => Ok(vec![(s.clone(), path.to_owned())]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let p = format!("{path}[{i}]");
                text(item, &p).map(|s| (s.to_owned(), p))
            })
            .collect(),
        other => err(
            path,
            format!(
                "expected a string or a non-empty list of strings (got {})",
                ops::show(other)
            ),
        ),
    }
}

fn parse_count(value: &Value, path: &str) -> Result<Count, Fault> {
    let obj = object(value, path)?;
    only_keys(
        obj,
        path,
        &[
            "event", "page", "within", "where", "gte", "gt", "lte", "lt", "eq",
        ],
    )?;
    let matcher = match (obj.get("event"), obj.get("page")) {
        (Some(e), None) => Matcher::Event(text(e, &join(path, "event"))?.to_owned()),
        (None, Some(p)) => {
            let pattern = text(p, &join(path, "page"))?;
            if !pattern.starts_with('/') {
                return err(
                    &join(path, "page"),
                    format!("expected a path starting with '/' (got {pattern:?})"),
                );
            }
            Matcher::Page(PathPattern::parse(pattern))
        }
        (Some(_), Some(_)) => return err(path, "count either \"event\" or \"page\", not both"),
        (None, None) => {
            return err(
                path,
                "expected \"event\" (a track event's name) or \"page\" (a path prefix or glob)",
            )
        }
    };
    let (unit, window) = match obj.get("within") {
        None => (Unit::Lifetime, 0),
        Some(w) => window(w, &join(path, "within"))?,
    };
    let mut filters = Vec::new();
    if let Some(w) = obj.get("where") {
        let here = join(path, "where");
        for (prop, cond) in object(w, &here)? {
            let p = join(&here, prop);
            let op = match cond {
                Value::Object(ops_obj) => {
                    let mut it = ops_obj.iter();
                    match (it.next(), it.next()) {
                        (Some((name, operand)), None) => {
                            Op::parse(name, operand).map_err(|m| (join(&p, name), m))?
                        }
                        _ => {
                            return err(
                                &p,
                                format!(
                                    "expected one operator like {{\"eq\": ...}} (got {})",
                                    ops::show(cond)
                                ),
                            )
                        }
                    }
                }
                other => Op::parse("eq", other).map_err(|m| (p.clone(), m))?,
            };
            filters.push((prop.clone(), op));
        }
    }
    let mut cmps = Cmp::NAMES.iter().filter(|(n, _)| obj.contains_key(*n));
    let (name, cmp) = match (cmps.next(), cmps.next()) {
        (Some(&(n, c)), None) => (n, c),
        (Some(_), Some(_)) => {
            return err(
                path,
                "expected exactly one comparison of gte, gt, lte, lt, eq (got several)",
            )
        }
        (None, _) => {
            return err(
                path,
                "expected a comparison: one of gte, gt, lte, lt, eq with a count",
            )
        }
    };
    let n = obj[name].as_u64().map_or_else(
        || {
            err(
                &join(path, name),
                format!(
                    "expected a whole number of at least 0 (got {})",
                    ops::show(&obj[name])
                ),
            )
        },
        Ok,
    )?;
    Ok(Count {
        counter: CounterSpec::new(matcher, filters, unit, window),
        window,
        cmp,
        n,
    })
}

/// Reads a duration (`30m`, `12h`, `7d`, `2w`) as a number and its unit's length.
fn duration(value: &Value, path: &str) -> Result<(u64, char), Fault> {
    let bad = || {
        err(
            path,
            format!("expected a duration like \"7d\" (got {})", ops::show(value)),
        )
    };
    let Some(s) = value.as_str() else {
        return bad();
    };
    let Some(unit) = s
        .chars()
        .last()
        .filter(|c| matches!(c, 'm' | 'h' | 'd' | 'w'))
    else {
        return bad();
    };
    let digits = &s[..s.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 6 {
        return bad();
    }
    match digits.parse::<u64>() {
        Ok(0) => err(
            path,
            format!("a duration must be longer than zero (got {s:?})"),
        ),
        Ok(n) => Ok((n, unit)),
        Err(_) => bad(),
    }
}

/// The longest window per unit, so a profile's counters stay small.
const MAX_WINDOW: [(char, u64); 4] = [('m', 120), ('h', 72), ('d', 365), ('w', 52)];

fn window(value: &Value, path: &str) -> Result<(Unit, u32), Fault> {
    let (n, unit) = duration(value, path)?;
    let max = MAX_WINDOW
        .iter()
        .find(|(u, _)| *u == unit)
        .map_or(0, |&(_, m)| m);
    if n > max {
        let hint = match unit {
            'm' => "; count in hours instead",
            'h' => "; count in days instead",
            _ => "",
        };
        return err(
            path,
            format!("window too long (got \"{n}{unit}\", at most \"{max}{unit}\"{hint})"),
        );
    }
    let n = n as u32;
    Ok(match unit {
        'm' => (Unit::Minute, n),
        'h' => (Unit::Hour, n),
        'd' => (Unit::Day, n),
        _ => (Unit::Day, n * 7),
    })
}

fn parse_when(value: &Value, path: &str) -> Result<When, Fault> {
    let obj = object(value, path)?;
    only_keys(obj, path, &["within", "before", "after"])?;
    let mut keys = obj.keys();
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) => k.as_str(),
        _ => {
            return err(
                path,
                "expected exactly one of \"within\", \"before\", \"after\"",
            )
        }
    };
    let here = join(path, key);
    let v = &obj[key];
    let as_instant = |v: &Value| v.as_str().and_then(|s| parse_rfc3339(s).ok()).map(|p| p.at);
    match key {
        "within" => Ok(When::Within(span(v, &here)?)),
        "before" => match as_instant(v) {
            Some(at) => Ok(When::Before(at)),
            None => span(v, &here).map(When::Ago).map_err(|(p, _)| {
                let got = ops::show(v);
                let message = format!(
                    "expected a duration like \"30d\" or a timestamp like \
                     \"2024-01-01T00:00:00Z\" (got {got})"
                );
                (p, message)
            }),
        },
        _ => as_instant(v).map(When::After).map_or_else(
            || {
                let got = ops::show(v);
                err(
                    &here,
                    format!("expected a timestamp like \"2024-01-01T00:00:00Z\" (got {got})"),
                )
            },
            Ok,
        ),
    }
}

fn span(value: &Value, path: &str) -> Result<Millis, Fault> {
    let (n, unit) = duration(value, path)?;
    let unit_ms = match unit {
        'm' => MINUTE,
        'h' => HOUR,
        'd' => DAY,
        _ => 7 * DAY,
    };
    Ok(n as Millis * unit_ms)
}

impl Rule {
    /// Calls `f` with every count condition in the rule.
    pub fn each_count(&self, f: &mut impl FnMut(&Count)) {
        match self {
            Rule::All(rs) | Rule::Any(rs) => rs.iter().for_each(|r| r.each_count(f)),
            Rule::Not(r) => r.each_count(f),
            Rule::Count(c) => f(c),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(value: Value) -> Rule {
        Definition::parse("t", &json!({ "rule": value }))
            .unwrap()
            .rule
    }

    #[test]
    fn every_condition_kind_parses() {
        let cases = [
            json!({"trait": "plan", "eq": "pro"}),
            json!({"firstTouch": "medium", "eq": "cpc"}),
            json!({"lastTouch": "clickId", "exists": true}),
            json!({"count": {"event": "Signed Up", "gte": 1}}),
            json!({
                "count": {"page": "/docs/**", "within": "12h", "where": {"title": "API"}, "lt": 3}
            }),
            json!({"firstSeen": {"before": "30d"}}),
            json!({"firstSeen": {"before": "2024-01-01T00:00:00Z"}}),
            json!({"lastSeen": {"after": "2024-01-01T00:00:00Z"}}),
            json!({"lastSeen": {"within": "90m"}}),
            json!({"identified": false}),
            json!({"country": ["de", "AT"]}),
            json!({"device": "mobile"}),
            json!({"not": {"all": []}}),
            json!({"any": [{"identified": true}]}),
        ];
        for case in cases {
            Definition::parse("t", &json!({ "rule": case }))
                .unwrap_or_else(|e| panic!("{case}: {e}"));
        }
        assert_eq!(
            rule(json!({"country": ["de", "AT"]})),
            Rule::Country(vec!["DE".into(), "AT".into()])
        );
    }

    #[test]
    fn weeks_count_in_days_and_windows_pick_their_unit() {
        let Rule::Count(c) = rule(json!({"count": {"event": "x", "within": "2w", "gte": 1}}))
        else {
            panic!("not a count");
        };
        assert_eq!(
            (c.counter.unit, c.window, c.counter.keep),
            (Unit::Day, 14, 14)
        );
        let Rule::Count(c) = rule(json!({"count": {"event": "x", "within": "30m", "gte": 1}}))
        else {
            panic!("not a count");
        };
        assert_eq!((c.counter.unit, c.window), (Unit::Minute, 30));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut rule = json!({"identified": true});
        for _ in 0..40 {
            rule = json!({ "not": rule });
        }
        let got = Definition::parse("x", &json!({ "rule": rule }))
            .unwrap_err()
            .to_string();
        assert!(got.ends_with("rules nest deeper than 32 levels"), "{got}");
    }

    #[test]
    fn names_must_fit_keys_and_urls() {
        for (name, ok) in [
            ("paid-pricing_2", true),
            ("", false),
            ("a b", false),
            ("é", false),
            (&"a".repeat(65), false),
        ] {
            assert_eq!(is_valid_name(name), ok, "{name}");
        }
        assert_eq!(
            Definition::parse("a/b", &json!({"rule": {"identified": true}})).unwrap_err(),
            RuleError::Name("a/b".into())
        );
    }
}
