//! `rivulet watch URL`: a terminal view of a running query's progress, read from its
//! metrics endpoint ([`Query::serve_metrics`](rivulet::Query::serve_metrics)).
//!
//! Every interval it reads `/live` (the counters now), `/progress` (the newest epoch's
//! report, Spark's `lastProgress`) and `/status`, and redraws a table: rows and rates,
//! the epoch, its durations, the watermark and its lag, end-to-end latency percentiles,
//! and one row per operator (records in and out, rates between two reads, state rows,
//! latency percentiles of the newest epoch).

use anyhow::{Context, Result};
use rivulet::metrics::StreamingQueryProgress;
use rivulet::query::QueryStatus;
use rivulet::QueryProgress;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// What one read of the endpoint gives.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) live: QueryProgress,
    pub(crate) last: Option<StreamingQueryProgress>,
    pub(crate) status: QueryStatus,
}

/// Reads the endpoint at `base` (`http://HOST:PORT`, a trailing `/` or none).
pub(crate) fn read(agent: &ureq::Agent, base: &str) -> Result<Snapshot> {
    let base = base.trim_end_matches('/');
    let get = |path: &str| -> Result<String> {
        let url = format!("{base}{path}");
        agent
            .get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading {url}"))
    };
    let live = get("/live")?;
    let last = get("/progress")?;
    let status = get("/status")?;
    Ok(Snapshot {
        live: serde_json::from_str(&live).context("/live is not a progress report")?,
        last: serde_json::from_str(&last).context("/progress is not a progress report")?,
        status: serde_json::from_str(&status).context("/status is not a status")?,
    })
}

/// An HTTP agent whose requests give up after `timeout`.
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate with a unit prefix: `12.3k/s`.
fn rate(per_second: f64) -> String {
    let (value, unit) = match per_second {
        r if r >= 1e9 => (r / 1e9, "G"),
        r if r >= 1e6 => (r / 1e6, "M"),
        r if r >= 1e3 => (r / 1e3, "k"),
        r => (r, ""),
    };
    format!("{value:.1}{unit}/s")
}

