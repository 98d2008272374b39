//! Crash and restart with real processes, for the stream–stream join: a child process
//! runs a checkpointed query — two rate sources with a row limit, event times a
//! deterministic function of the row id, watermarks, a full outer join of the two on a
//! key and a time range, two instances, CSV part files — and the test kills it with
//! SIGKILL at random moments, restarts it on the same directories, and finally lets it
//! finish.
//!
//! Row `v`'s event time on either side is `v · STEP` minus a pseudo-random jitter below
//! `JITTER` (none for the last row, so both sides end at the same time and the final
//! watermark is `(ROWS − 1) · STEP − DELAY` whichever source ends first). The jitter is
//! smaller than the watermark delay, so no row is ever late and the output is known in
//! advance: every matching pair, and every unmatched row that the final watermark made
//! final.
//!
//! After the final run (`read_committed`):
//!
//! * micro-batch: exactly that multiset (the offset log replays an interrupted batch
//!   identically, the join's state is a consistent cut, the sink skips what it committed);
//! * continuous, or runs alternating between the two modes: exactly that set, rows
//!   possibly more than once (at-least-once).
//!
//! The child is this test binary itself, re-run with `--ignored --exact
//! join_crash_worker` and the `RIVULET_JOIN_CRASH_WORKER` environment variable.

mod common;

use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::join::TimeRange;
use rivulet::sink::file::read_committed;
use rivulet::sink::FileFormat;
use rivulet::source::RateSource;
use rivulet::{Query, Timestamp, Trigger};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// Rows of each source.
const ROWS: u64 = 20_000;
/// Rows per second of each source: the data takes 2 s, so the kills fall all over it.
const RATE: u64 = 10_000;
/// Event time per row id, µs.
const STEP: i64 = 10;
/// Row `v` is up to `JITTER − 1` µs earlier than `v · STEP`.
const JITTER: u64 = 300;
/// The watermark delay, µs: more than the disorder, so nothing is late.
const DELAY: i64 = 500;
/// The range: left.time BETWEEN right.time + LOWER AND right.time + UPPER.
const LOWER: i64 = -40;
const UPPER: i64 = 60;
/// Keys.
const KEYS: u64 = 10;

/// A fixed pseudo-random function (splitmix64's finalizer).
fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A row of either side: (id, key, event time).
type Rec = (u64, u64, i64);

fn left_row(v: u64) -> Rec {
    let jitter = if v == ROWS - 1 { 0 } else { mix(v) % JITTER };
    (v, v % KEYS, v as i64 * STEP - jitter as i64)
}

fn right_row(v: u64) -> Rec {
    let jitter = if v == ROWS - 1 {
        0
    } else {
        mix(v ^ 0xabcd) % JITTER
    };
    (v, mix(v) % KEYS, v as i64 * STEP - jitter as i64)
}

/// The child process: runs the query until its sources end.
#[test]
#[ignore = "entry point of the child process of the join crash tests"]
fn join_crash_worker() {
    let Ok(dir) = std::env::var("RIVULET_JOIN_CRASH_WORKER") else {
        return;
    };
    let dir = Path::new(&dir);
    let micro_batch = std::env::var("RIVULET_JOIN_CRASH_CONTINUOUS").is_err();
    let mut query = Query::builder();
    query
        .parallelism(2)
        .max_batch_records(700)
        .checkpoint(
            CheckpointConfig::new(dir.join("checkpoints"))
                .durability(Durability::OsBuffered)
                .retain(2)
                .segment_bytes(1 << 20),
        )
        .trigger(if micro_batch {
            Trigger::MicroBatch {
                interval: Duration::from_millis(5),
            }
        } else {
            Trigger::Continuous {
                checkpoint_interval: Duration::from_millis(5),
            }
        });
    let delay = Duration::from_micros(DELAY as u64);
    let time = |r: &Rec| Timestamp(r.2);
    let left = query
        .source("left", RateSource::new(RATE).with_limit(ROWS))
        .map(|row| left_row(row.value))
        .with_event_time(time)
        .with_watermark(delay)
        .key_by(|r: &Rec| r.1);
    let right = query
        .source("right", RateSource::new(RATE).with_limit(ROWS))
        .map(|row| right_row(row.value))
        .with_event_time(time)
        .with_watermark(delay)
        .key_by(|r: &Rec| r.1);
    left.join(right)
        .event_time(time, time)
        .within(TimeRange::from_micros(LOWER, UPPER).unwrap())
        .full_outer(|_, l, r| (l.map_or(-1, |l| l.0 as i64), r.map_or(-1, |r| r.0 as i64)))
        .to_files(dir.join("out"), FileFormat::Csv);
    let running = query.start().unwrap();
    common::note_run(&running, dir);
    running.await_termination().unwrap();
}

fn spawn_worker(dir: &Path, micro_batch: bool) -> Child {
    let mut command = common::worker_command("join_crash_worker");
    command.env("RIVULET_JOIN_CRASH_WORKER", dir);
    if micro_batch {
        command.env_remove("RIVULET_JOIN_CRASH_CONTINUOUS");
    } else {
        command.env("RIVULET_JOIN_CRASH_CONTINUOUS", "1");
    }
    command.spawn().expect("the test binary can run itself")
}

