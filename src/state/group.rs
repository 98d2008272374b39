//! The per-call handle of `map_groups_with_state`: [`GroupState`], its timeout
//! configuration [`GroupStateTimeout`], and the [`Values`] a call receives.

use crate::event::Timestamp;
use std::cell::Cell;
use std::fmt;
use std::time::Duration;

/// Which timeouts the groups of a `map_groups_with_state` /
/// `flat_map_groups_with_state` may set (Spark's `GroupStateTimeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GroupStateTimeout {
    /// No timeouts: the function runs only for groups with new records.
    #[default]
    NoTimeout,
    /// [`GroupState::set_timeout_duration`]: a group times out once the processing-time
    /// clock has moved past the call's processing time plus the duration.
    ProcessingTimeTimeout,
    /// [`GroupState::set_timeout_timestamp`]: a group times out once the watermark has
    /// moved past the timestamp. Needs a watermark on the input.
    EventTimeTimeout,
}

/// Why a timeout could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupStateError {
    /// The operator was built with a timeout configuration that does not allow this
    /// timeout (Spark: "Cannot set timeout duration without enabling processing time
    /// timeout").
    #[error("cannot set a {asked} timeout: the operator was configured with {configured:?}")]
    TimeoutNotEnabled {
        /// `"processing-time"` or `"event-time"`.
        asked: &'static str,
        /// The operator's configuration.
        configured: GroupStateTimeout,
    },
    /// A timeout duration or timestamp must be positive (Spark's rule).
    #[error("a timeout {0} must be positive")]
    NotPositive(&'static str),
    /// An event-time timeout before the current watermark would never be meaningful
    /// (Spark: "Timeout timestamp cannot be earlier than the current watermark").
    #[error("timeout timestamp {timestamp:?} is earlier than the current watermark {watermark:?}")]
    BeforeWatermark {
        /// The timestamp asked for.
        timestamp: Timestamp,
        /// The watermark of the call.
        watermark: Timestamp,
    },
}

/// A group's state during one call of the function of
/// [`map_groups_with_state`](crate::KeyedStream::map_groups_with_state) or
/// [`flat_map_groups_with_state`](crate::KeyedStream::flat_map_groups_with_state)
/// (Spark's `GroupState`).
///
/// * [`get`](Self::get) / [`get_option`](Self::get_option) / [`exists`](Self::exists)
///   read the state, [`update`](Self::update) sets it and [`remove`](Self::remove)
///   deletes it; what the handle holds when the function returns is the group's state
///   from then on.
/// * A timeout is set per call: each call starts with none, and the group keeps the one
///   set during the call (if any) until its next call. A group whose state is removed has
///   no timeout (Spark 3 keeps a timeout set after `remove()`; rivulet drops it, so a
///   group without state holds nothing).
/// * [`has_timed_out`](Self::has_timed_out) is `true` in the call made for a timeout,
///   which has no records.
///
/// Times are [`Timestamp`]s (microseconds; Spark uses milliseconds). The processing time
/// is read from the query's clock the first time a call asks for it (by
/// [`current_processing_time`](Self::current_processing_time) or
/// [`set_timeout_duration`](Self::set_timeout_duration)), not for every call.
pub struct GroupState<'a, S> {
    pub(crate) value: Option<S>,
    pub(crate) timeout: Option<Timestamp>,
    pub(crate) conf: GroupStateTimeout,
    pub(crate) timed_out: bool,
    pub(crate) watermark: Timestamp,
    /// The processing time, once read.
    pub(crate) now: Cell<Option<Timestamp>>,
    /// Reads the processing time.
    pub(crate) clock: &'a dyn Fn() -> Timestamp,
}

/// The clock of a handle made with a known processing time (never read).
fn no_clock() -> Timestamp {
    Timestamp::MIN
}

impl<S: fmt::Debug> fmt::Debug for GroupState<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupState")
            .field("value", &self.value)
            .field("timeout", &self.timeout)
            .field("has_timed_out", &self.timed_out)
            .finish_non_exhaustive()
    }
}

impl<S> GroupState<'static, S> {
    /// A handle as a call of the operator sees it: `value` the group's state, `conf` the
    /// operator's timeout configuration, `has_timed_out` whether the call is for a
    /// timeout, at `watermark` and processing time `now`. For testing a group function
    /// without a query (Spark's `TestGroupState.create`).
    ///
    /// ```
    /// use rivulet::state::{GroupState, GroupStateTimeout};
    /// use rivulet::Timestamp;
    ///
    /// let mut state = GroupState::new(Some(3u32), GroupStateTimeout::EventTimeTimeout,
    ///     false, Timestamp(100), Timestamp(0));
    /// state.update(state.get() + 1);
    /// assert_eq!(state.get_option(), Some(&4));
    /// assert!(state.set_timeout_timestamp(Timestamp(99)).is_err(), "behind the watermark");
    /// state.set_timeout_timestamp(Timestamp(150)).unwrap();
    /// assert_eq!(state.timeout_timestamp(), Some(Timestamp(150)));
    /// ```
    pub fn new(
        value: Option<S>,
        conf: GroupStateTimeout,
        has_timed_out: bool,
        watermark: Timestamp,
        now: Timestamp,
    ) -> Self {
        GroupState {
            value,
            timeout: None,
            conf,
            timed_out: has_timed_out,
            watermark,
            now: Cell::new(Some(now)),
            clock: &no_clock,
        }
    }
}

