//! The Kafka sink: every record becomes a message in one topic (Spark's
//! `writeStream.format("kafka")`), at least once, or exactly once through Kafka
//! transactions committed with the engine's epochs.
//!
//! ```no_run
//! use rivulet::kafka::sink::{DeliveryGuarantee, KafkaMessage, KafkaSink, KafkaSinkConfig};
//! use rivulet::checkpoint::CheckpointConfig;
//! use rivulet::{Query, Trigger};
//! use std::time::Duration;
//!
//! let mut query = Query::builder();
//! query
//!     .checkpoint(CheckpointConfig::new("/var/lib/pumps/checkpoints"))
//!     .trigger(Trigger::MicroBatch { interval: Duration::from_secs(1) });
//! query
//!     .from_iter("readings", [("BUTTE", 85.0), ("COHUTTA", 0.4)])
//!     .filter(|(_, psi)| *psi > 50.0)
//!     .sink(
//!         "alerts",
//!         KafkaSink::new(
//!             KafkaSinkConfig::new("127.0.0.1:9092", "alerts")
//!                 .guarantee(DeliveryGuarantee::ExactlyOnce),
//!             |(pump, psi): &(&str, f64), message: &mut KafkaMessage| {
//!                 message.set_key(pump);
//!                 message.json_value(&psi)
//!             },
//!         ),
//!     );
//! query.start()?.await_termination()?;
//! # Ok::<(), rivulet::Error>(())
//! ```
//!
//! # Messages
//!
//! A [`MessageEncoder`] fills a reused [`KafkaMessage`] (key, value, partition,
//! timestamp) from each record: a closure, [`Json`] (the record as a JSON value, no key:
//! [`KafkaSink::json`]) or [`Csv`] (one CSV row: [`KafkaSink::csv`]).
//!
//! # Guarantees
//!
//! | guarantee | micro-batch, checkpointed | continuous | visible to `read_committed` |
//! |---|---|---|---|
//! | [`AtLeastOnce`](DeliveryGuarantee::AtLeastOnce) (default) | at least once | at least once | as written |
//! | [`ExactlyOnce`](DeliveryGuarantee::ExactlyOnce) | **exactly once** | at least once | when the epoch commits |
//!
//! **At least once.** An idempotent producer (`enable.idempotence`: the producer's own
//! retries never duplicate), flushed at every epoch marker before the sink acknowledges
//! the epoch: an epoch the engine counts as complete is in the topic. A crash replays
//! the epochs after the restored one, and their records come again. This is Spark's
//! Kafka sink's guarantee.
//!
//! **Exactly once: the commit protocol.** Instance *i* of the sink owns the
//! transactional id `{prefix}-{i}` (by default `rivulet-{query id}-{sink name}-{i}`) and
//! writes each epoch in one Kafka transaction:
//!
//! 1. `open` (at `start()`): `init_transactions` fences any older producer with the id
//!    (a process that crashed, or a zombie) and completes the transaction it left open:
//!    aborts it, or, if it had already asked to commit, commits it. Only then the sink
//!    reads its *commit record* (below) and decides what to skip.
//! 2. The first record of an epoch begins its transaction; records are produced as
//!    they come.
//! 3. At the epoch's marker ([`Sink::prepare_commit`]) the sink flushes (every record
//!    acknowledged by the broker), adds its commit record for the epoch to the
//!    transaction, and only then acknowledges the epoch.
//! 4. When the engine has logged the epoch complete, it runs the second phase on its
//!    coordinator thread: `commit_transaction`. Then the engine logs the commit.
//!
//! The *commit record* is a consumer-group offset committed inside the transaction
//! (`send_offsets_to_transaction`, as Kafka Streams commits its input offsets): group =
//! the transactional id, partition 0 of the output topic, offset = the epoch, metadata =
//! the query id. Kafka makes it visible if and only if it commits the epoch's records,
//! so after step 1 it says exactly which epoch this instance last published.
//!
//! What a crash leaves, as a `read_committed` consumer sees it:
//!
//! * *Before the engine logged the epoch complete* (during the epoch, or after staging):
//!   the transaction is open. The restart's `init_transactions` aborts it, the engine
//!   restores the epoch before and runs this one again: written once, by the restart.
//! * *After the engine logged the epoch complete, before the Kafka commit*: the engine
//!   has no commit entry for the epoch, so it restores the epoch before and *replays*
//!   this one with the same records (a micro-batch's offsets are logged before it runs;
//!   [`SinkContext::replayed_epoch`]). The transaction was aborted at the restart and
//!   the commit record still names the epoch before: the sink writes the replay. Once.
//! * *After the Kafka commit, before the engine logged it*: the replay is the same
//!   records, and the commit record names this epoch: the sink drops the replay's
//!   records. Once.
//! * *During the commit* (the coordinator had logged `PREPARE_COMMIT`): Kafka finishes
//!   the commit when the restart's `init_transactions` runs, so the commit record
//!   read after it names the epoch, as in the case before.
//!
//! Kafka transactions cannot be resumed by another producer (Flink's sink does so by
//! setting the producer id and epoch through reflection; librdkafka has no such call),
//! so rivulet never tries: a transaction either committed before the crash, or is
//! aborted and written again. The epoch id in the commit record is what tells the two
//! apart.
//!
//! Epochs that are not replayed but planned afresh after a restart (continuous epochs,
//! which have no offset log, or a restart on another trigger) may hold other records
//! under a number that was published: the sink writes them, and moves its commit
//! record back first so that it never skips them later. What the earlier run published
//! under those numbers stays in the topic: at-least-once for continuous epochs, as for
//! Spark. The same holds for the epochs after the replayed one if the checkpoint log
//! lost its commit entries (say, a power loss with
//! [`Durability::OsBuffered`](crate::checkpoint::Durability::OsBuffered)).
//!
//! Skipping is per instance, so the sink's parallelism must stay the same across
//! restarts, as for the file sink. An instance writes at most one transaction at a
//! time: the records of the next epoch that arrive while the previous epoch's commit
//! is pending are held in memory and produced once it has committed (in micro-batch
//! mode the next batch rarely starts before that).
//!
//! # Faults
//!
//! Each fails the query with a [`KafkaSinkError`] naming what failed, and loses
//! nothing that the engine counts as committed:
//!
//! * No broker answers at `start()`: [`KafkaSinkError::Unreachable`]. A broker that goes
//!   away later is retried by librdkafka until `message.timeout.ms`, then
//!   [`KafkaSinkError::Delivery`] (or [`KafkaSinkError::FlushTimeout`] at a marker).
//! * The topic does not exist: [`KafkaSinkError::TopicMissing`] at `start()`.
//! * Another producer started with the same transactional id:
//!   [`KafkaSinkError::Fenced`]; the newer one keeps writing, and what this one had not
//!   committed is aborted (and written again by the newer one when it replays).
//! * The transaction timed out on the broker (an epoch longer than
//!   `transaction.timeout.ms`, 60 s by default) or any other transaction step failed:
//!   [`KafkaSinkError::Transaction`]; the epoch runs again after a restart.
//!
//! [`SinkContext::replayed_epoch`]: crate::sink::SinkContext::replayed_epoch

