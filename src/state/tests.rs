//! The state operators through [`Harness`], against sequential references: a plain
//! driver of the same user function that applies Spark's rules one step at a time.

use super::*;
use crate::event::Timestamp;
use crate::operator::{Context, Harness, Operator, TimeDomain, Timer};
use crate::trigger::{EmitMode, ExecutionMode, OutputMode};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

const CONTINUOUS: EmitMode = EmitMode {
    execution: ExecutionMode::Continuous,
    output: OutputMode::Update,
};
const MICRO_BATCH: EmitMode = EmitMode {
    execution: ExecutionMode::MicroBatch,
    output: OutputMode::Update,
};

// ---- KeyedState ----------------------------------------------------------------------

/// A user operator on `KeyedState`: `(key, Some(v))` adds `v` and sets an event-time
/// expiry at `v`; `(key, None)` removes the key (cancelling its timer). Emits expired keys.
#[derive(Clone)]
struct Expiring(KeyedState<u8, i64>);

impl Operator<(u8, Option<i64>)> for Expiring {
    type Out = (u8, i64);
    type Key = u8;
    type Side = ();

    fn on_record<C: Context<(u8, i64), u8>>(&mut self, (key, v): (u8, Option<i64>), ctx: &mut C) {
        match v {
            Some(v) => {
                *self.0.get_or_insert_with(key, || 0) += v;
                self.0
                    .set_expiry(&key, Some(Expiry::event_time(Timestamp(v))), ctx);
            }
            None => {
                self.0.remove_and_cancel(&key, ctx);
            }
        }
    }

