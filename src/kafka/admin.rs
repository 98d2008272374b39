//! Creating and deleting topics, blocking, without an async runtime: the topics a query
//! writes to (a sink does not create its topic), and the repartition topics between the
//! applications of a [`KafkaApplication`](super::app::KafkaApplication) pipeline.
//!
//! librdkafka's admin calls return futures that its own background thread completes, so
//! waiting is parking the calling thread until it is woken (or the timeout passes).

use super::config::KafkaConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// Why a topic could not be created, checked or deleted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaAdminError {
    /// The admin client could not be created, or a call failed as a whole.
    #[error("Kafka admin: {action}: {error}")]
    Client {
        /// What was being done.
        action: &'static str,
        /// librdkafka's error.
        #[source]
        error: KafkaError,
    },
    /// The broker refused the operation for one topic.
    #[error("Kafka admin: {action} topic `{topic}`: {code}")]
    Topic {
        /// What was being done.
        action: &'static str,
        /// The topic.
        topic: String,
        /// The broker's error.
        code: RDKafkaErrorCode,
    },
    /// The topic exists with another number of partitions than asked for.
    #[error("Kafka topic `{topic}` exists with {found} partitions, not {expected}")]
    PartitionCount {
        /// The topic.
        topic: String,
        /// The partitions asked for.
        expected: i32,
        /// The partitions it has.
        found: i32,
    },
    /// No answer within the timeout.
    #[error("Kafka admin: {action}: no answer within {timeout:?}")]
    Timeout {
        /// What was being done.
        action: &'static str,
        /// The timeout.
        timeout: Duration,
    },
}

/// Runs `future` on this thread until it completes or `timeout` passes.
fn block_on<F: Future>(future: F, timeout: Duration) -> Option<F::Output> {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = Instant::now() + timeout;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Some(output);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout((deadline - now).min(Duration::from_millis(100)));
    }
}

fn client(config: &KafkaConfig) -> Result<AdminClient<DefaultClientContext>, KafkaAdminError> {
    config
        .clone()
        .without_group()
        .client_config()
        .create()
        .map_err(|error| KafkaAdminError::Client {
            action: "create an admin client",
            error,
        })
}

/// Makes sure each `(topic, partitions)` exists with that many partitions (replication
/// factor 1 when it is created; use Kafka's tools for anything more): creates the
/// missing ones, and accepts existing ones with the right count.
///
/// # Errors
///
/// [`KafkaAdminError::PartitionCount`] for an existing topic with another count (a
/// repartition topic must have the count its readers expect); the broker's refusal, a
/// failed call, or no answer within `timeout`.
///
/// ```no_run
/// use rivulet::kafka::admin::ensure_topics;
/// use rivulet::kafka::KafkaConfig;
/// use std::time::Duration;
///
/// ensure_topics(
///     &KafkaConfig::new("127.0.0.1:9092"),
///     &[("readings-by-vendor", 6), ("alerts", 1)],
///     Duration::from_secs(30),
/// )?;
/// # Ok::<(), rivulet::kafka::admin::KafkaAdminError>(())
/// ```
pub fn ensure_topics(
    config: &KafkaConfig,
    topics: &[(&str, i32)],
    timeout: Duration,
) -> Result<(), KafkaAdminError> {
    let admin = client(config)?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(topic, partitions)| NewTopic::new(topic, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let action = "create";
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let results = block_on(admin.create_topics(&new, &options), timeout)
        .ok_or(KafkaAdminError::Timeout { action, timeout })?
        .map_err(|error| KafkaAdminError::Client { action, error })?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                let expected = topics
                    .iter()
                    .find(|(name, _)| *name == topic)
                    .map_or(0, |(_, partitions)| *partitions);
                let found = partition_count(&admin, &topic, timeout)?;
                if found != expected {
                    return Err(KafkaAdminError::PartitionCount {
                        topic,
                        expected,
                        found,
                    });
                }
            }
            Err((topic, code)) => {
                return Err(KafkaAdminError::Topic {
                    action,
                    topic,
                    code,
                })
            }
        }
    }
    Ok(())
}

/// The number of partitions of `topic`, from the brokers' metadata.
fn partition_count(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    timeout: Duration,
) -> Result<i32, KafkaAdminError> {
    let action = "read the metadata of";
    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), timeout)
        .map_err(|error| KafkaAdminError::Client { action, error })?;
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len() as i32)
        .ok_or_else(|| KafkaAdminError::Topic {
            action,
            topic: topic.to_string(),
            code: RDKafkaErrorCode::UnknownTopicOrPartition,
        })
}

/// Deletes `topics`. A topic that does not exist is not an error.
///
/// # Errors
///
/// The broker's refusal, a failed call, or no answer within `timeout`.
pub fn delete_topics(
    config: &KafkaConfig,
    topics: &[&str],
    timeout: Duration,
) -> Result<(), KafkaAdminError> {
    let admin = client(config)?;
    let action = "delete";
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let results = block_on(admin.delete_topics(topics, &options), timeout)
        .ok_or(KafkaAdminError::Timeout { action, timeout })?
        .map_err(|error| KafkaAdminError::Client { action, error })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => {
                return Err(KafkaAdminError::Topic {
                    action,
                    topic,
                    code,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_gives_up_at_the_timeout() {
        let never = std::future::pending::<()>();
        assert_eq!(block_on(never, Duration::from_millis(20)), None);
        assert_eq!(block_on(async { 7 }, Duration::from_millis(20)), Some(7));
    }
}
