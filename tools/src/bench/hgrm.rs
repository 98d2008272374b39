//! HdrHistogram's percentile-distribution text format (`.hgrm`), as Java's
//! `AbstractHistogram.outputPercentileDistribution(out, ticksPerHalfDistance,
//! outputValueUnitScalingRatio)` prints it, so the files open in the usual plotters
//! (e.g. HdrHistogram's online `plotFiles.html`) and diff against Java/C output.
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        0.412 0.000000000000          1           1.00
//!        ...
//!     1234.943 1.000000000000     999997
//! #[Mean    =        0.511, StdDeviation   =        3.170]
//! #[Max     =     1234.943, Total count    =       999997]
//! #[Buckets =           27, SubBuckets     =         2048]
//! ```

use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// Ticks per half distance to 100%, as HdrHistogram's tools default to.
pub(crate) const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Nanoseconds per output unit: values are written in microseconds.
pub(crate) const NANOS_PER_MICRO: f64 = 1000.0;

/// `subBucketCount` of a histogram with `sigfig` significant digits (Java's formula; the
/// Rust crate keeps the field private).
pub(crate) fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest_single_unit = 2 * 10u64.pow(u32::from(sigfig));
    let magnitude = (largest_single_unit as f64).log2().ceil() as u32;
    let half_magnitude = magnitude.max(1) - 1;
    1u64 << (half_magnitude + 1)
}

/// Renders `histogram`'s percentile distribution, values divided by `scaling_ratio`.
pub(crate) fn percentile_distribution(
    histogram: &Histogram<u64>,
    ticks_per_half_distance: u32,
    scaling_ratio: f64,
) -> String {
    let digits = usize::from(histogram.sigfig());
    let mut out = String::new();
    // `write!` into a String cannot fail.
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if !histogram.is_empty() {
        let mut total = 0u64;
        for step in histogram.iter_quantiles(ticks_per_half_distance) {
            total += step.count_since_last_iteration();
            let value = step.value_iterated_to() as f64 / scaling_ratio;
            let quantile = step.quantile_iterated_to();
            if quantile < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:12.digits$} {quantile:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - quantile)
                );
            } else {
                let _ = writeln!(out, "{value:12.digits$} {quantile:2.12} {total:10}");
            }
        }
    }
    let (mean, stdev, max) = if histogram.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            histogram.mean() / scaling_ratio,
            histogram.stdev() / scaling_ratio,
            histogram.max() as f64 / scaling_ratio,
        )
    };
    let _ = writeln!(
        out,
        "#[Mean    = {mean:12.digits$}, StdDeviation   = {stdev:12.digits$}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:12.digits$}, Total count    = {:12}]",
        histogram.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        histogram.buckets(),
        sub_bucket_count(histogram.sigfig())
    );
    out
}

/// One row of a parsed `.hgrm` file.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) value: f64,
    pub(crate) percentile: f64,
    pub(crate) total_count: u64,
    pub(crate) inverse: Option<f64>,
}

/// Parses the rows and the footer's total count of a `.hgrm` text (for tests).
#[cfg(test)]
pub(crate) fn parse(text: &str) -> (Vec<Row>, u64) {
    let mut rows = Vec::new();
    let mut total = None;
    for line in text.lines().skip(2) {
        if let Some(footer) = line.strip_prefix("#[Max") {
            let count = footer.split("Total count    =").nth(1).unwrap();
            total = Some(count.trim_end_matches(']').trim().parse().unwrap());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        rows.push(Row {
            value: fields[0].parse().unwrap(),
            percentile: fields[1].parse().unwrap(),
            total_count: fields[2].parse().unwrap(),
            inverse: fields.get(3).map(|f| f.parse().unwrap()),
        });
    }
    (rows, total.expect("a footer with the total count"))
}

#[cfg(test)]
mod tests {
    use super::super::workload::new_histogram;
    use super::*;

    #[test]
    fn sub_buckets_match_java() {
        assert_eq!(sub_bucket_count(1), 32);
        assert_eq!(sub_bucket_count(2), 256);
        assert_eq!(sub_bucket_count(3), 2048);
    }

    #[test]
    fn writes_the_java_layout_and_parses_back() {
        let mut histogram = new_histogram();
        for value in 1..=10_000u64 {
            histogram.record(value * 1000).unwrap(); // 1 µs .. 10 ms, in ns
        }
        histogram.record(50_000_000).unwrap();
        let text = percentile_distribution(&histogram, 5, NANOS_PER_MICRO);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        // Every data row has the fixed widths: 12 . 14 . 10 [. 14].
        let first = lines[2];
        assert_eq!(
            first,
            "       1.000 0.000000000000          1           1.00"
        );
        assert!(lines[3..lines.len() - 3]
            .iter()
            .all(|line| line.len() == 53 || line.len() == 38));
        assert!(lines[lines.len() - 3].starts_with("#[Mean    = "));
        assert!(lines[lines.len() - 2].starts_with("#[Max     = "));
        assert_eq!(
            lines[lines.len() - 1],
            "#[Buckets =           27, SubBuckets     =         2048]"
        );

        let (rows, total) = parse(&text);
        assert_eq!(total, 10_001);
        let last = rows.last().unwrap();
        assert_eq!(last.percentile, 1.0);
        assert_eq!(last.total_count, total);
        assert_eq!(last.inverse, None);
        assert!((last.value - 50_003.967).abs() < 0.001, "{}", last.value);
        // Percentiles and counts never go down; ticks get finer towards 100%.
        for pair in rows.windows(2) {
            assert!(pair[1].percentile >= pair[0].percentile);
            assert!(pair[1].total_count >= pair[0].total_count);
            assert!(pair[1].value >= pair[0].value);
        }
        // 5 ticks per half distance: 0, 0.1, …, 0.5, then 0.55, … .
        let early: Vec<f64> = rows.iter().take(7).map(|r| r.percentile).collect();
        assert_eq!(early, vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55]);
        // The median row: half the values at or below ~5 ms.
        let median = rows.iter().find(|r| r.percentile == 0.5).unwrap();
        assert!((median.value - 5000.0).abs() / 5000.0 < 0.002);
        assert!((median.total_count as f64 - 5000.0).abs() <= 5.0);
        assert!(rows
            .iter()
            .all(|r| r.percentile == 1.0 || r.inverse.is_some()));
    }

    #[test]
    fn empty_histogram_has_header_and_footer_only() {
        let text = percentile_distribution(&new_histogram(), 5, NANOS_PER_MICRO);
        let (rows, total) = parse(&text);
        assert!(rows.is_empty());
        assert_eq!(total, 0);
    }
}
