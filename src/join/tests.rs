//! The join operator, driven by hand through a [`Harness`], against a nested-loop
//! reference of the same rows: every join type, both epoch modes, both time conditions,
//! late rows, snapshots taken and restored on the way, and the state-size gauge.

use super::condition::{Condition, Side, TimeRange};
use super::operator::{StreamJoin, TimeFn};
use super::output::{FullOuter, Inner, JoinOutput, LeftOuter, LeftSemi, RightOuter};
use super::STATE_ROWS;
use crate::event::Timestamp;
use crate::operator::{Either, Harness, TwoInput};
use crate::trigger::{EmitMode, ExecutionMode, OutputMode};
use crate::window::{TimeWindows, ROWS_DROPPED_BY_WATERMARK};
use std::time::Duration;

/// A row of either side: (id, event time µs).
type Rec = (u32, i64);
/// What the tests' joins emit: the ids of the left and right rows.
type Pair = (Option<u32>, Option<u32>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
    LeftSemi,
}

const KINDS: [Kind; 5] = [
    Kind::Inner,
    Kind::LeftOuter,
    Kind::RightOuter,
    Kind::FullOuter,
    Kind::LeftSemi,
];

/// A deterministic stream of pseudo-random numbers (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Left(u8, Rec),
    Right(u8, Rec),
    Watermark(i64),
    Marker,
    Restore,
}

/// The condition as the reference reads it: whether two times match, and the largest
/// time of the other side a row can match (its row is final once the watermark reaches it).
#[derive(Debug, Clone, Copy)]
enum RefCondition {
    Range(i64, i64),
    Window(i64),
}

impl RefCondition {
    fn matches(self, l: i64, r: i64) -> bool {
        match self {
            RefCondition::Range(lower, upper) => r + lower <= l && l <= r + upper,
            RefCondition::Window(len) => l.div_euclid(len) == r.div_euclid(len),
        }
    }
    fn last_match(self, side: Side, t: i64) -> i64 {
        match (self, side) {
            (RefCondition::Range(lower, _), Side::Left) => t - lower,
            (RefCondition::Range(_, upper), Side::Right) => t + upper,
            (RefCondition::Window(len), _) => t.div_euclid(len) * len + len - 1,
        }
    }
    fn condition(self) -> Condition {
        match self {
            RefCondition::Range(lower, upper) => {
                Condition::Range(TimeRange::from_micros(lower, upper).unwrap())
            }
            RefCondition::Window(len) => Condition::window(
                &TimeWindows::tumbling(Duration::from_micros(len as u64)).unwrap(),
            )
            .unwrap(),
        }
    }
}

/// A random script: rows of 5 keys around an advancing clock, some of them late, with
/// watermarks, markers and restores; in micro-batch mode a watermark only right after a
/// marker (the batch's watermark is fixed before its records).
fn script(rng: &mut Rng, micro_batch: bool, len: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut now = 0i64;
    let mut watermark = i64::MIN;
    let mut id = 0u32;
    let mut batch_start = true;
    for _ in 0..len {
        match rng.below(20) {
            0..=6 => {
                id += 1;
                let t = now - rng.below(40) as i64;
                steps.push(Step::Left(rng.below(5) as u8, (id, t)));
                batch_start = false;
            }
            7..=13 => {
                id += 1;
                let t = now - rng.below(40) as i64;
                steps.push(Step::Right(rng.below(5) as u8, (id, t)));
                batch_start = false;
            }
            14..=15 => now += rng.below(10) as i64,
            16..=17 if !micro_batch || batch_start => {
                let next = now - 20 - rng.below(20) as i64;
                if next > watermark {
                    watermark = next;
                    steps.push(Step::Watermark(next));
                }
            }
            18 => {
                steps.push(Step::Marker);
                batch_start = true;
            }
            19 if rng.below(4) == 0 => steps.push(Step::Restore),
            _ => {}
        }
    }
    steps
}

/// The operator's output for `kind`, as pairs of ids.
fn run<E>(
    output: E,
    condition: Condition,
    micro_batch: bool,
    steps: &[Step],
    check_gauge: &dyn Fn(&str, u64, i64, usize),
) -> (Vec<Pair>, u64)
where
    E: JoinOutput<u8, Rec, Rec, Out = Pair>,
{
    let op = TwoInput::new(StreamJoin::new(
        condition,
        TimeFn(|l: &Rec| Timestamp(l.1)),
        TimeFn(|r: &Rec| Timestamp(r.1)),
        true,
        output,
    ));
    let mode = EmitMode {
        execution: if micro_batch {
            ExecutionMode::MicroBatch
        } else {
            ExecutionMode::Continuous
        },
        output: OutputMode::Append,
    };
    let mut h = Harness::new(op.clone());
    h.set_emit_mode(mode);
    let mut out = Vec::new();
    let mut dropped = 0;
    let mut index = 0;
    for step in steps {
        match *step {
            Step::Left(k, rec) => {
                index += 1;
                h.push(Either::Left((k, rec)));
            }
            Step::Right(k, rec) => {
                index += 1;
                h.push(Either::Right((k, rec)));
            }
            Step::Watermark(w) => {
                h.advance_watermark(Timestamp(w));
                if !micro_batch {
                    check_gauge("watermark", h.counter(STATE_ROWS), w, index);
                }
            }
            Step::Marker => {
                h.end_epoch();
                check_gauge("marker", h.counter(STATE_ROWS), h.watermark().0, index);
            }
            Step::Restore => {
                let bytes = h.snapshot().unwrap();
                let watermark = h.watermark();
                out.extend(h.take_output());
                dropped += h.counter(ROWS_DROPPED_BY_WATERMARK);
                h = Harness::restore(op.clone(), bytes.as_deref()).unwrap();
                h.set_emit_mode(mode);
                // The engine sends the restored watermark before the first record.
                h.advance_watermark(watermark);
            }
        }
    }
    h.end();
    out.extend(h.take_output());
    (out, dropped + h.counter(ROWS_DROPPED_BY_WATERMARK))
}

