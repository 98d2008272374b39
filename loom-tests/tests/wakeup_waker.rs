//! A thread that blocks in a poll of its own instead of `park()`: a source whose data
//! arrives on sockets waits in `mio::Poll::poll` (`Source::park`), and the poll's
//! `mio::Waker` is registered with the thread's `WakeSignal` (`WakeSignal::set_waker`), so
//! that every unpark of the signal also fires it. The protocol is the signal's own
//! (`sleeping = true`, fence, re-check, block), with the poll in the place of `park()`.
//!
//! loom cannot see inside mio, so the poll is modelled: `ModelPoll` is a `Mutex` +
//! `Condvar` around a pending flag. `Keeps::Pending` keeps a wake that comes while nobody
//! polls, as an eventfd registered with epoll does (the write queues a readiness event
//! that the next `epoll_wait` returns); `Keeps::OnlyWhileBlocked` is a primitive that
//! wakes only a poller already blocked (a condition variable notified without a flag).
//! The source thread waits with the real `wait_for` and `WakeSignal::wait_with` through a
//! `Waiter` whose `block` polls, and the real `EpochClock` / `RunControl` notify it.
//!
//! The source's thread is not registered with its signal (`register_current`), so the
//! waker is the only thing that can end its wait, as for a thread blocked in `epoll_wait`,
//! which an unpark does not reach.
#![cfg(loom)]

use loom::sync::{Condvar, Mutex};
use loom::thread;
use rivulet::checkpoint::coordinator::EpochClock;
use rivulet::edge::wait::{wait_for, Backoff, Waiter};
use rivulet::edge::WakeSignal;
use rivulet::runtime::RunControl;
use rivulet::sync::Arc;
use rivulet_loom_tests::{model, Tally, PARK_AT_ONCE};
use std::mem::ManuallyDrop;
use std::time::Duration;

/// What the modelled poll does with a wake that comes while nobody is blocked in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keeps {
    /// Keeps it: the next poll returns at once (eventfd + epoll, kqueue's `EVFILT_USER`).
    Pending,
    /// Drops it: only a poller already blocked is woken (the broken kind).
    OnlyWhileBlocked,
}

#[derive(Default)]
struct PollState {
    pending: bool,
    blocked: bool,
}

/// A readiness poll with a waker.
struct ModelPoll {
    keeps: Keeps,
    state: Mutex<PollState>,
    ready: Condvar,
}

impl ModelPoll {
    fn new(keeps: Keeps) -> Self {
        ModelPoll {
            keeps,
            state: Mutex::new(PollState::default()),
            ready: Condvar::new(),
        }
    }

    /// The waker: `mio::Waker::wake`.
    fn wake(&self) {
        let mut state = self.state.lock().unwrap();
        if self.keeps == Keeps::Pending || state.blocked {
            state.pending = true;
            self.ready.notify_one();
        }
    }

    /// `mio::Poll::poll` with no timeout: returns once a wake is pending, consuming it.
    fn poll(&self) {
        let mut state = self.state.lock().unwrap();
        state.blocked = true;
        while !state.pending {
            state = self.ready.wait(state).unwrap();
        }
        state.pending = false;
        state.blocked = false;
    }
}

/// The source's side of `Worker::run`'s wait: `has_work` is `SourceTask::has_work`'s
/// question (here: an epoch to mark, or a stop), `block` is `Source::park`.
struct SourceWaiter<'a> {
    has_work: &'a dyn Fn() -> bool,
    poll: &'a ModelPoll,
    blocks: usize,
}

impl Waiter for SourceWaiter<'_> {
    fn has_work(&mut self) -> bool {
        (self.has_work)()
    }

    fn block(&mut self, timeout: Option<Duration>) -> bool {
        assert_eq!(timeout, None, "the models wait without a deadline");
        self.blocks += 1;
        self.poll.poll();
        true
    }
}

/// A signal whose waker wakes `poll`, the way `WakeHandle::register_mio` sets it.
fn signal_waking(poll: &Arc<ModelPoll>) -> Arc<WakeSignal> {
    let signal = Arc::new(WakeSignal::new());
    let poll = poll.clone();
    signal.set_waker(std::sync::Arc::new(move || poll.wake()));
    signal
}

