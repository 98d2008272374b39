//! The Kafka source's faults: no broker at start, a topic that does not exist, and a
//! broker killed and restarted while the query runs (a tansu of the test's own, on its
//! own port and SQLite file, from `RIVULET_TANSU`, which `.ci/kafka.sh` exports).
#![cfg(feature = "kafka")]

mod common;

use common::kafka::{brokers, create_topic, read_topic, unique_topic, Plain, TestProducer};
use common::{wait_until, HANG_GUARD};
use rivulet::kafka::{
    KafkaConfig, KafkaRecord, KafkaSourceConfig, StartingOffsets, TopicPartition,
};
use rivulet::Query;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn no_broker_at_start_fails_the_start_naming_it() {
    // A loopback port nobody listens on (bound, then released).
    let address = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let config = KafkaSourceConfig::subscribe(KafkaConfig::new(&address), ["anything"])
        .metadata_timeout(Duration::from_millis(500));
    let mut query = Query::builder();
    query.read_kafka("in", config).for_each(|_| {});
    let error = query.start().unwrap_err().to_string();
    assert!(
        error.contains(&address) && error.contains("answered within"),
        "{error}"
    );
}

#[test]
fn a_topic_that_does_not_exist_is_named() {
    let Some(brokers) = brokers("a_topic_that_does_not_exist_is_named") else {
        return;
    };
    let missing = unique_topic("no-such-topic");
    let mut query = Query::builder();
    query
        .read_kafka(
            "in",
            KafkaSourceConfig::subscribe(KafkaConfig::new(&brokers), [&missing]),
        )
        .for_each(|_| {});
    let error = query.start().unwrap_err().to_string();
    assert!(
        error.contains(&format!("the topic `{missing}` does not exist")),
        "{error}"
    );

    // An assigned partition the topic does not have.
    let topic = unique_topic("two-partitions");
    create_topic(&brokers, &topic, 2);
    let mut query = Query::builder();
    query
        .read_kafka(
            "in",
            KafkaSourceConfig::assign(KafkaConfig::new(&brokers), [TopicPartition::new(&topic, 5)]),
        )
        .for_each(|_| {});
    let error = query.start().unwrap_err().to_string();
    assert!(error.contains("has no partition 5"), "{error}");
}

/// A tansu broker of this test's own.
struct Broker {
    binary: String,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    fn start(binary: &str) -> Broker {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut broker = Broker {
            binary: binary.to_string(),
            dir: tempfile::tempdir().unwrap(),
            port,
            child: None,
        };
        broker.run();
        broker
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the process (on the same port and storage as before) and waits until it
    /// accepts connections.
    fn run(&mut self) {
        let url = format!("tcp://{}", self.address());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .unwrap();
        let child = Command::new(&self.binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "sqlite://tansu.db",
            ])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let address: SocketAddr = self.address().parse().unwrap();
        let deadline = Instant::now() + HANG_GUARD;
        while TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tansu(test: &str) -> Option<String> {
    match std::env::var("RIVULET_TANSU") {
        Ok(binary) if Path::new(&binary).is_file() => Some(binary),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "RIVULET_TANSU is unset: CI must run {test} (.ci/kafka.sh exports it)"
            );
            eprintln!("SKIPPED {test}: no tansu binary (run under .ci/kafka.sh)");
            None
        }
    }
}

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

#[test]
fn broker_killed_and_restarted_mid_run_loses_nothing() {
    let Some(binary) = tansu("broker_killed_and_restarted_mid_run_loses_nothing") else {
        return;
    };
    let mut broker = Broker::start(&binary);
    let brokers = broker.address();
    let topic = unique_topic("restart");
    create_topic(&brokers, &topic, 2);
    let send = |range: std::ops::Range<i32>| {
        let producer = TestProducer::new(&brokers, &topic);
        for i in range {
            producer.send(i % 2, None, format!("v{i}").as_bytes(), None, &[]);
        }
        producer.flush();
    };
    send(0..100);

    let mut query = Query::builder();
    let out = query
        .read_kafka(
            "in",
            KafkaSourceConfig::subscribe(KafkaConfig::new(&brokers), [&topic])
                .starting_offsets(StartingOffsets::Earliest),
        )
        .to_memory("out");
    let running = query.start().unwrap();
    wait_until("the first records", || out.len() >= 100);

    broker.kill();
    broker.run();
    send(100..200);
    wait_until("the records produced after the restart", || {
        out.len() >= 200
    });
    assert!(running.is_active(), "the query ended");
    let mut got: Vec<Plain> = out.rows().iter().map(plain).collect();
    got.sort();
    let expected = read_topic(&brokers, &topic, 2);
    running.stop().unwrap();
    assert_eq!(
        expected.len(),
        200,
        "the broker lost records: {}",
        broker.log()
    );
    assert_eq!(got, expected);
}