/// The table for `now`; rates per operator from the counts in `before` (the previous
/// read), if any.
pub(crate) fn render(now: &Snapshot, before: Option<&Snapshot>) -> String {
    let live = &now.live;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "query `{}` · {} · {} · up {:.1}s on {} threads",
        live.name,
        if live.is_active { "running" } else { "ended" },
        now.status.message,
        live.elapsed.as_secs_f64(),
        live.threads
    );
    let seconds =
        before.map(|b| (live.elapsed.as_secs_f64() - b.live.elapsed.as_secs_f64()).max(1e-9));
    let delta = |now: u64, then: u64| seconds.map(|s| now.saturating_sub(then) as f64 / s);
    let (rate_in, rate_out) = match before {
        Some(b) => (
            delta(live.input_rows, b.live.input_rows),
            delta(live.output_rows, b.live.output_rows),
        ),
        None => (
            Some(live.input_rows_per_second),
            Some(live.output_rows_per_second),
        ),
    };
    let _ = writeln!(
        out,
        "rows in {} ({}) · rows out {} ({})",
        grouped(live.input_rows),
        rate_in.map_or("-".to_string(), rate),
        grouped(live.output_rows),
        rate_out.map_or("-".to_string(), rate),
    );
    match &now.last {
        None => {
            let _ = writeln!(out, "no epoch completed yet (or the query has no epochs)");
        }
        Some(last) => {
            let durations: Vec<String> = last
                .duration_ms
                .iter()
                .map(|(phase, ms)| format!("{phase} {ms} ms"))
                .collect();
            let _ = writeln!(
                out,
                "epoch {} ({:?}): {} rows · input {} · processed {} · {}",
                last.batch_id,
                last.execution_mode,
                grouped(last.num_input_rows),
                rate(last.input_rows_per_second),
                rate(last.processed_rows_per_second),
                durations.join(", ")
            );
            if let Some(watermark) = last.event_time.get("watermark") {
                let lag = watermark_lag(last)
                    .map(|lag| format!(" (lag {lag:.3} s)"))
                    .unwrap_or_default();
                let _ = writeln!(out, "watermark {watermark}{lag}");
            }
            let e2e = &last.latency.end_to_end;
            if e2e.cumulative.count > 0 {
                let _ = writeln!(
                    out,
                    "end-to-end latency µs: epoch {} · since start {}",
                    percentiles(&e2e.epoch),
                    percentiles(&e2e.cumulative)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{:<22} {:<15} {:>3} {:>14} {:>14} {:>10} {:>10} {:>10} {:>10}",
        "operator",
        "kind",
        "par",
        "records in",
        "records out",
        "in/s",
        "state rows",
        "p50 µs",
        "p99 µs"
    );
    for op in &live.operators {
        let previous = before.and_then(|b| b.live.operator(&op.name));
        let in_rate = previous.and_then(|p| {
            delta(
                op.records_in.max(op.records_out),
                p.records_in.max(p.records_out),
            )
        });
        let epoch_op = now.last.as_ref().and_then(|last| last.operator(&op.name));
        let latency = epoch_op
            .and_then(|op| op.latency.as_ref())
            .filter(|latency| latency.epoch.count > 0);
        let state = now
            .last
            .as_ref()
            .and_then(|last| last.state_operator(&op.name))
            .map(|state| grouped(state.num_rows_total));
        let _ = writeln!(
            out,
            "{:<22} {:<15} {:>3} {:>14} {:>14} {:>10} {:>10} {:>10} {:>10}",
            op.name,
            format!("{:?}", op.kind),
            op.parallelism,
            grouped(op.records_in),
            grouped(op.records_out),
            in_rate.map_or("-".to_string(), rate),
            state.unwrap_or_else(|| "-".to_string()),
            latency.map_or("-".to_string(), |l| format!("{:.1}", l.epoch.p50)),
            latency.map_or("-".to_string(), |l| format!("{:.1}", l.epoch.p99)),
        );
    }
    out
}

fn percentiles(p: &rivulet::metrics::Percentiles) -> String {
    format!(
        "p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} max {:.1}",
        p.p50, p.p90, p.p99, p.p999, p.max
    )
}

/// The epoch's trigger time minus the watermark, in seconds.
fn watermark_lag(progress: &StreamingQueryProgress) -> Option<f64> {
    let watermark: jiff::Timestamp = progress.event_time.get("watermark")?.parse().ok()?;
    let at: jiff::Timestamp = progress.timestamp.parse().ok()?;
    Some(at.duration_since(watermark).as_secs_f64())
}

/// Runs the view until the query ends (after showing its final figures), or once.
pub(crate) fn run(url: &str, interval: Duration, once: bool) -> Result<()> {
    let agent = agent(Duration::from_secs(5));
    let terminal = std::io::stdout().is_terminal();
    let mut before: Option<Snapshot> = None;
    loop {
        let now = read(&agent, url)?;
        let table = render(&now, before.as_ref());
        let mut stdout = std::io::stdout().lock();
        if terminal && !once {
            // Clear the screen and go home: the table redraws in place.
            write!(stdout, "\x1b[2J\x1b[H")?;
        }
        writeln!(stdout, "{table}")?;
        stdout.flush()?;
        if once || !now.live.is_active {
            return Ok(());
        }
        before = Some(now);
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rivulet::{Query, Trigger};

    #[test]
    fn numbers_are_grouped_and_rates_scaled() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(rate(12_345.0), "12.3k/s");
        assert_eq!(rate(2_500_000.0), "2.5M/s");
        assert_eq!(rate(7.0), "7.0/s");
    }

    /// Against a real endpoint: the table shows what the query's own progress says.
    #[test]
    fn the_view_shows_the_endpoint_figures() {
        let mut builder = Query::builder();
        builder
            .name("watched")
            .trigger(Trigger::MicroBatch {
                interval: Duration::from_millis(5),
            })
            .latency_sampling(8);
        builder
            .from_iter("numbers", 0..5_000u64)
            .key_by(|x| x % 11)
            .count()
            .named("count")
            .to_memory("counts");
        let query = builder.start().unwrap();
        query.await_termination().unwrap();
        let server = query.serve_metrics("127.0.0.1:0").unwrap();
        let snapshot = read(&agent(Duration::from_secs(60)), &server.url()).unwrap();
        let table = render(&snapshot, None);

        let last = query.last_progress().expect("epochs completed");
        assert_eq!(snapshot.last.as_ref(), Some(&*last));
        assert!(
            table.starts_with("query `watched` · ended · Stopped"),
            "{table}"
        );
        assert!(table.contains("rows in 5,000 "), "{table}");
        assert!(
            table.contains(&format!("epoch {} (MicroBatch)", last.batch_id)),
            "{table}"
        );
        let count_row = table
            .lines()
            .find(|line| line.starts_with("count "))
            .expect("a row for the count");
        let cells: Vec<&str> = count_row.split_whitespace().collect();
        assert_eq!(cells[1], "Aggregate");
        assert_eq!(cells[3], "5,000", "records in: {count_row}");
        assert_eq!(cells[6], "11", "one state row per key: {count_row}");
        assert!(table.lines().any(|line| line.starts_with("numbers ")));
        query.stop().unwrap();
    }

    #[test]
    fn an_unreachable_endpoint_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let error = read(&agent(Duration::from_secs(5)), &format!("http://{addr}")).unwrap_err();
        assert!(
            format!("{error:#}").contains(&format!("GET http://{addr}/live")),
            "{error:#}"
        );
    }
}
