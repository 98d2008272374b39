//! The sink's own commit log: file names, the `_commits/` markers, the durable steps of
//! a commit, and reading the log back.
//!
//! Names, with `{id}` = `{epoch:010}-{instance:03}` (checkpointed queries) or
//! `{run}-{epoch:010}-{instance:03}` (queries without checkpoints, whose epochs restart
//! at 1 every run), `{run}` = `{start time in µs:016}-{pid}`:
//!
//! | file | what it is |
//! |---|---|
//! | `.part-{id}.{ext}.tmp` | an epoch's output being written or staged (never read) |
//! | `part-{id}.{ext}` | published output; only valid once its marker exists |
//! | `_commits/{id}` | the commit marker: JSON [`CommitMarker`] |
//! | `_commits/.{id}.tmp` | a marker being written |

use super::error::FileSinkError;
use super::FileFormat;
use crate::event::Epoch;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The subdirectory holding commit markers.
pub(crate) const COMMITS_DIR: &str = "_commits";

/// Identifies one part file: the run (only without checkpoints), epoch and instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartId {
    /// The run id, for queries without checkpoints.
    pub(crate) run: Option<String>,
    /// The epoch whose output the part holds.
    pub(crate) epoch: u64,
    /// The sink instance that wrote it.
    pub(crate) instance: usize,
}

impl PartId {
    /// `{run}-{epoch}-{instance}` or `{epoch}-{instance}`: the marker's name, and the
    /// part file's name between its prefix and extension.
    pub(crate) fn stem(&self) -> String {
        match &self.run {
            Some(run) => format!("{run}-{:010}-{:03}", self.epoch, self.instance),
            None => format!("{:010}-{:03}", self.epoch, self.instance),
        }
    }

    /// Parses a [`stem`](Self::stem); `None` for any other name.
    pub(crate) fn parse_stem(stem: &str) -> Option<PartId> {
        fn digits(s: &str) -> Option<&str> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
        }
        let fields: Vec<&str> = stem.split('-').collect();
        let (run, epoch, instance) = match fields.as_slice() {
            [epoch, instance] => (None, epoch, instance),
            [micros, pid, epoch, instance] => (
                Some(format!("{}-{}", digits(micros)?, digits(pid)?)),
                epoch,
                instance,
            ),
            _ => return None,
        };
        Some(PartId {
            run,
            epoch: digits(epoch)?.parse().ok()?,
            instance: digits(instance)?.parse().ok()?,
        })
    }

    /// The published part file's name.
    pub(crate) fn part_name(&self, format: FileFormat) -> String {
        format!("part-{}.{}", self.stem(), format.extension())
    }

    /// The staging file's name.
    pub(crate) fn temp_name(&self, format: FileFormat) -> String {
        format!(".part-{}.{}.tmp", self.stem(), format.extension())
    }

    /// Read order: runs by start time (checkpointed output first), then epoch, then
    /// instance.
    fn read_order(&self, other: &Self) -> Ordering {
        let run = |id: &Self| {
            id.run.as_ref().map(|run| {
                let (micros, pid) = run.split_once('-').unwrap_or((run, ""));
                (micros.parse::<u64>().ok(), pid.parse::<u64>().ok())
            })
        };
        run(self)
            .cmp(&run(other))
            .then(self.epoch.cmp(&other.epoch))
            .then(self.instance.cmp(&other.instance))
    }
}

/// What kind of file a directory entry of the sink is, by its name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A published part file `part-{id}.{ext}`.
    Part(PartId, FileFormat),
    /// A staging file `.part-{id}.{ext}.tmp`.
    TempPart(PartId),
}

impl Entry {
    /// Classifies a name in the sink's directory; `None` for names the sink did not make.
    pub(crate) fn parse(name: &str) -> Option<Entry> {
        if let Some(rest) = name.strip_prefix(".part-") {
            let rest = rest.strip_suffix(".tmp")?;
            let (stem, _extension) = rest.rsplit_once('.')?;
            return PartId::parse_stem(stem).map(Entry::TempPart);
        }
        let rest = name.strip_prefix("part-")?;
        let (stem, extension) = rest.rsplit_once('.')?;
        let format = FileFormat::from_extension(extension)?;
        PartId::parse_stem(stem).map(|id| Entry::Part(id, format))
    }
}

