//! Crash and restart with real processes, for `update_state_by_key` (Spark Streaming's
//! `updateStateByKey`): a child process runs a checkpointed query — a rate source with a
//! row limit, rows keyed by `v % KEYS` over two instances, a state per key that is a fold
//! of the key's values, the whole state written to CSV part files every epoch — and the
//! test kills it with SIGKILL at random moments, restarts it on the same directories, and
//! finally lets it finish.
//!
//! The state of a key is `(last value, values, sum, order-sensitive hash)`, folded value
//! by value; a "reset" value (a fixed pseudo-random tenth of them) removes the key (`f`
//! returns `None`) and the next value starts it afresh. Folding value by value makes the
//! result independent of how the values were cut into epochs, so a plain sequential fold
//! over the input is the reference whatever the kills did to the epochs.
//!
//! After the final run, in both modes: every committed `(key, state)` row is the
//! reference fold of the key's values up to the state's last value (nothing lost,
//! doubled or reordered before it: state restored with the offsets), and each sink
//! instance's last committed epoch holds exactly the reference's final state of its keys
//! (the union over instances is the whole final state, removed keys absent). Micro-batch
//! also: every epoch committed once per instance. The final state is exact in continuous
//! mode too (operator state and source offsets are restored together); only the sink
//! output is at-least-once there, which the per-row check allows.
//!
//! The child is this test binary itself, re-run with `--ignored --exact
//! update_state_crash_worker` and the `RIVULET_UPDATE_STATE_CRASH_WORKER` environment
//! variable.

mod common;

use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::sink::file::{committed_parts, read_committed};
use rivulet::sink::FileFormat;
use rivulet::source::RateSource;
use rivulet::{OutputMode, Query, Trigger};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// Rows of the source.
const ROWS: u64 = 20_000;
/// Rows per second: the data takes 2 s, so that the kills fall all over it.
const RATE: u64 = 10_000;
/// Distinct keys.
const KEYS: u64 = 64;
/// One value in `RESET` removes its key's state.
const RESET: u64 = 10;
/// The hash's start and multiplier (FNV-1a's).
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// `(last value, values, sum, hash)` since the key's state began.
type State = (u64, u64, u64, u64);
/// A committed row: the key and its state, flat for CSV.
type Row = (u64, u64, u64, u64, u64);

/// A fixed pseudo-random function of the row id (splitmix64's finalizer).
fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One value into a key's state; a reset value removes it.
fn step(state: Option<State>, v: u64) -> Option<State> {
    if mix(v).is_multiple_of(RESET) {
        return None;
    }
    let (_, n, sum, hash) = state.unwrap_or((0, 0, 0, FNV_OFFSET));
    Some((v, n + 1, sum + v, (hash ^ v).wrapping_mul(FNV_PRIME)))
}

/// The query's update function: the epoch's values, in arrival order, folded in.
fn update(values: Vec<u64>, state: Option<State>) -> Option<State> {
    values.into_iter().fold(state, step)
}

/// The reference: key `key`'s state after its values up to and including `last`.
fn reference_upto(key: u64, last: u64) -> Option<State> {
    (key..=last).step_by(KEYS as usize).fold(None, step)
}

/// The reference final state of every key that has one.
fn reference_final() -> BTreeMap<u64, State> {
    let mut states: BTreeMap<u64, Option<State>> = BTreeMap::new();
    for v in 0..ROWS {
        let state = states.entry(v % KEYS).or_default();
        *state = step(*state, v);
    }
    states
        .into_iter()
        .filter_map(|(key, state)| state.map(|state| (key, state)))
        .collect()
}

/// The child process: runs the query until its source ends.
#[test]
#[ignore = "entry point of the child process of the update-state crash tests"]
fn update_state_crash_worker() {
    let Ok(dir) = std::env::var("RIVULET_UPDATE_STATE_CRASH_WORKER") else {
        return;
    };
    let dir = Path::new(&dir);
    let micro_batch = std::env::var("RIVULET_UPDATE_STATE_CRASH_CONTINUOUS").is_err();
    let mut query = Query::builder();
    query
        .output_mode(OutputMode::Append)
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
    query
        .source("rows", RateSource::new(RATE).with_limit(ROWS))
        .map(|row| row.value)
        .key_by(|v: &u64| v % KEYS)
        .update_state_by_key(update)
        .map(|(key, (last, n, sum, hash)): (u64, State)| (key, last, n, sum, hash))
        .to_files(dir.join("out"), FileFormat::Csv);
    let running = query.start().unwrap();
    common::note_run(&running, dir);
    running.await_termination().unwrap();
}

fn spawn_worker(dir: &Path, micro_batch: bool) -> Child {
    let mut command = common::worker_command("update_state_crash_worker");
    command.env("RIVULET_UPDATE_STATE_CRASH_WORKER", dir);
    if micro_batch {
        command.env_remove("RIVULET_UPDATE_STATE_CRASH_CONTINUOUS");
    } else {
        command.env("RIVULET_UPDATE_STATE_CRASH_CONTINUOUS", "1");
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
            Duration::from_millis(40 + random.below(350)),
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
    assert!(resumed * 2 >= runs.len(), "few runs resumed: {runs:?}");

    // Every committed state is the fold of its key's values up to its last value.
    let out = dir.path().join("out");
    let rows: Vec<Row> = read_committed(&out, FileFormat::Csv).unwrap();
    for &(key, last, n, sum, hash) in &rows {
        assert_eq!(
            last % KEYS,
            key,
            "key {key}: the value {last} is not its own"
        );
        assert_eq!(
            Some((last, n, sum, hash)),
            reference_upto(key, last),
            "key {key}: a wrong state"
        );
    }

    // Each instance's last committed epoch is its share of the final state.
    let parts = committed_parts(&out).unwrap();
    let mut last_epoch: BTreeMap<usize, u64> = BTreeMap::new();
    let mut written: BTreeMap<(u64, usize), u64> = BTreeMap::new();
    for part in &parts {
        let epoch = last_epoch.entry(part.instance).or_default();
        *epoch = (*epoch).max(part.epoch.0);
        *written.entry((part.epoch.0, part.instance)).or_default() += 1;
    }
    let mut final_state: BTreeMap<u64, State> = BTreeMap::new();
    for part in parts
        .iter()
        .filter(|part| last_epoch[&part.instance] == part.epoch.0)
    {
        for (key, last, n, sum, hash) in part.read::<Row>().unwrap() {
            let before = final_state.insert(key, (last, n, sum, hash));
            assert!(before.is_none(), "key {key} twice in the final state");
        }
    }
    let reference = reference_final();
    assert!(
        reference.len() > KEYS as usize / 2,
        "most keys end with state"
    );
    assert_eq!(final_state, reference, "the final state");
    if micro_batch {
        let twice: Vec<_> = written.iter().filter(|(_, n)| **n > 1).take(10).collect();
        assert!(
            twice.is_empty(),
            "(epoch, instance) committed twice: {twice:?}"
        );
    }
    eprintln!(
        "micro-batch {micro_batch}: {kills} kills, {} runs, {resumed} resumed, {} rows in {} \
         parts, {:?}",
        runs.len(),
        rows.len(),
        parts.len(),
        started.elapsed()
    );
}

#[test]
fn micro_batch_state_matches_sequential_fold_across_kills() {
    run_crash_test(true, 5, 0x5eed_0201);
}

#[test]
fn continuous_state_matches_sequential_fold_across_kills() {
    run_crash_test(false, 5, 0x5eed_0202);
}
