//! Timers: points in event time or processing time at which an operator asked to be
//! called back, per key.
//!
//! A [`TimerService`] is a pure data structure. It never reads a clock or a watermark
//! itself: the runtime passes the current watermark to
//! [`pop_event_time`](TimerService::pop_event_time) and the current wall-clock time to
//! [`pop_processing_time`](TimerService::pop_processing_time), and calls the operator
//! for each timer popped. Popping removes the timer, so each fires exactly once.
//!
//! A watermark `W` means that no record with event time `< W` will arrive (Spark's
//! lateness rule, see [`Event::Watermark`](crate::event::Event::Watermark)), so an
//! event-time timer at `t` fires once `W >= t`. A record at exactly `t` may still arrive
//! after that; an operator that must have seen every record up to and including `t`
//! registers its timer at `t + 1`. A processing-time timer at `t` fires once the clock
//! reads `>= t`. Within a domain, timers fire in `(time, key)` order. Registering a timer
//! at or before the current watermark (or clock) is allowed: it fires at the next pop.
//!
//! Operators do not hold a service themselves: each stage owns one, keyed by the
//! operator's [`Key`](super::Operator::Key), registers and deletes through the
//! [`Context`](super::Context), and fires through [`on_timer`](super::Operator::on_timer).
//! The service serializes with serde: the stage checkpoints it beside the operator's own
//! state, and a restored service fires exactly the timers the snapshotted one would have.
//!
//! ```
//! use rivulet::operator::{TimeDomain, Timer, TimerService};
//! use rivulet::Timestamp;
//!
//! let mut timers = TimerService::new();
//! assert!(timers.register_event_time(7u32, Timestamp(10)));
//! assert!(timers.register_event_time(3u32, Timestamp(10)));
//! assert!(!timers.register_event_time(3u32, Timestamp(10)), "already registered");
//! assert!(timers.register_processing_time(3u32, Timestamp(5)));
//!
//! // Records at 9 may still arrive: nothing fires yet.
//! assert_eq!(timers.pop_event_time(Timestamp(9)), None);
//! // At 10 both fire, in key order, once.
//! let fired: Vec<u32> =
//!     std::iter::from_fn(|| timers.pop_event_time(Timestamp(10))).map(|t| t.key).collect();
//! assert_eq!(fired, [3, 7]);
//! assert_eq!(timers.pop_event_time(Timestamp::MAX), None);
//!
//! // Processing time is a separate clock.
//! assert_eq!(
//!     timers.pop_processing_time(Timestamp(6)),
//!     Some(Timer { key: 3, time: Timestamp(5), domain: TimeDomain::ProcessingTime }),
//! );
//! assert!(timers.is_empty());
//! ```

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::Timestamp;

/// Which clock a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeDomain {
    /// The watermark: the timer fires once no record older than its time can arrive.
    EventTime,
    /// The wall clock: the timer fires once the clock reads its time.
    ProcessingTime,
}

/// A timer that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer<K> {
    /// The key it was registered for.
    pub key: K,
    /// The time it was registered at (not the watermark or clock that fired it).
    pub time: Timestamp,
    /// The clock it followed.
    pub domain: TimeDomain,
}

/// What a timer can be keyed by: ordered (ties on time fire in key order), cloneable
/// (the service indexes each timer by time and by key) and serializable (timers are
/// checkpointed). Implemented for every type that qualifies.
pub trait TimerKey: Ord + Clone + Send + Serialize + DeserializeOwned + 'static {}

impl<K: Ord + Clone + Send + Serialize + DeserializeOwned + 'static> TimerKey for K {}

/// An operator's pending timers, in both [`TimeDomain`]s.
///
/// Each `(key, time)` pair is registered at most once per domain. See the
/// [module docs](self) for when timers fire.
///
/// # Costs
///
/// With `n` timers in a domain and `k` of them belonging to the key at hand: registering,
/// deleting and popping cost `O(log n)`; [`delete_key`](Self::delete_key) costs
/// `O(k log n)`, not `O(n)`, because each domain keeps a per-key index next to its time
/// order. The index costs one clone of the key per registered timer; the snapshot holds
/// the time order only and the index is rebuilt on restore.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Ord + Serialize",
    deserialize = "K: Ord + Clone + Deserialize<'de>"
))]
pub struct TimerService<K> {
    event_time: Queue<K>,
    processing_time: Queue<K>,
}

