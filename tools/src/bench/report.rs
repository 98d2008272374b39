//! Summaries of a benchmark: percentiles per run, medians over runs, ratios to the raw
//! ring, the side-by-side table and the checks against the bars.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt::Write as _;

/// Percentiles and totals of one latency histogram (values in nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Stats {
    /// Median.
    pub(crate) p50_ns: f64,
    /// 90th percentile.
    pub(crate) p90_ns: f64,
    /// 99th percentile.
    pub(crate) p99_ns: f64,
    /// 99.9th percentile.
    pub(crate) p99_9_ns: f64,
    /// 99.99th percentile.
    pub(crate) p99_99_ns: f64,
    /// Largest value.
    pub(crate) max_ns: f64,
    /// Mean.
    pub(crate) mean_ns: f64,
    /// Values recorded.
    pub(crate) count: u64,
    /// Measured records per second arriving at the sink.
    pub(crate) achieved_rate: f64,
}

impl Stats {
    /// The statistics of `histogram`, with `achieved_rate` as measured by the recorder.
    pub(crate) fn of(histogram: &Histogram<u64>, achieved_rate: f64) -> Self {
        let at = |q: f64| {
            if histogram.is_empty() {
                0.0
            } else {
                histogram.value_at_quantile(q) as f64
            }
        };
        Stats {
            p50_ns: at(0.5),
            p90_ns: at(0.9),
            p99_ns: at(0.99),
            p99_9_ns: at(0.999),
            p99_99_ns: at(0.9999),
            max_ns: if histogram.is_empty() {
                0.0
            } else {
                histogram.max() as f64
            },
            mean_ns: if histogram.is_empty() {
                0.0
            } else {
                histogram.mean()
            },
            count: histogram.len(),
            achieved_rate,
        }
    }

    /// The median of each field over `runs` (each field on its own).
    ///
    /// # Panics
    ///
    /// If `runs` is empty.
    pub(crate) fn median(runs: &[Stats]) -> Stats {
        let field = |get: fn(&Stats) -> f64| median(&runs.iter().map(get).collect::<Vec<_>>());
        Stats {
            p50_ns: field(|s| s.p50_ns),
            p90_ns: field(|s| s.p90_ns),
            p99_ns: field(|s| s.p99_ns),
            p99_9_ns: field(|s| s.p99_9_ns),
            p99_99_ns: field(|s| s.p99_99_ns),
            max_ns: field(|s| s.max_ns),
            mean_ns: field(|s| s.mean_ns),
            count: field(|s| s.count as f64).round() as u64,
            achieved_rate: field(|s| s.achieved_rate),
        }
    }

    /// The latency fields in [`LATENCY_ROWS`] order.
    fn latencies(&self) -> [f64; 7] {
        [
            self.p50_ns,
            self.p90_ns,
            self.p99_ns,
            self.p99_9_ns,
            self.p99_99_ns,
            self.max_ns,
            self.mean_ns,
        ]
    }
}

/// The latency rows of the table.
const LATENCY_ROWS: [&str; 7] = ["p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"];

/// The median of `values` (the mean of the middle two for an even count).
///
/// # Panics
///
/// If `values` is empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "the median of nothing");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// Latency ratios of a system to the raw-ring baseline (medians over medians).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Ratios {
    /// p50 / raw p50.
    pub(crate) p50: f64,
    /// p90 / raw p90.
    pub(crate) p90: f64,
    /// p99 / raw p99.
    pub(crate) p99: f64,
    /// p99.9 / raw p99.9.
    pub(crate) p99_9: f64,
    /// p99.99 / raw p99.99.
    pub(crate) p99_99: f64,
    /// max / raw max.
    pub(crate) max: f64,
    /// mean / raw mean.
    pub(crate) mean: f64,
}

impl Ratios {
    /// `system` relative to `raw`.
    pub(crate) fn of(system: &Stats, raw: &Stats) -> Self {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        Ratios {
            p50: ratio(system.p50_ns, raw.p50_ns),
            p90: ratio(system.p90_ns, raw.p90_ns),
            p99: ratio(system.p99_ns, raw.p99_ns),
            p99_9: ratio(system.p99_9_ns, raw.p99_9_ns),
            p99_99: ratio(system.p99_99_ns, raw.p99_99_ns),
            max: ratio(system.max_ns, raw.max_ns),
            mean: ratio(system.mean_ns, raw.mean_ns),
        }
    }

    fn in_table_order(&self) -> [f64; 7] {
        [
            self.p50,
            self.p90,
            self.p99,
            self.p99_9,
            self.p99_99,
            self.max,
            self.mean,
        ]
    }
}

