//! Operator timers, end to end.
//!
//! Through running queries on a [`ManualClock`]: processing-time timers fire once the
//! clock reaches them, with no further input (the operator's thread has parked; moving
//! the clock must wake it), and not before; each `(key, time)` fires once, deleted timers
//! never, and each instance fires its timers in time order; pending timers survive a
//! checkpointed restart, after a graceful stop and after a SIGKILL. With the system clock,
//! a timer a few milliseconds ahead fires by itself (the idle thread sleeps until it is
//! due).
//!
//! Event-time timers are checked through [`Harness`] only: a running query cannot have
//! watermarks injected yet (there is no `with_watermark`; a later issue adds it), so no
//! operator of a running query sees a watermark before its input ends. The harness test
//! runs random schedules of records setting timers in both domains, watermark and clock
//! advances and a snapshot/restore, against a plain list.
//!
//! Every wait is a hang guard (`common::HANG_GUARD`, or 10 s for the system clock); no
//! test passes or fails on how long something took. The short polls that check that
//! nothing fired early are sanity checks: they can only miss an early firing, never
//! invent one.

mod common;

use common::{counts, finish_ok, wait_until, HANG_GUARD};
use proptest::prelude::*;
use rivulet::checkpoint::codec;
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::error::BoxError;
use rivulet::operator::{partition_of, Context, Harness, Operator, TimeDomain, Timer};
use rivulet::sink::MemoryTable;
use rivulet::time::ManualClock;
use rivulet::{Query, Timestamp};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the manual clocks start.
const T0: Timestamp = Timestamp(1_000_000);

/// `T0` plus `micros`.
fn at(micros: i64) -> Timestamp {
    Timestamp(T0.0 + micros)
}

/// On a record `(key, delay)`: a processing-time timer for `key`, `delay` µs after the
/// current processing time (counted as `set` once it is, so a test can wait for that rather
/// than for `records_in`, which counts a record before the operator sees it). On a timer:
/// emits `(key, time)`, after checking that the clock has reached it.
#[derive(Debug, Clone, Default)]
struct Delay;

impl Operator<(u64, i64)> for Delay {
    type Out = (u64, Timestamp);
    type Key = u64;
    type Side = ();

    fn on_record<C: Context<(u64, Timestamp), u64>>(
        &mut self,
        (key, delay): (u64, i64),
        ctx: &mut C,
    ) {
        let time = Timestamp(ctx.processing_time().0.saturating_add(delay));
        ctx.register_processing_time_timer(key, time);
        ctx.count("set", 1);
    }

    fn on_timer<C: Context<(u64, Timestamp), u64>>(&mut self, timer: Timer<u64>, ctx: &mut C) {
        assert_eq!(timer.domain, TimeDomain::ProcessingTime);
        assert!(
            ctx.processing_time() >= timer.time,
            "{timer:?} fired at {:?}",
            ctx.processing_time()
        );
        ctx.push((timer.key, timer.time));
    }
}

/// The counter `name` of the operator `op` (0 until first counted).
fn counter(query: &rivulet::Query, op: &str, name: &str) -> u64 {
    let progress = query.progress();
    let op = progress.operator(op).expect("the operator exists");
    op.counters.get(name).copied().unwrap_or(0)
}

