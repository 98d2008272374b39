//! Scale-out through Kafka ([`KafkaApplication`]): processes of one application share the
//! input partitions through the consumer-group protocol, and a partition's task moves to
//! another process with its state when its owner leaves, joins, or dies.
//!
//! The application under test keeps a running count per key (`key_by(..).fold(..)`)
//! and writes, for every input record, `key,id,count,owner,partition` to an output
//! topic. The reference is a plain sequential computation over the input topic as a
//! plain consumer reads it: the `n`-th record of a key must come out with count `n`. A
//! task restarted elsewhere without its state would count from 1 again; one whose state
//! and offsets disagreed would count some records twice or skip them. Every input record
//! must come out (nothing lost); continuous epochs with the at-least-once sink may repeat
//! records after a crash, always with the same count.
//!
//! `three_processes_one_killed_...` is the demonstration: 3 processes (this test
//! binary re-run as `scale_out_worker`) over a topic of 6 partitions, one SIGKILLed mid-run.
#![cfg(feature = "kafka")]

mod common;

use common::kafka::{brokers, create_topic, read_topic, unique_topic, TestProducer};
use rivulet::checkpoint::Durability;
use rivulet::error::BoxError;
use rivulet::kafka::app::{
    ApplicationConfig, ApplicationError, KafkaApplication, RunningApplication, TaskContext,
};
use rivulet::kafka::sink::{DeliveryGuarantee, KafkaMessage, KafkaSink, KafkaSinkConfig};
use rivulet::kafka::KafkaConfig;
use rivulet::{QueryBuilder, Trigger};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// One output record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Out {
    key: String,
    id: u64,
    count: u64,
    owner: String,
    partition: i32,
}

/// How the tasks run and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Continuous epochs, at-least-once sink: a line per input record.
    Continuous,
    /// Micro-batches: a line per key and batch (its count after the batch's last
    /// record), with the sink's `guarantee`.
    MicroBatch(DeliveryGuarantee),
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Continuous => "continuous",
            Mode::MicroBatch(DeliveryGuarantee::ExactlyOnce) => "micro-batch-exactly-once",
            Mode::MicroBatch(_) => "micro-batch",
        }
    }

    fn from_name(name: &str) -> Mode {
        match name {
            "continuous" => Mode::Continuous,
            "micro-batch-exactly-once" => Mode::MicroBatch(DeliveryGuarantee::ExactlyOnce),
            "micro-batch" => Mode::MicroBatch(DeliveryGuarantee::AtLeastOnce),
            other => panic!("unknown mode {other}"),
        }
    }
}

/// Builds the task of the application under test, labelling its output with `owner`.
fn build_task(
    task: &TaskContext,
    query: &mut QueryBuilder,
    output: &str,
    owner: &str,
    mode: Mode,
) -> Result<(), BoxError> {
    let partition = task.partition();
    let owner = owner.to_string();
    query.checkpoint(
        task.checkpoint_config()
            .interval(Duration::from_millis(50))
            .durability(Durability::OsBuffered)
            .retain(2)
            .segment_bytes(1 << 20),
    );
    let mut sink = KafkaSinkConfig::with_client(task.kafka().clone(), output);
    if let Mode::MicroBatch(guarantee) = mode {
        query.trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(50),
        });
        sink = sink.guarantee(guarantee);
    }
    query
        .read_kafka("in", task.source_config())
        .map(|record| {
            let value = String::from_utf8(record.value.unwrap_or_default()).unwrap();
            let (key, id) = value.split_once(',').expect("key,id");
            (key.to_string(), id.parse::<u64>().expect("an id"))
        })
        .key_by(|(key, _): &(String, u64)| key.clone())
        .fold((0u64, 0u64), |(count, last), (_, id)| {
            *count += 1;
            *last = id;
        })
        .sink(
            "out",
            KafkaSink::new(
                sink,
                move |(key, (count, id)): &(String, (u64, u64)), message: &mut KafkaMessage| {
                    message.set_key(key);
                    message.set_value(format!("{key},{id},{count},{owner},{partition}"));
                    Ok(())
                },
            ),
        );
    Ok(())
}

fn app_config(brokers: &str, app: &str, input: &str, state: &Path) -> ApplicationConfig {
    ApplicationConfig::new(app, KafkaConfig::new(brokers), [input], state)
        .session_timeout(Duration::from_secs(3))
        .heartbeat_interval(Duration::from_millis(500))
}

