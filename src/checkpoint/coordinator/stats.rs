//! What the coordinator reports about epochs: [`CheckpointStats`] for the query's
//! progress, with an [`EpochReport`] for each recently completed epoch.

use crate::trigger::ExecutionMode;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One completed epoch, as progress reports show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// The epoch (in micro-batch mode: the batch id).
    pub epoch: u64,
    /// How the epoch ran.
    pub mode: ExecutionMode,
    /// From the trigger to the completion (and commit) of the epoch, including the msync,
    /// if any.
    pub duration: Duration,
    /// Records the sources emitted in the epoch, where known (micro-batches, and
    /// continuous epochs that every source acknowledged).
    pub input_rows: Option<u64>,
    /// Bytes of log entries written for this epoch (offsets, snapshots and completion).
    pub bytes_written: u64,
    /// How long each participant with state took to snapshot: `(operator, instance, time)`.
    pub snapshot_times: Vec<(String, u32, Duration)>,
    /// Sink commits run for the epoch.
    pub commits: usize,
}

/// Epoch and checkpoint progress of a query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckpointStats {
    /// The trigger in effect (as text, e.g. `micro-batch every 100ms`).
    pub trigger: String,
    /// Whether epochs are written to a checkpoint directory.
    pub persistent: bool,
    /// The epoch restored at start, if any.
    pub recovered_epoch: Option<u64>,
    /// Damage recovery found in the checkpoint directory at start (problems beyond a torn
    /// tail, such as a corrupt entry or a missing segment, each saying what was lost).
    /// Recovery restored `recovered_epoch`, the newest epoch whose entries are all intact,
    /// despite it; `rivulet inspect` on the directory shows the same. Empty when the
    /// directory was intact.
    pub recovery_damage: Vec<String>,
    /// The epoch replayed with the records the offset log recorded, if any.
    pub replayed_epoch: Option<u64>,
    /// The newest complete epoch.
    pub last_complete_epoch: Option<u64>,
    /// Epochs triggered so far (including incomplete ones).
    pub epochs_triggered: u64,
    /// Bytes written to the log since start.
    pub bytes_written: u64,
    /// The most recent completed epochs (up to 16), oldest first.
    pub recent: Vec<EpochReport>,
}

/// How many completed epochs [`CheckpointStats::recent`] keeps.
const RECENT_EPOCHS: usize = 16;

impl CheckpointStats {
    /// Records that `report.epoch` completed: it becomes the newest complete epoch and
    /// joins the recent ones (the oldest goes beyond [`RECENT_EPOCHS`]).
    pub(crate) fn record_complete(&mut self, report: EpochReport) {
        self.last_complete_epoch = Some(report.epoch);
        self.recent.push(report);
        if self.recent.len() > RECENT_EPOCHS {
            self.recent.remove(0);
        }
    }
}
