//! The Kafka sink against a real broker (`RIVULET_KAFKA_BROKERS`, started by
//! `.ci/kafka.sh`; skipped with a message when unset, except in CI):
//!
//! * queries write every record, at least once and exactly once, as a `read_committed`
//!   consumer sees them;
//! * the two-phase commit driven by hand, as the engine drives it, through each crash
//!   window: nothing visible before the commit, a staged epoch that never committed is
//!   written again by the restart, a committed replay is skipped, an epoch that runs
//!   afresh is never skipped later;
//! * a producer fenced by a newer one with the same transactional id fails clearly;
//! * a missing topic and an unreachable broker fail `start()` clearly (the unreachable
//!   broker needs no broker and always runs).
//!
//! The tests that commit transactions probe the broker first and print that they skip
//! when it cannot (tansu 0.6.0 has no `EndTxn`); with `RIVULET_KAFKA_TRANSACTIONS=1`
//! they fail instead.

#![cfg(feature = "kafka")]

mod common;

use common::kafka::{self, read_committed, read_uncommitted};
use rivulet::checkpoint::CheckpointConfig;
use rivulet::kafka::sink::{
    DeliveryGuarantee, KafkaMessage, KafkaSink, KafkaSinkConfig, KafkaSinkError,
};
use rivulet::sink::{EpochCommit, Sink, SinkContext};
use rivulet::trigger::EmitMode;
use rivulet::{Epoch, Query, Trigger};
use std::time::Duration;

/// A sink writing `id` as the value and `id % 7` as the key.
fn keyed_sink(
    config: KafkaSinkConfig,
) -> KafkaSink<u64, impl rivulet::kafka::sink::MessageEncoder<u64>> {
    KafkaSink::new(config, |id: &u64, message: &mut KafkaMessage| {
        message.set_key((id % 7).to_string());
        message.set_value(id.to_string());
        Ok(())
    })
}

/// The ids read back, sorted, after checking each message's key against its value.
fn ids(read: &[kafka::Read]) -> Vec<u64> {
    let mut ids: Vec<u64> = read
        .iter()
        .map(|(key, value)| {
            let id: u64 = value.parse().expect("a numeric value");
            assert_eq!(
                key.as_deref(),
                Some((id % 7).to_string().as_str()),
                "key of {id}"
            );
            id
        })
        .collect();
    ids.sort_unstable();
    ids
}

fn exactly_once(brokers: &str, topic: &str, prefix: &str) -> KafkaSinkConfig {
    KafkaSinkConfig::new(brokers, topic)
        .guarantee(DeliveryGuarantee::ExactlyOnce)
        .transactional_id_prefix(prefix)
        .timeout(Duration::from_secs(20))
}

fn run_query(
    trigger: Trigger,
    config: KafkaSinkConfig,
    records: u64,
    checkpoints: Option<&std::path::Path>,
) {
    let mut query = Query::builder();
    query.trigger(trigger);
    if let Some(dir) = checkpoints {
        query.checkpoint(CheckpointConfig::new(dir));
    }
    query
        .from_iter("ids", 0..records)
        .sink("kafka", keyed_sink(config));
    let running = query.start().expect("the query starts");
    common::finish_ok(&running, "kafka sink query");
}

#[test]
fn at_least_once_query_writes_every_record() {
    let Some(brokers) = kafka::brokers("at_least_once_query_writes_every_record") else {
        return;
    };
    let topic = kafka::unique_topic("alo");
    kafka::create_topic(&brokers, &topic, 3);
    run_query(
        Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(5),
        },
        KafkaSinkConfig::new(&brokers, &topic),
        5_000,
        None,
    );
    // No crash: at least once is exactly once here.
    assert_eq!(
        ids(&read_committed(&brokers, &topic)),
        (0..5_000).collect::<Vec<_>>()
    );
}

#[test]
fn exactly_once_micro_batch_query_writes_every_record_once() {
    let Some(brokers) = kafka::brokers("exactly_once_micro_batch_query_writes_every_record_once")
    else {
        return;
    };
    if !kafka::transactions(
        &brokers,
        "exactly_once_micro_batch_query_writes_every_record_once",
    ) {
        return;
    }
    let topic = kafka::unique_topic("eos");
    kafka::create_topic(&brokers, &topic, 2);
    let dir = tempfile::tempdir().unwrap();
    let config = exactly_once(&brokers, &topic, &kafka::unique_topic("eos-txn"));
    run_query(
        Trigger::MicroBatch {
            interval: Duration::from_millis(2),
        },
        config,
        3_000,
        Some(dir.path()),
    );
    assert_eq!(
        ids(&read_committed(&brokers, &topic)),
        (0..3_000).collect::<Vec<_>>()
    );
}

