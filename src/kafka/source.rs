//! The Kafka source: Spark's `readStream.format("kafka")`, reading topics' partitions as
//! [`KafkaRecord`]s ([`KafkaSource`], configured by [`KafkaSourceConfig`], added with
//! [`QueryBuilder::read_kafka`](crate::QueryBuilder::read_kafka) or, values decoded,
//! [`QueryBuilder::read_kafka_as`](crate::QueryBuilder::read_kafka_as)).
//!
//! ## Partitions and instances
//!
//! The source reads the partitions of the topics it subscribes to (as they are when the
//! query starts) or the partitions it is assigned ([`Topics`]). With
//! [`instances(n)`](KafkaSourceConfig::instances) it runs as `n` instances on threads
//! of their own, sharing the partitions round-robin ([`Assignment::Static`]); each
//! instance is one librdkafka consumer that reads its partitions in turn, one record at
//! a time from each. The source itself does not join a consumer group to take
//! partitions: several processes share partitions through Kafka's group protocol at the
//! level above, [`KafkaApplication`](super::app::KafkaApplication), whose tasks each
//! read their partition with a source assigned exactly that partition.
//!
//! ## Offsets: rivulet's checkpoint is the truth
//!
//! The offset after the last record emitted, per partition, is the source's checkpoint
//! offset. A restarted query seeks every partition exactly there, so what follows the
//! last complete epoch is read again and nothing before it: with a committing sink in
//! micro-batch mode, nothing is lost or duplicated. A replayed micro-batch holds the
//! same records per partition as the original one (the source stops each partition at
//! the offsets the batch's plan recorded, [`Source::replay_until`]). Offsets are never
//! read from Kafka. When the [`KafkaConfig`] has a group id, the source also commits
//! its checkpointed offsets to Kafka (asynchronously, at each checkpoint) so that
//! Kafka's tools can show the group's lag; failures to do so are ignored. Without a
//! group id nothing is committed.
//!
//! Where a partition starts without a checkpoint is [`StartingOffsets`] (Spark's
//! `startingOffsets`; default latest), resolved to concrete offsets when the query
//! starts, so a restart never re-resolves "latest". An offset that no longer exists
//! (deleted by retention, or an explicit offset past the end) fails the query naming
//! the partition (Spark's default `failOnDataLoss = true`), rather than skipping.
//!
//! ## Micro-batches: the plan and `max_offsets_per_trigger`
//!
//! In micro-batch mode each batch is an offset range per partition, fixed when the
//! batch is planned, as in Spark: from the partition's position to its high watermark
//! at that moment (records produced later go to the next batch). With
//! [`max_offsets_per_trigger`](KafkaSourceConfig::max_offsets_per_trigger) the ranges
//! hold at most that many offsets over all partitions, split in proportion to each
//! partition's backlog (Spark's `maxOffsetsPerTrigger`, Spark's arithmetic: see
//! `kafka/quota.rs`). With several instances each instance takes the cap's share of
//! its partitions (`cap × its partitions / all partitions`, at least 1) and splits that
//! over its own partitions' backlogs; Spark, planning on the driver, splits the whole
//! cap over all partitions at once. The query's
//! [`max_batch_records`](crate::QueryBuilder::max_batch_records) caps each instance's
//! records as well. Planning waits up to
//! [`poll_timeout`](KafkaSourceConfig::poll_timeout) for records of the range that
//! librdkafka has not fetched yet (stopping early once the consumer's position is past
//! the range: a transaction marker or a compacted gap holds no record); what has not
//! come by then goes to the next batch (Spark fails the task instead). In continuous
//! mode there are no ranges and no cap (as in Spark).
//!
//! ## Values and malformed records
//!
//! [`read_kafka`](crate::QueryBuilder::read_kafka) keeps values raw
//! ([`RawValue`](super::RawValue)). [`read_kafka_as`](crate::QueryBuilder::read_kafka_as)
//! decodes each value as one text, CSV or JSON record with the
//! [`format`](crate::format) decoders and Spark's modes ([`ParseMode`]): a value that does not
//! decode is, in `Permissive`, a record with nulls (counted in `malformed_rows`); in
//! `DropMalformed` (and always for a tombstone or a blank value) dropped, counted
//! (`malformed_rows`, `dropped_rows`) and written to the quarantine file
//! `<quarantine dir or checkpoint dir>/_quarantine/<name>.jsonl` (`<name>-<i>.jsonl` for
//! instance `i > 0`), one JSON object per record with `topic`, `partition`, `offset`,
//! `field`, `error` and `record`; in `FailFast` the query fails naming the topic,
//! partition and offset. As with the file source, the quarantine is flushed at every
//! checkpoint and a replayed batch may quarantine a record again.
//!
//! ## Faults
//!
//! | fault | what happens |
//! |---|---|
//! | no broker answers at start | `start()` fails after [`metadata_timeout`](KafkaSourceConfig::metadata_timeout) (default 30 s; librdkafka retries the connection meanwhile), naming the brokers |
//! | a topic (or assigned partition) that does not exist | `start()` fails naming it |
//! | the broker goes away, or restarts, while the query runs | librdkafka reconnects and fetches on from the source's position: nothing is lost or read twice; transient client errors are counted (`kafka_errors`) |
//! | an offset that no longer exists | the query fails naming the partition and offset |
//! | a value that does not decode | quarantined or failed, as above; never dropped silently |
//! | a property the source manages (`enable.auto.commit`, `auto.offset.reset`, …) | `start()` fails naming it |

