//! The oil-pump application's alerts filter (`psi < 0.5`) and daily statistics (min, max
//! and avg of six readings per pump and day) over the same CSV files, three ways in the
//! same run: the typed API, the DataFrame API and SQL (issue #16: SQL at least 0.5× the
//! typed path's throughput), against a hand-written loop with the `csv` crate doing the
//! same work.
//!
//! ```text
//! cargo bench --bench sql_path
//! ```
//!
//! * `csv crate loop`: for each file the `deserialize()` iterator into `Sensor`, the
//!   alerts counted, the daily statistics in a `HashMap` (both queries' work in one pass).
//! * `typed alerts` / `typed daily`: `read_dir::<Sensor>` → `filter` → memory sink;
//!   `read_dir::<Sensor>` → `key_by((resid, date))` → `agg((max, min, avg) × 6)` →
//!   memory sink, complete mode.
//! * `frame alerts` / `frame daily`: `read_dir_rows` with the schema → `where_("psi <
//!   0.5")`; `group_by([resid, date]).agg([max, min, avg] × 6)`.
//! * `sql alerts` / `sql daily`: `SELECT * FROM sensor WHERE psi < 0.5`; the
//!   application's daily statement verbatim.
//!
//! Every query runs with `Trigger::AvailableNow` on one source thread, timed from
//! `start()` to the end of `await_termination()`. Prints the median of `RUNS` runs of
//! each, and the ratios of the DataFrame and SQL throughput to the typed one.
//! `RIVULET_SQL_ROWS` overrides the row count (default 1,000,000 over 20 files),
//! `RIVULET_SQL_RUNS` the number of runs.

use rivulet::aggregate::{avg, max, min};
use rivulet::expr::col;
use rivulet::frame::{self, DataFrame};
use rivulet::row::{DataType, Field, Schema};
use rivulet::source::FileSourceConfig;
use rivulet::{OutputMode, Pinning, Query, QueryBuilder, Trigger};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The Spark oil-pump application's schema.
#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)]
struct Sensor {
    resid: String,
    date: String,
    time: String,
    hz: f64,
    disp: f64,
    flow: f64,
    #[serde(rename = "sedPPM")]
    sed_ppm: f64,
    psi: f64,
    #[serde(rename = "chlPPM")]
    chl_ppm: f64,
}

const READINGS: [&str; 6] = ["hz", "disp", "flow", "sedPPM", "psi", "chlPPM"];

const DAILY: &str = "SELECT resid, date, MAX(hz) as maxhz, min(hz) as minhz, avg(hz) as avghz, MAX(disp) as maxdisp, min(disp) as mindisp, avg(disp) as avgdisp, MAX(flow) as maxflo, min(flow) as minflo, avg(flow) as avgflo,MAX(sedPPM) as maxsedPPM, min(sedPPM) as minsedPPM, avg(sedPPM) as avgsedPPM, MAX(psi) as maxpsi, min(psi) as minpsi, avg(psi) as avgpsi,MAX(chlPPM) as maxchlPPM, min(chlPPM) as minchlPPM, avg(chlPPM) as avgchlPPM FROM sensor GROUP BY resid,date";

const FILES: usize = 20;
const RUNS: usize = 5;

fn schema() -> Arc<Schema> {
    let mut fields = vec![
        Field::new("resid", DataType::String),
        Field::new("date", DataType::String),
        Field::new("time", DataType::String),
    ];
    fields.extend(READINGS.map(|name| Field::new(name, DataType::Double)));
    Arc::new(Schema::new(fields).unwrap())
}

