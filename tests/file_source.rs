//! The file directory source against a reference: files dropped into a directory over
//! time (written under a hidden name, then renamed in) arrive exactly once and in file
//! order, in both trigger modes; a restart after a graceful stop continues without loss
//! or duplicates; Spark's file-source options (`maxFilesPerTrigger`, `latestFirst`,
//! `pathGlobFilter`, hidden files, a settle time); and each fault: a missing directory,
//! permission denied, a file deleted or truncated while it is read, a binary file, a
//! 100 MB line, a header where none is expected, a record type that cannot work.
//!
//! Every wait is a hang guard (`common::HANG_GUARD`); nothing asserts on timing.

mod common;

use common::{finish, wait_until, HANG_GUARD};
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::format::{CsvOptions, ParseMode};
use rivulet::sink::file::committed_parts;
use rivulet::sink::FileFormat;
use rivulet::source::FileSourceConfig;
use rivulet::{Query, QueryProgress, Trigger};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    file: u32,
    seq: u32,
    value: f64,
}

/// The rows of file `file`: `rows` of them, values derived from the ids.
fn rows_of(file: u32, rows: u32) -> Vec<Row> {
    (0..rows)
        .map(|seq| Row {
            file,
            seq,
            value: f64::from(file * 1000 + seq) / 8.0,
        })
        .collect()
}

fn csv_text(rows: &[Row]) -> String {
    rows.iter()
        .map(|r| format!("{},{},{}\n", r.file, r.seq, r.value))
        .collect()
}

/// Writes `text` as `dir/name` the way Spark expects: under a hidden name first, then
/// renamed in.
fn drop_file(dir: &Path, name: &str, text: &str) {
    let temp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, dir.join(name)).unwrap();
}

fn part_name(file: u32) -> String {
    format!("part-{file:05}.csv")
}

/// Sets `path`'s modification time to `seconds_ago` seconds in the past.
fn age(path: &Path, seconds_ago: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(seconds_ago))
        .unwrap();
}

fn counter(progress: &QueryProgress, source: &str, name: &str) -> u64 {
    progress
        .operator(source)
        .and_then(|op| op.counters.get(name).copied())
        .unwrap_or(0)
}

fn quick(dir: &Path) -> FileSourceConfig {
    FileSourceConfig::csv(dir).poll_interval(Duration::from_millis(5))
}

fn checkpointing(dir: &Path) -> CheckpointConfig {
    CheckpointConfig::new(dir)
        .interval(Duration::from_millis(5))
        .durability(Durability::OsBuffered)
        .segment_bytes(1 << 16)
}

// ---------------------------------------------------------------------------------------
// Order and exactly-once
// ---------------------------------------------------------------------------------------

fn dripped_files_arrive_once_in_order(trigger: Option<Trigger>) {
    let input = tempfile::tempdir().unwrap();
    let files: u32 = 12;
    let per_file: u32 = 150;
    // Two files before the start, the rest dropped while the query runs.
    for file in 0..2 {
        drop_file(
            input.path(),
            &part_name(file),
            &csv_text(&rows_of(file, per_file)),
        );
    }
    let mut query = Query::builder();
    if let Some(trigger) = trigger {
        query.trigger(trigger);
    }
    let table = query
        .read_dir::<Row>("files", quick(input.path()))
        .to_memory("rows");
    let running = query.start().unwrap();
    let dir = input.path().to_path_buf();
    let dripper = std::thread::spawn(move || {
        for file in 2..files {
            std::thread::sleep(Duration::from_millis(7));
            drop_file(&dir, &part_name(file), &csv_text(&rows_of(file, per_file)));
        }
    });
    dripper.join().unwrap();
    let expected: Vec<Row> = (0..files).flat_map(|f| rows_of(f, per_file)).collect();
    table.wait_for_len(expected.len(), HANG_GUARD);
    // A little longer: anything beyond the expected rows would be a duplicate.
    std::thread::sleep(Duration::from_millis(50));
    running.stop().unwrap();
    assert_eq!(table.rows(), expected);
    assert_eq!(
        counter(&running.progress(), "files", "files"),
        u64::from(files)
    );
}

#[test]
fn dripped_files_arrive_once_in_file_order_continuously() {
    dripped_files_arrive_once_in_order(None);
}

#[test]
fn dripped_files_arrive_once_in_file_order_in_micro_batches() {
    dripped_files_arrive_once_in_order(Some(Trigger::MicroBatch {
        interval: Duration::from_millis(5),
    }));
}

