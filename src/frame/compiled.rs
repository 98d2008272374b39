//! Bound expressions with the text they came from, and the per-row steps a DataFrame's
//! `select` / `filter` / `with_column` compile to: one operator runs a run of them.

use crate::expr::BoundExpr;
use crate::operator::{Context, Operator};
use crate::row::{Row, Value};
use crate::table::StaticTable;
use std::sync::Arc;

/// A bound expression and its SQL text, for the message of a runtime (ANSI) error.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub(crate) expr: BoundExpr,
    pub(crate) text: Arc<str>,
}

impl Compiled {
    pub(crate) fn new(expr: BoundExpr, text: impl Into<Arc<str>>) -> Compiled {
        Compiled {
            expr,
            text: text.into(),
        }
    }

    /// The value on `row`. An ANSI error (overflow, division by zero, a bad cast)
    /// panics with the expression's text: the query fails with
    /// [`Error::OperatorPanicked`](crate::Error::OperatorPanicked) naming the operator
    /// and the expression, as Spark fails the query.
    #[inline]
    pub(crate) fn eval(&self, row: &Row) -> Value {
        match self.expr.eval(row) {
            Ok(value) => value,
            Err(error) => panic!("expression `{}` failed: {error}", self.text),
        }
    }

    /// [`eval`](Self::eval) as a filter reads it: only `true` keeps the row.
    #[inline]
    pub(crate) fn test(&self, row: &Row) -> bool {
        match self.expr.eval_predicate(row) {
            Ok(keep) => keep,
            Err(error) => panic!("expression `{}` failed: {error}", self.text),
        }
    }
}

/// One per-row step.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Keep the rows the condition is true for.
    Filter(Compiled),
    /// Replace the row with these values.
    Project(Arc<[Compiled]>),
    /// Join with a static table (a row per matching table row).
    Join(Arc<JoinStep>),
    /// A projection with a generator: a row per piece of a split string.
    Explode(Arc<ExplodeStep>),
}

/// `select(a, explode(split(s, pattern)) AS w, b)` as a row step: the other items, the
/// generator's place among them, the string split and the compiled pattern.
#[derive(Debug)]
pub(crate) struct ExplodeStep {
    /// The select's items other than the generator, in order.
    pub(crate) items: Arc<[Compiled]>,
    /// Where the generator's column goes among them.
    pub(crate) position: usize,
    /// The string split (null: no rows).
    pub(crate) source: Compiled,
    /// The pattern, compiled once.
    pub(crate) pattern: regex::Regex,
}

impl ExplodeStep {
    /// The pieces of `row`'s string, each with the other items' values (evaluated once),
    /// handed to `out` in order; none for a null string.
    #[inline]
    fn rows(&self, row: &Row, mut out: impl FnMut(Row)) {
        let text = match self.source.eval(row) {
            Value::String(text) => text,
            Value::Null => return,
            other => panic!("`{}` is not a string: {other:?}", self.source.text),
        };
        let items: Vec<Value> = self.items.iter().map(|item| item.eval(row)).collect();
        let (before, after) = items.split_at(self.position);
        for piece in self.pattern.split(&text) {
            let mut values = Vec::with_capacity(items.len() + 1);
            values.extend_from_slice(before);
            values.push(Value::string(piece));
            values.extend_from_slice(after);
            out(Row::new(values));
        }
    }
}

/// A stream–static equi-join as a row step: the table's rows by key, the stream row's
/// key expressions (cast to the keys' common type), and whether a row without a match
/// is kept with nulls (left outer) or dropped (inner).
#[derive(Debug)]
pub(crate) struct JoinStep {
    pub(crate) keys: Arc<[Compiled]>,
    pub(crate) table: StaticTable<Vec<Value>, Row>,
    pub(crate) outer: bool,
    /// The number of the table's columns.
    pub(crate) width: usize,
}

impl JoinStep {
    /// The joined row: the stream row's values, then the table row's (nulls without
    /// one). Moves `left`'s values where it is not needed again.
    #[inline]
    fn joined(&self, left: Row, right: Option<&Row>) -> Row {
        let mut values = left.into_values();
        values.reserve(self.width);
        match right {
            Some(right) => values.extend(right.values().iter().cloned()),
            None => values.resize(values.len() + self.width, Value::Null),
        }
        Row::new(values)
    }
}

/// The operator that runs a run of steps on each row (chained on its upstream's
/// thread, as `map` and `filter` are).
#[derive(Debug, Clone)]
pub(crate) struct RowSteps {
    pub(crate) steps: Arc<[Step]>,
    /// A join's key, reused from row to row (no allocation per lookup).
    pub(crate) scratch: Vec<Value>,
}

impl RowSteps {
    /// The operator running `steps`.
    pub(crate) fn new(steps: Vec<Step>) -> RowSteps {
        RowSteps {
            steps: steps.into(),
            scratch: Vec::new(),
        }
    }
}

/// Runs `steps` on `row`, handing each resulting row to `out` (none if a filter drops
/// it, several where a join matches several table rows).
#[inline]
fn run(steps: &[Step], scratch: &mut Vec<Value>, mut row: Row, out: &mut impl FnMut(Row)) {
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Filter(condition) => {
                if !condition.test(&row) {
                    return;
                }
            }
            Step::Project(exprs) => {
                row = exprs.iter().map(|expr| expr.eval(&row)).collect();
            }
            Step::Explode(explode) => {
                // Each piece goes through the rest of the steps.
                let rest = &steps[i + 1..];
                explode.rows(&row, |piece| run(rest, scratch, piece, out));
                return;
            }
            Step::Join(join) => {
                scratch.clear();
                scratch.extend(join.keys.iter().map(|key| key.eval(&row)));
                // Spark's equi-join never matches a null key.
                let matches = if scratch.iter().any(Value::is_null) {
                    &[][..]
                } else {
                    join.table.get(&scratch[..])
                };
                let rest = &steps[i + 1..];
                match matches {
                    [] if join.outer => row = join.joined(row, None),
                    [] => return,
                    [init @ .., last] => {
                        for right in init {
                            run(rest, scratch, join.joined(row.clone(), Some(right)), out);
                        }
                        row = join.joined(row, Some(last));
                    }
                }
                // The last (or only) row goes on through the rest of the steps here.
            }
        }
    }
    out(row);
}

impl Operator<Row> for RowSteps {
    type Out = Row;
    type Key = ();
    type Side = ();

    #[inline]
    fn on_record<C: Context<Row>>(&mut self, row: Row, out: &mut C) {
        let RowSteps { steps, scratch } = self;
        run(steps, scratch, row, &mut |row| out.push(row));
    }
}
