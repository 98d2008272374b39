//! Stream–stream joins of two [`DataFrame`]s ([`DataFrame::join`], with a
//! [`JoinCondition`]), planned onto the typed stream–stream join
//! ([`join`](crate::join)): both frames are partitioned by their key values into one
//! join operator, whose output builds the joined row and checks the residual condition.

use super::compiled::{Compiled, Step};
use super::erased::{event_time, Base};
use super::join::key_type;
use super::{DataFrame, FrameError, JoinType};
use crate::expr::{Expr, ExprError};
use crate::join::condition::Condition;
use crate::join::operator::EventTimeOf;
use crate::join::output::JoinOutput;
use crate::join::TimeRange;
use crate::row::{DataType, Field, Row, Schema, Value};
use crate::stream::{JoinBuilder, KeyedConnection, StreamJoinType};
use std::rc::Rc;
use std::sync::Arc;

/// The condition of a stream–stream join ([`DataFrame::join`]), Spark's
/// `impressions.join(clicks, expr("clickAdId = impressionAdId AND clickTime >=
/// impressionTime AND clickTime <= impressionTime + interval 1 hour"), "leftOuter")`
/// taken apart: the equal keys, the bounds on the difference of the two sides' event
/// times (the columns each frame's
/// [`with_watermark`](DataFrame::with_watermark) named), and any other condition on the
/// joined row. [`DataFrame::join_expr`] reads the same condition from SQL text.
///
/// ```
/// use rivulet::expr::col;
/// use rivulet::frame::JoinCondition;
/// use rivulet::join::TimeRange;
/// use std::time::Duration;
///
/// // impressionAdId = clickAdId AND
/// // impressionTime BETWEEN clickTime - 1 hour AND clickTime
/// let on = JoinCondition::keys([(col("impressionAdId"), col("clickAdId"))])
///     .within(TimeRange::new(Duration::from_secs(3600), Duration::ZERO));
/// assert_eq!(on.time_bounds(), (Some(-3_600_000_000), Some(0)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct JoinCondition {
    keys: Vec<(Expr, Expr)>,
    lower: Option<i64>,
    upper: Option<i64>,
    residual: Option<Expr>,
}

impl JoinCondition {
    /// Rows whose key expressions are equal, pair by pair (`(left, right)`: an
    /// expression of the left frame's rows and one of the right's).
    pub fn keys(pairs: impl IntoIterator<Item = (Expr, Expr)>) -> JoinCondition {
        JoinCondition {
            keys: pairs.into_iter().collect(),
            lower: None,
            upper: None,
            residual: None,
        }
    }

    /// And `left.time BETWEEN right.time + lower AND right.time + upper`, the times
    /// being the event-time columns of the two frames.
    pub fn within(self, range: TimeRange) -> JoinCondition {
        self.time_at_least(range.lower_micros())
            .time_at_most(range.upper_micros())
    }

    /// And `left.time - right.time >= micros` (a one-sided bound; several bounds
    /// combine to the narrowest).
    pub fn time_at_least(mut self, micros: i64) -> JoinCondition {
        self.lower = Some(self.lower.map_or(micros, |lower| lower.max(micros)));
        self
    }

    /// And `left.time - right.time <= micros`.
    pub fn time_at_most(mut self, micros: i64) -> JoinCondition {
        self.upper = Some(self.upper.map_or(micros, |upper| upper.min(micros)));
        self
    }

    /// And `condition` on the joined row (its columns named as in the joined frame).
    /// It is part of the match, as in Spark: in an outer join, a row whose only
    /// matches fail it is emitted with nulls.
    pub fn and(mut self, condition: Expr) -> JoinCondition {
        self.residual = Some(match self.residual.take() {
            Some(residual) => residual.and(condition),
            None => condition,
        });
        self
    }

    /// The bounds on `left.time - right.time` in µs (`None`: unbounded that way).
    pub fn time_bounds(&self) -> (Option<i64>, Option<i64>) {
        (self.lower, self.upper)
    }
}

