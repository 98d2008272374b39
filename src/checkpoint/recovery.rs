//! Finding the epoch to restore: the newest complete epoch whose every snapshot is intact
//! and whose output, if sinks staged any, was committed.
//!
//! The log may end in a torn entry, hold corrupt bytes, or miss a segment; none of that
//! may make a half-written epoch count. An epoch is restorable only if its completion
//! entry is intact and every state entry that completion entry lists is intact too.
//!
//! An epoch whose sinks staged output but whose commit entry is missing is not a restore
//! point, and neither is any epoch its attempt completed after it (it would skip that
//! output for good): the epoch before it is restored and it is run again. If the offset log says
//! what the epoch after the restore point held, that epoch is replayed with exactly those
//! records ([`Recovered::replay`]), so sinks can recognise it and skip what they already
//! published.
//!
//! # Damage
//!
//! Damage (anything but a torn tail: a corrupt entry, a cut file, a bad segment header, a
//! segment missing from the range the log's `MANIFEST` records, an undecodable entry) is
//! never silent. While an epoch whose entries are all intact is left, [`recover`] restores
//! the newest such epoch and reports the damage (in the query's progress and in `rivulet
//! inspect`, which reports the same decision, since it calls [`recover`]); with none left it
//! refuses with [`CheckpointError::NoIntactEpoch`], saying what was found and what was
//! lost. A directory whose segments were all deleted is such a refusal, never a fresh
//! start.
//!
//! Spark's `HDFSMetadataLog` refuses to start when batch files are missing from its offset
//! log; rivulet restores the newest intact epoch instead, since its log also holds the
//! state and a refusal would leave deleting the directory (losing the intact epochs too)
//! as the only way forward. The replay from that epoch is at-least-once, as after any
//! fallback to an older epoch.

use super::codec;
use super::entries::{self, CommitEntry, CompleteEntry, MetaEntry, OffsetsEntry, StateEntry};
use super::error::CheckpointError;
use super::log;
#[cfg(doc)]
use super::log::Problem;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// The state to restore a query from.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// The epoch restored (0: none, start from the beginning); the query continues with
    /// `epoch + 1`.
    pub epoch: u64,
    /// Fingerprint of the plan that wrote it (`None` when no epoch is restored).
    pub fingerprint: Option<u64>,
    /// Every participant's snapshot, by `(operator, instance)`.
    pub states: HashMap<(String, u32), Vec<u8>>,
    /// The snapshots among `states` written in a log format before
    /// [`STAGE_SNAPSHOT_VERSION`](entries::STAGE_SNAPSHOT_VERSION): an operator's own bytes,
    /// without timers.
    pub legacy_states: std::collections::HashSet<(String, u32)>,
    /// What epoch `epoch + 1` held, if the offset log says: it is run again with exactly
    /// these records per source.
    pub replay: Option<OffsetsEntry>,
    /// This start's attempt number (one more than any attempt in the log).
    pub attempt: u64,
}

/// What a checkpoint directory holds, as far as recovery and the inspector care.
#[derive(Debug, Clone, Default)]
pub struct DirectoryReport {
    /// The newest query identity found.
    pub meta: Option<MetaEntry>,
    /// Every completion entry, oldest epoch first (attempts in log order), with whether it
    /// can be restored (and if not, why).
    pub complete: Vec<(CompleteEntry, Result<(), String>)>,
    /// `(epoch, attempt)` of every commit entry.
    pub committed: BTreeSet<(u64, u64)>,
    /// The newest offset-log entry of each epoch.
    pub offsets: BTreeMap<u64, OffsetsEntry>,
    /// The newest attempt that wrote anything.
    pub newest_attempt: u64,
    /// Epochs with snapshots but no completion entry.
    pub incomplete: Vec<u64>,
    /// Snapshot sizes: `(epoch, operator, instance) → bytes`.
    pub state_sizes: BTreeMap<(u64, String, u32), usize>,
    /// Segment numbers present.
    pub segments: Vec<u64>,
    /// The newest epoch mentioned anywhere (complete or not). A restarted query continues
    /// at the restored epoch + 1, reusing the numbers of epochs that never became restore
    /// points (entries name their attempt, so they do not mix).
    pub newest_epoch: u64,
    /// Damage found: torn tails, corrupt entries, missing segments, undecodable entries.
    pub problems: Vec<String>,
    /// Whether any problem is more than a torn tail.
    corrupt: bool,
    /// Per problem, whether it is damage (not a torn tail).
    damage_flags: Vec<bool>,
    states: HashMap<(u64, u64, String, u32), Vec<u8>>,
    /// The states written in a segment of a format before stage snapshots.
    legacy_states: std::collections::HashSet<(u64, u64, String, u32)>,
}

