//! Trigger switching and shutdown (issue #3, item 5): a stop or a mode switch racing with
//! in-flight records neither deadlocks nor drops a record.
//!
//! The mode of epoch *e + 1* is fixed on the clock before epoch *e* starts
//! (`Coordinator::trigger`: `set_mode_from(e + 1, requested)`, then `advance`). A source
//! caches the mode of the epoch after its last marker and refreshes it
//! (`EpochClock::mode_of`) right after each marker, so it knows how the records after a
//! marker run:
//!
//! * continuous: records flow at once; at each step the source injects a marker for every
//!   started epoch (`clock.current()`) while the cached mode says continuous
//!   (`SourceTask::inject_markers`);
//! * micro-batch: records wait in the source until the epoch starts; then the source
//!   plans the batch (takes what is there and reports it), waits until the coordinator,
//!   having logged the batch's offsets, releases it (`clock.released()`), and emits the
//!   batch and its marker (`plan_batch`, `emit_batch`).
//!
//! The source thread is a test-local copy of the order of operations of `SourceTask::step`
//! (`step_epochs`, `inject_markers`, `plan_batch`, `emit_batch`, `finish`),
//! `SourceTask::has_work` and `Worker::run`, over the real `EpochClock`, `RunControl`,
//! `WakeSignal`, `wait_until`/`Backoff` and edge, wired as `query::handle::start` and
//! `Stream::source` wire them: the thread's one wake signal is its edge's producer signal
//! and is registered with the clock and the `RunControl`. Its source holds the records
//! `1..=records`, polls one per step (a step budget of 1, so the stop flag and the clock
//! are read between any two records) and is exhausted after them; it never waits for
//! data (`Source::has_data` is the default `true`) and ends at once on a stop
//! (`Source::drain_on_stop` is the default `false`).
//!
//! The main thread plays the coordinator, a test-local copy of `Coordinator::serve`
//! ([`Coordinator`]). The source's messages to it (`Planned`, `Ack`, `Finished`) go
//! through one loom atomic instead of the crossbeam channel ([`planned`]). Right before
//! it releases a batch (where the real one appends the offsets entry) it sets a flag,
//! [`Shared::cleared`], which the source reads before it sends each record: a record of a
//! micro-batch epoch sent while its batch was not cleared was sent before its release.
//!
//! The edge has no consumer thread: the main thread drains it after the joins. A consumer
//! thread receiving as an operator thread does (`recv`) multiplies the executions by
//! about 130 (the micro-batch → continuous model with epoch 1 started concurrently, at 1
//! preemption: 227,391 executions against 1,742), and draining the edge from the
//! coordinator's poll loop by about 10;
//! neither takes part in the trigger protocol, and the edge's wake-ups have models of
//! their own (`wakeup_empty`, `edge_order`). The checks ([`violations`]) run after the
//! joins and after every loom object is dropped: every record the source polled arrives
//! exactly once, in order; the markers arrive in order, `End` last; a record of a
//! micro-batch epoch is one its batch planned and was sent after the coordinator cleared
//! that batch; every planned batch arrives whole, before its marker and before `End`.
//!
//! Stock loom 0.7.2 cannot check a source that waits for a trigger and then for a release
//! while earlier notifications may still be in flight at 3 preemptions: the RMW-atomicity
//! flaw (`README.md`, "loom's limits") lets a later `notify` read the `false` of an
//! earlier notifier's `sleeping.swap(false)` past the source's next `sleeping = true`, and
//! the coordinator, which polls, then spins until loom reports "Model exceeded maximum
//! number of branches". So the micro-batch → continuous and stop models start epoch 1
//! before the threads (the source waits only for releases; with epoch 1 started
//! concurrently the micro-batch → continuous model fails so at 2 preemptions, and passes
//! at 3 with loom patched: 134,187 executions), and the continuous → micro-batch model,
//! where the source must wait for the batch's trigger, is capped at 2.
#![cfg(loom)]

use loom::thread;
use rivulet::checkpoint::coordinator::EpochClock;
use rivulet::edge::wait::{wait_until, Backoff};
use rivulet::edge::{Event, WakeSignal};
use rivulet::runtime::RunControl;
use rivulet::sync::atomic::{AtomicU64, Ordering};
use rivulet::sync::Arc;
use rivulet::{Epoch, ExecutionMode};
use rivulet_loom_tests::{model, model_capped, Edge, Parks, Sender, Tally, PARK_AT_ONCE};
use std::cell::Cell;

use ExecutionMode::{Continuous, MicroBatch};

/// What a model runs.
#[derive(Clone, Copy, Debug)]
struct Scenario {
    /// The source holds the records `1..=records`.
    records: u32,
    /// The most records in one batch.
    max_batch: usize,
    /// How epoch 1 runs.
    first: ExecutionMode,
    /// The trigger asked for: each epoch started fixes the next one's mode from it.
    requested: ExecutionMode,
    /// Epochs the coordinator starts before the threads start (after the source is built,
    /// as when its first trigger lands between `Stream::source` and the thread's start).
    started: u32,
    /// Epochs the coordinator starts at most, those included.
    epochs: u32,
    /// A third thread requests a stop (`Query::stop`).
    stop: bool,
}

