//! Stream–static joins against a nested-loop reference, loading tables from CSV, and
//! reloadable tables switching versions at epoch boundaries.
//!
//! The reference is the plainest join there is: for every record, every table row with
//! an equal key, in a double loop. Outputs are compared as multisets (sorted), since
//! instances at parallelism > 1 interleave. The join's outputs carry the address of the
//! table row they matched, which the reference takes from the table the test built: equal
//! multisets mean every instance read the one shared copy of the rows.

mod common;

use common::{finish_ok, sorted, Rng};
use rivulet::error::BoxError;
use rivulet::format::{CsvOptions, ParseMode};
use rivulet::operator::static_join::{StaticJoin, With};
use rivulet::operator::Harness;
use rivulet::sink::{EpochCommit, Sink};
use rivulet::source::memory::IterSource;
use rivulet::table::{CsvTable, JoinTable, ReloadableTable, StaticTable, TableError};
use rivulet::trigger::EmitMode;
use rivulet::{Epoch, Query, Trigger};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A stream record: `(key, id)`, ids unique.
type Record = (u8, u32);
/// A table row: `(key, value)`.
type Row = (u8, u16);

fn continuous() -> Trigger {
    Trigger::Continuous {
        checkpoint_interval: Duration::from_millis(2),
    }
}

fn micro_batch() -> Trigger {
    Trigger::MicroBatch {
        interval: Duration::from_millis(1),
    }
}

/// Random records and table rows: keys from a small space, so both sides have duplicate
/// keys, and each side has keys the other lacks (records use 0..12, the table 4..16).
fn inputs(rng: &mut Rng) -> (Vec<Record>, Vec<Row>) {
    let records = (0..rng.below(300) as u32)
        .map(|id| (rng.below(12) as u8, id))
        .collect();
    let rows = (0..rng.below(40))
        .map(|_| (4 + rng.below(12) as u8, rng.below(1000) as u16))
        .collect();
    (records, rows)
}

/// The table, keyed by the row's key.
fn table_of(rows: &[Row]) -> StaticTable<u8, Row> {
    StaticTable::from_rows(rows.iter().copied(), |row| row.0)
}

fn address(row: &Row) -> usize {
    row as *const Row as usize
}

/// Nested-loop inner join: `(record, matched row, its address in `table`)`.
fn reference_inner(records: &[Record], table: &StaticTable<u8, Row>) -> Vec<(Record, Row, usize)> {
    let mut out = Vec::new();
    for record in records {
        for row in table.rows() {
            if row.0 == record.0 {
                out.push((*record, *row, address(row)));
            }
        }
    }
    sorted(out)
}

/// Nested-loop left outer join: as the inner one, plus `(record, None)` for a record
/// that matched nothing.
fn reference_outer(
    records: &[Record],
    table: &StaticTable<u8, Row>,
) -> Vec<(Record, Option<(Row, usize)>)> {
    let mut out = Vec::new();
    for record in records {
        let mut matched = false;
        for row in table.rows() {
            if row.0 == record.0 {
                matched = true;
                out.push((*record, Some((*row, address(row)))));
            }
        }
        if !matched {
            out.push((*record, None));
        }
    }
    sorted(out)
}

/// A query over `records` split round-robin among `parallelism` source instances.
fn split(records: &[Record], parallelism: usize) -> Vec<Vec<Record>> {
    let mut parts = vec![Vec::new(); parallelism];
    for (i, record) in records.iter().enumerate() {
        parts[i % parallelism].push(*record);
    }
    parts
}

fn builder(trigger: Trigger) -> rivulet::QueryBuilder {
    let mut query = Query::builder();
    query.trigger(trigger);
    query
}

