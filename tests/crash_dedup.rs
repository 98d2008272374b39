//! Crash and restart with real processes, for `drop_duplicates_with_watermark`: a child
//! process runs a checkpointed query — a rate source with a row limit, every event sent
//! twice, a watermark, deduplication by `(event, time)`, CSV part files — and the test
//! kills it with SIGKILL at random moments, restarts it on the same directories, and
//! finally lets it finish.
//!
//! Row `2e` is event `e`'s first copy; row `2f + 1` is a second copy of event
//! `max(f, LAG) − LAG`, `2 · LAG` rows later. Event `e`'s time is `e · STEP` minus a
//! jitter below `JITTER`; `LAG · STEP + JITTER` < the watermark delay, so no copy is
//! late and each second copy arrives while the first one's key is still held: it is a
//! duplicate only because the state (restored after a kill, with its expiry timers)
//! still knows the key. Each event's key is evicted once the watermark passes its time.
//!
//! After the final run: micro-batch: every event exactly once (state restored with the
//! offsets; the sink skips replayed batches); continuous: every event at least once,
//! and nothing that is not an event.
//!
//! The child is this test binary itself, re-run with `--ignored --exact
//! dedup_crash_worker` and the `RIVULET_DEDUP_CRASH_WORKER` environment variable.

mod common;

use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::sink::file::read_committed;
use rivulet::sink::FileFormat;
use rivulet::source::RateSource;
use rivulet::{Query, Timestamp, Trigger};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// Rows of the source (two per event).
const ROWS: u64 = 20_000;
/// Rows per second: the data takes 2 s, so that the kills fall all over it.
const RATE: u64 = 10_000;
/// Event time per event, µs.
const STEP: i64 = 10;
/// Event `e` is up to `JITTER − 1` µs earlier than `e · STEP`.
const JITTER: u64 = 100;
/// Events between an event and its second copy.
const LAG: u64 = 10;
/// The watermark delay, µs: more than `LAG · STEP + JITTER`.
const DELAY: i64 = 500;

/// A fixed pseudo-random function of the event (splitmix64's finalizer).
fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Row `v`'s event and its time.
fn event_of(v: u64) -> (u64, i64) {
    let e = if v.is_multiple_of(2) {
        v / 2
    } else {
        (v / 2).max(LAG) - LAG
    };
    (e, e as i64 * STEP - (mix(e) % JITTER) as i64)
}

/// The child process: runs the query until its source ends.
#[test]
#[ignore = "entry point of the child process of the dedup crash tests"]
fn dedup_crash_worker() {
    let Ok(dir) = std::env::var("RIVULET_DEDUP_CRASH_WORKER") else {
        return;
    };
    let dir = Path::new(&dir);
    let micro_batch = std::env::var("RIVULET_DEDUP_CRASH_CONTINUOUS").is_err();
    let mut query = Query::builder();
    query
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
        .source("rows", RateSource::new(RATE).with_limit(ROWS))
        .map(|row| event_of(row.value))
        .with_event_time(|(_, t): &(u64, i64)| Timestamp(*t))
        .with_watermark(Duration::from_micros(DELAY as u64))
        .key_by(|event: &(u64, i64)| *event)
        .drop_duplicates_with_watermark(|(_, t): &(u64, i64)| Timestamp(*t))
        .to_files(dir.join("out"), FileFormat::Csv);
    let running = query.start().unwrap();
    common::note_run(&running, dir);
    running.await_termination().unwrap();
}

fn spawn_worker(dir: &Path, micro_batch: bool) -> Child {
    let mut command = common::worker_command("dedup_crash_worker");
    command.env("RIVULET_DEDUP_CRASH_WORKER", dir);
    if micro_batch {
        command.env_remove("RIVULET_DEDUP_CRASH_CONTINUOUS");
    } else {
        command.env("RIVULET_DEDUP_CRASH_CONTINUOUS", "1");
    }
    command.spawn().expect("the test binary can run itself")
}

fn run_crash_test(micro_batch: bool, kills: usize, seed: u64) {
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
    for _ in 0..kills {
        common::kill_after(
            spawn_worker(dir.path(), micro_batch),
            Duration::from_millis(40 + random.next_u64() % 350),
        );
    }
    common::expect_success(spawn_worker(dir.path(), micro_batch), "the final run");

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

    // The reference: every event, with its time.
    let events: BTreeMap<u64, i64> = (0..ROWS).map(event_of).collect();
    let rows: Vec<(u64, i64)> = read_committed(dir.path().join("out"), FileFormat::Csv).unwrap();
    let mut copies: BTreeMap<u64, u64> = BTreeMap::new();
    for &(event, time) in &rows {
        assert_eq!(
            events.get(&event),
            Some(&time),
            "event {event}: a wrong row"
        );
        *copies.entry(event).or_default() += 1;
    }
    let missing: Vec<&u64> = events
        .keys()
        .filter(|e| !copies.contains_key(e))
        .take(10)
        .collect();
    assert!(missing.is_empty(), "events never committed: {missing:?}");
    if micro_batch {
        let twice: Vec<(&u64, &u64)> = copies.iter().filter(|(_, n)| **n > 1).take(10).collect();
        assert!(twice.is_empty(), "events committed twice: {twice:?}");
    }
    eprintln!(
        "micro-batch {micro_batch}: {kills} kills, {} runs, {resumed} resumed, {} rows for {} \
         events, {:?}",
        runs.len(),
        rows.len(),
        events.len(),
        started.elapsed()
    );
}

#[test]
fn micro_batch_dedup_emits_each_event_once_across_kills() {
    run_crash_test(true, 5, 0x5eed_0201);
}

#[test]
fn continuous_dedup_emits_each_event_at_least_once_across_kills() {
    run_crash_test(false, 5, 0x5eed_0202);
}