/// The nested-loop reference: which rows are late (by the same watermark sequence), every
/// matching pair of the others, and for outer joins the unmatched rows the final watermark
/// made final.
fn reference(
    kind: Kind,
    cond: RefCondition,
    micro_batch: bool,
    steps: &[Step],
) -> (Vec<Pair>, u64) {
    let mut left = Vec::new();
    let mut right = Vec::new();
    let mut watermark = i64::MIN;
    let mut previous = i64::MIN;
    let mut dropped = 0;
    for step in steps {
        let bound = if micro_batch { previous } else { watermark };
        match *step {
            Step::Left(k, (id, t)) if t > bound => left.push((k, id, t)),
            Step::Right(k, (id, t)) if t > bound => right.push((k, id, t)),
            Step::Left(..) | Step::Right(..) => dropped += 1,
            Step::Watermark(w) => watermark = watermark.max(w),
            Step::Marker => previous = watermark,
            Step::Restore => {}
        }
    }
    let mut out = Vec::new();
    let mut left_matched = vec![false; left.len()];
    let mut right_matched = vec![false; right.len()];
    for (i, (lk, lid, lt)) in left.iter().enumerate() {
        for (j, (rk, rid, rt)) in right.iter().enumerate() {
            if lk == rk && cond.matches(*lt, *rt) {
                left_matched[i] = true;
                right_matched[j] = true;
                if kind != Kind::LeftSemi {
                    out.push((Some(*lid), Some(*rid)));
                }
            }
        }
    }
    for (i, (_, lid, lt)) in left.iter().enumerate() {
        let outer = matches!(kind, Kind::LeftOuter | Kind::FullOuter);
        if outer && !left_matched[i] && cond.last_match(Side::Left, *lt) <= watermark {
            out.push((Some(*lid), None));
        }
        if kind == Kind::LeftSemi && left_matched[i] {
            out.push((Some(*lid), None));
        }
    }
    for (j, (_, rid, rt)) in right.iter().enumerate() {
        let outer = matches!(kind, Kind::RightOuter | Kind::FullOuter);
        if outer && !right_matched[j] && cond.last_match(Side::Right, *rt) <= watermark {
            out.push((None, Some(*rid)));
        }
    }
    (out, dropped)
}

/// The rows the reference says a join keeps after `index` rows under watermark `w`: the
/// rows that were not late and that a row later than `w` can still match.
fn expected_state(
    cond: RefCondition,
    micro_batch: bool,
    steps: &[Step],
    index: usize,
    w: i64,
) -> u64 {
    let mut watermark = i64::MIN;
    let mut previous = i64::MIN;
    let mut seen = 0;
    let mut kept = 0;
    for step in steps {
        if seen == index {
            break;
        }
        let bound = if micro_batch { previous } else { watermark };
        match *step {
            Step::Left(_, (_, t)) => {
                seen += 1;
                kept += u64::from(t > bound && cond.last_match(Side::Left, t) > w);
            }
            Step::Right(_, (_, t)) => {
                seen += 1;
                kept += u64::from(t > bound && cond.last_match(Side::Right, t) > w);
            }
            Step::Watermark(x) => watermark = watermark.max(x),
            Step::Marker => previous = watermark,
            Step::Restore => {}
        }
    }
    kept
}

