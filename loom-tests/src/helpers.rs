//! What the models share: an edge on the model ring, the receive loop of an operator thread,
//! and counters that show a model really reached the interleavings it is about.

use rivulet::edge::model_ring::{ModelConsumer, ModelProducer};
use rivulet::edge::wait::{wait_until, Backoff};
use rivulet::edge::{channel, EdgeReceiver, EdgeSender, Event, ModelRing, WaitPolicy, WakeSignal};
use rivulet::sync::atomic::AtomicBool;
use rivulet::sync::Arc;
use std::cell::Cell;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Parks at the first failed check: no spinning, no yielding, so every wait goes straight
/// to the wake-up protocol (the case where a lost wake-up would hang a thread).
pub const PARK_AT_ONCE: WaitPolicy = WaitPolicy::SpinThenPark {
    spins: 0,
    yields: 0,
};

/// The sending half of an edge on a [`ModelRing`].
pub type Sender<T> = EdgeSender<T, ModelProducer<Event<T>>>;
/// The receiving half of an edge on a [`ModelRing`].
pub type Receiver<T> = EdgeReceiver<T, ModelConsumer<Event<T>>>;

/// An edge on a [`ModelRing`], with the wake signals of its two threads and the abort flag,
/// built the way the query builder builds one (policy [`PARK_AT_ONCE`]).
#[derive(Debug)]
pub struct Edge<T: Send> {
    /// The sending half (the producer thread's).
    pub tx: Sender<T>,
    /// The receiving half (the consumer thread's).
    pub rx: Receiver<T>,
    /// The producer thread's signal: it waits on it while the ring is full.
    pub producer: Arc<WakeSignal>,
    /// The consumer thread's signal: it waits on it while the ring is empty.
    pub consumer: Arc<WakeSignal>,
    /// The abort flag a blocked sender watches.
    pub abort: Arc<AtomicBool>,
}

impl<T: Send> Edge<T> {
    /// An edge holding `capacity` events, with fresh signals and abort flag.
    pub fn new(capacity: usize) -> Self {
        Self::with_abort(capacity, Arc::new(AtomicBool::new(false)))
    }

    /// An edge holding `capacity` events whose sender gives up when `abort` is set (pass
    /// `RunControl::abort_flag()`).
    pub fn with_abort(capacity: usize, abort: Arc<AtomicBool>) -> Self {
        let producer = Arc::new(WakeSignal::new());
        let consumer = Arc::new(WakeSignal::new());
        let (tx, rx) = channel::<T, ModelRing>(
            capacity,
            producer.clone(),
            consumer.clone(),
            abort.clone(),
            PARK_AT_ONCE,
        );
        Edge {
            tx,
            rx,
            producer,
            consumer,
            abort,
        }
    }
}

/// Counts the parks of one thread: a wait whose re-check (after `sleeping = true` and the
/// fence) found no work, so that `WakeSignal::wait` went on to `park()`.
///
/// [`wait_until`] calls its `before_park` hook right before `WakeSignal::wait`, and `wait`
/// calls `has_work` exactly once, as its re-check; the probe arms on the first and counts
/// a park when the second says "no work".
#[derive(Debug, Default)]
pub struct Parks {
    armed: Cell<bool>,
    parks: Cell<usize>,
}

impl Parks {
    /// A probe that has seen no park.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `before_park` hook.
    pub fn arm(&self) {
        self.armed.set(true);
    }

    /// Wraps a `has_work` answer: if this is the re-check and it found nothing, the thread
    /// is about to park.
    pub fn check(&self, found: bool) -> bool {
        if self.armed.replace(false) && !found {
            self.parks.set(self.parks.get() + 1);
        }
        found
    }

    /// Parks seen so far.
    pub fn count(&self) -> usize {
        self.parks.get()
    }
}

