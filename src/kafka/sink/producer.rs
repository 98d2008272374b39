//! The sink's side of librdkafka: creating the producer, sending with back-pressure,
//! collecting delivery failures, flushing, and the transaction steps, each failure
//! turned into a [`KafkaSinkError`] that names what failed.

use super::config::KafkaSinkConfig;
use super::error::{is_fenced, is_fencing_code, KafkaSinkError};
use super::message::MessageRef;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts the records the broker did not take, and keeps the first failure.
#[derive(Debug, Default)]
pub(super) struct Deliveries {
    failed: AtomicU64,
    first: Mutex<Option<KafkaError>>,
}

impl ClientContext for Deliveries {
    // librdkafka retries on its own and reports what matters through delivery reports
    // and the calls' results; its error events (a broker that went away) are noise here.
    fn error(&self, _error: KafkaError, _reason: &str) {}
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                *self.first.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.clone());
            }
        }
    }
}

/// A producer for one sink instance; shared (through an `Arc`) with the commit closures
/// the instance hands to the engine, which run on the coordinator's thread.
pub(super) struct SinkProducer {
    inner: BaseProducer<Deliveries>,
    pub(super) topic: String,
    pub(super) brokers: String,
    pub(super) timeout: Duration,
    /// The transactional id, for [`DeliveryGuarantee::ExactlyOnce`](super::DeliveryGuarantee::ExactlyOnce).
    pub(super) transactional_id: Option<String>,
}

impl std::fmt::Debug for SinkProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkProducer")
            .field("topic", &self.topic)
            .field("transactional_id", &self.transactional_id)
            .finish_non_exhaustive()
    }
}

impl SinkProducer {
    /// A producer for `config`: idempotent, and transactional with `transactional_id`.
    pub(super) fn create(
        config: &KafkaSinkConfig,
        transactional_id: Option<String>,
    ) -> Result<Self, KafkaSinkError> {
        config.client.validate()?;
        config.client.refuse(
            "Kafka sink",
            &[(
                "transactional.id",
                "the sink gives each instance its own (KafkaSinkConfig::transactional_id_prefix)",
            )],
        )?;
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", config.client.bootstrap_servers())
            .set("enable.idempotence", "true");
        for (key, value) in config.client.properties() {
            client.set(key, value);
        }
        if let Some(id) = &transactional_id {
            client.set("transactional.id", id);
        }
        let inner = client
            .create_with_context(Deliveries::default())
            .map_err(|error| KafkaSinkError::Config(Box::new(error)))?;
        Ok(SinkProducer {
            inner,
            topic: config.topic.clone(),
            brokers: config.client.bootstrap_servers().to_string(),
            timeout: config.timeout,
            transactional_id,
        })
    }

    /// Checks that a broker answers and that the topic exists.
    pub(super) fn check_topic(&self) -> Result<(), KafkaSinkError> {
        let metadata = self
            .inner
            .client()
            .fetch_metadata(Some(&self.topic), self.timeout)
            .map_err(|source| KafkaSinkError::Unreachable {
                brokers: self.brokers.clone(),
                timeout: self.timeout,
                source: Box::new(source),
            })?;
        let topic = metadata.topics().iter().find(|t| t.name() == self.topic);
        match topic {
            Some(topic) if topic.error().is_none() && !topic.partitions().is_empty() => Ok(()),
            _ => Err(KafkaSinkError::TopicMissing {
                topic: self.topic.clone(),
                brokers: self.brokers.clone(),
            }),
        }
    }

