//! `rivulet gen`: test data for the examples.
//!
//! `rivulet gen sensor --rows N --files K --out DIR [--drip-ms M]` writes oil-pump
//! sensor CSV files in the format of Spark's sensor application into `DIR` (each under
//! a hidden temporary name, then renamed in, as a file source expects), and the vendor
//! and maintenance tables into `DIR/_tables` (a subdirectory, which the file source does
//! not read). The generator itself is `examples/sensor/gen.rs`, shared with the
//! `sensor` example and its test.

#[path = "../../examples/sensor/gen.rs"]
mod sensor;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// What `rivulet gen` can generate.
#[derive(Subcommand, Debug)]
pub(crate) enum GenCommand {
    /// Oil-pump sensor readings (`resid,date,time,hz,disp,flow,sedPPM,psi,chlPPM`, no
    /// header), split into files in time order, plus `vendor.csv` and `maint.csv`.
    Sensor(SensorArgs),
}

/// `rivulet gen sensor`.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub(crate) struct SensorArgs {
    /// Sensor rows in all files together.
    #[arg(long)]
    rows: u64,
    /// Number of sensor files.
    #[arg(long)]
    files: usize,
    /// The directory the sensor files go to (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Where `vendor.csv` and `maint.csv` go (default: OUT/_tables).
    #[arg(long)]
    tables: Option<PathBuf>,
    /// Write one file every this many milliseconds (default: all at once).
    #[arg(long)]
    drip_ms: Option<u64>,
    /// The seed: the same settings and seed write the same bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of pumps (1 to 10).
    #[arg(long, default_value_t = 6)]
    pumps: usize,
    /// Minutes between two readings of a pump.
    #[arg(long, default_value_t = 5)]
    step_minutes: u32,
}

/// Runs `rivulet gen …`.
pub(crate) fn run(command: GenCommand) -> Result<()> {
    match command {
        GenCommand::Sensor(args) => sensor(&args),
    }
}

fn sensor(args: &SensorArgs) -> Result<()> {
    let data = sensor::SensorData {
        rows: args.rows,
        files: args.files,
        pumps: args.pumps,
        seed: args.seed,
        step_minutes: args.step_minutes,
        drip: args.drip_ms.map(Duration::from_millis),
    };
    data.check().map_err(anyhow::Error::msg)?;
    let tables = args
        .tables
        .clone()
        .unwrap_or_else(|| args.out.join("_tables"));
    let dripping = data.drip.is_some();
    let generated = data
        .generate(&args.out, &tables, |file| {
            if dripping {
                println!("{}", file.display());
            }
        })
        .with_context(|| format!("generating sensor data into {}", args.out.display()))?;
    println!(
        "{} readings of {} pumps ({} with psi < 0.5) in {} files in {}; vendor.csv and maint.csv in {}",
        generated.rows,
        data.pumps,
        generated.alerts,
        generated.files.len(),
        args.out.display(),
        tables.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(out: PathBuf) -> SensorArgs {
        SensorArgs {
            rows: 100,
            files: 3,
            out,
            tables: None,
            drip_ms: Some(1),
            seed: 1,
            pumps: 2,
            step_minutes: 10,
        }
    }

    #[test]
    fn writes_the_files_and_tables() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("oil");
        sensor(&args(out.clone())).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "_tables",
                "sensor-00001.csv",
                "sensor-00002.csv",
                "sensor-00003.csv"
            ]
        );
        let rows: usize = names[1..]
            .iter()
            .map(|name| {
                std::fs::read_to_string(out.join(name))
                    .unwrap()
                    .lines()
                    .count()
            })
            .sum();
        assert_eq!(rows, 100);
        let first = std::fs::read_to_string(out.join("sensor-00001.csv")).unwrap();
        // Two pumps, every ten minutes, from 2014-03-10.
        assert!(first.starts_with("COHUTTA,3/10/14,0:10,"), "{first}");
        assert!(first
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("NANTAHALLA,3/10/14,0:10,"));
        let vendor = std::fs::read_to_string(out.join("_tables/vendor.csv")).unwrap();
        assert_eq!(vendor.lines().count(), 2);
        assert!(out.join("_tables/maint.csv").exists());
    }

    #[test]
    fn bad_settings_are_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("oil");
        let error = sensor(&SensorArgs {
            files: 0,
            ..args(out.clone())
        })
        .unwrap_err();
        assert!(error.to_string().contains("--files"), "{error}");
        assert!(!out.exists());
    }
}