/// Continuous → micro-batch: epoch 1 runs continuously and its trigger fixes epoch 2 as a
/// micro-batch (the switch), racing with the source's records. A batch takes every record
/// left (`max_batch` 3), so it also finds the source exhausted, and the source ends after
/// the batch's marker. The third epoch is for the broken variants, whose source may need
/// it to end.
const TO_MICRO_BATCH: Scenario = Scenario {
    records: 2,
    max_batch: 3,
    first: Continuous,
    requested: MicroBatch,
    started: 0,
    epochs: 3,
    stop: false,
};

/// Micro-batch → continuous: epoch 1, already started, is a micro-batch of one record
/// (`max_batch` 1) whose trigger fixed epoch 2 as continuous (the switch); the other
/// record flows continuously once the source refreshed its mode after `Marker(1)`, while
/// the coordinator starts epoch 2.
const TO_CONTINUOUS: Scenario = Scenario {
    records: 2,
    max_batch: 1,
    first: MicroBatch,
    requested: Continuous,
    started: 1,
    epochs: 2,
    stop: false,
};

/// [`TO_CONTINUOUS`] with a stop on a third thread, and no second epoch (the stop races
/// with the batch and with the switch, not with a later trigger).
const STOP: Scenario = Scenario {
    epochs: 1,
    stop: true,
    ..TO_CONTINUOUS
};

/// A deliberate protocol bug, for the `#[should_panic]` variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bug {
    /// The protocol as the library runs it, including the check in
    /// `Coordinator::maybe_trigger` added after [`Bug::TriggerPastUnreleasedBatch`]
    /// was found by these models.
    None,
    /// The coordinator as the library had it before these models: `maybe_trigger` may
    /// start a continuous epoch while the micro-batch before it still waits for its
    /// plans, and that epoch's `release` releases the batch too.
    TriggerPastUnreleasedBatch,
    /// The coordinator advances the clock before it fixes the mode of the next epoch.
    AdvanceBeforeMode,
    /// The source reads the mode once, when it is built, and never refreshes it.
    ModeReadOnce,
}

/// What the threads of one execution share.
struct Shared {
    clock: EpochClock,
    control: RunControl,
    /// The source's newest message to the coordinator (see [`planned`]).
    messages: AtomicU64,
    /// The newest batch the coordinator cleared: set right before its `clock.release`.
    cleared: AtomicU64,
}

/// The source's messages to the coordinator, standing in for its channel. The source
/// sends, in this order, `Planned` for a micro-batch epoch (`Participant::plan`), `Ack`
/// for each epoch it marks (`Participant::ack_source`, sent before the marker) and
/// `Finished` once (`Participant::finish`), so each message can be one number, larger
/// than every message before it: `planned(e) = 2e - 1`, `acked(e) = 2e`, [`FINISHED`].
/// The source stores its newest message in [`Shared::messages`]; the coordinator reads
/// the newest, which implies every earlier one (see [`Coordinator::handle`]).
fn planned(epoch: u64) -> u64 {
    2 * epoch - 1
}

/// See [`planned`].
fn acked(epoch: u64) -> u64 {
    2 * epoch
}

/// See [`planned`].
const FINISHED: u64 = u64::MAX;

/// What a step did (`runtime::Step`; the model source is never `Pending`, so `Idle` has
/// no deadline).
enum Step {
    Busy,
    Idle,
    Done,
}

/// A micro-batch the source planned and reported, not emitted yet (`PlannedBatch`).
struct Batch {
    epoch: u64,
    records: Vec<u32>,
    exhausted: bool,
}

/// What the source was doing at the first step that saw the stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopSeen {
    /// Holding a planned batch (released or not).
    WithBatch,
    /// Micro-batch mode, no batch planned.
    MicroBatch,
    /// Continuous mode.
    Continuous,
}

/// The model source and its `SourceCheckpoint`, with the chain reduced to `ForwardOut`
/// (a record is sent; a marker or `End` is sent and flushed; a step ends with a flush).
struct ModelSource {
    tx: Sender<u32>,
    /// The next record a poll returns.
    next: u32,
    /// The last record: a poll past it finds the source exhausted.
    last: u32,
    /// The newest epoch marked.
    injected: u64,
    /// How epoch `injected + 1` runs (cached).
    mode: ExecutionMode,
    batch: Option<Batch>,
    max_batch: usize,
    bug: Bug,
    /// Every batch planned, for the checks.
    plans: Vec<(u64, Vec<u32>)>,
    /// Every record sent, with the newest batch the coordinator had cleared then.
    sent: Vec<(u32, u64)>,
    stop_seen: Option<StopSeen>,
}

