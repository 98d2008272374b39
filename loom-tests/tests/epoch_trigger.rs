//! Epoch triggers: the checkpoint coordinator starts an epoch with `EpochClock::advance`, which publishes the new epoch and then
//! notifies every source thread registered with `EpochClock::add_source`. A source injects
//! one marker per epoch in `(injected, clock.current()]` at each step, and a parked source
//! re-checks `clock.current() > injected` (`SourceTask::has_work`) before it parks.
//!
//! The source thread is a test-local copy of the order of operations of `SourceTask::step`
//! and `Worker::run` (`run_source`) over the real `EpochClock`, `RunControl`, edge and
//! `WakeSignal`, wired as `query::handle::start` and `Stream::source` wire them: a source
//! thread's one wake signal is the producer signal of its output edge and is registered
//! with the clock (and, in the stop model, with the `RunControl`, as is the consumer's).
//! The main thread plays the coordinator or the query handle; it is registered with
//! nothing, so no unpark ever reaches it while it blocks in `join`.
#![cfg(loom)]

use loom::thread;
use rivulet::checkpoint::coordinator::EpochClock;
use rivulet::edge::wait::{wait_until, Backoff};
use rivulet::edge::{Event, WakeSignal};
use rivulet::runtime::RunControl;
use rivulet::sync::Arc;
use rivulet::Epoch;
use rivulet_loom_tests::{
    model, model_capped, recv_until_end, Edge, Parks, Sender, Tally, PARK_AT_ONCE,
};

/// In which order a source step makes its two shared reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reads {
    /// `SourceTask::step`: the stop flag, then the clock (in `step_epochs`).
    StopThenClock,
    /// The order bug: the clock, then the stop flag.
    ClockThenStop,
}

/// What the source thread did, for the checks and tallies.
struct SourceRun {
    tx: Sender<u32>,
    /// Parks, and with how many markers injected when each one happened.
    parked_at: Vec<u64>,
    /// Markers injected in the step that sent `End`.
    markers_in_last_step: u64,
}

/// The source thread: `Worker::run` driving a `SourceTask` with checkpointing on, whose
/// source never has data (so every step that does not end goes idle), under
/// [`PARK_AT_ONCE`]. It mirrors their order of operations:
///
/// * a step (`SourceTask::step`): read the stop flag, then inject a marker for every epoch
///   in `(injected, clock.current()]` (`InjectMarker`; `reads` can swap those two reads,
///   the order bug), then end the stream (`End`, flush) if stopping; otherwise the empty
///   poll flushes and the step is idle;
/// * between steps (`Worker::run`): `wait_until` with `has_work` =
///   `control.is_stop_requested() || clock.current() > injected` (`SourceTask::has_work`;
///   the source has no data, and `control.is_aborted()` is left out: nothing aborts here).
///
/// `injected`: the newest epoch marked so far; `Stream::source` sets it to
/// `clock.current()` when it builds the task, before any thread starts. `last_epoch`: end
/// the stream (as if exhausted) once that epoch's marker is out, for a model without a
/// stop.
fn run_source(
    mut tx: Sender<u32>,
    signal: &WakeSignal,
    clock: &EpochClock,
    control: &RunControl,
    reads: Reads,
    mut injected: u64,
    last_epoch: Option<u64>,
) -> SourceRun {
    signal.register_current();
    let parks = Parks::new();
    let mut parked_at = Vec::new();
    let mut backoff = Backoff::new(PARK_AT_ONCE);
    loop {
        let (stopping, target) = match reads {
            Reads::StopThenClock => {
                let stopping = control.is_stop_requested();
                (stopping, clock.current())
            }
            Reads::ClockThenStop => {
                let target = clock.current();
                (control.is_stop_requested(), target)
            }
        };
        let before = injected;
        while injected < target {
            injected += 1;
            tx.send(Event::Marker(Epoch(injected))).unwrap();
        }
        if stopping || last_epoch == Some(injected) {
            tx.send(Event::End).unwrap();
            tx.flush();
            return SourceRun {
                tx,
                parked_at,
                markers_in_last_step: injected - before,
            };
        }
        tx.flush();
        let parks_before = parks.count();
        // Without a deadline, `wait_until` returns only once `has_work` said yes.
        wait_until(
            signal,
            &mut backoff,
            None,
            || parks.check(control.is_stop_requested() || clock.current() > injected),
            || parks.arm(),
        );
        if parks.count() > parks_before {
            parked_at.push(injected);
        }
        backoff.reset();
    }
}

