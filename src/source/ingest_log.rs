//! The ingest write-ahead log of a source that cannot rewind by itself, kept for it by
//! [`IngestLogged`](super::IngestLogged) (the push source is one).
//!
//! Every record is appended to a memory-mapped log (the same machinery as checkpoints,
//! in its own directory) before the source emits it; the source's checkpoint offset is
//! the sequence number of the next record. On recovery the records from the restored
//! offset on are read back from the log and emitted again before new ones. Segments
//! holding only records older than every retained complete epoch are removed.

use crate::checkpoint::coordinator::CheckpointShared;
use crate::checkpoint::entries::INGEST;
use crate::checkpoint::log::{self, Durability, LogConfig, LogWriter};
use crate::checkpoint::{codec, CheckpointConfig, CheckpointError};
use crate::error::BoxError;
use crate::event::Epoch;
use crate::sync::Arc;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// Largest ingest segment: rolling to a new segment happens on the source thread, so
/// keep the preallocation short.
const MAX_INGEST_SEGMENT: u64 = 4 << 20;

/// Bytes of the sequence number that starts every entry (u64, little-endian); the
/// record's encoding follows. Written by hand so a record is encoded once, into a
/// reused buffer, on the source thread's hot path.
const SEQ_LEN: usize = 8;

/// Splits an entry into its sequence number and the record's encoding.
fn split_entry(payload: &[u8]) -> Result<(u64, &[u8]), CheckpointError> {
    if payload.len() < SEQ_LEN {
        return Err(CheckpointError::Operator {
            operator: "ingest log".to_string(),
            action: "restore",
            message: format!("an entry of {} bytes is too short", payload.len()),
        });
    }
    let (seq, record) = payload.split_at(SEQ_LEN);
    let seq = u64::from_le_bytes(seq.try_into().expect("split at SEQ_LEN"));
    Ok((seq, record))
}

/// A source's write-ahead log of what it received.
pub(crate) struct IngestLog<T> {
    /// Opened at the first append or checkpoint, on the source's thread: opening the log
    /// at start only reads it, so a start that fails later has written nothing here.
    writer: Option<LogWriter>,
    dir: PathBuf,
    log_config: LogConfig,
    durability: Durability,
    /// Logged records not yet re-emitted after a restart, oldest first.
    replay: VecDeque<(u64, Vec<u8>)>,
    /// Sequence number of the next record to emit.
    next_seq: u64,
    /// Newest sequence number in each segment.
    segment_last_seq: BTreeMap<u64, u64>,
    /// `(epoch, offset)` of checkpoints not yet known to be superseded.
    epoch_offsets: VecDeque<(u64, u64)>,
    shared: Arc<CheckpointShared>,
    retain: usize,
    /// Reused for every appended entry.
    buffer: Vec<u8>,
    _record: PhantomData<fn(T) -> T>,
}