#[test]
fn joins_equal_a_nested_loop_join_in_every_mode_and_parallelism() {
    let mut rng = Rng::new(0x0057_471c);
    for case in 0..6 {
        let (records, rows) = inputs(&mut rng);
        let table = table_of(&rows);
        let want_inner = reference_inner(&records, &table);
        let want_outer = reference_outer(&records, &table);
        for trigger in [continuous(), micro_batch(), Trigger::AvailableNow] {
            for parallelism in [1, 3] {
                let what = format!("case {case}, {trigger:?}, parallelism {parallelism}");
                let parts = split(&records, parallelism);

                // Inner, with the combiner: the row's address shows which copy was read.
                let mut query = builder(trigger);
                let inner = query
                    .source_instances("records", parallelism, |i| {
                        IterSource::new(parts[i].clone().into_iter())
                    })
                    .join_static_with(&table, |r: &Record| &r.0, |r, row| (*r, *row, address(row)))
                    .to_memory("inner");
                finish_ok(&query.start().unwrap(), &what);
                assert_eq!(sorted(inner.rows()), want_inner, "inner join, {what}");

                // Left outer.
                let mut query = builder(trigger);
                let outer = query
                    .source_instances("records", parallelism, |i| {
                        IterSource::new(parts[i].clone().into_iter())
                    })
                    .left_outer_join_static_with(
                        &table,
                        |r: &Record| &r.0,
                        |r, row| (*r, row.map(|row| (*row, address(row)))),
                    )
                    .to_memory("outer");
                finish_ok(&query.start().unwrap(), &what);
                assert_eq!(sorted(outer.rows()), want_outer, "left outer join, {what}");
            }
        }
    }
}

#[test]
fn the_pair_forms_clone_records_and_rows_per_match() {
    let mut rng = Rng::new(77);
    for case in 0..4 {
        let (records, rows) = inputs(&mut rng);
        let table = table_of(&rows);
        let parts = split(&records, 2);
        let mut query = builder(micro_batch());
        let mut branches = query
            .source_instances("records", 2, |i| {
                IterSource::new(parts[i].clone().into_iter())
            })
            .fan_out(2)
            .into_iter();
        let inner = branches
            .next()
            .unwrap()
            .join_static(&table, |r: &Record| &r.0)
            .to_memory("inner");
        let outer = branches
            .next()
            .unwrap()
            .left_outer_join_static(&table, |r: &Record| &r.0)
            .to_memory("outer");
        finish_ok(&query.start().unwrap(), "pairs");
        let want: Vec<(Record, Row)> = reference_inner(&records, &table)
            .into_iter()
            .map(|(r, row, _)| (r, row))
            .collect();
        assert_eq!(sorted(inner.rows()), want, "case {case}");
        let want: Vec<(Record, Option<Row>)> = sorted(
            reference_outer(&records, &table)
                .into_iter()
                .map(|(r, row)| (r, row.map(|(row, _)| row)))
                .collect(),
        );
        assert_eq!(sorted(outer.rows()), want, "case {case}");
    }
}

#[test]
fn string_keys_are_looked_up_by_str_and_tables_chain() {
    // Two joins in a row, the second keyed by what the first produced (the sensor
    // query's shape), against a double nested loop.
    let vendors = StaticTable::from_pairs([
        ("COHUTTA".to_string(), "HydroPump"),
        ("BUTTE".to_string(), "Pumps Inc"),
    ]);
    let maint = StaticTable::from_pairs([
        ("COHUTTA".to_string(), 1),
        ("COHUTTA".to_string(), 2),
        ("BUTTE".to_string(), 3),
        ("MOJAVE".to_string(), 4),
    ]);
    let alerts: Vec<String> = ["COHUTTA", "MOJAVE", "BUTTE", "COHUTTA", "LOUISE"]
        .map(String::from)
        .to_vec();
    let mut query = builder(continuous());
    let joined = query
        .from_iter("alerts", alerts.clone())
        .join_static_with(&vendors, |a| a.as_str(), |a, v| (a.clone(), *v))
        .join_static_with(&maint, |(a, _)| a.as_str(), |(a, v), m| (a.clone(), *v, *m))
        .to_memory("joined");
    finish_ok(&query.start().unwrap(), "chained joins");
    let mut want = Vec::new();
    for alert in &alerts {
        for (resid, vendor) in vendors.iter() {
            for (maint_resid, events) in maint.iter() {
                if resid == alert && maint_resid == alert {
                    for vendor in vendor {
                        for event in events {
                            want.push((alert.clone(), *vendor, *event));
                        }
                    }
                }
            }
        }
    }
    assert_eq!(sorted(joined.rows()), sorted(want));
}

