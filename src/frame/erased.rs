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
use super::stream_join::{join_key, joins, JoinInput};
use crate::error::BoxError;
use crate::event::Epoch;
use crate::event::Timestamp;
use crate::plan::{Graph, Port};
use crate::row::{Row, Value};
use crate::sink::{
    ConsoleSink, EpochCommit, FileFormat, FileSink, MemorySink, MemoryTable, Sink, SinkContext,
};
use crate::stream::{Chain, InputChain, Stream, UnionInput};
use crate::time::WatermarkConfig;
use crate::trigger::EmitMode;
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

/// A planned deduplication (`DataFrame::drop_duplicates`).
#[derive(Debug, Clone)]
pub(crate) struct DedupPlan {
    /// The key columns.
    pub(crate) keys: Arc<[usize]>,
    /// The event-time column, where the stream has a watermark: late rows are dropped.
    pub(crate) time: Option<usize>,
    /// How long past its first row's time a key is kept (µs; `None`: for ever).
    pub(crate) retain: Option<i64>,
    /// The operator's name.
    pub(crate) name: &'static str,
}

/// The key of a row for a deduplication: the values of `columns`. Defined outside the
/// generic code, as [`row_time`], so that its type is one type.
fn row_key(columns: Arc<[usize]>) -> impl FnMut(&Row) -> Vec<Value> + Clone + Send + 'static {
    move |row: &Row| columns.iter().map(|&i| row.values()[i].clone()).collect()
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
/// sink: one row-step operator (empty when the frame had no steps), and where the frame
/// has a watermark, the watermark generator and a second row-step operator.
///
/// Both shapes are one chain type on purpose (`stream::MaybeWatermarked`, which
/// chooses at run time, a branch per row): every chain type compiles the whole thread's
/// code again for every continuation (see [`RowStream`]), and two shapes doubled every
/// continuation — and again for each aggregate's [`Tail`] after it. An empty step
/// operator costs one pass over no steps per row.
#[derive(Debug)]
pub(crate) struct Prelude {
    pub(crate) before: RowSteps,
    pub(crate) watermark: Option<(usize, Duration, RowSteps)>,
}

