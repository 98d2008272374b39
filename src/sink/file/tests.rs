//! Unit tests: the encoders over in-memory and failing writers, and the sink's epoch
//! cycle driven by hand.

use super::commit_log::CommitMarker;
use super::format::{read_records, EncodeError, RecordWriter};
use super::sink::encode_error;
use super::*;
use crate::error::BoxError;
use crate::event::Epoch;
use crate::sink::{Sink, SinkContext};
use crate::trigger::EmitMode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    name: String,
    count: u64,
    score: Option<f64>,
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "plain".into(),
            count: 1,
            score: Some(0.5),
        },
        Row {
            name: "comma, \"quote\"\nand newline".into(),
            count: u64::MAX,
            score: None,
        },
        Row {
            name: String::new(),
            count: 0,
            score: Some(-1e300),
        },
    ]
}

/// Encodes `records` into memory and decodes them back.
fn round_trip<T: Serialize + DeserializeOwned>(
    format: FileFormat,
    records: &[T],
) -> (Vec<T>, String) {
    let mut writer = RecordWriter::new(format, Vec::new());
    for record in records {
        writer.write(record).unwrap();
    }
    let finished = writer.finish().unwrap();
    assert_eq!(finished.records, records.len() as u64);
    let text = String::from_utf8(finished.inner.clone()).unwrap();
    let mut back = Vec::new();
    read_records(
        finished.inner.as_slice(),
        format,
        finished.header,
        &mut back,
    )
    .unwrap();
    (back, text)
}

#[test]
fn csv_structs_get_a_header_row_and_round_trip() {
    let (back, text) = round_trip(FileFormat::Csv, &rows());
    assert_eq!(back, rows());
    assert!(
        text.starts_with("name,count,score\nplain,1,0.5\n"),
        "{text}"
    );
}

#[test]
fn csv_tuples_and_scalars_have_no_header_and_round_trip() {
    let tuples = vec![(1u32, "a,b".to_string(), true), (2, String::new(), false)];
    let (back, text) = round_trip(FileFormat::Csv, &tuples);
    assert_eq!(back, tuples);
    assert!(text.starts_with("1,\"a,b\",true\n"), "{text}");
    let scalars = vec![-3i64, 0, 7];
    let (back, text) = round_trip(FileFormat::Csv, &scalars);
    assert_eq!(back, scalars);
    assert_eq!(text, "-3\n0\n7\n");
}

#[test]
fn json_lines_round_trip_one_value_per_line() {
    let (back, text) = round_trip(FileFormat::JsonLines, &rows());
    assert_eq!(back, rows());
    assert_eq!(text.lines().count(), 3);
    assert!(text.starts_with("{\"name\":\"plain\",\"count\":1,\"score\":0.5}\n"));
    let tuples = vec![(1u8, 'x'), (2, 'y')];
    let (back, text) = round_trip(FileFormat::JsonLines, &tuples);
    assert_eq!(back, tuples);
    assert_eq!(text, "[1,\"x\"]\n[2,\"y\"]\n");
}

#[test]
fn an_empty_writer_writes_nothing() {
    for format in [FileFormat::Csv, FileFormat::JsonLines] {
        let finished = RecordWriter::new(format, Vec::new()).finish().unwrap();
        assert!(finished.inner.is_empty());
        assert_eq!(finished.records, 0);
    }
}

#[test]
fn csv_refuses_what_it_cannot_encode() {
    let mut map = BTreeMap::new();
    map.insert(1u32, 2u32);
    let mut writer = RecordWriter::new(FileFormat::Csv, Vec::new());
    match writer.write(&(1u32, map)) {
        Err(EncodeError::Format(error)) => assert!(error.to_string().contains("map"), "{error}"),
        other => panic!("expected a format error, got {other:?}"),
    }
}

/// A disk with `room` bytes left: then every write fails with `StorageFull`.
struct FullDisk {
    room: usize,
    written: usize,
}