fn start_app(
    brokers: &str,
    app: &str,
    input: &str,
    output: &str,
    state: &Path,
    owner: &str,
    mode: Mode,
) -> RunningApplication {
    let output = output.to_string();
    let owner = owner.to_string();
    KafkaApplication::new(
        app_config(brokers, app, input, state),
        move |task, query| build_task(task, query, &output, &owner, mode),
    )
    .start()
    .expect("the application starts")
}

/// Key `k` lives in partition `k % partitions`, as a keyed producer would place it.
fn produce(producer: &TestProducer, ids: std::ops::Range<u64>, keys: u64, partitions: i32) {
    for id in ids {
        let key = id * 7 % keys;
        producer.send(
            (key % partitions as u64) as i32,
            Some(format!("k{key}").as_bytes()),
            format!("k{key},{id}").as_bytes(),
            None,
            &[],
        );
    }
    producer.flush();
}

fn read_output(brokers: &str, output: &str) -> Vec<Out> {
    read_topic(brokers, output, 1)
        .into_iter()
        .map(|record| {
            let value = String::from_utf8(record.value.unwrap()).unwrap();
            let fields: Vec<&str> = value.split(',').collect();
            Out {
                key: fields[0].to_string(),
                id: fields[1].parse().unwrap(),
                count: fields[2].parse().unwrap(),
                owner: fields[3].to_string(),
                partition: fields[4].parse().unwrap(),
            }
        })
        .collect()
}

/// The reference: every input record's count among its key's records, from the input
/// topic as a plain consumer reads it (offset order within a partition is the order in
/// which the task saw them).
fn reference(brokers: &str, input: &str, partitions: i32) -> BTreeMap<u64, (String, u64)> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut expected = BTreeMap::new();
    for record in read_topic(brokers, input, partitions) {
        let value = String::from_utf8(record.value.unwrap()).unwrap();
        let (key, id) = value.split_once(',').unwrap();
        let count = counts.entry(key.to_string()).or_default();
        *count += 1;
        expected.insert(id.parse().unwrap(), (key.to_string(), *count));
    }
    expected
}

/// Checks that every output line carries the reference count of its record (the count
/// of the record's key after it). Returns how many lines repeat an earlier one.
fn check_counts(expected: &BTreeMap<u64, (String, u64)>, output: &[Out]) -> usize {
    let mut seen = BTreeSet::new();
    let mut repeats = 0;
    for out in output {
        let (key, count) = expected
            .get(&out.id)
            .unwrap_or_else(|| panic!("output for an id never produced: {out:?}"));
        assert_eq!(
            (&out.key, out.count),
            (key, *count),
            "record {} came out with the wrong count (state lost or out of step with \
             the offsets): {out:?}",
            out.id
        );
        if !seen.insert(out.id) {
            repeats += 1;
        }
    }
    repeats
}

/// Checks the output against the reference: every record out, each with its count.
/// Returns how many output records repeat an earlier one.
fn check(expected: &BTreeMap<u64, (String, u64)>, output: &[Out]) -> usize {
    let repeats = check_counts(expected, output);
    let seen: BTreeSet<u64> = output.iter().map(|out| out.id).collect();
    let missing: Vec<_> = expected.keys().filter(|id| !seen.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} records lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    repeats
}

/// Waits until the output holds a record of every id below `ids` (polling the topic).
fn wait_for_output(brokers: &str, output: &str, ids: u64, what: &str) -> Vec<Out> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = read_output(brokers, output);
        let distinct: BTreeSet<u64> = out.iter().map(|o| o.id).collect();
        if (0..ids).all(|id| distinct.contains(&id)) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {} of {ids} records came out",
            distinct.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The final count of every key: its number of input records.
fn final_counts(expected: &BTreeMap<u64, (String, u64)>) -> BTreeMap<String, u64> {
    let mut finals = BTreeMap::new();
    for (key, count) in expected.values() {
        let last = finals.entry(key.clone()).or_insert(0);
        *last = (*last).max(*count);
    }
    finals
}

