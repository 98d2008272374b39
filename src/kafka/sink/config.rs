//! What a [`KafkaSink`](super::KafkaSink) writes to and how: [`KafkaSinkConfig`] and
//! [`DeliveryGuarantee`].

use crate::kafka::KafkaConfig;
use std::time::Duration;

/// What survives a crash of the writing process, as a `read_committed` consumer of the
/// topic sees it (see the [module docs](super#guarantees)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DeliveryGuarantee {
    /// Every record reaches the topic at least once: an idempotent producer (no
    /// duplicates from the producer's own retries), flushed at every epoch marker before
    /// the sink acknowledges the epoch. Records become visible as they are written. A
    /// crash replays the epochs after the restored one, and what they had already
    /// written comes again. Spark's Kafka sink gives this guarantee, in every mode.
    #[default]
    AtLeastOnce,
    /// Every epoch is one Kafka transaction, committed when the engine commits the
    /// epoch: a `read_committed` consumer sees an epoch's records once the epoch is
    /// complete, all together. With a micro-batch trigger and checkpointing a crash at
    /// any point leaves every record in the topic exactly once; continuous epochs are
    /// not replayed with the same records, so there a crash between the Kafka commit and
    /// the engine's record of it gives at-least-once.
    ExactlyOnce,
}

/// Where a [`KafkaSink`](super::KafkaSink) writes, and the producer's settings.
///
/// ```
/// use rivulet::kafka::sink::{DeliveryGuarantee, KafkaSinkConfig};
/// use std::time::Duration;
///
/// let config = KafkaSinkConfig::new("127.0.0.1:9092", "alerts")
///     .guarantee(DeliveryGuarantee::ExactlyOnce)
///     .transactional_id_prefix("pump-alerts")
///     .timeout(Duration::from_secs(10))
///     .property("linger.ms", "5");
/// assert_eq!(config.topic_name(), "alerts");
/// ```
#[derive(Debug, Clone)]
pub struct KafkaSinkConfig {
    pub(super) client: KafkaConfig,
    pub(super) topic: String,
    pub(super) guarantee: DeliveryGuarantee,
    pub(super) transactional_id_prefix: Option<String>,
    pub(super) timeout: Duration,
}

impl KafkaSinkConfig {
    /// Writes to `topic` on the cluster reached through `brokers` (librdkafka's
    /// `bootstrap.servers`: `host:port[,host:port…]`), at least once.
    ///
    /// The topic must exist: the sink does not create topics, and a missing one makes
    /// the query's `start()` fail.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        KafkaSinkConfig::with_client(KafkaConfig::new(brokers), topic)
    }

    /// Writes to `topic` with the client settings `client` (bootstrap servers and
    /// librdkafka properties, shared with Kafka sources; its group id is not used).
    pub fn with_client(client: KafkaConfig, topic: impl Into<String>) -> Self {
        KafkaSinkConfig {
            client,
            topic: topic.into(),
            guarantee: DeliveryGuarantee::default(),
            transactional_id_prefix: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// Sets the delivery guarantee (default [`DeliveryGuarantee::AtLeastOnce`]).
    pub fn guarantee(mut self, guarantee: DeliveryGuarantee) -> Self {
        self.guarantee = guarantee;
        self
    }

    /// Sets the transactional id of [`DeliveryGuarantee::ExactlyOnce`]: instance *i* of
    /// the sink uses `{prefix}-{i}`. It must name this sink of this query and nothing
    /// else, and stay the same across restarts: a producer that starts with an id fences
    /// (stops) any older producer with it, and aborts its open transaction.
    ///
    /// The default is `rivulet-{query id}-{sink name}` in a checkpointed query (the
    /// query id is kept in the checkpoint directory, so a restart uses the same ids and
    /// fences what an earlier process left behind) and a fresh id per run without
    /// checkpoints.
    pub fn transactional_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.transactional_id_prefix = Some(prefix.into());
        self
    }

    /// How long a blocking step may take before it fails the query: reaching the
    /// brokers at start, a flush at an epoch marker, a transaction's begin or commit,
    /// waiting for room in a full producer queue (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets a librdkafka producer property (`linger.ms`, `compression.type`,
    /// `message.timeout.ms`, `transaction.timeout.ms`, …; Spark's `kafka.` prefix may be
    /// kept), as [`KafkaConfig::set`]. The sink sets `enable.idempotence=true` itself
    /// (set it to `false` here for a broker without idempotent producers, in
    /// at-least-once mode) and `transactional.id` (refused here: see
    /// [`transactional_id_prefix`](Self::transactional_id_prefix)).
    pub fn property(mut self, key: &str, value: impl Into<String>) -> Self {
        self.client = self.client.set(key, value);
        self
    }

    /// The topic written to.
    pub fn topic_name(&self) -> &str {
        &self.topic
    }

    /// The bootstrap servers.
    pub fn brokers(&self) -> &str {
        self.client.bootstrap_servers()
    }

    /// The client settings.
    pub fn client(&self) -> &KafkaConfig {
        &self.client
    }

    /// The delivery guarantee.
    pub fn delivery_guarantee(&self) -> DeliveryGuarantee {
        self.guarantee
    }
}
