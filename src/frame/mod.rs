//! DataFrames: streams of [`Row`]s with a [`Schema`], and Spark's untyped operations on
//! them (`select`, `filter`, `with_column`, `group_by(..).agg(..)`, `window`,
//! `with_watermark`, `drop_duplicates`, `union`, joins with static tables ([`StaticFrame`],
//! [`DataFrame::join_static`]) and with other streams ([`DataFrame::join`]),
//! `print_schema`, console output), planned onto the same
//! operators the typed [`Stream`] API uses. SQL ([`QueryBuilder::sql`]) plans onto this.
//!
//! ```
//! use rivulet::expr::{col, lit};
//! use rivulet::frame::{avg, count_all, DataFrame};
//! use rivulet::row::{DataType, Field, Row, Schema, Value};
//! use std::sync::Arc;
//!
//! let schema = Arc::new(Schema::new([
//!     Field::new("resid", DataType::String),
//!     Field::new("psi", DataType::Double),
//! ])?);
//! let rows = [("COHUTTA", 0.25), ("BUTTE", 2.0), ("COHUTTA", 0.75)]
//!     .map(|(resid, psi)| Row::new(vec![Value::string(resid), Value::Double(psi)]));
//!
//! let mut query = rivulet::Query::builder();
//! query.output_mode(rivulet::OutputMode::Complete);
//! let sensor = DataFrame::new(query.from_iter("sensor", rows), schema);
//! let stats = sensor
//!     .filter(col("psi").lt(lit(1.0)))?
//!     .group_by([col("resid")])?
//!     .agg([count_all(), avg(col("psi")).alias("avgpsi")])?;
//! assert_eq!(stats.columns(), ["resid", "count(1)", "avgpsi"]);
//! let table = stats.to_memory("stats");
//! query.start()?.await_termination()?;
//! let last = table.rows().pop().unwrap();
//! assert_eq!(last.values(), [Value::string("COHUTTA"), Value::Long(2), Value::Double(0.5)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## How it runs
//!
//! A DataFrame holds its stream with the chain type erased once, at build time
//! (`erased.rs`): no per-record virtual call. Expressions are bound to the schema when
//! the operation is called ([`Expr::bind`]): unknown columns and type errors are `Err`
//! there, naming the columns that exist. Consecutive `select` / `filter` /
//! `with_column` calls become one operator, chained on the upstream thread, that runs
//! the bound expressions on each row; a stream–static join is one more such step (a hash
//! lookup in the static table, a row per match). `group_by(..).agg(..)` is
//! [`Stream::key_by`] + [`KeyedStream::agg`](crate::KeyedStream::agg) (with `window`:
//! [`KeyedStream::window`](crate::KeyedStream::window)) over an [`Aggregate`] of rows,
//! so output modes, both trigger modes and checkpoints work as for typed queries.
//!
//! A runtime error of an expression (Spark's ANSI errors: overflow, division by zero,
//! a bad cast) fails the query with
//! [`Error::OperatorPanicked`](crate::Error::OperatorPanicked), whose message names the
//! expression.
//!
//! ## Where rivulet differs from Spark
//!
//! * **The window column.** Spark's `window(..)` in a grouping is one struct column
//!   `window` with fields `start` and `end`. Rows have no nested types, so rivulet
//!   gives two timestamp columns, `window_start` and `window_end`, where Spark's
//!   `window` column would be (SQL's `window.start` / `window.end` name them).
//! * **A frame is used once.** A DataFrame is a stream being built: each operation
//!   consumes it. A view registered with
//!   [`create_or_replace_temp_view`](DataFrame::create_or_replace_temp_view) is read by
//!   one `sql(..)` statement; register another frame (another read of the source) for
//!   another statement.
//! * **Rows with a null event time** are dropped before a windowed aggregate (Spark
//!   groups them under a null window that never closes).
//! * **No array columns.** [`split`](crate::expr::split) is taken only inside
//!   [`explode`](crate::expr::explode), a select's generator (Spark's word count,
//!   `explode(split(value, ' '))`); Spark's other uses of arrays are not there. A split
//!   pattern is a `regex` crate pattern, and one that matches the empty string is
//!   refused.
//! * **Deduplication** by event time without the event-time column among the keys
//!   keeps its keys for ever, as Spark; a frame that loses its watermark column by name
//!   (a `select` without it, a union, an aggregate) deduplicates without dropping late
//!   rows.
//!
//! [`Aggregate`]: crate::aggregate::Aggregate
//! [`QueryBuilder::sql`]: crate::QueryBuilder::sql
//!
//! ## Files
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | [`DataFrame`], [`GroupedData`], [`Grouping`], [`window`], [`FrameError`] |
//! | `agg.rs` | [`AggExpr`] and its constructors; the [`Aggregate`] over rows they plan to |
//! | `dedup.rs` | [`DataFrame::drop_duplicates`] and [`DataFrame::drop_duplicates_within_watermark`] |
//! | `compiled.rs` | bound expressions with their text; the per-row step operator |
//! | `erased.rs` | the row stream with its chain type erased |
//! | `join.rs` | [`StaticFrame`], [`DataFrame::join_static`] and [`JoinType`]: stream–static joins as a row step |
//! | `stream_join.rs` | [`DataFrame::join`] and [`JoinCondition`]: stream–stream joins, planned onto the typed [`join`](crate::join) operator |
//! | `duration.rs` | Spark's interval strings (`"1 hour"`, `"30 minutes"`) |