/// The full outer join of all rows under the final watermark, as (left id, right id)
/// with −1 for none. Rows match only within a few hundred ids of each other (times are
/// `id · STEP` minus less than `JITTER`), so each left row is compared with the right rows
/// of nearby ids only.
fn reference() -> Vec<(i64, i64)> {
    let watermark = (ROWS as i64 - 1) * STEP - DELAY;
    let right: Vec<Rec> = (0..ROWS).map(right_row).collect();
    let mut right_matched = vec![false; ROWS as usize];
    let reach = ((UPPER - LOWER) / STEP) as u64 + JITTER / STEP as u64 + 2;
    let mut out = Vec::new();
    for v in 0..ROWS {
        let l = left_row(v);
        let mut matched = false;
        for w in v.saturating_sub(reach)..(v + reach).min(ROWS) {
            let r = right[w as usize];
            if l.1 == r.1 && r.2 + LOWER <= l.2 && l.2 <= r.2 + UPPER {
                matched = true;
                right_matched[w as usize] = true;
                out.push((v as i64, w as i64));
            }
        }
        // Final once no right row later than the watermark can match: l − LOWER ≤ W.
        if !matched && l.2 - LOWER <= watermark {
            out.push((v as i64, -1));
        }
    }
    for (w, r) in right.iter().enumerate() {
        if !right_matched[w] && r.2 + UPPER <= watermark {
            out.push((-1, w as i64));
        }
    }
    out
}

/// How the runs of a crash test are triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modes {
    MicroBatch,
    Continuous,
    /// Alternating, starting with continuous; the final run is a micro-batch run.
    Alternating,
}

impl Modes {
    /// Whether run `run` (0-based; `None` for the final run) uses micro-batches.
    fn micro_batch(self, run: Option<usize>) -> bool {
        match self {
            Modes::MicroBatch => true,
            Modes::Continuous => false,
            Modes::Alternating => run.is_none_or(|run| run % 2 == 1),
        }
    }
}

fn run_crash_test(modes: Modes, kills: usize, seed: u64) {
    // RIVULET_KEEP=1 keeps the directories for a post-mortem.
    let keep = std::env::var("RIVULET_KEEP").is_ok();
    let dir = tempfile::Builder::new()
        .disable_cleanup(keep)
        .tempdir()
        .unwrap();
    if keep {
        eprintln!("keeping {}", dir.path().display());
    }
    let mut random = common::Rng::new(seed);
    let started = Instant::now();
    for run in 0..kills {
        common::kill_after(
            spawn_worker(dir.path(), modes.micro_batch(Some(run))),
            Duration::from_millis(40 + random.next_u64() % 350),
        );
    }
    common::expect_success(
        spawn_worker(dir.path(), modes.micro_batch(None)),
        "the final run",
    );

    let runs: Vec<i64> = std::fs::read_to_string(dir.path().join("runs.txt"))
        .unwrap()
        .lines()
        .map(|line| line.parse().unwrap())
        .collect();
    let resumed = runs.iter().filter(|epoch| **epoch > 0).count();
    assert!(
        *runs.last().unwrap() > 0,
        "the final run did not resume: {runs:?}"
    );
    assert!(resumed * 2 >= runs.len(), "few runs resumed: {runs:?}");

    let expected = reference();
    let unmatched = expected.iter().filter(|(l, r)| *l < 0 || *r < 0).count();
    assert!(
        expected.len() > 10_000 && unmatched > 1_000,
        "{} rows, {unmatched} unmatched",
        expected.len()
    );
    let rows: Vec<(i64, i64)> = read_committed(dir.path().join("out"), FileFormat::Csv).unwrap();
    let mut copies: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for row in &rows {
        *copies.entry(*row).or_default() += 1;
    }
    let expected_set: BTreeSet<(i64, i64)> = expected.iter().copied().collect();
    assert_eq!(
        expected_set.len(),
        expected.len(),
        "the reference has no duplicates"
    );
    let unexpected: Vec<_> = copies
        .keys()
        .filter(|row| !expected_set.contains(row))
        .take(10)
        .collect();
    assert!(
        unexpected.is_empty(),
        "rows not in the reference (first 10): {unexpected:?}"
    );
    let missing: Vec<_> = expected_set
        .iter()
        .filter(|row| !copies.contains_key(row))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "rows never committed (first 10): {missing:?}"
    );
    let duplicated: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).take(10).collect();
    if modes == Modes::MicroBatch {
        assert!(
            duplicated.is_empty(),
            "rows committed twice (first 10): {duplicated:?}"
        );
    }
    eprintln!(
        "{modes:?}: {kills} kills, {} runs, {resumed} resumed, {} rows for {} \
         expected ({unmatched} unmatched), {:?}",
        runs.len(),
        rows.len(),
        expected.len(),
        started.elapsed()
    );
}

#[test]
fn micro_batch_join_is_exactly_once_across_kills() {
    run_crash_test(Modes::MicroBatch, 5, 0x5eed_0101);
}

#[test]
fn continuous_join_is_at_least_once_across_kills() {
    run_crash_test(Modes::Continuous, 5, 0x5eed_0102);
}

#[test]
fn join_loses_nothing_across_kills_that_switch_triggers() {
    run_crash_test(Modes::Alternating, 4, 0x5eed_0103);
}
