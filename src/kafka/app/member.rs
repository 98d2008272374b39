//! The application's member of its consumer group, and the thread that runs it.
//!
//! The member subscribes to the application's first input topic under the application
//! id and takes whatever partitions the group's assignor gives it, but reads nothing: it
//! pauses every partition it is assigned, and the tasks read their partitions through
//! sources of their own. Its rebalance callbacks decide which tasks run here:
//!
//! * **revoked** partitions: their tasks are stopped inside the callback, before the
//!   member rejoins the group, so a task's final checkpoint is written before the group
//!   can give the partition to another process (Kafka's contract for
//!   `onPartitionsRevoked`);
//! * **assigned** partitions: the member's thread starts their tasks after the callback,
//!   each restoring from its checkpoint directory.
//!
//! Between polls the thread also reconciles the tasks with the member's assignment as
//! librdkafka holds it: a task whose partition is no longer assigned (lost when the
//! group evicted this process, say after missed heartbeats) is stopped, and a partition
//! assigned without a task gets one. If a task's directory is still locked by its
//! previous owner (a process that was evicted while slow rather than dead, and has not
//! noticed yet), the start is tried again at the next turn, while the member keeps
//! serving the group, until
//! [`handover_timeout`](super::ApplicationConfig::handover_timeout) fails the
//! application.
//!
//! A process that dies without leaving the group holds its partitions until the group
//! misses its heartbeats for the session timeout; its checkpoint directories' locks
//! went with the process.

use super::config::ApplicationConfig;
use super::error::ApplicationError;
use super::task::{try_start_task, RunningTask, StartFailure, TaskBuilder};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the member's thread and the application's handle share.
pub(super) struct Shared {
    pub(super) config: ApplicationConfig,
    pub(super) build: Box<TaskBuilder>,
    /// The tasks running in this process, by partition.
    pub(super) tasks: Mutex<BTreeMap<i32, RunningTask>>,
    /// Assigned partitions whose tasks wait for their directory: since when, and when
    /// to try again.
    waiting: Mutex<BTreeMap<i32, (Instant, Instant)>>,
    pub(super) stop: AtomicBool,
    /// The first failure; taken by the first `await_termination`.
    pub(super) failure: Mutex<Option<ApplicationError>>,
    pub(super) finished: AtomicBool,
    pub(super) counters: Counters,
}

/// What the member counts (see [`ApplicationStats`](super::ApplicationStats)).
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) assignments: AtomicU64,
    pub(super) revocations: AtomicU64,
    pub(super) tasks_started: AtomicU64,
    pub(super) tasks_stopped: AtomicU64,
    pub(super) kafka_errors: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(super) fn new(config: ApplicationConfig, build: Box<TaskBuilder>) -> Self {
        Shared {
            config,
            build,
            tasks: Mutex::new(BTreeMap::new()),
            waiting: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
            finished: AtomicBool::new(false),
            counters: Counters::default(),
        }
    }

    /// Records `error` unless an earlier failure is already recorded, and stops the
    /// application.
    pub(super) fn fail(&self, error: ApplicationError) {
        let mut failure = lock(&self.failure);
        if failure.is_none() {
            *failure = Some(error);
        }
        self.stop.store(true, Ordering::Release);
    }

    /// Takes the recorded failure, if any.
    pub(super) fn take_failure(&self) -> Option<ApplicationError> {
        lock(&self.failure).take()
    }

    /// The partitions whose tasks run here.
    pub(super) fn running(&self) -> Vec<i32> {
        lock(&self.tasks).keys().copied().collect()
    }

    /// Runs `f` on task `partition`'s query, if it runs here.
    pub(super) fn with_task<R>(
        &self,
        partition: i32,
        f: impl FnOnce(&crate::Query) -> R,
    ) -> Option<R> {
        lock(&self.tasks).get(&partition).map(|task| f(&task.query))
    }

    /// Stops the tasks of `partitions` gracefully (each writes a final checkpoint and
    /// releases its directory). A task that fails while stopping fails the application.
    fn stop_tasks(&self, partitions: &[i32]) {
        lock(&self.waiting).retain(|partition, _| !partitions.contains(partition));
        let stopping: Vec<(i32, RunningTask)> = {
            let mut tasks = lock(&self.tasks);
            partitions
                .iter()
                .filter_map(|partition| tasks.remove(partition).map(|task| (*partition, task)))
                .collect()
        };
        for (partition, task) in stopping {
            let result = task.query.stop();
            self.counters.tasks_stopped.fetch_add(1, Ordering::Relaxed);
            if let Err(source) = result {
                self.fail(ApplicationError::TaskFailed {
                    application: self.config.application_id.clone(),
                    partition,
                    source,
                });
            }
        }
    }

    /// Stops every task.
    pub(super) fn stop_all(&self) {
        let partitions = self.running();
        self.stop_tasks(&partitions);
        lock(&self.waiting).clear();
    }

    /// Makes the running tasks those of `assigned`: stops the tasks of partitions no
    /// longer assigned, starts those of assigned partitions without one (a locked
    /// directory is tried again after [`HANDOVER_RETRY`]).
    fn reconcile(&self, assigned: &[i32]) {
        let lost: Vec<i32> = self
            .running()
            .into_iter()
            .filter(|partition| !assigned.contains(partition))
            .collect();
        if !lost.is_empty() {
            self.stop_tasks(&lost);
        }
        lock(&self.waiting).retain(|partition, _| assigned.contains(partition));
        for &partition in assigned {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            if lock(&self.tasks).contains_key(&partition) {
                continue;
            }
            let now = Instant::now();
            if let Some((_, retry)) = lock(&self.waiting).get(&partition) {
                if now < *retry {
                    continue;
                }
            }
            match try_start_task(&self.config, &*self.build, partition) {
                Ok(task) => {
                    lock(&self.waiting).remove(&partition);
                    lock(&self.tasks).insert(partition, task);
                    self.counters.tasks_started.fetch_add(1, Ordering::Relaxed);
                }
                Err(StartFailure::Locked) => {
                    let mut waiting = lock(&self.waiting);
                    let (since, retry) = waiting.entry(partition).or_insert((now, now));
                    *retry = now + HANDOVER_RETRY;
                    let waited = now - *since;
                    if waited >= self.config.handover_timeout {
                        drop(waiting);
                        self.fail(ApplicationError::HandoverTimeout {
                            application: self.config.application_id.clone(),
                            partition,
                            dir: self.config.task_dir(partition),
                            waited,
                        });
                        return;
                    }
                }
                Err(StartFailure::Failed(error)) => {
                    self.fail(error);
                    return;
                }
            }
        }
    }

    /// Fails the application if a task failed. A task that ended by itself (its
    /// sources ended) stays in the map, so that it is not started again while its
    /// partition stays here.
    fn check_tasks(&self) {
        let tasks = lock(&self.tasks);
        for (partition, task) in tasks.iter() {
            if let Some(source) = task.query.failure() {
                let partition = *partition;
                drop(tasks);
                self.fail(ApplicationError::TaskFailed {
                    application: self.config.application_id.clone(),
                    partition,
                    source,
                });
                return;
            }
        }
    }
}

