//! Triggers against sequential references: the trigger decides *when* records flow and
//! where epochs end, never *what* the results are.
//!
//! * Final per-key counts and sums of a keyed aggregate (parallelism 1 and 3) equal a
//!   plain `HashMap` computation under continuous, micro-batch and available-now
//!   triggers, and when a running query switches continuous → micro-batch → continuous
//!   while a push source is fed from another thread. In update mode the last row a sink
//!   gets for a key is that key's final value.
//! * A stateless map/filter pipeline emits the reference multiset under every trigger and
//!   across switches; an identity pipeline emits exactly its input (nothing lost or
//!   duplicated by a switch).
//! * Progress reports show the mode each epoch ran in; after a switch both modes appear,
//!   in the order of the switches.
//! * In micro-batch update mode a batch emits each key it changed exactly once, with its
//!   value at the batch end (checked per epoch by a sink that tags rows with epochs).
//! * `AvailableNow` processes a finite source in batches of at most
//!   `max_batch_records` and then stops the query by itself.
//! * `set_trigger` on a query without epochs is `Error::Config`.
//! * A checkpointed micro-batch query restarts after `stop()` without emitting anything
//!   again, and continues from its restored state.
//! * The first micro-batch runs at start; a shorter interval asked for with `set_trigger`
//!   applies to the wait in progress; an idle zero-interval query polls with a delay.
//! * After a micro-batch → continuous switch, no record of the continuous epoch joins the
//!   last batch at an unaligned union (gates hold the batch open at the union).
//!
//! No assertion is about time: waits are hang guards (see `common`).

mod common;

use common::{finish_ok, sorted, wait_until};
use proptest::prelude::*;
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::error::BoxError;
use rivulet::sink::{EpochCommit, Sink};
use rivulet::trigger::EmitMode;
use rivulet::{Epoch, Error, ExecutionMode, OutputMode, PushHandle, Query, Trigger};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Parallelism of the keyed aggregate: 1 runs it on the source's thread, 3 behind an
/// exchange.
const PARALLELISMS: [usize; 2] = [1, 3];

fn continuous() -> Trigger {
    Trigger::Continuous {
        checkpoint_interval: Duration::from_millis(2),
    }
}

fn micro_batch() -> Trigger {
    Trigger::MicroBatch {
        interval: Duration::from_millis(1),
    }
}

/// `(count, sum)` of a key.
type CountSum = (u64, i64);

/// Final `(count, sum)` per key: the reference.
fn reference(input: &[(u8, i32)]) -> HashMap<u8, CountSum> {
    let mut totals: HashMap<u8, CountSum> = HashMap::new();
    for &(key, value) in input {
        let total = totals.entry(key).or_default();
        total.0 += 1;
        total.1 += i64::from(value);
    }
    totals
}

/// The last row of each key.
fn last_per_key<K: std::hash::Hash + Eq + Clone, V: Clone>(rows: &[(K, V)]) -> HashMap<K, V> {
    rows.iter().cloned().collect()
}

/// The stateless pipeline under test and its reference.
fn stateless(x: i32) -> Option<i64> {
    let y = i64::from(x) * 3 - 7;
    (y.rem_euclid(5) != 0).then_some(y)
}

/// Inputs: mostly a small key space (many updates per key), sometimes all of `u8`.
fn keyed_inputs() -> impl Strategy<Value = Vec<(u8, i32)>> {
    prop_oneof![
        3 => prop::collection::vec((0u8..8, any::<i32>()), 0..300),
        1 => prop::collection::vec((any::<u8>(), any::<i32>()), 0..300),
    ]
}

// ------------------------------------------------------------- a sink that sees epochs

/// What [`EpochSink`] instances saw.
#[derive(Debug)]
struct Epochs<T> {
    /// `(epoch, row)` in arrival order, across instances.
    rows: Vec<(u64, T)>,
    /// How each epoch ran, as the sink was told.
    modes: BTreeMap<u64, EmitMode>,
}

/// Records every row with the epoch it was written in (`begin_epoch` tags what follows).
#[derive(Debug)]
struct EpochSink<T> {
    seen: Arc<Mutex<Epochs<T>>>,
    epoch: u64,
}

impl<T> Clone for EpochSink<T> {
    fn clone(&self) -> Self {
        EpochSink {
            seen: self.seen.clone(),
            epoch: 0,
        }
    }
}

impl<T: Clone> EpochSink<T> {
    fn new() -> Self {
        EpochSink {
            seen: Arc::new(Mutex::new(Epochs {
                rows: Vec::new(),
                modes: BTreeMap::new(),
            })),
            epoch: 0,
        }
    }

    /// Rows per epoch, epochs without rows left out.
    fn by_epoch(&self) -> BTreeMap<u64, Vec<T>> {
        let mut epochs: BTreeMap<u64, Vec<T>> = BTreeMap::new();
        for (epoch, row) in &self.seen.lock().unwrap().rows {
            epochs.entry(*epoch).or_default().push(row.clone());
        }
        epochs
    }

