//! Operators: the [`Operator`] trait every transformation implements, the [`Collector`]
//! it emits into, and the stage that runs it on an operator thread.
//!
//! Operators on one thread form a chain of nested generic [`Collector`]s: a `map`
//! followed by a `filter` followed by a sink compiles to one function with the user
//! closures inlined. Type erasure happens once per thread, when its chain is boxed into a
//! task at query start, never per record.
//!
//! An operator sees records and control signals in edge order. The defaults forward
//! watermarks and epoch markers unchanged and emit nothing at end-of-stream, so a
//! stateless operator implements only [`Operator::on_record`].
//!
//! ```
//! use rivulet::operator::{Collector, Operator};
//!
//! /// Emits the running sum of its input.
//! #[derive(Clone, Default)]
//! struct RunningSum(u64);
//!
//! impl Operator<u64> for RunningSum {
//!     type Out = u64;
//!     fn on_record<C: Collector<u64>>(&mut self, record: u64, out: &mut C) {
//!         self.0 += record;
//!         out.push(self.0);
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

pub(crate) mod exchange;
pub use exchange::partition_of;
pub(crate) mod fan_in;
pub mod keyed;
pub(crate) mod stage;
pub mod stateless;

use crate::error::BoxError;
use crate::event::{Epoch, Signal, Timestamp};
use crate::trigger::EmitMode;

/// Where an operator emits: records and control signals, in order.
pub trait Collector<T> {
    /// Emits a record downstream.
    fn push(&mut self, record: T);
    /// Emits a control signal downstream.
    fn signal(&mut self, signal: Signal);
    /// Ends a step of work: publishes buffered output and wakes downstream threads.
    /// Called by the runtime; operators need not call it.
    fn flush(&mut self);
}

impl<T, C: Collector<T> + ?Sized> Collector<T> for &mut C {
    #[inline(always)]
    fn push(&mut self, record: T) {
        (**self).push(record)
    }
    #[inline(always)]
    fn signal(&mut self, signal: Signal) {
        (**self).signal(signal)
    }
    #[inline(always)]
    fn flush(&mut self) {
        (**self).flush()
    }
}

/// A transformation from a stream of `In` to a stream of `Out`.
///
/// Implement [`on_record`](Operator::on_record); the other hooks have defaults. Operators
/// run on one thread, one record at a time, so `&mut self` state needs no locking. An
/// operator used at parallelism > 1 is cloned once per instance.
pub trait Operator<In>: Send + 'static {
    /// The type of emitted records.
    type Out;

    /// Handles one record, emitting any number of records into `out`.
    fn on_record<C: Collector<Self::Out>>(&mut self, record: In, out: &mut C);

    /// Event time reached `time` on every input. The default forwards it.
    fn on_watermark<C: Collector<Self::Out>>(&mut self, time: Timestamp, out: &mut C) {
        out.signal(Signal::Watermark(time));
    }

    /// The marker of `epoch` arrived on every input: everything of the epoch has been
    /// seen. Emit what the epoch owes (a micro-batch aggregate's changed rows, a
    /// complete-mode result table), then forward the marker; the default only forwards
    /// it. The state is snapshotted right after this call.
    fn on_marker<C: Collector<Self::Out>>(&mut self, epoch: Epoch, out: &mut C) {
        out.signal(Signal::Marker(epoch));
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
    /// forwarded by the runtime afterwards.
    fn on_end<C: Collector<Self::Out>>(&mut self, out: &mut C) {
        let _ = out;
    }

    /// Encodes this operator's state for the checkpoint of the current epoch, or returns
    /// `None` if it has none (the default). Called on the operator's thread when the
    /// epoch's marker has arrived on every input, before the marker is forwarded; keep it
    /// to encoding (for example with [`codec::encode`](crate::checkpoint::codec::encode)).
    ///
    /// # Errors
    ///
    /// An error fails the query.
    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(None)
    }

    /// Replaces this operator's state with a snapshot taken by [`snapshot`](Self::snapshot)
    /// (recovery, before the query starts). The default refuses: an operator that
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