use super::assign::{Assignment, TopicPartition, Topics};
use super::config::{KafkaConfig, KafkaConfigError};
use super::decode::ValueDecoder;
use super::quota::rate_limit;
use super::record::{KafkaRecord, TimestampKind};
use crate::checkpoint::codec;
use crate::checkpoint::coordinator::CheckpointShared;
use crate::error::BoxError;
use crate::event::Epoch;
use crate::format::{DecodeOptions, InvalidUtf8, Malformed, ParseMode, Verdict};
use crate::metrics::Counter;
use crate::source::{Source, SourceContext, SourcePoll};
use crate::trigger::ExecutionMode;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, DefaultConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message, OwnedMessage, Timestamp as KafkaTimestamp};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a partition starts reading when the checkpoint has no offset for it (Spark's
/// `startingOffsets`). Resolved to concrete offsets when the query starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StartingOffsets {
    /// Each partition's first offset still held.
    Earliest,
    /// Each partition's end: only records produced after the start (Spark's default for
    /// streaming queries).
    #[default]
    Latest,
    /// An offset per partition: every partition read must be given; `-2` means
    /// earliest and `-1` latest (Spark's JSON form).
    Offsets(BTreeMap<TopicPartition, i64>),
}

/// The settings of a [`KafkaSource`]: the client, what to read, where to start, and
/// Spark's Kafka source options.
///
/// ```
/// use rivulet::kafka::{KafkaConfig, KafkaSourceConfig, StartingOffsets};
///
/// let config = KafkaSourceConfig::subscribe(KafkaConfig::new("127.0.0.1:9092"), ["pumps"])
///     .starting_offsets(StartingOffsets::Earliest)
///     .max_offsets_per_trigger(10_000)
///     .instances(2);
/// assert_eq!(config.instance_count(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    kafka: KafkaConfig,
    topics: Topics,
    starting: StartingOffsets,
    max_offsets_per_trigger: Option<u64>,
    instances: usize,
    assignment: Assignment,
    metadata_timeout: Duration,
    idle_poll: Duration,
    poll_timeout: Duration,
    decode: DecodeOptions,
    quarantine_dir: Option<PathBuf>,
}

/// Properties the source sets itself, and why.
const RESERVED: &[(&str, &str)] = &[
    (
        "enable.auto.commit",
        "offsets live in rivulet's checkpoint (with a group id the source commits them for \
         monitoring itself)",
    ),
    (
        "enable.auto.offset.store",
        "offsets live in rivulet's checkpoint",
    ),
    (
        "auto.offset.reset",
        "use KafkaSourceConfig::starting_offsets; a lost offset fails the query",
    ),
    ("enable.partition.eof", "the source reads unbounded streams"),
];

impl KafkaSourceConfig {
    /// Reads every partition of `topics` (Spark's `subscribe`).
    pub fn subscribe<I>(kafka: KafkaConfig, topics: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self::new(
            kafka,
            Topics::Subscribe(topics.into_iter().map(Into::into).collect()),
        )
    }

    /// Reads exactly `partitions` (Spark's `assign`).
    pub fn assign(
        kafka: KafkaConfig,
        partitions: impl IntoIterator<Item = TopicPartition>,
    ) -> Self {
        Self::new(kafka, Topics::Assign(partitions.into_iter().collect()))
    }

    fn new(kafka: KafkaConfig, topics: Topics) -> Self {
        KafkaSourceConfig {
            kafka,
            topics,
            starting: StartingOffsets::default(),
            max_offsets_per_trigger: None,
            instances: 1,
            assignment: Assignment::Static,
            metadata_timeout: Duration::from_secs(30),
            idle_poll: Duration::from_millis(100),
            poll_timeout: Duration::from_secs(2),
            decode: DecodeOptions::default(),
            quarantine_dir: None,
        }
    }

    /// Where partitions without a checkpointed offset start (default
    /// [`StartingOffsets::Latest`]).
    pub fn starting_offsets(mut self, starting: StartingOffsets) -> Self {
        self.starting = starting;
        self
    }

    /// The most offsets one micro-batch takes over all partitions (Spark's
    /// `maxOffsetsPerTrigger`; default no limit). See the [module docs](self).
    pub fn max_offsets_per_trigger(mut self, offsets: u64) -> Self {
        self.max_offsets_per_trigger = Some(offsets.max(1));
        self
    }

    /// Runs the source as `instances` instances, each reading its share of the
    /// partitions on its own thread (default 1).
    pub fn instances(mut self, instances: usize) -> Self {
        self.instances = instances;
        self
    }

    /// How the partitions are shared among instances (default [`Assignment::Static`]).
    pub fn assignment(mut self, assignment: Assignment) -> Self {
        self.assignment = assignment;
        self
    }

    /// How long `start()` waits for the broker's metadata and the partitions' offsets
    /// before it fails (default 30 s).
    pub fn metadata_timeout(mut self, timeout: Duration) -> Self {
        self.metadata_timeout = timeout;
        self
    }