/// The context the engine gives an instance of a checkpointed query with id `query`,
/// starting at `first` (replaying `replayed`).
fn context(query: &str, first: u64, replayed: Option<u64>) -> SinkContext {
    let context = SinkContext::new("kafka", 0, 1)
        .epochs(true)
        .checkpointed(true)
        .query_id(query)
        .first_epoch(Epoch(first));
    match replayed {
        Some(epoch) => context.replayed_epoch(Epoch(epoch)),
        None => context,
    }
}

/// Writes `ids` as epoch `epoch` and stages it: the engine's first phase.
fn stage<E: rivulet::kafka::sink::MessageEncoder<u64>>(
    sink: &mut KafkaSink<u64, E>,
    epoch: u64,
    ids: std::ops::Range<u64>,
) -> Option<EpochCommit> {
    sink.begin_epoch(Epoch(epoch), EmitMode::default()).unwrap();
    for id in ids {
        sink.write(id).unwrap();
    }
    sink.flush().unwrap();
    sink.prepare_commit(Epoch(epoch)).unwrap()
}

#[test]
fn nothing_is_visible_before_the_engine_commits() {
    let Some(brokers) = kafka::brokers("nothing_is_visible_before_the_engine_commits") else {
        return;
    };
    if !kafka::transactions(&brokers, "nothing_is_visible_before_the_engine_commits") {
        return;
    }
    let topic = kafka::unique_topic("visible");
    kafka::create_topic(&brokers, &topic, 1);
    let prefix = kafka::unique_topic("visible-txn");
    let mut sink = keyed_sink(exactly_once(&brokers, &topic, &prefix));
    sink.open(&context("q", 1, None)).unwrap();
    let commit = stage(&mut sink, 1, 0..10).expect("epoch 1 has records");
    assert_eq!(read_committed(&brokers, &topic), []);
    // The records are in the log, in a transaction not yet committed.
    assert_eq!(
        ids(&read_uncommitted(&brokers, &topic)),
        (0..10).collect::<Vec<_>>()
    );
    commit().unwrap();
    sink.on_committed(Epoch(1)).unwrap();
    assert_eq!(
        ids(&read_committed(&brokers, &topic)),
        (0..10).collect::<Vec<_>>()
    );
    // An empty epoch has nothing to commit.
    assert!(stage(&mut sink, 2, 0..0).is_none());
    sink.close().unwrap();
}

#[test]
fn a_crash_in_each_window_leaves_every_record_once() {
    let Some(brokers) = kafka::brokers("a_crash_in_each_window_leaves_every_record_once") else {
        return;
    };
    if !kafka::transactions(&brokers, "a_crash_in_each_window_leaves_every_record_once") {
        return;
    }
    let topic = kafka::unique_topic("windows");
    kafka::create_topic(&brokers, &topic, 1);
    let prefix = kafka::unique_topic("windows-txn");
    let config = || exactly_once(&brokers, &topic, &prefix);

    // Run 1 publishes epoch 1, stages epoch 2 and dies before the engine commits it
    // (its commit never runs): after staging, before (or after) the engine logged the
    // epoch complete.
    let mut run = keyed_sink(config());
    run.open(&context("q", 1, None)).unwrap();
    stage(&mut run, 1, 0..10).unwrap()().unwrap();
    let staged = stage(&mut run, 2, 10..20).unwrap();
    std::mem::forget(staged); // the process died: nothing runs or drops the commit
    std::mem::forget(run);

    // Run 2 replays epoch 2 with the same records: it must write them (the staged
    // transaction was aborted when run 2's producer started), and publishes them. Then
    // it dies after the Kafka commit, before the engine logged it.
    let mut run = keyed_sink(config());
    run.open(&context("q", 2, Some(2))).unwrap();
    stage(&mut run, 2, 10..20).unwrap()().unwrap();
    assert_eq!(
        ids(&read_committed(&brokers, &topic)),
        (0..20).collect::<Vec<_>>()
    );
    std::mem::forget(run);

    // Run 3 replays epoch 2 again: published, so its records are dropped; epoch 3 is new.
    let mut run = keyed_sink(config());
    run.open(&context("q", 2, Some(2))).unwrap();
    assert!(
        stage(&mut run, 2, 10..20).is_none(),
        "a published replay commits nothing"
    );
    stage(&mut run, 3, 20..30).unwrap()().unwrap();
    run.close().unwrap();
    drop(run);

    // Run 4 restarts after epoch 3 on another trigger: epoch 4 is planned afresh, and a
    // run 5 that replays 4 must write it even though run 4 never committed it, because
    // nothing of this query published epoch 4.
    let mut run = keyed_sink(config());
    run.open(&context("q", 4, None)).unwrap();
    std::mem::forget(stage(&mut run, 4, 30..40).unwrap());
    std::mem::forget(run);
    let mut run = keyed_sink(config());
    run.open(&context("q", 4, Some(4))).unwrap();
    stage(&mut run, 4, 30..40).unwrap()().unwrap();
    run.close().unwrap();

    assert_eq!(
        ids(&read_committed(&brokers, &topic)),
        (0..40).collect::<Vec<_>>()
    );
}

