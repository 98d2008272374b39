//! Scale-out through Kafka: several processes run one application and share the
//! partitions of its input topics, as Kafka Streams applications do.
//!
//! rivulet has no cluster of its own. To spread a query over processes (on one machine
//! or many) every process starts the same [`KafkaApplication`] with the same
//! application id; Kafka's consumer-group protocol decides which process processes
//! which partitions, and moves them when a process joins, leaves or dies.
//!
//! ## Tasks
//!
//! The unit of work is a **task**: task *p* processes partition *p* of every input topic
//! (the topics must be co-partitioned: same partition count, keys partitioned alike). A
//! task is an ordinary rivulet query, described by the application's builder from a
//! [`TaskContext`] and started in whichever process owns partition *p*, with its source
//! reading exactly that partition and its checkpoints in the task's own directory,
//! `<state_dir>/<application_id>/task-<p>`. Keyed state is therefore partitioned by input
//! partition: everything a task's operators hold belongs to its partition, and moves
//! with it.
//!
//! ## Who owns a partition: Kafka's group protocol
//!
//! Each process has one member of the consumer group named by the application id,
//! subscribed to the first input topic. The member reads nothing; its rebalance
//! callbacks start and stop tasks (see `member.rs`). The default assignor is `range`,
//! with Kafka's eager protocol: at every rebalance each process stops all its tasks
//! (checkpointing them) before any partition is handed out again, and restarts those it
//! gets back. `partition.assignment.strategy = cooperative-sticky` moves only the
//! partitions that change owner and restarts nothing else; it is not the default because
//! on the only broker this project can run in its tests (tansu 0.6.0), groups using it
//! were seen to keep rebalancing, partitions moving back and forth, in one run of four,
//! and to give a partition to two members at once for a while (which the directory lock
//! below turns into a wait), while `range` settled in every run. Assignment
//! is left to Kafka rather than computed by the engine from the group membership because
//! the protocol already gives what a computation of our own would have to rebuild:
//! liveness by heartbeats and session timeouts, and a generation per assignment so that
//! two processes do not both believe they own a partition once a rebalance completes.
//! Only the first topic's partitions are assigned: with co-partitioned topics that fixes
//! the task, whatever the assignor would do with the others.
//!
//! ## How state follows a partition: per-task checkpoints on shared storage
//!
//! A task's state is its checkpoint directory, on storage every process reaches (a local
//! directory for processes on one machine; a shared file system across machines, as
//! Spark's checkpoint location on HDFS or S3). The new owner of a partition starts the
//! task from that directory: the engine's restore gives the operators their state and
//! the source the partition's offsets from the same complete epoch, so state and input
//! position agree, and the sinks' two-phase commit carries over. This was chosen over a
//! changelog topic (Kafka Streams' approach) because it reuses the engine's epoch
//! checkpoints, which already make state, offsets and output commit atomic; a changelog
//! would need the state writes and the offsets to commit in one Kafka transaction, and
//! a restore that replays the changelog instead of reading one snapshot. The cost is the
//! shared storage. The writer's lock on the directory keeps two processes from writing
//! one task: a new owner that finds it held (its previous owner still stopping) waits
//! for it, up to [`ApplicationConfig::handover_timeout`].
//!
//! ## Guarantees
//!
//! A revoked task is stopped gracefully before the group moves its partition (its last
//! epoch checkpointed, nothing replayed by the next owner). A process that dies is
//! noticed after the session timeout; its tasks restart elsewhere from their last
//! complete epoch, and what they processed after it is processed again: output stays
//! at-least-once with continuous epochs and the at-least-once Kafka sink, and exactly
//! once with micro-batches and the transactional [`KafkaSink`](super::sink::KafkaSink)
//! (each task's sink uses transactional ids derived from the task's query id, which lives
//! in the task's directory, so the new owner fences the dead one's producer and aborts
//! its open transaction).
//!
//! ## Repartitioning
//!
//! To group by a key the input is not partitioned by, write the records to a topic keyed
//! by the new key (a [`KafkaSink`](super::sink::KafkaSink) whose encoder sets the key;
//! Kafka's partitioner sends every key to one partition), and read that topic in a second
//! application: the topic is the shuffle. rivulet has no network protocol of its own
//! for this.
//!
//! ## Differences from Kafka Streams
//!
//! Tasks do not commit offsets to the group (their checkpoints hold them), so Kafka's
//! tools show no lag for the application id. There are no standby replicas: a task's
//! state is restored from its last checkpoint, not kept warm elsewhere.

mod config;
mod error;
mod member;
mod task;