    /// Hands one message to librdkafka; waits (serving delivery reports) while its
    /// queue is full, up to the timeout.
    #[inline]
    pub(super) fn send(&self, message: MessageRef<'_>) -> Result<(), KafkaSinkError> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic);
        record.key = message.key;
        record.payload = message.value;
        record.partition = message.partition;
        record.timestamp = message.timestamp;
        let mut deadline = None;
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    let deadline = *deadline.get_or_insert_with(|| Instant::now() + self.timeout);
                    if Instant::now() >= deadline {
                        return Err(KafkaSinkError::QueueFull {
                            topic: self.topic.clone(),
                            timeout: self.timeout,
                        });
                    }
                    self.inner.poll(Duration::from_millis(1));
                    self.check_deliveries()?;
                    record = back;
                }
                Err((error, _)) => return Err(self.classify(error)),
            }
        }
    }

    /// Serves delivery reports without waiting, and fails if any record failed.
    #[inline]
    pub(super) fn poll(&self) -> Result<(), KafkaSinkError> {
        self.inner.poll(Duration::ZERO);
        self.check_deliveries()
    }

    /// Waits until every record sent is acknowledged (or failed), up to the timeout.
    pub(super) fn flush(&self) -> Result<(), KafkaSinkError> {
        let flushed = self.inner.flush(self.timeout);
        self.check_deliveries()?;
        match flushed {
            Ok(()) => Ok(()),
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {
                Err(KafkaSinkError::FlushTimeout {
                    topic: self.topic.clone(),
                    pending: self.inner.in_flight_count(),
                    timeout: self.timeout,
                })
            }
            Err(error) => Err(self.classify(error)),
        }
    }

    /// The first delivery failure so far, as an error.
    fn check_deliveries(&self) -> Result<(), KafkaSinkError> {
        let context = self.inner.context();
        let failed = context.failed.load(Ordering::Relaxed);
        if failed == 0 {
            return Ok(());
        }
        let first = context
            .first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or(KafkaError::Canceled);
        Err(
            self.classify_with(first, |source| KafkaSinkError::Delivery {
                topic: self.topic.clone(),
                failed,
                source: Box::new(source),
            }),
        )
    }

    /// `error` as a [`KafkaSinkError`]: fencing and fatal errors first (a fatal error's
    /// cause is the producer's fatal error), anything else as a delivery failure.
    fn classify(&self, error: KafkaError) -> KafkaSinkError {
        self.classify_with(error, |source| KafkaSinkError::Delivery {
            topic: self.topic.clone(),
            failed: 1,
            source: Box::new(source),
        })
    }

    fn classify_with(
        &self,
        error: KafkaError,
        otherwise: impl FnOnce(KafkaError) -> KafkaSinkError,
    ) -> KafkaSinkError {
        if let Some(fenced) = self.fenced(&error) {
            return fenced;
        }
        if let Some((code, reason)) = self.inner.client().fatal_error() {
            return KafkaSinkError::Fatal {
                topic: self.topic.clone(),
                code,
                reason,
            };
        }
        otherwise(error)
    }

    /// [`KafkaSinkError::Fenced`] if `error`, or the producer's fatal error, is fencing.
    fn fenced(&self, error: &KafkaError) -> Option<KafkaSinkError> {
        let fatal = self.inner.client().fatal_error().map(|(code, _)| code);
        (is_fenced(error) || is_fencing_code(fatal)).then(|| KafkaSinkError::Fenced {
            transactional_id: self.transactional_id.clone().unwrap_or_default(),
        })
    }

    /// A transaction step's error, naming the step and epoch.
    fn transaction_error(
        &self,
        step: &'static str,
        epoch: u64,
        error: KafkaError,
    ) -> KafkaSinkError {
        self.fenced(&error)
            .unwrap_or_else(|| KafkaSinkError::Transaction {
                transactional_id: self.transactional_id.clone().unwrap_or_default(),
                epoch,
                step,
                source: Box::new(error),
            })
    }

    /// Registers the transactional id with its coordinator: fences older producers with
    /// the id, and completes (commits or aborts, as the coordinator logged it) the
    /// transaction they left open. A broker that does not answer is
    /// [`KafkaSinkError::Unreachable`].
    pub(super) fn init_transactions(&self) -> Result<(), KafkaSinkError> {
        self.inner.init_transactions(self.timeout).map_err(|error| {
            match error.rdkafka_error_code() {
                Some(RDKafkaErrorCode::OperationTimedOut)
                | Some(RDKafkaErrorCode::AllBrokersDown) => KafkaSinkError::Unreachable {
                    brokers: self.brokers.clone(),
                    timeout: self.timeout,
                    source: Box::new(error),
                },
                _ => self.transaction_error("init", 0, error),
            }
        })
    }

    /// Begins epoch `epoch`'s transaction.
    pub(super) fn begin(&self, epoch: u64) -> Result<(), KafkaSinkError> {
        self.inner
            .begin_transaction()
            .map_err(|error| self.transaction_error("begin", epoch, error))
    }

    /// Adds the sink's commit record (`offsets`, for the group of `group`) to the open
    /// transaction of `epoch`.
    pub(super) fn add_commit_record(
        &self,
        epoch: u64,
        offsets: &rdkafka::TopicPartitionList,
        group: &rdkafka::consumer::ConsumerGroupMetadata,
    ) -> Result<(), KafkaSinkError> {
        self.inner
            .send_offsets_to_transaction(offsets, group, self.timeout)
            .map_err(|error| self.transaction_error("commit record", epoch, error))
    }

    /// Commits the open transaction of `epoch`. Retries what librdkafka calls
    /// retriable (a few times); aborts on an abortable error, then fails.
    pub(super) fn commit(&self, epoch: u64) -> Result<(), KafkaSinkError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let error = match self.inner.commit_transaction(self.timeout) {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            let (retriable, abortable) = match &error {
                KafkaError::Transaction(inner) => {
                    (inner.is_retriable(), inner.txn_requires_abort())
                }
                _ => (false, false),
            };
            if retriable && attempts < 3 {
                continue;
            }
            if abortable {
                // Leaves the producer ready for a later transaction; the epoch's records
                // are discarded, and the epoch runs again after the restart.
                let _ = self.inner.abort_transaction(self.timeout);
            }
            return Err(self.transaction_error("commit", epoch, error));
        }
    }
}
