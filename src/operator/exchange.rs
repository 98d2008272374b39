//! The ends of a thread's chain that feed other threads: forward (one edge), broadcast
//! (fan-out: every edge gets every record) and keyed exchange (each record goes to the
//! edge its key hashes to; control signals go to every edge).

use crate::edge::{EdgeSender, Event, SendError};
use crate::error::Error;
use crate::event::Signal;
use crate::runtime::{Downstream, RunControl};
use crate::sync::Arc;
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// Sends on `sender`, turning a lost consumer into a query failure. An abort needs no
/// report: the query is already ending.
#[inline]
fn send<T: Send>(sender: &mut EdgeSender<T>, event: Event<T>, control: &RunControl, name: &str) {
    if let Err(SendError::Disconnected(_)) = sender.send(event) {
        if !control.is_aborted() {
            control.fail(Error::Disconnected {
                operator: name.to_string(),
                peer: "downstream",
            });
        }
    }
}

/// The chain ends in one edge (a thread boundary or a union input).
pub(crate) struct ForwardOut<T: Send> {
    pub(crate) sender: EdgeSender<T>,
    pub(crate) control: Arc<RunControl>,
    pub(crate) name: std::sync::Arc<str>,
}

impl<T: Send> Downstream<T> for ForwardOut<T> {
    #[inline(always)]
    fn push(&mut self, record: T) {
        send(
            &mut self.sender,
            Event::Record(record),
            &self.control,
            &self.name,
        );
    }
    fn signal(&mut self, signal: Signal) {
        send(&mut self.sender, signal.into(), &self.control, &self.name);
        self.sender.flush();
    }
    #[inline]
    fn flush(&mut self) {
        self.sender.flush();
    }
}

/// Tags each record on its way into `inner` (a two-input operator's input edges carry
/// its left and right records as one type).
pub(crate) struct Tagged<D, G> {
    pub(crate) inner: D,
    pub(crate) tag: G,
}

impl<T, W, D, G> Downstream<T> for Tagged<D, G>
where
    D: Downstream<W>,
    G: FnMut(T) -> W,
{
    #[inline(always)]
    fn push(&mut self, record: T) {
        self.inner.push((self.tag)(record));
    }
    fn signal(&mut self, signal: Signal) {
        self.inner.signal(signal);
    }
    #[inline]
    fn flush(&mut self) {
        self.inner.flush();
    }
}

/// The chain ends in several edges that each receive every record (fan-out).
pub(crate) struct BroadcastOut<T: Send> {
    pub(crate) senders: Vec<EdgeSender<T>>,
    pub(crate) control: Arc<RunControl>,
    pub(crate) name: std::sync::Arc<str>,
}

impl<T: Clone + Send> Downstream<T> for BroadcastOut<T> {
    #[inline]
    fn push(&mut self, record: T) {
        if let Some((last, rest)) = self.senders.split_last_mut() {
            for sender in rest {
                send(
                    sender,
                    Event::Record(record.clone()),
                    &self.control,
                    &self.name,
                );
            }
            send(last, Event::Record(record), &self.control, &self.name);
        }
    }
    fn signal(&mut self, signal: Signal) {
        for sender in &mut self.senders {
            send(sender, signal.into(), &self.control, &self.name);
        }
        // Control events are rare and every target must see them promptly (an aligned
        // downstream waits for the marker on all of its inputs): announce them now.
        self.flush();
    }
    #[inline]
    fn flush(&mut self) {
        for sender in &mut self.senders {
            sender.flush();
        }
    }
}

/// The instance of `0..partitions` that owns `key`. Deterministic across runs and
/// processes (a fixed hash, not std's random one), so restored state meets its keys again.
#[inline]
pub fn partition_of<K: Hash + ?Sized>(key: &K, partitions: usize) -> usize {
    let mut hasher = FxHasher::default();
    key.hash(&mut hasher);
    // Multiply-shift: maps the hash onto 0..partitions using its high bits, which are the
    // well-mixed ones for FxHash.
    ((u128::from(hasher.finish()) * partitions as u128) >> 64) as usize
}

/// The chain ends in a keyed exchange: record `r` goes to instance
/// `partition_of(key(&r), n)` as `wrap(key, r)`: `(key, r)` for a keyed aggregate's
/// input, tagged with its side for a keyed two-input operator's.
pub(crate) struct ExchangeOut<K, W: Send, F, G> {
    pub(crate) senders: Vec<EdgeSender<W>>,
    pub(crate) key: F,
    pub(crate) wrap: G,
    pub(crate) control: Arc<RunControl>,
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) _key: std::marker::PhantomData<fn() -> K>,
}

impl<K, T, W, F, G> Downstream<T> for ExchangeOut<K, W, F, G>
where
    K: Hash,
    W: Send,
    F: FnMut(&T) -> K,
    G: FnMut(K, T) -> W,
{
    #[inline]
    fn push(&mut self, record: T) {
        // The key function is user code: a panic in it names `key_by`, not the operator
        // before it.
        let key_fn = &mut self.key;
        let key = match catch_unwind(AssertUnwindSafe(|| key_fn(&record))) {
            Ok(key) => key,
            Err(payload) => {
                self.control
                    .fail(Error::from_panic(&self.name, payload.as_ref()));
                resume_unwind(payload)
            }
        };
        let target = partition_of(&key, self.senders.len());
        send(
            &mut self.senders[target],
            Event::Record((self.wrap)(key, record)),
            &self.control,
            &self.name,
        );
    }
    fn signal(&mut self, signal: Signal) {
        for sender in &mut self.senders {
            send(sender, signal.into(), &self.control, &self.name);
        }
        // Control events are rare and every target must see them promptly (an aligned
        // downstream waits for the marker on all of its inputs): announce them now.
        self.flush();
    }
    #[inline]
    fn flush(&mut self) {
        for sender in &mut self.senders {
            sender.flush();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::partition_of;

    #[test]
    fn partitions_are_stable_and_spread() {
        let mut counts = [0usize; 4];
        for key in 0..10_000u64 {
            let p = partition_of(&key, 4);
            assert_eq!(p, partition_of(&key, 4));
            counts[p] += 1;
        }
        for count in counts {
            assert!((2_000..3_000).contains(&count), "skewed: {counts:?}");
        }
        assert_eq!(partition_of(&"any", 1), 0);
    }
}
