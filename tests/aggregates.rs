//! `KeyedStream::agg` end to end: an oil pump's daily statistics against a sequential
//! reference.
//!
//! Readings `(pump, date, hz, psi)` are grouped by `(pump, date)`, and each group's
//! count, max, min and mean of the frequency and mean of the pressure are computed by
//! `agg` with a tuple of built-in aggregates. A plain loop with a `HashMap` computes
//! the same statistics after every reading: the reference.
//!
//! * Continuous trigger, update mode: every key emits exactly the reference's running
//!   statistics, one row per reading, in order (at parallelism 1 and behind a keyed
//!   exchange at parallelism 2).
//! * Micro-batch trigger, update mode: within an epoch a key emits at most one row; a
//!   key's rows are some of the reference's running statistics, in order, ending with
//!   the final ones.
//! * Complete mode: the final table equals the reference's final table.
//! * `agg_with` builds the same aggregate without closure annotations.
//! * A checkpoint round trip: the operator snapshotted after any prefix of the input
//!   and restored into a fresh operator (through the `Harness`) ends with the same
//!   statistics as the reference.
//!
//! Each running row includes the count, so a row identifies its position in the key's
//! running sequence. The data holds no NaN (NaN's order is in the unit tests), and
//! sums are added per key in arrival order on both sides, so floats compare exactly.

mod common;

use common::{finish_ok, per_key, Rng};
use rivulet::aggregate::{avg, count, max, min, Aggregate};
use rivulet::error::BoxError;
use rivulet::operator::keyed::KeyedAggregate;
use rivulet::operator::Harness;
use rivulet::sink::Sink;
use rivulet::trigger::EmitMode;
use rivulet::{Epoch, ExecutionMode, OutputMode, Query, Trigger};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One reading of a pump.
#[derive(Debug, Clone, PartialEq)]
struct Reading {
    pump: String,
    date: String,
    hz: f64,
    psi: f64,
}

/// The group of a reading: a pump on a day.
type Key = (String, String);

/// count, max hz, min hz, mean hz, mean psi.
type Stats = (u64, f64, f64, f64, f64);

/// The aggregate under test, with the closures' record type written out.
fn daily_stats() -> impl Aggregate<Reading, Out = Stats> {
    (
        count(),
        max(|r: &Reading| r.hz),
        min(|r: &Reading| r.hz),
        avg(|r: &Reading| r.hz),
        avg(|r: &Reading| r.psi),
    )
}

fn key(r: &Reading) -> Key {
    (r.pump.clone(), r.date.clone())
}

/// `n` readings of 3 pumps over 4 days, in no particular order of pump or day.
fn readings(n: usize, seed: u64) -> Vec<Reading> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let pump = format!("pump-{}", rng.below(3));
            let date = format!("2024-03-{:02}", 1 + rng.below(4));
            // Frequencies around 50 Hz, some negative (a sensor fault), some repeated.
            let hz = match rng.below(10) {
                0 => -(rng.below(100) as f64) / 8.0,
                1 => 50.0,
                _ => 40.0 + rng.below(2_000) as f64 / 100.0,
            };
            let psi = 1_000.0 + rng.below(50_000) as f64 / 7.0;
            Reading {
                pump,
                date,
                hz,
                psi,
            }
        })
        .collect()
}

/// The reference: each key's statistics after each of its readings, by a plain loop.
fn running_stats(input: &[Reading]) -> HashMap<Key, Vec<Stats>> {
    struct Acc {
        n: u64,
        max: f64,
        min: f64,
        hz: f64,
        psi: f64,
    }
    let mut state: HashMap<Key, Acc> = HashMap::new();
    let mut running: HashMap<Key, Vec<Stats>> = HashMap::new();
    for r in input {
        let acc = state.entry(key(r)).or_insert(Acc {
            n: 0,
            max: f64::NEG_INFINITY,
            min: f64::INFINITY,
            hz: 0.0,
            psi: 0.0,
        });
        acc.n += 1;
        if r.hz > acc.max {
            acc.max = r.hz;
        }
        if r.hz < acc.min {
            acc.min = r.hz;
        }
        acc.hz += r.hz;
        acc.psi += r.psi;
        let n = acc.n as f64;
        running
            .entry(key(r))
            .or_default()
            .push((acc.n, acc.max, acc.min, acc.hz / n, acc.psi / n));
    }
    running
}

