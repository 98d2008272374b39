//! Rows of a schema given at run time (`QueryBuilder::read_dir_rows`) against two
//! references over the same CSV files: the typed source with an equivalent struct (rows
//! made from its records with `Row::from_struct`), and a hand parse of the well-formed
//! lines with `str::split`.

mod common;

use common::{sorted, wait_until, Rng};
use rivulet::format::ParseMode;
use rivulet::row::{DataType, Field, Row, Schema, Value};
use rivulet::source::FileSourceConfig;
use rivulet::{Query, QueryBuilder};
use std::sync::Arc;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Reading {
    resid: Option<String>,
    hz: Option<f64>,
    count: Option<i64>,
    ok: Option<bool>,
}

fn schema() -> Arc<Schema> {
    Arc::new(
        Schema::new([
            Field::new("resid", DataType::String),
            Field::new("hz", DataType::Double),
            Field::new("count", DataType::Long),
            Field::new("ok", DataType::Boolean),
        ])
        .unwrap(),
    )
}

/// Lines of sensor-like CSV; about one in ten malformed (a word where a number goes, a
/// short row), some fields empty.
fn lines(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let resid = ["COHUTTA", "NANTAHALA", "THERMALITO", ""][rng.below(4) as usize];
            let hz = format!("{}.{}", rng.below(100), rng.below(100));
            let count = rng.below(1_000).to_string();
            let ok = ["true", "FALSE", ""][rng.below(3) as usize];
            match rng.below(10) {
                0 => format!("{resid},high,{count},{ok}"),
                1 => format!("{resid},{hz}"),
                _ if i % 7 == 0 => format!("{resid},,{count},{ok}"),
                _ => format!("{resid},{hz},{count},{ok}"),
            }
        })
        .collect()
}

fn read<T: Clone + Send + Sync + 'static>(
    dir: &std::path::Path,
    expected: usize,
    build: impl FnOnce(&mut QueryBuilder, FileSourceConfig) -> rivulet::sink::MemoryTable<T>,
) -> Vec<T> {
    let mut query = Query::builder();
    let config = FileSourceConfig::csv(dir).mode(ParseMode::Permissive);
    let table = build(&mut query, config);
    let running = query.start().expect("start");
    wait_until("all rows read", || table.rows().len() >= expected);
    running.stop().expect("stop");
    table.rows()
}

#[test]
fn rows_of_a_runtime_schema_equal_the_typed_source_and_a_hand_parse() {
    let dir = tempfile::tempdir().unwrap();
    let all = lines(3_000, 7);
    for (i, chunk) in all.chunks(1_000).enumerate() {
        std::fs::write(dir.path().join(format!("part-{i}.csv")), chunk.join("\n")).unwrap();
    }
    let schema = schema();
    let rows = read(dir.path(), all.len(), |q, config| {
        q.read_dir_rows("sensor", config, schema.clone())
            .to_memory("rows")
    });
    let typed = read(dir.path(), all.len(), |q, config| {
        q.read_dir::<Reading>("sensor", config).to_memory("typed")
    });
    let from_typed: Vec<Row> = typed
        .iter()
        .map(|reading| Row::from_struct(reading, &schema).unwrap())
        .collect();
    assert_eq!(rows.len(), all.len(), "permissive keeps every line");
    assert_eq!(sorted(rows.clone()), sorted(from_typed));

    // The well-formed lines, parsed by hand.
    let by_hand: Vec<Row> = all
        .iter()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != 4 {
                return None;
            }
            let hz = match fields[1] {
                "" => Value::Null,
                text => Value::Double(text.parse().ok()?),
            };
            Some(Row::new(vec![
                if fields[0].is_empty() {
                    Value::Null
                } else {
                    Value::string(fields[0])
                },
                hz,
                Value::Long(fields[2].parse().unwrap()),
                match fields[3] {
                    "" => Value::Null,
                    text => Value::Boolean(text.eq_ignore_ascii_case("true")),
                },
            ]))
        })
        .collect();
    let mut remaining = sorted(rows);
    for row in &by_hand {
        let at = remaining
            .binary_search(row)
            .unwrap_or_else(|_| panic!("well-formed row {row} missing"));
        remaining.remove(at);
    }
    // What is left are the malformed lines, repaired with nulls.
    assert_eq!(remaining.len(), all.len() - by_hand.len());
    assert!(remaining
        .iter()
        .all(|row| row.values().iter().any(Value::is_null)));
}
