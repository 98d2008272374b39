//! Crash and restart with real processes, for event-time windows: a child process runs a
//! checkpointed query — a rate source with a row limit, event time a deterministic
//! function of the row id, a watermark, `key_by(id % 10)`, a tumbling window count in
//! append mode, CSV part files — and the test kills it with SIGKILL at random moments,
//! restarts it on the same directories, and finally lets it finish.
//!
//! Row `v`'s event time is `v · STEP` minus a pseudo-random jitter below `JITTER`, which is
//! smaller than the watermark delay: whatever the batch or epoch boundaries and wherever a
//! run was killed, no record is ever late (the watermark a record can meet is at most the
//! largest event time of the rows before it minus the delay, which is below the record's
//! own event time, so below the end of its window). So every window's count is known in
//! advance: the rows of its key in it.
//!
//! After the final run (`read_committed`):
//!
//! * micro-batch: every window the final watermark closed appears exactly once, with its
//!   count, and nothing else (the offset log replays an interrupted batch identically and
//!   the sink skips batches it already committed);
//! * continuous: every such window at least once, every copy with its count, nothing else;
//! * restarts that switch between the two: as continuous.
//!
//! The final watermark is what the window operator had at the end of the final run,
//! reported by a pass-through probe after it into `final_watermark.txt`.
//!
//! The child is this test binary itself, re-run with `--ignored --exact
//! window_crash_worker` and the `RIVULET_WINDOW_CRASH_WORKER` environment variable.

mod common;

use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::operator::{Context, Operator};
use rivulet::sink::file::read_committed;
use rivulet::sink::FileFormat;
use rivulet::source::RateSource;
use rivulet::window::{TimeWindows, Window};
use rivulet::{OutputMode, Query, Timestamp, Trigger};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// Rows of the source.
const ROWS: u64 = 20_000;
/// Rows per second of the short tests: the data takes 2 s, so that their kills fall all
/// over it (the long test runs at a tenth of it, over 20 s).
const RATE: u64 = 10_000;
/// Event time per row id, µs.
const STEP: i64 = 10;
/// Row `v` is up to `JITTER − 1` µs earlier than `v · STEP`.
const JITTER: u64 = 300;
/// The watermark delay, µs: more than the disorder, so nothing is late.
const DELAY: i64 = 500;
/// The tumbling window length, µs (100 rows, 10 per key).
const LENGTH: i64 = 1_000;
/// Keys: `id % KEYS`.
const KEYS: u64 = 10;

/// A fixed pseudo-random function of the row id (splitmix64's finalizer).
fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Row `v`'s event time.
fn event_time_of(v: u64) -> i64 {
    v as i64 * STEP - (mix(v) % JITTER) as i64
}

/// The window start of event time `t`.
fn start_of(t: i64) -> i64 {
    t.div_euclid(LENGTH) * LENGTH
}

/// Passes the window rows on; at the end of the stream writes the watermark it has to
/// `path` (the window operator's, forwarded to it).
#[derive(Debug, Clone)]
struct FinalWatermark {
    path: PathBuf,
}

type Row = (u64, Window, u64);

impl Operator<Row> for FinalWatermark {
    type Out = Row;
    type Key = ();
    type Side = ();

    fn on_record<C: Context<Row>>(&mut self, row: Row, ctx: &mut C) {
        ctx.push(row);
    }

    fn on_end<C: Context<Row>>(&mut self, ctx: &mut C) {
        std::fs::write(&self.path, ctx.watermark().0.to_string()).unwrap();
    }
}

/// The child process: runs the query until its source ends.
#[test]
#[ignore = "entry point of the child process of the window crash tests"]
fn window_crash_worker() {
    let Ok(dir) = std::env::var("RIVULET_WINDOW_CRASH_WORKER") else {
        return;
    };
    let dir = Path::new(&dir);
    let micro_batch = std::env::var("RIVULET_WINDOW_CRASH_CONTINUOUS").is_err();
    let rate: u64 =
        std::env::var("RIVULET_WINDOW_CRASH_RATE").map_or(RATE, |rate| rate.parse().unwrap());
    let mut query = Query::builder();
    query
        .output_mode(OutputMode::Append)
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
    query
        .source("rows", RateSource::new(rate).with_limit(ROWS))
        .map(|row| row.value)
        .with_event_time(|v: &u64| Timestamp(event_time_of(*v)))
        .with_watermark(Duration::from_micros(DELAY as u64))
        .key_by(|v: &u64| v % KEYS)
        .window(
            TimeWindows::tumbling(Duration::from_micros(LENGTH as u64)).unwrap(),
            |v: &u64| Timestamp(event_time_of(*v)),
        )
        .count()
        .operator(
            "final_watermark",
            FinalWatermark {
                path: dir.join("final_watermark.txt"),
            },
        )
        .map(|(key, window, count)| (key, window.start.0, window.end.0, count))
        .to_files(dir.join("out"), FileFormat::Csv);
    let running = query.start().unwrap();
    common::note_run(&running, dir);
    running.await_termination().unwrap();
}