/// The content of a commit marker: which file an epoch's output went to, how many
/// records it holds, and which query wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CommitMarker {
    /// The part file's name, relative to the sink's directory.
    pub(crate) file: String,
    /// Records in the file.
    pub(crate) records: u64,
    /// The epoch.
    pub(crate) epoch: u64,
    /// The instance that wrote it.
    pub(crate) instance: usize,
    /// The run, for queries without checkpoints.
    pub(crate) run: Option<String>,
    /// Whether the file starts with a CSV header row.
    #[serde(default)]
    pub(crate) header: bool,
    /// The checkpointed query that wrote it ([`SinkContext::query_id`]); absent in
    /// records of queries without checkpoints and in records older than the field.
    ///
    /// [`SinkContext::query_id`]: crate::sink::SinkContext::query_id
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) query: Option<String>,
}

/// A new run id, `{µs since the Unix epoch:016}-{pid}`. The microseconds are made
/// strictly increasing within the process, so two runs of one process never share an
/// id; two processes running at the same time differ in pid.
pub(crate) fn new_run_id() -> String {
    static LAST_MICROS: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as u64);
    let previous = LAST_MICROS
        .fetch_update(AtomicOrdering::Relaxed, AtomicOrdering::Relaxed, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or_else(|last| last);
    let micros = now.max(previous + 1);
    format!("{micros:016}-{}", std::process::id())
}

/// Makes a directory's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), FileSinkError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| FileSinkError::io("sync directory", dir, source))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `bytes` to `dir/name` so that a reader sees all of it or nothing: a temporary
/// file, fsynced, renamed into place, and the directory fsynced.
pub(crate) fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), FileSinkError> {
    let temp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    File::create(&temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .map_err(|source| FileSinkError::io("write", &temp, source))?;
    fs::rename(&temp, &target).map_err(|source| FileSinkError::Rename {
        from: temp,
        to: target,
        source,
    })?;
    sync_dir(dir)
}

/// The second phase of a commit: publish the staged file `temp` as `dir/marker.file`,
/// then record the commit in `_commits/{id}`. Each step is durable before the next
/// starts, so a marker never names a file that might be lost.
///
/// A committed part is never replaced: `open` retires the records of epochs a run
/// writes again, so a record already there was written by someone else since (two
/// writers on one directory), and renaming over its part file would leave that record
/// describing another file.
pub(crate) fn publish(
    dir: &Path,
    temp: &Path,
    id: &PartId,
    marker: &CommitMarker,
) -> Result<(), FileSinkError> {
    let commits = dir.join(COMMITS_DIR);
    let record = commits.join(id.stem());
    if fs::symlink_metadata(&record).is_ok() {
        return Err(FileSinkError::ForeignOutput {
            path: dir.to_path_buf(),
            record,
            reason: format!(
                "commits epoch {} of instance {} already, written since this sink \
                 opened: another writer shares the directory",
                id.epoch, id.instance
            ),
        });
    }
    let target = dir.join(&marker.file);
    fs::rename(temp, &target).map_err(|source| FileSinkError::Rename {
        from: temp.to_path_buf(),
        to: target,
        source,
    })?;
    sync_dir(dir)?;
    let bytes = serde_json::to_vec(marker).map_err(|source| FileSinkError::Corrupt {
        path: commits.join(id.stem()),
        reason: format!("cannot encode the commit marker: {source}"),
    })?;
    write_durably(&commits, &id.stem(), &bytes)
}

/// Reads the commit marker at `path`.
pub(crate) fn read_marker(path: &Path) -> Result<CommitMarker, FileSinkError> {
    let bytes = fs::read(path).map_err(|source| FileSinkError::io("read", path, source))?;
    serde_json::from_slice(&bytes).map_err(|source| FileSinkError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("not a commit marker: {source}"),
    })
}

/// One committed part file, as listed by the sink's commit log (see
/// [`committed_parts`](super::committed_parts)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommittedPart {
    /// The epoch whose output the file holds. With
    /// [`OutputMode::Complete`](crate::OutputMode::Complete), each epoch's files together
    /// are the whole result table as of that epoch.
    pub epoch: Epoch,
    /// The sink instance that wrote it.
    pub instance: usize,
    /// The run that wrote it, for queries without checkpoints (their epochs restart at 1
    /// every run); `None` for checkpointed queries.
    pub run: Option<String>,
    /// The checkpointed query that wrote it ([`SinkContext::query_id`]); `None` without
    /// checkpoints, and for records written before records carried it.
    ///
    /// [`SinkContext::query_id`]: crate::sink::SinkContext::query_id
    pub query: Option<String>,
    /// The file's path.
    pub path: PathBuf,
    /// The file's format, from its extension.
    pub format: FileFormat,
    /// Records in the file.
    pub records: u64,
    /// Whether the file starts with a CSV header row (record types with field names).
    pub header: bool,
}

