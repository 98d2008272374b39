//! Errors of checkpointing and recovery.

use super::codec::CodecError;
use super::log::LogError;

/// What went wrong writing or restoring checkpoints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading or writing the log failed (I/O, full disk, locked directory).
    #[error(transparent)]
    Log(#[from] LogError),
    /// A snapshot or log entry could not be encoded or decoded.
    #[error("checkpoint entry could not be encoded or decoded: {0}")]
    Codec(#[from] CodecError),
    /// The directory holds checkpoints of a different query.
    #[error(
        "checkpoint directory {dir} was written by a different query \
         (plan {found}); this query's plan is {expected}. \
         Use a new directory, or restore the query that wrote it"
    )]
    DifferentPlan {
        /// The directory.
        dir: String,
        /// This query's plan.
        expected: String,
        /// The plan recorded in the directory.
        found: String,
    },
    /// The directory held checkpoints, but no epoch whose entries are all intact is left
    /// to restore (see [`recover`](super::recovery::recover)). Nothing in the directory
    /// was changed.
    #[error(
        "cannot restore from checkpoint directory {dir}: {reason}. Complete epochs found: \
         {epochs}. Nothing was changed. To start the query afresh from its sources' \
         beginning (sinks may then repeat output they already published), move this \
         directory away or use a new one; `rivulet inspect {dir}` lists what is in it"
    )]
    NoIntactEpoch {
        /// The directory.
        dir: String,
        /// The complete epochs found (`none` if none).
        epochs: String,
        /// What was found damaged or missing, and what that lost.
        reason: String,
    },
    /// A source or operator could not snapshot or restore its state.
    #[error("operator `{operator}` could not {action} its state: {message}")]
    Operator {
        /// The operator.
        operator: String,
        /// `"snapshot"` or `"restore"`.
        action: &'static str,
        /// What it reported.
        message: String,
    },
}

impl CheckpointError {
    /// The query error for a participant whose snapshot failed.
    pub(crate) fn snapshot_failed(operator: &str, error: impl std::fmt::Display) -> crate::Error {
        crate::Error::Checkpoint(std::sync::Arc::new(CheckpointError::Operator {
            operator: operator.to_string(),
            action: "snapshot",
            message: error.to_string(),
        }))
    }
}
