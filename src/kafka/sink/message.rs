//! Turning records into Kafka messages: the reusable [`KafkaMessage`] buffer, the
//! [`MessageEncoder`] trait (closures implement it), the [`Json`] and [`Csv`] encoders,
//! and `Held`, the messages an instance keeps back while an earlier epoch's transaction
//! commits.

use crate::error::BoxError;
use serde::Serialize;
use std::fmt;

/// One outgoing message, filled by a [`MessageEncoder`] for each record. The sink
/// reuses it (its buffers keep their capacity), so encoding allocates nothing per
/// record once the buffers have grown.
///
/// A message starts with no key, an empty value, no partition (the producer's
/// partitioner picks one from the key) and no timestamp (the producer's clock).
///
/// ```
/// use rivulet::kafka::sink::KafkaMessage;
///
/// let mut message = KafkaMessage::default();
/// message.set_key("pump-7");
/// message.json_value(&("pump-7", 85.0))?;
/// message.set_timestamp_ms(1_700_000_000_000);
/// assert_eq!(message.key(), Some(&b"pump-7"[..]));
/// assert_eq!(message.value(), Some(&br#"["pump-7",85.0]"#[..]));
/// # Ok::<(), rivulet::error::BoxError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaMessage {
    key: Vec<u8>,
    has_key: bool,
    value: Vec<u8>,
    null_value: bool,
    partition: Option<i32>,
    timestamp: Option<i64>,
}

impl fmt::Debug for KafkaMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaMessage")
            .field("key", &self.key().map(String::from_utf8_lossy))
            .field("value", &self.value().map(String::from_utf8_lossy))
            .field("partition", &self.partition)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

impl KafkaMessage {
    /// Back to an empty message without key, partition or timestamp (capacity kept).
    pub(super) fn clear(&mut self) {
        self.key.clear();
        self.has_key = false;
        self.value.clear();
        self.null_value = false;
        self.partition = None;
        self.timestamp = None;
    }

    /// Sets the key to `key`'s bytes.
    pub fn set_key(&mut self, key: impl AsRef<[u8]>) {
        self.key.clear();
        self.key.extend_from_slice(key.as_ref());
        self.has_key = true;
    }

    /// The key's buffer, to write into (the message has a key from now on, empty if
    /// nothing is written).
    pub fn key_buffer(&mut self) -> &mut Vec<u8> {
        self.has_key = true;
        &mut self.key
    }

    /// Sets the key to `key` as JSON.
    ///
    /// # Errors
    ///
    /// When serde_json cannot encode it (a map with non-string keys, say).
    pub fn json_key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<(), BoxError> {
        self.key.clear();
        self.has_key = true;
        serde_json::to_writer(&mut self.key, key)?;
        Ok(())
    }

    /// Sets the value to `value`'s bytes.
    pub fn set_value(&mut self, value: impl AsRef<[u8]>) {
        self.value.clear();
        self.value.extend_from_slice(value.as_ref());
        self.null_value = false;
    }

    /// The value's buffer, to write into.
    pub fn value_buffer(&mut self) -> &mut Vec<u8> {
        self.null_value = false;
        &mut self.value
    }

    /// Sets the value to `value` as JSON (an object for a struct, an array for a tuple).
    ///
    /// # Errors
    ///
    /// When serde_json cannot encode it.
    pub fn json_value<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), BoxError> {
        self.value.clear();
        self.null_value = false;
        serde_json::to_writer(&mut self.value, value)?;
        Ok(())
    }

    /// Makes the value null: a tombstone, which deletes the key in a compacted topic.
    pub fn set_null_value(&mut self) {
        self.value.clear();
        self.null_value = true;
    }

    /// Sends the message to `partition` instead of the partitioner's choice.
    pub fn set_partition(&mut self, partition: i32) {
        self.partition = Some(partition);
    }

    /// Sets the message's timestamp, in milliseconds since the Unix epoch (say, the
    /// record's event time).
    pub fn set_timestamp_ms(&mut self, timestamp: i64) {
        self.timestamp = Some(timestamp);
    }

    /// The key, if the message has one.
    pub fn key(&self) -> Option<&[u8]> {
        self.has_key.then_some(self.key.as_slice())
    }

    /// The value; `None` for a tombstone.
    pub fn value(&self) -> Option<&[u8]> {
        (!self.null_value).then_some(self.value.as_slice())
    }

    /// The partition, if chosen.
    pub fn partition(&self) -> Option<i32> {
        self.partition
    }

    /// The timestamp, if set.
    pub fn timestamp_ms(&self) -> Option<i64> {
        self.timestamp
    }
}

