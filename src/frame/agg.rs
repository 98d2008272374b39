//! Aggregate functions over rows (Spark's `count`, `sum`, `min`, `max`, `avg`): what
//! [`GroupedData::agg`](super::GroupedData::agg) takes, and the [`Aggregate`] over rows
//! they are planned as.

use super::compiled::Compiled;
use super::FrameError;
use crate::aggregate::Aggregate;
use crate::expr::{Expr, ExprError};
use crate::row::{DataType, Field, Row, Schema, Value};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Which aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggFunc {
    /// `count(*)` (no argument: every row) or `count(x)` (rows where `x` is not null),
    /// a `bigint`.
    Count,
    /// `sum(x)`: a `bigint` for integer `x` (an overflow fails the query, as ANSI
    /// Spark's does), a `double` for doubles (added in arrival order); null over no
    /// non-null value.
    Sum,
    /// `min(x)`, of `x`'s type; nulls ignored.
    Min,
    /// `max(x)`, of `x`'s type; nulls ignored.
    Max,
    /// `avg(x)`, a `double`: as Spark's `Average`, each non-null value is added as a
    /// double in arrival order and the sum divided by their count; null over none.
    Avg,
}

impl AggFunc {
    /// The function's name as Spark writes it in column names (`count`, `sum`, …).
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Avg => "avg",
        }
    }

    /// The function of this name (`COUNT`, `sum`, …, ignoring case), if it is one.
    pub fn from_name(name: &str) -> Option<AggFunc> {
        [
            AggFunc::Count,
            AggFunc::Sum,
            AggFunc::Min,
            AggFunc::Max,
            AggFunc::Avg,
        ]
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(name))
    }
}

/// An aggregate function applied to an expression (or to whole rows, for `count(*)`),
/// possibly renamed. Build one with [`count`], [`count_all`], [`sum`], [`min`],
/// [`max`], [`avg`].
///
/// ```
/// use rivulet::expr::col;
/// use rivulet::frame::{avg, count_all};
///
/// assert_eq!(count_all().output_name(), "count(1)");
/// assert_eq!(avg(col("hz")).output_name(), "avg(hz)");
/// assert_eq!(avg(col("hz")).alias("avghz").output_name(), "avghz");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AggExpr {
    func: AggFunc,
    arg: Option<Expr>,
    alias: Option<String>,
}

impl AggExpr {
    /// `func(arg)`; `arg` is `None` only for `count(*)`.
    pub fn new(func: AggFunc, arg: Option<Expr>) -> AggExpr {
        AggExpr {
            func,
            arg,
            alias: None,
        }
    }

    /// The same aggregate, its column named `name`.
    pub fn alias(mut self, name: &str) -> AggExpr {
        self.alias = Some(name.to_string());
        self
    }

    /// The function.
    pub fn func(&self) -> AggFunc {
        self.func
    }

    /// The argument (`None` for `count(*)`).
    pub fn arg(&self) -> Option<&Expr> {
        self.arg.as_ref()
    }

    /// The column name: the alias, else Spark's (`count(1)`, `max(hz)`).
    pub fn output_name(&self) -> String {
        match &self.alias {
            Some(alias) => alias.clone(),
            None => self.to_string(),
        }
    }

    /// Binds the argument to `schema` and works out the result type.
    pub(crate) fn bind(&self, schema: &Schema) -> Result<(AggCall, Field), FrameError> {
        let text = self.to_string();
        let arg = match &self.arg {
            None if self.func == AggFunc::Count => None,
            None => {
                return Err(FrameError::Invalid(format!(
                    "{}(*) is not a function; only count takes *",
                    self.func.name()
                )))
            }
            Some(arg) => Some(arg.bind(schema)?),
        };
        let arg_type = arg.as_ref().map(|a| a.data_type());
        let type_error = |wants: &str| {
            FrameError::Expr(ExprError::Type {
                expr: text.clone(),
                message: format!(
                    "{} takes {wants}, not {}",
                    self.func.name(),
                    arg_type.map_or("*".to_string(), |t| t.to_string())
                ),
            })
        };
        let (kind, out) = match (self.func, arg_type) {
            (AggFunc::Count, _) => (Kind::Count, DataType::Long),
            (AggFunc::Sum, Some(DataType::Integer | DataType::Long)) => {
                (Kind::SumLong, DataType::Long)
            }
            (AggFunc::Sum, Some(DataType::Double)) => (Kind::SumDouble, DataType::Double),
            (AggFunc::Sum, _) => return Err(type_error("a number")),
            (AggFunc::Avg, Some(t)) if t.is_numeric() => (Kind::Avg, DataType::Double),
            (AggFunc::Avg, _) => return Err(type_error("a number")),
            (AggFunc::Min | AggFunc::Max, Some(DataType::Null) | None) => {
                return Err(type_error("a typed value"))
            }
            (AggFunc::Min, Some(t)) => (Kind::Min, t),
            (AggFunc::Max, Some(t)) => (Kind::Max, t),
        };
        let mut field = Field::new(self.output_name(), out);
        if kind == Kind::Count {
            field = field.not_null();
        }
        let call = AggCall {
            kind,
            arg: arg.map(|arg| Compiled::new(arg, text.clone())),
            text: Arc::from(text.as_str()),
        };
        Ok((call, field))
    }
}

/// Spark's column name for an unaliased aggregate: `count(1)` for `count(*)`,
/// `max(hz)`.
impl fmt::Display for AggExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.arg {
            None => write!(f, "{}(1)", self.func.name()),
            Some(arg) => write!(f, "{}({arg})", self.func.name()),
        }
    }
}

/// `count(x)`: the rows where `x` is not null.
pub fn count(arg: Expr) -> AggExpr {
    AggExpr::new(AggFunc::Count, Some(arg))
}

