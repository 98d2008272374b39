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

/// What a DataFrame appends on the stream's thread before its next stateful step or
/// sink: row steps, a watermark generator, more row steps.
#[derive(Debug, Default)]
pub(crate) struct Prelude {
    pub(crate) before: Option<RowSteps>,
    pub(crate) watermark: Option<(usize, Duration)>,
    pub(crate) after: Option<RowSteps>,
}

/// The operations of an erased row stream (see the module docs). Each takes the
/// [`Prelude`] to append first.
///
/// The types stay finite: a method that continues the stream returns either a stream
/// starting at a thread boundary (`InputChain<Row>`, one type) or, after an aggregate,
/// a [`Tail`], whose own aggregate starts on a new thread. (A stream type that grew with
/// every DataFrame operation would make the compiler instantiate this trait without
/// end.)
pub(crate) trait RowStream {
    /// The plan the stream belongs to.
    fn graph(&self) -> Rc<RefCell<Graph>>;
    /// The grouped aggregate of `plan`; rows of keys (window start and end where the
    /// window goes) then aggregate values.
    fn aggregate(self: Box<Self>, prelude: Prelude, plan: GroupPlan) -> Box<dyn RowStream>;
    /// Opens a union thread fed by this stream.
    fn union_open(self: Box<Self>, prelude: Prelude) -> (Box<dyn RowStream>, Port<Row>);
    /// Feeds the union thread of `port`; whether this stream carries watermarks.
    fn union_add(self: Box<Self>, prelude: Prelude, port: Port<Row>) -> bool;
    /// Carries watermarks only if it did and `watermarked` holds (a union's other input).
    fn and_watermarked(self: Box<Self>, watermarked: bool) -> Box<dyn RowStream>;
    /// A typed stream on a thread of its own.
    fn into_input(self: Box<Self>, prelude: Prelude) -> Stream<InputChain<Row>>;
    /// Into a memory table.
    fn to_memory(self: Box<Self>, prelude: Prelude, name: &str) -> MemoryTable<Row>;
    /// Into the console sink, columns named `names`.
    fn to_console(self: Box<Self>, prelude: Prelude, names: Arc<[Arc<str>]>, sink: ConsoleSink);
    /// Into part files, columns named `names`.
    fn to_files(
        self: Box<Self>,
        prelude: Prelude,
        names: Arc<[Arc<str>]>,
        dir: std::path::PathBuf,
        format: FileFormat,
    );
}

/// A stream a DataFrame starts from (a source's, or one after a thread boundary).
pub(crate) struct Base<S>(pub(crate) Stream<S>);

/// A stream that ends in a DataFrame aggregate.
pub(crate) struct Tail<S>(Stream<S>);

/// What to do with a stream once its prelude is appended (a generic continuation:
/// the prelude's shape is known only at run time).
trait Continue {
    type Out;
    fn run<S: Chain<Out = Row>>(self, stream: Stream<S>) -> Self::Out;
}

fn apply<S: Chain<Out = Row>, K: Continue>(stream: Stream<S>, prelude: Prelude, k: K) -> K::Out {
    let Prelude {
        before,
        watermark,
        after,
    } = prelude;
    match before {
        Some(steps) => apply_watermark(stream.operator("select", steps), watermark, after, k),
        None => apply_watermark(stream, watermark, after, k),
    }
}

fn apply_watermark<S: Chain<Out = Row>, K: Continue>(
    stream: Stream<S>,
    watermark: Option<(usize, Duration)>,
    after: Option<RowSteps>,
    k: K,
) -> K::Out {
    match watermark {
        Some((column, delay)) => apply_after(
            stream
                .with_event_time(move |row: &Row| event_time(row, column))
                .with_watermark(delay),
            after,
            k,
        ),
        None => apply_after(stream, after, k),
    }
}

fn apply_after<S: Chain<Out = Row>, K: Continue>(
    stream: Stream<S>,
    after: Option<RowSteps>,
    k: K,
) -> K::Out {
    match after {
        Some(steps) => k.run(stream.operator("select", steps)),
        None => k.run(stream),
    }
}

struct Aggregating(GroupPlan);

impl Continue for Aggregating {
    type Out = Box<dyn RowStream>;
    fn run<S: Chain<Out = Row>>(self, stream: Stream<S>) -> Box<dyn RowStream> {
        let GroupPlan { keys, window, agg } = self.0;
        let key = move |row: &Row| -> Vec<Value> { keys.iter().map(|k| k.eval(row)).collect() };
        match window {
            None => Box::new(Tail(stream.key_by(key).agg(agg).map(|(key, values)| {
                let mut row = key;
                row.extend(values);
                Row::new(row)
            }))),
            Some((column, windows, position)) => Box::new(Tail(
                // Spark's `window()` of a null time is null, and the row falls in no
                // window that can close: rivulet drops it here.
                stream
                    .filter(move |row: &Row| !row.values()[column].is_null())
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
            )),
        }
    }
}