/// Files with out-of-order names are read by modification time.
#[test]
fn files_are_read_in_modification_time_order_then_name() {
    let input = tempfile::tempdir().unwrap();
    // (name, seconds ago): c is oldest, a and b tie.
    for (i, (name, ago)) in [
        ("a.csv", 100),
        ("c.csv", 300),
        ("b.csv", 100),
        ("d.csv", 200),
    ]
    .iter()
    .enumerate()
    {
        let path = input.path().join(name);
        std::fs::write(&path, csv_text(&rows_of(i as u32, 3))).unwrap();
        age(&path, *ago);
    }
    let mut query = Query::builder();
    let table = query
        .read_dir::<Row>("files", quick(input.path()))
        .to_memory("rows");
    let running = query.start().unwrap();
    table.wait_for_len(12, HANG_GUARD);
    running.stop().unwrap();
    let order: Vec<u32> = table.rows().iter().map(|r| r.file).collect();
    // c (1), d (3), then a (0) and b (2) by name.
    assert_eq!(order, [1, 1, 1, 3, 3, 3, 0, 0, 0, 2, 2, 2]);
}

/// The restart tests' query: rows to a memory table; after `slow_after` rows each row
/// takes a little time, so a stop lands in the middle of the input.
fn restart_query(
    input: &Path,
    checkpoint: &Path,
    micro_batch: bool,
    slow_after: usize,
) -> (Query, rivulet::sink::MemoryTable<Row>) {
    let mut query = Query::builder();
    query
        .checkpoint(checkpointing(checkpoint))
        .max_batch_records(37);
    if micro_batch {
        query.trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(5),
        });
    }
    let mut seen = 0;
    let table = query
        .read_dir::<Row>("files", quick(input))
        .map(move |row| {
            seen += 1;
            if seen > slow_after {
                std::thread::sleep(Duration::from_micros(200));
            }
            row
        })
        .to_memory("rows");
    (query.start().unwrap(), table)
}

fn restart_run(
    input: &Path,
    checkpoint: &Path,
    micro_batch: bool,
    slow_after: usize,
    until: impl Fn(&[Row]) -> bool,
) -> Vec<Row> {
    let (running, table) = restart_query(input, checkpoint, micro_batch, slow_after);
    assert!(
        table.wait_for(&until, HANG_GUARD),
        "rows did not arrive (hang)"
    );
    running.stop().unwrap();
    table.rows()
}

fn restart_continues_without_loss_or_duplicates(micro_batch: bool) {
    let input = tempfile::tempdir().unwrap();
    let checkpoint = tempfile::tempdir().unwrap();
    let per_file = 400;
    for file in 0..3 {
        drop_file(
            input.path(),
            &part_name(file),
            &csv_text(&rows_of(file, per_file)),
        );
    }
    // Stop in the middle of the files.
    let first = restart_run(input.path(), checkpoint.path(), micro_batch, 100, |rows| {
        rows.len() >= 100
    });
    assert!(
        first.len() < 1200,
        "the first run read everything: the test needs a stop mid-way"
    );
    for file in 3..5 {
        drop_file(
            input.path(),
            &part_name(file),
            &csv_text(&rows_of(file, per_file)),
        );
    }
    let total = 5 * per_file as usize;
    let already = first.len();
    let second = restart_run(
        input.path(),
        checkpoint.path(),
        micro_batch,
        usize::MAX,
        |rows| already + rows.len() >= total,
    );
    std::thread::sleep(Duration::from_millis(30));
    let mut all = first;
    all.extend(second);
    let expected: Vec<Row> = (0..5).flat_map(|f| rows_of(f, per_file)).collect();
    assert_eq!(all.len(), expected.len(), "lost or duplicated rows");
    assert_eq!(all, expected);
}

#[test]
fn restart_after_a_graceful_stop_continues_without_loss_or_duplicates() {
    restart_continues_without_loss_or_duplicates(false);
}

#[test]
fn micro_batch_restart_after_a_graceful_stop_continues_exactly() {
    restart_continues_without_loss_or_duplicates(true);
}