impl Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.room - self.written);
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::StorageFull.into());
        }
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn expect_storage_full(result: Result<(), EncodeError>, what: &str) {
    match result {
        Err(EncodeError::Io(error)) => {
            assert_eq!(error.kind(), io::ErrorKind::StorageFull, "{what}")
        }
        Err(EncodeError::Format(error)) => panic!("{what}: a format error: {error}"),
        Ok(()) => panic!("{what}: the full disk went unnoticed"),
    }
}

#[test]
fn a_full_disk_fails_writes_once_the_buffer_spills() {
    for format in [FileFormat::Csv, FileFormat::JsonLines] {
        let mut writer = RecordWriter::new(
            format,
            FullDisk {
                room: 1000,
                written: 0,
            },
        );
        let record = rows().remove(0);
        let failed = (0..1_000_000).find_map(|_| writer.write(&record).err());
        expect_storage_full(failed.map_or(Ok(()), Err), &format!("{format} write"));
    }
}

#[test]
fn a_full_disk_fails_the_final_flush() {
    for format in [FileFormat::Csv, FileFormat::JsonLines] {
        let mut writer = RecordWriter::new(
            format,
            FullDisk {
                room: 4,
                written: 0,
            },
        );
        // Small enough to stay in the buffer: the error shows when it is written out.
        writer.write(&rows()[0]).unwrap();
        expect_storage_full(writer.finish().map(drop), &format!("{format} finish"));
    }
}

#[test]
fn encode_errors_name_the_file() {
    let path = Path::new("/data/out/.part-0000000001-000.csv.tmp");
    let full = encode_error(EncodeError::Io(io::ErrorKind::StorageFull.into()), path);
    let message = full.to_string();
    assert!(
        message.contains(".part-0000000001-000.csv.tmp"),
        "{message}"
    );
    assert!(
        matches!(&full, FileSinkError::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull)
    );
    let bad = encode_error(EncodeError::Format("no maps".into()), path).to_string();
    assert!(
        bad.contains("/data/out/") && bad.contains("no maps"),
        "{bad}"
    );
}

// ---- the sink, driven by hand ----

fn context(instance: usize) -> SinkContext {
    SinkContext::new("files", instance, 4)
        .epochs(true)
        .checkpointed(true)
}

/// Starts a micro-batch epoch (the mode does not decide what is skipped: the context's
/// replayed epoch does).
fn begin(sink: &mut FileSink<Row>, epoch: u64) {
    let mode = EmitMode {
        execution: crate::trigger::ExecutionMode::MicroBatch,
        ..EmitMode::default()
    };
    sink.begin_epoch(Epoch(epoch), mode).unwrap();
}

/// Runs one epoch with `records` and its commit.
fn run_epoch(sink: &mut FileSink<Row>, epoch: u64, records: &[Row]) {
    begin(sink, epoch);
    for record in records {
        sink.write(record.clone()).unwrap();
    }
    if let Some(commit) = sink.prepare_commit(Epoch(epoch)).unwrap() {
        commit().unwrap();
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn an_empty_epoch_writes_nothing_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
    sink.open(&context(0)).unwrap();
    begin(&mut sink, 1);
    sink.flush().unwrap();
    assert!(sink.prepare_commit(Epoch(1)).unwrap().is_none());
    assert_eq!(names(dir.path()), ["_commits"]);
    assert!(names(&dir.path().join("_commits")).is_empty());
}

#[test]
fn the_commit_runs_on_another_thread_and_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::JsonLines);
    sink.open(&context(2)).unwrap();
    begin(&mut sink, 7);
    for row in rows() {
        sink.write(row).unwrap();
    }
    let commit = sink.prepare_commit(Epoch(7)).unwrap().unwrap();
    assert_eq!(
        names(dir.path()),
        [".part-0000000007-002.jsonl.tmp", "_commits"]
    );
    begin(&mut sink, 8);
    std::thread::spawn(commit).join().unwrap().unwrap();
    assert_eq!(names(dir.path()), ["_commits", "part-0000000007-002.jsonl"]);
    assert_eq!(names(&dir.path().join("_commits")), ["0000000007-002"]);
    let parts = committed_parts(dir.path()).unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(
        (parts[0].epoch, parts[0].instance, parts[0].records),
        (Epoch(7), 2, 3)
    );
    assert_eq!(parts[0].run, None);
    assert_eq!(parts[0].read::<Row>().unwrap(), rows());
}