#[test]
fn an_epoch_published_then_planned_afresh_is_not_skipped_later() {
    let Some(brokers) =
        kafka::brokers("an_epoch_published_then_planned_afresh_is_not_skipped_later")
    else {
        return;
    };
    if !kafka::transactions(
        &brokers,
        "an_epoch_published_then_planned_afresh_is_not_skipped_later",
    ) {
        return;
    }
    let topic = kafka::unique_topic("afresh");
    kafka::create_topic(&brokers, &topic, 1);
    let prefix = kafka::unique_topic("afresh-txn");
    let config = || exactly_once(&brokers, &topic, &prefix);
    // Run 1 (continuous, say) publishes epoch 1 with ids 0..5; the engine never logs it.
    let mut run = keyed_sink(config());
    run.open(&context("q", 1, None)).unwrap();
    stage(&mut run, 1, 0..5).unwrap()().unwrap();
    std::mem::forget(run);
    // Run 2 plans epoch 1 afresh with ids 5..10, stages it and dies before committing.
    let mut run = keyed_sink(config());
    run.open(&context("q", 1, None)).unwrap();
    std::mem::forget(stage(&mut run, 1, 5..10).unwrap());
    std::mem::forget(run);
    // Run 3 replays run 2's epoch 1: run 2 never published it, so it is written.
    let mut run = keyed_sink(config());
    run.open(&context("q", 1, Some(1))).unwrap();
    stage(&mut run, 1, 5..10).unwrap()().unwrap();
    run.close().unwrap();
    // Run 1's output stays (Kafka cannot take it back: at-least-once for run 1's epoch).
    assert_eq!(
        ids(&read_committed(&brokers, &topic)),
        (0..10).collect::<Vec<_>>()
    );
}

#[test]
fn another_query_id_never_skips() {
    let Some(brokers) = kafka::brokers("another_query_id_never_skips") else {
        return;
    };
    if !kafka::transactions(&brokers, "another_query_id_never_skips") {
        return;
    }
    let topic = kafka::unique_topic("foreign");
    kafka::create_topic(&brokers, &topic, 1);
    let prefix = kafka::unique_topic("foreign-txn");
    let config = || exactly_once(&brokers, &topic, &prefix);
    let mut run = keyed_sink(config());
    run.open(&context("old", 1, None)).unwrap();
    stage(&mut run, 1, 0..5).unwrap()().unwrap();
    run.close().unwrap();
    drop(run);
    // A query whose checkpoint directory was deleted is another query: its epoch 1 is
    // other records.
    let mut run = keyed_sink(config());
    run.open(&context("new", 1, Some(1))).unwrap();
    stage(&mut run, 1, 5..10).unwrap()().unwrap();
    run.close().unwrap();
    assert_eq!(
        ids(&read_committed(&brokers, &topic)),
        (0..10).collect::<Vec<_>>()
    );
}

