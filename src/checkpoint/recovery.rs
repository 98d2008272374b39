//! Finding the epoch to restore: the newest complete epoch whose every snapshot is intact
//! and whose output, if sinks staged any, was committed.
//!
//! The log may end in a torn entry, hold corrupt bytes, or miss a segment; none of that
//! may make a half-written epoch count. An epoch is restorable only if its completion
//! entry is intact and every state entry that completion entry lists is intact too.
//!
//! An epoch whose sinks staged output but whose commit entry is missing is not a restore
//! point: the epoch before it is restored and it is run again. If the offset log says
//! what the epoch after the restore point held, that epoch is replayed with exactly those
//! records ([`Recovered::replay`]), so sinks can recognise it and skip what they already
//! published.

use super::codec;
use super::entries::{self, CommitEntry, CompleteEntry, MetaEntry, OffsetsEntry, StateEntry};
use super::error::CheckpointError;
use super::log::{self, Problem};
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
    states: HashMap<(u64, u64, String, u32), Vec<u8>>,
}

impl DirectoryReport {
    /// `true` if the log is damaged anywhere, beyond a torn tail (which a crash during a
    /// write leaves behind and recovery is built to ignore).
    pub fn is_corrupt(&self) -> bool {
        !self
            .problems
            .iter()
            .all(|problem| problem.starts_with("torn tail"))
    }

    fn problem(&mut self, message: String) {
        self.problems.push(message);
        self.corrupt = true;
    }

    /// The newest restorable epoch: intact, and committed if it needed a commit.
    pub fn newest_restorable(&self) -> Option<&CompleteEntry> {
        self.complete
            .iter()
            .rev()
            .find(|(entry, verdict)| verdict.is_ok() && self.is_committed(entry))
            .map(|(entry, _)| entry)
    }

    /// Whether `entry`'s output is published (or it had none to publish).
    pub fn is_committed(&self, entry: &CompleteEntry) -> bool {
        !entry.needs_commit || self.committed.contains(&(entry.epoch, entry.attempt))
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
        if !matches!(problem, Problem::TornTail { .. }) {
            report.corrupt = true;
        }
    }
    let mut completes = Vec::new();
    let mut epochs_with_state = std::collections::BTreeSet::new();
    for entry in scan.entries {
        let at = format!(
            "segment {} offset {}",
            entry.location.segment, entry.location.offset
        );
        match entry.kind {
            entries::META => match MetaEntry::decode(&entry.payload) {
                Ok(meta) if meta.is_readable() => {
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
                    report.states.insert(
                        (state.epoch, state.attempt, state.operator, state.instance),
                        state.state,
                    );
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
            entries::OFFSETS => match codec::decode::<OffsetsEntry>(&entry.payload) {
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
                "epoch {}: snapshots missing or damaged: {}",
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
/// Returns `Ok(None)` for a directory without complete epochs and without damage (a
/// fresh start).
///
/// # Errors
///
/// [`CheckpointError::NoIntactEpoch`] if complete epochs exist but none is intact, or the
/// log is damaged (beyond a torn tail) and no intact complete epoch is left: a fresh start
/// would silently drop state and, for sources with an ingest log, input. A log error if
/// the directory cannot be read.
pub fn recover(dir: &Path) -> Result<(Recovered, DirectoryReport), CheckpointError> {
    let report = inspect(dir)?;
    let attempt = report.newest_attempt + 1;
    if report.newest_restorable().is_none()
        && report.complete.iter().all(|(_, verdict)| verdict.is_ok())
        && !report.is_corrupt()
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
        return Err(CheckpointError::NoIntactEpoch {
            dir: dir.display().to_string(),
            epochs: report
                .complete
                .iter()
                .map(|(entry, _)| entry.epoch.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            reason: report
                .complete
                .iter()
                .filter_map(|(_, verdict)| verdict.as_ref().err().cloned())
                .chain(report.problems.iter().cloned())
                .collect::<Vec<_>>()
                .join("; "),
        });
    };
    let states = chosen
        .states
        .iter()
        .map(|(operator, instance)| {
            let key = (chosen.epoch, chosen.attempt, operator.clone(), *instance);
            ((operator.clone(), *instance), report.states[&key].clone())
        })
        .collect();
    Ok((
        Recovered {
            epoch: chosen.epoch,
            fingerprint: Some(chosen.fingerprint),
            states,
            replay: report.offsets.get(&(chosen.epoch + 1)).cloned(),
            attempt,
        },
        report,
    ))
}