#[test]
fn records_before_begin_epoch_belong_to_the_first_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
    sink.open(&context(0).first_epoch(Epoch(5))).unwrap();
    sink.write(rows()[0].clone()).unwrap();
    sink.prepare_commit(Epoch(5)).unwrap().unwrap()().unwrap();
    assert_eq!(committed_parts(dir.path()).unwrap()[0].epoch, Epoch(5));
}

#[test]
fn calls_out_of_order_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
    let protocol = |result: Result<(), BoxError>, what: &str| {
        let error = result.expect_err(what);
        assert!(
            matches!(error.downcast_ref(), Some(FileSinkError::Protocol { .. })),
            "{what}: {error}"
        );
    };
    protocol(sink.write(rows()[0].clone()), "write before open");
    protocol(
        sink.begin_epoch(Epoch(1), EmitMode::default()),
        "begin before open",
    );
    sink.open(&context(0)).unwrap();
    begin(&mut sink, 1);
    sink.write(rows()[0].clone()).unwrap();
    protocol(
        sink.begin_epoch(Epoch(2), EmitMode::default()),
        "begin with unprepared records",
    );
    protocol(
        sink.prepare_commit(Epoch(2)).map(drop),
        "prepare another epoch",
    );
    begin(&mut sink, 3);
    assert!(sink.prepare_commit(Epoch(3)).unwrap().is_none());
    protocol(sink.write(rows()[0].clone()), "write after prepare");
    // A second prepare of the same epoch has nothing more to publish.
    assert!(sink.prepare_commit(Epoch(3)).unwrap().is_none());
}

#[test]
fn a_replayed_epoch_is_dropped_and_later_ones_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
    sink.open(&context(1)).unwrap();
    run_epoch(&mut sink, 1, &rows()[..1]);
    run_epoch(&mut sink, 2, &rows()[1..2]);
    drop(sink);

    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
    sink.open(&context(1).first_epoch(Epoch(2)).replayed_epoch(Epoch(2)))
        .unwrap();
    begin(&mut sink, 2);
    sink.write(rows()[1].clone()).unwrap();
    assert!(sink.prepare_commit(Epoch(2)).unwrap().is_none(), "a replay");
    assert!(!names(dir.path()).iter().any(|name| name.ends_with(".tmp")));
    run_epoch(&mut sink, 3, &rows()[2..]);
    assert_eq!(
        read_committed::<Row>(dir.path(), FileFormat::Csv).unwrap(),
        rows()
    );
}

#[test]
fn without_checkpoints_committed_epochs_are_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let plain = SinkContext::new("files", 0, 1);
    for _run in 0..2 {
        let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
        sink.open(&plain).unwrap();
        run_epoch(&mut sink, 1, &rows());
    }
    let parts = committed_parts(dir.path()).unwrap();
    assert_eq!(parts.len(), 2);
    assert!(parts
        .iter()
        .all(|part| part.epoch == Epoch(1) && part.run.is_some()));
    assert_ne!(parts[0].run, parts[1].run);
    assert_eq!(
        read_committed::<Row>(dir.path(), FileFormat::Csv)
            .unwrap()
            .len(),
        6
    );
}

#[test]
fn clones_opened_for_one_run_share_its_run_id() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
    let run = |instance: usize| sink.run_id(instance);
    let (a0, a1, a2) = (run(0), run(1), run(2));
    assert!(a0 == a1 && a1 == a2);
    // Instance 0 opened again: a new run.
    let (b0, b1) = (run(0), run(1));
    assert_eq!(b0, b1);
    assert_ne!(a0, b0);
}