/// Lists every committed part file in `dir`, ordered by run (checkpointed output first,
/// then runs by start time), epoch, then instance. Staging files and part files without
/// a commit marker are not listed.
pub(crate) fn list_committed(dir: &Path) -> Result<Vec<CommittedPart>, FileSinkError> {
    let commits = dir.join(COMMITS_DIR);
    let entries =
        fs::read_dir(&commits).map_err(|source| FileSinkError::io("list", &commits, source))?;
    let mut parts = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| FileSinkError::io("list", &commits, source))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(id) = PartId::parse_stem(name) else {
            // Markers being written (`.{id}.tmp`) and foreign files.
            continue;
        };
        let path = entry.path();
        let marker = read_marker(&path)?;
        let format = match Entry::parse(&marker.file) {
            Some(Entry::Part(file_id, format)) if file_id == id => format,
            _ => {
                return Err(FileSinkError::Corrupt {
                    path,
                    reason: format!("names `{}`, which is not its part file", marker.file),
                })
            }
        };
        parts.push((
            id.clone(),
            CommittedPart {
                epoch: Epoch(id.epoch),
                instance: id.instance,
                run: id.run,
                path: dir.join(&marker.file),
                format,
                records: marker.records,
                header: marker.header,
                query: marker.query,
            },
        ));
    }
    parts.sort_by(|(a, _), (b, _)| a.read_order(b));
    Ok(parts.into_iter().map(|(_, part)| part).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let checkpointed = PartId {
            run: None,
            epoch: 42,
            instance: 3,
        };
        assert_eq!(checkpointed.stem(), "0000000042-003");
        assert_eq!(
            checkpointed.part_name(FileFormat::Csv),
            "part-0000000042-003.csv"
        );
        assert_eq!(
            checkpointed.temp_name(FileFormat::JsonLines),
            ".part-0000000042-003.jsonl.tmp"
        );
        let run = PartId {
            run: Some("0001700000000000-77".into()),
            epoch: 1,
            instance: 1000,
        };
        assert_eq!(run.stem(), "0001700000000000-77-0000000001-1000");
        for id in [checkpointed, run] {
            assert_eq!(PartId::parse_stem(&id.stem()), Some(id.clone()));
            assert_eq!(
                Entry::parse(&id.part_name(FileFormat::JsonLines)),
                Some(Entry::Part(id.clone(), FileFormat::JsonLines))
            );
            assert_eq!(
                Entry::parse(&id.temp_name(FileFormat::Csv)),
                Some(Entry::TempPart(id.clone()))
            );
        }
        for foreign in [
            "",
            "x",
            "1-2-3",
            "a-1",
            "-1",
            "part-1-2.parquet",
            ".probe-000",
            "1--2",
        ] {
            assert_eq!(PartId::parse_stem(foreign), None, "{foreign}");
            assert_eq!(Entry::parse(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn run_ids_increase_within_a_process() {
        let ids: Vec<String> = (0..100).map(|_| new_run_id()).collect();
        let micros = |id: &String| id.split_once('-').unwrap().0.parse::<u64>().unwrap();
        assert!(ids.windows(2).all(|w| micros(&w[0]) < micros(&w[1])));
        assert!(ids[0].ends_with(&format!("-{}", std::process::id())));
    }

    #[test]
    fn read_order_is_run_then_epoch_then_instance() {
        let id = |run: Option<&str>, epoch, instance| PartId {
            run: run.map(str::to_string),
            epoch,
            instance,
        };
        let mut ids = [
            id(Some("0000000000000002-1"), 1, 0),
            id(Some("0000000000000001-9"), 2, 1),
            id(None, 10, 0),
            id(Some("0000000000000001-9"), 2, 0),
            id(None, 9, 1),
            id(None, 9, 0),
        ];
        ids.sort_by(PartId::read_order);
        let order: Vec<(Option<&str>, u64, usize)> = ids
            .iter()
            .map(|id| (id.run.as_deref(), id.epoch, id.instance))
            .collect();
        assert_eq!(
            order,
            [
                (None, 9, 0),
                (None, 9, 1),
                (None, 10, 0),
                (Some("0000000000000001-9"), 2, 0),
                (Some("0000000000000001-9"), 2, 1),
                (Some("0000000000000002-1"), 1, 0),
            ]
        );
    }
}