/// Writes `rows` sensor rows over `FILES` files; returns the files and their size.
fn generate(dir: &Path, rows: usize) -> (Vec<PathBuf>, u64) {
    let pumps = [
        "COHUTTA",
        "NANTAHALA",
        "THERMALITO",
        "BUTTE",
        "CARGO",
        "LAGNAPPE",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut paths = Vec::new();
    let mut bytes = 0;
    let per_file = rows.div_ceil(FILES);
    for file in 0..FILES {
        let path = dir.join(format!("sensor-{file:03}.csv"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for row in (file * per_file)..((file + 1) * per_file).min(rows) {
            let pump = pumps[row % pumps.len()];
            let day = 1 + row / 1440 % 28;
            let minute = row % 1440;
            let psi = if next() % 20 == 0 {
                (next() % 50) as f64 / 100.0
            } else {
                1.0 + (next() % 9000) as f64 / 100.0
            };
            writeln!(
                out,
                "{pump},3/{day}/14,{}:{:02},{:.2},{:.3},{},{:.2},{psi},{:.2}",
                minute / 60,
                minute % 60,
                5.0 + (next() % 1000) as f64 / 100.0,
                1.0 + (next() % 1000) as f64 / 1000.0,
                800 + next() % 200,
                (next() % 300) as f64 / 100.0,
                (next() % 300) as f64 / 100.0,
            )
            .unwrap();
        }
        out.flush().unwrap();
        bytes += std::fs::metadata(&path).unwrap().len();
        paths.push(path);
    }
    (paths, bytes)
}

/// Max, min, sum and count of one reading.
#[derive(Clone, Copy)]
struct Stat(f64, f64, f64, u64);

impl Stat {
    fn add(&mut self, x: f64) {
        *self = Stat(self.0.max(x), self.1.min(x), self.2 + x, self.3 + 1);
    }
}

/// Both queries' work in one pass with the csv crate: (alerts, groups).
fn csv_loop(paths: &[PathBuf]) -> (usize, usize) {
    let mut alerts = 0;
    let mut daily: HashMap<(String, String), [Stat; 6]> = HashMap::new();
    for path in paths {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(path)
            .unwrap();
        for sensor in reader.deserialize::<Sensor>() {
            let s: Sensor = sensor.unwrap();
            if s.psi < 0.5 {
                alerts += 1;
            }
            let stats = daily
                .entry((s.resid, s.date))
                .or_insert([Stat(f64::MIN, f64::MAX, 0.0, 0); 6]);
            for (stat, x) in stats
                .iter_mut()
                .zip([s.hz, s.disp, s.flow, s.sed_ppm, s.psi, s.chl_ppm])
            {
                stat.add(x);
            }
        }
    }
    let averages: f64 = daily.values().map(|s| s[0].2 / s[0].3 as f64).sum();
    assert!(averages.is_finite());
    (alerts, daily.len())
}

fn builder(mode: OutputMode) -> QueryBuilder {
    let mut query = Query::builder();
    // Placed by the OS, as the hand-written loop is (see benches/csv_source.rs).
    query
        .pinning(Pinning::None)
        .trigger(Trigger::AvailableNow)
        .output_mode(mode);
    query
}

fn source(dir: &Path) -> FileSourceConfig {
    FileSourceConfig::csv(dir).path_glob_filter("*.csv")
}

fn frame(query: &mut QueryBuilder, dir: &Path) -> DataFrame {
    DataFrame::new(
        query.read_dir_rows("sensor", source(dir), schema()),
        schema(),
    )
}

/// Runs `query`; its time from `start()` to the end.
fn timed(query: QueryBuilder) -> Duration {
    let start = Instant::now();
    query.start().unwrap().await_termination().unwrap();
    start.elapsed()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Api {
    Typed,
    Frame,
    Sql,
}

/// The alerts query; its time and the number of alerts.
fn alerts(api: Api, dir: &Path) -> (Duration, usize) {
    let mut query = builder(OutputMode::Append);
    let (elapsed, rows) = match api {
        Api::Typed => {
            let table = query
                .read_dir::<Sensor>("sensor", source(dir))
                .filter(|s| s.psi < 0.5)
                .to_memory("alerts");
            (timed(query), table.rows().len())
        }
        Api::Frame => {
            let table = frame(&mut query, dir)
                .where_("psi < 0.5")
                .unwrap()
                .to_memory("alerts");
            (timed(query), table.rows().len())
        }
        Api::Sql => {
            frame(&mut query, dir).create_or_replace_temp_view("sensor");
            let table = query
                .sql("SELECT * FROM sensor WHERE psi < 0.5")
                .unwrap()
                .to_memory("alerts");
            (timed(query), table.rows().len())
        }
    };
    (elapsed, rows)
}

/// The daily statistics; its time and the number of groups in the final table.
fn daily(api: Api, dir: &Path) -> (Duration, usize) {
    let mut query = builder(OutputMode::Complete);
    match api {
        Api::Typed => {
            let stats = |f: fn(&Sensor) -> f64| (max(f), min(f), avg(f));
            let table = query
                .read_dir::<Sensor>("sensor", source(dir))
                .key_by(|s| (s.resid.clone(), s.date.clone()))
                .agg((
                    stats(|s| s.hz),
                    stats(|s| s.disp),
                    stats(|s| s.flow),
                    stats(|s| s.sed_ppm),
                    stats(|s| s.psi),
                    stats(|s| s.chl_ppm),
                ))
                .to_memory("daily");
            let elapsed = timed(query);
            let groups: std::collections::HashSet<_> =
                table.rows().into_iter().map(|(key, _)| key).collect();
            (elapsed, groups.len())
        }
        Api::Frame | Api::Sql => {
            let table = if api == Api::Frame {
                let aggs = READINGS.iter().flat_map(|name| {
                    [
                        frame::max(col(name)),
                        frame::min(col(name)),
                        frame::avg(col(name)),
                    ]
                });
                frame(&mut query, dir)
                    .group_by([col("resid"), col("date")])
                    .unwrap()
                    .agg(aggs)
                    .unwrap()
                    .to_memory("daily")
            } else {
                frame(&mut query, dir).create_or_replace_temp_view("sensor");
                query.sql(DAILY).unwrap().to_memory("daily")
            };
            let elapsed = timed(query);
            let groups: std::collections::HashSet<_> = table
                .rows()
                .into_iter()
                .map(|row| row.values()[..2].to_vec())
                .collect();
            (elapsed, groups.len())
        }
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: a quick check then.
    let testing = !std::env::args().any(|arg| arg == "--bench");
    let rows: usize = std::env::var("RIVULET_SQL_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if testing { 20_000 } else { 1_000_000 });
    let runs = std::env::var("RIVULET_SQL_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(if testing { 1 } else { RUNS });
    let dir = tempfile::tempdir().unwrap();
    let (paths, bytes) = generate(dir.path(), rows);
    let (alert_count, groups) = csv_loop(&paths);
    println!(
        "sql_path: {rows} rows, {FILES} files, {:.1} MB, {alert_count} alerts, {groups} days × pumps; median of {runs} runs",
        bytes as f64 / 1e6
    );
    const VARIANTS: usize = 7;
    let names = [
        "csv crate loop (both queries)",
        "typed alerts",
        "frame alerts",
        "sql alerts",
        "typed daily",
        "frame daily",
        "sql daily",
    ];
    let apis = [Api::Typed, Api::Frame, Api::Sql];
    let mut times: [Vec<Duration>; VARIANTS] = Default::default();
    for run in 0..runs {
        // A different one goes first in each run, so no variant always meets a cold cache.
        for step in 0..VARIANTS {
            let which = (run + step) % VARIANTS;
            let elapsed = match which {
                0 => {
                    let start = Instant::now();
                    assert_eq!(csv_loop(&paths), (alert_count, groups));
                    start.elapsed()
                }
                1..=3 => {
                    let (elapsed, found) = alerts(apis[which - 1], dir.path());
                    assert_eq!(found, alert_count, "{}", names[which]);
                    elapsed
                }
                _ => {
                    let (elapsed, found) = daily(apis[which - 4], dir.path());
                    assert_eq!(found, groups, "{}", names[which]);
                    elapsed
                }
            };
            times[which].push(elapsed);
        }
    }
    let medians: Vec<f64> = times
        .into_iter()
        .map(|samples| median(samples).as_secs_f64())
        .collect();
    for (name, seconds) in names.iter().zip(&medians) {
        println!(
            "  {name:<32} {:>8.1} ms  {:>6.2} M rows/s",
            seconds * 1e3,
            rows as f64 / seconds / 1e6
        );
    }
    for (query, typed) in [("alerts", 1), ("daily", 4)] {
        println!(
            "  {query}: frame / typed {:.2}, sql / typed {:.2} (bar: sql >= 0.50)",
            medians[typed] / medians[typed + 1],
            medians[typed] / medians[typed + 2]
        );
    }
}