#[test]
fn open_removes_only_this_instances_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let commits = dir.path().join("_commits");
    fs::create_dir_all(&commits).unwrap();
    let leftovers = [
        ".part-0000000003-000.csv.tmp",
        ".part-0000000001234567-42-0000000001-000.jsonl.tmp",
        "part-0000000004-000.csv",
    ];
    let kept = [
        ".part-0000000003-001.csv.tmp",
        "part-0000000002-000.csv",
        "notes.txt",
        ".part-weird.tmp",
    ];
    for name in leftovers.iter().chain(&kept) {
        fs::write(dir.path().join(name), "x\n").unwrap();
    }
    fs::write(commits.join(".0000000004-000.tmp"), "{").unwrap();
    fs::write(commits.join(".0000000004-001.tmp"), "{").unwrap();
    let marker = CommitMarker {
        file: "part-0000000002-000.csv".into(),
        records: 1,
        epoch: 2,
        instance: 0,
        run: None,
        header: false,
        query: None,
    };
    fs::write(
        commits.join("0000000002-000"),
        serde_json::to_vec(&marker).unwrap(),
    )
    .unwrap();

    // Restored from epoch 2, whose commit stays; epochs from 3 on run again.
    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
    sink.open(&context(0).first_epoch(Epoch(3))).unwrap();
    let mut expected: Vec<&str> = kept.iter().copied().chain(["_commits"]).collect();
    expected.sort();
    assert_eq!(names(dir.path()), expected);
    assert_eq!(names(&commits), [".0000000004-001.tmp", "0000000002-000"]);
}

#[test]
fn close_abandons_an_unprepared_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::JsonLines);
    sink.open(&context(0)).unwrap();
    begin(&mut sink, 1);
    sink.write(rows()[0].clone()).unwrap();
    sink.close().unwrap();
    assert!(committed_parts(dir.path()).unwrap().is_empty());
    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::JsonLines);
    sink.open(&context(0)).unwrap();
    assert_eq!(names(dir.path()), ["_commits"]);
}

#[test]
fn reading_checks_markers_against_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
    sink.open(&context(0)).unwrap();
    run_epoch(&mut sink, 1, &rows());

    let wrong_format = read_committed::<Row>(dir.path(), FileFormat::JsonLines).unwrap_err();
    assert!(
        matches!(wrong_format, FileSinkError::Decode { .. }),
        "{wrong_format}"
    );
    let wrong_type = read_committed::<(u8, u8)>(dir.path(), FileFormat::Csv).unwrap_err();
    assert!(
        matches!(wrong_type, FileSinkError::Decode { .. }),
        "{wrong_type}"
    );

    let part = dir.path().join("part-0000000001-000.csv");
    let mut text = fs::read_to_string(&part).unwrap();
    text.push_str("extra,1,\n");
    fs::write(&part, text).unwrap();
    let error = read_committed::<Row>(dir.path(), FileFormat::Csv).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("holds 4 records, its commit marker says 3"),
        "{error}"
    );

    let marker = dir.path().join("_commits/0000000001-000");
    fs::write(&marker, "not json").unwrap();
    let error = committed_parts(dir.path()).unwrap_err();
    assert!(
        matches!(error, FileSinkError::Corrupt { ref path, .. } if *path == marker),
        "{error}"
    );

    let mut other = marker_for("part-0000000009-000.csv");
    other.records = 0;
    fs::write(&marker, serde_json::to_vec(&other).unwrap()).unwrap();
    let error = committed_parts(dir.path()).unwrap_err().to_string();
    assert!(error.contains("which is not its part file"), "{error}");
}

fn marker_for(file: &str) -> CommitMarker {
    CommitMarker {
        file: file.into(),
        records: 0,
        epoch: 0,
        instance: 0,
        run: None,
        header: false,
        query: None,
    }
}

