//! Comparison operators over JSON values: the `eq`, `ne`, `in`, `contains`, `starts_with`,
//! `gt`, `gte`, `lt`, `lte` and `exists` that trait conditions, touchpoint conditions and
//! event property filters share.
//!
//! One type serves all three so that an operator means the same thing wherever an operator
//! writes it. Operands are checked when a rule is parsed (an `in` needs a list, a `gt` a
//! number or a string), so testing a value never fails: a value of the wrong type simply
//! does not hold.

use std::cmp::Ordering;

use serde_json::Value;

/// The operator names, in the order error messages list them.
pub const NAMES: [&str; 10] = [
    "eq",
    "ne",
    "in",
    "contains",
    "starts_with",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
];

/// One comparison of a value with an operand.
///
/// A missing value (no such trait, no touchpoint, no such property) fails every operator
/// except `ne` and `exists: false`, which hold.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Op {
    /// Equal; numbers compare by value (`1` equals `1.0`), strings case-sensitively.
    Eq(Value),
    /// Not equal, or missing.
    Ne(Value),
    /// Equal to one of the listed values.
    In(Vec<Value>),
    /// A string containing the operand as a substring, or a list holding the operand.
    Contains(Value),
    /// A string starting with the operand.
    StartsWith(String),
    /// Greater than: numbers by value, strings by byte order (so ISO dates compare right).
    Gt(Bound),
    /// Greater than or equal.
    Gte(Bound),
    /// Less than.
    Lt(Bound),
    /// Less than or equal.
    Lte(Bound),
    /// Present (`true`) or absent (`false`); a JSON `null` counts as absent.
    Exists(bool),
}

/// The operand of an ordering operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    /// A number; compared with numeric values only.
    Number(f64),
    /// A string; compared with string values only.
    Text(String),
}

