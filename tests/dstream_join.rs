//! Per-batch joins (`join_per_batch`, `left_outer_join_per_batch`,
//! `right_outer_join_per_batch`, `full_outer_join_per_batch`, `cogroup_per_batch`)
//! against a nested-loop reference computed per epoch.
//!
//! Each side's records are tagged with their epoch on the source thread, by an operator
//! that reads `ctx.epoch()` and also writes `(epoch, record)` into a probe: the probe
//! says which records each epoch held, independently of the join. For every epoch the
//! reference is the nested-loop join (or cogroup) of the left and right records the
//! probe saw in it; the join's output must equal the union over epochs as a multiset,
//! and a sink that records the epoch of each row must see every row in its inputs'
//! epoch.
//!
//! The sources emit their input in chunks of random size, the next chunk only after the
//! source's next checkpoint, so every run spans many epochs whatever the speed of the
//! machine. Inputs have duplicate values and keys that only one side has.
//!
//! * Micro-batch, and continuous with aligned checkpoints, at parallelism 1 and 3: exact.
//! * Continuous at-least-once (unaligned markers): every record is in exactly one
//!   cogroup, in an epoch no later than its source's.

mod common;

use common::{finish_ok, sorted, Rng};
use rivulet::checkpoint::{CheckpointConfig, CheckpointMode, Durability};
use rivulet::error::BoxError;
use rivulet::operator::{Context, Operator};
use rivulet::sink::Sink;
use rivulet::source::{Source, SourcePoll};
use rivulet::trigger::EmitMode;
use rivulet::{Epoch, Query, Trigger};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A record of either side: `(key, id)`; ids are unique per side.
type Rec = (u32, u64);
/// A record with the epoch its source emitted it in.
type Tagged = (u64, Rec);

/// Emits its records in chunks, the next chunk only after a checkpoint: at most one
/// chunk per epoch.
#[derive(Debug)]
struct Chunked {
    records: Vec<Rec>,
    /// Where each chunk ends.
    ends: Vec<usize>,
    next: usize,
    /// The chunk being emitted.
    chunk: usize,
    /// Whether the source waits for a checkpoint before its next chunk.
    waiting: bool,
}

impl Chunked {
    fn new(records: Vec<Rec>, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut ends = Vec::new();
        let mut end = 0;
        while end < records.len() {
            end = (end + 1 + rng.below(60) as usize).min(records.len());
            ends.push(end);
        }
        Chunked {
            records,
            ends,
            next: 0,
            chunk: 0,
            waiting: false,
        }
    }
}

impl Source for Chunked {
    type Item = Rec;

    fn poll_next(&mut self) -> SourcePoll<Rec> {
        if self.next == self.records.len() {
            return SourcePoll::Exhausted;
        }
        if self.waiting {
            return SourcePoll::Pending {
                until: Some(Instant::now() + Duration::from_millis(1)),
            };
        }
        self.next += 1;
        if self.next == self.ends[self.chunk] {
            self.chunk += 1;
            self.waiting = true;
        }
        SourcePoll::Ready(self.records[self.next - 1])
    }

    fn can_replay(&self) -> bool {
        true
    }

    fn checkpoint(&mut self, _epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        self.waiting = false;
        Ok((self.next as u64).to_le_bytes().to_vec())
    }

    fn restore(&mut self, _offset: &[u8]) -> Result<(), BoxError> {
        Err("these tests never restore".into())
    }
}

/// Passes records on as `(epoch, record)` and notes each in the probe.
#[derive(Debug, Clone)]
struct TagEpoch {
    probe: Arc<Mutex<Vec<Tagged>>>,
}

impl Operator<Rec> for TagEpoch {
    type Out = Tagged;
    type Key = ();
    type Side = ();

    fn on_record<C: Context<Tagged>>(&mut self, record: Rec, ctx: &mut C) {
        let tagged = (ctx.epoch().0, record);
        self.probe.lock().unwrap().push(tagged);
        ctx.push(tagged);
    }
}

/// Every row with the epoch its sink instance wrote it in.
#[derive(Clone)]
struct EpochRows<T> {
    rows: Arc<Mutex<Vec<(u64, T)>>>,
    epoch: u64,
}