/// The markers `1..=last` followed by `End`.
fn markers_then_end(last: u64) -> Vec<Event<u32>> {
    (1..=last)
        .map(|epoch| Event::Marker(Epoch(epoch)))
        .chain([Event::End])
        .collect()
}

/// The tallies of the trigger models, counted per source and execution.
#[derive(Clone, Default)]
struct TriggerTallies {
    /// The source parked before epoch 1 had reached it.
    parked_for_1: Tally,
    /// The source parked after marking epoch 1, before epoch 2 had reached it.
    parked_for_2: Tally,
    /// Both markers went out in one step.
    both_in_one_step: Tally,
    /// The source never parked.
    never_parked: Tally,
}

impl TriggerTallies {
    fn count(&self, run: &SourceRun) {
        if run.parked_at.contains(&0) {
            self.parked_for_1.hit();
        }
        if run.parked_at.contains(&1) {
            self.parked_for_2.hit();
        }
        if run.markers_in_last_step == 2 {
            self.both_in_one_step.hit();
        }
        if run.parked_at.is_empty() {
            self.never_parked.hit();
        }
    }

    fn print(&self) {
        println!(
            "source parked waiting for epoch 1 in {}, for epoch 2 in {}; \
             marked both epochs in one step in {}; never parked in {}",
            self.parked_for_1.get(),
            self.parked_for_2.get(),
            self.both_in_one_step.get(),
            self.never_parked.get()
        );
    }
}

/// No lost trigger, no duplicate marker, and `advance` wakes every registered source: two
/// source threads, each with its own edge (capacity 3, so a source never blocks on a full
/// ring) and its own wake signal (its edge's producer signal, registered with the clock).
/// Epoch 1 starts before the threads do (the coordinator's first trigger can land between
/// `Stream::source` reading the clock and the thread starting; `injected` is still 0);
/// epoch 2 starts concurrently, while each source may be parked waiting for it. In every
/// interleaving both sources end, and each edge holds exactly `Marker(1)`, `Marker(2)`,
/// `End`: the one `advance` woke both (a missed one would park a source for good and loom
/// would report a deadlock), epoch 1 is not marked again when a source wakes for epoch 2,
/// and a source that sees both epochs at its first step marks each once, in order. The
/// edges are drained by the main thread after the joins.
///
/// Only epoch 2 is started concurrently, and nothing reads the edges meanwhile, so that
/// every wake signal gets at most one notification from a thread running at the same
/// time: with two, stock loom 0.7.2 reports a deadlock that the memory model forbids (a
/// notifier's `sleeping.swap(false)` read past the waiter's next `sleeping = true`, RMW
/// atomicity, tokio-rs/loom#254; here even at 0 preemptions). The full scenario (two
/// concurrent advances, a consumer thread on the edge) is
/// `concurrent_advances_reach_a_consumer_in_order`, which runs only with loom patched.
#[test]
fn advance_wakes_every_waiting_source_and_each_epoch_is_marked_once() {
    let tallies = TriggerTallies::default();
    let counted = tallies.clone();
    model("epoch_trigger::advance", move || {
        let clock = Arc::new(EpochClock::new(0));
        let control = Arc::new(RunControl::new());
        let edges = [Edge::<u32>::new(3), Edge::<u32>::new(3)];
        let injected = clock.current();
        for edge in &edges {
            clock.add_source(edge.producer.clone());
        }
        assert_eq!(clock.advance(), 1);
        let mut receivers = Vec::new();
        let sources: Vec<_> = edges
            .into_iter()
            .map(|edge| {
                let Edge {
                    tx, rx, producer, ..
                } = edge;
                receivers.push(rx);
                let (clock, control) = (clock.clone(), control.clone());
                thread::spawn(move || {
                    run_source(
                        tx,
                        &producer,
                        &clock,
                        &control,
                        Reads::StopThenClock,
                        injected,
                        Some(2),
                    )
                })
            })
            .collect();
        assert_eq!(clock.advance(), 2);
        let runs: Vec<_> = sources
            .into_iter()
            .map(|source| source.join().unwrap())
            .collect();
        let received: Vec<Vec<_>> = receivers
            .iter_mut()
            .map(|rx| std::iter::from_fn(|| rx.try_recv()).collect())
            .collect();
        for run in &runs {
            counted.count(run);
        }
        drop((runs, receivers, clock, control));
        for events in received {
            assert_eq!(events, markers_then_end(2));
        }
    });
    tallies.print();
    assert!(
        tallies.parked_for_2.get() > 0,
        "no source ever parked for the trigger"
    );
    assert!(
        tallies.both_in_one_step.get() > 0,
        "no source saw both epochs in one step"
    );
    assert!(
        tallies.never_parked.get() > 0,
        "no source found the trigger without parking"
    );
}