/// The event time of a row, as the watermark generator reads it. Defined outside the
/// generic code so that its type is one type, whatever the stream and continuation.
fn row_time(column: usize) -> impl FnMut(&Row) -> Timestamp + Clone + Send + 'static {
    move |row: &Row| event_time(row, column)
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
    /// The first row of each key of `plan`, later ones dropped.
    fn drop_duplicates(self: Box<Self>, prelude: Prelude, plan: DedupPlan) -> Box<dyn RowStream>;
    /// Opens a union thread fed by this stream.
    fn union_open(self: Box<Self>, prelude: Prelude) -> (Box<dyn RowStream>, Port<Row>);
    /// Feeds the union thread of `port`; whether this stream carries watermarks.
    fn union_add(self: Box<Self>, prelude: Prelude, port: Port<Row>) -> UnionInput;
    /// Takes on a union's other input (its watermarks and operators).
    fn and_union_input(self: Box<Self>, input: UnionInput) -> Box<dyn RowStream>;
    /// A typed stream on a thread of its own.
    fn into_input(self: Box<Self>, prelude: Prelude) -> Stream<InputChain<Row>>;
    /// Feeds one input of a stream–stream join, partitioned by its key.
    fn join_input(self: Box<Self>, prelude: Prelude, input: JoinInput<'_>);
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

/// Appends `prelude` to `stream` and continues with `k`. Both shapes of the prelude are
/// one chain type (`stream::MaybeWatermarked`), so `k` is
/// compiled once per stream type.
fn apply<S: Chain<Out = Row>, K: Continue>(stream: Stream<S>, prelude: Prelude, k: K) -> K::Out {
    let Prelude { before, watermark } = prelude;
    let watermark = watermark
        .map(|(column, delay, after)| (row_time(column), WatermarkConfig::new(delay), after));
    k.run(stream.then_maybe_watermark("select", before, watermark))
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

struct Deduplicating(DedupPlan);

impl Continue for Deduplicating {
    type Out = Box<dyn RowStream>;
    fn run<S: Chain<Out = Row>>(self, stream: Stream<S>) -> Box<dyn RowStream> {
        let DedupPlan {
            keys,
            time,
            retain,
            name,
        } = self.0;
        let keyed = stream.key_by(row_key(keys));
        match time {
            None => Box::new(Tail(keyed.drop_duplicates())),
            Some(column) => Box::new(Tail(keyed.deduplicate(name, row_time(column), retain))),
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
    type Out = UnionInput;
    fn run<S: Chain<Out = Row>>(self, stream: Stream<S>) -> UnionInput {
        Stream::union_add(stream, self.0)
    }
}

/// Feeds a stream–stream join (rows with a null key dropped first, unless the join
/// preserves the side).
struct JoinSide<'a>(JoinInput<'a>);

impl Continue for JoinSide<'_> {
    type Out = ();
    fn run<S: Chain<Out = Row>>(self, stream: Stream<S>) {
        let JoinInput {
            connection,
            keys,
            left,
            preserved,
        } = self.0;
        let stream = stream
            .filter(joins(keys.clone(), preserved))
            .named("join_key_not_null");
        connection.add(stream, join_key(keys, left), left);
    }
}

struct IntoInput;

impl Continue for IntoInput {
    type Out = Stream<InputChain<Row>>;
    fn run<S: Chain<Out = Row>>(self, stream: Stream<S>) -> Self::Out {
        stream.new_thread()
    }
}

/// The sinks a DataFrame ends in, as one type: one chain type per stream for all of
/// them (a `match` per row, no virtual call).
#[derive(Clone)]
enum RowSink {
    Memory(MemorySink<Row>),
    Console(Arc<[Arc<str>]>, ConsoleSink),
    Files(Arc<[Arc<str>]>, FileSink<Named>),
}

impl RowSink {
    /// The row with its column names, for the sinks that write named columns.
    fn named(names: &Arc<[Arc<str>]>, row: Row) -> Named {
        Named {
            names: names.clone(),
            row,
        }
    }
}

impl Sink<Row> for RowSink {
    fn open(&mut self, context: &SinkContext) -> Result<(), BoxError> {
        match self {
            RowSink::Memory(sink) => Sink::<Row>::open(sink, context),
            RowSink::Console(_, sink) => Sink::<Named>::open(sink, context),
            RowSink::Files(_, sink) => sink.open(context),
        }
    }

    fn begin_epoch(&mut self, epoch: Epoch, mode: EmitMode) -> Result<(), BoxError> {
        match self {
            RowSink::Memory(sink) => Sink::<Row>::begin_epoch(sink, epoch, mode),
            RowSink::Console(_, sink) => Sink::<Named>::begin_epoch(sink, epoch, mode),
            RowSink::Files(_, sink) => sink.begin_epoch(epoch, mode),
        }
    }

    #[inline]
    fn write(&mut self, row: Row) -> Result<(), BoxError> {
        match self {
            RowSink::Memory(sink) => sink.write(row),
            RowSink::Console(names, sink) => sink.write(RowSink::named(names, row)),
            RowSink::Files(names, sink) => sink.write(RowSink::named(names, row)),
        }
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        match self {
            RowSink::Memory(sink) => Sink::<Row>::flush(sink),
            RowSink::Console(_, sink) => Sink::<Named>::flush(sink),
            RowSink::Files(_, sink) => sink.flush(),
        }
    }

    fn on_committed(&mut self, epoch: Epoch) -> Result<(), BoxError> {
        match self {
            RowSink::Memory(sink) => Sink::<Row>::on_committed(sink, epoch),
            RowSink::Console(_, sink) => Sink::<Named>::on_committed(sink, epoch),
            RowSink::Files(_, sink) => sink.on_committed(epoch),
        }
    }

    fn prepare_commit(&mut self, epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        match self {
            RowSink::Memory(sink) => Sink::<Row>::prepare_commit(sink, epoch),
            RowSink::Console(_, sink) => Sink::<Named>::prepare_commit(sink, epoch),
            RowSink::Files(_, sink) => sink.prepare_commit(epoch),
        }
    }

    fn close(&mut self) -> Result<(), BoxError> {
        match self {
            RowSink::Memory(sink) => Sink::<Row>::close(sink),
            RowSink::Console(_, sink) => Sink::<Named>::close(sink),
            RowSink::Files(_, sink) => sink.close(),
        }
    }
}

/// Ends the stream in a [`RowSink`] named `name`.
struct ToSink<'a>(&'a str, RowSink);

impl Continue for ToSink<'_> {
    type Out = ();
    fn run<S: Chain<Out = Row>>(self, stream: Stream<S>) {
        stream.sink(self.0, self.1);
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

        fn union_add(self: Box<Self>, prelude: Prelude, port: Port<Row>) -> UnionInput {
            apply(self.0, prelude, UnionAdd(port))
        }

        fn into_input(self: Box<Self>, prelude: Prelude) -> Stream<InputChain<Row>> {
            apply(self.0, prelude, IntoInput)
        }

        fn join_input(self: Box<Self>, prelude: Prelude, input: JoinInput<'_>) {
            apply(self.0, prelude, JoinSide(input))
        }

        fn to_memory(self: Box<Self>, prelude: Prelude, name: &str) -> MemoryTable<Row> {
            let table = MemoryTable::new();
            Stream::graph(&self.0)
                .borrow_mut()
                .tables
                .push((name.to_string(), Box::new(table.clone())));
            let sink = RowSink::Memory(MemorySink::new(table.clone()));
            apply(self.0, prelude, ToSink(name, sink));
            table
        }

        fn to_console(
            self: Box<Self>,
            prelude: Prelude,
            names: Arc<[Arc<str>]>,
            sink: ConsoleSink,
        ) {
            apply(
                self.0,
                prelude,
                ToSink("console", RowSink::Console(names, sink)),
            )
        }

        fn to_files(
            self: Box<Self>,
            prelude: Prelude,
            names: Arc<[Arc<str>]>,
            dir: std::path::PathBuf,
            format: FileFormat,
        ) {
            let sink = RowSink::Files(names, FileSink::new(dir, format));
            apply(self.0, prelude, ToSink("files", sink))
        }
    };
}

