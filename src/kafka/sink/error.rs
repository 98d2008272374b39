//! [`KafkaSinkError`]: every way the Kafka sink fails, each naming the topic or
//! transactional id involved.

use crate::error::BoxError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::time::Duration;

/// Why a [`KafkaSink`](super::KafkaSink) failed. Each fails the query (at `start()` for
/// the errors of `open`), so nothing is dropped silently; the query's error wraps it as
/// [`Error::Sink`](crate::Error::Sink), with the sink's name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaSinkError {
    /// librdkafka refused the producer's configuration (a bad property, say).
    #[error("invalid Kafka producer configuration: {0}")]
    Config(#[source] Box<KafkaError>),
    /// The client settings cannot be used (no bootstrap servers, a property the sink
    /// sets itself).
    #[error(transparent)]
    Client(#[from] crate::kafka::KafkaConfigError),
    /// No broker answered within the timeout (the broker is down, or the address is
    /// wrong).
    #[error("cannot reach the Kafka brokers at {brokers} within {timeout:?}: {source}")]
    Unreachable {
        /// The bootstrap servers tried.
        brokers: String,
        /// How long the sink waited.
        timeout: Duration,
        /// What librdkafka said.
        #[source]
        source: Box<KafkaError>,
    },
    /// The topic does not exist (the sink does not create topics).
    #[error(
        "Kafka topic `{topic}` does not exist on {brokers}: create it before starting the query"
    )]
    TopicMissing {
        /// The topic.
        topic: String,
        /// The bootstrap servers asked.
        brokers: String,
    },
    /// Another producer started with this sink's transactional id (a newer instance of
    /// the query, or a second process given the same id), which fenced this one: it may
    /// no longer write, and its open transaction was aborted. The query stops so that
    /// only the newer instance writes.
    #[error(
        "Kafka producer `{transactional_id}` was fenced: a newer producer with the same \
         transactional id started (another instance of this query?); this one stops writing"
    )]
    Fenced {
        /// The transactional id.
        transactional_id: String,
    },
    /// Records the broker did not take (after librdkafka's own retries): a
    /// `message.timeout.ms` that ran out while the broker was down, a record too large,
    /// the topic deleted meanwhile.
    #[error("{failed} record(s) were not delivered to Kafka topic `{topic}`: {source}")]
    Delivery {
        /// The topic.
        topic: String,
        /// Records that failed so far.
        failed: u64,
        /// The first failure.
        #[source]
        source: Box<KafkaError>,
    },
    /// Records still unacknowledged when the timeout ran out at an epoch marker or at
    /// the end.
    #[error("{pending} record(s) to Kafka topic `{topic}` still unacknowledged after {timeout:?}")]
    FlushTimeout {
        /// The topic.
        topic: String,
        /// Records in flight.
        pending: i32,
        /// How long the sink waited.
        timeout: Duration,
    },
    /// The producer's queue stayed full for the whole timeout (the broker takes nothing).
    #[error("the Kafka producer's queue for topic `{topic}` stayed full for {timeout:?}")]
    QueueFull {
        /// The topic.
        topic: String,
        /// How long the sink waited.
        timeout: Duration,
    },
    /// A step of an epoch's transaction failed; the transaction is aborted or left to
    /// the broker to abort, and the epoch runs again after a restart.
    #[error("Kafka transaction `{transactional_id}` failed at {step} of epoch {epoch}: {source}")]
    Transaction {
        /// The transactional id.
        transactional_id: String,
        /// The epoch.
        epoch: u64,
        /// What the sink was doing (`init`, `begin`, `commit marker`, `commit`, …).
        step: &'static str,
        /// What librdkafka said.
        #[source]
        source: Box<KafkaError>,
    },
    /// The commit of the epoch before this one did not run (the query is stopping), so
    /// this epoch cannot start its transaction.
    #[error("Kafka transaction `{transactional_id}`: epoch {epoch} cannot commit, the commit of an earlier epoch {outcome}")]
    EarlierCommit {
        /// The transactional id.
        transactional_id: String,
        /// The epoch.
        epoch: u64,
        /// What happened to the earlier commit.
        outcome: &'static str,
    },
    /// A record could not be encoded (the encoder's own error).
    #[error("cannot encode a record for Kafka topic `{topic}`: {source}")]
    Encode {
        /// The topic.
        topic: String,
        /// The encoder's error.
        #[source]
        source: BoxError,
    },
    /// The producer failed in a way it cannot recover from (librdkafka's fatal error).
    #[error("the Kafka producer for topic `{topic}` failed: {reason} ({code:?})")]
    Fatal {
        /// The topic.
        topic: String,
        /// librdkafka's error code.
        code: RDKafkaErrorCode,
        /// librdkafka's reason.
        reason: String,
    },
}

/// Whether `error` says a newer producer with the same transactional id fenced this one.
pub(super) fn is_fenced(error: &KafkaError) -> bool {
    is_fencing_code(error.rdkafka_error_code())
}

/// Whether `code` is one of the codes fencing shows up as.
pub(super) fn is_fencing_code(code: Option<RDKafkaErrorCode>) -> bool {
    matches!(
        code,
        Some(
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::TransactionCoordinatorFenced
        )
    )
}
