//! The test broker works: a record produced through it is consumed back, with its key,
//! value, timestamp and headers. Run under `.ci/kafka.sh` (see `tests/common/kafka.rs`).
#![cfg(feature = "kafka")]

mod common;

use common::kafka::{brokers, create_topic, read_topic, unique_topic, TestProducer};

#[test]
fn one_record_through_the_broker() {
    let Some(brokers) = brokers("kafka_smoke") else {
        return;
    };
    let topic = unique_topic("smoke");
    create_topic(&brokers, &topic, 1);
    let producer = TestProducer::new(&brokers, &topic);
    producer.send(
        0,
        Some(b"key"),
        b"value",
        Some(1_700_000_000_123),
        &[("origin", b"smoke")],
    );
    producer.flush();
    let records = read_topic(&brokers, &topic, 1);
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!((record.partition, record.offset), (0, 0));
    assert_eq!(record.key.as_deref(), Some(&b"key"[..]));
    assert_eq!(record.value.as_deref(), Some(&b"value"[..]));
    assert_eq!(record.timestamp, Some(1_700_000_000_123));
    assert_eq!(
        record.headers,
        [("origin".to_string(), Some(b"smoke".to_vec()))]
    );
}
