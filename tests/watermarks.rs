//! Watermark generation (`with_event_time(..).with_watermark(delay)`), end to end.
//!
//! An observer operator after the generator reports, for every record, the epoch it ran
//! in and the watermark it saw, and every watermark that reached it. The references are
//! plain computations over the input:
//!
//! * micro-batch (Spark's rule): every record of epoch `e` sees
//!   `max{event time of the records of epochs < e} − delay`, over all source instances,
//!   however the records were split into batches; and once the data stops, a batch
//!   without data still brings the last watermark (Spark's no-data batch);
//! * continuous, sending after every record: a record sees the largest event time up to
//!   and including itself, minus the delay;
//! * watermarks never go backwards, and a restart from a checkpoint starts at the
//!   restored watermark;
//! * an input idle past its timeout stops holding back the watermark of a union, and
//!   holds it again once it produces.

mod common;

use common::{finish_ok, wait_until};
use rivulet::checkpoint::CheckpointConfig;
use rivulet::operator::{Context, Operator};
use rivulet::time::{ManualClock, WatermarkConfig};
use rivulet::{Query, Timestamp, Trigger};
use std::collections::BTreeMap;
use std::time::Duration;

/// What the observer saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A record with event time `time`, handled in `epoch` under `watermark`.
    Record {
        epoch: u64,
        time: i64,
        watermark: i64,
    },
    /// The watermark moved to `watermark` during `epoch`.
    Watermark { epoch: u64, watermark: i64 },
}

/// Reports every record with its epoch and watermark, and every watermark.
#[derive(Debug, Clone, Default)]
struct Observer;

impl Operator<i64> for Observer {
    type Out = Seen;
    type Key = ();
    type Side = ();

    fn on_record<C: Context<Seen>>(&mut self, time: i64, ctx: &mut C) {
        ctx.push(Seen::Record {
            epoch: ctx.epoch().0,
            time,
            watermark: ctx.watermark().0,
        });
    }

    fn on_watermark<C: Context<Seen>>(&mut self, watermark: Timestamp, ctx: &mut C) {
        ctx.push(Seen::Watermark {
            epoch: ctx.epoch().0,
            watermark: watermark.0,
        });
    }
}

const DELAY: i64 = 1_000;

fn event_time(time: &i64) -> Timestamp {
    Timestamp(*time)
}

/// Deterministic out-of-order event times: a rising clock with jitter of up to ±`spread`.
fn times(seed: u64, n: usize, spread: i64) -> Vec<i64> {
    let mut rng = common::Rng::new(seed);
    (0..n as i64)
        .map(|i| i * 10 + rng.below(2 * spread as u64 + 1) as i64 - spread)
        .collect()
}