impl<T> EpochRows<T> {
    fn new() -> Self {
        EpochRows {
            rows: Arc::new(Mutex::new(Vec::new())),
            epoch: 0,
        }
    }
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

/// `n` records with keys in `keys` (a key appears many times; the two sides' key ranges
/// overlap only in part).
fn input(n: usize, keys: std::ops::Range<u32>, seed: u64) -> Vec<Rec> {
    let mut rng = Rng::new(seed);
    let span = u64::from(keys.end - keys.start);
    (0..n as u64)
        .map(|id| (keys.start + rng.below(span) as u32, id))
        .collect()
}

/// A join row: `(key, (left, right))`, each side `None` where a join kind pads.
type JoinRow = (u32, (Option<Tagged>, Option<Tagged>));

/// Which join a run builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
}

/// The reference: per epoch, the nested-loop join of that epoch's left and right records.
fn reference(kind: Kind, left: &[Tagged], right: &[Tagged]) -> Vec<JoinRow> {
    let mut rows = Vec::new();
    for l in left {
        let mut matched = false;
        for r in right {
            if l.0 == r.0 && l.1 .0 == r.1 .0 {
                matched = true;
                rows.push((l.1 .0, (Some(*l), Some(*r))));
            }
        }
        if !matched && matches!(kind, Kind::LeftOuter | Kind::FullOuter) {
            rows.push((l.1 .0, (Some(*l), None)));
        }
    }
    if matches!(kind, Kind::RightOuter | Kind::FullOuter) {
        for r in right {
            if !left.iter().any(|l| l.0 == r.0 && l.1 .0 == r.1 .0) {
                rows.push((r.1 .0, (None, Some(*r))));
            }
        }
    }
    rows
}

/// The reference cogroup: per epoch and key, the epoch's left and right records of the
/// key in arrival order.
fn reference_cogroup(left: &[Tagged], right: &[Tagged]) -> Vec<CogroupRow> {
    let mut groups: BTreeMap<(u64, u32), (Vec<Tagged>, Vec<Tagged>)> = BTreeMap::new();
    for l in left {
        groups.entry((l.0, l.1 .0)).or_default().0.push(*l);
    }
    for r in right {
        groups.entry((r.0, r.1 .0)).or_default().1.push(*r);
    }
    groups
        .into_iter()
        .map(|((_, key), sides)| (key, sides))
        .collect()
}

type CogroupRow = (u32, (Vec<Tagged>, Vec<Tagged>));

/// How a run is triggered and checkpointed.
#[derive(Debug, Clone, Copy)]
enum Setup {
    MicroBatch,
    ContinuousAligned,
    ContinuousAtLeastOnce,
}

/// A query builder for `setup`, checkpointing into `dir`, and the probes of its two
/// tagged inputs.
struct Run {
    query: rivulet::QueryBuilder,
    left_probe: Arc<Mutex<Vec<Tagged>>>,
    right_probe: Arc<Mutex<Vec<Tagged>>>,
}

impl Run {
    fn new(setup: Setup, parallelism: usize, dir: &std::path::Path) -> Self {
        let mut query = Query::builder();
        query.parallelism(parallelism).ring_capacity(16);
        // A checkpoint log in every setup: sources are asked for offsets (which the
        // chunked source waits for) only when the query persists them.
        let mode = match setup {
            Setup::ContinuousAtLeastOnce => CheckpointMode::AtLeastOnce,
            _ => CheckpointMode::Aligned,
        };
        query.checkpoint(
            CheckpointConfig::new(dir)
                .interval(Duration::from_millis(1))
                .durability(Durability::OsBuffered)
                .mode(mode),
        );
        if let Setup::MicroBatch = setup {
            query.trigger(Trigger::MicroBatch {
                interval: Duration::from_millis(1),
            });
        }
        Run {
            query,
            left_probe: Arc::default(),
            right_probe: Arc::default(),
        }
    }

