//! Crash and restart with real processes, for `flat_map_groups_with_state` with
//! event-time timeouts: a child process runs a checkpointed query — a rate source with a
//! row limit, event time a deterministic function of the row id, a watermark, sessions
//! per key that end by timeout, CSV part files — and the test kills it with SIGKILL at
//! random moments, restarts it on the same directories, and finally lets it finish.
//!
//! Row `v` belongs to group `(v / (GROUP_ROWS · ACTIVE)) · ACTIVE + v % ACTIVE`: `ACTIVE`
//! groups take rows in turn, `GROUP_ROWS` each, and are never seen again. Its event time
//! is `v · STEP` minus a jitter below `JITTER` < the watermark delay, so no row is late.
//! The function keeps `(rows, sum of ids, first, last)` per group and sets the timeout
//! `last + GAP`; `GAP` exceeds the event-time distance between a group's consecutive
//! rows plus the jitter, so no group times out before its last row whatever the
//! watermark's lag. On the timeout it emits the group's totals and removes the state.
//! Each group's row is therefore known in advance, and it is due once the final
//! watermark is past `last + GAP`.
//!
//! After the final run: micro-batch: every due group exactly once with its totals, and
//! nothing else (state and timers restored with the offsets; the sink skips replayed
//! batches); continuous: every due group at least once, every copy with its totals.
//!
//! The child is this test binary itself, re-run with `--ignored --exact
//! group_state_crash_worker` and the `RIVULET_GROUP_STATE_CRASH_WORKER` environment
//! variable.

mod common;

use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::operator::{Context, Operator};
use rivulet::sink::file::read_committed;
use rivulet::sink::FileFormat;
use rivulet::source::RateSource;
use rivulet::state::{GroupState, GroupStateTimeout, Values};
use rivulet::{OutputMode, Query, Timestamp, Trigger};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// Rows of the source.
const ROWS: u64 = 20_000;
/// Rows per second: the data takes 2 s, so that the kills fall all over it.
const RATE: u64 = 10_000;
/// Event time per row id, µs.
const STEP: i64 = 10;
/// Row `v` is up to `JITTER − 1` µs earlier than `v · STEP`.
const JITTER: u64 = 300;
/// The watermark delay, µs: more than the disorder, so nothing is late.
const DELAY: i64 = 500;
/// Groups taking rows at the same time.
const ACTIVE: u64 = 4;
/// Rows per group.
const GROUP_ROWS: u64 = 25;
/// The session gap, µs: more than `ACTIVE · STEP + JITTER`.
const GAP: i64 = 400;

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

/// Row `v`'s group.
fn group_of(v: u64) -> u64 {
    (v / (GROUP_ROWS * ACTIVE)) * ACTIVE + v % ACTIVE
}

/// `(rows, sum of ids, first event time, last event time)`.
type Session = (u64, u64, i64, i64);

/// The group function: sessions ended by an event-time timeout.
fn session(
    group: &u64,
    rows: Values<'_, u64>,
    state: &mut GroupState<Session>,
) -> Option<(u64, u64, u64, i64, i64)> {
    if state.has_timed_out() {
        let (n, sum, first, last) = state.take().expect("a timed-out group has state");
        return Some((*group, n, sum, first, last));
    }
    let mut s = state.get_option().copied();
    for v in rows {
        let t = event_time_of(v);
        let (n, sum, first, last) = s.unwrap_or((0, 0, t, t));
        s = Some((n + 1, sum + v, first.min(t), last.max(t)));
    }
    let s = s.expect("a call with rows");
    state.update(s);
    state
        .set_timeout_timestamp(Timestamp(s.3 + GAP))
        .expect("no row is behind the watermark");
    None
}

/// Passes rows on; at the end of the stream writes the watermark it has to `path`.
#[derive(Debug, Clone)]
struct FinalWatermark {
    path: PathBuf,
}

