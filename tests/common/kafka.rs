//! Helpers for the Kafka tests: the broker's address, fresh topics, a plain producer and
//! a plain reader (librdkafka through `rdkafka`, nothing of rivulet), the independent
//! reference the tests compare against.
//!
//! The broker is started by `.ci/kafka.sh`, which exports `RIVULET_KAFKA_BROKERS`. Without
//! it a test prints that it skips, except under `CI`, where a missing broker fails it.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::HANG_GUARD;

/// The broker's bootstrap address, or `None` (with a message) if the test must skip.
///
/// # Panics
///
/// Under `CI` when `RIVULET_KAFKA_BROKERS` is unset: CI must run the Kafka tests.
pub(crate) fn brokers(test: &str) -> Option<String> {
    match std::env::var("RIVULET_KAFKA_BROKERS") {
        Ok(brokers) if !brokers.is_empty() => Some(brokers),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "RIVULET_KAFKA_BROKERS is unset: CI must run the Kafka tests (.ci/run starts \
                 the broker with .ci/kafka.sh)"
            );
            eprintln!(
                "SKIPPED {test}: no Kafka broker (run the tests under .ci/kafka.sh, which \
                 starts one and sets RIVULET_KAFKA_BROKERS)"
            );
            None
        }
    }
}

/// A topic name no other test (or earlier run against the same broker) uses.
pub(crate) fn unique_topic(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates `topic` with `partitions` partitions (replication 1).
pub(crate) fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    rivulet::kafka::admin::ensure_topics(
        &rivulet::kafka::KafkaConfig::new(brokers),
        &[(topic, partitions)],
        HANG_GUARD,
    )
    .unwrap_or_else(|error| panic!("create topic {topic}: {error}"));
}

/// A record as the plain reader saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Plain {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A plain producer of test records.
pub(crate) struct TestProducer {
    producer: BaseProducer,
    topic: String,
}

impl TestProducer {
    /// A producer to `topic`.
    pub(crate) fn new(brokers: &str, topic: &str) -> Self {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "0")
            .create()
            .expect("create a producer");
        TestProducer {
            producer,
            topic: topic.to_string(),
        }
    }

    /// Sends one record to `partition` with `key`, `value`, an optional timestamp (ms)
    /// and headers.
    pub(crate) fn send(
        &self,
        partition: i32,
        key: Option<&[u8]>,
        value: &[u8],
        timestamp: Option<i64>,
        headers: &[(&str, &[u8])],
    ) {
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic)
            .partition(partition)
            .payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(timestamp) = timestamp {
            record = record.timestamp(timestamp);
        }
        if !headers.is_empty() {
            let mut owned = OwnedHeaders::new();
            for (name, value) in headers {
                owned = owned.insert(Header {
                    key: name,
                    value: Some(*value),
                });
            }
            record = record.headers(owned);
        }
        let deadline = Instant::now() + HANG_GUARD;
        let mut record = record;
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((error, back)) => {
                    // A full local queue: serve deliveries and retry.
                    assert!(Instant::now() < deadline, "produce hung: {error}");
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                }
            }
        }
        self.producer.poll(Duration::ZERO);
    }

    /// Waits until everything sent is acknowledged by the broker.
    pub(crate) fn flush(&self) {
        self.producer.flush(HANG_GUARD).expect("flush the producer");
    }
}

/// Every record of `topic`'s `partitions` from the beginning to the end they have now
/// (their high watermarks), read by a plain consumer, in (partition, offset) order.
pub(crate) fn read_topic(brokers: &str, topic: &str, partitions: i32) -> Vec<Plain> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique_topic("rivulet-test-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("create a consumer");
    let mut ends = Vec::new();
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, HANG_GUARD)
            .expect("fetch watermarks");
        ends.push(high);
        if high > low {
            list.add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
        }
    }
    let mut records = Vec::new();
    if list.count() == 0 {
        return records;
    }
    consumer.assign(&list).expect("assign");
    let deadline = Instant::now() + HANG_GUARD;
    let mut done = vec![false; partitions as usize];
    for (partition, high) in ends.iter().enumerate() {
        done[partition] = *high == 0;
    }
    while done.iter().any(|d| !d) {
        assert!(Instant::now() < deadline, "reading {topic} hung");
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.expect("consume");
        let partition = message.partition();
        let offset = message.offset();
        if offset + 1 >= ends[partition as usize] {
            done[partition as usize] = true;
        }
        if offset >= ends[partition as usize] {
            continue;
        }
        records.push(plain(&message));
    }
    records.sort();
    records
}

