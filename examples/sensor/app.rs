//! The oil-pump application's pipelines, shared by `examples/sensor.rs` (which prints
//! them to the console) and `tests/sensor_app.rs` (which collects them in memory and
//! checks them against a batch computation): the test runs the example's own queries.
//!
//! Spark's application, in structured streaming:
//!
//! ```text
//! val sensorDF = spark.readStream.schema(sensorSchema).csv("/sparkdata/oil/")
//! val alertsDF = sensorDF.filter("psi < 0.5")                               // (a)
//! val dailyDF  = sensorDF.groupBy("resid", "date")
//!                        .agg(max("hz"), min("hz"), avg("hz"), …)            // (b)
//! alertsDF.join(vendorDF, "resid").join(maintDF, "resid")                   // (c)
//! sensorDF.withWatermark("ts", "30 minutes").filter("psi < 0.5")
//!         .groupBy(window($"ts", "1 hour"), $"resid").count()               // (d)
//! ```
//!
//! A query has one output mode, so the application is two queries over the same
//! directory, as it would be in Spark: `sensor_alerts` in append mode (the alerts, the
//! joined alerts and the hourly alert counts, which close with the watermark) and
//! `sensor_daily` in complete mode (the daily statistics, the whole table each batch).
//!
//! (c) is two stream–static joins (`Stream::join_static`, then `join_static_with`)
//! with `rivulet::table::StaticTable`s loaded from `vendor.csv` and `maint.csv` by
//! rivulet's CSV decoder ([`Tables::load`]); a pump has several maintenance events, so
//! an alert gives a row per (vendor row, event) of its pump, none if either table lacks it.

// The example and the test each use part of this module.
#![allow(dead_code)]

use rivulet::aggregate::{avg, max, min, Avg, Max, Min};
use rivulet::format::date::Date;
use rivulet::source::FileSourceConfig;
use rivulet::stream::Chain;
use rivulet::table::{StaticTable, TableError};
use rivulet::window::TimeWindows;
use rivulet::{OutputMode, Query, Stream, Timestamp, Trigger};
use serde::{Deserialize, Serialize};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

rivulet::date_format!(pub(crate) mod sensor_date = "M/d/yy");
rivulet::timestamp_format!(pub(crate) mod sensor_time = "H:mm");
rivulet::timestamp_format!(pub(crate) mod window_time = "yyyy-MM-dd HH:mm");

/// An alert: a reading with a pressure below this.
pub(crate) const LOW_PSI: f64 = 0.5;
/// How far event time may lag behind the newest reading (Spark's `withWatermark`).
pub(crate) const WATERMARK_DELAY: Duration = Duration::from_secs(30 * 60);
/// The length of the alert-count windows.
pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// One reading: Spark's `sensorSchema`. CSV columns fill the fields by position; the
/// names are what the console shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Sensor {
    pub(crate) resid: String,
    #[serde(with = "sensor_date")]
    pub(crate) date: Date,
    /// The time of day (on 1970-01-01: add the date for an instant).
    #[serde(with = "sensor_time")]
    pub(crate) time: Timestamp,
    pub(crate) hz: f64,
    pub(crate) disp: f64,
    pub(crate) flow: f64,
    #[serde(rename = "sedPPM")]
    pub(crate) sed_ppm: f64,
    pub(crate) psi: f64,
    #[serde(rename = "chlPPM")]
    pub(crate) chl_ppm: f64,
}

impl Sensor {
    /// The reading's instant: its date plus its time of day (UTC).
    pub(crate) fn event_time(&self) -> Timestamp {
        Timestamp(self.date.to_timestamp().0 + self.time.0)
    }
}

/// A row of the vendor table, `vendor.csv`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Vendor {
    pub(crate) resid: String,
    pub(crate) pump_type: String,
    #[serde(with = "sensor_date")]
    pub(crate) purchase_date: Date,
    #[serde(with = "sensor_date")]
    pub(crate) service_date: Date,
    pub(crate) vendor: String,
    pub(crate) longitude: f64,
    pub(crate) latitude: f64,
}

/// A row of the maintenance table, `maint.csv`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Maint {
    pub(crate) resid: String,
    #[serde(with = "sensor_date")]
    pub(crate) event_date: Date,
    pub(crate) technician: String,
    pub(crate) description: String,
}

/// The static tables, by pump: several rows per pump in `maint` (a pump has several
/// maintenance events). Each is loaded once and shared, not copied, by every instance
/// of the joins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tables {
    pub(crate) vendors: StaticTable<String, Vendor>,
    pub(crate) maint: StaticTable<String, Maint>,
}