/// A value an operator is tested against, borrowed from the profile or the event.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// There is no value.
    Missing,
    /// A JSON value (a trait, an event property).
    Json(&'a Value),
    /// A string field (a touchpoint's medium, a country code).
    Text(&'a str),
}

impl<'a> Subject<'a> {
    /// A subject from an optional JSON value; `null` counts as missing.
    pub fn json(value: Option<&'a Value>) -> Subject<'a> {
        match value {
            None | Some(Value::Null) => Subject::Missing,
            Some(v) => Subject::Json(v),
        }
    }

    /// A subject from an optional string.
    pub fn text(value: Option<&'a str>) -> Subject<'a> {
        value.map_or(Subject::Missing, Subject::Text)
    }

    /// The subject as JSON, for explanations.
    pub fn to_json(self) -> Value {
        match self {
            Subject::Missing => Value::Null,
            Subject::Json(v) => v.clone(),
            Subject::Text(s) => Value::String(s.to_owned()),
        }
    }

    fn as_str(self) -> Option<&'a str> {
        match self {
            Subject::Json(Value::String(s)) => Some(s),
            Subject::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl Op {
    /// Reads an operator from its name and operand.
    ///
    /// # Errors
    /// A lowercase message (without the JSON path, which the caller knows) when the name
    /// is not an operator or the operand has the wrong type.
    pub fn parse(name: &str, operand: &Value) -> Result<Op, String> {
        let op = match name {
            "eq" => Op::Eq(scalar(operand)?),
            "ne" => Op::Ne(scalar(operand)?),
            "in" => match operand {
                Value::Array(items) if !items.is_empty() => {
                    Op::In(items.iter().map(scalar).collect::<Result<_, _>>()?)
                }
                other => return Err(format!("expected a non-empty list (got {})", show(other))),
            },
            "contains" => Op::Contains(scalar(operand)?),
            "starts_with" => match operand {
                Value::String(s) => Op::StartsWith(s.clone()),
                other => return Err(format!("expected a string (got {})", show(other))),
            },
            "gt" => Op::Gt(bound(operand)?),
            "gte" => Op::Gte(bound(operand)?),
            "lt" => Op::Lt(bound(operand)?),
            "lte" => Op::Lte(bound(operand)?),
            "exists" => match operand {
                Value::Bool(b) => Op::Exists(*b),
                other => return Err(format!("expected true or false (got {})", show(other))),
            },
            other => {
                return Err(format!(
                    "unknown operator {other:?} (expected one of {})",
                    NAMES.join(", ")
                ))
            }
        };
        Ok(op)
    }

    /// Whether the subject satisfies this operator.
    pub fn holds(&self, subject: Subject<'_>) -> bool {
        match self {
            Op::Exists(want) => !matches!(subject, Subject::Missing) == *want,
            Op::Ne(v) => !equals(subject, v),
            _ if matches!(subject, Subject::Missing) => false,
            Op::Eq(v) => equals(subject, v),
            Op::In(vs) => vs.iter().any(|v| equals(subject, v)),
            Op::Contains(v) => match (subject, v) {
                (Subject::Json(Value::Array(items)), _) => items.iter().any(|i| json_eq(i, v)),
                (s, Value::String(needle)) => {
                    s.as_str().is_some_and(|h| h.contains(needle.as_str()))
                }
                _ => false,
            },
            Op::StartsWith(prefix) => subject
                .as_str()
                .is_some_and(|s| s.starts_with(prefix.as_str())),
            Op::Gt(b) => compare(subject, b) == Some(Ordering::Greater),
            Op::Gte(b) => matches!(
                compare(subject, b),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            Op::Lt(b) => compare(subject, b) == Some(Ordering::Less),
            Op::Lte(b) => matches!(compare(subject, b), Some(Ordering::Less | Ordering::Equal)),
        }
    }

    /// The operator's name as written in rules.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Eq(_) => "eq",
            Op::Ne(_) => "ne",
            Op::In(_) => "in",
            Op::Contains(_) => "contains",
            Op::StartsWith(_) => "starts_with",
            Op::Gt(_) => "gt",
            Op::Gte(_) => "gte",
            Op::Lt(_) => "lt",
            Op::Lte(_) => "lte",
            Op::Exists(_) => "exists",
        }
    }

    /// The operand as JSON, for canonical keys and explanations.
    pub fn operand(&self) -> Value {
        match self {
            Op::Eq(v) | Op::Ne(v) | Op::Contains(v) => v.clone(),
            Op::In(vs) => Value::Array(vs.clone()),
            Op::StartsWith(s) => Value::String(s.clone()),
            Op::Gt(b) | Op::Gte(b) | Op::Lt(b) | Op::Lte(b) => match b {
                Bound::Number(n) => {
                    serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
                }
                Bound::Text(s) => Value::String(s.clone()),
            },
            Op::Exists(b) => Value::Bool(*b),
        }
    }
}

/// A short JSON rendering of a value for error messages.
pub fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 40 {
        return text;
    }
    let cut: String = text.chars().take(37).collect();
    format!("{cut}...")
}

fn scalar(value: &Value) -> Result<Value, String> {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(value.clone()),
        other => Err(format!(
            "expected a string, number or boolean (got {})",
            show(other)
        )),
    }
}

fn bound(value: &Value) -> Result<Bound, String> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .map(Bound::Number)
            .ok_or_else(|| format!("number out of range (got {n})")),
        Value::String(s) => Ok(Bound::Text(s.clone())),
        other => Err(format!(
            "expected a number or a string (got {})",
            show(other)
        )),
    }
}

