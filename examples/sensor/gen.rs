//! The oil-pump sensor data generator: CSV files in the format of Spark's oil-pump
//! sensor application, written into a directory the way a file source expects them.
//!
//! One copy of the code serves three programs: `examples/sensor.rs` (its demo) declares
//! it as its `gen` module, `tests/sensor_app.rs` and the tools' `rivulet gen sensor`
//! (`tools/src/gen.rs`) include this file with `#[path]`.
//!
//! * **Sensor files** (`sensor-00001.csv`, …, no header): one row per pump per reading,
//!   `resid,date,time,hz,disp,flow,sedPPM,psi,chlPPM`, e.g.
//!   `COHUTTA,3/10/14,1:05,10.27,1.731,881,1.56,85,1.94` (date `M/d/yy`, time `H:mm`,
//!   UTC). Every pump reads every `step_minutes` from 2014-03-10 00:00 on; rows are in
//!   time order (the pumps of one reading in a fixed order) and split into the files in
//!   that order, so each file continues where the one before stopped. Readings drift
//!   around each pump's own level; now and then a pump loses pressure for a few readings
//!   (`psi` below 0.5, flow down, frequency up), and the reading after such an event
//!   has `psi` exactly 0.5 (not an alert: alerts are `psi < 0.5`).
//! * **`vendor.csv`** (no header): `resid,pumpType,purchaseDate,serviceDate,vendor,longitude,latitude`,
//!   one row per pump.
//! * **`maint.csv`** (no header): `resid,eventDate,technician,description`, two to four
//!   maintenance events per pump.
//!
//! Each sensor file is written under a hidden temporary name (`.sensor-00001.csv.tmp`)
//! in the target directory, then renamed into place: a file source never sees half a
//! file. Everything follows from the seed: the same settings write the same bytes.

// Each program that includes this file uses part of it.
#![allow(dead_code)]

use rivulet::format::date::Date;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The pumps' names (`resid`), in the order their readings are written.
pub(crate) const PUMPS: [&str; 10] = [
    "COHUTTA",
    "NANTAHALLA",
    "THERMALITO",
    "BUTTE",
    "CARGO",
    "LAGNAPPE",
    "MOJAVE",
    "LOUISE",
    "ANDOUILLE",
    "BBKING",
];

/// What to generate: `rows` sensor rows split into `files` files, from `pumps` pumps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SensorData {
    /// Sensor rows in all files together.
    pub(crate) rows: u64,
    /// Number of sensor files; each holds `rows / files` rows, the first ones one more
    /// when it does not divide.
    pub(crate) files: usize,
    /// Number of pumps, 1 to 10 (the first of [`PUMPS`]).
    pub(crate) pumps: usize,
    /// The seed of everything random.
    pub(crate) seed: u64,
    /// Minutes between two readings of a pump.
    pub(crate) step_minutes: u32,
    /// Time between two files: each file after the first is written this long after
    /// the one before (none: all at once).
    pub(crate) drip: Option<Duration>,
}

/// What [`SensorData::generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Generated {
    /// The sensor files, in the order written.
    pub(crate) files: Vec<PathBuf>,
    /// Sensor rows written.
    pub(crate) rows: u64,
    /// Rows with `psi < 0.5`.
    pub(crate) alerts: u64,
}

/// The day the readings start: 2014-03-10, as in Spark's sample data.
const START: (i32, u32, u32) = (2014, 3, 10);

/// Chance that a pump starts a low-pressure event at a reading.
const EVENT_CHANCE: f64 = 0.004;

impl SensorData {
    /// `rows` rows in `files` files from 6 pumps reading every 5 minutes, seed 42, all
    /// files at once.
    pub(crate) fn new(rows: u64, files: usize) -> Self {
        SensorData {
            rows,
            files,
            pumps: 6,
            seed: 42,
            step_minutes: 5,
            drip: None,
        }
    }