    /// How long a micro-batch waits for records that its plan counts on (they are in
    /// the partition, librdkafka has not fetched them yet) before it runs with what it
    /// has (default 2 s; the rest goes to the next batch). Spark's
    /// `kafkaConsumer.pollTimeoutMs`, except that Spark fails the task instead.
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// What happens to values that do not decode, for
    /// [`read_kafka_as`](crate::QueryBuilder::read_kafka_as) (Spark's `mode`; default
    /// [`ParseMode::Permissive`]).
    pub fn mode(mut self, mode: ParseMode) -> Self {
        self.decode = self.decode.mode(mode);
        self
    }

    /// What to do with values that are not UTF-8, for
    /// [`read_kafka_as`](crate::QueryBuilder::read_kafka_as) (default: replace them).
    pub fn invalid_utf8(mut self, policy: InvalidUtf8) -> Self {
        self.decode = self.decode.invalid_utf8(policy);
        self
    }

    /// All decoding options at once, for
    /// [`read_kafka_as`](crate::QueryBuilder::read_kafka_as).
    pub fn decode_options(mut self, options: DecodeOptions) -> Self {
        self.decode = options;
        self
    }

    /// Where the quarantine of dropped records goes: `<dir>/_quarantine/` (default: the
    /// checkpoint directory's; without either, dropped records are only counted).
    pub fn quarantine_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.quarantine_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The client settings.
    pub fn kafka(&self) -> &KafkaConfig {
        &self.kafka
    }

    /// What is read.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The number of instances.
    pub fn instance_count(&self) -> usize {
        self.instances
    }

    /// The decoding options.
    pub fn decode(&self) -> &DecodeOptions {
        &self.decode
    }

    /// Problems that will fail `start()`, found without a broker.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong.
    pub fn check(&self) -> Result<(), String> {
        self.kafka.validate().map_err(|e| e.to_string())?;
        self.kafka
            .refuse("Kafka source", RESERVED)
            .map_err(|e| e.to_string())?;
        if self.instances == 0 {
            return Err("a Kafka source needs at least one instance".into());
        }
        match &self.topics {
            Topics::Subscribe(topics) if topics.is_empty() => {
                Err("a Kafka source subscribed to no topic".into())
            }
            Topics::Assign(partitions) if partitions.is_empty() => {
                Err("a Kafka source assigned no partition".into())
            }
            _ => Ok(()),
        }
    }
}

/// Why a [`KafkaSource`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaSourceError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] KafkaConfigError),
    /// No broker answered in time.
    #[error("no Kafka broker at {brokers} answered within {timeout:?}: {error}")]
    Unreachable {
        /// The bootstrap servers.
        brokers: String,
        /// How long the source waited.
        timeout: Duration,
        /// librdkafka's error.
        error: KafkaError,
    },
    /// A topic or partition that does not exist, or starting offsets that do not fit
    /// the partitions.
    #[error("Kafka source at {brokers}: {message}")]
    Partitions {
        /// The bootstrap servers.
        brokers: String,
        /// What is wrong.
        message: String,
    },
    /// A client call failed.
    #[error("Kafka: cannot {action}: {error}")]
    Client {
        /// What the source was doing.
        action: String,
        /// librdkafka's error.
        error: KafkaError,
    },
    /// A partition cannot be read on from the source's position (records deleted by
    /// retention, an offset past the end): data would be lost.
    #[error(
        "Kafka partition {partition} cannot be read from offset {offset}: {error} (records \
             lost to retention, or an offset past the end; rivulet does not skip them)"
    )]
    OffsetLost {
        /// The partition.
        partition: TopicPartition,
        /// The offset the source needed.
        offset: i64,
        /// librdkafka's error.
        error: KafkaError,
    },
    /// A value that does not decode, in [`ParseMode::FailFast`].
    #[error("malformed record in Kafka partition {partition} at offset {offset}: {malformed} (record: {record:?})", record = malformed.record)]
    Malformed {
        /// The partition.
        partition: TopicPartition,
        /// The record's offset.
        offset: i64,
        /// What is wrong.
        malformed: Malformed,
    },
    /// Writing the quarantine failed.
    #[error("cannot {action} {path}: {error}", path = path.display())]
    Io {
        /// What the source was doing.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
}

/// The checkpoint offset: the next offset of every partition read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
struct KafkaOffsets {
    partitions: Vec<(String, i32, i64)>,
}

impl KafkaOffsets {
    fn map(&self) -> HashMap<TopicPartition, i64> {
        self.partitions
            .iter()
            .map(|(topic, partition, offset)| (TopicPartition::new(topic, *partition), *offset))
            .collect()
    }
}

type Queue = PartitionQueue<DefaultConsumerContext>;

/// One partition being read.
struct Partition {
    topic: Arc<str>,
    partition: i32,
    queue: Queue,
    /// The offset after the last record emitted (or the starting offset).
    next: i64,
    /// The end (exclusive) of what this micro-batch may take: a quota, or a replayed
    /// batch's recorded end.
    limit: Option<i64>,
    /// Records taken from librdkafka but not emitted yet, in offset order: one fetched
    /// at or past `limit` (for the next batch), or records fetched into the consumer's
    /// own queue before this partition had a queue of its own.
    held: VecDeque<OwnedMessage>,
}

impl Partition {
    fn id(&self) -> TopicPartition {
        TopicPartition::new(&*self.topic, self.partition)
    }

    fn at_limit(&self) -> bool {
        self.limit.is_some_and(|limit| self.next >= limit)
    }
}

/// The source's counters, once opened.
#[derive(Debug)]
struct Counters {
    malformed: Arc<Counter>,
    dropped: Arc<Counter>,
    skipped: Arc<Counter>,
    errors: Arc<Counter>,
}

