//! `rivulet inspect DIR`: what a checkpoint directory holds, and whether it is intact.
//!
//! Lists segments and epochs (complete, restorable or not, and incomplete), the plan that
//! wrote them, per-operator snapshot sizes, and every problem the CRC-checked scan found,
//! including in the ingest logs of push sources, and what recovery would do: the inspector
//! asks [`recover`] itself, so it agrees with a restart in every case. Exits non-zero
//! when anything is damaged beyond a torn tail, a complete epoch cannot be restored, or
//! recovery would refuse.

use anyhow::{Context, Result};
use rivulet::checkpoint::log::scan;
use rivulet::checkpoint::recovery::{inspect, recover, DirectoryReport};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The inspector's findings for one checkpoint directory.
#[derive(Debug, Serialize)]
pub(crate) struct Inspection {
    /// The directory inspected.
    pub(crate) dir: PathBuf,
    /// Plan that wrote the newest segment: `(operator, kind, parallelism)`.
    pub(crate) plan: Vec<(String, String, u32)>,
    /// The query's id (stamped in the commit records of its file sinks); `None` in logs
    /// of format version 2.
    pub(crate) query_id: Option<String>,
    /// Segment numbers present.
    pub(crate) segments: Vec<u64>,
    /// Complete epochs, oldest first.
    pub(crate) complete: Vec<EpochLine>,
    /// Epochs with snapshots but no completion entry.
    pub(crate) incomplete: Vec<u64>,
    /// Snapshot bytes per `operator#instance` in the newest restorable epoch.
    pub(crate) newest_state_sizes: BTreeMap<String, usize>,
    /// Ingest logs of push sources: name → (records logged, problems).
    pub(crate) ingest_logs: BTreeMap<String, (usize, Vec<String>)>,
    /// Problems found, in the checkpoint log itself.
    pub(crate) problems: Vec<String>,
    /// What a restart of the query on this directory would do.
    pub(crate) recovery: Recovery,
    /// `true` if nothing is damaged beyond a torn tail, every complete epoch restores
    /// (or was retired), and recovery would not refuse.
    pub(crate) healthy: bool,
}

/// What a restart on the directory would do: [`recover`]'s decision, and the refusal of
/// a damaged ingest log that opening the source would add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum Recovery {
    /// Restores this epoch and continues after it.
    Restores {
        /// The epoch.
        epoch: u64,
    },
    /// Starts from the beginning: no complete epoch and no damage.
    StartsAfresh,
    /// Refuses to start, with this error.
    Refuses {
        /// The error a restart reports.
        error: String,
    },
}

/// One complete epoch.
#[derive(Debug, Serialize)]
pub(crate) struct EpochLine {
    /// The epoch.
    pub(crate) epoch: u64,
    /// Trigger to completion, in microseconds.
    pub(crate) duration_us: u64,
    /// Total snapshot bytes of the epoch.
    pub(crate) state_bytes: usize,
    /// How the epoch ran (continuous or micro-batch).
    pub(crate) mode: String,
    /// `None`: no sink output to publish; else whether its commit entry is there.
    pub(crate) committed: Option<bool>,
    /// Records the sources emitted in it, if the offset log says.
    pub(crate) input_rows: Option<u64>,
    /// `None` if restorable, else why not.
    pub(crate) unrestorable: Option<String>,
    /// Completed after this uncommitted epoch of the same attempt, so not a restore
    /// point (recovery restores an epoch before that one and replays from there).
    pub(crate) blocked_by: Option<u64>,
    /// Older than the newest restorable epoch, with snapshots already removed by
    /// retention: expected, not damage.
    pub(crate) retired: bool,
}

/// Inspects `dir`.
pub(crate) fn run(dir: &Path) -> Result<Inspection> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let report: DirectoryReport =
        inspect(dir).with_context(|| format!("reading checkpoint directory {}", dir.display()))?;
    let newest_restorable = report.newest_restorable().map(|entry| entry.epoch);
    let complete: Vec<EpochLine> = report
        .complete
        .iter()
        .map(|(entry, verdict)| EpochLine {
            epoch: entry.epoch,
            mode: entry.mode.to_string(),
            committed: entry.needs_commit.then(|| report.is_committed(entry)),
            input_rows: report
                .offsets
                .get(&entry.epoch)
                .map(|offsets| offsets.sources.iter().map(|source| source.records).sum()),
            retired: verdict.is_err()
                && newest_restorable.is_some_and(|newest| entry.epoch < newest),
            duration_us: entry.duration_us,
            state_bytes: report
                .state_sizes
                .iter()
                .filter(|((epoch, _, _), _)| *epoch == entry.epoch)
                .map(|(_, bytes)| *bytes)
                .sum(),
            unrestorable: verdict.as_ref().err().cloned(),
            blocked_by: report.blocked_by(entry),
        })
        .collect();
    let newest_state_sizes = report
        .newest_restorable()
        .map(|newest| {
            report
                .state_sizes
                .iter()
                .filter(|((epoch, _, _), _)| *epoch == newest.epoch)
                .map(|((_, operator, instance), bytes)| (format!("{operator}#{instance}"), *bytes))
                .collect()
        })
        .unwrap_or_default();
    let mut ingest_logs = BTreeMap::new();
    let mut ingest_damage: Option<String> = None;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        if path.is_dir() && name.starts_with("ingest-") {
            let found = scan(&path).with_context(|| format!("reading {}", path.display()))?;
            let problems: Vec<String> = found.problems.iter().map(ToString::to_string).collect();
            if let Some(problem) = found.problems.iter().find(|problem| problem.is_damage()) {
                // As the source's open reports it (`IngestLog::open`).
                ingest_damage.get_or_insert_with(|| {
                    format!("the ingest log {} is damaged: {problem}", path.display())
                });
            }
            ingest_logs.insert(name.to_string(), (found.entries.len(), problems));
        }
    }
    let mut recovery = match recover(dir) {
        Ok((recovered, _)) if recovered.epoch > 0 => Recovery::Restores {
            epoch: recovered.epoch,
        },
        Ok(_) => Recovery::StartsAfresh,
        Err(error) => Recovery::Refuses {
            error: error.to_string(),
        },
    };
    if let Some(error) = ingest_damage.clone() {
        if !matches!(recovery, Recovery::Refuses { .. }) {
            recovery = Recovery::Refuses { error };
        }
    }
    let healthy = !report.is_corrupt()
        && ingest_damage.is_none()
        && !matches!(recovery, Recovery::Refuses { .. })
        && complete
            .iter()
            .all(|line| line.unrestorable.is_none() || line.retired);
    Ok(Inspection {
        dir: dir.to_path_buf(),
        plan: report
            .meta
            .as_ref()
            .map(|meta| meta.plan.operators.clone())
            .unwrap_or_default(),
        query_id: report.meta.as_ref().and_then(|meta| meta.query_id.clone()),
        segments: report.segments.clone(),
        complete,
        incomplete: report.incomplete.clone(),
        newest_state_sizes,
        ingest_logs,
        problems: report.problems.clone(),
        recovery,
        healthy,
    })
}

