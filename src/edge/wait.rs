//! How a thread waits for work, and the wake-up protocol that never loses a wake-up.
//!
//! A thread waits when its inputs are empty or when an output ring is full. It first
//! spins, then may yield, then may park, as its [`WaitPolicy`] says. Parking uses a
//! [`WakeSignal`], one per thread, with the classic protocol:
//!
//! ```text
//!   waiter                                  notifier
//!   sleeping = true        (release)        publish work (ring push/pop, release)
//!   fence(SeqCst)                           fence(SeqCst)
//!   re-check for work      (acquire)        if sleeping (acquire) → swap false, unpark
//!   if none: park()
//!   sleeping = false
//! ```
//!
//! Either the waiter's fence comes first in the single total order of SeqCst fences, and
//! then the notifier's load sees `sleeping == true` and unparks; or the notifier's fence
//! comes first, and then the waiter's re-check sees the published work and does not park.
//! An unpark that lands before the `park()` is not lost either: `Thread::unpark` leaves a
//! token that makes the next `park()` return at once. The loom models in `loom-tests`
//! check this for empty rings (consumer waits) and full rings (producer waits).

use crate::sync::atomic::{fence, AtomicBool, Ordering};
use crate::sync::{hint, thread, Mutex};
use std::time::Instant;

/// What a thread does while it has nothing to do.
///
/// The default, [`WaitPolicy::SpinThenPark`], suits machines with few cores, where a
/// spinning thread steals the core that another operator needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitPolicy {
    /// Never give up the core: lowest latency, one full core per thread. Use only when
    /// every thread has a core of its own.
    BusySpin,
    /// Spin `spins` rounds, then call `yield_now` between checks. The thread never
    /// sleeps, but lets other runnable threads have the core.
    SpinThenYield {
        /// Spin rounds before yielding (each round doubles the spin, up to 64 hints).
        spins: u32,
    },
    /// Spin, yield a few times, then park until a peer wakes this thread.
    SpinThenPark {
        /// Spin rounds before yielding.
        spins: u32,
        /// `yield_now` calls before parking.
        yields: u32,
    },
}

impl Default for WaitPolicy {
    /// `SpinThenPark { spins: 8, yields: 100 }`: spin a few µs, then yield for roughly
    /// 100 µs (other runnable threads get the core meanwhile), then park. Measured on the
    /// 2-vCPU machines (BENCHMARKS.md): with 6 spins and 4 yields both threads of a
    /// 100k records/s pipeline parked between records and paid two wake-ups each (p50
    /// 48 µs); with this default p50 is 0.55 µs, and a thread idle for longer than about
    /// 100 µs still sleeps.
    fn default() -> Self {
        WaitPolicy::SpinThenPark {
            spins: 8,
            yields: 100,
        }
    }
}

impl WaitPolicy {
    /// `true` if this policy may park a thread (so notifiers must check its signal).
    pub fn may_park(self) -> bool {
        matches!(self, WaitPolicy::SpinThenPark { .. })
    }
}

/// Counts the rounds of one wait and says what to do next, like crossbeam's `Backoff`.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: WaitPolicy,
    round: u32,
}

/// The next step of a wait, as decided by [`Backoff::advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStep {
    /// The backoff already spun or yielded; check for work again.
    Retry,
    /// Spinning is over: park (with the [`WakeSignal`] protocol), then check again.
    Park,
}

impl Backoff {
    /// A fresh wait under `policy`.
    pub fn new(policy: WaitPolicy) -> Self {
        Backoff { policy, round: 0 }
    }

    /// Starts over after work was found.
    #[inline]
    pub fn reset(&mut self) {
        self.round = 0;
    }

    /// Spins or yields for one round, or says it is time to park.
    pub fn advance(&mut self) -> WaitStep {
        let (spins, yields) = match self.policy {
            WaitPolicy::BusySpin => {
                hint::spin_loop();
                return WaitStep::Retry;
            }
            WaitPolicy::SpinThenYield { spins } => (spins, u32::MAX),
            WaitPolicy::SpinThenPark { spins, yields } => (spins, yields),
        };
        if self.round < spins {
            for _ in 0..(1u32 << self.round.min(6)) {
                hint::spin_loop();
            }
            self.round += 1;
            WaitStep::Retry
        } else if self.round - spins < yields {
            thread::yield_now();
            // Saturating: `SpinThenYield` yields without end.
            self.round = self.round.saturating_add(1);
            WaitStep::Retry
        } else {
            WaitStep::Park
        }
    }
}

/// A thread's parking flag: notifiers check it after publishing work and unpark the thread
/// if it is (about to be) asleep.
///
/// One signal belongs to one thread (the waiter); any number of peers may notify it.
#[derive(Debug)]
pub struct WakeSignal {
    sleeping: AtomicBool,
    /// Set by the waiter itself before it first sleeps; read by notifiers only after they
    /// saw `sleeping == true` (acquire), which the waiter set after registering.
    thread: Mutex<Option<thread::Thread>>,
}

