//! What travels on an edge: records and the control events that share their ring.
//!
//! Control events ride in-band, in order with the records, so an epoch marker can never
//! overtake a record pushed before it, and end-of-stream is always the last event of an
//! edge. Checkpoints depend on that ordering: the state an operator snapshots on a marker
//! reflects exactly the records that preceded the marker on each of its inputs.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// A checkpoint epoch number. Epoch `e` covers everything a source emitted before the
/// marker of epoch `e`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Epoch(pub u64);

/// A point in event time or wall-clock time: microseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The smallest timestamp; a watermark at `MIN` says nothing yet.
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The largest timestamp; a watermark at `MAX` closes all of event time.
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// The current wall-clock time.
    ///
    /// ```
    /// let t = rivulet::Timestamp::now();
    /// assert!(t.0 > 1_600_000_000_000_000); // after September 2020, in µs
    /// ```
    pub fn now() -> Timestamp {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_micros() as i64)
    }

    /// Microseconds since the Unix epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }
}

/// One event on an edge.
///
/// `Record` carries user data; the other variants are control events that flow through
/// the dataflow in order with the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<T> {
    /// A data record.
    Record(T),
    /// Event time has reached this point on this edge: no later record on it is older.
    Watermark(Timestamp),
    /// The epoch marker (checkpoint barrier) of a Chandy–Lamport snapshot.
    Marker(Epoch),
    /// The edge went idle (it stops holding back the watermark of operators with several
    /// inputs) or became active again. See [`WatermarkStatus`].
    Status(WatermarkStatus),
    /// A latency marker (Flink's): the source handed a record to the engine at this
    /// instant, nanoseconds on the process's latency clock
    /// ([`metrics::latency`](crate::metrics::latency)). It follows that record on every
    /// edge, so the operators it reaches record how long the record took to get there.
    Latency(u64),
    /// Nothing follows on this edge.
    End,
}

/// Whether an input takes part in the watermark.
///
/// An input that produced nothing for a while (a quiet source, a Kafka partition without
/// traffic) would hold the minimum watermark of every operator downstream back forever.
/// Its source announces `Idle`; operators with several inputs then leave it out of the
/// minimum until it announces `Active` again, before its next record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
// As wide as the other control payloads (`Timestamp`, `Epoch`): `Event<u64>` then stays
// a (tag, word) pair the compiler passes in two registers. With a one-byte payload here,
// every `Event` went through memory, and the byte-wise stores building it and the 16-byte
// load reading it back cost a store-forwarding stall per record (a two-thread pipeline
// ran 3–4× slower; BENCHMARKS.md, "Operator context").
#[repr(u64)]
pub enum WatermarkStatus {
    /// The input produces records and its watermark counts.
    Active,
    /// The input is idle: its watermark does not hold others back.
    Idle,
}

impl<T> Event<T> {
    /// Splits the event into a record or a [`Signal`].
    #[inline]
    pub fn into_parts(self) -> Result<T, Signal> {
        match self {
            Event::Record(record) => Ok(record),
            Event::Watermark(time) => Err(Signal::Watermark(time)),
            Event::Marker(epoch) => Err(Signal::Marker(epoch)),
            Event::Status(status) => Err(Signal::Status(status)),
            Event::Latency(stamp) => Err(Signal::Latency(stamp)),
            Event::End => Err(Signal::End),
        }
    }
}

/// A control event as an operator sees it, without a record type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// See [`Event::Watermark`].
    Watermark(Timestamp),
    /// See [`Event::Marker`].
    Marker(Epoch),
    /// See [`Event::Status`].
    Status(WatermarkStatus),
    /// See [`Event::Latency`].
    Latency(u64),
    /// See [`Event::End`].
    End,
}

impl<T> From<Signal> for Event<T> {
    #[inline]
    fn from(signal: Signal) -> Self {
        match signal {
            Signal::Watermark(time) => Event::Watermark(time),
            Signal::Marker(epoch) => Event::Marker(epoch),
            Signal::Status(status) => Event::Status(status),
            Signal::Latency(stamp) => Event::Latency(stamp),
            Signal::End => Event::End,
        }
    }
}
