//! [`ApplicationConfig`]: who an application is, what it reads, where its tasks keep
//! their state.

use super::error::ApplicationError;
use crate::kafka::{KafkaConfig, StartingOffsets};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The settings of a [`KafkaApplication`](super::KafkaApplication): its id, the Kafka
/// cluster and input topics, and the directory, reachable by every process of the
/// application, where each task checkpoints.
///
/// ```
/// use rivulet::kafka::app::ApplicationConfig;
/// use rivulet::kafka::KafkaConfig;
/// use std::time::Duration;
///
/// let config = ApplicationConfig::new(
///     "pump-alerts",
///     KafkaConfig::new("127.0.0.1:9092"),
///     ["readings"],
///     "/mnt/shared/rivulet",
/// )
/// .session_timeout(Duration::from_secs(6));
/// assert_eq!(config.application_id(), "pump-alerts");
/// assert_eq!(
///     config.task_dir(3),
///     std::path::Path::new("/mnt/shared/rivulet/pump-alerts/task-3")
/// );
/// ```
#[derive(Debug, Clone)]
pub struct ApplicationConfig {
    pub(super) application_id: String,
    pub(super) kafka: KafkaConfig,
    pub(super) topics: Vec<String>,
    pub(super) state_dir: PathBuf,
    pub(super) starting: StartingOffsets,
    pub(super) session_timeout: Duration,
    pub(super) heartbeat_interval: Duration,
    pub(super) handover_timeout: Duration,
    pub(super) metadata_timeout: Duration,
}

/// Properties the application's group member sets itself, and why.
const RESERVED: &[(&str, &str)] = &[
    (
        "enable.auto.commit",
        "the group member only takes partitions; offsets live in each task's checkpoint",
    ),
    (
        "enable.auto.offset.store",
        "offsets live in each task's checkpoint",
    ),
    (
        "auto.offset.reset",
        "use ApplicationConfig::starting_offsets",
    ),
    (
        "session.timeout.ms",
        "use ApplicationConfig::session_timeout",
    ),
    (
        "heartbeat.interval.ms",
        "use ApplicationConfig::heartbeat_interval",
    ),
];