impl Default for WakeSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl WakeSignal {
    /// A signal with no thread registered yet.
    pub fn new() -> Self {
        WakeSignal {
            sleeping: AtomicBool::new(false),
            thread: Mutex::new(None),
        }
    }

    /// Makes the calling thread the one this signal wakes. Call it on the waiting thread
    /// before its first [`WakeSignal::wait`].
    pub fn register_current(&self) {
        *self.thread.lock().unwrap() = Some(thread::current());
    }

    /// Parks the calling thread unless `has_work` says there is work, following the
    /// protocol in the module docs. Returns after an unpark, a spurious wake-up, the
    /// `deadline`, or at once if work was found. The caller re-checks in a loop.
    pub fn wait(&self, has_work: impl FnOnce() -> bool, deadline: Option<Instant>) {
        self.sleeping.store(true, Ordering::Release);
        fence(Ordering::SeqCst);
        if !has_work() {
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if deadline > now {
                        thread::park_timeout(deadline - now);
                    }
                }
            }
        }
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Wakes the thread if it is parked or about to park. Call it after publishing work
    /// (pushing to or popping from a ring the waiter re-checks).
    #[inline]
    pub fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Acquire) {
            self.notify_slow();
        }
    }

    #[cold]
    fn notify_slow(&self) {
        // One notifier unparks; the rest see `false`. The waiter re-arms the flag on its
        // next wait, after re-checking, so clearing it here loses nothing.
        if self.sleeping.swap(false, Ordering::AcqRel) {
            self.unpark();
        }
    }

    /// Unparks the registered thread unconditionally (used by stop and abort).
    pub fn unpark(&self) {
        if let Some(thread) = self.thread.lock().unwrap().as_ref() {
            thread.unpark();
        }
    }
}

/// Waits in `backoff` rounds, then parks on `signal`, until `has_work` is true or
/// `deadline` passes. Returns `true` if work was found, `false` on the deadline.
///
/// `before_park` runs once before each park; a thread uses it to flush its own pending
/// notifications so no peer waits on it while it sleeps.
pub fn wait_until(
    signal: &WakeSignal,
    backoff: &mut Backoff,
    deadline: Option<Instant>,
    mut has_work: impl FnMut() -> bool,
    mut before_park: impl FnMut(),
) -> bool {
    loop {
        if has_work() {
            return true;
        }
        if let Some(deadline) = deadline {
            if Instant::now() >= deadline {
                return false;
            }
        }
        // Under a parking policy a deadline wait parks with a timeout once the spin phase
        // is over, even for short gaps: the timer's slack (tens of µs) costs latency, but
        // a thread that spins through every gap of a 30k rows/s source burns a core that a
        // 2-core machine needs. Latency-critical setups choose `BusySpin`.
        if backoff.advance() == WaitStep::Park {
            before_park();
            signal.wait(&mut has_work, deadline);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn backoff_parks_only_under_park_policy() {
        let mut spin = Backoff::new(WaitPolicy::BusySpin);
        let mut yielding = Backoff::new(WaitPolicy::SpinThenYield { spins: 1 });
        for _ in 0..100 {
            assert_eq!(spin.advance(), WaitStep::Retry);
            assert_eq!(yielding.advance(), WaitStep::Retry);
        }
        let mut park = Backoff::new(WaitPolicy::SpinThenPark {
            spins: 2,
            yields: 1,
        });
        assert_eq!(park.advance(), WaitStep::Retry);
        assert_eq!(park.advance(), WaitStep::Retry);
        assert_eq!(park.advance(), WaitStep::Retry);
        assert_eq!(park.advance(), WaitStep::Park);
        park.reset();
        assert_eq!(park.advance(), WaitStep::Retry);
    }

    #[test]
    fn notify_wakes_a_parked_waiter() {
        let signal = Arc::new(WakeSignal::new());
        let work = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let (signal, work) = (signal.clone(), work.clone());
            std::thread::spawn(move || {
                signal.register_current();
                let mut backoff = Backoff::new(WaitPolicy::default());
                for round in 1..=100 {
                    wait_until(
                        &signal,
                        &mut backoff,
                        None,
                        || work.load(Ordering::Acquire) >= round,
                        || {},
                    );
                    backoff.reset();
                }
            })
        };
        for _ in 0..100 {
            std::thread::sleep(Duration::from_micros(200));
            work.fetch_add(1, Ordering::Release);
            signal.notify();
        }
        waiter.join().unwrap();
    }

    #[test]
    fn deadline_ends_a_wait_without_work() {
        let signal = WakeSignal::new();
        signal.register_current();
        let mut backoff = Backoff::new(WaitPolicy::default());
        let start = Instant::now();
        let deadline = start + Duration::from_millis(5);
        assert!(!wait_until(
            &signal,
            &mut backoff,
            Some(deadline),
            || false,
            || {}
        ));
        assert!(start.elapsed() >= Duration::from_millis(5));
    }
}
