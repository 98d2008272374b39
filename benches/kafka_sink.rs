//! The Kafka sink's throughput against a hand-written librdkafka produce loop doing the
//! same work, in the same run, on the same broker (`RIVULET_KAFKA_BROKERS`, started by
//! `.ci/kafka.sh`; the bench prints that it skips without one).
//!
//! ```text
//! bash .ci/kafka.sh cargo bench --features kafka --bench kafka_sink
//! ```
//!
//! * `rdkafka loop`: one idempotent `BaseProducer`, each id's decimal text as the value
//!   and `id % 7` as the key (both formatted into reused buffers), `send` retried while
//!   the queue is full, one `flush` at the end.
//! * `rivulet, at least once`: `from_iter(0..n)` → `KafkaSink` (the same encoding, in a
//!   closure) without a trigger; timed from `start()` to termination, which includes
//!   the sink's final flush.
//! * `rivulet, at least once, continuous`: the same with a continuous trigger and 100 ms
//!   epochs (a flush at every marker).
//! * when the broker commits transactions: `rdkafka transactional loop` (a transaction
//!   per 10,000 records) against `rivulet, exactly once, micro-batch` (10,000-record
//!   batches, checkpointed).
//!
//! Prints the median of `RIVULET_KAFKA_BENCH_RUNS` runs (default 5) of each, in
//! records/s, and each rivulet variant's ratio to its hand-written baseline.
//! `RIVULET_KAFKA_BENCH_RECORDS` sets the records per run (default 200,000).

#[cfg(not(feature = "kafka"))]
fn main() {
    eprintln!("the kafka_sink bench needs --features kafka");
}

#[cfg(feature = "kafka")]
fn main() {
    bench::main();
}

#[cfg(feature = "kafka")]
mod bench {
    use rdkafka::config::ClientConfig;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rivulet::checkpoint::CheckpointConfig;
    use rivulet::kafka::sink::{DeliveryGuarantee, KafkaMessage, KafkaSink, KafkaSinkConfig};
    use rivulet::{Query, Trigger};
    use std::io::Write;
    use std::time::{Duration, Instant};

    /// Records per transaction (and per micro-batch) in the transactional variants.
    const PER_TRANSACTION: u64 = 10_000;

    fn env(name: &str, default: u64) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    fn fresh_topic(brokers: &str, what: &str) -> String {
        let topic = format!(
            "bench-{what}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        rivulet::kafka::admin::ensure_topics(
            &rivulet::kafka::KafkaConfig::new(brokers),
            &[(&topic, 1)],
            Duration::from_secs(30),
        )
        .expect("create the topic");
        topic
    }

