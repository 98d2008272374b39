//! Finding the epoch to restore: the newest complete epoch whose every snapshot is intact.
//!
//! The log may end in a torn entry, hold corrupt bytes, or miss a segment; none of that
//! may make a half-written epoch count. An epoch is restorable only if its completion
//! entry is intact and every state entry that completion entry lists is intact too.

use super::codec;
use super::entries::{self, CompleteEntry, MetaEntry, StateEntry};
use super::error::CheckpointError;
use super::log::{self, Problem};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The state to restore a query from.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The epoch restored; the query continues with `epoch + 1`.
    pub epoch: u64,
    /// Fingerprint of the plan that wrote it.
    pub fingerprint: u64,
    /// Every participant's snapshot, by `(operator, instance)`.
    pub states: HashMap<(String, u32), Vec<u8>>,
}

/// What a checkpoint directory holds, as far as recovery and the inspector care.
#[derive(Debug, Clone, Default)]
pub struct DirectoryReport {
    /// The newest query identity found.
    pub meta: Option<MetaEntry>,
    /// Every complete epoch, oldest first, with whether it can be restored (and if not,
    /// why).
    pub complete: Vec<(CompleteEntry, Result<(), String>)>,
    /// Epochs with snapshots but no completion entry.
    pub incomplete: Vec<u64>,
    /// Snapshot sizes: `(epoch, operator, instance) → bytes`.
    pub state_sizes: BTreeMap<(u64, String, u32), usize>,
    /// Segment numbers present.
    pub segments: Vec<u64>,
    /// The newest epoch mentioned anywhere (complete or not); a restarted query numbers
    /// its epochs after it, so an epoch number is never reused within one directory.
    pub newest_epoch: u64,
    /// Damage found: torn tails, corrupt entries, missing segments, undecodable entries.
    pub problems: Vec<String>,
    /// Whether any problem is more than a torn tail.
    corrupt: bool,
    states: HashMap<(u64, String, u32), Vec<u8>>,
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

    /// The newest restorable epoch.
    pub fn newest_restorable(&self) -> Option<&CompleteEntry> {
        self.complete
            .iter()
            .rev()
            .find(|(_, verdict)| verdict.is_ok())
            .map(|(entry, _)| entry)
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
            entries::META => match codec::decode::<MetaEntry>(&entry.payload) {
                Ok(meta) if meta.version == entries::FORMAT_VERSION => report.meta = Some(meta),
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
                    epochs_with_state.insert(state.epoch);
                    report.state_sizes.insert(
                        (state.epoch, state.operator.clone(), state.instance),
                        state.state.len(),
                    );
                    report
                        .states
                        .insert((state.epoch, state.operator, state.instance), state.state);
                }
                Err(error) => report.problem(format!("{at}: undecodable snapshot: {error}")),
            },
            entries::COMPLETE => match codec::decode::<CompleteEntry>(&entry.payload) {
                Ok(complete) => {
                    report.newest_epoch = report.newest_epoch.max(complete.epoch);
                    completes.push(complete);
                }
                Err(error) => report.problem(format!("{at}: undecodable completion: {error}")),
            },
            other => report.problem(format!("{at}: unknown entry kind {}", other.0)),
        }
    }
    completes.sort_by_key(|complete| complete.epoch);
    completes.dedup_by_key(|complete| complete.epoch);
    for complete in completes {
        let missing: Vec<String> = complete
            .states
            .iter()
            .filter(|(operator, instance)| {
                !report
                    .states
                    .contains_key(&(complete.epoch, operator.clone(), *instance))
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
pub fn recover(dir: &Path) -> Result<(Option<Recovered>, DirectoryReport), CheckpointError> {
    let report = inspect(dir)?;
    if report.complete.is_empty() && !report.is_corrupt() {
        // Nothing was ever completed (a torn tail is what a crash mid-write leaves).
        return Ok((None, report));
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
            let bytes = report.states[&(chosen.epoch, operator.clone(), *instance)].clone();
            ((operator.clone(), *instance), bytes)
        })
        .collect();
    Ok((
        Some(Recovered {
            epoch: chosen.epoch,
            fingerprint: chosen.fingerprint,
            states,
        }),
        report,
    ))
}
