//! The file sink, driven through the `Sink` trait the way the engine drives it: `open`
//! per instance, then per epoch `begin_epoch`, `write`s, `flush`es and `prepare_commit`,
//! whose commit runs later on another thread (the checkpoint coordinator's).
//!
//! * A crash after epochs 1 and 2 committed and epoch 3 was staged, then a restart that
//!   replays epoch 2 and runs epoch 3 again: every record is read back exactly once; the
//!   same with a commit that ran for one instance only.
//! * Whole queries: a continuous epoch the sink published but the query never recorded,
//!   run again as a micro-batch after a restart (written, not skipped); a query whose
//!   checkpoint directory was deleted, over its old output (`start` fails naming the
//!   output directory).
//! * Staged (uncommitted) output is never read back and is removed by the next `open`.
//! * CSV and JSON lines round trips for a struct and a tuple; complete output mode.
//! * Without checkpoints, every run's files carry a run id and nothing is skipped.
//! * Errors name their path: a regular file as the directory, a parent that cannot be
//!   created, an unwritable directory (skipped as root), a full disk (`/dev/full`), a
//!   file size limit (`ulimit -f`, in a child process).
//! * `write` allocates nothing per record.

mod common;

use rivulet::checkpoint::CheckpointConfig;
use rivulet::error::BoxError;
use rivulet::sink::file::{committed_parts, read_committed, FileSinkError};
use rivulet::sink::{EpochCommit, FileFormat, FileSink, Sink, SinkContext};
use rivulet::source::RateSource;
use rivulet::trigger::{EmitMode, ExecutionMode};
use rivulet::{Error, Query, Trigger};
use std::time::Duration;

/// Epochs as a micro-batch query runs them.
const MICRO_BATCH: EmitMode = EmitMode {
    execution: ExecutionMode::MicroBatch,
    output: OutputMode::Update,
};
use rivulet::{Epoch, OutputMode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Event {
    id: u64,
    user: String,
    page: Option<u32>,
}

fn event(id: u64) -> Event {
    Event {
        id,
        user: format!("user, \"{}\"", id % 7),
        page: (!id.is_multiple_of(3)).then_some(id as u32),
    }
}

/// The records instance `instance` of 2 gets in `epoch` (the same in every run, as in a
/// replay).
fn epoch_records(epoch: u64, instance: usize) -> Vec<Event> {
    (0..5)
        .map(|i| epoch * 100 + i * 2 + instance as u64)
        .map(event)
        .collect()
}

fn checkpointed(instance: usize, parallelism: usize, first_epoch: u64) -> SinkContext {
    SinkContext::new("events", instance, parallelism)
        .epochs(true)
        .checkpointed(true)
        .first_epoch(Epoch(first_epoch))
}

/// A restart's context that replays `first_epoch` with the records it had before (the
/// offset log held them).
fn replaying(instance: usize, parallelism: usize, first_epoch: u64) -> SinkContext {
    checkpointed(instance, parallelism, first_epoch).replayed_epoch(Epoch(first_epoch))
}

/// Opens one sink per instance, cloned from one, as the engine does.
fn open_all<T: Serialize + 'static>(
    sink: &FileSink<T>,
    contexts: impl IntoIterator<Item = SinkContext>,
) -> Vec<FileSink<T>> {
    contexts
        .into_iter()
        .map(|context| {
            let mut instance = sink.clone();
            instance.open(&context).unwrap();
            instance
        })
        .collect()
}

/// Runs `epoch` on every instance, with `records(instance)`; returns the commits.
fn run_epoch<T: Serialize + 'static>(
    sinks: &mut [FileSink<T>],
    epoch: u64,
    records: impl Fn(usize) -> Vec<T>,
) -> Vec<EpochCommit> {
    let mut commits = Vec::new();
    for (instance, sink) in sinks.iter_mut().enumerate() {
        sink.begin_epoch(Epoch(epoch), MICRO_BATCH).unwrap();
        for (i, record) in records(instance).into_iter().enumerate() {
            sink.write(record).unwrap();
            if i.is_multiple_of(2) {
                sink.flush().unwrap();
            }
        }
        sink.flush().unwrap();
        commits.extend(sink.prepare_commit(Epoch(epoch)).unwrap());
    }
    commits
}

