//! The Kafka source against a real broker (tansu, started by `.ci/kafka.sh`): what it
//! emits is compared with what a plain librdkafka consumer reads from the same topic
//! (`tests/common/kafka.rs`), record by record.
#![cfg(feature = "kafka")]

mod common;

use common::kafka::{brokers, create_topic, read_topic, unique_topic, Plain, TestProducer};
use common::wait_until;
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::error::BoxError;
use rivulet::format::{Format, ParseMode};
use rivulet::kafka::{
    KafkaConfig, KafkaRecord, KafkaSourceConfig, StartingOffsets, TimestampKind, TopicPartition,
};
use rivulet::sink::{EpochCommit, Sink};
use rivulet::window::TimeWindows;
use rivulet::{Epoch, OutputMode, Query, Trigger};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn plain(record: &KafkaRecord) -> Plain {
    Plain {
        partition: record.partition,
        offset: record.offset,
        key: record.key.clone(),
        value: record.value.clone(),
        timestamp: record.timestamp,
        headers: record.headers.clone(),
    }
}

fn config(brokers: &str, topic: &str) -> KafkaSourceConfig {
    KafkaSourceConfig::subscribe(KafkaConfig::new(brokers), [topic])
        .metadata_timeout(Duration::from_secs(20))
}

/// Produces `count` records round-robin over `partitions`, record `i` with key `k{i%7}`,
/// value `v{i}`, timestamp `base + i` ms and a header.
fn produce(producer: &TestProducer, partitions: i32, range: std::ops::Range<i32>, base: i64) {
    for i in range {
        producer.send(
            i % partitions,
            Some(format!("k{}", i % 7).as_bytes()),
            format!("v{i}").as_bytes(),
            Some(base + i64::from(i)),
            &[("seq", i.to_string().as_bytes())],
        );
    }
    producer.flush();
}

#[test]
fn every_record_with_its_coordinates_across_instances() {
    let Some(brokers) = brokers("every_record_with_its_coordinates_across_instances") else {
        return;
    };
    let topic = unique_topic("source-all");
    create_topic(&brokers, &topic, 3);
    let producer = TestProducer::new(&brokers, &topic);
    produce(&producer, 3, 0..90, 1_700_000_000_000);

    let mut query = Query::builder();
    let source = config(&brokers, &topic)
        .starting_offsets(StartingOffsets::Earliest)
        .instances(2);
    let stream = query.read_kafka("in", source);
    assert_eq!(stream.parallelism(), 2);
    let out = stream.to_memory("out");
    let running = query.start().unwrap();
    wait_until("the records there before the start", || out.len() >= 90);
    // And records produced while the query runs.
    produce(&producer, 3, 90..150, 1_700_000_000_000);
    wait_until("the records produced while running", || out.len() >= 150);
    running.stop().unwrap();

    let rows = out.rows();
    // Each partition's records in offset order.
    let mut last: HashMap<i32, i64> = HashMap::new();
    for record in &rows {
        assert_eq!(&*record.topic, topic);
        assert_eq!(record.timestamp_kind, TimestampKind::CreateTime);
        let previous = last.insert(record.partition, record.offset);
        assert!(
            previous.is_none_or(|previous| previous < record.offset),
            "partition {} out of order",
            record.partition
        );
    }
    let mut got: Vec<Plain> = rows.iter().map(plain).collect();
    got.sort();
    let expected = read_topic(&brokers, &topic, 3);
    assert_eq!(expected.len(), 150);
    assert_eq!(got, expected);
}

