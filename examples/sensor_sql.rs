//! Spark's oil-pump sensor application in SQL: the application's statements, text
//! unchanged, on rivulet's DataFrames and SQL over CSV files of pump readings:
//!
//! * (a) **alerts**: `sensorDF.select("*").where("psi < 0.5")` (DataFrame operations);
//! * (b) **daily**: `SELECT resid, date, MAX(hz) as maxhz, … FROM sensor GROUP BY
//!   resid,date` (complete mode);
//! * (c) **joined**: `select s.resid, s.date, s.psi, p.pumpType, … from alert s join pump
//!   p on s.resid = p.resid join maint m on p.resid=m.resid`, the alerts joined with the
//!   static vendor and maintenance tables;
//! * (d) **hourly**: `SELECT action, WINDOW(time, "1 hour"), COUNT(*) FROM events GROUP BY
//!   action, WINDOW(time, "1 hour")` with a 30-minute watermark (append mode). The sensor
//!   files have no `action`: the `events` view is every reading with its pump as the
//!   action and its date and time as the event time.
//!
//! Each statement runs over what the directory holds (`Trigger::AvailableNow`) and prints
//! its batches as Spark's console sink does. Without arguments it generates readings into
//! a temporary directory first:
//!
//! ```text
//! cargo run --release --example sensor_sql
//! cargo run --release -p rivulet-tools -- gen sensor --rows 20000 --files 40 --out /tmp/oil
//! cargo run --release --example sensor_sql -- /tmp/oil
//! ```
//!
//! `tests/sensor_sql.rs` checks the statements' results against the typed queries of
//! `sensor/app.rs`.

#[path = "sensor/app.rs"]
mod app;
#[path = "sensor/gen.rs"]
mod gen;

use app::Sensor;
use rivulet::frame::{DataFrame, StaticFrame};
use rivulet::row::{DataType, Field, Row, Schema, Value};
use rivulet::source::FileSourceConfig;
use rivulet::table::CsvTable;
use rivulet::{OutputMode, Query, QueryBuilder, Trigger};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DAILY: &str = "SELECT resid, date, MAX(hz) as maxhz, min(hz) as minhz, avg(hz) as avghz, MAX(disp) as maxdisp, min(disp) as mindisp, avg(disp) as avgdisp, MAX(flow) as maxflo, min(flow) as minflo, avg(flow) as avgflo,MAX(sedPPM) as maxsedPPM, min(sedPPM) as minsedPPM, avg(sedPPM) as avgsedPPM, MAX(psi) as maxpsi, min(psi) as minpsi, avg(psi) as avgpsi,MAX(chlPPM) as maxchlPPM, min(chlPPM) as minchlPPM, avg(chlPPM) as avgchlPPM FROM sensor GROUP BY resid,date";
const JOINED: &str = "select s.resid, s.date, s.psi, p.pumpType, p.purchaseDate, p.serviceDate, p.vendor, m.eventDate, m.technician from alert s join pump p on s.resid = p.resid join maint m on p.resid=m.resid";
const HOURLY: &str = "SELECT action, WINDOW(time, \"1 hour\"), COUNT(*) FROM events GROUP BY action, WINDOW(time, \"1 hour\")";

fn strings(names: &[&str]) -> Vec<Field> {
    names
        .iter()
        .map(|name| Field::new(*name, DataType::String))
        .collect()
}

/// Spark's `sensorSchema` (dates and times as the strings the files hold).
fn sensor_schema() -> Arc<Schema> {
    let mut fields = strings(&["resid", "date", "time"]);
    for name in app::READINGS {
        fields.push(Field::new(name, DataType::Double));
    }
    Arc::new(Schema::new(fields).expect("distinct names"))
}

fn query(mode: OutputMode) -> QueryBuilder {
    let mut query = Query::builder();
    query.trigger(Trigger::AvailableNow).output_mode(mode);
    query
}

fn sensor(query: &mut QueryBuilder, dir: &Path) -> DataFrame {
    let source = FileSourceConfig::csv(dir).path_glob_filter("*.csv");
    DataFrame::new(
        query.read_dir_rows("sensor", source, sensor_schema()),
        sensor_schema(),
    )
}

fn run(title: &str, query: QueryBuilder) -> Result<(), Box<dyn Error>> {
    println!("==== {title}");
    query.start()?.await_termination()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let (dir, tables, _temp) = match std::env::args_os().nth(1) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            (dir.clone(), dir.join("_tables"), None)
        }
        None => {
            let temp = tempfile::tempdir()?;
            let (dir, tables) = (temp.path().join("in"), temp.path().join("tables"));
            gen::SensorData::new(2_880, 6).generate(&dir, &tables, |_| {})?;
            (dir, tables, Some(temp))
        }
    };

    // (a) alerts, as DataFrame operations.
    let mut q = query(OutputMode::Append);
    sensor(&mut q, &dir)
        .select_expr(&["*"])?
        .where_("psi < 0.5")?
        .to_console();
    run("alerts: sensorDF.select(\"*\").where(\"psi < 0.5\")", q)?;

    // (b) daily statistics.
    let mut q = query(OutputMode::Complete);
    sensor(&mut q, &dir).create_or_replace_temp_view("sensor");
    q.sql(DAILY)?.to_console();
    run(DAILY, q)?;

    // (c) the alerts joined with the static tables.
    let mut q = query(OutputMode::Append);
    sensor(&mut q, &dir)
        .where_("psi < 0.5")?
        .create_or_replace_temp_view("alert");
    let mut pump = strings(&["resid", "pumpType", "purchaseDate", "serviceDate", "vendor"]);
    pump.push(Field::new("longitude", DataType::Double));
    pump.push(Field::new("latitude", DataType::Double));
    let maint = strings(&["resid", "eventDate", "technician", "description"]);
    for (view, file, fields) in [("pump", "vendor.csv", pump), ("maint", "maint.csv", maint)] {
        let table = CsvTable::new(tables.join(file));
        StaticFrame::read_csv(&table, Arc::new(Schema::new(fields)?))?
            .create_or_replace_temp_view(&q, view);
    }
    q.sql(JOINED)?.to_console();
    run(JOINED, q)?;

    // (d) alerts per pump per hour of event time.
    let mut q = query(OutputMode::Append);
    let events = q
        .read_dir::<Sensor>(
            "sensor",
            FileSourceConfig::csv(&dir).path_glob_filter("*.csv"),
        )
        .map(|r| {
            Row::new(vec![
                Value::string(&r.resid),
                Value::Timestamp(r.event_time()),
            ])
        });
    let events_schema = Schema::new([
        Field::new("action", DataType::String),
        Field::new("time", DataType::Timestamp),
    ])?;
    DataFrame::new(events, Arc::new(events_schema))
        .with_watermark("time", "30 minutes")?
        .create_or_replace_temp_view("events");
    q.sql(HOURLY)?.to_console();
    run(HOURLY, q)
}