impl<S: Chain<Out = Row>> RowStream for Base<S> {
    row_stream_common!();

    fn aggregate(self: Box<Self>, prelude: Prelude, plan: GroupPlan) -> Box<dyn RowStream> {
        apply(self.0, prelude, Aggregating(plan))
    }

    fn drop_duplicates(self: Box<Self>, prelude: Prelude, plan: DedupPlan) -> Box<dyn RowStream> {
        apply(self.0, prelude, Deduplicating(plan))
    }

    fn and_union_input(self: Box<Self>, input: UnionInput) -> Box<dyn RowStream> {
        Box::new(Base(self.0.and_union_input(input)))
    }
}

impl<S: Chain<Out = Row>> RowStream for Tail<S> {
    row_stream_common!();

    fn aggregate(self: Box<Self>, prelude: Prelude, plan: GroupPlan) -> Box<dyn RowStream> {
        // An aggregate of an aggregate starts on a new thread (see the trait docs).
        Box::new(Base(self.0.new_thread())).aggregate(prelude, plan)
    }

    fn drop_duplicates(self: Box<Self>, prelude: Prelude, plan: DedupPlan) -> Box<dyn RowStream> {
        // As an aggregate: on a new thread, so that the types stay finite.
        Box::new(Base(self.0.new_thread())).drop_duplicates(prelude, plan)
    }

    fn and_union_input(self: Box<Self>, input: UnionInput) -> Box<dyn RowStream> {
        Box::new(Base(self.0.new_thread().and_union_input(input)))
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
