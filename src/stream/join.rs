//! The stream–stream join builder: [`KeyedStream::join`], then
//! [`event_time`](JoinBuilder::event_time) and a time condition, then the join type. See
//! [`join`](crate::join) for the semantics.

use super::{Chain, ConnectedStreams, KeyedStream, Stream};
use crate::event::Timestamp;
use crate::join::condition::Condition;
use crate::join::operator::{EventTimeOf, NoTime, StreamJoin, TimeFn};
use crate::join::output::{FullOuter, Inner, JoinOutput, LeftOuter, LeftSemi, RightOuter};
use crate::join::TimeRange;
use crate::plan::OperatorKind;
use crate::window::TimeWindows;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::hash::Hash;

impl<S, F, K> KeyedStream<S, F>
where
    S: Chain,
    F: FnMut(&S::Out) -> K + Clone + Send + 'static,
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
{
    /// Starts a stream–stream join of this keyed stream (the left side) with `other` (the
    /// right side), keyed the same way: both are partitioned by key onto this stream's
    /// [parallelism](KeyedStream::with_parallelism), which `other`'s must equal. Continue
    /// with [`event_time`](JoinBuilder::event_time) and a time condition for a join whose
    /// state the watermark bounds (what Spark needs for outer joins), or with
    /// [`inner`](JoinBuilder::inner) for a plain equi-join that keeps every row.
    ///
    /// Records are checkpointed as the join's state, so both sides' records and the key
    /// are serde types. See [`join`](crate::join) for the semantics and an example.
    pub fn join<S2, F2>(self, other: KeyedStream<S2, F2>) -> JoinBuilder<K, S::Out, S2::Out>
    where
        S2: Chain,
        F2: FnMut(&S2::Out) -> K + Clone + Send + 'static,
        S::Out: Serialize + DeserializeOwned,
        S2::Out: Serialize + DeserializeOwned,
    {
        JoinBuilder {
            connected: self.connect(other),
        }
    }
}

/// A stream–stream join being built: both sides connected, the event times and the
/// join type still to choose. Created by [`KeyedStream::join`].
#[must_use = "a join needs a join type (inner, left_outer, ...)"]
pub struct JoinBuilder<K, L, R>
where
    K: Send + 'static,
    L: Send + 'static,
    R: Send + 'static,
{
    connected: ConnectedStreams<(K, L), (K, R)>,
}

impl<K, L, R> fmt::Debug for JoinBuilder<K, L, R>
where
    K: Send + 'static,
    L: Send + 'static,
    R: Send + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinBuilder")
            .field("parallelism", &self.connected.parallelism())
            .finish_non_exhaustive()
    }
}

impl<K, L, R> JoinBuilder<K, L, R>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    L: Send + Serialize + DeserializeOwned + 'static,
    R: Send + Serialize + DeserializeOwned + 'static,
{
    /// Names each side's event time (µs since the Unix epoch), as the streams'
    /// [`with_event_time`](crate::Stream::with_event_time) did (the join does not see
    /// those closures, as window aggregates do not). Rows at or before the watermark are
    /// then late and dropped, and a time condition
    /// ([`within`](EventTimeJoin::within), [`within_window`](EventTimeJoin::within_window))
    /// lets the watermark evict the state.
    pub fn event_time<TL, TR>(self, left: TL, right: TR) -> EventTimeJoin<K, L, R, TL, TR>
    where
        TL: Fn(&L) -> Timestamp + Clone + Send + 'static,
        TR: Fn(&R) -> Timestamp + Clone + Send + 'static,
    {
        EventTimeJoin {
            connected: self.connected,
            left_time: left,
            right_time: right,
            condition: Condition::Unbounded,
            invalid: None,
        }
    }

    /// An inner equi-join without event time: `f(key, left, right)` for every pair of rows
    /// of a key, whenever they arrived. Every row is kept for good (Spark's inner join
    /// without watermark and time condition: its state grows without bound), so this is
    /// for finite or small inputs; bound it with [`event_time`](Self::event_time) and a
    /// time condition otherwise.
    ///
    /// ```
    /// let mut query = rivulet::Query::builder();
    /// let names = query.from_iter("names", [(1u32, "ada".to_string()), (2, "bob".to_string())]);
    /// let visits = query.from_iter("visits", [(1u32, 10u64), (1, 11), (3, 12)]);
    /// let joined = names
    ///     .key_by(|n| n.0)
    ///     .join(visits.key_by(|v| v.0))
    ///     .inner(|_id, (_, name), (_, page)| (name.clone(), *page))
    ///     .to_memory("joined");
    /// query.start()?.await_termination()?;
    /// let mut rows = joined.rows();
    /// rows.sort();
    /// assert_eq!(rows, [("ada".to_string(), 10), ("ada".to_string(), 11)]);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn inner<O, G>(self, f: G) -> Stream<impl Chain<Out = O>>
    where
        G: FnMut(&K, &L, &R) -> O + Clone + Send + 'static,
        O: Send + 'static,
    {
        let op = StreamJoin::new(Condition::Unbounded, NoTime, NoTime, false, Inner(f));
        build(self.connected, op)
    }
}

