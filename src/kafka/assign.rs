//! Which partitions a Kafka source instance reads: the topics or partitions asked for
//! ([`Topics`]), resolved against the broker's metadata, then shared among the source's
//! instances ([`Assignment`]).
//!
//! The share is static: the partitions, sorted by topic and partition, are dealt
//! round-robin to the instances of one process (instance `i` of `n` takes every `n`-th,
//! from the `i`-th). Sharing partitions among processes, through Kafka's consumer-group
//! protocol, happens above the source ([`KafkaApplication`](super::app::KafkaApplication)
//! runs a query per partition, each reading its partition through `Topics::Assign`): the
//! source reads and checkpoints whatever partitions it is given.

use std::fmt;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// Partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// What a Kafka source reads: Spark's `subscribe` (every partition of the named topics,
/// as they are when the query starts) or `assign` (exactly the named partitions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topics {
    /// Every partition of these topics (Spark's `subscribe`). Partitions added to a topic
    /// while the query runs are read from its next start, from their beginning.
    Subscribe(Vec<String>),
    /// These partitions (Spark's `assign`).
    Assign(Vec<TopicPartition>),
}

impl Topics {
    /// The topics named.
    pub fn topic_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = match self {
            Topics::Subscribe(topics) => topics.iter().map(String::as_str).collect(),
            Topics::Assign(partitions) => partitions.iter().map(|tp| tp.topic.as_str()).collect(),
        };
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The partitions asked for, given each topic's partition count from the broker
    /// (`partitions_of(topic)`: `None` if the topic does not exist), sorted.
    ///
    /// # Errors
    ///
    /// A message naming a topic that does not exist, or an assigned partition the topic
    /// does not have.
    pub fn resolve(
        &self,
        mut partitions_of: impl FnMut(&str) -> Option<i32>,
    ) -> Result<Vec<TopicPartition>, String> {
        let mut all = Vec::new();
        match self {
            Topics::Subscribe(topics) => {
                for topic in topics {
                    let count = partitions_of(topic)
                        .ok_or_else(|| format!("the topic `{topic}` does not exist"))?;
                    all.extend((0..count).map(|partition| TopicPartition::new(topic, partition)));
                }
            }
            Topics::Assign(partitions) => {
                for tp in partitions {
                    let count = partitions_of(&tp.topic)
                        .ok_or_else(|| format!("the topic `{}` does not exist", tp.topic))?;
                    if tp.partition < 0 || tp.partition >= count {
                        return Err(format!(
                            "the topic `{}` has no partition {} (it has {count})",
                            tp.topic, tp.partition
                        ));
                    }
                    all.push(tp.clone());
                }
            }
        }
        all.sort();
        all.dedup();
        Ok(all)
    }
}

/// How a source's partitions are shared among its instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Assignment {
    /// Dealt round-robin over the sorted partitions: instance `i` of `n` takes those at
    /// positions `i`, `i + n`, `i + 2n`, … An instance with none reads nothing (and
    /// waits until the query stops).
    #[default]
    Static,
}

impl Assignment {
    /// Instance `instance` of `instances`'s share of `all` (sorted).
    pub fn share(
        &self,
        all: &[TopicPartition],
        instance: usize,
        instances: usize,
    ) -> Vec<TopicPartition> {
        match self {
            Assignment::Static => all
                .iter()
                .skip(instance)
                .step_by(instances.max(1))
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(topic: &str) -> Option<i32> {
        match topic {
            "a" => Some(3),
            "b" => Some(2),
            _ => None,
        }
    }

    #[test]
    fn subscribe_takes_every_partition_and_instances_share_them() {
        let all = Topics::Subscribe(vec!["b".into(), "a".into()])
            .resolve(counts)
            .unwrap();
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["a-0", "a-1", "a-2", "b-0", "b-1"]);
        let shares: Vec<Vec<TopicPartition>> = (0..2)
            .map(|i| Assignment::Static.share(&all, i, 2))
            .collect();
        // Every partition exactly once, in some share.
        let mut union: Vec<TopicPartition> = shares.concat();
        union.sort();
        assert_eq!(union, all);
        assert_eq!(shares[0].len(), 3);
        assert_eq!(shares[1].len(), 2);
        // More instances than partitions: the last ones get nothing.
        assert!(Assignment::Static.share(&all, 6, 7).is_empty());
    }

    #[test]
    fn missing_topics_and_partitions_are_named() {
        let error = Topics::Subscribe(vec!["a".into(), "nope".into()])
            .resolve(counts)
            .unwrap_err();
        assert_eq!(error, "the topic `nope` does not exist");
        let error = Topics::Assign(vec![TopicPartition::new("b", 2)])
            .resolve(counts)
            .unwrap_err();
        assert_eq!(error, "the topic `b` has no partition 2 (it has 2)");
        let assigned = Topics::Assign(vec![
            TopicPartition::new("a", 2),
            TopicPartition::new("a", 0),
        ])
        .resolve(counts)
        .unwrap();
        assert_eq!(
            assigned,
            [TopicPartition::new("a", 0), TopicPartition::new("a", 2)]
        );
    }
}
