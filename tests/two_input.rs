//! Two-input operators (`Stream::connect`, `KeyedStream::connect`) against sequential
//! references.
//!
//! * A keyed two-input operator sees every record of both inputs once, each key on one
//!   instance, in both trigger modes and at several parallelisms.
//! * The watermark it sees is the minimum of both inputs': with two in-order inputs and
//!   no delay, no record is ever behind the operator's watermark, however fast one input
//!   runs ahead of the other.
//! * Its state checkpoints and restores (aligned and at-least-once): a restarted query
//!   continues from the checkpoint and ends with the reference's totals.
//! * A panic in one side's hook fails the query, naming the operator.

mod common;

use common::{finish, finish_ok, Rng};
use rivulet::checkpoint::{codec, CheckpointConfig, CheckpointMode, Durability};
use rivulet::error::BoxError;
use rivulet::operator::{Context, TwoInputOperator};
use rivulet::{Query, Timestamp, Trigger};
use std::collections::BTreeMap;
use std::time::Duration;

/// Per key: how many left records, the sum of the right records.
type Totals = BTreeMap<u32, (u64, u64)>;

/// Counts left records and sums right values per key; emits `(key, (count, sum))` for
/// every key it holds at the end.
#[derive(Clone, Default)]
struct CountAndSum {
    totals: Totals,
}

impl TwoInputOperator<(u32, u64), (u32, u64)> for CountAndSum {
    type Out = (u32, (u64, u64));
    type Key = ();
    type Side = ();

    fn on_left<C: Context<Self::Out>>(&mut self, (key, _): (u32, u64), _ctx: &mut C) {
        self.totals.entry(key).or_default().0 += 1;
    }

    fn on_right<C: Context<Self::Out>>(&mut self, (key, value): (u32, u64), _ctx: &mut C) {
        self.totals.entry(key).or_default().1 += value;
    }

    fn on_end<C: Context<Self::Out>>(&mut self, ctx: &mut C) {
        for (key, totals) in &self.totals {
            ctx.push((*key, *totals));
        }
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(codec::encode(&self.totals)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.totals = codec::decode(state)?;
        Ok(())
    }
}

fn left_input(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.below(40)).collect()
}

fn right_input(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| rng.below(1_000) * 40 + rng.below(37))
        .collect()
}

fn left_key(x: &u64) -> u32 {
    (*x % 40) as u32
}

fn right_key(x: &u64) -> u32 {
    (*x % 40) as u32
}

fn reference(left: &[u64], right: &[u64]) -> Totals {
    let mut totals = Totals::new();
    for x in left {
        totals.entry(left_key(x)).or_default().0 += 1;
    }
    for x in right {
        totals.entry(right_key(x)).or_default().1 += x;
    }
    totals
}

#[test]
fn keyed_connect_sees_every_record_of_both_inputs_once() {
    let left = left_input(5_000, 1);
    let right = right_input(3_000, 2);
    let expected = reference(&left, &right);
    let triggers = [
        Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(2),
        },
        Trigger::MicroBatch {
            interval: Duration::from_millis(1),
        },
    ];
    for trigger in triggers {
        for parallelism in [1, 3] {
            let mut query = Query::builder();
            query
                .trigger(trigger)
                .parallelism(parallelism)
                .ring_capacity(16)
                .max_batch_records(101);
            let l = query.from_iter("left", left.clone()).key_by(left_key);
            let r = query.from_iter("right", right.clone()).key_by(right_key);
            let out = l
                .connect(r)
                .operator("count_and_sum", CountAndSum::default())
                .to_memory("out");
            let running = query.start().expect("start");
            finish_ok(&running, "keyed connect");
            let what = format!("{trigger:?}, parallelism {parallelism}");
            let rows = out.rows();
            // Each key reached exactly one instance: one row per key.
            assert_eq!(rows.len(), expected.len(), "{what}: {rows:?}");
            let got: Totals = rows.into_iter().collect();
            assert_eq!(got, expected, "{what}");
            let progress = running.progress();
            let op = progress.operator("count_and_sum").expect("operator");
            assert_eq!(op.parallelism, parallelism, "{what}");
            assert_eq!(op.records_in, (left.len() + right.len()) as u64, "{what}");
        }
    }
}

/// Records every record behind its watermark: `(side, event time, watermark)`.
#[derive(Clone, Default)]
struct LateDetector;

impl TwoInputOperator<u64, u64> for LateDetector {
    type Out = (char, u64, i64);
    type Key = ();
    type Side = ();

    fn on_left<C: Context<Self::Out>>(&mut self, time: u64, ctx: &mut C) {
        if (time as i64) < ctx.watermark().0 {
            ctx.push(('L', time, ctx.watermark().0));
        }
    }

