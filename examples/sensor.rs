//! Spark's oil-pump sensor application on rivulet: CSV files of pump readings dropped
//! into a directory, read as a stream with the application's schema, and
//!
//! * (a) **alerts**: readings with a pressure below 0.5 psi, printed as they come;
//! * (b) **daily**: min, max and average of every reading per pump and day (complete
//!   mode: the whole table after each batch);
//! * (c) **joined**: the alerts joined with the pumps' vendor and maintenance tables;
//! * (d) **hourly**: alerts per pump per hour of event time, with a 30-minute watermark,
//!   each hour printed once, when the watermark has passed it (append mode).
//!
//! Without arguments it is a demo that ends by itself: it generates readings of six
//! pumps into a temporary directory, dropping a file every 400 ms, prints each batch's
//! tables as Spark's console sink does, and stops once every file has been read:
//!
//! ```text
//! cargo run --release --example sensor
//! ```
//!
//! On a directory of your own (files in the format of `rivulet gen sensor`, which also
//! writes the vendor and maintenance tables into `DIR/_tables`), running until stopped:
//!
//! ```text
//! cargo run --release -p rivulet-tools -- gen sensor --rows 20000 --files 40 --out /tmp/oil --drip-ms 1000 &
//! cargo run --release --example sensor -- --dir /tmp/oil
//! ```
//!
//! The pipelines are in `sensor/app.rs` (shared with `tests/sensor_app.rs`, which checks
//! their output against a batch computation), the generator in `sensor/gen.rs`.

#[path = "sensor/app.rs"]
mod app;
#[path = "sensor/gen.rs"]
mod gen;

use app::{AlertInfo, App, DailyStat, HourlyAlerts, Outputs, Sensor, Tables};
use clap::Parser;
use gen::SensorData;
use rivulet::sink::ConsoleSink;
use rivulet::stream::Chain;
use rivulet::{Query, Stream, Trigger};
use serde::Serialize;
use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Spark's oil-pump sensor application on rivulet.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Read the sensor files appearing in this directory and keep running (until
    /// --seconds, or interrupted). Without it: the demo, on generated data.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Where `vendor.csv` and `maint.csv` are (default: DIR/_tables).
    #[arg(long)]
    tables: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long)]
    seconds: Option<u64>,
    /// The micro-batch interval in milliseconds.
    #[arg(long, default_value_t = 500)]
    interval_ms: u64,
    /// Rows of each table shown per batch (Spark's console option `numRows`).
    #[arg(long, default_value_t = 20)]
    num_rows: usize,
    /// Print table cells whole (Spark's console option `truncate` = false).
    #[arg(long)]
    no_truncate: bool,
    /// Demo: sensor rows to generate.
    #[arg(long, default_value_t = 3000)]
    rows: u64,
    /// Demo: files to split them into.
    #[arg(long, default_value_t = 8)]
    files: usize,
    /// Demo: milliseconds between two files.
    #[arg(long, default_value_t = 400)]
    drip_ms: u64,
    /// Demo: the generator's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// Each output to a console sink of its own, its lines labelled.
struct Console {
    num_rows: usize,
    truncate: bool,
}

impl Console {
    fn sink(&self, label: &str) -> ConsoleSink {
        let sink = ConsoleSink::new(format!("{label:<7}| ")).num_rows(self.num_rows);
        if self.truncate {
            sink
        } else {
            sink.truncate(0)
        }
    }

    fn print<T: Serialize + Send + 'static>(
        &self,
        label: &str,
        stream: Stream<impl Chain<Out = T>>,
    ) {
        stream.sink(label, self.sink(label));
    }
}

impl Outputs for Console {
    fn alerts(&mut self, alerts: Stream<impl Chain<Out = Sensor>>) {
        self.print("alerts", alerts);
    }

    fn daily(&mut self, daily: Stream<impl Chain<Out = DailyStat>>) {
        self.print("daily", daily);
    }

    fn joined(&mut self, joined: Stream<impl Chain<Out = AlertInfo>>) {
        self.print("joined", joined);
    }

    fn hourly(&mut self, hourly: Stream<impl Chain<Out = HourlyAlerts>>) {
        self.print("hourly", hourly);
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let interval = Duration::from_millis(args.interval_ms.max(1));
    let poll_interval = Duration::from_millis(100);
    let mut console = Console {
        num_rows: args.num_rows,
        truncate: !args.no_truncate,
    };

    // The demo's data: tables at once, sensor files dripped in by a thread.
    let (dir, generator, _temp) = match &args.dir {
        Some(dir) => (dir.clone(), None, None),
        None => {
            let temp = tempfile::tempdir()?;
            let data = SensorData {
                seed: args.seed,
                drip: Some(Duration::from_millis(args.drip_ms)),
                ..SensorData::new(args.rows, args.files)
            };
            data.check()?;
            let dir = temp.path().join("oil");
            data.write_tables(&dir.join("_tables"))?;
            println!(
                "generating {} readings of {} pumps into {} files in {}, one file every {} ms\n",
                data.rows,
                data.pumps,
                data.files,
                dir.display(),
                args.drip_ms
            );
            std::fs::create_dir_all(&dir)?;
            let out = dir.clone();
            let generator = std::thread::spawn(move || data.write_sensor_files(&out, |_| {}));
            (dir, Some(generator), Some(temp))
        }
    };
    let tables_dir = args.tables.clone().unwrap_or_else(|| dir.join("_tables"));
    let tables = Tables::load(&tables_dir)
        .map_err(|error| format!("{error} (write the tables with `rivulet gen sensor`)"))?;

    let app = App {
        dir,
        tables,
        trigger: Trigger::MicroBatch { interval },
        poll_interval,
        max_batch_records: None,
    };
    let alerts = app.start_alerts(&mut console)?;
    let daily = app.start_daily(&mut console)?;
    let started = Instant::now();
    let deadline = args
        .seconds
        .map(|seconds| started + Duration::from_secs(seconds));

    let result = match generator {
        // The demo: once the last file is in, read what is there and stop.
        Some(generator) => {
            while !generator.is_finished() && deadline.is_none_or(|at| Instant::now() < at) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if generator.is_finished() {
                let generated = generator.join().map_err(|_| "the generator panicked")??;
                let left = deadline.map_or(Duration::from_secs(30), |at| {
                    at.saturating_duration_since(Instant::now())
                });
                let result = app::finish_available(&[&alerts, &daily], poll_interval, left);
                println!(
                    "read {} files: {} readings, {} of them alerts",
                    generated.files.len(),
                    generated.rows,
                    generated.alerts
                );
                result
            } else {
                stop(&[&alerts, &daily])
            }
        }
        None => match deadline {
            Some(at) => {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                stop(&[&alerts, &daily])
            }
            None => alerts
                .await_termination()
                .and(daily.await_termination())
                .map_err(Into::into),
        },
    };
    for query in [&alerts, &daily] {
        let (files, malformed) = app::source_counters(query);
        print!("{}", query.progress());
        println!("  source `sensor`: {files} files read, {malformed} malformed rows\n");
    }
    println!(
        "hours the watermark (newest reading − {} min) has not passed stay open: not printed",
        app::WATERMARK_DELAY.as_secs() / 60
    );
    result
}

fn stop(queries: &[&Query]) -> Result<(), Box<dyn Error>> {
    for query in queries {
        query.stop()?;
    }
    Ok(())
}