mod agg;
mod compiled;
mod dedup;
mod duration;
mod erased;
mod generator;
mod join;
mod stream_join;

pub use agg::{avg, count, count_all, max, min, sum, AggExpr, AggFunc};
pub use duration::parse_duration;
pub use join::{JoinType, StaticFrame};
pub use stream_join::JoinCondition;

use crate::expr::{Expr, ExprError};
use crate::row::{DataType, Field, Row, Schema, SchemaError};
use crate::sink::{ConsoleSink, FileFormat, MemoryTable};
use crate::stream::{Chain, InputChain, Stream};
use crate::window::TimeWindows;
use compiled::{Compiled, RowSteps, Step};
use erased::{GroupPlan, Prelude, RowStream};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a DataFrame operation was refused (Spark's `AnalysisException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// An expression does not bind: an unknown column (the message lists those there
    /// are) or types the operation does not take.
    #[error(transparent)]
    Expr(#[from] ExprError),
    /// A schema problem: duplicate output columns, an unknown column.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// Anything else the operation cannot do, said in words.
    #[error("{0}")]
    Invalid(String),
}

/// A stream of rows of one schema, being built. See the [module docs](self).
#[must_use = "a DataFrame does nothing until it ends in a sink"]
pub struct DataFrame {
    stream: Box<dyn RowStream>,
    schema: Arc<Schema>,
    /// Row steps before the watermark, not yet appended (run as one operator).
    before: Vec<Step>,
    /// The watermark, not yet appended.
    watermark: Option<(usize, Duration)>,
    /// Row steps after the watermark, not yet appended.
    after: Vec<Step>,
    /// The event-time column of the stream's watermark (pending or applied) and its
    /// delay, while the column is there by that name (`drop_duplicates` reads it).
    event_time: Option<(Arc<str>, Duration)>,
}

impl fmt::Debug for DataFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataFrame")
            .field("schema", &self.schema.to_string())
            .finish_non_exhaustive()
    }
}

impl DataFrame {
    /// A DataFrame over `stream`, whose rows are rows of `schema` (as
    /// [`QueryBuilder::read_dir_rows`](crate::QueryBuilder::read_dir_rows) makes them).
    pub fn new<S: Chain<Out = Row>>(stream: Stream<S>, schema: Arc<Schema>) -> DataFrame {
        DataFrame::from_erased(Box::new(erased::Base(stream)), schema)
    }

    fn from_erased(stream: Box<dyn RowStream>, schema: Arc<Schema>) -> DataFrame {
        DataFrame {
            stream,
            schema,
            before: Vec::new(),
            watermark: None,
            after: Vec::new(),
            event_time: None,
        }
    }

