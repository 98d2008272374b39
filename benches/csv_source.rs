//! CSV directory → filter `psi < 0.5` → counting sink, on the oil-pump sensor schema,
//! against a hand-written loop with the `csv` crate reading the same files into the same
//! struct, in the same run.
//!
//! ```text
//! cargo bench --bench csv_source
//! ```
//!
//! * `csv crate, ByteRecord loop`: for each file, `csv::Reader::read_byte_record` into
//!   one reused record, `ByteRecord::deserialize` into `Sensor`, count `psi < 0.5` (the
//!   csv crate's documented fast path).
//! * `csv crate, deserialize()`: the same with the `deserialize()` iterator (the usual
//!   loop). The faster of the two is the bar's baseline.
//! * `rivulet decoder alone`: `LineReader` + `format::Decoder` over the files, no
//!   query (where the time goes).
//! * `rivulet, 1 source thread`: `read_dir::<Sensor>` (CSV) → `filter` → `for_each`
//!   counting, chained on the source's thread; timed from `start()` to the last alert.
//! * `rivulet, 2 source instances`: the same with `source_instances(2)` (files shared by
//!   name), for the parallel case.
//!
//! Prints the median of [`RUNS`] runs of each, rows/s and MB/s, and the ratio of
//! rivulet's single-thread rate to the faster of the two csv loops (bar: at least 0.8).
//! `RIVULET_CSV_ROWS` overrides the row count (default 1,000,000 over 20 files);
//! `RIVULET_CSV_ONLY=2,3` runs only those variants (numbered 0-4 in the printed order;
//! a ratio is printed only when its variant and a csv loop ran), and
//! `RIVULET_CSV_RUNS=n` takes the median of `n` runs: for profiling one variant, e.g.
//! `RIVULET_CSV_ONLY=3 RIVULET_CSV_RUNS=30 perf record -F 999 -e cpu-clock -g
//! target/release/deps/csv_source-* --bench`.

use rivulet::source::{FileSource, FileSourceConfig};
use rivulet::{Pinning, Query};
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};
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

const FILES: usize = 20;
const RUNS: usize = 5;

