//! Edges: the typed, blocking, waking ends of an SPSC ring between two operator threads.
//!
//! An edge carries [`Event`]s in FIFO order, so control events (watermarks, epoch markers,
//! end-of-stream) never overtake records. A full ring is back-pressure: [`EdgeSender::send`]
//! waits, under the thread's [`WaitPolicy`], until the consumer frees a slot; nothing is
//! dropped. Wake-ups follow the protocol in [`wait`].
//!
//! Publication and notifications are batched. [`EdgeSender::send`] pushes the first event
//! after a publish straight into the ring (so a step that sends one record publishes it
//! as it is sent) and stages the events after it in a small buffer of the sender's own;
//! the staged events move into the ring with one index store (one cache line handed to
//! the consumer's core) when the buffer holds a chunk ([`EDGE_CHUNK`] events, fewer if
//! the ring had less room at the sender's last look) and at [`EdgeSender::flush`]. [`EdgeReceiver::recv_chunk`] frees the slots of a whole chunk
//! with one store. The thread calls the flushes at the end of each step of work (and
//! always before it waits), so an event is never held past the end of the step that sent
//! it, a peer is woken once per batch instead of paying a fence per record, and nothing
//! sits unpublished while its thread waits or sleeps.
//!
//! Staging never goes beyond the free slots the sender last saw in the ring, so the events
//! in flight on an edge (staged or queued) never exceed its capacity: back-pressure is as
//! tight as with one push per event.
//!
//! ```
//! use rivulet::edge::{channel, Event, RtrbRing, WaitPolicy, WakeSignal};
//! use std::sync::{atomic::AtomicBool, Arc};
//!
//! let (producer, consumer) = (Arc::new(WakeSignal::new()), Arc::new(WakeSignal::new()));
//! let abort = Arc::new(AtomicBool::new(false));
//! let (mut tx, mut rx) =
//!     channel::<u64, RtrbRing>(8, producer, consumer, abort, WaitPolicy::default());
//! tx.send(Event::Record(7)).unwrap();
//! tx.send(Event::End).unwrap();
//! tx.flush();
//! assert_eq!(rx.try_recv(), Some(Event::Record(7)));
//! assert_eq!(rx.try_recv(), Some(Event::End));
//! ```

pub mod model_ring;
pub mod ring;
pub mod wait;

pub use crate::event::Event;
pub use model_ring::ModelRing;
pub use ring::{Ring, RingConsumer, RingProducer, RtrbRing};
pub use wait::{Backoff, WaitPolicy, WakeSignal};

use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Arc, Mutex};
use std::fmt;
use std::marker::PhantomData;
use std::ops::ControlFlow;

/// The most events an [`EdgeSender`] stages before it publishes them (fewer when the ring
/// has less room). Measured on the 2-vCPU machines (BENCHMARKS.md, "Edge batching"): one
/// index store per chunk instead of per record keeps a two-thread pipeline out of the
/// regime where every record bounces the index's cache line between the cores.
pub const EDGE_CHUNK: usize = 128;

/// Why a [`EdgeSender::send`] did not deliver; the event is handed back.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError<T> {
    /// The consumer half is gone (its thread ended or failed).
    Disconnected(Event<T>),
    /// The query is being aborted; the sender stopped waiting for space.
    Aborted(Event<T>),
}

impl<T> SendError<T> {
    /// The event that was not sent.
    pub fn into_inner(self) -> Event<T> {
        match self {
            SendError::Disconnected(event) | SendError::Aborted(event) => event,
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Disconnected(_) => f.write_str("the receiving operator is gone"),
            SendError::Aborted(_) => f.write_str("the query was aborted"),
        }
    }
}

/// The wake signals of every peer of one thread (the threads at the other end of its
/// input and output edges). A thread about to park while blocked on one full output
/// wakes them all first, so no peer sleeps on work this thread published but had not
/// announced yet (records or a marker on a sibling edge, space freed on an input).
///
/// Filled while the query is built, read only on the slow path.
#[derive(Debug, Default)]
pub struct PeerSet {
    peers: Mutex<Vec<Arc<WakeSignal>>>,
}

