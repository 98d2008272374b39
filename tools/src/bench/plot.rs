//! The usual HDR latency-by-percentile plot, as SVG: the x axis is `1/(1-percentile)` on a
//! log scale, labelled with percentiles (90%, 99%, 99.9%, …); the y axis is latency in
//! microseconds, also log-scaled (a raw ring's p50 and a VM's max are five decades apart);
//! one line per system.

use super::hgrm::TICKS_PER_HALF_DISTANCE;
use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;
use plotters::prelude::*;
use std::path::Path;

/// Line colours, in system order (engine first): distinct and readable on white.
const COLORS: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(30, 30, 30),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// The label of x = `1/(1-percentile)`: 1 → `0%`, 10 → `90%`, 1000 → `99.9%`.
pub(crate) fn percentile_label(x: f64) -> String {
    let percentile = 100.0 * (1.0 - 1.0 / x);
    let nines = x.log10().round() as i32;
    if (x - 10f64.powi(nines)).abs() < 1e-6 * x {
        // A decade: exact text, no float noise (99.9%, not 99.90000000000001%).
        match nines {
            i32::MIN..=0 => "0%".to_string(),
            1 => "90%".to_string(),
            n => format!("99{}%", {
                let decimals = "9".repeat((n - 2) as usize);
                if decimals.is_empty() {
                    decimals
                } else {
                    format!(".{decimals}")
                }
            }),
        }
    } else {
        format!("{percentile:.3}%")
    }
}

/// The points of one line: (1/(1-q), latency µs) at the `.hgrm` ticks; the 100% point
/// (the max) is drawn at `x_max`.
pub(crate) fn points(histogram: &Histogram<u64>, x_max: f64) -> Vec<(f64, f64)> {
    if histogram.is_empty() {
        return Vec::new();
    }
    histogram
        .iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .map(|step| {
            let q = step.quantile_iterated_to();
            let x = if q >= 1.0 {
                x_max
            } else {
                (1.0 / (1.0 - q)).min(x_max)
            };
            (x, (step.value_iterated_to() as f64 / 1000.0).max(0.001))
        })
        .collect()
}

/// Writes the plot of `lines` (name, histogram in ns) to `path`.
pub(crate) fn write_svg(path: &Path, title: &str, lines: &[(&str, &Histogram<u64>)]) -> Result<()> {
    let most = lines
        .iter()
        .map(|(_, h)| h.len())
        .max()
        .unwrap_or(0)
        .max(100);
    // Enough decades to reach the last sample: 10^6 samples resolve up to 99.9999%.
    let decades = (most as f64).log10().ceil() as i32;
    let x_max = 10f64.powi(decades);
    let series: Vec<(&str, Vec<(f64, f64)>)> = lines
        .iter()
        .map(|(name, histogram)| (*name, points(histogram, x_max)))
        .collect();
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y));
    let y_min = ys.clone().fold(f64::INFINITY, f64::min);
    let y_max = ys.fold(0.0, f64::max);
    let (y_min, y_max) = if y_min.is_finite() && y_max > 0.0 {
        (y_min / 1.5, y_max * 1.5)
    } else {
        (0.1, 10.0)
    };

    let root = SVGBackend::new(path, (1100, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(20)
        .margin_right(70)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (1f64..x_max)
                .log_scale()
                .with_key_points((0..=decades).map(|d| 10f64.powi(d)).collect()),
            (y_min..y_max).log_scale(),
        )
        .map_err(|e| anyhow!("plot: {e}"))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs, log scale)")
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| {
            if *y >= 10.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.2}")
            }
        })
        .draw()
        .map_err(|e| anyhow!("plot: {e}"))?;
    for (i, (name, points)) in series.into_iter().enumerate() {
        let color = COLORS[i % COLORS.len()].to_rgba();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| anyhow!("plot: {e}"))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("plot: {e}"))?;
    root.present().map_err(|e| anyhow!("plot: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::workload::new_histogram;
    use super::*;

    #[test]
    fn percentile_labels() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(1e6), "99.9999%");
        assert_eq!(percentile_label(2.0), "50.000%");
    }

    #[test]
    fn svg_has_one_line_per_system() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        for v in 1..=10_000u64 {
            a.record(v * 10).unwrap();
            b.record(v * 30).unwrap();
        }
        let dir = std::env::temp_dir().join(format!("rivulet-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("latency.svg");
        write_svg(&path, "test", &[("alpha", &a), ("beta", &b)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("alpha") && svg.contains("beta"));
        assert!(svg.contains("99.9%") && svg.contains("percentile"));
        assert!(svg.matches("<polyline").count() >= 2);
        let pts = points(&a, 1e4);
        assert_eq!(pts.first().unwrap().0, 1.0);
        assert_eq!(pts.last().unwrap().0, 1e4);
    }
}