impl ModelSource {
    /// `SourceCheckpoint::new`, built before the source thread starts (`Stream::source`).
    fn new(tx: Sender<u32>, clock: &EpochClock, scenario: Scenario, bug: Bug) -> Self {
        let injected = clock.current();
        let mode = clock.mode_of(injected + 1);
        ModelSource {
            tx,
            next: 1,
            last: scenario.records,
            injected,
            mode,
            batch: None,
            max_batch: scenario.max_batch,
            bug,
            plans: Vec::new(),
            sent: Vec::new(),
            stop_seen: None,
        }
    }

    fn poll_next(&mut self) -> Option<u32> {
        (self.next <= self.last).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// `ForwardOut::push`, noting the newest batch cleared (the check's probe, not a step
    /// of the source).
    fn push(&mut self, shared: &Shared, record: u32) {
        let cleared = shared.cleared.load(Ordering::Acquire);
        self.sent.push((record, cleared));
        self.tx.send(Event::Record(record)).unwrap();
    }

    /// `ForwardOut::signal`: send, then flush.
    fn signal(&mut self, event: Event<u32>) {
        self.tx.send(event).unwrap();
        self.tx.flush();
    }

    /// `SourceTask::step` with a budget of one record.
    fn step(&mut self, shared: &Shared) -> Step {
        // The stop flag before the clock (see `epoch_trigger`).
        let stopping = shared.control.is_stop_requested();
        if stopping && self.stop_seen.is_none() {
            self.stop_seen = Some(match (&self.batch, self.mode) {
                (Some(_), _) => StopSeen::WithBatch,
                (None, MicroBatch) => StopSeen::MicroBatch,
                (None, Continuous) => StopSeen::Continuous,
            });
        }
        if let Some(step) = self.step_epochs(shared, stopping) {
            return step;
        }
        if stopping {
            // `drain_on_stop` is false: end at once.
            return self.finish(shared);
        }
        match self.poll_next() {
            Some(record) => self.push(shared, record),
            None => return self.finish(shared),
        }
        self.tx.flush();
        Step::Busy
    }

    /// `SourceTask::step_epochs` (no replay).
    fn step_epochs(&mut self, shared: &Shared, stopping: bool) -> Option<Step> {
        if let Some(batch) = &self.batch {
            let released = shared.clock.released();
            return Some(if released >= batch.epoch {
                self.emit_batch(shared)
            } else {
                Step::Idle
            });
        }
        self.inject_markers(shared);
        if self.mode != MicroBatch || stopping {
            return None;
        }
        let epoch = self.injected + 1;
        if shared.clock.current() < epoch {
            // Between batches: records wait in the source.
            return Some(Step::Idle);
        }
        self.plan_batch(shared, epoch);
        Some(Step::Busy)
    }

    /// `SourceTask::inject_markers`: a marker for every continuous epoch started.
    fn inject_markers(&mut self, shared: &Shared) {
        loop {
            let target = shared.clock.current();
            if self.injected >= target || self.mode != Continuous {
                return;
            }
            self.emit_marker(shared);
        }
    }

    /// `SourceTask::emit_marker`: acknowledge, refresh the cached mode, send the marker.
    fn emit_marker(&mut self, shared: &Shared) {
        let epoch = self.injected + 1;
        shared.messages.store(acked(epoch), Ordering::Release);
        self.injected = epoch;
        if self.bug != Bug::ModeReadOnce {
            self.mode = shared.clock.mode_of(epoch + 1);
        }
        self.signal(Event::Marker(Epoch(epoch)));
    }

    /// `SourceTask::plan_batch`: take what the source holds (up to `max_batch`), report
    /// it, keep it until the release.
    fn plan_batch(&mut self, shared: &Shared, epoch: u64) {
        let mut records = Vec::new();
        let mut exhausted = false;
        while records.len() < self.max_batch {
            match self.poll_next() {
                Some(record) => records.push(record),
                None => {
                    exhausted = true;
                    break;
                }
            }
        }
        shared.messages.store(planned(epoch), Ordering::Release);
        self.plans.push((epoch, records.clone()));
        self.batch = Some(Batch {
            epoch,
            records,
            exhausted,
        });
    }

    /// `SourceTask::emit_batch`: the records, then the marker.
    fn emit_batch(&mut self, shared: &Shared) -> Step {
        let batch = self.batch.take().expect("a planned batch");
        for record in batch.records {
            self.push(shared, record);
        }
        self.emit_marker(shared);
        if batch.exhausted {
            return self.finish(shared);
        }
        self.tx.flush();
        Step::Busy
    }

    /// `SourceTask::finish`: report the end, then send `End`.
    fn finish(&mut self, shared: &Shared) -> Step {
        shared.messages.store(FINISHED, Ordering::Release);
        self.signal(Event::End);
        Step::Done
    }

    /// `SourceTask::has_work`. Sets `stop_with_batch` when it says yes only because of the
    /// stop while a batch is planned: the step it leads to finds the batch unreleased
    /// again (if it still is) and returns `Idle` at once.
    fn has_work(&self, shared: &Shared, stop_with_batch: &Cell<bool>) -> bool {
        if shared.control.is_stop_requested() {
            if self.batch.is_some() {
                stop_with_batch.set(true);
            }
            return true;
        }
        if let Some(batch) = &self.batch {
            return shared.clock.released() >= batch.epoch;
        }
        // `source.has_data()` is the default `true`.
        shared.clock.current() > self.injected || self.mode == Continuous
    }
}

/// What the source thread did (plain data: the checks read it after every loom object is
/// dropped).
#[derive(Debug, Default)]
struct SourceRun {
    /// Records polled (planned or emitted).
    polled: u32,
    /// Every batch planned.
    plans: Vec<(u64, Vec<u32>)>,
    /// Every record sent, with the newest batch cleared then.
    sent: Vec<(u32, u64)>,
    /// Parks with no batch planned (waiting for a trigger).
    parked_for_trigger: usize,
    /// Parks with a batch planned (waiting for its release).
    parked_for_release: usize,
    /// Rounds of the worker loop that found work only because of the stop while a batch
    /// was planned (see [`run_source`]).
    stop_spins: usize,
    stop_seen: Option<StopSeen>,
}

/// The source thread: `Worker::run` driving the model source, under [`PARK_AT_ONCE`]
/// (`control.is_aborted()` is left out: nothing aborts here).
///
/// One departure: once a stop is requested, `SourceTask::has_work` says yes at once, also
/// while a planned batch waits for its release, and the step it leads to returns `Idle`
/// again, so the real worker spins (`wait_until` returns at its first check and resets the
/// backoff; no yield, no park) until the coordinator releases the batch. loom runs a
/// thread that never blocks for as long as it may, so without a yield the stop model
/// ends in "Model exceeded maximum number of branches" (loom's livelock report; a fair OS
/// scheduler does run the coordinator, so the real query ends, after burning a core).
/// The copy yields in that case; the tallies count the rounds.
fn run_source(
    mut source: ModelSource,
    signal: &WakeSignal,
    shared: &Shared,
) -> (Sender<u32>, SourceRun) {
    signal.register_current();
    let parks = Parks::new();
    let mut backoff = Backoff::new(PARK_AT_ONCE);
    let (mut parked_for_trigger, mut parked_for_release, mut stop_spins) = (0, 0, 0);
    loop {
        match source.step(shared) {
            Step::Busy => backoff.reset(),
            Step::Idle => {
                let stop_with_batch = Cell::new(false);
                let parks_before = parks.count();
                // Without a deadline, `wait_until` returns only once `has_work` said yes.
                let found = wait_until(
                    signal,
                    &mut backoff,
                    None,
                    || parks.check(source.has_work(shared, &stop_with_batch)),
                    || parks.arm(),
                );
                if parks.count() > parks_before {
                    if source.batch.is_some() {
                        parked_for_release += 1;
                    } else {
                        parked_for_trigger += 1;
                    }
                }
                if found {
                    backoff.reset();
                }
                if stop_with_batch.get() {
                    stop_spins += 1;
                    thread::yield_now();
                }
            }
            Step::Done => break,
        }
    }
    let run = SourceRun {
        polled: source.next - 1,
        plans: source.plans,
        sent: source.sent,
        parked_for_trigger,
        parked_for_release,
        stop_spins,
        stop_seen: source.stop_seen,
    };
    (source.tx, run)
}

/// The source's thread and its own edge half, handed back when it ends.
type SourceThread = thread::JoinHandle<(Sender<u32>, SourceRun)>;

/// What one execution did, with no loom object left in it.
struct Outcome {
    /// What the source thread did.
    run: SourceRun,
    /// What the edge delivered, in order.
    received: Vec<Event<u32>>,
    /// How epochs 1 to 3 run, as the clock says after the joins.
    modes: [ExecutionMode; 3],
}

/// The coordinator: a test-local copy of `Coordinator::serve` with one source and no log,
/// reduced to what decides when epochs start and batches are released: `maybe_trigger`,
/// `trigger`, `on_planned`, `check_plans`, `on_ack` (the source is the only participant:
/// its acknowledgement completes the epoch) and `on_finished`.
///
/// `recv_timeout` becomes a poll of [`Shared::messages`]: a new message is handled at
/// once, and the timer fires (`maybe_trigger`) at every poll that finds none, as in
/// `ack_race`; when `maybe_trigger` starts nothing the coordinator yields and polls again.
/// It starts at most [`Scenario::epochs`] epochs and returns once the source finished (the
/// real one then gets `Shutdown`; the final epoch it starts once every participant
/// finished has no thread left to see it and is left out).
struct Coordinator<'a> {
    shared: &'a Shared,
    /// The trigger asked for: every epoch started fixes the next one's mode from it.
    requested: ExecutionMode,
    bug: Bug,
    /// Epochs it may still start.
    epochs: u32,
    /// The newest message handled.
    seen: u64,
    /// The newest epoch the source planned (`OpenEpoch::sources` of a batch).
    planned: u64,
    /// `AckTracker::last_complete`.
    last_complete: u64,
    /// The source finished (`AckTracker::is_finished`).
    finished: bool,
}

