//! The oil-pump sensor application (`examples/sensor.rs`) end to end: its own two
//! queries (`examples/sensor/app.rs`), over files from its own generator
//! (`examples/sensor/gen.rs`), with memory tables in place of the console, checked against
//! a batch computation written here from scratch: the same CSV files parsed with the
//! `csv` crate and `str::parse`, dates turned into days with a calendar formula of its
//! own, alerts, the join, daily statistics and hourly counts with loops and maps.
//!
//! Each output is compared in full: the alerts in file order, the joined rows in order,
//! every daily (pump, date, reading) statistic (min and max exactly, avg to rounding),
//! and the hourly counts as the set of hours the final watermark (newest reading − 30
//! minutes) has passed, each emitted once.

mod common;

#[path = "../examples/sensor/app.rs"]
mod app;
#[path = "../examples/sensor/gen.rs"]
mod gen;

use app::{AlertInfo, App, DailyStat, HourlyAlerts, Outputs, Sensor, Tables};
use common::HANG_GUARD;
use gen::SensorData;
use rivulet::sink::MemoryTable;
use rivulet::stream::Chain;
use rivulet::{Stream, Trigger};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The outputs, collected.
#[derive(Default)]
struct Memory {
    alerts: Option<MemoryTable<Sensor>>,
    daily: Option<MemoryTable<DailyStat>>,
    joined: Option<MemoryTable<AlertInfo>>,
    hourly: Option<MemoryTable<HourlyAlerts>>,
}

impl Outputs for Memory {
    fn alerts(&mut self, alerts: Stream<impl Chain<Out = Sensor>>) {
        self.alerts = Some(alerts.to_memory("alerts"));
    }

    fn daily(&mut self, daily: Stream<impl Chain<Out = DailyStat>>) {
        self.daily = Some(daily.to_memory("daily"));
    }

    fn joined(&mut self, joined: Stream<impl Chain<Out = AlertInfo>>) {
        self.joined = Some(joined.to_memory("joined"));
    }

    fn hourly(&mut self, hourly: Stream<impl Chain<Out = HourlyAlerts>>) {
        self.hourly = Some(hourly.to_memory("hourly"));
    }
}

const POLL: Duration = Duration::from_millis(20);

fn app(dir: &Path, trigger: Trigger, max_batch_records: Option<usize>) -> App {
    App {
        dir: dir.to_path_buf(),
        tables: Tables::load(&dir.join("_tables")).expect("the generated tables"),
        trigger,
        poll_interval: POLL,
        max_batch_records,
    }
}

// ---------------------------------------------------------------------------------------
// The reference: a batch computation over the same files.

/// Microseconds in a minute.
const MINUTE: i64 = 60_000_000;

/// One sensor row as the reference reads it.
#[derive(Debug, Clone)]
struct Row {
    resid: String,
    /// Days since 1970-01-01.
    day: i64,
    /// Minutes since midnight.
    minute: i64,
    /// hz, disp, flow, sedPPM, psi, chlPPM.
    values: [f64; 6],
}

impl Row {
    fn psi(&self) -> f64 {
        self.values[4]
    }

