//! Event time on a stream: [`Stream::with_event_time`] and
//! [`EventTimeStream::with_watermark`] (Spark's `withWatermark`), and the chain type
//! [`Watermarked`] that runs the watermark generator.

use super::{Chain, Stream};
use crate::event::Timestamp;
use crate::operator::watermark::{GeneratorParts, WatermarkStage};
use crate::plan::{Graph, OpId, OperatorKind, PortId};
use crate::runtime::{Downstream, Task};
use crate::time::WatermarkConfig;
use std::fmt;
use std::time::Duration;

impl<S: Chain> Stream<S> {
    /// Names each record's event time (microseconds since the Unix epoch), for
    /// [`with_watermark`](EventTimeStream::with_watermark).
    ///
    /// ```
    /// use rivulet::{Timestamp, Trigger};
    /// use rivulet::window::TimeWindows;
    /// use std::time::Duration;
    ///
    /// #[derive(Clone)]
    /// struct Click { page: &'static str, at: Timestamp }
    /// let sec = |s: i64| Timestamp(s * 1_000_000);
    /// let clicks = [("home", 1), ("docs", 3), ("home", 12), ("home", 25)]
    ///     .map(|(page, s)| Click { page, at: sec(s) });
    ///
    /// let mut query = rivulet::Query::builder();
    /// query.output_mode(rivulet::OutputMode::Append);
    /// let counts = query
    ///     .from_iter("clicks", clicks)
    ///     .with_event_time(|c| c.at)
    ///     .with_watermark(Duration::from_secs(5))
    ///     .key_by(|c| c.page.to_string())
    ///     .window(TimeWindows::tumbling(Duration::from_secs(10)).unwrap(), |c: &Click| c.at)
    ///     .count()
    ///     .to_memory("counts");
    /// query.start()?.await_termination()?;
    /// // The watermark reached 25 − 5 = 20 s: the windows [0, 10) and [10, 20) are final.
    /// let mut rows = counts.rows();
    /// rows.sort_by_key(|(page, w, _)| (w.start, page.clone()));
    /// let rows: Vec<_> = rows.iter().map(|(p, w, n)| (p.as_str(), w.start.0 / 1_000_000, *n)).collect();
    /// assert_eq!(rows, [("docs", 0, 1), ("home", 0, 1), ("home", 10, 1)]);
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn with_event_time<F>(self, time: F) -> EventTimeStream<S, F>
    where
        F: FnMut(&S::Out) -> Timestamp + Clone + Send + 'static,
    {
        EventTimeStream { stream: self, time }
    }
}

/// A stream whose records' event time is known, waiting for its watermark policy.
/// Created by [`Stream::with_event_time`].
#[must_use = "event time is used through with_watermark"]
pub struct EventTimeStream<S, F> {
    stream: Stream<S>,
    time: F,
}

impl<S, F> fmt::Debug for EventTimeStream<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventTimeStream").finish_non_exhaustive()
    }
}

impl<S, F> EventTimeStream<S, F>
where
    S: Chain,
    F: FnMut(&S::Out) -> Timestamp + Clone + Send + 'static,
{
    /// Makes the stream carry watermarks: the largest event time seen minus `delay`
    /// (Spark's `withWatermark(col, delay)`), with the default
    /// [`WatermarkConfig`] otherwise. Window aggregates downstream then close windows
    /// and drop late records by it, and append mode becomes possible on them. See
    /// [`time::watermark`](crate::time::watermark) for when it moves in each trigger mode.
    pub fn with_watermark(self, delay: Duration) -> Stream<Watermarked<S, F>> {
        self.with_watermark_config(WatermarkConfig::new(delay))
    }

    /// [`with_watermark`](Self::with_watermark) with every setting given.
    pub fn with_watermark_config(self, config: WatermarkConfig) -> Stream<Watermarked<S, F>> {
        let EventTimeStream { stream, time } = self;
        let id = {
            let mut g = stream.graph.borrow_mut();
            let name = g.unique_name("watermark");
            let id = g.add_operator(&name, OperatorKind::Transform, stream.parallelism);
            g.add_edges(&stream.upstream, id);
            id
        };
        Stream {
            graph: stream.graph,
            chain: Watermarked {
                upstream: stream.chain,
                time,
                config,
                id,
                instances: stream.parallelism,
            },
            group: stream.group,
            parallelism: stream.parallelism,
            last_op: Some(id),
            upstream: vec![id],
            watermarked: true,
        }
    }
}

/// A chain followed by the watermark generator. Created by
/// [`EventTimeStream::with_watermark`].
#[derive(Clone)]
pub struct Watermarked<S, F> {
    upstream: S,
    time: F,
    config: WatermarkConfig,
    id: OpId,
    instances: usize,
}

impl<S, F> fmt::Debug for Watermarked<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watermarked")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S, F> Chain for Watermarked<S, F>
where
    S: Chain,
    F: FnMut(&S::Out) -> Timestamp + Clone + Send + 'static,
{
    type Out = S::Out;

    fn input_port(&self) -> Option<PortId> {
        self.upstream.input_port()
    }

    #[allow(private_interfaces, private_bounds)]
    fn finish<C>(self, downstream: C, graph: &mut Graph, instance: usize) -> Box<dyn Task>
    where
        C: Downstream<S::Out> + Send + 'static,
    {
        let parts = generator_parts(self.id, instance, self.instances, graph);
        match WatermarkStage::new(self.time, self.config, downstream, parts) {
            Ok(stage) => self.upstream.finish(stage, graph, instance),
            Err(error) => {
                // Reported by `start()`, naming the generator; the task is never run.
                graph.restore_failed(self.id, error.to_string());
                self.upstream.finish(Unrestorable, graph, instance)
            }
        }
    }
}

/// What the watermark generator `id` (instance `instance` of `instances`) reports to and
/// restores from: not generic, so compiled once.
pub(super) fn generator_parts(
    id: OpId,
    instance: usize,
    instances: usize,
    graph: &mut Graph,
) -> GeneratorParts {
    let (metrics, name) = graph.operator_instance(id, instance);
    GeneratorParts {
        id,
        instance,
        instances,
        metrics,
        name,
        control: graph.control.clone(),
        participant: graph.participant(id, instance),
        first_epoch: graph.first_epoch(),
        mode: graph.first_emit_mode().execution,
        restored: graph
            .restored_state(id, instance)
            .map(|(state, _)| state.to_vec()),
    }
}

impl<S, F> Watermarked<S, F> {
    /// The upstream chain, the event time, the configuration, the generator's id and
    /// its number of instances (for a chain type that holds the generator itself).
    pub(super) fn into_parts(self) -> (S, F, WatermarkConfig, OpId, usize) {
        (
            self.upstream,
            self.time,
            self.config,
            self.id,
            self.instances,
        )
    }
}

/// The chain end built in place of a generator whose state could not be restored: the
/// query does not start, so it never runs.
pub(super) struct Unrestorable;

impl<T> Downstream<T> for Unrestorable {
    fn push(&mut self, _record: T) {}
    fn signal(&mut self, _signal: crate::event::Signal) {}
    fn flush(&mut self) {}
}
