//! Building a query describes it; only `start()` touches the disk.
//!
//! * Building a query over an existing checkpoint directory and file-sink directory and
//!   dropping it without `start()` leaves both byte-for-byte unchanged, whatever order the
//!   builder calls come in (`checkpoint()` after the sources included).
//! * A `start()` that fails leaves both unchanged too: a plan that differs from the
//!   checkpointed one, an operator whose state cannot be restored, a file-sink directory
//!   that belongs to another query (with a checkpoint directory that did not exist: it
//!   still does not), a configuration error, a segment size the log cannot use.
//! * After all that, the original query restarts from its checkpoint and continues as if
//!   nothing had happened.

mod common;

use rivulet::checkpoint::CheckpointConfig;
use rivulet::error::BoxError;
use rivulet::operator::{Context, Operator};
use rivulet::sink::file::read_committed;
use rivulet::sink::FileFormat;
use rivulet::{Query, Trigger};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every file under `dir` (recursively) with its bytes; directories as empty entries.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut files = BTreeMap::new();
    if !dir.exists() {
        return files;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let relative = entry.path().strip_prefix(dir).unwrap().to_path_buf();
            if entry.file_type().unwrap().is_dir() {
                files.insert(relative, None);
                stack.push(entry.path());
            } else {
                files.insert(relative, Some(std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    files
}

fn config(dir: &Path) -> CheckpointConfig {
    CheckpointConfig::new(dir).interval(Duration::from_millis(20))
}

fn micro_batches(query: &mut rivulet::QueryBuilder) {
    query.trigger(Trigger::MicroBatch {
        interval: Duration::from_millis(5),
    });
}

/// The query under test: numbers summed per key, the sums written to files.
fn build(query: &mut rivulet::QueryBuilder, numbers: std::ops::Range<u64>, out: &Path) {
    query
        .from_iter("numbers", numbers)
        .key_by(|n| n % 3)
        .fold(0u64, |sum, n| *sum += n)
        .named("sums")
        .to_files(out, FileFormat::Csv);
}

/// An aggregate named like the real one whose state cannot be restored.
#[derive(Clone)]
struct Amnesiac;

impl Operator<(u64, u64)> for Amnesiac {
    type Out = (u64, u64);
    type Key = ();
    type Side = ();
    fn on_record<C: Context<(u64, u64)>>(&mut self, record: (u64, u64), ctx: &mut C) {
        ctx.push(record);
    }
    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(Vec::new()))
    }
    fn restore(&mut self, _state: &[u8]) -> Result<(), BoxError> {
        Err("this operator forgot how to read its state".into())
    }
}

#[test]
fn building_or_failing_to_start_changes_nothing_on_disk() {
    let root = tempfile::tempdir().unwrap();
    let checkpoints = root.path().join("checkpoints");
    let out = root.path().join("out");

    // A first run leaves a checkpoint and committed output.
    let mut query = Query::builder();
    micro_batches(&mut query);
    query.checkpoint(config(&checkpoints));
    build(&mut query, 0..100, &out);
    let running = query.start().unwrap();
    common::finish_ok(&running, "first run");
    drop(running);
    let before = (tree(&checkpoints), tree(&out));
    assert!(!before.0.is_empty() && !before.1.is_empty());
    let unchanged = |what: &str| {
        assert!(
            (tree(&checkpoints), tree(&out)) == before,
            "{what} changed the checkpoint or output directory"
        );
    };

    // Built and dropped, with `checkpoint()` as the last call.
    let mut query = Query::builder();
    micro_batches(&mut query);
    build(&mut query, 100..200, &out);
    query.checkpoint(config(&checkpoints));
    drop(query);
    unchanged("building and dropping a query");

    // A different plan: refused, nothing touched.
    let mut query = Query::builder();
    query.checkpoint(config(&checkpoints));
    micro_batches(&mut query);
    query
        .from_iter("numbers", 100..200u64)
        .map(|n| n * 2)
        .to_files(&out, FileFormat::Csv);
    let error = query.start().unwrap_err();
    assert!(error.to_string().contains("plan"), "{error}");
    unchanged("a start refused for a different plan");

    // The same plan shape, but the aggregate cannot restore its state.
    let mut query = Query::builder();
    query.checkpoint(config(&checkpoints));
    micro_batches(&mut query);
    query
        .from_iter("numbers", 100..200u64)
        .key_by(|n| n % 3)
        .aggregate("fold", Amnesiac)
        .named("sums")
        .to_files(&out, FileFormat::Csv);
    let error = query.start().unwrap_err();
    assert!(error.to_string().contains("forgot"), "{error}");
    unchanged("a start whose restore failed");

    // The output directory belongs to the query of `checkpoints`; a query with a new
    // checkpoint directory is another query and is refused before anything is created.
    let other_checkpoints = root.path().join("other-checkpoints");
    let mut query = Query::builder();
    micro_batches(&mut query);
    build(&mut query, 100..200, &out);
    query.checkpoint(config(&other_checkpoints));
    let error = query.start().unwrap_err();
    assert!(error.to_string().contains("out"), "{error}");
    unchanged("a start refused for foreign output");
    assert!(
        !other_checkpoints.exists(),
        "a failed start left the new checkpoint directory behind"
    );

    // A segment size the log cannot use, with a push source (whose ingest log would
    // live in the checkpoint directory): refused before anything is opened.
    let mut query = Query::builder();
    micro_batches(&mut query);
    query.checkpoint(config(&checkpoints).segment_bytes(1));
    let (_handle, pushed) = query.push_source::<u64>("pushed");
    pushed.to_files(&out, FileFormat::Csv);
    let error = query.start().unwrap_err();
    assert!(error.to_string().contains("segment"), "{error}");
    unchanged("a start refused for its segment size");

    // A configuration error found at start.
    let mut query = Query::builder();
    micro_batches(&mut query);
    query.checkpoint(config(&checkpoints));
    query.ring_capacity(0);
    build(&mut query, 100..200, &out);
    assert!(query.start().is_err());
    unchanged("a start refused for its configuration");

    // The original query continues where it stopped.
    let mut query = Query::builder();
    micro_batches(&mut query);
    build(&mut query, 0..100, &out);
    query.checkpoint(config(&checkpoints));
    let running = query.start().unwrap();
    common::finish_ok(&running, "restart");
    let rows: Vec<(u64, u64)> = read_committed(&out, FileFormat::Csv).unwrap();
    let mut last = BTreeMap::new();
    for (key, sum) in rows {
        last.insert(key, sum);
    }
    let mut expected = BTreeMap::new();
    for n in 0..100u64 {
        *expected.entry(n % 3).or_insert(0) += n;
    }
    assert_eq!(last, expected);
}
