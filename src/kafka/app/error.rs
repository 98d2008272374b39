//! [`ApplicationError`]: why a Kafka application could not start or stopped.

use crate::error::BoxError;
use rdkafka::error::KafkaError;
use std::path::PathBuf;
use std::time::Duration;

/// Why a [`KafkaApplication`](super::KafkaApplication) could not start, or why it failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplicationError {
    /// The configuration cannot work.
    #[error("invalid Kafka application configuration: {0}")]
    Config(String),
    /// The group member could not be created, or the brokers did not answer.
    #[error("Kafka application `{application}`: {action}: {error}")]
    Kafka {
        /// The application id.
        application: String,
        /// What was being done.
        action: &'static str,
        /// librdkafka's error.
        #[source]
        error: KafkaError,
    },
    /// An input topic does not exist.
    #[error("Kafka application `{application}`: topic `{topic}` does not exist")]
    MissingTopic {
        /// The application id.
        application: String,
        /// The topic.
        topic: String,
    },
    /// The input topics have different numbers of partitions, so task *p* cannot read
    /// partition *p* of each.
    #[error(
        "Kafka application `{application}`: its input topics must have the same number of \
         partitions (task p reads partition p of each), found {counts}; repartition \
         through a topic with the right count"
    )]
    NotCoPartitioned {
        /// The application id.
        application: String,
        /// `topic: count` for each topic.
        counts: String,
    },
    /// The state directory could not be created.
    #[error("Kafka application `{application}`: cannot create {dir}: {source}")]
    StateDir {
        /// The application id.
        application: String,
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The application's task builder returned an error for a task.
    #[error("Kafka application `{application}`: building task {partition} failed: {source}")]
    TaskBuild {
        /// The application id.
        application: String,
        /// The task's partition.
        partition: i32,
        /// The builder's error.
        #[source]
        source: BoxError,
    },
    /// A task's query did not start.
    #[error("Kafka application `{application}`: task {partition} did not start: {source}")]
    TaskStart {
        /// The application id.
        application: String,
        /// The task's partition.
        partition: i32,
        /// The query's error.
        #[source]
        source: crate::Error,
    },
    /// A task's previous owner did not release its checkpoint directory in time.
    #[error(
        "Kafka application `{application}`: task {partition}'s checkpoint directory {dir} \
         is still locked by its previous owner after {waited:?} (a process that lost the \
         partition but still runs the task?)"
    )]
    HandoverTimeout {
        /// The application id.
        application: String,
        /// The task's partition.
        partition: i32,
        /// The task's checkpoint directory.
        dir: PathBuf,
        /// How long this process waited.
        waited: Duration,
    },
    /// A running task failed.
    #[error("Kafka application `{application}`: task {partition} failed: {source}")]
    TaskFailed {
        /// The application id.
        application: String,
        /// The task's partition.
        partition: i32,
        /// The query's failure.
        #[source]
        source: crate::Error,
    },
    /// The application's thread panicked (a bug in rivulet or in the task builder).
    #[error("Kafka application `{application}`: its group thread panicked: {message}")]
    Panicked {
        /// The application id.
        application: String,
        /// The panic's message.
        message: String,
    },
}
