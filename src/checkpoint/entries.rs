//! What the checkpoint log holds: the payloads of its entries.
//!
//! | kind | payload | written |
//! |---|---|---|
//! | `META` (1) | [`MetaEntry`]: format version, plan fingerprint, operators | when the log is opened, and in every new segment |
//! | `STATE` (2) | [`StateEntry`]: one participant's snapshot for one epoch | when the snapshot arrives |
//! | `COMPLETE` (3) | [`CompleteEntry`]: the epoch and every state it needs | after every participant acknowledged |
//!
//! A participant is one instance of a source (its state is its offset), an operator (its
//! state, if any) or a sink (no state; it acknowledges after flushing).

use super::log::EntryKind;
use serde::{Deserialize, Serialize};

/// Entry kind of [`MetaEntry`].
pub const META: EntryKind = EntryKind(1);
/// Entry kind of [`StateEntry`].
pub const STATE: EntryKind = EntryKind(2);
/// Entry kind of [`CompleteEntry`].
pub const COMPLETE: EntryKind = EntryKind(3);
/// Entry kind of an ingest write-ahead log record.
pub const INGEST: EntryKind = EntryKind(4);

/// Version of the entry payloads; a different version is refused on recovery.
pub const FORMAT_VERSION: u32 = 1;

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
    /// Fingerprint of the plan that wrote it.
    pub fingerprint: u64,
    /// `(operator, instance)` of every [`StateEntry`] this epoch needs on recovery.
    pub states: Vec<(String, u32)>,
    /// Microseconds from the epoch's trigger to its completion.
    pub duration_us: u64,
}
