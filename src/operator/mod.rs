//! Operators: the [`Operator`] trait every transformation implements, the [`Context`]
//! it emits into, and the stage that runs it on an operator thread.
//!
//! Operators on one thread form a chain of nested generic stages: a `map` followed by a
//! `filter` followed by a sink compiles to one function with the user closures inlined.
//! Type erasure happens once per thread, when its chain is boxed into a task at query
//! start, never per record.
//!
//! An operator sees records and control events in edge order, through hooks with
//! defaults, so a stateless operator implements only [`Operator::on_record`]. The runtime
//! forwards watermarks, epoch markers and end-of-stream itself, after the hook ran, so
//! whatever a hook emits belongs before the event downstream.
//!
//! The [`Context`] an operator gets with every call is also its collector: besides
//! [`push`](Collector::push) it offers the current watermark and processing time, a
//! per-key [timer service](timer) (event-time timers fire when the watermark passes them,
//! processing-time timers when the query's [`Clock`](crate::time::Clock) does; both are
//! snapshotted with the operator and restored), named counters that progress reports
//! show, and a second typed output, the [side output](Operator::Side).
//!
//! ```
//! use rivulet::operator::{Collector, Context, Operator};
//!
//! /// Emits the running sum of its input.
//! #[derive(Clone, Default)]
//! struct RunningSum(u64);
//!
//! impl Operator<u64> for RunningSum {
//!     type Out = u64;
//!     type Key = ();
//!     type Side = ();
//!     fn on_record<C: Context<u64>>(&mut self, record: u64, ctx: &mut C) {
//!         self.0 += record;
//!         ctx.push(self.0);
//!     }
//! }
//!
//! let mut query = rivulet::Query::builder();
//! let sums = query
//!     .from_iter("numbers", 1..=4u64)
//!     .operator("running_sum", RunningSum::default())
//!     .to_memory("sums");
//! query.start().unwrap().await_termination().unwrap();
//! assert_eq!(sums.rows(), vec![1, 3, 6, 10]);
//! ```

pub mod batch_join;
pub(crate) mod exchange;
pub use exchange::partition_of;
pub(crate) mod context;
pub mod harness;
pub mod keyed;
pub(crate) mod stage;
pub mod stateless;
pub mod static_join;
pub mod timer;
pub mod two_input;
pub(crate) mod watermark;

pub use context::Context;
pub use harness::Harness;
pub use timer::{TimeDomain, Timer, TimerKey, TimerService};
pub use two_input::{Either, TwoInput, TwoInputOperator};

use crate::error::BoxError;
use crate::event::{Epoch, Timestamp};
use crate::trigger::EmitMode;

/// Where an operator emits records.
///
/// Every [`Context`] is a collector; helpers that only emit (an aggregate's emission
/// policy, say) can take `&mut impl Collector<T>`.
pub trait Collector<T> {
    /// Emits a record downstream.
    fn push(&mut self, record: T);
}

impl<T, C: Collector<T> + ?Sized> Collector<T> for &mut C {
    #[inline(always)]
    fn push(&mut self, record: T) {
        (**self).push(record)
    }
}

