//! The participants' side of the coordinator: the handle each source, operator stage
//! and sink holds ([`Participant`]), what the query's threads share about epochs
//! ([`CheckpointShared`]), and the messages they send ([`Message`]).
//!
//! Every participant sends over one channel, so the acknowledgements of one participant
//! arrive in the order it sent them (and it sends them in epoch order, because markers
//! travel in order).

use super::EpochClock;
use crate::checkpoint::commit::PendingCommit;
use crate::sync::{Arc, Mutex};
use crate::trigger::{EmitMode, OutputMode, Trigger};
use crossbeam::channel::Sender;
use std::time::Duration;

/// Messages from participants (and the query handle) to the coordinator.
#[derive(Debug)]
pub(crate) enum Message {
    /// A participant passed the marker of `epoch`.
    Ack {
        epoch: u64,
        participant: u32,
        state: Option<Vec<u8>>,
        took: Duration,
        /// For a source: records it emitted in the epoch.
        records: u64,
        /// For a sink: the epoch's staged output to publish once the epoch is complete.
        commit: Option<PendingCommit>,
    },
    /// A source planned micro-batch `epoch`: it holds `records` records and its offset
    /// after them is `offset`. `drained`: it had nothing more to give.
    Planned {
        epoch: u64,
        /// The planning round the plan was made in (see [`EpochClock::replan`]).
        round: u64,
        participant: u32,
        records: u64,
        offset: Vec<u8>,
        drained: bool,
    },
    /// A participant reached end-of-stream; `state` is its final state (a source's final
    /// offset, an operator's state after its last record). Every epoch it never
    /// acknowledged will restore it from this state. A sink's last output is committed
    /// with the next epoch that completes. A source also says how many records it
    /// emitted after its last marker, in `tail.1`, which is epoch `tail.0`.
    Finished {
        participant: u32,
        state: Option<Vec<u8>>,
        commit: Option<PendingCommit>,
        tail: Option<(u64, u64)>,
    },
    /// A participant's report for the progress of `epoch`: sent as it passes the
    /// epoch's marker (before its `Ack`), or at end of stream for the epoch its last
    /// records belong to (before its `Finished`).
    Metrics {
        epoch: u64,
        participant: u32,
        metrics: Box<crate::metrics::epoch::EpochMetrics>,
    },
    /// `Query::set_trigger` asked for another trigger.
    TriggerChanged,
    /// Every operator thread has ended: write what is left and end.
    Shutdown,
}

/// What the query's threads share about epochs.
#[derive(Debug)]
pub(crate) struct CheckpointShared {
    pub(crate) sender: Sender<Message>,
    pub(crate) clock: EpochClock,
    /// Whether epochs are written to a checkpoint log (operators snapshot state only
    /// then).
    pub(crate) persistent: bool,
    /// The trigger asked for; the coordinator applies it at the next epoch boundary.
    pub(crate) requested: Mutex<Trigger>,
    /// The query's output mode.
    pub(crate) output_mode: OutputMode,
    /// The processing-time clock of the query.
    pub(crate) processing_clock: crate::time::Clock,
    /// Each participant's earliest processing-time timer (µs; `i64::MAX`: none), as its
    /// stage last published it: a micro-batch query runs a batch without data when one
    /// is due, as Spark does for processing-time timeouts. A hint, not a protocol: std
    /// atomics.
    pub(crate) timer_deadlines: Box<[std::sync::atomic::AtomicI64]>,
    /// The watermark generators' reports: a micro-batch's watermark, and whether a batch
    /// without data would move it.
    pub(crate) watermarks: crate::time::watermark::WatermarkBoard,
}

impl CheckpointShared {
    /// Whether some operator's processing-time timer is due.
    pub(crate) fn timers_due(&self) -> bool {
        let now = self.processing_clock.now().0;
        self.timer_deadlines
            .iter()
            .any(|deadline| deadline.load(std::sync::atomic::Ordering::Relaxed) <= now)
    }

    /// Whether a micro-batch after `epoch` must run even without data: an operator's
    /// processing-time timer is due, or the watermark would move (Spark's no-data
    /// batches).
    pub(crate) fn batch_without_data_due(&self, epoch: u64) -> bool {
        self.timers_due() || self.watermarks.would_advance(epoch)
    }

    /// What operators and sinks emit in `epoch`.
    pub(crate) fn emit_mode(&self, epoch: u64) -> EmitMode {
        EmitMode {
            execution: self.clock.mode_of(epoch),
            output: self.output_mode,
        }
    }
}

