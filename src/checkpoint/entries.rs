//! What the checkpoint log holds: the payloads of its entries.
//!
//! | kind | payload | written |
//! |---|---|---|
//! | `META` (1) | [`MetaEntry`]: format version, plan fingerprint, operators | when the log is opened, and in every new segment |
//! | `STATE` (2) | [`StateEntry`]: one participant's snapshot for one epoch | when the snapshot arrives |
//! | `COMPLETE` (3) | [`CompleteEntry`]: the epoch and every state it needs | after every participant acknowledged |
//! | `INGEST` (4) | a push source's record (in its own ingest log directory) | before the record is emitted |
//! | `COMMIT` (5) | [`CommitEntry`]: sinks published the epoch's output | after the epoch's sink commits ran |
//! | `OFFSETS` (6) | [`OffsetsEntry`]: each source's records and end offset in the epoch | micro-batch: before the batch runs; continuous: with the completion |
//!
//! Every start of a query on a directory is an *attempt* (numbered from 1). After a crash,
//! epoch numbers after the restored epoch are used again (a replayed batch keeps its
//! number, so sinks recognise it), and entries name their attempt so that leftovers of the
//! crashed attempt are never mixed with the new one.
//!
//! A participant is one instance of a source (its state is its offset), an operator (its
//! state, if any) or a sink (no state; it acknowledges after flushing).

use super::log::EntryKind;
use crate::trigger::ExecutionMode;
use serde::{Deserialize, Serialize};

/// Entry kind of [`MetaEntry`].
pub const META: EntryKind = EntryKind(1);
/// Entry kind of [`StateEntry`].
pub const STATE: EntryKind = EntryKind(2);
/// Entry kind of [`CompleteEntry`].
pub const COMPLETE: EntryKind = EntryKind(3);
/// Entry kind of an ingest write-ahead log record.
pub const INGEST: EntryKind = EntryKind(4);
/// Entry kind of [`CommitEntry`].
pub const COMMIT: EntryKind = EntryKind(5);
/// Entry kind of [`OffsetsEntry`].
pub const OFFSETS: EntryKind = EntryKind(6);

/// Version of the entry payloads; a different version is refused on recovery.
pub const FORMAT_VERSION: u32 = 2;

/// Identifies the query that wrote a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaEntry {
    /// [`FORMAT_VERSION`] of the writer.
    pub version: u32,
    /// Fingerprint of the plan (see [`PlanShape::fingerprint`]).
    pub fingerprint: u64,
    /// The plan itself, for error messages and the inspector.
    pub plan: PlanShape,
}

/// The shape of a query that decides whether a checkpoint fits it: every operator's
/// name, role and parallelism, in the order they were added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PlanShape {
    /// `(name, kind, parallelism)` per operator.
    pub operators: Vec<(String, String, u32)>,
}

impl PlanShape {
    /// A stable 64-bit hash of the shape (FxHash over the encoded shape: the same on
    /// every run and machine).
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = rustc_hash::FxHasher::default();
        self.operators.hash(&mut hasher);
        hasher.finish()
    }

    /// A one-line description for error messages.
    pub fn describe(&self) -> String {
        self.operators
            .iter()
            .map(|(name, kind, parallelism)| format!("{name}({kind}×{parallelism})"))
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

/// One participant's snapshot for one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntry {
    /// The epoch.
    pub epoch: u64,
    /// The attempt that wrote it.
    pub attempt: u64,
    /// Operator name.
    pub operator: String,
    /// Instance of the operator.
    pub instance: u32,
    /// The encoded state (for a source: its offset).
    pub state: Vec<u8>,
}

/// Epoch `epoch` is complete: every participant acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteEntry {
    /// The epoch.
    pub epoch: u64,
    /// The attempt that completed it (its states are that attempt's).
    pub attempt: u64,
    /// How the epoch ran.
    pub mode: ExecutionMode,
    /// Whether sinks staged output for it that a [`CommitEntry`] confirms; until then the
    /// epoch is not a restore point (recovery restores the epoch before and replays it).
    pub needs_commit: bool,
    /// Fingerprint of the plan that wrote it.
    pub fingerprint: u64,
    /// `(operator, instance)` of every [`StateEntry`] this epoch needs on recovery.
    pub states: Vec<(String, u32)>,
    /// Microseconds from the epoch's trigger to its completion.
    pub duration_us: u64,
}

/// The sinks' commits of epoch `epoch` ran: its output is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitEntry {
    /// The epoch.
    pub epoch: u64,
    /// The attempt whose completion of the epoch was committed.
    pub attempt: u64,
}

/// One source's part of an epoch: how many records it emitted in the epoch and its
/// offset after them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceOffsets {
    /// Source operator name.
    pub operator: String,
    /// Instance of the source.
    pub instance: u32,
    /// Records the source emitted in the epoch.
    pub records: u64,
    /// The source's offset after them (as its `checkpoint` returned it).
    pub end_offset: Vec<u8>,
}

/// The offset log (Spark's `offsets/`): what each source emits in epoch `epoch`. For a
/// micro-batch it is written before the batch runs, so a batch interrupted by a crash
/// is run again with exactly the same records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetsEntry {
    /// The epoch (batch id).
    pub epoch: u64,
    /// The attempt that planned it.
    pub attempt: u64,
    /// How the epoch runs.
    pub mode: ExecutionMode,
    /// Every source that emitted in the epoch.
    pub sources: Vec<SourceOffsets>,
}
