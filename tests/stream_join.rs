//! Stream–stream joins in running queries against a nested-loop reference join of the
//! same inputs (as multisets): every join type, both trigger modes, one and three
//! instances, random inputs with duplicate rows and keys present on one side only; the
//! state gauge; state bounded by the watermark over a long run; what `start()` refuses.
//!
//! Each side's event times are out of order by less than its watermark delay, so no row
//! is ever late, whatever the interleaving of the two sources' threads: a row's time is
//! above its own side's `max seen − delay`, which bounds the join's watermark (the minimum
//! over both sides). The output is then fixed: every matching pair, and for outer joins
//! every unmatched row that the final watermark (`min(max left, max right) − delay`)
//! made final.

mod common;

use common::{finish_ok, sorted, Rng};
use rivulet::join::{TimeRange, STATE_ROWS};
use rivulet::time::WatermarkConfig;
use rivulet::window::{TimeWindows, ROWS_DROPPED_BY_WATERMARK};
use rivulet::{Query, Stream, Timestamp, Trigger};
use std::time::Duration;

/// A row of either side: (id, key, event time µs).
type Rec = (u32, u32, i64);
/// What the joins emit: the ids of the left and right rows.
type Pair = (Option<u32>, Option<u32>);

/// The watermark delay of both sides, µs.
const DELAY: i64 = 100;
/// Out-of-orderness of both sides, µs (less than the delay: nothing is late).
const JITTER: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
    LeftSemi,
}

/// `n` rows, one every `step` µs minus a jitter, keys from `first_key` on (so some keys
/// have rows on one side only); every seventh row repeats the one before (same key and
/// time, a new id).
fn input(n: u32, step: i64, first_key: u32, keys: u64, seed: u64, first_id: u32) -> Vec<Rec> {
    let mut rng = Rng::new(seed);
    let mut rows: Vec<Rec> = Vec::new();
    for i in 0..n {
        let id = first_id + i;
        match rows.last() {
            Some(&(_, key, t)) if i % 7 == 6 => rows.push((id, key, t)),
            _ => rows.push((
                id,
                first_key + rng.below(keys) as u32,
                i as i64 * step - rng.below(JITTER) as i64,
            )),
        }
    }
    rows
}

/// Ends both sides with a row at the same time, on a key of its own: both watermarks then
/// end at the same time, so the join's final watermark does not depend on which source
/// ends first (an input that ended no longer holds the join's watermark back: after one
/// side ends, it follows the other side's alone).
fn with_last_rows(mut left: Vec<Rec>, mut right: Vec<Rec>) -> (Vec<Rec>, Vec<Rec>) {
    let end = left.iter().chain(&right).map(|r| r.2).max().unwrap() + 1;
    left.push((u32::MAX - 1, 1_000, end));
    right.push((u32::MAX, 1_001, end));
    (left, right)
}

/// The reference's condition: whether two times match, and the last time of the other
/// side a row can match.
trait RefCondition {
    fn matches(&self, l: i64, r: i64) -> bool;
    fn last_left(&self, l: i64) -> i64;
    fn last_right(&self, r: i64) -> i64;
}

struct Range(i64, i64);
impl RefCondition for Range {
    fn matches(&self, l: i64, r: i64) -> bool {
        r + self.0 <= l && l <= r + self.1
    }
    fn last_left(&self, l: i64) -> i64 {
        l - self.0
    }
    fn last_right(&self, r: i64) -> i64 {
        r + self.1
    }
}

struct SameWindow(i64);
impl RefCondition for SameWindow {
    fn matches(&self, l: i64, r: i64) -> bool {
        l.div_euclid(self.0) == r.div_euclid(self.0)
    }
    fn last_left(&self, l: i64) -> i64 {
        l.div_euclid(self.0) * self.0 + self.0 - 1
    }
    fn last_right(&self, r: i64) -> i64 {
        self.last_left(r)
    }
}

/// The final watermark of a run over `left` and `right`.
fn final_watermark(left: &[Rec], right: &[Rec]) -> i64 {
    let max = |rows: &[Rec]| rows.iter().map(|r| r.2).max().unwrap();
    max(left).min(max(right)) - DELAY
}