    fn rows(&self) -> Vec<T> {
        let seen = self.seen.lock().unwrap();
        seen.rows.iter().map(|(_, row)| row.clone()).collect()
    }

    fn modes(&self) -> BTreeMap<u64, EmitMode> {
        self.seen.lock().unwrap().modes.clone()
    }
}

impl<T: Send + 'static> Sink<T> for EpochSink<T> {
    fn begin_epoch(&mut self, epoch: Epoch, mode: EmitMode) -> Result<(), BoxError> {
        self.epoch = epoch.0;
        self.seen.lock().unwrap().modes.insert(epoch.0, mode);
        Ok(())
    }

    fn write(&mut self, record: T) -> Result<(), BoxError> {
        self.seen.lock().unwrap().rows.push((self.epoch, record));
        Ok(())
    }

    fn prepare_commit(&mut self, _epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        Ok(None)
    }
}

// ------------------------------------------------------------------ epoch modes seen

/// The mode of every epoch seen in progress reports so far (reports keep only the 16
/// most recent epochs, so this polls and accumulates).
#[derive(Debug, Default)]
struct ModeLog(BTreeMap<u64, ExecutionMode>);

impl ModeLog {
    fn poll(&mut self, query: &Query) {
        let stats = query
            .progress()
            .checkpoint
            .expect("a query with a trigger reports epochs");
        for report in stats.recent {
            self.0.insert(report.epoch, report.mode);
        }
    }

    fn saw(&self, mode: ExecutionMode) -> bool {
        self.0.values().any(|seen| *seen == mode)
    }

    /// Whether a continuous epoch came after a micro-batch.
    fn continuous_after_micro_batch(&self) -> bool {
        let first_batch = self
            .0
            .iter()
            .find(|(_, mode)| **mode == ExecutionMode::MicroBatch)
            .map(|(epoch, _)| *epoch);
        first_batch.is_some_and(|first| {
            self.0
                .iter()
                .any(|(epoch, mode)| *epoch > first && *mode == ExecutionMode::Continuous)
        })
    }

    /// The modes in epoch order with repeats collapsed: `[Continuous, MicroBatch,
    /// Continuous]` after two switches.
    fn runs(&self) -> Vec<ExecutionMode> {
        let mut runs: Vec<ExecutionMode> = self.0.values().copied().collect();
        runs.dedup();
        runs
    }
}

/// Feeds `input` (in three parts) into a query started with a continuous trigger and
/// switches it to micro-batch and back while it runs:
///
/// 1. part 1 is pushed from another thread while the query is told to switch to
///    micro-batch; once the coordinator took the switch,
/// 2. part 2 is pushed and taken in micro-batches; then the query is switched back to
///    continuous, and once a continuous epoch completed after the micro-batches,
/// 3. part 3 is pushed and the handle dropped (end of stream).
///
/// Returns once the query ended, with the epoch modes its progress reports showed.
fn feed_with_switches<T>(query: &Query, handle: PushHandle<T>, input: Vec<T>) -> ModeLog
where
    T: Send + Serialize + DeserializeOwned + 'static,
{
    let third = input.len() / 3;
    let mut input = input;
    let part_3 = input.split_off(2 * third);
    let part_2 = input.split_off(third);
    let part_1 = input;
    let through_part_2 = (part_1.len() + part_2.len()) as u64;
    let (go, next_part) = mpsc::channel::<()>();
    let feeder = std::thread::spawn(move || {
        for part in [part_1, part_2, part_3] {
            next_part.recv().expect("go-ahead for the next part");
            for record in part {
                handle.push(record).map_err(|_| "closed").expect("push");
            }
        }
        // The handle is dropped here: end of stream.
    });
    let mut modes = ModeLog::default();
    go.send(()).unwrap();
    query
        .set_trigger(micro_batch())
        .expect("switch to micro-batch");
    // Batches without new data do not run, so wait for the coordinator to have taken
    // the switch (the next epoch is a micro-batch), not for a batch.
    wait_until("the switch to micro-batch taken", || {
        modes.poll(query);
        query
            .progress()
            .checkpoint
            .is_some_and(|checkpoint| checkpoint.trigger.starts_with("micro-batch"))
    });
    go.send(()).unwrap();
    wait_until("part 2 taken by micro-batches", || {
        query
            .progress()
            .operator("input")
            .expect("source")
            .records_out
            >= through_part_2
    });
    query
        .set_trigger(continuous())
        .expect("switch back to continuous");
    wait_until("a continuous epoch after the micro-batches", || {
        modes.poll(query);
        modes.continuous_after_micro_batch()
    });
    go.send(()).unwrap();
    feeder.join().expect("feeder");
    finish_ok(query, "query with trigger switches");
    modes.poll(query);
    modes
}

// ------------------------------------------------------------ final values: keyed