/// A stream–stream join with event times, waiting for its time condition and join type.
/// Created by [`JoinBuilder::event_time`].
#[must_use = "a join needs a join type (inner, left_outer, ...)"]
pub struct EventTimeJoin<K, L, R, TL, TR>
where
    K: Send + 'static,
    L: Send + 'static,
    R: Send + 'static,
{
    connected: ConnectedStreams<(K, L), (K, R)>,
    left_time: TL,
    right_time: TR,
    condition: Condition,
    /// A condition that was refused (reported by `start()`).
    invalid: Option<String>,
}

impl<K, L, R, TL, TR> fmt::Debug for EventTimeJoin<K, L, R, TL, TR>
where
    K: Send + 'static,
    L: Send + 'static,
    R: Send + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventTimeJoin")
            .field("parallelism", &self.connected.parallelism())
            .field("condition", &self.condition)
            .finish_non_exhaustive()
    }
}

/// The join types, as errors name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinType {
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
    LeftSemi,
}

impl JoinType {
    fn name(self) -> &'static str {
        match self {
            JoinType::Inner => "inner",
            JoinType::LeftOuter => "left outer",
            JoinType::RightOuter => "right outer",
            JoinType::FullOuter => "full outer",
            JoinType::LeftSemi => "left semi",
        }
    }
}

impl<K, L, R, TL, TR> EventTimeJoin<K, L, R, TL, TR>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    L: Send + Serialize + DeserializeOwned + 'static,
    R: Send + Serialize + DeserializeOwned + 'static,
    TL: Fn(&L) -> Timestamp + Clone + Send + 'static,
    TR: Fn(&R) -> Timestamp + Clone + Send + 'static,
{
    /// Joins only rows whose times satisfy `range`:
    /// `left.time BETWEEN right.time + lower AND right.time + upper` (Spark's time range
    /// join condition). Each side's rows then leave the state once the watermark passes
    /// the last time a row of the other side could match them.
    pub fn within(mut self, range: TimeRange) -> Self {
        self.condition = Condition::Range(range);
        self
    }

    /// Joins only rows in the same tumbling window of `windows` (Spark's join on
    /// `leftTimeWindow = rightTimeWindow`); rows leave the state once the watermark passes
    /// their window's end. Sliding windows are refused (by `start()`): a row would be in
    /// several windows, and its pairs would be emitted once per shared window.
    pub fn within_window(mut self, windows: TimeWindows) -> Self {
        match Condition::window(&windows) {
            Some(condition) => self.condition = condition,
            None => {
                self.invalid = Some(format!(
                    "a join on equal time windows needs tumbling windows; these slide every \
                     {} µs over {} µs",
                    windows.slide_micros(),
                    windows.length_micros()
                ))
            }
        }
        self
    }

    /// An inner join: `f(key, left, right)` for every pair of rows of a key whose times
    /// satisfy the condition. Without a condition every pair of a key matches, and state
    /// is never evicted (late rows are still dropped).
    pub fn inner<O, G>(self, f: G) -> Stream<impl Chain<Out = O>>
    where
        G: FnMut(&K, &L, &R) -> O + Clone + Send + 'static,
        O: Send + 'static,
    {
        self.finish(JoinType::Inner, Inner(f))
    }

    /// A left outer join: as [`inner`](Self::inner) with `Some(right)`, plus
    /// `f(key, left, None)` once for each left row that matched nothing, when the
    /// watermark says nothing can match it any more. Needs a time condition and watermarks
    /// on both inputs (else `start()` fails, as Spark refuses the query).
    pub fn left_outer<O, G>(self, f: G) -> Stream<impl Chain<Out = O>>
    where
        G: FnMut(&K, &L, Option<&R>) -> O + Clone + Send + 'static,
        O: Send + 'static,
    {
        self.finish(JoinType::LeftOuter, LeftOuter(f))
    }

    /// A right outer join: [`left_outer`](Self::left_outer) with the sides' roles swapped.
    pub fn right_outer<O, G>(self, f: G) -> Stream<impl Chain<Out = O>>
    where
        G: FnMut(&K, Option<&L>, &R) -> O + Clone + Send + 'static,
        O: Send + 'static,
    {
        self.finish(JoinType::RightOuter, RightOuter(f))
    }

    /// A full outer join: matched pairs, and the unmatched rows of both sides with the
    /// other side `None`. Same requirements as [`left_outer`](Self::left_outer).
    pub fn full_outer<O, G>(self, f: G) -> Stream<impl Chain<Out = O>>
    where
        G: FnMut(&K, Option<&L>, Option<&R>) -> O + Clone + Send + 'static,
        O: Send + 'static,
    {
        self.finish(JoinType::FullOuter, FullOuter(f))
    }

    /// A left semi join: `f(key, left)` once for each left row that matches at least one
    /// right row, as soon as it does. Same requirements as [`left_outer`](Self::left_outer).
    pub fn left_semi<O, G>(self, f: G) -> Stream<impl Chain<Out = O>>
    where
        G: FnMut(&K, &L) -> O + Clone + Send + 'static,
        O: Send + 'static,
    {
        self.finish(JoinType::LeftSemi, LeftSemi(f))
    }

    /// Checks what Spark checks (reported by `start()`), then appends the operator.
    fn finish<E>(self, join_type: JoinType, output: E) -> Stream<impl Chain<Out = E::Out>>
    where
        E: JoinOutput<K, L, R>,
    {
        let EventTimeJoin {
            connected,
            left_time,
            right_time,
            condition,
            invalid,
        } = self;
        check(&connected, join_type, condition, invalid);
        let op = StreamJoin::new(
            condition,
            TimeFn(left_time),
            TimeFn(right_time),
            true,
            output,
        );
        build(connected, op)
    }
}