    fn at(&self) -> i64 {
        (self.day * 1440 + self.minute) * MINUTE
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `M/d/yy` (years 2000–2099) into days, if it is a date.
fn parse_day(text: &str) -> Option<i64> {
    let mut parts = text.split('/');
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    let year = parts.next()?;
    if parts.next().is_some() || year.len() != 2 || !(1..=12).contains(&month) {
        return None;
    }
    let year = 2000 + year.parse::<i64>().ok()?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let length = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day < 1 || day > length[month as usize - 1] {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// `H:mm` into minutes since midnight.
fn parse_minute(text: &str) -> Option<i64> {
    let (hour, minute) = text.split_once(':')?;
    let (hour, minute): (i64, i64) = (hour.parse().ok()?, minute.parse().ok()?);
    ((0..24).contains(&hour) && minute.to_string().len() <= 2 && (0..60).contains(&minute))
        .then_some(hour * 60 + minute)
}

/// Every row of `files` in order, and how many lines were not rows.
fn read_rows(files: &[PathBuf]) -> (Vec<Row>, u64) {
    let mut rows = Vec::new();
    let mut malformed = 0;
    for file in files {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_path(file)
            .unwrap();
        for record in reader.records() {
            let record = record.unwrap();
            let row = (|| {
                if record.len() != 9 {
                    return None;
                }
                let mut values = [0.0; 6];
                for (value, field) in values.iter_mut().zip(record.iter().skip(3)) {
                    *value = field.trim().parse().ok()?;
                }
                Some(Row {
                    resid: record[0].to_string(),
                    day: parse_day(&record[1])?,
                    minute: parse_minute(&record[2])?,
                    values,
                })
            })();
            match row {
                Some(row) => rows.push(row),
                None => malformed += 1,
            }
        }
    }
    (rows, malformed)
}

/// A reading as both sides can compare it: resid, day, minute, the values' bits.
type Key = (String, i64, i64, [u64; 6]);

fn row_key(row: &Row) -> Key {
    (
        row.resid.clone(),
        row.day,
        row.minute,
        row.values.map(f64::to_bits),
    )
}

fn sensor_key(sensor: &Sensor) -> Key {
    let values = [
        sensor.hz,
        sensor.disp,
        sensor.flow,
        sensor.sed_ppm,
        sensor.psi,
        sensor.chl_ppm,
    ];
    (
        sensor.resid.clone(),
        i64::from(sensor.date.days_since_epoch()),
        sensor.time.0 / MINUTE,
        values.map(f64::to_bits),
    )
}

/// The vendor and maintenance tables as plain rows: (resid, pumpType, vendor) and
/// (resid, eventDate in days, technician, description).
type VendorRow = (String, String, String);
type MaintRow = (String, i64, String, String);

fn read_tables(dir: &Path) -> (Vec<VendorRow>, Vec<MaintRow>) {
    let records = |name: &str| -> Vec<csv::StringRecord> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(dir.join(name))
            .unwrap()
            .records()
            .map(Result::unwrap)
            .collect()
    };
    let vendors = records("vendor.csv")
        .iter()
        .map(|r| (r[0].to_string(), r[1].to_string(), r[4].to_string()))
        .collect();
    let maint = records("maint.csv")
        .iter()
        .map(|r| {
            let day = parse_day(&r[1]).expect("a maintenance date");
            (r[0].to_string(), day, r[2].to_string(), r[3].to_string())
        })
        .collect();
    (vendors, maint)
}

/// A joined row as both sides can compare it: resid, day, minute, psi's bits,
/// pumpType, vendor, eventDate in days, technician, description.
type Joined = (String, i64, i64, u64, String, String, i64, String, String);

fn expected_joined(alerts: &[&Row], vendors: &[VendorRow], maint: &[MaintRow]) -> Vec<Joined> {
    let mut rows = Vec::new();
    for alert in alerts {
        for (resid, pump_type, vendor) in vendors.iter().filter(|v| v.0 == alert.resid) {
            for (_, day, technician, description) in maint.iter().filter(|m| m.0 == *resid) {
                rows.push((
                    alert.resid.clone(),
                    alert.day,
                    alert.minute,
                    alert.psi().to_bits(),
                    pump_type.clone(),
                    vendor.clone(),
                    *day,
                    technician.clone(),
                    description.clone(),
                ));
            }
        }
    }
    rows
}

fn joined_key(row: &AlertInfo) -> Joined {
    (
        row.resid.clone(),
        i64::from(row.date.days_since_epoch()),
        row.time.0 / MINUTE,
        row.psi.to_bits(),
        row.pump_type.clone(),
        row.vendor.clone(),
        i64::from(row.event_date.days_since_epoch()),
        row.technician.clone(),
        row.description.clone(),
    )
}

/// Min, max, sum and count of each reading per (resid, day).
type Daily = BTreeMap<(String, i64), [(f64, f64, f64, u64); 6]>;

fn expected_daily(rows: &[Row]) -> Daily {
    let mut daily = Daily::new();
    for row in rows {
        let stats = daily
            .entry((row.resid.clone(), row.day))
            .or_insert([(f64::INFINITY, f64::NEG_INFINITY, 0.0, 0); 6]);
        for (stat, value) in stats.iter_mut().zip(row.values) {
            stat.0 = stat.0.min(value);
            stat.1 = stat.1.max(value);
            stat.2 += value;
            stat.3 += 1;
        }
    }
    daily
}

/// Alert counts per (resid, hour start in µs) of the hours the final watermark passed.
fn expected_hourly(rows: &[Row]) -> BTreeMap<(String, i64), u64> {
    const HOUR: i64 = 60 * MINUTE;
    let newest = rows.iter().map(Row::at).max().expect("rows");
    let watermark = newest - 30 * MINUTE;
    let mut counts = BTreeMap::new();
    for alert in rows.iter().filter(|row| row.psi() < 0.5) {
        let start = alert.at() - alert.at().rem_euclid(HOUR);
        if start + HOUR <= watermark {
            *counts.entry((alert.resid.clone(), start)).or_insert(0) += 1;
        }
    }
    counts
}

// ---------------------------------------------------------------------------------------
// The comparison.

/// Checks every output of a finished run over `files` (read in this order) against the
/// reference; returns the rows' and alerts' counts.
fn check(dir: &Path, files: &[PathBuf], memory: &Memory) -> (usize, usize) {
    let (rows, _) = read_rows(files);
    let alerts: Vec<&Row> = rows.iter().filter(|row| row.psi() < 0.5).collect();

    // (a) alerts, in file order.
    let got: Vec<Key> = memory
        .alerts
        .as_ref()
        .unwrap()
        .rows()
        .iter()
        .map(sensor_key)
        .collect();
    let want: Vec<Key> = alerts.iter().map(|row| row_key(row)).collect();
    assert_eq!(got.len(), want.len(), "number of alerts");
    assert_eq!(got, want, "alerts");

    // (c) the join, in order: per alert, its vendor rows × maintenance events.
    let (vendors, maint) = read_tables(&dir.join("_tables"));
    let got: Vec<Joined> = memory
        .joined
        .as_ref()
        .unwrap()
        .rows()
        .iter()
        .map(joined_key)
        .collect();
    let want = expected_joined(&alerts, &vendors, &maint);
    assert_eq!(got.len(), want.len(), "number of joined rows");
    assert_eq!(got, want, "joined alerts");

    // (b) daily statistics: the complete table after the last batch.
    let want = expected_daily(&rows);
    let table = memory.daily.as_ref().unwrap().rows();
    assert_eq!(
        table.len(),
        want.len() * 6,
        "daily rows: 6 per (resid, date)"
    );
    let mut got: HashMap<(String, i64, &str), &DailyStat> = HashMap::new();
    for row in &table {
        let key = (
            row.resid.clone(),
            i64::from(row.date.days_since_epoch()),
            row.reading,
        );
        assert!(got.insert(key, row).is_none(), "daily row twice: {row:?}");
    }
    for ((resid, day), stats) in &want {
        for ((min, max, sum, count), reading) in stats.iter().zip(app::READINGS) {
            let row = got
                .get(&(resid.clone(), *day, reading))
                .unwrap_or_else(|| panic!("no daily row for {resid} day {day} {reading}"));
            assert_eq!((row.min, row.max), (*min, *max), "min, max of {row:?}");
            let avg = sum / *count as f64;
            assert!(
                (row.avg - avg).abs() <= 1e-9 * avg.abs().max(1.0),
                "avg of {row:?}: want {avg}"
            );
        }
    }

    // (d) hourly alert counts: each final hour once, none that is not final.
    let mut got = BTreeMap::new();
    for row in memory.hourly.as_ref().unwrap().rows() {
        assert_eq!(row.window_end.0 - row.window_start.0, 3600 * 1_000_000);
        let previous = got.insert((row.resid.clone(), row.window_start.0), row.alerts);
        assert!(
            previous.is_none(),
            "hour emitted twice in append mode: {row:?}"
        );
    }
    let want = expected_hourly(&rows);
    assert!(
        !want.is_empty(),
        "the data should close some hours with alerts"
    );
    assert_eq!(got, want, "hourly alert counts");
    (rows.len(), alerts.len())
}

/// Runs both queries with `trigger` over `dir`, which holds everything already.
fn run_at_once(dir: &Path, max_batch_records: Option<usize>) -> Memory {
    let app = app(dir, Trigger::AvailableNow, max_batch_records);
    let mut memory = Memory::default();
    let alerts = app.start_alerts(&mut memory).unwrap();
    let daily = app.start_daily(&mut memory).unwrap();
    common::finish_ok(&alerts, "sensor_alerts");
    common::finish_ok(&daily, "sensor_daily");
    memory
}

fn generate(dir: &Path, data: &SensorData) -> Vec<PathBuf> {
    data.generate(dir, &dir.join("_tables"), |_| {})
        .unwrap()
        .files
}

#[test]
fn pumps_missing_from_a_table_or_listed_twice_join_as_the_batch_join_does() {
    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), &SensorData::new(6000, 4));
    // Edit the generated tables: BUTTE loses its maintenance events, CARGO its vendor
    // row, and COHUTTA gets a second vendor row (two vendor rows × its events).
    let tables = dir.path().join("_tables");
    let edit = |name: &str, change: &dyn Fn(Vec<String>) -> Vec<String>| {
        let path = tables.join(name);
        let lines = std::fs::read_to_string(&path).unwrap();
        let lines = change(lines.lines().map(str::to_string).collect());
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    };
    edit("maint.csv", &|lines| {
        lines
            .into_iter()
            .filter(|line| !line.starts_with("BUTTE,"))
            .collect()
    });
    edit("vendor.csv", &|mut lines| {
        let cohutta = lines.iter().find(|l| l.starts_with("COHUTTA,")).unwrap();
        let second = cohutta.replacen(',', ",backup ", 1);
        lines.push(second);
        lines
            .into_iter()
            .filter(|line| !line.starts_with("CARGO,"))
            .collect()
    });
    let memory = run_at_once(dir.path(), Some(500));
    let (_, alerts) = check(dir.path(), &files, &memory);
    assert!(
        alerts > 10,
        "only {alerts} alerts: the data should have some"
    );
    let joined = memory.joined.unwrap().rows();
    assert!(joined
        .iter()
        .all(|row| row.resid != "BUTTE" && row.resid != "CARGO"));
    assert!(joined
        .iter()
        .any(|row| row.pump_type.starts_with("backup ")));
}

#[test]
fn all_files_in_one_batch_match_the_batch_computation() {
    let dir = tempfile::tempdir().unwrap();
    let data = SensorData::new(6000, 6);
    let files = generate(dir.path(), &data);
    let memory = run_at_once(dir.path(), None);
    let (rows, alerts) = check(dir.path(), &files, &memory);
    assert_eq!(rows, 6000);
    assert!(
        alerts > 10,
        "only {alerts} alerts: the data should have some"
    );
}

#[test]
fn many_small_batches_give_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let data = SensorData {
        seed: 7,
        pumps: 4,
        ..SensorData::new(5000, 5)
    };
    let files = generate(dir.path(), &data);
    // Batches cut across files and hours; the hourly counts still close once each.
    let memory = run_at_once(dir.path(), Some(313));
    check(dir.path(), &files, &memory);
}