    /// The schema of its rows.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The column names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.schema.names().map(str::to_string).collect()
    }

    /// The schema as Spark's `printSchema` shows it (`root`, then ` |-- name: type
    /// (nullable = true)` per column).
    pub fn schema_string(&self) -> String {
        self.schema.tree_string()
    }

    /// Prints [`schema_string`](Self::schema_string) on standard output (Spark's
    /// `printSchema`).
    pub fn print_schema(&self) {
        print!("{}", self.schema_string());
    }

    fn push(mut self, step: Step, schema: Arc<Schema>) -> DataFrame {
        if self.watermark.is_some() {
            self.after.push(step);
        } else {
            self.before.push(step);
        }
        if let Some((column, _)) = &self.event_time {
            if schema.find(column).is_none() {
                self.event_time = None;
            }
        }
        self.schema = schema;
        self
    }

    /// The stream and what to append to it before the next stateful step or sink.
    fn flush(self) -> (Box<dyn RowStream>, Prelude, Arc<Schema>) {
        let steps = RowSteps::new;
        let after = steps(self.after);
        let prelude = Prelude {
            before: steps(self.before),
            watermark: self.watermark.map(|(column, delay)| (column, delay, after)),
        };
        (self.stream, prelude, self.schema)
    }

    fn bind(&self, expr: &Expr) -> Result<Compiled, FrameError> {
        Ok(Compiled::new(expr.bind(&self.schema)?, expr.to_string()))
    }

    /// The expressions' values as the new columns (Spark's `select`). `col("*")` stands
    /// for every column (as does `col("t.*")`, whatever `t` is); other columns are named
    /// by [`Expr::output_name`].
    ///
    /// # Errors
    ///
    /// An expression that does not bind (the message lists the columns), or two output
    /// columns of one name.
    ///
    /// One item may be the generator [`explode`](crate::expr::explode)`(`[`split`](crate::expr::split)`(..))`
    /// (aliased or not): a row per piece, the other items repeated.
    pub fn select(self, exprs: impl IntoIterator<Item = Expr>) -> Result<DataFrame, FrameError> {
        let mut compiled = Vec::new();
        let mut fields = Vec::new();
        let mut generator = None;
        for expr in exprs {
            if let Some((name, array)) = generator::as_generator(&expr) {
                if generator.is_some() {
                    return Err(FrameError::Invalid(format!(
                        "only one generator is allowed per select (Spark's rule): {expr}"
                    )));
                }
                let (source, pattern) = generator::bind_split(array, &self.schema)?;
                generator = Some((compiled.len(), source, pattern));
                fields.push(Field::new(name, DataType::String));
                continue;
            }
            match &expr {
                Expr::Column(name) if name == "*" || name.ends_with(".*") => {
                    for (i, field) in self.schema.fields().iter().enumerate() {
                        let column = crate::expr::col(field.name());
                        compiled.push(Compiled::new(column.bind(&self.schema)?, field.name()));
                        debug_assert_eq!(compiled.last().and_then(|c| c.expr.as_column()), Some(i));
                        fields.push(field.clone());
                    }
                }
                _ => {
                    let bound = self.bind(&expr)?;
                    let field = match (&expr, bound.expr.as_column()) {
                        // A plain column keeps its nullability.
                        (Expr::Column(_), Some(i)) => self.schema.fields()[i].clone(),
                        _ => Field::new(expr.output_name(), bound.expr.data_type()),
                    };
                    fields.push(field);
                    compiled.push(bound);
                }
            }
        }
        let schema = Arc::new(Schema::new(fields)?);
        let step = match generator {
            None => Step::Project(compiled.into()),
            Some((position, source, pattern)) => Step::Explode(Arc::new(compiled::ExplodeStep {
                items: compiled.into(),
                position,
                source,
                pattern,
            })),
        };
        Ok(self.push(step, schema))
    }

    /// Keeps the rows for which `condition` is true (Spark's `filter`; null drops the
    /// row, as false does).
    ///
    /// # Errors
    ///
    /// A condition that does not bind, or that is not boolean.
    pub fn filter(self, condition: Expr) -> Result<DataFrame, FrameError> {
        let bound = self.bind(&condition)?;
        if !matches!(bound.expr.data_type(), DataType::Boolean | DataType::Null) {
            return Err(FrameError::Expr(ExprError::Type {
                expr: condition.to_string(),
                message: format!(
                    "a filter condition must be boolean, not {}",
                    bound.expr.data_type()
                ),
            }));
        }
        let schema = self.schema.clone();
        Ok(self.push(Step::Filter(bound), schema))
    }

    /// The same rows with column `name` set to `expr`: replaced where a column of that
    /// name (ignoring case) exists, else added at the end (Spark's `withColumn`).
    ///
    /// # Errors
    ///
    /// An expression that does not bind.
    pub fn with_column(self, name: &str, expr: Expr) -> Result<DataFrame, FrameError> {
        let bound = self.bind(&expr)?;
        let field = Field::new(name, bound.expr.data_type());
        let mut compiled = Vec::with_capacity(self.schema.len() + 1);
        let mut fields = Vec::with_capacity(self.schema.len() + 1);
        let replaced = self.schema.find(name);
        for (i, f) in self.schema.fields().iter().enumerate() {
            if Some(i) == replaced {
                compiled.push(bound.clone());
                fields.push(field.clone());
            } else {
                let column = crate::expr::col(f.name());
                compiled.push(Compiled::new(column.bind(&self.schema)?, f.name()));
                fields.push(f.clone());
            }
        }
        if replaced.is_none() {
            compiled.push(bound);
            fields.push(field);
        }
        let schema = Arc::new(Schema::new(fields)?);
        Ok(self.push(Step::Project(compiled.into()), schema))
    }

    /// Makes `column` (a timestamp or date) the event time, with watermarks `delay`
    /// behind the newest seen (Spark's `withWatermark("ts", "30 minutes")`; `delay` as
    /// [`parse_duration`] reads it). Windowed aggregates downstream close windows and
    /// drop late rows by it, and append mode becomes possible on them.
    ///
    /// # Errors
    ///
    /// An unknown column, one that is not a timestamp or date, or a delay that does not
    /// parse.
    pub fn with_watermark(self, column: &str, delay: &str) -> Result<DataFrame, FrameError> {
        let index = self.time_column(column)?;
        let delay = parse_duration(delay)?;
        let mut frame = if self.watermark.is_some() {
            // A second watermark: the first one's stream continues on a new thread.
            let (stream, prelude, schema) = self.flush();
            DataFrame::from_erased(Box::new(erased::Base(stream.into_input(prelude))), schema)
        } else {
            self
        };
        frame.watermark = Some((index, delay));
        frame.event_time = Some((column.into(), delay));
        Ok(frame)
    }

    fn time_column(&self, column: &str) -> Result<usize, FrameError> {
        let index = self.schema.index_of(column)?;
        match self.schema.fields()[index].data_type() {
            DataType::Timestamp | DataType::Date => Ok(index),
            other => Err(FrameError::Expr(ExprError::Type {
                expr: column.to_string(),
                message: format!("event time must be a timestamp or a date, not {other}"),
            })),
        }
    }

    /// Groups the rows for [`GroupedData::agg`] (Spark's `groupBy`): by expressions
    /// (usually columns), and at most one event-time [`window`].
    ///
    /// # Errors
    ///
    /// A grouping expression that does not bind, a window column that is not a
    /// timestamp, or two windows.
    pub fn group_by<G: Into<Grouping>>(
        self,
        groupings: impl IntoIterator<Item = G>,
    ) -> Result<GroupedData, FrameError> {
        let mut keys = Vec::new();
        let mut fields = Vec::new();
        let mut window = None;
        for grouping in groupings {
            match grouping.into() {
                Grouping::Expr(expr) => {
                    let bound = self.bind(&expr)?;
                    let field = match bound.expr.as_column() {
                        Some(i) => self.schema.fields()[i].clone(),
                        None => Field::new(expr.output_name(), bound.expr.data_type()),
                    };
                    keys.push(bound);
                    fields.push(field);
                }
                Grouping::Window(spec) => {
                    if window.is_some() {
                        return Err(FrameError::Invalid(
                            "a grouping may have one window, not several".to_string(),
                        ));
                    }
                    let column = self.time_column(&spec.column)?;
                    let windows = match spec.slide {
                        None => TimeWindows::tumbling(spec.length),
                        Some(slide) => TimeWindows::sliding(spec.length, slide),
                    }
                    .map_err(|error| FrameError::Invalid(format!("{spec}: {error}")))?;
                    window = Some((column, windows, keys.len()));
                    fields.push(Field::new("window_start", DataType::Timestamp).not_null());
                    fields.push(Field::new("window_end", DataType::Timestamp).not_null());
                }
            }
        }
        Ok(GroupedData {
            frame: self,
            keys,
            fields,
            window,
        })
    }

    /// The rows of both frames (Spark's `union`, which is `UNION ALL`): columns matched
    /// by position, named as this frame's, on one new thread that reads both.
    ///
    /// # Errors
    ///
    /// Frames with different numbers of columns or column types.
    pub fn union(self, other: DataFrame) -> Result<DataFrame, FrameError> {
        let types = |s: &Schema| s.fields().iter().map(Field::data_type).collect::<Vec<_>>();
        if types(&self.schema) != types(&other.schema) {
            return Err(FrameError::Invalid(format!(
                "union needs the same column types in the same order: {} and {}",
                self.schema, other.schema
            )));
        }
        let (left, left_prelude, schema) = self.flush();
        let (right, right_prelude, _) = other.flush();
        let (stream, port) = left.union_open(left_prelude);
        let input = right.union_add(right_prelude, port);
        Ok(DataFrame::from_erased(
            stream.and_union_input(input),
            schema,
        ))
    }

    /// Registers the frame under `name` (ignoring case) for [`QueryBuilder::sql`] on
    /// the query it belongs to, replacing a view of that name (Spark's
    /// `createOrReplaceTempView`). A view is read by one statement: see the
    /// [module docs](self#where-rivulet-differs-from-spark).
    ///
    /// [`QueryBuilder::sql`]: crate::QueryBuilder::sql
    pub fn create_or_replace_temp_view(self, name: &str) {
        let graph = self.stream.graph();
        let mut graph = graph.borrow_mut();
        graph
            .views
            .retain(|(view, _)| !view.eq_ignore_ascii_case(name));
        graph.views.push((name.to_string(), Box::new(self)));
    }

    fn names(&self) -> Arc<[Arc<str>]> {
        self.schema.names().map(Arc::from).collect()
    }

    /// Collects the rows into a memory table named `name` (Spark's `memory` sink).
    pub fn to_memory(self, name: &str) -> MemoryTable<Row> {
        let (stream, prelude, _) = self.flush();
        stream.to_memory(prelude, name)
    }

    /// Prints the rows on standard output as Spark's console sink does (a table per
    /// micro-batch, headed by the column names; a line per row in continuous epochs).
    pub fn to_console(self) {
        self.to_console_with(ConsoleSink::new(""));
    }

    /// [`to_console`](Self::to_console) with a configured sink (rows shown, truncation,
    /// another writer).
    pub fn to_console_with(self, sink: ConsoleSink) {
        let names = self.names();
        let (stream, prelude, _) = self.flush();
        stream.to_console(prelude, names, sink);
    }

    /// Writes the rows to part files in `dir` (Spark's `file` sink), columns named by
    /// the schema; see [`Stream::to_files`].
    pub fn to_files(self, dir: impl AsRef<std::path::Path>, format: FileFormat) {
        let names = self.names();
        let (stream, prelude, _) = self.flush();
        stream.to_files(prelude, names, dir.as_ref().to_path_buf(), format);
    }

    /// The rows as a typed stream, to continue with the typed API (any sink or
    /// operator). The stream starts on a thread of its own.
    pub fn into_stream(self) -> Stream<InputChain<Row>> {
        let (stream, prelude, _) = self.flush();
        stream.into_input(prelude)
    }
}