#[test]
fn every_instance_shares_the_table_rows() {
    let table = table_of(&[(1, 10), (1, 11), (2, 20)]);
    assert_eq!(table.handle_count(), 1);
    let source = table.join_source(3);
    assert!(StaticTable::ptr_eq(&source, &table));
    fn key(record: &Record) -> &u8 {
        &record.0
    }
    let op = StaticJoin::<_, _, _, u8>::new(source, key, With(|r: &Record, row: &Row| (*r, *row)));
    let instances: Vec<_> = (0..3).map(|_| op.clone()).collect();
    // One table, one original, the operator and its three clones: five handles, one
    // copy of the rows.
    assert_eq!(table.handle_count(), 5);
    for instance in &instances {
        assert!(StaticTable::ptr_eq(instance.table_source(), &table));
    }
}

// ---------------------------------------------------------------------------------------
// CSV.

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Pump {
    resid: String,
    vendor: String,
    capacity: u32,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct LenientPump {
    resid: String,
    vendor: Option<String>,
    capacity: Option<u32>,
    _corrupt_record: Option<String>,
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_good_csv_file_loads_every_row_under_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "pumps.csv",
        "resid,vendor,capacity\nCOHUTTA,HydroPump,10\n\nBUTTE,\"Pumps, Inc\",20\nCOHUTTA,Acme,30\n",
    );
    let (table, report) = CsvTable::new(&path)
        .csv_options(CsvOptions::default().header(true))
        .load_with_report(|p: &Pump| p.resid.clone())
        .unwrap();
    assert_eq!((report.rows, report.repaired, report.dropped), (3, 0, 0));
    let capacities: Vec<u32> = table.get("COHUTTA").iter().map(|p| p.capacity).collect();
    assert_eq!(capacities, [10, 30]);
    assert_eq!(table.get("BUTTE")[0].vendor, "Pumps, Inc");

    // Without the header option the header is a row, and fail-fast refuses it.
    let error = StaticTable::from_csv(&path, |p: &Pump| p.resid.clone()).unwrap_err();
    match &error {
        TableError::Malformed {
            line, malformed, ..
        } => {
            assert_eq!(*line, 1);
            assert_eq!(malformed.field.as_deref(), Some("`capacity` (column 3)"));
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("pumps.csv:1"), "{error}");
}

const BAD: &str = "COHUTTA,HydroPump,10\n\
                   BUTTE,Pumps Inc,lots\n\
                   MOJAVE,Acme\n\
                   LOUISE,Acme,40\n";

#[test]
fn malformed_rows_follow_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "bad.csv", BAD);

    // Fail-fast (the default): the first bad row, with file, line and field.
    let error = CsvTable::new(&path)
        .load(|p: &Pump| p.resid.clone())
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("bad.csv:2") && text.contains("capacity") && text.contains("lots"),
        "{text}"
    );

    // Drop-malformed: both bad rows left out, counted and reported by line.
    let (table, report) = CsvTable::new(&path)
        .mode(ParseMode::DropMalformed)
        .load_with_report(|p: &Pump| p.resid.clone())
        .unwrap();
    assert_eq!((report.rows, report.repaired, report.dropped), (2, 0, 2));
    let lines: Vec<u64> = report.malformed.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [2, 3]);
    assert!(table.contains_key("LOUISE") && !table.contains_key("BUTTE"));

    // Permissive, fields that cannot be null: the rows cannot be held, so they are
    // dropped and counted as in drop-malformed.
    let (_, report) = CsvTable::new(&path)
        .mode(ParseMode::Permissive)
        .load_with_report(|p: &Pump| p.resid.clone())
        .unwrap();
    assert_eq!((report.rows, report.repaired, report.dropped), (2, 0, 2));

    // Permissive, optional fields: the rows are kept with the failed fields `None`
    // and the raw line in the corrupt-record field.
    let (table, report) = CsvTable::new(&path)
        .mode(ParseMode::Permissive)
        .load_with_report(|p: &LenientPump| p.resid.clone())
        .unwrap();
    assert_eq!((report.rows, report.repaired, report.dropped), (4, 2, 0));
    let butte = &table.get("BUTTE")[0];
    assert_eq!(
        (butte.vendor.as_deref(), butte.capacity),
        (Some("Pumps Inc"), None)
    );
    assert_eq!(
        butte._corrupt_record.as_deref(),
        Some("BUTTE,Pumps Inc,lots")
    );
    let mojave = &table.get("MOJAVE")[0];
    assert_eq!(
        (mojave.vendor.as_deref(), mojave.capacity),
        (Some("Acme"), None)
    );
    assert_eq!(table.get("LOUISE")[0].capacity, Some(40));
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.csv");
    let error = StaticTable::from_csv(&path, |p: &Pump| p.resid.clone()).unwrap_err();
    assert!(matches!(error, TableError::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("nowhere.csv"), "{error}");
}