/// Polls for a short while that `table` stays at `len` rows: a sanity check that nothing
/// fires before its time (it cannot fail a correct engine, only miss an early firing).
fn stays_at<T: Clone + std::fmt::Debug>(table: &MemoryTable<T>, len: usize, what: &str) {
    let until = Instant::now() + Duration::from_millis(50);
    while Instant::now() < until {
        assert_eq!(table.len(), len, "{what}: {:?}", table.rows());
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until `table` has `len` rows (hang guard), then checks that it holds no more.
fn reaches<T: Clone + std::fmt::Debug>(table: &MemoryTable<T>, len: usize, what: &str) {
    let got = table.wait_for_len(len, HANG_GUARD);
    assert!(
        got >= len,
        "{what}: {got} of {len} rows after {HANG_GUARD:?} (hang)"
    );
    stays_at(table, len, what);
}

/// 1a. Processing-time timers fire with no further input once the manual clock reaches
/// them: three timers, 100, 200 and 300 µs after `T0`, set by records pushed out of order;
/// the source then has nothing more (its handle stays alive, so the query keeps running and
/// its threads park). Nothing fires before the clock moves; each move fires exactly the
/// timers it reached, in time order.
fn timers_fire_when_the_manual_clock_moves(own_thread: bool) {
    let manual = ManualClock::new(T0);
    let mut query = Query::builder();
    query.clock(manual.clock());
    let (handle, input) = query.push_source::<(u64, i64)>("in");
    let out = if own_thread {
        // An `InputTask` head: the operator's thread waits on its input edge.
        input.new_thread().operator("delay", Delay).to_memory("out")
    } else {
        // A `SourceTask` head: the operator is chained onto the source's thread.
        input.operator("delay", Delay).to_memory("out")
    };
    let running = query.start().unwrap();
    for key in [3u64, 1, 2] {
        handle.push((key, key as i64 * 100)).unwrap();
    }
    wait_until("the operator sets the timers", || {
        counter(&running, "delay", "set") == 3
    });
    // The records are in and the threads go idle (they park within a fraction of a
    // millisecond under the default wait policy); the clock has not moved.
    stays_at(&out, 0, "fired before the clock moved");

    manual.set(at(100));
    reaches(&out, 1, "the clock at the first timer");
    manual.set(at(250));
    reaches(&out, 2, "the clock past the second timer");
    manual.advance(Duration::from_secs(1));
    reaches(&out, 3, "the clock past every timer");
    assert_eq!(out.rows(), [(1, at(100)), (2, at(200)), (3, at(300))]);

    drop(handle);
    finish_ok(&running, "timers on a manual clock");
    assert_eq!(out.len(), 3, "fired again at the end");
}

#[test]
fn timers_fire_without_input_on_the_source_thread() {
    timers_fire_when_the_manual_clock_moves(false);
}

#[test]
fn timers_fire_without_input_on_an_operator_thread() {
    timers_fire_when_the_manual_clock_moves(true);
}

/// On a record `(key, (_, register, offset))`: registers (or deletes) the processing-time
/// timer `(key, T0 + offset)`, counting `duplicate` registrations, deletions of `missing`
/// timers and the records `handled`. On a timer: emits `(key, time)`.
#[derive(Debug, Clone, Default)]
struct SetAndDelete;

type Command3 = (u64, bool, i64);

impl Operator<(u64, Command3)> for SetAndDelete {
    type Out = (u64, Timestamp);
    type Key = u64;
    type Side = ();

    fn on_record<C: Context<(u64, Timestamp), u64>>(
        &mut self,
        (key, (_, register, offset)): (u64, Command3),
        ctx: &mut C,
    ) {
        let time = at(offset);
        if register {
            if !ctx.register_processing_time_timer(key, time) {
                ctx.count("duplicate", 1);
            }
        } else if !ctx.delete_processing_time_timer(&key, time) {
            ctx.count("missing", 1);
        }
        ctx.count("handled", 1);
    }

    fn on_timer<C: Context<(u64, Timestamp), u64>>(&mut self, timer: Timer<u64>, ctx: &mut C) {
        assert!(ctx.processing_time() >= timer.time, "{timer:?} fired early");
        ctx.push((timer.key, timer.time));
    }
}

/// 1b. Over a keyed exchange into two instances: a `(key, time)` registered twice fires
/// once, a deleted timer never fires, and each instance fires its timers in time order
/// (ties in key order), across two clock moves.
#[test]
fn each_timer_fires_once_deleted_ones_never_in_time_order_per_instance() {
    const KEYS: u64 = 8;
    const INSTANCES: usize = 2;
    // What the operators are sent, and the reference: the timers left set.
    let mut commands: Vec<Command3> = Vec::new();
    let mut set = BTreeSet::new();
    let (mut duplicates, mut missing) = (0, 0);
    for key in 0..KEYS {
        let offsets: Vec<i64> = (0..6)
            .map(|j| ((key as i64 * 7 + j * 13) % 40 + 1) * 10)
            .collect();
        for (j, &offset) in offsets.iter().enumerate() {
            commands.push((key, true, offset));
            if !set.insert((key, at(offset))) {
                duplicates += 1;
            }
            if j % 2 == 0 {
                // The same timer again.
                commands.push((key, true, offset));
                duplicates += 1;
            }
        }
        // Delete one, and one that was never set.
        commands.push((key, false, offsets[3]));
        assert!(set.remove(&(key, at(offsets[3]))));
        commands.push((key, false, 10_000));
        missing += 1;
    }

    let manual = ManualClock::new(T0);
    let mut query = Query::builder();
    query.clock(manual.clock());
    let (handle, input) = query.push_source::<Command3>("commands");
    let out = input
        .key_by(|(key, _, _)| *key)
        .with_parallelism(INSTANCES)
        .aggregate("timers", SetAndDelete)
        .to_memory("fired");
    let running = query.start().unwrap();
    for command in &commands {
        handle.push(*command).unwrap();
    }
    wait_until("the operators handle every command", || {
        counter(&running, "timers", "handled") == commands.len() as u64
    });
    stays_at(&out, 0, "fired before the clock moved");

    // Two moves: the first fires the timers up to T0 + 200, the second the rest.
    let early = set.iter().filter(|(_, time)| *time <= at(200)).count();
    assert!(early > 0 && early < set.len(), "the schedule splits");
    manual.set(at(200));
    reaches(&out, early, "the clock at T0 + 200");
    manual.set(at(1_000));
    reaches(&out, set.len(), "the clock past every timer");

    let rows = out.rows();
    let fired: BTreeSet<(u64, Timestamp)> = rows.iter().copied().collect();
    assert_eq!(fired.len(), rows.len(), "a timer fired twice: {rows:?}");
    assert_eq!(fired, set, "fired timers differ from the timers left set");
    for instance in 0..INSTANCES {
        // Rows of one sink instance keep their order; an instance's timers are those of
        // the keys the exchange sends it.
        let order: Vec<(Timestamp, u64)> = rows
            .iter()
            .filter(|(key, _)| partition_of(key, INSTANCES) == instance)
            .map(|(key, time)| (*time, *key))
            .collect();
        assert!(!order.is_empty(), "instance {instance} got no keys");
        assert!(
            order.windows(2).all(|pair| pair[0] < pair[1]),
            "instance {instance} fired out of order: {order:?}"
        );
    }
    let progress = running.progress();
    let counters = &progress.operator("timers").unwrap().counters;
    assert_eq!(counters.get("duplicate"), Some(&duplicates));
    assert_eq!(counters.get("missing"), Some(&missing));

    drop(handle);
    finish_ok(&running, "set and delete");
    assert_eq!(out.len(), set.len(), "fired again at the end");
}

/// A record of the random schedule: set a timer for `key` at `time` in `domain`.
type SetTimer = (TimeDomain, u8, Timestamp);

/// Sets the timers its records ask for and emits every timer that fires. Its state (the
/// records seen) is snapshotted beside the timers.
#[derive(Debug, Clone, Default)]
struct Scheduled {
    records: u64,
}

impl Operator<SetTimer> for Scheduled {
    type Out = Timer<u8>;
    type Key = u8;
    type Side = ();

    fn on_record<C: Context<Timer<u8>, u8>>(&mut self, (domain, key, time): SetTimer, ctx: &mut C) {
        self.records += 1;
        match domain {
            TimeDomain::EventTime => ctx.register_event_time_timer(key, time),
            TimeDomain::ProcessingTime => ctx.register_processing_time_timer(key, time),
        };
    }

    fn on_timer<C: Context<Timer<u8>, u8>>(&mut self, timer: Timer<u8>, ctx: &mut C) {
        let now = match timer.domain {
            TimeDomain::EventTime => ctx.watermark(),
            TimeDomain::ProcessingTime => ctx.processing_time(),
        };
        assert!(now >= timer.time, "{timer:?} fired at {now:?}");
        ctx.push(timer);
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(codec::encode(&self.records)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.records = codec::decode(state)?;
        Ok(())
    }
}

/// One step of a random schedule.
#[derive(Debug, Clone)]
enum Step {
    /// A record that sets a timer.
    Set(SetTimer),
    /// The watermark moves on by this much (0: a watermark equal to the last one).
    Watermark(i64),
    /// The clock moves on by this much.
    Clock(i64),
    /// Snapshot, then restore into a fresh operator; the schedule goes on with it.
    Restore,
}

fn step() -> impl Strategy<Value = Step> {
    let domain = prop_oneof![
        Just(TimeDomain::EventTime),
        Just(TimeDomain::ProcessingTime)
    ];
    // Times around where the watermark and clock go, so that some are already behind
    // them when set.
    let set = (domain, 0u8..4, -10i64..60).prop_map(|(d, k, t)| Step::Set((d, k, Timestamp(t))));
    prop_oneof![
        6 => set,
        2 => (0i64..12).prop_map(Step::Watermark),
        2 => (0i64..12).prop_map(Step::Clock),
        1 => Just(Step::Restore),
    ]
}

/// Runs `steps`, then moves the watermark and the clock to the end of time, on a
/// [`Harness`], against a plain list of the timers set and not fired yet. Every step must
/// fire exactly the timers the list says are due, in `(time, key)` order: a watermark that
/// moves (a `Harness` ignores one that does not; after a restore it starts again from
/// `MIN`, as a restarted stage does) fires the event-time timers at or before it, a clock
/// move the processing-time ones. A `(key, time)` already pending is not set again; one
/// that fired can be. In the end every registration has fired exactly once.
fn check_schedule(steps: &[Step]) {
    let mut harness = Harness::new(Scheduled::default());
    let mut pending: Vec<SetTimer> = Vec::new();
    // Every registration that set a timer (not one already pending); a timer that fired
    // can be set again.
    let mut set: Vec<SetTimer> = Vec::new();
    let mut fired: Vec<SetTimer> = Vec::new();
    let mut records = 0;
    // The schedule's watermark and clock only move forward. The harness's own watermark
    // is what decides whether a watermark moves it.
    let (mut watermark, mut clock) = (Timestamp(-10), Timestamp(0));
    let mut harness_watermark = Timestamp::MIN;
    let end = [Step::Watermark(i64::MAX), Step::Clock(i64::MAX)];
    for step in steps.iter().chain(&end) {
        let due: Vec<SetTimer> = match step {
            Step::Set(timer) => {
                harness.push(*timer);
                records += 1;
                if !pending.contains(timer) {
                    pending.push(*timer);
                    set.push(*timer);
                }
                Vec::new()
            }
            Step::Watermark(by) => {
                watermark = Timestamp(watermark.0.saturating_add(*by));
                harness.advance_watermark(watermark);
                if watermark > harness_watermark {
                    harness_watermark = watermark;
                    take_due(&mut pending, TimeDomain::EventTime, watermark)
                } else {
                    Vec::new()
                }
            }
            Step::Clock(by) => {
                clock = Timestamp(clock.0.saturating_add(*by));
                harness.set_processing_time(clock);
                take_due(&mut pending, TimeDomain::ProcessingTime, clock)
            }
            Step::Restore => {
                let snapshot = harness.snapshot().unwrap();
                assert!(snapshot.is_some(), "the operator always has state");
                harness = Harness::restore(Scheduled::default(), snapshot.as_deref()).unwrap();
                harness_watermark = Timestamp::MIN;
                assert_eq!(
                    harness.operator().records,
                    records,
                    "operator state restored"
                );
                Vec::new()
            }
        };
        let got: Vec<SetTimer> = harness
            .take_output()
            .into_iter()
            .map(|timer| (timer.domain, timer.key, timer.time))
            .collect();
        assert_eq!(
            got, due,
            "after {step:?} (watermark {watermark:?}, clock {clock:?})"
        );
        fired.extend(got);
    }
    assert!(pending.is_empty() && harness.timers().is_empty());
    // Each registration fired exactly once.
    let order = |timers: &mut Vec<SetTimer>| {
        timers.sort_by_key(|&(d, k, t)| (d == TimeDomain::EventTime, k, t))
    };
    order(&mut fired);
    order(&mut set);
    assert_eq!(fired, set, "fired timers differ from the registrations");
}

/// Removes the timers of `domain` due at `now` from `pending` and returns them in firing
/// order: by time, then key.
fn take_due(pending: &mut Vec<SetTimer>, domain: TimeDomain, now: Timestamp) -> Vec<SetTimer> {
    let mut due: Vec<SetTimer> = pending
        .iter()
        .filter(|(d, _, time)| *d == domain && *time <= now)
        .copied()
        .collect();
    pending.retain(|timer| !due.contains(timer));
    due.sort_by_key(|&(_, key, time)| (time, key));
    due
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// 1c. Random schedules through `Harness`, with snapshot and restore anywhere.
    #[test]
    fn random_schedules_fire_every_timer_once_in_order_across_restores(
        steps in proptest::collection::vec(step(), 0..60),
    ) {
        check_schedule(&steps);
    }
}

/// A schedule with a restore between a timer set behind the watermark and the watermark
/// that fires it, a duplicate across a restore, and a processing-time timer set again
/// after it fired.
#[test]
fn a_restore_keeps_timers_set_behind_the_watermark() {
    use Step::*;
    let (event, processing) = (TimeDomain::EventTime, TimeDomain::ProcessingTime);
    check_schedule(&[
        Watermark(30),
        Set((event, 1, Timestamp(5))),
        Set((event, 0, Timestamp(25))),
        Set((processing, 2, Timestamp(3))),
        Clock(2),
        Restore,
        Watermark(0),
        Set((event, 0, Timestamp(25))),
        Clock(1),
        Restore,
        // Fired at clock 3: it can be set again, and fires again.
        Set((processing, 2, Timestamp(3))),
        Watermark(10),
    ]);
}

/// Run 1 of a restart test: a checkpointed query on a manual clock at `T0` receives three
/// records setting timers at `T0 + 100, 200, 300`; once an epoch begun after the records
/// were in has completed (so its snapshot holds the timers), returns the running query and
/// what it emitted so far (nothing: the clock never moved).
fn first_run(dir: &Path) -> (rivulet::Query, rivulet::PushHandle<(u64, i64)>, usize) {
    let manual = ManualClock::new(T0);
    let mut query = Query::builder();
    query.clock(manual.clock()).checkpoint(
        CheckpointConfig::new(dir)
            .interval(Duration::from_millis(10))
            .durability(Durability::OsBuffered),
    );
    let (handle, input) = query.push_source::<(u64, i64)>("in");
    let out = input.operator("delay", Delay).to_memory("out");
    let running = query.start().unwrap();
    for key in [2u64, 3, 1] {
        handle.push((key, key as i64 * 100)).unwrap();
    }
    wait_until("the operator sets the timers", || {
        counter(&running, "delay", "set") == 3
    });
    // Every epoch triggered from now on has its marker after the records.
    let triggered = running.progress().checkpoint.unwrap().epochs_triggered;
    wait_until("an epoch after the records completes", || {
        let stats = running.progress().checkpoint.unwrap();
        stats.last_complete_epoch.is_some_and(|e| e > triggered)
    });
    let fired = out.len();
    (running, handle, fired)
}

/// Run 2 of a restart test: the same query on the same directory, on a fresh manual clock
/// at `T0`. No record is replayed; the restored timers fire when the clock reaches them.
fn second_run(dir: &Path) {
    let manual = ManualClock::new(T0);
    let mut query = Query::builder();
    query.clock(manual.clock()).checkpoint(
        CheckpointConfig::new(dir)
            .interval(Duration::from_millis(10))
            .durability(Durability::OsBuffered),
    );
    let (handle, input) = query.push_source::<(u64, i64)>("in");
    let out = input.operator("delay", Delay).to_memory("out");
    let running = query.start().unwrap();
    let recovered = running.progress().checkpoint.unwrap().recovered_epoch;
    assert!(recovered.is_some(), "nothing recovered");
    stays_at(&out, 0, "fired before the clock moved");
    manual.set(at(150));
    reaches(&out, 1, "the clock past the first restored timer");
    manual.set(at(1_000));
    reaches(&out, 3, "the clock past every restored timer");
    assert_eq!(out.rows(), [(1, at(100)), (2, at(200)), (3, at(300))]);
    assert_eq!(
        counts(&running.progress(), "delay").0,
        0,
        "records replayed after the restart"
    );
    drop(handle);
    running.stop().unwrap();
}

/// 1d. Pending processing-time timers are part of the operator's checkpoint: after a
/// graceful stop (whose final checkpoint holds them) a restart fires them.
#[test]
fn timers_survive_a_stop_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (running, handle, fired) = first_run(dir.path());
    assert_eq!(fired, 0, "fired before the clock moved");
    running.stop().unwrap();
    drop(handle);
    second_run(dir.path());
}

/// The child process of [`timers_survive_a_sigkill`]: runs [`first_run`], reports what it
/// emitted in `<dir>/ready`, then waits to be killed.
#[test]
#[ignore = "entry point of the child process of timers_survive_a_sigkill"]
fn timer_crash_worker() {
    let Ok(dir) = std::env::var("RIVULET_TIMER_CRASH_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let (_running, _handle, fired) = first_run(&dir.join("checkpoints"));
    std::fs::write(dir.join("ready.tmp"), fired.to_string()).unwrap();
    std::fs::rename(dir.join("ready.tmp"), dir.join("ready")).unwrap();
    // Killed here; give up (and fail the parent's wait) if nobody does.
    std::thread::sleep(HANG_GUARD);
    panic!("not killed");
}

/// 1d. The same after a crash: the child process is killed with SIGKILL once an epoch
/// holding the timers is complete; the restart restores them from that epoch.
#[test]
fn timers_survive_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "timer_crash_worker",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RIVULET_TIMER_CRASH_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the test binary can run itself");
    let ready = dir.path().join("ready");
    let deadline = Instant::now() + HANG_GUARD;
    while !ready.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child ended before it was ready: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the child was not ready after {HANG_GUARD:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let fired = std::fs::read_to_string(&ready).unwrap();
    assert_eq!(fired, "0", "the child fired timers before its clock moved");
    second_run(&dir.path().join("checkpoints"));
}

/// 1e. On the system clock, a timer 30 ms ahead fires with no further input: the idle
/// thread sleeps until it is due. Only that it fires is checked (within 10 s). A timer at
/// `Timestamp::MAX` (never due) pending beside it must not disturb the thread's wait.
#[test]
fn a_system_clock_timer_fires_by_itself() {
    let mut query = Query::builder();
    let (handle, input) = query.push_source::<(u64, i64)>("in");
    let out = input.operator("delay", Delay).to_memory("out");
    let running = query.start().unwrap();
    let before = Timestamp::now();
    handle.push((8, i64::MAX)).unwrap();
    handle.push((7, 30_000)).unwrap();
    let got = out.wait_for_len(1, Duration::from_secs(10));
    assert_eq!(got, 1, "the timer did not fire within 10 s");
    let (key, time) = out.rows()[0];
    assert_eq!(key, 7);
    assert!(time >= Timestamp(before.0 + 30_000), "{time:?}");
    drop(handle);
    finish_ok(&running, "system clock timer");
    assert_eq!(out.len(), 1, "the timer at MAX fired: {:?}", out.rows());
}

/// In micro-batch mode a processing-time timer fires inside a batch, as Spark's
/// processing-time timeouts do: its output is part of a batch's commit. With no more
/// input, a due timer makes the coordinator run a batch without data (Spark's no-data
/// batch), so the output is committed without waiting for another record.
#[test]
fn in_micro_batches_a_due_timer_runs_a_batch_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let manual = ManualClock::new(T0);
    let mut query = Query::builder();
    query
        .clock(manual.clock())
        .trigger(rivulet::Trigger::MicroBatch {
            interval: Duration::from_millis(5),
        })
        .checkpoint(
            CheckpointConfig::new(dir.path().join("checkpoint")).durability(Durability::OsBuffered),
        );
    let (handle, input) = query.push_source::<(u64, i64)>("in");
    input
        .operator("delay", Delay)
        .map(|(key, time): (u64, Timestamp)| (key, time.0))
        .to_files(&out_dir, rivulet::sink::FileFormat::Csv);
    let running = query.start().unwrap();
    handle.push((7, 100)).unwrap();
    wait_until("the batch with the record sets the timer", || {
        counter(&running, "delay", "set") == 1
    });
    let committed = || -> Vec<(u64, i64)> {
        rivulet::sink::file::read_committed(&out_dir, rivulet::sink::FileFormat::Csv).unwrap()
    };
    // Idle: no batch runs, and a timer that is not due yet changes nothing.
    std::thread::sleep(Duration::from_millis(30));
    assert!(committed().is_empty());

    manual.set(at(100));
    wait_until("the timer's output is committed without new input", || {
        !committed().is_empty()
    });
    assert_eq!(committed(), vec![(7, at(100).0)]);
    drop(handle);
    finish_ok(&running, "micro-batch timers");
    assert_eq!(committed(), vec![(7, at(100).0)], "fired twice");
}