pub use config::ApplicationConfig;
pub use error::ApplicationError;
pub use task::TaskContext;

use crate::error::BoxError;
use crate::query::QueryProgress;
use crate::QueryBuilder;
use member::{Member, Shared};
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A query scaled out over processes through Kafka (see the [module docs](self)): every
/// process that starts it with the same application id takes a share of the input
/// partitions, each partition processed by a task built by `build`.
///
/// ```no_run
/// use rivulet::kafka::app::{ApplicationConfig, KafkaApplication};
/// use rivulet::kafka::sink::{KafkaMessage, KafkaSink, KafkaSinkConfig};
/// use rivulet::kafka::KafkaConfig;
///
/// let kafka = KafkaConfig::new("127.0.0.1:9092");
/// let config = ApplicationConfig::new("word-counts", kafka.clone(), ["lines"], "/shared/state");
/// let app = KafkaApplication::new(config, move |task, query| {
///     let sink = KafkaSinkConfig::with_client(task.kafka().clone(), "counts");
///     query
///         .read_kafka("lines", task.source_config())
///         .flat_map(|record| {
///             let line = String::from_utf8_lossy(&record.value.unwrap_or_default()).into_owned();
///             line.split_whitespace().map(str::to_string).collect::<Vec<_>>()
///         })
///         .key_by(|word: &String| word.clone())
///         .count()
///         .sink(
///             "counts",
///             KafkaSink::new(sink, |(word, count): &(String, u64), message: &mut KafkaMessage| {
///                 message.set_key(word);
///                 message.set_value(count.to_string());
///                 Ok(())
///             }),
///         );
///     Ok(())
/// });
/// let running = app.start()?;
/// running.await_termination()?;
/// # Ok::<(), rivulet::kafka::app::ApplicationError>(())
/// ```
pub struct KafkaApplication {
    config: ApplicationConfig,
    build: Box<task::TaskBuilder>,
}

impl std::fmt::Debug for KafkaApplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaApplication")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KafkaApplication {
    /// An application with `config` whose tasks `build` describes: it is called with a
    /// task's [`TaskContext`] and a [`QueryBuilder`] that already checkpoints into the
    /// task's directory, each time a task starts in this process (after a rebalance,
    /// possibly again for the same partition), and must describe the same query each
    /// time (a task restores from checkpoints that an earlier build of it wrote).
    pub fn new<F>(config: ApplicationConfig, build: F) -> Self
    where
        F: Fn(&TaskContext, &mut QueryBuilder) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        KafkaApplication {
            config,
            build: Box::new(build),
        }
    }

    /// Joins the application's group and runs the tasks of the partitions it is given,
    /// until [`RunningApplication::stop`] or a failure.
    ///
    /// # Errors
    ///
    /// The configuration is refused ([`ApplicationError::Config`]), no broker answers
    /// within the metadata timeout, an input topic does not exist, the topics are not
    /// co-partitioned, or the state directory cannot be created. Errors of tasks (their
    /// builds, starts and runs) come later, from
    /// [`await_termination`](RunningApplication::await_termination).
    pub fn start(self) -> Result<RunningApplication, ApplicationError> {
        let KafkaApplication { config, build } = self;
        config.check()?;
        let application = config.application_id.clone();
        let kafka_error = |action: &'static str| {
            let application = application.clone();
            move |error| ApplicationError::Kafka {
                application,
                action,
                error,
            }
        };
        let mut client = config.kafka.client_config();
        client
            .set("group.id", &config.application_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "latest")
            .set(
                "session.timeout.ms",
                config.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                config.heartbeat_interval.as_millis().to_string(),
            );
        if config.kafka.get("partition.assignment.strategy").is_none() {
            client.set("partition.assignment.strategy", "range");
        }
        let topic = config.topics[0].clone();
        let shared = Arc::new(Shared::new(config, build));
        let member = Member {
            shared: Arc::clone(&shared),
            topic: topic.clone(),
        };
        let consumer: BaseConsumer<Member> = client
            .create_with_context(member)
            .map_err(kafka_error("create the group member"))?;
        check_topics(&consumer, &shared.config)?;
        let dir = shared.config.state_dir.join(&shared.config.application_id);
        std::fs::create_dir_all(&dir).map_err(|source| ApplicationError::StateDir {
            application: application.clone(),
            dir,
            source,
        })?;
        consumer
            .subscribe(&[&topic])
            .map_err(kafka_error("join the group"))?;
        let thread = std::thread::Builder::new()
            .name(format!("rivulet-app-{application}"))
            .spawn(move || member::run(consumer))
            .map_err(|source| ApplicationError::StateDir {
                application: application.clone(),
                dir: shared.config.state_dir.clone(),
                source,
            })?;
        Ok(RunningApplication {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }
}