#[test]
fn files_dripping_into_a_running_query_match_the_batch_computation() {
    let dir = tempfile::tempdir().unwrap();
    let data = SensorData {
        seed: 11,
        drip: Some(Duration::from_millis(30)),
        ..SensorData::new(3000, 10)
    };
    data.write_tables(&dir.path().join("_tables")).unwrap();
    // Micro-batches while the files drip in, then what the example does at the end.
    let trigger = Trigger::MicroBatch {
        interval: Duration::from_millis(25),
    };
    let app = app(dir.path(), trigger, None);
    let mut memory = Memory::default();
    let alerts = app.start_alerts(&mut memory).unwrap();
    let daily = app.start_daily(&mut memory).unwrap();
    let generated = data.write_sensor_files(dir.path(), |_| {}).unwrap();
    app::finish_available(&[&alerts, &daily], POLL, HANG_GUARD).unwrap();
    check(dir.path(), &generated.files, &memory);
    for query in [&alerts, &daily] {
        assert_eq!(
            app::source_counters(query),
            (10, 0),
            "files read, malformed rows"
        );
        let epochs = query.progress().checkpoint.unwrap().epochs_triggered;
        assert!(
            epochs > 1,
            "the run should take several batches, took {epochs}"
        );
    }
}

#[test]
fn malformed_rows_are_counted_and_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = generate(dir.path(), &SensorData::new(1200, 3));
    // A file written later (read last): a header where none is expected, a reading
    // whose psi is not a number, one with a field missing, one with a date that does not
    // exist; then good readings after the generated data: an alert at 0:10, one at 1:05
    // and the newest reading at 1:30. The final watermark, 1:00, closes the hour
    // [0:00, 1:00) (its end is not after the watermark) and not [1:00, 2:00).
    let extra = dir.path().join("sensor-zz-extra.csv");
    std::fs::write(
        &extra,
        "resid,date,time,hz,disp,flow,sedPPM,psi,chlPPM\n\
         COHUTTA,3/11/14,23:00,10.1,1.7,880,1.5,low,1.9\n\
         COHUTTA,3/11/14,23:05,10.1,1.7,880,1.5,85\n\
         COHUTTA,2/30/14,23:10,10.1,1.7,880,1.5,85,1.9\n\
         BUTTE,3/12/14,0:10,10.2,1.7,870,1.4,0.3,1.8\n\
         COHUTTA,3/12/14,1:05,10.2,1.7,870,1.4,0.2,1.8\n\
         LAGNAPPE,3/12/14,1:30,10.2,1.7,870,1.4,85,1.8\n",
    )
    .unwrap();
    files.push(extra);
    let (_, malformed) = read_rows(&files);
    assert_eq!(malformed, 4, "the reference's own count");

    let app = app(dir.path(), Trigger::AvailableNow, None);
    let mut memory = Memory::default();
    let alerts = app.start_alerts(&mut memory).unwrap();
    let daily = app.start_daily(&mut memory).unwrap();
    common::finish_ok(&alerts, "sensor_alerts");
    common::finish_ok(&daily, "sensor_daily");
    check(dir.path(), &files, &memory);
    for query in [&alerts, &daily] {
        assert_eq!(
            app::source_counters(query),
            (4, malformed),
            "files read, malformed rows"
        );
    }
    let last_hours: Vec<(String, String, u64)> = memory
        .hourly
        .unwrap()
        .rows()
        .into_iter()
        .filter(|row| row.window_start.0 >= days_from_civil(2014, 3, 12) * 1440 * MINUTE)
        .map(|row| {
            (
                row.resid,
                app::window_time::format()
                    .as_ref()
                    .unwrap()
                    .format_timestamp(row.window_start),
                row.alerts,
            )
        })
        .collect();
    assert_eq!(
        last_hours,
        [("BUTTE".to_string(), "2014-03-12 00:00".to_string(), 1)]
    );
}

