//! Processing-time timers and the wake-up protocol: a thread waiting for its next timer is
//! always woken when the query's manual clock reaches it, even if the clock moves while the
//! thread is on its way to `park()`.
//!
//! The clock is the real one: `ManualClock::set` stores the new time (`fetch_max`) and then
//! notifies every signal attached with `Clock::attach`, as a query attaches each thread's
//! signal at start. The waiting side is the real `wait_until` / `WakeSignal`, driven by a
//! test-local copy of what a thread does around them: `ChainTime::before_step` fires the
//! timers due at the start of each step (`clock.now() >= deadline`), an idle step with a
//! manual clock waits with no deadline (`Clock::wake_at` is `None`: the clock wakes the
//! thread instead), and the task's `has_work`, which is also the re-check after
//! `sleeping = true`, includes `ChainTime::timer_due` (the same comparison) besides its
//! input (`InputTask::has_work`).
#![cfg(loom)]

use loom::thread;
use rivulet::edge::wait::{wait_until, Backoff};
use rivulet::edge::{Event, WakeSignal};
use rivulet::sync::atomic::{AtomicI64, Ordering};
use rivulet::sync::Arc;
use rivulet::time::{Clock, ManualClock};
use rivulet::Timestamp;
use rivulet_loom_tests::{model, model_capped, Edge, Parks, Tally, PARK_AT_ONCE};
use std::mem::ManuallyDrop;
use std::ops::ControlFlow;
use std::time::Duration;

/// The one timer of the models.
const DEADLINE: Timestamp = Timestamp(10);

/// How the clock thread moves the clock.
#[derive(Clone, Copy)]
enum Mover {
    /// The real `ManualClock::advance` (`set`): store the time, then notify.
    Real,
    /// Broken: a copy of `set` that notifies first and stores the time after.
    NotifyFirst,
}

/// How the waiting thread re-checks after announcing that it sleeps.
#[derive(Clone, Copy)]
enum Recheck {
    /// `has_work` includes the due timer, as `ChainTime::timer_due` makes it.
    WithTimer,
    /// Broken: the step checks the timer before waiting, but the re-check inside
    /// `WakeSignal::wait` (after `sleeping = true` and the fence) looks at the input only.
    InputOnly,
}

/// The broken clock of [`Mover::NotifyFirst`]: `ManualClock` with the two steps of `set`
/// swapped.
struct NotifyFirstClock {
    now: AtomicI64,
    signal: Arc<WakeSignal>,
}

impl NotifyFirstClock {
    fn set(&self, time: Timestamp) {
        self.signal.notify();
        self.now.fetch_max(time.0, Ordering::SeqCst);
    }
}

/// What the waiting thread reads the time from.
enum Reader {
    Real(Clock),
    NotifyFirst(Arc<NotifyFirstClock>),
}

impl Reader {
    fn now(&self) -> Timestamp {
        match self {
            Reader::Real(clock) => clock.now(),
            Reader::NotifyFirst(clock) => Timestamp(clock.now.load(Ordering::SeqCst)),
        }
    }
}

/// The waiting thread's loop (`Worker::run` over a task whose chain holds one
/// processing-time timer at [`DEADLINE`] and has no input): fire the timer at the start of
/// a step if it is due, else wait. Returns the time the timer fired at.
fn wait_for_timer(
    reader: &Reader,
    signal: &WakeSignal,
    parks: &Parks,
    recheck: Recheck,
) -> Timestamp {
    let mut backoff = Backoff::new(PARK_AT_ONCE);
    loop {
        // `ChainTime::before_step`.
        let now = reader.now();
        if now >= DEADLINE {
            return now;
        }
        // The step was idle: `Step::Idle { until: clock.wake_at(deadline) }`, `None` for a
        // manual clock.
        match recheck {
            Recheck::WithTimer => {
                wait_until(
                    signal,
                    &mut backoff,
                    None,
                    || parks.check(reader.now() >= DEADLINE),
                    || parks.arm(),
                );
                backoff.reset();
            }
            Recheck::InputOnly => {
                parks.arm();
                signal.wait(|| parks.check(false), None);
            }
        }
    }
}

