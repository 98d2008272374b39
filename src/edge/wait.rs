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
//!
//! ## Blocking somewhere else than in `park()`
//!
//! A source whose data arrives on sockets blocks in `mio::Poll::poll` instead: socket
//! readiness never goes through the signal, so a parked thread would never see it. Such a
//! thread waits with a [`Waiter`] whose [`block`](Waiter::block) polls, and registers the
//! poll's `mio::Waker` with [`WakeSignal::set_waker`]; every unpark of the signal (a
//! notifier that saw `sleeping`, stop, abort, a dropped edge) then also fires the waker.
//! The protocol is the same with `block` in the place of `park()`:
//!
//! ```text
//!   waiter                                  notifier
//!   sleeping = true        (release)        publish work (release)
//!   fence(SeqCst)                           fence(SeqCst)
//!   re-check for work      (acquire)        if sleeping (acquire) → swap false,
//!   if none: block() (poll)                   unpark the thread and fire the waker
//!   sleeping = false
//! ```
//!
//! The fence argument above is unchanged: either the re-check sees the work, or the
//! notifier sees `sleeping` and fires the waker. What `park()`'s token gave, the waker
//! must give too: a wake that lands between the re-check and the blocking call must make
//! that call return. A `mio::Waker` does: on Linux it writes to an eventfd registered in
//! the poll, and the write queues a readiness event in the kernel whether or not a
//! `poll` is blocked at that moment; the next `poll` returns with it (kqueue's
//! `EVFILT_USER` trigger behaves alike). So a wake before the poll is kept, like an
//! unpark token, and a wake during it ends it. A primitive that only woke a caller
//! already blocked (a condition variable's notify without a flag) would lose exactly that
//! wake-up; `loom-tests/tests/wakeup_waker.rs` runs the protocol with both kinds.
//! Spurious returns (a stale waker event, a socket event) are harmless: the caller
//! re-checks in a loop. The thread is unparked as well, because the same thread may
//! still park on the signal elsewhere (a sender blocked on a full ring); a leftover
//! unpark token or waker event costs one spurious return, nothing more.