// One job per file: `config` (what to write where), `message` (records to messages),
// `producer` (librdkafka calls and their errors), `marker` (the commit record and the
// recovery decision), `error` (KafkaSinkError), this file (the epoch cycle).
mod config;
mod error;
mod marker;
mod message;
mod producer;

pub use config::{DeliveryGuarantee, KafkaSinkConfig};
pub use error::KafkaSinkError;
pub use message::{Csv, Json, KafkaMessage, MessageEncoder};

use crate::error::BoxError;
use crate::event::Epoch;
use crate::metrics::Counter;
use crate::sink::{EpochCommit, Sink, SinkContext};
use crate::trigger::EmitMode;
use marker::CommitRecord;
use message::Held;
use producer::SinkProducer;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Writes every record as a message to a Kafka topic (see the [module docs](self)).
///
/// `E` turns a record into a message: [`KafkaSink::json`], [`KafkaSink::csv`] or any
/// closure through [`KafkaSink::new`]. Add it to a query with
/// [`Stream::sink`](crate::Stream::sink).
pub struct KafkaSink<T, E> {
    config: Arc<KafkaSinkConfig>,
    encoder: E,
    /// Set by `open`.
    state: Option<Opened>,
    _records: PhantomData<fn(T)>,
}

impl<T, E> fmt::Debug for KafkaSink<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSink")
            .field("config", &self.config)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<T, E: Clone> Clone for KafkaSink<T, E> {
    /// Another, unopened instance with the same configuration.
    fn clone(&self) -> Self {
        KafkaSink {
            config: self.config.clone(),
            encoder: self.encoder.clone(),
            state: None,
            _records: PhantomData,
        }
    }
}

