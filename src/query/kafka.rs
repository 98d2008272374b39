//! [`QueryBuilder::read_kafka`] and [`QueryBuilder::read_kafka_as`]: the Kafka source.

use super::QueryBuilder;
use crate::format::Format;
use crate::kafka::{FormatValue, KafkaSource, KafkaSourceConfig, RawValue, ValueDecoder};
use crate::stream::{SourceChain, Stream};
use serde::de::DeserializeOwned;

impl QueryBuilder {
    /// Reads Kafka topics as [`KafkaRecord`](crate::kafka::KafkaRecord)s with raw values
    /// (Spark's `readStream.format("kafka")`): key, value, topic, partition, offset,
    /// timestamp and headers. The source runs as
    /// [`config.instances(n)`](KafkaSourceConfig::instances) instances sharing the
    /// partitions; its checkpoint offset is the next offset of every partition, so a
    /// restarted query resumes exactly there. See [`kafka::source`](crate::kafka::source)
    /// for offsets, `max_offsets_per_trigger`, and faults.
    ///
    /// Nothing connects before [`start`](Self::start), which fails when no broker
    /// answers, a topic does not exist, or the configuration is refused.
    ///
    /// ```no_run
    /// use rivulet::kafka::{KafkaConfig, KafkaRecord, KafkaSourceConfig, StartingOffsets};
    /// use std::time::Duration;
    ///
    /// let config = KafkaSourceConfig::subscribe(KafkaConfig::new("127.0.0.1:9092"), ["clicks"])
    ///     .starting_offsets(StartingOffsets::Earliest);
    /// let mut query = rivulet::Query::builder();
    /// let pages = query
    ///     .read_kafka("clicks", config)
    ///     .with_event_time(KafkaRecord::event_time)
    ///     .with_watermark(Duration::from_secs(5))
    ///     .map(|record| String::from_utf8_lossy(&record.value.unwrap_or_default()).into_owned())
    ///     .to_memory("pages");
    /// let running = query.start()?;
    /// # running.stop()?;
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn read_kafka(
        &mut self,
        name: &str,
        config: KafkaSourceConfig,
    ) -> Stream<SourceChain<KafkaSource>> {
        self.read_kafka_with(name, config, |_| RawValue)
    }

    /// Reads Kafka topics with each value decoded as one record of `format` into `T`
    /// (text, a CSV line, a JSON object; see [`FormatValue`]). A value that does not
    /// decode is handled by the config's [`mode`](KafkaSourceConfig::mode): repaired
    /// with nulls, dropped into the quarantine, or failing the query; never dropped
    /// silently. A record type `format` cannot fill fails `start()`.
    ///
    /// ```no_run
    /// use rivulet::format::{Format, ParseMode};
    /// use rivulet::kafka::{KafkaConfig, KafkaSourceConfig};
    ///
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Reading {
    ///     pump: String,
    ///     psi: f64,
    /// }
    ///
    /// let config = KafkaSourceConfig::subscribe(KafkaConfig::new("127.0.0.1:9092"), ["pumps"])
    ///     .mode(ParseMode::DropMalformed);
    /// let mut query = rivulet::Query::builder();
    /// let low = query
    ///     .read_kafka_as::<Reading>("pumps", config, Format::JsonLines)
    ///     .filter(|record| record.value.psi < 0.5)
    ///     .map(|record| record.value.pump)
    ///     .to_memory("low");
    /// # Ok::<(), rivulet::Error>(())
    /// ```
    pub fn read_kafka_as<T>(
        &mut self,
        name: &str,
        config: KafkaSourceConfig,
        format: Format,
    ) -> Stream<SourceChain<KafkaSource<FormatValue<T>>>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let options = config.decode().clone();
        if let Err(message) = FormatValue::<T>::new(&format, &options).check() {
            self.graph
                .borrow_mut()
                .errors
                .push(format!("Kafka source `{name}`: {message}"));
        }
        self.read_kafka_with(name, config, move |_| FormatValue::new(&format, &options))
    }

    /// Reads Kafka topics with values decoded by a [`ValueDecoder`] of your own (Avro,
    /// protobuf): `make(i)` builds instance `i`'s decoder.
    pub fn read_kafka_with<D: ValueDecoder>(
        &mut self,
        name: &str,
        config: KafkaSourceConfig,
        mut make: impl FnMut(usize) -> D,
    ) -> Stream<SourceChain<KafkaSource<D>>> {
        if let Err(message) = config.check() {
            self.graph
                .borrow_mut()
                .errors
                .push(format!("Kafka source `{name}`: {message}"));
        }
        let instances = config.instance_count();
        self.source_instances(name, instances, |instance| {
            KafkaSource::new(config.clone(), make(instance))
        })
    }
}
