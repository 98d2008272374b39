//! The oil-pump application's SQL, text unchanged, on files from the sensor generator,
//! against the typed version of the same queries (`examples/sensor/app.rs`'s types and
//! pipelines) over the same files.
//!
//! The sensor files have no `action` column: the windowed query's `events` view is
//! every reading with its pump (`resid`) as the action and its instant as the time, so
//! `GROUP BY action, WINDOW(time, "1 hour")` counts readings per pump per hour.

#[path = "../examples/sensor/app.rs"]
mod app;
#[path = "../examples/sensor/gen.rs"]
mod gen;

use app::{Sensor, Tables, HOUR, LOW_PSI, WATERMARK_DELAY};
use rivulet::aggregate::{avg, max, min};
use rivulet::frame::{DataFrame, StaticFrame};
use rivulet::row::{DataType, Field, Row, Schema, Value};
use rivulet::source::FileSourceConfig;
use rivulet::table::CsvTable;
use rivulet::window::TimeWindows;
use rivulet::{OutputMode, Query, Trigger};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The application's statements, verbatim.
const DAILY: &str = "SELECT resid, date, MAX(hz) as maxhz, min(hz) as minhz, avg(hz) as avghz, MAX(disp) as maxdisp, min(disp) as mindisp, avg(disp) as avgdisp, MAX(flow) as maxflo, min(flow) as minflo, avg(flow) as avgflo,MAX(sedPPM) as maxsedPPM, min(sedPPM) as minsedPPM, avg(sedPPM) as avgsedPPM, MAX(psi) as maxpsi, min(psi) as minpsi, avg(psi) as avgpsi,MAX(chlPPM) as maxchlPPM, min(chlPPM) as minchlPPM, avg(chlPPM) as avgchlPPM FROM sensor GROUP BY resid,date";
/// The three-way join of the alerts with the pump (vendor) and maintenance tables. The
/// issue quotes it as `select s.resid, s.date, s.psi, p.pumpType, … from alert s join
/// pump p on s.resid = p.resid join maint m on p.resid=m.resid`; the elided columns are
/// the vendor table's and the maintenance event's, by the names the schemas below give
/// them.
const JOINED: &str = "select s.resid, s.date, s.psi, p.pumpType, p.purchaseDate, p.serviceDate, p.vendor, m.eventDate, m.technician from alert s join pump p on s.resid = p.resid join maint m on p.resid=m.resid";
const HOURLY: &str = "SELECT action, WINDOW(time, \"1 hour\"), COUNT(*) FROM events GROUP BY action, WINDOW(time, \"1 hour\")";

/// Spark's `sensorSchema` (dates and times as the strings the files hold).
fn sensor_schema() -> Arc<Schema> {
    let mut fields = vec![
        Field::new("resid", DataType::String),
        Field::new("date", DataType::String),
        Field::new("time", DataType::String),
    ];
    for name in ["hz", "disp", "flow", "sedPPM", "psi", "chlPPM"] {
        fields.push(Field::new(name, DataType::Double));
    }
    Arc::new(Schema::new(fields).unwrap())
}

fn generate(dir: &Path) -> u64 {
    let data = gen::SensorData::new(2_400, 4);
    let generated = data
        .generate(&dir.join("in"), &dir.join("tables"), |_| {})
        .unwrap();
    generated.rows
}

fn source(dir: &Path) -> FileSourceConfig {
    FileSourceConfig::csv(dir.join("in")).path_glob_filter("*.csv")
}

fn run(query: rivulet::QueryBuilder) {
    let mut query = query;
    query.trigger(Trigger::AvailableNow);
    query.start().unwrap().await_termination().unwrap();
}

fn last_per_key(rows: Vec<Row>, keys: usize) -> HashMap<Vec<Value>, Row> {
    rows.into_iter()
        .map(|row| (row.values()[..keys].to_vec(), row))
        .collect()
}