fn run_kind(kind: Kind, cond: RefCondition, micro_batch: bool, steps: &[Step]) -> (Vec<Pair>, u64) {
    let c = cond.condition();
    let gauge = |at: &str, value: u64, w: i64, index: usize| {
        if kind != Kind::LeftSemi {
            let expected = expected_state(cond, micro_batch, steps, index, w);
            assert_eq!(
                value, expected,
                "{kind:?} {cond:?} state rows at a {at} (w {w})"
            );
        }
    };
    match kind {
        Kind::Inner => run(
            Inner(|_: &u8, l: &Rec, r: &Rec| (Some(l.0), Some(r.0))),
            c,
            micro_batch,
            steps,
            &gauge,
        ),
        Kind::LeftOuter => run(
            LeftOuter(|_: &u8, l: &Rec, r: Option<&Rec>| (Some(l.0), r.map(|r| r.0))),
            c,
            micro_batch,
            steps,
            &gauge,
        ),
        Kind::RightOuter => run(
            RightOuter(|_: &u8, l: Option<&Rec>, r: &Rec| (l.map(|l| l.0), Some(r.0))),
            c,
            micro_batch,
            steps,
            &gauge,
        ),
        Kind::FullOuter => run(
            FullOuter(|_: &u8, l: Option<&Rec>, r: Option<&Rec>| (l.map(|l| l.0), r.map(|r| r.0))),
            c,
            micro_batch,
            steps,
            &gauge,
        ),
        Kind::LeftSemi => run(
            LeftSemi(|_: &u8, l: &Rec| (Some(l.0), None)),
            c,
            micro_batch,
            steps,
            &gauge,
        ),
    }
}

#[test]
fn every_join_type_equals_the_nested_loop_reference() {
    let mut rng = Rng(0x10_1e);
    let mut checked = [0usize; 2];
    for round in 0..60 {
        let micro_batch = round % 2 == 1;
        let cond = if round % 3 == 2 {
            RefCondition::Window(1 + rng.below(15) as i64)
        } else {
            let lower = rng.below(30) as i64 - 20;
            RefCondition::Range(lower, lower + rng.below(25) as i64)
        };
        let steps = script(&mut rng, micro_batch, 400);
        for kind in KINDS {
            let (mut got, dropped) = run_kind(kind, cond, micro_batch, &steps);
            let (mut expected, expected_dropped) = reference(kind, cond, micro_batch, &steps);
            got.sort_unstable();
            expected.sort_unstable();
            assert_eq!(
                got, expected,
                "round {round}: {kind:?} {cond:?} micro-batch {micro_batch}"
            );
            assert_eq!(dropped, expected_dropped, "round {round}: late rows");
            checked[0] += expected.len();
            checked[1] += dropped as usize;
        }
    }
    // The scripts exercise what they are meant to.
    assert!(checked[0] > 10_000 && checked[1] > 1_000, "{checked:?}");
}

#[test]
fn an_unmatched_row_is_emitted_when_the_watermark_passes_its_last_chance() {
    // left.time BETWEEN right.time − 10 AND right.time + 5: a left row at 100 can match
    // right rows at 95..=110, so it is final once the watermark reaches 110.
    let cond = Condition::Range(TimeRange::from_micros(-10, 5).unwrap());
    let op = TwoInput::new(StreamJoin::new(
        cond,
        TimeFn(|l: &Rec| Timestamp(l.1)),
        TimeFn(|r: &Rec| Timestamp(r.1)),
        true,
        LeftOuter(|_: &u8, l: &Rec, r: Option<&Rec>| (l.0, r.map(|r| r.0))),
    ));
    let mut h = Harness::new(op);
    h.push(Either::Left((1u8, (1, 100))));
    h.advance_watermark(Timestamp(109));
    assert_eq!(h.take_output(), []);
    assert_eq!(h.counter(STATE_ROWS), 1);
    h.advance_watermark(Timestamp(110));
    assert_eq!(h.take_output(), [(1, None)]);
    assert_eq!(h.counter(STATE_ROWS), 0);
    // Late (at or before the watermark): dropped and counted, no outer row.
    h.push(Either::Left((1u8, (2, 110))));
    assert_eq!(h.take_output(), []);
    assert_eq!(h.counter(ROWS_DROPPED_BY_WATERMARK), 1);
}

#[test]
fn a_row_that_can_match_nothing_to_come_is_joined_but_not_kept() {
    // left.time BETWEEN right.time + 5 AND right.time + 8: a left row at 102 matches right
    // rows at 94..=97, all at or before the watermark 100, so none is still to come.
    let cond = Condition::Range(TimeRange::from_micros(5, 8).unwrap());
    let op = TwoInput::new(StreamJoin::new(
        cond,
        TimeFn(|l: &Rec| Timestamp(l.1)),
        TimeFn(|r: &Rec| Timestamp(r.1)),
        true,
        LeftOuter(|_: &u8, l: &Rec, r: Option<&Rec>| (l.0, r.map(|r| r.0))),
    ));
    let mut h = Harness::new(op);
    h.advance_watermark(Timestamp(90));
    h.push(Either::Right((1u8, (10, 95))));
    h.advance_watermark(Timestamp(100));
    // The right row at 95 can still match left rows up to 103.
    assert_eq!(h.counter(STATE_ROWS), 1);
    h.push(Either::Left((1u8, (1, 102))));
    h.push(Either::Left((1u8, (2, 104))));
    assert_eq!(h.take_output(), [(1, Some(10)), (2, None)]);
    h.advance_watermark(Timestamp(103));
    assert_eq!(h.counter(STATE_ROWS), 0);
    assert_eq!(h.take_output(), []);
}
