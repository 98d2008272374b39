//! [`KafkaConfig`]: the client settings shared by Kafka sources and sinks.

use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::fmt;

/// The settings of a Kafka client: bootstrap servers, the group (application) id, and
/// any other [librdkafka property](https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md),
/// passed through unchanged.
///
/// Spark's Kafka options map onto it: `kafka.bootstrap.servers` is
/// [`new`](Self::new)'s argument, and every other `kafka.`-prefixed option is a
/// [`set`](Self::set) (the prefix may be kept or dropped). Sources and sinks manage a
/// few properties themselves (the source its offsets, for example) and refuse them
/// here, naming the option to use instead.
///
/// ```
/// use rivulet::kafka::KafkaConfig;
///
/// let config = KafkaConfig::new("127.0.0.1:9092")
///     .application_id("sensor-alerts")
///     .set("kafka.client.id", "alerts-1")
///     .set("fetch.wait.max.ms", "10");
/// assert_eq!(config.bootstrap_servers(), "127.0.0.1:9092");
/// assert_eq!(config.group(), Some("sensor-alerts"));
/// assert_eq!(config.get("client.id"), Some("alerts-1"));
/// assert_eq!(config.get("kafka.fetch.wait.max.ms"), Some("10"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    bootstrap_servers: String,
    group_id: Option<String>,
    properties: BTreeMap<String, String>,
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Property values may hold credentials (`sasl.password`): show keys only.
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("group_id", &self.group_id)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a [`KafkaConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaConfigError {
    /// No bootstrap servers were given.
    #[error("no Kafka bootstrap servers configured (kafka.bootstrap.servers)")]
    NoBootstrapServers,
    /// A property that the source or sink sets itself.
    #[error("the Kafka property `{key}` is managed by the {owner}: {reason}")]
    Reserved {
        /// The property.
        key: String,
        /// Who manages it ("Kafka source", "Kafka sink").
        owner: &'static str,
        /// Why, and what to use instead.
        reason: &'static str,
    },
    /// librdkafka refused the configuration.
    #[error("invalid Kafka client configuration: {0}")]
    Invalid(String),
}

impl KafkaConfig {
    /// A client of the brokers `bootstrap_servers` (`host:port[,host:port...]`, Kafka's
    /// `bootstrap.servers`).
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            group_id: None,
            properties: BTreeMap::new(),
        }
    }

    /// The consumer group id (Kafka's `group.id`). Sources take their partitions by
    /// themselves and do not need one; when set, it names the group under which the
    /// source reports its progress to Kafka (see `kafka::source`).
    pub fn group_id(mut self, id: impl Into<String>) -> Self {
        self.group_id = Some(id.into());
        self
    }

    /// The application id: the group id under which the processes of one application
    /// share work, as Kafka Streams' `application.id`. The same as
    /// [`group_id`](Self::group_id).
    pub fn application_id(self, id: impl Into<String>) -> Self {
        self.group_id(id)
    }

    /// The same settings without a group id (a client that must not act for the group,
    /// as the tasks of a [`KafkaApplication`](super::app::KafkaApplication)).
    pub(crate) fn without_group(mut self) -> Self {
        self.group_id = None;
        self
    }

    /// Sets the librdkafka property `key` (a leading `kafka.`, Spark's prefix, is
    /// dropped). `bootstrap.servers` and `group.id` set those settings. Unknown keys and
    /// bad values are reported when the client is created (at `start()`).
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        let key = strip_prefix(key);
        let value = value.into();
        match key {
            "bootstrap.servers" => self.bootstrap_servers = value,
            "group.id" => self.group_id = Some(value),
            _ => {
                self.properties.insert(key.to_string(), value);
            }
        }
        self
    }

    /// The bootstrap servers.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The group (application) id, if set.
    pub fn group(&self) -> Option<&str> {
        self.group_id.as_deref()
    }

    /// The value of property `key` (with or without the `kafka.` prefix), including
    /// `bootstrap.servers` and `group.id`.
    pub fn get(&self, key: &str) -> Option<&str> {
        match strip_prefix(key) {
            "bootstrap.servers" => Some(&self.bootstrap_servers),
            "group.id" => self.group_id.as_deref(),
            key => self.properties.get(key).map(String::as_str),
        }
    }

    /// The properties set with [`set`](Self::set), other than the bootstrap servers and
    /// the group id, in key order.
    pub fn properties(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// Checks what can be checked without a broker: bootstrap servers are given.
    ///
    /// # Errors
    ///
    /// [`KafkaConfigError::NoBootstrapServers`].
    pub fn validate(&self) -> Result<(), KafkaConfigError> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(KafkaConfigError::NoBootstrapServers);
        }
        Ok(())
    }

    /// Refuses any of `reserved` (`(property, why)`) that is set: a source or sink
    /// (`owner`, as "Kafka source") that sets those properties itself calls it when it
    /// is built.
    ///
    /// # Errors
    ///
    /// [`KafkaConfigError::Reserved`] for the first one set.
    pub fn refuse(
        &self,
        owner: &'static str,
        reserved: &[(&'static str, &'static str)],
    ) -> Result<(), KafkaConfigError> {
        for (key, reason) in reserved {
            if self.get(key).is_some() {
                return Err(KafkaConfigError::Reserved {
                    key: (*key).to_string(),
                    owner,
                    reason,
                });
            }
        }
        Ok(())
    }

    /// The librdkafka configuration: `bootstrap.servers`, `group.id` (if set) and every
    /// property. Creating a client from it reports unknown keys and bad values.
    ///
    /// ```
    /// use rivulet::kafka::KafkaConfig;
    ///
    /// let client = KafkaConfig::new("127.0.0.1:9092").set("linger.ms", "0").client_config();
    /// assert_eq!(client.get("linger.ms"), Some("0"));
    /// assert_eq!(client.get("group.id"), None);
    /// ```
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        if let Some(group) = &self.group_id {
            config.set("group.id", group);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

fn strip_prefix(key: &str) -> &str {
    key.strip_prefix("kafka.").unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_prefixed_options_pass_through() {
        let config = KafkaConfig::new("a:1")
            .set("kafka.bootstrap.servers", "b:2")
            .set("kafka.group.id", "g")
            .set("kafka.security.protocol", "plaintext")
            .set("socket.timeout.ms", "100");
        assert_eq!(config.bootstrap_servers(), "b:2");
        assert_eq!(config.group(), Some("g"));
        let properties: Vec<_> = config.properties().collect();
        assert_eq!(
            properties,
            [
                ("security.protocol", "plaintext"),
                ("socket.timeout.ms", "100")
            ]
        );
        let client = config.client_config();
        assert_eq!(client.get("bootstrap.servers"), Some("b:2"));
        assert_eq!(client.get("group.id"), Some("g"));
        assert_eq!(client.get("security.protocol"), Some("plaintext"));
    }

    #[test]
    fn validation_and_reserved_keys() {
        assert_eq!(
            KafkaConfig::new(" ").validate(),
            Err(KafkaConfigError::NoBootstrapServers)
        );
        assert_eq!(KafkaConfig::new("a:1").validate(), Ok(()));
        let config = KafkaConfig::new("a:1").set("kafka.enable.auto.commit", "true");
        let error = config
            .refuse(
                "Kafka source",
                &[("enable.auto.commit", "offsets live in the checkpoint")],
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the Kafka property `enable.auto.commit` is managed by the Kafka source: offsets \
             live in the checkpoint"
        );
        assert!(config
            .refuse("Kafka source", &[("auto.offset.reset", "x")])
            .is_ok());
    }

    #[test]
    fn debug_hides_property_values() {
        let config = KafkaConfig::new("a:1").set("sasl.password", "secret");
        let shown = format!("{config:?}");
        assert!(shown.contains("sasl.password"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