/// The nested-loop join, and the number of rows a join keeps at the end.
fn reference(kind: Kind, cond: &dyn RefCondition, left: &[Rec], right: &[Rec]) -> (Vec<Pair>, u64) {
    let w = final_watermark(left, right);
    let mut out = Vec::new();
    let mut right_matched = vec![false; right.len()];
    for l in left {
        let mut matched = false;
        for (j, r) in right.iter().enumerate() {
            if l.1 == r.1 && cond.matches(l.2, r.2) {
                matched = true;
                right_matched[j] = true;
                if kind != Kind::LeftSemi {
                    out.push((Some(l.0), Some(r.0)));
                }
            }
        }
        let final_ = cond.last_left(l.2) <= w;
        match kind {
            Kind::LeftOuter | Kind::FullOuter if !matched && final_ => out.push((Some(l.0), None)),
            Kind::LeftSemi if matched => out.push((Some(l.0), None)),
            _ => {}
        }
    }
    for (j, r) in right.iter().enumerate() {
        if matches!(kind, Kind::RightOuter | Kind::FullOuter)
            && !right_matched[j]
            && cond.last_right(r.2) <= w
        {
            out.push((None, Some(r.0)));
        }
    }
    let kept = left.iter().filter(|l| cond.last_left(l.2) > w).count()
        + right.iter().filter(|r| cond.last_right(r.2) > w).count();
    (out, kept as u64)
}

fn time(r: &Rec) -> Timestamp {
    Timestamp(r.2)
}

/// How the join under test is conditioned.
#[derive(Clone, Copy)]
enum Cond {
    Range(TimeRange),
    Window(TimeWindows),
}

/// Runs `kind` over `left` and `right`; returns the output and the query's progress.
fn run(
    kind: Kind,
    cond: Cond,
    trigger: Trigger,
    parallelism: usize,
    left: &[Rec],
    right: &[Rec],
) -> (Vec<Pair>, rivulet::QueryProgress) {
    let mut query = Query::builder();
    query
        .trigger(trigger)
        .parallelism(parallelism)
        .ring_capacity(64)
        .max_batch_records(257);
    let delay = Duration::from_micros(DELAY as u64);
    let l = query
        .from_iter("left", left.to_vec())
        .with_event_time(time)
        .with_watermark(delay)
        .key_by(|r: &Rec| r.1);
    let r = query
        .from_iter("right", right.to_vec())
        .with_event_time(time)
        .with_watermark(delay)
        .key_by(|r: &Rec| r.1);
    let timed = l.join(r).event_time(time, time);
    let timed = match cond {
        Cond::Range(range) => timed.within(range),
        Cond::Window(windows) => timed.within_window(windows),
    };
    fn sink<S: rivulet::stream::Chain<Out = Pair>>(
        s: Stream<S>,
    ) -> rivulet::sink::MemoryTable<Pair> {
        s.to_memory("joined")
    }
    let table = match kind {
        Kind::Inner => sink(timed.inner(|_, l, r| (Some(l.0), Some(r.0)))),
        Kind::LeftOuter => sink(timed.left_outer(|_, l, r| (Some(l.0), r.map(|r| r.0)))),
        Kind::RightOuter => sink(timed.right_outer(|_, l, r| (l.map(|l| l.0), Some(r.0)))),
        Kind::FullOuter => sink(timed.full_outer(|_, l, r| (l.map(|l| l.0), r.map(|r| r.0)))),
        Kind::LeftSemi => sink(timed.left_semi(|_, l| (Some(l.0), None))),
    };
    let running = query.start().expect("start");
    finish_ok(&running, "join");
    (table.rows(), running.progress())
}

fn triggers() -> [Trigger; 2] {
    [
        Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(2),
        },
        Trigger::MicroBatch {
            interval: Duration::from_millis(1),
        },
    ]
}