impl DirectoryReport {
    /// `true` if the log is damaged anywhere, beyond a torn tail (which a crash during a
    /// write leaves behind and recovery is built to ignore): corrupt or cut entries,
    /// missing segments (see [`Problem::is_damage`]), undecodable entries.
    pub fn is_corrupt(&self) -> bool {
        self.corrupt
    }

    /// The problems that are damage (all but torn tails), as [`is_corrupt`](Self::is_corrupt)
    /// counts them.
    pub fn damage(&self) -> impl Iterator<Item = &String> {
        self.problems
            .iter()
            .zip(&self.damage_flags)
            .filter(|(_, damage)| **damage)
            .map(|(problem, _)| problem)
    }

    fn problem(&mut self, message: String) {
        self.problems.push(message);
        self.damage_flags.push(true);
        self.corrupt = true;
    }

    /// The newest restorable epoch: intact, committed if it needed a commit, and not
    /// completed after an epoch of its attempt whose output was never committed.
    ///
    /// Such an epoch's commit failed (or the query died before it ran), so its output
    /// was never published, and restoring any later epoch would skip that output for
    /// good: the restore point lies before it, and it is run again. An attempt writes
    /// `COMMIT(e)` before it completes a later epoch, and a failing commit ends the
    /// attempt, so in an intact log a later epoch shows up only if an older version kept
    /// completing epochs after a failure. In a damaged log the commit entry itself may
    /// be what was lost, so there the rule is not applied.
    pub fn newest_restorable(&self) -> Option<&CompleteEntry> {
        let uncommitted = self.oldest_uncommitted();
        self.complete
            .iter()
            .rev()
            .find(|(entry, verdict)| {
                verdict.is_ok()
                    && self.is_committed(entry)
                    && Self::blocked(&uncommitted, entry).is_none()
            })
            .map(|(entry, _)| entry)
    }

    /// The uncommitted epoch that keeps `entry` from being a restore point: the oldest
    /// epoch of the same attempt, older than `entry`, whose staged output was never
    /// committed (see [`newest_restorable`](Self::newest_restorable)).
    pub fn blocked_by(&self, entry: &CompleteEntry) -> Option<u64> {
        Self::blocked(&self.oldest_uncommitted(), entry)
    }

    fn blocked(uncommitted: &HashMap<u64, u64>, entry: &CompleteEntry) -> Option<u64> {
        uncommitted
            .get(&entry.attempt)
            .copied()
            .filter(|oldest| *oldest < entry.epoch)
    }

    /// Whether `entry`'s output is published (or it had none to publish).
    pub fn is_committed(&self, entry: &CompleteEntry) -> bool {
        !entry.needs_commit || self.committed.contains(&(entry.epoch, entry.attempt))
    }

    /// Per attempt, its oldest complete epoch whose staged output was never committed;
    /// empty when the log is damaged (see [`newest_restorable`](Self::newest_restorable)).
    fn oldest_uncommitted(&self) -> HashMap<u64, u64> {
        let mut oldest = HashMap::new();
        if self.is_corrupt() {
            return oldest;
        }
        for (entry, _) in &self.complete {
            if !self.is_committed(entry) {
                let epoch = oldest.entry(entry.attempt).or_insert(entry.epoch);
                *epoch = (*epoch).min(entry.epoch);
            }
        }
        oldest
    }
}

