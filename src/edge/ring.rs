//! The ring contract an edge is written against, and its `rtrb` implementation.
//!
//! An edge is generic over its ring so that the same edge code runs on `rtrb` in
//! production and on [`ModelRing`](super::model_ring::ModelRing) under loom, which cannot
//! see inside `rtrb`.
//!
//! Besides single pushes and pops the contract has batched forms, which publish many items
//! with one index store: [`RingProducer::push_all`] (rtrb's `write_chunk_uninit` +
//! `fill_from_iter`) and [`RingConsumer::pop_each`] (rtrb's `read_chunk` + `into_iter`). A
//! store of an index that the other side reads moves a cache line between cores; one per
//! batch instead of one per item is what keeps a two-thread pipeline out of the
//! line-bouncing regime (BENCHMARKS.md, "Edge batching").

use std::ops::ControlFlow;

/// Creates single-producer single-consumer rings of one kind.
pub trait Ring<T> {
    /// The writing half.
    type Producer: RingProducer<T>;
    /// The reading half.
    type Consumer: RingConsumer<T>;

    /// A ring holding at most `capacity` items (`capacity > 0`).
    fn with_capacity(capacity: usize) -> (Self::Producer, Self::Consumer);
}

/// The writing half of an SPSC ring.
///
/// Contract: a successful `try_push` or `push_all` publishes its items with release
/// ordering, so a consumer that observes them (acquire) also observes everything written
/// before the push.
pub trait RingProducer<T>: Send {
    /// Pushes `item`, or hands it back if the ring is full.
    ///
    /// # Errors
    ///
    /// Returns the item unchanged when no slot is free.
    fn try_push(&mut self, item: T) -> Result<(), T>;
    /// Moves every item of `items` into the ring, oldest first, and publishes them together
    /// with one release store of the write index; `items` is left empty.
    ///
    /// # Panics
    ///
    /// If `items` holds more than [`free`](Self::free) reported (the caller stages at most
    /// that many).
    fn push_all(&mut self, items: &mut Vec<T>);
    /// Free slots: at least `want` read from this half's cached view of the consumer's
    /// index when that view already shows them, otherwise the exact count from an acquire
    /// read of that index. Only the consumer frees slots, so the count can only be
    /// exceeded later, never fall short.
    fn free(&self, want: usize) -> usize;
    /// `true` if no slot is free right now (an acquire read of the consumer's index).
    fn is_full(&self) -> bool;
    /// `true` once the consumer half has been dropped.
    fn is_abandoned(&self) -> bool;
    /// Items currently queued (an estimate while the consumer runs).
    fn len(&self) -> usize;
    /// `true` if nothing is queued right now.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The reading half of an SPSC ring.
pub trait RingConsumer<T>: Send {
    /// Pops the oldest item, if any.
    fn try_pop(&mut self) -> Option<T>;
    /// Hands up to `max` ready items, oldest first, to `handle`, until it returns
    /// [`ControlFlow::Break`]; then frees the slots of the items handed out (the one that
    /// broke included) with one release store of the read index. Items not handed out stay
    /// in the ring. Returns how many were handed out. If `handle` panics, the items handed
    /// out so far are freed all the same.
    fn pop_each(&mut self, max: usize, handle: impl FnMut(T) -> ControlFlow<()>) -> usize;
    /// Items ready to pop right now (an acquire read of the producer's index).
    fn len(&self) -> usize;
    /// `true` if nothing is ready to pop right now.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `true` once the producer half has been dropped.
    fn is_abandoned(&self) -> bool;
}

/// The production ring: [`rtrb::RingBuffer`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RtrbRing;

impl<T: Send> Ring<T> for RtrbRing {
    type Producer = rtrb::Producer<T>;
    type Consumer = rtrb::Consumer<T>;

    fn with_capacity(capacity: usize) -> (Self::Producer, Self::Consumer) {
        rtrb::RingBuffer::new(capacity)
    }
}

impl<T: Send> RingProducer<T> for rtrb::Producer<T> {
    #[inline]
    fn try_push(&mut self, item: T) -> Result<(), T> {
        self.push(item).map_err(|rtrb::PushError::Full(item)| item)
    }

    #[inline]
    fn push_all(&mut self, items: &mut Vec<T>) {
        let n = items.len();
        if n == 0 {
            return;
        }
        let chunk = self
            .write_chunk_uninit(n)
            .expect("push_all: more items than free slots");
        // `fill_from_iter` writes the `n` items and commits them with one store.
        let written = chunk.fill_from_iter(items.drain(..));
        debug_assert_eq!(written, n);
    }

    #[inline]
    fn free(&self, want: usize) -> usize {
        let cached = self.cached_slots();
        if cached >= want {
            cached
        } else {
            self.slots()
        }
    }

    #[inline]
    fn is_full(&self) -> bool {
        rtrb::Producer::is_full(self)
    }

    #[inline]
    fn is_abandoned(&self) -> bool {
        rtrb::Producer::is_abandoned(self)
    }

    #[inline]
    fn len(&self) -> usize {
        self.buffer().capacity() - self.slots()
    }
}

impl<T: Send> RingConsumer<T> for rtrb::Consumer<T> {
    #[inline]
    fn try_pop(&mut self) -> Option<T> {
        self.pop().ok()
    }

    #[inline]
    fn pop_each(&mut self, max: usize, mut handle: impl FnMut(T) -> ControlFlow<()>) -> usize {
        // The cached view of the producer's index first; its line is read only when that
        // view holds fewer than `max`.
        let cached = self.cached_slots();
        let n = if cached >= max {
            max
        } else {
            self.slots().min(max)
        };
        if n == 0 {
            return 0;
        }
        let Ok(chunk) = self.read_chunk(n) else {
            unreachable!("{n} items were ready");
        };
        // The iterator commits, on drop (unwinding included), exactly the items it yielded.
        let mut items = chunk.into_iter();
        let mut handed = 0;
        for item in &mut items {
            handed += 1;
            if handle(item).is_break() {
                break;
            }
        }
        handed
    }

    #[inline]
    fn len(&self) -> usize {
        self.slots()
    }

    #[inline]
    fn is_abandoned(&self) -> bool {
        rtrb::Consumer::is_abandoned(self)
    }
}