/// Runs commits on another thread, as the checkpoint coordinator does.
fn commit_elsewhere(commits: Vec<EpochCommit>) {
    std::thread::spawn(move || {
        for commit in commits {
            commit().unwrap();
        }
    })
    .join()
    .unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn temp_files(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|name| name.ends_with(".tmp"))
        .collect()
}

fn sorted<T: Ord>(mut records: Vec<T>) -> Vec<T> {
    records.sort();
    records
}

fn all_records(epochs: std::ops::RangeInclusive<u64>) -> Vec<Event> {
    sorted(
        epochs
            .flat_map(|epoch| (0..2).flat_map(move |i| epoch_records(epoch, i)))
            .collect(),
    )
}

#[test]
fn a_replay_after_a_crash_writes_every_record_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::<Event>::new(dir.path().join("out"), FileFormat::Csv);
    let out = sink.dir().to_path_buf();

    // First run: epochs 1 and 2 commit; epoch 3 is staged, then the process "crashes"
    // before its commit runs.
    let mut sinks = open_all(&sink, (0..2).map(|i| checkpointed(i, 2, 1)));
    for epoch in 1..=2 {
        commit_elsewhere(run_epoch(&mut sinks, epoch, |i| epoch_records(epoch, i)));
    }
    let staged = run_epoch(&mut sinks, 3, |i| epoch_records(3, i));
    assert_eq!(staged.len(), 2);
    drop(staged);
    drop(sinks);
    assert_eq!(temp_files(&out).len(), 2, "epoch 3 is staged");
    assert_eq!(
        sorted(read_committed::<Event>(&out, FileFormat::Csv).unwrap()),
        all_records(1..=2)
    );

    // Restart from a checkpoint before epoch 2: epoch 2 is replayed with the same
    // records (the offset log had them), epoch 3 was never committed and is written,
    // then epoch 4 is new.
    let mut sinks = open_all(&sink, (0..2).map(|i| replaying(i, 2, 2)));
    assert!(
        temp_files(&out).is_empty(),
        "open removes the staged epoch 3"
    );
    let replayed = run_epoch(&mut sinks, 2, |i| epoch_records(2, i));
    assert!(
        replayed.is_empty(),
        "epoch 2 was committed: nothing to publish"
    );
    for epoch in 3..=4 {
        let commits = run_epoch(&mut sinks, epoch, |i| epoch_records(epoch, i));
        assert_eq!(commits.len(), 2, "epoch {epoch}");
        commit_elsewhere(commits);
    }
    for sink in &mut sinks {
        sink.close().unwrap();
    }

    let records: Vec<Event> = read_committed(&out, FileFormat::Csv).unwrap();
    assert_eq!(sorted(records.clone()), all_records(1..=4));
    // Read order: by epoch, then instance, records in the order written.
    let expected: Vec<Event> = (1..=4)
        .flat_map(|epoch| (0..2).flat_map(move |i| epoch_records(epoch, i)))
        .collect();
    assert_eq!(records, expected);
    assert!(temp_files(&out).is_empty());
    assert_eq!(names(&out.join("_commits")).len(), 8);
}

#[test]
fn a_commit_that_ran_for_one_instance_only_is_completed_by_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::<Event>::new(dir.path(), FileFormat::JsonLines);
    let mut sinks = open_all(&sink, (0..2).map(|i| checkpointed(i, 2, 1)));
    commit_elsewhere(run_epoch(&mut sinks, 1, |i| epoch_records(1, i)));
    let mut commits = run_epoch(&mut sinks, 2, |i| epoch_records(2, i));
    // The crash comes after instance 0's commit of epoch 2 and before instance 1's.
    commits.truncate(1);
    commit_elsewhere(commits);
    drop(sinks);

    let mut sinks = open_all(&sink, (0..2).map(|i| replaying(i, 2, 2)));
    let commits = run_epoch(&mut sinks, 2, |i| epoch_records(2, i));
    assert_eq!(commits.len(), 1, "only instance 1 publishes epoch 2 again");
    commit_elsewhere(commits);
    assert_eq!(
        sorted(read_committed::<Event>(dir.path(), FileFormat::JsonLines).unwrap()),
        all_records(1..=2)
    );
}

