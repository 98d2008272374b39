//! One task of an application: the query that processes one partition number of the
//! input topics, checkpointing into the task's own directory. [`TaskContext`] is what
//! the application's builder sees; [`try_start_task`] builds and starts the query.

use super::config::ApplicationConfig;
use super::error::ApplicationError;
use crate::checkpoint::log::LogError;
use crate::checkpoint::{CheckpointConfig, CheckpointError};
use crate::error::BoxError;
use crate::kafka::{KafkaConfig, KafkaSourceConfig, StartingOffsets, TopicPartition};
use crate::runtime::Pinning;
use crate::{Error, Query, QueryBuilder};
use std::path::{Path, PathBuf};

/// What the application's task builder is told about the task it builds: which
/// partition it processes, the source settings that read exactly that partition of
/// every input topic, and where the task checkpoints.
///
/// The query the builder describes must read its input through
/// [`source_config`](Self::source_config) (with
/// [`read_kafka`](crate::QueryBuilder::read_kafka) or
/// [`read_kafka_as`](crate::QueryBuilder::read_kafka_as)), and keep the checkpoint
/// directory the application set: that directory is the task's state, and it moves to
/// whichever process owns the partition next.
#[derive(Debug, Clone)]
pub struct TaskContext {
    application_id: String,
    partition: i32,
    topics: Vec<String>,
    kafka: KafkaConfig,
    starting: StartingOffsets,
    dir: PathBuf,
}

impl TaskContext {
    pub(super) fn new(config: &ApplicationConfig, partition: i32) -> Self {
        TaskContext {
            application_id: config.application_id.clone(),
            partition,
            topics: config.topics.clone(),
            kafka: config.kafka.clone().without_group(),
            starting: config.starting.clone(),
            dir: config.task_dir(partition),
        }
    }

    /// The application id.
    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    /// The partition number this task processes (of every input topic).
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The input topic-partitions of this task: partition [`partition`](Self::partition)
    /// of every input topic.
    pub fn input_partitions(&self) -> Vec<TopicPartition> {
        self.topics
            .iter()
            .map(|topic| TopicPartition::new(topic.clone(), self.partition))
            .collect()
    }

    /// A Kafka source configuration reading exactly this task's input partitions from
    /// the application's starting offsets (one instance; no group id: offsets live in
    /// the task's checkpoint, and only the application's group member belongs to the
    /// group). Further source options (`max_offsets_per_trigger`, decoding modes) may be
    /// set on it.
    pub fn source_config(&self) -> KafkaSourceConfig {
        let starting = match &self.starting {
            StartingOffsets::Offsets(offsets) => StartingOffsets::Offsets(
                offsets
                    .iter()
                    .filter(|(tp, _)| tp.partition == self.partition)
                    .map(|(tp, offset)| (tp.clone(), *offset))
                    .collect(),
            ),
            other => other.clone(),
        };
        // Explicit offsets that name none of this task's partitions start it at the
        // earliest offset, as an application without offsets would.
        let starting = match starting {
            StartingOffsets::Offsets(offsets) if offsets.is_empty() => StartingOffsets::Earliest,
            starting => starting,
        };
        KafkaSourceConfig::assign(self.kafka.clone(), self.input_partitions())
            .starting_offsets(starting)
    }

    /// The client settings of the application, without its group id (for sinks and
    /// further sources of the task).
    pub fn kafka(&self) -> &KafkaConfig {
        &self.kafka
    }

    /// The task's checkpoint directory: `<state_dir>/<application_id>/task-<partition>`.
    pub fn checkpoint_dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint configuration the application sets on the task's query before the
    /// builder runs (the task's directory, default settings otherwise). A builder that
    /// wants other settings (an interval, a durability) passes this, changed, to
    /// [`QueryBuilder::checkpoint`] again.
    pub fn checkpoint_config(&self) -> CheckpointConfig {
        CheckpointConfig::new(&self.dir)
    }
}

/// Builds a task's query: what [`KafkaApplication::new`](super::KafkaApplication::new)
/// takes.
pub(super) type TaskBuilder =
    dyn Fn(&TaskContext, &mut QueryBuilder) -> Result<(), BoxError> + Send + Sync + 'static;

/// A started task.
#[derive(Debug)]
pub(super) struct RunningTask {
    pub(super) query: Query,
}

