//! Operators with two differently typed inputs: joins, co-processing, "train on one
//! stream, predict on another".
//!
//! A [`TwoInputOperator<L, R>`] handles records of its left input (`L`) in
//! [`on_left`](TwoInputOperator::on_left) and of its right input (`R`) in
//! [`on_right`](TwoInputOperator::on_right); every other hook (timers, watermarks,
//! markers, commits, snapshots) is the one-input [`Operator`]'s, since the two inputs
//! share one thread, one state and one timeline.
//!
//! # How it runs
//!
//! Both inputs arrive on the rings of one thread, tagged: the left side's chain ends in
//! edges carrying [`Either::Left`], the right side's in edges carrying [`Either::Right`],
//! and the thread reading them is an ordinary multi-input thread (as for `union`). So
//! everything a multi-input thread guarantees holds for both inputs together:
//!
//! * an epoch marker reaches the operator once it arrived on every input edge of both
//!   sides, and in aligned checkpoint mode an edge that delivered it is held back until
//!   then (a consistent cut: exactly-once state);
//! * the watermark is the minimum over both sides (idle inputs left out);
//! * end-of-stream comes once, after both sides ended.
//!
//! [`TwoInput`] runs a `TwoInputOperator` as an `Operator<Either<L, R>>`: one `match`
//! per record, on a tag known at compile time to be one of two, then a direct call into
//! the user's code. No boxing, no dynamic dispatch. The ring slot is as large as the
//! larger of the two record types plus the tag.
//!
//! Build one with [`Stream::connect`](crate::Stream::connect) (one thread reads every
//! instance of both streams) or [`KeyedStream::connect`](crate::KeyedStream::connect)
//! (both sides partitioned by the same key onto `n` instances).
//!
//! ```
//! use rivulet::operator::{Context, TwoInputOperator};
//!
//! /// Passes the left input through while its right input has said "open".
//! #[derive(Clone, Default)]
//! struct Gate {
//!     open: bool,
//! }
//!
//! impl TwoInputOperator<u64, bool> for Gate {
//!     type Out = u64;
//!     type Key = ();
//!     type Side = ();
//!     fn on_left<C: Context<u64>>(&mut self, n: u64, ctx: &mut C) {
//!         if self.open {
//!             ctx.push(n);
//!         }
//!     }
//!     fn on_right<C: Context<u64>>(&mut self, open: bool, _ctx: &mut C) {
//!         self.open = open;
//!     }
//! }
//!
//! let mut query = rivulet::Query::builder();
//! let numbers = query.from_iter("numbers", 0..5u64);
//! let switch = query.from_iter("switch", [true]);
//! let passed = numbers.connect(switch).operator("gate", Gate::default()).to_memory("passed");
//! query.start()?.await_termination()?;
//! // How the two inputs interleave is up to their threads: every record that passed
//! // came after the switch opened.
//! assert!(passed.rows().iter().all(|n| *n < 5));
//! # Ok::<(), rivulet::Error>(())
//! ```

use super::{Context, Operator, Timer, TimerKey};
use crate::error::BoxError;
use crate::event::{Epoch, Timestamp};
use crate::trigger::EmitMode;

/// A record of a two-input operator's merged input: from its left or its right input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Either<L, R> {
    /// A record of the left input.
    Left(L),
    /// A record of the right input.
    Right(R),
}

/// A transformation of two streams, a left one of `L` and a right one of `R`, into a
/// stream of [`Out`](TwoInputOperator::Out). See the [module docs](self).
///
/// The hooks other than [`on_left`](Self::on_left) and [`on_right`](Self::on_right) are
/// those of [`Operator`], with the same defaults and contract: the two inputs share the
/// operator's state, timers, watermark and epochs.
pub trait TwoInputOperator<L, R>: Send + 'static {
    /// The type of emitted records.
    type Out;
    /// What this operator's timers are keyed by (`()` if it sets none).
    type Key: TimerKey;
    /// The type of the side output (`()` if it has none).
    type Side: Send + 'static;

    /// Handles one record of the left input.
    fn on_left<C: Context<Self::Out, Self::Key, Self::Side>>(&mut self, record: L, ctx: &mut C);

    /// Handles one record of the right input.
    fn on_right<C: Context<Self::Out, Self::Key, Self::Side>>(&mut self, record: R, ctx: &mut C);

    /// A timer is due; see [`Operator::on_timer`].
    fn on_timer<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        timer: Timer<Self::Key>,
        ctx: &mut C,
    ) {
        let _ = (timer, ctx);
    }

    /// Event time reached `watermark` on both inputs; see [`Operator::on_watermark`].
    fn on_watermark<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        watermark: Timestamp,
        ctx: &mut C,
    ) {
        let _ = (watermark, ctx);
    }

    /// The marker of `epoch` arrived on both inputs; see [`Operator::on_marker`].
    fn on_marker<C: Context<Self::Out, Self::Key, Self::Side>>(
        &mut self,
        epoch: Epoch,
        ctx: &mut C,
    ) {
        let _ = (epoch, ctx);
    }

    /// Epochs up to `epoch` are committed; see [`Operator::on_commit`].
    fn on_commit(&mut self, epoch: Epoch) {
        let _ = epoch;
    }

    /// How the coming epochs run; see [`Operator::set_emit_mode`].
    fn set_emit_mode(&mut self, mode: EmitMode) {
        let _ = mode;
    }

    /// Both inputs ended; see [`Operator::on_end`].
    fn on_end<C: Context<Self::Out, Self::Key, Self::Side>>(&mut self, ctx: &mut C) {
        let _ = ctx;
    }

    /// The size of the operator's state for progress reports; see
    /// [`Operator::state_metrics`].
    fn state_metrics(&self) -> Option<crate::metrics::StateMetrics> {
        None
    }

    /// Encodes the operator's state; see [`Operator::snapshot`].
    ///
    /// # Errors
    ///
    /// An error fails the query.
    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(None)
    }

    /// Restores a snapshot; see [`Operator::restore`]. The default refuses.
    ///
    /// # Errors
    ///
    /// An error makes `start()` fail.
    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        let _ = state;
        Err("this operator keeps no state to restore".into())
    }
}