    /// Why these settings cannot be generated, if they cannot.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.files == 0 {
            return Err("at least one file is needed (--files)".into());
        }
        if self.rows < self.files as u64 {
            return Err(format!(
                "{} rows cannot fill {} files: every file needs at least one row",
                self.rows, self.files
            ));
        }
        if self.pumps == 0 || self.pumps > PUMPS.len() {
            return Err(format!(
                "--pumps must be 1 to {}, not {}",
                PUMPS.len(),
                self.pumps
            ));
        }
        if self.step_minutes == 0 || self.step_minutes > 1440 {
            return Err("the step between readings must be 1 to 1440 minutes".into());
        }
        Ok(())
    }

    /// Writes the tables into `tables` and the sensor files into `out` (both created if
    /// missing), dripping the sensor files if [`drip`](Self::drip) says so; `on_file`
    /// is called with each sensor file once it is in place.
    ///
    /// # Errors
    ///
    /// Bad settings ([`check`](Self::check)) as `InvalidInput`; any I/O error, with the
    /// path in its message.
    pub(crate) fn generate(
        &self,
        out: &Path,
        tables: &Path,
        on_file: impl FnMut(&Path),
    ) -> io::Result<Generated> {
        self.check()
            .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
        self.write_tables(tables)?;
        self.write_sensor_files(out, on_file)
    }

    /// Writes `vendor.csv` and `maint.csv` into `dir` (created if missing); returns
    /// their paths.
    pub(crate) fn write_tables(&self, dir: &Path) -> io::Result<(PathBuf, PathBuf)> {
        create_dir(dir)?;
        let mut random = Random::new(self.seed ^ 0x7AB1E5);
        let mut vendor = String::new();
        let mut maint = String::new();
        for (index, resid) in PUMPS[..self.pumps].iter().enumerate() {
            let kind = PUMP_TYPES[random.below(PUMP_TYPES.len())];
            let purchased = date_text(day(2007, 1, 1) + random.below(5 * 365) as i32);
            let serviced = date_text(day(2013, 1, 1) + random.below(300) as i32);
            let maker = VENDORS[random.below(VENDORS.len())];
            // Around the Gulf coast, a pump every few kilometres.
            let longitude = -95.0 + index as f64 * 0.137 + random.unit() * 0.05;
            let latitude = 29.5 + index as f64 * 0.071 + random.unit() * 0.05;
            let _ = writeln!(
                vendor,
                "{resid},{kind},{purchased},{serviced},{maker},{longitude:.4},{latitude:.4}"
            );
            // Two to four events in the months before the readings, oldest first.
            let events = 2 + random.below(3);
            let mut at = day(2013, 9, 1) + random.below(30) as i32;
            for _ in 0..events {
                at += 20 + random.below(40) as i32;
                let technician = TECHNICIANS[random.below(TECHNICIANS.len())];
                let description = REPAIRS[random.below(REPAIRS.len())];
                let _ = writeln!(
                    maint,
                    "{resid},{},{technician},{description}",
                    date_text(at)
                );
            }
        }
        let vendor_path = dir.join("vendor.csv");
        let maint_path = dir.join("maint.csv");
        write_file(&vendor_path, vendor.as_bytes())?;
        write_file(&maint_path, maint.as_bytes())?;
        Ok((vendor_path, maint_path))
    }

    /// Writes the sensor files into `dir` (created if missing), each under a temporary
    /// name first, then renamed in, dripping them if [`drip`](Self::drip) says so;
    /// `on_file` is called with each once it is in place.
    ///
    /// # Errors
    ///
    /// Bad settings ([`check`](Self::check)) as `InvalidInput`; any I/O error, with the
    /// path in its message.
    pub(crate) fn write_sensor_files(
        &self,
        dir: &Path,
        mut on_file: impl FnMut(&Path),
    ) -> io::Result<Generated> {
        self.check()
            .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
        create_dir(dir)?;
        let mut readings = Readings::new(self);
        let mut paths = Vec::with_capacity(self.files);
        let per_file = self.rows / self.files as u64;
        let extra = self.rows % self.files as u64;
        let width = self.files.to_string().len().max(5);
        for file in 0..self.files {
            if file > 0 {
                if let Some(drip) = self.drip {
                    std::thread::sleep(drip);
                }
            }
            let rows = per_file + u64::from((file as u64) < extra);
            let mut text = String::with_capacity(rows as usize * 56);
            for _ in 0..rows {
                readings.next_row(&mut text);
            }
            let name = format!("sensor-{:0width$}.csv", file + 1);
            let path = dir.join(&name);
            let temp = dir.join(format!(".{name}.tmp"));
            write_file(&temp, text.as_bytes())?;
            fs::rename(&temp, &path).map_err(|error| with_path(error, "rename into", &path))?;
            on_file(&path);
            paths.push(path);
        }
        Ok(Generated {
            files: paths,
            rows: readings.rows,
            alerts: readings.alerts,
        })
    }
}

const PUMP_TYPES: [&str; 3] = ["HYDROPUMP", "GASLIFT", "ESP"];
const VENDORS: [&str; 4] = ["HydroCo", "Wellhead Supply", "Apex Lift", "Gulf Pumps"];
const TECHNICIANS: [&str; 5] = ["J.Thomas", "T.LaBou", "W.Stevens", "D.Hovey", "K.Nguyen"];
const REPAIRS: [&str; 6] = [
    "Tightened seal",
    "Replaced pressure sensor",
    "Rebuilt impeller after cavitation",
    "Cleaned intake screen",
    "Adjusted variable frequency drive",
    "Pump inspection",
];