/// The full trigger scenario, which stock loom 0.7.2 cannot check (see
/// `advance_wakes_every_waiting_source_and_each_epoch_is_marked_once`): the coordinator
/// (main thread) advances the clock twice while the source thread waits for it, and the
/// source sends its markers over an edge of capacity 3 to a consumer thread, ending after
/// epoch 2's marker. Wired as the runtime wires it: the source's one signal is its edge's
/// producer signal and is registered with the clock, so the consumer's flushes after a pop
/// may wake it too. In every interleaving the consumer receives exactly `Marker(1)`,
/// `Marker(2)`, `End`. The tallies show the source parked before epoch 1 (only the
/// advance can wake it then: the ring is empty), parked between the epochs, marking both
/// in one step, and never parking.
///
/// With loom patched to enforce RMW atomicity this passes at 3 preemptions (208,306
/// executions); stock loom reports a false deadlock. `README.md` ("loom's limits") says
/// how to run it against a patched loom.
#[test]
#[ignore = "needs loom with RMW atomicity enforced (tokio-rs/loom#254); see README.md"]
fn concurrent_advances_reach_a_consumer_in_order() {
    let tallies = TriggerTallies::default();
    let counted = tallies.clone();
    model("epoch_trigger::advance_full", move || {
        let clock = Arc::new(EpochClock::new(0));
        let control = Arc::new(RunControl::new());
        let Edge {
            tx,
            mut rx,
            producer: source_signal,
            consumer: consumer_signal,
            ..
        } = Edge::<u32>::new(3);
        clock.add_source(source_signal.clone());
        let injected = clock.current();
        let source = {
            let clock = clock.clone();
            thread::spawn(move || {
                run_source(
                    tx,
                    &source_signal,
                    &clock,
                    &control,
                    Reads::StopThenClock,
                    injected,
                    Some(2),
                )
            })
        };
        let consumer = thread::spawn(move || {
            consumer_signal.register_current();
            let received = recv_until_end(&mut rx, &consumer_signal, &Parks::new(), || false);
            (rx, received)
        });
        assert_eq!(clock.advance(), 1);
        assert_eq!(clock.advance(), 2);
        let run = source.join().unwrap();
        let (rx, received) = consumer.join().unwrap();
        counted.count(&run);
        drop((run, rx, clock));
        assert_eq!(received, markers_then_end(2));
    });
    tallies.print();
    assert!(tallies.parked_for_1.get() > 0);
    assert!(tallies.parked_for_2.get() > 0);
    assert!(tallies.both_in_one_step.get() > 0);
    assert!(tallies.never_parked.get() > 0);
}