/// One waiting thread (the main thread) with a timer at [`DEADLINE`] while another thread
/// moves the clock from 0 to exactly the deadline. Counts the executions in which the
/// waiter parked before the move (so the move had to unpark it) and those in which it found
/// the timer due without parking.
///
/// Everything the waiter holds is in `ManuallyDrop` and dropped only on success: a broken
/// variant makes loom report the deadlock by panicking inside `park()`, and a destructor
/// that touched loom state while that panic unwinds would abort the process instead of
/// failing the test (as in `broken_recheck.rs`).
fn timer_alone(name: &'static str, mover: Mover, recheck: Recheck, tallies: (Tally, Tally)) {
    let (parked, not_parked) = tallies;
    model(name, move || {
        let signal = ManuallyDrop::new(Arc::new(WakeSignal::new()));
        signal.register_current();
        let (reader, clock_thread) = match mover {
            Mover::Real => {
                let manual = ManualClock::new(Timestamp(0));
                let clock = manual.clock();
                clock.attach(Arc::clone(&signal));
                let moving = thread::spawn(move || manual.advance(Duration::from_micros(10)));
                (Reader::Real(clock), moving)
            }
            Mover::NotifyFirst => {
                let clock = Arc::new(NotifyFirstClock {
                    now: AtomicI64::new(0),
                    signal: Arc::clone(&signal),
                });
                let moving = {
                    let clock = Arc::clone(&clock);
                    thread::spawn(move || clock.set(DEADLINE))
                };
                (Reader::NotifyFirst(clock), moving)
            }
        };
        let reader = ManuallyDrop::new(reader);
        let clock_thread = ManuallyDrop::new(clock_thread);
        let parks = Parks::new();
        let fired_at = wait_for_timer(&reader, &signal, &parks, recheck);
        ManuallyDrop::into_inner(clock_thread).join().unwrap();
        drop(ManuallyDrop::into_inner(reader));
        drop(ManuallyDrop::into_inner(signal));
        assert_eq!(
            fired_at, DEADLINE,
            "fired before the clock reached the timer"
        );
        if parks.count() > 0 {
            parked.hit();
        } else {
            not_parked.hit();
        }
    });
}

/// No lost timer: a thread whose only pending work is a processing-time timer fires it once
/// the clock reaches it, in every interleaving: whether it parked first (then
/// `ManualClock::set`'s notify must unpark it) or the clock moved between its last check and
/// its `park()` (then the re-check after `sleeping = true` must see the new time). Both
/// cases are counted, so the model is shown to reach `park()` and to skip it.
#[test]
fn advancing_the_clock_wakes_a_thread_waiting_for_its_timer() {
    let (parked, not_parked) = (Tally::new(), Tally::new());
    timer_alone(
        "timer_wakeup::timer_alone",
        Mover::Real,
        Recheck::WithTimer,
        (parked.clone(), not_parked.clone()),
    );
    println!(
        "waiter parked in {} executions, found the timer due without parking in {}",
        parked.get(),
        not_parked.get()
    );
    assert!(parked.get() > 0, "the model never reached park()");
    assert!(
        not_parked.get() > 0,
        "the model never saw the clock move first"
    );
}