/// Reads a checkpoint directory (a missing directory reads as empty).
///
/// # Errors
///
/// Only when the directory cannot be read at all; damage inside it is reported in
/// [`DirectoryReport::problems`].
pub fn inspect(dir: &Path) -> Result<DirectoryReport, CheckpointError> {
    let mut report = DirectoryReport::default();
    if !dir.exists() {
        return Ok(report);
    }
    let scan = log::scan(dir)?;
    report.segments = scan.segments.clone();
    for problem in &scan.problems {
        report.problems.push(problem.to_string());
        report.damage_flags.push(problem.is_damage());
        report.corrupt |= problem.is_damage();
    }
    let mut completes = Vec::new();
    let mut epochs_with_state = std::collections::BTreeSet::new();
    // The format of each segment, from the META it holds: a writer puts one in every
    // segment, but after the segment's first entry, so a segment's states are classified
    // once the whole log was read.
    let mut segment_versions: BTreeMap<u64, u32> = BTreeMap::new();
    let mut state_segments = Vec::new();
    for entry in scan.entries {
        let at = format!(
            "segment {} offset {}",
            entry.location.segment, entry.location.offset
        );
        match entry.kind {
            entries::META => match MetaEntry::decode(&entry.payload) {
                Ok(meta) if meta.is_readable() => {
                    segment_versions
                        .entry(entry.location.segment)
                        .or_insert(meta.version);
                    // A log of format version 2 names no query; a newer entry does.
                    let query_id = meta
                        .query_id
                        .clone()
                        .or_else(|| report.meta.as_ref().and_then(|old| old.query_id.clone()));
                    report.meta = Some(MetaEntry { query_id, ..meta });
                }
                Ok(meta) => report.problem(format!(
                    "{at}: written by format version {} (this is {})",
                    meta.version,
                    entries::FORMAT_VERSION
                )),
                Err(error) => report.problem(format!("{at}: undecodable metadata: {error}")),
            },
            entries::STATE => match codec::decode::<StateEntry>(&entry.payload) {
                Ok(state) => {
                    report.newest_epoch = report.newest_epoch.max(state.epoch);
                    report.newest_attempt = report.newest_attempt.max(state.attempt);
                    epochs_with_state.insert(state.epoch);
                    report.state_sizes.insert(
                        (state.epoch, state.operator.clone(), state.instance),
                        state.state.len(),
                    );
                    let key = (state.epoch, state.attempt, state.operator, state.instance);
                    state_segments.push((key.clone(), entry.location.segment));
                    report.states.insert(key, state.state);
                }
                Err(error) => report.problem(format!("{at}: undecodable snapshot: {error}")),
            },
            entries::COMPLETE => match codec::decode::<CompleteEntry>(&entry.payload) {
                Ok(complete) => {
                    report.newest_epoch = report.newest_epoch.max(complete.epoch);
                    report.newest_attempt = report.newest_attempt.max(complete.attempt);
                    completes.push(complete);
                }
                Err(error) => report.problem(format!("{at}: undecodable completion: {error}")),
            },
            entries::COMMIT => match codec::decode::<CommitEntry>(&entry.payload) {
                Ok(commit) => {
                    report.newest_attempt = report.newest_attempt.max(commit.attempt);
                    report.committed.insert((commit.epoch, commit.attempt));
                }
                Err(error) => report.problem(format!("{at}: undecodable commit: {error}")),
            },
            entries::OFFSETS => match OffsetsEntry::decode(&entry.payload) {
                Ok(offsets) => {
                    report.newest_epoch = report.newest_epoch.max(offsets.epoch);
                    report.newest_attempt = report.newest_attempt.max(offsets.attempt);
                    report.offsets.insert(offsets.epoch, offsets);
                }
                Err(error) => report.problem(format!("{at}: undecodable offsets: {error}")),
            },
            other => report.problem(format!("{at}: unknown entry kind {}", other.0)),
        }
    }
    for (key, segment) in state_segments {
        // A segment without an intact META (torn right after its first entry) has the
        // format of the segment before it.
        let version = segment_versions
            .range(..=segment)
            .next_back()
            .map(|(_, version)| *version);
        if version.is_some_and(|version| version < entries::STAGE_SNAPSHOT_VERSION) {
            report.legacy_states.insert(key);
        }
    }
    // Stable: attempts of one epoch stay in log order (the newest last).
    completes.sort_by_key(|complete| complete.epoch);
    for complete in completes {
        let missing: Vec<String> = complete
            .states
            .iter()
            .filter(|(operator, instance)| {
                !report.states.contains_key(&(
                    complete.epoch,
                    complete.attempt,
                    operator.clone(),
                    *instance,
                ))
            })
            .map(|(operator, instance)| format!("{operator}#{instance}"))
            .collect();
        let verdict = if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "epoch {} cannot be restored: the snapshots of {} are missing or damaged",
                complete.epoch,
                missing.join(", ")
            ))
        };
        epochs_with_state.remove(&complete.epoch);
        report.complete.push((complete, verdict));
    }
    report.incomplete = epochs_with_state.into_iter().collect();
    Ok(report)
}