impl Tables {
    /// Reads `vendor.csv` and `maint.csv` (no header) from `dir`, with rivulet's CSV
    /// decoder (the file source's), failing on the first malformed row.
    ///
    /// # Errors
    ///
    /// A missing or unreadable file, or a row that does not parse, with the file and
    /// line in the message.
    pub(crate) fn load(dir: &Path) -> Result<Tables, TableError> {
        Ok(Tables {
            vendors: StaticTable::from_csv(dir.join("vendor.csv"), |v: &Vendor| v.resid.clone())?,
            maint: StaticTable::from_csv(dir.join("maint.csv"), |m: &Maint| m.resid.clone())?,
        })
    }
}

/// An alert joined with its pump's vendor row and one of its maintenance events
/// (`alerts.join(vendor, "resid").join(maint, "resid")`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct AlertInfo {
    pub(crate) resid: String,
    #[serde(with = "sensor_date")]
    pub(crate) date: Date,
    #[serde(with = "sensor_time")]
    pub(crate) time: Timestamp,
    pub(crate) psi: f64,
    #[serde(rename = "pumpType")]
    pub(crate) pump_type: String,
    pub(crate) vendor: String,
    #[serde(rename = "eventDate", with = "sensor_date")]
    pub(crate) event_date: Date,
    pub(crate) technician: String,
    pub(crate) description: String,
}

/// The readings whose daily statistics are computed, with their column names.
pub(crate) const READINGS: [&str; 6] = ["hz", "disp", "flow", "sedPPM", "psi", "chlPPM"];

/// One reading's daily statistics for one pump: a row of the daily table. Spark's
/// application prints one wide row per (resid, date) with 18 statistics; here each
/// reading is a row of its own, so the table fits a terminal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DailyStat {
    pub(crate) resid: String,
    #[serde(with = "sensor_date")]
    pub(crate) date: Date,
    pub(crate) reading: &'static str,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) avg: f64,
}

/// `(min, max, avg)` of one reading.
type Stats = (f64, f64, f64);
type Field = fn(&Sensor) -> f64;

/// `min`, `max` and `avg` of `field`.
fn stats(field: Field) -> (Min<Field>, Max<Field>, Avg<Field>) {
    (min(field), max(field), avg(field))
}

/// The daily table's rows of one (resid, date) group.
fn daily_rows(
    (resid, date): (String, Date),
    (hz, disp, flow, sed, psi, chl): (Stats, Stats, Stats, Stats, Stats, Stats),
) -> Vec<DailyStat> {
    [hz, disp, flow, sed, psi, chl]
        .into_iter()
        .zip(READINGS)
        .map(|((min, max, avg), reading)| DailyStat {
            resid: resid.clone(),
            date,
            reading,
            min,
            max,
            avg,
        })
        .collect()
}

/// Alerts of one pump in one hour of event time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(crate) struct HourlyAlerts {
    pub(crate) resid: String,
    #[serde(with = "window_time")]
    pub(crate) window_start: Timestamp,
    #[serde(with = "window_time")]
    pub(crate) window_end: Timestamp,
    pub(crate) alerts: u64,
}

/// Where each output of the application goes: the console in the example, memory
/// tables in the test.
pub(crate) trait Outputs {
    /// (a) the readings with `psi < 0.5`.
    fn alerts(&mut self, alerts: Stream<impl Chain<Out = Sensor>>);
    /// (b) daily min, max and avg of every reading per pump (complete mode).
    fn daily(&mut self, daily: Stream<impl Chain<Out = DailyStat>>);
    /// (c) the alerts joined with the vendor and maintenance tables.
    fn joined(&mut self, joined: Stream<impl Chain<Out = AlertInfo>>);
    /// (d) alerts per pump per hour of event time, each once its hour is final.
    fn hourly(&mut self, hourly: Stream<impl Chain<Out = HourlyAlerts>>);
}

/// How to run the application.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// The directory the sensor files appear in.
    pub(crate) dir: PathBuf,
    /// The vendor and maintenance tables (cheap to clone: the rows are shared).
    pub(crate) tables: Tables,
    pub(crate) trigger: Trigger,
    /// How often the source lists the directory.
    pub(crate) poll_interval: Duration,
    /// At most this many records per micro-batch (per query).
    pub(crate) max_batch_records: Option<usize>,
}

impl App {
    fn source(&self) -> FileSourceConfig {
        // Spark's default mode, PERMISSIVE: a malformed row cannot fill the (non-optional)
        // fields, so it is dropped and counted in the source's `malformed_rows`.
        FileSourceConfig::csv(&self.dir)
            .path_glob_filter("*.csv")
            .poll_interval(self.poll_interval)
    }