/// One item of a [`DataFrame::group_by`]: an expression, or an event-time [`window`].
#[derive(Debug, Clone, PartialEq)]
pub enum Grouping {
    /// Group by the value of an expression.
    Expr(Expr),
    /// Group by event-time window.
    Window(WindowSpec),
}

impl From<Expr> for Grouping {
    fn from(expr: Expr) -> Grouping {
        Grouping::Expr(expr)
    }
}

/// A column by name (`group_by(["word"])`, as Spark's `groupBy("word")`).
impl From<&str> for Grouping {
    fn from(column: &str) -> Grouping {
        Grouping::Expr(crate::expr::col(column))
    }
}

impl From<WindowSpec> for Grouping {
    fn from(spec: WindowSpec) -> Grouping {
        Grouping::Window(spec)
    }
}

/// Spark's `window(col, length[, slide])` in a grouping: tumbling windows of `length`
/// over the timestamp column `column`, or sliding ones every `slide`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    /// The event-time column.
    pub column: String,
    /// The length of a window.
    pub length: Duration,
    /// How far apart windows start (`None`: tumbling, `length` apart).
    pub slide: Option<Duration>,
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "window({}, {:?}", self.column, self.length)?;
        if let Some(slide) = self.slide {
            write!(f, ", {slide:?}")?;
        }
        f.write_str(")")
    }
}

