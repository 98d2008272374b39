//! The processing-time clock: the system's, or a manual one for tests.

use crate::edge::WakeSignal;
use crate::event::Timestamp;
// The shim: a manual clock's store-then-notify is half of the timer wake-up protocol, so
// under `--cfg loom` its atomic and lock are loom's (loom-tests/tests/timer_wakeup.rs).
use crate::sync::atomic::{AtomicI64, Ordering};
use crate::sync::{Arc, Mutex};
use std::fmt;
use std::time::{Duration, Instant};

/// The processing-time clock of a query
/// ([`QueryBuilder::clock`](crate::QueryBuilder::clock)): what
/// [`Context::processing_time`](crate::operator::Context::processing_time) reads and
/// what processing-time timers wait for.
///
/// ```
/// use rivulet::time::{Clock, ManualClock};
/// use rivulet::Timestamp;
/// use std::time::Duration;
///
/// assert!(Clock::system().now() > Timestamp(1_600_000_000_000_000));
/// let manual = ManualClock::new(Timestamp(1_000));
/// let clock: Clock = manual.clock();
/// manual.advance(Duration::from_micros(500));
/// assert_eq!(clock.now(), Timestamp(1_500));
/// ```
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<ManualState>>,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::system"),
            Some(state) => write!(f, "Clock::manual({:?})", state.now()),
        }
    }
}

impl Clock {
    /// The system's wall clock (the default).
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// The current time.
    #[inline]
    pub fn now(&self) -> Timestamp {
        match &self.manual {
            None => Timestamp::now(),
            Some(state) => state.now(),
        }
    }

    /// Whether this is a manual clock (its time moves only when the test moves it).
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// The instant at which a thread waiting for `deadline` should wake up by itself:
    /// `None` for a manual clock, whose [`ManualClock::advance`] wakes the query's
    /// threads instead.
    pub(crate) fn wake_at(&self, deadline: Timestamp) -> Option<Instant> {
        if self.manual.is_some() {
            return None;
        }
        let now = Timestamp::now();
        let wait = deadline.0.saturating_sub(now.0).max(0) as u64;
        Some(Instant::now() + Duration::from_micros(wait))
    }

    /// Lets a manual clock wake `signal` whenever it moves; does nothing for the system
    /// clock, whose waiters wake at their deadline by themselves. A query attaches the
    /// signal of each of its threads when it starts; this is public so that the loom
    /// models can run the real protocol.
    pub fn attach(&self, signal: Arc<WakeSignal>) {
        if let Some(state) = &self.manual {
            let mut signals = state.signals.lock().unwrap_or_else(|p| p.into_inner());
            // Signals only the clock still holds belong to queries that ended: a clock
            // that outlives many queries does not keep them all.
            signals.retain(|signal| Arc::strong_count(signal) > 1);
            signals.push(signal);
        }
    }
}

struct ManualState {
    now: AtomicI64,
    signals: Mutex<Vec<Arc<WakeSignal>>>,
}

impl ManualState {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::SeqCst))
    }
}

/// A clock that moves only when told to: tests of processing-time behaviour use it
/// instead of sleeping.
///
/// Moving it wakes every thread of the queries that run on it, so a thread waiting for a
/// processing-time timer notices that the timer is due. Time never moves backwards.
#[derive(Clone)]
pub struct ManualClock {
    state: Arc<ManualState>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            state: Arc::new(ManualState {
                now: AtomicI64::new(start.0),
                signals: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The [`Clock`] to give a query.
    pub fn clock(&self) -> Clock {
        Clock {
            manual: Some(self.state.clone()),
        }
    }

    /// The current reading.
    pub fn now(&self) -> Timestamp {
        self.state.now()
    }

    /// Moves the clock forward by `by` and wakes the threads that run on it.
    pub fn advance(&self, by: Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        let now = self.state.now().0.saturating_add(micros);
        self.set(Timestamp(now));
    }

    /// Moves the clock to `time` (if that is later than now) and wakes the threads that
    /// run on it.
    pub fn set(&self, time: Timestamp) {
        self.state.now.fetch_max(time.0, Ordering::SeqCst);
        // The wake-up protocol: the new time is stored before each waiter's `sleeping`
        // flag is read (notify fences), and a waiter re-checks for due timers after
        // setting that flag, so a waiter either sees the new time or is unparked.
        for signal in self
            .state
            .signals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            signal.notify();
        }
    }
}
