//! Triggers and output modes: *when* sources release records and *what* aggregates emit.
//!
//! The operators are the same under every trigger. A trigger decides only two things:
//! when a source hands its records downstream (one at a time as they come, or as one
//! batch per interval) and where epoch boundaries fall. Stateful operators learn the mode
//! of each epoch at the marker that opens it (see [`EmitMode`]) and emit accordingly.
//!
//! | trigger | records flow | epochs end | Spark counterpart |
//! |---|---|---|---|
//! | [`Trigger::Continuous`] | one at a time, at once | every `checkpoint_interval` | `Trigger.Continuous` |
//! | [`Trigger::MicroBatch`] | as one batch per `interval` | after each batch | `Trigger.ProcessingTime` |
//! | [`Trigger::AvailableNow`] | in batches, back to back | after each batch; the query stops once sources are drained | `Trigger.AvailableNow` |
//!
//! A running query switches between them with [`Query::set_trigger`](crate::Query::set_trigger);
//! the switch takes effect at the next epoch boundary.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// When a query's sources release records and where its epochs end.
///
/// ```
/// use rivulet::Trigger;
/// use std::time::Duration;
///
/// let low_latency = Trigger::Continuous { checkpoint_interval: Duration::from_millis(100) };
/// let batches = Trigger::MicroBatch { interval: Duration::from_millis(100) };
/// assert_ne!(low_latency.mode(), batches.mode());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Records flow one at a time as they arrive; an epoch marker is injected every
    /// `checkpoint_interval`. Aggregates emit a changed row per record (update mode).
    Continuous {
        /// Time between epoch markers (and checkpoints, if checkpointing is on).
        checkpoint_interval: Duration,
    },
    /// Every `interval`, each source releases what arrived since the previous batch as
    /// one batch, followed by the batch's epoch marker. The first batch runs at start.
    /// Batches run one after another:
    /// a batch that takes longer than `interval` delays the next, which then starts at
    /// once (as in Spark). A batch in which no source has records does not run (no
    /// marker, no output); the sources are asked again at the next interval, and never
    /// sooner than 10 ms later (so a zero interval, "as fast as possible", does not
    /// poll idle sources in a loop). Aggregates emit once per batch.
    MicroBatch {
        /// Time between batch starts.
        interval: Duration,
    },
    /// Processes what the sources hold, in batches back to back (each at most
    /// [`QueryBuilder::max_batch_records`](crate::QueryBuilder::max_batch_records) records
    /// per source), then stops the query. A source counts as drained at the first batch
    /// in which it had nothing more to give. The stop then drains as every stop does: a
    /// source that hands over what it accepted on a stop (the push source) puts records
    /// that arrived after that batch into the final epoch; other sources read nothing
    /// more.
    AvailableNow,
}

impl Trigger {
    /// How epochs under this trigger run.
    pub fn mode(&self) -> ExecutionMode {
        match self {
            Trigger::Continuous { .. } => ExecutionMode::Continuous,
            Trigger::MicroBatch { .. } | Trigger::AvailableNow => ExecutionMode::MicroBatch,
        }
    }

    /// Time between epoch starts (zero for [`Trigger::AvailableNow`]: back to back).
    pub fn interval(&self) -> Duration {
        match self {
            Trigger::Continuous {
                checkpoint_interval,
            } => *checkpoint_interval,
            Trigger::MicroBatch { interval } => *interval,
            Trigger::AvailableNow => Duration::ZERO,
        }
    }

    /// Problems with this trigger, if any.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            Trigger::Continuous {
                checkpoint_interval,
            } if checkpoint_interval.is_zero() => {
                Err("a continuous trigger needs a positive checkpoint interval".to_string())
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Continuous {
                checkpoint_interval,
            } => write!(f, "continuous (epochs every {checkpoint_interval:?})"),
            Trigger::MicroBatch { interval } => write!(f, "micro-batch every {interval:?}"),
            Trigger::AvailableNow => f.write_str("available-now"),
        }
    }
}

/// How one epoch runs: records released one at a time, or as one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ExecutionMode {
    /// Records flow one at a time; the epoch ends on a timer.
    #[default]
    Continuous,
    /// The epoch is one batch: its records are released together, its end is planned
    /// (and logged) before the batch runs.
    MicroBatch,
}

impl fmt::Display for ExecutionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExecutionMode::Continuous => "continuous",
            ExecutionMode::MicroBatch => "micro-batch",
        })
    }
}

/// What an aggregation emits (Spark's output modes). Set with
/// [`QueryBuilder::output_mode`](crate::QueryBuilder::output_mode).
///
/// | mode | continuous epoch | micro-batch epoch | allowed |
/// |---|---|---|---|
/// | `Update` (default) | the changed row, at once, per record | each changed row once, at the batch end | always |
/// | `Complete` | the whole result table at each epoch end | the whole result table at each batch end | only with an aggregation |
/// | `Append` | rows that can never change again | same | without aggregation (aggregations need event-time watermarks, not supported yet) |
///
/// For queries without aggregation, `Append` and `Update` are the same: every record is
/// emitted once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum OutputMode {
    /// Only rows that will never change again.
    Append,
    /// Rows that changed since they were last emitted.
    #[default]
    Update,
    /// The whole result table, every epoch.
    Complete,
}

/// What an operator or sink needs to know to emit correctly in the current epoch: how the
/// epoch runs and the query's output mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EmitMode {
    /// How the current epoch runs.
    pub execution: ExecutionMode,
    /// The query's output mode.
    pub output: OutputMode,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_map_to_modes_and_intervals() {
        let ms = Duration::from_millis;
        let continuous = Trigger::Continuous {
            checkpoint_interval: ms(5),
        };
        assert_eq!(continuous.mode(), ExecutionMode::Continuous);
        assert_eq!(continuous.interval(), ms(5));
        assert_eq!(
            Trigger::MicroBatch { interval: ms(7) }.mode(),
            ExecutionMode::MicroBatch
        );
        assert_eq!(Trigger::AvailableNow.interval(), Duration::ZERO);
        assert!(Trigger::Continuous {
            checkpoint_interval: Duration::ZERO
        }
        .validate()
        .is_err());
        assert!(Trigger::MicroBatch {
            interval: Duration::ZERO
        }
        .validate()
        .is_ok());
    }
}