impl<'a> Coordinator<'a> {
    fn new(shared: &'a Shared, scenario: Scenario, bug: Bug) -> Self {
        Coordinator {
            shared,
            requested: scenario.requested,
            bug,
            epochs: scenario.epochs,
            seen: 0,
            planned: 0,
            last_complete: 0,
            finished: false,
        }
    }

    /// `Coordinator::serve`.
    fn serve(mut self) {
        loop {
            let message = self.shared.messages.load(Ordering::Acquire);
            if message != self.seen {
                self.seen = message;
                self.handle(message);
            } else if self.finished {
                return;
            } else if !self.maybe_trigger() {
                thread::yield_now();
            }
        }
    }

    /// The newest message and every one it implies. A plan of epoch `e` (`2e - 1`) or
    /// an acknowledgement of `e` (`2e`) implies every message before it; an
    /// acknowledgement of a micro-batch epoch also implies its plan, and one of a
    /// continuous epoch implies no plan, but reporting one is harmless: `on_planned`
    /// ignores an epoch already released, as every acknowledged epoch is. (A broken source
    /// that acknowledges a batch it never planned thus gets it released, which lets the
    /// broken variants run to their checks.)
    fn handle(&mut self, message: u64) {
        if message == FINISHED {
            // `on_finished`: a batch waiting for this source's plan need not wait any more.
            self.finished = true;
            let current = self.shared.clock.current();
            self.check_plans(current);
            return;
        }
        let acked = message / 2;
        if acked > self.last_complete {
            // `on_ack` and `AckTracker::ack`: the only participant acknowledged it.
            self.last_complete = acked;
        }
        let planned = message.div_ceil(2);
        if planned > self.planned {
            self.planned = planned;
            self.on_planned(planned);
        }
    }

