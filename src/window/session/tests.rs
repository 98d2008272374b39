//! Session window tests: hand-written cases for Spark's rules, and random out-of-order
//! streams checked against a plain sequential sessionization and against a naive model
//! of the incremental rules.

use super::*;
use crate::operator::Harness;
use std::collections::BTreeMap;

/// A test record: an id (to follow it), its event time and a value to sum.
#[derive(Debug, Clone, PartialEq)]
struct Ev {
    id: u32,
    t: i64,
    v: i64,
}

fn ev(id: u32, t: i64) -> Ev {
    Ev {
        id,
        t,
        v: i64::from(id) * 10 + 1,
    }
}

type TimeFn = fn(&Ev) -> Timestamp;

fn time_of(e: &Ev) -> Timestamp {
    Timestamp(e.t)
}

/// Counts records.
#[derive(Clone)]
struct Count;

impl Aggregate<Ev> for Count {
    type Acc = u64;
    type Out = u64;
    fn init(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, _: &Ev) {
        *acc += 1;
    }
    fn merge(&self, acc: &mut u64, other: &u64) {
        *acc += other;
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
}

/// Sums `v`.
#[derive(Clone)]
struct Sum;

impl Aggregate<Ev> for Sum {
    type Acc = i64;
    type Out = i64;
    fn init(&self) -> i64 {
        0
    }
    fn add(&self, acc: &mut i64, e: &Ev) {
        *acc += e.v;
    }
    fn merge(&self, acc: &mut i64, other: &i64) {
        *acc += other;
    }
    fn result(&self, acc: &i64) -> i64 {
        *acc
    }
}

/// Collects ids in accumulation order: shows exactly how sessions were merged.
#[derive(Clone)]
struct Ids;

impl Aggregate<Ev> for Ids {
    type Acc = Vec<u32>;
    type Out = Vec<u32>;
    fn init(&self) -> Vec<u32> {
        Vec::new()
    }
    fn add(&self, acc: &mut Vec<u32>, e: &Ev) {
        acc.push(e.id);
    }
    fn merge(&self, acc: &mut Vec<u32>, other: &Vec<u32>) {
        acc.extend_from_slice(other);
    }
    fn result(&self, acc: &Vec<u32>) -> Vec<u32> {
        acc.clone()
    }
}

type Op<A> = SessionAggregate<u32, Ev, A, TimeFn>;
type Row<O> = (u32, Window, O);

fn op<A: Aggregate<Ev>>(gap: i64, agg: A) -> Op<A> {
    SessionAggregate::new(gap, agg, time_of as TimeFn)
}

fn mode(execution: ExecutionMode, output: OutputMode) -> EmitMode {
    EmitMode { execution, output }
}

fn harness<A: Aggregate<Ev>>(gap: i64, agg: A, emit: EmitMode) -> Harness<(u32, Ev), Op<A>> {
    let mut h = Harness::new(op(gap, agg));
    h.set_emit_mode(emit);
    h
}

fn w(start: i64, end: i64) -> Window {
    Window {
        start: Timestamp(start),
        end: Timestamp(end),
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

const CONTINUOUS: ExecutionMode = ExecutionMode::Continuous;
const MICRO_BATCH: ExecutionMode = ExecutionMode::MicroBatch;

#[test]
fn the_spec_validates_its_gap() {
    assert!(SessionWindows::new(Duration::ZERO).is_err());
    assert!(SessionWindows::new(Duration::from_secs(u64::MAX)).is_err());
    let spec = SessionWindows::new(Duration::from_millis(3)).unwrap();
    assert_eq!(spec.gap_micros(), 3_000);
    assert!(spec.needs_merge());
}

#[test]
fn a_record_exactly_at_a_sessions_end_joins_it() {
    // Spark: the next session joins when next.start <= current.end (MergingSessionsIterator).
    let mut h = harness(10, Count, mode(CONTINUOUS, OutputMode::Append));
    h.push((1, ev(1, 0)));
    h.push((1, ev(2, 10))); // at the end of [0, 10): joins
    h.push((2, ev(3, 0)));
    h.push((2, ev(4, 11))); // one past the end: a session of its own
    h.push((3, ev(5, 10)));
    h.push((3, ev(6, 0))); // its end touches the later session's start: joins
    h.operator().check_invariants();
    assert_eq!(h.operator().live_sessions(), 4);
    h.advance_watermark(Timestamp::MAX);
    assert_eq!(
        sorted(h.take_output()),
        vec![
            (1, w(0, 20), 2),
            (2, w(0, 10), 1),
            (2, w(11, 21), 1),
            (3, w(0, 20), 2)
        ]
    );
    assert_eq!(h.operator().live_sessions(), 0);
    assert_eq!(h.operator().live_keys(), 0);
}

#[test]
fn a_bridging_record_merges_two_sessions_and_their_accumulators_in_start_order() {
    let records = [ev(1, 30), ev(2, 0), ev(3, 31), ev(4, 15)];
    // [30, 45) ids 1; [0, 15) ids 2; 3 extends to [30, 46); 4's [15, 30) touches both.
    let mut ids = harness(15, Ids, mode(CONTINUOUS, OutputMode::Append));
    let mut sums = harness(15, Sum, mode(MICRO_BATCH, OutputMode::Append));
    for e in &records {
        ids.push((7, e.clone()));
        sums.push((7, e.clone()));
    }
    assert_eq!(ids.operator().live_sessions(), 1);
    ids.operator().check_invariants();
    ids.advance_watermark(Timestamp(46));
    assert_eq!(ids.take_output(), vec![(7, w(0, 46), vec![2, 1, 3, 4])]);

    sums.advance_watermark(Timestamp(45));
    sums.end_epoch();
    assert!(sums.take_output().is_empty());
    sums.advance_watermark(Timestamp(46));
    sums.end_epoch();
    let total: i64 = records.iter().map(|e| e.v).sum();
    assert_eq!(sums.take_output(), vec![(7, w(0, 46), total)]);
}

#[test]
fn late_records_are_those_whose_own_session_the_watermark_closed() {
    for execution in [CONTINUOUS, MICRO_BATCH] {
        for output in [OutputMode::Append, OutputMode::Update] {
            let mut h = harness(10, Count, mode(execution, output));
            h.push((1, ev(1, 0)));
            h.advance_watermark(Timestamp(20));
            if execution == MICRO_BATCH {
                // A batch judges records by the watermark the batch before it ran under.
                h.end_epoch();
            }
            h.push((1, ev(2, 10))); // [10, 20) ends at the watermark: late
            h.push((1, ev(3, 11))); // [11, 21): kept
            h.push((2, ev(4, -100))); // late
            h.push((1, ev(5, 9))); // [9, 19): late, though [0, 10) would have touched it
            assert_eq!(h.take_side_output(), vec![ev(2, 10), ev(4, -100), ev(5, 9)]);
            assert_eq!(h.counter("late_records"), 3);
            assert_eq!(h.counter("rows_dropped_by_watermark"), 3);
            h.end_epoch();
            h.operator().check_invariants();
            // [0, 10) was evicted (at the watermark or the marker); [11, 21) is held.
            assert_eq!(h.operator().live_sessions(), 1);
        }
    }
}

#[test]
fn complete_mode_drops_nothing_and_emits_every_session_at_each_marker() {
    let mut h = harness(10, Count, mode(MICRO_BATCH, OutputMode::Complete));
    h.push((1, ev(1, 0)));
    h.push((2, ev(2, 5)));
    h.push((1, ev(3, 30)));
    assert!(h.take_output().is_empty());
    h.end_epoch();
    let first = vec![(1, w(0, 10), 1), (1, w(30, 40), 1), (2, w(5, 15), 1)];
    assert_eq!(sorted(h.take_output()), first);
    // The watermark closes everything, yet nothing is dropped or evicted.
    h.advance_watermark(Timestamp(1_000));
    h.push((1, ev(4, 10))); // touches [0, 10): merges even though it is "late"
    h.end_epoch();
    assert_eq!(
        sorted(h.take_output()),
        vec![(1, w(0, 20), 2), (1, w(30, 40), 1), (2, w(5, 15), 1)]
    );
    assert!(h.take_side_output().is_empty());
    assert_eq!(h.counter("late_records"), 0);
    // An epoch without records still emits the whole table; so does the end.
    h.end_epoch();
    assert_eq!(h.take_output().len(), 3);
    h.end();
    assert_eq!(h.take_output().len(), 3);
}

#[test]
fn continuous_update_mode_emits_each_changed_session_and_retracts_nothing() {
    let mut h = harness(10, Ids, mode(CONTINUOUS, OutputMode::Update));
    let steps: [(Ev, Row<Vec<u32>>); 5] = [
        (ev(1, 0), (1, w(0, 10), vec![1])),
        (ev(2, 5), (1, w(0, 15), vec![1, 2])),
        (ev(3, 30), (1, w(30, 40), vec![3])),
        (ev(4, 20), (1, w(20, 40), vec![3, 4])), // touches [30, 40)
        (ev(5, 15), (1, w(0, 40), vec![1, 2, 3, 4, 5])), // bridges [0, 15) and [20, 40)
    ];
    for (e, row) in steps {
        h.push((1, e));
        assert_eq!(h.take_output(), vec![row]);
    }
    h.end_epoch();
    assert!(h.take_output().is_empty());
    // The watermark evicts the closed session without output.
    h.advance_watermark(Timestamp(40));
    assert!(h.take_output().is_empty());
    assert_eq!(h.operator().live_sessions(), 0);
    // Not late ([35, 45) ends after 40), but its session is gone: a new one (as Spark).
    h.push((1, ev(6, 35)));
    assert_eq!(h.take_output(), vec![(1, w(35, 45), vec![6])]);
}

#[test]
fn micro_batch_update_mode_emits_each_changed_session_once_at_the_marker() {
    let mut h = harness(10, Ids, mode(MICRO_BATCH, OutputMode::Update));
    for (key, e) in [
        (1, ev(1, 0)),
        (2, ev(2, 100)),
        (1, ev(3, 25)),
        (1, ev(4, 5)),
        (1, ev(5, 15)), // bridges [0, 15) and [25, 35) into [0, 35)
        (3, ev(6, 50)),
    ] {
        h.push((key, e));
    }
    assert!(h.take_output().is_empty());
    h.end_epoch();
    assert_eq!(
        sorted(h.take_output()),
        vec![
            (1, w(0, 35), vec![1, 4, 3, 5]),
            (2, w(100, 110), vec![2]),
            (3, w(50, 60), vec![6])
        ]
    );
    // Next batch: its watermark, 60, closes key 1's and key 3's sessions at its end. It
    // judges records by the previous batch's watermark (none yet): key 3's record at 49
    // ([49, 59)) still extends [50, 60), which is emitted with it, then evicted.
    h.advance_watermark(Timestamp(60));
    h.push((2, ev(7, 104)));
    h.push((3, ev(8, 49)));
    h.push((4, ev(9, 58))); // [58, 68)
    h.end_epoch();
    assert_eq!(
        sorted(h.take_output()),
        vec![
            (2, w(100, 114), vec![2, 7]),
            (3, w(49, 60), vec![6, 8]),
            (4, w(58, 68), vec![9])
        ]
    );
    assert!(h.take_side_output().is_empty());
    assert_eq!(h.operator().live_sessions(), 2);
    // The batch after judges by 60: the same record is late now.
    h.push((3, ev(10, 49)));
    h.end_epoch();
    assert!(h.take_output().is_empty());
    assert_eq!(h.take_side_output(), vec![ev(10, 49)]);
    // Nothing changed: nothing to emit.
    h.end_epoch();
    assert!(h.take_output().is_empty());
}

#[test]
fn a_record_closed_only_by_its_own_batchs_watermark_still_counts() {
    // Batch 1 (no watermark) opens [0, 10) and [30, 40). Batch 2 runs under 25 and
    // judges records by batch 1's watermark (none): 12's own session [12, 22) ends at or
    // before 25, yet it is not late (Spark 3.4+; the older rule dropped it). It opens a
    // session closed by 25, emitted at the end of batch 2. In batch 3 (judged by 25) the
    // same record is late, and 20 ([20, 30)) extends [30, 40).
    for output in [OutputMode::Append, OutputMode::Update] {
        let mut h = harness(10, Ids, mode(MICRO_BATCH, output));
        h.push((1, ev(1, 0)));
        h.push((1, ev(2, 30)));
        h.end_epoch();
        let first = h.take_output();
        h.advance_watermark(Timestamp(25));
        h.push((1, ev(3, 12)));
        h.end_epoch();
        let second = sorted(h.take_output());
        h.push((1, ev(4, 12)));
        h.push((1, ev(5, 20)));
        h.end_epoch();
        let third = h.take_output();
        assert_eq!(h.take_side_output(), vec![ev(4, 12)], "{output:?}");
        match output {
            OutputMode::Append => {
                assert!(first.is_empty());
                assert_eq!(
                    second,
                    vec![(1, w(0, 10), vec![1]), (1, w(12, 22), vec![3])]
                );
                assert!(third.is_empty());
            }
            _ => {
                assert_eq!(
                    sorted(first),
                    vec![(1, w(0, 10), vec![1]), (1, w(30, 40), vec![2])]
                );
                assert_eq!(second, vec![(1, w(12, 22), vec![3])]);
                assert_eq!(third, vec![(1, w(20, 40), vec![2, 5])]);
            }
        }
        assert_eq!(h.operator().live_sessions(), 1);
        // A restored operator judges the next batch as the original.
        let snapshot = h.snapshot().unwrap();
        let mut restored = Harness::restore(op(10, Ids), snapshot.as_deref()).unwrap();
        restored.set_emit_mode(mode(MICRO_BATCH, output));
        for h in [&mut h, &mut restored] {
            h.advance_watermark(Timestamp(28));
            h.push((2, ev(6, 14))); // [14, 24): late by 25
            h.push((2, ev(7, 16))); // [16, 26): not late by 25, though closed by 28
            h.end_epoch();
            assert_eq!(h.take_side_output(), vec![ev(6, 14)], "{output:?}");
            assert_eq!(h.take_output(), vec![(2, w(16, 26), vec![7])], "{output:?}");
        }
    }
}

#[test]
fn a_micro_batch_merges_before_it_evicts_while_a_continuous_epoch_evicts_at_the_watermark() {
    // Sessions [0, 15); then watermark 15, which closes it, and a record at 12 that is
    // not late ([12, 22) ends after 15) but touches the session.
    let mut batch = harness(10, Count, mode(MICRO_BATCH, OutputMode::Append));
    batch.push((1, ev(1, 0)));
    batch.push((1, ev(2, 5)));
    batch.end_epoch();
    batch.advance_watermark(Timestamp(15));
    batch.push((1, ev(3, 12)));
    batch.end_epoch();
    assert!(batch.take_output().is_empty()); // [0, 22) is open
    batch.advance_watermark(Timestamp(22));
    batch.end_epoch();
    assert_eq!(batch.take_output(), vec![(1, w(0, 22), 3)]);

    let mut continuous = harness(10, Count, mode(CONTINUOUS, OutputMode::Append));
    continuous.push((1, ev(1, 0)));
    continuous.push((1, ev(2, 5)));
    continuous.advance_watermark(Timestamp(15));
    assert_eq!(continuous.take_output(), vec![(1, w(0, 15), 2)]);
    continuous.push((1, ev(3, 12)));
    continuous.advance_watermark(Timestamp(22));
    assert_eq!(continuous.take_output(), vec![(1, w(12, 22), 1)]);
}

#[test]
fn the_end_of_stream_emits_what_a_marker_would() {
    let mut h = harness(10, Count, mode(MICRO_BATCH, OutputMode::Append));
    h.push((1, ev(1, 0)));
    h.push((1, ev(2, 50)));
    h.advance_watermark(Timestamp(30));
    h.end();
    // The closed session; the open one is never final.
    assert_eq!(h.take_output(), vec![(1, w(0, 10), 1)]);

    let mut h = harness(10, Count, mode(MICRO_BATCH, OutputMode::Update));
    h.push((1, ev(1, 0)));
    h.end();
    assert_eq!(h.take_output(), vec![(1, w(0, 10), 1)]);
}

#[test]
fn timestamps_near_the_end_of_time_saturate() {
    let mut h = harness(10, Count, mode(CONTINUOUS, OutputMode::Append));
    h.push((1, ev(1, i64::MAX - 3)));
    h.push((1, ev(2, i64::MAX - 12))); // [MAX - 12, MAX - 2) touches [MAX - 3, MAX)
    h.push((1, ev(3, i64::MIN)));
    h.operator().check_invariants();
    h.advance_watermark(Timestamp(i64::MAX - 1));
    assert_eq!(h.take_output(), vec![(1, w(i64::MIN, i64::MIN + 10), 1)]);
    h.advance_watermark(Timestamp::MAX);
    assert_eq!(h.take_output(), vec![(1, w(i64::MAX - 12, i64::MAX), 2)]);
}

// ---------------------------------------------------------------------------------------
// Random streams
// ---------------------------------------------------------------------------------------

/// xorshift64*: a small deterministic generator, seeded per case.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Parameters of one random run.
#[derive(Debug, Clone, Copy)]
struct Params {
    gap: i64,
    /// Watermark = max event time seen − delay.
    delay: i64,
    /// In continuous epochs, the watermark advances after every `every` records.
    every: usize,
    /// Most records an epoch holds.
    epoch_len: u64,
    keys: u64,
    /// How far a record's time may lie behind the newest time.
    disorder: i64,
}

impl Params {
    fn random(rng: &mut Rng) -> Self {
        Params {
            gap: [1, 5, 10, 25][rng.below(4) as usize],
            delay: [0, 5, 20, 60][rng.below(4) as usize],
            every: 1 + rng.below(8) as usize,
            epoch_len: 1 + rng.below(30),
            keys: 1 + rng.below(5),
            disorder: [0, 10, 40, 120][rng.below(4) as usize],
        }
    }
}

/// One record of a random stream: mostly a little behind the newest time, now and then
/// far behind.
fn random_record(rng: &mut Rng, p: &Params, now: &mut i64, id: u32) -> (u32, Ev) {
    *now += rng.below(6) as i64;
    let behind = if rng.chance(3) {
        200 + rng.below(200) as i64
    } else {
        rng.below(p.disorder as u64 + 1) as i64
    };
    let key = rng.below(p.keys) as u32;
    (key, ev(id, *now - behind))
}

/// Plain sequential sessionization: each key's records sorted by time, a record joining
/// the current session when it starts at or before the session's end. Returns
/// `(key, window) -> sorted ids`.
fn sessionize(records: &[(u32, Ev)], gap: i64) -> BTreeMap<(u32, Window), Vec<u32>> {
    let mut by_key: BTreeMap<u32, Vec<&Ev>> = BTreeMap::new();
    for (key, e) in records {
        by_key.entry(*key).or_default().push(e);
    }
    let mut out = BTreeMap::new();
    for (key, mut evs) in by_key {
        evs.sort_by_key(|e| e.t);
        let mut current: Option<(i64, i64, Vec<u32>)> = None;
        for e in evs {
            match &mut current {
                Some((_, end, ids)) if e.t <= *end => {
                    *end = (*end).max(e.t + gap);
                    ids.push(e.id);
                }
                _ => {
                    if let Some((start, end, ids)) = current.take() {
                        out.insert((key, w(start, end)), sorted(ids));
                    }
                    current = Some((e.t, e.t + gap, vec![e.id]));
                }
            }
        }
        if let Some((start, end, ids)) = current {
            out.insert((key, w(start, end)), sorted(ids));
        }
    }
    out
}

/// Runs a random append-mode stream in which every record is either late or after the
/// watermark (none lies in a session the watermark may already have closed), so the
/// output must be the plain sessionization of the records that are not late.
fn check_append_against_sessionization(seed: u64, switch_modes: bool) {
    let mut rng = Rng::new(seed);
    let p = Params::random(&mut rng);
    let first = if rng.chance(50) {
        CONTINUOUS
    } else {
        MICRO_BATCH
    };
    let mut h = harness(p.gap, Ids, mode(first, OutputMode::Append));
    let (mut now, mut max_seen) = (0i64, i64::MIN);
    let (mut kept, mut late, mut output) = (Vec::new(), Vec::new(), Vec::new());
    let mut id = 0;
    // The watermark the last epoch ended with: a micro-batch's late bound.
    let mut previous = i64::MIN;
    for _epoch in 0..40 {
        let execution = if switch_modes && rng.chance(50) {
            CONTINUOUS
        } else if switch_modes {
            MICRO_BATCH
        } else {
            first
        };
        h.set_emit_mode(mode(execution, OutputMode::Append));
        if execution == MICRO_BATCH && max_seen > i64::MIN {
            h.advance_watermark(Timestamp(max_seen - p.delay));
        }
        for n in 0..1 + rng.below(p.epoch_len) as usize {
            let (key, e) = random_record(&mut rng, &p, &mut now, id);
            id += 1;
            // The late bound; sessions closed so far end at or before it.
            let bound = match execution {
                CONTINUOUS => h.watermark().0,
                _ => previous,
            };
            if e.t <= bound && e.t + p.gap > bound {
                continue; // could touch a session already closed: left to the model test
            }
            max_seen = max_seen.max(e.t);
            if e.t + p.gap <= bound {
                late.push(e.id);
            } else {
                kept.push((key, e.clone()));
            }
            h.push((key, e));
            if execution == CONTINUOUS && (n + 1).is_multiple_of(p.every) {
                h.advance_watermark(Timestamp(max_seen - p.delay));
            }
        }
        h.end_epoch();
        previous = h.watermark().0;
        output.extend(h.take_output());
        h.operator().check_invariants();
    }
    h.advance_watermark(Timestamp::MAX);
    h.end_epoch();
    output.extend(h.take_output());

    let side: Vec<u32> = h.take_side_output().iter().map(|e| e.id).collect();
    assert_eq!(side, late, "seed {seed}: late records ({p:?})");
    assert_eq!(h.counter("late_records"), late.len() as u64);
    let mut got = BTreeMap::new();
    for (key, window, ids) in output {
        let again = got.insert((key, window), sorted(ids));
        assert!(
            again.is_none(),
            "seed {seed}: ({key}, {window}) emitted twice"
        );
    }
    assert_eq!(got, sessionize(&kept, p.gap), "seed {seed} ({p:?})");
    assert_eq!(h.operator().live_sessions(), 0);
}

#[test]
fn append_output_is_the_sessionization_of_the_records_not_late() {
    for seed in 0..300 {
        check_append_against_sessionization(seed, false);
    }
}

#[test]
fn append_output_is_the_sessionization_when_epochs_switch_execution_modes() {
    for seed in 1_000..1_200 {
        check_append_against_sessionization(seed, true);
    }
}

/// A naive model of the incremental rules: per key an unordered list of sessions; a
/// record that is not late merges every session its own one meets (closed intervals),
/// accumulators in start order and then the record. Late means: its own session ends at
/// or before the current watermark (continuous) or the one the last epoch ended with
/// (micro-batch); continuous epochs evict as the watermark moves, micro-batches at the
/// marker.
struct Model {
    gap: i64,
    output: OutputMode,
    open: BTreeMap<u32, Vec<ModelSession>>,
    late: Vec<u32>,
    /// The watermark the last epoch ended with.
    previous: i64,
}

#[derive(Clone)]
struct ModelSession {
    start: i64,
    end: i64,
    ids: Vec<u32>,
    changed: bool,
}

impl Model {
    fn row(key: u32, s: &ModelSession) -> Row<Vec<u32>> {
        (key, w(s.start, s.end), s.ids.clone())
    }

    /// A record arrives under watermark `wm`; returns what continuous update mode emits.
    fn record(
        &mut self,
        key: u32,
        e: &Ev,
        wm: i64,
        execution: ExecutionMode,
    ) -> Vec<Row<Vec<u32>>> {
        let end = e.t.saturating_add(self.gap);
        let bound = if execution == CONTINUOUS {
            wm
        } else {
            self.previous
        };
        if self.output != OutputMode::Complete && end <= bound {
            self.late.push(e.id);
            return Vec::new();
        }
        let list = self.open.entry(key).or_default();
        let (mut meet, rest): (Vec<_>, Vec<_>) = list
            .drain(..)
            .partition(|s| s.start.max(e.t) <= s.end.min(end));
        meet.sort_by_key(|s| s.start);
        let mut merged = ModelSession {
            start: e.t,
            end,
            ids: Vec::new(),
            changed: execution == MICRO_BATCH,
        };
        for s in meet {
            merged.start = merged.start.min(s.start);
            merged.end = merged.end.max(s.end);
            merged.ids.extend(s.ids);
        }
        merged.ids.push(e.id);
        let row = Self::row(key, &merged);
        *list = rest;
        list.push(merged);
        if self.output == OutputMode::Update && execution == CONTINUOUS {
            vec![row]
        } else {
            Vec::new()
        }
    }

    /// Evicts the sessions the watermark closed; returns them in append mode.
    fn evict(&mut self, wm: i64) -> Vec<Row<Vec<u32>>> {
        let mut out = Vec::new();
        if self.output == OutputMode::Complete {
            return out;
        }
        for (key, list) in &mut self.open {
            list.retain(|s| {
                if s.end <= wm {
                    out.push(Self::row(*key, s));
                    false
                } else {
                    true
                }
            });
        }
        self.open.retain(|_, list| !list.is_empty());
        if self.output == OutputMode::Append {
            out
        } else {
            Vec::new()
        }
    }

    /// An epoch ends under watermark `wm`.
    fn marker(&mut self, wm: i64) -> Vec<Row<Vec<u32>>> {
        let mut out = Vec::new();
        for (key, list) in &mut self.open {
            for s in list {
                if self.output == OutputMode::Complete
                    || (self.output == OutputMode::Update && s.changed)
                {
                    out.push(Self::row(*key, s));
                }
                s.changed = false;
            }
        }
        out.extend(self.evict(wm));
        self.previous = wm;
        out
    }

    fn sessions(&self) -> usize {
        self.open.values().map(Vec::len).sum()
    }
}

/// Runs a random stream (records anywhere, late or not) through the operator and the
/// model, comparing after every step.
fn check_against_model(seed: u64, output: OutputMode) {
    let mut rng = Rng::new(seed);
    let p = Params::random(&mut rng);
    let mut h = harness(p.gap, Ids, mode(CONTINUOUS, output));
    let mut model = Model {
        gap: p.gap,
        output,
        open: BTreeMap::new(),
        late: Vec::new(),
        previous: i64::MIN,
    };
    let (mut now, mut max_seen, mut id) = (0i64, i64::MIN, 0);
    for _epoch in 0..30 {
        let execution = if rng.chance(50) {
            CONTINUOUS
        } else {
            MICRO_BATCH
        };
        h.set_emit_mode(mode(execution, output));
        let ctx = format!("seed {seed}, {output:?}, {execution:?}, {p:?}");
        let advance = |h: &mut Harness<(u32, Ev), Op<Ids>>, model: &mut Model, wm: i64| {
            if wm > h.watermark().0 {
                h.advance_watermark(Timestamp(wm));
                let expected = if execution == CONTINUOUS {
                    model.evict(wm)
                } else {
                    Vec::new()
                };
                assert_eq!(sorted(h.take_output()), sorted(expected), "{ctx}");
            }
        };
        if execution == MICRO_BATCH && max_seen > i64::MIN {
            advance(&mut h, &mut model, max_seen - p.delay);
        }
        for n in 0..1 + rng.below(p.epoch_len) as usize {
            let (key, e) = random_record(&mut rng, &p, &mut now, id);
            id += 1;
            max_seen = max_seen.max(e.t);
            let expected = model.record(key, &e, h.watermark().0, execution);
            h.push((key, e));
            assert_eq!(h.take_output(), expected, "{ctx}");
            if execution == CONTINUOUS && (n + 1).is_multiple_of(p.every) {
                advance(&mut h, &mut model, max_seen - p.delay);
            }
        }
        h.end_epoch();
        let expected = model.marker(h.watermark().0);
        assert_eq!(sorted(h.take_output()), sorted(expected), "{ctx}");
        h.operator().check_invariants();
        assert_eq!(h.operator().live_sessions(), model.sessions(), "{ctx}");
    }
    let side: Vec<u32> = h.take_side_output().iter().map(|e| e.id).collect();
    assert_eq!(side, model.late, "seed {seed}");
    assert_eq!(
        h.counter("rows_dropped_by_watermark"),
        model.late.len() as u64
    );
}

#[test]
fn append_mode_matches_the_model_on_any_stream() {
    for seed in 0..200 {
        check_against_model(seed, OutputMode::Append);
    }
}

#[test]
fn update_mode_matches_the_model_on_any_stream() {
    for seed in 0..200 {
        check_against_model(seed, OutputMode::Update);
    }
}

#[test]
fn complete_mode_matches_the_model_on_any_stream() {
    for seed in 0..100 {
        check_against_model(seed, OutputMode::Complete);
    }
}

/// Everything observable after one step of a run.
type Observed = (Vec<Row<Vec<u32>>>, Vec<u32>);

fn observe(h: &mut Harness<(u32, Ev), Op<Ids>>) -> Observed {
    let side = h.take_side_output().iter().map(|e| e.id).collect();
    (h.take_output(), side)
}

#[test]
fn a_restored_snapshot_continues_exactly_as_the_original() {
    for seed in 0..60 {
        let mut rng = Rng::new(seed);
        let p = Params::random(&mut rng);
        let output =
            [OutputMode::Append, OutputMode::Update, OutputMode::Complete][rng.below(3) as usize];
        let execution = if rng.chance(50) {
            CONTINUOUS
        } else {
            MICRO_BATCH
        };
        let emit = mode(execution, output);
        // A script of steps: records, watermarks, markers.
        let mut steps = Vec::new();
        let (mut now, mut max_seen) = (0i64, i64::MIN);
        for id in 0..400 {
            let (key, e) = random_record(&mut rng, &p, &mut now, id);
            max_seen = max_seen.max(e.t);
            steps.push(Step::Record(key, e));
            if rng.chance(20) {
                steps.push(Step::Watermark(max_seen - p.delay));
            }
            if rng.chance(5) {
                steps.push(Step::Marker);
            }
        }
        let cut = steps.len() / 3 + rng.below(steps.len() as u64 / 3) as usize;
        let mut original = harness(p.gap, Ids, emit);
        for step in &steps[..cut] {
            step.apply(&mut original);
        }
        original.take_output();
        original.take_side_output();
        let snapshot = original.snapshot().unwrap();
        let mut restored = Harness::restore(op(p.gap, Ids), snapshot.as_deref()).unwrap();
        restored.set_emit_mode(emit);
        restored.advance_watermark(original.watermark());
        assert_eq!(observe(&mut restored), (Vec::new(), Vec::new()));
        restored.operator().check_invariants();
        for step in &steps[cut..] {
            step.apply(&mut original);
            step.apply(&mut restored);
            assert_eq!(
                observe(&mut original),
                observe(&mut restored),
                "seed {seed}"
            );
        }
        original.end();
        restored.end();
        assert_eq!(
            observe(&mut original),
            observe(&mut restored),
            "seed {seed}"
        );
    }
}

enum Step {
    Record(u32, Ev),
    Watermark(i64),
    Marker,
}

impl Step {
    fn apply(&self, h: &mut Harness<(u32, Ev), Op<Ids>>) {
        match self {
            Step::Record(key, e) => h.push((*key, e.clone())),
            Step::Watermark(wm) => h.advance_watermark(Timestamp(*wm)),
            Step::Marker => h.end_epoch(),
        }
    }
}

#[test]
fn a_corrupt_snapshot_is_refused() {
    let mut h = harness(10, Count, mode(CONTINUOUS, OutputMode::Append));
    h.push((1, ev(1, 0)));
    let state = h.operator().snapshot().unwrap().unwrap();
    let mut store: Store<u32, u64> = codec::decode(&state).unwrap();
    store.slots.push(store.slots[0].clone()); // the same key twice
    let mut fresh = op(10, Count);
    let bad = codec::encode(&store).unwrap();
    assert!(Operator::<(u32, Ev)>::restore(&mut fresh, &bad).is_err());
    assert!(Operator::<(u32, Ev)>::restore(&mut fresh, &state).is_ok());
}

#[test]
fn state_stays_bounded_over_a_long_run_with_many_keys() {
    let (gap, delay, every) = (100i64, 50i64, 100usize);
    let mut rng = Rng::new(42);
    let mut h = harness(gap, Count, mode(CONTINUOUS, OutputMode::Append));
    let (mut max_seen, mut emitted) = (i64::MIN, 0u64);
    let mut keys_seen = rustc_hash::FxHashSet::default();
    let mut peak = 0;
    for n in 0..100_000i64 {
        // Keys drift: about 200 are active at a time, thousands over the run.
        let key = (n / 100 * 7 + rng.below(200) as i64) as u32;
        keys_seen.insert(key);
        let t = n - rng.below(50) as i64;
        max_seen = max_seen.max(t);
        h.push((key, ev(n as u32, t)));
        if (n as usize + 1).is_multiple_of(every) {
            h.advance_watermark(Timestamp(max_seen - delay));
            emitted += h.take_output().len() as u64;
            let state = h.operator();
            peak = peak.max(state.live_sessions());
            // Live sessions end after the watermark and are gap-long and apart, so each
            // key holds at most (gap + delay + every + 50) / gap + 1 = 4 of them.
            assert!(state.live_sessions() <= 4 * state.live_keys());
            assert!(state.live_keys() <= 2_000);
            assert!(state.slot_capacity() <= 2_000, "key slots are reused");
        }
        if n % 20_000 == 0 {
            h.operator().check_invariants();
        }
    }
    assert!(keys_seen.len() > 5_000);
    assert!(emitted > 10_000, "sessions were closed and emitted");
    assert!(peak < 2_000, "peak live sessions {peak}");
    h.advance_watermark(Timestamp::MAX);
    h.operator().check_invariants();
    assert_eq!(h.operator().live_sessions(), 0);
    assert_eq!(h.operator().live_keys(), 0);
}
