//! Prometheus text exposition (format 0.0.4) of a query's figures.
//!
//! Every family has `# HELP` and `# TYPE` lines; every sample carries the `query`
//! label, per-operator samples `operator` too. Totals since the start are counters
//! (`_total`, from the live counters), everything else gauges. The `rivulet_batch_*`,
//! `rivulet_state_*`, `*_latency_seconds` and watermark families describe the newest
//! completed epoch (Spark's `lastProgress`) and are absent before the first. Latencies
//! are in seconds (Prometheus' base unit; progress JSON has microseconds), as quantiles
//! over the epoch (`window="epoch"`) and since the start (`window="cumulative"`).

use crate::metrics::progress::LatencyWindow;
use crate::metrics::StreamingQueryProgress;
use crate::query::{QueryProgress, QueryStatus};
use std::fmt::Write;

/// The query's figures as Prometheus text: `live` (the counters now, as
/// [`Query::progress`](crate::Query::progress) reads them), `last` (the newest epoch's
/// report, [`Query::last_progress`](crate::Query::last_progress)) and `status`.
///
/// ```
/// # use rivulet::Query;
/// let mut builder = Query::builder();
/// builder.from_iter("numbers", 0..5u64).to_memory("out");
/// let query = builder.start().unwrap();
/// query.await_termination().unwrap();
/// let last = query.last_progress();
/// let text = rivulet::serve::prometheus_text(&query.progress(), last.as_deref(), &query.status());
/// assert!(text.contains("# TYPE rivulet_input_rows_total counter"));
/// assert!(text.contains(r#"rivulet_operator_records_out_total{query="query",operator="numbers",kind="Source"} 5"#));
/// ```
pub fn render(
    live: &QueryProgress,
    last: Option<&StreamingQueryProgress>,
    status: &QueryStatus,
) -> String {
    let mut out = Exposition::default();
    let query = [("query", live.name.as_str())];
    let gauges = [
        (
            "rivulet_active",
            "1 while any operator thread of the query runs.",
            f64::from(u8::from(live.is_active)),
        ),
        (
            "rivulet_trigger_active",
            "1 while an epoch is running (triggered, not complete).",
            f64::from(u8::from(status.is_trigger_active)),
        ),
        (
            "rivulet_threads",
            "Operator threads the query started.",
            live.threads as f64,
        ),
        (
            "rivulet_elapsed_seconds",
            "Time since the query started.",
            live.elapsed.as_secs_f64(),
        ),
    ];
    for (name, help, value) in gauges {
        out.family(name, help, "gauge");
        out.sample(name, &query, value);
    }
    out.family(
        "rivulet_input_rows_total",
        "Rows all sources emitted since the start.",
        "counter",
    );
    out.sample_u64("rivulet_input_rows_total", &query, live.input_rows);
    out.family(
        "rivulet_output_rows_total",
        "Rows all sinks received since the start.",
        "counter",
    );
    out.sample_u64("rivulet_output_rows_total", &query, live.output_rows);

    let per_operator: [PerOperator; 3] = [
        (
            "rivulet_operator_records_in_total",
            "Records the operator received, summed over its instances.",
            "counter",
            |op| op.records_in,
        ),
        (
            "rivulet_operator_records_out_total",
            "Records the operator emitted, summed over its instances.",
            "counter",
            |op| op.records_out,
        ),
        (
            "rivulet_operator_parallelism",
            "Instances (threads) of the operator.",
            "gauge",
            |op| op.parallelism as u64,
        ),
    ];
    for (name, help, kind, value) in per_operator {
        out.family(name, help, kind);
        for op in &live.operators {
            let kind = format!("{:?}", op.kind);
            let labels = [
                ("query", live.name.as_str()),
                ("operator", op.name.as_str()),
                ("kind", kind.as_str()),
            ];
            out.sample_u64(name, &labels, value(op));
        }
    }
    let name = "rivulet_operator_counter_total";
    out.family(
        name,
        "The operator's named counters (late rows, malformed rows, ...).",
        "counter",
    );
    for op in &live.operators {
        for (counter, value) in &op.counters {
            let labels = [
                ("query", live.name.as_str()),
                ("operator", op.name.as_str()),
                ("counter", counter.as_str()),
            ];
            out.sample_u64(name, &labels, *value);
        }
    }
    if let Some(checkpoint) = &live.checkpoint {
        out.family(
            "rivulet_epochs_triggered_total",
            "Epochs (micro-batches) triggered since the start.",
            "counter",
        );
        out.sample_u64(
            "rivulet_epochs_triggered_total",
            &query,
            checkpoint.epochs_triggered,
        );
        out.family(
            "rivulet_checkpoint_bytes_written_total",
            "Bytes written to the checkpoint log since the start.",
            "counter",
        );
        out.sample_u64(
            "rivulet_checkpoint_bytes_written_total",
            &query,
            checkpoint.bytes_written,
        );
    }
    if let Some(last) = last {
        render_epoch(&mut out, &live.name, last);
    }
    out.text
}