/// Runs the keyed `(count, sum)` aggregate over `input` from a finite source under
/// `trigger` and returns the last row per key.
fn keyed_finite(
    input: &[(u8, i32)],
    trigger: Trigger,
    parallelism: usize,
    max_batch: usize,
) -> HashMap<u8, CountSum> {
    let mut query = Query::builder();
    query
        .ring_capacity(16)
        .trigger(trigger)
        .max_batch_records(max_batch);
    let rows = query
        .from_iter("input", input.to_vec())
        .key_by(|r: &(u8, i32)| r.0)
        .with_parallelism(parallelism)
        .fold((0u64, 0i64), |total, (_, value)| {
            total.0 += 1;
            total.1 += i64::from(value);
        })
        .to_memory("totals");
    let running = query.start().expect("start");
    finish_ok(&running, &format!("keyed aggregate under {trigger}"));
    last_per_key(&rows.rows())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Continuous, micro-batch (batches of up to 16) and available-now triggers give the
    /// reference's final counts and sums.
    #[test]
    fn keyed_final_values_match_the_reference_under_every_trigger(input in keyed_inputs()) {
        let expected = reference(&input);
        for parallelism in PARALLELISMS {
            for trigger in [continuous(), micro_batch(), Trigger::AvailableNow] {
                let last = keyed_finite(&input, trigger, parallelism, 16);
                prop_assert_eq!(
                    &last, &expected,
                    "final (count, sum) per key under {}, parallelism {}", trigger, parallelism
                );
            }
        }
    }

    /// Switching continuous → micro-batch → continuous while records are pushed changes
    /// no final value.
    #[test]
    fn keyed_final_values_survive_trigger_switches(input in keyed_inputs()) {
        let expected = reference(&input);
        for parallelism in PARALLELISMS {
            let mut query = Query::builder();
            query.ring_capacity(16).trigger(continuous());
            let (handle, records) = query.push_source::<(u8, i32)>("input");
            let sink = EpochSink::new();
            records
                .key_by(|r: &(u8, i32)| r.0)
                .with_parallelism(parallelism)
                .fold((0u64, 0i64), |total: &mut CountSum, (_, value)| {
                    total.0 += 1;
                    total.1 += i64::from(value);
                })
                .sink("totals", sink.clone());
            let running = query.start().expect("start");
            let modes = feed_with_switches(&running, handle, input.clone());
            prop_assert_eq!(
                &last_per_key(&sink.rows()), &expected,
                "final (count, sum) per key after switches, parallelism {}", parallelism
            );
            prop_assert!(
                modes.saw(ExecutionMode::Continuous) && modes.saw(ExecutionMode::MicroBatch),
                "both modes in the progress reports: {:?}", modes
            );
            // Micro-batch epochs emit each changed key once.
            let told = sink.modes();
            for (epoch, rows) in sink.by_epoch() {
                if told[&epoch].execution == ExecutionMode::MicroBatch {
                    let keys: HashSet<u8> = rows.iter().map(|(key, _)| *key).collect();
                    prop_assert_eq!(
                        keys.len(), rows.len(),
                        "a key twice in micro-batch epoch {}: {:?}", epoch, rows
                    );
                }
            }
        }
    }

    /// A stateless map/filter pipeline (on two threads) emits the reference multiset
    /// under every trigger.
    #[test]
    fn stateless_outputs_match_the_reference_under_every_trigger(
        input in prop::collection::vec(any::<i32>(), 0..400),
    ) {
        let expected = sorted(input.iter().copied().filter_map(stateless).collect::<Vec<_>>());
        for trigger in [continuous(), micro_batch(), Trigger::AvailableNow] {
            let mut query = Query::builder();
            query.ring_capacity(16).trigger(trigger).max_batch_records(32);
            let rows = query
                .from_iter("input", input.clone())
                .map(|x| (x, stateless(x)))
                .new_thread()
                .filter(|(_, y)| y.is_some())
                .map(|(_, y)| y.unwrap())
                .to_memory("out");
            let running = query.start().expect("start");
            finish_ok(&running, "stateless pipeline");
            prop_assert_eq!(sorted(rows.rows()), expected.clone(), "under {}", trigger);
        }
        // And with switches, from a push source.
        let mut query = Query::builder();
        query.ring_capacity(16).trigger(continuous());
        let (handle, records) = query.push_source::<i32>("input");
        let rows = records
            .map(|x| (x, stateless(x)))
            .new_thread()
            .filter(|(_, y)| y.is_some())
            .map(|(_, y)| y.unwrap())
            .to_memory("out");
        let running = query.start().expect("start");
        feed_with_switches(&running, handle, input.clone());
        prop_assert_eq!(sorted(rows.rows()), expected, "across switches");
    }
}

// ------------------------------------------------- switches under a steady stream

/// Pushes 0, 1, 2, … into `handle` from another thread until told to stop; the thread
/// then drops the handle (end of stream) and returns how many records were accepted.
fn endless_feeder(handle: PushHandle<u64>) -> (mpsc::Sender<()>, std::thread::JoinHandle<u64>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let feeder = std::thread::spawn(move || {
        let mut next = 0u64;
        while stopped.try_recv().is_err() {
            handle.push(next).map_err(|_| "closed").expect("push");
            next += 1;
        }
        next
    });
    (stop, feeder)
}