/// The reference's final statistics per key, sorted by key.
fn final_table(running: &HashMap<Key, Vec<Stats>>) -> Vec<(Key, Stats)> {
    let mut table: Vec<(Key, Stats)> = running
        .iter()
        .map(|(key, stats)| (key.clone(), *stats.last().expect("a key has readings")))
        .collect();
    table.sort_by(|a, b| a.0.cmp(&b.0));
    table
}

/// A row with the epoch its sink instance wrote it in.
type EpochRow = (u64, (Key, Stats));

/// Every row with the epoch its sink instance wrote it in.
#[derive(Clone, Default)]
struct EpochRows {
    rows: Arc<Mutex<Vec<EpochRow>>>,
    epoch: u64,
}

impl Sink<(Key, Stats)> for EpochRows {
    fn begin_epoch(&mut self, epoch: Epoch, _mode: EmitMode) -> Result<(), BoxError> {
        self.epoch = epoch.0;
        Ok(())
    }

    fn write(&mut self, row: (Key, Stats)) -> Result<(), BoxError> {
        self.rows.lock().unwrap().push((self.epoch, row));
        Ok(())
    }
}

impl EpochRows {
    fn rows(&self) -> Vec<EpochRow> {
        self.rows.lock().unwrap().clone()
    }
}

/// Runs the daily statistics over `input` under `trigger` in update mode, the
/// aggregate at `parallelism`, and returns the rows with their epochs.
fn run_update(input: &[Reading], trigger: Trigger, parallelism: usize) -> Vec<EpochRow> {
    let sink = EpochRows::default();
    let mut query = Query::builder();
    query
        .trigger(trigger)
        .output_mode(OutputMode::Update)
        .ring_capacity(64)
        .max_batch_records(97);
    query
        .from_iter("readings", input.to_vec())
        .key_by(|r: &Reading| (r.pump.clone(), r.date.clone()))
        .with_parallelism(parallelism)
        .agg((
            count(),
            max(|r: &Reading| r.hz),
            min(|r: &Reading| r.hz),
            avg(|r: &Reading| r.hz),
            avg(|r: &Reading| r.psi),
        ))
        .sink("stats", sink.clone());
    let running = query.start().expect("start");
    finish_ok(&running, "daily statistics");
    let progress = running.progress();
    let op = progress.operator("agg").expect("an operator named agg");
    assert_eq!(op.parallelism, parallelism);
    assert_eq!(op.records_in, input.len() as u64);
    sink.rows()
}

const PARALLELISMS: [usize; 2] = [1, 2];

#[test]
fn continuous_update_emits_every_running_value_in_order() {
    let input = readings(1_500, 1);
    let expected = running_stats(&input);
    for parallelism in PARALLELISMS {
        let trigger = Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(2),
        };
        let rows = run_update(&input, trigger, parallelism);
        assert_eq!(
            rows.len(),
            input.len(),
            "parallelism {parallelism}: a row per reading"
        );
        let rows: Vec<(Key, Stats)> = rows.into_iter().map(|(_, row)| row).collect();
        let seen = per_key(&rows);
        assert_eq!(
            seen.len(),
            expected.len(),
            "parallelism {parallelism}: keys"
        );
        for (key, stats) in &expected {
            assert_eq!(
                seen.get(key),
                Some(stats),
                "parallelism {parallelism}: {key:?}"
            );
        }
    }
}