/// `count(*)`: every row.
pub fn count_all() -> AggExpr {
    AggExpr::new(AggFunc::Count, None)
}

/// `sum(x)`; see [`AggFunc::Sum`].
pub fn sum(arg: Expr) -> AggExpr {
    AggExpr::new(AggFunc::Sum, Some(arg))
}

/// `min(x)`.
pub fn min(arg: Expr) -> AggExpr {
    AggExpr::new(AggFunc::Min, Some(arg))
}

/// `max(x)`.
pub fn max(arg: Expr) -> AggExpr {
    AggExpr::new(AggFunc::Max, Some(arg))
}

/// `avg(x)`; see [`AggFunc::Avg`].
pub fn avg(arg: Expr) -> AggExpr {
    AggExpr::new(AggFunc::Avg, Some(arg))
}

/// How a bound call accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Count,
    SumLong,
    SumDouble,
    Min,
    Max,
    Avg,
}

/// One aggregate call, bound.
#[derive(Debug, Clone)]
pub(crate) struct AggCall {
    kind: Kind,
    arg: Option<Compiled>,
    text: Arc<str>,
}

/// The accumulator of one call (checkpointed with the keyed state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Acc {
    Count(i64),
    SumLong(Option<i64>),
    SumDouble(Option<f64>),
    /// The least (or greatest) value so far; null before the first.
    Extreme(Value),
    Avg(f64, i64),
}

/// Every aggregate of one `agg(..)`, as one [`Aggregate`] over rows: its output is the
/// calls' values in order.
#[derive(Debug, Clone)]
pub(crate) struct RowAggregate {
    calls: Arc<[AggCall]>,
}

impl RowAggregate {
    pub(crate) fn new(calls: Vec<AggCall>) -> RowAggregate {
        RowAggregate {
            calls: calls.into(),
        }
    }
}

fn overflow(call: &AggCall) -> ! {
    panic!(
        "expression `{}` failed: integer overflow: the sum does not fit bigint",
        call.text
    )
}

impl Aggregate<Row> for RowAggregate {
    type Acc = Vec<Acc>;
    type Out = Vec<Value>;

    fn init(&self) -> Vec<Acc> {
        self.calls
            .iter()
            .map(|call| match call.kind {
                Kind::Count => Acc::Count(0),
                Kind::SumLong => Acc::SumLong(None),
                Kind::SumDouble => Acc::SumDouble(None),
                Kind::Min | Kind::Max => Acc::Extreme(Value::Null),
                Kind::Avg => Acc::Avg(0.0, 0),
            })
            .collect()
    }

    #[inline]
    fn add(&self, accs: &mut Vec<Acc>, row: &Row) {
        for (call, acc) in self.calls.iter().zip(accs.iter_mut()) {
            // A plain column (most aggregates' argument) is read in place, not cloned.
            let computed;
            let value: &Value = match &call.arg {
                Some(arg) => match arg.expr.as_column() {
                    Some(column) => &row.values()[column],
                    None => {
                        computed = arg.eval(row);
                        &computed
                    }
                },
                None => &Value::Boolean(true),
            };
            if value.is_null() {
                continue;
            }
            match acc {
                Acc::Count(n) => *n += 1,
                Acc::SumLong(sum) => {
                    let x = value.as_i64().expect("bound as an integer");
                    *sum = Some(match sum {
                        None => x,
                        Some(s) => s.checked_add(x).unwrap_or_else(|| overflow(call)),
                    });
                }
                Acc::SumDouble(sum) => {
                    let x = value.as_f64().expect("bound as a double");
                    *sum = Some(sum.map_or(x, |s| s + x));
                }
                Acc::Extreme(best) => {
                    let better = best.is_null()
                        || match call.kind {
                            Kind::Min => value < best,
                            _ => value > best,
                        };
                    if better {
                        *best = value.clone();
                    }
                }
                Acc::Avg(sum, n) => {
                    *sum += value.as_f64().expect("bound as a number");
                    *n += 1;
                }
            }
        }
    }

    fn merge(&self, accs: &mut Vec<Acc>, others: &Vec<Acc>) {
        for ((call, acc), other) in self.calls.iter().zip(accs.iter_mut()).zip(others) {
            match (acc, other) {
                (Acc::Count(n), Acc::Count(m)) => *n += m,
                (Acc::SumLong(sum), Acc::SumLong(Some(x))) => {
                    *sum = Some(match sum {
                        None => *x,
                        Some(s) => s.checked_add(*x).unwrap_or_else(|| overflow(call)),
                    });
                }
                (Acc::SumDouble(sum), Acc::SumDouble(Some(x))) => {
                    *sum = Some(sum.map_or(*x, |s| s + x));
                }
                (Acc::Extreme(best), Acc::Extreme(value)) => {
                    let better = !value.is_null()
                        && (best.is_null()
                            || match call.kind {
                                Kind::Min => value < best,
                                _ => value > best,
                            });
                    if better {
                        *best = value.clone();
                    }
                }
                (Acc::Avg(sum, n), Acc::Avg(other_sum, m)) => {
                    *sum += other_sum;
                    *n += m;
                }
                _ => {}
            }
        }
    }

    fn result(&self, accs: &Vec<Acc>) -> Vec<Value> {
        accs.iter()
            .map(|acc| match acc {
                Acc::Count(n) => Value::Long(*n),
                Acc::SumLong(sum) => Value::from(*sum),
                Acc::SumDouble(sum) => Value::from(*sum),
                Acc::Extreme(value) => value.clone(),
                Acc::Avg(_, 0) => Value::Null,
                Acc::Avg(sum, n) => Value::Double(sum / *n as f64),
            })
            .collect()
    }
}