/// Switches `query` to each of `triggers` in turn, each time waiting until an epoch ran
/// in the new mode, recording in `modes` the modes the progress reports showed. Each
/// trigger must change the mode.
fn switch_through(query: &Query, triggers: &[Trigger], modes: &mut ModeLog) {
    wait_until("a first epoch", || {
        modes.poll(query);
        !modes.0.is_empty()
    });
    for trigger in triggers {
        let runs_before = modes.runs().len();
        query.set_trigger(*trigger).expect("set_trigger");
        wait_until(&format!("an epoch under {trigger}"), || {
            modes.poll(query);
            modes.runs().len() > runs_before
        });
        assert_eq!(
            modes.runs().last(),
            Some(&trigger.mode()),
            "the mode that followed the switch to {trigger}"
        );
    }
}

/// Four switches while records stream in as fast as the query takes them: the output is
/// exactly the input, in order (one source, forward edges), with no record lost or
/// emitted twice at any switch.
#[test]
fn switches_lose_or_duplicate_nothing() {
    let mut query = Query::builder();
    query.ring_capacity(64).trigger(continuous());
    let (handle, numbers) = query.push_source::<u64>("input");
    let rows = numbers.map(|x| x).new_thread().to_memory("out");
    let running = query.start().expect("start");
    let (stop, feeder) = endless_feeder(handle);
    let phases = [micro_batch(), continuous(), micro_batch(), continuous()];
    let mut modes = ModeLog::default();
    switch_through(&running, &phases, &mut modes);
    stop.send(()).unwrap();
    let pushed = feeder.join().expect("feeder");
    finish_ok(&running, "identity pipeline with switches");
    let rows = rows.rows();
    assert_eq!(rows.len() as u64, pushed, "rows out vs records pushed");
    let expected: Vec<u64> = (0..pushed).collect();
    assert!(
        rows == expected,
        "output differs from input; first difference at index {:?}",
        rows.iter().zip(&expected).position(|(a, b)| a != b)
    );
    assert_eq!(
        modes.runs(),
        vec![
            ExecutionMode::Continuous,
            ExecutionMode::MicroBatch,
            ExecutionMode::Continuous,
            ExecutionMode::MicroBatch,
            ExecutionMode::Continuous,
        ],
        "modes of the epochs, in epoch order: {modes:?}"
    );
}

/// Progress reports show how each epoch ran: after continuous → micro-batch →
/// continuous, both modes, in that order; the epoch's mode as reported equals the mode
/// the sink was told at `begin_epoch`; the current trigger is shown as text.
#[test]
fn progress_reports_show_the_mode_of_each_epoch() {
    let mut query = Query::builder();
    query.ring_capacity(64).trigger(continuous());
    let (handle, numbers) = query.push_source::<u64>("input");
    let sink = EpochSink::new();
    numbers.sink("out", sink.clone());
    let running = query.start().expect("start");
    wait_until("a first epoch", || {
        running
            .progress()
            .checkpoint
            .is_some_and(|stats| !stats.recent.is_empty())
    });
    let stats = running.progress().checkpoint.expect("epochs");
    assert!(
        stats.trigger.starts_with("continuous"),
        "trigger shown at start: {:?}",
        stats.trigger
    );
    let (stop, feeder) = endless_feeder(handle);
    let mut modes = ModeLog::default();
    switch_through(&running, &[micro_batch()], &mut modes);
    let stats = running.progress().checkpoint.expect("epochs");
    assert!(
        stats.trigger.starts_with("micro-batch"),
        "trigger shown after the switch: {:?}",
        stats.trigger
    );
    switch_through(&running, &[continuous()], &mut modes);
    stop.send(()).unwrap();
    let pushed = feeder.join().expect("feeder");
    finish_ok(&running, "switching query");
    modes.poll(&running);

    assert_eq!(
        modes.runs(),
        vec![
            ExecutionMode::Continuous,
            ExecutionMode::MicroBatch,
            ExecutionMode::Continuous
        ],
        "modes of the epochs, in epoch order: {modes:?}"
    );
    let recent = running.progress().checkpoint.expect("epochs").recent;
    assert!(
        recent.windows(2).all(|pair| pair[0].epoch < pair[1].epoch),
        "recent epochs oldest first"
    );
    let told = sink.modes();
    for (epoch, mode) in &modes.0 {
        if let Some(emit) = told.get(epoch) {
            assert_eq!(
                emit.execution, *mode,
                "epoch {epoch}: the sink and the progress report disagree"
            );
        }
    }
    assert_eq!(sink.rows(), (0..pushed).collect::<Vec<_>>());
}

/// The trigger in effect is in the progress report from the moment `start()` returns.
#[test]
fn progress_shows_the_trigger_right_after_start() {
    for _ in 0..20 {
        let mut query = Query::builder();
        query.trigger(micro_batch());
        let (_handle, numbers) = query.push_source::<u64>("input");
        numbers.for_each(|_| {});
        let running = query.start().expect("start");
        let shown = running.progress().checkpoint.expect("epochs").trigger;
        running.abort().expect("abort");
        assert_eq!(
            shown,
            micro_batch().to_string(),
            "trigger right after start()"
        );
    }
}