#[test]
fn staged_output_is_never_read_and_is_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::<Event>::new(dir.path(), FileFormat::Csv);
    let mut sinks = open_all(&sink, [checkpointed(0, 1, 1)]);
    let first = run_epoch(&mut sinks, 1, |_| epoch_records(1, 0));
    assert_eq!(temp_files(dir.path()), [".part-0000000001-000.csv.tmp"]);
    // Staged and fsynced, but not committed: invisible to readers.
    assert!(read_committed::<Event>(dir.path(), FileFormat::Csv)
        .unwrap()
        .is_empty());
    assert!(committed_parts(dir.path()).unwrap().is_empty());
    drop(first);
    // A run that died while writing epoch 2 (its buffer partly on disk).
    sinks[0].begin_epoch(Epoch(2), MICRO_BATCH).unwrap();
    for id in 0..10_000 {
        sinks[0].write(event(id)).unwrap();
    }
    drop(sinks);
    assert_eq!(temp_files(dir.path()).len(), 2);
    // Another instance's leftovers are its own business.
    let other = dir.path().join(".part-0000000002-001.csv.tmp");
    fs::write(&other, "half a reco").unwrap();

    let _reopened = open_all(&sink, [checkpointed(0, 2, 1)]);
    assert_eq!(temp_files(dir.path()), [".part-0000000002-001.csv.tmp"]);
    assert!(read_committed::<Event>(dir.path(), FileFormat::Csv)
        .unwrap()
        .is_empty());
}

/// Writes `records` through one instance in two epochs and reads them back.
fn round_trip<T>(format: FileFormat, records: Vec<T>) -> (Vec<T>, PathBuf, tempfile::TempDir)
where
    T: Serialize + DeserializeOwned + Clone + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::<T>::new(dir.path(), format);
    let mut sinks = open_all(&sink, [checkpointed(0, 1, 1)]);
    let half = records.len() / 2;
    commit_elsewhere(run_epoch(&mut sinks, 1, |_| records[..half].to_vec()));
    commit_elsewhere(run_epoch(&mut sinks, 2, |_| records[half..].to_vec()));
    let part = dir
        .path()
        .join(format!("part-0000000001-000.{}", format.extension()));
    (read_committed(dir.path(), format).unwrap(), part, dir)
}

fn check_round_trip<T>(format: FileFormat, records: Vec<T>, first_line: &str)
where
    T: Serialize + DeserializeOwned + Clone + PartialEq + Debug + 'static,
{
    let (back, part, _dir) = round_trip(format, records.clone());
    assert_eq!(back, records, "{format}");
    let text = fs::read_to_string(&part).unwrap();
    assert_eq!(text.lines().next(), Some(first_line), "{format}: {text}");
}

#[test]
fn csv_round_trips_structs_with_a_header_row() {
    let events: Vec<Event> = (0..50).map(event).collect();
    check_round_trip(FileFormat::Csv, events, "id,user,page");
}

#[test]
fn csv_round_trips_tuples_without_a_header_row() {
    let tuples: Vec<(String, u64, f64)> = (0..50)
        .map(|i| (format!("key\n{i}"), i, i as f64 / 4.0))
        .collect();
    check_round_trip(FileFormat::Csv, tuples, "\"key");
}

#[test]
fn json_lines_round_trip_structs_as_objects() {
    let events: Vec<Event> = (0..50).map(event).collect();
    check_round_trip(
        FileFormat::JsonLines,
        events,
        r#"{"id":0,"user":"user, \"0\"","page":null}"#,
    );
}