/// Every record of epoch `e` saw the watermark of all records of earlier epochs.
fn check_batch_watermarks(seen: &[Seen]) {
    let mut max_by_epoch: BTreeMap<u64, i64> = BTreeMap::new();
    for row in seen {
        if let Seen::Record { epoch, time, .. } = row {
            let max = max_by_epoch.entry(*epoch).or_insert(i64::MIN);
            *max = (*max).max(*time);
        }
    }
    let mut checked = 0;
    for row in seen {
        if let Seen::Record {
            epoch, watermark, ..
        } = row
        {
            let before = max_by_epoch
                .range(..*epoch)
                .map(|(_, max)| *max)
                .max()
                .unwrap_or(i64::MIN);
            let expected = if before == i64::MIN {
                i64::MIN
            } else {
                before - DELAY
            };
            assert_eq!(
                *watermark, expected,
                "a record of epoch {epoch} saw watermark {watermark}, not the one of the \
                 batches before it ({expected})"
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
    assert!(
        max_by_epoch.len() > 3,
        "the input should span several batches: {:?}",
        max_by_epoch.keys().collect::<Vec<_>>()
    );
}

fn watermarks(seen: &[Seen]) -> Vec<i64> {
    seen.iter()
        .filter_map(|row| match row {
            Seen::Watermark { watermark, .. } => Some(*watermark),
            _ => None,
        })
        .collect()
}

fn assert_rising(watermarks: &[i64]) {
    assert!(
        watermarks.windows(2).all(|pair| pair[0] < pair[1]),
        "watermarks must only move forward: {watermarks:?}"
    );
}

#[test]
fn a_micro_batch_uses_the_watermark_of_the_batches_before_it() {
    for instances in [1usize, 3] {
        let mut query = Query::builder();
        query
            .trigger(Trigger::MicroBatch {
                interval: Duration::ZERO,
            })
            .max_batch_records(37);
        let inputs: Vec<Vec<i64>> = (0..instances)
            .map(|i| times(7 + i as u64, 400, 300))
            .collect();
        let sources = inputs.clone();
        let seen = query
            .source_instances("times", instances, move |i| {
                rivulet::source::IterSource::new(sources[i].clone().into_iter())
            })
            .with_event_time(event_time)
            .with_watermark(Duration::from_micros(DELAY as u64))
            // A keyed exchange onto one instance: one observer sees every record.
            .key_by(|_| ())
            .with_parallelism(1)
            .aggregate("gather", Gather)
            .operator("observer", Observer)
            .to_memory("seen");
        let running = query.start().expect("start");
        finish_ok(&running, "micro-batch watermarks");
        let seen = seen.rows();
        check_batch_watermarks(&seen);
        assert_rising(&watermarks(&seen));
    }
}

/// Passes the keyed records on without their key.
#[derive(Debug, Clone)]
struct Gather;

impl Operator<((), i64)> for Gather {
    type Out = i64;
    type Key = ();
    type Side = ();
    fn on_record<C: Context<i64>>(&mut self, (_, time): ((), i64), ctx: &mut C) {
        ctx.push(time);
    }
}

/// Once the data stops, a batch without data brings the watermark of the last batch
/// (Spark's no-data batch): without it the observer would never see it.
#[test]
fn a_batch_without_data_brings_the_last_watermark() {
    let mut query = Query::builder();
    query.trigger(Trigger::MicroBatch {
        interval: Duration::from_millis(5),
    });
    let (handle, times) = query.push_source::<i64>("times");
    let seen = times
        .with_event_time(event_time)
        .with_watermark(Duration::from_micros(DELAY as u64))
        .operator("observer", Observer)
        .to_memory("seen");
    let running = query.start().expect("start");
    for time in [5_000, 3_000, 9_000, 8_000] {
        handle.push(time).expect("push");
    }
    wait_until("the last batch's watermark, without more data", || {
        watermarks(&seen.rows()).last() == Some(&(9_000 - DELAY))
    });
    let rows = seen.rows();
    let last_data_epoch = rows
        .iter()
        .filter_map(|row| match row {
            Seen::Record { epoch, .. } => Some(*epoch),
            _ => None,
        })
        .max()
        .unwrap();
    let watermark_epoch = rows
        .iter()
        .rev()
        .find_map(|row| match row {
            Seen::Watermark { epoch, .. } => Some(*epoch),
            _ => None,
        })
        .unwrap();
    assert!(
        watermark_epoch > last_data_epoch,
        "the watermark arrives in a later batch ({watermark_epoch}) than the data \
         ({last_data_epoch})"
    );
    drop(handle);
    finish_ok(&running, "no-data batch");
    check_batch_watermarks_loosely(&rows);
}

/// Like [`check_batch_watermarks`], without asking for several batches.
fn check_batch_watermarks_loosely(seen: &[Seen]) {
    let mut max_before = i64::MIN;
    let mut epoch_max: BTreeMap<u64, i64> = BTreeMap::new();
    for row in seen {
        if let Seen::Record { epoch, time, .. } = row {
            let max = epoch_max.entry(*epoch).or_insert(i64::MIN);
            *max = (*max).max(*time);
        }
    }
    for (epoch, max) in &epoch_max {
        for row in seen {
            if let Seen::Record {
                epoch: e,
                watermark,
                ..
            } = row
            {
                if e == epoch {
                    let expected = if max_before == i64::MIN {
                        i64::MIN
                    } else {
                        max_before - DELAY
                    };
                    assert_eq!(*watermark, expected, "epoch {epoch}");
                }
            }
        }
        max_before = max_before.max(*max);
    }
}

/// Continuous, sending after every record: each record sees the largest event time up
/// to and including itself, minus the delay; the watermarks sent are exactly the
/// running maxima that rose.
#[test]
fn a_continuous_watermark_follows_the_records() {
    let input = times(3, 2_000, 400);
    let mut query = Query::builder();
    let seen = query
        .from_iter("times", input.clone())
        .with_event_time(event_time)
        .with_watermark_config(
            WatermarkConfig::new(Duration::from_micros(DELAY as u64)).emit_every_records(1),
        )
        .new_thread()
        .operator("observer", Observer)
        .to_memory("seen");
    let running = query.start().expect("start");
    finish_ok(&running, "continuous watermarks");
    let rows = seen.rows();
    let mut max = i64::MIN;
    let mut expected_marks = Vec::new();
    let observed: Vec<(i64, i64)> = rows
        .iter()
        .filter_map(|row| match row {
            Seen::Record {
                time, watermark, ..
            } => Some((*time, *watermark)),
            _ => None,
        })
        .collect();
    let mut expected = Vec::new();
    for time in &input {
        if *time > max {
            max = *time;
            expected_marks.push(max - DELAY);
        }
        expected.push((*time, max - DELAY));
    }
    assert_eq!(observed, expected);
    assert_eq!(watermarks(&rows), expected_marks);
}

/// Sent every 100 records (or within the interval): the watermark a record sees lags
/// the running maximum by at most 100 records' worth, never leads it, never goes back.
#[test]
fn a_periodic_watermark_never_leads_the_records() {
    let input = times(4, 5_000, 200);
    let mut query = Query::builder();
    let seen = query
        .from_iter("times", input.clone())
        .with_event_time(event_time)
        .with_watermark_config(
            WatermarkConfig::new(Duration::from_micros(DELAY as u64))
                .emit_every_records(100)
                .emit_interval(Duration::from_secs(3600)),
        )
        .operator("observer", Observer)
        .to_memory("seen");
    finish_ok(&query.start().expect("start"), "periodic watermarks");
    let rows = seen.rows();
    let mut max = i64::MIN;
    let mut index = 0usize;
    for row in &rows {
        if let Seen::Record {
            time, watermark, ..
        } = row
        {
            max = max.max(*time);
            assert!(
                *watermark <= max - DELAY,
                "record {index} saw a watermark ahead of the data"
            );
            let lagged = input[..=index.saturating_sub(100)].iter().max().unwrap();
            if index >= 100 {
                assert!(
                    *watermark >= lagged - DELAY,
                    "record {index}: watermark lags too far"
                );
            }
            index += 1;
        }
    }
    let marks = watermarks(&rows);
    assert_rising(&marks);
    assert!(
        marks.len() >= 5_000 / 100 / 2,
        "sent periodically: {}",
        marks.len()
    );
    assert_eq!(
        marks.last(),
        Some(&(input.iter().max().unwrap() - DELAY)),
        "the last is sent at the end"
    );
}

/// A restart from a checkpoint starts at the watermark of the restored epoch: the first
/// records after it are judged against it, not against nothing.
#[test]
fn the_watermark_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let run = |times: Vec<i64>| {
        let mut query = Query::builder();
        query
            .checkpoint(CheckpointConfig::new(dir.path()))
            .trigger(Trigger::MicroBatch {
                interval: Duration::ZERO,
            });
        let seen = query
            .from_iter("times", times)
            .with_event_time(event_time)
            .with_watermark(Duration::from_micros(DELAY as u64))
            .operator("observer", Observer)
            .to_memory("seen");
        finish_ok(&query.start().expect("start"), "checkpointed run");
        seen.rows()
    };
    let first = run(vec![10_000, 50_000, 20_000]);
    assert!(!first.is_empty());
    // The iterator source resumes after the 3 items it checkpointed.
    let second = run(vec![10_000, 50_000, 20_000, 1_000]);
    let record = second
        .iter()
        .find_map(|row| match row {
            Seen::Record { watermark, .. } => Some(*watermark),
            _ => None,
        })
        .expect("the record after the restart");
    assert_eq!(record, 50_000 - DELAY, "restored watermark");
}

/// Two inputs through a union: the union's watermark is the smaller one, until the
/// slow input has been idle past its timeout; then the other leads alone, and the idle
/// one counts again once it produces.
#[test]
fn an_idle_input_stops_holding_the_watermark_back() {
    let clock = ManualClock::new(Timestamp(1_000_000));
    let mut query = Query::builder();
    query.clock(clock.clock());
    let config = WatermarkConfig::new(Duration::from_micros(DELAY as u64))
        .emit_every_records(1)
        .idle_timeout(Duration::from_secs(1));
    let (fast, fast_times) = query.push_source::<i64>("fast");
    let (slow, slow_times) = query.push_source::<i64>("slow");
    let fast_times = fast_times
        .with_event_time(event_time)
        .with_watermark_config(config);
    let slow_times = slow_times
        .with_event_time(event_time)
        .with_watermark_config(config);
    let seen = fast_times
        .union(slow_times)
        .operator("observer", Observer)
        .to_memory("seen");
    let running = query.start().expect("start");
    slow.push(2_000).unwrap();
    fast.push(10_000).unwrap();
    wait_until("both watermarks in", || {
        watermarks(&seen.rows()).last() == Some(&(2_000 - DELAY))
    });
    fast.push(20_000).unwrap();
    // The slow input is idle after a second without records; the fast one keeps going.
    for step in 1..=30 {
        clock.advance(Duration::from_millis(100));
        fast.push(20_000 + step).unwrap();
    }
    wait_until("the fast input leads alone", || {
        watermarks(&seen.rows()).last() == Some(&(20_030 - DELAY))
    });
    slow.push(5_000).unwrap();
    wait_until("the slow input's record", || {
        seen.rows()
            .iter()
            .any(|row| matches!(row, Seen::Record { time: 5_000, .. }))
    });
    fast.push(30_000).unwrap();
    wait_until("the fast input's next record", || {
        seen.rows()
            .iter()
            .any(|row| matches!(row, Seen::Record { time: 30_000, .. }))
    });
    let marks = watermarks(&seen.rows());
    assert_rising(&marks);
    assert_eq!(
        marks.last(),
        Some(&(20_030 - DELAY)),
        "the slow input is active again at 5000 − delay: the union's watermark waits for it"
    );
    drop((fast, slow));
    finish_ok(&running, "idle inputs");
}