// ------------------------------------------------ micro-batch update: once per batch

/// Per non-empty batch of `max_batch` records, the rows micro-batch update mode owes:
/// each key the batch changed, once, with its value after the batch (sorted).
fn batch_updates(input: &[(u8, i32)], max_batch: usize) -> Vec<Vec<(u8, CountSum)>> {
    let mut totals: HashMap<u8, CountSum> = HashMap::new();
    input
        .chunks(max_batch)
        .map(|batch| {
            let mut changed = HashSet::new();
            for &(key, value) in batch {
                let total = totals.entry(key).or_default();
                total.0 += 1;
                total.1 += i64::from(value);
                changed.insert(key);
            }
            sorted(changed.into_iter().map(|key| (key, totals[&key])).collect())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// In micro-batch update mode every batch emits each key it changed exactly once,
    /// with the key's value at the end of the batch. From a finite source each batch is
    /// the next `max_batch` records, so the expected rows per batch follow from the input.
    #[test]
    fn micro_batch_update_emits_each_changed_key_once_per_batch(
        input in keyed_inputs(),
        max_batch in 1usize..40,
        available_now in any::<bool>(),
    ) {
        let trigger = if available_now { Trigger::AvailableNow } else { micro_batch() };
        let expected = batch_updates(&input, max_batch);
        for parallelism in PARALLELISMS {
            let mut query = Query::builder();
            query
                .ring_capacity(16)
                .trigger(trigger)
                .output_mode(OutputMode::Update)
                .max_batch_records(max_batch);
            let sink = EpochSink::new();
            query
                .from_iter("input", input.clone())
                .key_by(|r: &(u8, i32)| r.0)
                .with_parallelism(parallelism)
                .fold((0u64, 0i64), |total: &mut CountSum, (_, value)| {
                    total.0 += 1;
                    total.1 += i64::from(value);
                })
                .sink("totals", sink.clone());
            let running = query.start().expect("start");
            finish_ok(&running, "micro-batch update");
            let what = format!("{trigger}, batches of {max_batch}, parallelism {parallelism}");
            let batches = sink.by_epoch();
            for (epoch, rows) in &batches {
                let keys: HashSet<u8> = rows.iter().map(|(key, _)| *key).collect();
                prop_assert_eq!(
                    keys.len(), rows.len(),
                    "{}: a key twice in epoch {}: {:?}", what, epoch, rows
                );
            }
            let batches: Vec<Vec<(u8, CountSum)>> = batches.into_values().map(sorted).collect();
            prop_assert_eq!(&batches, &expected, "{}: rows per batch", what);
            for (epoch, mode) in sink.modes() {
                prop_assert_eq!(
                    mode,
                    EmitMode { execution: ExecutionMode::MicroBatch, output: OutputMode::Update },
                    "{}: mode of epoch {}", what, epoch
                );
            }
        }
    }
}

// ---------------------------------------------------------------- available now

/// As in Spark, the first micro-batch runs when the query starts, not one interval
/// later: with an hour-long interval, a finite source is still processed (one batch of
/// everything it holds) and the query ends.
#[test]
fn the_first_micro_batch_runs_at_start() {
    let mut query = Query::builder();
    query.trigger(Trigger::MicroBatch {
        interval: Duration::from_secs(3600),
    });
    let sink = EpochSink::new();
    query
        .from_iter("input", 0..100u64)
        .sink("out", sink.clone());
    let running = query.start().expect("start");
    let ended = running.await_termination_timeout(Duration::from_secs(120));
    assert!(
        matches!(ended, Some(Ok(()))),
        "the first batch waited for the interval: {ended:?}"
    );
    let batches: Vec<Vec<u64>> = sink.by_epoch().into_values().collect();
    assert_eq!(batches, vec![(0..100u64).collect::<Vec<_>>()]);
}

/// `AvailableNow` on a finite source: batches of at most `max_batch_records`, back to
/// back, every record once and in order, then the query stops by itself.
#[test]
fn available_now_processes_a_finite_source_in_batches_then_stops() {
    let mut query = Query::builder();
    query
        .ring_capacity(16)
        .trigger(Trigger::AvailableNow)
        .max_batch_records(64);
    let sink = EpochSink::new();
    query
        .from_iter("input", 0..1_000u64)
        .map(|x| x)
        .new_thread()
        .sink("out", sink.clone());
    let running = query.start().expect("start");
    finish_ok(&running, "available-now");
    assert!(!running.is_active());
    let batches: Vec<Vec<u64>> = sink.by_epoch().into_values().collect();
    let expected: Vec<Vec<u64>> = (0..1_000u64)
        .collect::<Vec<_>>()
        .chunks(64)
        .map(<[u64]>::to_vec)
        .collect();
    assert_eq!(batches.len(), 16, "non-empty batches of 1000 records by 64");
    assert_eq!(batches, expected, "each batch is the next 64 records");
    let stats = running.progress().checkpoint.expect("epochs");
    assert!(
        stats
            .recent
            .iter()
            .all(|epoch| epoch.mode == ExecutionMode::MicroBatch),
        "available-now epochs run as micro-batches: {:?}",
        stats.recent
    );
    assert!(
        sink.modes()
            .values()
            .all(|mode| mode.execution == ExecutionMode::MicroBatch),
        "the sink saw only micro-batch epochs"
    );
}

/// `AvailableNow` on a push source whose handle is still alive: it takes what was queued
/// at start, in batches, and stops once the source has nothing more to give.
#[test]
fn available_now_stops_once_a_push_source_is_drained() {
    let mut query = Query::builder();
    query
        .ring_capacity(128)
        .trigger(Trigger::AvailableNow)
        .max_batch_records(16);
    let (handle, numbers) = query.push_source::<u64>("input");
    let rows = numbers.to_memory("out");
    for i in 0..100 {
        handle.push(i).expect("push before start");
    }
    let running = query.start().expect("start");
    finish_ok(&running, "available-now with a live push handle");
    assert_eq!(rows.rows(), (0..100).collect::<Vec<_>>());
    assert!(
        handle.push(100).is_err(),
        "a push after the query ended was accepted"
    );
}

/// A running continuous query switched to `AvailableNow` takes what its push source
/// holds and then stops by itself, though the source's handle is still alive.
#[test]
fn switching_to_available_now_drains_and_stops() {
    let mut query = Query::builder();
    query
        .ring_capacity(64)
        .trigger(continuous())
        .max_batch_records(8);
    let (handle, numbers) = query.push_source::<u64>("input");
    let rows = numbers.map(|x| x).new_thread().to_memory("out");
    let running = query.start().expect("start");
    for i in 0..50 {
        handle.push(i).expect("push");
    }
    wait_until("continuous rows", || rows.len() == 50);
    for i in 50..100 {
        handle.push(i).expect("push");
    }
    running
        .set_trigger(Trigger::AvailableNow)
        .expect("switch to available-now");
    finish_ok(&running, "after the switch to available-now");
    assert_eq!(rows.rows(), (0..100).collect::<Vec<_>>());
    let stats = running.progress().checkpoint.expect("epochs");
    assert_eq!(
        stats.recent.last().map(|epoch| epoch.mode),
        Some(ExecutionMode::MicroBatch),
        "the last epochs ran as batches: {:?}",
        stats.recent
    );
}

// ----------------------------------------------------------------- set_trigger

/// A query started without a trigger or checkpointing has no epochs: `set_trigger` is a
/// configuration error, and the query runs on unaffected. An invalid trigger is refused
/// too.
#[test]
fn set_trigger_needs_a_query_with_epochs() {
    let mut query = Query::builder();
    let (handle, numbers) = query.push_source::<u64>("input");
    let rows = numbers.to_memory("out");
    let running = query.start().expect("start");
    for trigger in [micro_batch(), continuous(), Trigger::AvailableNow] {
        match running.set_trigger(trigger) {
            Err(Error::Config(message)) => assert!(
                message.contains("trigger"),
                "the message should say why: {message}"
            ),
            other => panic!("set_trigger({trigger}) without epochs: {other:?}"),
        }
    }
    assert!(running.progress().checkpoint.is_none());
    for i in 0..10 {
        handle.push(i).expect("push");
    }
    drop(handle);
    finish_ok(&running, "query without epochs");
    assert_eq!(rows.rows(), (0..10).collect::<Vec<_>>());

    // With epochs, an invalid trigger is refused the same way.
    let mut query = Query::builder();
    query.trigger(micro_batch());
    let rows = query.from_iter("input", 0..10u64).to_memory("out");
    let running = query.start().expect("start");
    let zero = Trigger::Continuous {
        checkpoint_interval: Duration::ZERO,
    };
    assert!(
        matches!(running.set_trigger(zero), Err(Error::Config(_))),
        "a continuous trigger with a zero interval was accepted"
    );
    finish_ok(&running, "query with epochs");
    assert_eq!(rows.len(), 10);
}

// ----------------------------------------------------------- checkpointed restart

/// Runs the keyed `(count, sum)` aggregate as a checkpointed micro-batch query in `dir`,
/// pushes `input`, waits until it is aggregated, stops, and returns the rows emitted in
/// this run and the restored epoch, if any.
fn checkpointed_run(dir: &std::path::Path, input: &[(u8, i32)]) -> (Vec<(u8, CountSum)>, bool) {
    let mut query = Query::builder();
    query
        .ring_capacity(64)
        .checkpoint(
            CheckpointConfig::new(dir)
                .interval(Duration::from_millis(5))
                .durability(Durability::OsBuffered),
        )
        .trigger(micro_batch())
        .max_batch_records(8);
    let (handle, records) = query.push_source::<(u8, i32)>("input");
    let rows = records
        .key_by(|r: &(u8, i32)| r.0)
        .with_parallelism(3)
        .fold((0u64, 0i64), |total: &mut CountSum, (_, value)| {
            total.0 += 1;
            total.1 += i64::from(value);
        })
        .to_memory("totals");
    let running = query.start().expect("start");
    let restored = running
        .progress()
        .checkpoint
        .expect("epochs")
        .recovered_epoch
        .is_some();
    for record in input {
        handle.push(*record).expect("push");
    }
    wait_until("the input aggregated", || {
        running
            .progress()
            .operator("fold")
            .expect("fold")
            .records_in
            == input.len() as u64
    });
    running.stop().expect("stop");
    (rows.rows(), restored)
}

/// A checkpointed micro-batch query stopped with `stop()` restarts from where it
/// stopped: a restart with no new input emits nothing, and new input continues from the
/// restored state (counts and sums include the first run's records).
#[test]
fn checkpointed_micro_batches_restart_without_re_emitting() {
    let dir = tempfile::tempdir().unwrap();
    let first: Vec<(u8, i32)> = (0..200).map(|i| ((i % 7) as u8, i * 3 - 100)).collect();
    let second: Vec<(u8, i32)> = (0..50).map(|i| ((i % 3) as u8 + 5, i)).collect();

    let (rows, restored) = checkpointed_run(dir.path(), &first);
    assert!(
        !restored,
        "first run in an empty directory restored something"
    );
    assert_eq!(last_per_key(&rows), reference(&first), "first run");

    let (rows, restored) = checkpointed_run(dir.path(), &[]);
    assert!(restored, "second run did not restore");
    assert!(rows.is_empty(), "re-emitted after a clean stop: {rows:?}");

    let (rows, restored) = checkpointed_run(dir.path(), &second);
    assert!(restored, "third run did not restore");
    let all: Vec<(u8, i32)> = first.iter().chain(&second).copied().collect();
    let mut expected = reference(&all);
    let touched: HashSet<u8> = second.iter().map(|(key, _)| *key).collect();
    expected.retain(|key, _| touched.contains(key));
    assert_eq!(
        last_per_key(&rows),
        expected,
        "third run: only keys with new input, counted from the restored state"
    );
}

/// The same with a finite source that ends by itself: running it again over the same
/// items emits nothing (its offset is at the end), under micro-batches.
#[test]
fn a_finished_micro_batch_query_re_run_emits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let mut query = Query::builder();
        query
            .checkpoint(
                CheckpointConfig::new(dir.path())
                    .interval(Duration::from_millis(5))
                    .durability(Durability::OsBuffered),
            )
            .trigger(micro_batch())
            .max_batch_records(32);
        let rows = query
            .from_iter("input", 0..500u64)
            .key_by(|x| x % 10)
            .count()
            .to_memory("counts");
        let running = query.start().expect("start");
        finish_ok(&running, "finite checkpointed micro-batches");
        rows.rows()
    };
    let first = run();
    let expected: HashMap<u64, u64> = (0..10).map(|key| (key, 50)).collect();
    assert_eq!(last_per_key(&first), expected);
    let second = run();
    assert!(second.is_empty(), "re-emitted: {second:?}");
}

