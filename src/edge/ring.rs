//! The ring contract an edge is written against, and its `rtrb` implementation.
//!
//! An edge is generic over its ring so that the same edge code runs on `rtrb` in
//! production and on [`ModelRing`](super::model_ring::ModelRing) under loom, which cannot
//! see inside `rtrb`.

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
/// Contract: a successful `try_push` publishes the item with release ordering, so a
/// consumer that observes it (acquire) also observes everything written before the push.
pub trait RingProducer<T>: Send {
    /// Pushes `item`, or hands it back if the ring is full.
    ///
    /// # Errors
    ///
    /// Returns the item unchanged when no slot is free.
    fn try_push(&mut self, item: T) -> Result<(), T>;
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
    fn len(&self) -> usize {
        self.slots()
    }

    #[inline]
    fn is_abandoned(&self) -> bool {
        rtrb::Consumer::is_abandoned(self)
    }
}