    /// The hand-written loop; `transactional` commits every [`PER_TRANSACTION`] records.
    fn rdkafka_loop(brokers: &str, n: u64, transactional: bool) -> Duration {
        let topic = fresh_topic(brokers, "loop");
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true");
        if transactional {
            config.set("transactional.id", format!("bench-loop-{topic}"));
        }
        let producer: BaseProducer = config.create().unwrap();
        let timeout = Duration::from_secs(30);
        if transactional {
            producer.init_transactions(timeout).unwrap();
        }
        let started = Instant::now();
        let (mut key, mut value) = (Vec::new(), Vec::new());
        for id in 0..n {
            if transactional && id % PER_TRANSACTION == 0 {
                if id > 0 {
                    producer.commit_transaction(timeout).unwrap();
                }
                producer.begin_transaction().unwrap();
            }
            key.clear();
            value.clear();
            write!(key, "{}", id % 7).unwrap();
            write!(value, "{id}").unwrap();
            let mut record = BaseRecord::<[u8], [u8]>::to(&topic)
                .key(&key)
                .payload(&value);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        producer.poll(Duration::from_millis(1));
                        record = back;
                    }
                    Err((error, _)) => panic!("send: {error}"),
                }
            }
            producer.poll(Duration::ZERO);
        }
        if transactional {
            producer.commit_transaction(timeout).unwrap();
        } else {
            producer.flush(timeout).unwrap();
        }
        started.elapsed()
    }

    fn rivulet(brokers: &str, n: u64, variant: &str) -> Duration {
        let topic = fresh_topic(brokers, "rivulet");
        let dir = tempfile::tempdir().unwrap();
        let mut config = KafkaSinkConfig::new(brokers, topic).timeout(Duration::from_secs(30));
        let mut query = Query::builder();
        match variant {
            "continuous" => {
                query.trigger(Trigger::Continuous {
                    checkpoint_interval: Duration::from_millis(100),
                });
            }
            "exactly once" => {
                config = config.guarantee(DeliveryGuarantee::ExactlyOnce);
                query
                    .trigger(Trigger::MicroBatch {
                        interval: Duration::from_millis(1),
                    })
                    .max_batch_records(PER_TRANSACTION as usize)
                    .checkpoint(CheckpointConfig::new(dir.path()));
            }
            _ => {}
        }
        query.from_iter("ids", 0..n).sink(
            "kafka",
            KafkaSink::new(config, |id: &u64, message: &mut KafkaMessage| {
                write!(message.key_buffer(), "{}", id % 7)?;
                write!(message.value_buffer(), "{id}")?;
                Ok(())
            }),
        );
        let started = Instant::now();
        query.start().unwrap().await_termination().unwrap();
        started.elapsed()
    }

    fn median(mut times: Vec<Duration>) -> Duration {
        times.sort();
        times[times.len() / 2]
    }

    fn supports_transactions(brokers: &str) -> bool {
        let topic = fresh_topic(brokers, "probe");
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("transactional.id", format!("bench-probe-{topic}"))
            .create()
            .unwrap();
        let timeout = Duration::from_secs(10);
        producer.init_transactions(timeout).is_ok()
            && producer.begin_transaction().is_ok()
            && producer
                .send(BaseRecord::<[u8], [u8]>::to(&topic).payload(b"probe"))
                .is_ok()
            && producer.commit_transaction(timeout).is_ok()
    }

    /// One variant: runs once, returns the time it took.
    type Variant<'a> = Box<dyn Fn() -> Duration + 'a>;

    pub(super) fn main() {
        let Ok(brokers) = std::env::var("RIVULET_KAFKA_BROKERS") else {
            eprintln!("SKIPPED kafka_sink bench: RIVULET_KAFKA_BROKERS is not set (run it under .ci/kafka.sh)");
            return;
        };
        let n = env("RIVULET_KAFKA_BENCH_RECORDS", 200_000);
        let runs = env("RIVULET_KAFKA_BENCH_RUNS", 5) as usize;
        let transactions = supports_transactions(&brokers);
        let mut variants: Vec<(&str, Variant)> = vec![
            (
                "rdkafka loop",
                Box::new(|| rdkafka_loop(&brokers, n, false)),
            ),
            (
                "rivulet, at least once",
                Box::new(|| rivulet(&brokers, n, "at least once")),
            ),
            (
                "rivulet, at least once, continuous",
                Box::new(|| rivulet(&brokers, n, "continuous")),
            ),
        ];
        if transactions {
            variants.push((
                "rdkafka transactional loop",
                Box::new(|| rdkafka_loop(&brokers, n, true)),
            ));
            variants.push((
                "rivulet, exactly once, micro-batch",
                Box::new(|| rivulet(&brokers, n, "exactly once")),
            ));
        } else {
            eprintln!(
                "the broker cannot commit transactions: the exactly-once variants are left out"
            );
        }
        // Alternate the variants within each round, so drift hits all alike.
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
        for _ in 0..runs {
            for (i, (_, run)) in variants.iter().enumerate() {
                times[i].push(run());
            }
        }
        let rates: Vec<f64> = times
            .into_iter()
            .map(|t| n as f64 / median(t).as_secs_f64())
            .collect();
        println!("{n} records per run, median of {runs} runs");
        for ((name, _), rate) in variants.iter().zip(&rates) {
            println!("{name:<38} {:>12.0} records/s", rate);
        }
        println!(
            "ratio at least once / rdkafka loop:             {:.2}",
            rates[1] / rates[0]
        );
        println!(
            "ratio at least once, continuous / rdkafka loop: {:.2}",
            rates[2] / rates[0]
        );
        if transactions {
            println!(
                "ratio exactly once / transactional loop:        {:.2}",
                rates[4] / rates[3]
            );
        }
    }
}