/// The quarantine file of dropped records.
#[derive(Debug, Default)]
struct Quarantine {
    path: Option<PathBuf>,
    writer: Option<BufWriter<File>>,
}

impl Quarantine {
    fn flush(&mut self) -> Result<(), KafkaSourceError> {
        if let (Some(writer), Some(path)) = (&mut self.writer, &self.path) {
            writer.flush().map_err(|error| KafkaSourceError::Io {
                action: "write",
                path: path.clone(),
                error,
            })?;
        }
        Ok(())
    }
}

/// Records handled in one poll without one to emit before the source hands the thread
/// back (a run of dropped records must not hold off epochs and stops).
const RECORDS_PER_POLL: usize = 4096;

/// Polls of the partitions between two looks at the consumer's own queue (client
/// errors) while records flow.
const MAIN_QUEUE_EVERY: u32 = 1024;

/// What one look at a partition gave.
enum Polled<V> {
    Record(KafkaRecord<V>),
    /// Something was consumed that is no record (a dropped value, a client error).
    Consumed,
    /// Nothing there (or the partition is at its limit).
    Nothing,
}

/// Reads Kafka partitions as [`KafkaRecord`]s, values decoded by `D` (see the
/// [module docs](self)). Add it with
/// [`QueryBuilder::read_kafka`](crate::QueryBuilder::read_kafka) or
/// [`read_kafka_as`](crate::QueryBuilder::read_kafka_as).
pub struct KafkaSource<D: ValueDecoder = super::RawValue> {
    config: KafkaSourceConfig,
    decoder: D,
    /// Declared before `consumer`: the queues hold the consumer and are dropped first.
    partitions: Vec<Partition>,
    consumer: Option<Arc<BaseConsumer>>,
    /// A second client, never assigned anything, for the partitions' watermarks at
    /// each micro-batch: on the consumer's own connection such a request waits behind
    /// its long-polling fetch (up to `fetch.wait.max.ms`).
    offsets_client: Option<BaseConsumer>,
    /// Set by librdkafka's thread when a queue turns non-empty.
    ready: Arc<AtomicBool>,
    /// The last poll found nothing (the next clears `ready` before it looks).
    idle: bool,
    cursor: usize,
    polls: u32,
    restored: Option<KafkaOffsets>,
    replay_end: Option<KafkaOffsets>,
    /// The epoch clock's (current epoch, planning round) the partitions' limits belong
    /// to: when it moves, the limits end, and a micro-batch plans new ones.
    batch_key: Option<(u64, u64)>,
    /// A restored micro-batch is being replayed: its recorded ends hold until its
    /// marker's checkpoint, whatever the clock does.
    replaying: bool,
    /// Until when the planned micro-batch waits for records it counts on.
    batch_deadline: Option<Instant>,
    shared: Option<Arc<CheckpointShared>>,
    /// The partition count of every instance together (for the cap's share).
    all_partitions: usize,
    counters: Option<Counters>,
    quarantine: Quarantine,
}

impl<D: ValueDecoder> fmt::Debug for KafkaSource<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let positions: Vec<(TopicPartition, i64)> =
            self.partitions.iter().map(|p| (p.id(), p.next)).collect();
        f.debug_struct("KafkaSource")
            .field("config", &self.config)
            .field("positions", &positions)
            .finish_non_exhaustive()
    }
}

