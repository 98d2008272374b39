//! The batch time of a micro-batch (Spark's `batchTimestampMs`) is recorded in the
//! offset log, and a batch replayed after a restart runs at it: it fires exactly the
//! processing-time timers the original batch fired, and `Context::processing_time`
//! reads the same time in it, however far the clock moved meanwhile.
//!
//! On a `ManualClock`: three timers are set in batch 1; the clock moves past the first,
//! which runs a batch without data that fires it; that batch's sink commit fails, so it
//! is complete but uncommitted and a restart replays it. The restart's clock is past all
//! three timers. The replayed batch must stage exactly what the original staged (the
//! first timer, at the original batch time), and the other two fire in the batch after.

mod common;

use common::{finish, finish_ok, wait_until};
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::error::BoxError;
use rivulet::operator::{Context, Operator, Timer};
use rivulet::sink::{EpochCommit, Sink};
use rivulet::time::ManualClock;
use rivulet::trigger::EmitMode;
use rivulet::{Epoch, Error, Query, Timestamp, Trigger};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A row: `(timer key, timer time)`, or `(MARK, processing time at the batch's end)`.
type Row = (u64, i64);
const MARK: u64 = u64::MAX;
/// The first run's clock, µs.
const T0: i64 = 1_000_000;

/// Sets a processing-time timer per record `(key, due)`; emits each timer when it fires
/// and, at every marker, the processing time it reads.
#[derive(Debug, Clone)]
struct Alarms;

impl Operator<(u64, i64)> for Alarms {
    type Out = Row;
    type Key = u64;
    type Side = ();

    fn on_record<C: Context<Row, u64>>(&mut self, (key, due): (u64, i64), ctx: &mut C) {
        ctx.register_processing_time_timer(key, Timestamp(due));
    }

    fn on_timer<C: Context<Row, u64>>(&mut self, timer: Timer<u64>, ctx: &mut C) {
        ctx.push((timer.key, timer.time.0));
    }

    fn on_marker<C: Context<Row, u64>>(&mut self, _epoch: Epoch, ctx: &mut C) {
        ctx.push((MARK, ctx.processing_time().0));
    }
}

/// What the sink of every run shares with the test.
#[derive(Debug, Default)]
struct Probe {
    /// `(run, epoch, rows)` of every `prepare_commit` with rows.
    staged: Mutex<Vec<(u32, u64, Vec<Row>)>>,
    /// Rows whose commit ran.
    published: Mutex<Vec<Row>>,
}

/// Stages each epoch's rows; with `fail`, the commit of the first epoch holding a timer
/// fails.
#[derive(Debug, Clone)]
struct Staging {
    probe: Arc<Probe>,
    run: u32,
    fail: bool,
    rows: Vec<Row>,
}

impl Sink<Row> for Staging {
    fn begin_epoch(&mut self, _epoch: Epoch, _mode: EmitMode) -> Result<(), BoxError> {
        Ok(())
    }

    fn write(&mut self, row: Row) -> Result<(), BoxError> {
        self.rows.push(row);
        Ok(())
    }

    fn prepare_commit(&mut self, epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        if self.rows.is_empty() {
            return Ok(None);
        }
        let rows = std::mem::take(&mut self.rows);
        self.probe
            .staged
            .lock()
            .unwrap()
            .push((self.run, epoch.0, rows.clone()));
        let fails = self.fail && rows.iter().any(|(key, _)| *key != MARK);
        self.fail &= !fails;
        let probe = self.probe.clone();
        Ok(Some(Box::new(move || {
            if fails {
                return Err("the disk is full".into());
            }
            probe.published.lock().unwrap().extend(rows);
            Ok(())
        })))
    }
}

/// A query on `dir` with `clock`, its push handle and the started query.
fn start(
    dir: &Path,
    clock: &ManualClock,
    probe: &Arc<Probe>,
    run: u32,
    fail: bool,
) -> (rivulet::PushHandle<(u64, i64)>, rivulet::Query) {
    let mut query = Query::builder();
    query
        .clock(clock.clock())
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(2),
        })
        .checkpoint(CheckpointConfig::new(dir).durability(Durability::OsBuffered));
    let (handle, input) = query.push_source::<(u64, i64)>("alarms_in");
    input.operator("alarms", Alarms).sink(
        "staging",
        Staging {
            probe: probe.clone(),
            run,
            fail,
            rows: Vec::new(),
        },
    );
    if run == 1 {
        for key in 1..=3 {
            handle.push((key, T0 + 100 * key as i64)).unwrap();
        }
    }
    (handle, query.start().expect("start"))
}

fn staged_in(probe: &Probe, run: u32) -> Vec<(u64, Vec<Row>)> {
    probe
        .staged
        .lock()
        .unwrap()
        .iter()
        .filter(|(r, _, _)| *r == run)
        .map(|(_, epoch, rows)| (*epoch, rows.clone()))
        .collect()
}

#[test]
fn a_replayed_batch_fires_exactly_the_timers_the_original_fired() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());

    // Run 1: batch 1 sets the timers at T0 + 100, 200, 300; at T0 + 150 a batch without
    // data fires the first, and its commit fails.
    let clock = ManualClock::new(Timestamp(T0));
    let (handle, running) = start(dir.path(), &clock, &probe, 1, true);
    wait_until("batch 1 is committed", || {
        !probe.published.lock().unwrap().is_empty()
    });
    assert_eq!(*probe.published.lock().unwrap(), vec![(MARK, T0)]);
    clock.set(Timestamp(T0 + 150));
    match finish(&running, "the failing run") {
        Err(Error::Sink { operator, source }) => {
            assert_eq!(operator, "staging");
            assert!(source.to_string().contains("disk is full"), "{source}");
        }
        other => panic!("expected the commit to fail the query, got {other:?}"),
    }
    drop(handle);
    let original = staged_in(&probe, 1);
    let (failed_epoch, failed_rows) = original.last().cloned().expect("a staged batch");
    assert_eq!(failed_rows, vec![(1, T0 + 100), (MARK, T0 + 150)]);

    // Run 2, long after: every timer is due by the clock, but the replayed batch runs
    // at its recorded time.
    let clock = ManualClock::new(Timestamp(T0 + 1_000));
    let (handle, running) = start(dir.path(), &clock, &probe, 2, false);
    wait_until("the other timers fire after the replay", || {
        probe.published.lock().unwrap().len() >= 5
    });
    drop(handle);
    finish_ok(&running, "the restarted run");
    let replayed = staged_in(&probe, 2);
    assert_eq!(
        replayed.first(),
        Some(&(failed_epoch, failed_rows.clone())),
        "the replayed batch staged other rows (run 2: {replayed:?})"
    );
    assert_eq!(
        replayed.get(1),
        Some(&(
            failed_epoch + 1,
            vec![(2, T0 + 200), (3, T0 + 300), (MARK, T0 + 1_000)]
        )),
        "the batch after the replay (run 2: {replayed:?})"
    );
    // Every timer published once.
    let mut timers: Vec<Row> = probe
        .published
        .lock()
        .unwrap()
        .iter()
        .filter(|(key, _)| *key != MARK)
        .copied()
        .collect();
    timers.sort();
    assert_eq!(timers, vec![(1, T0 + 100), (2, T0 + 200), (3, T0 + 300)]);
}