    fn on_timer<C: Context<(u8, i64), u8>>(&mut self, timer: Timer<u8>, ctx: &mut C) {
        if let Some(sum) = self.0.expire(&timer) {
            ctx.push((timer.key, sum));
        }
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, crate::error::BoxError> {
        Ok(Some(self.0.snapshot()?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), crate::error::BoxError> {
        Ok(self.0.restore(state)?)
    }
}

#[test]
fn keyed_state_tracks_changes_until_taken() {
    let mut state: KeyedState<u8, u32> = KeyedState::tracking_changes();
    assert_eq!(state.insert(1, 10), None);
    assert_eq!(state.insert(1, 11), Some(10));
    *state.get_or_insert_with(2, || 0) += 5;
    assert_eq!(state.get_mut(&3), None, "absent: not changed");
    let mut changed: Vec<u8> = state.take_changed().collect();
    changed.sort();
    assert_eq!(changed, [1, 2]);
    assert_eq!(state.changed_len(), 0);
    assert_eq!(state.get(&2), Some(&5));
    assert_eq!(state.remove(&1), Some(11));
    assert_eq!(state.changed().copied().collect::<Vec<_>>(), [1]);
    assert_eq!(
        state.get(&1),
        None,
        "a removed key is changed and has no value"
    );
    state.clear_changed();
    state.retain(|_, v| {
        *v += 1;
        false
    });
    assert!(state.is_empty());
    assert_eq!(state.changed().copied().collect::<Vec<_>>(), [2]);
    assert!(state.estimated_bytes() > 0);

    let mut untracked: KeyedState<u8, u32> = KeyedState::new();
    untracked.insert(1, 1);
    assert_eq!(untracked.changed_len(), 0);
}

#[test]
fn keyed_state_update_each_replaces_or_removes() {
    let mut state: KeyedState<u8, u32> = KeyedState::new();
    for k in 0..6 {
        state.insert(k, u32::from(k));
    }
    state.update_each(|k, v| {
        *v = if k % 2 == 0 { v.map(|v| v * 10) } else { None };
    });
    let mut rows: Vec<(u8, u32)> = state.iter().map(|(k, v)| (*k, *v)).collect();
    rows.sort();
    assert_eq!(rows, [(0, 0), (2, 20), (4, 40)]);
}

#[test]
fn keyed_state_expiry_fires_once_and_follows_removal_and_restore() {
    let mut h = Harness::new(Expiring(KeyedState::new()));
    h.push((1, Some(10)));
    h.push((1, Some(20))); // replaces the expiry at 10 by one at 20 (sum 30)
    h.push((2, Some(15)));
    h.push((3, Some(12)));
    h.push((3, None)); // removed: its timer goes with it
    assert_eq!(h.timers().len(), 2, "one timer per live key");
    h.advance_watermark(Timestamp(15));
    assert_eq!(h.take_output(), [(2, 15)]);
    // Restored: the expiry at 20 still fires, once.
    let snapshot = h.snapshot().unwrap();
    let mut h = Harness::restore(Expiring(KeyedState::new()), snapshot.as_deref()).unwrap();
    assert_eq!(
        h.operator().0.expiry(&1),
        Some(Expiry::event_time(Timestamp(20)))
    );
    h.advance_watermark(Timestamp(100));
    assert_eq!(h.take_output(), [(1, 30)]);
    h.advance_watermark(Timestamp(200));
    assert!(h.take_output().is_empty() && h.timers().is_empty());
    assert!(h.operator().0.is_empty());
}

#[test]
fn a_timer_left_by_a_plain_remove_is_ignored() {
    let mut state: KeyedState<u8, u32> = KeyedState::new();
    state.insert(1, 1);
    let mut h: Harness<(u8, Option<i64>), Expiring> = Harness::new(Expiring(KeyedState::new()));
    // Drive `set_expiry` through a real context: the harness's operator.
    h.push((1, Some(5)));
    let timer = Timer {
        key: 1,
        time: Timestamp(5),
        domain: TimeDomain::EventTime,
    };
    assert!(h.operator().0.is_expiry(&timer));
    // On a state without that expiry the same timer is stale.
    assert!(!state.is_expiry(&timer));
    assert_eq!(state.expire(&timer), None);
    assert_eq!(state.remove(&1), Some(1));
}

#[test]
fn keyed_state_restore_rejects_garbage_and_keeps_its_values() {
    let mut state: KeyedState<u8, u32> = KeyedState::new();
    state.insert(1, 1);
    assert!(state.restore(&[0xff, 0xff, 0xff, 0xff]).is_err());
    assert_eq!(state.get(&1), Some(&1));
}

// ---- map_groups_with_state / flat_map_groups_with_state ------------------------------

/// `(key, kind, count, sum, records in the call)`.
type Row = (u8, &'static str, u32, i64, usize);
/// `(event time, x)`.
type Value = (i64, u32);
type St = (u32, i64);

/// The function under test: counts and sums each key's `x`s; an `x` divisible by 7
/// removes the state (later records start it again). Sets a timeout unless the call's
/// latest time is divisible by 5 (so timeouts are also reset by calls), even after a
/// removal (which must drop it). On a timeout: a row, then the state is removed if its
/// count is even, else kept with a new timeout.
fn session(
    conf: GroupStateTimeout,
) -> impl FnMut(&u8, Values<'_, Value>, &mut GroupState<'_, St>) -> Vec<Row> + Clone + Send + 'static
{
    move |key, values, state| {
        let set_timeout = |state: &mut GroupState<St>, at: i64, by: u64| match conf {
            GroupStateTimeout::EventTimeTimeout => {
                let t = Timestamp(at.max(state.current_watermark().0).max(1));
                state.set_timeout_timestamp(t).unwrap()
            }
            GroupStateTimeout::ProcessingTimeTimeout => state
                .set_timeout_duration(Duration::from_micros(by))
                .unwrap(),
            GroupStateTimeout::NoTimeout => {}
        };
        if state.has_timed_out() {
            assert_eq!(values.len(), 0, "a timeout call has no records");
            let (count, sum) = *state.get();
            if count % 2 == 0 {
                state.remove();
            } else {
                let at = state.current_watermark().0.saturating_add(3);
                set_timeout(state, at, 3);
            }
            return vec![(*key, "timeout", count, sum, 0)];
        }
        let n = values.len();
        let mut latest = i64::MIN;
        for (t, x) in values {
            latest = latest.max(t);
            if x % 7 == 0 {
                state.remove();
                continue;
            }
            let (count, sum) = state.get_option().copied().unwrap_or((0, 0));
            state.update((count + 1, sum + i64::from(x)));
        }
        if latest % 5 != 0 {
            set_timeout(state, latest + 4, (latest.rem_euclid(9) + 1) as u64);
        }
        let (count, sum) = state.get_option().copied().unwrap_or((0, 0));
        vec![(*key, "data", count, sum, n)]
    }
}

/// One step of a schedule.
#[derive(Debug, Clone)]
enum Step {
    Record(u8, Value),
    Watermark(i64),
    Clock(i64),
    EndEpoch,
    /// Snapshot and restore into a fresh operator (right after an epoch end).
    Restore,
}

/// The reference: a sequential driver of the same function with Spark's rules.
struct Model<F> {
    f: F,
    conf: GroupStateTimeout,
    micro_batch: bool,
    /// state and timeout (Spark's, not the timer's) per key
    groups: BTreeMap<u8, (Option<St>, Option<Timestamp>)>,
    batch: BTreeMap<u8, Vec<Value>>,
    watermark: Timestamp,
    now: Timestamp,
    out: Vec<Row>,
}

impl<F: FnMut(&u8, Values<'_, Value>, &mut GroupState<'_, St>) -> Vec<Row>> Model<F> {
    fn call(&mut self, key: u8, mut values: Vec<Value>, timed_out: bool) {
        let (value, _) = self.groups.remove(&key).unwrap_or((None, None));
        let mut state = GroupState::new(value, self.conf, timed_out, self.watermark, self.now);
        let rows = (self.f)(&key, Values::batch(&mut values), &mut state);
        self.out.extend(rows);
        if state.value.is_some() {
            self.groups.insert(key, (state.value, state.timeout));
        }
    }

    fn record(&mut self, key: u8, value: Value) {
        if self.micro_batch {
            self.batch.entry(key).or_default().push(value);
        } else {
            self.call(key, vec![value], false);
        }
    }

    /// Keys whose timeout is below `threshold`, in timer order (time, then key).
    fn timed_out(&self, threshold: Timestamp) -> Vec<u8> {
        let mut due: Vec<(Timestamp, u8)> = self
            .groups
            .iter()
            .filter_map(|(key, (_, timeout))| timeout.filter(|t| *t < threshold).map(|t| (t, *key)))
            .collect();
        due.sort();
        due.into_iter().map(|(_, key)| key).collect()
    }

    fn threshold(&self) -> Timestamp {
        match self.conf {
            GroupStateTimeout::EventTimeTimeout => self.watermark,
            GroupStateTimeout::ProcessingTimeTimeout => self.now,
            GroupStateTimeout::NoTimeout => Timestamp::MIN,
        }
    }

    /// Time moved: in continuous mode the timeouts now passed run at once.
    fn time_moved(&mut self) {
        if !self.micro_batch {
            for key in self.timed_out(self.threshold()) {
                self.call(key, Vec::new(), true);
            }
        }
    }

    fn end_epoch(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        let with_data: Vec<u8> = batch.keys().copied().collect();
        for (key, values) in batch {
            self.call(key, values, false);
        }
        for key in self.timed_out(self.threshold()) {
            if !with_data.contains(&key) {
                self.call(key, Vec::new(), true);
            }
        }
    }
}

/// Rows per key, in order.
fn per_key(rows: &[Row]) -> BTreeMap<u8, Vec<Row>> {
    let mut map: BTreeMap<u8, Vec<Row>> = BTreeMap::new();
    for row in rows {
        map.entry(row.0).or_default().push(*row);
    }
    map
}

fn check_groups(conf: GroupStateTimeout, mode: EmitMode, steps: &[Step]) {
    let new_op = || FlatMapGroupsWithState::new(conf, session(conf));
    let mut h = Harness::new(new_op());
    h.set_emit_mode(mode);
    let micro_batch = mode.execution == ExecutionMode::MicroBatch;
    let mut model = Model {
        f: session(conf),
        conf,
        micro_batch,
        groups: BTreeMap::new(),
        batch: BTreeMap::new(),
        watermark: Timestamp::MIN,
        now: Timestamp(0),
        out: Vec::new(),
    };
    let mut got = Vec::new();
    for step in steps.iter().chain([&Step::EndEpoch]) {
        match step {
            Step::Record(key, value) => {
                h.push((*key, *value));
                model.record(*key, *value);
            }
            Step::Watermark(by) => {
                let w = Timestamp(model.watermark.0.max(0) + by);
                if w > model.watermark {
                    model.watermark = w;
                    h.advance_watermark(w);
                    model.time_moved();
                }
            }
            Step::Clock(by) => {
                model.now = Timestamp(model.now.0 + by);
                h.set_processing_time(model.now);
                model.time_moved();
            }
            Step::EndEpoch => {
                h.end_epoch();
                model.end_epoch();
            }
            Step::Restore => {
                h.end_epoch();
                model.end_epoch();
                got.extend(h.take_output());
                let snapshot = h.snapshot().unwrap();
                h = Harness::restore(new_op(), snapshot.as_deref()).unwrap();
                h.set_emit_mode(mode);
                if model.watermark > Timestamp::MIN {
                    h.advance_watermark(model.watermark);
                }
                h.set_processing_time(model.now);
            }
        }
        if !micro_batch {
            // Continuous: every step's rows at once, in the reference's order.
            got.extend(h.take_output());
            assert_eq!(got, model.out, "after {step:?}");
        }
    }
    got.extend(h.take_output());
    assert_eq!(per_key(&got), per_key(&model.out));
    // Timers: exactly one per group with a timeout.
    let timeouts = model.groups.values().filter(|(_, t)| t.is_some()).count();
    assert_eq!(h.timers().len(), timeouts, "one timer per timeout");
    assert_eq!(h.operator().state().len(), model.groups.len());
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0u8..5, 0i64..80, 0u32..40).prop_map(|(k, t, x)| Step::Record(k, (t, x))),
        2 => (0i64..15).prop_map(Step::Watermark),
        2 => (0i64..6).prop_map(Step::Clock),
        2 => Just(Step::EndEpoch),
        1 => Just(Step::Restore),
    ]
}

fn conf() -> impl Strategy<Value = GroupStateTimeout> {
    prop_oneof![
        Just(GroupStateTimeout::NoTimeout),
        Just(GroupStateTimeout::ProcessingTimeTimeout),
        Just(GroupStateTimeout::EventTimeTimeout),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn groups_with_state_equal_the_sequential_reference(
        conf in conf(),
        micro_batch in any::<bool>(),
        steps in proptest::collection::vec(step(), 0..80),
    ) {
        let mode = if micro_batch { MICRO_BATCH } else { CONTINUOUS };
        check_groups(conf, mode, &steps);
    }
}

#[test]
fn an_event_time_timeout_fires_once_when_the_watermark_passes_it() {
    use Step::*;
    for mode in [CONTINUOUS, MICRO_BATCH] {
        let conf = GroupStateTimeout::EventTimeTimeout;
        let mut h = Harness::new(FlatMapGroupsWithState::new(conf, session(conf)));
        h.set_emit_mode(mode);
        h.push((1, (11, 2))); // timeout 15 (11 + 4)
        h.end_epoch();
        assert_eq!(h.take_output(), [(1, "data", 1, 2, 1)]);
        h.advance_watermark(Timestamp(15)); // not past 15 yet
        h.end_epoch();
        assert!(
            h.take_output().is_empty(),
            "{mode:?}: not before the watermark passes"
        );
        h.advance_watermark(Timestamp(16));
        h.end_epoch();
        // Count 1 is odd: the state stays with a timeout at 16 + 3.
        assert_eq!(h.take_output(), [(1, "timeout", 1, 2, 0)], "{mode:?}");
        h.advance_watermark(Timestamp(19));
        h.end_epoch();
        assert!(h.take_output().is_empty(), "{mode:?}: fired once");
        h.advance_watermark(Timestamp(20));
        h.end_epoch();
        assert_eq!(
            h.take_output(),
            [(1, "timeout", 1, 2, 0)],
            "{mode:?}: re-armed"
        );
        check_groups(
            conf,
            mode,
            &[
                Record(1, (11, 2)),
                Watermark(15),
                Watermark(1),
                EndEpoch,
                Watermark(30),
            ],
        );
    }
}

#[test]
fn in_a_micro_batch_a_group_with_records_does_not_time_out() {
    let conf = GroupStateTimeout::ProcessingTimeTimeout;
    let mut h = Harness::new(FlatMapGroupsWithState::new(conf, session(conf)));
    h.set_emit_mode(MICRO_BATCH);
    h.push((1, (1, 2))); // a timeout of 2 µs at clock 0
    h.push((2, (1, 3)));
    h.end_epoch();
    assert_eq!(h.take_output().len(), 2);
    h.set_processing_time(Timestamp(10)); // both timers fire...
    h.push((1, (2, 4))); // ...but key 1 has a record in this batch
    h.end_epoch();
    let rows = h.take_output();
    assert_eq!(per_key(&rows)[&1], [(1, "data", 2, 6, 1)]);
    assert_eq!(per_key(&rows)[&2], [(2, "timeout", 1, 3, 0)]);
}

#[test]
fn removing_the_state_removes_its_timeout() {
    let conf = GroupStateTimeout::EventTimeTimeout;
    let mut h = Harness::new(FlatMapGroupsWithState::new(conf, session(conf)));
    h.push((1, (11, 2)));
    assert_eq!(h.timers().len(), 1);
    // x = 14 removes the state; the call still asks for a timeout, which is dropped.
    h.push((1, (12, 14)));
    assert!(h.timers().is_empty());
    assert!(h.operator().state().is_empty());
    h.advance_watermark(Timestamp::MAX);
    assert_eq!(
        h.take_output(),
        [(1, "data", 1, 2, 1), (1, "data", 0, 0, 1)]
    );
}

#[test]
fn a_timeout_below_the_watermark_is_an_error() {
    let op = FlatMapGroupsWithState::new(
        GroupStateTimeout::EventTimeTimeout,
        |_: &u8, _: Values<'_, i64>, state: &mut GroupState<u8>| {
            let result = state.set_timeout_timestamp(Timestamp(5));
            state.update(1);
            [result.map_err(|error| error.to_string())]
        },
    );
    let mut h = Harness::new(op);
    h.push((1, 0));
    h.advance_watermark(Timestamp(6));
    h.push((1, 0));
    let out = h.take_output();
    assert_eq!(out[0], Ok(()));
    assert_eq!(
        out[1],
        Err(
            "timeout timestamp Timestamp(5) is earlier than the current watermark Timestamp(6)"
                .to_string()
        )
    );
}

// ---- update_state_by_key -------------------------------------------------------------

/// Counts rounds and sums values; a value of 0 resets the key (`None`), the rest of the
/// call's values start it again.
fn rounds(values: Vec<u32>, state: Option<(u32, u64)>) -> Option<(u32, u64)> {
    let mut state = state.map(|(rounds, sum)| (rounds + 1, sum));
    for v in values {
        state = if v == 0 {
            None
        } else {
            let (rounds, sum) = state.unwrap_or((1, 0));
            Some((rounds, sum + u64::from(v)))
        };
    }
    state
}

#[test]
fn update_state_by_key_equals_the_sequential_reference() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(200));
    let step = prop_oneof![
        6 => (0u8..6, 0u32..6).prop_map(|(k, v)| Some((k, v))),
        1 => Just(None),
    ];
    runner
        .run(&proptest::collection::vec(step, 0..60), |steps| {
            let mut h = Harness::new(UpdateStateByKey::new(rounds));
            let mut state: BTreeMap<u8, (u32, u64)> = BTreeMap::new();
            let mut pending: BTreeMap<u8, Vec<u32>> = BTreeMap::new();
            let round = |state: &mut BTreeMap<u8, (u32, u64)>,
                         pending: &mut BTreeMap<u8, Vec<u32>>| {
                let mut keys: Vec<u8> = state.keys().chain(pending.keys()).copied().collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    let values = pending.remove(&key).unwrap_or_default();
                    match rounds(values, state.remove(&key)) {
                        Some(s) => state.insert(key, s),
                        None => None,
                    };
                }
                state.iter().map(|(k, s)| (*k, *s)).collect::<Vec<_>>()
            };
            for step in &steps {
                match step {
                    Some((k, v)) => {
                        h.push((*k, *v));
                        pending.entry(*k).or_default().push(*v);
                    }
                    None => {
                        h.end_epoch();
                        let expected = round(&mut state, &mut pending);
                        let mut got = h.take_output();
                        got.sort();
                        prop_assert_eq!(got, expected);
                    }
                }
            }
            h.end();
            let mut got = h.take_output();
            got.sort();
            if pending.is_empty() {
                prop_assert!(got.is_empty(), "nothing new: no round at the end");
            } else {
                prop_assert_eq!(got, round(&mut state, &mut pending));
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn update_state_by_key_restores_its_state() {
    let mut h = Harness::new(UpdateStateByKey::new(rounds));
    h.push((1, 5));
    h.push((2, 1));
    h.end_epoch();
    h.take_output();
    let snapshot = h.snapshot().unwrap();
    let mut h = Harness::restore(UpdateStateByKey::new(rounds), snapshot.as_deref()).unwrap();
    h.push((2, 0));
    h.end_epoch();
    assert_eq!(
        h.take_output(),
        [(1, (2, 5))],
        "key 2 reset, key 1 one more round"
    );
}