impl<D: ValueDecoder> KafkaSource<D> {
    /// A source reading what `config` says, values decoded by `decoder`. Nothing
    /// connects before the query starts.
    pub fn new(config: KafkaSourceConfig, decoder: D) -> Self {
        KafkaSource {
            config,
            decoder,
            partitions: Vec::new(),
            consumer: None,
            offsets_client: None,
            ready: Arc::new(AtomicBool::new(true)),
            idle: false,
            cursor: 0,
            polls: 0,
            restored: None,
            replay_end: None,
            batch_key: None,
            replaying: false,
            batch_deadline: None,
            shared: None,
            all_partitions: 0,
            counters: None,
            quarantine: Quarantine::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaSourceConfig {
        &self.config
    }

    fn brokers(&self) -> String {
        self.config.kafka.bootstrap_servers().to_string()
    }

    /// Connects, resolves the partitions and their starting offsets, assigns them.
    fn connect(&mut self, context: &SourceContext) -> Result<(), KafkaSourceError> {
        let timeout = self.config.metadata_timeout;
        let mut client = self.config.kafka.client_config();
        client
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "error")
            .set("enable.partition.eof", "false");
        if self.config.kafka.group().is_none() {
            // librdkafka refuses `assign` without a group id. The source never joins
            // the group (no `subscribe`) and commits nothing without a group of the
            // user's: this one only names the client.
            client.set("group.id", format!("rivulet-{}", context.name));
        }
        let mut consumer: BaseConsumer = client.create().map_err(|error| match error {
            KafkaError::ClientConfig(..) => {
                KafkaSourceError::Config(KafkaConfigError::Invalid(error.to_string()))
            }
            error => KafkaSourceError::Client {
                action: "create a consumer".into(),
                error,
            },
        })?;
        let wake = context.wake.clone();
        let ready = self.ready.clone();
        consumer.set_nonempty_callback(move || {
            ready.store(true, Ordering::SeqCst);
            wake.notify();
        });
        let consumer = Arc::new(consumer);
        let brokers = self.brokers();
        let metadata = consumer.fetch_metadata(None, timeout).map_err(|error| {
            KafkaSourceError::Unreachable {
                brokers: brokers.clone(),
                timeout,
                error,
            }
        })?;
        let counts: HashMap<&str, i32> = metadata
            .topics()
            .iter()
            .filter(|topic| topic.error().is_none())
            .map(|topic| (topic.name(), topic.partitions().len() as i32))
            .collect();
        let all = self
            .config
            .topics
            .resolve(|topic| counts.get(topic).copied().filter(|&n| n > 0))
            .map_err(|message| KafkaSourceError::Partitions {
                brokers: brokers.clone(),
                message,
            })?;
        self.all_partitions = all.len();
        let mine = self
            .config
            .assignment
            .share(&all, context.instance, context.instances);
        let restored = self.restored.take().map(|offsets| offsets.map());
        let mut list = TopicPartitionList::new();
        let mut starts = Vec::with_capacity(mine.len());
        for tp in &mine {
            let start = match restored.as_ref().map(|offsets| offsets.get(tp)) {
                Some(Some(&offset)) => offset,
                // A partition the checkpoint does not know was added since: Spark reads
                // new partitions from their beginning.
                Some(None) => self.resolve(&consumer, tp, -2)?,
                None => {
                    let wanted = match &self.config.starting {
                        StartingOffsets::Earliest => -2,
                        StartingOffsets::Latest => -1,
                        StartingOffsets::Offsets(offsets) => {
                            *offsets
                                .get(tp)
                                .ok_or_else(|| KafkaSourceError::Partitions {
                                    brokers: brokers.clone(),
                                    message: format!(
                                    "starting_offsets gives no offset for partition {tp}: give \
                                     every partition read (-2 earliest, -1 latest)"
                                ),
                                })?
                        }
                    };
                    self.resolve(&consumer, tp, wanted)?
                }
            };
            list.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(start))
                .map_err(|error| KafkaSourceError::Client {
                    action: format!("assign {tp} at offset {start}"),
                    error,
                })?;
            starts.push(start);
        }
        consumer
            .assign(&list)
            .map_err(|error| KafkaSourceError::Client {
                action: "assign partitions".into(),
                error,
            })?;
        for (tp, start) in mine.iter().zip(starts) {
            let mut queue = consumer
                .split_partition_queue(&tp.topic, tp.partition)
                .ok_or_else(|| KafkaSourceError::Partitions {
                    brokers: brokers.clone(),
                    message: format!("cannot read partition {tp} on its own queue"),
                })?;
            let wake = context.wake.clone();
            let ready = self.ready.clone();
            queue.set_nonempty_callback(move || {
                ready.store(true, Ordering::SeqCst);
                wake.notify();
            });
            self.partitions.push(Partition {
                topic: Arc::from(tp.topic.as_str()),
                partition: tp.partition,
                queue,
                next: start,
                limit: None,
                held: VecDeque::new(),
            });
        }
        if let Some(end) = self.replay_end.take() {
            // The replayed batch takes exactly the records its plan took.
            let end = end.map();
            for partition in &mut self.partitions {
                partition.limit = Some(end.get(&partition.id()).copied().unwrap_or(partition.next));
            }
        }
        self.consumer = Some(consumer);
        self.offsets_client = Some(client.create().map_err(|error| KafkaSourceError::Client {
            action: "create a client for offsets".into(),
            error,
        })?);
        // Records fetched between `assign` and the split went to the consumer's own
        // queue: take them now, before any partition queue is read, so order holds.
        self.serve_main()?;
        Ok(())
    }

    /// `wanted` (`-2` earliest, `-1` latest, else itself) as a concrete offset of `tp`.
    fn resolve(
        &self,
        consumer: &BaseConsumer,
        tp: &TopicPartition,
        wanted: i64,
    ) -> Result<i64, KafkaSourceError> {
        if wanted >= 0 {
            return Ok(wanted);
        }
        let (low, high) = consumer
            .fetch_watermarks(&tp.topic, tp.partition, self.config.metadata_timeout)
            .map_err(|error| KafkaSourceError::Client {
                action: format!("read the offsets of partition {tp}"),
                error,
            })?;
        Ok(if wanted == -2 { low } else { high })
    }

    /// Follows the epoch clock: when a new epoch (or a new planning round of one) has
    /// started since the partitions' limits were set, they end, and if the epoch is a
    /// micro-batch being planned, its ranges are planned now. Two atomic loads a poll.
    fn follow_epochs(&mut self) {
        let Some(shared) = &self.shared else {
            return;
        };
        if self.replaying {
            return;
        }
        let key = (shared.clock.current(), shared.clock.round());
        if self.batch_key == Some(key) {
            return;
        }
        self.batch_key = Some(key);
        let micro_batch = shared.clock.mode_of(key.0) == ExecutionMode::MicroBatch;
        for partition in &mut self.partitions {
            partition.limit = None;
        }
        self.batch_deadline = None;
        if micro_batch {
            self.start_batch();
        }
    }