#[test]
fn a_regular_file_is_not_a_sink_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("taken");
    fs::write(&file, "x").unwrap();
    let mut sink = FileSink::<Row>::new(&file, FileFormat::Csv);
    let error = sink.open(&context(0)).unwrap_err();
    assert!(
        matches!(error.downcast_ref(), Some(FileSinkError::NotADirectory { path }) if *path == file),
        "{error}"
    );
    // `_commits` taken by a file is refused the same way.
    let dir2 = dir.path().join("sink");
    fs::create_dir(&dir2).unwrap();
    fs::write(dir2.join("_commits"), "x").unwrap();
    let error = FileSink::<Row>::new(&dir2, FileFormat::Csv)
        .open(&context(0))
        .unwrap_err()
        .to_string();
    assert!(error.contains("_commits"), "{error}");
}

#[test]
fn the_sink_is_send_clone_and_static() {
    fn assert_sink<S: Sink<Row> + Clone + Send + 'static>() {}
    assert_sink::<FileSink<Row>>();
    // `T` need not be `Send` or `Sync` for the sink to be.
    fn assert_send<S: Send + Sync>() {}
    assert_send::<FileSink<std::rc::Rc<u8>>>();
}

#[test]
fn a_replayed_continuous_epoch_is_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
    sink.open(&context(1)).unwrap();
    run_epoch(&mut sink, 1, &rows()[..1]);
    run_epoch(&mut sink, 2, &rows()[1..2]);
    drop(sink);

    // A continuous epoch replayed after a crash may hold other records than before
    // (unaligned markers): its output replaces the earlier commit.
    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
    sink.open(&context(1).first_epoch(Epoch(2))).unwrap();
    sink.begin_epoch(Epoch(2), EmitMode::default()).unwrap();
    for row in &rows()[1..] {
        sink.write(row.clone()).unwrap();
    }
    let commit = sink
        .prepare_commit(Epoch(2))
        .unwrap()
        .expect("written again");
    commit().unwrap();
    assert_eq!(
        read_committed::<Row>(dir.path(), FileFormat::Csv).unwrap(),
        rows()
    );
}

// ---- which epochs are replays: only the context's replayed epoch ----

/// A checkpointed context of query `query`, instance 0 of 1, starting at `first_epoch`.
fn query_context(query: &str, first_epoch: u64) -> SinkContext {
    SinkContext::new("files", 0, 1)
        .epochs(true)
        .checkpointed(true)
        .query_id(query)
        .first_epoch(Epoch(first_epoch))
}

/// Opens a sink on `dir` with `context`, as a new run of the query does.
fn reopen(dir: &Path, context: &SinkContext) -> FileSink<Row> {
    let mut sink = FileSink::<Row>::new(dir, FileFormat::Csv);
    sink.open(context).unwrap();
    sink
}

/// Runs epochs `1..` of a first run of query `query`, one per entry of `batches`.
fn first_run(dir: &Path, query: &str, batches: &[&[Row]]) {
    let mut sink = reopen(dir, &query_context(query, 1));
    for (epoch, batch) in (1..).zip(batches) {
        run_epoch(&mut sink, epoch, batch);
    }
}

#[test]
fn an_epoch_that_is_not_the_replay_is_written_over_an_old_commit() {
    // Scenario: a continuous run published epoch 2 here, but the query's commit of
    // epoch 2 was never recorded. The restart runs in micro-batches; there is no offset
    // entry for epoch 2, so it is planned afresh from epoch 1's offsets and holds more
    // records than before. It is not a replay: its records must all be written.
    let dir = tempfile::tempdir().unwrap();
    let rows = rows();
    first_run(dir.path(), "q", &[&rows[..1], &rows[1..2]]);
    let mut sink = reopen(dir.path(), &query_context("q", 2));
    run_epoch(&mut sink, 2, &rows[1..]);
    assert_eq!(
        read_committed::<Row>(dir.path(), FileFormat::Csv).unwrap(),
        rows
    );
}

#[test]
fn a_smaller_batch_under_an_old_epoch_number_duplicates_nothing() {
    // As above, but the new epoch 2 is smaller than the old one: what the old epoch 2
    // held beyond it comes again in epoch 3, and must not be read twice.
    let dir = tempfile::tempdir().unwrap();
    let rows = rows();
    first_run(dir.path(), "q", &[&rows[..1], &rows[1..]]);
    let mut sink = reopen(dir.path(), &query_context("q", 2));
    run_epoch(&mut sink, 2, &rows[1..2]);
    run_epoch(&mut sink, 3, &rows[2..]);
    assert_eq!(
        read_committed::<Row>(dir.path(), FileFormat::Csv).unwrap(),
        rows
    );
}

