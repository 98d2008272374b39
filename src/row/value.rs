//! [`DataType`] and [`Value`]: the types a row's columns can have and the values they
//! hold, with Spark SQL's equality and ordering.

use crate::event::Timestamp;
use crate::format::date::{format_iso_timestamp, Date};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The type of a column (Spark's `DataType`, the subset rivulet supports).
///
/// Not yet supported: decimals, binary, and the nested types (arrays, maps, structs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DataType {
    /// `void`: the type of a bare `NULL` literal (Spark's `NullType`), which takes the
    /// type of whatever it meets.
    Null,
    /// `boolean`.
    Boolean,
    /// `int`: a 32-bit signed integer (Spark's `IntegerType`).
    Integer,
    /// `bigint`: a 64-bit signed integer (Spark's `LongType`).
    Long,
    /// `double`: a 64-bit float.
    Double,
    /// `string`: UTF-8 text.
    String,
    /// `timestamp`: microseconds since the Unix epoch, UTC.
    Timestamp,
    /// `date`: days since the Unix epoch.
    Date,
}

impl DataType {
    /// Spark's short name for the type, as `printSchema` and SQL show it (`int`,
    /// `bigint`, `double`, …).
    pub fn simple_string(self) -> &'static str {
        match self {
            DataType::Null => "void",
            DataType::Boolean => "boolean",
            DataType::Integer => "int",
            DataType::Long => "bigint",
            DataType::Double => "double",
            DataType::String => "string",
            DataType::Timestamp => "timestamp",
            DataType::Date => "date",
        }
    }

    /// Whether the type is a number (`int`, `bigint`, `double`).
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Integer | DataType::Long | DataType::Double)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.simple_string())
    }
}

/// One column's value in a [`Row`](super::Row).
///
/// Equality, hashing and ordering follow Spark SQL's rules for grouping, joining and
/// sorting, not IEEE's: `NaN` equals `NaN` and sorts above every other double, `-0.0`
/// equals `0.0`, and `Null` equals `Null` (rows with null keys group together) and sorts
/// first. Comparing a value with SQL's `=`, where a null gives null, is the expression
/// evaluator's business. Values of different types are unequal (and order by type);
/// expressions cast before they compare.
///
/// Strings are reference-counted, so copying a row (a projection, a group key) copies
/// no text.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub enum Value {
    /// SQL `NULL`.
    #[default]
    Null,
    /// A `boolean`.
    Boolean(bool),
    /// An `int`.
    Integer(i32),
    /// A `bigint`.
    Long(i64),
    /// A `double`.
    Double(f64),
    /// A `string`.
    String(Arc<str>),
    /// A `timestamp`.
    Timestamp(Timestamp),
    /// A `date`.
    Date(Date),
}

impl Value {
    /// The value's type, `None` for `Null`.
    pub fn data_type(&self) -> Option<DataType> {
        Some(match self {
            Value::Null => return None,
            Value::Boolean(_) => DataType::Boolean,
            Value::Integer(_) => DataType::Integer,
            Value::Long(_) => DataType::Long,
            Value::Double(_) => DataType::Double,
            Value::String(_) => DataType::String,
            Value::Timestamp(_) => DataType::Timestamp,
            Value::Date(_) => DataType::Date,
        })
    }

    /// Whether the value is `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A string value.
    pub fn string(text: &str) -> Value {
        Value::String(Arc::from(text))
    }

    /// The value as a `bool`, if it is a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as an `i64`, if it is an integer of either width.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(n) => Some(i64::from(*n)),
            Value::Long(n) => Some(*n),
            _ => None,
        }
    }

    /// The value as an `f64`, if it is a number (integers widen).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Integer(n) => Some(f64::from(*n)),
            Value::Long(n) => Some(*n as f64),
            Value::Double(x) => Some(*x),
            _ => None,
        }
    }

    /// The value as text, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The order of the value's type among types, for ordering values of different
    /// types (nulls first).
    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Boolean(_) => 1,
            Value::Integer(_) => 2,
            Value::Long(_) => 3,
            Value::Double(_) => 4,
            Value::String(_) => 5,
            Value::Timestamp(_) => 6,
            Value::Date(_) => 7,
        }
    }
}