impl<T, E: MessageEncoder<T>> KafkaSink<T, E> {
    /// A sink writing to `config`'s topic, each record encoded by `encoder`.
    pub fn new(config: KafkaSinkConfig, encoder: E) -> Self {
        KafkaSink {
            config: Arc::new(config),
            encoder,
            state: None,
            _records: PhantomData,
        }
    }
}

impl<T: serde::Serialize> KafkaSink<T, Json> {
    /// A sink whose messages' values are the records as JSON, without keys.
    pub fn json(config: KafkaSinkConfig) -> Self {
        KafkaSink::new(config, Json)
    }
}

impl<T: serde::Serialize> KafkaSink<T, Csv> {
    /// A sink whose messages' values are the records as CSV rows, without keys.
    pub fn csv(config: KafkaSinkConfig) -> Self {
        KafkaSink::new(config, Csv::default())
    }
}

/// An opened instance.
struct Opened {
    producer: Arc<SinkProducer>,
    /// The message being encoded (reused).
    message: KafkaMessage,
    /// The transactional state ([`DeliveryGuarantee::ExactlyOnce`] only).
    transactions: Option<Transactions>,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("producer", &self.producer)
            .field("transactions", &self.transactions)
            .finish_non_exhaustive()
    }
}

/// An exactly-once instance's transactions.
struct Transactions {
    record: Arc<CommitRecord>,
    /// The replayed epoch, already published: its records are dropped.
    skip: Option<u64>,
    /// The epoch records belong to now.
    epoch: u64,
    /// Whether the current epoch's transaction has begun.
    begun: bool,
    /// Records written in the current epoch (sent or held).
    written: u64,
    /// The commit of the epoch before, until it has run.
    pending: Option<Arc<CommitSlot>>,
    /// The current epoch's records, while `pending` has not committed.
    held: Held,
    /// Records of the replayed epoch dropped because they were published before.
    skipped: Arc<Counter>,
}

impl fmt::Debug for Transactions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transactions")
            .field("record", &self.record)
            .field("skip", &self.skip)
            .field("epoch", &self.epoch)
            .field("begun", &self.begun)
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

/// How an epoch's commit closure ended, for the instance's thread to see.
#[derive(Debug, Default)]
struct CommitSlot(AtomicU8);

const PENDING: u8 = 0;
const COMMITTED: u8 = 1;
const FAILED: u8 = 2;
const DROPPED: u8 = 3;

impl CommitSlot {
    fn state(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Release);
    }
}