#[test]
fn only_the_replayed_epoch_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let rows = rows();
    first_run(dir.path(), "q", &[&rows[..1], &rows[1..2], &rows[..1]]);
    // Epoch 2 is replayed with its logged records: skipped. The old epoch 3 was never
    // committed by the query; its new records replace it.
    let mut sink = reopen(dir.path(), &query_context("q", 2).replayed_epoch(Epoch(2)));
    begin(&mut sink, 2);
    sink.write(rows[1].clone()).unwrap();
    assert!(sink.prepare_commit(Epoch(2)).unwrap().is_none(), "a replay");
    run_epoch(&mut sink, 3, &rows[2..]);
    assert_eq!(
        read_committed::<Row>(dir.path(), FileFormat::Csv).unwrap(),
        rows
    );
}

#[test]
fn a_replay_without_an_earlier_commit_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let rows = rows();
    first_run(dir.path(), "q", &[&rows[..1]]);
    let mut sink = reopen(dir.path(), &query_context("q", 2).replayed_epoch(Epoch(2)));
    run_epoch(&mut sink, 2, &rows[1..]);
    assert_eq!(
        read_committed::<Row>(dir.path(), FileFormat::Csv).unwrap(),
        rows
    );
}

#[test]
fn an_empty_rerun_removes_the_earlier_commit() {
    // A continuous epoch run again after a crash may come out empty for an instance
    // (its records went to another epoch): the old part file must not stay published.
    let dir = tempfile::tempdir().unwrap();
    let rows = rows();
    first_run(dir.path(), "q", &[&rows[..1], &rows[1..2]]);
    let mut sink = reopen(dir.path(), &query_context("q", 2));
    sink.begin_epoch(Epoch(2), EmitMode::default()).unwrap();
    assert!(sink.prepare_commit(Epoch(2)).unwrap().is_none());
    sink.begin_epoch(Epoch(3), EmitMode::default()).unwrap();
    for row in &rows[1..] {
        sink.write(row.clone()).unwrap();
    }
    sink.prepare_commit(Epoch(3)).unwrap().unwrap()().unwrap();
    assert_eq!(
        read_committed::<Row>(dir.path(), FileFormat::Csv).unwrap(),
        rows
    );
}

#[test]
fn open_retires_stale_commits_so_a_crash_leaves_the_log_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let rows = rows();
    first_run(dir.path(), "q", &[&rows[..1], &rows[1..2], &rows[2..]]);
    // The restart restores epoch 1: the commits of epochs 2 and 3 go (marker first, then
    // the part file) before anything is written, and it crashes right after `open`.
    drop(reopen(dir.path(), &query_context("q", 2)));
    assert_eq!(names(&dir.path().join("_commits")), ["0000000001-000"]);
    assert_eq!(names(dir.path()), ["_commits", "part-0000000001-000.csv"]);
    assert_eq!(
        read_committed::<Row>(dir.path(), FileFormat::Csv).unwrap(),
        rows[..1]
    );
    // A marker removed by a run that died before it removed the part file: the next
    // `open` removes the part file.
    fs::write(
        dir.path().join("part-0000000002-000.csv"),
        "name,count,score\n",
    )
    .unwrap();
    let mut sink = reopen(dir.path(), &query_context("q", 2));
    assert_eq!(names(dir.path()), ["_commits", "part-0000000001-000.csv"]);
    run_epoch(&mut sink, 2, &rows[1..]);
    assert_eq!(
        read_committed::<Row>(dir.path(), FileFormat::Csv).unwrap(),
        rows
    );
}

#[test]
fn commit_records_name_their_query() {
    let dir = tempfile::tempdir().unwrap();
    first_run(dir.path(), "query-a", &[&rows()]);
    let parts = committed_parts(dir.path()).unwrap();
    assert_eq!(parts[0].query.as_deref(), Some("query-a"));
}

