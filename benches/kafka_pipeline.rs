//! Kafka → filter → Kafka (issue #17): throughput and end-to-end latency of a rivulet
//! pipeline between two topics, against the same broker's own produce → consume round
//! trip measured in the same run (the floor), with the pipeline scaled over 1, 2, 3 OS
//! processes.
//!
//! ```text
//! bash .ci/kafka.sh cargo bench --profile release --features kafka --bench kafka_pipeline
//! RIVULET_KAFKA_BENCH_RATE=max bash .ci/kafka.sh cargo bench --profile release \
//!     --features kafka --bench kafka_pipeline
//! ```
//!
//! (`--profile release`: the release profile without the bench profile's LTO, which
//! takes minutes longer to link; say which one numbers come from.)
//!
//! Each run creates fresh input and output topics (`PARTITIONS` partitions each). A
//! producer in this process (idempotent, as the sink's is) writes `records` 32-byte
//! values open-loop at `rate` records/s, record `i` to partition `i % PARTITIONS`; each
//! value carries the record's id and its
//! *scheduled* produce time (wall clock, µs), so a producer that falls behind shows as
//! latency rather than hiding it (no coordinated omission). Then either
//!
//! * `floor`: a plain librdkafka consumer in this process reads the input topic; or
//! * `continuous ×N` / `micro-batch ×N`: N child processes (this executable re-run
//!   with `--kafka-pipeline-worker`) each run the rivulet query `read_kafka` (its
//!   partitions, one source instance) → `filter` (even ids: half the records) →
//!   [`KafkaSink`] (at least once, the value unchanged, the same partition) into the
//!   output topic, and the same plain consumer in this process reads the output topic.
//!
//! The consumer records `now − scheduled produce time` of every record in an HDR
//! histogram (µs, 3 significant digits), leaving out the first `WARMUP_SECONDS` of
//! produce times (connections, metadata); it ends when every expected id came, or
//! `TAIL_SECONDS` after the producer finished (the rest count as missing). Throughput is
//! the rate at which the expected records produced after the warm-up came (first to
//! last arrival), in input records/s (×2 behind the filter): at a rate the
//! configuration sustains, about the rate produced; below it when a backlog grows.
//!
//! **tansu holds fetches.** tansu 0.6.0 answers a fetch only after sleeping part of its
//! `max_wait` (at least half of it) even when it has records (`tansu-storage`'s
//! `service/fetch.rs`), where Apache Kafka answers as soon as `fetch.min.bytes` are
//! there. With librdkafka's default `fetch.wait.max.ms` (500) every hop costs
//! 250–500 ms. So every consumer here (the floor's, the pipeline's source through
//! `KafkaConfig::set`, the output's) uses `fetch.wait.max.ms` = `FETCH_WAIT_MS`
//! (default 10).
//!
//! **How the processes share the partitions.** By default through Kafka's consumer
//! group, as rivulet scales out: each process runs the pipeline as a
//! [`KafkaApplication`] (one application id per run, state under a temporary
//! directory), a task per partition it is given; a process reports ready once its tasks
//! have not changed for 2 s (the group settled), and the run starts when all are
//! ready. With `RIVULET_KAFKA_BENCH_ASSIGNMENT=static`, process `i` of `N` is given the
//! partitions `p` with `p % N == i` through `Topics::Assign` ([`static_split`]) and runs
//! one query over them.
//!
//! Parameters (environment variables):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `RIVULET_KAFKA_BENCH_RATE` | 1000 | records/s produced, or `max`: per configuration, the highest rate it sustains (doubling from `START_RATE` while it sustains, then two bisection steps) |
//! | `RIVULET_KAFKA_BENCH_SECONDS` | 5 | seconds of producing per run (records = rate × seconds) |
//! | `RIVULET_KAFKA_BENCH_RECORDS` | — | records per run instead (fixed-rate mode) |
//! | `RIVULET_KAFKA_BENCH_RUNS` | 3 | runs of each configuration (fixed-rate mode), alternated |
//! | `RIVULET_KAFKA_BENCH_PROCESSES` | `1,2,3` | pipeline process counts |
//! | `RIVULET_KAFKA_BENCH_PARTITIONS` | 6 | partitions of each topic |
//! | `RIVULET_KAFKA_BENCH_ASSIGNMENT` | `group` | `group`: processes share partitions through the consumer group (a task per partition); `static`: a fixed split, one query per process |
//! | `RIVULET_KAFKA_BENCH_TRIGGERS` | `continuous,micro-batch` | pipeline triggers |
//! | `RIVULET_KAFKA_BENCH_EPOCH_MS` | 1000 | continuous: time between epoch markers (the sink flushes at each) |
//! | `RIVULET_KAFKA_BENCH_BATCH_MS` | 0 | micro-batch: the trigger interval (0: back to back, Spark's default) |
//! | `RIVULET_KAFKA_BENCH_FETCH_WAIT_MS` | 10 | every consumer's `fetch.wait.max.ms` |
//! | `RIVULET_KAFKA_BENCH_PRODUCER_PROPERTIES` | — | `key=value,…`: librdkafka properties of the bench's producer (idempotent by default, as the sink's is; `enable.idempotence=false` for a plain one) |
//! | `RIVULET_KAFKA_BENCH_SINK_PROPERTIES` | — | `key=value,…`: librdkafka properties of the pipeline's sink |
//! | `RIVULET_KAFKA_BENCH_WARMUP_SECONDS` | 1 | produce times left out of the histogram |
//! | `RIVULET_KAFKA_BENCH_TAIL_SECONDS` | 10 | how long after the producer ends the consumer waits |
//! | `RIVULET_KAFKA_BENCH_START_RATE` | 500 | `max` mode: the first rate tried |
//! | `RIVULET_KAFKA_BENCH_MAX_P99_MS` | 1000 | `max` mode: a rate is sustained if every record came, p99 ≤ this and the throughput is at least 0.9 × the rate |
//!
//! Prints one line per run (with the 1-minute load average), then per configuration the
//! medians over runs of throughput, p50, p99 and p99.9, and their ratios to the floor.
//! Without `RIVULET_KAFKA_BROKERS` it prints that it skips.