type Row = (u64, u64, u64, i64, i64);

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
#[ignore = "entry point of the child process of the group-state crash tests"]
fn group_state_crash_worker() {
    let Ok(dir) = std::env::var("RIVULET_GROUP_STATE_CRASH_WORKER") else {
        return;
    };
    let dir = Path::new(&dir);
    let micro_batch = std::env::var("RIVULET_GROUP_STATE_CRASH_CONTINUOUS").is_err();
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
        .source("rows", RateSource::new(RATE).with_limit(ROWS))
        .map(|row| row.value)
        .with_event_time(|v: &u64| Timestamp(event_time_of(*v)))
        .with_watermark(Duration::from_micros(DELAY as u64))
        .key_by(|v: &u64| group_of(*v))
        .flat_map_groups_with_state(
            OutputMode::Append,
            GroupStateTimeout::EventTimeTimeout,
            session,
        )
        .operator(
            "final_watermark",
            FinalWatermark {
                path: dir.join("final_watermark.txt"),
            },
        )
        .to_files(dir.join("out"), FileFormat::Csv);
    let running = query.start().unwrap();
    common::note_run(&running, dir);
    running.await_termination().unwrap();
}

fn spawn_worker(dir: &Path, micro_batch: bool) -> Child {
    let mut command = common::worker_command("group_state_crash_worker");
    command.env("RIVULET_GROUP_STATE_CRASH_WORKER", dir);
    if micro_batch {
        command.env_remove("RIVULET_GROUP_STATE_CRASH_CONTINUOUS");
    } else {
        command.env("RIVULET_GROUP_STATE_CRASH_CONTINUOUS", "1");
    }
    command.spawn().expect("the test binary can run itself")
}

/// Every group → its row: `(rows, sum of ids, first, last)`.
fn reference_sessions() -> BTreeMap<u64, Session> {
    let mut sessions: BTreeMap<u64, Session> = BTreeMap::new();
    for v in 0..ROWS {
        let t = event_time_of(v);
        let (n, sum, first, last) = sessions.entry(group_of(v)).or_insert((0, 0, t, t));
        *n += 1;
        *sum += v;
        *first = (*first).min(t);
        *last = (*last).max(t);
    }
    sessions
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
    let _ = std::fs::remove_file(dir.path().join("final_watermark.txt"));
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

    let final_watermark: i64 = std::fs::read_to_string(dir.path().join("final_watermark.txt"))
        .expect("the final run reports its watermark")
        .parse()
        .unwrap();
    let reference = reference_sessions();
    let due: BTreeMap<u64, Session> = reference
        .iter()
        .filter(|(_, s)| s.3 + GAP < final_watermark)
        .map(|(group, s)| (*group, *s))
        .collect();
    assert!(due.len() > 700, "{} sessions due", due.len());

    let rows: Vec<Row> = read_committed(dir.path().join("out"), FileFormat::Csv).unwrap();
    let mut copies: BTreeMap<u64, u64> = BTreeMap::new();
    for &(group, n, sum, first, last) in &rows {
        assert_eq!(
            reference.get(&group),
            Some(&(n, sum, first, last)),
            "group {group}: a wrong session"
        );
        assert!(
            last + GAP < final_watermark,
            "group {group} timed out, yet the final watermark {final_watermark} is not past \
             its timeout {}",
            last + GAP
        );
        *copies.entry(group).or_default() += 1;
    }
    let missing: Vec<&u64> = due
        .keys()
        .filter(|g| !copies.contains_key(g))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "due sessions never committed: {missing:?}"
    );
    if micro_batch {
        let twice: Vec<(&u64, &u64)> = copies.iter().filter(|(_, n)| **n > 1).take(10).collect();
        assert!(twice.is_empty(), "sessions committed twice: {twice:?}");
    }
    eprintln!(
        "micro-batch {micro_batch}: {kills} kills, {} runs, {resumed} resumed, {} rows for {} \
         due sessions, {:?}",
        runs.len(),
        rows.len(),
        due.len(),
        started.elapsed()
    );
}

#[test]
fn micro_batch_sessions_time_out_exactly_once_across_kills() {
    run_crash_test(true, 5, 0x5eed_0101);
}

#[test]
fn continuous_sessions_time_out_at_least_once_across_kills() {
    run_crash_test(false, 5, 0x5eed_0102);
}