impl<T> fmt::Debug for IngestLog<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestLog")
            .field("dir", &self.dir)
            .field("next_seq", &self.next_seq)
            .field("replay", &self.replay.len())
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + DeserializeOwned> IngestLog<T> {
    /// Opens the log in `dir`, reading what an earlier run left there.
    pub(crate) fn open(
        dir: &Path,
        config: &CheckpointConfig,
        shared: Arc<CheckpointShared>,
    ) -> Result<Self, CheckpointError> {
        let mut logged = BTreeMap::new();
        let mut segment_last_seq = BTreeMap::new();
        if dir.exists() {
            let scan = log::scan(dir)?;
            // A torn tail is what a crash mid-append leaves; anything else means records
            // this source accepted may be gone, which must not pass in silence.
            if let Some(problem) = scan.problems.iter().find(|problem| problem.is_damage()) {
                return Err(CheckpointError::Operator {
                    operator: dir.display().to_string(),
                    action: "restore",
                    message: format!("the ingest log is damaged: {problem}"),
                });
            }
            for entry in scan
                .entries
                .into_iter()
                .filter(|entry| entry.kind == INGEST)
            {
                let (seq, record) = split_entry(&entry.payload)?;
                let newest = segment_last_seq.entry(entry.location.segment).or_insert(0);
                *newest = (*newest).max(seq);
                logged.insert(seq, record.to_vec());
            }
        }
        let next_seq = logged.keys().next().copied().unwrap_or(0);
        Ok(IngestLog {
            writer: None,
            dir: dir.to_path_buf(),
            log_config: LogConfig {
                segment_bytes: config.segment_bytes.min(MAX_INGEST_SEGMENT),
                durability: config.durability,
            },
            durability: config.durability,
            replay: logged.into_iter().collect(),
            next_seq,
            segment_last_seq,
            epoch_offsets: VecDeque::new(),
            shared,
            retain: config.retained_epochs().max(1),
            buffer: Vec::new(),
            _record: PhantomData,
        })
    }

    /// Rewinds to `offset`: records before it are done; the rest are replayed.
    pub(crate) fn restore(&mut self, offset: u64) -> Result<(), BoxError> {
        while self.replay.front().is_some_and(|(seq, _)| *seq < offset) {
            self.replay.pop_front();
        }
        // Every record from the offset on must be there, without gaps.
        for (expected, (seq, _)) in (offset..).zip(&self.replay) {
            if *seq != expected {
                return Err(format!(
                    "the ingest log {} lacks records {expected}..{seq}: they were removed or damaged",
                    self.dir.display()
                )
                .into());
            }
        }
        self.next_seq = offset;
        Ok(())
    }

    /// The next record to re-emit after a restart, if any.
    pub(crate) fn next_replay(&mut self) -> Option<Result<T, BoxError>> {
        let (seq, bytes) = self.replay.pop_front()?;
        self.next_seq = seq + 1;
        Some(codec::decode(&bytes).map_err(Into::into))
    }

    /// `true` while logged records wait to be re-emitted.
    pub(crate) fn has_replay(&self) -> bool {
        !self.replay.is_empty()
    }

    /// The writer, opened (locking the directory, starting a segment) at first use.
    fn writer(&mut self) -> Result<&mut LogWriter, BoxError> {
        if self.writer.is_none() {
            self.writer = Some(LogWriter::open(&self.dir, self.log_config.clone())?);
        }
        Ok(self.writer.as_mut().expect("opened above"))
    }

    /// Appends `record` before it is emitted.
    pub(crate) fn append(&mut self, record: &T) -> Result<(), BoxError> {
        self.buffer.clear();
        self.buffer.extend_from_slice(&self.next_seq.to_le_bytes());
        codec::encode_into(record, &mut self.buffer)?;
        let buffer = std::mem::take(&mut self.buffer);
        let appended = self
            .writer()
            .and_then(|writer| Ok(writer.append(INGEST, &buffer)?));
        self.buffer = buffer;
        let location = appended?;
        self.segment_last_seq
            .insert(location.segment, self.next_seq);
        self.next_seq += 1;
        Ok(())
    }

    /// The offset for `epoch`'s checkpoint, after making what it covers durable and
    /// removing segments no retained epoch needs.
    pub(crate) fn checkpoint(&mut self, epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        let durability = self.durability;
        let writer = self.writer()?;
        if durability == Durability::Msync {
            writer.sync()?;
        }
        // A micro-batch planned again (its first plan found nothing) asks again for the
        // same epoch: the newer offset replaces the older one.
        if self
            .epoch_offsets
            .back()
            .is_some_and(|(last, _)| *last == epoch.0)
        {
            self.epoch_offsets.pop_back();
        }
        self.epoch_offsets.push_back((epoch.0, self.next_seq));
        self.truncate()?;
        Ok(codec::encode(&self.next_seq)?)
    }

    /// Removes segments whose records all precede the oldest retained complete epoch.
    fn truncate(&mut self) -> Result<(), BoxError> {
        let last_complete = self.shared.clock.last_complete();
        let complete: Vec<(u64, u64)> = self
            .epoch_offsets
            .iter()
            .copied()
            .filter(|(epoch, _)| *epoch <= last_complete)
            .collect();
        if complete.len() < self.retain {
            return Ok(());
        }
        let (oldest_epoch, oldest_offset) = complete[complete.len() - self.retain];
        self.epoch_offsets
            .retain(|(epoch, _)| *epoch >= oldest_epoch);
        let current = self.writer()?.current_segment();
        let removable: Vec<u64> = self
            .segment_last_seq
            .iter()
            .filter(|(segment, last)| **segment != current && **last < oldest_offset)
            .map(|(segment, _)| *segment)
            .collect();
        if removable.is_empty() {
            return Ok(());
        }
        self.writer()?.remove_segments(&removable)?;
        for segment in removable {
            self.segment_last_seq.remove(&segment);
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::checkpoint::coordinator::EpochClock;
    use crate::sync::Mutex;
    use crate::trigger::{OutputMode, Trigger};
    use std::time::Duration;

    fn shared() -> Arc<CheckpointShared> {
        let (sender, _receiver) = crossbeam::channel::unbounded();
        Arc::new(CheckpointShared {
            sender,
            clock: EpochClock::new(0),
            persistent: true,
            requested: Mutex::new(Trigger::MicroBatch {
                interval: Duration::ZERO,
            }),
            output_mode: OutputMode::Update,
            processing_clock: crate::time::Clock::system(),
            timer_deadlines: Box::new([]),
            watermarks: Default::default(),
        })
    }

    /// An idle micro-batch is planned again and again under the same epoch number, each
    /// plan asking for the source's offset: the log keeps one offset per epoch, not one
    /// per plan (which would grow without bound while the query is idle).
    #[test]
    fn a_replanned_epoch_keeps_one_offset() {
        let dir = tempfile::tempdir().unwrap();
        let config = CheckpointConfig::new(dir.path()).durability(Durability::OsBuffered);
        let mut log =
            IngestLog::<u64>::open(&dir.path().join("ingest"), &config, shared()).unwrap();
        log.append(&7).unwrap();
        for _ in 0..1_000 {
            log.checkpoint(Epoch(1)).unwrap();
        }
        log.append(&8).unwrap();
        let offset: u64 = codec::decode(&log.checkpoint(Epoch(1)).unwrap()).unwrap();
        assert_eq!(offset, 2, "the newest plan's offset counts");
        assert_eq!(log.epoch_offsets, VecDeque::from([(1, 2)]));
        log.checkpoint(Epoch(2)).unwrap();
        assert_eq!(log.epoch_offsets.len(), 2);
    }
}
