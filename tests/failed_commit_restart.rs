//! A failed sink commit loses nothing across a restart: after the commit of an epoch fails
//! (or panics), no later epoch may be completed, committed or become the restore point,
//! so a restart on the same checkpoint directory delivers that epoch's rows again.
//!
//! The sinks here behave like the file sink: an epoch without records stages nothing
//! (`prepare_commit` returns `None`), so an empty epoch's completion needs no commit. That
//! is what let a later, empty epoch leapfrog the uncommitted one.
//!
//! The waits inside the test sinks and sources only order events that the engine leaves
//! to the scheduler (so the bug shows on every run); each is a hang guard with a message,
//! never a timing assertion.

mod common;

use common::{finish, sorted, wait_until};
use rivulet::checkpoint::recovery::inspect;
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::error::BoxError;
use rivulet::sink::file::read_committed;
use rivulet::sink::{EpochCommit, FileFormat, Sink};
use rivulet::source::{Source, SourcePoll};
use rivulet::trigger::EmitMode;
use rivulet::{Epoch, Error, Query, Trigger};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROWS: u64 = 1_000;

/// What a test's source and sink share with the test.
#[derive(Debug, Default)]
struct Probe {
    /// Rows the sink's commits published, over every run.
    published: Mutex<Vec<u64>>,
    /// The newest epoch the source took a checkpoint for.
    checkpointed: AtomicU64,
    /// The newest epoch the sink began.
    began: AtomicU64,
    /// Whether the sink was closed (end-of-stream reached it).
    closed: AtomicBool,
    /// The epoch whose commit failed (0: none).
    failed_epoch: AtomicU64,
}

/// When the sink's failing commit fails, so that the messages that used to let a later
/// epoch complete are certain to be queued at the coordinator by then.
#[derive(Debug, Clone, Copy)]
enum FailAfter {
    /// After the sink reached end-of-stream (its final message follows at once).
    SinkClosed,
    /// After the sink acknowledged the epoch after the failing one (it begins the one
    /// after that right after the acknowledgement). `prepare_commit` of the failing
    /// epoch waits until the next epoch has started, so that it can complete.
    NextEpochAcked,
}

/// Stages each epoch's rows and publishes them into [`Probe::published`] at commit; an
/// epoch without rows stages nothing. With `fail`, the first commit with rows fails.
#[derive(Debug, Clone)]
struct StagingSink {
    probe: Arc<Probe>,
    fail: Option<FailAfter>,
    panic: bool,
    rows: Vec<u64>,
}

impl StagingSink {
    fn new(probe: &Arc<Probe>, fail: Option<FailAfter>, panic: bool) -> Self {
        StagingSink {
            probe: probe.clone(),
            fail,
            panic,
            rows: Vec::new(),
        }
    }
}

impl Sink<u64> for StagingSink {
    fn begin_epoch(&mut self, epoch: Epoch, _mode: EmitMode) -> Result<(), BoxError> {
        self.probe.began.fetch_max(epoch.0, Ordering::SeqCst);
        Ok(())
    }

    fn write(&mut self, record: u64) -> Result<(), BoxError> {
        self.rows.push(record);
        Ok(())
    }

