//! The progress of one epoch (one micro-batch, or one continuous epoch): Spark's
//! `StreamingQueryProgress`, with Spark's field names in its JSON where the concept is
//! the same, plus what a low-latency engine owes its users (per-operator records and
//! latency percentiles).
//!
//! The checkpoint coordinator assembles one per completed epoch, off the operator
//! threads, from what each thread reported as it passed the epoch's marker, so the
//! counts are exact per epoch: the records between two markers. The query keeps the
//! recent ones ([`Query::recent_progress`](crate::Query::recent_progress)), and
//! [listeners](crate::query::QueryListener) receive each.
//!
//! Where rivulet differs from Spark on purpose:
//!
//! * continuous epochs have progress too (Spark reports none in continuous mode); their
//!   `inputRowsPerSecond` is the epoch's rows over the time between its start and the
//!   previous epoch's, and `processedRowsPerSecond` over the time between their
//!   completions (the records of a continuous epoch flow during the interval before its
//!   marker);
//! * a query may have several sinks: `sink` sums them, `sinks` lists each;
//! * `sources[].startOffset` / `endOffset` are the sources' own checkpointed offsets,
//!   hex-encoded (absent without a checkpoint directory);
//! * `operators` and `latency` are rivulet's own.
//!
//! ```
//! use rivulet::metrics::StreamingQueryProgress;
//!
//! let json = r#"{"id":"q","runId":"r","name":"demo","timestamp":"2024-01-01T00:00:00.000Z",
//!   "batchId":3,"executionMode":"MicroBatch","numInputRows":10,"inputRowsPerSecond":5.0,
//!   "processedRowsPerSecond":100.0,"durationMs":{"triggerExecution":100},"eventTime":{},
//!   "stateOperators":[],"sources":[],"sink":{"description":"out","numOutputRows":10},
//!   "sinks":[],"operators":[],"latency":{"endToEnd":{"epoch":{"count":0,"p50":0.0,"p90":0.0,
//!   "p99":0.0,"p999":0.0,"max":0.0},"cumulative":{"count":0,"p50":0.0,"p90":0.0,"p99":0.0,
//!   "p999":0.0,"max":0.0}}}}"#;
//! let progress: StreamingQueryProgress = serde_json::from_str(json).unwrap();
//! assert_eq!(progress.batch_id, 3);
//! assert_eq!(progress.sink.num_output_rows, 10);
//! ```

use super::latency::Percentiles;
use crate::plan::OperatorKind;
use crate::trigger::ExecutionMode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The progress of one epoch (Spark's `StreamingQueryProgress`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamingQueryProgress {
    /// The query's id: the same across restarts from the same checkpoint directory.
    pub id: String,
    /// The id of this run (a new one at every start).
    pub run_id: String,
    /// The query's name.
    pub name: String,
    /// When the epoch was triggered, RFC 3339 in UTC with milliseconds.
    pub timestamp: String,
    /// The epoch (Spark's batch id).
    pub batch_id: u64,
    /// How the epoch ran.
    pub execution_mode: ExecutionMode,
    /// Records all sources emitted in the epoch.
    pub num_input_rows: u64,
    /// `num_input_rows` over the time since the previous epoch was triggered (rates are
    /// rounded to thousandths, so they survive a JSON round trip exactly).
    pub input_rows_per_second: f64,
    /// `num_input_rows` over the time the epoch took to process (see the module docs
    /// for continuous epochs).
    pub processed_rows_per_second: f64,
    /// Durations in milliseconds: `triggerExecution` (trigger to completion, commit
    /// included), `commit` (the sinks' commits), `interval` (since the previous
    /// epoch's trigger).
    pub duration_ms: BTreeMap<String, u64>,
    /// Event-time statistics of the epoch's records, as Spark shows them: `min`, `max`,
    /// `avg` (of the event times watermark generators saw) and `watermark`, RFC 3339 in
    /// UTC. Empty without event time.
    pub event_time: BTreeMap<String, String>,
    /// Every operator that reports state.
    pub state_operators: Vec<StateOperatorProgress>,
    /// Every source.
    pub sources: Vec<SourceProgress>,
    /// All sinks together (`description` lists them).
    pub sink: SinkProgress,
    /// Every sink.
    pub sinks: Vec<SinkProgress>,
    /// Every operator, in the order they were added: records in and out in the epoch,
    /// its named counters' growth, its latency.
    pub operators: Vec<OperatorEpochProgress>,
    /// End-to-end latency: source hand-off to sink.
    pub latency: LatencyProgress,
}

