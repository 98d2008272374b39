//! Micro-batches on the coordinator's side: collecting the sources' plans, writing the
//! offset log (`OFFSETS`) with the batch time before a batch runs, releasing it, planning
//! an idle batch again, and replaying the restored batch (at its recorded time) at start.

use super::{Coordinator, QueryControl};
use crate::checkpoint::codec;
use crate::checkpoint::entries::{self, OffsetsEntry, SourceOffsets};
use crate::checkpoint::error::CheckpointError;
use crate::event::Timestamp;
use crate::trigger::ExecutionMode;
use std::time::{Duration, Instant};

/// The least time between two plans of a micro-batch that found no records (Spark's
/// `spark.streaming.pollingDelay`).
const IDLE_POLLING_DELAY: Duration = Duration::from_millis(10);

impl<C: QueryControl> Coordinator<C> {
    /// The interval after a micro-batch that found no records: plan it again, or, if a
    /// continuous trigger is now asked for, run it empty so the switch takes effect.
    pub(super) fn retry_idle_batch(&mut self, epoch: u64) -> Result<(), CheckpointError> {
        let requested = self.adopt_requested_trigger();
        // Nobody has passed marker `epoch` yet, so the mode after it is still open.
        self.shared.clock.set_mode_from(epoch + 1, requested.mode());
        if requested.mode() == ExecutionMode::Continuous
            || self
                .shared
                .batch_without_data_due(self.tracker.last_complete())
        {
            // A switch, an operator's processing-time timer due, or a watermark that
            // would move: the batch runs without data (Spark's no-data batches).
            return self.release_batch(epoch);
        }
        let sources = &self.sources;
        let tracker = &self.tracker;
        if let Some(open) = self.open_epochs.get_mut(&epoch) {
            // Keep what finished sources reported; running ones plan again.
            open.sources.retain(|participant, _| {
                !sources.contains(participant) || tracker.is_finished(*participant)
            });
        }
        self.shared.clock.replan();
        Ok(())
    }

    /// Starts the epoch after the restored one with the records the offset log holds for
    /// it: the sources replay exactly those (they learned so when they were built), and
    /// the batch is released at once, at the batch time the log recorded (a log of format
    /// 4 or older has none: the clock's time now is recorded instead).
    pub(super) fn start_replay(&mut self, replay: OffsetsEntry) -> Result<(), CheckpointError> {
        let epoch = replay.epoch;
        self.stats.lock().unwrap().replayed_epoch = Some(epoch);
        let batch_time = replay
            .batch_time
            .map_or_else(|| self.shared.processing_clock.now(), Timestamp);
        let payload = codec::encode(&OffsetsEntry {
            attempt: self.attempt,
            batch_time: Some(batch_time.0),
            ..replay.clone()
        })?;
        self.append(entries::OFFSETS, &payload, epoch)?;
        // The modes of this epoch and the next were fixed when the clock was built.
        debug_assert_eq!(self.shared.clock.mode_of(epoch), replay.mode);
        self.shared.clock.set_batch_time(epoch, batch_time);
        self.shared.clock.advance();
        self.shared.clock.release(epoch);
        let sources: Vec<(usize, (u64, Vec<u8>))> = replay
            .sources
            .iter()
            .filter_map(|source| {
                let participant = self.participant_index(&source.operator, source.instance)?;
                Some((participant, (source.records, source.end_offset.clone())))
            })
            .collect();
        let open = self.open_epochs.entry(epoch).or_default();
        open.triggered = Some(Instant::now());
        open.mode = replay.mode;
        open.offsets_logged = true;
        open.bytes += payload.len() as u64;
        open.sources.extend(sources);
        self.stats.lock().unwrap().epochs_triggered += 1;
        let outcome = self.tracker.open(epoch);
        self.on_outcome(outcome)
    }

    fn participant_index(&self, operator: &str, instance: u32) -> Option<usize> {
        self.participants
            .iter()
            .position(|(name, i)| name == operator && *i == instance)
    }

    pub(super) fn on_planned(
        &mut self,
        epoch: u64,
        participant: usize,
        records: u64,
        offset: Vec<u8>,
        drained: bool,
    ) -> Result<(), CheckpointError> {
        if epoch <= self.shared.clock.released() || participant >= self.participants.len() {
            // A batch released already (a replayed one): nothing to plan.
            return Ok(());
        }
        if drained {
            self.drained.insert(participant);
        } else {
            self.drained.remove(&participant);
        }
        self.open_epochs
            .entry(epoch)
            .or_default()
            .sources
            .insert(participant, (records, offset));
        self.check_plans(epoch)
    }

    /// Once every running source planned micro-batch `epoch`, logs its offsets and
    /// releases it.
    pub(super) fn check_plans(&mut self, epoch: u64) -> Result<(), CheckpointError> {
        if epoch <= self.shared.clock.released() || epoch > self.shared.clock.current() {
            return Ok(());
        }
        let open = self.open_epochs.entry(epoch).or_default();
        let planned = self
            .sources
            .iter()
            .all(|source| open.sources.contains_key(source) || self.tracker.is_finished(*source));
        if !planned {
            return Ok(());
        }
        let records: u64 = open.sources.values().map(|(records, _)| records).sum();
        if records == 0
            && !self.final_epoch_taken
            && !self.control.is_stop_requested()
            && !self
                .shared
                .batch_without_data_due(self.tracker.last_complete())
        {
            // No source had anything: like Spark, run no batch; plan it again at the
            // next interval, and never sooner than the polling delay (an interval of
            // zero would otherwise re-plan, and sync the sources' logs, in a loop).
            self.idle_batch = Some(epoch);
            self.publish_idle();
            self.next_trigger = self.next_trigger.max(Instant::now() + IDLE_POLLING_DELAY);
            return Ok(());
        }
        self.release_batch(epoch)
    }

    /// Logs micro-batch `epoch`'s offsets and batch time (the clock's reading now, as
    /// Spark's `batchTimestampMs`) and lets the sources emit it.
    pub(super) fn release_batch(&mut self, epoch: u64) -> Result<(), CheckpointError> {
        let batch_time = self.shared.processing_clock.now();
        let entry = OffsetsEntry {
            epoch,
            attempt: self.attempt,
            mode: ExecutionMode::MicroBatch,
            sources: self.source_offsets(epoch),
            batch_time: Some(batch_time.0),
        };
        let payload = codec::encode(&entry)?;
        // Logged before the batch runs (Spark's offset log). Not synced on its own: a
        // batch lost with an unsynced offset entry was never committed either, and is
        // planned afresh.
        self.append(entries::OFFSETS, &payload, epoch)?;
        let open = self.open_epochs.entry(epoch).or_default();
        open.offsets_logged = true;
        open.bytes += payload.len() as u64;
        // No source has sent this batch's marker yet, so the epoch after it can still
        // take a trigger asked for while the batch was planned.
        let requested = self.adopt_requested_trigger();
        self.shared.clock.set_mode_from(epoch + 1, requested.mode());
        self.shared.clock.set_batch_time(epoch, batch_time);
        self.shared.clock.release(epoch);
        Ok(())
    }

    /// The offset-log rows of `epoch`, from what its sources reported.
    fn source_offsets(&self, epoch: u64) -> Vec<SourceOffsets> {
        let Some(open) = self.open_epochs.get(&epoch) else {
            return Vec::new();
        };
        open.sources
            .iter()
            .map(|(participant, (records, offset))| {
                let (operator, instance) = self.participants[*participant].clone();
                SourceOffsets {
                    operator,
                    instance,
                    records: *records,
                    end_offset: offset.clone(),
                }
            })
            .collect()
    }
}