    /// `Coordinator::maybe_trigger` (no `AvailableNow`, the timer always due), with one
    /// check the library does not have (left out under
    /// [`Bug::TriggerPastUnreleasedBatch`]): no epoch starts while the current one is a
    /// batch still waiting for its plans (`released() < current`). Without it, the timer
    /// may start a continuous epoch after a micro-batch before the batch's plans are in,
    /// and that epoch's `release(e + 1)` (`fetch_max`) releases batch `e` as well, before
    /// its offsets are logged; its plan, arriving later, is then ignored by `on_planned`.
    fn maybe_trigger(&mut self) -> bool {
        if self.epochs == 0 || self.shared.control.is_stop_requested() || self.finished {
            return false;
        }
        let clock = &self.shared.clock;
        let current = clock.current();
        if self.bug != Bug::TriggerPastUnreleasedBatch && clock.released() < current {
            // `maybe_trigger`'s check: the current batch still waits for its plans.
            return false;
        }
        let previous_done = self.last_complete >= current;
        if clock.mode_of(current + 1) == MicroBatch && !previous_done {
            // Batches run one after another.
            return false;
        }
        self.trigger();
        true
    }

    /// `Coordinator::trigger`: fix the mode of the epoch after the next from the trigger
    /// asked for, read the next epoch's mode, start it; release it at once if continuous,
    /// else see whether its plans are in.
    fn trigger(&mut self) {
        self.epochs -= 1;
        let clock = &self.shared.clock;
        let epoch = clock.current() + 1;
        let mode = if self.bug == Bug::AdvanceBeforeMode {
            let mode = clock.mode_of(epoch);
            clock.advance();
            clock.set_mode_from(epoch + 1, self.requested);
            mode
        } else {
            clock.set_mode_from(epoch + 1, self.requested);
            let mode = clock.mode_of(epoch);
            clock.advance();
            mode
        };
        if mode == Continuous {
            clock.release(epoch);
        } else {
            self.check_plans(epoch);
        }
    }

    /// `Coordinator::on_planned`.
    fn on_planned(&mut self, epoch: u64) {
        if epoch <= self.shared.clock.released() {
            // "A batch released already (a replayed one): nothing to plan."
            return;
        }
        self.check_plans(epoch);
    }

    /// `Coordinator::check_plans`: once the source planned micro-batch `epoch` (or
    /// finished), log its offsets (here: set [`Shared::cleared`]) and release it.
    fn check_plans(&mut self, epoch: u64) {
        let clock = &self.shared.clock;
        if epoch <= clock.released() || epoch > clock.current() {
            return;
        }
        if self.planned < epoch && !self.finished {
            return;
        }
        self.shared.cleared.store(epoch, Ordering::Release);
        clock.release(epoch);
    }
}

