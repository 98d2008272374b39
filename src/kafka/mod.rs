//! Kafka connectors (the `kafka` cargo feature).

pub mod sink;