/// Records in the plan what Spark's analyzer would refuse about a join (reported by
/// `start()`): an outer or semi join without a time condition or without watermarks on
/// both inputs, and a refused condition.
fn check<K, L, R>(
    connected: &ConnectedStreams<(K, L), (K, R)>,
    join_type: JoinType,
    condition: Condition,
    invalid: Option<String>,
) where
    K: Send + 'static,
    L: Send + 'static,
    R: Send + 'static,
{
    let mut graph = connected.merged.graph.borrow_mut();
    let name = graph.unique_name("join");
    if let Some(invalid) = invalid {
        graph.errors.push(format!("the join `{name}`: {invalid}"));
    }
    if join_type != JoinType::Inner {
        let what = join_type.name();
        if !condition.is_bounded() {
            graph.errors.push(format!(
                "the {what} join `{name}` needs a time condition (within(..) or \
                     within_window(..)): without one, no row is ever known to have no \
                     match, so none would be emitted and the state would grow forever \
                     (Spark refuses it: \"not supported without a watermark in the join \
                     keys, or a watermark on the nullable side and an appropriate range \
                     condition\")"
            ));
        }
        if !connected.is_watermarked() {
            graph.errors.push(format!(
                "the {what} join `{name}` needs watermarks on both inputs \
                     (with_event_time(..).with_watermark(delay) on every path from a \
                     source): the join's watermark is the minimum of its inputs', and \
                     without it no row is ever final"
            ));
        }
    }
}

/// Appends the join operator `op` to both connected sides.
fn build<K, L, R, TL, TR, E>(
    connected: ConnectedStreams<(K, L), (K, R)>,
    op: StreamJoin<K, L, R, TL, TR, E>,
) -> Stream<impl Chain<Out = E::Out>>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    L: Send + Serialize + DeserializeOwned + 'static,
    R: Send + Serialize + DeserializeOwned + 'static,
    TL: EventTimeOf<L>,
    TR: EventTimeOf<R>,
    E: JoinOutput<K, L, R>,
{
    connected.operator_of_kind("join", OperatorKind::Join, op)
}

impl<K, L, R> JoinBuilder<K, L, R>
where
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
    L: Send + Serialize + DeserializeOwned + 'static,
    R: Send + Serialize + DeserializeOwned + 'static,
{
    /// The join of `connected`'s two inputs (built by
    /// [`KeyedConnection`](super::connect::KeyedConnection)).
    pub(crate) fn from_connected(connected: ConnectedStreams<(K, L), (K, R)>) -> Self {
        JoinBuilder { connected }
    }

    /// A join planned by the DataFrame layer: `output` decides what a matching pair and
    /// an unmatched row emit (a residual condition, a join type chosen at run time);
    /// `join_type` is what Spark's checks go by. `times` read each side's event time;
    /// with `timed` false there is none (no late rows, and `condition` must be
    /// unbounded).
    pub(crate) fn planned<TL, TR, E>(
        self,
        join_type: JoinType,
        condition: Condition,
        times: (TL, TR),
        timed: bool,
        output: E,
    ) -> Stream<impl Chain<Out = E::Out>>
    where
        TL: EventTimeOf<L>,
        TR: EventTimeOf<R>,
        E: JoinOutput<K, L, R>,
    {
        check(&self.connected, join_type, condition, None);
        let op = StreamJoin::new(condition, times.0, times.1, timed, output);
        build(self.connected, op)
    }
}