/// The families of the newest epoch's report.
fn render_epoch(out: &mut Exposition, query_name: &str, last: &StreamingQueryProgress) {
    let query = [("query", query_name)];
    let gauges = [
        (
            "rivulet_batch_id",
            "The newest completed epoch (Spark's batchId).",
            last.batch_id as f64,
        ),
        (
            "rivulet_batch_input_rows",
            "Rows the sources emitted in the newest epoch (numInputRows).",
            last.num_input_rows as f64,
        ),
        (
            "rivulet_batch_input_rows_per_second",
            "inputRowsPerSecond of the newest epoch.",
            last.input_rows_per_second,
        ),
        (
            "rivulet_batch_processed_rows_per_second",
            "processedRowsPerSecond of the newest epoch.",
            last.processed_rows_per_second,
        ),
        (
            "rivulet_batch_output_rows",
            "Rows the sinks received in the newest epoch.",
            last.sink.num_output_rows as f64,
        ),
    ];
    for (name, help, value) in gauges {
        out.family(name, help, "gauge");
        out.sample(name, &query, value);
    }
    let name = "rivulet_batch_duration_seconds";
    out.family(
        name,
        "durationMs of the newest epoch, by phase (triggerExecution, commit, interval).",
        "gauge",
    );
    for (phase, ms) in &last.duration_ms {
        out.sample(
            name,
            &[("query", query_name), ("phase", phase.as_str())],
            *ms as f64 / 1e3,
        );
    }
    if let Some(lag) = watermark_lag_seconds(last) {
        let name = "rivulet_watermark_lag_seconds";
        out.family(
            name,
            "The epoch's trigger time minus the query's watermark (eventTime.watermark).",
            "gauge",
        );
        out.sample(name, &query, lag);
    }
    type StateFigure = (
        &'static str,
        &'static str,
        fn(&crate::metrics::progress::StateOperatorProgress) -> u64,
    );
    let state: [StateFigure; 4] = [
        (
            "rivulet_state_rows",
            "Rows in the operator's state at the end of the newest epoch (numRowsTotal).",
            |op| op.num_rows_total,
        ),
        (
            "rivulet_state_rows_updated",
            "Rows written in the newest epoch (numRowsUpdated).",
            |op| op.num_rows_updated,
        ),
        (
            "rivulet_state_memory_bytes",
            "Estimated memory of the operator's state (memoryUsedBytes).",
            |op| op.memory_used_bytes,
        ),
        (
            "rivulet_state_rows_dropped_by_watermark",
            "Input rows dropped in the newest epoch as late (numRowsDroppedByWatermark).",
            |op| op.num_rows_dropped_by_watermark,
        ),
    ];
    if !last.state_operators.is_empty() {
        for (name, help, value) in state {
            out.family(name, help, "gauge");
            for op in &last.state_operators {
                let labels = [
                    ("query", query_name),
                    ("operator", op.operator_name.as_str()),
                ];
                out.sample_u64(name, &labels, value(op));
            }
        }
    }
    let name = "rivulet_operator_latency_seconds";
    out.family(
        name,
        "Latency from the sources' hand-off to the operator, by quantile, over the newest \
         epoch and since the start.",
        "gauge",
    );
    for op in &last.operators {
        if let Some(latency) = &op.latency {
            latency_samples(
                out,
                name,
                &[("query", query_name), ("operator", &op.name)],
                latency,
            );
        }
    }
    let name = "rivulet_end_to_end_latency_seconds";
    out.family(
        name,
        "Latency from a source's hand-off to a sink, by quantile, over the newest epoch \
         and since the start.",
        "gauge",
    );
    latency_samples(out, name, &query, &last.latency.end_to_end);
}

/// One sample per quantile and window (epoch, cumulative), in seconds; none for a
/// window without samples.
fn latency_samples(
    out: &mut Exposition,
    name: &str,
    labels: &[(&str, &str)],
    latency: &LatencyWindow,
) {
    for (window, percentiles) in [
        ("epoch", &latency.epoch),
        ("cumulative", &latency.cumulative),
    ] {
        if percentiles.count == 0 {
            continue;
        }
        for (quantile, micros) in [
            ("0.5", percentiles.p50),
            ("0.9", percentiles.p90),
            ("0.99", percentiles.p99),
            ("0.999", percentiles.p999),
            ("1", percentiles.max),
        ] {
            let mut all = labels.to_vec();
            all.push(("window", window));
            all.push(("quantile", quantile));
            out.sample(name, &all, micros / 1e6);
        }
    }
}

/// The epoch's trigger time minus the watermark, if the query has one.
pub(crate) fn watermark_lag_seconds(progress: &StreamingQueryProgress) -> Option<f64> {
    let watermark: jiff::Timestamp = progress.event_time.get("watermark")?.parse().ok()?;
    let at: jiff::Timestamp = progress.timestamp.parse().ok()?;
    Some(at.duration_since(watermark).as_secs_f64())
}

/// A per-operator family: name, help, type and how to read its value.
type PerOperator = (
    &'static str,
    &'static str,
    &'static str,
    fn(&crate::query::OperatorProgress) -> u64,
);

/// Text being written, family by family.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn labels(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.text.push_str(name);
        self.text.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "{label}=\"{}\"", escape_label(value));
        }
        self.text.push_str("} ");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.labels(name, labels);
        let _ = writeln!(self.text, "{}", format_float(value));
    }

    fn sample_u64(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.labels(name, labels);
        let _ = writeln!(self.text, "{value}");
    }
}

/// A float as Prometheus writes it (`NaN`, `+Inf`, `-Inf` for the special values).
fn format_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{value}")
    }
}

/// A label value: `\`, `"` and newlines escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Help text: `\` and newlines escaped.
fn escape_help(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(2.5), "2.5");
    }
}
