//! Kafka: topics as sources and sinks of a query (cargo feature `kafka`).
//!
//! rivulet talks to Kafka through [librdkafka](https://github.com/confluentinc/librdkafka)
//! (the [`rdkafka`] crate, built from source with its `cmake-build` feature, so a default
//! build of rivulet compiles no C). Everything here is behind the opt-in `kafka`
//! feature:
//!
//! ```toml
//! rivulet = { version = "0.1", features = ["kafka"] }
//! ```
//!
//! Building librdkafka needs `cmake` and a C compiler; librdkafka 2.12's CMake build
//! also includes `curl/curl.h` even with curl switched off, so Debian needs
//! `apt-get install cmake libcurl4-openssl-dev` (the header only: nothing links curl).
//!
//! * [`KafkaConfig`]: the client settings every Kafka source and sink shares —
//!   bootstrap servers, the group (application) id, and any librdkafka property, passed
//!   through as Spark passes its `kafka.`-prefixed options.
//! * [`source`]: the Kafka source ([`KafkaSource`], [`KafkaSourceConfig`]), added with
//!   [`QueryBuilder::read_kafka`](crate::QueryBuilder::read_kafka) (raw values) or
//!   [`read_kafka_as`](crate::QueryBuilder::read_kafka_as) (values decoded as text, CSV
//!   or JSON), emitting [`KafkaRecord`]s; [`assign`] says which instance reads which
//!   partitions, [`decode`] how values become records.
//! * [`sink`]: the [`KafkaSink`](sink::KafkaSink), at least once or exactly once through
//!   Kafka transactions committed with the engine's epochs.
//! * [`admin`]: creating (or checking) and deleting topics, blocking: a sink does not
//!   create its topic, and a repartition topic must have the partitions its readers
//!   expect.
//! * [`app`]: scale-out. A [`KafkaApplication`](app::KafkaApplication) runs in several
//!   processes that share the input partitions through Kafka's consumer-group protocol;
//!   each partition's task, with its state, moves to another process when its owner
//!   leaves or dies.
//!
//! Kafka is the only distributed part of rivulet: several processes of one application
//! share the partitions of its input topics, as Kafka Streams applications do; rivulet
//! has no network shuffle or coordinator of its own.
//!
//! ## The broker in tests
//!
//! The integration tests (`tests/kafka_*.rs`) run against a real Kafka-protocol broker
//! on loopback: [tansu](https://github.com/tansu-io/tansu) 0.6.0, a Kafka-compatible
//! broker written in Rust and installable from crates.io (Apache Kafka's own jars come
//! from Maven Central, which this project cannot reach). `.ci/kafka.sh` installs it
//! (with its `libsql` feature: a SQLite file as storage), starts it on a free loopback
//! port, exports the address as `RIVULET_KAFKA_BROKERS` and stops it afterwards. The
//! tests read that variable; without it they print that they skip, except under
//! `CI=true`, where a missing broker fails them. tansu is not Apache Kafka: a default
//! build of it stores nothing (`memory://` needs its `dynostore` feature, `sqlite://`
//! its `libsql`); with SQLite it was found to handle what the source needs (topics,
//! produce and fetch with headers and timestamps, list offsets, metadata, group offset
//! commits, a one-member consumer group, data kept across a SIGKILL restart). See the
//! repository's README ("Kafka tests") for the details and what was not exercised.
pub mod admin;
pub mod app;
pub mod assign;
pub mod config;
pub mod decode;
mod quota;
pub mod record;
pub mod sink;
pub mod source;

pub use assign::{Assignment, TopicPartition, Topics};
pub use config::{KafkaConfig, KafkaConfigError};
pub use decode::{FormatValue, RawValue, ValueDecoder};
pub use record::{KafkaRecord, TimestampKind};
pub use source::{KafkaSource, KafkaSourceConfig, KafkaSourceError, StartingOffsets};