impl PeerSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a peer.
    pub fn add(&self, peer: Arc<WakeSignal>) {
        self.peers.lock().unwrap().push(peer);
    }

    /// Wakes every peer that is asleep or about to sleep.
    pub fn notify_all(&self) {
        for peer in self.peers.lock().unwrap().iter() {
            peer.notify();
        }
    }
}

/// The two halves of an edge over a ring of kind `R`.
pub type EdgePair<T, R> = (
    EdgeSender<T, <R as Ring<Event<T>>>::Producer>,
    EdgeReceiver<T, <R as Ring<Event<T>>>::Consumer>,
);

/// Creates an edge over a new ring of kind `R` holding `capacity` events.
///
/// `producer` and `consumer` are the wake signals of the threads that will own the sending
/// and receiving halves; `abort` ends a sender's wait on a full ring.
///
/// # Panics
///
/// If `capacity` is 0 (the query builder refuses that earlier with an error).
pub fn channel<T, R>(
    capacity: usize,
    producer: Arc<WakeSignal>,
    consumer: Arc<WakeSignal>,
    abort: Arc<AtomicBool>,
    policy: WaitPolicy,
) -> EdgePair<T, R>
where
    R: Ring<Event<T>>,
{
    assert!(capacity > 0, "edge capacity must be at least 1");
    let (ring_tx, ring_rx) = R::with_capacity(capacity);
    let notify = policy.may_park();
    let chunk = capacity.min(EDGE_CHUNK);
    (
        EdgeSender {
            staged: Vec::with_capacity(chunk),
            chunk,
            room: capacity,
            limit: chunk,
            open: false,
            ring: ring_tx,
            peer: Peer(consumer.clone()),
            own: producer.clone(),
            abort,
            policy,
            notify,
            dirty: false,
            thread_peers: None,
            _record: PhantomData,
        },
        EdgeReceiver {
            ring: ring_rx,
            peer: Peer(producer),
            notify,
            popped: false,
            _record: PhantomData,
        },
    )
}

/// The sending half of an edge. `Send`, not `Sync`: one thread owns it.
///
/// The first event after a publish goes straight into the ring; the events after it are
/// staged and published at [`flush`](Self::flush) or when a chunk fills (module docs). Dropping the sender publishes what is still staged (it always fits:
/// staging never exceeds the ring's free slots), so a sender dropped without a flush loses
/// nothing; the wake-up comes from the drop itself. On an abort the consumer stops
/// reading anyway, and whatever is left in the ring is dropped with it.
pub struct EdgeSender<T, P: RingProducer<Event<T>> = rtrb::Producer<Event<T>>> {
    /// Events sent but not yet published, oldest first; never more than `limit`.
    staged: Vec<Event<T>>,
    /// The most events staged before publishing (`min(capacity, EDGE_CHUNK)`).
    chunk: usize,
    /// Free slots in the ring at the last look, less what was published since: the
    /// staged events are guaranteed a slot each.
    room: usize,
    /// `min(chunk, room)`: how many events may be staged before the next publish.
    limit: usize,
    /// A chunk is open: the first event since the last publish went straight into the
    /// ring, the ones after it are staged.
    open: bool,
    /// Declared before `peer`, so it drops first: the ring is marked abandoned before the
    /// peer is woken to look.
    ring: P,
    /// The consumer thread's signal; wakes the consumer when the sender drops.
    peer: Peer,
    /// This thread's signal, to wait on when the ring is full.
    own: Arc<WakeSignal>,
    abort: Arc<AtomicBool>,
    policy: WaitPolicy,
    notify: bool,
    dirty: bool,
    /// Every peer of this thread, woken before it parks on a full ring.
    thread_peers: Option<Arc<PeerSet>>,
    _record: PhantomData<fn(T)>,
}

impl<T, P: RingProducer<Event<T>>> fmt::Debug for EdgeSender<T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeSender")
            .field("policy", &self.policy)
            .field("staged", &self.staged.len())
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}

impl<T, P: RingProducer<Event<T>>> Drop for EdgeSender<T, P> {
    fn drop(&mut self) {
        // Fits without waiting: `room` covers every staged event. Runs before the fields
        // drop, so the events are in the ring before it is marked abandoned and the
        // consumer woken.
        self.publish();
    }
}