/// Chooses the epoch to restore from `dir`.
///
/// Returns a [`Recovered`] with epoch 0 for a directory without complete epochs and
/// without damage (a fresh start), else the newest restorable epoch (see
/// [`DirectoryReport::newest_restorable`]).
///
/// Damage does not stop recovery while an epoch whose entries are all intact is left:
/// that epoch is restored (an older one than the newest, if the damage took the newest's
/// entries or the segment that held them), and the damage is in the returned report's
/// [`problems`](DirectoryReport::problems), which the query's progress shows as
/// [`CheckpointStats::recovery_damage`](super::CheckpointStats::recovery_damage) and
/// `rivulet inspect` lists. This is the same rule for every kind of damage (a damaged
/// entry, a cut file, a missing segment): refusing would leave the query no way forward
/// but deleting the directory, which loses the intact epochs too.
///
/// # Errors
///
/// [`CheckpointError::NoIntactEpoch`] if there is damage (beyond a torn tail) and no
/// restorable epoch is left: a fresh start would silently drop state and, for sources
/// with an ingest log, input. That includes a directory whose segments were all deleted
/// (its `MANIFEST` still records them). Also when complete epochs exist but none can be
/// restored, or the log no longer goes back to the first epoch. A log error if the
/// directory cannot be read.
pub fn recover(dir: &Path) -> Result<(Recovered, DirectoryReport), CheckpointError> {
    let report = inspect(dir)?;
    let attempt = report.newest_attempt + 1;
    // Whether the log still goes back to the first epoch: retention removes old epochs
    // only once newer ones are restorable, so a log without a restorable epoch whose
    // oldest completion is later than epoch 1 lost what it would need.
    let holds_the_beginning = report
        .complete
        .iter()
        .map(|(entry, _)| entry.epoch)
        .min()
        .is_none_or(|oldest| oldest <= 1);
    if report.newest_restorable().is_none()
        && report.complete.iter().all(|(_, verdict)| verdict.is_ok())
        && !report.is_corrupt()
        && holds_the_beginning
    {
        // Nothing was ever completed and committed (a torn tail is what a crash
        // mid-write leaves): start from the beginning, replaying a planned first batch.
        let recovered = Recovered {
            replay: report.offsets.get(&1).cloned(),
            attempt,
            ..Recovered::default()
        };
        return Ok((recovered, report));
    }
    let Some(chosen) = report.newest_restorable().cloned() else {
        return Err(no_intact_epoch(dir, &report, holds_the_beginning));
    };
    let states = chosen
        .states
        .iter()
        .map(|(operator, instance)| {
            let key = (chosen.epoch, chosen.attempt, operator.clone(), *instance);
            ((operator.clone(), *instance), report.states[&key].clone())
        })
        .collect();
    let legacy_states = chosen
        .states
        .iter()
        .filter(|(operator, instance)| {
            let key = (chosen.epoch, chosen.attempt, operator.clone(), *instance);
            report.legacy_states.contains(&key)
        })
        .cloned()
        .collect();
    Ok((
        Recovered {
            epoch: chosen.epoch,
            fingerprint: Some(chosen.fingerprint),
            states,
            legacy_states,
            replay: report.offsets.get(&(chosen.epoch + 1)).cloned(),
            attempt,
        },
        report,
    ))
}

