//! Rows from socket lines (`QueryBuilder::socket_rows`, `socket_rows_with_schema`) over
//! real loopback connections, against a hand parse of the same lines.
//!
//! The source runs in server mode and ends when its client leaves, so each query ends
//! by itself once the test's connection has written its lines and closed.
//!
//! * `value` rows: one per line, the line itself (empty lines too).
//! * CSV with a schema: well-formed lines are rows; a bad number is, per Spark's mode,
//!   a row with a null (permissive, counted), a dropped line (counted and quarantined
//!   with its text) or the query's failure naming the line (fail-fast).
//! * JSON lines fill the columns by name.
//!
//! Waits are hang guards only (`common`).

mod common;

use common::Rng;
use rivulet::format::{DecodeOptions, ParseMode};
use rivulet::frame::DataFrame;
use rivulet::row::{DataType, Field, Row, Schema, Value};
use rivulet::source::socket::LineDecoding;
use rivulet::source::SocketSourceConfig;
use rivulet::{Query, QueryBuilder};
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;

/// Runs the frame `build` makes over a server-mode socket source, writes `lines` on one
/// connection, closes it and waits for the query to end. Returns the rows, how the
/// query ended, and the `decode_rows` counters (malformed, dropped).
fn run(
    lines: &[String],
    build: impl FnOnce(&mut QueryBuilder, SocketSourceConfig) -> DataFrame,
) -> (Vec<Row>, rivulet::Result<()>, (u64, u64)) {
    let config = SocketSourceConfig::server("127.0.0.1:0").end_when_clients_leave(true);
    let stats = config.stats();
    let mut query = Query::builder();
    let out = build(&mut query, config).to_memory("out");
    let running = query.start().expect("the query starts");
    let address = stats.local_addr().expect("the server listens once started");
    let mut connection = TcpStream::connect(address).unwrap();
    for line in lines {
        connection.write_all(line.as_bytes()).unwrap();
        connection.write_all(b"\n").unwrap();
    }
    drop(connection);
    let result = common::finish(&running, "socket rows");
    let progress = running.progress();
    let counters = progress
        .operator("decode_rows")
        .map(|op| {
            let get = |name: &str| op.counters.get(name).copied().unwrap_or(0);
            (get("malformed_rows"), get("dropped_rows"))
        })
        .unwrap_or_default();
    (out.rows(), result, counters)
}

fn schema() -> Arc<Schema> {
    Arc::new(
        Schema::new([
            Field::new("resid", DataType::String),
            Field::new("psi", DataType::Double),
        ])
        .unwrap(),
    )
}

/// One line: a well-formed one, one with an empty number, one with a bad number, or a
/// blank line.
fn csv_lines(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| match rng.below(10) {
            0 => format!("pump{i},"),
            1 => format!("pump{i},high{i}"),
            2 => "  ".to_string(),
            _ => format!("pump{i},{}", rng.below(100_000) as f64 / 64.0),
        })
        .collect()
}

/// What a line is, by hand: `None` for a blank line, else the name and the number
/// (`Ok(None)` empty, `Err` unparsable).
fn hand_parse(line: &str) -> Option<(String, Result<Option<f64>, ()>)> {
    if line.trim().is_empty() {
        return None;
    }
    let (name, number) = line.split_once(',').expect("two fields");
    let number = if number.is_empty() {
        Ok(None)
    } else {
        number.parse::<f64>().map(Some).map_err(|_| ())
    };
    Some((name.to_string(), number))
}

fn row(name: &str, number: Option<f64>) -> Row {
    Row::new(vec![
        Value::string(name),
        number.map_or(Value::Null, Value::Double),
    ])
}

fn csv_frame(
    mode: ParseMode,
    quarantine: Option<&std::path::Path>,
) -> impl FnOnce(&mut QueryBuilder, SocketSourceConfig) -> DataFrame {
    let mut decoding = LineDecoding::csv().options(DecodeOptions::default().mode(mode));
    if let Some(dir) = quarantine {
        decoding = decoding.quarantine_dir(dir);
    }
    move |query, config| query.socket_rows_with_schema("sensor", config, decoding, schema())
}