#[test]
fn json_lines_round_trip_tuples_as_arrays() {
    let tuples: Vec<(String, u64)> = (0..50).map(|i| (format!("k{i}"), i)).collect();
    check_round_trip(FileFormat::JsonLines, tuples, r#"["k0",0]"#);
}

#[test]
fn in_complete_mode_the_newest_epoch_is_the_whole_table() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::<(String, u64)>::new(dir.path(), FileFormat::Csv);
    let context = checkpointed(0, 1, 1).output_mode(OutputMode::Complete);
    let mut sinks = open_all(&sink, [context]);
    // The engine sends the whole table each epoch.
    let tables = [vec![("a", 1)], vec![("a", 2), ("b", 1)]];
    for (epoch, table) in (1..).zip(&tables) {
        let table: Vec<(String, u64)> = table.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        commit_elsewhere(run_epoch(&mut sinks, epoch, |_| table.clone()));
    }
    let parts = committed_parts(dir.path()).unwrap();
    let newest = parts.iter().map(|part| part.epoch).max().unwrap();
    let table: Vec<(String, u64)> = parts
        .iter()
        .filter(|part| part.epoch == newest)
        .flat_map(|part| part.read::<(String, u64)>().unwrap())
        .collect();
    assert_eq!(table, [("a".to_string(), 2), ("b".to_string(), 1)]);
}

#[test]
fn without_checkpoints_every_run_writes_its_own_files() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::<Event>::new(dir.path(), FileFormat::JsonLines);
    let plain = |instance| SinkContext::new("events", instance, 2);
    for _run in 0..2 {
        // Each run starts at epoch 1 again; records of one run are all committed at
        // the end (no epochs: the run is one epoch).
        let mut sinks = open_all(&sink, (0..2).map(plain));
        commit_elsewhere(run_epoch(&mut sinks, 1, |i| epoch_records(1, i)));
    }

    let parts = committed_parts(dir.path()).unwrap();
    assert_eq!(parts.len(), 4);
    let runs: Vec<&str> = parts
        .iter()
        .map(|part| part.run.as_deref().unwrap())
        .collect();
    assert_eq!(runs[0], runs[1], "the instances of one run share its id");
    assert_eq!(runs[2], runs[3]);
    assert_ne!(runs[0], runs[2]);
    assert!(runs[0] < runs[2], "runs are read in start order");
    let pid = std::process::id().to_string();
    for part in &parts {
        let name = part.path.file_name().unwrap().to_str().unwrap();
        let run = part.run.as_deref().unwrap();
        let (micros, run_pid) = run.split_once('-').unwrap();
        assert_eq!((micros.len(), run_pid), (16, pid.as_str()), "{run}");
        let expected = format!("part-{run}-0000000001-{:03}.jsonl", part.instance);
        assert_eq!(name, expected);
    }
    let records: Vec<Event> = read_committed(dir.path(), FileFormat::JsonLines).unwrap();
    let one_run: Vec<Event> = (0..2).flat_map(|i| epoch_records(1, i)).collect();
    assert_eq!(records, [one_run.clone(), one_run].concat());
}

// ---- whole queries ----

/// The ids a whole-query test writes, with a check column.
type Row = (u64, u64);

fn row(id: u64) -> Row {
    (id, id % 7)
}

/// A checkpointed query from a rate source of `ids` rows to `sink` (named `files`).
fn rate_query<K: Sink<Row> + Clone>(
    checkpoints: &Path,
    trigger: Trigger,
    ids: u64,
    sink: K,
) -> rivulet::Result<Query> {
    let mut query = Query::builder();
    query
        .checkpoint(CheckpointConfig::new(checkpoints))
        .trigger(trigger);
    query
        .source("numbers", RateSource::new(10_000).with_limit(ids))
        .map(|rate| row(rate.value))
        .sink("files", sink);
    query.start()
}