/// Waits until a micro-batch output holds every key's final count.
fn wait_for_final_counts(
    brokers: &str,
    output: &str,
    expected: &BTreeMap<u64, (String, u64)>,
) -> Vec<Out> {
    let finals = final_counts(expected);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = read_output(brokers, output);
        let reached: BTreeSet<(String, u64)> =
            out.iter().map(|o| (o.key.clone(), o.count)).collect();
        let missing = finals
            .iter()
            .filter(|(key, count)| !reached.contains(&((*key).clone(), **count)))
            .count();
        if missing == 0 {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} keys never reached their final count",
            finals.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Checks a micro-batch output (a line per key and batch, with the count after the
/// batch's last record of the key) against the reference: every line's count is the
/// reference count of its record, and every key reaches its final count. Returns how
/// many lines repeat an earlier one.
fn check_batches(expected: &BTreeMap<u64, (String, u64)>, output: &[Out]) -> usize {
    let repeats = check_counts(expected, output);
    for (key, count) in final_counts(expected) {
        assert!(
            output.iter().any(|o| o.key == key && o.count == count),
            "key {key} never reached its final count {count}"
        );
    }
    repeats
}

/// Held by each test that runs several group members: they run one at a time, so that
/// their processes (up to four, each with its tasks' threads) do not share a 2-core
/// machine with another such test's, which made group rebalances take minutes on CI.
fn one_group_test_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static GROUP_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    GROUP_TESTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn partitions_and_state_move_when_a_process_joins_and_leaves() {
    let Some(brokers) = brokers("partitions_and_state_move_when_a_process_joins_and_leaves") else {
        return;
    };
    let _serial = one_group_test_at_a_time();
    const PARTITIONS: i32 = 4;
    const KEYS: u64 = 40;
    let input = unique_topic("scale-in");
    let output = unique_topic("scale-out");
    create_topic(&brokers, &input, PARTITIONS);
    create_topic(&brokers, &output, 1);
    let state = tempfile::tempdir().unwrap();
    let app = unique_topic("app");
    let producer = TestProducer::new(&brokers, &input);

    // One process owns everything.
    produce(&producer, 0..1000, KEYS, PARTITIONS);
    let a = start_app(
        &brokers,
        &app,
        &input,
        &output,
        state.path(),
        "a",
        Mode::Continuous,
    );
    wait_until("a owns every partition", Duration::from_secs(180), || {
        a.tasks().len() == PARTITIONS as usize
    });
    wait_for_output(&brokers, &output, 1000, "a alone");

    // A second process joins: the group moves some partitions to it, each task stopped
    // (its state checkpointed) in `a` before it starts, restored, in `b`.
    let b = start_app(
        &brokers,
        &app,
        &input,
        &output,
        state.path(),
        "b",
        Mode::Continuous,
    );
    wait_until("b takes partitions", Duration::from_secs(180), || {
        !b.tasks().is_empty() && a.tasks().len() + b.tasks().len() == PARTITIONS as usize
    });
    let moved = b.tasks();
    assert!(a.stats().revocations >= 1, "{:?}", a.stats());
    produce(&producer, 1000..2000, KEYS, PARTITIONS);
    let out = wait_for_output(&brokers, &output, 2000, "a and b");
    let from_b: BTreeSet<i32> = out
        .iter()
        .filter(|o| o.owner == "b")
        .map(|o| o.partition)
        .collect();
    assert_eq!(
        from_b,
        moved.iter().copied().collect(),
        "b wrote its partitions"
    );

    // `b` leaves: its partitions go back to `a`, with the state `b` built.
    b.stop().unwrap();
    drop(b);
    wait_until(
        "a owns every partition again",
        Duration::from_secs(180),
        || a.tasks().len() == PARTITIONS as usize,
    );
    produce(&producer, 2000..3000, KEYS, PARTITIONS);
    let out = wait_for_output(&brokers, &output, 3000, "a after b left");
    a.stop().unwrap();

    let expected = reference(&brokers, &input, PARTITIONS);
    assert_eq!(expected.len(), 3000);
    let repeats = check(&expected, &out);
    // Every handover was graceful (the task's last epoch checkpointed before it moved):
    // nothing is processed twice.
    assert_eq!(repeats, 0, "graceful handovers repeated output");
}

#[test]
fn repartitioning_by_a_new_key_goes_through_a_topic() {
    let Some(brokers) = brokers("repartitioning_by_a_new_key_goes_through_a_topic") else {
        return;
    };
    let _serial = one_group_test_at_a_time();
    const KEYS: u64 = 30;
    const TOTAL: u64 = 1500;
    let input = unique_topic("by-key");
    let by_group = unique_topic("by-group");
    let output = unique_topic("group-counts");
    create_topic(&brokers, &input, 3);
    create_topic(&brokers, &by_group, 2);
    create_topic(&brokers, &output, 1);
    let state = tempfile::tempdir().unwrap();
    let producer = TestProducer::new(&brokers, &input);
    produce(&producer, 0..TOTAL, KEYS, 3);

    // Stage 1, partitioned by key: re-keys every record by its group (`k` -> `g{k % 4}`)
    // into a topic keyed by group, whose partitioner sends each group to one partition.
    let stage1_topic = by_group.clone();
    let stage1 = KafkaApplication::new(
        app_config(&brokers, &unique_topic("stage1"), &input, state.path()),
        move |task, query| {
            let sink = KafkaSinkConfig::with_client(task.kafka().clone(), &stage1_topic);
            query.checkpoint(task.checkpoint_config().durability(Durability::OsBuffered));
            query
                .read_kafka("in", task.source_config())
                .map(|record| {
                    let value = String::from_utf8(record.value.unwrap_or_default()).unwrap();
                    let (key, id) = value.split_once(',').unwrap();
                    let key: u64 = key[1..].parse().unwrap();
                    (format!("g{}", key % 4), id.to_string())
                })
                .sink(
                    "by-group",
                    KafkaSink::new(
                        sink,
                        |(group, id): &(String, String), message: &mut KafkaMessage| {
                            message.set_key(group);
                            message.set_value(format!("{group},{id}"));
                            Ok(())
                        },
                    ),
                );
            Ok(())
        },
    )
    .start()
    .unwrap();
    // Stage 2, partitioned by group, in two processes' worth of members: a running
    // count per group.
    let stage2_app = unique_topic("stage2");
    let stage2: Vec<RunningApplication> = ["x", "y"]
        .iter()
        .map(|owner| {
            start_app(
                &brokers,
                &stage2_app,
                &by_group,
                &output,
                state.path(),
                owner,
                Mode::Continuous,
            )
        })
        .collect();
    let out = wait_for_output(&brokers, &output, TOTAL, "stage 2");
    stage1.stop().unwrap();
    for app in &stage2 {
        app.stop().unwrap();
    }

    // The repartition topic holds every record once, each group in one partition.
    let repartitioned = read_topic(&brokers, &by_group, 2);
    assert_eq!(repartitioned.len() as u64, TOTAL);
    let mut partition_of: BTreeMap<Vec<u8>, BTreeSet<i32>> = BTreeMap::new();
    for record in &repartitioned {
        partition_of
            .entry(record.key.clone().unwrap())
            .or_default()
            .insert(record.partition);
    }
    assert_eq!(partition_of.len(), 4);
    assert!(partition_of
        .values()
        .all(|partitions| partitions.len() == 1));
    // Every record came out of stage 2 with its group's count, in the order of the
    // repartition topic (the reference), and its group is its key's.
    let expected = reference(&brokers, &by_group, 2);
    assert_eq!(expected.len() as u64, TOTAL);
    for (id, (group, _)) in &expected {
        assert_eq!(*group, format!("g{}", (id * 7 % KEYS) % 4));
    }
    assert_eq!(check(&expected, &out), 0);
}

/// The child process of the demonstration: runs the application until `stop` appears in
/// its directory.
#[test]
#[ignore = "entry point of the child processes of the scale-out demonstration"]
fn scale_out_worker() {
    let Ok(dir) = std::env::var("RIVULET_SCALE_OUT_WORKER") else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap();
    let dir = Path::new(&dir).to_path_buf();
    let running = start_app(
        &var("RIVULET_KAFKA_BROKERS"),
        &var("RIVULET_SCALE_OUT_APP"),
        &var("RIVULET_SCALE_OUT_INPUT"),
        &var("RIVULET_SCALE_OUT_OUTPUT"),
        &dir.join("state"),
        &var("RIVULET_SCALE_OUT_OWNER"),
        Mode::from_name(&var("RIVULET_SCALE_OUT_MODE")),
    );
    let owner = var("RIVULET_SCALE_OUT_OWNER");
    let parent = std::os::unix::process::parent_id();
    let deadline = Instant::now() + Duration::from_secs(600);
    // Tasks seen running, and each start noted in `tasks.log`: `owner,partition,epoch
    // the task restored from (-1: none)`.
    let mut seen = BTreeSet::new();
    while !dir.join("stop").exists() {
        let running_now: BTreeSet<i32> = running.tasks().into_iter().collect();
        seen.retain(|partition| running_now.contains(partition));
        for partition in running_now {
            if seen.contains(&partition) {
                continue;
            }
            if let Some(progress) = running.task_progress(partition) {
                let restored = progress
                    .checkpoint
                    .and_then(|checkpoint| checkpoint.recovered_epoch)
                    .map_or(-1, |epoch| epoch as i64);
                let mut log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("tasks.log"))
                    .unwrap();
                use std::io::Write;
                writeln!(log, "{owner},{partition},{restored}").unwrap();
                seen.insert(partition);
            }
        }
        if let Some(result) = running.await_termination_timeout(Duration::from_millis(50)) {
            result.unwrap();
            panic!("the application ended by itself");
        }
        assert!(Instant::now() < deadline, "the worker was never stopped");
        // The test that started this worker is gone: do not outlive it.
        assert_eq!(
            std::os::unix::process::parent_id(),
            parent,
            "the test ended"
        );
    }
    running.stop().unwrap();
}

#[test]
fn three_processes_one_killed_survivors_take_its_partitions_and_state() {
    let Some(brokers) =
        brokers("three_processes_one_killed_survivors_take_its_partitions_and_state")
    else {
        return;
    };
    demonstration(&brokers, Mode::Continuous);
}

#[test]
fn three_micro_batch_processes_one_killed() {
    let Some(brokers) = brokers("three_micro_batch_processes_one_killed") else {
        return;
    };
    demonstration(&brokers, Mode::MicroBatch(DeliveryGuarantee::AtLeastOnce));
}

/// The "nothing duplicated": micro-batches with the transactional sink, read
/// `read_committed`. Needs a broker that commits Kafka transactions (tansu 0.6.0 does
/// not: it skips there, see `common::kafka::transactions`).
#[test]
fn three_transactional_processes_one_killed_nothing_lost_or_repeated() {
    let test = "three_transactional_processes_one_killed_nothing_lost_or_repeated";
    let Some(brokers) = brokers(test) else {
        return;
    };
    if !common::kafka::transactions(&brokers, test) {
        return;
    }
    let repeats = demonstration(&brokers, Mode::MicroBatch(DeliveryGuarantee::ExactlyOnce));
    assert_eq!(repeats, 0, "the transactional sink repeated output");
}

/// 3 processes over 6 partitions, one SIGKILLed mid-run: nothing lost, every count
/// exact, the victim's tasks restored by survivors. Returns how many output lines
/// repeat an earlier one.
fn demonstration(brokers: &str, mode: Mode) -> usize {
    let _serial = one_group_test_at_a_time();
    let brokers = brokers.to_string();
    const PARTITIONS: i32 = 6;
    const KEYS: u64 = 60;
    let input = unique_topic("demo-in");
    let output = unique_topic("demo-out");
    create_topic(&brokers, &input, PARTITIONS);
    create_topic(&brokers, &output, 1);
    let dir = tempfile::tempdir().unwrap();
    let app = unique_topic("demo");
    let spawn = |owner: &str| -> Child {
        common::worker_command("scale_out_worker")
            .env("RIVULET_SCALE_OUT_WORKER", dir.path())
            .env("RIVULET_KAFKA_BROKERS", &brokers)
            .env("RIVULET_SCALE_OUT_APP", &app)
            .env("RIVULET_SCALE_OUT_INPUT", &input)
            .env("RIVULET_SCALE_OUT_OUTPUT", &output)
            .env("RIVULET_SCALE_OUT_OWNER", owner)
            .env("RIVULET_SCALE_OUT_MODE", mode.name())
            .spawn()
            .expect("the test binary can run itself")
    };
    let mut workers: Vec<(String, Child)> = ["p1", "p2", "p3"]
        .iter()
        .map(|owner| (owner.to_string(), spawn(owner)))
        .collect();

    // Records trickle in (100 every 100 ms) until all three processes have written
    // output, however long the group takes to form; then, after the kill, `AFTER_KILL`
    // more while the survivors take over. The producer returns how many it wrote.
    const AFTER_KILL: u64 = 3000;
    let (writing_tx, writing_rx) = std::sync::mpsc::channel::<()>();
    let (killed_tx, killed_rx) = std::sync::mpsc::channel::<()>();
    let producer_brokers = brokers.clone();
    let producer_input = input.clone();
    let producer = std::thread::spawn(move || {
        let producer = TestProducer::new(&producer_brokers, &producer_input);
        let mut next = 0;
        while writing_rx.try_recv().is_err() && next < 30_000 {
            produce(&producer, next..next + 100, KEYS, PARTITIONS);
            next += 100;
            std::thread::sleep(Duration::from_millis(100));
        }
        killed_rx.recv().unwrap();
        let end = next + AFTER_KILL;
        while next < end {
            produce(&producer, next..next + 100, KEYS, PARTITIONS);
            next += 100;
            std::thread::sleep(Duration::from_millis(100));
        }
        next
    });

    // Kill p2 once all three have written output.
    let last_owners = |out: &[Out]| -> BTreeMap<i32, String> {
        out.iter()
            .map(|o| (o.partition, o.owner.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = read_output(&brokers, &output);
        let writers: BTreeSet<&str> = out.iter().map(|o| o.owner.as_str()).collect();
        if writers.len() == 3 {
            writing_tx.send(()).unwrap();
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the three processes did not all get partitions: {writers:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let victim = "p2";
    let position = workers
        .iter()
        .position(|(owner, _)| owner == victim)
        .unwrap();
    let (_, mut killed) = workers.remove(position);
    killed.kill().unwrap(); // SIGKILL: no goodbye to the group, no final checkpoint
    killed.wait().unwrap();
    let victim_partitions: BTreeSet<i32> = last_owners(&read_output(&brokers, &output))
        .into_iter()
        .filter(|(_, owner)| owner == victim)
        .map(|(partition, _)| partition)
        .collect();
    assert!(!victim_partitions.is_empty());
    let starts_before_kill = std::fs::read_to_string(dir.path().join("tasks.log"))
        .unwrap()
        .lines()
        .count();
    killed_tx.send(()).unwrap();
    let total = producer.join().unwrap();

    let expected = reference(&brokers, &input, PARTITIONS);
    assert_eq!(expected.len() as u64, total);
    let out = match mode {
        Mode::Continuous => wait_for_output(&brokers, &output, total, "after the kill"),
        Mode::MicroBatch(_) => wait_for_final_counts(&brokers, &output, &expected),
    };
    std::fs::write(dir.path().join("stop"), b"").unwrap();
    for (owner, worker) in workers {
        common::expect_success(worker, &format!("worker {owner}"));
    }

    let repeats = match mode {
        Mode::Continuous => check(&expected, &out),
        Mode::MicroBatch(_) => check_batches(&expected, &out),
    };
    // The victim's partitions were taken over: their last records came from survivors.
    let last_owner = last_owners(&out);
    for partition in &victim_partitions {
        assert_ne!(
            last_owner[partition], victim,
            "partition {partition} was not taken over"
        );
    }
    // ... and their tasks started there from the checkpoints the victim wrote: the
    // state followed the partitions (a task started afresh would restore nothing).
    let starts = std::fs::read_to_string(dir.path().join("tasks.log")).unwrap();
    for partition in &victim_partitions {
        let restored = starts
            .lines()
            .skip(starts_before_kill)
            .map(|line| line.split(',').collect::<Vec<_>>())
            .any(|fields| {
                fields[0] != victim
                    && fields[1] == partition.to_string()
                    && fields[2].parse::<i64>().unwrap() > 0
            });
        assert!(
            restored,
            "no survivor restored partition {partition}'s task from its checkpoint:\n{starts}"
        );
    }
    eprintln!(
        "killed {victim} (partitions {victim_partitions:?}); {} output records, {repeats} \
         repeated, none lost, every count exact ({})",
        out.len(),
        mode.name()
    );
    repeats
}

#[test]
fn refused_at_start_missing_topic_and_topics_not_co_partitioned() {
    let Some(brokers) = brokers("refused_at_start_missing_topic_and_topics_not_co_partitioned")
    else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let never = |_: &TaskContext, _: &mut QueryBuilder| -> Result<(), BoxError> {
        panic!("no task may start")
    };
    let missing = unique_topic("missing");
    let error = KafkaApplication::new(
        app_config(&brokers, "refused", &missing, state.path()),
        never,
    )
    .start()
    .unwrap_err();
    assert!(
        matches!(&error, ApplicationError::MissingTopic { topic, .. } if *topic == missing),
        "{error}"
    );

    let two = unique_topic("two");
    let three = unique_topic("three");
    create_topic(&brokers, &two, 2);
    create_topic(&brokers, &three, 3);
    let config = ApplicationConfig::new(
        "refused",
        KafkaConfig::new(&brokers),
        [&two, &three],
        state.path(),
    );
    let error = KafkaApplication::new(config, never).start().unwrap_err();
    assert!(
        matches!(error, ApplicationError::NotCoPartitioned { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains(&format!("{two}: 2, {three}: 3")),
        "{error}"
    );
}

#[test]
fn no_broker_fails_start_after_the_metadata_timeout() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let state = tempfile::tempdir().unwrap();
    let config = app_config(&format!("127.0.0.1:{port}"), "nobroker", "t", state.path())
        .metadata_timeout(Duration::from_secs(2));
    let error = KafkaApplication::new(config, |_, _| Ok(()))
        .start()
        .unwrap_err();
    assert!(
        matches!(error, ApplicationError::Kafka { action, .. } if action.contains("metadata")),
        "{error}"
    );
}

#[test]
fn a_task_that_cannot_be_built_fails_the_application() {
    let Some(brokers) = brokers("a_task_that_cannot_be_built_fails_the_application") else {
        return;
    };
    let input = unique_topic("unbuildable");
    create_topic(&brokers, &input, 2);
    let state = tempfile::tempdir().unwrap();
    let app = unique_topic("unbuildable");
    let running = KafkaApplication::new(
        app_config(&brokers, &app, &input, state.path()),
        |task, _| Err(format!("no query for partition {}", task.partition()).into()),
    )
    .start()
    .unwrap();
    let result = running
        .await_termination_timeout(Duration::from_secs(60))
        .expect("the application fails");
    let error = result.unwrap_err();
    assert!(
        matches!(&error, ApplicationError::TaskBuild { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("no query for partition"),
        "{error}"
    );
    assert!(!running.is_active());

    // A builder that panics is reported the same way.
    let app = unique_topic("panicking-builder");
    let running =
        KafkaApplication::new(app_config(&brokers, &app, &input, state.path()), |_, _| {
            panic!("the builder gave up")
        })
        .start()
        .unwrap();
    let error = running
        .await_termination_timeout(Duration::from_secs(60))
        .expect("the application fails")
        .unwrap_err();
    assert!(
        matches!(&error, ApplicationError::TaskBuild { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("the builder gave up"), "{error}");
}

#[test]
fn a_task_that_panics_fails_the_application_and_leaves_the_group() {
    let Some(brokers) = brokers("a_task_that_panics_fails_the_application_and_leaves_the_group")
    else {
        return;
    };
    let input = unique_topic("panicking");
    create_topic(&brokers, &input, 2);
    let producer = TestProducer::new(&brokers, &input);
    produce(&producer, 0..20, 4, 2);
    let state = tempfile::tempdir().unwrap();
    let app = unique_topic("panicking");
    let running = KafkaApplication::new(
        app_config(&brokers, &app, &input, state.path()),
        |task, query| {
            query
                .read_kafka("in", task.source_config())
                .map(|record| {
                    assert!(record.offset < 5, "user code panics at offset 5");
                    record.offset
                })
                .to_memory("offsets");
            Ok(())
        },
    )
    .start()
    .unwrap();
    let error = running
        .await_termination_timeout(Duration::from_secs(60))
        .expect("the application fails")
        .unwrap_err();
    assert!(
        matches!(
            &error,
            ApplicationError::TaskFailed {
                source: rivulet::Error::OperatorPanicked { .. },
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("user code panics at offset 5"),
        "{error}"
    );
    assert!(running.tasks().is_empty(), "every task stopped");
}
