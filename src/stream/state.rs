//! Arbitrary state per key on keyed streams: [`KeyedStream::map_groups_with_state`],
//! [`KeyedStream::flat_map_groups_with_state`] (Structured Streaming) and
//! [`KeyedStream::update_state_by_key`] (Spark Streaming). The operators and their
//! semantics are in [`state`](crate::state).

use super::{Chain, KeyedStream, Stream};
use crate::operator::Operator;
use crate::plan::{GroupStateUse, OperatorKind};
use crate::state::{
    FlatMapGroupsWithState, GroupState, GroupStateTimeout, UpdateStateByKey, Values,
};
use crate::trigger::OutputMode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hash::Hash;

impl<S, F, K> KeyedStream<S, F>
where
    S: Chain,
    F: FnMut(&S::Out) -> K + Clone + Send + 'static,
    K: Hash + Eq + Clone + Send + Serialize + DeserializeOwned + 'static,
{
    /// Runs `f(&key, records, &mut state)` per group and emits one row per call (Spark's
    /// `mapGroupsWithState`). The state of each key is a serde value `St`, kept and
    /// checkpointed by the operator; `timeout` says which timeouts `f` may set through
    /// its [`GroupState`].
    ///
    /// `f` runs per record in a continuous epoch and once per key with records per
    /// micro-batch (with the batch's records of the key), and once more, without records,
    /// when a group's timeout passes; see [`FlatMapGroupsWithState`] for the details.
    ///
    /// As in Spark, the query's output mode must be
    /// [`Update`](crate::OutputMode::Update) and the query must have no aggregation;
    /// [`EventTimeTimeout`](GroupStateTimeout::EventTimeTimeout) needs a watermark on
    /// the input. `start()` refuses the query otherwise, saying why.
    ///
    /// ```
    /// use rivulet::state::GroupStateTimeout;
    /// use rivulet::Query;
    ///
    /// // The longest run of equal readings per sensor so far.
    /// let mut query = Query::builder();
    /// let runs = query
    ///     .from_iter("readings", [(1, 7), (2, 3), (1, 7), (1, 7), (2, 4), (1, 6)])
    ///     .key_by(|(sensor, _)| *sensor)
    ///     .map_groups_with_state(GroupStateTimeout::NoTimeout, |sensor: &i32, readings, state| {
    ///         // (last value, current run, longest run)
    ///         let (mut last, mut run, mut longest) = state.get_option().copied().unwrap_or((0, 0, 0));
    ///         for (_, value) in readings {
    ///             run = if value == last { run + 1 } else { 1 };
    ///             last = value;
    ///             longest = longest.max(run);
    ///         }
    ///         state.update((last, run, longest));
    ///         (*sensor, longest)
    ///     })
    ///     .to_memory("runs");
    /// query.start()?.await_termination()?;
    /// assert_eq!(runs.rows(), [(1, 1), (2, 1), (1, 2), (1, 3), (2, 1), (1, 3)]);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn map_groups_with_state<St, U, G>(
        self,
        timeout: GroupStateTimeout,
        mut f: G,
    ) -> Stream<impl Chain<Out = U>>
    where
        K: Ord,
        St: Send + Serialize + DeserializeOwned + Clone + 'static,
        U: Send + 'static,
        G: FnMut(&K, Values<'_, S::Out>, &mut GroupState<'_, St>) -> U + Clone + Send + 'static,
    {
        let one = group_fn(move |key: &K, values, state: &mut GroupState<St>| {
            std::iter::once(f(key, values, state))
        });
        let op = FlatMapGroupsWithState::new(timeout, one);
        self.groups_with_state("map_groups_with_state", None, timeout, op)
    }

    /// Runs `f(&key, records, &mut state)` per group and emits every row it returns
    /// (Spark's `flatMapGroupsWithState`): zero or more rows per call, as an iterator or
    /// collection. Calls, state and timeouts as
    /// [`map_groups_with_state`](Self::map_groups_with_state).
    ///
    /// `output_mode` says what the rows are, as in Spark: [`Append`](OutputMode::Append)
    /// (each row is final) or [`Update`](OutputMode::Update) (rows update earlier ones).
    /// `start()` refuses the query if, without an aggregation in the query, it differs
    /// from the query's output mode, or if it is `Update` with an aggregation (and
    /// `Complete` always). Spark also refuses the operator after an aggregation; rivulet
    /// does not check the order.
    ///
    /// ```
    /// use rivulet::state::GroupStateTimeout;
    /// use rivulet::{OutputMode, Query, Timestamp, Trigger};
    /// use std::time::Duration;
    ///
    /// // Sessions: a user's clicks until 10 µs of event time pass without one. One
    /// // click per micro-batch, so that the watermark moves between clicks.
    /// let mut query = Query::builder();
    /// query
    ///     .output_mode(OutputMode::Append)
    ///     .trigger(Trigger::AvailableNow)
    ///     .max_batch_records(1);
    /// let sessions = query
    ///     .from_iter("clicks", [("ann", 1i64), ("ann", 5), ("bob", 20), ("bob", 22), ("ann", 40)])
    ///     .with_event_time(|(_, t)| Timestamp(*t))
    ///     .with_watermark(Duration::ZERO)
    ///     .key_by(|(user, _)| user.to_string())
    ///     .flat_map_groups_with_state(
    ///         OutputMode::Append,
    ///         GroupStateTimeout::EventTimeTimeout,
    ///         |user: &String, clicks, state| {
    ///             if state.has_timed_out() {
    ///                 let (start, end, n) = state.take().unwrap();
    ///                 return vec![(user.clone(), start, end, n)];
    ///             }
    ///             let mut session = state.get_option().copied();
    ///             for (_, t) in clicks {
    ///                 let (start, _, n) = session.unwrap_or((t, t, 0));
    ///                 session = Some((start, t, n + 1));
    ///             }
    ///             let (start, end, n) = session.unwrap();
    ///             state.update((start, end, n));
    ///             state.set_timeout_timestamp(Timestamp(end + 10)).unwrap();
    ///             vec![]
    ///         },
    ///     )
    ///     .to_memory("sessions");
    /// query.start()?.await_termination()?;
    /// // ann's first session times out (at 15) in the batch that runs with watermark 20;
    /// // bob's (at 32) once the final watermark, 40, applies. ann's second session is
    /// // still open at the end.
    /// assert_eq!(
    ///     sessions.rows(),
    ///     [("ann".to_string(), 1, 5, 2), ("bob".to_string(), 20, 22, 2)]
    /// );
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn flat_map_groups_with_state<St, I, G>(
        self,
        output_mode: OutputMode,
        timeout: GroupStateTimeout,
        f: G,
    ) -> Stream<impl Chain<Out = I::Item>>
    where
        K: Ord,
        St: Send + Serialize + DeserializeOwned + Clone + 'static,
        I: IntoIterator,
        I::Item: Send + 'static,
        G: FnMut(&K, Values<'_, S::Out>, &mut GroupState<'_, St>) -> I + Clone + Send + 'static,
    {
        let op = FlatMapGroupsWithState::new(timeout, f);
        self.groups_with_state("flat_map_groups_with_state", Some(output_mode), timeout, op)
    }

    /// Spark Streaming's `updateStateByKey`: at the end of every epoch (micro-batch, or
    /// continuous epoch), `f(new_values, state)` runs for every key that has state or new
    /// values, its result becoming the key's state (`None` removes the key), and
    /// `(key, state)` goes out for every key that has state: the whole state, every
    /// epoch. See [`UpdateStateByKey`].
    ///
    /// Like the other DStream operations it is a transformation for the output-mode
    /// rules (its rows are not revised); the state is checkpointed.
    ///
    /// ```
    /// use rivulet::Query;
    ///
    /// let mut query = Query::builder();
    /// let totals = query
    ///     .from_iter("words", ["a", "b", "a"])
    ///     .key_by(|word| word.to_string())
    ///     .update_state_by_key(|new: Vec<&str>, count: Option<usize>| {
    ///         Some(count.unwrap_or(0) + new.len())
    ///     })
    ///     .to_memory("totals");
    /// query.start()?.await_termination()?;
    /// let mut rows = totals.rows();
    /// rows.sort();
    /// assert_eq!(rows, [("a".to_string(), 2), ("b".to_string(), 1)]);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn update_state_by_key<St, G>(self, f: G) -> Stream<impl Chain<Out = (K, St)>>
    where
        St: Clone + Send + Serialize + DeserializeOwned + 'static,
        G: FnMut(Vec<S::Out>, Option<St>) -> Option<St> + Clone + Send + 'static,
    {
        let name = "update_state_by_key";
        self.route(name)
            .then(name, OperatorKind::Transform, UpdateStateByKey::new(f))
    }

    /// Appends a groups-with-state operator behind the keyed route and records what
    /// `start()` checks about it (output mode, watermark).
    fn groups_with_state<O>(
        self,
        name: &str,
        output: Option<OutputMode>,
        timeout: GroupStateTimeout,
        op: O,
    ) -> Stream<impl Chain<Out = O::Out>>
    where
        O: Operator<(K, S::Out)> + Clone,
        O::Out: Send + 'static,
    {
        let watermarked = self.stream.watermarked;
        let stream = self
            .route(name)
            .then(name, OperatorKind::GroupsWithState, op);
        {
            let mut graph = stream.graph.borrow_mut();
            let id = stream.last_op.expect("an operator was just added");
            let name = graph.operators[id].name.to_string();
            if timeout == GroupStateTimeout::EventTimeTimeout && !watermarked {
                graph.errors.push(format!(
                    "`{name}` uses an event-time timeout, which needs a watermark on its \
                     input (Spark: \"Watermark must be specified in the query using \
                     withWatermark() for using event-time timeout\"); add \
                     with_event_time(..).with_watermark(delay) before key_by"
                ));
            }
            graph.group_state_ops.push(GroupStateUse { name, output });
        }
        stream
    }
}

/// Gives a closure the signature a group function needs (generic over the lifetime of
/// its [`Values`]), which a closure written inline does not infer.
fn group_fn<K, V, St, I, G>(f: G) -> G
where
    G: FnMut(&K, Values<'_, V>, &mut GroupState<'_, St>) -> I,
{
    f
}