/// `maxFilesPerTrigger` and `latestFirst`: a backlog of six files, two per batch,
/// newest first. The batches are read back from the file sink's committed parts.
#[test]
fn max_files_per_trigger_and_latest_first() {
    let input = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    for file in 0..6u32 {
        let path = input.path().join(part_name(file));
        std::fs::write(&path, csv_text(&rows_of(file, 5))).unwrap();
        age(&path, 600 - u64::from(file) * 60);
    }
    let mut query = Query::builder();
    query
        .checkpoint(checkpointing(&work.path().join("checkpoint")))
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(5),
        });
    let config = quick(input.path())
        .max_files_per_trigger(2)
        .latest_first(true);
    query
        .read_dir::<Row>("files", config)
        .to_files(work.path().join("out"), FileFormat::JsonLines);
    let running = query.start().unwrap();
    let out = work.path().join("out");
    wait_until("all six files committed", || {
        let parts = committed_parts(&out).unwrap_or_default();
        parts
            .iter()
            .map(|part| part.read::<Row>().unwrap().len())
            .sum::<usize>()
            >= 30
    });
    running.stop().unwrap();
    let mut batches: BTreeMap<u64, Vec<Row>> = BTreeMap::new();
    for part in committed_parts(&out).unwrap() {
        batches
            .entry(part.epoch.0)
            .or_default()
            .extend(part.read::<Row>().unwrap());
    }
    let mut order = Vec::new();
    for rows in batches.values() {
        let files: BTreeSet<u32> = rows.iter().map(|r| r.file).collect();
        assert!(files.len() <= 2, "a batch read {files:?}");
        order.extend(rows.iter().map(|r| r.file));
    }
    order.dedup();
    assert_eq!(order, [5, 4, 3, 2, 1, 0]);
}

#[test]
fn glob_filter_hidden_files_and_subdirectories() {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("a.csv"), csv_text(&rows_of(1, 2))).unwrap();
    std::fs::write(input.path().join("b.txt"), csv_text(&rows_of(2, 2))).unwrap();
    std::fs::write(input.path().join(".c.csv"), csv_text(&rows_of(3, 2))).unwrap();
    std::fs::write(input.path().join("_d.csv"), csv_text(&rows_of(4, 2))).unwrap();
    std::fs::write(
        input.path().join("e.csv._COPYING_"),
        csv_text(&rows_of(5, 2)),
    )
    .unwrap();
    std::fs::create_dir(input.path().join("sub.csv")).unwrap();
    std::fs::write(input.path().join("sub.csv/f.csv"), csv_text(&rows_of(6, 2))).unwrap();
    std::fs::write(input.path().join("g.csv"), csv_text(&rows_of(7, 2))).unwrap();
    let mut query = Query::builder();
    let table = query
        .read_dir::<Row>("files", quick(input.path()).path_glob_filter("*.csv"))
        .to_memory("rows");
    let running = query.start().unwrap();
    table.wait_for_len(4, HANG_GUARD);
    std::thread::sleep(Duration::from_millis(50));
    running.stop().unwrap();
    let files: BTreeSet<u32> = table.rows().iter().map(|r| r.file).collect();
    assert_eq!(files, BTreeSet::from([1, 7]));
    assert_eq!(table.len(), 4);
}

/// With a settle time, a file modified just now waits; an old one is read.
#[test]
fn settle_time_holds_back_fresh_files() {
    let input = tempfile::tempdir().unwrap();
    let old = input.path().join("old.csv");
    std::fs::write(&old, csv_text(&rows_of(1, 3))).unwrap();
    age(&old, 3600);
    std::fs::write(input.path().join("fresh.csv"), csv_text(&rows_of(2, 3))).unwrap();
    let mut query = Query::builder();
    let table = query
        .read_dir::<Row>(
            "files",
            quick(input.path()).settle_time(Duration::from_secs(1800)),
        )
        .to_memory("rows");
    let running = query.start().unwrap();
    table.wait_for_len(3, HANG_GUARD);
    // Several listings later, the fresh file is still held back.
    std::thread::sleep(Duration::from_millis(60));
    running.stop().unwrap();
    assert_eq!(table.rows(), rows_of(1, 3));
}

#[test]
fn json_lines_and_text_formats() {
    let input = tempfile::tempdir().unwrap();
    let json: String = rows_of(1, 4)
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    drop_file(input.path(), "a.jsonl", &json);
    let text_dir = tempfile::tempdir().unwrap();
    drop_file(
        text_dir.path(),
        "a.txt",
        "first line\n\nthird, with a comma\r\nlast",
    );
    let mut query = Query::builder();
    let rows = query
        .read_dir::<Row>(
            "json",
            FileSourceConfig::json(input.path()).poll_interval(Duration::from_millis(5)),
        )
        .to_memory("rows");
    let lines = query
        .read_dir::<String>(
            "text",
            FileSourceConfig::text(text_dir.path()).poll_interval(Duration::from_millis(5)),
        )
        .to_memory("lines");
    let running = query.start().unwrap();
    rows.wait_for_len(4, HANG_GUARD);
    lines.wait_for_len(4, HANG_GUARD);
    running.stop().unwrap();
    assert_eq!(rows.rows(), rows_of(1, 4));
    // Spark's text source keeps empty lines.
    assert_eq!(
        lines.rows(),
        ["first line", "", "third, with a comma", "last"]
    );
}