/// Receives a chunk of events the way an operator thread does (`InputTask::step` inside
/// `Worker::run`): [`EdgeReceiver::recv_chunk`] hands out up to `max` ready events (one
/// store of the read index frees them all), stopping after `End`, which is then the last
/// event appended to `out`; after a chunk, flush (which wakes a producer waiting for
/// space); on an empty ring flush, then wait on the thread's own `signal` until the edge
/// is ready or `give_up` says so (the worker passes `control.is_aborted()`).
///
/// Returns `false` (appending nothing) when `give_up` is true or the producer is gone
/// with nothing left.
pub fn recv_chunk<T: Send>(
    rx: &mut Receiver<T>,
    signal: &WakeSignal,
    parks: &Parks,
    give_up: impl Fn() -> bool,
    max: usize,
    out: &mut Vec<Event<T>>,
) -> bool {
    let mut backoff = Backoff::new(PARK_AT_ONCE);
    loop {
        let read = rx.recv_chunk(max, |event| {
            let end = matches!(event, Event::End);
            out.push(event);
            if end {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        if read > 0 {
            rx.flush();
            return true;
        }
        if give_up() || rx.is_disconnected() {
            return false;
        }
        rx.flush();
        let ready = &*rx;
        wait_until(
            signal,
            &mut backoff,
            None,
            || parks.check(ready.is_ready() || give_up()),
            || parks.arm(),
        );
    }
}

/// Receives the next event: [`recv_chunk`] with chunks of one.
///
/// Returns `None` when `give_up` is true or the producer is gone with nothing left.
pub fn recv<T: Send>(
    rx: &mut Receiver<T>,
    signal: &WakeSignal,
    parks: &Parks,
    give_up: impl Fn() -> bool,
) -> Option<Event<T>> {
    let mut out = Vec::with_capacity(1);
    recv_chunk(rx, signal, parks, give_up, 1, &mut out).then(|| out.pop().expect("one event"))
}

/// Receives with [`recv_chunk`], whole chunks at a time, until `End` (kept, as the last
/// element) or until it returns `false` (`give_up`, or the producer gone); returns every
/// event received, in order. The models assert on the whole sequence after the threads
/// are joined, so a failed check never unwinds through live loom objects.
pub fn recv_until_end<T: Send>(
    rx: &mut Receiver<T>,
    signal: &WakeSignal,
    parks: &Parks,
    give_up: impl Fn() -> bool,
) -> Vec<Event<T>> {
    let mut received = Vec::new();
    while !matches!(received.last(), Some(Event::End))
        && recv_chunk(rx, signal, parks, &give_up, usize::MAX, &mut received)
    {}
    received
}

/// A count kept across all the executions of one model (loom runs them one after another
/// on one OS thread; this is a plain `std` atomic that loom does not see).
#[derive(Debug, Clone, Default)]
pub struct Tally(std::sync::Arc<AtomicUsize>);

impl Tally {
    /// A zero count.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    pub fn hit(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn add(&self, n: usize) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The count.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs `f` under [`loom::model`] (every interleaving, up to `LOOM_MAX_PREEMPTIONS`
/// preemptions per execution; `LOOM_LOG` traces) and returns how many executions loom
/// explored. Prints the count under `--nocapture`.
pub fn model<F>(name: &str, f: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    let (executions, f) = counted(f);
    loom::model(f);
    report(name, &executions)
}

/// [`model`], with the preemption bound capped at `max_preemptions` whatever
/// `LOOM_MAX_PREEMPTIONS` says (and without `LOOM_LOG` tracing). For a model that loom 0.7
/// cannot check deeper without reporting a false failure (see `README.md`).
pub fn model_capped<F>(name: &str, max_preemptions: usize, f: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    let bound = builder
        .preemption_bound
        .map_or(max_preemptions, |bound| bound.min(max_preemptions));
    builder.preemption_bound = Some(bound);
    println!("{name}: preemptions capped at {bound}");
    let (executions, f) = counted(f);
    builder.check(f);
    report(name, &executions)
}

fn counted<F>(f: F) -> (Tally, impl Fn() + Sync + Send + 'static)
where
    F: Fn() + Sync + Send + 'static,
{
    let executions = Tally::new();
    let count = executions.clone();
    (executions, move || {
        count.hit();
        f();
    })
}

fn report(name: &str, executions: &Tally) -> usize {
    println!("{name}: {} executions", executions.get());
    executions.get()
}