#[test]
fn a_fenced_producer_fails_with_a_clear_error() {
    let Some(brokers) = kafka::brokers("a_fenced_producer_fails_with_a_clear_error") else {
        return;
    };
    if !kafka::transactions(&brokers, "a_fenced_producer_fails_with_a_clear_error") {
        return;
    }
    let topic = kafka::unique_topic("fenced");
    kafka::create_topic(&brokers, &topic, 1);
    let prefix = kafka::unique_topic("fenced-txn");
    let config = || exactly_once(&brokers, &topic, &prefix);
    let mut old = keyed_sink(config());
    old.open(&context("q", 1, None)).unwrap();
    old.begin_epoch(Epoch(1), EmitMode::default()).unwrap();
    for id in 0..5 {
        old.write(id).unwrap();
    }
    // A newer instance starts with the same transactional id.
    let mut new = keyed_sink(config());
    new.open(&context("q", 1, None)).unwrap();
    // The old one cannot stage or commit its epoch: fenced, said plainly.
    let error = old
        .prepare_commit(Epoch(1))
        .and_then(|commit| commit.expect("records were written")())
        .expect_err("a fenced producer cannot commit");
    let sink_error = error
        .downcast_ref::<KafkaSinkError>()
        .unwrap_or_else(|| panic!("not a KafkaSinkError: {error}"));
    assert!(
        matches!(sink_error, KafkaSinkError::Fenced { transactional_id } if *transactional_id == format!("{prefix}-0")),
        "{sink_error:?}"
    );
    assert!(error.to_string().contains("fenced"), "{error}");
    // Nothing of the old one's epoch is visible; the new one writes on.
    stage(&mut new, 1, 5..10).unwrap()().unwrap();
    new.close().unwrap();
    assert_eq!(
        ids(&read_committed(&brokers, &topic)),
        (5..10).collect::<Vec<_>>()
    );
}

#[test]
fn a_fenced_sink_fails_its_query() {
    let Some(brokers) = kafka::brokers("a_fenced_sink_fails_its_query") else {
        return;
    };
    let topic = kafka::unique_topic("fenced-query");
    kafka::create_topic(&brokers, &topic, 1);
    let prefix = kafka::unique_topic("fenced-query-txn");
    // The query's sink blocks in its encoder until the newer producer has started.
    let (started_tx, started_rx) = std::sync::mpsc::sync_channel::<()>(0);
    let (fenced_tx, fenced_rx) = std::sync::mpsc::sync_channel::<()>(0);
    let gate = std::sync::Arc::new(std::sync::Mutex::new(Some((started_tx, fenced_rx))));
    let sink = KafkaSink::new(exactly_once(&brokers, &topic, &prefix), {
        let gate = gate.clone();
        move |id: &u64, message: &mut KafkaMessage| {
            if let Some((started, fenced)) = gate.lock().unwrap().take() {
                started.send(()).unwrap();
                fenced.recv().unwrap();
            }
            message.set_value(id.to_string());
            Ok(())
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut query = Query::builder();
    query
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(2),
        })
        .checkpoint(CheckpointConfig::new(dir.path()));
    query.from_iter("ids", 0..100u64).sink("kafka", sink);
    let running = query.start().expect("the query starts");
    started_rx
        .recv_timeout(common::HANG_GUARD)
        .expect("the sink got a record");
    let mut newer = keyed_sink(exactly_once(&brokers, &topic, &prefix));
    newer.open(&context("newer", 1, None)).unwrap();
    fenced_tx.send(()).unwrap();
    let error = common::finish(&running, "fenced query").expect_err("the query fails");
    let text = error.to_string();
    assert!(text.contains("fenced") && text.contains(&prefix), "{text}");
    newer.close().unwrap();
    assert_eq!(read_committed(&brokers, &topic), []);
}

#[test]
fn a_missing_topic_fails_start() {
    let Some(brokers) = kafka::brokers("a_missing_topic_fails_start") else {
        return;
    };
    let topic = kafka::unique_topic("never-created");
    for guarantee in [
        DeliveryGuarantee::AtLeastOnce,
        DeliveryGuarantee::ExactlyOnce,
    ] {
        let mut query = Query::builder();
        query.from_iter("ids", 0..10u64).sink(
            "kafka",
            keyed_sink(
                KafkaSinkConfig::new(&brokers, &topic)
                    .guarantee(guarantee)
                    .timeout(Duration::from_secs(10)),
            ),
        );
        let error = query.start().expect_err("a missing topic fails start()");
        let text = error.to_string();
        assert!(
            text.contains(&topic) && text.contains("does not exist"),
            "{text}"
        );
    }
}

#[test]
fn an_unreachable_broker_fails_start() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let brokers = format!("127.0.0.1:{port}");
    for guarantee in [
        DeliveryGuarantee::AtLeastOnce,
        DeliveryGuarantee::ExactlyOnce,
    ] {
        let mut query = Query::builder();
        query.from_iter("ids", 0..10u64).sink(
            "kafka",
            keyed_sink(
                KafkaSinkConfig::new(&brokers, "anything")
                    .guarantee(guarantee)
                    .timeout(Duration::from_secs(2)),
            ),
        );
        let error = query.start().expect_err("no broker fails start()");
        let text = error.to_string();
        assert!(
            text.contains("cannot reach the Kafka brokers") && text.contains(&brokers),
            "{text}"
        );
    }
}