#[test]
fn alerts_and_daily_statistics_match_the_typed_queries() {
    let dir = tempfile::tempdir().unwrap();
    let rows = generate(dir.path());

    // SQL: `sensorDF.select("*").where("psi < 0.5")` and the daily statistics.
    let mut query = Query::builder();
    query.output_mode(OutputMode::Append);
    let sensor = DataFrame::new(
        query.read_dir_rows("sensor", source(dir.path()), sensor_schema()),
        sensor_schema(),
    );
    let alerts = sensor
        .select_expr(&["*"])
        .unwrap()
        .where_("psi < 0.5")
        .unwrap();
    let alerts = alerts.to_memory("alerts");
    run(query);

    let mut query = Query::builder();
    query.output_mode(OutputMode::Complete);
    DataFrame::new(
        query.read_dir_rows("sensor", source(dir.path()), sensor_schema()),
        sensor_schema(),
    )
    .create_or_replace_temp_view("sensor");
    let daily = query.sql(DAILY).unwrap().to_memory("daily");
    run(query);

    // Typed: the same queries on `Sensor` records.
    let mut query = Query::builder();
    query.output_mode(OutputMode::Append);
    let typed_alerts = query
        .read_dir::<Sensor>("sensor", source(dir.path()))
        .filter(|r| r.psi < LOW_PSI)
        .to_memory("typed_alerts");
    run(query);
    let mut query = Query::builder();
    query.output_mode(OutputMode::Complete);
    let stats = |f: fn(&Sensor) -> f64| (max(f), min(f), avg(f));
    let typed_daily = query
        .read_dir::<Sensor>("sensor", source(dir.path()))
        .key_by(|r| (r.resid.clone(), r.date.to_string()))
        .agg((
            stats(|r| r.hz),
            stats(|r| r.disp),
            stats(|r| r.flow),
            stats(|r| r.sed_ppm),
            stats(|r| r.psi),
            stats(|r| r.chl_ppm),
        ))
        .to_memory("typed_daily");
    run(query);

    let alerts = alerts.rows();
    let typed_alerts = typed_alerts.rows();
    assert!(!typed_alerts.is_empty());
    assert_eq!(alerts.len(), typed_alerts.len());
    for (row, typed) in alerts.iter().zip(&typed_alerts) {
        assert_eq!(row.values()[0], Value::string(&typed.resid));
        assert_eq!(row.values()[7], Value::Double(typed.psi));
    }

    // The file's `M/d/yy` as the typed `Date`'s ISO text.
    let iso = |text: &Value| {
        let parts: Vec<u32> = text
            .as_str()
            .unwrap()
            .split('/')
            .map(|p| p.parse().unwrap())
            .collect();
        Value::string(&format!(
            "20{:02}-{:02}-{:02}",
            parts[2], parts[0], parts[1]
        ))
    };
    let daily: HashMap<Vec<Value>, Row> = last_per_key(daily.rows(), 2)
        .into_values()
        .map(|row| {
            let mut values = row.into_values();
            values[1] = iso(&values[1]);
            (values[..2].to_vec(), Row::new(values))
        })
        .collect();
    let mut typed: HashMap<Vec<Value>, Row> = HashMap::new();
    for ((resid, date), (a, b, c, d, e, f)) in typed_daily.rows() {
        let mut values = vec![Value::string(&resid), Value::string(&date)];
        for (mx, mn, av) in [a, b, c, d, e, f] {
            values.extend([Value::Double(mx), Value::Double(mn), Value::Double(av)]);
        }
        typed.insert(values[..2].to_vec(), Row::new(values));
    }
    assert!(daily.len() > 1, "{} rows read", rows);
    // To the bit: averages are sums of doubles in file order over the count.
    assert_eq!(daily, typed);
}

#[test]
fn hourly_window_counts_match_the_typed_windows() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let events_schema = Arc::new(
        Schema::new([
            Field::new("action", DataType::String),
            Field::new("time", DataType::Timestamp),
        ])
        .unwrap(),
    );

    // The events view: every reading, its pump as the action, its instant as the time.
    let mut query = Query::builder();
    query.output_mode(OutputMode::Append);
    let events = query
        .read_dir::<Sensor>("sensor", source(dir.path()))
        .map(|r| {
            Row::new(vec![
                Value::string(&r.resid),
                Value::Timestamp(r.event_time()),
            ])
        });
    DataFrame::new(events, events_schema)
        .with_watermark("time", "30 minutes")
        .unwrap()
        .create_or_replace_temp_view("events");
    let hourly = query.sql(HOURLY).unwrap().to_memory("hourly");
    run(query);

    let mut query = Query::builder();
    query.output_mode(OutputMode::Append);
    let typed = query
        .read_dir::<Sensor>("sensor", source(dir.path()))
        .with_event_time(Sensor::event_time)
        .with_watermark(WATERMARK_DELAY)
        .key_by(|r| r.resid.clone())
        .window(TimeWindows::tumbling(HOUR).unwrap(), Sensor::event_time)
        .count()
        .to_memory("typed");
    run(query);

    let mut expected: Vec<Row> = typed
        .rows()
        .into_iter()
        .map(|(resid, window, n)| {
            Row::new(vec![
                Value::string(&resid),
                Value::Timestamp(window.start),
                Value::Timestamp(window.end),
                Value::Long(n as i64),
            ])
        })
        .collect();
    expected.sort();
    let mut got = hourly.rows();
    got.sort();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
}