impl<S> GroupState<'_, S> {
    /// Whether the group has state.
    pub fn exists(&self) -> bool {
        self.value.is_some()
    }

    /// The group's state.
    ///
    /// # Panics
    ///
    /// If the group has none (Spark throws "State is either not defined or has already
    /// been removed"); use [`get_option`](Self::get_option) when unsure. The panic fails
    /// the query with the operator's name.
    pub fn get(&self) -> &S {
        self.value
            .as_ref()
            .expect("group state is either not defined or has already been removed")
    }

    /// The group's state, if it has one.
    pub fn get_option(&self) -> Option<&S> {
        self.value.as_ref()
    }

    /// The group's state, to change in place, if it has one.
    pub fn get_mut(&mut self) -> Option<&mut S> {
        self.value.as_mut()
    }

    /// Sets the group's state.
    pub fn update(&mut self, value: S) {
        self.value = Some(value);
    }

    /// Removes the group's state (and with it any timeout: see the type's docs).
    pub fn remove(&mut self) {
        self.value = None;
    }

    /// Takes the group's state out of the handle, leaving none (as [`remove`](Self::remove)
    /// does unless it is [updated](Self::update) again).
    pub fn take(&mut self) -> Option<S> {
        self.value.take()
    }

    /// Whether this call is for the group's timeout (it then has no records).
    pub fn has_timed_out(&self) -> bool {
        self.timed_out
    }

    /// Sets a processing-time timeout: the group times out once the clock has moved past
    /// [`current_processing_time`](Self::current_processing_time) + `duration` with no
    /// new record for it. In a micro-batch query the timeout is handled in the first
    /// batch that starts after that (a batch without data runs for it if needed); in
    /// continuous mode as soon as the clock gets there.
    ///
    /// # Errors
    ///
    /// If the operator was not configured with
    /// [`ProcessingTimeTimeout`](GroupStateTimeout::ProcessingTimeTimeout), or `duration`
    /// is zero. Nothing is set then.
    pub fn set_timeout_duration(&mut self, duration: Duration) -> Result<(), GroupStateError> {
        if self.conf != GroupStateTimeout::ProcessingTimeTimeout {
            return Err(GroupStateError::TimeoutNotEnabled {
                asked: "processing-time",
                configured: self.conf,
            });
        }
        if duration.is_zero() {
            return Err(GroupStateError::NotPositive("duration"));
        }
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        let now = self.current_processing_time();
        self.timeout = Some(Timestamp(now.0.saturating_add(micros)));
        Ok(())
    }

    /// Sets an event-time timeout: the group times out once the watermark has moved past
    /// `timestamp` (Spark: `timeout < watermark`) with no new record for it.
    ///
    /// # Errors
    ///
    /// If the operator was not configured with
    /// [`EventTimeTimeout`](GroupStateTimeout::EventTimeTimeout), `timestamp` is not
    /// positive, or it is earlier than the [current watermark](Self::current_watermark)
    /// (Spark's rules). Nothing is set then.
    pub fn set_timeout_timestamp(&mut self, timestamp: Timestamp) -> Result<(), GroupStateError> {
        if self.conf != GroupStateTimeout::EventTimeTimeout {
            return Err(GroupStateError::TimeoutNotEnabled {
                asked: "event-time",
                configured: self.conf,
            });
        }
        if timestamp.0 <= 0 {
            return Err(GroupStateError::NotPositive("timestamp"));
        }
        if timestamp < self.watermark {
            return Err(GroupStateError::BeforeWatermark {
                timestamp,
                watermark: self.watermark,
            });
        }
        self.timeout = Some(timestamp);
        Ok(())
    }

    /// The timeout set during this call, if any (Spark's `getTimeoutTimestampMs`).
    pub fn timeout_timestamp(&self) -> Option<Timestamp> {
        self.timeout
    }

    /// The watermark of the operator's input at this call ([`Timestamp::MIN`] before the
    /// first watermark; Spark throws when the query has no watermark).
    pub fn current_watermark(&self) -> Timestamp {
        self.watermark
    }

    /// The processing time of this call, from the query's [`Clock`](crate::time::Clock):
    /// in a micro-batch the batch time, the same for the whole batch and recorded in the
    /// offset log so a replayed batch sees it again (Spark's
    /// `getCurrentProcessingTimeMs`); in a continuous epoch the clock's reading.
    pub fn current_processing_time(&self) -> Timestamp {
        match self.now.get() {
            Some(now) => now,
            None => {
                let now = (self.clock)();
                self.now.set(Some(now));
                now
            }
        }
    }
}

