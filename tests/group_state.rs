//! `map_groups_with_state`, `flat_map_groups_with_state` and `update_state_by_key` in
//! running queries, against sequential references of the same functions.
//!
//! * Random `(key, value)` streams under continuous and micro-batch triggers, at
//!   parallelism 1 and 2: `flat_map_groups_with_state` with a function whose rows do not
//!   depend on how records are grouped into calls (a row per record) emits exactly the
//!   reference's rows per key; `map_groups_with_state` (a row per call) emits per key a
//!   rising subsequence of the reference's running counts, every one of them in
//!   continuous mode, ending with the total; `update_state_by_key`'s last round per
//!   instance is the reference's final state of that instance's keys. (The exact
//!   per-batch semantics, which depend on where batches end, are checked through the
//!   `Harness` in the unit tests, `src/state/tests.rs`.)
//! * Event-time timeouts: sessions per key in a watermarked query time out exactly once,
//!   only once the watermark is past the session's timeout, in both modes.
//! * Processing-time timeouts on a `ManualClock`: nothing before the clock passes the
//!   timeout, then exactly one timeout call without further input, in both modes.
//! * Spark's output-mode rules refuse queries at `start()`, with a clear message.
//!
//! Waits are hang guards only (`common`).

mod common;

use common::{finish_ok, per_key, wait_until, Rng};
use rivulet::error::BoxError;
use rivulet::operator::partition_of;
use rivulet::sink::Sink;
use rivulet::state::{GroupState, GroupStateTimeout, Values};
use rivulet::time::ManualClock;
use rivulet::trigger::EmitMode;
use rivulet::{Epoch, OutputMode, Query, Timestamp, Trigger};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn continuous() -> Trigger {
    Trigger::Continuous {
        checkpoint_interval: Duration::from_millis(2),
    }
}

fn micro_batch() -> Trigger {
    Trigger::MicroBatch {
        interval: Duration::from_millis(2),
    }
}

/// `n` records `(key, value)`, keys below 20, values below 50 (0 resets a key).
fn input(n: usize, seed: u64) -> Vec<(u32, u32)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| (rng.below(20) as u32, rng.below(50) as u32))
        .collect()
}

/// Every row with the epoch its sink instance wrote it in.
#[derive(Clone, Default)]
struct EpochRows<T> {
    rows: Arc<Mutex<Vec<(u64, T)>>>,
    epoch: u64,
}

impl<T: Send + 'static> Sink<T> for EpochRows<T> {
    fn begin_epoch(&mut self, epoch: Epoch, _mode: EmitMode) -> Result<(), BoxError> {
        self.epoch = epoch.0;
        Ok(())
    }

    fn write(&mut self, row: T) -> Result<(), BoxError> {
        self.rows.lock().unwrap().push((self.epoch, row));
        Ok(())
    }
}

/// Running sums per record; a 0 resets the key (its state is removed).
fn running_sums(
    key: &u32,
    values: Values<'_, (u32, u32)>,
    state: &mut GroupState<u64>,
) -> Vec<(u32, u64)> {
    let mut rows = Vec::with_capacity(values.len());
    for (_, v) in values {
        if v == 0 {
            state.remove();
            rows.push((*key, 0));
        } else {
            let sum = state.get_option().copied().unwrap_or(0) + u64::from(v);
            state.update(sum);
            rows.push((*key, sum));
        }
    }
    rows
}

/// The reference of `running_sums`: a plain loop.
fn reference_sums(records: &[(u32, u32)]) -> Vec<(u32, u64)> {
    let mut sums: BTreeMap<u32, u64> = BTreeMap::new();
    records
        .iter()
        .map(|&(key, v)| {
            let sum = if v == 0 {
                sums.remove(&key);
                0
            } else {
                let sum = sums.entry(key).or_default();
                *sum += u64::from(v);
                *sum
            };
            (key, sum)
        })
        .collect()
}

#[test]
fn flat_map_groups_with_state_equals_the_reference() {
    let records = input(4_000, 1);
    let expected = per_key(&reference_sums(&records));
    for trigger in [continuous(), micro_batch()] {
        for parallelism in [1, 2] {
            let mut query = Query::builder();
            query
                .trigger(trigger)
                .output_mode(OutputMode::Append)
                .max_batch_records(97)
                .ring_capacity(64);
            let out = query
                .from_iter("records", records.clone())
                .key_by(|(key, _)| *key)
                .with_parallelism(parallelism)
                .flat_map_groups_with_state(
                    OutputMode::Append,
                    GroupStateTimeout::NoTimeout,
                    running_sums,
                )
                .to_memory("sums");
            let running = query.start().unwrap();
            finish_ok(&running, "flat_map_groups_with_state");
            assert_eq!(
                per_key(&out.rows()),
                expected,
                "{trigger}, parallelism {parallelism}"
            );
        }
    }
}

