//! `rivulet::kafka::admin` against the broker: topics created, an existing topic with
//! the right partition count accepted and one with another count refused, topics
//! deleted, a missing topic's deletion not an error. The reference is the broker's own
//! metadata, read by a plain librdkafka client.
#![cfg(feature = "kafka")]

mod common;

use common::kafka::{brokers, unique_topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use rivulet::kafka::admin::{delete_topics, ensure_topics, KafkaAdminError};
use rivulet::kafka::KafkaConfig;
use std::time::{Duration, Instant};

/// The partition count of `topic` as the broker reports it (`None`: no such topic).
fn partitions(brokers: &str, topic: &str) -> Option<usize> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let metadata = client
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .unwrap();
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .filter(|count| *count > 0)
}

#[test]
fn topics_are_ensured_checked_and_deleted() {
    let Some(brokers) = brokers("topics_are_ensured_checked_and_deleted") else {
        return;
    };
    let config = KafkaConfig::new(&brokers);
    let timeout = Duration::from_secs(30);
    let (a, b) = (unique_topic("admin-a"), unique_topic("admin-b"));
    ensure_topics(&config, &[(&a, 3), (&b, 1)], timeout).unwrap();
    assert_eq!(partitions(&brokers, &a), Some(3));
    assert_eq!(partitions(&brokers, &b), Some(1));

    // Again, with the same counts: nothing to do.
    ensure_topics(&config, &[(&a, 3), (&b, 1)], timeout).unwrap();
    // Another count for an existing topic is refused, naming both counts.
    let error = ensure_topics(&config, &[(&a, 6)], timeout).unwrap_err();
    assert!(
        matches!(
            &error,
            KafkaAdminError::PartitionCount { topic, expected: 6, found: 3 } if *topic == a
        ),
        "{error}"
    );

    delete_topics(&config, &[&a, &b], timeout).unwrap();
    let deadline = Instant::now() + timeout;
    while partitions(&brokers, &a).is_some() || partitions(&brokers, &b).is_some() {
        assert!(Instant::now() < deadline, "the topics were not deleted");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Deleting what is not there is not an error.
    delete_topics(&config, &[&a], timeout).unwrap();
}

#[test]
fn no_broker_is_a_timeout_or_client_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = ensure_topics(
        &KafkaConfig::new(format!("127.0.0.1:{port}")),
        &[("t", 1)],
        Duration::from_secs(2),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            KafkaAdminError::Timeout { .. } | KafkaAdminError::Client { .. }
        ),
        "{error}"
    );
}