#[test]
fn starting_offsets_latest_and_explicit() {
    let Some(brokers) = brokers("starting_offsets_latest_and_explicit") else {
        return;
    };
    let topic = unique_topic("source-start");
    create_topic(&brokers, &topic, 2);
    let producer = TestProducer::new(&brokers, &topic);
    produce(&producer, 2, 0..20, 0);

    // Latest (the default): only what comes after the start.
    let mut query = Query::builder();
    let latest = query
        .read_kafka("latest", config(&brokers, &topic))
        .to_memory("latest");
    // Explicit: partition 0 from offset 4, partition 1 from the beginning (-2).
    let offsets = BTreeMap::from([
        (TopicPartition::new(&topic, 0), 4),
        (TopicPartition::new(&topic, 1), -2),
    ]);
    let explicit = query
        .read_kafka(
            "explicit",
            config(&brokers, &topic).starting_offsets(StartingOffsets::Offsets(offsets)),
        )
        .to_memory("explicit");
    let running = query.start().unwrap();
    produce(&producer, 2, 20..30, 0);
    let all = read_topic(&brokers, &topic, 2);
    let after: Vec<&Plain> = all.iter().filter(|r| r.offset >= 10).collect();
    let from: Vec<&Plain> = all
        .iter()
        .filter(|r| r.partition == 1 || r.offset >= 4)
        .collect();
    wait_until("latest's records", || latest.len() >= after.len());
    wait_until("explicit's records", || explicit.len() >= from.len());
    running.stop().unwrap();
    let sorted = |rows: Vec<KafkaRecord>| {
        let mut rows: Vec<Plain> = rows.iter().map(plain).collect();
        rows.sort();
        rows
    };
    assert_eq!(
        sorted(latest.rows()),
        after.into_iter().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        sorted(explicit.rows()),
        from.into_iter().cloned().collect::<Vec<_>>()
    );

    // Explicit offsets must name every partition read.
    let mut query = Query::builder();
    let partial = BTreeMap::from([(TopicPartition::new(&topic, 0), 0)]);
    query
        .read_kafka(
            "partial",
            config(&brokers, &topic).starting_offsets(StartingOffsets::Offsets(partial)),
        )
        .for_each(|_| {});
    let error = query.start().unwrap_err().to_string();
    assert!(
        error.contains(&format!("{topic}-1")) && error.contains("starting_offsets"),
        "{error}"
    );
}

#[test]
fn max_offsets_per_trigger_splits_batches_by_backlog() {
    let Some(brokers) = brokers("max_offsets_per_trigger_splits_batches_by_backlog") else {
        return;
    };
    let topic = unique_topic("source-cap");
    create_topic(&brokers, &topic, 2);
    let producer = TestProducer::new(&brokers, &topic);
    // Backlogs of 300 and 100.
    for i in 0..400 {
        let partition = i32::from(i >= 300);
        producer.send(partition, None, format!("{i}").as_bytes(), None, &[]);
    }
    producer.flush();

    let mut query = Query::builder();
    query
        .trigger(Trigger::MicroBatch {
            interval: Duration::ZERO,
        })
        .recent_progress_capacity(100);
    let out = query
        .read_kafka(
            "in",
            config(&brokers, &topic)
                .starting_offsets(StartingOffsets::Earliest)
                .max_offsets_per_trigger(40),
        )
        .to_memory("out");
    let running = query.start().unwrap();
    wait_until("every record", || out.len() >= 400);
    running.stop().unwrap();

    // Spark's rule: 40 offsets a batch, split 3 : 1 as the backlogs are, so every batch
    // takes the next 30 of partition 0 and the next 10 of partition 1.
    let batches: Vec<u64> = running
        .recent_progress()
        .iter()
        .map(|progress| progress.num_input_rows)
        .filter(|rows| *rows > 0)
        .collect();
    assert_eq!(batches, [40; 10]);
    let rows = out.rows();
    assert_eq!(rows.len(), 400);
    for (batch, records) in rows.chunks(40).enumerate() {
        let batch = batch as i64;
        let mut offsets: Vec<(i32, i64)> =
            records.iter().map(|r| (r.partition, r.offset)).collect();
        offsets.sort();
        let expected: Vec<(i32, i64)> = (batch * 30..batch * 30 + 30)
            .map(|offset| (0, offset))
            .chain((batch * 10..batch * 10 + 10).map(|offset| (1, offset)))
            .collect();
        assert_eq!(offsets, expected, "batch {batch}");
    }
}

#[test]
fn kafka_timestamps_are_event_time() {
    let Some(brokers) = brokers("kafka_timestamps_are_event_time") else {
        return;
    };
    let topic = unique_topic("source-time");
    create_topic(&brokers, &topic, 2);
    let producer = TestProducer::new(&brokers, &topic);
    // (key, seconds) over two partitions, out of order across them; then one record far
    // ahead whose watermark closes every earlier window.
    let mut random = common::Rng::new(17);
    let events: Vec<(String, i64)> = (0..200)
        .map(|_| {
            (
                format!("k{}", random.below(3)),
                1_000 + random.below(100) as i64,
            )
        })
        .collect();
    for (i, (key, seconds)) in events.iter().enumerate() {
        producer.send(
            (i % 2) as i32,
            Some(key.as_bytes()),
            b"",
            Some(seconds * 1000),
            &[],
        );
    }
    producer.send(0, Some(b"closer"), b"", Some(10_000_000), &[]);
    producer.flush();

    let mut query = Query::builder();
    query
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(5),
        })
        .output_mode(OutputMode::Append);
    let counts = query
        .read_kafka(
            "in",
            config(&brokers, &topic).starting_offsets(StartingOffsets::Earliest),
        )
        .with_event_time(KafkaRecord::event_time)
        .with_watermark(Duration::ZERO)
        .key_by(|record| record.key_str().unwrap_or_default().to_string())
        .window(
            TimeWindows::tumbling(Duration::from_secs(10)).unwrap(),
            KafkaRecord::event_time,
        )
        .count()
        .to_memory("counts");
    // The reference: counts per key and 10 s window.
    let mut expected: BTreeMap<(String, i64), u64> = BTreeMap::new();
    for (key, seconds) in &events {
        *expected
            .entry((key.clone(), seconds / 10 * 10))
            .or_default() += 1;
    }
    let running = query.start().unwrap();
    wait_until("every window closed", || counts.len() >= expected.len());
    running.stop().unwrap();
    let got: BTreeMap<(String, i64), u64> = counts
        .rows()
        .into_iter()
        .map(|(key, window, count)| ((key, window.start.0 / 1_000_000), count))
        .collect();
    assert_eq!(got, expected);
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Reading {
    pump: String,
    psi: f64,
}