#[test]
fn map_groups_with_state_equals_the_reference() {
    let records = input(4_000, 2);
    let mut totals: BTreeMap<u32, u64> = BTreeMap::new();
    for (key, _) in &records {
        *totals.entry(*key).or_default() += 1;
    }
    for trigger in [continuous(), micro_batch()] {
        for parallelism in [1, 2] {
            let mut query = Query::builder();
            query
                .trigger(trigger)
                .max_batch_records(97)
                .ring_capacity(64);
            let out = query
                .from_iter("records", records.clone())
                .key_by(|(key, _)| *key)
                .with_parallelism(parallelism)
                .map_groups_with_state(
                    GroupStateTimeout::NoTimeout,
                    |key: &u32, values, state: &mut GroupState<u64>| {
                        let count = state.get_option().copied().unwrap_or(0) + values.len() as u64;
                        state.update(count);
                        (*key, count)
                    },
                )
                .to_memory("counts");
            let running = query.start().unwrap();
            finish_ok(&running, "map_groups_with_state");
            let rows = per_key(&out.rows());
            let what = format!("{trigger}, parallelism {parallelism}");
            assert_eq!(rows.len(), totals.len(), "{what}");
            for (key, counts) in rows {
                assert_eq!(counts.last(), totals.get(&key), "{what}: key {key}");
                assert!(counts.windows(2).all(|w| w[0] < w[1]), "{what}: rising");
                if trigger.mode() == rivulet::ExecutionMode::Continuous {
                    let every: Vec<u64> = (1..=totals[&key]).collect();
                    assert_eq!(counts, every, "{what}: a row per record");
                }
            }
        }
    }
}

#[test]
fn update_state_by_key_ends_with_the_reference_state() {
    let records = input(4_000, 3);
    // The reference's final state: sums, a 0 removing the key.
    let mut state: BTreeMap<u32, u64> = BTreeMap::new();
    for &(key, v) in &records {
        if v == 0 {
            state.remove(&key);
        } else {
            *state.entry(key).or_default() += u64::from(v);
        }
    }
    for trigger in [continuous(), micro_batch()] {
        for parallelism in [1usize, 2] {
            let sink = EpochRows::default();
            let mut query = Query::builder();
            query
                .trigger(trigger)
                .max_batch_records(97)
                .ring_capacity(64);
            query
                .from_iter("records", records.clone())
                .key_by(|(key, _)| *key)
                .with_parallelism(parallelism)
                .update_state_by_key(|values: Vec<(u32, u32)>, sum: Option<u64>| {
                    let mut sum = sum;
                    for (_, v) in values {
                        sum = (v != 0).then(|| sum.unwrap_or(0) + u64::from(v));
                    }
                    sum
                })
                .sink("state", sink.clone());
            let running = query.start().unwrap();
            finish_ok(&running, "update_state_by_key");
            let rows = sink.rows.lock().unwrap().clone();
            let what = format!("{trigger}, parallelism {parallelism}");
            for instance in 0..parallelism {
                let mine = |key: &u32| partition_of(key, parallelism) == instance;
                let expected: Vec<(u32, u64)> = state
                    .iter()
                    .filter(|(key, _)| mine(key))
                    .map(|(k, s)| (*k, *s))
                    .collect();
                assert!(!expected.is_empty(), "the seed leaves every instance state");
                let last = rows
                    .iter()
                    .filter(|(_, (key, _))| mine(key))
                    .map(|(epoch, _)| *epoch)
                    .max()
                    .expect("rows");
                let mut got: Vec<(u32, u64)> = rows
                    .iter()
                    .filter(|(epoch, (key, _))| *epoch == last && mine(key))
                    .map(|(_, row)| *row)
                    .collect();
                got.sort();
                assert_eq!(got, expected, "{what}: instance {instance}'s last round");
            }
        }
    }
}

/// Sessions: `(key, event time)` records; a session ends once the watermark passes its
/// last record's time + `GAP`, emitting `(key, first, last, records)`.
const GAP: i64 = 50;