#[test]
fn value_rows_are_the_lines() {
    let lines: Vec<String> = csv_lines(500, 1);
    let (rows, result, _) = run(&lines, |query, config| query.socket_rows("lines", config));
    result.unwrap();
    let expected: Vec<Row> = lines
        .iter()
        .map(|line| Row::new(vec![Value::string(line)]))
        .collect();
    assert_eq!(rows, expected);
}

#[test]
fn permissive_csv_rows_have_nulls_for_bad_fields() {
    let lines = csv_lines(2000, 2);
    let parsed: Vec<_> = lines.iter().filter_map(|line| hand_parse(line)).collect();
    let expected: Vec<Row> = parsed
        .iter()
        .map(|(name, number)| row(name, number.unwrap_or(None)))
        .collect();
    let bad = parsed.iter().filter(|(_, n)| n.is_err()).count() as u64;
    assert!(bad > 0 && expected.len() < lines.len());
    let (rows, result, (malformed, dropped)) = run(&lines, csv_frame(ParseMode::Permissive, None));
    result.unwrap();
    assert_eq!(rows, expected);
    assert_eq!((malformed, dropped), (bad, 0));
}

#[test]
fn dropped_csv_lines_are_counted_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let lines = csv_lines(2000, 3);
    let mut expected = Vec::new();
    let mut bad = Vec::new();
    for line in &lines {
        match hand_parse(line) {
            Some((name, Ok(number))) => expected.push(row(&name, number)),
            Some((_, Err(()))) => bad.push(line.clone()),
            None => {}
        }
    }
    let (rows, result, counters) = run(
        &lines,
        csv_frame(ParseMode::DropMalformed, Some(dir.path())),
    );
    result.unwrap();
    assert_eq!(rows, expected);
    assert_eq!(counters, (bad.len() as u64, bad.len() as u64));
    let quarantine =
        std::fs::read_to_string(dir.path().join("_quarantine").join("sensor.jsonl")).unwrap();
    let records: Vec<String> = quarantine
        .lines()
        .map(|entry| {
            let entry: serde_json::Value = serde_json::from_str(entry).unwrap();
            assert_eq!(entry["source"], "sensor");
            entry["record"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(records, bad);
}

#[test]
fn fail_fast_fails_the_query_naming_the_line() {
    let lines = csv_lines(2000, 4);
    let first_bad = lines
        .iter()
        .find(|line| matches!(hand_parse(line), Some((_, Err(())))))
        .unwrap()
        .clone();
    let (_, result, _) = run(&lines, csv_frame(ParseMode::FailFast, None));
    let error = result
        .expect_err("a malformed line fails the query")
        .to_string();
    assert!(
        error.contains(&first_bad) && error.contains("sensor"),
        "{error}"
    );
}

#[test]
fn json_lines_fill_columns_by_name() {
    let mut rng = Rng::new(5);
    let values: Vec<(String, f64)> = (0..300)
        .map(|i| (format!("r{i}"), rng.below(1000) as f64 / 8.0))
        .collect();
    let lines: Vec<String> = values
        .iter()
        .map(|(name, psi)| format!(r#"{{"PSI": {psi}, "resid": "{name}"}}"#))
        .collect();
    let (rows, result, _) = run(&lines, |query, config| {
        query.socket_rows_with_schema("sensor", config, LineDecoding::json(), schema())
    });
    result.unwrap();
    let expected: Vec<Row> = values.iter().map(|(n, p)| row(n, Some(*p))).collect();
    assert_eq!(rows, expected);
}

#[test]
fn a_text_schema_of_two_columns_is_refused_at_start() {
    let mut query = Query::builder();
    let config = SocketSourceConfig::server("127.0.0.1:0");
    query
        .socket_rows_with_schema("lines", config, LineDecoding::text(), schema())
        .to_memory("out");
    let error = match query.start() {
        Ok(_) => panic!("a two-column text schema started"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("lines") && error.contains("text"), "{error}");
}