// ---------------------------------------------------------------------------------------
// Reloadable tables.

/// Table rows tagged with their version: `(key, version)`.
fn versioned(version: u16) -> StaticTable<u8, Row> {
    StaticTable::from_rows((0..4u8).map(|key| (key, version)), |row| row.0)
}

type VersionJoin = StaticJoin<
    rivulet::table::ReloadView<u8, Row>,
    fn(&Record) -> &u8,
    With<fn(&Record, &Row) -> (u32, u16)>,
    u8,
>;

fn versions(harness: &mut Harness<Record, VersionJoin>) -> Vec<u16> {
    harness
        .take_output()
        .into_iter()
        .map(|(_, version)| version)
        .collect()
}

#[test]
fn a_reload_takes_effect_at_the_next_epoch_boundary_on_every_instance() {
    let table = ReloadableTable::new(versioned(0));
    let key: fn(&Record) -> &u8 = |r| &r.0;
    let combine: fn(&Record, &Row) -> (u32, u16) = |r, row| (r.1, row.1);
    let op: VersionJoin = StaticJoin::new(table.join_source(2), key, With(combine));
    let (mut a, mut b) = (Harness::new(op.clone()), Harness::new(op));

    // Epoch 1: both instances join with version 0, before and after the reload.
    a.push((1, 0));
    table.reload(versioned(1));
    a.push((1, 1));
    b.push((2, 2));
    assert_eq!((versions(&mut a), versions(&mut b)), (vec![0, 0], vec![0]));
    // `a` passes marker 1 first: version 1 applies from epoch 2, on both.
    a.end_epoch();
    a.push((1, 3));
    b.push((2, 4));
    assert_eq!(versions(&mut b), [0], "b is still in epoch 1");
    b.end_epoch();
    b.push((2, 5));
    assert_eq!((versions(&mut a), versions(&mut b)), (vec![1], vec![1]));

    // A reload seen first by the instance behind: `a` is in epoch 3 already (with
    // version 1), so version 2 must wait for marker 3 on both.
    a.end_epoch();
    a.push((1, 6));
    table.reload(versioned(2));
    b.end_epoch();
    b.push((2, 7));
    a.push((1, 8));
    assert_eq!(
        (versions(&mut a), versions(&mut b)),
        (vec![1, 1], vec![1]),
        "epoch 3 keeps version 1 on both"
    );
    a.end_epoch();
    b.end_epoch();
    a.push((1, 9));
    b.push((2, 10));
    assert_eq!((versions(&mut a), versions(&mut b)), (vec![2], vec![2]));
}

