//! How a query checkpoints: where, how often, aligned or not, how durably.

use super::log::Durability;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whether multi-input operators align epoch markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CheckpointMode {
    /// Do not align: an operator keeps processing an input that already delivered the
    /// marker of epoch *e* while it waits for the marker on its other inputs. No input is
    /// ever held back, but the snapshot may include records after the marker, which are
    /// replayed after a crash: state and output are at-least-once.
    #[default]
    AtLeastOnce,
    /// Align: an input that delivered the marker of epoch *e* is held back until the
    /// marker arrived on every input. Snapshots are consistent cuts, so restored state is
    /// exactly-once (output is still at-least-once: records emitted after the last
    /// complete epoch are emitted again).
    Aligned,
}

/// Checkpoint settings. Pass to [`QueryBuilder::checkpoint`](crate::QueryBuilder::checkpoint).
///
/// ```
/// use rivulet::checkpoint::{CheckpointConfig, CheckpointMode};
/// use std::time::Duration;
///
/// let config = CheckpointConfig::new("/tmp/my-query")
///     .interval(Duration::from_millis(100))
///     .mode(CheckpointMode::Aligned)
///     .retain(3);
/// assert_eq!(config.retained_epochs(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    pub(crate) dir: PathBuf,
    pub(crate) interval: Duration,
    pub(crate) mode: CheckpointMode,
    pub(crate) retain: usize,
    pub(crate) durability: Durability,
    pub(crate) segment_bytes: u64,
}

impl CheckpointConfig {
    /// Checkpoints into `dir` (created if missing) every 100 ms, unaligned, keeping the
    /// last 2 complete epochs, synced to disk at every completed epoch.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        CheckpointConfig {
            dir: dir.as_ref().to_path_buf(),
            interval: Duration::from_millis(100),
            mode: CheckpointMode::AtLeastOnce,
            retain: 2,
            durability: Durability::Msync,
            segment_bytes: 16 << 20,
        }
    }

    /// Time between epoch triggers.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Aligned (exactly-once state) or not (at-least-once).
    pub fn mode(mut self, mode: CheckpointMode) -> Self {
        self.mode = mode;
        self
    }

    /// Complete epochs to keep; older log segments are removed (at least 1).
    pub fn retain(mut self, epochs: usize) -> Self {
        self.retain = epochs;
        self
    }

    /// [`Durability::Msync`] (default): a completed epoch is flushed to disk before it
    /// counts, so it survives a power loss. [`Durability::OsBuffered`]: no sync; a
    /// completed epoch survives the process being killed (the kernel owns the mapped
    /// pages) but not a machine crash. Cheaper at short intervals.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Size of each log segment file (default 16 MiB).
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Complete epochs kept.
    pub fn retained_epochs(&self) -> usize {
        self.retain
    }

    /// Problems with these settings, if any.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.interval.is_zero() {
            return Err("checkpoint interval must be positive".into());
        }
        if self.retain == 0 {
            return Err("checkpoints must retain at least 1 complete epoch".into());
        }
        if self.segment_bytes < crate::checkpoint::log::MIN_SEGMENT_BYTES {
            return Err(format!(
                "checkpoint segment_bytes is {}, the minimum is {}",
                self.segment_bytes,
                crate::checkpoint::log::MIN_SEGMENT_BYTES
            ));
        }
        Ok(())
    }
}
