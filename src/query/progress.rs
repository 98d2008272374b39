//! Progress reports: what a running query has done so far (Spark's
//! `StreamingQueryProgress`, for a continuous engine).

use crate::checkpoint::CheckpointStats;
pub use crate::plan::OperatorKind;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// Counters of one operator, summed over its instances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorProgress {
    /// The operator's name (unique in the query).
    pub name: String,
    /// Its role.
    pub kind: OperatorKind,
    /// Number of instances (threads) it runs on.
    pub parallelism: usize,
    /// Records received (0 for sources).
    pub records_in: u64,
    /// Records emitted (0 for sinks).
    pub records_out: u64,
    /// `(records_in, records_out)` of each instance.
    pub instances: Vec<(u64, u64)>,
    /// The operator's named counters ([`Context::count`](crate::operator::Context::count):
    /// late rows, malformed rows, `side_output_discarded`, …), summed over its instances.
    pub counters: std::collections::BTreeMap<String, u64>,
}

/// What a query is doing now (Spark's `StreamingQueryStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryStatus {
    /// In words: `Waiting for next trigger`, `Processing new data`, `Stopped`,
    /// `Terminated with exception: …`.
    pub message: String,
    /// Whether the newest completed epoch had input.
    pub is_data_available: bool,
    /// Whether an epoch is running (triggered, not complete).
    pub is_trigger_active: bool,
}

/// A snapshot of a query's progress. Counters are read without stopping the query, so
/// operators may be a few records apart. This is the live view of the counters at any
/// moment; [`Query::last_progress`](crate::Query::last_progress) and
/// [`Query::recent_progress`](crate::Query::recent_progress) give exact figures per
/// completed epoch in Spark's format.
///
/// `input_rows_per_second` and `output_rows_per_second` are measured over the time
/// since the previous report; once the query ended, over the time it ran since then,
/// and a report with nothing new after the end shows the whole run's averages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryProgress {
    /// The query's name.
    pub name: String,
    /// Time since `start()`.
    pub elapsed: Duration,
    /// `true` while any operator thread runs.
    pub is_active: bool,
    /// Operator threads started.
    pub threads: usize,
    /// Records produced by all sources.
    pub input_rows: u64,
    /// Records received by all sinks.
    pub output_rows: u64,
    /// `input_rows` per second over the interval since the previous report (or since
    /// the start, for the first).
    pub input_rows_per_second: f64,
    /// `output_rows` per second over the same interval.
    pub output_rows_per_second: f64,
    /// Every operator, in the order they were added.
    pub operators: Vec<OperatorProgress>,
    /// Checkpoint progress, if checkpointing is on.
    pub checkpoint: Option<CheckpointStats>,
}

impl QueryProgress {
    /// The operator named `name`.
    pub fn operator(&self, name: &str) -> Option<&OperatorProgress> {
        self.operators.iter().find(|op| op.name == name)
    }
}

impl fmt::Display for QueryProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "query `{}`: {} after {:.3}s on {} threads; {} rows in ({:.0}/s), {} rows out ({:.0}/s)",
            self.name,
            if self.is_active { "running" } else { "ended" },
            self.elapsed.as_secs_f64(),
            self.threads,
            self.input_rows,
            self.input_rows_per_second,
            self.output_rows,
            self.output_rows_per_second,
        )?;
        writeln!(
            f,
            "  {:<24} {:<15} {:>4} {:>14} {:>14}",
            "operator", "kind", "par", "records in", "records out"
        )?;
        if let Some(checkpoint) = &self.checkpoint {
            let last = checkpoint.recent.last();
            writeln!(
                f,
                "  trigger: {}; epochs: {} triggered, last complete {:?}{}{}",
                checkpoint.trigger,
                checkpoint.epochs_triggered,
                checkpoint.last_complete_epoch,
                last.map(|epoch| format!(" ({}, took {:?})", epoch.mode, epoch.duration))
                    .unwrap_or_default(),
                if checkpoint.persistent {
                    format!(", {} bytes checkpointed", checkpoint.bytes_written)
                } else {
                    String::new()
                }
            )?;
        }
        for op in &self.operators {
            writeln!(
                f,
                "  {:<24} {:<15} {:>4} {:>14} {:>14}",
                op.name,
                format!("{:?}", op.kind),
                op.parallelism,
                op.records_in,
                op.records_out
            )?;
        }
        Ok(())
    }
}