/// A transformation from a stream of `In` to a stream of [`Out`](Operator::Out).
///
/// Implement [`on_record`](Operator::on_record); the other hooks have defaults. Operators
/// run on one thread, one record at a time, so `&mut self` state needs no locking. An
/// operator used at parallelism > 1 is cloned once per instance.
///
/// The hooks get a [`Context`] typed by the three associated types; an operator writes
/// its bound with the concrete types (`C: Context<u64>` when `Key` and `Side` are `()`,
/// `C: Context<Out, MyKey, Late>` otherwise).
pub trait Operator<In>: Send + 'static {
    /// The type of emitted records.
    type Out;
    /// What this operator's timers are keyed by (`()` if it sets none). Timers are
    /// deduplicated per `(key, time)` and fire once, through
    /// [`on_timer`](Self::on_timer).
    type Key: TimerKey;
    /// The type of the side output (`()` if it has none): records the operator sets
    /// aside with [`Context::side_output`] (late rows, quarantined input). Read them with
    /// [`Stream::operator_with_side_output`](crate::Stream::operator_with_side_output);
    /// an operator attached with [`Stream::operator`](crate::Stream::operator) has its
    /// side output counted (as `side_output_discarded`) and dropped.
    type Side: Send + 'static;

    /// Handles one record, emitting any number of records into `ctx`.
    fn on_record<C: Context<Self::Out, Self::Key, Self::Side>>(&mut self, record: In, ctx: &mut C);

    /// A timer set through the context is due: the watermark reached an event-time
    /// timer's time, or the clock a processing-time timer's. Called once per timer, in
    /// time order. A round of firing handles at most the timers pending when it began: a
    /// timer set from here at or before the current time fires in the next round (the
    /// next advancing watermark, or the thread's next step), never in a loop. The default
    /// does nothing.
    fn on_timer<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        timer: Timer<Self::Key>,
        ctx: &mut C,
    ) {
        let _ = (timer, ctx);
    }

    /// Event time reached `watermark` on every input (no record older than it follows),
    /// after the event-time timers it made due have fired. The runtime forwards the
    /// watermark after this call; the default does nothing else.
    fn on_watermark<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        watermark: Timestamp,
        ctx: &mut C,
    ) {
        let _ = (watermark, ctx);
    }

    /// The marker of `epoch` arrived on every input: everything of the epoch has been
    /// seen. Emit what the epoch owes (a micro-batch aggregate's changed rows, a
    /// complete-mode result table); the runtime then snapshots the state and forwards the
    /// marker. The default emits nothing.
    fn on_marker<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        epoch: Epoch,
        ctx: &mut C,
    ) {
        let _ = (epoch, ctx);
    }

    /// Every epoch up to `epoch` is complete and its output committed by the sinks. Called
    /// on the operator's thread at its next step after the commit (not at once: a thread
    /// waiting for input sees it with its next input or timer). What a transactional
    /// operator or sink needs to finalise; the default does nothing.
    fn on_commit(&mut self, epoch: Epoch) {
        let _ = epoch;
    }

    /// How the epochs that follow run and what the query's output mode is. Called before
    /// the first record and again at each epoch boundary where it changes (after
    /// [`on_marker`](Self::on_marker)). Operators whose output depends on it (keyed
    /// aggregates: per record in continuous update mode, once per batch in micro-batch
    /// mode, the whole table in complete mode) keep it; the default ignores it.
    fn set_emit_mode(&mut self, mode: EmitMode) {
        let _ = mode;
    }

    /// No record follows. Emit any final output here; the end-of-stream signal itself is
    /// forwarded by the runtime afterwards. Timers still pending do not fire.
    fn on_end<C: Context<Self::Out, Self::Key, Self::Side>>(&mut self, ctx: &mut C) {
        let _ = ctx;
    }

    /// Encodes this operator's state for the checkpoint of the current epoch, or returns
    /// `None` if it has none (the default). Called on the operator's thread when the
    /// epoch's marker has arrived on every input, before the marker is forwarded; keep it
    /// to encoding (for example with [`codec::encode`](crate::checkpoint::codec::encode)).
    /// Pending timers are saved by the runtime beside it.
    ///
    /// # Errors
    ///
    /// An error fails the query.
    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(None)
    }

    /// What this operator's state holds, for progress reports' `stateOperators` (Spark's
    /// `StateOperatorProgress`), or `None` if it keeps no state (the default). Called on
    /// the operator's thread once per epoch, when the epoch's marker has arrived (after
    /// [`on_marker`](Self::on_marker)), and at end of stream; never per record. Keep
    /// running totals (`rows_updated`, `rows_removed`) in the operator; progress shows
    /// their growth per epoch. Rows dropped by the watermark are counted with
    /// [`Context::count`] as `rows_dropped_by_watermark`.
    ///
    /// ```
    /// use rivulet::metrics::StateMetrics;
    /// use rivulet::operator::{Context, Operator};
    /// use std::collections::HashMap;
    ///
    /// /// Emits each word's count so far.
    /// #[derive(Default)]
    /// struct WordCount { counts: HashMap<String, u64>, writes: u64 }
    ///
    /// impl Operator<String> for WordCount {
    ///     type Out = (String, u64);
    ///     type Key = ();
    ///     type Side = ();
    ///     fn on_record<C: Context<(String, u64)>>(&mut self, word: String, ctx: &mut C) {
    ///         let count = self.counts.entry(word.clone()).or_default();
    ///         *count += 1;
    ///         self.writes += 1;
    ///         ctx.push((word, *count));
    ///     }
    ///     fn state_metrics(&self) -> Option<StateMetrics> {
    ///         Some(StateMetrics {
    ///             rows_total: self.counts.len() as u64,
    ///             rows_updated: self.writes,
    ///             memory_used_bytes: StateMetrics::table_bytes::<String, u64>(
    ///                 self.counts.capacity(),
    ///             ),
    ///             ..StateMetrics::default()
    ///         })
    ///     }
    /// }
    /// ```
    fn state_metrics(&self) -> Option<crate::metrics::StateMetrics> {
        None
    }

    /// Replaces this operator's state with a snapshot taken by [`snapshot`](Self::snapshot)
    /// (recovery, when the query starts). The default refuses: an operator that
    /// snapshots state must restore it.
    ///
    /// # Errors
    ///
    /// An error makes `start()` fail.
    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        let _ = state;
        Err("this operator keeps no state to restore".into())
    }
}
