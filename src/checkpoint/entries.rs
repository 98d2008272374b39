//! What the checkpoint log holds: the payloads of its entries.
//!
//! | kind | payload | written |
//! |---|---|---|
//! | `META` (1) | [`MetaEntry`]: format version, plan fingerprint, operators, query id | when the log is opened, and in every new segment |
//! | `STATE` (2) | [`StateEntry`]: one participant's snapshot for one epoch | when the snapshot arrives |
//! | `COMPLETE` (3) | [`CompleteEntry`]: the epoch and every state it needs | after every participant acknowledged |
//! | `INGEST` (4) | a push source's record (in its own ingest log directory) | before the record is emitted |
//! | `COMMIT` (5) | [`CommitEntry`]: sinks published the epoch's output | after the epoch's sink commits ran |
//! | `OFFSETS` (6) | [`OffsetsEntry`]: each source's records and end offset in the epoch, and the batch time | micro-batch: before the batch runs (and again when a restart replays it); never for a continuous epoch |
//!
//! Every start of a query on a directory is an *attempt* (numbered from 1). After a crash,
//! epoch numbers after the restored epoch are used again (a replayed batch keeps its
//! number, so sinks recognise it), and entries name their attempt so that leftovers of the
//! crashed attempt are never mixed with the new one.
//!
//! A participant is one instance of a source (its state is its offset), an operator (its
//! state, if any) or a sink (no state; it acknowledges after flushing).

use super::codec::{self, CodecError};
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

/// Version of the entry payloads; a different version is refused on recovery, except
/// versions 2 to 4: version 2's [`MetaEntry`] had no query id (see
/// [`MetaEntry::decode`]), before [`STAGE_SNAPSHOT_VERSION`] an operator's `STATE` held
/// its own bytes alone, without its timers, and before version 5 an [`OffsetsEntry`]
/// had no batch time (see [`OffsetsEntry::decode`]). Their other entries are the same.
pub const FORMAT_VERSION: u32 = 5;

/// The first format whose operator `STATE`s are stage snapshots (the operator's bytes and
/// its pending timers, encoded together).
pub const STAGE_SNAPSHOT_VERSION: u32 = 4;

/// Identifies the query that wrote a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaEntry {
    /// [`FORMAT_VERSION`] of the writer.
    pub version: u32,
    /// Fingerprint of the plan (see [`PlanShape::fingerprint`]).
    pub fingerprint: u64,
    /// The plan itself, for error messages and the inspector.
    pub plan: PlanShape,
    /// The query's identity: chosen at random when a query starts on a directory whose
    /// log names none, and kept by every later start on it. Sinks with commit records of
    /// their own stamp them with it (see [`SinkContext::query_id`]), so output written by
    /// another query, or by this query before its checkpoint directory was deleted, is
    /// never taken for this query's. `None` only in logs of format version 2.
    ///
    /// [`SinkContext::query_id`]: crate::sink::SinkContext::query_id
    pub query_id: Option<String>,
}

impl MetaEntry {
    /// Decodes a `META` payload of this format version, or of version 2 (without a query
    /// id; `version` then says 2).
    ///
    /// # Errors
    ///
    /// The error of decoding the payload as this version's entry, if it is neither.
    pub fn decode(payload: &[u8]) -> Result<MetaEntry, CodecError> {
        /// Version 2's entry: the same fields, without the query id.
        #[derive(Deserialize)]
        struct MetaEntryV2 {
            version: u32,
            fingerprint: u64,
            plan: PlanShape,
        }
        codec::decode::<MetaEntry>(payload).or_else(|error| {
            match codec::decode::<MetaEntryV2>(payload) {
                Ok(old) if old.version == 2 => Ok(MetaEntry {
                    version: old.version,
                    fingerprint: old.fingerprint,
                    plan: old.plan,
                    query_id: None,
                }),
                _ => Err(error),
            }
        })
    }

    /// Whether recovery reads logs of this entry's format version.
    pub fn is_readable(&self) -> bool {
        (2..=FORMAT_VERSION).contains(&self.version)
    }
}

