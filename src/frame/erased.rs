//! A stream of rows with its chain type erased: what a [`DataFrame`](super::DataFrame)
//! holds.
//!
//! A `Stream<S>` carries its whole operator chain in `S`, so that closures stay generic
//! and a thread's chain compiles to straight code. A DataFrame cannot name `S` (a SQL
//! view is looked up by name at run time), so it keeps the stream behind this trait,
//! whose methods are the finite set of things the DataFrame layer appends. Each method
//! is monomorphised for the concrete chain: the erasure costs one virtual call per
//! *plan step* while the query is being built, none per record.

use super::agg::RowAggregate;
use super::compiled::{Compiled, RowSteps};
use crate::event::Timestamp;
use crate::plan::{Graph, Port};
use crate::row::{Row, Value};
use crate::sink::{ConsoleSink, FileFormat, MemoryTable};
use crate::stream::{Chain, InputChain, Stream};
use crate::window::TimeWindows;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// The grouping of a planned aggregate.
#[derive(Debug, Clone)]
pub(crate) struct GroupPlan {
    /// The grouping expressions that are not the window, in order.
    pub(crate) keys: Arc<[Compiled]>,
    /// The window: the event-time column, the windows, and where its two output
    /// columns go among the keys (before `keys[position]`).
    pub(crate) window: Option<(usize, TimeWindows, usize)>,
    /// The aggregates.
    pub(crate) agg: RowAggregate,
}

/// The event time of a row in column `column`: a timestamp, a date's midnight, or
/// `i64::MIN` for null (which moves no watermark).
#[inline]
pub(crate) fn event_time(row: &Row, column: usize) -> Timestamp {
    match &row.values()[column] {
        Value::Timestamp(t) => *t,
        Value::Date(d) => d.to_timestamp(),
        _ => Timestamp(i64::MIN),
    }
}

/// The operations of an erased row stream (see the module docs).
pub(crate) trait RowStream {
    /// The plan the stream belongs to.
    fn graph(&self) -> Rc<RefCell<Graph>>;
    /// Appends the row steps as one operator named `name`.
    fn steps(self: Box<Self>, name: &str, steps: RowSteps) -> Box<dyn RowStream>;
    /// Event time from `column`, watermarks `delay` behind the newest.
    fn with_watermark(self: Box<Self>, column: usize, delay: Duration) -> Box<dyn RowStream>;
    /// The grouped aggregate of `plan`; rows of keys (window start and end where the
    /// window goes) then aggregate values.
    fn aggregate(self: Box<Self>, plan: GroupPlan) -> Box<dyn RowStream>;
    /// Opens a union thread fed by this stream.
    fn union_open(self: Box<Self>) -> (Box<dyn RowStream>, Port<Row>);
    /// Feeds the union thread of `port`; whether this stream carries watermarks.
    fn union_add(self: Box<Self>, port: Port<Row>) -> bool;
    /// Carries watermarks only if it did and `watermarked` holds (a union's other input).
    fn and_watermarked(self: Box<Self>, watermarked: bool) -> Box<dyn RowStream>;
    /// A typed stream on a thread of its own.
    fn into_input(self: Box<Self>) -> Stream<InputChain<Row>>;
    /// Into a memory table.
    fn to_memory(self: Box<Self>, name: &str) -> MemoryTable<Row>;
    /// Into the console sink, columns named `names`.
    fn to_console(self: Box<Self>, names: Arc<[Arc<str>]>, sink: ConsoleSink);
    /// Into part files, columns named `names`.
    fn to_files(self: Box<Self>, names: Arc<[Arc<str>]>, dir: std::path::PathBuf, format: FileFormat);
}

impl<S: Chain<Out = Row>> RowStream for Stream<S> {
    fn graph(&self) -> Rc<RefCell<Graph>> {
        Stream::graph(self).clone()
    }

    fn steps(self: Box<Self>, name: &str, steps: RowSteps) -> Box<dyn RowStream> {
        Box::new(self.operator(name, steps))
    }

    fn with_watermark(self: Box<Self>, column: usize, delay: Duration) -> Box<dyn RowStream> {
        Box::new(
            self.with_event_time(move |row: &Row| event_time(row, column))
                .with_watermark(delay),
        )
    }

    fn aggregate(self: Box<Self>, plan: GroupPlan) -> Box<dyn RowStream> {
        let GroupPlan { keys, window, agg } = plan;
        let key = move |row: &Row| -> Vec<Value> { keys.iter().map(|k| k.eval(row)).collect() };
        match window {
            None => Box::new(self.key_by(key).agg(agg).map(|(key, values)| {
                let mut row = key;
                row.extend(values);
                Row::new(row)
            })),
            Some((column, windows, position)) => Box::new(
                // Spark's `window()` of a null time is null, and the row falls in no
                // window that can close: rivulet drops it here.
                self.filter(move |row: &Row| !row.values()[column].is_null())
                    .named("window_time_not_null")
                    .key_by(key)
                    .window(windows, move |row: &Row| event_time(row, column))
                    .agg(agg)
                    .map(move |(key, window, values)| {
                        let mut row = Vec::with_capacity(key.len() + 2 + values.len());
                        let mut key = key.into_iter();
                        row.extend(key.by_ref().take(position));
                        row.push(Value::Timestamp(window.start));
                        row.push(Value::Timestamp(window.end));
                        row.extend(key);
                        row.extend(values);
                        Row::new(row)
                    }),
            ),
        }
    }

    fn union_open(self: Box<Self>) -> (Box<dyn RowStream>, Port<Row>) {
        let (stream, port) = Stream::union_open(*self);
        (Box::new(stream), port)
    }

    fn union_add(self: Box<Self>, port: Port<Row>) -> bool {
        Stream::union_add(*self, port)
    }

    fn and_watermarked(self: Box<Self>, watermarked: bool) -> Box<dyn RowStream> {
        Box::new(Stream::and_watermarked(*self, watermarked))
    }

    fn into_input(self: Box<Self>) -> Stream<InputChain<Row>> {
        self.new_thread()
    }

    fn to_memory(self: Box<Self>, name: &str) -> MemoryTable<Row> {
        Stream::to_memory(*self, name)
    }

    fn to_console(self: Box<Self>, names: Arc<[Arc<str>]>, sink: ConsoleSink) {
        self.map(move |row| Named {
            names: names.clone(),
            row,
        })
        .sink("console", sink);
    }

    fn to_files(self: Box<Self>, names: Arc<[Arc<str>]>, dir: std::path::PathBuf, format: FileFormat) {
        self.map(move |row| Named {
            names: names.clone(),
            row,
        })
        .to_files(dir, format);
    }
}

/// A row with its column names, serialized as a map from name to value (what the
/// console and file sinks turn into named columns). Values are written as Spark shows
/// Spark writes them (numbers as numbers, `2014-03-10 01:05:00`), nulls as none.
struct Named {
    names: Arc<[Arc<str>]>,
    row: Row,
}

impl Serialize for Named {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut map = serializer.serialize_map(Some(self.names.len()))?;
        for (name, value) in self.names.iter().zip(self.row.values()) {
            match value {
                Value::Null => map.serialize_entry(&**name, &None::<()>)?,
                Value::Boolean(b) => map.serialize_entry(&**name, b)?,
                Value::Integer(n) => map.serialize_entry(&**name, n)?,
                Value::Long(n) => map.serialize_entry(&**name, n)?,
                Value::Double(x) => map.serialize_entry(&**name, x)?,
                Value::String(s) => map.serialize_entry(&**name, &**s)?,
                other => map.serialize_entry(&**name, &other.to_string())?,
            }
        }
        map.end()
    }
}