fn micro_batch() -> Trigger {
    Trigger::MicroBatch {
        interval: Duration::from_millis(2),
    }
}

/// Checks that the committed rows in `out` are ids `0..ids`, each exactly once; the
/// message names the first missing and duplicated ids.
fn assert_exactly_once(out: &Path, ids: u64) {
    let rows = read_committed::<Row>(out, FileFormat::Csv).unwrap();
    assert!(
        rows.iter().all(|&(id, check)| check == id % 7),
        "a damaged row"
    );
    let mut seen = vec![0u32; ids as usize];
    for &(id, _) in &rows {
        assert!(id < ids, "an id that was never produced: {id}");
        seen[id as usize] += 1;
    }
    let missing: Vec<usize> = (0..seen.len()).filter(|&id| seen[id] == 0).collect();
    let duplicated: Vec<usize> = (0..seen.len()).filter(|&id| seen[id] > 1).collect();
    assert!(
        missing.is_empty() && duplicated.is_empty(),
        "{} ids missing (first: {:?}), {} duplicated (first: {:?})",
        missing.len(),
        &missing[..missing.len().min(5)],
        duplicated.len(),
        &duplicated[..duplicated.len().min(5)],
    );
}

/// A file sink whose first commit with output from epoch `from` on publishes and then
/// fails: as if the query died after this sink's commit ran and before the query
/// recorded the commit (or another sink's commit failed after it). Every later epoch
/// has a failing commit even when empty, so none of them is a restore point: the
/// coordinator may still complete epochs while the failed query shuts down, and an epoch
/// without commits after an uncommitted one would be restored past it.
#[derive(Clone)]
struct PublishThenFail {
    inner: FileSink<Row>,
    from: u64,
    failed: bool,
}

impl Sink<Row> for PublishThenFail {
    fn open(&mut self, context: &SinkContext) -> Result<(), BoxError> {
        self.inner.open(context)
    }

    fn begin_epoch(&mut self, epoch: Epoch, mode: EmitMode) -> Result<(), BoxError> {
        self.inner.begin_epoch(epoch, mode)
    }

    fn write(&mut self, record: Row) -> Result<(), BoxError> {
        self.inner.write(record)
    }

    fn prepare_commit(&mut self, epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        let commit = self.inner.prepare_commit(epoch)?;
        if epoch.0 < self.from || (commit.is_none() && !self.failed) {
            return Ok(commit);
        }
        self.failed = true;
        Ok(Some(Box::new(move || {
            if let Some(commit) = commit {
                commit()?;
            }
            Err("the query died before recording this commit".into())
        })))
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.inner.close()
    }
}

#[test]
fn a_continuous_epoch_published_but_not_recorded_is_rewritten_by_a_micro_batch_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (checkpoints, out) = (dir.path().join("checkpoints"), dir.path().join("out"));
    let ids = 3_000;
    let continuous = Trigger::Continuous {
        checkpoint_interval: Duration::from_millis(5),
    };
    let failing = PublishThenFail {
        inner: FileSink::new(&out, FileFormat::Csv),
        from: 2,
        failed: false,
    };
    let first = rate_query(&checkpoints, continuous, ids, failing).unwrap();
    let failed = common::finish(&first, "continuous run");
    assert!(failed.is_err(), "the first run must fail at its commit");
    drop(first);
    let report = rivulet::checkpoint::recovery::inspect(&checkpoints).unwrap();
    let restored = report.newest_restorable().map(|entry| entry.epoch);
    let published: Vec<Epoch> = committed_parts(&out)
        .unwrap()
        .iter()
        .map(|part| part.epoch)
        .collect();
    assert!(
        published.iter().any(|&epoch| Some(epoch.0) > restored),
        "the sink published an epoch the query did not record: {published:?}, restored {restored:?}"
    );

    // The restart runs micro-batches: the epoch after the restored one is planned
    // afresh (no offset entry), so it is not a replay and must be written.
    let second = rate_query(
        &checkpoints,
        micro_batch(),
        ids,
        FileSink::new(&out, FileFormat::Csv),
    )
    .unwrap();
    common::finish_ok(&second, "micro-batch restart");
    assert_exactly_once(&out, ids);
}

