//! Evaluating a [`BoundExpr`] on a row: a walk over the bound tree, each node working
//! in the types binding gave its operands. Fixed-width values are computed in place;
//! a string is shared (its reference count bumped), never copied.

use super::bind::{BoundExpr, Node};
use super::BinaryOp;
use crate::event::Timestamp;
use crate::format::date::{format_iso_timestamp, parse_iso_date, parse_iso_timestamp, Date};
use crate::row::{DataType, Row, Value};
use std::cmp::Ordering;

/// A value an expression cannot compute (Spark's ANSI-mode errors), which fails the
/// query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// An integer result does not fit its type.
    #[error("integer overflow: {0}")]
    Overflow(String),
    /// A division or remainder by zero.
    #[error("division by zero")]
    DivideByZero,
    /// A value that cannot be cast to the type asked for.
    #[error("cannot cast {value} to {to}")]
    Cast {
        /// The value, as text.
        value: String,
        /// The type.
        to: DataType,
    },
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

impl BoundExpr {
    /// Evaluates the expression on `row` (a row of the schema it was bound to).
    ///
    /// # Errors
    ///
    /// An integer overflow, a division by zero, or a cast a value cannot make (Spark's
    /// ANSI errors).
    ///
    /// # Panics
    ///
    /// If `row` has fewer columns than the schema the expression was bound to.
    pub fn eval(&self, row: &Row) -> Result<Value, EvalError> {
        Ok(match &self.node {
            Node::Column(index) => row.values()[*index].clone(),
            Node::Literal(value) => value.clone(),
            Node::Arithmetic { op, kind, operands } => {
                let [left, right] = &**operands;
                let (a, b) = (left.eval(row)?, right.eval(row)?);
                if a.is_null() || b.is_null() {
                    return Ok(Value::Null);
                }
                arithmetic(*op, *kind, &a, &b)?
            }
            Node::Divide(operands) => {
                let [left, right] = &**operands;
                let (a, b) = (left.eval(row)?, right.eval(row)?);
                match (a, b) {
                    (Value::Double(a), Value::Double(b)) => {
                        if b == 0.0 {
                            return Err(EvalError::DivideByZero);
                        }
                        Value::Double(a / b)
                    }
                    _ => Value::Null,
                }
            }
            Node::Compare { op, operands } => {
                let [left, right] = &**operands;
                let (a, b) = (left.eval(row)?, right.eval(row)?);
                if a.is_null() || b.is_null() {
                    return Ok(Value::Null);
                }
                // Operands share one type (binding cast them): Value's ordering is
                // Spark's for each type.
                let ordering = a.cmp(&b);
                Value::Boolean(match op {
                    BinaryOp::Eq => ordering == Ordering::Equal,
                    BinaryOp::NotEq => ordering != Ordering::Equal,
                    BinaryOp::Lt => ordering == Ordering::Less,
                    BinaryOp::LtEq => ordering != Ordering::Greater,
                    BinaryOp::Gt => ordering == Ordering::Greater,
                    BinaryOp::GtEq => ordering != Ordering::Less,
                    _ => unreachable!("binding makes only comparisons Compare nodes"),
                })
            }
            Node::And(operands) => {
                let [left, right] = &**operands;
                match left.eval(row)?.as_bool() {
                    Some(false) => Value::Boolean(false),
                    left => match (left, right.eval(row)?.as_bool()) {
                        (_, Some(false)) => Value::Boolean(false),
                        (Some(true), Some(true)) => Value::Boolean(true),
                        _ => Value::Null,
                    },
                }
            }
            Node::Or(operands) => {
                let [left, right] = &**operands;
                match left.eval(row)?.as_bool() {
                    Some(true) => Value::Boolean(true),
                    left => match (left, right.eval(row)?.as_bool()) {
                        (_, Some(true)) => Value::Boolean(true),
                        (Some(false), Some(false)) => Value::Boolean(false),
                        _ => Value::Null,
                    },
                }
            }
            Node::Not(inner) => match inner.eval(row)?.as_bool() {
                Some(b) => Value::Boolean(!b),
                None => Value::Null,
            },
            Node::Negate(inner) => {
                match inner.eval(row)? {
                    Value::Integer(n) => Value::Integer(n.checked_neg().ok_or_else(|| {
                        EvalError::Overflow(format!("-({n}) does not fit an int"))
                    })?),
                    Value::Long(n) => Value::Long(n.checked_neg().ok_or_else(|| {
                        EvalError::Overflow(format!("-({n}) does not fit a bigint"))
                    })?),
                    Value::Double(x) => Value::Double(-x),
                    _ => Value::Null,
                }
            }
            Node::IsNull { expr, negated } => Value::Boolean(expr.eval(row)?.is_null() != *negated),
            Node::InList {
                expr,
                list,
                negated,
            } => {
                let value = expr.eval(row)?;
                if value.is_null() {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                for item in list {
                    let item = item.eval(row)?;
                    if item.is_null() {
                        saw_null = true;
                    } else if item == value {
                        return Ok(Value::Boolean(!negated));
                    }
                }
                if saw_null {
                    Value::Null
                } else {
                    Value::Boolean(*negated)
                }
            }
            Node::Like {
                expr,
                pattern,
                negated,
            } => match expr.eval(row)? {
                Value::String(text) => Value::Boolean(pattern.matches(&text) != *negated),
                _ => Value::Null,
            },
            Node::Case {
                branches,
                otherwise,
            } => {
                for (condition, value) in branches {
                    if condition.eval(row)?.as_bool() == Some(true) {
                        return value.eval(row);
                    }
                }
                match otherwise {
                    Some(value) => value.eval(row)?,
                    None => Value::Null,
                }
            }
            Node::Cast { expr, from } => cast(expr.eval(row)?, *from, self.data_type())?,
        })
    }

    /// Evaluates a boolean expression as a filter does: `true` keeps the row, `false`
    /// and null drop it.
    ///
    /// # Errors
    ///
    /// As [`eval`](Self::eval).
    pub fn eval_predicate(&self, row: &Row) -> Result<bool, EvalError> {
        Ok(self.eval(row)?.as_bool() == Some(true))
    }
}

fn overflow(op: BinaryOp, a: &Value, b: &Value, kind: DataType) -> EvalError {
    EvalError::Overflow(format!("{a} {} {b} does not fit {kind}", op.symbol()))
}

/// `a op b` for two non-null values of `kind`.
fn arithmetic(op: BinaryOp, kind: DataType, a: &Value, b: &Value) -> Result<Value, EvalError> {
    macro_rules! checked {
        ($x:expr, $y:expr, $wrap:path) => {{
            let (x, y) = ($x, $y);
            let result = match op {
                BinaryOp::Add => x.checked_add(y),
                BinaryOp::Subtract => x.checked_sub(y),
                BinaryOp::Multiply => x.checked_mul(y),
                BinaryOp::Remainder => {
                    if y == 0 {
                        return Err(EvalError::DivideByZero);
                    }
                    // `MIN % -1` is 0 in Spark (Java); Rust's checked_rem says overflow.
                    Some(x.checked_rem(y).unwrap_or(0))
                }
                _ => unreachable!("only + - * % are Arithmetic nodes"),
            };
            result.map($wrap).ok_or_else(|| overflow(op, a, b, kind))
        }};
    }
    match (a, b) {
        (Value::Integer(x), Value::Integer(y)) => checked!(*x, *y, Value::Integer),
        (Value::Long(x), Value::Long(y)) => checked!(*x, *y, Value::Long),
        (Value::Double(x), Value::Double(y)) => Ok(Value::Double(match op {
            BinaryOp::Add => x + y,
            BinaryOp::Subtract => x - y,
            BinaryOp::Multiply => x * y,
            BinaryOp::Remainder => {
                if *y == 0.0 {
                    return Err(EvalError::DivideByZero);
                }
                x % y
            }
            _ => unreachable!("only + - * % are Arithmetic nodes"),
        })),
        _ => unreachable!("binding cast both operands to {kind}"),
    }
}

fn cannot(value: &Value, to: DataType) -> EvalError {
    EvalError::Cast {
        value: match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        },
        to,
    }
}