    /// Plans the micro-batch starting now (Spark's offset range of a batch): each
    /// partition ends at its high watermark, or at its share of
    /// `max_offsets_per_trigger`. Without an answer from the broker the batch takes
    /// what comes (or, with a cap, an even split of the share).
    fn start_batch(&mut self) {
        let Some(consumer) = &self.offsets_client else {
            return;
        };
        if self.partitions.is_empty() {
            return;
        }
        let share = self.config.max_offsets_per_trigger.map(|cap| {
            (cap as f64 * self.partitions.len() as f64 / self.all_partitions.max(1) as f64)
                .floor()
                .max(1.0) as u64
        });
        let timeout = self.config.metadata_timeout;
        let mut ranges = Vec::with_capacity(self.partitions.len());
        for partition in &self.partitions {
            match consumer.fetch_watermarks(&partition.topic, partition.partition, timeout) {
                Ok((_, high)) => ranges.push((partition.next, high)),
                Err(_) => {
                    if let Some(counters) = &self.counters {
                        counters.errors.add(1);
                    }
                    if let Some(share) = share {
                        let even = share.div_ceil(self.partitions.len() as u64) as i64;
                        for partition in &mut self.partitions {
                            partition.limit = Some(partition.next + even);
                        }
                    }
                    return;
                }
            }
        }
        let ends = match share {
            Some(share) => rate_limit(share, &ranges),
            None => ranges.iter().map(|&(_, high)| high).collect(),
        };
        for (partition, end) in self.partitions.iter_mut().zip(ends) {
            partition.limit = Some(end);
        }
        self.batch_deadline = Some(Instant::now() + self.config.poll_timeout);
    }

    /// A partition whose planned records have not all arrived, and whose consumer has
    /// not moved past them (a transaction marker or a compacted gap at the end of the
    /// range holds no record).
    fn owed(&self) -> Option<usize> {
        let owing: Vec<usize> = (0..self.partitions.len())
            .filter(|&i| {
                let p = &self.partitions[i];
                p.held.is_empty() && p.limit.is_some_and(|limit| p.next < limit)
            })
            .collect();
        if owing.is_empty() {
            return None;
        }
        let positions = self.consumer.as_ref()?.position().ok()?;
        owing.into_iter().find(|&i| {
            let p = &self.partitions[i];
            let limit = p.limit.unwrap_or(i64::MAX);
            match positions
                .find_partition(&p.topic, p.partition)
                .map(|element| element.offset())
            {
                Some(Offset::Offset(position)) => position < limit,
                _ => true,
            }
        })
    }

    /// A client error: fatal ones fail the query, others are counted (librdkafka retries).
    fn client_error(
        counters: Option<&Counters>,
        partition: Option<&Partition>,
        error: KafkaError,
    ) -> Result<(), KafkaSourceError> {
        let code = error.rdkafka_error_code();
        let lost = matches!(
            code,
            Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
        );
        if lost {
            if let Some(partition) = partition {
                return Err(KafkaSourceError::OffsetLost {
                    partition: partition.id(),
                    offset: partition.next,
                    error,
                });
            }
        }
        let fatal = lost
            || matches!(error, KafkaError::MessageConsumptionFatal(_))
            || matches!(
                code,
                Some(
                    RDKafkaErrorCode::TopicAuthorizationFailed
                        | RDKafkaErrorCode::GroupAuthorizationFailed
                        | RDKafkaErrorCode::Fatal
                )
            );
        if fatal {
            return Err(KafkaSourceError::Client {
                action: match partition {
                    Some(partition) => format!("read partition {}", partition.id()),
                    None => "consume".into(),
                },
                error,
            });
        }
        if let Some(counters) = counters {
            counters.errors.add(1);
        }
        Ok(())
    }

    /// Looks at partition `index` once.
    fn poll_partition(
        &mut self,
        index: usize,
        wait: Duration,
    ) -> Result<Polled<D::Value>, KafkaSourceError> {
        let KafkaSource {
            partitions,
            decoder,
            counters,
            quarantine,
            ..
        } = self;
        let partition = &mut partitions[index];
        if partition.at_limit() {
            return Ok(Polled::Nothing);
        }
        if let Some(held) = partition.held.front() {
            if partition.limit.is_some_and(|limit| held.offset() >= limit) {
                return Ok(Polled::Nothing);
            }
            let held = partition.held.pop_front().expect("looked at above");
            if held.offset() < partition.next {
                return Ok(Polled::Consumed);
            }
            return accept(decoder, counters.as_ref(), quarantine, partition, &held);
        }
        let message = match partition.queue.poll(wait) {
            None => return Ok(Polled::Nothing),
            Some(Err(error)) => {
                Self::client_error(counters.as_ref(), Some(partition), error)?;
                return Ok(Polled::Consumed);
            }
            Some(Ok(message)) => message,
        };
        if message.offset() < partition.next {
            // Fetched before a seek: already emitted.
            return Ok(Polled::Consumed);
        }
        if partition
            .limit
            .is_some_and(|limit| message.offset() >= limit)
        {
            let owned = message.detach();
            partition.held.push_back(owned);
            return Ok(Polled::Nothing);
        }
        let offset = message.offset();
        let topic = partition.topic.clone();
        let result = accept_message(
            decoder,
            counters.as_ref(),
            quarantine,
            &topic,
            partition.partition,
            &message,
        );
        drop(message);
        partition.next = offset + 1;
        result.map_err(|e| e.at(partition))
    }