impl<T, P: RingProducer<Event<T>>> EdgeSender<T, P> {
    /// Makes a wait on a full ring wake `peers` (all of this thread's peers) before
    /// parking.
    pub fn set_thread_peers(&mut self, peers: Arc<PeerSet>) {
        self.thread_peers = Some(peers);
    }
}

impl<T, P: RingProducer<Event<T>>> EdgeSender<T, P> {
    /// Sends `event`: stages it, to be published at the next [`flush`](Self::flush) or
    /// when a chunk fills, waiting while the ring is full (back-pressure).
    ///
    /// # Errors
    ///
    /// Hands the event back if the consumer is gone or the query is aborted while waiting.
    #[inline]
    pub fn send(&mut self, event: Event<T>) -> Result<(), SendError<T>> {
        if self.staged.len() < self.limit {
            if self.open {
                self.staged.push(event);
            } else {
                self.push_now(event);
            }
            Ok(())
        } else {
            self.send_publishing(event)
        }
    }

    /// Pushes the first event since the last publish straight into the ring (it has room:
    /// `limit > 0`) and opens a chunk for the events that follow. A step that sends one
    /// record (a source at a low rate) so publishes it as it is sent, not only at the end
    /// of the step, which the latency benchmark notices (BENCHMARKS.md, "Edge batching").
    #[inline]
    fn push_now(&mut self, event: Event<T>) {
        debug_assert!(self.staged.is_empty() && self.room > 0);
        if self.ring.try_push(event).is_err() {
            unreachable!("the ring had room at the last look");
        }
        self.room -= 1;
        self.limit = self.chunk.min(self.room);
        self.open = true;
        self.dirty = true;
    }

    /// The chunk is full or the ring had no more room at the last look: publish what is
    /// staged, look at the ring again, and wait only if it is really full.
    #[inline(never)]
    fn send_publishing(&mut self, event: Event<T>) -> Result<(), SendError<T>> {
        self.publish();
        if self.room == 0 {
            self.look();
            if self.room == 0 {
                return self.send_slow(event);
            }
        }
        // Opens the next chunk: the publish just now was this chunk's store.
        self.staged.push(event);
        self.open = true;
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn send_slow(&mut self, event: Event<T>) -> Result<(), SendError<T>> {
        debug_assert!(self.staged.is_empty(), "published before waiting");
        let mut backoff = Backoff::new(self.policy);
        loop {
            if self.ring.is_abandoned() {
                return Err(SendError::Disconnected(event));
            }
            if self.abort.load(Ordering::Acquire) {
                return Err(SendError::Aborted(event));
            }
            // The consumer may be asleep with a full ring we never told it about.
            self.flush();
            let ring = &self.ring;
            let abort = &self.abort;
            let thread_peers = self.thread_peers.as_deref();
            wait::wait_until(
                &self.own,
                &mut backoff,
                None,
                || !ring.is_full() || ring.is_abandoned() || abort.load(Ordering::Acquire),
                || {
                    if let Some(peers) = thread_peers {
                        peers.notify_all();
                    }
                },
            );
            self.look();
            if self.room > 0 {
                self.staged.push(event);
                self.open = true;
                return Ok(());
            }
        }
    }

    /// Moves the staged events into the ring with one index store.
    #[inline]
    fn publish(&mut self) {
        self.open = false;
        let published = self.staged.len();
        if published > 0 {
            self.ring.push_all(&mut self.staged);
            self.room -= published;
            self.limit = self.chunk.min(self.room);
            self.dirty = true;
        }
    }

    /// Reads the ring's free slots afresh (nothing may be staged).
    fn look(&mut self) {
        self.room = self.ring.free(self.chunk);
        self.limit = self.chunk.min(self.room);
    }

    /// Publishes the staged events and wakes the consumer if anything was published since
    /// the last flush and it may be asleep. Cheap when nothing is pending.
    #[inline]
    pub fn flush(&mut self) {
        self.publish();
        if self.dirty {
            self.dirty = false;
            if self.notify {
                self.peer.notify();
            }
        }
    }

    /// Events in flight on this edge: waiting in the ring or staged (for occupancy
    /// metrics).
    pub fn queued(&self) -> usize {
        self.ring.len() + self.staged.len()
    }

    /// `true` once the receiving half is gone.
    pub fn is_disconnected(&self) -> bool {
        self.ring.is_abandoned()
    }
}

/// The peer's wake signal, held by one half of an edge. Dropping it wakes the peer; the
/// half's `ring` field is declared first and so has already dropped, which is what makes
/// the ring abandoned: the wake-up comes after what it announces, as the protocol in
/// [`wait`] requires.
struct Peer(Arc<WakeSignal>);

impl std::ops::Deref for Peer {
    type Target = WakeSignal;