/// A thread with input and a timer, as an operator thread after an edge: the producer
/// pushes and flushes one record while the clock thread moves the clock to the timer. The
/// thread has one signal, which is both its edge's consumer signal and the one attached to
/// the clock (`start` attaches `group.signals[i]`, the signal the edges were built with),
/// and `has_work` is input ready or timer due. It receives the record and fires the timer,
/// whichever wakes it first and however often it parks: three threads, each wake-up source
/// notifying once. Parks are counted by how many the thread made (0, 1 or 2).
///
/// Capped at 2 preemptions: at 3 stock loom reports a false deadlock, the RMW-atomicity
/// flaw described in `README.md`. In the failing execution the producer's notify swaps
/// `sleeping` from the waiter's `false` (written after its first wait, whose re-check saw
/// the record) while the waiter has yet to store `true` for its second wait; loom then
/// orders that second `true` before the swap's `false`, so the clock thread's fenced load
/// after `fetch_max` reads `false` and unparks nobody, although the waiter's re-check, which
/// read the old time, puts its fence first and so forces that load to see `true`.
#[test]
fn a_thread_with_input_and_a_timer_gets_both() {
    let parks_made: [Tally; 3] = Default::default();
    let seen = parks_made.clone();
    model_capped("timer_wakeup::input_and_timer", 2, move || {
        let Edge {
            mut tx,
            mut rx,
            consumer,
            ..
        } = Edge::<u32>::new(1);
        consumer.register_current();
        let manual = ManualClock::new(Timestamp(0));
        let clock = manual.clock();
        clock.attach(Arc::clone(&consumer));
        let producer = thread::spawn(move || {
            tx.send(Event::Record(1)).unwrap();
            tx.flush();
            tx
        });
        let moving = thread::spawn(move || manual.advance(Duration::from_micros(10)));
        let parks = Parks::new();
        let mut backoff = Backoff::new(PARK_AT_ONCE);
        let mut received = Vec::new();
        let mut fired = None;
        loop {
            // `ChainTime::before_step`, then the step over the input.
            if fired.is_none() && clock.now() >= DEADLINE {
                fired = Some(clock.now());
            }
            let read = rx.recv_chunk(usize::MAX, |event| {
                received.push(event);
                ControlFlow::Continue(())
            });
            if read > 0 {
                rx.flush();
            }
            if fired.is_some() && !received.is_empty() {
                break;
            }
            // `InputTask::has_work`: the timer (until it fired; `ChainTime::after` then
            // finds no deadline) or the input.
            let timer_pending = fired.is_none();
            let ready = &rx;
            wait_until(
                &consumer,
                &mut backoff,
                None,
                || parks.check((timer_pending && clock.now() >= DEADLINE) || ready.is_ready()),
                || parks.arm(),
            );
            backoff.reset();
        }
        moving.join().unwrap();
        assert_eq!(received, [Event::Record(1)]);
        assert_eq!(fired, Some(DEADLINE));
        seen[parks.count()].hit();
        // Only now may the sender drop (and unpark unconditionally).
        drop(producer.join().unwrap());
    });
    let [none, once, twice] = parks_made.map(|tally| tally.get());
    println!("the thread parked twice in {twice} executions, once in {once}, never in {none}");
    assert!(
        twice > 0 && once > 0 && none > 0,
        "the model missed a case: parked twice {twice}, once {once}, never {none}"
    );
}

/// The suite can fail: a clock that notifies before it stores the new time lets the waiter
/// announce its sleep after the notify (which found it awake) and re-check before the
/// store (which it then misses), and park for good. loom must report the deadlock.
#[test]
#[should_panic(expected = "deadlock")]
fn notifying_before_storing_the_time_loses_the_timer() {
    timer_alone(
        "timer_wakeup::notify_first",
        Mover::NotifyFirst,
        Recheck::WithTimer,
        (Tally::new(), Tally::new()),
    );
}

/// The suite can fail: a thread that checks its timer at the start of a step but whose
/// re-check after `sleeping = true` looks only at its input (a `has_work` without
/// `timer_due`, with a step loop around it) misses a clock move that lands between that
/// check and `sleeping = true`: the notify finds it awake, the re-check ignores the time,
/// and it parks for good. loom must report the deadlock.
#[test]
#[should_panic(expected = "deadlock")]
fn a_recheck_without_the_timer_loses_it() {
    timer_alone(
        "timer_wakeup::recheck_input_only",
        Mover::Real,
        Recheck::InputOnly,
        (Tally::new(), Tally::new()),
    );
}