impl<K: TimerKey> Default for TimerService<K> {
    fn default() -> Self {
        TimerService {
            event_time: Queue::default(),
            processing_time: Queue::default(),
        }
    }
}

impl<K: TimerKey> TimerService<K> {
    /// An empty service.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an event-time timer for `key` at `time`. Returns `false` (and changes
    /// nothing) if that timer is already registered.
    pub fn register_event_time(&mut self, key: K, time: Timestamp) -> bool {
        self.register(TimeDomain::EventTime, key, time)
    }

    /// Registers a processing-time timer for `key` at `time`. Returns `false` (and
    /// changes nothing) if that timer is already registered.
    pub fn register_processing_time(&mut self, key: K, time: Timestamp) -> bool {
        self.register(TimeDomain::ProcessingTime, key, time)
    }

    /// Registers a timer for `key` at `time` in `domain`. Returns `false` (and changes
    /// nothing) if that timer is already registered.
    pub fn register(&mut self, domain: TimeDomain, key: K, time: Timestamp) -> bool {
        self.queue_mut(domain).insert(key, time)
    }

    /// Deletes the event-time timer of `key` at `time`. Returns whether it was registered.
    pub fn delete_event_time(&mut self, key: &K, time: Timestamp) -> bool {
        self.delete(TimeDomain::EventTime, key, time)
    }

    /// Deletes the processing-time timer of `key` at `time`. Returns whether it was
    /// registered.
    pub fn delete_processing_time(&mut self, key: &K, time: Timestamp) -> bool {
        self.delete(TimeDomain::ProcessingTime, key, time)
    }

    /// Deletes the timer of `key` at `time` in `domain`. Returns whether it was
    /// registered.
    pub fn delete(&mut self, domain: TimeDomain, key: &K, time: Timestamp) -> bool {
        self.queue_mut(domain).remove(key, time)
    }

    /// Removes every timer of `key` in both domains (for a key whose state was removed).
    /// Returns how many there were. Costs `O(k log n)` for the key's `k` timers.
    pub fn delete_key(&mut self, key: &K) -> usize {
        self.event_time.remove_key(key) + self.processing_time.remove_key(key)
    }

    /// Whether `key` has a timer at `time` in `domain`.
    pub fn contains(&self, domain: TimeDomain, key: &K, time: Timestamp) -> bool {
        self.queue(domain).contains(key, time)
    }

    /// The time of the earliest event-time timer, or `None` if there is none.
    pub fn next_event_time(&self) -> Option<Timestamp> {
        self.next(TimeDomain::EventTime)
    }

    /// The time of the earliest processing-time timer, or `None` if there is none (a
    /// worker can sleep until then).
    pub fn next_processing_time(&self) -> Option<Timestamp> {
        self.next(TimeDomain::ProcessingTime)
    }

    /// The time of the earliest timer in `domain`, or `None` if there is none.
    pub fn next(&self, domain: TimeDomain) -> Option<Timestamp> {
        self.queue(domain).next()
    }

    /// Removes and returns the earliest event-time timer with `time <= watermark`, by
    /// time, then key; `None` if no timer is due. Call it until `None` after each
    /// watermark.
    pub fn pop_event_time(&mut self, watermark: Timestamp) -> Option<Timer<K>> {
        self.pop(TimeDomain::EventTime, watermark)
    }

    /// Removes and returns the earliest processing-time timer with `time <= now`, by
    /// time, then key; `None` if no timer is due.
    pub fn pop_processing_time(&mut self, now: Timestamp) -> Option<Timer<K>> {
        self.pop(TimeDomain::ProcessingTime, now)
    }

    /// Removes and returns the earliest timer in `domain` with `time <= until`, by time,
    /// then key; `None` if no timer is due.
    pub fn pop(&mut self, domain: TimeDomain, until: Timestamp) -> Option<Timer<K>> {
        let (key, time) = self.queue_mut(domain).pop(until)?;
        Some(Timer { key, time, domain })
    }