#[test]
fn a_missing_or_broken_table_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let error = Tables::load(dir.path()).unwrap_err().to_string();
    assert!(error.contains("vendor.csv"), "{error}");

    SensorData::new(10, 1).write_tables(dir.path()).unwrap();
    let maint = dir.path().join("maint.csv");
    let mut text = std::fs::read_to_string(&maint).unwrap();
    text.push_str("COHUTTA,not a date,J.Thomas,Tightened seal\n");
    std::fs::write(&maint, text).unwrap();
    let error = Tables::load(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("maint.csv") && error.contains("not a date"),
        "{error}"
    );
}

#[test]
fn a_missing_directory_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let app = App {
        dir: dir.path().join("nowhere"),
        tables: Tables::default(),
        trigger: Trigger::AvailableNow,
        poll_interval: POLL,
        max_batch_records: None,
    };
    let error = app
        .start_daily(&mut Memory::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("nowhere") && error.contains("does not exist"),
        "{error}"
    );
}

#[test]
fn the_generator_is_deterministic_and_writes_the_spark_format() {
    let read_all = |dir: &Path| -> BTreeMap<String, String> {
        let mut files = BTreeMap::new();
        for entry in walk(dir) {
            let name = entry.strip_prefix(dir).unwrap().display().to_string();
            files.insert(name, std::fs::read_to_string(&entry).unwrap());
        }
        files
    };
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let data = SensorData::new(1000, 3);
    let generated = generate(a.path(), &data);
    generate(b.path(), &data);
    generate(
        c.path(),
        &SensorData {
            seed: 43,
            ..data.clone()
        },
    );
    let (first, second, other) = (read_all(a.path()), read_all(b.path()), read_all(c.path()));
    assert_eq!(first, second, "the same seed writes the same bytes");
    assert_ne!(first, other, "another seed writes other data");
    let names: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "_tables/maint.csv",
            "_tables/vendor.csv",
            "sensor-00001.csv",
            "sensor-00002.csv",
            "sensor-00003.csv"
        ],
        "no temporary file is left behind"
    );

    // Rows split 334, 333, 333; every line parses as the application's schema.
    let (rows, malformed) = read_rows(&generated);
    assert_eq!((rows.len(), malformed), (1000, 0));
    let lines: Vec<usize> = generated
        .iter()
        .map(|file| std::fs::read_to_string(file).unwrap().lines().count())
        .collect();
    assert_eq!(lines, [334, 333, 333]);
    assert!(first["sensor-00001.csv"].starts_with("COHUTTA,3/10/14,0:05,"));
    // Time order, six pumps per reading.
    assert!(rows.windows(2).all(|pair| pair[0].at() <= pair[1].at()));
    assert_eq!(rows[6].minute, 10);
    let (vendors, maint) = read_tables(&a.path().join("_tables"));
    assert_eq!(vendors.len(), 6);
    assert!((12..=24).contains(&maint.len()));
}

#[test]
fn the_generator_refuses_what_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    for (data, words) in [
        (SensorData::new(10, 0), "file"),
        (SensorData::new(2, 3), "every file"),
        (
            SensorData {
                pumps: 11,
                ..SensorData::new(10, 1)
            },
            "pumps",
        ),
    ] {
        let error = data.generate(dir.path(), dir.path(), |_| {}).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains(words), "{error}");
    }
    assert!(walk(dir.path()).is_empty(), "nothing written");
}

/// Every file under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