fn expect_foreign(result: Result<(), BoxError>, dir: &Path) {
    let error = result.expect_err("output of another query must be refused");
    assert!(
        matches!(error.downcast_ref(), Some(FileSinkError::ForeignOutput { path, .. }) if path == dir),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains(&dir.display().to_string()), "{message}");
    assert!(message.contains("query-a"), "{message}");
}

#[test]
fn output_of_another_query_is_refused_not_skipped() {
    // The checkpoint directory was deleted (or another query points at this output):
    // the new query's epochs 1 and 2 are other records than the old ones, and writing
    // them would replace the old query's files. `open` refuses, and removes nothing.
    let dir = tempfile::tempdir().unwrap();
    let rows = rows();
    first_run(dir.path(), "query-a", &[&rows[..1], &rows[1..]]);
    let before = names(dir.path());
    for first_epoch in [1, 2, 5] {
        let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
        expect_foreign(
            sink.open(&query_context("query-b", first_epoch)),
            dir.path(),
        );
        // Nothing can be written through a sink that failed to open.
        assert!(sink.write(rows[0].clone()).is_err());
    }
    // A context without a query id is not query-a either.
    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
    expect_foreign(sink.open(&context(0)), dir.path());
    assert_eq!(names(dir.path()), before);
    assert_eq!(
        read_committed::<Row>(dir.path(), FileFormat::Csv).unwrap(),
        rows
    );
}

#[test]
fn records_without_a_query_id_belong_only_to_a_restored_query() {
    // Commit records written before they carried a query id: a query restored from its
    // checkpoint takes them for its own; a query starting afresh cannot know whose
    // they are and refuses them.
    let dir = tempfile::tempdir().unwrap();
    let commits = dir.path().join("_commits");
    fs::create_dir_all(&commits).unwrap();
    fs::write(
        dir.path().join("part-0000000001-000.csv"),
        "name,count,score\nold,1,\n",
    )
    .unwrap();
    let legacy = r#"{"file":"part-0000000001-000.csv","records":1,"epoch":1,"instance":0,"run":null,"header":true}"#;
    fs::write(commits.join("0000000001-000"), legacy).unwrap();
    assert_eq!(committed_parts(dir.path()).unwrap()[0].query, None);

    let mut sink = FileSink::<Row>::new(dir.path(), FileFormat::Csv);
    let error = sink.open(&query_context("q", 1)).unwrap_err();
    assert!(
        matches!(
            error.downcast_ref(),
            Some(FileSinkError::ForeignOutput { .. })
        ),
        "{error}"
    );
    let mut sink = reopen(dir.path(), &query_context("q", 2));
    run_epoch(&mut sink, 2, &rows()[..1]);
    assert_eq!(
        read_committed::<Row>(dir.path(), FileFormat::Csv)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_commit_never_replaces_a_committed_part() {
    // Two writers on one directory (which the docs forbid): the second commit of the
    // same part must fail, not rename new content under the first one's record.
    let dir = tempfile::tempdir().unwrap();
    let rows = rows();
    let mut first = reopen(dir.path(), &query_context("q", 1));
    let mut second = reopen(dir.path(), &query_context("q", 1));
    begin(&mut first, 1);
    first.write(rows[0].clone()).unwrap();
    let first_commit = first.prepare_commit(Epoch(1)).unwrap().unwrap();
    // The second writer stages after the first one's commit (they share the temporary
    // file's name).
    first_commit().unwrap();
    begin(&mut second, 1);
    for row in &rows {
        second.write(row.clone()).unwrap();
    }
    let error = second.prepare_commit(Epoch(1)).unwrap().unwrap()().unwrap_err();
    assert!(
        matches!(
            error.downcast_ref(),
            Some(FileSinkError::ForeignOutput { .. })
        ),
        "{error}"
    );
    assert_eq!(
        read_committed::<Row>(dir.path(), FileFormat::Csv).unwrap(),
        rows[..1]
    );
}