/// A consumed message as a [`Plain`] record.
pub(crate) fn plain<M: Message>(message: &M) -> Plain {
    Plain {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        timestamp: message.timestamp().to_millis(),
        headers: message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A message read back: key and value as text.
pub(crate) type Read = (Option<String>, String);

/// Everything a `read_committed` consumer sees in `topic` (every partition, from the
/// beginning to the end of what is committed), partition by partition in offset order.
pub(crate) fn read_committed(brokers: &str, topic: &str) -> Vec<Read> {
    read(brokers, topic, "read_committed")
}

/// Everything in `topic`, committed or not (`read_uncommitted`).
pub(crate) fn read_uncommitted(brokers: &str, topic: &str) -> Vec<Read> {
    read(brokers, topic, "read_uncommitted")
}

fn read(brokers: &str, topic: &str, isolation: &str) -> Vec<Read> {
    use rdkafka::error::KafkaError;
    use std::collections::HashSet;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique_topic("reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .create()
        .expect("a consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    assert!(!partitions.is_empty(), "topic {topic} has no partitions");
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment
            .add_partition_offset(topic, *partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut at_end: HashSet<i32> = HashSet::new();
    let mut messages: Vec<(i32, i64, Read)> = Vec::new();
    let deadline = Instant::now() + HANG_GUARD;
    while at_end.len() < partitions.len() {
        assert!(
            Instant::now() < deadline,
            "reading {topic}: partitions {at_end:?} of {partitions:?} reached their end (hang)"
        );
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => {
                at_end.remove(&message.partition());
                let text = |bytes: Option<&[u8]>| {
                    bytes.map(|b| String::from_utf8(b.to_vec()).expect("UTF-8 test message"))
                };
                messages.push((
                    message.partition(),
                    message.offset(),
                    (
                        text(message.key()),
                        text(message.payload()).unwrap_or_default(),
                    ),
                ));
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(error)) => panic!("reading {topic}: {error}"),
        }
    }
    messages.sort_by_key(|(partition, offset, _)| (*partition, *offset));
    messages.into_iter().map(|(_, _, read)| read).collect()
}

/// Whether the broker commits Kafka transactions, for the tests that need them (probed
/// once per test binary with a one-record transaction). tansu 0.6.0 does not: it has no
/// `EndTxn`, so a commit fails with "EndTxnRequest (KIP-98) not supported by broker".
///
/// Without them the test prints that it skips and returns `false`, unless
/// `RIVULET_KAFKA_TRANSACTIONS` is set (the broker is meant to have them), where it
/// fails.
pub(crate) fn transactions(brokers: &str, test: &str) -> bool {
    static PROBED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let probed = PROBED.get_or_init(|| probe_transactions(brokers));
    match probed {
        Ok(()) => true,
        Err(reason) => {
            assert!(
                std::env::var_os("RIVULET_KAFKA_TRANSACTIONS").is_none(),
                "RIVULET_KAFKA_TRANSACTIONS is set but the broker at {brokers} cannot commit \
                 a transaction: {reason}"
            );
            eprintln!(
                "SKIPPED {test}: the broker at {brokers} cannot commit Kafka transactions \
                 ({reason}); set RIVULET_KAFKA_TRANSACTIONS=1 with a broker that can"
            );
            false
        }
    }
}

fn probe_transactions(brokers: &str) -> Result<(), String> {
    let topic = unique_topic("probe-transactions");
    create_topic(brokers, &topic, 1);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("transactional.id", unique_topic("probe-transactions"))
        .create()
        .map_err(|e| e.to_string())?;
    let timeout = Duration::from_secs(10);
    producer
        .init_transactions(timeout)
        .map_err(|e| e.to_string())?;
    producer.begin_transaction().map_err(|e| e.to_string())?;
    producer
        .send(BaseRecord::<[u8], [u8]>::to(&topic).payload(b"probe"))
        .map_err(|(e, _)| e.to_string())?;
    producer
        .commit_transaction(timeout)
        .map_err(|e| e.to_string())?;
    Ok(())
}