/// Writes `rows` sensor rows over `FILES` files; returns the files, their total size and
/// the number of rows with `psi < 0.5`.
fn generate(dir: &Path, rows: usize) -> (Vec<PathBuf>, u64, u64) {
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
    let mut alerts = 0;
    let per_file = rows.div_ceil(FILES);
    for file in 0..FILES {
        let path = dir.join(format!("sensor-{file:03}.csv"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for row in (file * per_file)..((file + 1) * per_file).min(rows) {
            let pump = pumps[row % pumps.len()];
            let day = 1 + row / 1440 % 28;
            let minute = row % 1440;
            // psi mostly high; about 5 % of rows below 0.5.
            let psi = if next() % 20 == 0 {
                (next() % 50) as f64 / 100.0
            } else {
                1.0 + (next() % 9000) as f64 / 100.0
            };
            if psi < 0.5 {
                alerts += 1;
            }
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
    (paths, bytes, alerts)
}

/// The csv crate's fast loop: one reused `ByteRecord`.
fn csv_byte_records(paths: &[PathBuf]) -> (u64, u64) {
    let (mut rows, mut alerts) = (0, 0);
    let mut record = csv::ByteRecord::new();
    for path in paths {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(path)
            .unwrap();
        while reader.read_byte_record(&mut record).unwrap() {
            let sensor: Sensor = record.deserialize(None).unwrap();
            rows += 1;
            if sensor.psi < 0.5 {
                alerts += 1;
            }
        }
    }
    (rows, alerts)
}

/// The usual loop: `deserialize()`.
fn csv_deserialize(paths: &[PathBuf]) -> (u64, u64) {
    let (mut rows, mut alerts) = (0, 0);
    for path in paths {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(path)
            .unwrap();
        for sensor in reader.deserialize::<Sensor>() {
            let sensor = sensor.unwrap();
            rows += 1;
            if sensor.psi < 0.5 {
                alerts += 1;
            }
        }
    }
    (rows, alerts)
}

/// rivulet's decoding alone, no query: `LineReader` + `Decoder` over each file.
fn rivulet_decoder(paths: &[PathBuf]) -> (u64, u64) {
    use rivulet::format::{CsvOptions, DecodeOptions, Decoder, Format, LineReader, Verdict};
    let (mut rows, mut alerts) = (0, 0);
    let mut decoder: Decoder<Sensor> = Decoder::new(
        &Format::Csv(CsvOptions::default()),
        &DecodeOptions::default(),
    )
    .unwrap();
    for path in paths {
        let mut reader = LineReader::new(std::fs::File::open(path).unwrap(), 1 << 20);
        decoder.start_file();
        while let Some(line) = reader.next_line().unwrap() {
            if let Verdict::Row(sensor) = decoder.decode(line.bytes, line.too_long) {
                rows += 1;
                if sensor.psi < 0.5 {
                    alerts += 1;
                }
            }
        }
    }
    (rows, alerts)
}

/// rivulet: the directory source → filter → a counting sink; the time from `start()` to
/// the last alert.
fn rivulet_query(dir: &Path, instances: usize, alerts: u64) -> Duration {
    let (done, finished) = crossbeam_channel::bounded::<()>(instances);
    let mut query = Query::builder();
    if std::env::var("RIVULET_CSV_PIN").is_err() {
        // Placed by the OS, as the hand-written loops are: on a shared machine a pinned
        // thread cannot move off a core that another process keeps busy.
        query.pinning(Pinning::None);
    }
    let config = FileSourceConfig::csv(dir).poll_interval(Duration::from_millis(1));
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sensors = if instances == 1 {
        query.read_dir::<Sensor>("sensors", config)
    } else {
        query.source_instances("sensors", instances, |_| {
            FileSource::<Sensor>::new(config.clone())
        })
    };
    let total = counted.clone();
    sensors.filter(|s| s.psi < 0.5).for_each(move |_sensor| {
        // One shared count (instances run their sinks on their own threads); the
        // sink that reaches the total says so.
        let seen = total.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if seen == alerts {
            let _ = done.try_send(());
        }
    });
    let start = Instant::now();
    let running = query.start().unwrap();
    if std::env::var("RIVULET_CSV_DEBUG").is_ok() {
        eprintln!("start() took {:?}", start.elapsed());
    }
    finished
        .recv_timeout(Duration::from_secs(120))
        .expect("every alert arrives (hang)");
    let elapsed = start.elapsed();
    running.stop().unwrap();
    assert_eq!(counted.load(std::sync::atomic::Ordering::Relaxed), alerts);
    elapsed
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: a quick check then.
    let testing = !std::env::args().any(|arg| arg == "--bench");
    let rows: usize = std::env::var("RIVULET_CSV_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if testing { 20_000 } else { 1_000_000 });
    let dir = tempfile::tempdir().unwrap();
    let (paths, bytes, alerts) = generate(dir.path(), rows);
    let runs = std::env::var("RIVULET_CSV_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(if testing { 1 } else { RUNS });
    println!(
        "csv_source: {rows} rows, {FILES} files, {:.1} MB, {alerts} alerts (psi < 0.5); median of {runs} runs",
        bytes as f64 / 1e6
    );
    // RIVULET_CSV_ONLY=2,3 runs only those variants (0-4, in the order printed): for
    // profiling one of them.
    let only: Option<Vec<usize>> = std::env::var("RIVULET_CSV_ONLY").ok().map(|list| {
        list.split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect()
    });
    let mut times: [Vec<Duration>; 5] = Default::default();
    for run in 0..runs {
        // A different one goes first in each run, so no variant always meets a cold cache.
        for step in 0..5 {
            let which = (run + step) % 5;
            if only.as_ref().is_some_and(|only| !only.contains(&which)) {
                continue;
            }
            let elapsed = match which {
                0..=2 => {
                    let start = Instant::now();
                    let (read, found) = match which {
                        0 => csv_byte_records(&paths),
                        1 => csv_deserialize(&paths),
                        _ => rivulet_decoder(&paths),
                    };
                    assert_eq!((read, found), (rows as u64, alerts));
                    start.elapsed()
                }
                3 => rivulet_query(dir.path(), 1, alerts),
                _ => rivulet_query(dir.path(), 2, alerts),
            };
            times[which].push(elapsed);
        }
    }
    let names = [
        "csv crate, ByteRecord loop",
        "csv crate, deserialize()",
        "rivulet decoder alone (no query)",
        "rivulet, 1 source thread",
        "rivulet, 2 source instances",
    ];
    // Rows per second of each variant that ran (`None`: left out by RIVULET_CSV_ONLY).
    let mut rates = [None; 5];
    for (which, samples) in times.into_iter().enumerate() {
        if samples.is_empty() {
            continue;
        }
        let seconds = median(samples).as_secs_f64();
        println!(
            "  {:<34} {:>8.1} ms  {:>6.2} M rows/s  {:>7.1} MB/s",
            names[which],
            seconds * 1e3,
            rows as f64 / seconds / 1e6,
            bytes as f64 / seconds / 1e6
        );
        rates[which] = Some(rows as f64 / seconds);
    }
    // The ratios need a baseline and the variant: printed only when both ran.
    let baseline = match (rates[0], rates[1]) {
        (Some(fast), Some(usual)) => Some(fast.max(usual)),
        (one, other) => one.or(other),
    };
    if let Some(baseline) = baseline {
        for (which, label) in [(3, "1 source thread"), (4, "2 source instances")] {
            if let Some(rate) = rates[which] {
                let bar = if which == 3 { " (bar: >= 0.80)" } else { "" };
                println!(
                    "  ratio rivulet {label} / faster csv loop: {:.2}{bar}",
                    rate / baseline
                );
            }
        }
    }
}