/// Two instances share the files: every row once.
#[test]
fn instances_share_the_files() {
    let input = tempfile::tempdir().unwrap();
    for file in 0..10 {
        drop_file(
            input.path(),
            &part_name(file),
            &csv_text(&rows_of(file, 20)),
        );
    }
    let mut query = Query::builder();
    let dir = input.path().to_path_buf();
    let table = query
        .source_instances("files", 2, |_| {
            rivulet::source::FileSource::<Row>::new(quick(&dir))
        })
        .to_memory("rows");
    let running = query.start().unwrap();
    table.wait_for_len(200, HANG_GUARD);
    std::thread::sleep(Duration::from_millis(50));
    running.stop().unwrap();
    let mut got: Vec<(u32, u32)> = table.rows().iter().map(|r| (r.file, r.seq)).collect();
    got.sort();
    let want: Vec<(u32, u32)> = (0..10).flat_map(|f| (0..20).map(move |s| (f, s))).collect();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------

fn start_error(config: FileSourceConfig) -> String {
    let mut query = Query::builder();
    query.read_dir::<Row>("files", config).for_each(|_| {});
    match query.start() {
        Ok(running) => {
            let _ = running.stop();
            panic!("start() accepted the source")
        }
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_missing_directory_fails_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-here");
    let message = start_error(quick(&missing));
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains("not-here"), "{message}");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let message = start_error(quick(&file));
    assert!(message.contains("is not a directory"), "{message}");
}

#[test]
fn a_record_type_that_cannot_work_fails_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut query = Query::builder();
    query
        .read_dir::<std::collections::HashMap<String, String>>("files", quick(dir.path()))
        .for_each(|_| {});
    let message = query.start().expect_err("refused").to_string();
    assert!(message.contains("invalid query"), "{message}");
    assert!(message.contains("map"), "{message}");
    let message = start_error(quick(dir.path()).path_glob_filter("[oops"));
    assert!(message.contains("path_glob_filter"), "{message}");
}