/// The records of a group in one call: one record in continuous mode, the batch's
/// records of the group (in arrival order) in micro-batch mode, none on a timeout. An
/// iterator that allocates nothing per call.
#[derive(Debug)]
pub struct Values<'a, V> {
    inner: ValuesInner<'a, V>,
}

#[derive(Debug)]
enum ValuesInner<'a, V> {
    One(Option<V>),
    Batch(std::vec::Drain<'a, V>),
}

impl<'a, V> Values<'a, V> {
    /// No records (a timeout call).
    pub(crate) fn none() -> Self {
        Values {
            inner: ValuesInner::One(None),
        }
    }

    /// One record.
    pub(crate) fn one(value: V) -> Self {
        Values {
            inner: ValuesInner::One(Some(value)),
        }
    }

    /// A batch's records, drained from its buffer.
    pub(crate) fn batch(values: &'a mut Vec<V>) -> Self {
        Values {
            inner: ValuesInner::Batch(values.drain(..)),
        }
    }
}

impl<V> Iterator for Values<'_, V> {
    type Item = V;

    #[inline]
    fn next(&mut self) -> Option<V> {
        match &mut self.inner {
            ValuesInner::One(value) => value.take(),
            ValuesInner::Batch(drain) => drain.next(),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.inner {
            ValuesInner::One(value) => usize::from(value.is_some()),
            ValuesInner::Batch(drain) => drain.len(),
        };
        (n, Some(n))
    }
}

impl<V> ExactSizeIterator for Values<'_, V> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(conf: GroupStateTimeout) -> GroupState<'static, u8> {
        GroupState::new(None, conf, false, Timestamp(50), Timestamp(1_000))
    }

    #[test]
    fn timeouts_follow_sparks_rules() {
        let mut s = state(GroupStateTimeout::NoTimeout);
        assert!(matches!(
            s.set_timeout_duration(Duration::from_micros(1)),
            Err(GroupStateError::TimeoutNotEnabled { .. })
        ));
        assert!(s.set_timeout_timestamp(Timestamp(60)).is_err());

        let mut s = state(GroupStateTimeout::ProcessingTimeTimeout);
        assert!(s.set_timeout_timestamp(Timestamp(60)).is_err());
        assert_eq!(
            s.set_timeout_duration(Duration::ZERO),
            Err(GroupStateError::NotPositive("duration"))
        );
        assert_eq!(s.timeout_timestamp(), None);
        s.set_timeout_duration(Duration::from_millis(2)).unwrap();
        assert_eq!(s.timeout_timestamp(), Some(Timestamp(3_000)));

        let mut s = state(GroupStateTimeout::EventTimeTimeout);
        assert!(s.set_timeout_duration(Duration::from_secs(1)).is_err());
        assert_eq!(
            s.set_timeout_timestamp(Timestamp(49)),
            Err(GroupStateError::BeforeWatermark {
                timestamp: Timestamp(49),
                watermark: Timestamp(50)
            })
        );
        assert_eq!(
            s.set_timeout_timestamp(Timestamp(0)),
            Err(GroupStateError::NotPositive("timestamp"))
        );
        s.set_timeout_timestamp(Timestamp(50)).unwrap();
        assert_eq!(s.timeout_timestamp(), Some(Timestamp(50)));
    }

    #[test]
    fn state_reads_and_writes() {
        let mut s = state(GroupStateTimeout::NoTimeout);
        assert!(!s.exists());
        assert_eq!(s.get_option(), None);
        s.update(7);
        assert_eq!(*s.get(), 7);
        *s.get_mut().unwrap() += 1;
        assert_eq!(s.take(), Some(8));
        assert!(!s.exists());
        s.update(1);
        s.remove();
        assert!(!s.exists());
    }

    #[test]
    #[should_panic(expected = "not defined")]
    fn get_without_state_panics() {
        state(GroupStateTimeout::NoTimeout).get();
    }

    #[test]
    fn values_iterate_one_or_a_batch() {
        assert_eq!(Values::<u8>::none().count(), 0);
        assert_eq!(Values::one(3).len(), 1);
        let mut buffer = vec![1, 2, 3];
        assert_eq!(Values::batch(&mut buffer).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(buffer.is_empty());
    }
}
