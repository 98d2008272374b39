//! Kafka test helpers: the broker from `RIVULET_KAFKA_BROKERS` (started by
//! `.ci/kafka.sh`), fresh topics, and reading a topic back as a `read_committed`
//! consumer.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

/// The broker's bootstrap address, or `None` (with a message) when the test must skip:
/// outside CI without `RIVULET_KAFKA_BROKERS`. In CI (`CI` set) a missing broker fails
/// the test; `.ci/run` starts one.
pub(crate) fn brokers(test: &str) -> Option<String> {
    match std::env::var("RIVULET_KAFKA_BROKERS") {
        Ok(brokers) if !brokers.is_empty() => Some(brokers),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "RIVULET_KAFKA_BROKERS is not set: CI must run the Kafka tests (.ci/run starts a broker)"
            );
            eprintln!(
                "SKIPPED {test}: RIVULET_KAFKA_BROKERS is not set (start a broker with \
                 .ci/kafka.sh, or point it at one)"
            );
            None
        }
    }
}

/// A topic name no other test (or run) uses.
pub(crate) fn unique_topic(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{what}-{}-{micros}-{n}", std::process::id())
}

/// Runs a future to completion on this thread (the admin client's calls are futures;
/// the tests have no async runtime).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = Instant::now() + super::HANG_GUARD;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        assert!(Instant::now() < deadline, "a Kafka admin call hung");
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// Creates `topic` with `partitions` partitions.
pub(crate) fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("an admin client");
    let results = block_on(admin.create_topics(
        &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .expect("create_topics answers");
    for result in results {
        result.unwrap_or_else(|(name, code)| panic!("cannot create topic {name}: {code}"));
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
    let deadline = Instant::now() + super::HANG_GUARD;
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
