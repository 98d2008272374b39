//! [`KafkaRecord`]: one record read from a Kafka partition, with its coordinates.

use crate::event::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a Kafka record's timestamp means (Kafka's `timestampType`; Spark's
/// `timestampType` column: 0 create time, 1 log-append time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimestampKind {
    /// The record has no timestamp (written by a pre-0.10 client).
    None,
    /// Set by the producer (`CreateTime`, Kafka's default).
    CreateTime,
    /// Set by the broker when it appended the record (`LogAppendTime`).
    LogAppendTime,
}

/// One record of a Kafka topic, as a Kafka source emits it: Spark's Kafka source schema
/// (`key`, `value`, `topic`, `partition`, `offset`, `timestamp`, `timestampType`,
/// `headers`), with the value raw (`V = Option<Vec<u8>>`, `None` for a tombstone) or
/// decoded into a type ([`QueryBuilder::read_kafka_as`](crate::QueryBuilder::read_kafka_as)).
///
/// ```
/// use rivulet::kafka::{KafkaRecord, TimestampKind};
/// use rivulet::Timestamp;
///
/// let record = KafkaRecord {
///     topic: "pumps".into(),
///     partition: 3,
///     offset: 42,
///     timestamp: Some(1_700_000_000_250),
///     timestamp_kind: TimestampKind::CreateTime,
///     key: Some(b"COHUTTA".to_vec()),
///     value: Some(b"0.4".to_vec()),
///     headers: Vec::new(),
/// };
/// // Kafka's milliseconds as rivulet's event time (microseconds).
/// assert_eq!(record.event_time(), Timestamp(1_700_000_000_250_000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaRecord<V = Option<Vec<u8>>> {
    /// The topic (shared by all records of a partition: cloning it is a reference count).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// Kafka's timestamp, milliseconds since the Unix epoch (`None` if the record has
    /// none).
    pub timestamp: Option<i64>,
    /// What the timestamp means.
    pub timestamp_kind: TimestampKind,
    /// The key, if the record has one.
    pub key: Option<Vec<u8>>,
    /// The value: raw bytes (`None`: a tombstone), or decoded.
    pub value: V,
    /// The headers, in order (names may repeat; a header value may be null).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl<V> KafkaRecord<V> {
    /// Kafka's timestamp as event time (milliseconds to microseconds), for
    /// [`Stream::with_event_time`](crate::Stream::with_event_time):
    /// `.with_event_time(KafkaRecord::event_time)`. A record without a timestamp has
    /// [`Timestamp::MIN`] (it never moves the watermark, and a window aggregate behind a
    /// watermark counts it as late once the watermark has moved).
    pub fn event_time(&self) -> Timestamp {
        match self.timestamp {
            Some(ms) => Timestamp(ms.saturating_mul(1000)),
            None => Timestamp::MIN,
        }
    }

    /// The key as UTF-8 text, if it is present and valid UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|key| std::str::from_utf8(key).ok())
    }

    /// The first header named `name`, if any (its value may be null: `Some(None)`).
    pub fn header(&self, name: &str) -> Option<Option<&[u8]>> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_deref())
    }

    /// The same record with its value replaced by `f(value)`.
    pub fn map_value<W>(self, f: impl FnOnce(V) -> W) -> KafkaRecord<W> {
        KafkaRecord {
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            timestamp_kind: self.timestamp_kind,
            key: self.key,
            value: f(self.value),
            headers: self.headers,
        }
    }
}