/// The event time of a joined frame's rows, from its event-time column (none: the
/// join has no event time).
#[derive(Debug, Clone, Copy)]
struct RowTime(Option<usize>);

impl EventTimeOf<Row> for RowTime {
    #[inline(always)]
    fn time_of(&self, row: &Row) -> i64 {
        self.0.map_or(0, |column| event_time(row, column).0)
    }
}

/// What the join of two frames emits: the joined row (both sides' values, nulls for a
/// missing side) where the residual condition holds; unmatched rows of the sides the
/// join type preserves.
#[derive(Debug, Clone)]
struct RowJoin {
    how: JoinType,
    residual: Option<Compiled>,
    left_width: usize,
    right_width: usize,
}

impl RowJoin {
    #[inline]
    fn joined(&self, left: Option<&Row>, right: Option<&Row>) -> Row {
        let mut values = Vec::with_capacity(self.left_width + self.right_width);
        match left {
            Some(left) => values.extend(left.values().iter().cloned()),
            None => values.resize(self.left_width, Value::Null),
        }
        match right {
            Some(right) => values.extend(right.values().iter().cloned()),
            None => values.resize(self.left_width + self.right_width, Value::Null),
        }
        Row::new(values)
    }
}

impl JoinOutput<Vec<Value>, Row, Row> for RowJoin {
    type Out = Row;
    // The join type is chosen at run time: unmatched rows are offered on both sides,
    // and emitted where the join type preserves that side.
    const LEFT_OUTER: bool = true;
    const RIGHT_OUTER: bool = true;

    #[inline]
    fn both(&mut self, _key: &Vec<Value>, left: &Row, right: &Row) -> Option<Row> {
        let row = self.joined(Some(left), Some(right));
        match &self.residual {
            Some(condition) if !condition.test(&row) => None,
            _ => Some(row),
        }
    }

    fn left_only(&mut self, _key: &Vec<Value>, left: &Row) -> Option<Row> {
        matches!(self.how, JoinType::LeftOuter | JoinType::FullOuter)
            .then(|| self.joined(Some(left), None))
    }

    fn right_only(&mut self, _key: &Vec<Value>, right: &Row) -> Option<Row> {
        matches!(self.how, JoinType::RightOuter | JoinType::FullOuter)
            .then(|| self.joined(None, Some(right)))
    }
}

/// One input of a stream–stream join being planned: the connection it feeds, its key
/// expressions (cast to the keys' common types), which side it is, and whether the
/// join preserves it (an outer side keeps rows with a null key, which match nothing;
/// another side drops them).
pub(crate) struct JoinInput<'a> {
    pub(crate) connection: &'a mut KeyedConnection<Vec<Value>, Row, Row>,
    pub(crate) keys: Arc<[Compiled]>,
    pub(crate) left: bool,
    pub(crate) preserved: bool,
}

/// The join key of a row: its key values; for a key with a null, which matches nothing
/// in Spark's equi-join, one more value naming the side, so that it equals no key of
/// the other side.
pub(crate) fn join_key(
    keys: Arc<[Compiled]>,
    left: bool,
) -> impl FnMut(&Row) -> Vec<Value> + Clone + Send + 'static {
    move |row: &Row| {
        let mut key: Vec<Value> = keys.iter().map(|k| k.eval(row)).collect();
        if key.iter().any(Value::is_null) {
            key.push(Value::Boolean(left));
        }
        key
    }
}

/// Whether a row goes into the join: a preserved side's always, another's only with a
/// key without nulls.
pub(crate) fn joins(
    keys: Arc<[Compiled]>,
    preserved: bool,
) -> impl FnMut(&Row) -> bool + Clone + Send + 'static {
    move |row: &Row| preserved || keys.iter().all(|k| !k.eval(row).is_null())
}