/// One participant's handle: sources, operator stages and sinks hold one each.
#[derive(Debug, Clone)]
pub(crate) struct Participant {
    pub(crate) shared: Arc<CheckpointShared>,
    pub(crate) index: u32,
}

impl Participant {
    /// Publishes this participant's earliest processing-time timer (`i64::MAX`: none).
    pub(crate) fn publish_timer(&self, deadline: i64) {
        if let Some(slot) = self.shared.timer_deadlines.get(self.index as usize) {
            slot.store(deadline, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Reports what this participant did up to the marker of `epoch` (or, at end of
    /// stream, in `epoch`, the one its last records belong to), for the epoch's progress.
    pub(crate) fn report(&self, epoch: u64, metrics: crate::metrics::epoch::EpochMetrics) {
        let _ = self.shared.sender.send(Message::Metrics {
            epoch,
            participant: self.index,
            metrics: Box::new(metrics),
        });
    }

    /// Reports end-of-stream, with the participant's final state, after its last `ack`.
    pub(crate) fn finish(&self, state: Option<Vec<u8>>, commit: Option<PendingCommit>) {
        let _ = self.shared.sender.send(Message::Finished {
            participant: self.index,
            state,
            commit,
            tail: None,
        });
    }

    /// A source reports end-of-stream: its final offset, and the `records` it emitted
    /// in `epoch` (the one after its last marker) before ending.
    pub(crate) fn finish_source(&self, offset: Option<Vec<u8>>, epoch: u64, records: u64) {
        let _ = self.shared.sender.send(Message::Finished {
            participant: self.index,
            state: offset,
            commit: None,
            tail: Some((epoch, records)),
        });
    }

    /// Acknowledges `epoch` with the state `snapshot` encodes, asked for (and timed) only
    /// when the query persists state. Returns the encoding's error, if any, without
    /// acknowledging: the caller fails the query. (`snapshot` is a `dyn` so that this is
    /// compiled once, not once per stage type: it is called once per epoch.)
    pub(crate) fn ack_state(
        &self,
        epoch: u64,
        snapshot: &mut dyn FnMut() -> Result<Option<Vec<u8>>, crate::error::BoxError>,
    ) -> Result<(), crate::error::BoxError> {
        if !self.shared.persistent {
            self.ack(epoch, None, Duration::ZERO);
            return Ok(());
        }
        let started = std::time::Instant::now();
        let state = snapshot()?;
        self.ack(epoch, state, started.elapsed());
        Ok(())
    }

    /// Reports end-of-stream with the final state `snapshot` encodes (asked for only when
    /// the query persists state). Returns the encoding's error, if any, without reporting.
    pub(crate) fn finish_state(
        &self,
        snapshot: &mut dyn FnMut() -> Result<Option<Vec<u8>>, crate::error::BoxError>,
    ) -> Result<(), crate::error::BoxError> {
        let state = if self.shared.persistent {
            snapshot()?
        } else {
            None
        };
        self.finish(state, None);
        Ok(())
    }

    /// Acknowledges `epoch` with this participant's snapshot (if it has state).
    pub(crate) fn ack(&self, epoch: u64, state: Option<Vec<u8>>, took: Duration) {
        self.send_ack(epoch, state, took, 0, None);
    }

    /// A source acknowledges `epoch` with its offset and the records it emitted in it.
    pub(crate) fn ack_source(&self, epoch: u64, offset: Vec<u8>, took: Duration, records: u64) {
        self.send_ack(epoch, Some(offset), took, records, None);
    }

    /// A sink acknowledges `epoch`, handing over the commit of its staged output.
    pub(crate) fn ack_sink(&self, epoch: u64, commit: Option<PendingCommit>) {
        self.send_ack(epoch, None, Duration::ZERO, 0, commit);
    }

    /// A source reports what micro-batch `epoch` holds.
    pub(crate) fn plan(&self, epoch: u64, round: u64, plan: (u64, Vec<u8>), drained: bool) {
        let (records, offset) = plan;
        let _ = self.shared.sender.send(Message::Planned {
            epoch,
            round,
            participant: self.index,
            records,
            offset,
            drained,
        });
    }

    fn send_ack(
        &self,
        epoch: u64,
        state: Option<Vec<u8>>,
        took: Duration,
        records: u64,
        commit: Option<PendingCommit>,
    ) {
        // The coordinator outlives every participant (it ends after all operator threads
        // joined), so the send only fails while the query is being torn down.
        let _ = self.shared.sender.send(Message::Ack {
            epoch,
            participant: self.index,
            state,
            took,
            records,
            commit,
        });
    }
}