    /// The number of timers in both domains.
    pub fn len(&self) -> usize {
        self.event_time.len() + self.processing_time.len()
    }

    /// Whether there are no timers in either domain.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of event-time timers.
    pub fn event_time_len(&self) -> usize {
        self.event_time.len()
    }

    /// The number of processing-time timers.
    pub fn processing_time_len(&self) -> usize {
        self.processing_time.len()
    }

    fn queue(&self, domain: TimeDomain) -> &Queue<K> {
        match domain {
            TimeDomain::EventTime => &self.event_time,
            TimeDomain::ProcessingTime => &self.processing_time,
        }
    }

    fn queue_mut(&mut self, domain: TimeDomain) -> &mut Queue<K> {
        match domain {
            TimeDomain::EventTime => &mut self.event_time,
            TimeDomain::ProcessingTime => &mut self.processing_time,
        }
    }
}

/// The timers of one domain, indexed twice.
///
/// Invariants: a `(time, key)` pair is in `by_time` iff `(key, time)` is in `by_key`.
///
/// Both indexes are flat sets of pairs rather than maps of sets: a B-tree of pairs
/// allocates per node, not per timer, which keeps registering a timer close to the cost
/// of one ordered insert (`benches/operator_cost.rs`, `timers/*`). `by_time` gives the
/// firing order; `by_key` is what makes [`TimerService::delete_key`] proportional to the
/// key's own timers (a range of it) rather than a scan of every timer, since state
/// expiry removes keys in bulk. The price is one clone of the key per timer.
#[derive(Debug, Clone)]
struct Queue<K> {
    by_time: BTreeSet<(Timestamp, K)>,
    by_key: BTreeSet<(K, Timestamp)>,
}

impl<K> Default for Queue<K> {
    fn default() -> Self {
        Queue {
            by_time: BTreeSet::new(),
            by_key: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone> Queue<K> {
    fn len(&self) -> usize {
        self.by_time.len()
    }

    fn insert(&mut self, key: K, time: Timestamp) -> bool {
        if !self.by_key.insert((key.clone(), time)) {
            return false;
        }
        let inserted = self.by_time.insert((time, key));
        debug_assert!(inserted, "by_time and by_key disagree");
        true
    }

    fn contains(&self, key: &K, time: Timestamp) -> bool {
        self.by_key.contains(&(key.clone(), time))
    }

    fn remove(&mut self, key: &K, time: Timestamp) -> bool {
        let key = key.clone();
        if !self.by_key.remove(&(key.clone(), time)) {
            return false;
        }
        let removed = self.by_time.remove(&(time, key));
        debug_assert!(removed, "by_time and by_key disagree");
        true
    }

    fn remove_key(&mut self, key: &K) -> usize {
        let range = (key.clone(), Timestamp::MIN)..=(key.clone(), Timestamp::MAX);
        let times: Vec<Timestamp> = self.by_key.range(range).map(|(_, time)| *time).collect();
        for &time in &times {
            self.by_key.remove(&(key.clone(), time));
            let removed = self.by_time.remove(&(time, key.clone()));
            debug_assert!(removed, "by_time and by_key disagree");
        }
        times.len()
    }

    fn next(&self) -> Option<Timestamp> {
        self.by_time.first().map(|(time, _)| *time)
    }

    fn pop(&mut self, until: Timestamp) -> Option<(K, Timestamp)> {
        if self.next()? > until {
            return None;
        }
        let (time, key) = self.by_time.pop_first()?;
        let (key, _) = self
            .by_key
            .take(&(key, time))
            .expect("by_time and by_key disagree");
        Some((key, time))
    }
}

/// A queue serializes as its firing order alone, a sequence of `(time, key)` pairs; the
/// key index is derived.
impl<K: Ord + Serialize> Serialize for Queue<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.by_time.serialize(serializer)
    }
}

/// Rebuilds the key index from the firing order.
impl<'de, K: Ord + Clone + Deserialize<'de>> Deserialize<'de> for Queue<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let by_time = BTreeSet::<(Timestamp, K)>::deserialize(deserializer)?;
        let by_key = by_time
            .iter()
            .map(|(time, key)| (key.clone(), *time))
            .collect();
        Ok(Queue { by_time, by_key })
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use proptest::prelude::*;