fn sides(how: JoinType) -> (bool, bool) {
    match how {
        JoinType::Inner => (false, false),
        JoinType::LeftOuter => (true, false),
        JoinType::RightOuter => (false, true),
        JoinType::FullOuter => (true, true),
    }
}

impl DataFrame {
    /// The column that is this frame's event time, if it has one: the column its
    /// [`with_watermark`](Self::with_watermark) named, where the steps since have put
    /// it (`None` after a step that dropped or computed it, or after an aggregate).
    pub(crate) fn event_time_column(&self) -> Option<usize> {
        let (mut column, _) = self.watermark?;
        for step in &self.after {
            match step {
                Step::Filter(_) | Step::Join(_) => {}
                Step::Project(exprs) => {
                    column = exprs
                        .iter()
                        .position(|e| e.expr.as_column() == Some(column))?;
                }
                // The other items keep their order, the generator's column among them.
                Step::Explode(explode) => {
                    let item = explode
                        .items
                        .iter()
                        .position(|e| e.expr.as_column() == Some(column))?;
                    column = if item < explode.position {
                        item
                    } else {
                        item + 1
                    };
                }
            }
        }
        Some(column)
    }

    /// The same rows with the columns named `names` (the SQL planner's names for
    /// columns that another relation of a join also has).
    pub(crate) fn renamed(mut self, names: &[String]) -> Result<DataFrame, FrameError> {
        let fields = self.schema.fields().iter().zip(names).map(|(field, name)| {
            let renamed = Field::new(name, field.data_type());
            if field.is_nullable() {
                renamed
            } else {
                renamed.not_null()
            }
        });
        self.schema = Arc::new(Schema::new(fields)?);
        Ok(self)
    }

