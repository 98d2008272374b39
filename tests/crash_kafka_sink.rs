//! Crash and restart with real processes, for the Kafka sink: a child process runs a
//! checkpointed query from two rate sources to a Kafka topic; the test kills it with
//! SIGKILL at random moments, restarts it on the same checkpoint directory, finally lets
//! it finish, and reads the topic back as a `read_committed` consumer:
//!
//! * micro-batch, [`DeliveryGuarantee::ExactlyOnce`]: every id exactly once (a staged
//!   transaction a kill left open is aborted by the restart, which writes the epoch
//!   again; a committed one is recognised by its commit record and skipped);
//! * continuous, [`DeliveryGuarantee::AtLeastOnce`]: every id at least once.
//!
//! Needs a broker (`RIVULET_KAFKA_BROKERS`, started by `.ci/kafka.sh`); skipped with a
//! message without one, except in CI. The micro-batch test also needs a broker that
//! commits transactions (tansu 0.6.0 does not): it skips with the reason otherwise, or
//! fails under `RIVULET_KAFKA_TRANSACTIONS=1`. The child is this test binary itself, re-run with
//! `--ignored --exact kafka_crash_worker` and `RIVULET_KAFKA_CRASH_WORKER`.

#![cfg(feature = "kafka")]

mod common;

use common::kafka;
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::kafka::sink::{DeliveryGuarantee, KafkaMessage, KafkaSink, KafkaSinkConfig};
use rivulet::source::RateSource;
use rivulet::{Query, Trigger};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// Ids per source; two sources (even and odd ids) make `2 * IDS_PER_SOURCE` ids.
const IDS_PER_SOURCE: u64 = 10_000;
/// Rows per second of each source: a full run takes about 0.5 s.
const RATE: u64 = 20_000;

/// The child process: runs the query until its sources end.
#[test]
#[ignore = "entry point of the child process of the Kafka sink crash tests"]
fn kafka_crash_worker() {
    let Ok(dir) = std::env::var("RIVULET_KAFKA_CRASH_WORKER") else {
        return;
    };
    let dir = Path::new(&dir);
    let topic = std::env::var("RIVULET_KAFKA_CRASH_TOPIC").unwrap();
    let brokers = std::env::var("RIVULET_KAFKA_BROKERS").unwrap();
    let micro_batch = std::env::var("RIVULET_KAFKA_CRASH_CONTINUOUS").is_err();
    let mut query = Query::builder();
    query
        .checkpoint(
            CheckpointConfig::new(dir.join("checkpoints"))
                .durability(Durability::OsBuffered)
                .retain(2)
                .segment_bytes(1 << 20),
        )
        .trigger(if micro_batch {
            Trigger::MicroBatch {
                interval: Duration::from_millis(10),
            }
        } else {
            Trigger::Continuous {
                checkpoint_interval: Duration::from_millis(10),
            }
        });
    let evens = query
        .source("evens", RateSource::new(RATE).with_limit(IDS_PER_SOURCE))
        .map(|row| row.value * 2);
    let odds = query
        .source("odds", RateSource::new(RATE).with_limit(IDS_PER_SOURCE))
        .map(|row| row.value * 2 + 1);
    let config = KafkaSinkConfig::new(brokers, topic)
        .guarantee(if micro_batch {
            DeliveryGuarantee::ExactlyOnce
        } else {
            DeliveryGuarantee::AtLeastOnce
        })
        .timeout(Duration::from_secs(30));
    evens.union(odds).sink(
        "kafka",
        KafkaSink::new(config, |id: &u64, message: &mut KafkaMessage| {
            message.set_key((id % 7).to_string());
            message.set_value(id.to_string());
            Ok(())
        }),
    );
    let running = query.start().unwrap();
    common::note_run(&running, dir);
    running.await_termination().unwrap();
}

fn spawn_worker(dir: &Path, topic: &str, micro_batch: bool) -> Child {
    let mut command = common::worker_command("kafka_crash_worker");
    command
        .env("RIVULET_KAFKA_CRASH_WORKER", dir)
        .env("RIVULET_KAFKA_CRASH_TOPIC", topic);
    if micro_batch {
        command.env_remove("RIVULET_KAFKA_CRASH_CONTINUOUS");
    } else {
        command.env("RIVULET_KAFKA_CRASH_CONTINUOUS", "1");
    }
    command.spawn().expect("the test binary can run itself")
}

fn run_crash_test(brokers: &str, micro_batch: bool, kills: usize, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let topic = kafka::unique_topic(if micro_batch {
        "crash-eos"
    } else {
        "crash-alo"
    });
    kafka::create_topic(brokers, &topic, 3);
    let mut random = common::Rng::new(seed);
    let started = Instant::now();
    for _ in 0..kills {
        common::kill_after(
            spawn_worker(dir.path(), &topic, micro_batch),
            Duration::from_millis(150 + random.below(500)),
        );
    }
    common::expect_success(
        spawn_worker(dir.path(), &topic, micro_batch),
        "the final run",
    );

    let runs: Vec<i64> = std::fs::read_to_string(dir.path().join("runs.txt"))
        .unwrap()
        .lines()
        .map(|line| line.parse().unwrap())
        .collect();
    let resumed = runs.iter().filter(|epoch| **epoch > 0).count();
    assert!(
        *runs.last().unwrap() > 0,
        "the final run did not resume: {runs:?}"
    );

    // The reference: every id of both sources.
    let total = 2 * IDS_PER_SOURCE;
    let read = kafka::read_committed(brokers, &topic);
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    for (key, value) in &read {
        let id: u64 = value.parse().expect("a numeric value");
        assert_eq!(
            key.as_deref(),
            Some((id % 7).to_string().as_str()),
            "a damaged message: {key:?}={value}"
        );
        *seen.entry(id).or_default() += 1;
    }
    let missing: Vec<u64> = (0..total)
        .filter(|id| !seen.contains_key(id))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "ids never committed (first 10): {missing:?}"
    );
    assert!(
        seen.keys().all(|id| *id < total),
        "ids that no source emitted"
    );
    let duplicated: Vec<(&u64, &u64)> = seen.iter().filter(|(_, n)| **n > 1).take(10).collect();
    if micro_batch {
        assert!(
            duplicated.is_empty(),
            "ids committed twice (first 10): {duplicated:?}"
        );
    }
    eprintln!(
        "{}: {kills} kills, {} runs, {resumed} resumed, {} messages for {total} ids ({} duplicates), {:?}",
        if micro_batch { "micro-batch, exactly once" } else { "continuous, at least once" },
        runs.len(),
        read.len(),
        read.len() as u64 - total,
        started.elapsed()
    );
}

#[test]
fn micro_batch_kafka_output_is_exactly_once_across_kills() {
    let Some(brokers) = kafka::brokers("micro_batch_kafka_output_is_exactly_once_across_kills")
    else {
        return;
    };
    if !kafka::transactions(
        &brokers,
        "micro_batch_kafka_output_is_exactly_once_across_kills",
    ) {
        return;
    }
    run_crash_test(&brokers, true, 12, 0x5eed_ca7a);
}

#[test]
fn continuous_kafka_output_is_at_least_once_across_kills() {
    let Some(brokers) = kafka::brokers("continuous_kafka_output_is_at_least_once_across_kills")
    else {
        return;
    };
    run_crash_test(&brokers, false, 12, 0xc0ff_ee17);
}