#[cfg(not(feature = "kafka"))]
fn main() {
    eprintln!("the kafka_pipeline bench needs --features kafka");
}

#[cfg(feature = "kafka")]
fn main() {
    bench::main();
}

#[cfg(feature = "kafka")]
mod bench {
    use hdrhistogram::Histogram;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::message::Message;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::{Offset, TopicPartitionList};
    use rivulet::kafka::admin::ensure_topics;
    use rivulet::kafka::app::{ApplicationConfig, KafkaApplication};
    use rivulet::kafka::sink::{KafkaMessage, KafkaSink, KafkaSinkConfig};
    use rivulet::kafka::{KafkaConfig, KafkaRecord, KafkaSourceConfig, StartingOffsets};
    use rivulet::kafka::{TopicPartition, Topics};
    use rivulet::{Query, QueryBuilder, Trigger};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Child, ChildStdin, Command, Stdio};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    /// The argument that makes this executable a pipeline worker.
    const WORKER: &str = "--kafka-pipeline-worker";
    /// Bytes per value: id (u64 LE), scheduled produce time (µs, u64 LE), padding.
    const VALUE_BYTES: usize = 32;
    /// The histogram's range, µs.
    const MAX_LATENCY_US: u64 = 600_000_000;

    fn env_u64(name: &str, default: u64) -> u64 {
        match std::env::var(name) {
            Ok(text) => text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}=`{text}` is not a whole number")),
            Err(_) => default,
        }
    }

    fn wall_us() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_micros() as u64
    }

    fn load() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "?".into())
    }

    /// The id carried by a value (`None` for a value that is not one of ours).
    fn id_of(value: &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(value.get(0..8)?.try_into().ok()?))
    }

    fn produced_at(value: &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(value.get(8..16)?.try_into().ok()?))
    }

    /// Every consumer's `fetch.wait.max.ms` (the floor's, the pipeline's source, the
    /// output's): tansu 0.6.0 holds each fetch for about that long (at least half of it)
    /// even when it has records, so it bounds the latency from below.
    fn fetch_wait_ms() -> u64 {
        env_u64("RIVULET_KAFKA_BENCH_FETCH_WAIT_MS", 10)
    }

    /// librdkafka properties from `name` (`key=value,key=value`), for experiments.
    fn properties(name: &str) -> Vec<(String, String)> {
        std::env::var(name)
            .unwrap_or_default()
            .split(',')
            .filter(|pair| !pair.trim().is_empty())
            .map(|pair| {
                let (key, value) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{name}: `{pair}` is not key=value"));
                (key.trim().to_string(), value.trim().to_string())
            })
            .collect()
    }

    /// The pipeline's filter: keeps even ids (half of the records).
    fn keep(value: &[u8]) -> bool {
        id_of(value).is_some_and(|id| id % 2 == 0)
    }

    /// Creates `topics` with `partitions` partitions each.
    fn create_topics(brokers: &str, topics: &[&str], partitions: i32) {
        let topics: Vec<(&str, i32)> = topics.iter().map(|topic| (*topic, partitions)).collect();
        ensure_topics(&KafkaConfig::new(brokers), &topics, Duration::from_secs(30))
            .expect("create topics");
    }

    /// Best effort: keeps the broker's SQLite file from growing over the runs.
    fn delete_topics(brokers: &str, topics: &[&str]) {
        let _ = rivulet::kafka::admin::delete_topics(
            &KafkaConfig::new(brokers),
            topics,
            Duration::from_secs(30),
        );
    }

    fn unique(what: &str) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        format!(
            "kpipe-{what}-{}-{}-{}",
            std::process::id(),
            wall_us(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Whether the pipeline's processes share the partitions through the consumer group
    /// (a `KafkaApplication`; `RIVULET_KAFKA_BENCH_ASSIGNMENT=group`, the default) or by
    /// a static split (`static`).
    fn group_managed() -> bool {
        match std::env::var("RIVULET_KAFKA_BENCH_ASSIGNMENT").as_deref() {
            Ok("static") => false,
            Ok("group") | Err(_) => true,
            Ok(other) => panic!("RIVULET_KAFKA_BENCH_ASSIGNMENT: group or static, not {other}"),
        }
    }

    /// Process `process` of `processes`'s partitions: `p % processes == process` (the
    /// static split).
    pub(super) fn static_split(partitions: i32, process: usize, processes: usize) -> Vec<i32> {
        (0..partitions)
            .filter(|p| *p as usize % processes == process)
            .collect()
    }

    /// What the pipeline runs on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Mode {
        Continuous,
        MicroBatch,
    }

    impl Mode {
        fn name(self) -> &'static str {
            match self {
                Mode::Continuous => "continuous",
                Mode::MicroBatch => "micro-batch",
            }
        }

        fn parse(text: &str) -> Mode {
            match text.trim() {
                "continuous" => Mode::Continuous,
                "micro-batch" | "microbatch" => Mode::MicroBatch,
                other => panic!("unknown trigger `{other}` (continuous or micro-batch)"),
            }
        }

        fn trigger(self) -> Trigger {
            match self {
                Mode::Continuous => Trigger::Continuous {
                    checkpoint_interval: Duration::from_millis(env_u64(
                        "RIVULET_KAFKA_BENCH_EPOCH_MS",
                        1000,
                    )),
                },
                Mode::MicroBatch => Trigger::MicroBatch {
                    interval: Duration::from_millis(env_u64("RIVULET_KAFKA_BENCH_BATCH_MS", 0)),
                },
            }
        }
    }

    /// The pipeline on `query`: `source` → keep even ids → the same partition of
    /// `output`, at least once.
    fn describe(query: &mut QueryBuilder, source: KafkaSourceConfig, brokers: &str, output: &str) {
        query
            .read_kafka("input", source)
            .filter(|record| record.value.as_deref().is_some_and(keep))
            .sink(
                "output",
                KafkaSink::new(
                    properties("RIVULET_KAFKA_BENCH_SINK_PROPERTIES")
                        .iter()
                        .fold(
                            KafkaSinkConfig::new(brokers, output).timeout(Duration::from_secs(30)),
                            |config, (key, value)| config.property(key, value),
                        ),
                    |record: &KafkaRecord, message: &mut KafkaMessage| {
                        message.set_value(record.value.as_deref().unwrap_or_default());
                        message.set_partition(record.partition);
                        Ok(())
                    },
                ),
            );
    }

    /// The consumers' client settings.
    fn client(brokers: &str) -> KafkaConfig {
        KafkaConfig::new(brokers).set("fetch.wait.max.ms", fetch_wait_ms().to_string())
    }

    /// One process of the pipeline with a static share: reads `partitions` of `input`
    /// (from the earliest offset; the topics are fresh), keeps even ids, writes them
    /// unchanged to the same partition of `output`, at least once. Returns the running
    /// query.
    pub(super) fn worker(
        brokers: &str,
        input: &str,
        output: &str,
        partitions: &[i32],
        trigger: Trigger,
    ) -> rivulet::Result<Query> {
        let mut query = Query::builder();
        query.name("kafka-pipeline").trigger(trigger);
        let source = KafkaSourceConfig::assign(
            client(brokers),
            partitions.iter().map(|p| TopicPartition::new(input, *p)),
        )
        .starting_offsets(StartingOffsets::Earliest);
        debug_assert!(matches!(source.topics(), Topics::Assign(_)));
        describe(&mut query, source, brokers, output);
        query.start()
    }

    /// One process of the pipeline as a member of the [`KafkaApplication`] `app`: the
    /// group gives it its partitions, a task per partition (checkpointing under
    /// `state`, shared by the processes), each task the same pipeline. Returns once the
    /// process has had the same tasks (at least one) for 2 s: the group has settled.
    fn group_worker(
        brokers: &str,
        input: &str,
        output: &str,
        app: &str,
        state: &str,
        mode: Mode,
    ) -> rivulet::kafka::app::RunningApplication {
        let config = ApplicationConfig::new(app, client(brokers), [input], state)
            .session_timeout(Duration::from_secs(6));
        let (brokers, output) = (brokers.to_string(), output.to_string());
        let running = KafkaApplication::new(config, move |task, query| {
            query.trigger(mode.trigger());
            describe(query, task.source_config(), &brokers, &output);
            Ok(())
        })
        .start()
        .expect("start the application");
        let mut tasks = running.tasks();
        let mut since = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(120);
        while tasks.is_empty() || since.elapsed() < Duration::from_secs(2) {
            assert!(Instant::now() < deadline, "the group did not settle");
            std::thread::sleep(Duration::from_millis(50));
            let now = running.tasks();
            if now != tasks {
                tasks = now;
                since = Instant::now();
            }
        }
        running
    }

    /// The child process: `WORKER MODE INPUT OUTPUT SHARE`, where `SHARE` is
    /// `P,P,...` (a static split) or `group:APP:STATE_DIR` (a member of the application
    /// `APP`). Prints `ready` once the pipeline runs (for a member: once its group
    /// settled); stops it when its standard input closes.
    fn worker_main(args: &[String]) {
        let [mode, input, output, share] = args else {
            panic!("usage: {WORKER} MODE INPUT OUTPUT SHARE (got {args:?})");
        };
        let brokers = std::env::var("RIVULET_KAFKA_BROKERS").expect("RIVULET_KAFKA_BROKERS");
        let mode = Mode::parse(mode);
        let stop: Box<dyn FnOnce()> = match share.strip_prefix("group:") {
            Some(group) => {
                let (app, state) = group.split_once(':').expect("group:APP:STATE_DIR");
                let running = group_worker(&brokers, input, output, app, state, mode);
                Box::new(move || running.stop().expect("stop the application"))
            }
            None => {
                let partitions: Vec<i32> = share
                    .split(',')
                    .map(|p| p.parse().expect("a partition number"))
                    .collect();
                let running = worker(&brokers, input, output, &partitions, mode.trigger())
                    .expect("start the pipeline");
                Box::new(move || running.stop().expect("stop the pipeline"))
            }
        };
        println!("ready");
        std::io::stdout().flush().expect("stdout");
        // Until the parent closes our standard input (or dies).
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stop();
    }

    /// The pipeline's processes, stopped (standard input closed, then waited for) on drop.
    struct Workers(Vec<(Child, Option<ChildStdin>)>);

    impl Workers {
        fn spawn(
            mode: Mode,
            input: &str,
            output: &str,
            partitions: i32,
            n: usize,
            group: Option<&str>,
        ) -> Self {
            let exe = std::env::current_exe().expect("this executable");
            let mut workers = Workers(Vec::new());
            for process in 0..n {
                let share = match group {
                    Some(group) => format!("group:{group}"),
                    None => {
                        let split = static_split(partitions, process, n);
                        let list: Vec<String> = split.iter().map(i32::to_string).collect();
                        list.join(",")
                    }
                };
                let mut child = Command::new(&exe)
                    .args([WORKER, mode.name(), input, output, &share])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn a worker");
                let stdin = child.stdin.take();
                workers.0.push((child, stdin));
            }
            for (child, _) in &mut workers.0 {
                let mut line = String::new();
                BufReader::new(child.stdout.take().expect("piped"))
                    .read_line(&mut line)
                    .expect("read a worker's stdout");
                assert_eq!(line.trim(), "ready", "a worker failed to start");
            }
            workers
        }
    }

    impl Drop for Workers {
        fn drop(&mut self) {
            for (_, stdin) in &mut self.0 {
                stdin.take();
            }
            for (child, _) in &mut self.0 {
                let _ = child.wait();
            }
        }
    }

    /// One run's parameters.
    #[derive(Debug, Clone, Copy)]
    struct Plan {
        rate: u64,
        records: u64,
        partitions: i32,
        warmup_us: u64,
        tail: Duration,
    }

    /// What the consumer saw.
    struct Outcome {
        latency: Histogram<u64>,
        expected: u64,
        distinct: u64,
        duplicates: u64,
        /// Distinct expected records produced after the warm-up.
        measured: u64,
        /// From the first to the last arrival of those.
        span: Duration,
    }

    impl Outcome {
        /// Input records per second: the distinct records produced after the warm-up
        /// over the time they came in, scaled by input records per expected record (2
        /// behind the filter).
        fn throughput(&self, records: u64) -> f64 {
            let input = self.measured.saturating_sub(1) as f64 * records as f64
                / self.expected.max(1) as f64;
            input / self.span.as_secs_f64().max(1e-9)
        }

        fn quantile_ms(&self, q: f64) -> f64 {
            self.latency.value_at_quantile(q) as f64 / 1e3
        }

        fn complete(&self) -> bool {
            self.distinct == self.expected
        }
    }

    /// Writes `plan.records` records to `topic` open-loop at `plan.rate`, each stamped
    /// with its scheduled time (µs since the epoch) relative to `start_us`.
    fn produce(brokers: &str, topic: &str, plan: Plan, start_us: u64, started: Instant) {
        let mut config = ClientConfig::new();
        // Idempotent, as the sink's producer is.
        config
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true");
        for (key, value) in properties("RIVULET_KAFKA_BENCH_PRODUCER_PROPERTIES") {
            config.set(key, value);
        }
        let producer: BaseProducer = config.create().expect("producer");
        let scheduled = |i: u64| (u128::from(i) * 1_000_000 / u128::from(plan.rate)) as u64;
        let mut value = [0u8; VALUE_BYTES];
        let mut next = 0;
        while next < plan.records {
            let now = started.elapsed().as_micros() as u64;
            while next < plan.records && scheduled(next) <= now {
                value[0..8].copy_from_slice(&next.to_le_bytes());
                value[8..16].copy_from_slice(&(start_us + scheduled(next)).to_le_bytes());
                let mut record = BaseRecord::<[u8], [u8]>::to(topic)
                    .partition((next % plan.partitions as u64) as i32)
                    .payload(&value[..]);
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                            producer.poll(Duration::from_millis(1));
                            record = back;
                        }
                        Err((error, _)) => panic!("produce: {error}"),
                    }
                }
                next += 1;
            }
            producer.poll(Duration::ZERO);
            if next < plan.records {
                let due = Duration::from_micros(scheduled(next));
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        producer.flush(Duration::from_secs(60)).expect("flush");
    }

    /// A plain consumer of every partition of `topic`, from the beginning, until it has
    /// every id `wanted` accepts or `deadline_us` (0: not set yet) passes.
    fn consume(
        brokers: &str,
        topic: &str,
        plan: Plan,
        start_us: u64,
        wanted: fn(u64) -> bool,
        deadline_us: &AtomicU64,
        ready: &AtomicU64,
    ) -> Outcome {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", unique("group"))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", fetch_wait_ms().to_string())
            .create()
            .expect("consumer");
        let mut list = TopicPartitionList::new();
        for partition in 0..plan.partitions {
            list.add_partition_offset(topic, partition, Offset::Beginning)
                .expect("a partition");
        }
        consumer.assign(&list).expect("assign");
        ready.store(1, Ordering::SeqCst);
        let expected = (0..plan.records).filter(|id| wanted(*id)).count() as u64;
        let mut seen = vec![false; plan.records as usize];
        let mut latency =
            Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("histogram bounds");
        let (mut distinct, mut duplicates) = (0, 0);
        let (mut first_us, mut last_us, mut measured) = (None, start_us, 0);
        while distinct < expected {
            let deadline = deadline_us.load(Ordering::SeqCst);
            if deadline != 0 && wall_us() > deadline {
                break;
            }
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = message.expect("consume");
            let now = wall_us();
            let value = message.payload().unwrap_or_default();
            let (Some(id), Some(at)) = (id_of(value), produced_at(value)) else {
                panic!("a value that is not the bench's: {value:?}");
            };
            if id >= plan.records || !wanted(id) {
                panic!("an unexpected id {id} in {topic}");
            }
            if std::mem::replace(&mut seen[id as usize], true) {
                duplicates += 1;
                continue;
            }
            distinct += 1;
            if at >= start_us + plan.warmup_us {
                measured += 1;
                first_us.get_or_insert(now);
                last_us = now;
                latency
                    .record(now.saturating_sub(at).clamp(1, MAX_LATENCY_US))
                    .expect("in range");
            }
        }
        Outcome {
            latency,
            expected,
            distinct,
            duplicates,
            measured,
            span: Duration::from_micros(last_us - first_us.unwrap_or(last_us)),
        }
    }

    /// What one run measures.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Config {
        Floor,
        Pipeline(Mode, usize),
    }

    impl Config {
        fn name(self) -> String {
            match self {
                Config::Floor => "floor (produce → consume)".into(),
                Config::Pipeline(mode, n) => format!("{} ×{n}", mode.name()),
            }
        }
    }

    /// One run of `config` on fresh topics.
    fn run(brokers: &str, config: Config, plan: Plan) -> Outcome {
        let (input, output) = (unique("in"), unique("out"));
        create_topics(brokers, &[&input, &output], plan.partitions);
        let (read, wanted): (&str, fn(u64) -> bool) = match config {
            Config::Floor => (&input, |_| true),
            Config::Pipeline(..) => (&output, |id| id % 2 == 0),
        };
        // Group-managed: a fresh application (and state directory) per run.
        let state = std::env::temp_dir().join(unique("kafka-pipeline-state"));
        let group = group_managed().then(|| format!("{}:{}", unique("app"), state.display()));
        let workers = match config {
            Config::Floor => None,
            Config::Pipeline(mode, n) => Some(Workers::spawn(
                mode,
                &input,
                &output,
                plan.partitions,
                n,
                group.as_deref(),
            )),
        };
        let deadline = AtomicU64::new(0);
        let ready = AtomicU64::new(0);
        let outcome = std::thread::scope(|scope| {
            // The consumer's start time is the producer's: set before either begins.
            let start_us = wall_us() + 200_000;
            let started = Instant::now() + Duration::from_millis(200);
            let (deadline, ready) = (&deadline, &ready);
            let consumer = scope
                .spawn(move || consume(brokers, read, plan, start_us, wanted, deadline, ready));
            while ready.load(Ordering::SeqCst) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            if let Some(wait) = started.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            produce(brokers, &input, plan, start_us, started);
            deadline.store(wall_us() + plan.tail.as_micros() as u64, Ordering::SeqCst);
            consumer.join().expect("the consumer")
        });
        drop(workers);
        let _ = std::fs::remove_dir_all(&state);
        delete_topics(brokers, &[&input, &output]);
        outcome
    }

    fn print_run(config: Config, plan: Plan, outcome: &Outcome) {
        println!(
            "{:<26} {:>8} rec/s  {:>9.0} rec/s  p50 {:>8.2} ms  p99 {:>8.2} ms  p99.9 {:>8.2} ms  \
             missing {:>6}  dup {:>5}  load {}",
            config.name(),
            plan.rate,
            outcome.throughput(plan.records),
            outcome.quantile_ms(0.5),
            outcome.quantile_ms(0.99),
            outcome.quantile_ms(0.999),
            outcome.expected - outcome.distinct,
            outcome.duplicates,
            load()
        );
    }

    fn median(mut values: Vec<f64>) -> f64 {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    }

    fn plan_for(rate: u64) -> Plan {
        let records = std::env::var("RIVULET_KAFKA_BENCH_RECORDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| rate * env_u64("RIVULET_KAFKA_BENCH_SECONDS", 5));
        Plan {
            rate,
            records,
            partitions: env_u64("RIVULET_KAFKA_BENCH_PARTITIONS", 6) as i32,
            warmup_us: env_u64("RIVULET_KAFKA_BENCH_WARMUP_SECONDS", 1) * 1_000_000,
            tail: Duration::from_secs(env_u64("RIVULET_KAFKA_BENCH_TAIL_SECONDS", 10)),
        }
    }

    /// Fixed rate: `runs` rounds of every configuration, then medians and ratios.
    fn fixed_rate(brokers: &str, configs: &[Config], rate: u64) {
        let runs = env_u64("RIVULET_KAFKA_BENCH_RUNS", 3) as usize;
        let plan = plan_for(rate);
        println!(
            "{} records per run at {rate} records/s, {} partitions, {runs} runs",
            plan.records, plan.partitions
        );
        let mut results: Vec<Vec<[f64; 4]>> = vec![Vec::new(); configs.len()];
        let mut incomplete = vec![0; configs.len()];
        for _ in 0..runs {
            for (i, config) in configs.iter().enumerate() {
                let outcome = run(brokers, *config, plan);
                print_run(*config, plan, &outcome);
                incomplete[i] += usize::from(!outcome.complete());
                results[i].push([
                    outcome.throughput(plan.records),
                    outcome.quantile_ms(0.5),
                    outcome.quantile_ms(0.99),
                    outcome.quantile_ms(0.999),
                ]);
            }
        }
        let medians: Vec<[f64; 4]> = results
            .iter()
            .map(|runs| std::array::from_fn(|k| median(runs.iter().map(|r| r[k]).collect())))
            .collect();
        println!("\nmedians of {runs} runs (ratio to the floor in brackets)");
        for (i, config) in configs.iter().enumerate() {
            let [rate, p50, p99, p999] = medians[i];
            let [f_rate, f_p50, f_p99, f_p999] = medians[0];
            println!(
                "{:<26} {:>9.0} rec/s ({:.2})  p50 {:>8.2} ms ({:.2})  p99 {:>8.2} ms ({:.2})  \
                 p99.9 {:>8.2} ms ({:.2}){}",
                config.name(),
                rate,
                rate / f_rate,
                p50,
                p50 / f_p50,
                p99,
                p99 / f_p99,
                p999,
                p999 / f_p999,
                if incomplete[i] > 0 {
                    format!("  [{} runs incomplete]", incomplete[i])
                } else {
                    String::new()
                }
            );
        }
    }

    /// `max`: per configuration, the highest rate at which every record comes and p99
    /// stays within the bound.
    fn max_rate(brokers: &str, configs: &[Config]) {
        let bound_ms = env_u64("RIVULET_KAFKA_BENCH_MAX_P99_MS", 1000) as f64;
        let start = env_u64("RIVULET_KAFKA_BENCH_START_RATE", 500);
        println!(
            "max mode: sustained = every record came, p99 ≤ {bound_ms} ms and throughput ≥ 0.9 × \
             the rate"
        );
        let mut found = Vec::new();
        for config in configs {
            let sustains = |rate: u64| {
                let plan = plan_for(rate);
                let outcome = run(brokers, *config, plan);
                print_run(*config, plan, &outcome);
                let ok = outcome.complete()
                    && outcome.quantile_ms(0.99) <= bound_ms
                    && outcome.throughput(plan.records) >= 0.9 * rate as f64;
                ok.then_some(outcome)
            };
            // Double while it sustains, then bisect twice between the last rate that
            // did and the first that did not.
            let mut best: Option<(u64, Outcome)> = None;
            let mut failed = None;
            let mut rate = start;
            for _ in 0..8 {
                match sustains(rate) {
                    Some(outcome) => {
                        best = Some((rate, outcome));
                        rate *= 2;
                    }
                    None => {
                        failed = Some(rate);
                        break;
                    }
                }
            }
            if let (Some(mut high), Some(mut low)) = (failed, best.as_ref().map(|b| b.0)) {
                for _ in 0..2 {
                    let middle = (low + high) / 2;
                    match sustains(middle) {
                        Some(outcome) => {
                            low = middle;
                            best = Some((middle, outcome));
                        }
                        None => high = middle,
                    }
                }
            }
            found.push((*config, best));
        }
        println!("\nhighest sustained rate (ratio to the floor in brackets)");
        let floor = found[0]
            .1
            .as_ref()
            .map_or(f64::NAN, |(rate, _)| *rate as f64);
        for (config, best) in &found {
            match best {
                Some((rate, outcome)) => println!(
                    "{:<26} {:>8} rec/s ({:.2})  p50 {:>8.2} ms  p99 {:>8.2} ms  p99.9 {:>8.2} ms",
                    config.name(),
                    rate,
                    *rate as f64 / floor,
                    outcome.quantile_ms(0.5),
                    outcome.quantile_ms(0.99),
                    outcome.quantile_ms(0.999)
                ),
                None => println!("{:<26} not even {start} rec/s", config.name()),
            }
        }
    }

    pub(super) fn main() {
        let args: Vec<String> = std::env::args().collect();
        if let Some(at) = args.iter().position(|arg| arg == WORKER) {
            worker_main(&args[at + 1..]);
            return;
        }
        if args.iter().any(|arg| arg == "--list") {
            return;
        }
        let Ok(brokers) = std::env::var("RIVULET_KAFKA_BROKERS") else {
            eprintln!(
                "SKIPPED kafka_pipeline bench: RIVULET_KAFKA_BROKERS is not set (run it under \
                 .ci/kafka.sh)"
            );
            return;
        };
        let processes: Vec<usize> = std::env::var("RIVULET_KAFKA_BENCH_PROCESSES")
            .unwrap_or_else(|_| "1,2,3".into())
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("RIVULET_KAFKA_BENCH_PROCESSES: 1,2,3")
            })
            .collect();
        let modes: Vec<Mode> = std::env::var("RIVULET_KAFKA_BENCH_TRIGGERS")
            .unwrap_or_else(|_| "continuous,micro-batch".into())
            .split(',')
            .map(Mode::parse)
            .collect();
        let mut configs = vec![Config::Floor];
        for mode in &modes {
            configs.extend(processes.iter().map(|n| Config::Pipeline(*mode, *n)));
        }
        let share = if group_managed() {
            "through the consumer group (a KafkaApplication: a task per partition, each \
             member started once its group settled)"
        } else {
            "by a static split (process i of N takes p % N == i, Topics::Assign)"
        };
        println!(
            "Kafka → filter (half) → Kafka on {brokers}; pipeline processes share the input \
             partitions {share}; load at start {}",
            load()
        );
        match std::env::var("RIVULET_KAFKA_BENCH_RATE").as_deref() {
            Ok("max") => max_rate(&brokers, &configs),
            _ => fixed_rate(
                &brokers,
                &configs,
                env_u64("RIVULET_KAFKA_BENCH_RATE", 1000),
            ),
        }
        println!("load at end {}", load());
    }
}