/// Prints `inspection` for people.
pub(crate) fn print(inspection: &Inspection) {
    println!("checkpoint directory {}", inspection.dir.display());
    if inspection.plan.is_empty() {
        println!("  plan: (no metadata found)");
    } else {
        let plan: Vec<String> = inspection
            .plan
            .iter()
            .map(|(name, kind, parallelism)| format!("{name}({kind}×{parallelism})"))
            .collect();
        println!("  plan: {}", plan.join(" → "));
    }
    if let Some(id) = &inspection.query_id {
        println!("  query id: {id}");
    }
    println!("  segments: {:?}", inspection.segments);
    println!("  complete epochs: {}", inspection.complete.len());
    for line in &inspection.complete {
        let verdict = match (&line.unrestorable, line.retired, line.committed) {
            (Some(_), true, _) => "retired (snapshots removed by retention)".to_string(),
            (Some(why), false, _) => why.clone(),
            (None, _, Some(false)) => "not committed (replayed on restart)".to_string(),
            (None, _, _) => match line.blocked_by {
                Some(epoch) => {
                    format!("not a restore point: completed after uncommitted epoch {epoch}")
                }
                None => "restorable".to_string(),
            },
        };
        let rows = line
            .input_rows
            .map(|rows| format!("{rows} rows"))
            .unwrap_or_default();
        println!(
            "    epoch {:>6}  {:<11}  {:>9} µs  {:>9} state bytes  {:>10}  {}",
            line.epoch, line.mode, line.duration_us, line.state_bytes, rows, verdict
        );
    }
    if !inspection.incomplete.is_empty() {
        println!("  incomplete epochs: {:?}", inspection.incomplete);
    }
    if !inspection.newest_state_sizes.is_empty() {
        println!("  state sizes in the newest restorable epoch:");
        for (participant, bytes) in &inspection.newest_state_sizes {
            println!("    {participant:<32} {bytes:>10} bytes");
        }
    }
    for (name, (records, problems)) in &inspection.ingest_logs {
        println!("  ingest log {name}: {records} records logged");
        for problem in problems {
            println!("    problem: {problem}");
        }
    }
    for problem in &inspection.problems {
        println!("  problem: {problem}");
    }
    match &inspection.recovery {
        Recovery::Restores { epoch } => {
            println!("  a restart restores epoch {epoch} (the newest whose entries are all intact)")
        }
        Recovery::StartsAfresh => {
            println!("  a restart starts afresh (no complete epoch, nothing damaged)")
        }
        Recovery::Refuses { error } => println!("  a restart REFUSES: {error}"),
    }
    println!(
        "  verdict: {}",
        if inspection.healthy {
            "intact"
        } else {
            "DAMAGED"
        }
    );
}

#[cfg(test)]
mod damage_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use rivulet::checkpoint::CheckpointConfig;
    use rivulet::source::RateSource;
    use rivulet::Query;
    use std::time::Duration;

    fn write_checkpoints(dir: &Path) {
        let mut query = Query::builder();
        query.checkpoint(
            CheckpointConfig::new(dir)
                .interval(Duration::from_millis(5))
                .segment_bytes(512),
        );
        query
            .source("rows", RateSource::new(20_000).with_limit(2_000))
            .key_by(|row| row.value % 3)
            .count()
            .for_each(|_| {});
        let running = query.start().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        running.stop().unwrap();
    }

    #[test]
    fn an_intact_directory_is_healthy() {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoints(dir.path());
        let inspection = run(dir.path()).unwrap();
        assert!(inspection.healthy, "{inspection:?}");
        assert!(!inspection.complete.is_empty());
        assert!(inspection.newest_state_sizes.contains_key("count#0"));
        assert_eq!(inspection.plan.len(), 4);
        assert_eq!(inspection.query_id.as_ref().map(String::len), Some(32));
    }

    #[test]
    fn a_flipped_byte_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoints(dir.path());
        let mut segments: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .collect();
        segments.sort();
        let mut bytes = std::fs::read(&segments[0]).unwrap();
        bytes[30] ^= 0xFF;
        std::fs::write(&segments[0], bytes).unwrap();
        let inspection = run(dir.path()).unwrap();
        assert!(!inspection.healthy);
        assert!(!inspection.problems.is_empty());
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        assert!(run(Path::new("/definitely/not/here")).is_err());
    }
}
