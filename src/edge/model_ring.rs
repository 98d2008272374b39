//! A small SPSC ring built on the [`sync`](crate::sync) shim, with the same contract as
//! `rtrb`: a push publishes its slot with a release store of the write index, a pop
//! observes it with an acquire load; `push_all` and `pop_each` write or read a batch of
//! slots with one store of the index, as rtrb's chunks do (here plain loops).
//!
//! It exists so that loom can check the edge protocol: loom explores interleavings only of
//! operations that go through its own atomics and cells, and `rtrb` uses std's. Under loom
//! the slots are loom `UnsafeCell`s, so loom also checks that producer and consumer never
//! touch the same slot at once. It is correct but not tuned (no cached indices, no
//! padding); production edges use `rtrb`.

use super::ring::{Ring, RingConsumer, RingProducer};
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::{Arc, UnsafeCell};
use std::mem::MaybeUninit;
use std::ops::ControlFlow;

/// Creates [`ModelProducer`]/[`ModelConsumer`] pairs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ModelRing;

struct Shared<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    /// Index of the next slot to read; written only by the consumer. Counts up without
    /// wrapping; the slot is `index % capacity`.
    head: AtomicUsize,
    /// Index of the next slot to write; written only by the producer.
    tail: AtomicUsize,
    producer_gone: AtomicBool,
    consumer_gone: AtomicBool,
}

// SAFETY: the ring moves `T`s between exactly two threads (the producer and consumer halves
// are not `Clone` and not `Sync`), and a slot is accessed by one side at a time: the
// producer writes slot `tail` only while `tail - head < capacity` (the consumer is done with
// it, acquire on `head`), and the consumer reads slot `head` only while `head < tail` (the
// producer published it, acquire on `tail`). So sharing `Shared<T>` needs only `T: Send`.
unsafe impl<T: Send> Sync for Shared<T> {}
// SAFETY: as above; the `T`s inside are owned by the ring and moved out at most once.
unsafe impl<T: Send> Send for Shared<T> {}

/// The writing half of a [`ModelRing`].
pub struct ModelProducer<T> {
    shared: Arc<Shared<T>>,
}

/// The reading half of a [`ModelRing`].
pub struct ModelConsumer<T> {
    shared: Arc<Shared<T>>,
}

impl<T> std::fmt::Debug for ModelProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelProducer").finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for ModelConsumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelConsumer").finish_non_exhaustive()
    }
}

impl<T: Send> Ring<T> for ModelRing {
    type Producer = ModelProducer<T>;
    type Consumer = ModelConsumer<T>;

    fn with_capacity(capacity: usize) -> (ModelProducer<T>, ModelConsumer<T>) {
        assert!(capacity > 0, "ring capacity must be at least 1");
        let slots = (0..capacity)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect();
        let shared = Arc::new(Shared {
            slots,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            producer_gone: AtomicBool::new(false),
            consumer_gone: AtomicBool::new(false),
        });
        (
            ModelProducer {
                shared: shared.clone(),
            },
            ModelConsumer { shared },
        )
    }
}

impl<T> Shared<T> {
    fn capacity(&self) -> usize {
        self.slots.len()
    }
}

impl<T: Send> RingProducer<T> for ModelProducer<T> {
    fn try_push(&mut self, item: T) -> Result<(), T> {
        let shared = &*self.shared;
        // Only this half writes `tail`, so a relaxed read sees its own last write.
        let tail = shared.tail.load(Ordering::Relaxed);
        let head = shared.head.load(Ordering::Acquire);
        if tail - head == shared.capacity() {
            return Err(item);
        }
        let slot = &shared.slots[tail % shared.capacity()];
        // SAFETY: `tail - head < capacity`, so the consumer has finished with this slot
        // (its release store of `head` past it happened before our acquire load), and it
        // will not read it until our release store of `tail` below publishes it.
        slot.with_mut(|cell| unsafe { (*cell).write(item) });
        shared.tail.store(tail + 1, Ordering::Release);
        Ok(())
    }

    fn push_all(&mut self, items: &mut Vec<T>) {
        if items.is_empty() {
            return;
        }
        let shared = &*self.shared;
        let tail = shared.tail.load(Ordering::Relaxed);
        let head = shared.head.load(Ordering::Acquire);
        assert!(
            items.len() <= shared.capacity() - (tail - head),
            "push_all: more items than free slots"
        );
        let mut index = tail;
        for item in items.drain(..) {
            let slot = &shared.slots[index % shared.capacity()];
            // SAFETY: `index - head < capacity` (the assertion above), so the consumer has
            // finished with this slot (its release store of `head` past it happened before
            // our acquire load), and it will not read it until our release store of `tail`
            // below publishes it.
            slot.with_mut(|cell| unsafe { (*cell).write(item) });
            index += 1;
        }
        // One store publishes the whole batch.
        shared.tail.store(index, Ordering::Release);
    }

    fn free(&self, _want: usize) -> usize {
        // No cached index here: always the exact count.
        let shared = &*self.shared;
        shared.capacity()
            - (shared.tail.load(Ordering::Relaxed) - shared.head.load(Ordering::Acquire))
    }

    fn is_full(&self) -> bool {
        let shared = &*self.shared;
        let tail = shared.tail.load(Ordering::Relaxed);
        tail - shared.head.load(Ordering::Acquire) == shared.capacity()
    }

    fn is_abandoned(&self) -> bool {
        self.shared.consumer_gone.load(Ordering::Acquire)
    }

    fn len(&self) -> usize {
        let shared = &*self.shared;
        shared.tail.load(Ordering::Relaxed) - shared.head.load(Ordering::Acquire)
    }
}