/// One run of one system.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunStats {
    /// From the scheduled send time (coordinated-omission corrected).
    pub(crate) corrected: Stats,
    /// From the actual send time.
    pub(crate) uncorrected: Stats,
    /// CPU the rest of the machine used meanwhile.
    pub(crate) interference: super::interference::Interference,
}

/// Everything measured for one system.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SystemReport {
    /// `rivulet`, `raw-rtrb`, `crossbeam`, `mpsc`.
    pub(crate) name: String,
    /// Threads it ran on.
    pub(crate) threads: usize,
    /// Where they ran (`cores 0,1`, `none`).
    pub(crate) pinning: String,
    /// How idle threads waited.
    pub(crate) wait: String,
    /// Medians over the runs, corrected.
    pub(crate) corrected: Stats,
    /// Medians over the runs, uncorrected.
    pub(crate) uncorrected: Stats,
    /// Median over the runs of the CPU share other processes and steal took.
    pub(crate) interference: f64,
    /// Corrected medians relative to the raw ring's (absent without that baseline).
    pub(crate) ratio_to_raw: Option<Ratios>,
    /// Every run.
    pub(crate) runs: Vec<RunStats>,
}

impl SystemReport {
    /// Builds the report from the runs' stats (at least one).
    pub(crate) fn new(
        name: &str,
        threads: usize,
        pinning: String,
        wait: String,
        runs: Vec<RunStats>,
    ) -> Self {
        let corrected = Stats::median(&runs.iter().map(|r| r.corrected).collect::<Vec<_>>());
        let uncorrected = Stats::median(&runs.iter().map(|r| r.uncorrected).collect::<Vec<_>>());
        let interference = median(
            &runs
                .iter()
                .map(|r| r.interference.total())
                .collect::<Vec<_>>(),
        );
        SystemReport {
            name: name.to_string(),
            threads,
            pinning,
            wait,
            corrected,
            uncorrected,
            interference,
            ratio_to_raw: None,
            runs,
        }
    }
}

/// Fills in every system's ratios to the system named `raw`, if it is present.
pub(crate) fn add_ratios(systems: &mut [SystemReport], raw: &str) {
    let Some(floor) = systems.iter().find(|s| s.name == raw).map(|s| s.corrected) else {
        return;
    };
    for system in systems {
        system.ratio_to_raw = Some(Ratios::of(&system.corrected, &floor));
    }
}

/// Formats nanoseconds as microseconds with about three significant digits.
pub(crate) fn format_us(ns: f64) -> String {
    let us = ns / 1000.0;
    if !us.is_finite() {
        "-".to_string()
    } else if us < 10.0 {
        format!("{us:.3} µs")
    } else if us < 100.0 {
        format!("{us:.2} µs")
    } else if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{us:.0} µs")
    }
}

/// Formats a ratio: `1.25×`, `<0.01×`, `150×`.
pub(crate) fn format_ratio(ratio: f64) -> String {
    if !ratio.is_finite() {
        "-".to_string()
    } else if ratio < 0.01 {
        "<0.01×".to_string()
    } else if ratio >= 100.0 {
        format!("{ratio:.0}×")
    } else {
        format!("{ratio:.2}×")
    }
}

/// Formats a rate in records per second (`1.00 M/s`, `99.9 k/s`).
pub(crate) fn format_rate(rate: f64) -> String {
    // 999,987/s reads as 1.000 M/s, not 1000.0 k/s.
    if rate >= 999_500.0 {
        format!("{:.3} M/s", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1} k/s", rate / 1e3)
    } else {
        format!("{rate:.0} /s")
    }
}

/// Characters `text` takes on a terminal (µ and × are one each).
fn width(text: &str) -> usize {
    text.chars().count()
}