#[test]
fn json_values_decode_and_malformed_ones_go_to_quarantine() {
    let Some(brokers) = brokers("json_values_decode_and_malformed_ones_go_to_quarantine") else {
        return;
    };
    let topic = unique_topic("source-json");
    create_topic(&brokers, &topic, 1);
    let producer = TestProducer::new(&brokers, &topic);
    let values: Vec<&[u8]> = vec![
        br#"{"pump":"p1","psi":0.5}"#,
        b"not json",
        br#"{"pump":"p2","psi":1.5}"#,
        br#"{"pump":"p3"}"#,
        br#"{"pump":"p4","psi":2.5}"#,
    ];
    for value in &values {
        producer.send(0, None, value, None, &[]);
    }
    producer.flush();
    let quarantine = tempfile::tempdir().unwrap();

    let mut query = Query::builder();
    let out = query
        .read_kafka_as::<Reading>(
            "pumps",
            config(&brokers, &topic)
                .starting_offsets(StartingOffsets::Earliest)
                .mode(ParseMode::DropMalformed)
                .quarantine_dir(quarantine.path()),
            Format::JsonLines,
        )
        .map(|record| (record.offset, record.value))
        .to_memory("out");
    let running = query.start().unwrap();
    wait_until("the good records", || out.len() >= 3);
    wait_until("the malformed records counted", || {
        running
            .progress()
            .operator("pumps")
            .is_some_and(|op| op.counters.get("dropped_rows") == Some(&2))
    });
    running.stop().unwrap();
    let reading = |pump: &str, psi| Reading {
        pump: pump.into(),
        psi,
    };
    assert_eq!(
        out.rows(),
        [
            (0, reading("p1", 0.5)),
            (2, reading("p2", 1.5)),
            (4, reading("p4", 2.5))
        ]
    );
    let progress = running.progress();
    assert_eq!(
        progress.operator("pumps").unwrap().counters["malformed_rows"],
        2
    );
    let text = std::fs::read_to_string(quarantine.path().join("_quarantine/pumps.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let places: Vec<(String, i64, i64, String)> = entries
        .iter()
        .map(|e| {
            (
                e["topic"].as_str().unwrap().to_string(),
                e["partition"].as_i64().unwrap(),
                e["offset"].as_i64().unwrap(),
                e["record"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        places,
        [
            (topic.clone(), 0, 1, "not json".to_string()),
            (topic.clone(), 0, 3, r#"{"pump":"p3"}"#.to_string()),
        ]
    );

    // FailFast: the query fails naming the partition and offset.
    let mut query = Query::builder();
    query
        .read_kafka_as::<Reading>(
            "strict",
            config(&brokers, &topic)
                .starting_offsets(StartingOffsets::Earliest)
                .mode(ParseMode::FailFast),
            Format::JsonLines,
        )
        .for_each(|_| {});
    let running = query.start().unwrap();
    let error = common::finish(&running, "fail fast")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!("{topic}-0")) && error.contains("offset 1"),
        "{error}"
    );
}

/// What [`EpochSink`] prepared: (run, epoch, its sorted (partition, offset)s).
type Prepared = Arc<Mutex<Vec<(u32, u64, Vec<(i32, i64)>)>>>;

/// Records the (partition, offset)s of every epoch it prepares, per run; the commit of
/// `fail_epoch` fails.
#[derive(Debug, Clone)]
struct EpochSink {
    run: u32,
    prepared: Prepared,
    rows: Vec<(i32, i64)>,
    fail_epoch: Option<u64>,
}

impl Sink<KafkaRecord> for EpochSink {
    fn write(&mut self, record: KafkaRecord) -> Result<(), BoxError> {
        self.rows.push((record.partition, record.offset));
        Ok(())
    }

    fn prepare_commit(&mut self, epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        if self.rows.is_empty() {
            return Ok(None);
        }
        let mut rows = std::mem::take(&mut self.rows);
        rows.sort();
        self.prepared
            .lock()
            .unwrap()
            .push((self.run, epoch.0, rows));
        let fail = self.fail_epoch == Some(epoch.0);
        Ok(Some(Box::new(move || {
            if fail {
                return Err("injected commit failure".into());
            }
            Ok(())
        })))
    }
}

/// A restored micro-batch is replayed with the same records per partition, although
/// the count the offset log keeps would let other partitions' records in: the source
/// stops each partition at the batch's recorded end offsets.
#[test]
fn a_replayed_batch_holds_the_same_records_per_partition() {
    let Some(brokers) = brokers("a_replayed_batch_holds_the_same_records_per_partition") else {
        return;
    };
    let topic = unique_topic("source-replay");
    create_topic(&brokers, &topic, 2);
    let producer = TestProducer::new(&brokers, &topic);
    for i in 0..100 {
        producer.send(0, None, format!("{i}").as_bytes(), None, &[]);
    }
    producer.flush();
    let dir = tempfile::tempdir().unwrap();
    let prepared: Prepared = Arc::new(Mutex::new(Vec::new()));
    let run = |run: u32, fail_epoch: Option<u64>| {
        let mut query = Query::builder();
        query
            .checkpoint(CheckpointConfig::new(dir.path()).durability(Durability::OsBuffered))
            .trigger(Trigger::MicroBatch {
                interval: Duration::ZERO,
            });
        query
            .read_kafka(
                "in",
                config(&brokers, &topic)
                    .starting_offsets(StartingOffsets::Earliest)
                    .max_offsets_per_trigger(10),
            )
            .sink(
                "epochs",
                EpochSink {
                    run,
                    prepared: prepared.clone(),
                    rows: Vec::new(),
                    fail_epoch,
                },
            );
        query.start().unwrap()
    };
    // Run 1: batch 1 is offsets 0..10 of partition 0, batch 2 offsets 10..20; batch 2's
    // commit fails.
    let first = run(1, Some(2));
    assert!(common::finish(&first, "the failing run").is_err());
    // Records for partition 1 arrive; a batch of 10 planned now would take some.
    for i in 0..100 {
        producer.send(1, None, format!("{i}").as_bytes(), None, &[]);
    }
    producer.flush();
    let second = run(2, None);
    wait_until("the replayed batch", || {
        prepared.lock().unwrap().iter().any(|(run, _, _)| *run == 2)
    });
    second.stop().unwrap();
    let prepared = prepared.lock().unwrap().clone();
    let original: Vec<(i32, i64)> = (10..20).map(|offset| (0, offset)).collect();
    assert!(
        prepared.contains(&(1, 2, original.clone())),
        "run 1's batch 2: {prepared:?}"
    );
    let replayed = prepared.iter().find(|(run, _, _)| *run == 2).unwrap();
    assert_eq!(replayed, &(2, 2, original), "{prepared:?}");
}

/// With a group id, the source commits its checkpointed offsets to Kafka (for
/// monitoring: it never reads them back).
#[test]
fn checkpointed_offsets_are_committed_for_monitoring_with_a_group_id() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let Some(brokers) = brokers("checkpointed_offsets_are_committed_for_monitoring") else {
        return;
    };
    let topic = unique_topic("source-commit");
    create_topic(&brokers, &topic, 1);
    let producer = TestProducer::new(&brokers, &topic);
    for i in 0..50 {
        producer.send(0, None, format!("{i}").as_bytes(), None, &[]);
    }
    producer.flush();
    let group = unique_topic("monitoring");
    let dir = tempfile::tempdir().unwrap();
    let mut query = Query::builder();
    query
        .checkpoint(CheckpointConfig::new(dir.path()).durability(Durability::OsBuffered))
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(5),
        });
    let out = query
        .read_kafka(
            "in",
            KafkaSourceConfig::subscribe(KafkaConfig::new(&brokers).group_id(&group), [&topic])
                .starting_offsets(StartingOffsets::Earliest),
        )
        .to_memory("out");
    let running = query.start().unwrap();
    wait_until("every record", || out.len() >= 50);
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", &group)
        .create()
        .unwrap();
    let committed = || {
        let mut list = TopicPartitionList::new();
        list.add_partition(&topic, 0);
        reader
            .committed_offsets(list, Duration::from_secs(10))
            .ok()
            .and_then(|list| list.find_partition(&topic, 0).map(|e| e.offset()))
    };
    wait_until("the offsets committed", || {
        committed() == Some(Offset::Offset(50))
    });
    running.stop().unwrap();
}