/// One pump's levels and its current state.
#[derive(Debug, Clone)]
struct Pump {
    /// Levels the readings drift around: hz, disp, flow, sedPPM, psi, chlPPM.
    base: [f64; 6],
    /// The current drift from them.
    drift: [f64; 6],
    /// Readings left in the current low-pressure event.
    event_left: u32,
    /// The next reading ends an event (psi exactly 0.5).
    recovering: bool,
}

/// The sensor rows, one at a time, in time order.
#[derive(Debug)]
struct Readings {
    pumps: Vec<Pump>,
    random: Random,
    step_minutes: u32,
    /// Index of the next row: reading `row / pumps` of pump `row % pumps`.
    row: u64,
    rows: u64,
    alerts: u64,
}

impl Readings {
    fn new(config: &SensorData) -> Self {
        let mut random = Random::new(config.seed);
        let pumps = (0..config.pumps)
            .map(|_| Pump {
                base: [
                    9.5 + random.unit(),         // hz
                    1.6 + random.unit() * 0.2,   // disp
                    850.0 + random.unit() * 60., // flow
                    1.2 + random.unit() * 0.6,   // sedPPM
                    78.0 + random.unit() * 14.,  // psi
                    1.5 + random.unit() * 0.6,   // chlPPM
                ],
                drift: [0.0; 6],
                event_left: 0,
                recovering: false,
            })
            .collect();
        Readings {
            pumps,
            random,
            step_minutes: config.step_minutes,
            row: 0,
            rows: 0,
            alerts: 0,
        }
    }

    /// Appends the next row (with its newline) to `out`.
    fn next_row(&mut self, out: &mut String) {
        let count = self.pumps.len() as u64;
        let index = (self.row % count) as usize;
        let minutes = (self.row / count + 1) * u64::from(self.step_minutes);
        self.row += 1;
        self.rows += 1;
        let random = &mut self.random;
        let pump = &mut self.pumps[index];
        // Mean-reverting random walk: each reading moves a little, back towards 0.
        const STEP: [f64; 6] = [0.08, 0.004, 3.0, 0.05, 0.8, 0.05];
        for (drift, step) in pump.drift.iter_mut().zip(STEP) {
            *drift = *drift * 0.9 + random.signed() * step;
        }
        let mut value: [f64; 6] = std::array::from_fn(|i| (pump.base[i] + pump.drift[i]).max(0.0));
        let mut psi_text = None;
        if pump.event_left == 0 && !pump.recovering && random.unit() < EVENT_CHANCE {
            pump.event_left = 2 + random.below(5) as u32;
        }
        if pump.event_left > 0 {
            pump.event_left -= 1;
            pump.recovering = pump.event_left == 0;
            value[0] *= 1.08 + random.unit() * 0.05; // the motor spins up
            value[2] *= 0.55 + random.unit() * 0.1; // flow drops
            value[3] *= 1.5; // sediment rises
            let psi = random.below(5) as f64 / 10.0; // 0.0 to 0.4
            psi_text = Some(format!("{psi:.1}"));
            self.alerts += 1;
        } else if pump.recovering {
            pump.recovering = false;
            psi_text = Some("0.5".to_string());
        }
        let psi = psi_text.unwrap_or_else(|| format!("{:.0}", value[4]));
        let date = date_text(day(START.0, START.1, START.2) + (minutes / 1440) as i32);
        let minute_of_day = minutes % 1440;
        let _ = writeln!(
            out,
            "{},{date},{}:{:02},{:.2},{:.3},{:.0},{:.2},{psi},{:.2}",
            PUMPS[index],
            minute_of_day / 60,
            minute_of_day % 60,
            value[0],
            value[1],
            value[2],
            value[3],
            value[5],
        );
    }
}

/// Days since 1970-01-01 of a date that exists.
fn day(year: i32, month: u32, day: u32) -> i32 {
    Date::from_ymd(year, month, day)
        .expect("a valid date")
        .days_since_epoch()
}

/// `M/d/yy`, the sensor data's date format.
fn date_text(days: i32) -> String {
    let date = Date::from_days(days);
    format!("{}/{}/{:02}", date.month(), date.day(), date.year() % 100)
}

fn create_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir).map_err(|error| with_path(error, "create", dir))
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::write(path, bytes).map_err(|error| with_path(error, "write", path))
}

fn with_path(error: io::Error, action: &str, path: &Path) -> io::Error {
    io::Error::new(
        error.kind(),
        format!("cannot {action} {}: {error}", path.display()),
    )
}

/// xorshift64* seeded through splitmix64: small, fast, and the same everywhere.
#[derive(Debug, Clone)]
struct Random(u64);

impl Random {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Random((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// In `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// In `[-1, 1)`.
    fn signed(&mut self) -> f64 {
        self.unit() * 2.0 - 1.0
    }

    /// In `0..bound` (`bound` > 0).
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}