    /// Serves the consumer's own queue: client errors (and messages fetched before the
    /// partitions had queues of their own, which it hands to their partitions).
    fn serve_main(&mut self) -> Result<(), KafkaSourceError> {
        let Some(consumer) = self.consumer.clone() else {
            return Ok(());
        };
        for _ in 0..RECORDS_PER_POLL {
            match consumer.poll(Duration::ZERO) {
                None => return Ok(()),
                Some(Err(error)) => Self::client_error(self.counters.as_ref(), None, error)?,
                Some(Ok(message)) => {
                    let owned = message.detach();
                    if let Some(partition) = self
                        .partitions
                        .iter_mut()
                        .find(|p| *p.topic == *owned.topic() && p.partition == owned.partition())
                    {
                        let after = partition
                            .held
                            .back()
                            .map_or(partition.next, |last| last.offset() + 1);
                        if owned.offset() >= after {
                            partition.held.push_back(owned);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// One step: a record, or nothing for now.
    fn read(&mut self) -> Result<Option<KafkaRecord<D::Value>>, KafkaSourceError> {
        self.follow_epochs();
        if std::mem::take(&mut self.idle) {
            // Cleared before looking: a queue that fills after its look sets it again.
            self.ready.store(false, Ordering::SeqCst);
        }
        self.polls = self.polls.wrapping_add(1);
        if self.polls.is_multiple_of(MAIN_QUEUE_EVERY) {
            self.serve_main()?;
        }
        let count = self.partitions.len();
        let mut empty = 0;
        let mut consumed = 0;
        while empty < count {
            let index = self.cursor;
            self.cursor = (self.cursor + 1) % count;
            match self.poll_partition(index, Duration::ZERO)? {
                Polled::Record(record) => return Ok(Some(record)),
                Polled::Nothing => empty += 1,
                Polled::Consumed => {
                    empty = 0;
                    consumed += 1;
                    if consumed >= RECORDS_PER_POLL {
                        // More may be there: come back at once.
                        self.ready.store(true, Ordering::SeqCst);
                        return Ok(None);
                    }
                }
            }
        }
        self.serve_main()?;
        // A micro-batch waits (bounded by `poll_timeout`) for records its plan counts
        // on that librdkafka has not fetched yet.
        while let Some(deadline) = self.batch_deadline {
            let now = Instant::now();
            let Some(index) = self.owed().filter(|_| now < deadline) else {
                self.batch_deadline = None;
                break;
            };
            let wait = (deadline - now).min(Duration::from_millis(10));
            match self.poll_partition(index, wait)? {
                Polled::Record(record) => return Ok(Some(record)),
                Polled::Consumed | Polled::Nothing => {}
            }
        }
        if self
            .partitions
            .iter()
            .any(|p| !p.held.is_empty() && !p.at_limit())
        {
            self.ready.store(true, Ordering::SeqCst);
        }
        self.idle = true;
        Ok(None)
    }

    fn offsets(&self) -> KafkaOffsets {
        KafkaOffsets {
            partitions: self
                .partitions
                .iter()
                .map(|p| (p.topic.to_string(), p.partition, p.next))
                .collect(),
        }
    }

    /// Commits the checkpointed offsets to Kafka for monitoring (with a group id).
    fn commit_for_monitoring(&self) {
        let (Some(consumer), Some(_)) = (&self.consumer, self.config.kafka.group()) else {
            return;
        };
        let mut list = TopicPartitionList::new();
        for partition in &self.partitions {
            let _ = list.add_partition_offset(
                &partition.topic,
                partition.partition,
                Offset::Offset(partition.next),
            );
        }
        if list.count() > 0 {
            // Monitoring only: a failure changes nothing rivulet reads.
            let _ = consumer.commit(&list, CommitMode::Async);
        }
    }
}

/// A partition-less error from decoding, placed by [`Partial::at`].
enum Partial {
    Malformed { offset: i64, malformed: Malformed },
    Io(Box<KafkaSourceError>),
}

impl Partial {
    fn at(self, partition: &Partition) -> KafkaSourceError {
        match self {
            Partial::Malformed { offset, malformed } => KafkaSourceError::Malformed {
                partition: partition.id(),
                offset,
                malformed,
            },
            Partial::Io(error) => *error,
        }
    }
}

/// Decodes a held (owned) message of `partition` and moves the partition past it.
fn accept<D: ValueDecoder>(
    decoder: &mut D,
    counters: Option<&Counters>,
    quarantine: &mut Quarantine,
    partition: &mut Partition,
    message: &OwnedMessage,
) -> Result<Polled<D::Value>, KafkaSourceError> {
    let topic = partition.topic.clone();
    let result = accept_message(
        decoder,
        counters,
        quarantine,
        &topic,
        partition.partition,
        message,
    );
    partition.next = message.offset() + 1;
    result.map_err(|e| e.at(partition))
}

/// Decodes `message` into a record (or a verdict that consumes it).
fn accept_message<D: ValueDecoder, M: Message>(
    decoder: &mut D,
    counters: Option<&Counters>,
    quarantine: &mut Quarantine,
    topic: &Arc<str>,
    partition: i32,
    message: &M,
) -> Result<Polled<D::Value>, Partial> {
    let value = match decoder.decode(message.payload()) {
        Verdict::Row(value) => value,
        Verdict::Repaired(value, _) => {
            if let Some(counters) = counters {
                counters.malformed.add(1);
            }
            value
        }
        Verdict::Skipped => {
            if let Some(counters) = counters {
                counters.skipped.add(1);
            }
            return Ok(Polled::Consumed);
        }
        Verdict::Dropped(malformed) => {
            if let Some(counters) = counters {
                counters.malformed.add(1);
                counters.dropped.add(1);
            }
            let place = PartitionRef { topic, partition };
            quarantine
                .write_at(place, message.offset(), &malformed)
                .map_err(|error| Partial::Io(Box::new(error)))?;
            return Ok(Polled::Consumed);
        }
        Verdict::Failed(malformed) => {
            return Err(Partial::Malformed {
                offset: message.offset(),
                malformed: *malformed,
            })
        }
    };
    let (timestamp, timestamp_kind) = match message.timestamp() {
        KafkaTimestamp::NotAvailable => (None, TimestampKind::None),
        KafkaTimestamp::CreateTime(ms) => (Some(ms), TimestampKind::CreateTime),
        KafkaTimestamp::LogAppendTime(ms) => (Some(ms), TimestampKind::LogAppendTime),
    };
    let headers = match message.headers() {
        Some(headers) => headers
            .iter()
            .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
            .collect(),
        None => Vec::new(),
    };
    Ok(Polled::Record(KafkaRecord {
        topic: topic.clone(),
        partition,
        offset: message.offset(),
        timestamp,
        timestamp_kind,
        key: message.key().map(<[u8]>::to_vec),
        value,
        headers,
    }))
}

/// A partition named for a quarantine entry.
#[derive(Clone, Copy)]
struct PartitionRef<'a> {
    topic: &'a str,
    partition: i32,
}

impl Quarantine {
    fn write_at(
        &mut self,
        place: PartitionRef<'_>,
        offset: i64,
        malformed: &Malformed,
    ) -> Result<(), KafkaSourceError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let io_error = |action, error| KafkaSourceError::Io {
            action,
            path: path.clone(),
            error,
        };
        if self.writer.is_none() {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| io_error("create the directory of", e))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| io_error("open", e))?;
            self.writer = Some(BufWriter::new(file));
        }
        #[derive(Serialize)]
        struct Entry<'a> {
            topic: &'a str,
            partition: i32,
            offset: i64,
            field: Option<&'a str>,
            error: &'a str,
            record: &'a str,
        }
        let entry = Entry {
            topic: place.topic,
            partition: place.partition,
            offset,
            field: malformed.field.as_deref(),
            error: &malformed.reason,
            record: &malformed.record,
        };
        let writer = self.writer.as_mut().expect("opened above");
        serde_json::to_writer(&mut *writer, &entry)
            .map_err(io::Error::other)
            .and_then(|()| writer.write_all(b"\n"))
            .map_err(|e| io_error("write", e))
    }
}

impl<D: ValueDecoder> Source for KafkaSource<D> {
    type Item = KafkaRecord<D::Value>;