    fn prepare_commit(&mut self, epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        if self.rows.is_empty() {
            return Ok(None);
        }
        let rows = std::mem::take(&mut self.rows);
        let probe = self.probe.clone();
        let Some(fail) = self.fail.take() else {
            return Ok(Some(Box::new(move || {
                probe.published.lock().unwrap().extend(rows);
                Ok(())
            })));
        };
        probe.failed_epoch.store(epoch.0, Ordering::SeqCst);
        if let FailAfter::NextEpochAcked = fail {
            wait_until("the epoch after the failing one starts", || {
                probe.checkpointed.load(Ordering::SeqCst) > epoch.0
            });
        }
        let panic = self.panic;
        Ok(Some(Box::new(move || {
            match fail {
                FailAfter::SinkClosed => wait_until("the sink reaches end-of-stream", || {
                    probe.closed.load(Ordering::SeqCst)
                }),
                FailAfter::NextEpochAcked => {
                    wait_until("the sink acknowledges the next epoch", || {
                        probe.began.load(Ordering::SeqCst) > epoch.0 + 1
                    })
                }
            }
            if panic {
                panic!("commit exploded");
            }
            Err("no space left on device while publishing".into())
        })))
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.probe.closed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

fn config(dir: &Path) -> CheckpointConfig {
    CheckpointConfig::new(dir).durability(Durability::OsBuffered)
}

fn micro_batch() -> Trigger {
    Trigger::MicroBatch {
        interval: Duration::from_millis(2),
    }
}

fn expect_sink_failure(result: rivulet::Result<()>, sink: &str, panic: bool) {
    match result {
        Err(Error::Sink { operator, source }) if !panic => {
            assert_eq!(operator, sink);
            assert!(source.to_string().contains("no space left"), "{source}");
        }
        Err(Error::OperatorPanicked { operator, message }) if panic => {
            assert_eq!(operator, sink);
            assert!(message.contains("commit exploded"), "{message}");
        }
        other => panic!("expected the commit of `{sink}` to fail the query, got {other:?}"),
    }
}

/// The newest restorable epoch of `dir` and every complete epoch, for messages.
fn restore_point(dir: &Path) -> (Option<u64>, Vec<u64>) {
    let report = inspect(dir).unwrap();
    let restorable = report.newest_restorable().map(|entry| entry.epoch);
    let complete = report
        .complete
        .iter()
        .map(|(entry, _)| entry.epoch)
        .collect();
    (restorable, complete)
}

/// Micro-batch: batch 1 holds every row and its commit fails; the sink's end-of-stream
/// is already on its way, and it must not open a final epoch that becomes the restore
/// point with the source at its end.
fn micro_batch_commit_fails_then_restart(panic: bool) {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let run = |fail: Option<FailAfter>| {
        let mut query = Query::builder();
        query.checkpoint(config(dir.path())).trigger(micro_batch());
        query
            .from_iter("numbers", 0..ROWS)
            .sink("publisher", StagingSink::new(&probe, fail, panic));
        let running = query.start().expect("start");
        finish(&running, "micro-batch query with a staging sink")
    };
    expect_sink_failure(run(Some(FailAfter::SinkClosed)), "publisher", panic);
    assert!(probe.published.lock().unwrap().is_empty());
    let (restorable, complete) = restore_point(dir.path());
    assert_eq!(
        restorable, None,
        "batch 1 was never committed, yet epoch {restorable:?} is a restore point (complete: {complete:?})"
    );

    run(None).expect("the restarted query");
    // Exactly once: batch 1 is replayed with the same rows and published once.
    assert_eq!(
        sorted(probe.published.lock().unwrap().clone()),
        (0..ROWS).collect::<Vec<_>>()
    );
}

#[test]
fn a_failed_micro_batch_commit_is_delivered_after_a_restart() {
    micro_batch_commit_fails_then_restart(false);
}

#[test]
fn a_panicking_micro_batch_commit_is_delivered_after_a_restart() {
    micro_batch_commit_fails_then_restart(true);
}

/// Emits `0..ROWS`: the first half at once, the second half after its next checkpoint
/// (so the halves fall into different epochs), then waits (`end: false`) or ends.
#[derive(Debug)]
struct TwoHalves {
    probe: Arc<Probe>,
    next: u64,
    /// Whether a checkpoint was taken after the first half was emitted.
    checkpointed_after_first_half: bool,
    end: bool,
}

impl Source for TwoHalves {
    type Item = u64;

    fn poll_next(&mut self) -> SourcePoll<u64> {
        let half = ROWS / 2;
        let holding = self.next == half && !self.checkpointed_after_first_half;
        if self.next < ROWS && !holding {
            self.next += 1;
            return SourcePoll::Ready(self.next - 1);
        }
        if self.next == ROWS && self.end {
            return SourcePoll::Exhausted;
        }
        SourcePoll::Pending {
            until: Some(Instant::now() + Duration::from_millis(1)),
        }
    }

    fn can_replay(&self) -> bool {
        true
    }

    fn checkpoint(&mut self, epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        if self.next >= ROWS / 2 {
            self.checkpointed_after_first_half = true;
        }
        self.probe.checkpointed.fetch_max(epoch.0, Ordering::SeqCst);
        Ok(self.next.to_le_bytes().to_vec())
    }

    fn restore(&mut self, offset: &[u8]) -> Result<(), BoxError> {
        let bytes: [u8; 8] = offset.try_into().map_err(|_| "bad offset")?;
        self.next = u64::from_le_bytes(bytes);
        self.checkpointed_after_first_half = self.next >= ROWS / 2;
        Ok(())
    }
}

/// Continuous: the first epoch with rows fails its commit while the acknowledgements of
/// the next epoch are queued. That epoch must not complete, publish or become the
/// restore point; a restart emits every row again (at least once).
#[test]
fn a_failed_continuous_commit_is_delivered_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let run = |fail: Option<FailAfter>| {
        let mut query = Query::builder();
        query
            .checkpoint(config(dir.path()))
            .trigger(Trigger::Continuous {
                checkpoint_interval: Duration::from_millis(5),
            });
        let source = TwoHalves {
            probe: probe.clone(),
            next: 0,
            checkpointed_after_first_half: false,
            end: fail.is_none(),
        };
        query
            .source("numbers", source)
            // The sink waits for the source (see `FailAfter`): not on its thread.
            .new_thread()
            .sink("publisher", StagingSink::new(&probe, fail, false));
        let running = query.start().expect("start");
        finish(&running, "continuous query with a staging sink")
    };
    expect_sink_failure(run(Some(FailAfter::NextEpochAcked)), "publisher", false);
    assert!(
        probe.published.lock().unwrap().is_empty(),
        "an epoch after the failed one was published"
    );
    let (restorable, complete) = restore_point(dir.path());
    let failed_epoch = Some(probe.failed_epoch.load(Ordering::SeqCst));
    assert!(
        restorable.is_none() || restorable < failed_epoch,
        "epoch {restorable:?} is a restore point after the failed commit of {failed_epoch:?} (complete: {complete:?})"
    );

    run(None).expect("the restarted query");
    let mut published = probe.published.lock().unwrap().clone();
    published.sort();
    published.dedup();
    assert_eq!(published, (0..ROWS).collect::<Vec<_>>());
}

/// The real file sink: publishing batch 1 fails because a directory stands where its part
/// file is to be renamed to (as deterministic as a full disk, and unaffected by running as
/// root). After the obstacle is gone, a restart publishes every row exactly once.
#[test]
fn a_failed_file_publish_is_delivered_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("checkpoints");
    let out = dir.path().join("out");
    // Batch 1 of the only instance: the name the sink publishes it under.
    let obstacle = out.join("part-0000000001-000.csv");
    let run = |block: bool| {
        let mut query = Query::builder();
        query
            .checkpoint(config(&checkpoints))
            .trigger(micro_batch());
        let obstacle = obstacle.clone();
        query
            .from_iter("numbers", 0..ROWS)
            .map(move |n| {
                // After `start()` opened the sink (which clears leftovers), before the
                // batch can be published.
                if block && n == 0 {
                    std::fs::create_dir_all(obstacle.join("in-the-way")).unwrap();
                }
                (n, n % 7)
            })
            .to_files(&out, FileFormat::Csv);
        let running = query.start().expect("start");
        finish(&running, "micro-batch query into files")
    };
    match run(true) {
        Err(Error::Sink { operator, source }) => {
            assert!(operator.contains("files"), "{operator}");
            assert!(source.to_string().contains("part-0000000001"), "{source}");
        }
        other => panic!("expected the publish to fail the query, got {other:?}"),
    }
    assert!(read_committed::<(u64, u64)>(&out, FileFormat::Csv)
        .unwrap()
        .is_empty());
    let (restorable, complete) = restore_point(&checkpoints);
    assert_eq!(
        restorable, None,
        "batch 1 was never published, yet epoch {restorable:?} is a restore point (complete: {complete:?})"
    );

    std::fs::remove_dir_all(&obstacle).unwrap();
    run(false).expect("the restarted query");
    let rows: Vec<(u64, u64)> = read_committed(&out, FileFormat::Csv).unwrap();
    assert_eq!(
        sorted(rows),
        (0..ROWS).map(|n| (n, n % 7)).collect::<Vec<_>>()
    );
}