/// Whether this process runs as root (the owner of `/proc/self`).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Root reads any file: the permission test runs as a child process without the
/// capabilities that bypass permissions (`setpriv`), when it can.
#[test]
fn permission_denied_is_a_clear_error() {
    if is_root() && std::env::var("RIVULET_NO_DAC").is_err() {
        let status = std::process::Command::new("setpriv")
            .args(["--bounding-set", "-dac_override,-dac_read_search", "--"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "permission_denied_is_a_clear_error",
                "--nocapture",
            ])
            .env("RIVULET_NO_DAC", "1")
            .status();
        // 101 is a failed test in the child; other codes are setpriv refusing (no
        // CAP_SETPCAP in this container, say): nothing was tested then.
        match status.map(|status| status.code()) {
            Ok(Some(0)) => {}
            Ok(Some(101)) => panic!("the permission test failed in the child process"),
            Ok(code) => eprintln!(
                "skipped: running as root and setpriv could not drop capabilities ({code:?})"
            ),
            Err(error) => eprintln!("skipped: running as root and setpriv is unavailable: {error}"),
        }
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let message = start_error(quick(&locked));
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(message.contains("ermission denied"), "{message}");
    assert!(message.contains("locked"), "{message}");

    // A file that cannot be read fails the query, naming it.
    let input = dir.path().join("input");
    std::fs::create_dir(&input).unwrap();
    let secret = input.join("secret.csv");
    std::fs::write(&secret, csv_text(&rows_of(1, 2))).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut query = Query::builder();
    query
        .read_dir::<Row>("files", quick(&input))
        .for_each(|_| {});
    let running = query.start().unwrap();
    let message = finish(&running, "unreadable file").unwrap_err().to_string();
    assert!(message.contains("secret.csv"), "{message}");
    assert!(message.contains("ermission denied"), "{message}");
}

/// A query whose sink (on the source's thread) blocks at the first record until the
/// test says go: the source is then stopped in the middle of its first file.
struct Paused {
    rows: Arc<Mutex<Vec<Row>>>,
    started: crossbeam_channel::Receiver<()>,
    go: crossbeam_channel::Sender<()>,
    running: rivulet::Query,
}

fn paused_at_first_row(input: &Path) -> Paused {
    let (started_tx, started) = crossbeam_channel::bounded(1);
    let (go, go_rx) = crossbeam_channel::bounded::<()>(1);
    let rows = Arc::new(Mutex::new(Vec::new()));
    let sink_rows = rows.clone();
    let mut query = Query::builder();
    query
        .read_dir::<Row>("files", quick(input))
        .for_each(move |row| {
            let mut rows = sink_rows.lock().unwrap();
            if rows.is_empty() {
                let _ = started_tx.send(());
                let _ = go_rx.recv_timeout(HANG_GUARD);
            }
            rows.push(row);
        });
    let running = query.start().unwrap();
    started.recv_timeout(HANG_GUARD).expect("first row (hang)");
    Paused {
        rows,
        started,
        go,
        running,
    }
}

/// Big enough that the reader has buffered only its start when the test acts.
const BIG_ROWS: u32 = 200_000;

#[test]
fn a_file_deleted_while_read_is_read_to_the_end() {
    let input = tempfile::tempdir().unwrap();
    let name = part_name(0);
    drop_file(input.path(), &name, &csv_text(&rows_of(0, BIG_ROWS)));
    let paused = paused_at_first_row(input.path());
    std::fs::remove_file(input.path().join(&name)).unwrap();
    paused.go.send(()).unwrap();
    let rows = paused.rows.clone();
    wait_until("every row of the deleted file", || {
        rows.lock().unwrap().len() >= BIG_ROWS as usize
    });
    paused.running.stop().unwrap();
    drop(paused.started);
    assert_eq!(*rows.lock().unwrap(), rows_of(0, BIG_ROWS));
}

#[test]
fn a_file_truncated_while_read_fails_the_query() {
    let input = tempfile::tempdir().unwrap();
    let name = part_name(0);
    drop_file(input.path(), &name, &csv_text(&rows_of(0, BIG_ROWS)));
    let paused = paused_at_first_row(input.path());
    let file = std::fs::File::options()
        .write(true)
        .open(input.path().join(&name))
        .unwrap();
    file.set_len(200_000).unwrap();
    paused.go.send(()).unwrap();
    let message = finish(&paused.running, "truncated file")
        .unwrap_err()
        .to_string();
    assert!(message.contains("truncated"), "{message}");
    assert!(message.contains(&name), "{message}");
}

#[test]
fn a_binary_file_gives_counted_malformed_rows_and_no_panic() {
    let input = tempfile::tempdir().unwrap();
    let mut rng = common::Rng::new(7);
    let binary: Vec<u8> = (0..300_000).map(|_| rng.next_u64() as u8).collect();
    std::fs::write(input.path().join("a-binary.bin"), &binary).unwrap();
    age(&input.path().join("a-binary.bin"), 60);
    drop_file(input.path(), "b.csv", &csv_text(&rows_of(1, 5)));
    let quarantine = tempfile::tempdir().unwrap();
    let mut query = Query::builder();
    let table = query
        .read_dir::<Row>(
            "files",
            quick(input.path())
                .mode(ParseMode::DropMalformed)
                .quarantine_dir(quarantine.path()),
        )
        .to_memory("rows");
    let running = query.start().unwrap();
    table.wait_for_len(5, HANG_GUARD);
    running.stop().unwrap();
    assert_eq!(table.rows(), rows_of(1, 5));
    let progress = running.progress();
    // The reference: every line of the binary file (split as the reader splits) that is
    // not blank is malformed; random bytes never make a valid row.
    let lines = binary
        .split(|b| *b == b'\n' || *b == b'\r')
        .filter(|line| !String::from_utf8_lossy(line).bytes().all(|b| b <= b' '))
        .count() as u64;
    let malformed = counter(&progress, "files", "malformed_rows");
    // `\r\n` pairs make one terminator, not an empty line between: at most the count.
    assert!(
        malformed > 0 && malformed <= lines,
        "{malformed} of {lines}"
    );
    assert_eq!(counter(&progress, "files", "dropped_rows"), malformed);
    let quarantined =
        std::fs::read_to_string(quarantine.path().join("_quarantine/files.jsonl")).unwrap();
    assert_eq!(quarantined.lines().count() as u64, malformed);
}

#[test]
fn a_100_mb_line_is_a_counted_malformed_row() {
    let input = tempfile::tempdir().unwrap();
    let path = input.path().join("big.csv");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        file.write_all(csv_text(&rows_of(1, 2)).as_bytes()).unwrap();
        let chunk = vec![b'7'; 1 << 20];
        for _ in 0..100 {
            file.write_all(&chunk).unwrap();
        }
        file.write_all(b"\n").unwrap();
        file.write_all(csv_text(&rows_of(2, 2)).as_bytes()).unwrap();
    }
    let quarantine = tempfile::tempdir().unwrap();
    let mut query = Query::builder();
    let table = query
        .read_dir::<Row>(
            "files",
            quick(input.path())
                .mode(ParseMode::DropMalformed)
                .quarantine_dir(quarantine.path()),
        )
        .to_memory("rows");
    let running = query.start().unwrap();
    table.wait_for_len(4, HANG_GUARD);
    running.stop().unwrap();
    let mut expected = rows_of(1, 2);
    expected.extend(rows_of(2, 2));
    assert_eq!(table.rows(), expected);
    assert_eq!(counter(&running.progress(), "files", "malformed_rows"), 1);
    let quarantined =
        std::fs::read_to_string(quarantine.path().join("_quarantine/files.jsonl")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(quarantined.trim()).unwrap();
    assert_eq!(entry["line"], 3);
    assert!(
        entry["error"].as_str().unwrap().contains("104857600 bytes"),
        "{entry}"
    );
    // Only a preview of the line is kept.
    assert!(entry["record"].as_str().unwrap().len() < 2048);
}

#[test]
fn a_header_where_none_is_expected_is_a_malformed_row() {
    let input = tempfile::tempdir().unwrap();
    let text = format!("file,seq,value\n{}", csv_text(&rows_of(1, 3)));
    drop_file(input.path(), "a.csv", &text);
    let mut query = Query::builder();
    let table = query
        .read_dir::<Row>("files", quick(input.path()).mode(ParseMode::DropMalformed))
        .to_memory("rows");
    let running = query.start().unwrap();
    table.wait_for_len(3, HANG_GUARD);
    running.stop().unwrap();
    assert_eq!(table.rows(), rows_of(1, 3));
    assert_eq!(counter(&running.progress(), "files", "malformed_rows"), 1);

    // With `header(true)` the same file has no malformed row.
    let mut query = Query::builder();
    let table = query
        .read_dir::<Row>(
            "files",
            quick(input.path())
                .mode(ParseMode::FailFast)
                .csv_options(CsvOptions::default().header(true)),
        )
        .to_memory("rows");
    let running = query.start().unwrap();
    table.wait_for_len(3, HANG_GUARD);
    running.stop().unwrap();
    assert_eq!(table.rows(), rows_of(1, 3));
}

/// A restart whose current file was deleted meanwhile fails `start()`, naming it.
#[test]
fn a_restart_without_the_file_being_read_fails_start() {
    let input = tempfile::tempdir().unwrap();
    let checkpoint = tempfile::tempdir().unwrap();
    drop_file(input.path(), &part_name(0), &csv_text(&rows_of(0, 400)));
    let first = restart_run(input.path(), checkpoint.path(), true, 50, |rows| {
        rows.len() >= 50
    });
    assert!(first.len() < 400, "read the whole file before the stop");
    std::fs::remove_file(input.path().join(part_name(0))).unwrap();
    let mut query = Query::builder();
    query.checkpoint(checkpointing(checkpoint.path()));
    query.trigger(Trigger::MicroBatch {
        interval: Duration::from_millis(5),
    });
    query
        .read_dir::<Row>("files", quick(input.path()))
        .map(|row| row)
        .to_memory("rows");
    let message = query.start().expect_err("refused").to_string();
    assert!(message.contains(&part_name(0)), "{message}");
    assert!(message.contains("gone"), "{message}");
}

/// The discovery log is where the checkpoint says.
#[test]
fn the_discovery_log_lives_in_the_checkpoint() {
    let input = tempfile::tempdir().unwrap();
    let checkpoint = tempfile::tempdir().unwrap();
    drop_file(input.path(), "a.csv", &csv_text(&rows_of(0, 3)));
    restart_run(input.path(), checkpoint.path(), false, usize::MAX, |rows| {
        rows.len() >= 3
    });
    let log: PathBuf = checkpoint.path().join("files-files/discovered.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains("\"a.csv\""));
}
