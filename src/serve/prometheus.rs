//! Prometheus text exposition (format 0.0.4) of a progress report.
//!
//! Every family has `# HELP` and `# TYPE` lines; every sample carries the `query`
//! label, per-operator samples `operator` and `kind` too. Totals since the start are
//! counters (`_total`), everything else gauges.

use crate::query::QueryProgress;
use std::fmt::Write;

/// The progress `progress` as Prometheus text.
///
/// ```
/// # use rivulet::Query;
/// let mut builder = Query::builder();
/// builder.from_iter("numbers", 0..5u64).to_memory("out");
/// let query = builder.start().unwrap();
/// query.await_termination().unwrap();
/// let text = rivulet::serve::prometheus_text(&query.progress());
/// assert!(text.contains("# TYPE rivulet_input_rows_total counter"));
/// assert!(text.contains(r#"rivulet_operator_records_out_total{query="query",operator="numbers",kind="Source"} 5"#));
/// ```
pub fn render(progress: &QueryProgress) -> String {
    let mut out = Exposition::default();
    let query = [("query", progress.name.as_str())];
    let gauges = [
        (
            "rivulet_active",
            "1 while any operator thread of the query runs.",
            f64::from(u8::from(progress.is_active)),
        ),
        (
            "rivulet_threads",
            "Operator threads the query started.",
            progress.threads as f64,
        ),
        (
            "rivulet_elapsed_seconds",
            "Time since the query started.",
            progress.elapsed.as_secs_f64(),
        ),
        (
            "rivulet_input_rows_per_second",
            "Rows all sources emitted per second since the previous sample.",
            progress.input_rows_per_second,
        ),
        (
            "rivulet_processed_rows_per_second",
            "Rows all sinks received per second since the previous sample.",
            progress.output_rows_per_second,
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
    out.sample_u64("rivulet_input_rows_total", &query, progress.input_rows);
    out.family(
        "rivulet_output_rows_total",
        "Rows all sinks received since the start.",
        "counter",
    );
    out.sample_u64("rivulet_output_rows_total", &query, progress.output_rows);

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
        for op in &progress.operators {
            let kind = format!("{:?}", op.kind);
            let labels = [
                ("query", progress.name.as_str()),
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
    for op in &progress.operators {
        for (counter, value) in &op.counters {
            let labels = [
                ("query", progress.name.as_str()),
                ("operator", op.name.as_str()),
                ("counter", counter.as_str()),
            ];
            out.sample_u64(name, &labels, *value);
        }
    }

    if let Some(checkpoint) = &progress.checkpoint {
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
        if let Some(epoch) = checkpoint.last_complete_epoch {
            out.family(
                "rivulet_last_complete_epoch",
                "The newest complete epoch (Spark's batch id).",
                "gauge",
            );
            out.sample_u64("rivulet_last_complete_epoch", &query, epoch);
        }
        if let Some(last) = checkpoint.recent.last() {
            out.family(
                "rivulet_epoch_duration_seconds",
                "How long the newest complete epoch took, trigger to completion.",
                "gauge",
            );
            out.sample(
                "rivulet_epoch_duration_seconds",
                &query,
                last.duration.as_secs_f64(),
            );
        }
    }
    out.text
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