fn equals(subject: Subject<'_>, operand: &Value) -> bool {
    match subject {
        Subject::Missing => false,
        Subject::Json(v) => json_eq(v, operand),
        Subject::Text(s) => operand.as_str() == Some(s),
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn compare(subject: Subject<'_>, bound: &Bound) -> Option<Ordering> {
    match (subject, bound) {
        (Subject::Json(Value::Number(n)), Bound::Number(b)) => n.as_f64()?.partial_cmp(b),
        (s, Bound::Text(b)) => Some(s.as_str()?.cmp(b.as_str())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(name: &str, operand: Value) -> Op {
        Op::parse(name, &operand).unwrap()
    }

    #[test]
    fn every_operator_holds_and_fails_as_documented() {
        let cases: Vec<(Op, Value, bool)> = vec![
            (op("eq", json!("pro")), json!("pro"), true),
            (op("eq", json!("pro")), json!("Pro"), false),
            (op("eq", json!(1)), json!(1.0), true),
            (op("ne", json!("pro")), json!("free"), true),
            (op("ne", json!("pro")), json!("pro"), false),
            (op("in", json!(["a", "b"])), json!("b"), true),
            (op("in", json!(["a", "b"])), json!("c"), false),
            (op("contains", json!("@acme")), json!("jo@acme.com"), true),
            (op("contains", json!("@acme")), json!("jo@other.com"), false),
            (
                op("contains", json!("beta")),
                json!(["alpha", "beta"]),
                true,
            ),
            (op("contains", json!(3)), json!([1, 2]), false),
            (op("starts_with", json!("/docs")), json!("/docs/api"), true),
            (op("starts_with", json!("/docs")), json!("/blog"), false),
            (op("gt", json!(10)), json!(11), true),
            (op("gt", json!(10)), json!(10), false),
            (op("gte", json!(10)), json!(10), true),
            (op("gte", json!(10)), json!(9.5), false),
            (op("lt", json!(10)), json!(9), true),
            (op("lt", json!(10)), json!(10), false),
            (op("lte", json!(10)), json!(10), true),
            (op("lte", json!(10)), json!(11), false),
            (
                op("gt", json!("2024-01-01")),
                json!("2024-06-01T00:00:00Z"),
                true,
            ),
            (op("gt", json!(10)), json!("11"), false),
            (op("exists", json!(true)), json!(0), true),
            (op("exists", json!(false)), json!(0), false),
        ];
        for (op, value, want) in cases {
            assert_eq!(op.holds(Subject::Json(&value)), want, "{op:?} on {value}");
        }
    }

    #[test]
    fn a_missing_value_only_satisfies_ne_and_exists_false() {
        for name in NAMES {
            let operand = match name {
                "in" => json!(["x"]),
                "exists" => json!(false),
                _ => json!("x"),
            };
            let want = matches!(name, "ne" | "exists");
            assert_eq!(
                op(name, operand.clone()).holds(Subject::Missing),
                want,
                "{name}"
            );
            assert_eq!(
                op(name, operand).holds(Subject::json(Some(&Value::Null))),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn text_subjects_compare_like_json_strings() {
        assert!(op("eq", json!("cpc")).holds(Subject::Text("cpc")));
        assert!(op("in", json!(["cpc", "ppc"])).holds(Subject::Text("ppc")));
        assert!(!op("eq", json!(1)).holds(Subject::Text("1")));
    }

    #[test]
    fn bad_operands_are_named_in_the_message() {
        let cases = [
            ("in", json!("a"), "expected a non-empty list (got \"a\")"),
            ("in", json!([]), "expected a non-empty list (got [])"),
            (
                "gt",
                json!(true),
                "expected a number or a string (got true)",
            ),
            (
                "exists",
                json!("yes"),
                "expected true or false (got \"yes\")",
            ),
            (
                "eq",
                json!({"a": 1}),
                "expected a string, number or boolean (got {\"a\":1})",
            ),
            ("starts_with", json!(1), "expected a string (got 1)"),
        ];
        for (name, operand, message) in cases {
            assert_eq!(Op::parse(name, &operand), Err(message.to_owned()), "{name}");
        }
        let unknown = Op::parse("equals", &json!(1)).unwrap_err();
        assert!(
            unknown.starts_with("unknown operator \"equals\""),
            "{unknown}"
        );
    }
}