/// A double's bits with Spark's normalisation: every NaN is one NaN, `-0.0` is `0.0`.
fn normalized_bits(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

/// Spark's double ordering: `NaN` above everything, `-0.0 == 0.0`.
fn compare_doubles(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).expect("neither is NaN"),
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u8(self.rank());
        match self {
            Value::Null => {}
            Value::Boolean(b) => b.hash(state),
            Value::Integer(n) => n.hash(state),
            Value::Long(n) => n.hash(state),
            Value::Double(x) => normalized_bits(*x).hash(state),
            Value::String(s) => s.hash(state),
            Value::Timestamp(t) => t.hash(state),
            Value::Date(d) => d.hash(state),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Value) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Boolean(a), Value::Boolean(b)) => a.cmp(b),
            (Value::Integer(a), Value::Integer(b)) => a.cmp(b),
            (Value::Long(a), Value::Long(b)) => a.cmp(b),
            (Value::Double(a), Value::Double(b)) => compare_doubles(*a, *b),
            (Value::String(a), Value::String(b)) => a.cmp(b),
            (Value::Timestamp(a), Value::Timestamp(b)) => a.cmp(b),
            (Value::Date(a), Value::Date(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// Shows the value as Spark's `show()` does: `null`, `true`, numbers as Java prints
/// them (`1.0`, `NaN`, `Infinity`), text as is, timestamps as `yyyy-MM-dd HH:mm:ss[.f]`
/// (UTC), dates as `yyyy-MM-dd`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Integer(n) => write!(f, "{n}"),
            Value::Long(n) => write!(f, "{n}"),
            Value::Double(x) => write_java_double(*x, f),
            Value::String(s) => f.write_str(s),
            Value::Timestamp(t) => {
                // RFC 3339 in UTC ("2014-03-10T01:01:00Z", fractions only when present),
                // shown with a space and without the zone, as Spark shows timestamps.
                let text = format_iso_timestamp(*t);
                f.write_str(&text.trim_end_matches('Z').replacen('T', " ", 1))
            }
            Value::Date(d) => write!(f, "{d}"),
        }
    }
}

/// A double as Java's `Double.toString` writes the common cases: a whole number keeps
/// `.0`, special values are `NaN`, `Infinity`, `-Infinity`.
fn write_java_double(x: f64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if x.is_nan() {
        f.write_str("NaN")
    } else if x.is_infinite() {
        f.write_str(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else if x == x.trunc() && x.abs() < 1e7 {
        write!(f, "{x:.1}")
    } else {
        write!(f, "{x}")
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Boolean(b)
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Value {
        Value::Integer(n)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Long(n)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Double(x)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::string(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(Arc::from(s))
    }
}

impl From<Timestamp> for Value {
    fn from(t: Timestamp) -> Value {
        Value::Timestamp(t)
    }
}

impl From<Date> for Value {
    fn from(d: Date) -> Value {
        Value::Date(d)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Value {
        value.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn doubles_compare_and_hash_as_spark_groups_them() {
        let nan = Value::Double(f64::NAN);
        let other_nan = Value::Double(-f64::NAN);
        assert_eq!(nan, other_nan);
        assert_eq!(Value::Double(0.0), Value::Double(-0.0));
        let set: HashSet<Value> = [
            nan.clone(),
            other_nan,
            Value::Double(0.0),
            Value::Double(-0.0),
        ]
        .into_iter()
        .collect();
        assert_eq!(set.len(), 2);
        assert!(nan > Value::Double(f64::INFINITY));
        assert!(Value::Null < Value::Boolean(false));
        assert_eq!(Value::Null, Value::Null);
        assert_ne!(
            Value::Integer(1),
            Value::Long(1),
            "types differ: cast first"
        );
    }

    #[test]
    fn values_show_as_spark_shows_them() {
        let shown = |v: Value| v.to_string();
        assert_eq!(shown(Value::Null), "null");
        assert_eq!(shown(Value::Double(85.0)), "85.0");
        assert_eq!(shown(Value::Double(0.25)), "0.25");
        assert_eq!(shown(Value::Double(f64::NAN)), "NaN");
        assert_eq!(shown(Value::Double(f64::NEG_INFINITY)), "-Infinity");
        assert_eq!(shown(Value::Long(-7)), "-7");
        assert_eq!(shown(Value::string("COHUTTA")), "COHUTTA");
        assert_eq!(
            shown(Value::Timestamp(Timestamp(1_394_413_260_000_000))),
            "2014-03-10 01:01:00"
        );
        assert_eq!(shown(Value::Date(Date::from_days(16139))), "2014-03-10");
        assert_eq!(shown(Value::from(None::<i32>)), "null");
    }

    #[test]
    fn values_round_trip_through_the_checkpoint_codec() {
        let values = vec![
            Value::Null,
            Value::Boolean(true),
            Value::Integer(-3),
            Value::Long(1 << 40),
            Value::Double(2.5),
            Value::string("pump"),
            Value::Timestamp(Timestamp(42)),
            Value::Date(Date::from_days(-1)),
        ];
        let bytes = crate::checkpoint::codec::encode(&values).unwrap();
        let back: Vec<Value> = crate::checkpoint::codec::decode(&bytes).unwrap();
        assert_eq!(back, values);
    }
}
