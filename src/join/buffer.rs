//! One side's join state: the rows of each key in event-time order, and an index that
//! finds the rows a state watermark evicts without walking every key (the role of Spark's
//! `SymmetricHashJoinStateManager` for one side).

use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, VecDeque};
use std::hash::Hash;

/// A buffered row: its event time, whether it has matched a row of the other side (outer
/// joins emit the ones that never did), and the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Row<T> {
    pub(crate) time: i64,
    pub(crate) matched: bool,
    pub(crate) value: T,
}

/// The rows of one key, ordered by time.
#[derive(Debug)]
struct KeyRows<K, T> {
    key: K,
    rows: VecDeque<Row<T>>,
    /// The time of this slot's live entry in the eviction queue (`i64::MAX`: none).
    queued_at: i64,
}

/// Rows per key in time order, with eviction by time.
///
/// Keys live in slots; the eviction queue holds `(time, slot)` entries, at most one live
/// entry per slot, at a time no later than the slot's earliest row. Evicting up to `t`
/// pops the entries at or before `t`, takes each slot's rows up to `t` off its front and
/// requeues the slot at its new earliest row, so the cost is the rows evicted plus the
/// keys touched, not the size of the state. An entry is stale (skipped) when its slot has
/// been requeued at another time or freed; a freed slot reused by another key may meet a
/// stale entry, which is harmless: evicting rows up to `t` is right for any key.
#[derive(Debug)]
pub(crate) struct SideBuffer<K, T> {
    index: FxHashMap<K, usize>,
    slots: Vec<Option<KeyRows<K, T>>>,
    free: Vec<usize>,
    queue: BinaryHeap<Reverse<(i64, usize)>>,
    rows: usize,
}

impl<K, T> Default for SideBuffer<K, T> {
    fn default() -> Self {
        SideBuffer {
            index: FxHashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            queue: BinaryHeap::new(),
            rows: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, T> SideBuffer<K, T> {
    /// The number of buffered rows.
    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    /// The number of keys with buffered rows.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> usize {
        self.index.len()
    }

    /// Adds a row of `key`.
    pub(crate) fn insert(&mut self, key: &K, row: Row<T>) {
        let slot = match self.index.get(key) {
            Some(&slot) => slot,
            None => {
                let entry = KeyRows {
                    key: key.clone(),
                    rows: VecDeque::new(),
                    queued_at: i64::MAX,
                };
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.slots[slot] = Some(entry);
                        slot
                    }
                    None => {
                        self.slots.push(Some(entry));
                        self.slots.len() - 1
                    }
                };
                self.index.insert(key.clone(), slot);
                slot
            }
        };
        let entry = self.slots[slot].as_mut().expect("indexed slots are live");
        let time = row.time;
        match entry.rows.back() {
            Some(last) if last.time > time => {
                let at = entry.rows.partition_point(|r| r.time <= time);
                entry.rows.insert(at, row);
            }
            _ => entry.rows.push_back(row),
        }
        if time < entry.queued_at {
            entry.queued_at = time;
            self.queue.push(Reverse((time, slot)));
        }
        self.rows += 1;
    }

    /// Calls `f` on each row of `key` whose time is in `[lo, hi]`, in time order.
    #[inline]
    pub(crate) fn for_each_in<F: FnMut(&mut Row<T>)>(
        &mut self,
        key: &K,
        lo: i64,
        hi: i64,
        mut f: F,
    ) {
        let Some(&slot) = self.index.get(key) else {
            return;
        };
        let rows = &mut self.slots[slot]
            .as_mut()
            .expect("indexed slots are live")
            .rows;
        let start = if rows.front().is_some_and(|r| r.time >= lo) {
            0
        } else {
            rows.partition_point(|r| r.time < lo)
        };
        for row in rows.range_mut(start..) {
            if row.time > hi {
                break;
            }
            f(row);
        }
    }

    /// Removes every row at or before `time`, handing each to `f` with its key.
    pub(crate) fn evict_until<F: FnMut(&K, Row<T>)>(&mut self, time: i64, mut f: F) {
        while let Some(mut top) = self.queue.peek_mut() {
            let Reverse((at, slot)) = *top;
            if at > time {
                break;
            }
            let Some(entry) = self.slots[slot].as_mut().filter(|e| e.queued_at == at) else {
                // Stale: the slot was freed or requeued since.
                PeekMut::pop(top);
                continue;
            };
            while entry.rows.front().is_some_and(|r| r.time <= time) {
                let row = entry.rows.pop_front().expect("checked");
                self.rows -= 1;
                f(&entry.key, row);
            }
            match entry.rows.front() {
                Some(first) => {
                    // Requeued in place: one sift down instead of a pop and a push.
                    entry.queued_at = first.time;
                    *top = Reverse((first.time, slot));
                }
                None => {
                    PeekMut::pop(top);
                    let entry = self.slots[slot].take().expect("checked");
                    self.index.remove(&entry.key);
                    self.free.push(slot);
                }
            }
        }
    }