/// Turns a record into a Kafka message. Cloned once per sink instance; runs on the
/// sink's thread, once per record.
///
/// Any `FnMut(&T, &mut KafkaMessage) -> Result<(), BoxError>` that is `Clone + Send` is
/// one, so a keyed JSON encoder is a closure:
///
/// ```
/// use rivulet::kafka::sink::{KafkaMessage, MessageEncoder};
///
/// #[derive(serde::Serialize)]
/// struct Alert {
///     pump: String,
///     psi: f64,
/// }
///
/// let mut encoder = |alert: &Alert, message: &mut KafkaMessage| {
///     message.set_key(&alert.pump);
///     message.json_value(alert)
/// };
/// let mut message = KafkaMessage::default();
/// encoder.encode(&Alert { pump: "BUTTE".into(), psi: 85.0 }, &mut message)?;
/// assert_eq!(message.key(), Some(&b"BUTTE"[..]));
/// assert_eq!(message.value(), Some(&br#"{"pump":"BUTTE","psi":85.0}"#[..]));
/// # Ok::<(), rivulet::error::BoxError>(())
/// ```
pub trait MessageEncoder<T>: Clone + Send + 'static {
    /// Fills `message` (empty, without key) from `record`.
    ///
    /// # Errors
    ///
    /// A record that cannot be encoded; it fails the query
    /// ([`KafkaSinkError::Encode`](super::KafkaSinkError::Encode)).
    fn encode(&mut self, record: &T, message: &mut KafkaMessage) -> Result<(), BoxError>;
}

impl<T, F> MessageEncoder<T> for F
where
    F: FnMut(&T, &mut KafkaMessage) -> Result<(), BoxError> + Clone + Send + 'static,
{
    #[inline]
    fn encode(&mut self, record: &T, message: &mut KafkaMessage) -> Result<(), BoxError> {
        self(record, message)
    }
}

/// The value is the record as JSON, without a key (what
/// [`KafkaSink::json`](super::KafkaSink::json) uses).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<T: Serialize> MessageEncoder<T> for Json {
    #[inline]
    fn encode(&mut self, record: &T, message: &mut KafkaMessage) -> Result<(), BoxError> {
        message.json_value(record)
    }
}

/// The value is the record as one CSV row without a header and without the line end,
/// and there is no key (what [`KafkaSink::csv`](super::KafkaSink::csv) uses). The
/// record must be flat, as for the file sink's CSV.
#[derive(Default)]
pub struct Csv {
    writer: Option<csv::Writer<Vec<u8>>>,
}

impl fmt::Debug for Csv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Csv").finish_non_exhaustive()
    }
}

impl Clone for Csv {
    /// A fresh encoder (the buffer is not shared).
    fn clone(&self) -> Self {
        Csv::default()
    }
}

impl<T: Serialize> MessageEncoder<T> for Csv {
    fn encode(&mut self, record: &T, message: &mut KafkaMessage) -> Result<(), BoxError> {
        // The writer appends to its own buffer, which cannot be cleared in place: read
        // the new row from where it starts, and start a new writer once the buffer is
        // large (so encoding allocates nothing per record on average).
        if self
            .writer
            .as_ref()
            .is_none_or(|w| w.get_ref().len() > CSV_BUFFER_BYTES)
        {
            self.writer = Some(
                csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(Vec::with_capacity(CSV_BUFFER_BYTES + 1024)),
            );
        }
        let writer = self.writer.as_mut().expect("created above");
        let start = writer.get_ref().len();
        writer.serialize(record)?;
        writer.flush()?;
        let row = &writer.get_ref()[start..];
        let end = row
            .iter()
            .rposition(|byte| !matches!(byte, b'\n' | b'\r'))
            .map_or(0, |last| last + 1);
        message.set_value(&row[..end]);
        Ok(())
    }
}

/// How much CSV a [`Csv`] encoder's buffer holds before it starts a new one.
const CSV_BUFFER_BYTES: usize = 64 * 1024;

/// Messages kept back in one buffer (no allocation per message once grown).
#[derive(Debug, Default)]
pub(super) struct Held {
    bytes: Vec<u8>,
    entries: Vec<HeldEntry>,
}

#[derive(Debug)]
struct HeldEntry {
    /// Key length, `None` without a key.
    key: Option<u32>,
    /// Value length, `None` for a tombstone.
    value: Option<u32>,
    partition: Option<i32>,
    timestamp: Option<i64>,
}