/// A source with nothing to give that counts how often it is asked for its offset (once
/// per plan of a micro-batch in a checkpointed query).
struct IdleSource {
    plans: Arc<std::sync::atomic::AtomicU64>,
}

impl rivulet::source::Source for IdleSource {
    type Item = u64;

    fn poll_next(&mut self) -> rivulet::source::SourcePoll<u64> {
        rivulet::source::SourcePoll::Pending { until: None }
    }

    fn has_data(&self) -> bool {
        false
    }

    fn can_replay(&self) -> bool {
        true
    }

    fn checkpoint(&mut self, _epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        self.plans
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Vec::new())
    }

    fn restore(&mut self, _offset: &[u8]) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A micro-batch trigger with a zero interval runs batches back to back, but a batch that
/// finds no records is planned again only after a polling delay (10 ms, as Spark's
/// `pollingDelay`), not in a loop: over any stretch of time, at most one plan per 10 ms
/// (plus the first). A slower machine only makes fewer plans.
#[test]
fn an_idle_zero_interval_micro_batch_query_polls_with_a_delay() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plans = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut query = Query::builder();
    query
        .checkpoint(CheckpointConfig::new(dir.path()).durability(Durability::OsBuffered))
        .trigger(Trigger::MicroBatch {
            interval: Duration::ZERO,
        });
    query
        .source(
            "idle",
            IdleSource {
                plans: plans.clone(),
            },
        )
        .for_each(|_| {});
    let started = std::time::Instant::now();
    let running = query.start().expect("start");
    std::thread::sleep(Duration::from_millis(300));
    let made = plans.load(std::sync::atomic::Ordering::Relaxed);
    let elapsed = started.elapsed();
    running.stop().expect("stop");
    let bound = elapsed.as_millis() as u64 / 10 + 2;
    assert!(made >= 1, "the source was never asked to plan");
    assert!(
        made <= bound,
        "{made} plans in {elapsed:?}: an idle batch is re-planned in a loop"
    );
}