/// One execution of `scenario` with `bug`: the source thread (and the stopper) while the
/// main thread runs the coordinator; then the edge is drained.
fn execute(scenario: Scenario, bug: Bug) -> Outcome {
    let shared = Arc::new(Shared {
        clock: EpochClock::with_mode(0, scenario.first),
        control: RunControl::new(),
        messages: AtomicU64::new(0),
        cleared: AtomicU64::new(0),
    });
    let Edge {
        tx,
        mut rx,
        producer: signal,
        ..
    } = Edge::<u32>::with_abort(
        // Every event of a run (the records, a marker per epoch, `End`): the source never
        // waits for space, only for the clock.
        scenario.records as usize + scenario.epochs as usize + 1,
        shared.control.abort_flag(),
    );
    shared.clock.add_source(signal.clone());
    shared.control.add_signal(signal.clone());
    let source = ModelSource::new(tx, &shared.clock, scenario, bug);
    let mut coordinator = Coordinator::new(&shared, scenario, bug);
    for _ in 0..scenario.started {
        coordinator.trigger();
    }
    let source: SourceThread = {
        let shared = shared.clone();
        thread::spawn(move || run_source(source, &signal, &shared))
    };
    let stopper = scenario.stop.then(|| {
        let shared = shared.clone();
        thread::spawn(move || shared.control.request_stop())
    });
    coordinator.serve();
    if let Some(stopper) = stopper {
        stopper.join().unwrap();
    }
    let (tx, run) = source.join().unwrap();
    let received = std::iter::from_fn(|| rx.try_recv()).collect();
    let modes = [1, 2, 3].map(|epoch| shared.clock.mode_of(epoch));
    drop((tx, rx, shared));
    Outcome {
        run,
        received,
        modes,
    }
}

/// Everything wrong with what the edge delivered (empty if nothing).
fn violations(outcome: &Outcome) -> Vec<String> {
    let Outcome {
        run,
        received,
        modes,
    } = outcome;
    let mut wrong = Vec::new();
    let mode_of = |epoch: u64| modes.get(epoch as usize - 1).copied().unwrap_or(Continuous);
    let mut markers = 0;
    let mut records = 0;
    // The records of each epoch (the segment before its marker), in arrival order.
    let mut segments: Vec<Vec<u32>> = vec![Vec::new()];
    for (index, event) in received.iter().enumerate() {
        match event {
            Event::Record(record) => {
                records += 1;
                if *record != records {
                    wrong.push(format!("record {record} arrived as record #{records}"));
                }
                let epoch = markers + 1;
                segments[markers as usize].push(*record);
                if mode_of(epoch) == MicroBatch {
                    if !run
                        .plans
                        .iter()
                        .any(|(e, planned)| *e == epoch && planned.contains(record))
                    {
                        wrong.push(format!(
                            "record {record} of micro-batch epoch {epoch} was not planned"
                        ));
                    }
                    let cleared = run.sent.iter().find(|(sent, _)| sent == record);
                    if cleared.is_none_or(|(_, cleared)| *cleared < epoch) {
                        wrong.push(format!(
                            "record {record} of micro-batch epoch {epoch} was sent before \
                             its release"
                        ));
                    }
                }
            }
            Event::Marker(Epoch(epoch)) => {
                markers += 1;
                if *epoch != markers {
                    wrong.push(format!("marker {epoch} arrived as marker #{markers}"));
                }
                segments.push(Vec::new());
            }
            Event::End => {
                if index + 1 != received.len() {
                    wrong.push("events after End".into());
                }
            }
            other => wrong.push(format!("unexpected {other:?}")),
        }
    }
    if !matches!(received.last(), Some(Event::End)) {
        wrong.push("no End".into());
    }
    if records != run.polled {
        wrong.push(format!(
            "{records} records arrived, the source polled {}",
            run.polled
        ));
    }
    for (epoch, planned) in &run.plans {
        if segments.get(*epoch as usize - 1) != Some(planned) || *epoch > markers {
            wrong.push(format!(
                "planned batch {epoch} {planned:?} did not arrive whole before its marker"
            ));
        }
    }
    wrong
}

/// Runs the checks of [`violations`].
fn check(outcome: &Outcome) {
    let wrong = violations(outcome);
    assert!(wrong.is_empty(), "{}", wrong.join("; "));
}

/// Runs `scenario` with `bug` under loom (at most `cap` preemptions, if given), checking
/// every execution, and hands each outcome to `tally`.
fn run_model(
    name: &str,
    cap: Option<usize>,
    scenario: Scenario,
    bug: Bug,
    tally: impl Fn(&Outcome) + Sync + Send + 'static,
) -> usize {
    let execution = move || {
        let outcome = execute(scenario, bug);
        check(&outcome);
        tally(&outcome);
    };
    match cap {
        Some(cap) => model_capped(name, cap, execution),
        None => model(name, execution),
    }
}