/// A message's parts, borrowed from a [`KafkaMessage`] or from [`Held`].
#[derive(Debug, Clone, Copy)]
pub(super) struct MessageRef<'a> {
    pub(super) key: Option<&'a [u8]>,
    pub(super) value: Option<&'a [u8]>,
    pub(super) partition: Option<i32>,
    pub(super) timestamp: Option<i64>,
}

impl KafkaMessage {
    pub(super) fn as_ref(&self) -> MessageRef<'_> {
        MessageRef {
            key: self.key(),
            value: self.value(),
            partition: self.partition,
            timestamp: self.timestamp,
        }
    }
}

impl Held {
    pub(super) fn push(&mut self, message: &KafkaMessage) {
        let key = message.key().map(|key| {
            self.bytes.extend_from_slice(key);
            key.len() as u32
        });
        let value = message.value().map(|value| {
            self.bytes.extend_from_slice(value);
            value.len() as u32
        });
        self.entries.push(HeldEntry {
            key,
            value,
            partition: message.partition,
            timestamp: message.timestamp,
        });
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
    }

    /// Calls `send` for each message in order; stops at the first error.
    pub(super) fn try_for_each<E>(
        &self,
        mut send: impl FnMut(MessageRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut at = 0;
        for entry in &self.entries {
            let mut take = |len: Option<u32>| {
                len.map(|len| {
                    let part = &self.bytes[at..at + len as usize];
                    at += len as usize;
                    part
                })
            };
            let key = take(entry.key);
            let value = take(entry.value);
            send(MessageRef {
                key,
                value,
                partition: entry.partition,
                timestamp: entry.timestamp,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Reading {
        pump: String,
        psi: f64,
    }

    fn reading(pump: &str, psi: f64) -> Reading {
        Reading {
            pump: pump.to_string(),
            psi,
        }
    }

    #[test]
    fn json_is_serde_json_and_has_no_key() {
        let mut message = KafkaMessage::default();
        let record = reading("BUTTE", 85.5);
        Json.encode(&record, &mut message).unwrap();
        assert_eq!(message.key(), None);
        assert_eq!(
            message.value().unwrap(),
            serde_json::to_vec(&record).unwrap()
        );
    }

    #[test]
    fn csv_rows_are_what_the_csv_crate_writes_without_the_line_end() {
        let mut encoder = Csv::default();
        let mut message = KafkaMessage::default();
        // Enough rows to pass the buffer limit, with quoting.
        for i in 0..5_000 {
            let record = reading(&format!("pump, \"{i}\""), i as f64 / 4.0);
            message.clear();
            encoder.encode(&record, &mut message).unwrap();
            let mut reference = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new());
            reference.serialize(&record).unwrap();
            let mut expected = reference.into_inner().unwrap();
            assert_eq!(expected.pop(), Some(b'\n'));
            assert_eq!(message.value().unwrap(), expected.as_slice(), "row {i}");
        }
    }

    #[test]
    fn clear_forgets_everything_but_capacity() {
        let mut message = KafkaMessage::default();
        message.set_key("k");
        message.set_null_value();
        message.set_partition(3);
        message.set_timestamp_ms(7);
        assert_eq!(message.value(), None);
        message.clear();
        assert_eq!(message, KafkaMessage::default());
        assert_eq!(message.value(), Some(&b""[..]));
    }

    #[test]
    fn held_messages_come_back_in_order_and_intact() {
        let mut held = Held::default();
        let mut expected = Vec::new();
        let mut message = KafkaMessage::default();
        for i in 0..100u32 {
            message.clear();
            if i % 3 != 0 {
                message.set_key(i.to_string());
            }
            if i % 5 == 0 {
                message.set_null_value();
            } else {
                message.set_value("v".repeat(i as usize));
            }
            if i % 2 == 0 {
                message.set_partition(i as i32 % 4);
                message.set_timestamp_ms(i as i64);
            }
            held.push(&message);
            expected.push(message.clone());
        }
        assert_eq!(held.len(), 100);
        let mut back = Vec::new();
        held.try_for_each(|m| {
            back.push((
                m.key.map(<[u8]>::to_vec),
                m.value.map(<[u8]>::to_vec),
                m.partition,
                m.timestamp,
            ));
            Ok::<(), ()>(())
        })
        .unwrap();
        let expected: Vec<_> = expected
            .iter()
            .map(|m| {
                (
                    m.key().map(<[u8]>::to_vec),
                    m.value().map(<[u8]>::to_vec),
                    m.partition(),
                    m.timestamp_ms(),
                )
            })
            .collect();
        assert_eq!(back, expected);
        held.clear();
        assert!(held.is_empty());
    }
}