    /// Starts the query, waits for it to end and returns what the probes saw.
    fn finish(self, what: &str) -> (Vec<Tagged>, Vec<Tagged>) {
        let running = self.query.start().expect("start");
        finish_ok(&running, what);
        (
            self.left_probe.lock().unwrap().clone(),
            self.right_probe.lock().unwrap().clone(),
        )
    }
}

const LEFT: usize = 1_500;
const RIGHT: usize = 1_200;

fn left_input() -> Vec<Rec> {
    input(LEFT, 0..40, 1)
}

fn right_input() -> Vec<Rec> {
    input(RIGHT, 15..60, 2)
}

/// Builds the two tagged, keyed inputs of `run`.
macro_rules! keyed_inputs {
    ($run:expr) => {{
        let run = &mut $run;
        let left = run
            .query
            .source("left", Chunked::new(left_input(), 3))
            .operator(
                "tag_left",
                TagEpoch {
                    probe: run.left_probe.clone(),
                },
            )
            .key_by(|t: &Tagged| t.1 .0);
        let right = run
            .query
            .source("right", Chunked::new(right_input(), 4))
            .operator(
                "tag_right",
                TagEpoch {
                    probe: run.right_probe.clone(),
                },
            )
            .key_by(|t: &Tagged| t.1 .0);
        (left, right)
    }};
}

/// Runs the join `kind` and returns its rows (as `JoinRow`s) with their sink epochs, and
/// the probes.
fn run_join(
    kind: Kind,
    setup: Setup,
    parallelism: usize,
) -> (Vec<(u64, JoinRow)>, Vec<Tagged>, Vec<Tagged>) {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::new(setup, parallelism, dir.path());
    let (left, right) = keyed_inputs!(run);
    let sink = EpochRows::<JoinRow>::new();
    match kind {
        Kind::Inner => left
            .join_per_batch(right)
            .map(|(k, (l, r))| (k, (Some(l), Some(r))))
            .sink("rows", sink.clone()),
        Kind::LeftOuter => left
            .left_outer_join_per_batch(right)
            .map(|(k, (l, r))| (k, (Some(l), r)))
            .sink("rows", sink.clone()),
        Kind::RightOuter => left
            .right_outer_join_per_batch(right)
            .map(|(k, (l, r))| (k, (l, Some(r))))
            .sink("rows", sink.clone()),
        Kind::FullOuter => left
            .full_outer_join_per_batch(right)
            .sink("rows", sink.clone()),
    }
    let (l, r) = run.finish("per-batch join");
    let rows = sink.rows.lock().unwrap().clone();
    (rows, l, r)
}

/// The epoch of a row's inputs (both sides' agree, or the test fails).
fn epoch_of(row: &JoinRow) -> u64 {
    match row.1 {
        (Some(l), Some(r)) => {
            assert_eq!(l.0, r.0, "a pair from two epochs: {row:?}");
            l.0
        }
        (Some(l), None) => l.0,
        (None, Some(r)) => r.0,
        (None, None) => panic!("an empty row"),
    }
}