    fn on_right<C: Context<Self::Out>>(&mut self, time: u64, ctx: &mut C) {
        if (time as i64) < ctx.watermark().0 {
            ctx.push(('R', time, ctx.watermark().0));
        }
    }
}

#[test]
fn the_watermark_is_the_minimum_of_both_inputs() {
    // The left input's event time runs a hundred times faster than the right's: were
    // the operator's watermark the left's (or the maximum), right records would fall
    // behind it.
    let left: Vec<u64> = (0..20_000u64).map(|i| i * 100).collect();
    let right: Vec<u64> = (0..20_000u64).collect();
    for trigger in [
        Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(1),
        },
        Trigger::MicroBatch {
            interval: Duration::from_millis(1),
        },
    ] {
        let mut query = Query::builder();
        query.trigger(trigger).max_batch_records(997);
        let l = query
            .from_iter("left", left.clone())
            .with_event_time(|t: &u64| Timestamp(*t as i64))
            .with_watermark(Duration::ZERO);
        let r = query
            .from_iter("right", right.clone())
            .with_event_time(|t: &u64| Timestamp(*t as i64))
            .with_watermark(Duration::ZERO);
        let connected = l.connect(r);
        assert!(connected.is_watermarked());
        let late = connected
            .operator("late_detector", LateDetector)
            .to_memory("late");
        let running = query.start().expect("start");
        finish_ok(&running, "two watermarked inputs");
        assert_eq!(
            late.rows(),
            vec![],
            "{trigger:?}: records behind the watermark"
        );
    }
}

#[test]
fn two_input_state_restores_from_checkpoints() {
    for mode in [CheckpointMode::Aligned, CheckpointMode::AtLeastOnce] {
        let dir = tempfile::tempdir().unwrap();
        let left = left_input(4_000, 3);
        let right = right_input(2_000, 4);
        let run = |l_end: usize, r_end: usize| {
            let mut query = Query::builder();
            query.parallelism(2).ring_capacity(8).checkpoint(
                CheckpointConfig::new(dir.path())
                    .interval(Duration::from_millis(1))
                    .durability(Durability::OsBuffered)
                    .mode(mode),
            );
            let l = query
                .from_iter("left", left[..l_end].to_vec())
                .key_by(left_key);
            let r = query
                .from_iter("right", right[..r_end].to_vec())
                .key_by(right_key);
            let out = l
                .connect(r)
                .operator("count_and_sum", CountAndSum::default())
                .to_memory("out");
            let running = query.start().expect("start");
            finish_ok(&running, "checkpointed two-input query");
            out.rows().into_iter().collect::<Totals>()
        };
        // The first run ends naturally (its last epoch checkpoints the final state); the
        // second resumes both sources after what the first read and continues the state.
        assert_eq!(run(1_500, 700), reference(&left[..1_500], &right[..700]));
        assert_eq!(run(4_000, 2_000), reference(&left, &right), "{mode:?}");
    }
}

/// Panics on the first right record.
#[derive(Clone)]
struct PanicsOnRight;

impl TwoInputOperator<u64, u64> for PanicsOnRight {
    type Out = u64;
    type Key = ();
    type Side = ();
    fn on_left<C: Context<u64>>(&mut self, x: u64, ctx: &mut C) {
        ctx.push(x);
    }
    fn on_right<C: Context<u64>>(&mut self, _: u64, _ctx: &mut C) {
        panic!("right side refused");
    }
}

#[test]
fn a_panic_in_one_side_fails_the_query_naming_the_operator() {
    let mut query = Query::builder();
    let l = query.from_iter("left", 0..100u64);
    let r = query.from_iter("right", 0..100u64);
    l.connect(r)
        .operator("fragile", PanicsOnRight)
        .for_each(|_| {});
    let running = query.start().expect("start");
    let error = finish(&running, "panicking two-input operator").expect_err("must fail");
    let message = error.to_string();
    assert!(message.contains("fragile"), "{message}");
    assert!(message.contains("right side refused"), "{message}");
}

#[test]
fn connected_keyed_streams_must_agree_on_parallelism() {
    let mut query = Query::builder();
    let l = query
        .from_iter("left", 0..10u64)
        .key_by(left_key)
        .with_parallelism(2);
    let r = query
        .from_iter("right", 0..10u64)
        .key_by(right_key)
        .with_parallelism(3);
    l.connect(r)
        .operator("count_and_sum", CountAndSum::default())
        .for_each(|_| {});
    let error = query.start().expect_err("mismatched parallelism");
    assert!(
        error.to_string().contains("same number of instances"),
        "{error}"
    );
}