/// `window(column, length)`: tumbling event-time windows for [`DataFrame::group_by`];
/// `length` as [`parse_duration`] reads it (`"1 hour"`). [`window_sliding`] gives
/// sliding windows.
///
/// # Errors
///
/// A length that does not parse.
pub fn window(column: &str, length: &str) -> Result<WindowSpec, FrameError> {
    Ok(WindowSpec {
        column: column.to_string(),
        length: parse_duration(length)?,
        slide: None,
    })
}

/// `window(column, length, slide)`: sliding event-time windows.
///
/// # Errors
///
/// A length or slide that does not parse.
pub fn window_sliding(column: &str, length: &str, slide: &str) -> Result<WindowSpec, FrameError> {
    Ok(WindowSpec {
        column: column.to_string(),
        length: parse_duration(length)?,
        slide: Some(parse_duration(slide)?),
    })
}

/// A DataFrame grouped by [`DataFrame::group_by`], waiting for its aggregates.
#[derive(Debug)]
#[must_use = "a grouping does nothing until agg(..)"]
pub struct GroupedData {
    frame: DataFrame,
    keys: Vec<Compiled>,
    /// The grouping's output columns (the window's two where it goes).
    fields: Vec<Field>,
    window: Option<(usize, TimeWindows, usize)>,
}