/// The coordinator starts epoch 1 (`EpochClock::advance`: publish, then notify the
/// registered source signals) while the source thread waits for it in its poll. The
/// source always sees the epoch: its re-check finds it, or the notifier finds `sleeping`
/// and fires the waker, before or during the poll. Counted: the source blocked in the
/// poll, and found the epoch without blocking.
///
/// Every loom object the source thread (main) holds is in `ManuallyDrop` and dropped only
/// on success: the broken variant's deadlock is a panic inside the poll's `Condvar::wait`,
/// and a destructor touching loom state while it unwinds would abort the test binary.
fn epoch_wakes_a_polling_source(name: &'static str, keeps: Keeps, tallies: [Tally; 2]) {
    model(name, move || {
        let poll = ManuallyDrop::new(Arc::new(ModelPoll::new(keeps)));
        let signal = ManuallyDrop::new(signal_waking(&poll));
        let clock = ManuallyDrop::new(Arc::new(EpochClock::new(0)));
        clock.add_source(Arc::clone(&signal));
        let coordinator = {
            let clock = Arc::clone(&clock);
            ManuallyDrop::new(thread::spawn(move || {
                clock.advance();
            }))
        };
        let has_work = || clock.current() >= 1;
        let mut waiter = SourceWaiter {
            has_work: &has_work,
            poll: &poll,
            blocks: 0,
        };
        let mut backoff = Backoff::new(PARK_AT_ONCE);
        assert!(wait_for(&signal, &mut backoff, None, &mut waiter));
        let blocked = waiter.blocks > 0;
        ManuallyDrop::into_inner(coordinator).join().unwrap();
        tallies[usize::from(blocked)].hit();
        drop(ManuallyDrop::into_inner(clock));
        drop(ManuallyDrop::into_inner(signal));
        drop(ManuallyDrop::into_inner(poll));
    });
}

/// With a poll that keeps a wake for the next poll (what a `mio::Waker` does), an epoch
/// started while the source goes to sleep is never missed.
#[test]
fn advance_wakes_a_source_blocked_in_its_poll() {
    let (unblocked, blocked) = (Tally::new(), Tally::new());
    epoch_wakes_a_polling_source(
        "wakeup_waker::advance",
        Keeps::Pending,
        [unblocked.clone(), blocked.clone()],
    );
    println!(
        "the source blocked in its poll in {} executions, found the epoch without blocking in {}",
        blocked.get(),
        unblocked.get()
    );
    assert!(blocked.get() > 0, "the model never reached the poll");
    assert!(unblocked.get() > 0, "the model never saw the epoch first");
}

/// The suite can fail: with a poll that drops a wake nobody is blocked for, the wake that
/// lands between the source's re-check and its poll is lost, and the source polls for
/// good. loom must report the deadlock.
#[test]
#[should_panic(expected = "deadlock")]
fn a_waker_that_drops_early_wakes_loses_the_epoch() {
    epoch_wakes_a_polling_source(
        "wakeup_waker::advance_lossy",
        Keeps::OnlyWhileBlocked,
        [Tally::new(), Tally::new()],
    );
}

/// `Query::stop`: `RunControl::request_stop` sets the flag and unparks every registered
/// signal unconditionally (no `sleeping` check), which fires the waker: a source blocked
/// in its poll wakes and sees the stop.
#[test]
fn stop_wakes_a_source_blocked_in_its_poll() {
    let blocked = Tally::new();
    let seen = blocked.clone();
    model("wakeup_waker::stop", move || {
        let poll = Arc::new(ModelPoll::new(Keeps::Pending));
        let signal = signal_waking(&poll);
        let control = Arc::new(RunControl::new());
        control.add_signal(Arc::clone(&signal));
        let handle = {
            let control = Arc::clone(&control);
            thread::spawn(move || control.request_stop())
        };
        let has_work = || control.is_stop_requested() || control.is_aborted();
        let mut waiter = SourceWaiter {
            has_work: &has_work,
            poll: &poll,
            blocks: 0,
        };
        let mut backoff = Backoff::new(PARK_AT_ONCE);
        assert!(wait_for(&signal, &mut backoff, None, &mut waiter));
        if waiter.blocks > 0 {
            seen.hit();
        }
        handle.join().unwrap();
    });
    println!(
        "the source blocked in its poll in {} executions",
        blocked.get()
    );
    assert!(blocked.get() > 0, "the model never reached the poll");
}