    /// Every key's rows, for a snapshot.
    pub(crate) fn snapshot(&self) -> BufferSnapshotRef<'_, K, T> {
        BufferSnapshotRef {
            keys: self
                .slots
                .iter()
                .flatten()
                .map(|entry| (&entry.key, &entry.rows))
                .collect(),
        }
    }

    /// The buffer a snapshot describes.
    pub(crate) fn from_snapshot(snapshot: BufferSnapshot<K, T>) -> Self {
        let mut buffer = SideBuffer::default();
        for (key, rows) in snapshot.keys {
            for row in rows {
                buffer.insert(&key, row);
            }
        }
        buffer
    }
}

/// A side's state as it is checkpointed (borrowed from the buffer).
#[derive(Debug, Serialize)]
#[serde(bound(serialize = "K: Serialize, T: Serialize"))]
pub(crate) struct BufferSnapshotRef<'a, K, T> {
    keys: Vec<(&'a K, &'a VecDeque<Row<T>>)>,
}

/// A side's state as it is restored.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "K: DeserializeOwned, T: DeserializeOwned"))]
pub(crate) struct BufferSnapshot<K, T> {
    keys: Vec<(K, VecDeque<Row<T>>)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::codec;

    /// A deterministic stream of pseudo-random numbers (splitmix64).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    fn row(time: i64, value: u32) -> Row<u32> {
        Row {
            time,
            matched: false,
            value,
        }
    }

    /// The buffer against a plain list of (key, time, value): inserts in random order,
    /// range lookups and evictions interleaved, and a snapshot round trip on the way.
    #[test]
    fn behaves_as_a_list_filtered_by_time() {
        let mut rng = Rng(7);
        let mut buffer: SideBuffer<u8, u32> = SideBuffer::default();
        let mut reference: Vec<(u8, i64, u32)> = Vec::new();
        let mut evicted_to = i64::MIN;
        for step in 0..5_000u32 {
            match rng.next() % 10 {
                0..=5 => {
                    let key = (rng.next() % 13) as u8;
                    let time = evicted_to.max(0) + 1 + (rng.next() % 50) as i64;
                    buffer.insert(&key, row(time, step));
                    reference.push((key, time, step));
                }
                6..=7 => {
                    let key = (rng.next() % 13) as u8;
                    let lo = evicted_to.max(0) + (rng.next() % 60) as i64;
                    let hi = lo + (rng.next() % 30) as i64;
                    let mut seen = Vec::new();
                    buffer.for_each_in(&key, lo, hi, |r| seen.push((r.time, r.value)));
                    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
                    seen.sort_unstable();
                    let mut expected: Vec<(i64, u32)> = reference
                        .iter()
                        .filter(|(k, t, _)| *k == key && lo <= *t && *t <= hi)
                        .map(|(_, t, v)| (*t, *v))
                        .collect();
                    expected.sort_unstable();
                    assert_eq!(seen, expected, "step {step}");
                }
                8 => {
                    let until = evicted_to.max(0) + (rng.next() % 20) as i64;
                    let mut out = Vec::new();
                    buffer.evict_until(until, |k, r| out.push((*k, r.time, r.value)));
                    out.sort_unstable();
                    let mut expected: Vec<_> = reference
                        .iter()
                        .copied()
                        .filter(|(_, t, _)| *t <= until)
                        .collect();
                    expected.sort_unstable();
                    assert_eq!(out, expected, "step {step}");
                    reference.retain(|(_, t, _)| *t > until);
                    evicted_to = evicted_to.max(until);
                }
                _ => {
                    let bytes = codec::encode(&buffer.snapshot()).unwrap();
                    buffer = SideBuffer::from_snapshot(codec::decode(&bytes).unwrap());
                }
            }
            assert_eq!(buffer.len(), reference.len());
            let keys: std::collections::BTreeSet<u8> = reference.iter().map(|r| r.0).collect();
            assert_eq!(buffer.keys(), keys.len(), "emptied keys are dropped");
        }
        // The queue holds about one live entry per key, not one per row.
        assert!(
            buffer.queue.len() <= 4 * buffer.keys() + 64,
            "{}",
            buffer.queue.len()
        );
    }

    #[test]
    fn rows_arriving_out_of_order_are_found_and_evicted() {
        let mut buffer: SideBuffer<&str, u32> = SideBuffer::default();
        buffer.insert(&"a", row(10, 1));
        buffer.insert(&"a", row(5, 2));
        buffer.insert(&"a", row(7, 3));
        let mut seen = Vec::new();
        buffer.for_each_in(&"a", 6, 10, |r| seen.push(r.value));
        assert_eq!(seen, [3, 1]);
        let mut out = Vec::new();
        buffer.evict_until(6, |_, r| out.push(r.value));
        assert_eq!(out, [2]);
        buffer.evict_until(10, |_, r| out.push(r.value));
        assert_eq!(out, [2, 3, 1]);
        assert_eq!((buffer.len(), buffer.keys()), (0, 0));
    }
}