fn sessions(
    key: &u32,
    values: Values<'_, (u32, i64)>,
    state: &mut GroupState<(i64, i64, u32)>,
) -> Vec<(u32, i64, i64, u32, i64)> {
    if state.has_timed_out() {
        let (first, last, n) = state.take().expect("a timed-out group has state");
        let watermark = state.current_watermark().0;
        return vec![(*key, first, last, n, watermark)];
    }
    let mut session = state.get_option().copied();
    for (_, t) in values {
        let (first, last, n) = session.unwrap_or((t, t, 0));
        session = Some((first.min(t), last.max(t), n + 1));
    }
    let session = session.expect("a call with records");
    state.update(session);
    state
        .set_timeout_timestamp(Timestamp(session.1 + GAP))
        .expect("records are never behind the watermark here");
    Vec::new()
}

#[test]
fn event_time_timeouts_fire_once_after_the_watermark_passes() {
    // Keys 0..40 get records for a while each (every 10 µs a record for one of the
    // four keys active then), in event-time order, then never again: each key's one
    // session is known in advance, and it must time out once the watermark passes it.
    const DELAY: i64 = 5;
    let records: Vec<(u32, i64)> = (0..2_000i64)
        .map(|i| (((i / 200) * 4 + i % 4) as u32, 100 + i * 10))
        .collect();
    let mut expected: BTreeMap<u32, (i64, i64, u32)> = BTreeMap::new();
    for &(key, t) in &records {
        let (first, last, n) = expected.entry(key).or_insert((t, t, 0));
        *first = (*first).min(t);
        *last = (*last).max(t);
        *n += 1;
    }
    let final_watermark = records.last().unwrap().1 - DELAY;
    for trigger in [continuous(), micro_batch()] {
        let mut query = Query::builder();
        query
            .trigger(trigger)
            .output_mode(OutputMode::Append)
            .max_batch_records(97)
            .ring_capacity(64);
        let out = query
            .from_iter("records", records.clone())
            .with_event_time(|(_, t): &(u32, i64)| Timestamp(*t))
            .with_watermark(Duration::from_micros(DELAY as u64))
            .key_by(|(key, _)| *key)
            .with_parallelism(2)
            .flat_map_groups_with_state(
                OutputMode::Append,
                GroupStateTimeout::EventTimeTimeout,
                sessions,
            )
            .to_memory("sessions");
        let running = query.start().unwrap();
        finish_ok(&running, "sessions");
        let mut rows = out.rows();
        rows.sort();
        let closed: Vec<(u32, i64, i64, u32)> = expected
            .iter()
            .filter(|(_, (_, last, _))| last + GAP < final_watermark)
            .map(|(key, (first, last, n))| (*key, *first, *last, *n))
            .collect();
        assert!(closed.len() > 30, "most sessions close");
        let got: Vec<(u32, i64, i64, u32)> = rows
            .iter()
            .map(|&(key, first, last, n, watermark)| {
                assert!(
                    watermark > last + GAP,
                    "{trigger}: key {key} timed out at watermark {watermark}, before its \
                     timeout {}",
                    last + GAP
                );
                (key, first, last, n)
            })
            .collect();
        assert_eq!(got, closed, "{trigger}: each closed session exactly once");
    }
}

#[test]
fn processing_time_timeouts_fire_once_on_the_clock() {
    for trigger in [continuous(), micro_batch()] {
        let clock = ManualClock::new(Timestamp(1_000_000));
        let mut query = Query::builder();
        query.clock(clock.clock()).trigger(trigger);
        let (input, records) = query.push_source::<(u32, u32)>("records");
        let out = records
            .key_by(|(key, _)| *key)
            .map_groups_with_state(
                GroupStateTimeout::ProcessingTimeTimeout,
                |key: &u32, values, state: &mut GroupState<u32>| {
                    if state.has_timed_out() {
                        let n = state.take().unwrap();
                        return (*key, n, true, state.current_processing_time());
                    }
                    let n = state.get_option().copied().unwrap_or(0) + values.len() as u32;
                    state.update(n);
                    state.set_timeout_duration(Duration::from_secs(10)).unwrap();
                    (*key, n, false, state.current_processing_time())
                },
            )
            .to_memory("out");
        let running = query.start().unwrap();
        input.push((1, 0)).unwrap();
        input.push((2, 0)).unwrap();
        out.wait_for_len(2, common::HANG_GUARD);
        // Key 1 gets another record at +5 s: its timeout moves to +15 s.
        clock.set(Timestamp(6_000_000));
        input.push((1, 0)).unwrap();
        wait_until("key 1's second record", || out.rows().len() >= 3);
        // +10 s exactly: not past key 2's timeout yet.
        clock.set(Timestamp(11_000_000));
        assert!(input.flush(common::HANG_GUARD));
        clock.set(Timestamp(11_000_001));
        wait_until("key 2's timeout", || out.rows().len() >= 4);
        clock.set(Timestamp(16_000_001));
        wait_until("key 1's timeout", || out.rows().len() >= 5);
        // Much later: nothing more (each timeout fired once and the state is gone).
        clock.set(Timestamp(100_000_000));
        drop(input);
        finish_ok(&running, "processing-time timeouts");
        let rows = out.rows();
        let timeouts: Vec<(u32, u32, Timestamp)> = rows
            .iter()
            .filter(|row| row.2)
            .map(|row| (row.0, row.1, row.3))
            .collect();
        assert_eq!(timeouts.len(), 2, "{trigger}: {rows:?}");
        assert_eq!((timeouts[0].0, timeouts[0].1), (2, 1), "{trigger}");
        assert!(
            timeouts[0].2 > Timestamp(11_000_000),
            "{trigger}: not early"
        );
        assert_eq!((timeouts[1].0, timeouts[1].1), (1, 2), "{trigger}");
        assert!(
            timeouts[1].2 > Timestamp(16_000_000),
            "{trigger}: not early"
        );
    }
}