/// Renders rows of cells as columns: the first left-aligned, the rest right-aligned.
fn columns(rows: &[Vec<String>]) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| width(cell))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[c] - width(cell));
            if c == 0 {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str("   ");
                line.push_str(&pad);
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The side-by-side table: one column per system, latency rows with the ratio to the
/// raw ring, then count, rate, threads, pinning and wait policy; then the uncorrected
/// latencies for contrast.
pub(crate) fn table(systems: &[SystemReport]) -> String {
    let header = |title: &str| -> Vec<String> {
        std::iter::once(title.to_string())
            .chain(systems.iter().map(|s| s.name.clone()))
            .collect()
    };
    let mut rows = vec![header("corrected (from scheduled time)")];
    for (i, label) in LATENCY_ROWS.iter().enumerate() {
        let mut row = vec![label.to_string()];
        for system in systems {
            let value = format_us(system.corrected.latencies()[i]);
            row.push(match system.ratio_to_raw {
                Some(ratio) => format!("{value} ({})", format_ratio(ratio.in_table_order()[i])),
                None => value,
            });
        }
        rows.push(row);
    }
    type Cell = fn(&SystemReport) -> String;
    let info: [(&str, Cell); 6] = [
        ("count", |s| s.corrected.count.to_string()),
        ("achieved rate", |s| format_rate(s.corrected.achieved_rate)),
        ("threads", |s| s.threads.to_string()),
        ("pinning", |s| s.pinning.clone()),
        ("wait policy", |s| s.wait.clone()),
        ("others' CPU", |s| format!("{:.1}%", 100.0 * s.interference)),
    ];
    for (label, cell) in info {
        rows.push(
            std::iter::once(label.to_string())
                .chain(systems.iter().map(cell))
                .collect(),
        );
    }
    rows.push(Vec::new());
    rows.push(header("uncorrected (from actual send)"));
    for (i, label) in LATENCY_ROWS.iter().enumerate() {
        if matches!(*label, "p90" | "p99.99") {
            continue;
        }
        let mut row = vec![label.to_string()];
        for system in systems {
            row.push(format_us(system.uncorrected.latencies()[i]));
        }
        rows.push(row);
    }
    columns(&rows)
}

/// The corrected medians as a Markdown table, one row per system (for BENCHMARKS.md).
pub(crate) fn markdown(systems: &[SystemReport]) -> String {
    let mut out = String::from(
        "| system | p50 | p90 | p99 | p99.9 | p99.99 | max | mean | rate | threads | pinning | wait | others' CPU |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for system in systems {
        let _ = write!(out, "| {} |", system.name);
        for (i, value) in system.corrected.latencies().iter().enumerate() {
            let cell = format_us(*value);
            let _ = match system.ratio_to_raw {
                Some(ratio) => write!(
                    out,
                    " {cell} ({}) |",
                    format_ratio(ratio.in_table_order()[i])
                ),
                None => write!(out, " {cell} |"),
            };
        }
        let _ = writeln!(
            out,
            " {} | {} | {} | {} | {:.1}% |",
            format_rate(system.corrected.achieved_rate),
            system.threads,
            system.pinning,
            system.wait,
            100.0 * system.interference
        );
    }
    out
}

/// One of the bars, checked against this run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BarCheck {
    /// What the bar says.
    pub(crate) bar: String,
    /// The measured figure it is judged on.
    pub(crate) measured: String,
    /// Whether it holds.
    pub(crate) met: bool,
}

/// Checks the latency bars for `engine` (by name) against the baselines present.
pub(crate) fn check_bars(systems: &[SystemReport], engine: &str) -> Vec<BarCheck> {
    let Some(engine) = systems.iter().find(|s| s.name == engine) else {
        return Vec::new();
    };
    let mut checks = Vec::new();
    if let Some(ratio) = engine.ratio_to_raw {
        for (bar, value, limit) in [
            ("p50 ≤ 2× raw-rtrb p50", ratio.p50, 2.0),
            ("p99 ≤ 2× raw-rtrb p99", ratio.p99, 2.0),
            ("p99.9 ≤ 3× raw-rtrb p99.9", ratio.p99_9, 3.0),
        ] {
            checks.push(BarCheck {
                bar: bar.to_string(),
                measured: format_ratio(value),
                met: value <= limit,
            });
        }
    }
    for other in systems
        .iter()
        .filter(|s| s.name == "crossbeam" || s.name == "mpsc")
    {
        checks.push(BarCheck {
            bar: format!("p99 below {}'s", other.name),
            measured: format!(
                "{} vs {}",
                format_us(engine.corrected.p99_ns),
                format_us(other.corrected.p99_ns)
            ),
            met: engine.corrected.p99_ns < other.corrected.p99_ns,
        });
    }
    checks
}