impl ApplicationConfig {
    /// An application `application_id` reading `topics` from the cluster of `kafka`,
    /// its tasks checkpointing under `state_dir/<application_id>/task-<partition>`.
    ///
    /// The id is the consumer group's id (Kafka Streams' `application.id`): every process
    /// started with the same id shares the partitions. It is also part of directory names
    /// and of the transactional ids of exactly-once sinks, so it may hold only ASCII
    /// letters, digits, `.`, `_` and `-`. The topics must be co-partitioned (the same
    /// number of partitions): task *p* reads partition *p* of each. `state_dir` must be
    /// the same storage for every process (a local directory for processes on one
    /// machine; a shared file system across machines), as Spark's checkpoint location is.
    pub fn new<I>(
        application_id: impl Into<String>,
        kafka: KafkaConfig,
        topics: I,
        state_dir: impl AsRef<Path>,
    ) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        ApplicationConfig {
            application_id: application_id.into(),
            kafka,
            topics: topics.into_iter().map(Into::into).collect(),
            state_dir: state_dir.as_ref().to_path_buf(),
            starting: StartingOffsets::Earliest,
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(1),
            handover_timeout: Duration::from_secs(60),
            metadata_timeout: Duration::from_secs(30),
        }
    }

    /// Where a task starts reading a partition that its checkpoint has no offset for
    /// (default [`StartingOffsets::Earliest`], as Kafka Streams; `Latest` would skip what
    /// was produced before a task's first checkpoint if its process died before it).
    /// Explicit offsets apply to the partitions they name.
    pub fn starting_offsets(mut self, starting: StartingOffsets) -> Self {
        self.starting = starting;
        self
    }

    /// How long the group waits for a silent process before its partitions go to the
    /// others (Kafka's `session.timeout.ms`; default 10 s). A process killed without
    /// leaving the group has its tasks taken over after this long.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How often the process tells the group it is alive (Kafka's
    /// `heartbeat.interval.ms`; default 1 s, at most a third of the session timeout).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// How long a task that was assigned here waits for its previous owner to release
    /// the task's checkpoint directory before the application fails (default 60 s). The
    /// previous owner releases it when it stops the task, or when its process ends.
    pub fn handover_timeout(mut self, timeout: Duration) -> Self {
        self.handover_timeout = timeout;
        self
    }

    /// How long `start()` waits for the brokers' metadata (default 30 s).
    pub fn metadata_timeout(mut self, timeout: Duration) -> Self {
        self.metadata_timeout = timeout;
        self
    }

    /// The application (group) id.
    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    /// The input topics.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The client settings.
    pub fn kafka(&self) -> &KafkaConfig {
        &self.kafka
    }

    /// The checkpoint directory of task `partition`:
    /// `<state_dir>/<application_id>/task-<partition>`.
    pub fn task_dir(&self, partition: i32) -> PathBuf {
        self.state_dir
            .join(&self.application_id)
            .join(format!("task-{partition}"))
    }

    /// Problems that will fail `start()`, found without a broker.
    ///
    /// # Errors
    ///
    /// [`ApplicationError::Config`] saying what is wrong.
    pub fn check(&self) -> Result<(), ApplicationError> {
        let invalid = |message: String| Err(ApplicationError::Config(message));
        if self.application_id.is_empty()
            || !self
                .application_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return invalid(format!(
                "application id `{}` must be non-empty ASCII letters, digits, `.`, `_` or `-`",
                self.application_id
            ));
        }
        if self.topics.is_empty() {
            return invalid("an application reads at least one topic".into());
        }
        if let Some(group) = self.kafka.group() {
            if group != self.application_id {
                return invalid(format!(
                    "the Kafka config's group id `{group}` is not the application id `{}`: \
                     the application id is the group id",
                    self.application_id
                ));
            }
        }
        self.kafka
            .validate()
            .and_then(|()| self.kafka.refuse("Kafka application", RESERVED))
            .map_err(|error| ApplicationError::Config(error.to_string()))?;
        if self.session_timeout < Duration::from_millis(100)
            || self.heartbeat_interval.is_zero()
            || self.heartbeat_interval * 3 > self.session_timeout
        {
            return invalid(format!(
                "the heartbeat interval ({:?}) must be positive and at most a third of the \
                 session timeout ({:?}, at least 100 ms)",
                self.heartbeat_interval, self.session_timeout
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ApplicationConfig {
        ApplicationConfig::new("app-1", KafkaConfig::new("a:1"), ["t"], "/tmp/x")
    }

    #[test]
    fn checks_ids_topics_groups_and_timeouts() {
        assert!(config().check().is_ok());
        let bad_id = ApplicationConfig::new("a/b", KafkaConfig::new("a:1"), ["t"], "/x");
        assert!(bad_id.check().unwrap_err().to_string().contains("`a/b`"));
        let no_topic =
            ApplicationConfig::new("a", KafkaConfig::new("a:1"), Vec::<String>::new(), "/x");
        assert!(no_topic.check().is_err());
        let other_group =
            ApplicationConfig::new("a", KafkaConfig::new("a:1").group_id("b"), ["t"], "/x");
        assert!(other_group.check().unwrap_err().to_string().contains("`b`"));
        let same_group =
            ApplicationConfig::new("a", KafkaConfig::new("a:1").group_id("a"), ["t"], "/x");
        assert!(same_group.check().is_ok());
        let reserved = ApplicationConfig::new(
            "a",
            KafkaConfig::new("a:1").set("session.timeout.ms", "1"),
            ["t"],
            "/x",
        );
        assert!(reserved
            .check()
            .unwrap_err()
            .to_string()
            .contains("ApplicationConfig::session_timeout"));
        let slow_heartbeat = config()
            .session_timeout(Duration::from_secs(3))
            .heartbeat_interval(Duration::from_secs(2));
        assert!(slow_heartbeat.check().is_err());
    }

    #[test]
    fn task_directories_are_per_partition() {
        assert_eq!(config().task_dir(0), Path::new("/tmp/x/app-1/task-0"));
        assert_eq!(config().task_dir(11), Path::new("/tmp/x/app-1/task-11"));
    }
}