/// Held by a commit closure: marks its slot [`DROPPED`] if the closure is dropped without
/// having run (the query stopped first).
struct SlotGuard(Arc<CommitSlot>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let _ = self
            .0
             .0
            .compare_exchange(PENDING, DROPPED, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// What a commit closure finds of the epoch before it: `Ok` if it committed.
fn earlier_outcome(slot: &CommitSlot) -> Result<(), &'static str> {
    match slot.state() {
        COMMITTED => Ok(()),
        PENDING => Err("has not run"),
        FAILED => Err("failed"),
        _ => Err("was dropped (the query stopped)"),
    }
}

impl Transactions {
    /// Whether the current epoch's records must be held: the epoch before has not
    /// committed yet. Clears `pending` once it has.
    fn must_hold(&mut self, producer: &SinkProducer) -> Result<bool, KafkaSinkError> {
        let Some(slot) = &self.pending else {
            return Ok(false);
        };
        match slot.state() {
            PENDING => Ok(true),
            COMMITTED => {
                self.pending = None;
                Ok(false)
            }
            _ => Err(KafkaSinkError::EarlierCommit {
                transactional_id: producer.transactional_id.clone().unwrap_or_default(),
                epoch: self.epoch,
                outcome: earlier_outcome(slot).err().unwrap_or("failed"),
            }),
        }
    }

    /// Begins the current epoch's transaction (once) and sends what was held.
    fn ensure_begun(&mut self, producer: &SinkProducer) -> Result<(), KafkaSinkError> {
        if !self.begun {
            producer.begin(self.epoch)?;
            self.begun = true;
        }
        if !self.held.is_empty() {
            self.held.try_for_each(|message| producer.send(message))?;
            self.held.clear();
        }
        Ok(())
    }
}

impl<T, E> KafkaSink<T, E> {
    fn opened(&mut self) -> &mut Opened {
        self.state
            .as_mut()
            .expect("the engine opens a sink before using it")
    }
}

impl<T, E> Sink<T> for KafkaSink<T, E>
where
    T: Send + 'static,
    E: MessageEncoder<T>,
{
    fn open(&mut self, context: &SinkContext) -> Result<(), BoxError> {
        let config = &*self.config;
        let transactional_id = match config.guarantee {
            DeliveryGuarantee::AtLeastOnce => None,
            DeliveryGuarantee::ExactlyOnce => Some(transactional_id(config, context)),
        };
        let producer = SinkProducer::create(config, transactional_id.clone())?;
        producer.check_topic()?;
        let transactions = match transactional_id {
            None => None,
            Some(id) => {
                producer.init_transactions()?;
                let (record, committed) = CommitRecord::open(
                    config.client.bootstrap_servers(),
                    &id,
                    &config.topic,
                    context.query_id.clone(),
                    config.timeout,
                )?;
                let recovery = marker::recover(
                    committed.as_ref(),
                    context.query_id.as_deref(),
                    context.first_epoch.0,
                    context.replayed_epoch.map(|epoch| epoch.0),
                );
                if let Some(epoch) = recovery.rewind_to {
                    producer.begin(epoch)?;
                    producer.add_commit_record(epoch, &record.offsets(epoch), record.group())?;
                    producer.commit(epoch)?;
                }
                Some(Transactions {
                    record: Arc::new(record),
                    skip: recovery.skip,
                    epoch: context.first_epoch.0,
                    begun: false,
                    written: 0,
                    pending: None,
                    held: Held::default(),
                    skipped: context.counter("replayed_records_skipped"),
                })
            }
        };
        self.state = Some(Opened {
            producer: Arc::new(producer),
            message: KafkaMessage::default(),
            transactions,
        });
        Ok(())
    }

    fn begin_epoch(&mut self, epoch: Epoch, _mode: EmitMode) -> Result<(), BoxError> {
        if let Some(transactions) = &mut self.opened().transactions {
            transactions.epoch = epoch.0;
            transactions.begun = false;
            transactions.written = 0;
        }
        Ok(())
    }

    #[inline]
    fn write(&mut self, record: T) -> Result<(), BoxError> {
        let state = self.state.as_mut().expect("opened");
        if let Some(transactions) = &state.transactions {
            if transactions.skip == Some(transactions.epoch) {
                transactions.skipped.add(1);
                return Ok(());
            }
        }
        state.message.clear();
        self.encoder
            .encode(&record, &mut state.message)
            .map_err(|source| KafkaSinkError::Encode {
                topic: self.config.topic.clone(),
                source,
            })?;
        let producer = &*state.producer;
        match &mut state.transactions {
            None => producer.send(state.message.as_ref())?,
            Some(transactions) => {
                transactions.written += 1;
                if transactions.must_hold(producer)? {
                    transactions.held.push(&state.message);
                } else {
                    transactions.ensure_begun(producer)?;
                    producer.send(state.message.as_ref())?;
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn flush(&mut self) -> Result<(), BoxError> {
        let state = self.opened();
        state.producer.poll()?;
        if let Some(transactions) = &mut state.transactions {
            // Send what was held as soon as the earlier commit is done.
            if !transactions.held.is_empty() && !transactions.must_hold(&state.producer)? {
                transactions.ensure_begun(&state.producer)?;
            }
        }
        Ok(())
    }

    fn prepare_commit(&mut self, epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        let state = self.opened();
        let producer = state.producer.clone();
        let Some(transactions) = &mut state.transactions else {
            // At least once: acknowledged only once everything is in the topic.
            producer.flush()?;
            return Ok(None);
        };
        let epoch = epoch.0;
        if transactions.skip == Some(epoch) || transactions.written == 0 {
            // A published replay, or nothing to publish.
            return Ok(None);
        }
        let slot = Arc::new(CommitSlot::default());
        let guard = SlotGuard(slot.clone());
        let record = transactions.record.clone();
        let commit: EpochCommit = if transactions.must_hold(&producer)? {
            // The epoch before has not committed: this one's transaction cannot begin
            // yet. Its commit (which runs after the earlier one's) begins it, produces
            // what was held, and commits.
            let held = std::mem::take(&mut transactions.held);
            let earlier = transactions.pending.clone().expect("held while pending");
            Box::new(move || {
                let guard = guard;
                let result = (|| {
                    earlier_outcome(&earlier).map_err(|outcome| KafkaSinkError::EarlierCommit {
                        transactional_id: producer.transactional_id.clone().unwrap_or_default(),
                        epoch,
                        outcome,
                    })?;
                    producer.begin(epoch)?;
                    held.try_for_each(|message| producer.send(message))?;
                    producer.flush()?;
                    producer.add_commit_record(epoch, &record.offsets(epoch), record.group())?;
                    producer.commit(epoch)
                })();
                guard.0.set(if result.is_ok() { COMMITTED } else { FAILED });
                result.map_err(BoxError::from)
            })
        } else {
            transactions.ensure_begun(&producer)?;
            producer.flush()?;
            producer.add_commit_record(epoch, &record.offsets(epoch), record.group())?;
            Box::new(move || {
                let guard = guard;
                let result = producer.commit(epoch);
                guard.0.set(if result.is_ok() { COMMITTED } else { FAILED });
                result.map_err(BoxError::from)
            })
        };
        transactions.pending = Some(slot);
        transactions.begun = false;
        transactions.written = 0;
        Ok(Some(commit))
    }

    fn close(&mut self) -> Result<(), BoxError> {
        let state = self.opened();
        match state.transactions {
            // Everything was flushed at the last prepare; the commits hold the producer.
            Some(_) => state.producer.poll()?,
            None => state.producer.flush()?,
        }
        Ok(())
    }
}

/// Instance `context.instance`'s transactional id (see
/// [`KafkaSinkConfig::transactional_id_prefix`]).
fn transactional_id(config: &KafkaSinkConfig, context: &SinkContext) -> String {
    let prefix = match (&config.transactional_id_prefix, &context.query_id) {
        (Some(prefix), _) => prefix.clone(),
        (None, Some(query)) => format!("rivulet-{query}-{}", context.name),
        (None, None) => {
            // No checkpoints: nothing is recovered, so a fresh id per run.
            let started = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_micros();
            format!("rivulet-{}-{}-{started}", context.name, std::process::id())
        }
    };
    format!("{prefix}-{}", context.instance)
}