/// Checks that every input topic exists and that all have the same partition count.
fn check_topics(
    consumer: &BaseConsumer<Member>,
    config: &ApplicationConfig,
) -> Result<(), ApplicationError> {
    let application = &config.application_id;
    let metadata = consumer
        .fetch_metadata(None, config.metadata_timeout)
        .map_err(|error| ApplicationError::Kafka {
            application: application.clone(),
            action: "read the brokers' metadata",
            error,
        })?;
    let mut counts = Vec::new();
    for topic in &config.topics {
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
        match found {
            Some(found) => counts.push((topic.as_str(), found.partitions().len())),
            None => {
                return Err(ApplicationError::MissingTopic {
                    application: application.clone(),
                    topic: topic.clone(),
                })
            }
        }
    }
    if counts.windows(2).any(|pair| pair[0].1 != pair[1].1) {
        return Err(ApplicationError::NotCoPartitioned {
            application: application.clone(),
            counts: counts
                .iter()
                .map(|(topic, count)| format!("{topic}: {count}"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(())
}

/// What an application's member has done so far in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ApplicationStats {
    /// Assignments received from the group (each may add no partition).
    pub assignments: u64,
    /// Revocations received from the group.
    pub revocations: u64,
    /// Tasks started (restored from their checkpoints where they had one).
    pub tasks_started: u64,
    /// Tasks stopped (revoked, or at the application's stop).
    pub tasks_stopped: u64,
    /// Errors of the group member's client (librdkafka retries them).
    pub kafka_errors: u64,
}

/// A started [`KafkaApplication`] in this process. Dropping it stops it.
pub struct RunningApplication {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for RunningApplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningApplication")
            .field("application_id", &self.application_id())
            .field("tasks", &self.tasks())
            .finish()
    }
}

impl RunningApplication {
    /// The application id.
    pub fn application_id(&self) -> &str {
        &self.shared.config.application_id
    }

    /// The partitions whose tasks run in this process now, in order.
    pub fn tasks(&self) -> Vec<i32> {
        self.shared.running()
    }

    /// The progress of task `partition`'s query, if it runs in this process.
    pub fn task_progress(&self, partition: i32) -> Option<QueryProgress> {
        self.shared.with_task(partition, |query| query.progress())
    }

    /// What the group member has done so far.
    pub fn stats(&self) -> ApplicationStats {
        let counters = &self.shared.counters;
        ApplicationStats {
            assignments: counters.assignments.load(Ordering::Relaxed),
            revocations: counters.revocations.load(Ordering::Relaxed),
            tasks_started: counters.tasks_started.load(Ordering::Relaxed),
            tasks_stopped: counters.tasks_stopped.load(Ordering::Relaxed),
            kafka_errors: counters.kafka_errors.load(Ordering::Relaxed),
        }
    }

    /// `true` until the application has stopped (asked to, or after a failure) and left
    /// the group.
    pub fn is_active(&self) -> bool {
        !self.shared.finished.load(Ordering::Acquire)
    }

    /// Stops every task gracefully (each checkpoints its last epoch) and leaves the
    /// group, so the other processes take the partitions at once.
    ///
    /// # Errors
    ///
    /// The application's failure, if it failed (returned once).
    pub fn stop(&self) -> Result<(), ApplicationError> {
        self.shared.stop.store(true, Ordering::Release);
        self.await_termination()
    }

    /// Waits until the application has stopped.
    ///
    /// # Errors
    ///
    /// The first failure (returned once): a task that did not build or start, or
    /// failed while running; a partition whose previous owner did not hand it over.
    pub fn await_termination(&self) -> Result<(), ApplicationError> {
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(thread) = thread {
            if let Err(payload) = thread.join() {
                self.shared.fail(ApplicationError::Panicked {
                    application: self.application_id().to_string(),
                    message: crate::error::panic_message(payload.as_ref()),
                });
            }
        }
        match self.shared.take_failure() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Like [`await_termination`](Self::await_termination), giving up after `timeout`
    /// (`None` if the application still runs then).
    pub fn await_termination_timeout(
        &self,
        timeout: Duration,
    ) -> Option<Result<(), ApplicationError>> {
        let deadline = std::time::Instant::now() + timeout;
        while self.is_active() {
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(self.await_termination())
    }
}

impl Drop for RunningApplication {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = self.await_termination();
    }
}
