//! Failures around epochs and commits: a sink commit that fails or panics, a sink that
//! cannot open, a source that fails while planning a batch. Each ends the query with an
//! error naming the operator; none hangs or panics the caller, and a failed commit is
//! never recorded as committed.

mod common;

use common::finish;
use rivulet::checkpoint::CheckpointConfig;
use rivulet::error::BoxError;
use rivulet::sink::{EpochCommit, FileFormat, Sink};
use rivulet::source::{Source, SourcePoll};
use rivulet::{Epoch, Error, Query, Trigger};
use std::time::Duration;

fn micro_batch() -> Trigger {
    Trigger::MicroBatch {
        interval: Duration::from_millis(2),
    }
}

/// A sink whose commits fail (with an error or a panic) from epoch `from` on.
#[derive(Clone)]
struct FailingCommit {
    panic: bool,
}

impl Sink<u64> for FailingCommit {
    fn write(&mut self, _record: u64) -> Result<(), BoxError> {
        Ok(())
    }

    fn prepare_commit(&mut self, _epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        let panic = self.panic;
        Ok(Some(Box::new(move || {
            if panic {
                panic!("commit exploded");
            }
            Err("disk full while publishing".into())
        })))
    }
}

fn run_with_failing_commit(panic: bool, dir: Option<&std::path::Path>) -> rivulet::Result<()> {
    let mut query = Query::builder();
    if let Some(dir) = dir {
        query.checkpoint(CheckpointConfig::new(dir));
    }
    query.trigger(micro_batch());
    query
        .from_iter("numbers", 0..1_000u64)
        .sink("publisher", FailingCommit { panic });
    let running = query.start().expect("start");
    finish(&running, "query with a failing commit")
}

#[test]
fn a_failing_commit_fails_the_query_naming_the_sink() {
    match run_with_failing_commit(false, None) {
        Err(Error::Sink { operator, source }) => {
            assert_eq!(operator, "publisher");
            assert!(source.to_string().contains("disk full"), "{source}");
        }
        other => panic!("expected a sink error, got {other:?}"),
    }
}

#[test]
fn a_panicking_commit_fails_the_query_naming_the_sink() {
    match run_with_failing_commit(true, None) {
        Err(Error::OperatorPanicked { operator, message }) => {
            assert_eq!(operator, "publisher");
            assert!(message.contains("commit exploded"), "{message}");
        }
        other => panic!("expected a panic report, got {other:?}"),
    }
}

#[test]
fn a_failed_commit_is_not_a_restore_point() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run_with_failing_commit(false, Some(dir.path())).is_err());
    let report = rivulet::checkpoint::recovery::inspect(dir.path()).unwrap();
    // Epochs completed, but none of them committed: a restart must not skip their output.
    assert!(!report.complete.is_empty());
    assert!(report.committed.is_empty(), "{:?}", report.committed);
    assert!(report.newest_restorable().is_none());
}

#[test]
fn a_sink_that_cannot_open_fails_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let mut query = Query::builder();
    query.trigger(micro_batch());
    query
        .from_iter("numbers", 0..10u64)
        .map(|n| (n, n))
        .to_files(&file, FileFormat::Csv);
    match query.start() {
        Err(Error::Config(message)) => {
            assert!(message.contains("files"), "{message}");
            assert!(message.contains("not-a-directory"), "{message}");
        }
        other => panic!(
            "expected a configuration error, got {:?}",
            other.map(|_| ())
        ),
    }
}

/// Fails on its `fail_at`-th poll.
struct FailingSource {
    polled: u64,
    fail_at: u64,
}

impl Source for FailingSource {
    type Item = u64;

    fn poll_next(&mut self) -> SourcePoll<u64> {
        self.polled += 1;
        if self.polled == self.fail_at {
            return SourcePoll::Failed("upstream connection reset".into());
        }
        SourcePoll::Ready(self.polled)
    }
}

#[test]
fn a_source_failing_while_planning_a_batch_fails_the_query() {
    let mut query = Query::builder();
    query.trigger(micro_batch()).max_batch_records(100);
    let rows = query
        .source(
            "flaky",
            FailingSource {
                polled: 0,
                fail_at: 250,
            },
        )
        .to_memory("rows");
    let running = query.start().expect("start");
    match finish(&running, "query with a failing source") {
        Err(Error::Source { operator, source }) => {
            assert_eq!(operator, "flaky");
            assert!(source.to_string().contains("reset"), "{source}");
        }
        other => panic!("expected a source error, got {other:?}"),
    }
    // Whole batches only: the batch the failure interrupted was never released.
    assert_eq!(rows.len() % 100, 0, "{} rows", rows.len());
}