#[test]
fn a_new_checkpoint_directory_over_old_output_fails_start_naming_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (checkpoints, out) = (dir.path().join("checkpoints"), dir.path().join("out"));
    let ids = 500;
    let files = || FileSink::new(&out, FileFormat::Csv);
    let first = rate_query(&checkpoints, micro_batch(), ids, files()).unwrap();
    common::finish_ok(&first, "first run");
    drop(first);
    assert_exactly_once(&out, ids);
    // The commit records carry the query id that the checkpoint log keeps.
    let query_id = || {
        let report = rivulet::checkpoint::recovery::inspect(&checkpoints).unwrap();
        report.meta.and_then(|meta| meta.query_id)
    };
    let id = query_id().expect("the checkpoint log names the query");
    assert!(committed_parts(&out)
        .unwrap()
        .iter()
        .all(|part| part.query.as_ref() == Some(&id)));

    // The same query restarted from its checkpoint replays nothing, writes nothing twice.
    let again = rate_query(&checkpoints, micro_batch(), ids, files()).unwrap();
    common::finish_ok(&again, "restart");
    drop(again);
    assert_exactly_once(&out, ids);
    assert_eq!(query_id(), Some(id), "a restart keeps the query id");

    // Without its checkpoint, the query is a new one: its batches 1, 2, ... are not the
    // old ones, and skipping them as "already committed" would lose them silently.
    fs::remove_dir_all(&checkpoints).unwrap();
    match rate_query(&checkpoints, micro_batch(), ids, files()) {
        Err(Error::Config(message)) => {
            assert!(message.contains(&out.display().to_string()), "{message}");
            assert!(message.contains("another query"), "{message}");
        }
        other => panic!(
            "expected start to refuse the directory, got {:?}",
            other.map(|_| ())
        ),
    }
    assert_exactly_once(&out, ids);
}

// ---- errors ----

fn open_error(path: &Path) -> String {
    let mut sink = FileSink::<Event>::new(path, FileFormat::Csv);
    sink.open(&checkpointed(0, 1, 1))
        .expect_err("open should fail")
        .to_string()
}

#[test]
fn open_refuses_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results.csv");
    fs::write(&file, "id\n").unwrap();
    let message = open_error(&file);
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("not a directory"), "{message}");
}

#[test]
fn open_fails_when_the_parent_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    fs::write(&file, "").unwrap();
    // Not a permission check: a file in the way fails for root too.
    let below = file.join("out");
    let message = open_error(&below);
    assert!(message.contains("cannot create directory"), "{message}");
    assert!(message.contains(&below.display().to_string()), "{message}");
}

#[cfg(unix)]
#[test]
fn open_fails_on_an_unwritable_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
    if fs::write(locked.join("probe"), "").is_ok() {
        // Running as root: permissions are not enforced, nothing to test here.
        eprintln!("skipped: permissions are not enforced for this user (root?)");
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
        return;
    }
    let message = open_error(&locked);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(message.contains("cannot write into directory"), "{message}");
    assert!(message.contains(&locked.display().to_string()), "{message}");
}

/// Writes records until the sink fails (at a write or at `prepare_commit`); the error.
fn fill_until_error(sink: &mut FileSink<Event>, epoch: u64) -> BoxError {
    sink.begin_epoch(Epoch(epoch), MICRO_BATCH).unwrap();
    for id in 0..100_000 {
        if let Err(error) = sink.write(event(id)) {
            return error;
        }
    }
    match sink.prepare_commit(Epoch(epoch)) {
        Err(error) => error,
        Ok(_) => panic!("100 000 records went through a disk that is full"),
    }
}