/// The error for a directory with checkpoints (or damage) but no restorable epoch: what
/// was found and what was lost.
fn no_intact_epoch(
    dir: &Path,
    report: &DirectoryReport,
    holds_the_beginning: bool,
) -> CheckpointError {
    let mut lost: Vec<String> = Vec::new();
    if report.segments.is_empty() && report.is_corrupt() {
        lost.push(
            "no checkpoint segment is left in it, although it held some (its MANIFEST \
             records them): they were deleted"
                .to_string(),
        );
    }
    lost.extend(
        report
            .complete
            .iter()
            .filter_map(|(_, verdict)| verdict.as_ref().err().cloned()),
    );
    for (entry, verdict) in &report.complete {
        if verdict.is_ok() && !report.is_committed(entry) {
            lost.push(format!(
                "epoch {} published output but its commit record is missing",
                entry.epoch
            ));
        }
    }
    lost.extend(report.damage().cloned());
    if !holds_the_beginning {
        lost.push(
            "the epochs before those are no longer in the log (retention removed them), \
             so the query cannot start over from an older one either"
                .to_string(),
        );
    }
    let epochs = report
        .complete
        .iter()
        .map(|(entry, _)| entry.epoch.to_string())
        .collect::<Vec<_>>();
    CheckpointError::NoIntactEpoch {
        dir: dir.display().to_string(),
        epochs: if epochs.is_empty() {
            "none".to_string()
        } else {
            epochs.join(", ")
        },
        reason: lost.join("; "),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::checkpoint::entries::{PlanShape, SourceOffsets};
    use crate::checkpoint::log::{EntryKind, LogConfig, LogWriter};
    use crate::trigger::ExecutionMode;
    use serde::Serialize;

    /// Writes entries by hand, as the coordinator of one query would.
    struct Log(LogWriter);

    impl Log {
        fn open(dir: &Path) -> Self {
            let mut log = Log(LogWriter::open(dir, LogConfig::default()).unwrap());
            let meta = MetaEntry {
                version: entries::FORMAT_VERSION,
                fingerprint: 7,
                plan: PlanShape::default(),
                query_id: Some("test-query".to_string()),
            };
            log.append(entries::META, &meta);
            log
        }

        fn append(&mut self, kind: EntryKind, entry: &impl Serialize) {
            self.0.append(kind, &codec::encode(entry).unwrap()).unwrap();
        }

        /// `OFFSETS(epoch)`: one source, 10 records.
        fn offsets(&mut self, epoch: u64, attempt: u64) {
            let entry = OffsetsEntry {
                epoch,
                attempt,
                mode: ExecutionMode::MicroBatch,
                sources: vec![SourceOffsets {
                    operator: "numbers".into(),
                    instance: 0,
                    records: 10,
                    end_offset: (epoch * 10).to_le_bytes().to_vec(),
                }],
                batch_time: Some(epoch as i64 * 1_000),
            };
            self.append(entries::OFFSETS, &entry);
        }

        /// The source's `STATE(epoch)` and `COMPLETE(epoch)`.
        fn complete(&mut self, epoch: u64, attempt: u64, needs_commit: bool) {
            let state = StateEntry {
                epoch,
                attempt,
                operator: "numbers".into(),
                instance: 0,
                state: (epoch * 10).to_le_bytes().to_vec(),
            };
            self.append(entries::STATE, &state);
            let complete = CompleteEntry {
                epoch,
                attempt,
                mode: ExecutionMode::MicroBatch,
                needs_commit,
                fingerprint: 7,
                states: vec![("numbers".into(), 0)],
                duration_us: 1,
            };
            self.append(entries::COMPLETE, &complete);
        }

        fn commit(&mut self, epoch: u64, attempt: u64) {
            self.append(entries::COMMIT, &CommitEntry { epoch, attempt });
        }
    }

    /// A segment's format is that of its `META`, even when the `META` follows the
    /// segment's first entry (a writer rolled to it for that entry): states of format 3
    /// are legacy (the operator's bytes alone), states of format 4 are not.
    #[test]
    fn states_take_the_format_of_their_segments_meta() {
        for (version, legacy) in [(3, true), (entries::FORMAT_VERSION, false)] {
            let dir = tempfile::tempdir().unwrap();
            let mut log = Log(LogWriter::open(dir.path(), LogConfig::default()).unwrap());
            let state = StateEntry {
                epoch: 5,
                attempt: 1,
                operator: "numbers".into(),
                instance: 0,
                state: vec![1, 2, 3],
            };
            log.append(entries::STATE, &state);
            let meta = MetaEntry {
                version,
                fingerprint: 7,
                plan: PlanShape::default(),
                query_id: Some("test-query".to_string()),
            };
            log.append(entries::META, &meta);
            let complete = CompleteEntry {
                epoch: 5,
                attempt: 1,
                mode: ExecutionMode::Continuous,
                needs_commit: false,
                fingerprint: 7,
                states: vec![("numbers".into(), 0)],
                duration_us: 1,
            };
            log.append(entries::COMPLETE, &complete);
            drop(log);
            let (recovered, _) = recover(dir.path()).unwrap();
            assert_eq!(recovered.epoch, 5);
            assert_eq!(
                recovered
                    .legacy_states
                    .contains(&("numbers".to_string(), 0)),
                legacy,
                "format {version}"
            );
        }
    }

    /// Epoch 1 committed; epoch 2's commit failed; an empty epoch 3 (nothing to
    /// commit) completed after it anyway, as the coordinator used to let happen.
    fn write_leapfrog(dir: &Path) {
        let mut log = Log::open(dir);
        log.offsets(1, 1);
        log.complete(1, 1, true);
        log.commit(1, 1);
        log.offsets(2, 1);
        log.complete(2, 1, true);
        log.offsets(3, 1);
        log.complete(3, 1, false);
    }

    #[test]
    fn an_epoch_after_an_uncommitted_one_is_no_restore_point() {
        let dir = tempfile::tempdir().unwrap();
        write_leapfrog(dir.path());
        let (recovered, report) = recover(dir.path()).unwrap();
        assert_eq!(report.complete.len(), 3);
        assert_eq!(
            recovered.epoch, 1,
            "epoch 3 leapfrogged uncommitted epoch 2"
        );
        // Epoch 2 runs again with the records it held.
        let replay = recovered.replay.expect("epoch 2 is replayed");
        assert_eq!((replay.epoch, replay.batch_time), (2, Some(2_000)));
        // The inspector can say why epoch 3 is passed over.
        let blocked: Vec<Option<u64>> = report
            .complete
            .iter()
            .map(|(entry, _)| report.blocked_by(entry))
            .collect();
        assert_eq!(blocked, vec![None, None, Some(2)]);
    }

    #[test]
    fn with_nothing_committed_before_the_failure_the_query_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path());
        log.offsets(1, 1);
        log.complete(1, 1, true);
        log.complete(2, 1, false);
        drop(log);
        let (recovered, _) = recover(dir.path()).unwrap();
        assert_eq!(recovered.epoch, 0);
        assert_eq!(recovered.replay.map(|replay| replay.epoch), Some(1));
        assert_eq!(recovered.attempt, 2);
    }

    /// Retention removed everything before an epoch whose commit entry is missing (as a
    /// power loss could leave it before the fix in `remove_old_segments`): starting
    /// afresh would re-run from the sources' beginning into output that was published,
    /// so recovery refuses, saying why.
    #[test]
    fn an_uncommitted_epoch_with_its_predecessors_gone_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path());
        log.offsets(5, 1);
        log.complete(5, 1, true);
        drop(log);
        match recover(dir.path()) {
            Err(CheckpointError::NoIntactEpoch { epochs, reason, .. }) => {
                assert_eq!(epochs, "5");
                assert!(reason.contains("no longer in the log"), "{reason}");
            }
            other => panic!("expected NoIntactEpoch, got {other:?}"),
        }
    }

    #[test]
    fn a_later_attempt_that_committed_the_epoch_is_restored() {
        let dir = tempfile::tempdir().unwrap();
        write_leapfrog(dir.path());
        // Attempt 2 restored epoch 1, ran epochs 2 and 3 again and committed them.
        let mut log = Log::open(dir.path());
        log.offsets(2, 2);
        log.complete(2, 2, true);
        log.commit(2, 2);
        log.offsets(3, 2);
        log.complete(3, 2, false);
        drop(log);
        let report = inspect(dir.path()).unwrap();
        let chosen = report.newest_restorable().unwrap();
        assert_eq!((chosen.epoch, chosen.attempt), (3, 2));
    }

    #[test]
    fn in_a_damaged_log_a_missing_commit_entry_blocks_nothing_later() {
        let dir = tempfile::tempdir().unwrap();
        write_leapfrog(dir.path());
        let mut report = inspect(dir.path()).unwrap();
        assert_eq!(report.newest_restorable().map(|entry| entry.epoch), Some(1));
        // The commit entry of epoch 2 may be what the damage took.
        report.problem("segment 1 offset 4096: corrupt entry".into());
        assert_eq!(report.newest_restorable().map(|entry| entry.epoch), Some(3));
    }

    /// Epochs 1 to `epochs`, none needing a commit, in segments of `segment_bytes`;
    /// returns the segment files, oldest first.
    fn write_epochs(dir: &Path, epochs: u64, segment_bytes: u64) -> Vec<std::path::PathBuf> {
        let config = LogConfig {
            segment_bytes,
            durability: crate::checkpoint::Durability::OsBuffered,
        };
        let mut log = Log(LogWriter::open(dir, config).unwrap());
        for epoch in 1..=epochs {
            log.offsets(epoch, 1);
            log.complete(epoch, 1, false);
        }
        drop(log);
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .collect();
        files.sort();
        files
    }

    /// Issue #15.1: a directory whose segments were all deleted still says it held
    /// checkpoints (its MANIFEST), and recovery refuses instead of starting afresh.
    #[test]
    fn a_wiped_log_is_refused_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        for path in write_epochs(dir.path(), 3, 512) {
            std::fs::remove_file(path).unwrap();
        }
        match recover(dir.path()) {
            Err(error @ CheckpointError::NoIntactEpoch { .. }) => {
                let message = error.to_string();
                assert!(
                    message.contains("no checkpoint segment is left"),
                    "{message}"
                );
                assert!(
                    message.contains("is missing") || message.contains("are missing"),
                    "{message}"
                );
                assert!(message.contains("Nothing was changed"), "{message}");
            }
            other => panic!("expected NoIntactEpoch, got {other:?}"),
        }
    }

    /// Issue #15.2: deleting the newest segment loses the newest epochs; recovery
    /// restores the newest intact one and reports the missing segment as damage.
    #[test]
    fn a_deleted_newest_segment_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_epochs(dir.path(), 12, 512);
        assert!(files.len() >= 3, "{files:?}");
        let intact = inspect(dir.path()).unwrap();
        assert!(!intact.is_corrupt(), "{:?}", intact.problems);
        std::fs::remove_file(files.last().unwrap()).unwrap();
        let (recovered, report) = recover(dir.path()).unwrap();
        assert!(
            recovered.epoch > 0 && recovered.epoch < 12,
            "{}",
            recovered.epoch
        );
        assert!(report.is_corrupt());
        let damage: Vec<&String> = report.damage().collect();
        assert_eq!(damage.len(), 1, "{damage:?}");
        assert!(damage[0].contains("is missing"), "{}", damage[0]);
    }

    /// Issue #15.3: one damaged entry loses that entry only; the reader resumes after it
    /// and the newest epoch, later in the same segment, is restored.
    #[test]
    fn a_damaged_entry_does_not_hide_the_entries_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_epochs(dir.path(), 16, 1 << 20);
        assert_eq!(files.len(), 1);
        let found = log::scan(dir.path()).unwrap();
        let victim = found
            .entries
            .iter()
            .find(|entry| entry.kind == entries::STATE)
            .unwrap()
            .location;
        let mut bytes = std::fs::read(&files[0]).unwrap();
        bytes[victim.offset as usize + 20] ^= 0x5a;
        std::fs::write(&files[0], bytes).unwrap();
        let (recovered, report) = recover(dir.path()).unwrap();
        assert_eq!(recovered.epoch, 16, "{:?}", report.problems);
        assert!(report.is_corrupt());
        // Epoch 2 on are intact; epoch 1 lost its snapshot.
        let restorable: Vec<u64> = report
            .complete
            .iter()
            .filter(|(_, verdict)| verdict.is_ok())
            .map(|(entry, _)| entry.epoch)
            .collect();
        assert_eq!(restorable, (2..=16).collect::<Vec<_>>());
    }

    /// A segment cut short is damage (a crash never shortens one), even when the cut
    /// keeps every complete epoch.
    #[test]
    fn a_cut_segment_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_epochs(dir.path(), 3, 1 << 20);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&files[0])
            .unwrap();
        file.set_len(4096).unwrap();
        let (recovered, report) = recover(dir.path()).unwrap();
        assert_eq!(recovered.epoch, 3);
        assert!(report.is_corrupt(), "{:?}", report.problems);
    }

    /// Issue #15.4: the refusal says what was found and what was lost.
    #[test]
    fn the_refusal_says_what_was_found_and_lost() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_epochs(dir.path(), 2, 1 << 20);
        let found = log::scan(dir.path()).unwrap();
        let mut bytes = std::fs::read(&files[0]).unwrap();
        for entry in found.entries.iter().filter(|e| e.kind == entries::STATE) {
            bytes[entry.location.offset as usize + 20] ^= 0x5a;
        }
        std::fs::write(&files[0], bytes).unwrap();
        let message = recover(dir.path()).unwrap_err().to_string();
        for part in [
            "cannot restore from checkpoint directory",
            "epoch 2 cannot be restored: the snapshots of numbers#0 are missing or damaged",
            "are damaged",
            "the entries there are lost",
            "Complete epochs found: 1, 2",
            "move this directory away or use a new one",
        ] {
            assert!(message.contains(part), "{part:?} not in {message}");
        }
    }
}