/// A gate a test opens by value: `pass(v)` blocks while `v` is closed, after telling the
/// test it arrived.
#[derive(Clone)]
struct Gates {
    arrived: mpsc::SyncSender<i64>,
    open: Arc<(Mutex<HashSet<i64>>, std::sync::Condvar)>,
}

impl Gates {
    fn new() -> (Self, mpsc::Receiver<i64>) {
        let (arrived, arrivals) = mpsc::sync_channel(16);
        let gates = Gates {
            arrived,
            open: Arc::new((Mutex::new(HashSet::new()), std::sync::Condvar::new())),
        };
        (gates, arrivals)
    }

    fn pass(&self, value: i64) {
        let _ = self.arrived.send(value);
        let (open, changed) = &*self.open;
        let mut open = open.lock().unwrap();
        while !open.contains(&value) {
            open = changed.wait(open).unwrap();
        }
    }

    fn open(&self, value: i64) {
        let (open, changed) = &*self.open;
        open.lock().unwrap().insert(value);
        changed.notify_all();
    }
}

/// Micro-batch → continuous across an unaligned union: a record sent in the continuous
/// epoch never joins the last micro-batch's epoch, even while the other input still
/// carries that batch (its sources hold back until the batch is complete). Gates in the
/// slow branch hold a batch open at the union while the fast source is given a record of
/// the continuous epoch.
#[test]
fn continuous_records_wait_for_the_last_micro_batch_to_complete() {
    let (gates, arrivals) = Gates::new();
    let mut query = Query::builder();
    query.trigger(Trigger::MicroBatch {
        interval: Duration::from_millis(20),
    });
    let (fast, fast_stream) = query.push_source::<i64>("fast");
    let (slow, slow_stream) = query.push_source::<i64>("slow");
    let gate = gates.clone();
    let slow_stream = slow_stream.map(move |x| {
        gate.pass(x);
        x
    });
    let sink = EpochSink::new();
    fast_stream.union(slow_stream).sink("out", sink.clone());
    let running = query.start().expect("start");
    let arrived = |expected: i64| {
        let got = arrivals
            .recv_timeout(Duration::from_secs(60))
            .expect("the gated record reached its gate");
        assert_eq!(got, expected);
    };

    // Batch A: {1, -1}; the slow branch holds -1, so batch A cannot complete.
    fast.push(1).unwrap();
    slow.push(-1).unwrap();
    arrived(-1);
    // Batch B (planned after A completes) runs as a micro-batch: its mode was fixed
    // when A was released. The switch applies to the epoch after B.
    running
        .set_trigger(Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(20),
        })
        .unwrap();
    fast.push(2).unwrap();
    slow.push(-2).unwrap();
    gates.open(-1);
    // Batch B: {2, -2}; the slow branch holds -2.
    arrived(-2);
    // The continuous epoch after B: the fast source must not send 3 before B is done.
    fast.push(3).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    gates.open(-2);
    drop(fast);
    drop(slow);
    finish_ok(&running, "the sources end");

    let epochs = sink.by_epoch();
    let epoch_of = |value: i64| {
        *epochs
            .iter()
            .find(|(_, rows)| rows.contains(&value))
            .unwrap_or_else(|| panic!("{value} never arrived: {epochs:?}"))
            .0
    };
    let modes = sink.modes();
    let batch_b = epoch_of(2);
    assert_eq!(epoch_of(-2), batch_b, "batch B holds 2 and -2: {epochs:?}");
    assert_eq!(modes[&batch_b].execution, ExecutionMode::MicroBatch);
    assert!(
        epoch_of(3) > batch_b,
        "3 was sent in the continuous epoch but arrived in batch B: {epochs:?}"
    );
    assert_eq!(modes[&epoch_of(3)].execution, ExecutionMode::Continuous);
}

/// A shorter interval asked for with `set_trigger` applies to the wait in progress: a
/// query waiting out an hour-long micro-batch interval runs its next batch soon after
/// being switched to a 10 ms one (the wait below is only a hang guard).
#[test]
fn a_shorter_trigger_interval_applies_to_the_wait_in_progress() {
    let mut query = Query::builder();
    query.trigger(Trigger::MicroBatch {
        interval: Duration::from_secs(3600),
    });
    let (input, stream) = query.push_source::<u64>("input");
    let table = stream.to_memory("out");
    let running = query.start().expect("start");
    // The first batch runs at start and finds nothing; the next plan is an hour away.
    wait_until("the first plan ran", || {
        running
            .progress()
            .checkpoint
            .is_some_and(|stats| stats.epochs_triggered >= 1)
    });
    input.push(7).unwrap();
    running
        .set_trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(10),
        })
        .unwrap();
    table.wait_for_len(1, common::HANG_GUARD);
    assert_eq!(table.rows(), vec![7]);
    drop(input);
    finish_ok(&running, "the source ends");
}