#[test]
fn every_join_type_equals_the_nested_loop_join_in_both_modes() {
    let (left, right) = with_last_rows(
        input(1_500, 10, 0, 8, 1, 0),
        input(1_200, 12, 2, 8, 2, 100_000),
    );
    // left.time BETWEEN right.time − 60 AND right.time + 90
    let range = TimeRange::from_micros(-60, 90).unwrap();
    let cond = Range(-60, 90);
    let mut kinds_with_rows = 0;
    for kind in [
        Kind::Inner,
        Kind::LeftOuter,
        Kind::RightOuter,
        Kind::FullOuter,
        Kind::LeftSemi,
    ] {
        let (expected, kept) = reference(kind, &cond, &left, &right);
        assert!(expected.len() > 500, "{kind:?}: {} rows", expected.len());
        kinds_with_rows += 1;
        for trigger in triggers() {
            for parallelism in [1, 3] {
                let what = format!("{kind:?}, {trigger:?}, parallelism {parallelism}");
                let (rows, progress) = run(
                    kind,
                    Cond::Range(range),
                    trigger,
                    parallelism,
                    &left,
                    &right,
                );
                assert_eq!(sorted(rows), sorted(expected.clone()), "{what}");
                let join = progress.operator("join").expect("the join's progress");
                assert_eq!(join.parallelism, parallelism, "{what}");
                assert_eq!(
                    join.counters
                        .get(ROWS_DROPPED_BY_WATERMARK)
                        .copied()
                        .unwrap_or(0),
                    0,
                    "{what}: nothing is late"
                );
                if kind != Kind::LeftSemi {
                    assert_eq!(
                        join.counters.get(STATE_ROWS),
                        Some(&kept),
                        "{what}: state rows"
                    );
                }
            }
        }
    }
    assert_eq!(kinds_with_rows, 5);
}

#[test]
fn joins_on_equal_windows_equal_the_nested_loop_join() {
    let (left, right) = with_last_rows(
        input(1_000, 10, 0, 10, 3, 0),
        input(1_000, 10, 3, 10, 4, 100_000),
    );
    let windows = TimeWindows::tumbling(Duration::from_micros(200)).unwrap();
    for kind in [Kind::Inner, Kind::FullOuter] {
        let (expected, _) = reference(kind, &SameWindow(200), &left, &right);
        for trigger in triggers() {
            let (rows, _) = run(kind, Cond::Window(windows), trigger, 2, &left, &right);
            assert_eq!(
                sorted(rows),
                sorted(expected.clone()),
                "{kind:?} {trigger:?}"
            );
        }
    }
}