/// `value` (of type `from`) as a `to`, with Spark's ANSI cast rules.
fn cast(value: Value, from: DataType, to: DataType) -> Result<Value, EvalError> {
    let _ = from;
    Ok(match (&value, to) {
        (Value::Null, _) => Value::Null,
        (_, DataType::String) => match &value {
            Value::Timestamp(t) => Value::String(value_text_timestamp(*t).into()),
            _ => Value::String(value.to_string().into()),
        },
        (Value::Boolean(b), DataType::Integer) => Value::Integer(i32::from(*b)),
        (Value::Boolean(b), DataType::Long) => Value::Long(i64::from(*b)),
        (Value::Boolean(b), DataType::Double) => Value::Double(f64::from(u8::from(*b))),
        (Value::Integer(n), DataType::Long) => Value::Long(i64::from(*n)),
        (Value::Integer(n), DataType::Double) => Value::Double(f64::from(*n)),
        (Value::Integer(n), DataType::Boolean) => Value::Boolean(*n != 0),
        (Value::Long(n), DataType::Integer) => {
            Value::Integer(i32::try_from(*n).map_err(|_| cannot(&value, to))?)
        }
        (Value::Long(n), DataType::Double) => Value::Double(*n as f64),
        (Value::Long(n), DataType::Boolean) => Value::Boolean(*n != 0),
        (Value::Double(x), DataType::Integer) => Value::Integer(
            double_to_int(*x, i32::MIN.into(), i32::MAX.into())
                .map(|n| n as i32)
                .ok_or_else(|| cannot(&value, to))?,
        ),
        (Value::Double(x), DataType::Long) => {
            Value::Long(double_to_int(*x, i64::MIN, i64::MAX).ok_or_else(|| cannot(&value, to))?)
        }
        (Value::Double(x), DataType::Boolean) => Value::Boolean(*x != 0.0),
        // Spark: a timestamp as a number is seconds since the epoch, and back.
        (Value::Timestamp(t), DataType::Long) => Value::Long(t.0.div_euclid(MICROS_PER_SECOND)),
        (Value::Timestamp(t), DataType::Double) => Value::Double(t.0 as f64 / 1e6),
        (Value::Integer(n), DataType::Timestamp) => {
            Value::Timestamp(Timestamp(i64::from(*n) * MICROS_PER_SECOND))
        }
        (Value::Long(n), DataType::Timestamp) => Value::Timestamp(Timestamp(
            n.checked_mul(MICROS_PER_SECOND)
                .ok_or_else(|| cannot(&value, to))?,
        )),
        (Value::Double(x), DataType::Timestamp) => {
            let micros = (x * 1e6).floor();
            if !micros.is_finite() || micros.abs() >= 9.2e18 {
                return Err(cannot(&value, to));
            }
            Value::Timestamp(Timestamp(micros as i64))
        }
        (Value::Date(d), DataType::Timestamp) => {
            Value::Timestamp(Timestamp(i64::from(d.days_since_epoch()) * MICROS_PER_DAY))
        }
        (Value::Timestamp(t), DataType::Date) => {
            Value::Date(Date::from_days(t.0.div_euclid(MICROS_PER_DAY) as i32))
        }
        (Value::String(s), to) => cast_text(s.trim(), to).ok_or_else(|| cannot(&value, to))?,
        _ => return Err(cannot(&value, to)),
    })
}