/// The bar checks as lines of text.
pub(crate) fn bars_text(checks: &[BarCheck]) -> String {
    let mut out = String::new();
    for check in checks {
        let _ = writeln!(
            out,
            "  {} {:<28} {}",
            if check.met { "met   " } else { "MISSED" },
            check.bar,
            check.measured
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::workload::new_histogram;
    use super::*;

    fn stats(p50: f64, p99: f64) -> Stats {
        Stats {
            p50_ns: p50,
            p90_ns: p50 * 2.0,
            p99_ns: p99,
            p99_9_ns: p99 * 10.0,
            p99_99_ns: p99 * 20.0,
            max_ns: p99 * 100.0,
            mean_ns: p50 * 1.5,
            count: 1000,
            achieved_rate: 1e6,
        }
    }

    fn system(name: &str, p50: f64, p99: f64) -> SystemReport {
        let run = RunStats {
            corrected: stats(p50, p99),
            uncorrected: stats(p50 / 2.0, p99 / 2.0),
            interference: Default::default(),
        };
        SystemReport::new(name, 2, "cores 0,1".into(), "spin".into(), vec![run])
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        let m = Stats::median(&[
            stats(400.0, 10_000.0),
            stats(500.0, 9_000.0),
            stats(450.0, 20_000.0),
        ]);
        assert_eq!(m.p50_ns, 450.0);
        assert_eq!(m.p99_ns, 10_000.0);
        assert_eq!(m.count, 1000);
    }

    #[test]
    fn stats_read_the_histogram() {
        let mut histogram = new_histogram();
        for value in 1..=1000u64 {
            histogram.record(value * 100).unwrap();
        }
        let s = Stats::of(&histogram, 5.0);
        assert!((s.p50_ns - 50_000.0).abs() <= 50.0, "{}", s.p50_ns);
        assert!((s.p99_ns - 99_000.0).abs() <= 100.0, "{}", s.p99_ns);
        assert!((s.max_ns - 100_000.0).abs() <= 100.0);
        assert_eq!(s.count, 1000);
        assert_eq!(s.achieved_rate, 5.0);
        let empty = Stats::of(&new_histogram(), 0.0);
        assert_eq!((empty.p50_ns, empty.max_ns, empty.count), (0.0, 0.0, 0));
    }

    #[test]
    fn table_puts_systems_side_by_side_with_ratios() {
        let mut systems = vec![
            system("rivulet", 600.0, 20_000.0),
            system("raw-rtrb", 400.0, 16_000.0),
            system("crossbeam", 3_000.0, 60_000.0),
        ];
        add_ratios(&mut systems, "raw-rtrb");
        let text = table(&systems);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("corrected (from scheduled time)"));
        let names: Vec<&str> = lines[0].split_whitespace().skip(4).collect();
        assert_eq!(names, ["rivulet", "raw-rtrb", "crossbeam"]);
        let p50 = lines.iter().find(|l| l.starts_with("p50")).unwrap();
        assert!(p50.contains("0.600 µs (1.50×)"), "{p50}");
        assert!(p50.contains("0.400 µs (1.00×)"), "{p50}");
        assert!(p50.contains("3.000 µs (7.50×)"), "{p50}");
        let p99 = lines.iter().find(|l| l.starts_with("p99 ")).unwrap();
        assert!(p99.contains("20.00 µs (1.25×)"), "{p99}");
        for label in [
            "p90",
            "p99.9",
            "p99.99",
            "max",
            "mean",
            "count",
            "achieved rate",
            "threads",
            "pinning",
            "wait policy",
        ] {
            assert!(lines.iter().any(|l| l.starts_with(label)), "no {label} row");
        }
        assert!(text.contains("uncorrected (from actual send)"));
        // Columns line up: every cell of a column ends at the same character.
        let rate = lines
            .iter()
            .find(|l| l.starts_with("achieved rate"))
            .unwrap();
        assert_eq!(width(rate), width(lines[0]));
        assert_eq!(width(p50), width(lines[0]));

        let md = markdown(&systems);
        assert_eq!(md.lines().count(), 2 + systems.len());
        assert!(md
            .lines()
            .nth(2)
            .unwrap()
            .starts_with("| rivulet | 0.600 µs (1.50×) |"));
        assert!(md.lines().all(|l| l.matches('|').count() == 14));

        let checks = check_bars(&systems, "rivulet");
        assert_eq!(checks.len(), 4);
        assert!(checks[0].met && checks[1].met); // 1.5× p50, 1.25× p99
        assert!(checks[2].met, "p99.9 at 1.25×");
        assert!(checks[3].met, "beats crossbeam at p99");
        assert!(bars_text(&checks).contains("p99 below crossbeam's"));
    }

    #[test]
    fn units_format() {
        assert_eq!(format_us(412.0), "0.412 µs");
        assert_eq!(format_us(13_912.0), "13.91 µs");
        assert_eq!(format_us(612_345.0), "612.3 µs");
        assert_eq!(format_us(12_345_678.0), "12346 µs");
        assert_eq!(format_rate(999_371.0), "999.4 k/s");
        assert_eq!(format_ratio(1.254), "1.25×");
        assert_eq!(format_ratio(0.0004), "<0.01×");
        assert_eq!(format_ratio(1515.2), "1515×");
        assert_eq!(format_rate(1_000_000.0), "1.000 M/s");
        assert_eq!(format_rate(999_987.0), "1.000 M/s");
    }
}