/// The cap of the continuous → micro-batch models: at 3 preemptions stock loom 0.7.2
/// reports a livelock that the memory model forbids. The source waits for epoch 2 right
/// after marking epoch 1, while the coordinator's notifications for epoch 1 (`advance`,
/// then the continuous epoch's `release`) may still be in flight; one of them finds
/// `sleeping == true` and unparks it, its re-check finds epoch 2 or a leftover token
/// wakes it, and `release(2)`'s notification then reads that notifier's
/// `sleeping.swap(false)` past the source's later `sleeping = true` (RMW atomicity,
/// tokio-rs/loom#254): the source parks for good with its batch released, and the
/// coordinator polls until loom's branch limit. With loom patched to enforce RMW
/// atomicity (`README.md`) the model passes at 3: 15,024 executions.
const TO_MICRO_BATCH_CAP: Option<usize> = Some(2);

/// Continuous → micro-batch, racing with the records the source is emitting: the
/// coordinator starts epoch 1 (continuous), fixing epoch 2 as a micro-batch, while the
/// source emits its records one per step; it starts epoch 2 once the source acknowledged
/// epoch 1 and releases it once planned. In every interleaving nothing deadlocks, the
/// edge delivers records 1 and 2 exactly once, in order, the markers in order and `End`
/// last, and the records after `Marker(1)` are exactly the batch the source planned for
/// epoch 2, sent only after the coordinator cleared it: the source refreshed its cached
/// mode right after `Marker(1)` and held them back. The tallies show the switch landing
/// before the first record (the batch holds both), between them (one), after both (an
/// empty batch: the source learns that it is exhausted when it plans), after the source
/// ended (no batch), and the source parked waiting for the trigger and for the release.
/// Capped at 2 preemptions: see [`TO_MICRO_BATCH_CAP`].
#[test]
fn continuous_to_micro_batch_switch_keeps_every_record_in_its_epoch() {
    let counts: [Tally; 6] = Default::default();
    let counted = counts.clone();
    run_model(
        "trigger_switch::to_micro_batch",
        TO_MICRO_BATCH_CAP,
        TO_MICRO_BATCH,
        Bug::None,
        move |outcome| {
            let run = &outcome.run;
            match run.plans.first() {
                Some((_, batch)) => counted[batch.len()].hit(),
                None => counted[3].hit(),
            }
            if run.parked_for_trigger > 0 {
                counted[4].hit();
            }
            if run.parked_for_release > 0 {
                counted[5].hit();
            }
        },
    );
    let [batch_0, batch_1, batch_2, no_batch, parked_for_trigger, parked_for_release] =
        counts.each_ref().map(Tally::get);
    println!(
        "a batch of 0, 1, 2 records in {batch_0}, {batch_1}, {batch_2} executions, no batch \
         in {no_batch}; the source parked for the trigger in {parked_for_trigger}, for the \
         release in {parked_for_release}"
    );
    assert!(
        batch_0 > 0 && batch_1 > 0 && batch_2 > 0,
        "a batch size never occurred"
    );
    assert!(no_batch > 0, "the source never ended in epoch 1");
    assert!(
        parked_for_trigger > 0,
        "the source never parked for the trigger"
    );
    assert!(
        parked_for_release > 0,
        "the source never parked for the release"
    );
}

/// Micro-batch → continuous: epoch 1, a micro-batch of one record whose trigger fixed
/// epoch 2 as continuous, has started; the source plans record 1 and waits, parked, for
/// the release, while the coordinator releases the batch and then starts epoch 2. Then,
/// its mode refreshed to continuous after `Marker(1)`, the source sends record 2 at once.
/// In every interleaving nothing deadlocks, the edge delivers records 1 and 2 exactly
/// once, in order, the markers in order and `End` last, and record 1, the batch, comes
/// before `Marker(1)` and was sent after the coordinator cleared it. The tallies show the
/// source parked for the release, and epoch 2 starting before and after record 2 was
/// sent.
///
/// The coordinator has the check `Coordinator::maybe_trigger` makes; without it, this
/// model fails
/// (`starting_a_continuous_epoch_releases_a_batch_before_its_plan`).
#[test]
fn micro_batch_to_continuous_switch_keeps_every_record_in_its_epoch() {
    let counts: [Tally; 3] = Default::default();
    let counted = counts.clone();
    run_model(
        "trigger_switch::to_continuous",
        None,
        TO_CONTINUOUS,
        Bug::None,
        move |outcome| {
            let position =
                |wanted: Event<u32>| outcome.received.iter().position(|event| *event == wanted);
            match (
                position(Event::Marker(Epoch(2))),
                position(Event::Record(2)),
            ) {
                (Some(marker), Some(record)) if marker < record => counted[0].hit(),
                _ => counted[1].hit(),
            }
            if outcome.run.parked_for_release > 0 {
                counted[2].hit();
            }
        },
    );
    let [marker_first, record_first, parked_for_release] = counts.each_ref().map(Tally::get);
    println!(
        "Marker(2) before record 2 in {marker_first} executions, after it (or none) in \
         {record_first}; the source parked for the release in {parked_for_release}"
    );
    assert!(marker_first > 0, "epoch 2 never started before record 2");
    assert!(record_first > 0, "record 2 never went out before epoch 2");
    assert!(
        parked_for_release > 0,
        "the source never parked for the release"
    );
}