/// Why [`try_start_task`] did not start a task.
#[derive(Debug)]
pub(super) enum StartFailure {
    /// Another writer (the partition's previous owner, still stopping the task) holds
    /// the task's checkpoint directory: try again later.
    Locked,
    /// The task cannot start.
    Failed(ApplicationError),
}

/// Builds task `partition` and starts it, restoring from its checkpoint directory.
pub(super) fn try_start_task(
    config: &ApplicationConfig,
    build: &TaskBuilder,
    partition: i32,
) -> Result<RunningTask, StartFailure> {
    let context = TaskContext::new(config, partition);
    let mut query = Query::builder();
    query
        .name(&format!("{}-task-{partition}", config.application_id))
        // Several tasks share the process's cores: leave placement to the OS (a builder
        // may pin explicitly).
        .pinning(Pinning::None)
        .checkpoint(context.checkpoint_config());
    // A builder that panics fails the application like one that returns an error (the
    // member's thread then stops the other tasks and leaves the group).
    let built =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(&context, &mut query)))
            .unwrap_or_else(|payload| {
                Err(format!(
                    "the task builder panicked: {}",
                    crate::error::panic_message(payload.as_ref())
                )
                .into())
            });
    built.map_err(|source| {
        StartFailure::Failed(ApplicationError::TaskBuild {
            application: config.application_id.clone(),
            partition,
            source,
        })
    })?;
    match query.start() {
        Ok(query) => Ok(RunningTask { query }),
        Err(error) if is_locked(&error) => Err(StartFailure::Locked),
        Err(source) => Err(StartFailure::Failed(ApplicationError::TaskStart {
            application: config.application_id.clone(),
            partition,
            source,
        })),
    }
}

/// Whether a start failed because another writer holds the checkpoint directory.
fn is_locked(error: &Error) -> bool {
    matches!(
        error,
        Error::Checkpoint(checkpoint)
            if matches!(**checkpoint, CheckpointError::Log(LogError::Locked { .. }))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(starting: StartingOffsets) -> ApplicationConfig {
        ApplicationConfig::new(
            "app",
            KafkaConfig::new("a:1").application_id("app"),
            ["a", "b"],
            "/state",
        )
        .starting_offsets(starting)
    }

    #[test]
    fn a_task_reads_its_partition_of_every_topic_without_the_group() {
        let task = TaskContext::new(&config(StartingOffsets::Latest), 4);
        let source = task.source_config();
        assert_eq!(
            source.topics(),
            &crate::kafka::Topics::Assign(vec![
                TopicPartition::new("a", 4),
                TopicPartition::new("b", 4)
            ])
        );
        assert_eq!(source.kafka().group(), None);
        assert_eq!(task.checkpoint_dir(), Path::new("/state/app/task-4"));
        assert_eq!(
            task.checkpoint_config().dir(),
            Path::new("/state/app/task-4")
        );
    }

    #[test]
    fn explicit_offsets_are_narrowed_to_the_task() {
        let offsets: BTreeMap<_, _> = [
            (TopicPartition::new("a", 0), 5),
            (TopicPartition::new("a", 1), 7),
            (TopicPartition::new("b", 1), 9),
        ]
        .into();
        let config = config(StartingOffsets::Offsets(offsets));
        let task = TaskContext::new(&config, 1);
        assert_eq!(
            format!("{:?}", task.source_config()),
            format!(
                "{:?}",
                KafkaSourceConfig::assign(
                    KafkaConfig::new("a:1"),
                    [TopicPartition::new("a", 1), TopicPartition::new("b", 1)]
                )
                .starting_offsets(StartingOffsets::Offsets(
                    [
                        (TopicPartition::new("a", 1), 7),
                        (TopicPartition::new("b", 1), 9)
                    ]
                    .into()
                ))
            )
        );
        let untouched = TaskContext::new(&config, 2);
        assert!(format!("{:?}", untouched.source_config()).contains("Earliest"));
    }

    #[test]
    fn a_locked_directory_is_recognised() {
        let locked = Error::Checkpoint(std::sync::Arc::new(CheckpointError::Log(
            LogError::Locked { dir: "/x".into() },
        )));
        assert!(is_locked(&locked));
        assert!(!is_locked(&Error::Config("no".into())));
    }
}
