//! The sink's commit record: which epoch an instance's transactions last committed,
//! kept in Kafka itself, atomically with the epoch's records.
//!
//! Each transaction also commits a consumer-group offset (Kafka's
//! `send_offsets_to_transaction`, the mechanism Kafka Streams uses for its input
//! offsets): group = the instance's transactional id, partition 0 of the output topic,
//! offset = the epoch, metadata = `rivulet-sink-v1 query=<query id>`. Kafka commits
//! the offset if and only if it commits the transaction's records. After
//! `init_transactions` (which completes or aborts whatever an earlier producer left
//! open), the group's committed offset says which epoch the instance published last.
//!
//! [`recover`] decides, from that record and the engine's restart facts, which epoch to
//! skip and whether to move the record back: a pure function, tested on its own.

use super::error::KafkaSinkError;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

/// What the commit record's metadata starts with.
const TAG: &str = "rivulet-sink-v1";

/// An instance's commit record as read from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Committed {
    /// The newest epoch published.
    pub(super) epoch: u64,
    /// The query that published it (`None`: a query without checkpoints).
    pub(super) query: Option<String>,
}

/// What an instance does about its commit record when it opens.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Recovery {
    /// The replayed epoch, already published: its records are dropped.
    pub(super) skip: Option<u64>,
    /// Move the commit record back to this epoch (before anything is written): the
    /// epochs after it run again with records planned afresh, so they are not the ones
    /// the record says were published.
    pub(super) rewind_to: Option<u64>,
}

/// The decision, from the commit record `committed`, this query's id, the first epoch of
/// this run and the replayed epoch (see [`SinkContext`](crate::sink::SinkContext)).
///
/// * A record of another query (or of none) is ignored: its epochs are not this
///   query's.
/// * The replayed epoch, if the record says it (or a later one) was published, is
///   skipped: it holds the same records as when it was published.
/// * Epochs from `first_epoch` on (after the skipped one) that the record counts as
///   published run again with other records: the record moves back, so that a crash
///   before they commit again does not make a later run skip them. What they
///   published stays in the topic (Kafka cannot take records back): at-least-once.
pub(super) fn recover(
    committed: Option<&Committed>,
    query: Option<&str>,
    first_epoch: u64,
    replayed: Option<u64>,
) -> Recovery {
    let Some(committed) = committed else {
        return Recovery::default();
    };
    if query.is_none() || committed.query.as_deref() != query {
        return Recovery::default();
    }
    let skip = replayed.filter(|epoch| committed.epoch >= *epoch);
    let fresh_from = skip.map_or(first_epoch, |epoch| epoch + 1);
    let rewind_to = (committed.epoch >= fresh_from).then(|| fresh_from - 1);
    Recovery { skip, rewind_to }
}

/// Reads and writes one instance's commit record.
pub(super) struct CommitRecord {
    /// The group (the transactional id).
    group: String,
    group_metadata: ConsumerGroupMetadata,
    topic: String,
    /// This query's id, stamped into the record.
    query: Option<String>,
}

impl std::fmt::Debug for CommitRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitRecord")
            .field("group", &self.group)
            .field("topic", &self.topic)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

impl CommitRecord {
    /// Reads the record of group `group` for `topic` (call after `init_transactions`).
    pub(super) fn open(
        brokers: &str,
        group: &str,
        topic: &str,
        query: Option<String>,
        timeout: Duration,
    ) -> Result<(Self, Option<Committed>), KafkaSinkError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .map_err(|error| KafkaSinkError::Config(Box::new(error)))?;
        let mut partitions = TopicPartitionList::new();
        partitions.add_partition(topic, 0);
        let read = consumer
            .committed_offsets(partitions, timeout)
            .map_err(|source| KafkaSinkError::Transaction {
                transactional_id: group.to_string(),
                epoch: 0,
                step: "reading the commit record",
                source: Box::new(source),
            })?;
        let committed = read
            .find_partition(topic, 0)
            .and_then(|element| match element.offset() {
                Offset::Offset(epoch) if epoch >= 0 => Some(Committed {
                    epoch: epoch as u64,
                    query: parse_metadata(element.metadata())?,
                }),
                _ => None,
            });
        let group_metadata = consumer
            .group_metadata()
            .expect("a consumer created with a group.id has group metadata");
        let record = CommitRecord {
            group: group.to_string(),
            group_metadata,
            topic: topic.to_string(),
            query,
        };
        Ok((record, committed))
    }

    /// The offsets that say `epoch` is published.
    pub(super) fn offsets(&self, epoch: u64) -> TopicPartitionList {
        let mut offsets = TopicPartitionList::new();
        let mut partition = offsets.add_partition(&self.topic, 0);
        partition
            .set_offset(Offset::Offset(epoch as i64))
            .expect("an explicit offset is valid");
        partition.set_metadata(format_metadata(self.query.as_deref()));
        offsets
    }

    /// The group's metadata, for `send_offsets_to_transaction`.
    pub(super) fn group(&self) -> &ConsumerGroupMetadata {
        &self.group_metadata
    }
}