#[test]
fn micro_batch_update_emits_changed_keys_once_per_batch() {
    let input = readings(1_500, 2);
    let expected = running_stats(&input);
    for parallelism in PARALLELISMS {
        let trigger = Trigger::MicroBatch {
            interval: Duration::from_millis(1),
        };
        let rows = run_update(&input, trigger, parallelism);
        let what = format!("parallelism {parallelism}");
        // At most one row per key per epoch.
        let mut per_epoch: HashMap<(u64, Key), usize> = HashMap::new();
        for (epoch, (key, _)) in &rows {
            *per_epoch.entry((*epoch, key.clone())).or_default() += 1;
        }
        assert!(
            per_epoch.values().all(|&n| n == 1),
            "{what}: a key emitted twice in one epoch"
        );
        // Batches of at most 97 readings: several batches, fewer rows than readings.
        assert!(rows.len() < input.len(), "{what}: {} rows", rows.len());
        let epochs: Vec<u64> = rows.iter().map(|(epoch, _)| *epoch).collect();
        assert!(epochs.windows(2).any(|w| w[0] != w[1]), "{what}: one epoch");
        // Each key's rows are running values (row n is the value after n readings), in
        // order, the last one final.
        let rows: Vec<(Key, Stats)> = rows.into_iter().map(|(_, row)| row).collect();
        let seen = per_key(&rows);
        assert_eq!(seen.len(), expected.len(), "{what}: keys");
        for (key, stats) in &expected {
            let emitted = &seen[key];
            for pair in emitted.windows(2) {
                assert!(pair[0].0 < pair[1].0, "{what}: {key:?} out of order");
            }
            for row in emitted {
                assert_eq!(*row, stats[row.0 as usize - 1], "{what}: {key:?}");
            }
            assert_eq!(emitted.last(), stats.last(), "{what}: {key:?} final");
        }
    }
}

#[test]
fn complete_mode_ends_with_the_reference_table() {
    let input = readings(800, 3);
    let expected = final_table(&running_stats(&input));
    let triggers = [
        Trigger::MicroBatch {
            interval: Duration::from_millis(1),
        },
        Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(2),
        },
    ];
    for trigger in triggers {
        for parallelism in PARALLELISMS {
            let mut query = Query::builder();
            query
                .trigger(trigger)
                .output_mode(OutputMode::Complete)
                .max_batch_records(50);
            let table = query
                .from_iter("readings", input.clone())
                .key_by(key)
                .with_parallelism(parallelism)
                .agg(daily_stats())
                .to_memory("stats");
            let running = query.start().expect("start");
            finish_ok(&running, "complete daily statistics");
            let mut rows = table.rows();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(
                rows,
                expected,
                "{:?}, parallelism {parallelism}",
                trigger.mode()
            );
        }
    }
}

#[test]
fn agg_with_needs_no_closure_annotations() {
    let input = readings(400, 4);
    let expected = final_table(&running_stats(&input));
    let mut query = Query::builder();
    query
        .trigger(Trigger::AvailableNow)
        .output_mode(OutputMode::Complete);
    let table = query
        .from_iter("readings", input)
        .key_by(|r| (r.pump.clone(), r.date.clone()))
        .agg_with(|over| {
            (
                over.count(),
                over.max(|r| r.hz),
                over.min(|r| r.hz),
                over.avg(|r| r.hz),
                over.avg(|r| r.psi),
            )
        })
        .to_memory("stats");
    let running = query.start().expect("start");
    finish_ok(&running, "agg_with");
    let mut rows = table.rows();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(rows, expected);
}

#[test]
fn snapshot_and_restore_through_the_harness() {
    let input = readings(300, 5);
    let expected = final_table(&running_stats(&input));
    let complete = EmitMode {
        execution: ExecutionMode::MicroBatch,
        output: OutputMode::Complete,
    };
    for cut in [0, 1, 17, 150, 299, 300] {
        let mut before = Harness::new(KeyedAggregate::new(daily_stats()));
        for r in &input[..cut] {
            before.push((key(r), r.clone()));
        }
        before.end_epoch();
        let snapshot = before.snapshot().expect("snapshot");
        // Restored twice over (a restored operator snapshots what it restored).
        let restored: Harness<(Key, Reading), _> =
            Harness::restore(KeyedAggregate::new(daily_stats()), snapshot.as_deref())
                .expect("restore");
        let again = restored
            .snapshot()
            .expect("snapshot of the restored operator");
        let mut after = Harness::restore(KeyedAggregate::new(daily_stats()), again.as_deref())
            .expect("restore again");
        after.set_emit_mode(complete);
        for r in &input[cut..] {
            after.push((key(r), r.clone()));
        }
        after.end_epoch();
        let mut rows = after.take_output();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(rows, expected, "snapshot after {cut} readings");
    }
}