    fn deref(&self) -> &WakeSignal {
        &self.0
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.0.notify();
        self.0.unpark();
    }
}

/// The receiving half of an edge. `Send`, not `Sync`: one thread owns it.
pub struct EdgeReceiver<T, C = rtrb::Consumer<Event<T>>> {
    /// Declared before `peer`, so it drops first (see [`EdgeSender`]).
    ring: C,
    /// The producer thread's signal; wakes the producer when the receiver drops.
    peer: Peer,
    notify: bool,
    popped: bool,
    _record: PhantomData<fn() -> T>,
}

impl<T, C> fmt::Debug for EdgeReceiver<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeReceiver")
            .field("popped", &self.popped)
            .finish_non_exhaustive()
    }
}

impl<T, C: RingConsumer<Event<T>>> EdgeReceiver<T, C> {
    /// Pops the oldest event, if one is ready.
    #[inline]
    pub fn try_recv(&mut self) -> Option<Event<T>> {
        let event = self.ring.try_pop();
        self.popped |= event.is_some();
        event
    }

    /// Hands up to `max` ready events, oldest first, to `handle` until it returns
    /// [`ControlFlow::Break`], then frees their slots together (one index store). Events
    /// after the one that broke stay in the ring. Returns how many were handed out (0 if
    /// none was ready).
    #[inline]
    pub fn recv_chunk(
        &mut self,
        max: usize,
        handle: impl FnMut(Event<T>) -> ControlFlow<()>,
    ) -> usize {
        let handed = self.ring.pop_each(max, handle);
        self.popped |= handed > 0;
        handed
    }

    /// `true` if a call to [`try_recv`](Self::try_recv) would return an event, or the
    /// producer is gone (so the caller should look).
    #[inline]
    pub fn is_ready(&self) -> bool {
        !self.ring.is_empty() || self.ring.is_abandoned()
    }

    /// `true` if the producer is gone and nothing is left to read.
    pub fn is_disconnected(&self) -> bool {
        self.ring.is_abandoned() && self.ring.is_empty()
    }

    /// Events waiting in the ring.
    pub fn queued(&self) -> usize {
        self.ring.len()
    }