impl StreamingQueryProgress {
    /// The operator named `name`.
    pub fn operator(&self, name: &str) -> Option<&OperatorEpochProgress> {
        self.operators.iter().find(|op| op.name == name)
    }

    /// The state operator named `name`.
    pub fn state_operator(&self, name: &str) -> Option<&StateOperatorProgress> {
        self.state_operators
            .iter()
            .find(|op| op.operator_name == name)
    }

    /// The progress as JSON (what Spark's `json` gives).
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("progress serializes")
    }

    /// The progress as indented JSON (Spark's `prettyJson`).
    pub fn pretty_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("progress serializes")
    }
}

/// A stateful operator's state at the end of an epoch (Spark's `StateOperatorProgress`),
/// summed over its instances.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateOperatorProgress {
    /// The operator's name.
    pub operator_name: String,
    /// Rows held at the epoch's end.
    pub num_rows_total: u64,
    /// Row writes in the epoch (see
    /// [`StateMetrics::rows_updated`](crate::metrics::StateMetrics::rows_updated)).
    pub num_rows_updated: u64,
    /// Rows removed in the epoch.
    pub num_rows_removed: u64,
    /// Estimated memory of the state.
    pub memory_used_bytes: u64,
    /// Input rows (record × window pairs, for windows) dropped in the epoch because the
    /// watermark had passed them (the operator's `rows_dropped_by_watermark` counter).
    pub num_rows_dropped_by_watermark: u64,
    /// Instances of the operator.
    pub num_state_store_instances: u64,
    /// Operator-specific figures.
    pub custom_metrics: BTreeMap<String, u64>,
}

/// One source in an epoch (Spark's `SourceProgress`), summed over its instances.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceProgress {
    /// The source's name.
    pub description: String,
    /// The offset the epoch started from (the previous epoch's end), hex, per instance
    /// joined by `,`; absent without a checkpoint directory.
    pub start_offset: Option<String>,
    /// The offset after the epoch's records, in the same form.
    pub end_offset: Option<String>,
    /// Records the source emitted in the epoch.
    pub num_input_rows: u64,
    /// `num_input_rows` over the time since the previous epoch was triggered.
    pub input_rows_per_second: f64,
    /// `num_input_rows` over the epoch's processing time.
    pub processed_rows_per_second: f64,
}

/// A sink in an epoch (Spark's `SinkProgress`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkProgress {
    /// The sink's name (for [`StreamingQueryProgress::sink`], every sink's, joined by
    /// `, `).
    pub description: String,
    /// Records the sink received in the epoch.
    pub num_output_rows: u64,
}

/// One operator in an epoch, summed over its instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorEpochProgress {
    /// The operator's name.
    pub name: String,
    /// Its role.
    pub kind: OperatorKind,
    /// Instances (threads) it runs on.
    pub parallelism: usize,
    /// Records it received in the epoch (0 for sources).
    pub num_input_rows: u64,
    /// Records it emitted in the epoch (0 for sinks).
    pub num_output_rows: u64,
    /// How much each of its named counters grew in the epoch (late rows, malformed
    /// rows, …).
    pub counters: BTreeMap<String, u64>,
    /// Latency from the sources' hand-off to this operator; absent for sources and for
    /// operators no latency marker reached yet.
    pub latency: Option<LatencyWindow>,
}

/// Latency percentiles over one epoch and since the start of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyWindow {
    /// Samples of this epoch.
    pub epoch: Percentiles,
    /// Samples since the query started (this run).
    pub cumulative: Percentiles,
}

/// End-to-end latency of an epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyProgress {
    /// From a source's hand-off of a record to a sink's receipt, over every sink.
    pub end_to_end: LatencyWindow,
}