/// Collects `(epoch, record)`.
struct EpochSink<T> {
    rows: Arc<Mutex<Vec<(u64, T)>>>,
    epoch: u64,
}

impl<T> Clone for EpochSink<T> {
    fn clone(&self) -> Self {
        EpochSink {
            rows: self.rows.clone(),
            epoch: 0,
        }
    }
}

impl<T: Send + 'static> Sink<T> for EpochSink<T> {
    fn begin_epoch(&mut self, epoch: Epoch, _mode: EmitMode) -> Result<(), BoxError> {
        self.epoch = epoch.0;
        Ok(())
    }

    fn write(&mut self, record: T) -> Result<(), BoxError> {
        self.rows.lock().unwrap().push((self.epoch, record));
        Ok(())
    }

    fn prepare_commit(&mut self, _epoch: Epoch) -> Result<Option<EpochCommit>, BoxError> {
        Ok(None)
    }
}

#[test]
fn in_a_running_query_every_epoch_sees_one_version_and_versions_only_advance() {
    for (trigger, batch) in [(continuous(), None), (micro_batch(), Some(7))] {
        let table = ReloadableTable::new(versioned(0));
        let rows = Arc::new(Mutex::new(Vec::new()));
        let mut query = builder(trigger);
        if let Some(records) = batch {
            query.max_batch_records(records);
        }
        let reloader = table.clone();
        query
            .source_instances("records", 2, |instance| {
                let reloader = reloader.clone();
                // Instance 0 reloads while it emits: version 1 after its 100th record,
                // version 2 after its 250th.
                IterSource::new((0..400u32).map(move |id| {
                    if instance == 0 && (id == 100 || id == 250) {
                        reloader.reload(versioned(if id == 100 { 1 } else { 2 }));
                    }
                    ((id % 4) as u8, id)
                }))
            })
            .join_static_with(&table, |r: &Record| &r.0, |r, row| (r.1, row.1))
            .sink(
                "epochs",
                EpochSink {
                    rows: rows.clone(),
                    epoch: 0,
                },
            );
        finish_ok(&query.start().unwrap(), "reloading");
        let rows = rows.lock().unwrap();
        assert_eq!(rows.len(), 800, "{trigger:?}: one match per record");
        let mut by_epoch: BTreeMap<u64, Vec<u16>> = BTreeMap::new();
        for (epoch, (_, version)) in rows.iter() {
            by_epoch.entry(*epoch).or_default().push(*version);
        }
        let mut previous = 0;
        for (epoch, versions) in &by_epoch {
            let version = versions[0];
            assert!(
                versions.iter().all(|v| *v == version),
                "{trigger:?}: epoch {epoch} mixes versions {versions:?}"
            );
            assert!(
                version >= previous,
                "{trigger:?}: epoch {epoch} went back to version {version}"
            );
            previous = version;
        }
        if batch.is_some() {
            // Batches of at most 7 records: the reloads land well before the end.
            assert_eq!(previous, 2, "the last epochs see the last version");
        }
    }
}

#[test]
fn a_panicking_key_function_fails_the_query_naming_the_join() {
    let table = table_of(&[(1, 10)]);
    let mut query = builder(micro_batch());
    query
        .from_iter("records", [(1u8, 0u32), (2, 1)])
        .join_static(&table, |r: &Record| {
            assert!(r.0 != 2, "no key 2 here");
            &r.0
        })
        .for_each(|_| {});
    let running = query.start().unwrap();
    let error = common::finish(&running, "panicking join").unwrap_err();
    match &error {
        rivulet::Error::OperatorPanicked { operator, message } => {
            assert_eq!(operator, "join_static");
            assert!(message.contains("no key 2 here"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