fn spawn_worker(dir: &Path, micro_batch: bool, rate: u64) -> Child {
    let mut command = common::worker_command("window_crash_worker");
    command
        .env("RIVULET_WINDOW_CRASH_WORKER", dir)
        .env("RIVULET_WINDOW_CRASH_RATE", rate.to_string());
    if micro_batch {
        command.env_remove("RIVULET_WINDOW_CRASH_CONTINUOUS");
    } else {
        command.env("RIVULET_WINDOW_CRASH_CONTINUOUS", "1");
    }
    command.spawn().expect("the test binary can run itself")
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

/// Every (key, window start) → the number of rows in it.
fn reference_counts() -> BTreeMap<(u64, i64), u64> {
    let mut counts = BTreeMap::new();
    for v in 0..ROWS {
        *counts
            .entry((v % KEYS, start_of(event_time_of(v))))
            .or_default() += 1;
    }
    counts
}

fn run_crash_test(modes: Modes, kills: usize, seed: u64, rate: u64) {
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
            spawn_worker(dir.path(), modes.micro_batch(Some(run)), rate),
            Duration::from_millis(40 + random.next_u64() % 350),
        );
    }
    // The final run starts from a clean report.
    let _ = std::fs::remove_file(dir.path().join("final_watermark.txt"));
    common::expect_success(
        spawn_worker(dir.path(), modes.micro_batch(None), rate),
        "the final run",
    );

    let runs: Vec<i64> = std::fs::read_to_string(dir.path().join("runs.txt"))
        .unwrap()
        .lines()
        .map(|line| line.parse().unwrap())
        .collect();
    let resumed = runs.iter().filter(|epoch| **epoch > 0).count();
    let restore_points: std::collections::BTreeSet<&i64> = runs.iter().collect();
    assert!(
        *runs.last().unwrap() > 0,
        "the final run did not resume: {runs:?}"
    );
    assert!(resumed * 2 >= runs.len(), "few runs resumed: {runs:?}");

    let final_watermark: i64 = std::fs::read_to_string(dir.path().join("final_watermark.txt"))
        .expect("the final run reports its watermark")
        .parse()
        .unwrap();
    let max_time = (0..ROWS).map(event_time_of).max().unwrap();
    assert!(
        final_watermark <= max_time - DELAY,
        "the watermark {final_watermark} is ahead of the data ({max_time} − {DELAY})"
    );
    // Micro-batch: the last batch's watermark comes from the batches before it (at most
    // 700 rows each); continuous: every record's.
    let lowest = event_time_of(ROWS - 1 - 700) - DELAY - JITTER as i64;
    assert!(
        final_watermark >= lowest,
        "the final watermark {final_watermark} lags the data ({max_time})"
    );

    let reference = reference_counts();
    let closed: BTreeMap<(u64, i64), u64> = reference
        .iter()
        .filter(|((_, start), _)| start + LENGTH <= final_watermark)
        .map(|(window, count)| (*window, *count))
        .collect();
    assert!(closed.len() > 1_000, "{} windows closed", closed.len());

    let rows: Vec<(u64, i64, i64, u64)> =
        read_committed(dir.path().join("out"), FileFormat::Csv).unwrap();
    let mut copies: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    for (key, start, end, count) in &rows {
        assert_eq!(
            end - start,
            LENGTH,
            "a damaged row: {key},{start},{end},{count}"
        );
        let window = (*key, *start);
        assert_eq!(
            reference.get(&window),
            Some(count),
            "window {window:?}: a wrong count (final watermark {final_watermark})"
        );
        assert!(
            start + LENGTH <= final_watermark,
            "window {window:?} emitted, yet the final watermark {final_watermark} has not \
             closed it"
        );
        *copies.entry(window).or_default() += 1;
    }
    let missing: Vec<&(u64, i64)> = closed
        .keys()
        .filter(|window| !copies.contains_key(window))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "closed windows never committed (first 10 of {}): {missing:?}",
        closed.keys().filter(|w| !copies.contains_key(w)).count()
    );
    let duplicated: Vec<(&(u64, i64), &u64)> =
        copies.iter().filter(|(_, n)| **n > 1).take(10).collect();
    if modes == Modes::MicroBatch {
        assert!(
            duplicated.is_empty(),
            "windows committed twice (first 10): {duplicated:?}"
        );
    }
    eprintln!(
        "{modes:?}: {kills} kills, {} runs, {} resumed from {} epochs, {} rows for {} closed \
         windows ({} duplicates), final watermark {final_watermark} (data up to {max_time}), \
         {:?}",
        runs.len(),
        resumed,
        restore_points.len(),
        rows.len(),
        closed.len(),
        rows.len() - closed.len(),
        started.elapsed()
    );
}

#[test]
fn micro_batch_windows_are_exactly_once_across_kills() {
    run_crash_test(Modes::MicroBatch, 5, 0x5eed_0001, RATE);
}

#[test]
fn continuous_windows_are_at_least_once_across_kills() {
    run_crash_test(Modes::Continuous, 5, 0x5eed_0002, RATE);
}

#[test]
fn windows_lose_nothing_across_kills_that_switch_triggers() {
    run_crash_test(Modes::Alternating, 4, 0x5eed_0003, RATE);
}

#[test]
#[ignore = "long: 100 kill points per mode"]
fn windows_survive_many_kills() {
    run_crash_test(Modes::MicroBatch, 100, 21, RATE / 10);
    run_crash_test(Modes::Continuous, 100, 22, RATE / 10);
    run_crash_test(Modes::Alternating, 100, 23, RATE / 10);
}