use crate::sync::atomic::{fence, AtomicBool, Ordering};
use crate::sync::{hint, thread, Mutex};
use std::fmt;
use std::time::{Duration, Instant};

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
        self.advance_with(true)
    }

    /// Like [`advance`](Self::advance), but under [`WaitPolicy::SpinThenPark`] without
    /// `yields`, `false`: parks right after the spin rounds (see [`Waiter::yields`]). The
    /// other policies never park, so they yield as usual.
    pub fn advance_with(&mut self, yields: bool) -> WaitStep {
        let (spins, yields) = match self.policy {
            WaitPolicy::BusySpin => {
                hint::spin_loop();
                return WaitStep::Retry;
            }
            WaitPolicy::SpinThenYield { spins } => (spins, u32::MAX),
            WaitPolicy::SpinThenPark { spins, yields: n } => (spins, if yields { n } else { 0 }),
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
pub struct WakeSignal {
    sleeping: AtomicBool,
    /// Set by the waiter itself before it first sleeps; read by notifiers only after they
    /// saw `sleeping == true` (acquire), which the waiter set after registering.
    wakes: Mutex<Wakes>,
}

/// What an unpark wakes. One lock for both, so an unpark costs the one lock it always
/// did when no waker is set.
#[derive(Default)]
struct Wakes {
    thread: Option<thread::Thread>,
    /// Fired with every unpark, for a thread that blocks in a poll of its own (see the
    /// module docs). Set before the thread first blocks there, like `thread`.
    waker: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

impl fmt::Debug for WakeSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wakes = self.wakes.lock().unwrap();
        f.debug_struct("WakeSignal")
            .field("sleeping", &self.sleeping)
            .field("thread", &wakes.thread)
            .field("waker", &wakes.waker.is_some())
            .finish()
    }
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
            wakes: Mutex::new(Wakes::default()),
        }
    }

    /// Makes the calling thread the one this signal wakes. Call it on the waiting thread
    /// before its first [`WakeSignal::wait`].
    pub fn register_current(&self) {
        self.wakes.lock().unwrap().thread = Some(thread::current());
    }

    /// Makes every unpark of this signal also call `waker`: for a thread that blocks in a
    /// poll of its own ([`Waiter::block`]), pass something that ends that poll, such as
    /// `mio::Waker::wake`. It must keep a wake that comes before the blocking call (see
    /// the module docs). Set it before the thread first blocks; a later call replaces it.
    ///
    /// ```
    /// use rivulet::edge::WakeSignal;
    /// use std::sync::Arc;
    ///
    /// let mut poll = mio::Poll::new()?;
    /// let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0))?);
    /// let signal = WakeSignal::new();
    /// signal.set_waker(Arc::new(move || {
    ///     let _ = waker.wake();
    /// }));
    /// signal.unpark(); // before the poll: the poll still returns
    /// let mut events = mio::Events::with_capacity(4);
    /// poll.poll(&mut events, None)?;
    /// assert_eq!(events.iter().next().map(|event| event.token()), Some(mio::Token(0)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_waker(&self, waker: std::sync::Arc<dyn Fn() + Send + Sync>) {
        self.wakes.lock().unwrap().waker = Some(waker);
    }

    /// Parks the calling thread unless `has_work` says there is work, following the
    /// protocol in the module docs. Returns after an unpark, a spurious wake-up, the
    /// `deadline`, or at once if work was found. The caller re-checks in a loop.
    pub fn wait(&self, has_work: impl FnOnce() -> bool, deadline: Option<Instant>) {
        let mut has_work = Some(has_work);
        self.wait_with(
            &mut Closures {
                has_work: || has_work.take().is_none_or(|has_work| has_work()),
                before_park: || {},
            },
            deadline,
        );
    }

    /// Like [`wait`](Self::wait), with `waiter` re-checking for work and, if it has a
    /// wait of its own ([`Waiter::block`]), blocking there instead of in `park()`.
    pub fn wait_with<W: Waiter + ?Sized>(&self, waiter: &mut W, deadline: Option<Instant>) {
        self.sleeping.store(true, Ordering::Release);
        fence(Ordering::SeqCst);
        if !waiter.has_work() {
            let timeout = match deadline {
                None => Some(None),
                Some(deadline) => {
                    let now = Instant::now();
                    (deadline > now).then(|| Some(deadline - now))
                }
            };
            // A wake-up from here on unparks the thread and fires the waker; `block`
            // must return for a waker fired before it started (module docs).
            if let Some(timeout) = timeout {
                if !waiter.block(timeout) {
                    match timeout {
                        None => thread::park(),
                        Some(timeout) => thread::park_timeout(timeout),
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

    /// Unparks the registered thread unconditionally (used by stop and abort), and fires
    /// the waker, if one is set ([`set_waker`](Self::set_waker)).
    pub fn unpark(&self) {
        let waker = {
            let wakes = self.wakes.lock().unwrap();
            if let Some(thread) = &wakes.thread {
                thread.unpark();
            }
            wakes.waker.clone()
        };
        // Called outside the lock: the waker is foreign code.
        if let Some(waker) = waker {
            waker();
        }
    }
}

/// What a waiting thread checks, and where it blocks: [`wait_for`] and
/// [`WakeSignal::wait_with`] call it. [`wait_until`] is `wait_for` with closures.
pub trait Waiter {
    /// `true` if there is work (the re-check of the protocol).
    fn has_work(&mut self) -> bool;

    /// Runs once before each block: a thread flushes its own pending notifications here
    /// so no peer waits on it while it sleeps. The default does nothing.
    fn before_park(&mut self) {}

    /// One spin or yield round found no work: look, without blocking, for work that
    /// arrives elsewhere than through the signal (a socket). The default does nothing.
    fn poll(&mut self) {}

    /// Whether the rounds between the spin phase and blocking yield the core, as the
    /// [`WaitPolicy`] says (`true`, the default), or the waiter blocks right after the
    /// spin phase (`false`; only [`WaitPolicy::SpinThenPark`] has a choice).
    ///
    /// A waiter that blocks in a poll of its own ([`block`](Self::block)) returns `false`:
    /// the kernel ends that poll as soon as a socket has data, so yielding buys nothing,
    /// and it can cost much. A thread in its yield phase never sleeps: fed a line every
    /// few µs it never reaches its block and stays runnable for good, and next to a busy
    /// thread on its core (another process, a local writer) each `yield_now` hands the
    /// core over for the rest of a time slice, milliseconds (Linux's EEVDF scheduler
    /// moves a yielding thread's deadline back by a slice). Measured in
    /// `benches/socket_latency.rs` on a loaded 2-core machine: the socket source chained
    /// with its sink, p50 474 ms with the yield phase, 22 µs blocking at once.
    fn yields(&self) -> bool {
        true
    }

    /// Blocks until woken, for at most `timeout` (`None`: no limit), in a wait of its own
    /// (a `mio` poll whose waker is [registered](WakeSignal::set_waker) with the signal),
    /// and returns `true`; or returns `false` at once to have the thread park instead.
    /// It must return when the waker fires, also when that happened before the call, and
    /// may return spuriously. The default returns `false`.
    fn block(&mut self, timeout: Option<Duration>) -> bool {
        let _ = timeout;
        false
    }
}

/// [`Waiter`] of closures: `has_work` and `before_park`, parking the thread.
struct Closures<H, B> {
    has_work: H,
    before_park: B,
}

impl<H: FnMut() -> bool, B: FnMut()> Waiter for Closures<H, B> {
    fn has_work(&mut self) -> bool {
        (self.has_work)()
    }
    fn before_park(&mut self) {
        (self.before_park)();
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
    has_work: impl FnMut() -> bool,
    before_park: impl FnMut(),
) -> bool {
    wait_for(
        signal,
        backoff,
        deadline,
        &mut Closures {
            has_work,
            before_park,
        },
    )
}

/// [`wait_until`] with a [`Waiter`]: spins or yields in `backoff` rounds (each followed by
/// [`Waiter::poll`]), then blocks with the protocol of [`WakeSignal::wait_with`], until
/// `has_work` is true or `deadline` passes. Returns `true` if work was found, `false` on
/// the deadline.
pub fn wait_for<W: Waiter + ?Sized>(
    signal: &WakeSignal,
    backoff: &mut Backoff,
    deadline: Option<Instant>,
    waiter: &mut W,
) -> bool {
    loop {
        if waiter.has_work() {
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
        match backoff.advance_with(waiter.yields()) {
            WaitStep::Retry => waiter.poll(),
            WaitStep::Park => {
                waiter.before_park();
                signal.wait_with(waiter, deadline);
            }
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
        // A waiter that blocks in a poll of its own parks right after the spin rounds;
        // the policies that never park yield as usual.
        park.reset();
        assert_eq!(park.advance_with(false), WaitStep::Retry);
        assert_eq!(park.advance_with(false), WaitStep::Retry);
        assert_eq!(park.advance_with(false), WaitStep::Park);
        assert_eq!(park.advance_with(false), WaitStep::Park);
        for _ in 0..100 {
            assert_eq!(yielding.advance_with(false), WaitStep::Retry);
        }
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

    /// A thread that blocks in a `mio` poll (a [`Waiter`] with `block`) is woken by
    /// `notify` through the waker registered with its signal, and by a plain `unpark` (stop,
    /// abort), including wakes that come before it polls.
    #[test]
    fn a_registered_waker_ends_a_wait_in_a_mio_poll() {
        struct Polling<'a> {
            poll: mio::Poll,
            events: mio::Events,
            work: &'a AtomicUsize,
            round: usize,
            blocks: usize,
        }
        impl Waiter for Polling<'_> {
            fn has_work(&mut self) -> bool {
                self.work.load(Ordering::Acquire) >= self.round
            }
            fn block(&mut self, timeout: Option<Duration>) -> bool {
                self.blocks += 1;
                self.poll.poll(&mut self.events, timeout).unwrap();
                true
            }
        }
        let signal = Arc::new(WakeSignal::new());
        let work = Arc::new(AtomicUsize::new(0));
        let poll = mio::Poll::new().unwrap();
        let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        signal.set_waker(std::sync::Arc::new(move || waker.wake().unwrap()));
        let waiter = {
            let (signal, work) = (signal.clone(), work.clone());
            std::thread::spawn(move || {
                let mut polling = Polling {
                    poll,
                    events: mio::Events::with_capacity(4),
                    work: &work,
                    round: 0,
                    blocks: 0,
                };
                let mut backoff = Backoff::new(WaitPolicy::SpinThenPark {
                    spins: 0,
                    yields: 0,
                });
                for round in 1..=100 {
                    polling.round = round;
                    assert!(wait_for(&signal, &mut backoff, None, &mut polling));
                    backoff.reset();
                }
                polling.blocks
            })
        };
        for round in 1..=100 {
            if round % 10 != 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
            work.fetch_add(1, Ordering::Release);
            if round % 2 == 0 {
                signal.notify();
            } else {
                signal.unpark();
            }
        }
        let blocks = waiter.join().unwrap();
        assert!(blocks > 0, "the waiter never blocked in its poll");
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