    use super::*;
    use crate::checkpoint::codec::{decode, encode};

    const EVENT: TimeDomain = TimeDomain::EventTime;
    const PROCESSING: TimeDomain = TimeDomain::ProcessingTime;

    fn t(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    /// Pops every due timer of `domain`, in order.
    fn drain<K: TimerKey>(
        service: &mut TimerService<K>,
        domain: TimeDomain,
        until: Timestamp,
    ) -> Vec<(K, Timestamp)> {
        std::iter::from_fn(|| service.pop(domain, until))
            .map(|timer| {
                assert_eq!(timer.domain, domain);
                (timer.key, timer.time)
            })
            .collect()
    }

    fn round_trip<K: TimerKey>(service: &TimerService<K>) -> TimerService<K> {
        decode(&encode(service).unwrap()).unwrap()
    }

    #[test]
    fn an_empty_service_has_nothing_to_fire() {
        let mut timers = TimerService::<u32>::new();
        assert!(timers.is_empty());
        assert_eq!((timers.len(), timers.event_time_len()), (0, 0));
        assert_eq!(timers.processing_time_len(), 0);
        assert_eq!(timers.next_event_time(), None);
        assert_eq!(timers.next_processing_time(), None);
        assert_eq!(timers.pop_event_time(Timestamp::MAX), None);
        assert_eq!(timers.pop_processing_time(Timestamp::MAX), None);
        assert!(!timers.delete_event_time(&1, t(0)));
        assert!(!timers.delete_processing_time(&1, t(0)));
        assert_eq!(timers.delete_key(&1), 0);
        assert!(round_trip(&timers).is_empty());
        assert!(TimerService::<u32>::default().is_empty());
    }

    #[test]
    fn registration_is_deduplicated_per_domain() {
        let mut timers = TimerService::new();
        assert!(timers.register_event_time(1u32, t(5)));
        assert!(!timers.register_event_time(1, t(5)), "duplicate");
        assert!(timers.register_processing_time(1, t(5)), "other domain");
        assert!(!timers.register_processing_time(1, t(5)), "duplicate");
        assert!(timers.register_event_time(1, t(6)), "other time");
        assert!(timers.register_event_time(2, t(5)), "other key");
        assert_eq!(
            (timers.event_time_len(), timers.processing_time_len()),
            (3, 1)
        );
        assert_eq!(
            drain(&mut timers, EVENT, t(5)),
            [(1, t(5)), (2, t(5))],
            "the duplicate fires once"
        );
        // A fired timer can be registered again.
        assert!(timers.register_event_time(1, t(5)));
        assert_eq!(drain(&mut timers, EVENT, t(5)), [(1, t(5))]);
    }

    #[test]
    fn deleted_timers_never_fire() {
        let mut timers = TimerService::new();
        timers.register_event_time(1u32, t(5));
        timers.register_event_time(2, t(5));
        timers.register_processing_time(1, t(5));
        assert!(timers.delete_event_time(&1, t(5)));
        assert!(!timers.delete_event_time(&1, t(5)), "already deleted");
        assert!(!timers.delete_event_time(&2, t(6)), "no such time");
        assert!(
            timers.contains(PROCESSING, &1, t(5)),
            "other domain untouched"
        );
        assert_eq!(timers.next_event_time(), Some(t(5)));
        assert_eq!(drain(&mut timers, EVENT, Timestamp::MAX), [(2, t(5))]);
        assert!(timers.delete_processing_time(&1, t(5)));
        assert!(timers.is_empty());
    }

    #[test]
    fn delete_key_removes_the_key_in_both_domains_only() {
        let mut timers = TimerService::new();
        for time in [3, 1, 2] {
            timers.register_event_time("a".to_string(), t(time));
            timers.register_event_time("b".to_string(), t(time));
        }
        timers.register_processing_time("a".to_string(), t(9));
        timers.register_processing_time("c".to_string(), t(9));
        assert_eq!(timers.delete_key(&"a".to_string()), 4);
        assert_eq!(timers.delete_key(&"a".to_string()), 0);
        assert_eq!(timers.len(), 4);
        assert_eq!(
            drain(&mut timers, EVENT, Timestamp::MAX),
            [("b".into(), t(1)), ("b".into(), t(2)), ("b".into(), t(3))]
        );
        assert_eq!(
            drain(&mut timers, PROCESSING, Timestamp::MAX),
            [("c".into(), t(9))]
        );
        assert!(timers.is_empty());
    }

    #[test]
    fn ties_on_time_fire_in_key_order() {
        let mut timers = TimerService::new();
        for key in [5u32, 1, 4, 2, 3] {
            timers.register_event_time(key, t(10));
            timers.register_processing_time(key, t(10));
        }
        timers.register_event_time(0, t(11));
        timers.register_event_time(9, t(9));
        let keys = |fired: Vec<(u32, Timestamp)>| fired.into_iter().map(|(k, _)| k).collect();
        let fired: Vec<u32> = keys(drain(&mut timers, EVENT, t(11)));
        assert_eq!(fired, [9, 1, 2, 3, 4, 5, 0]);
        let fired: Vec<u32> = keys(drain(&mut timers, PROCESSING, t(10)));
        assert_eq!(fired, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn timers_fire_once_the_watermark_or_clock_reaches_them() {
        let mut timers = TimerService::new();
        timers.register_event_time(1u32, t(10));
        timers.register_processing_time(1u32, t(10));
        assert_eq!(timers.pop_event_time(t(9)), None);
        assert_eq!(timers.pop_processing_time(t(9)), None);
        let fired = timers.pop_event_time(t(10)).unwrap();
        assert_eq!(
            fired,
            Timer {
                key: 1,
                time: t(10),
                domain: EVENT
            }
        );
        assert_eq!(timers.pop_event_time(t(10)), None, "fires once");
        assert_eq!(timers.next_processing_time(), Some(t(10)), "other domain");
        let fired = timers.pop_processing_time(t(20)).unwrap();
        assert_eq!((fired.time, fired.domain), (t(10), PROCESSING));
        assert!(timers.is_empty());
    }

    #[test]
    fn a_timer_registered_in_the_past_fires_at_the_next_pop() {
        let mut timers = TimerService::new();
        timers.register_event_time(1u32, t(50));
        assert_eq!(timers.pop_event_time(t(40)), None);
        // The watermark is at 40 now; register behind it.
        timers.register_event_time(2, t(30));
        timers.register_event_time(3, t(40));
        assert_eq!(timers.next_event_time(), Some(t(30)));
        assert_eq!(drain(&mut timers, EVENT, t(40)), [(2, t(30)), (3, t(40))]);
        assert_eq!(timers.next_event_time(), Some(t(50)));
    }

    #[test]
    fn the_extreme_timestamps_are_ordinary_times() {
        let mut timers = TimerService::new();
        for domain in [EVENT, PROCESSING] {
            timers.register(domain, 1u32, Timestamp::MAX);
            timers.register(domain, 2, Timestamp::MIN);
            timers.register(domain, 3, t(0));
        }
        let timers = &mut round_trip(&timers);
        for domain in [EVENT, PROCESSING] {
            assert_eq!(timers.next(domain), Some(Timestamp::MIN));
            // A watermark at MIN (nothing known yet) fires only timers at MIN.
            assert_eq!(drain(timers, domain, Timestamp::MIN), [(2, Timestamp::MIN)]);
            assert_eq!(drain(timers, domain, Timestamp(i64::MAX - 1)), [(3, t(0))]);
            assert_eq!(timers.next(domain), Some(Timestamp::MAX));
            // Only a watermark at MAX (all of event time closed) fires a timer at MAX.
            assert_eq!(drain(timers, domain, Timestamp::MAX), [(1, Timestamp::MAX)]);
            assert_eq!(timers.next(domain), None);
        }
        assert!(timers.is_empty());
    }

    #[test]
    fn a_restored_service_fires_the_same_timers() {
        let mut timers = TimerService::new();
        for (key, time) in [("x", 3), ("y", 3), ("x", 1), ("z", -7)] {
            timers.register_event_time(key.to_string(), t(time));
            timers.register_processing_time(key.to_string(), t(time * 2));
        }
        timers.delete_event_time(&"y".to_string(), t(3));
        let mut restored = round_trip(&timers);
        assert_eq!(restored.len(), timers.len());
        assert_eq!(restored.event_time_len(), 3);
        assert_eq!(encode(&restored).unwrap(), encode(&timers).unwrap());
        // The key index is rebuilt: delete_key works on the restored service.
        assert_eq!(restored.delete_key(&"x".to_string()), 4);
        assert_eq!(timers.delete_key(&"x".to_string()), 4);
        for domain in [EVENT, PROCESSING] {
            assert_eq!(
                drain(&mut restored, domain, Timestamp::MAX),
                drain(&mut timers, domain, Timestamp::MAX)
            );
        }
        assert!(restored.is_empty());
    }

    /// One step of a random schedule.
    #[derive(Debug, Clone)]
    enum Op {
        Register(TimeDomain, u8, Timestamp),
        Delete(TimeDomain, u8, Timestamp),
        DeleteKey(u8),
        /// Moves the watermark or clock to `max(current, to)`, then pops until `None`.
        Advance(TimeDomain, Timestamp),
        /// Pops at most one timer at the current watermark or clock.
        PopOne(TimeDomain),
        /// Snapshot and restore: the rest of the schedule runs on the decoded copy.
        Restore,
    }

    /// What the service answered to one step.
    #[derive(Debug, Clone, PartialEq)]
    enum Outcome<K> {
        Changed(bool),
        Deleted(usize),
        Fired(Vec<Timer<K>>),
        Restored,
    }

    fn domain() -> impl Strategy<Value = TimeDomain> {
        prop_oneof![Just(EVENT), Just(PROCESSING)]
    }

    /// Mostly a small range, so times collide and watermarks pass them one by one, with
    /// the extremes now and then.
    fn time() -> impl Strategy<Value = Timestamp> {
        prop_oneof![
            20 => (-5i64..40).prop_map(Timestamp),
            1 => Just(Timestamp::MIN),
            1 => Just(Timestamp::MAX),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = 0u8..5;
        prop_oneof![
            8 => (domain(), key.clone(), time()).prop_map(|(d, k, t)| Op::Register(d, k, t)),
            2 => (domain(), key.clone(), time()).prop_map(|(d, k, t)| Op::Delete(d, k, t)),
            1 => key.prop_map(Op::DeleteKey),
            4 => (domain(), time()).prop_map(|(d, t)| Op::Advance(d, t)),
            2 => domain().prop_map(Op::PopOne),
        ]
    }

    /// Runs `ops` on a fresh service, checking each step against a plain list of
    /// `(domain, key, time)` scanned linearly, and returns the service's answers. At the
    /// end both clocks go to `MAX`: every timer not deleted has fired, exactly once.
    fn run<K: TimerKey + Debug>(ops: &[Op], key_of: impl Fn(u8) -> K) -> Vec<Outcome<K>> {
        let mut service = TimerService::new();
        let mut reference: Vec<(TimeDomain, K, Timestamp)> = Vec::new();
        // The watermark starts at MIN (nothing known); the clock anywhere.
        let mut watermark = Timestamp::MIN;
        let mut clock = t(0);
        let mut outcomes = Vec::new();
        let all = [
            Op::Advance(EVENT, Timestamp::MAX),
            Op::Advance(PROCESSING, Timestamp::MAX),
        ];
        for op in ops.iter().chain(&all) {
            let outcome = match op {
                Op::Register(domain, key, time) => {
                    let key = key_of(*key);
                    let entry = (*domain, key.clone(), *time);
                    let fresh = !reference.contains(&entry);
                    if fresh {
                        reference.push(entry);
                    }
                    let changed = service.register(*domain, key, *time);
                    assert_eq!(changed, fresh, "{op:?}");
                    Outcome::Changed(changed)
                }
                Op::Delete(domain, key, time) => {
                    let key = key_of(*key);
                    let before = reference.len();
                    reference.retain(|e| *e != (*domain, key.clone(), *time));
                    let changed = service.delete(*domain, &key, *time);
                    assert_eq!(changed, reference.len() < before, "{op:?}");
                    Outcome::Changed(changed)
                }
                Op::DeleteKey(key) => {
                    let key = key_of(*key);
                    let before = reference.len();
                    reference.retain(|(_, k, _)| *k != key);
                    let deleted = service.delete_key(&key);
                    assert_eq!(deleted, before - reference.len(), "{op:?}");
                    Outcome::Deleted(deleted)
                }
                Op::Advance(domain, _) | Op::PopOne(domain) => {
                    let now = match domain {
                        TimeDomain::EventTime => &mut watermark,
                        TimeDomain::ProcessingTime => &mut clock,
                    };
                    if let Op::Advance(_, to) = op {
                        *now = (*now).max(*to);
                    }
                    let now = *now;
                    // The reference: every due timer of the domain, by time then key.
                    let mut due: Vec<(Timestamp, K)> = reference
                        .iter()
                        .filter(|(d, _, time)| d == domain && *time <= now)
                        .map(|(_, k, time)| (*time, k.clone()))
                        .collect();
                    due.sort();
                    if let Op::PopOne(_) = op {
                        due.truncate(1);
                    }
                    reference
                        .retain(|(d, k, time)| !(d == domain && due.contains(&(*time, k.clone()))));
                    let fired: Vec<Timer<K>> = match op {
                        Op::PopOne(_) => service.pop(*domain, now).into_iter().collect(),
                        _ => std::iter::from_fn(|| service.pop(*domain, now)).collect(),
                    };
                    let got: Vec<(Timestamp, K)> = fired
                        .iter()
                        .map(|timer| {
                            assert_eq!(timer.domain, *domain);
                            assert!(timer.time <= now, "fired early: {timer:?} at {now:?}");
                            (timer.time, timer.key.clone())
                        })
                        .collect();
                    assert_eq!(got, due, "{op:?} at {now:?}");
                    if let Op::Advance(..) = op {
                        // Nothing due is left behind.
                        assert!(service.next(*domain).is_none_or(|next| next > now));
                    }
                    Outcome::Fired(fired)
                }
                Op::Restore => {
                    service = decode(&encode(&service).unwrap()).unwrap();
                    Outcome::Restored
                }
            };
            outcomes.push(outcome);
            for d in [EVENT, PROCESSING] {
                let pending = reference.iter().filter(|(rd, _, _)| *rd == d);
                assert_eq!(
                    service.next(d),
                    pending.clone().map(|(_, _, time)| *time).min()
                );
                let len = pending.count();
                let service_len = match d {
                    TimeDomain::EventTime => service.event_time_len(),
                    TimeDomain::ProcessingTime => service.processing_time_len(),
                };
                assert_eq!(service_len, len, "{d:?} after {op:?}");
            }
            assert_eq!(service.len(), reference.len());
            assert_eq!(service.is_empty(), reference.is_empty());
            for (d, k, time) in &reference {
                assert!(service.contains(*d, k, *time));
            }
        }
        assert!(service.is_empty(), "every timer fired or was deleted");
        outcomes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_schedules_match_the_reference(
            ops in proptest::collection::vec(op(), 0..80),
        ) {
            run(&ops, |k| k);
        }

        #[test]
        fn a_restore_anywhere_continues_as_the_original(
            ops in proptest::collection::vec(op(), 0..80),
            cut in any::<prop::sample::Index>(),
        ) {
            let key = |k: u8| format!("key-{k}");
            let original = run(&ops, key);
            let mut with_restore = ops.clone();
            let at = cut.index(ops.len() + 1);
            with_restore.insert(at, Op::Restore);
            let mut restored = run(&with_restore, key);
            prop_assert_eq!(restored.remove(at), Outcome::Restored);
            prop_assert_eq!(restored, original);
        }
    }
}
