//! Bound expressions with the text they came from, and the per-row steps a DataFrame's
//! `select` / `filter` / `with_column` compile to: one operator runs a run of them.

use crate::expr::BoundExpr;
use crate::operator::{Context, Operator};
use crate::row::{Row, Value};
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
}

/// The operator that runs a run of steps on each row (chained on its upstream's
/// thread, as `map` and `filter` are).
#[derive(Debug, Clone)]
pub(crate) struct RowSteps {
    pub(crate) steps: Arc<[Step]>,
}

impl RowSteps {
    /// The row after every step, or `None` if a filter dropped it.
    #[inline]
    pub(crate) fn apply(&self, mut row: Row) -> Option<Row> {
        for step in self.steps.iter() {
            match step {
                Step::Filter(condition) => {
                    if !condition.test(&row) {
                        return None;
                    }
                }
                Step::Project(exprs) => {
                    row = exprs.iter().map(|expr| expr.eval(&row)).collect();
                }
            }
        }
        Some(row)
    }
}

impl Operator<Row> for RowSteps {
    type Out = Row;
    type Key = ();
    type Side = ();

    #[inline]
    fn on_record<C: Context<Row>>(&mut self, row: Row, out: &mut C) {
        if let Some(row) = self.apply(row) {
            out.push(row);
        }
    }
}