/// A new query id: 32 hex digits, from the process's random hash keys (seeded by the
/// operating system), the time and the process id.
pub(crate) fn new_query_id() -> String {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let mut halves = [0u64; 2];
    for (i, half) in halves.iter_mut().enumerate() {
        // Every `RandomState` has keys of its own.
        *half =
            std::collections::hash_map::RandomState::new().hash_one((i, nanos, std::process::id()));
    }
    format!("{:016x}{:016x}", halves[0], halves[1])
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
    /// The batch's time (µs since the Unix epoch): the query clock's reading when the
    /// coordinator released the batch, Spark's `batchTimestampMs`. Operators see it as
    /// [`Context::processing_time`](crate::operator::Context::processing_time) throughout
    /// the batch and its processing-time timers fire by it, so a replayed batch runs at
    /// the time the original did. `None` in logs of format 4 and older (a replay of such
    /// an entry reads the clock and records that).
    pub batch_time: Option<i64>,
}

impl OffsetsEntry {
    /// Decodes an `OFFSETS` payload of this format version, or of versions 2 to 4
    /// (without a batch time: `batch_time` is then `None`).
    ///
    /// # Errors
    ///
    /// The error of decoding the payload as this version's entry, if it is neither.
    pub fn decode(payload: &[u8]) -> Result<OffsetsEntry, CodecError> {
        /// The entry before version 5: the same fields, without the batch time.
        #[derive(Deserialize)]
        struct OffsetsEntryV4 {
            epoch: u64,
            attempt: u64,
            mode: ExecutionMode,
            sources: Vec<SourceOffsets>,
        }
        codec::decode::<OffsetsEntry>(payload).or_else(|error| {
            match codec::decode::<OffsetsEntryV4>(payload) {
                Ok(old) => Ok(OffsetsEntry {
                    epoch: old.epoch,
                    attempt: old.attempt,
                    mode: old.mode,
                    sources: old.sources,
                    batch_time: None,
                }),
                Err(_) => Err(error),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> PlanShape {
        PlanShape {
            operators: vec![("numbers".into(), "Source".into(), 1)],
        }
    }

    #[test]
    fn meta_entries_of_version_2_are_read_without_a_query_id() {
        #[derive(Serialize)]
        struct MetaEntryV2 {
            version: u32,
            fingerprint: u64,
            plan: PlanShape,
        }
        let old = codec::encode(&MetaEntryV2 {
            version: 2,
            fingerprint: 7,
            plan: plan(),
        })
        .unwrap();
        let meta = MetaEntry::decode(&old).unwrap();
        assert_eq!(
            (meta.version, meta.fingerprint, meta.query_id.clone()),
            (2, 7, None)
        );
        assert!(meta.is_readable());

        let new = MetaEntry {
            version: FORMAT_VERSION,
            fingerprint: 7,
            plan: plan(),
            query_id: Some(new_query_id()),
        };
        assert_eq!(
            MetaEntry::decode(&codec::encode(&new).unwrap()).unwrap(),
            new
        );
        // Version 1 is refused as before.
        let older = codec::encode(&MetaEntryV2 {
            version: 1,
            fingerprint: 7,
            plan: plan(),
        })
        .unwrap();
        assert!(MetaEntry::decode(&older).is_err());
    }

    #[test]
    fn offsets_entries_of_version_4_are_read_without_a_batch_time() {
        #[derive(Serialize)]
        struct OffsetsEntryV4 {
            epoch: u64,
            attempt: u64,
            mode: ExecutionMode,
            sources: Vec<SourceOffsets>,
        }
        let sources = vec![SourceOffsets {
            operator: "numbers".into(),
            instance: 0,
            records: 10,
            end_offset: vec![1, 2, 3],
        }];
        let old = codec::encode(&OffsetsEntryV4 {
            epoch: 3,
            attempt: 2,
            mode: ExecutionMode::MicroBatch,
            sources: sources.clone(),
        })
        .unwrap();
        let entry = OffsetsEntry::decode(&old).unwrap();
        assert_eq!(
            entry,
            OffsetsEntry {
                epoch: 3,
                attempt: 2,
                mode: ExecutionMode::MicroBatch,
                sources: sources.clone(),
                batch_time: None,
            }
        );
        for batch_time in [None, Some(0), Some(-5), Some(1_700_000_000_000_000)] {
            let new = OffsetsEntry {
                batch_time,
                ..entry.clone()
            };
            assert_eq!(
                OffsetsEntry::decode(&codec::encode(&new).unwrap()).unwrap(),
                new
            );
        }
        assert!(OffsetsEntry::decode(&old[..old.len() - 1]).is_err());
    }

    #[test]
    fn query_ids_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_query_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 32));
    }
}