    /// Wakes the producer if anything was popped since the last flush and it may be
    /// waiting for space.
    #[inline]
    pub fn flush(&mut self) {
        if self.popped {
            self.popped = false;
            if self.notify {
                self.peer.notify();
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn pair<R: Ring<Event<u64>>>(capacity: usize) -> (EdgePair<u64, R>, Arc<AtomicBool>) {
        let abort = Arc::new(AtomicBool::new(false));
        let pair = channel::<u64, R>(
            capacity,
            Arc::new(WakeSignal::new()),
            Arc::new(WakeSignal::new()),
            abort.clone(),
            WaitPolicy::default(),
        );
        (pair, abort)
    }

    fn blocking_transfer<R: Ring<Event<u64>>>()
    where
        R::Producer: 'static,
        R::Consumer: 'static,
    {
        let producer_signal = Arc::new(WakeSignal::new());
        let consumer_signal = Arc::new(WakeSignal::new());
        let abort = Arc::new(AtomicBool::new(false));
        let (mut tx, mut rx) = channel::<u64, R>(
            2,
            producer_signal.clone(),
            consumer_signal.clone(),
            abort,
            WaitPolicy::default(),
        );
        let producer = std::thread::spawn(move || {
            producer_signal.register_current();
            for i in 0..10_000u64 {
                tx.send(Event::Record(i)).unwrap();
                if i % 7 == 0 {
                    tx.flush();
                }
            }
            tx.send(Event::End).unwrap();
        });
        consumer_signal.register_current();
        let mut expected = 0u64;
        let mut backoff = Backoff::new(WaitPolicy::default());
        loop {
            match rx.try_recv() {
                Some(Event::Record(i)) => {
                    assert_eq!(i, expected);
                    expected += 1;
                    rx.flush();
                    backoff.reset();
                }
                Some(Event::End) => break,
                Some(other) => panic!("unexpected {other:?}"),
                None => {
                    rx.flush();
                    wait::wait_until(
                        &consumer_signal,
                        &mut backoff,
                        None,
                        || rx.is_ready(),
                        || {},
                    );
                }
            }
        }
        assert_eq!(expected, 10_000);
        producer.join().unwrap();
    }

    #[test]
    fn order_and_backpressure_on_rtrb() {
        blocking_transfer::<RtrbRing>();
    }

    #[test]
    fn order_and_backpressure_on_model_ring() {
        blocking_transfer::<ModelRing>();
    }

    fn publishing_is_batched_and_bounded<R: Ring<Event<u64>>>() {
        let ((mut tx, mut rx), _abort) = pair::<R>(4);
        tx.send(Event::Record(1)).unwrap();
        assert_eq!(
            rx.queued(),
            1,
            "the first event after a flush goes out at once"
        );
        tx.send(Event::Record(2)).unwrap();
        assert_eq!(rx.queued(), 1, "the ones after it are staged");
        tx.flush();
        assert_eq!(rx.queued(), 2, "and published at the flush");
        assert_eq!(rx.try_recv(), Some(Event::Record(1)));
        // The sender saw 2 free slots at its last look (4 less the 2 it published).
        tx.send(Event::Record(3)).unwrap();
        tx.send(Event::Record(4)).unwrap();
        assert_eq!((tx.queued(), rx.queued()), (3, 2));
        // Record 5 finds the stage at the room last seen: record 4 is published, the ring
        // looked at again (the pop freed a slot), and record 5 staged. In flight: 4, the
        // capacity.
        tx.send(Event::Record(5)).unwrap();
        assert_eq!((tx.queued(), rx.queued()), (4, 3));
        let mut seen = Vec::new();
        let handed = rx.recv_chunk(2, |event| {
            seen.push(event);
            ControlFlow::Continue(())
        });
        assert_eq!(handed, 2);
        assert_eq!(seen, [Event::Record(2), Event::Record(3)]);
        tx.send(Event::End).unwrap();
        drop(tx);
        // Dropping the sender published what it had staged.
        let mut rest = Vec::new();
        rx.recv_chunk(usize::MAX, |event| {
            rest.push(event);
            ControlFlow::Continue(())
        });
        assert_eq!(rest, [Event::Record(4), Event::Record(5), Event::End]);
        assert!(rx.is_disconnected());
    }

    #[test]
    fn publishing_is_batched_and_bounded_on_rtrb() {
        publishing_is_batched_and_bounded::<RtrbRing>();
    }

    #[test]
    fn publishing_is_batched_and_bounded_on_model_ring() {
        publishing_is_batched_and_bounded::<ModelRing>();
    }

    #[test]
    fn a_break_leaves_the_rest_of_the_chunk_in_the_ring() {
        let ((mut tx, mut rx), _abort) = pair::<RtrbRing>(8);
        for event in [
            Event::Record(1),
            Event::Marker(crate::Epoch(1)),
            Event::Record(2),
        ] {
            tx.send(event).unwrap();
        }
        tx.flush();
        let handed = rx.recv_chunk(8, |event| match event {
            Event::Record(_) => ControlFlow::Continue(()),
            _ => ControlFlow::Break(()),
        });
        assert_eq!(handed, 2);
        assert_eq!(rx.queued(), 1);
        assert_eq!(rx.try_recv(), Some(Event::Record(2)));
    }

    #[test]
    fn send_to_a_dropped_receiver_hands_the_event_back() {
        let ((mut tx, rx), _abort) = pair::<RtrbRing>(1);
        tx.send(Event::Record(1)).unwrap();
        drop(rx);
        assert_eq!(
            tx.send(Event::Record(2)),
            Err(SendError::Disconnected(Event::Record(2)))
        );
    }

    #[test]
    fn abort_ends_a_blocked_send() {
        let ((mut tx, _rx), abort) = pair::<RtrbRing>(1);
        tx.send(Event::Record(1)).unwrap();
        abort.store(true, Ordering::Release);
        assert_eq!(
            tx.send(Event::Record(2)).map_err(SendError::into_inner),
            Err(Event::Record(2))
        );
    }
}