/// The stop model: an epoch is started (`clock.advance()`) and then a stop is requested
/// (`control.request_stop()`), as when a trigger lands just before `Query::stop`,
/// while the source thread runs its steps with `reads` and a consumer thread receives until
/// `End`. Returns the tallies (final marker injected in the step that ended the stream; in
/// an earlier one).
fn stop_after_final_epoch(name: &'static str, reads: Reads) -> (Tally, Tally) {
    let same_step = Tally::new();
    let earlier_step = Tally::new();
    let tallies = (same_step.clone(), earlier_step.clone());
    // See `stop_orders_the_final_marker_before_end` for the cap.
    model_capped(name, 2, move || {
        let clock = Arc::new(EpochClock::new(0));
        let control = Arc::new(RunControl::new());
        let Edge {
            tx,
            mut rx,
            producer: source_signal,
            consumer: consumer_signal,
            ..
        } = Edge::with_abort(1, control.abort_flag());
        clock.add_source(source_signal.clone());
        control.add_signal(source_signal.clone());
        control.add_signal(consumer_signal.clone());
        let injected = clock.current();
        let source = {
            let (clock, control) = (clock.clone(), control.clone());
            thread::spawn(move || {
                run_source(tx, &source_signal, &clock, &control, reads, injected, None)
            })
        };
        let consumer = {
            let control = control.clone();
            thread::spawn(move || {
                consumer_signal.register_current();
                let received = recv_until_end(&mut rx, &consumer_signal, &Parks::new(), || {
                    control.is_aborted()
                });
                (rx, received)
            })
        };
        // Query::stop.
        let final_epoch = clock.advance();
        control.request_stop();
        let run = source.join().unwrap();
        let (rx, received) = consumer.join().unwrap();
        drop((run.tx, rx, clock, control));
        assert_eq!(final_epoch, 1);
        assert_eq!(
            received,
            markers_then_end(final_epoch),
            "End before the final epoch's marker"
        );
        if run.markers_in_last_step == 1 {
            tallies.0.hit();
        } else {
            tallies.1.hit();
        }
    });
    (same_step, earlier_step)
}

/// Stop ordering: an epoch started before the stop flag is set is always marked, because
/// a source step reads the stop flag before the clock: a source that sees the stop also
/// sees every epoch started before it. In every interleaving the consumer receives
/// `Marker(1)` and then `End`: the final epoch is marked (and so checkpointed) before the
/// stream ends, never lost, never marked twice. The tallies show the case the order exists
/// for (the step that sees the stop is the one that injects the final marker) and the
/// source injecting it in an earlier step, woken by the advance.
///
/// Capped at 2 preemptions, as `shutdown::stop_drains_everything_sent_before_end` is and
/// for the same reason: with the spurious wake-ups of `request_stop` (it unparks both
/// threads unconditionally) and the consumer's two waits, loom 0.7.2 (RMW atomicity not
/// enforced, tokio-rs/loom#254) reports a deadlock at 3 that the memory model forbids (see
/// `README.md`). With loom patched to enforce RMW atomicity the model passes at 3
/// (234,123 executions). At 2, the order bug below is still found.
#[test]
fn stop_orders_the_final_marker_before_end() {
    let (same_step, earlier_step) =
        stop_after_final_epoch("epoch_trigger::stop", Reads::StopThenClock);
    println!(
        "final marker injected by the step that saw the stop in {} executions, \
         by an earlier step in {}",
        same_step.get(),
        earlier_step.get()
    );
    assert!(same_step.get() > 0, "the stop never raced with the marker");
    assert!(
        earlier_step.get() > 0,
        "the marker never went out before the stop"
    );
}

/// The suite catches the order bug: the same model with a source that reads the clock
/// before the stop flag. loom must find the interleaving where the source reads the clock
/// (epoch 0), the handle then advances and stops, and the source reads the stop flag and
/// ends the stream without the final epoch's marker: the consumer gets `End` alone.
#[test]
#[should_panic(expected = "End before the final epoch's marker")]
fn reading_the_clock_before_the_stop_flag_loses_the_final_marker() {
    stop_after_final_epoch("epoch_trigger::stop_clock_first", Reads::ClockThenStop);
}
