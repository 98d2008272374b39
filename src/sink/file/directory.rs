//! The directory rules applied when an instance opens: check that the directory (and
//! `_commits/`) is usable, judge the commit records of a checkpointed query (this
//! query's or another's; which to keep, which to retire), and remove what a crashed run
//! of the instance left uncommitted. See [Restarts](super#restarts).

use super::commit_log::{self, Entry, PartId, COMMITS_DIR};
use super::FileSinkError;
use crate::event::Epoch;
use crate::sink::SinkContext;
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// Creates and checks the directory for the context's instance and cleans up after a
/// crashed run of it. In a checkpointed query, also judges the commit records (see
/// [`judge_records`]) and retires the stale ones; returns the replayed epoch if this
/// instance already published it.
///
/// Instance 0 also looks after instances at or beyond the parallelism, which an earlier
/// run with more instances may have left.
pub(crate) fn prepare_dir(
    dir: &Path,
    context: &SinkContext,
) -> Result<Option<Epoch>, FileSinkError> {
    let instance = context.instance;
    // Any other problem with the path shows when the directory is created.
    if fs::metadata(dir).is_ok_and(|metadata| !metadata.is_dir()) {
        return Err(FileSinkError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let commits = dir.join(COMMITS_DIR);
    for path in [dir, commits.as_path()] {
        fs::create_dir_all(path)
            .map_err(|source| FileSinkError::io("create directory", path, source))?;
        if !fs::metadata(path).is_ok_and(|metadata| metadata.is_dir()) {
            return Err(FileSinkError::NotADirectory {
                path: path.to_path_buf(),
            });
        }
        let probe = path.join(format!(".probe-{instance:03}-{}", std::process::id()));
        File::create(&probe)
            .and_then(|_| fs::remove_file(&probe))
            .map_err(|source| FileSinkError::io("write into directory", path, source))?;
    }

    let mine = |id: &PartId| {
        id.instance == instance || (instance == 0 && id.instance >= context.parallelism)
    };
    let remove = |path: &Path| {
        fs::remove_file(path).map_err(|source| FileSinkError::io("remove", path, source))
    };
    // Markers being written when a run died: their commits did not happen.
    let mut cut_short = Vec::new();
    // The committed markers of our instances, by stem; checkpointed ones also by
    // (epoch, instance).
    let mut committed_stems = HashSet::new();
    let mut checkpointed = BTreeMap::new();
    for entry in read_dir(&commits)? {
        let (name, path) = entry?;
        if let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
            if PartId::parse_stem(stem).is_some_and(|id| mine(&id)) {
                cut_short.push(path);
            }
        } else if let Some(id) = PartId::parse_stem(&name) {
            if mine(&id) {
                if id.run.is_none() {
                    checkpointed.insert((id.epoch, id.instance), (name.clone(), path));
                }
                committed_stems.insert(name);
            }
        }
    }

    // Judged before anything is removed: a directory of another query stays untouched.
    let Verdict { skip, stale } = if context.checkpointed {
        judge_records(dir, context, &checkpointed)?
    } else {
        // Epoch numbers of another run name other records; names never collide.
        Verdict::default()
    };
    for path in &cut_short {
        remove(path)?;
    }
    // The marker goes first, durably: from then on the part file is uncommitted (and
    // removed below, or by the next `open` after a crash), so readers never see a
    // marker without its file, and no later crash brings the marker back.
    for (stem, path) in &stale {
        remove(path)?;
        committed_stems.remove(stem);
    }
    if !stale.is_empty() {
        commit_log::sync_dir(&commits)?;
    }

    let mut removed_parts = false;
    for entry in read_dir(dir)? {
        let (name, path) = entry?;
        match Entry::parse(&name) {
            Some(Entry::TempPart(id)) if mine(&id) => remove(&path)?,
            // Renamed into place, but the marker was never written (or was retired):
            // not committed.
            Some(Entry::Part(id, _)) if mine(&id) && !committed_stems.contains(&id.stem()) => {
                remove(&path)?;
                removed_parts = true;
            }
            _ => {}
        }
    }
    if removed_parts {
        commit_log::sync_dir(dir)?;
    }
    Ok(skip)
}

/// A commit record of one of our instances: its stem (the marker's name) and path.
type Record = (String, PathBuf);

/// What [`judge_records`] decided.
#[derive(Debug, Default)]
struct Verdict {
    /// The replayed epoch, if this instance published it: its records are dropped.
    skip: Option<Epoch>,
    /// Records to retire.
    stale: Vec<Record>,
}

/// Judges the checkpointed commit records of our instances, by `(epoch, instance)`,
/// from the point of view of the query starting with `context`.
///
/// * A record is this query's if it carries the context's query id. A record without
///   one (written before records carried it) is taken for this query's only when the
///   query was restored (`first_epoch` > 1): a query starting afresh cannot know who
///   wrote it. Any other record is another query's: [`FileSinkError::ForeignOutput`].
/// * Records from `first_epoch` on are read, and the newest one before it (it says who
///   wrote the history the query continues); older ones are not (a long-running
///   query's directory holds one per epoch and instance).
/// * From `first_epoch` on, the query has not recorded any commit, so it runs those
///   epochs again: the record of the replayed epoch by this instance is kept (its
///   records come again, the same ones, and are skipped); every other one is stale
///   (its epoch number will hold other records, or none) and is retired.
fn judge_records(
    dir: &Path,
    context: &SinkContext,
    records: &BTreeMap<(u64, usize), Record>,
) -> Result<Verdict, FileSinkError> {
    let first = context.first_epoch.0;
    let ours = context.query_id.as_deref();
    let restored = first > 1;
    let newest_before = records.range(..(first, 0)).next_back();
    let mut skip = None;
    let mut stale = Vec::new();
    for (&(epoch, instance), (stem, path)) in
        newest_before.into_iter().chain(records.range((first, 0)..))
    {
        let marker = commit_log::read_marker(path)?;
        let owner = marker.query.as_deref();
        if owner != ours && !(owner.is_none() && restored) {
            let this = ours.map_or_else(
                || "this sink was opened without a query id".to_string(),
                |ours| format!("this query is {ours}"),
            );
            let reason = match owner {
                Some(owner) => format!("was written by query {owner}; {this}"),
                None => format!(
                    "carries no query id (written before commit records did) and this \
                     query starts afresh, so it cannot be this query's; {this}"
                ),
            };
            return Err(FileSinkError::ForeignOutput {
                path: dir.to_path_buf(),
                record: path.clone(),
                reason,
            });
        }
        if epoch < first {
            continue;
        }
        if Some(Epoch(epoch)) == context.replayed_epoch && instance == context.instance {
            skip = Some(Epoch(epoch));
        } else {
            stale.push((stem.clone(), path.clone()));
        }
    }
    Ok(Verdict { skip, stale })
}

/// The entries of `dir` with UTF-8 names, as `(name, path)`; other names are not the
/// sink's.
fn read_dir(
    dir: &Path,
) -> Result<impl Iterator<Item = Result<(String, PathBuf), FileSinkError>> + '_, FileSinkError> {
    let entries = fs::read_dir(dir).map_err(|source| FileSinkError::io("list", dir, source))?;
    Ok(entries.filter_map(move |entry| match entry {
        Ok(entry) => {
            let name = entry.file_name().into_string().ok()?;
            Some(Ok((name, entry.path())))
        }
        Err(source) => Some(Err(FileSinkError::io("list", dir, source))),
    }))
}