    /// The stream–stream join of this frame (the left side) with `other` (Spark's
    /// `left.join(right, condition, joinType)` of two streaming DataFrames), planned onto
    /// the typed [stream–stream join](crate::join): its semantics (late rows, state
    /// eviction, when an outer join emits its null rows) are that operator's. The
    /// columns are this frame's, then `other`'s; those of a side an outer join may
    /// leave empty are nullable.
    ///
    /// The time bounds of `on` compare the frames' event-time columns (the columns their
    /// [`with_watermark`](Self::with_watermark) named). What Spark requires holds:
    ///
    /// * an **inner** join needs only its keys; without a time condition its state is
    ///   never evicted (Spark's too), and late rows are dropped only if both frames
    ///   have watermarks;
    /// * a **left outer** join needs watermarks on both frames and a bound on how late a
    ///   matching right row can be (`left.time - right.time >= lower`), so that a left
    ///   row is known to have no match once the watermark passes; a **right outer** one
    ///   an upper bound; a **full outer** one both.
    ///
    /// The residual condition ([`JoinCondition::and`]) is checked as part of the match,
    /// as Spark does: an inner join emits only pairs that pass it (as a filter after
    /// the join would), an outer join a null row for a row whose pairs all failed it.
    /// A null key matches nothing, as in Spark.
    ///
    /// ```
    /// use rivulet::expr::col;
    /// use rivulet::frame::{DataFrame, JoinCondition, JoinType};
    /// use rivulet::join::TimeRange;
    /// use rivulet::row::{DataType, Field, Row, Schema, Value};
    /// use rivulet::Timestamp;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let schema = |id: &str, time: &str| {
    ///     Arc::new(Schema::new([
    ///         Field::new(id, DataType::Long),
    ///         Field::new(time, DataType::Timestamp),
    ///     ]).unwrap())
    /// };
    /// let rows = |rows: &[(i64, i64)]| -> Vec<Row> {
    ///     rows.iter()
    ///         .map(|&(id, s)| Row::new(vec![Value::Long(id), Value::Timestamp(Timestamp(s * 1_000_000))]))
    ///         .collect()
    /// };
    /// let mut query = rivulet::Query::builder();
    /// let impressions = DataFrame::new(
    ///     query.from_iter("impressions", rows(&[(1, 0), (2, 1), (3, 2), (4, 40)])),
    ///     schema("impressionAdId", "impressionTime"),
    /// )
    /// .with_watermark("impressionTime", "2 seconds")?;
    /// let clicks = DataFrame::new(
    ///     query.from_iter("clicks", rows(&[(1, 5), (2, 30), (4, 41)])),
    ///     schema("clickAdId", "clickTime"),
    /// )
    /// .with_watermark("clickTime", "3 seconds")?;
    /// // A click counts within 10 s after its impression.
    /// let on = JoinCondition::keys([(col("impressionAdId"), col("clickAdId"))])
    ///     .within(TimeRange::new(Duration::from_secs(10), Duration::ZERO));
    /// let joined = impressions.join(clicks, on, JoinType::LeftOuter)?;
    /// assert_eq!(joined.columns(), ["impressionAdId", "impressionTime", "clickAdId", "clickTime"]);
    /// let table = joined.to_memory("joined");
    /// query.start()?.await_termination()?;
    /// let mut clicked: Vec<(Value, bool)> = table
    ///     .rows()
    ///     .iter()
    ///     .map(|r| (r.values()[0].clone(), !r.values()[2].is_null()))
    ///     .collect();
    /// clicked.sort_by_key(|(id, _)| id.to_string());
    /// // Ads 1 and 4 were clicked in time, ad 2 too late, ad 3 never: with the final
    /// // watermark (38 s), no click can come for them any more.
    /// assert_eq!(
    ///     clicked,
    ///     [(Value::Long(1), true), (Value::Long(2), false), (Value::Long(3), false), (Value::Long(4), true)]
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// No keys, a key or residual condition that does not bind, keys of types that cannot
    /// be compared, a column name both frames have (rename one first), frames of two
    /// different queries, an outer join without the watermarks and time bounds it
    /// needs, or bounds no pair of rows can meet.
    pub fn join(
        self,
        other: DataFrame,
        on: JoinCondition,
        how: JoinType,
    ) -> Result<DataFrame, FrameError> {
        let graph = self.stream.graph();
        if !Rc::ptr_eq(&graph, &other.stream.graph()) {
            return Err(FrameError::Invalid(
                "a stream–stream join needs two frames of the same query".to_string(),
            ));
        }
        // Keys, cast to their common types.
        let mut left_keys = Vec::with_capacity(on.keys.len());
        let mut right_keys = Vec::with_capacity(on.keys.len());
        for (left, right) in &on.keys {
            let l = left.bind(&self.schema)?;
            let r = right.bind(&other.schema)?;
            let common = key_type(l.data_type(), r.data_type()).ok_or_else(|| {
                FrameError::Expr(ExprError::Type {
                    expr: format!("{left} = {right}"),
                    message: format!(
                        "join keys of types {} and {} cannot be compared",
                        l.data_type(),
                        r.data_type()
                    ),
                })
            })?;
            let cast = |e: &Expr, t: DataType| {
                if t == common {
                    e.clone()
                } else {
                    e.clone().cast(common)
                }
            };
            let left = cast(left, l.data_type());
            let right = cast(right, r.data_type());
            left_keys.push(Compiled::new(left.bind(&self.schema)?, left.to_string()));
            right_keys.push(Compiled::new(right.bind(&other.schema)?, right.to_string()));
        }
        if left_keys.is_empty() {
            return Err(FrameError::Invalid(
                "a stream–stream join needs at least one pair of equal keys (Spark plans \
                 stream–stream joins as equi-joins only)"
                    .to_string(),
            ));
        }

        // The time condition, and what the join type needs of it.
        let times = (self.event_time_column(), other.event_time_column());
        let timed = times.0.is_some() && times.1.is_some();
        let what = match how {
            JoinType::Inner => "an inner",
            JoinType::LeftOuter => "a left outer",
            JoinType::RightOuter => "a right outer",
            JoinType::FullOuter => "a full outer",
        };
        let (preserve_left, preserve_right) = sides(how);
        if (preserve_left || preserve_right) && !timed {
            return Err(FrameError::Invalid(format!(
                "{what} stream–stream join needs watermarks on both frames \
                 (with_watermark(column, delay), and the event-time column still there): \
                 {} has none",
                match times {
                    (None, None) => "neither",
                    (None, _) => "the left",
                    _ => "the right",
                }
            )));
        }
        let condition = match (on.lower, on.upper) {
            (None, None) => Condition::Unbounded,
            (lower, upper) => {
                if !timed {
                    return Err(FrameError::Invalid(format!(
                        "a time condition between the two sides of a join compares their \
                         event times: {} frame has no event-time column (with_watermark)",
                        if times.0.is_none() {
                            "the left"
                        } else {
                            "the right"
                        }
                    )));
                }
                let range = TimeRange::from_micros(
                    lower.unwrap_or(i64::MIN / 4),
                    upper.unwrap_or(i64::MAX / 4),
                )
                .map_err(|error| FrameError::Invalid(error.to_string()))?;
                Condition::Range(range)
            }
        };
        if preserve_left && on.lower.is_none() {
            return Err(FrameError::Invalid(format!(
                "{what} stream–stream join needs a time condition that bounds how late a \
                 matching right row can come (right.time <= left.time + interval, i.e. \
                 left.time - right.time >= lower), or no left row is ever known to have no \
                 match (Spark refuses it too)"
            )));
        }
        if preserve_right && on.upper.is_none() {
            return Err(FrameError::Invalid(format!(
                "{what} stream–stream join needs a time condition that bounds how late a \
                 matching left row can come (left.time <= right.time + interval, i.e. \
                 left.time - right.time <= upper), or no right row is ever known to have no \
                 match (Spark refuses it too)"
            )));
        }

        // The joined schema and the residual condition on it.
        let nullable = |field: &Field, preserved_other: bool| {
            if preserved_other {
                Field::new(field.name(), field.data_type())
            } else {
                field.clone()
            }
        };
        let fields = (self.schema.fields().iter())
            .map(|f| nullable(f, preserve_right))
            .chain(
                other
                    .schema
                    .fields()
                    .iter()
                    .map(|f| nullable(f, preserve_left)),
            );
        let schema = Arc::new(Schema::new(fields)?);
        let residual = match &on.residual {
            None => None,
            Some(condition) => {
                let bound = condition.bind(&schema)?;
                if !matches!(bound.data_type(), DataType::Boolean | DataType::Null) {
                    return Err(FrameError::Expr(ExprError::Type {
                        expr: condition.to_string(),
                        message: format!(
                            "a join condition must be boolean, not {}",
                            bound.data_type()
                        ),
                    }));
                }
                Some(Compiled::new(bound, condition.to_string()))
            }
        };

        let output = RowJoin {
            how,
            residual,
            left_width: self.schema.len(),
            right_width: other.schema.len(),
        };
        let mut connection = KeyedConnection::new(&graph);
        let (left, left_prelude, _) = self.flush();
        let (right, right_prelude, _) = other.flush();
        left.join_input(
            left_prelude,
            JoinInput {
                connection: &mut connection,
                keys: left_keys.into(),
                left: true,
                preserved: preserve_left,
            },
        );
        right.join_input(
            right_prelude,
            JoinInput {
                connection: &mut connection,
                keys: right_keys.into(),
                left: false,
                preserved: preserve_right,
            },
        );
        let join_type = match how {
            JoinType::Inner => StreamJoinType::Inner,
            JoinType::LeftOuter => StreamJoinType::LeftOuter,
            JoinType::RightOuter => StreamJoinType::RightOuter,
            JoinType::FullOuter => StreamJoinType::FullOuter,
        };
        let stream = JoinBuilder::from_connected(connection.finish()).planned(
            join_type,
            condition,
            (RowTime(times.0), RowTime(times.1)),
            timed,
            output,
        );
        Ok(DataFrame::from_erased(Box::new(Base(stream)), schema))
    }
}