/// One source carrying both sides' rows (side 0: left, 1: right) in time order, split
/// into the join's two inputs: one watermark generator for both, so neither side can run
/// far ahead of the watermark (only as far as the rings between them hold).
#[test]
fn the_state_stays_bounded_by_the_watermark_over_a_long_run() {
    const ROWS: u32 = 400_000;
    const STEP: i64 = 5; // µs of event time per row (both sides together)
    const RING: usize = 64;
    const EVERY: u32 = 64; // the watermark is sent every 64 rows
    const BATCH: i64 = 1_000; // rows per micro-batch at most
    let (lower, upper) = (-200i64, 300i64);
    let rows: Vec<(u8, Rec)> = {
        let mut rng = Rng::new(9);
        (0..ROWS)
            .map(|i| {
                let t = i as i64 * STEP - rng.below(JITTER) as i64;
                ((i % 2) as u8, (i, rng.below(50) as u32, t))
            })
            .collect()
    };
    for trigger in triggers() {
        let mut query = Query::builder();
        query
            .trigger(trigger)
            .parallelism(2)
            .ring_capacity(RING)
            .max_batch_records(BATCH as usize);
        let mut sides = query
            .from_iter("rows", rows.clone())
            .with_event_time(|r: &(u8, Rec)| Timestamp(r.1 .2))
            .with_watermark_config(
                WatermarkConfig::new(Duration::from_micros(DELAY as u64)).emit_every_records(EVERY),
            )
            .fan_out(2);
        let right = sides
            .pop()
            .unwrap()
            .filter(|r| r.0 == 1)
            .map(|r| r.1)
            .key_by(|r: &Rec| r.1);
        let left = sides
            .pop()
            .unwrap()
            .filter(|r| r.0 == 0)
            .map(|r| r.1)
            .key_by(|r: &Rec| r.1);
        let count = left
            .join(right)
            .event_time(time, time)
            .within(TimeRange::from_micros(lower, upper).unwrap())
            .inner(|_, _, _| 1u64)
            .to_memory("pairs");
        let running = query.start().expect("start");
        // Sampled while it runs (how often depends on the machine; the bound must hold
        // at every sample, and the last one is exact).
        let mut largest = 0;
        let mut samples = 0;
        while running.is_active() {
            if let Some(join) = running.progress().operator("join") {
                largest = largest.max(join.counters.get(STATE_ROWS).copied().unwrap_or(0));
                samples += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        finish_ok(&running, "long join");
        // A kept left row is later than W + lower, a right row later than W − upper (one
        // row in two is on each side), and the watermark trails the newest row by the
        // delay and the jitter, plus some rows: those between two watermarks and what the
        // rings hold (source → branch → join, both branches); in a micro-batch also the
        // batch (its watermark is the previous batch's, and eviction waits for its end)
        // and the batch before it.
        let micro_batch = matches!(trigger, Trigger::MicroBatch { .. });
        let lag_rows = EVERY as i64 + 4 * RING as i64 + if micro_batch { 2 * BATCH } else { 0 };
        let span = |beyond: i64| (DELAY + JITTER as i64 + beyond) / STEP / 2 + 1;
        let bound = (span(-lower) + span(upper) + lag_rows) as u64;
        assert!(
            largest <= bound,
            "{trigger:?}: {largest} rows kept (bound {bound}, {samples} samples)"
        );
        assert!((bound as u32) < ROWS / 20, "the bound means something");
        eprintln!("{trigger:?}: at most {largest} rows kept (bound {bound}, {samples} samples)");
        // And the join saw every pair: with 50 keys, about (upper − lower) / STEP / 2 / 50
        // partners per row.
        assert!(count.rows().len() > ROWS as usize / 2, "{trigger:?}");
    }
}

#[test]
fn start_refuses_what_spark_refuses() {
    let range = TimeRange::from_micros(-10, 10).unwrap();
    let rows = || vec![(0u32, 0u32, 0i64)];
    let delay = Duration::from_micros(10);

    // An outer join without a time condition.
    let mut query = Query::builder();
    let l = query
        .from_iter("l", rows())
        .with_event_time(time)
        .with_watermark(delay);
    let r = query
        .from_iter("r", rows())
        .with_event_time(time)
        .with_watermark(delay);
    l.key_by(|r: &Rec| r.1)
        .join(r.key_by(|r: &Rec| r.1))
        .event_time(time, time)
        .left_outer(|_, l, _| l.0)
        .for_each(|_| {});
    let error = query.start().unwrap_err().to_string();
    assert!(
        error.contains("left outer join `join` needs a time condition"),
        "{error}"
    );

    // An outer join with an input that has no watermark.
    let mut query = Query::builder();
    let l = query
        .from_iter("l", rows())
        .with_event_time(time)
        .with_watermark(delay);
    let r = query.from_iter("r", rows());
    l.key_by(|r: &Rec| r.1)
        .join(r.key_by(|r: &Rec| r.1))
        .event_time(time, time)
        .within(range)
        .right_outer(|_, _, r| r.0)
        .for_each(|_| {});
    let error = query.start().unwrap_err().to_string();
    assert!(error.contains("needs watermarks on both inputs"), "{error}");

    // Equal sliding windows.
    let mut query = Query::builder();
    let l = query.from_iter("l", rows());
    let r = query.from_iter("r", rows());
    let sliding =
        TimeWindows::sliding(Duration::from_micros(10), Duration::from_micros(5)).unwrap();
    l.key_by(|r: &Rec| r.1)
        .join(r.key_by(|r: &Rec| r.1))
        .event_time(time, time)
        .within_window(sliding)
        .inner(|_, l, _| l.0)
        .for_each(|_| {});
    let error = query.start().unwrap_err().to_string();
    assert!(error.contains("needs tumbling windows"), "{error}");

    // An inner join needs neither (its state is then unbounded, as in Spark).
    let mut query = Query::builder();
    let l = query.from_iter("l", rows());
    let r = query.from_iter("r", rows());
    let out = l
        .key_by(|r: &Rec| r.1)
        .join(r.key_by(|r: &Rec| r.1))
        .event_time(time, time)
        .inner(|_, l, r| (l.0, r.0))
        .to_memory("out");
    let running = query
        .start()
        .expect("an inner join without watermarks starts");
    finish_ok(&running, "inner join without watermarks");
    assert_eq!(out.rows(), [(0, 0)]);
}