impl<T: Send> RingConsumer<T> for ModelConsumer<T> {
    fn try_pop(&mut self) -> Option<T> {
        let shared = &*self.shared;
        let head = shared.head.load(Ordering::Relaxed);
        let tail = shared.tail.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        let slot = &shared.slots[head % shared.capacity()];
        // SAFETY: `head < tail`: the producer initialised this slot before its release
        // store of `tail`, which our acquire load observed; it will not write the slot
        // again until our release store of `head` below frees it. We move the value out
        // exactly once.
        let item = slot.with(|cell| unsafe { (*cell).assume_init_read() });
        shared.head.store(head + 1, Ordering::Release);
        Some(item)
    }

    fn pop_each(&mut self, max: usize, mut handle: impl FnMut(T) -> ControlFlow<()>) -> usize {
        let shared = &*self.shared;
        let head = shared.head.load(Ordering::Relaxed);
        let ready = (shared.tail.load(Ordering::Acquire) - head).min(max);
        if ready == 0 {
            return 0;
        }
        // Frees the slots read so far with one release store of `head`, also when `handle`
        // unwinds (a slot whose item was moved out must never be read or dropped again).
        struct Commit<'a> {
            head: &'a AtomicUsize,
            start: usize,
            taken: usize,
        }
        impl Drop for Commit<'_> {
            fn drop(&mut self) {
                self.head.store(self.start + self.taken, Ordering::Release);
            }
        }
        let mut commit = Commit {
            head: &shared.head,
            start: head,
            taken: 0,
        };
        while commit.taken < ready {
            let slot = &shared.slots[(head + commit.taken) % shared.capacity()];
            // SAFETY: `head + taken < tail`: the producer initialised this slot before its
            // release store of `tail`, which our acquire load observed; it will not write
            // the slot again until `commit`'s release store of `head` frees it. Counting
            // the item as taken before `handle` runs makes sure it is moved out once.
            let item = slot.with(|cell| unsafe { (*cell).assume_init_read() });
            commit.taken += 1;
            if handle(item).is_break() {
                break;
            }
        }
        commit.taken
    }

    fn len(&self) -> usize {
        let shared = &*self.shared;
        shared.tail.load(Ordering::Acquire) - shared.head.load(Ordering::Relaxed)
    }

    fn is_abandoned(&self) -> bool {
        self.shared.producer_gone.load(Ordering::Acquire)
    }
}

impl<T> Drop for ModelProducer<T> {
    fn drop(&mut self) {
        self.shared.producer_gone.store(true, Ordering::Release);
    }
}

impl<T> Drop for ModelConsumer<T> {
    fn drop(&mut self) {
        self.shared.consumer_gone.store(true, Ordering::Release);
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both halves are gone (this is the last `Arc`), so plain reads are exclusive.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        for index in head..tail {
            let slot = &self.slots[index % self.capacity()];
            // SAFETY: slots in `head..tail` were written and never read; we own them now.
            slot.with_mut(|cell| unsafe { (*cell).assume_init_drop() });
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_full_and_abandoned() {
        let (mut p, mut c) = <ModelRing as Ring<u32>>::with_capacity(2);
        assert!(p.try_push(1).is_ok());
        assert!(p.try_push(2).is_ok());
        assert_eq!(p.try_push(3), Err(3));
        assert!(p.is_full());
        assert_eq!(c.len(), 2);
        assert_eq!(c.try_pop(), Some(1));
        assert!(p.try_push(3).is_ok());
        assert_eq!(c.try_pop(), Some(2));
        assert_eq!(c.try_pop(), Some(3));
        assert_eq!(c.try_pop(), None);
        drop(p);
        assert!(c.is_abandoned());
    }

    #[test]
    fn batches_publish_and_free_together() {
        let (mut p, mut c) = <ModelRing as Ring<u32>>::with_capacity(4);
        assert_eq!(p.free(1), 4);
        let mut staged = vec![1, 2, 3];
        p.push_all(&mut staged);
        assert!(staged.is_empty());
        assert_eq!(p.free(1), 1);
        let mut seen = Vec::new();
        let handed = c.pop_each(8, |item| {
            seen.push(item);
            if item == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!((handed, seen.as_slice()), (2, &[1, 2][..]));
        assert_eq!(c.len(), 1, "the item after the break stays in the ring");
        p.push_all(&mut vec![4, 5, 6]);
        let mut rest = Vec::new();
        assert_eq!(
            c.pop_each(2, |item| {
                rest.push(item);
                ControlFlow::Continue(())
            }),
            2
        );
        assert_eq!(
            c.pop_each(8, |item| {
                rest.push(item);
                ControlFlow::Continue(())
            }),
            2
        );
        assert_eq!(rest, [3, 4, 5, 6]);
        assert_eq!(c.pop_each(8, |_| ControlFlow::Continue(())), 0);
    }

    #[test]
    #[should_panic(expected = "more items than free slots")]
    fn push_all_refuses_to_overrun() {
        let (mut p, _c) = <ModelRing as Ring<u32>>::with_capacity(2);
        p.push_all(&mut vec![1, 2, 3]);
    }

    #[test]
    fn drops_unread_items() {
        let marker = std::sync::Arc::new(());
        let (mut p, c) = <ModelRing as Ring<std::sync::Arc<()>>>::with_capacity(4);
        p.try_push(marker.clone()).unwrap();
        p.try_push(marker.clone()).unwrap();
        drop((p, c));
        assert_eq!(std::sync::Arc::strong_count(&marker), 1);
    }
}