/// A timestamp as Spark casts one to text: `yyyy-MM-dd HH:mm:ss[.ffffff]` (UTC).
fn value_text_timestamp(t: Timestamp) -> String {
    format_iso_timestamp(t)
        .trim_end_matches('Z')
        .replacen('T', " ", 1)
}

/// Truncates `x` toward zero if the result lies in `min..=max`.
fn double_to_int(x: f64, min: i64, max: i64) -> Option<i64> {
    let truncated = x.trunc();
    // `max as f64` may round up (i64::MAX): compare against the next power of two.
    if truncated.is_nan() || truncated < min as f64 || truncated >= (max as f64) + 1.0 {
        return None;
    }
    Some(truncated as i64)
}

/// Text cast to `to` (Spark's rules: booleans from `t/true/y/yes/1` and their opposites,
/// numbers and ISO dates as written).
fn cast_text(text: &str, to: DataType) -> Option<Value> {
    Some(match to {
        DataType::Boolean => {
            let lower = text.to_ascii_lowercase();
            match lower.as_str() {
                "t" | "true" | "y" | "yes" | "1" => Value::Boolean(true),
                "f" | "false" | "n" | "no" | "0" => Value::Boolean(false),
                _ => return None,
            }
        }
        DataType::Integer => Value::Integer(text.parse().ok()?),
        DataType::Long => Value::Long(text.parse().ok()?),
        DataType::Double => Value::Double(crate::format::de::parse_float(text)?),
        DataType::Date => Value::Date(parse_iso_date(text).ok()?),
        DataType::Timestamp => match parse_iso_timestamp(text) {
            Ok(t) => Value::Timestamp(t),
            // Spark also takes a date alone, or a space for the `T`.
            Err(_) => match parse_iso_date(text) {
                Ok(d) => {
                    Value::Timestamp(Timestamp(i64::from(d.days_since_epoch()) * MICROS_PER_DAY))
                }
                Err(_) => Value::Timestamp(parse_iso_timestamp(&text.replacen(' ', "T", 1)).ok()?),
            },
        },
        DataType::String => Value::string(text),
        DataType::Null => Value::Null,
    })
}
