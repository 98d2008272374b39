//! Retention never removes the epoch a power loss would fall back to.
//!
//! The newest epoch's `COMMIT` entry is written after its sinks' commits ran and is not
//! synced on its own (the next epoch's sync covers it). A power loss can take it, and
//! then recovery restores the complete epoch before the newest and replays the newest
//! from its offset entry. So with `retain(1)` and the smallest segments (about one
//! entry each, so retention removes exactly what it decides to), the segments holding
//! that earlier epoch must still be there. The test runs a micro-batch query with a
//! committing sink, then cuts the log just before the last `COMMIT` entry (what a power
//! loss leaves) and checks that the directory is still restorable, one epoch back.

use rivulet::checkpoint::entries;
use rivulet::checkpoint::log::scan;
use rivulet::checkpoint::recovery::inspect;
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::error::BoxError;
use rivulet::sink::{EpochCommit, Sink};
use rivulet::trigger::EmitMode;
use rivulet::{Epoch, Query, Trigger};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Stages each epoch's rows; the commit publishes nowhere (the test is about the log).
/// Notes the newest epoch it wrote a row in.
#[derive(Clone, Default)]
struct Committing {
    rows: usize,
    epoch: u64,
    newest_with_rows: Arc<AtomicU64>,
}

impl Sink<u64> for Committing {
    fn begin_epoch(&mut self, epoch: Epoch, _mode: EmitMode) -> Result<(), BoxError> {
        self.epoch = epoch.0;
        Ok(())
    }

    fn write(&mut self, _record: u64) -> Result<(), BoxError> {
        self.rows += 1;
        self.newest_with_rows
            .fetch_max(self.epoch, Ordering::SeqCst);
        Ok(())
    }

    fn prepare_commit(&mut self, _epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        if std::mem::take(&mut self.rows) == 0 {
            return Ok(None);
        }
        Ok(Some(Box::new(|| Ok(()))))
    }
}

#[test]
fn losing_the_last_commit_entry_leaves_an_earlier_epoch_to_restore() {
    let dir = tempfile::tempdir().unwrap();
    let mut query = Query::builder();
    query
        .checkpoint(
            CheckpointConfig::new(dir.path())
                .durability(Durability::Msync)
                .retain(1)
                .segment_bytes(rivulet::checkpoint::log::MIN_SEGMENT_BYTES),
        )
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(1),
        })
        .max_batch_records(10);
    let (input, numbers) = query.push_source::<u64>("numbers");
    let sink = Committing::default();
    let newest_with_rows = sink.newest_with_rows.clone();
    numbers.sink("out", sink);
    let running = query.start().unwrap();
    // Batches with rows until enough epochs went by for retention to remove segments;
    // then no more rows, so no batch runs after the last committed one.
    let mut next = 0u64;
    while running
        .progress()
        .checkpoint
        .and_then(|c| c.last_complete_epoch)
        .unwrap_or(0)
        < 15
    {
        for _ in 0..5 {
            input.push(next).unwrap();
            next += 1;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    assert!(
        input.flush(Duration::from_secs(60)),
        "the rows reached the ingest log"
    );
    // Wait until the epoch of the last row is complete: its COMMIT entry is then the
    // last entry of the log (no batch runs without rows).
    let out = || {
        running
            .progress()
            .operator("out")
            .map_or(0, |op| op.records_in)
    };
    let last_complete = || {
        running
            .progress()
            .checkpoint
            .and_then(|c| c.last_complete_epoch)
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while out() < next || last_complete() < newest_with_rows.load(Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the rows were not committed (hang)"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // A crash now: the last entry is the newest epoch's COMMIT.
    running.abort().unwrap();
    drop(input);

    let log = scan(dir.path()).unwrap();
    let last_commit = log
        .entries
        .iter()
        .rev()
        .find(|entry| entry.kind == entries::COMMIT)
        .expect("a commit entry")
        .location;
    assert!(
        log.entries
            .iter()
            .skip_while(|entry| entry.location != last_commit)
            .all(|entry| entry.kind != entries::COMPLETE),
        "the premise: nothing synced follows the last commit entry"
    );
    let report = inspect(dir.path()).unwrap();
    let newest = report.newest_restorable().expect("restorable").epoch;
    assert!(
        newest > 10,
        "only {newest} batches: retention had nothing to do"
    );

    // A power loss after the sync of COMPLETE(newest): everything from the last commit
    // entry on is gone (zeros, as in a preallocated segment), and so are later segments.
    for segment in log.segments.iter().filter(|s| **s > last_commit.segment) {
        std::fs::remove_file(dir.path().join(format!("segment-{segment:016x}.log"))).unwrap();
    }
    let path = dir
        .path()
        .join(format!("segment-{:016x}.log", last_commit.segment));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[last_commit.offset as usize..].fill(0);
    std::fs::write(&path, &bytes).unwrap();

    let report = inspect(dir.path()).unwrap();
    let chosen = report
        .newest_restorable()
        .unwrap_or_else(|| panic!("nothing restorable after losing the last commit: {report:?}"));
    assert!(
        chosen.epoch < newest,
        "epoch {} is restorable although its commit entry is gone",
        chosen.epoch
    );
    assert!(
        report.offsets.contains_key(&(chosen.epoch + 1)),
        "the epoch after the restored one can be replayed from its offsets"
    );
}