/// Runs a [`TwoInputOperator`] as an `Operator` of the tagged merged input (see the
/// [module docs](self)). [`ConnectedStreams::operator`](crate::stream::ConnectedStreams::operator)
/// wraps operators in it; wrap one yourself to drive it with a
/// [`Harness`](super::Harness), pushing [`Either::Left`] and [`Either::Right`] records.
///
/// ```
/// use rivulet::operator::{Context, Either, Harness, TwoInput, TwoInputOperator};
///
/// /// Emits the sum of the latest value of each side.
/// #[derive(Clone, Default)]
/// struct LatestSum(i64, i64);
///
/// impl TwoInputOperator<i64, i64> for LatestSum {
///     type Out = i64;
///     type Key = ();
///     type Side = ();
///     fn on_left<C: Context<i64>>(&mut self, x: i64, ctx: &mut C) {
///         self.0 = x;
///         ctx.push(self.0 + self.1);
///     }
///     fn on_right<C: Context<i64>>(&mut self, y: i64, ctx: &mut C) {
///         self.1 = y;
///         ctx.push(self.0 + self.1);
///     }
/// }
///
/// let mut harness = Harness::new(TwoInput::new(LatestSum::default()));
/// harness.push(Either::Left(2));
/// harness.push(Either::Right(40));
/// harness.push(Either::Left(-40));
/// assert_eq!(harness.take_output(), [2, 42, 0]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct TwoInput<O>(O);

impl<O> TwoInput<O> {
    /// Wraps `op`.
    pub fn new(op: O) -> Self {
        TwoInput(op)
    }

    /// The wrapped operator.
    pub fn get_ref(&self) -> &O {
        &self.0
    }

    /// Unwraps the operator.
    pub fn into_inner(self) -> O {
        self.0
    }
}

impl<L, R, O> Operator<Either<L, R>> for TwoInput<O>
where
    O: TwoInputOperator<L, R>,
{
    type Out = O::Out;
    type Key = O::Key;
    type Side = O::Side;

    #[inline(always)]
    fn on_record<C: Context<O::Out, O::Key, O::Side>>(
        &mut self,
        record: Either<L, R>,
        ctx: &mut C,
    ) {
        match record {
            Either::Left(left) => self.0.on_left(left, ctx),
            Either::Right(right) => self.0.on_right(right, ctx),
        }
    }

    fn on_timer<C: Context<O::Out, O::Key, O::Side>>(&mut self, timer: Timer<O::Key>, ctx: &mut C) {
        self.0.on_timer(timer, ctx)
    }

    fn on_watermark<C: Context<O::Out, O::Key, O::Side>>(
        &mut self,
        watermark: Timestamp,
        ctx: &mut C,
    ) {
        self.0.on_watermark(watermark, ctx)
    }

    fn on_marker<C: Context<O::Out, O::Key, O::Side>>(&mut self, epoch: Epoch, ctx: &mut C) {
        self.0.on_marker(epoch, ctx)
    }

    fn on_commit(&mut self, epoch: Epoch) {
        self.0.on_commit(epoch)
    }

    fn set_emit_mode(&mut self, mode: EmitMode) {
        self.0.set_emit_mode(mode)
    }

    fn on_end<C: Context<O::Out, O::Key, O::Side>>(&mut self, ctx: &mut C) {
        self.0.on_end(ctx)
    }

    fn state_metrics(&self) -> Option<crate::metrics::StateMetrics> {
        self.0.state_metrics()
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        self.0.snapshot()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.0.restore(state)
    }
}