    /// Checks the configuration, connects, resolves the partitions (failing for a topic
    /// or partition that does not exist, or when no broker answers within the metadata
    /// timeout) and their starting offsets, and assigns them.
    fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        self.config.check()?;
        self.shared = context.epochs.clone();
        let replaying = self.replay_end.is_some();
        self.connect(context)?;
        let suffix = if context.instance == 0 {
            context.name.clone()
        } else {
            format!("{}-{}", context.name, context.instance)
        };
        self.quarantine.path = self
            .config
            .quarantine_dir
            .clone()
            .or_else(|| context.checkpoint_dir.clone())
            .map(|base| base.join("_quarantine").join(format!("{suffix}.jsonl")));
        self.counters = Some(Counters {
            malformed: context.counter("malformed_rows"),
            dropped: context.counter("dropped_rows"),
            skipped: context.counter("skipped_rows"),
            errors: context.counter("kafka_errors"),
        });
        if replaying {
            self.replaying = true;
            self.batch_deadline = Some(Instant::now() + self.config.poll_timeout);
        }
        Ok(())
    }

    fn poll_next(&mut self) -> SourcePoll<Self::Item> {
        match self.read() {
            Ok(Some(record)) => SourcePoll::Ready(record),
            Ok(None) => SourcePoll::Pending {
                until: Some(Instant::now() + self.config.idle_poll),
            },
            Err(error) => SourcePoll::Failed(Box::new(error)),
        }
    }

    fn has_data(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    fn can_replay(&self) -> bool {
        true
    }

    /// The next offset of every partition; flushes the quarantine; commits the offsets
    /// to Kafka for monitoring when the client has a group id.
    fn checkpoint(&mut self, _epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        self.quarantine.flush()?;
        let offsets = self.offsets();
        if std::mem::take(&mut self.replaying) {
            // The replayed batch is complete: the next poll plans afresh.
            self.batch_key = None;
        }
        self.commit_for_monitoring();
        Ok(codec::encode(&offsets)?)
    }

    /// Keeps the offsets; [`open`](Source::open) seeks every partition there.
    fn restore(&mut self, offset: &[u8]) -> Result<(), BoxError> {
        self.restored = Some(codec::decode(offset)?);
        Ok(())
    }

    /// Keeps the replayed batch's end offsets: [`open`](Source::open) stops every
    /// partition there until the batch's marker.
    fn replay_until(&mut self, end_offset: &[u8]) -> Result<(), BoxError> {
        self.replay_end = Some(codec::decode(end_offset)?);
        Ok(())
    }
}

impl<D: ValueDecoder> Drop for KafkaSource<D> {
    fn drop(&mut self) {
        // Best effort: errors were reported at checkpoints.
        let _ = self.quarantine.flush();
    }
}
