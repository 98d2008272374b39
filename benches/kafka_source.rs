//! Kafka topic → filter → counting sink, against a hand-written librdkafka consume loop
//! doing the same work on the same topic, in the same run, against the broker
//! `.ci/kafka.sh` starts:
//!
//! ```text
//! bash .ci/kafka.sh cargo bench --features kafka --bench kafka_source
//! ```
//!
//! * `rdkafka loop`: one `BaseConsumer`, the partitions assigned from the beginning,
//!   `poll` until every record came, counting values whose last byte is even.
//! * `rivulet, 1 instance`: `read_kafka` (earliest) → `filter` → `for_each` counting,
//!   chained on the source's thread; timed from `start()` to the last record.
//!
//! The topic (`RIVULET_KAFKA_BENCH_RECORDS` records, default 200,000, of 32 bytes over 4
//! partitions) is produced once, before the runs. Prints the median of [`RUNS`] runs of
//! each, records/s, and the ratio of rivulet's rate to the loop's. Without
//! `RIVULET_KAFKA_BROKERS` it prints that it skips.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use rivulet::kafka::{KafkaConfig, KafkaSourceConfig, StartingOffsets};
use rivulet::Query;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const PARTITIONS: i32 = 4;

fn keep(value: &[u8]) -> bool {
    value.last().is_some_and(|byte| byte % 2 == 0)
}

fn produce(brokers: &str, topic: &str, records: u64) -> u64 {
    rivulet::kafka::admin::ensure_topics(
        &rivulet::kafka::KafkaConfig::new(brokers),
        &[(topic, PARTITIONS)],
        Duration::from_secs(30),
    )
    .expect("create the topic");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut kept = 0;
    for i in 0..records {
        let value = format!("{i:032}");
        kept += u64::from(keep(value.as_bytes()));
        let mut record = BaseRecord::<(), str>::to(topic)
            .partition((i % PARTITIONS as u64) as i32)
            .payload(value.as_str());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    kept
}

fn rdkafka_loop(brokers: &str, topic: &str, records: u64) -> (Duration, u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "rivulet-bench-loop")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        list.add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    let started = Instant::now();
    consumer.assign(&list).expect("assign");
    let (mut seen, mut kept) = (0, 0);
    while seen < records {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            seen += 1;
            kept += u64::from(message.payload().is_some_and(keep));
        }
    }
    (started.elapsed(), kept)
}

fn rivulet_query(brokers: &str, topic: &str, records: u64) -> (Duration, u64) {
    let seen = Arc::new(AtomicU64::new(0));
    let kept = Arc::new(AtomicU64::new(0));
    let mut query = Query::builder();
    let (seen_in, kept_in) = (seen.clone(), kept.clone());
    query
        .read_kafka(
            "topic",
            KafkaSourceConfig::subscribe(KafkaConfig::new(brokers), [topic])
                .starting_offsets(StartingOffsets::Earliest),
        )
        .inspect(move |_| {
            seen_in.fetch_add(1, Ordering::Relaxed);
        })
        .filter(|record| record.value.as_deref().is_some_and(keep))
        .for_each(move |_| {
            kept_in.fetch_add(1, Ordering::Relaxed);
        });
    let started = Instant::now();
    let running = query.start().expect("start");
    while seen.load(Ordering::Relaxed) < records {
        std::thread::sleep(Duration::from_micros(200));
    }
    let took = started.elapsed();
    running.stop().expect("stop");
    (took, kept.load(Ordering::Relaxed))
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let Ok(brokers) = std::env::var("RIVULET_KAFKA_BROKERS") else {
        eprintln!("kafka_source: RIVULET_KAFKA_BROKERS unset, skipped (run under .ci/kafka.sh)");
        return;
    };
    let records: u64 = std::env::var("RIVULET_KAFKA_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let topic = format!("bench-{}", std::process::id());
    let expected = produce(&brokers, &topic, records);
    let (mut loop_times, mut query_times) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (took, kept) = rdkafka_loop(&brokers, &topic, records);
        assert_eq!(kept, expected);
        loop_times.push(took);
        let (took, kept) = rivulet_query(&brokers, &topic, records);
        assert_eq!(kept, expected);
        query_times.push(took);
    }
    let rate = |took: Duration| records as f64 / took.as_secs_f64();
    let (baseline, rivulet) = (median(loop_times), median(query_times));
    println!(
        "rdkafka loop           median {baseline:>10.3?}  {:>12.0} records/s",
        rate(baseline)
    );
    println!(
        "rivulet, 1 instance    median {rivulet:>10.3?}  {:>12.0} records/s",
        rate(rivulet)
    );
    println!(
        "ratio rivulet / loop: {:.2}",
        rate(rivulet) / rate(baseline)
    );
}
