//! Counters kept by operator threads and read by progress reports.

pub mod counters;

pub use counters::{Counter, NamedCounters, OperatorMetrics};