fn io_kind(error: &BoxError) -> Option<io::ErrorKind> {
    match error.downcast_ref::<FileSinkError>() {
        Some(FileSinkError::Io { source, .. }) => Some(source.kind()),
        _ => None,
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_fails_the_write_and_names_the_file() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::<Event>::new(dir.path(), FileFormat::JsonLines);
    sink.open(&checkpointed(0, 1, 1)).unwrap();
    // The epoch's temporary file is a disk with no room left.
    let temp = dir.path().join(".part-0000000001-000.jsonl.tmp");
    std::os::unix::fs::symlink("/dev/full", &temp).unwrap();
    let error = fill_until_error(&mut sink, 1);
    assert_eq!(io_kind(&error), Some(io::ErrorKind::StorageFull), "{error}");
    let message = error.to_string();
    assert!(message.contains(&temp.display().to_string()), "{message}");
}

/// Set in the child process of the file size limit test: the directory to write into.
const FSIZE_CHILD: &str = "RIVULET_FILE_SINK_FSIZE_CHILD";

#[cfg(unix)]
#[test]
fn a_file_size_limit_fails_the_write_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // `trap '' XFSZ`: an ignored signal stays ignored across exec, so exceeding the limit
    // makes `write` fail with EFBIG instead of killing the process.
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ && ulimit -f 64 && exec "$0" "$@""#)
        .arg(&exe)
        .args([
            "--exact",
            "file_size_limit_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FSIZE_CHILD, dir.path())
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) => {
            eprintln!("skipped: cannot run sh: {error}");
            return;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "child failed: {text}");
    assert!(
        text.contains("file size limit: error as expected"),
        "{text}"
    );
}

/// Runs in the child process of the test above (does nothing in a normal test run).
#[test]
fn file_size_limit_child() {
    let Some(dir) = std::env::var_os(FSIZE_CHILD) else {
        return;
    };
    let mut sink = FileSink::<Event>::new(&dir, FileFormat::Csv);
    sink.open(&checkpointed(0, 1, 1)).unwrap();
    let error = fill_until_error(&mut sink, 1);
    assert_eq!(
        io_kind(&error),
        Some(io::ErrorKind::FileTooLarge),
        "{error}"
    );
    let temp = Path::new(&dir).join(".part-0000000001-000.csv.tmp");
    let message = error.to_string();
    assert!(message.contains(&temp.display().to_string()), "{message}");
    println!("file size limit: error as expected: {message}");
}

// ---- the hot path ----

mod counting {
    //! A global allocator that counts allocations made by the current thread.

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    pub(super) struct Counting;

    fn count() {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }

    /// Allocations made by this thread so far.
    pub(super) fn allocations() -> u64 {
        ALLOCATIONS.with(Cell::get)
    }

    // SAFETY: every call is forwarded unchanged to the system allocator; counting
    // touches only a const-initialised thread-local `Cell`, which never allocates.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: as for `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            // SAFETY: the caller upholds `realloc`'s contract, passed on as is.
            unsafe { System.realloc(ptr, layout, new_size) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller upholds `dealloc`'s contract, passed on as is.
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

#[test]
fn write_allocates_nothing_per_record() {
    for format in [FileFormat::Csv, FileFormat::JsonLines] {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = FileSink::<Event>::new(dir.path(), format);
        sink.open(&checkpointed(0, 1, 1)).unwrap();
        sink.begin_epoch(Epoch(1), MICRO_BATCH).unwrap();
        // The first record creates the file and the encoder.
        sink.write(event(0)).unwrap();
        // Enough records to spill the encoder's buffer many times.
        let records: Vec<Event> = (1..20_000).map(event).collect();
        let before = counting::allocations();
        for record in records {
            sink.write(record).unwrap();
            sink.flush().unwrap();
        }
        let allocations = counting::allocations() - before;
        assert_eq!(allocations, 0, "{format}: allocations while writing");
        let commit = sink.prepare_commit(Epoch(1)).unwrap().unwrap();
        commit().unwrap();
        assert_eq!(
            read_committed::<Event>(dir.path(), format).unwrap().len(),
            20_000
        );
    }
}