/// The pump (vendor) and maintenance tables as static frames, with Spark's schemas.
fn static_views(query: &rivulet::QueryBuilder, tables: &Path) {
    let strings = |names: &[&str]| -> Vec<Field> {
        names
            .iter()
            .map(|n| Field::new(*n, DataType::String))
            .collect()
    };
    let mut pump = strings(&["resid", "pumpType", "purchaseDate", "serviceDate", "vendor"]);
    pump.push(Field::new("longitude", DataType::Double));
    pump.push(Field::new("latitude", DataType::Double));
    let maint = strings(&["resid", "eventDate", "technician", "description"]);
    for (view, file, fields) in [("pump", "vendor.csv", pump), ("maint", "maint.csv", maint)] {
        let schema = Arc::new(Schema::new(fields).unwrap());
        StaticFrame::read_csv(&CsvTable::new(tables.join(file)), schema)
            .unwrap()
            .create_or_replace_temp_view(query, view);
    }
}

#[test]
fn three_way_join_matches_the_typed_joins() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let tables = dir.path().join("tables");

    let mut query = Query::builder();
    query.output_mode(OutputMode::Append);
    DataFrame::new(
        query.read_dir_rows("sensor", source(dir.path()), sensor_schema()),
        sensor_schema(),
    )
    .where_("psi < 0.5")
    .unwrap()
    .create_or_replace_temp_view("alert");
    static_views(&query, &tables);
    let joined = query.sql(JOINED).unwrap();
    assert_eq!(
        joined.columns(),
        [
            "resid",
            "date",
            "psi",
            "pumpType",
            "purchaseDate",
            "serviceDate",
            "vendor",
            "eventDate",
            "technician"
        ]
    );
    let joined = joined.to_memory("joined");
    run(query);

    // Typed: the application's joins (`join_static` on the vendor table, then the
    // maintenance table), on `Sensor` records and the typed tables.
    let typed_tables = Tables::load(&tables).unwrap();
    let mut query = Query::builder();
    query.output_mode(OutputMode::Append);
    let typed = query
        .read_dir::<Sensor>("sensor", source(dir.path()))
        .filter(|r| r.psi < LOW_PSI)
        .join_static(&typed_tables.vendors, |alert| alert.resid.as_str())
        .join_static_with(
            &typed_tables.maint,
            |(alert, _)| alert.resid.as_str(),
            |(alert, vendor), event| {
                (
                    alert.resid.clone(),
                    alert.date.to_string(),
                    alert.psi,
                    vendor.pump_type.clone(),
                    vendor.vendor.clone(),
                    event.event_date.to_string(),
                    event.technician.clone(),
                )
            },
        )
        .to_memory("typed");
    run(query);

    let iso = |text: &Value| {
        let parts: Vec<u32> = text
            .as_str()
            .unwrap()
            .split('/')
            .map(|p| p.parse().unwrap())
            .collect();
        format!("20{:02}-{:02}-{:02}", parts[2], parts[0], parts[1])
    };
    let text = |v: &Value| v.as_str().unwrap().to_string();
    let got: Vec<_> = joined
        .rows()
        .iter()
        .map(|row| {
            let v = row.values();
            let Value::Double(psi) = v[2] else {
                panic!("psi {:?}", v[2])
            };
            (
                text(&v[0]),
                iso(&v[1]),
                psi,
                text(&v[3]),
                text(&v[6]),
                iso(&v[7]),
                text(&v[8]),
            )
        })
        .collect();
    let expected = typed.rows();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
}