/// `start()`'s error for a query with `f` applied to a keyed stream.
fn refused(mode: OutputMode, build: impl FnOnce(&mut rivulet::QueryBuilder)) -> String {
    let mut query = Query::builder();
    query.output_mode(mode);
    build(&mut query);
    match query.start() {
        Ok(_) => panic!("started"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn output_modes_follow_sparks_rules() {
    let counts = |q: &mut rivulet::QueryBuilder| {
        q.from_iter("n", 0..3u32)
            .key_by(|n| n % 2)
            .map_groups_with_state(GroupStateTimeout::NoTimeout, |k: &u32, v, s| {
                s.update(v.len());
                (*k, *s.get())
            })
            .for_each(|_| {});
    };
    for mode in [OutputMode::Append, OutputMode::Complete] {
        let error = refused(mode, counts);
        assert!(
            error.contains("map_groups_with_state") && error.contains("update output mode only"),
            "{error}"
        );
    }
    let flat = |own: OutputMode| {
        move |q: &mut rivulet::QueryBuilder| {
            q.from_iter("n", 0..3u32)
                .key_by(|n| n % 2)
                .flat_map_groups_with_state(own, GroupStateTimeout::NoTimeout, |_: &u32, v, s| {
                    s.update(0u8);
                    v.collect::<Vec<u32>>()
                })
                .for_each(|_| {});
        }
    };
    let error = refused(OutputMode::Update, flat(OutputMode::Append));
    assert!(
        error.contains("in append mode is not supported with update output mode"),
        "{error}"
    );
    let error = refused(OutputMode::Complete, flat(OutputMode::Complete));
    assert!(error.contains("must be append or update"), "{error}");
    let error = refused(OutputMode::Update, |q| {
        q.from_iter("n", 0..3u32)
            .key_by(|n| n % 2)
            .flat_map_groups_with_state(
                OutputMode::Update,
                GroupStateTimeout::NoTimeout,
                |k: &u32, _, s: &mut GroupState<u8>| {
                    s.update(0);
                    [*k]
                },
            )
            .key_by(|n| *n)
            .count()
            .for_each(|_| {});
    });
    assert!(
        error.contains("in update mode is not supported with an aggregation"),
        "{error}"
    );
    let error = refused(OutputMode::Append, |q| {
        q.from_iter("n", 0..3u32)
            .key_by(|n| n % 2)
            .flat_map_groups_with_state(
                OutputMode::Append,
                GroupStateTimeout::EventTimeTimeout,
                |k: &u32, _, s: &mut GroupState<u8>| {
                    s.update(0);
                    [*k]
                },
            )
            .for_each(|_| {});
    });
    assert!(error.contains("needs a watermark"), "{error}");
    // Allowed: the same operators in their modes run.
    for (mode, build) in [
        (
            OutputMode::Update,
            Box::new(counts) as Box<dyn FnOnce(&mut rivulet::QueryBuilder)>,
        ),
        (OutputMode::Update, Box::new(flat(OutputMode::Update))),
        (OutputMode::Append, Box::new(flat(OutputMode::Append))),
    ] {
        let mut query = Query::builder();
        query.output_mode(mode);
        build(&mut query);
        finish_ok(&query.start().unwrap(), "an allowed output mode");
    }
}