/// A stop racing with a planned, unreleased batch and with the switch: the micro-batch →
/// continuous model with `request_stop` on a third thread (it also unparks the source),
/// and no epoch after the batch. In every interleaving nothing deadlocks and nothing is
/// dropped: every record the source polled arrives exactly once, in order, before `End`;
/// a planned batch arrives whole, before its marker, sent after its release; a record
/// never polled stays in the source (`drain_on_stop` is false). The tallies show the
/// source seeing the stop while it holds a planned batch (it still waits for the
/// release, spinning: see [`run_source`]), before it planned (it ends at once; the
/// coordinator releases the epoch on its `Finished`), and after the switch to continuous.
#[test]
fn stop_racing_with_a_planned_batch_and_the_switch_drops_nothing() {
    let counts: [Tally; 4] = Default::default();
    let counted = counts.clone();
    run_model(
        "trigger_switch::stop",
        None,
        STOP,
        Bug::None,
        move |outcome| {
            match outcome.run.stop_seen {
                Some(StopSeen::WithBatch) => counted[0].hit(),
                Some(StopSeen::MicroBatch) => counted[1].hit(),
                Some(StopSeen::Continuous) => counted[2].hit(),
                None => {}
            }
            if outcome.run.stop_spins > 0 {
                counted[3].hit();
            }
        },
    );
    let [with_batch, before_plan, continuous, spun] = counts.each_ref().map(Tally::get);
    println!(
        "the source saw the stop holding a planned batch in {with_batch} executions, before \
         planning in {before_plan}, running continuously in {continuous}; it spun on an \
         unreleased batch in {spun}"
    );
    assert!(with_batch > 0, "the stop never met a planned batch");
    assert!(before_plan > 0, "the stop never came before the plan");
    assert!(continuous > 0, "the stop never came after the switch");
    assert!(spun > 0, "the stop never met an unreleased batch");
}

/// The race the library's coordinator had (fixed in `Coordinator::maybe_trigger`), found
/// by the micro-batch → continuous model without that check: the coordinator's
/// timer fires before the source planned batch 1, `maybe_trigger` starts epoch 2 (the
/// next epoch is continuous, so it waits for nothing), and `trigger` releases it:
/// `released` becomes 2, the source plans batch 1, finds it released at once and sends
/// record 1, which the coordinator never cleared (its `on_planned(1)` returns: epoch 1
/// is already released).
#[test]
#[should_panic(expected = "record 1 of micro-batch epoch 1 was sent before its release")]
fn starting_a_continuous_epoch_releases_a_batch_before_its_plan() {
    run_model(
        "trigger_switch::trigger_past_unreleased_batch",
        None,
        TO_CONTINUOUS,
        Bug::TriggerPastUnreleasedBatch,
        |_| {},
    );
}

/// The suite catches a coordinator that starts an epoch before it fixes the mode of the
/// next one (`advance`, then `set_mode_from`): loom finds the source marking epoch 1 and
/// reading the mode of epoch 2 in between, as continuous, and then sending a record at
/// once, in epoch 2, which the coordinator runs as a micro-batch: a record no batch
/// planned. Capped as the model it breaks ([`TO_MICRO_BATCH_CAP`]).
#[test]
#[should_panic(expected = "of micro-batch epoch 2 was not planned")]
fn advancing_before_fixing_the_next_mode_leaks_a_record_into_a_batch() {
    run_model(
        "trigger_switch::advance_before_mode",
        TO_MICRO_BATCH_CAP,
        TO_MICRO_BATCH,
        Bug::AdvanceBeforeMode,
        |_| {},
    );
}

/// The suite catches a source that reads the mode once, when it is built, instead of
/// after each marker: it runs epoch 2 continuously, sending records no batch planned.
/// Capped as the model it breaks ([`TO_MICRO_BATCH_CAP`]).
#[test]
#[should_panic(expected = "of micro-batch epoch 2 was not planned")]
fn reading_the_mode_once_leaks_records_into_a_batch() {
    run_model(
        "trigger_switch::mode_read_once",
        TO_MICRO_BATCH_CAP,
        TO_MICRO_BATCH,
        Bug::ModeReadOnce,
        |_| {},
    );
}