    fn builder(&self, name: &str, mode: OutputMode) -> rivulet::QueryBuilder {
        let mut query = Query::builder();
        query.name(name).trigger(self.trigger).output_mode(mode);
        if let Some(records) = self.max_batch_records {
            query.max_batch_records(records);
        }
        query
    }

    /// Starts `sensor_alerts` (append mode): outputs (a), (c) and (d).
    ///
    /// # Errors
    ///
    /// What `start()` refuses (the directory does not exist, …).
    pub(crate) fn start_alerts(&self, outputs: &mut impl Outputs) -> Result<Query, Box<dyn Error>> {
        let mut query = self.builder("sensor_alerts", OutputMode::Append);
        let alerts = query
            .read_dir::<Sensor>("sensor", self.source())
            .with_event_time(Sensor::event_time)
            .with_watermark(WATERMARK_DELAY)
            .filter(|reading| reading.psi < LOW_PSI)
            .named("low_psi");
        let mut branches = alerts.fan_out(3).into_iter();
        let mut branch = || branches.next().ok_or("fan_out(3) gave fewer branches");
        outputs.alerts(branch()?);
        // (c) `alertsDF.join(vendorDF, "resid").join(maintDF, "resid")`: a row per
        // (vendor row, maintenance event) of the alert's pump, none for a pump missing
        // from either table.
        let joined = branch()?
            .join_static(&self.tables.vendors, |alert| alert.resid.as_str())
            .named("join_vendor")
            .join_static_with(
                &self.tables.maint,
                |(alert, _)| alert.resid.as_str(),
                |(alert, vendor), event| AlertInfo {
                    resid: alert.resid.clone(),
                    date: alert.date,
                    time: alert.time,
                    psi: alert.psi,
                    pump_type: vendor.pump_type.clone(),
                    vendor: vendor.vendor.clone(),
                    event_date: event.event_date,
                    technician: event.technician.clone(),
                    description: event.description.clone(),
                },
            )
            .named("join_maint");
        outputs.joined(joined);
        let hours = TimeWindows::tumbling(HOUR)?;
        outputs.hourly(
            branch()?
                .key_by(|alert| alert.resid.clone())
                .window(hours, Sensor::event_time)
                .count()
                .map(|(resid, window, alerts)| HourlyAlerts {
                    resid,
                    window_start: window.start,
                    window_end: window.end,
                    alerts,
                }),
        );
        Ok(query.start()?)
    }

    /// Starts `sensor_daily` (complete mode): output (b).
    ///
    /// # Errors
    ///
    /// What `start()` refuses (the directory does not exist, …).
    pub(crate) fn start_daily(&self, outputs: &mut impl Outputs) -> Result<Query, Box<dyn Error>> {
        let mut query = self.builder("sensor_daily", OutputMode::Complete);
        let daily = query
            .read_dir::<Sensor>("sensor", self.source())
            .key_by(|reading| (reading.resid.clone(), reading.date))
            .agg((
                stats(|r| r.hz),
                stats(|r| r.disp),
                stats(|r| r.flow),
                stats(|r| r.sed_ppm),
                stats(|r| r.psi),
                stats(|r| r.chl_ppm),
            ))
            .flat_map(|(key, stats)| daily_rows(key, stats));
        outputs.daily(daily);
        Ok(query.start()?)
    }
}

/// Ends `queries` once they have read every file now in their directory: waits twice
/// the sources' listing interval (so each source either listed the directory since the
/// last file appeared or lists it at its next batch), then switches every query to
/// [`Trigger::AvailableNow`], which runs what is there in batches and stops. A query
/// still running after `timeout` is stopped.
///
/// # Errors
///
/// A query's failure, or `"timed out"` if one had to be stopped.
pub(crate) fn finish_available(
    queries: &[&Query],
    poll_interval: Duration,
    timeout: Duration,
) -> Result<(), Box<dyn Error>> {
    std::thread::sleep(poll_interval * 2);
    for query in queries {
        query.set_trigger(Trigger::AvailableNow)?;
    }
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    for query in queries {
        let left = deadline.saturating_duration_since(Instant::now());
        match query.await_termination_timeout(left) {
            Some(result) => result?,
            None => {
                timed_out = true;
                query.stop()?;
            }
        }
    }
    if timed_out {
        return Err(format!("a query was still running after {timeout:?}: stopped").into());
    }
    Ok(())
}

/// The source's counters of a query: files read, malformed rows.
pub(crate) fn source_counters(query: &Query) -> (u64, u64) {
    let progress = query.progress();
    let counter = |name: &str| {
        progress
            .operator("sensor")
            .and_then(|source| source.counters.get(name).copied())
            .unwrap_or(0)
    };
    (counter("files"), counter("malformed_rows"))
}
