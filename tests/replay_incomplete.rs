//! A replay that cannot complete fails clearly instead of hanging.
//!
//! A micro-batch whose offsets were logged but whose commit never happened is replayed
//! after a restart with exactly the records the offset log recorded. If the source can
//! no longer give them all (its input shrank: a live source that now waits for data),
//! the replay cannot finish; `stop()` then ends the query with an error that names the
//! epoch and the shortfall, and does not wait forever.

mod common;

use common::{finish, wait_until, HANG_GUARD};
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::error::BoxError;
use rivulet::sink::{EpochCommit, Sink};
use rivulet::source::{Source, SourcePoll};
use rivulet::{Epoch, Error, Query, Trigger};
use std::sync::mpsc;
use std::time::Duration;

/// Reads `0..available` from its offset on, then waits for more (a live source whose
/// feeders are gone); replays from any offset it reported.
struct Shrinking {
    next: u64,
    available: u64,
}

impl Source for Shrinking {
    type Item = u64;

    fn poll_next(&mut self) -> SourcePoll<u64> {
        if self.next < self.available {
            self.next += 1;
            return SourcePoll::Ready(self.next - 1);
        }
        SourcePoll::Pending { until: None }
    }

    fn has_data(&self) -> bool {
        self.next < self.available
    }

    fn can_replay(&self) -> bool {
        true
    }

    fn checkpoint(&mut self, _epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        Ok(self.next.to_le_bytes().to_vec())
    }

    fn restore(&mut self, offset: &[u8]) -> Result<(), BoxError> {
        let bytes: [u8; 8] = offset.try_into().map_err(|_| "bad offset")?;
        self.next = u64::from_le_bytes(bytes);
        Ok(())
    }
}

/// Stages every epoch; with `fail`, the commit of the first epoch with rows fails.
#[derive(Clone)]
struct FailingOnce {
    fail: bool,
    rows: usize,
}

impl Sink<u64> for FailingOnce {
    fn write(&mut self, _record: u64) -> Result<(), BoxError> {
        self.rows += 1;
        Ok(())
    }

    fn prepare_commit(&mut self, _epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        if std::mem::take(&mut self.rows) == 0 {
            return Ok(None);
        }
        let fail = std::mem::take(&mut self.fail);
        Ok(Some(Box::new(move || {
            if fail {
                Err("the output store is down".into())
            } else {
                Ok(())
            }
        })))
    }
}

fn query(dir: &std::path::Path, available: u64, fail: bool) -> Query {
    let mut query = Query::builder();
    query
        .checkpoint(CheckpointConfig::new(dir).durability(Durability::OsBuffered))
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(5),
        });
    query
        .source("live", Shrinking { next: 0, available })
        .sink("out", FailingOnce { fail, rows: 0 });
    query.start().expect("start")
}

#[test]
fn a_replay_the_source_cannot_complete_fails_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    // Run 1: batch 1 holds 10 records and its commit fails: the batch is logged in the
    // offset log, never committed.
    let first = query(dir.path(), 10, true);
    match finish(&first, "the failing run") {
        Err(Error::Sink { operator, .. }) => assert_eq!(operator, "out"),
        other => panic!("expected the commit to fail the query, got {other:?}"),
    }

    // Run 2: the source now holds only 4 of the 10 records batch 1 must replay.
    let second = query(dir.path(), 4, false);
    wait_until("the restart replays batch 1", || {
        second.progress().checkpoint.and_then(|c| c.replayed_epoch) == Some(1)
    });
    let (done, stopped) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(second.stop());
    });
    let result = stopped
        .recv_timeout(HANG_GUARD)
        .expect("stop() returned (it hung waiting for the replay)");
    match result {
        Err(Error::Source { operator, source }) => {
            assert_eq!(operator, "live");
            let message = source.to_string();
            assert!(
                message.contains("epoch 1") && message.contains("6 more records"),
                "{message}"
            );
        }
        other => panic!("expected the incomplete replay to fail the query, got {other:?}"),
    }
}