fn epochs(probe: &[Tagged]) -> usize {
    probe
        .iter()
        .map(|t| t.0)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

#[test]
fn per_batch_joins_equal_a_nested_loop_join_per_epoch() {
    for setup in [Setup::MicroBatch, Setup::ContinuousAligned] {
        for parallelism in [1, 3] {
            for kind in [
                Kind::Inner,
                Kind::LeftOuter,
                Kind::RightOuter,
                Kind::FullOuter,
            ] {
                let what = format!("{kind:?}, {setup:?}, parallelism {parallelism}");
                let (rows, left, right) = run_join(kind, setup, parallelism);
                assert_eq!(left.len(), LEFT, "{what}: left records tagged");
                assert_eq!(right.len(), RIGHT, "{what}: right records tagged");
                // At most one chunk per epoch: many epochs, whatever the machine's speed.
                assert!(epochs(&left) >= 20, "{what}: {} epochs", epochs(&left));
                for (sink_epoch, row) in &rows {
                    assert_eq!(
                        *sink_epoch,
                        epoch_of(row),
                        "{what}: a row emitted in another epoch than its inputs'"
                    );
                }
                let expected = sorted(reference(kind, &left, &right));
                assert!(!expected.is_empty(), "{what}: nothing joins");
                let got = sorted(rows.into_iter().map(|(_, row)| row).collect());
                assert_eq!(got.len(), expected.len(), "{what}: row count");
                assert_eq!(got, expected, "{what}");
            }
        }
    }
}

fn run_cogroup(
    setup: Setup,
    parallelism: usize,
) -> (Vec<(u64, CogroupRow)>, Vec<Tagged>, Vec<Tagged>) {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::new(setup, parallelism, dir.path());
    let (left, right) = keyed_inputs!(run);
    let sink = EpochRows::<CogroupRow>::new();
    left.cogroup_per_batch(right).sink("groups", sink.clone());
    let (l, r) = run.finish("per-batch cogroup");
    let rows = sink.rows.lock().unwrap().clone();
    (rows, l, r)
}

#[test]
fn cogroup_per_batch_groups_each_epochs_values_per_key() {
    for setup in [Setup::MicroBatch, Setup::ContinuousAligned] {
        for parallelism in [1, 3] {
            let what = format!("{setup:?}, parallelism {parallelism}");
            let (rows, left, right) = run_cogroup(setup, parallelism);
            for (sink_epoch, (key, (ls, rs))) in &rows {
                assert!(!ls.is_empty() || !rs.is_empty(), "{what}: an empty group");
                for t in ls.iter().chain(rs) {
                    assert_eq!((t.0, t.1 .0), (*sink_epoch, *key), "{what}: {t:?}");
                }
            }
            let got = sorted(rows.into_iter().map(|(_, row)| row).collect());
            assert_eq!(got, sorted(reference_cogroup(&left, &right)), "{what}");
        }
    }
}

/// Without alignment an input that delivered a marker is read on while the other has
/// not: the join's epoch can take records its sources sent after the marker. Nothing is
/// lost or doubled without a crash, and nothing comes out before its source's epoch.
#[test]
fn at_least_once_cogroups_hold_every_record_once_no_later_than_its_epoch() {
    for parallelism in [1, 3] {
        let (rows, left, right) = run_cogroup(Setup::ContinuousAtLeastOnce, parallelism);
        let mut seen_left = Vec::new();
        let mut seen_right = Vec::new();
        for (sink_epoch, (key, (ls, rs))) in rows {
            for t in &ls {
                assert_eq!(t.1 .0, key);
                assert!(sink_epoch <= t.0, "{t:?} came out in epoch {sink_epoch}");
            }
            for t in &rs {
                assert_eq!(t.1 .0, key);
                assert!(sink_epoch <= t.0, "{t:?} came out in epoch {sink_epoch}");
            }
            seen_left.extend(ls);
            seen_right.extend(rs);
        }
        assert_eq!(sorted(seen_left), sorted(left), "parallelism {parallelism}");
        assert_eq!(
            sorted(seen_right),
            sorted(right),
            "parallelism {parallelism}"
        );
    }
}

/// Checks the test's reference against a case worked by hand, so a broken reference
/// cannot make the engine's rows look right.
#[test]
fn the_reference_joins_by_hand() {
    let left = [(1, (7, 0)), (1, (7, 1)), (1, (8, 2)), (2, (7, 3))];
    let right = [(1, (7, 0)), (2, (9, 1))];
    assert_eq!(
        sorted(reference(Kind::FullOuter, &left, &right)),
        sorted(vec![
            (7, (Some((1, (7, 0))), Some((1, (7, 0))))),
            (7, (Some((1, (7, 1))), Some((1, (7, 0))))),
            (8, (Some((1, (8, 2))), None)),
            (7, (Some((2, (7, 3))), None)),
            (9, (None, Some((2, (9, 1))))),
        ])
    );
    assert_eq!(reference(Kind::Inner, &left, &right).len(), 2);
    assert_eq!(
        reference_cogroup(&left, &right),
        vec![
            (7, (vec![(1, (7, 0)), (1, (7, 1))], vec![(1, (7, 0))])),
            (8, (vec![(1, (8, 2))], vec![])),
            (7, (vec![(2, (7, 3))], vec![])),
            (9, (vec![], vec![(2, (9, 1))])),
        ]
    );
}
