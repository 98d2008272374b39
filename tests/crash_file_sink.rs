//! Crash and restart with real processes, for the file sink: a child process runs a
//! checkpointed query from a rate source to part files; the test kills it with SIGKILL at
//! random moments, restarts it on the same directories, and finally lets it finish.
//!
//! * Micro-batch: the committed output holds every id exactly once (the offset log
//!   replays an interrupted batch with the same records under the same number, and the
//!   sink skips batches it already committed).
//! * Continuous: every id at least once.
//! * Restarts that switch between the two triggers: every id at least once. A restart in
//!   micro-batch mode plans the epoch after the restored one afresh when a continuous
//!   run left no offsets for it, under a number the sink may have published already:
//!   the sink must write it, not skip it as a replay.
//!
//! The child is this test binary itself, re-run with `--ignored --exact
//! file_crash_worker` and the `RIVULET_FILE_CRASH_WORKER` environment variable.

mod common;

use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::sink::file::read_committed;
use rivulet::sink::FileFormat;
use rivulet::source::RateSource;
use rivulet::{Query, Trigger};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// Ids per source; two sources (even and odd ids) make `2 * IDS_PER_SOURCE` ids.
const IDS_PER_SOURCE: u64 = 15_000;
/// Rows per second of each source: a full run takes about 0.3 s.
const RATE: u64 = 50_000;

/// The child process: runs the query until its sources end.
#[test]
#[ignore = "entry point of the child process of the file sink crash tests"]
fn file_crash_worker() {
    let Ok(dir) = std::env::var("RIVULET_FILE_CRASH_WORKER") else {
        return;
    };
    let dir = Path::new(&dir);
    let micro_batch = std::env::var("RIVULET_FILE_CRASH_CONTINUOUS").is_err();
    let mut query = Query::builder();
    query
        .checkpoint(
            CheckpointConfig::new(dir.join("checkpoints"))
                .durability(Durability::OsBuffered)
                // With RIVULET_KEEP, keep every epoch for a post-mortem.
                .retain(if std::env::var("RIVULET_KEEP").is_ok() {
                    100_000
                } else {
                    2
                })
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
    let evens = query
        .source("evens", RateSource::new(RATE).with_limit(IDS_PER_SOURCE))
        .map(|row| row.value * 2);
    let odds = query
        .source("odds", RateSource::new(RATE).with_limit(IDS_PER_SOURCE))
        .map(|row| row.value * 2 + 1);
    evens
        .union(odds)
        .map(|id| (id, id % 7))
        .to_files(dir.join("out"), FileFormat::Csv);
    let running = query.start().unwrap();
    common::note_run(&running, dir);
    running.await_termination().unwrap();
}

fn spawn_worker(dir: &Path, micro_batch: bool) -> Child {
    let mut command = common::worker_command("file_crash_worker");
    command.env("RIVULET_FILE_CRASH_WORKER", dir);
    if micro_batch {
        command.env_remove("RIVULET_FILE_CRASH_CONTINUOUS");
    } else {
        command.env("RIVULET_FILE_CRASH_CONTINUOUS", "1");
    }
    command.spawn().expect("the test binary can run itself")
}

/// A small deterministic generator for kill times.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
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
    let mut random = SplitMix(seed);
    let started = Instant::now();
    for run in 0..kills {
        common::kill_after(
            spawn_worker(dir.path(), modes.micro_batch(Some(run))),
            Duration::from_millis(40 + random.next() % 250),
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

    let rows: Vec<(u64, u64)> = read_committed(dir.path().join("out"), FileFormat::Csv).unwrap();
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    for (id, key) in &rows {
        assert_eq!(*key, id % 7, "a damaged row: {id},{key}");
        *seen.entry(*id).or_default() += 1;
    }
    let total = 2 * IDS_PER_SOURCE;
    let missing: Vec<u64> = (0..total)
        .filter(|id| !seen.contains_key(id))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "ids never committed (first 10): {missing:?}"
    );
    assert!(seen.keys().all(|id| *id < total));
    let duplicated: Vec<(&u64, &u64)> = seen.iter().filter(|(_, n)| **n > 1).take(10).collect();
    if modes == Modes::MicroBatch {
        assert!(
            duplicated.is_empty(),
            "ids committed twice (first 10): {duplicated:?}"
        );
    }
    eprintln!(
        "{modes:?}: {kills} kills, {} runs, {} resumed, {} rows for {total} ids ({} duplicates), {:?}",
        runs.len(),
        resumed,
        rows.len(),
        rows.len() as u64 - total,
        started.elapsed()
    );
}

#[test]
fn micro_batch_file_output_is_exactly_once_across_kills() {
    run_crash_test(Modes::MicroBatch, 20, 0x5eed_f11e);
}

#[test]
fn continuous_file_output_is_at_least_once_across_kills() {
    run_crash_test(Modes::Continuous, 20, 0xc0ff_ee00);
}

#[test]
fn file_output_loses_nothing_across_kills_that_switch_triggers() {
    run_crash_test(Modes::Alternating, 20, 0x0a17_e54a);
}

#[test]
#[ignore = "long: 150 kill points per mode"]
fn file_output_survives_many_kills() {
    run_crash_test(Modes::MicroBatch, 150, 17);
    run_crash_test(Modes::Continuous, 150, 18);
    run_crash_test(Modes::Alternating, 150, 19);
}