struct UnionOpen;

impl Continue for UnionOpen {
    type Out = (Box<dyn RowStream>, Port<Row>);
    fn run<S: Chain<Out = Row>>(self, stream: Stream<S>) -> Self::Out {
        let (stream, port) = Stream::union_open(stream);
        (Box::new(Base(stream)), port)
    }
}

struct UnionAdd(Port<Row>);

impl Continue for UnionAdd {
    type Out = bool;
    fn run<S: Chain<Out = Row>>(self, stream: Stream<S>) -> bool {
        Stream::union_add(stream, self.0)
    }
}

struct IntoInput;

impl Continue for IntoInput {
    type Out = Stream<InputChain<Row>>;
    fn run<S: Chain<Out = Row>>(self, stream: Stream<S>) -> Self::Out {
        stream.new_thread()
    }
}

struct ToMemory<'a>(&'a str);

impl Continue for ToMemory<'_> {
    type Out = MemoryTable<Row>;
    fn run<S: Chain<Out = Row>>(self, stream: Stream<S>) -> Self::Out {
        stream.to_memory(self.0)
    }
}

struct ToConsole(Arc<[Arc<str>]>, ConsoleSink);

impl Continue for ToConsole {
    type Out = ();
    fn run<S: Chain<Out = Row>>(self, stream: Stream<S>) {
        let ToConsole(names, sink) = self;
        stream.map(move |row| Named {
            names: names.clone(),
            row,
        })
        .sink("console", sink);
    }
}

struct ToFiles(Arc<[Arc<str>]>, std::path::PathBuf, FileFormat);

impl Continue for ToFiles {
    type Out = ();
    fn run<S: Chain<Out = Row>>(self, stream: Stream<S>) {
        let ToFiles(names, dir, format) = self;
        stream.map(move |row| Named {
            names: names.clone(),
            row,
        })
        .to_files(dir, format);
    }
}

macro_rules! row_stream_common {
    () => {
        fn graph(&self) -> Rc<RefCell<Graph>> {
            Stream::graph(&self.0).clone()
        }

        fn union_open(self: Box<Self>, prelude: Prelude) -> (Box<dyn RowStream>, Port<Row>) {
            apply(self.0, prelude, UnionOpen)
        }

        fn union_add(self: Box<Self>, prelude: Prelude, port: Port<Row>) -> bool {
            apply(self.0, prelude, UnionAdd(port))
        }

        fn into_input(self: Box<Self>, prelude: Prelude) -> Stream<InputChain<Row>> {
            apply(self.0, prelude, IntoInput)
        }

        fn to_memory(self: Box<Self>, prelude: Prelude, name: &str) -> MemoryTable<Row> {
            apply(self.0, prelude, ToMemory(name))
        }

        fn to_console(self: Box<Self>, prelude: Prelude, names: Arc<[Arc<str>]>, sink: ConsoleSink) {
            apply(self.0, prelude, ToConsole(names, sink))
        }

        fn to_files(
            self: Box<Self>,
            prelude: Prelude,
            names: Arc<[Arc<str>]>,
            dir: std::path::PathBuf,
            format: FileFormat,
        ) {
            apply(self.0, prelude, ToFiles(names, dir, format))
        }
    };
}

impl<S: Chain<Out = Row>> RowStream for Base<S> {
    row_stream_common!();

    fn aggregate(self: Box<Self>, prelude: Prelude, plan: GroupPlan) -> Box<dyn RowStream> {
        apply(self.0, prelude, Aggregating(plan))
    }

    fn and_watermarked(self: Box<Self>, watermarked: bool) -> Box<dyn RowStream> {
        Box::new(Base(self.0.and_watermarked(watermarked)))
    }
}

impl<S: Chain<Out = Row>> RowStream for Tail<S> {
    row_stream_common!();

    fn aggregate(self: Box<Self>, prelude: Prelude, plan: GroupPlan) -> Box<dyn RowStream> {
        // An aggregate of an aggregate starts on a new thread (see the trait docs).
        Box::new(Base(self.0.new_thread())).aggregate(prelude, plan)
    }

    fn and_watermarked(self: Box<Self>, watermarked: bool) -> Box<dyn RowStream> {
        Box::new(Base(self.0.new_thread().and_watermarked(watermarked)))
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
