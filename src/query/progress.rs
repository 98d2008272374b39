//! Progress reports: what a running query has done so far (Spark's
//! `StreamingQueryProgress`, for a continuous engine).

use crate::checkpoint::coordinator::CheckpointShared;
use crate::checkpoint::CheckpointStats;
use crate::metrics::ProgressHistory;
use crate::plan::OperatorInfo;
pub use crate::plan::OperatorKind;
use crate::runtime::RunControl;
use crate::sync::Arc;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counters of one operator, summed over its instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// late rows, malformed rows, `side_output_discarded`, …) and gauges
    /// ([`Context::gauge`](crate::operator::Context::gauge): a join's `state_rows`), each
    /// summed over its instances.
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// The totals and time of a previous report, from which the next one's rates are taken.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LastReport {
    at: Instant,
    input_rows: u64,
    output_rows: u64,
}

impl LastReport {
    /// Rates of the first report are taken over the time since `start`.
    pub(crate) fn starting_at(start: Instant) -> Self {
        LastReport {
            at: start,
            input_rows: 0,
            output_rows: 0,
        }
    }
}

/// What progress reports are read from: the query handle and its metrics server each
/// hold one (the server reads off the operator threads, on its own thread).
#[derive(Debug)]
pub(crate) struct ProgressReader {
    pub(crate) name: String,
    pub(crate) control: Arc<RunControl>,
    pub(crate) threads: usize,
    pub(crate) operators: Vec<OperatorInfo>,
    pub(crate) started: Instant,
    pub(crate) checkpoint: Option<Arc<Mutex<CheckpointStats>>>,
    /// The plan's edges between operators, `(from, to)` by name.
    pub(crate) edges: Vec<(String, String)>,
    /// The epoch clock, if the query has epochs.
    pub(crate) shared: Option<Arc<CheckpointShared>>,
    /// The progress of recent epochs.
    pub(crate) history: ProgressHistory,
}

impl ProgressReader {
    /// The query's progress now; rates over the time since `last`, which becomes now.
    pub(crate) fn read(&self, last: &mut LastReport) -> QueryProgress {
        let operators: Vec<OperatorProgress> = self
            .operators
            .iter()
            .map(|op| {
                let instances: Vec<(u64, u64)> = op
                    .instances
                    .iter()
                    .map(|m| (m.records_in.get(), m.records_out.get()))
                    .collect();
                let mut counters = std::collections::BTreeMap::new();
                for metrics in &op.instances {
                    for (name, value) in metrics.named.values() {
                        *counters.entry(name.to_string()).or_insert(0) += value;
                    }
                }
                OperatorProgress {
                    name: op.name.to_string(),
                    kind: op.kind,
                    parallelism: instances.len(),
                    records_in: instances.iter().map(|i| i.0).sum(),
                    records_out: instances.iter().map(|i| i.1).sum(),
                    instances,
                    counters,
                }
            })
            .collect();
        let input_rows: u64 = operators
            .iter()
            .filter(|op| op.kind == OperatorKind::Source)
            .map(|op| op.records_out)
            .sum();
        let output_rows: u64 = operators
            .iter()
            .filter(|op| op.kind == OperatorKind::Sink)
            .map(|op| op.records_in)
            .sum();
        let now = Instant::now();
        let ended = self.control.ended_at();
        // Rates over the time the query ran since the previous report; a report after
        // the end with nothing new since (the stream ended before it) shows the whole
        // run's averages rather than zero.
        let until = ended.unwrap_or(now).max(last.at);
        let moved = input_rows > last.input_rows || output_rows > last.output_rows;
        let (since, base) = match ended {
            Some(end) if !moved || end <= last.at => (self.started, (0, 0)),
            _ => (last.at, (last.input_rows, last.output_rows)),
        };
        let seconds = until.duration_since(since).as_secs_f64().max(1e-9);
        let input_rate = input_rows.saturating_sub(base.0) as f64 / seconds;
        let output_rate = output_rows.saturating_sub(base.1) as f64 / seconds;
        *last = LastReport {
            at: now.max(until),
            input_rows,
            output_rows,
        };
        QueryProgress {
            name: self.name.clone(),
            elapsed: now.duration_since(self.started),
            is_active: self.control.running_threads() > 0,
            threads: self.threads,
            input_rows,
            output_rows,
            input_rows_per_second: input_rate,
            output_rows_per_second: output_rate,
            operators,
            checkpoint: self
                .checkpoint
                .as_ref()
                .map(|checkpoint| checkpoint.lock().unwrap().clone()),
        }
    }

    /// What the query is doing now (Spark's `status`).
    pub(crate) fn status(&self) -> QueryStatus {
        let active = self.control.running_threads() > 0;
        let trigger_active = self.shared.as_ref().is_some_and(|shared| {
            let clock = &shared.clock;
            active && clock.current() > clock.last_complete()
        });
        let message = match self.control.failure() {
            Some(error) => format!("Terminated with exception: {error}"),
            None if !active => "Stopped".to_string(),
            None if self.shared.is_none() => "Processing records (no epochs)".to_string(),
            None if trigger_active => "Processing new data".to_string(),
            None => "Waiting for next trigger".to_string(),
        };
        QueryStatus {
            message,
            is_data_available: self
                .history
                .last()
                .is_some_and(|progress| progress.num_input_rows > 0),
            is_trigger_active: trigger_active,
        }
    }
}