/// The metadata string for a record of `query`.
fn format_metadata(query: Option<&str>) -> String {
    match query {
        Some(query) => format!("{TAG} query={query}"),
        None => TAG.to_string(),
    }
}

/// The query of a record's metadata: `Some(None)` for a record without query, `None`
/// for metadata that is not a rivulet commit record.
fn parse_metadata(metadata: &str) -> Option<Option<String>> {
    let rest = metadata.strip_prefix(TAG)?;
    if rest.is_empty() {
        return Some(None);
    }
    Some(Some(rest.strip_prefix(" query=")?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: u64, query: &str) -> Committed {
        Committed {
            epoch,
            query: Some(query.to_string()),
        }
    }

    #[test]
    fn metadata_round_trips() {
        for query in [None, Some("7f3a"), Some("with spaces")] {
            let text = format_metadata(query);
            assert_eq!(parse_metadata(&text), Some(query.map(str::to_string)));
        }
        assert_eq!(parse_metadata(""), None);
        assert_eq!(parse_metadata("someone else's offsets"), None);
    }

    #[test]
    fn nothing_to_do_without_a_record_of_this_query() {
        assert_eq!(recover(None, Some("q"), 5, Some(5)), Recovery::default());
        assert_eq!(
            recover(Some(&record(9, "other")), Some("q"), 5, Some(5)),
            Recovery::default()
        );
        // A query without checkpoints never skips (and is never replayed).
        let unchecked = Committed {
            epoch: 9,
            query: None,
        };
        assert_eq!(
            recover(Some(&unchecked), None, 1, None),
            Recovery::default()
        );
    }

    #[test]
    fn skips_the_replayed_epoch_only_if_published() {
        // Crash after the Kafka commit, before the engine's commit entry.
        assert_eq!(
            recover(Some(&record(5, "q")), Some("q"), 5, Some(5)),
            Recovery {
                skip: Some(5),
                rewind_to: None
            }
        );
        // Crash before the Kafka commit: the replay is written.
        assert_eq!(
            recover(Some(&record(4, "q")), Some("q"), 5, Some(5)),
            Recovery::default()
        );
    }

    #[test]
    fn rewinds_over_epochs_that_run_afresh() {
        // A continuous epoch 5 was published but the engine never recorded it: it runs
        // again with other records, so the record must not say 5 any more.
        assert_eq!(
            recover(Some(&record(5, "q")), Some("q"), 5, None),
            Recovery {
                skip: None,
                rewind_to: Some(4)
            }
        );
        // Published up to 7, the engine replays 5 (a damaged log): 5 is skipped, 6 and
        // 7 run afresh.
        assert_eq!(
            recover(Some(&record(7, "q")), Some("q"), 5, Some(5)),
            Recovery {
                skip: Some(5),
                rewind_to: Some(5)
            }
        );
        // First epoch 1 of a fresh start on a record of the same query id.
        assert_eq!(
            recover(Some(&record(3, "q")), Some("q"), 1, None),
            Recovery {
                skip: None,
                rewind_to: Some(0)
            }
        );
    }

    #[test]
    fn a_reference_of_the_rules_agrees_on_small_cases() {
        // Brute force against the rules stated plainly: an epoch is skipped iff it is the
        // replayed one and published; the record afterwards never counts an epoch that
        // will run afresh.
        for published in 0..6u64 {
            for first in 1..6u64 {
                for replayed in [None, Some(first)] {
                    let decision =
                        recover(Some(&record(published, "q")), Some("q"), first, replayed);
                    let skipped = replayed.filter(|epoch| published >= *epoch);
                    assert_eq!(decision.skip, skipped);
                    let after = decision.rewind_to.unwrap_or(published);
                    let runs_afresh_from = skipped.map_or(first, |epoch| epoch + 1);
                    assert!(after < runs_afresh_from, "{published} {first} {replayed:?}");
                    assert!(after <= published);
                    assert!(decision.rewind_to.is_none() || published >= runs_afresh_from);
                }
            }
        }
    }
}