impl GroupedData {
    /// One row per group: the grouping columns, then one column per aggregate (Spark's
    /// `agg`). In update and complete output modes a group's row is emitted as it
    /// changes; a windowed grouping in append mode emits each window once the watermark
    /// has passed its end.
    ///
    /// # Errors
    ///
    /// An aggregate whose argument does not bind or has a type the function does not
    /// take; two output columns of one name.
    pub fn agg(self, aggs: impl IntoIterator<Item = AggExpr>) -> Result<DataFrame, FrameError> {
        let GroupedData {
            frame,
            keys,
            mut fields,
            window,
        } = self;
        let mut calls = Vec::new();
        for agg in aggs {
            let (call, field) = agg.bind(&frame.schema)?;
            calls.push(call);
            fields.push(field);
        }
        let schema = Arc::new(Schema::new(fields)?);
        let (stream, prelude, _) = frame.flush();
        let plan = GroupPlan {
            keys: keys.into(),
            window,
            agg: agg::RowAggregate::new(calls),
        };
        Ok(DataFrame::from_erased(
            stream.aggregate(prelude, plan),
            schema,
        ))
    }

    /// `agg([count_all()])`: the number of rows per group, in column `count` (as
    /// Spark's `groupBy(..).count()` names it).
    ///
    /// # Errors
    ///
    /// As [`agg`](Self::agg).
    pub fn count(self) -> Result<DataFrame, FrameError> {
        self.agg([count_all().alias("count")])
    }
}

/// Takes the view `name` (ignoring case) out of `graph`'s registry.
pub(crate) fn take_view(
    graph: &std::rc::Rc<std::cell::RefCell<crate::plan::Graph>>,
    name: &str,
) -> Option<DataFrame> {
    let mut graph = graph.borrow_mut();
    let index = graph
        .views
        .iter()
        .position(|(view, _)| view.eq_ignore_ascii_case(name))?;
    let (_, frame) = graph.views.remove(index);
    frame.downcast::<DataFrame>().ok().map(|frame| *frame)
}
