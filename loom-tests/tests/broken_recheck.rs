//! The suite can fail: test-local copies of the `WakeSignal` protocol with one step of it
//! removed, driven as in `wakeup_empty.rs`, must make loom report the lost wake-up (a
//! deadlock: every thread blocked, the consumer parked for good).
//!
//! `Signal` below is `rivulet::edge::wait::WakeSignal` and `wait_for` is `wait_until`,
//! copied with only what these models need (no deadline, park at once), so that a step can
//! be switched off. The intact copy is checked too, so a failure of a broken one is the
//! missing step's doing, not the copy's.
#![cfg(loom)]

use loom::thread;
use rivulet::edge::{Event, ModelRing, Ring, RingConsumer, RingProducer};
use rivulet::sync::atomic::{fence, AtomicBool, Ordering};
use rivulet::sync::{Arc, Mutex};
use rivulet_loom_tests::model;
use std::mem::ManuallyDrop;

/// Which steps of the protocol the copy keeps.
#[derive(Clone, Copy)]
struct Steps {
    /// The waiter re-checks for work after `sleeping = true` and the fence.
    recheck: bool,
    /// Both sides' `fence(SeqCst)` (waiter: between the flag store and the re-check;
    /// notifier: between publishing and the flag load).
    fences: bool,
}

/// `WakeSignal`, with switchable steps.
struct Signal {
    steps: Steps,
    sleeping: AtomicBool,
    thread: Mutex<Option<thread::Thread>>,
}

impl Signal {
    fn new(steps: Steps) -> Self {
        Signal {
            steps,
            sleeping: AtomicBool::new(false),
            thread: Mutex::new(None),
        }
    }

    fn register_current(&self) {
        *self.thread.lock().unwrap() = Some(thread::current());
    }

    fn wait(&self, has_work: impl FnOnce() -> bool) {
        self.sleeping.store(true, Ordering::Release);
        if self.steps.fences {
            fence(Ordering::SeqCst);
        }
        if !(self.steps.recheck && has_work()) {
            thread::park();
        }
        self.sleeping.store(false, Ordering::Relaxed);
    }

    fn notify(&self) {
        if self.steps.fences {
            fence(Ordering::SeqCst);
        }
        if self.sleeping.load(Ordering::Acquire) && self.sleeping.swap(false, Ordering::AcqRel) {
            if let Some(thread) = self.thread.lock().unwrap().as_ref() {
                thread.unpark();
            }
        }
    }
}

/// `wait_until` under `WaitPolicy::SpinThenPark { spins: 0, yields: 0 }` with no deadline.
fn wait_for(signal: &Signal, mut has_work: impl FnMut() -> bool) {
    while !has_work() {
        signal.wait(&mut has_work);
    }
}

/// One producer pushes `Record(1)` on a model ring of capacity 1 and notifies; the
/// consumer waits for it with `steps` of the protocol, then pops it.
///
/// The consumer's loom objects (and the join handle, which holds the producer's returned
/// ring half) are held in `ManuallyDrop` and dropped only on success: when loom reports the
/// deadlock it panics inside `park()`, and a destructor that touched loom state while that
/// panic unwinds would abort the process instead of failing the test.
fn one_record(name: &'static str, steps: Steps) {
    model(name, move || {
        let (mut tx, rx) = <ModelRing as Ring<Event<u32>>>::with_capacity(1);
        let signal = ManuallyDrop::new(Arc::new(Signal::new(steps)));
        signal.register_current();
        let producer = {
            let signal = Arc::clone(&signal);
            ManuallyDrop::new(thread::spawn(move || {
                tx.try_push(Event::Record(1)).unwrap();
                signal.notify();
                tx
            }))
        };
        let mut rx = ManuallyDrop::new(rx);
        wait_for(&signal, || !rx.is_empty());
        assert_eq!(rx.try_pop(), Some(Event::Record(1)));
        drop(ManuallyDrop::into_inner(producer).join().unwrap());
        drop(ManuallyDrop::into_inner(rx));
        drop(ManuallyDrop::into_inner(signal));
    });
}

/// Control: the copy with every step in place never loses the wake-up (as model 1 shows
/// for the real `WakeSignal`).
#[test]
fn intact_copy_never_loses_a_wakeup() {
    one_record(
        "broken_recheck::intact",
        Steps {
            recheck: true,
            fences: true,
        },
    );
}

/// Without the re-check, a push + notify that lands between the consumer's last "empty"
/// check and its `sleeping = true` finds the flag clear and unparks nobody; the consumer
/// then parks for good. loom must find that interleaving and report a deadlock.
#[test]
#[should_panic(expected = "deadlock")]
fn missing_recheck_loses_a_wakeup() {
    one_record(
        "broken_recheck::no_recheck",
        Steps {
            recheck: false,
            fences: true,
        },
    );
}

/// Without the two `SeqCst` fences, the release store of `sleeping` and the acquire load
/// of the ring index form the store-buffering pattern: the consumer's re-check may miss the
/// push while the producer's flag load misses `sleeping = true`. loom must report the
/// deadlock.
#[test]
#[should_panic(expected = "deadlock")]
fn missing_fences_lose_a_wakeup() {
    one_record(
        "broken_recheck::no_fences",
        Steps {
            recheck: true,
            fences: false,
        },
    );
}