/// The consumer context of the group member: its rebalance callbacks.
pub(super) struct Member {
    pub(super) shared: Arc<Shared>,
    /// The topic the member subscribes to (the first input topic).
    pub(super) topic: String,
}

impl Member {
    fn partitions(&self, list: &TopicPartitionList) -> Vec<i32> {
        list.elements()
            .iter()
            .filter(|element| element.topic() == self.topic)
            .map(|element| element.partition())
            .collect()
    }
}

impl ClientContext for Member {}

impl ConsumerContext for Member {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            self.shared
                .counters
                .revocations
                .fetch_add(1, Ordering::Relaxed);
            self.shared.stop_tasks(&self.partitions(list));
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                self.shared
                    .counters
                    .assignments
                    .fetch_add(1, Ordering::Relaxed);
                // The member reads nothing: the tasks read their partitions themselves.
                if list.count() > 0 && consumer.pause(list).is_err() {
                    self.shared
                        .counters
                        .kafka_errors
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(_) => {
                // librdkafka rejoins the group by itself.
                self.shared
                    .counters
                    .kafka_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// How long one poll of the member waits for group events.
const POLL: Duration = Duration::from_millis(50);

/// How long a task whose directory is locked waits before its next try.
const HANDOVER_RETRY: Duration = Duration::from_millis(200);

/// The member's thread: serves the group's callbacks, starts assigned tasks, watches the
/// running ones, and on stop (or a failure) stops every task and leaves the group.
pub(super) fn run(consumer: BaseConsumer<Member>) {
    let shared = Arc::clone(&consumer.context().shared);
    // Marks the application finished however the thread ends (a panic included).
    struct Finished(Arc<Shared>);
    impl Drop for Finished {
        fn drop(&mut self) {
            self.0.finished.store(true, Ordering::Release);
        }
    }
    let _finished = Finished(Arc::clone(&shared));
    while !shared.stop.load(Ordering::Acquire) {
        match consumer.poll(POLL) {
            // Paused partitions deliver nothing, but a record fetched before the pause
            // may come: the tasks read it themselves.
            Some(Ok(_)) | None => {}
            Some(Err(_)) => {
                // Transport errors: librdkafka reconnects by itself.
                shared.counters.kafka_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        match consumer.assignment() {
            Ok(list) => shared.reconcile(&consumer.context().partitions(&list)),
            Err(_) => {
                shared.counters.kafka_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        shared.check_tasks();
    }
    shared.stop_all();
    // Leaving the group hands the partitions to the other processes at once (no wait
    // for the session timeout).
    consumer.unsubscribe();
    drop(consumer);
}
