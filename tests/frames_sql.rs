//! DataFrame operations and SQL over streams of rows, against plain sequential
//! computations over the same rows (written here by hand, with Spark's null rules and
//! arithmetic), and SQL that must be refused with the construct and its position.

mod common;

use common::{sorted, Rng};
use rivulet::expr::{col, lit};
use rivulet::frame::{avg, count, count_all, max, min, sum, DataFrame, JoinType, StaticFrame};
use rivulet::row::{DataType, Field, Row, Schema, Value};
use rivulet::sink::ConsoleSink;
use rivulet::sql::SqlError;
use rivulet::{OutputMode, Query, QueryBuilder, Timestamp, Trigger};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const PUMPS: [&str; 4] = ["COHUTTA", "BUTTE", "CARGO", "MOJAVE"];

/// One reading: `(resid, hz, n, ts seconds)`, nulls now and then.
type Reading = (Option<&'static str>, Option<f64>, Option<i32>, i64);

fn readings(count: usize, seed: u64) -> Vec<Reading> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let resid = (rng.below(13) != 0).then(|| PUMPS[rng.below(4) as usize]);
            let hz = (rng.below(11) != 0).then(|| rng.below(10_000) as f64 / 97.0);
            let n = (rng.below(9) != 0).then(|| rng.below(1000) as i32 - 300);
            (resid, hz, n, i as i64 * 7)
        })
        .collect()
}

fn schema() -> Arc<Schema> {
    Arc::new(
        Schema::new([
            Field::new("resid", DataType::String),
            Field::new("hz", DataType::Double),
            Field::new("n", DataType::Integer),
            Field::new("ts", DataType::Timestamp),
        ])
        .unwrap(),
    )
}

fn row(&(resid, hz, n, ts): &Reading) -> Row {
    Row::new(vec![
        resid.into(),
        hz.into(),
        n.into(),
        Value::Timestamp(Timestamp(ts * 1_000_000)),
    ])
}

fn frame(query: &mut QueryBuilder, data: &[Reading]) -> DataFrame {
    let rows: Vec<Row> = data.iter().map(row).collect();
    DataFrame::new(query.from_iter("readings", rows), schema())
}

fn run(query: QueryBuilder) {
    query.start().unwrap().await_termination().unwrap();
}

/// `hz > 50 OR n IS NULL`, then `resid, hz * 2, n + 1` (nulls propagate).
fn reference_select(data: &[Reading]) -> Vec<Row> {
    data.iter()
        .filter(|(_, hz, n, _)| hz.is_some_and(|hz| hz > 50.0) || n.is_none())
        .map(|(resid, hz, n, _)| {
            Row::new(vec![
                (*resid).into(),
                hz.map(|hz| hz * 2.0).into(),
                n.map(|n| n + 1).into(),
            ])
        })
        .collect()
}

#[test]
fn select_filter_with_column_match_a_sequential_computation() {
    let data = readings(2_000, 1);
    let mut query = Query::builder();
    let out = frame(&mut query, &data)
        .filter(col("hz").gt(lit(50)).or(col("N").is_null()))
        .unwrap()
        .with_column("twice", col("hz") * lit(2))
        .unwrap()
        .select([col("resid"), col("twice").alias("h2"), col("n") + lit(1)])
        .unwrap();
    assert_eq!(out.columns(), ["resid", "h2", "(n + 1)"]);
    let table = out.to_memory("out");
    run(query);
    assert_eq!(table.rows(), reference_select(&data));
}

#[test]
fn sql_select_where_matches_the_same_reference() {
    let data = readings(2_000, 2);
    let mut query = Query::builder();
    frame(&mut query, &data).create_or_replace_temp_view("Readings");
    let out = query
        .sql("select R.RESID, hz * 2 as h2, n + 1 from readings r where hz > 50 or n is null")
        .unwrap();
    // A column keeps its name as the schema spells it, whatever case the query used
    // (as Spark resolves `R.RESID` to the attribute `resid`).
    assert_eq!(out.columns(), ["resid", "h2", "(n + 1)"]);
    let table = out.to_memory("out");
    run(query);
    assert_eq!(table.rows(), reference_select(&data));
}

/// Per pump: count(*), count(hz), sum(n), min(hz), max(hz), avg(hz) — Spark's types
/// and arithmetic: avg is the double sum in input order over the non-null count.
fn reference_stats(data: &[Reading]) -> Vec<Row> {
    #[derive(Default)]
    struct Acc {
        rows: i64,
        hz_count: i64,
        sum_n: Option<i64>,
        min: Option<f64>,
        max: Option<f64>,
        hz_sum: f64,
    }
    let mut groups: HashMap<Option<&str>, Acc> = HashMap::new();
    for (resid, hz, n, _) in data {
        let acc = groups.entry(*resid).or_default();
        acc.rows += 1;
        if let Some(n) = n {
            acc.sum_n = Some(acc.sum_n.unwrap_or(0) + i64::from(*n));
        }
        if let Some(hz) = hz {
            acc.hz_count += 1;
            acc.hz_sum += hz;
            acc.min = Some(acc.min.map_or(*hz, |m| m.min(*hz)));
            acc.max = Some(acc.max.map_or(*hz, |m| m.max(*hz)));
        }
    }
    sorted(
        groups
            .into_iter()
            .map(|(resid, acc)| {
                Row::new(vec![
                    resid.into(),
                    Value::Long(acc.rows),
                    Value::Long(acc.hz_count),
                    acc.sum_n.into(),
                    acc.min.into(),
                    acc.max.into(),
                    (acc.hz_count > 0)
                        .then(|| acc.hz_sum / acc.hz_count as f64)
                        .into(),
                ])
            })
            .collect(),
    )
}

/// The last row of each group (complete mode prints the whole table every epoch).
fn final_groups(rows: Vec<Row>, key_columns: usize) -> Vec<Row> {
    let mut last: HashMap<Vec<Value>, Row> = HashMap::new();
    for row in rows {
        last.insert(row.values()[..key_columns].to_vec(), row);
    }
    sorted(last.into_values().collect())
}

#[test]
fn group_by_agg_matches_a_sequential_computation_to_the_bit() {
    let data = readings(3_000, 3);
    let mut query = Query::builder();
    query.output_mode(OutputMode::Complete);
    let out = frame(&mut query, &data)
        .group_by([col("resid")])
        .unwrap()
        .agg([
            count_all(),
            count(col("hz")),
            sum(col("n")),
            min(col("hz")),
            max(col("hz")),
            avg(col("hz")).alias("avghz"),
        ])
        .unwrap();
    assert_eq!(
        out.schema_string(),
        "root\n |-- resid: string (nullable = true)\n |-- count(1): bigint (nullable = false)\n \
         |-- count(hz): bigint (nullable = false)\n |-- sum(n): bigint (nullable = true)\n \
         |-- min(hz): double (nullable = true)\n |-- max(hz): double (nullable = true)\n \
         |-- avghz: double (nullable = true)\n"
    );
    let table = out.to_memory("stats");
    run(query);
    assert_eq!(final_groups(table.rows(), 1), reference_stats(&data));
}

#[test]
fn sql_group_by_having_matches_the_reference() {
    let data = readings(3_000, 4);
    let mut query = Query::builder();
    query.output_mode(OutputMode::Complete);
    frame(&mut query, &data).create_or_replace_temp_view("readings");
    let out = query
        .sql(
            "SELECT resid, COUNT(*), count(hz), SUM(n), min(hz), MAX(hz), avg(hz) AS avghz \
             FROM readings GROUP BY RESID HAVING count(*) > 2 AND max(hz) - min(hz) >= 0",
        )
        .unwrap();
    let table = out.to_memory("stats");
    run(query);
    let expected: Vec<Row> = reference_stats(&data)
        .into_iter()
        .filter(|r| {
            let (rows, lo, hi) = (
                r.values()[1].as_i64(),
                r.values()[4].as_f64(),
                r.values()[5].as_f64(),
            );
            rows.unwrap() > 2 && lo.zip(hi).is_some_and(|(lo, hi)| hi - lo >= 0.0)
        })
        .collect();
    assert_eq!(final_groups(table.rows(), 1), expected);
}

#[test]
fn sql_expressions_case_in_like_between_and_qualified_star() {
    let data = readings(1_000, 5);
    let mut query = Query::builder();
    frame(&mut query, &data).create_or_replace_temp_view("readings");
    let out = query
        .sql(
            "SELECT s.*, CASE WHEN hz < 20 THEN 'low' WHEN hz < 60 THEN 'mid' ELSE 'high' END AS level \
             FROM readings AS s \
             WHERE resid IN ('COHUTTA', 'BUTTE') AND resid LIKE '%U%' AND NOT n BETWEEN 0 AND 100",
        )
        .unwrap();
    assert_eq!(out.columns(), ["resid", "hz", "n", "ts", "level"]);
    let table = out.to_memory("out");
    run(query);
    let expected: Vec<Row> = data
        .iter()
        .filter(|(resid, _, n, _)| {
            matches!(resid, Some("COHUTTA" | "BUTTE"))
                && resid.is_some_and(|r| r.contains('U'))
                && n.is_some_and(|n| !(0..=100).contains(&n))
        })
        .map(|reading| {
            let mut values = row(reading).into_values();
            let level = match reading.1 {
                Some(hz) if hz < 20.0 => "low",
                Some(hz) if hz < 60.0 => "mid",
                _ => "high", // null matches no WHEN: the ELSE
            };
            values.push(Value::string(level));
            Row::new(values)
        })
        .collect();
    assert_eq!(table.rows(), expected);
}

#[test]
fn windowed_counts_in_append_mode_match_the_windows_the_watermark_closed() {
    let data = readings(1_500, 6);
    let delay = 30;
    let mut query = Query::builder();
    query.output_mode(OutputMode::Append);
    frame(&mut query, &data)
        .with_watermark("ts", "30 seconds")
        .unwrap()
        .create_or_replace_temp_view("events");
    let out = query
        .sql("SELECT resid, WINDOW(ts, \"1 minute\"), COUNT(*) FROM events GROUP BY resid, window(ts, '1 minute')")
        .unwrap();
    assert_eq!(
        out.columns(),
        ["resid", "window_start", "window_end", "count(1)"]
    );
    let table = out.to_memory("hourly");
    run(query);
    let newest = data.iter().map(|r| r.3).max().unwrap();
    let watermark = newest - delay;
    let mut expected: HashMap<(Option<&str>, i64), i64> = HashMap::new();
    for (resid, _, _, ts) in &data {
        let start = ts - ts.rem_euclid(60);
        if start + 60 <= watermark {
            *expected.entry((*resid, start)).or_default() += 1;
        }
    }
    let micros = |s: i64| Value::Timestamp(Timestamp(s * 1_000_000));
    let expected = sorted(
        expected
            .into_iter()
            .map(|((resid, start), n)| {
                Row::new(vec![
                    resid.into(),
                    micros(start),
                    micros(start + 60),
                    Value::Long(n),
                ])
            })
            .collect(),
    );
    assert_eq!(sorted(table.rows()), expected);
}

#[test]
fn dataframe_window_grouping_equals_the_sql_one() {
    let data = readings(800, 7);
    let build = |sql: bool| {
        let mut query = Query::builder();
        query.output_mode(OutputMode::Append);
        let frame = frame(&mut query, &data)
            .with_watermark("ts", "0 seconds")
            .unwrap();
        let out = if sql {
            frame.create_or_replace_temp_view("e");
            query
                .sql("SELECT window.start, resid, count(*) AS c FROM e GROUP BY window(ts, '40 seconds', '20 seconds'), resid")
                .unwrap()
        } else {
            frame
                .group_by([
                    rivulet::frame::window_sliding("ts", "40 seconds", "20 seconds")
                        .unwrap()
                        .into(),
                    rivulet::frame::Grouping::from(col("resid")),
                ])
                .unwrap()
                .agg([count_all().alias("c")])
                .unwrap()
                .select([col("window_start"), col("resid"), col("c")])
                .unwrap()
        };
        let table = out.to_memory("w");
        run(query);
        sorted(table.rows())
    };
    let (by_sql, by_frame) = (build(true), build(false));
    assert!(!by_sql.is_empty());
    assert_eq!(by_sql, by_frame);
}

#[test]
fn union_reads_both_frames() {
    let (a, b) = (readings(300, 8), readings(200, 9));
    let mut query = Query::builder();
    let left = frame(&mut query, &a);
    let right = frame(&mut query, &b);
    let table = left.union(right).unwrap().to_memory("all");
    run(query);
    let expected = sorted(a.iter().chain(&b).map(row).collect());
    assert_eq!(sorted(table.rows()), expected);
}

#[test]
fn console_output_is_headed_by_the_column_names() {
    let out = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut query = Query::builder();
    // Micro-batches print tables headed by the column names (continuous epochs print
    // Spark's `[a,2]` lines).
    query.trigger(Trigger::AvailableNow);
    frame(&mut query, &readings(3, 10)[..1])
        .select_expr(&["resid AS pump", "n"])
        .unwrap()
        .to_console_with(ConsoleSink::to_writer(out.clone()));
    run(query);
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    assert!(text.contains("|pump|"), "{text}");
    assert!(
        text.contains("|  n|") || text.contains("| n|") || text.contains("n|"),
        "{text}"
    );
}

#[test]
fn analysis_errors_name_the_columns_that_exist() {
    let mut query = Query::builder();
    let error = frame(&mut query, &[]).select([col("psi")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "no column `psi`; the columns are: resid, hz, n, ts"
    );
    let mut query = Query::builder();
    let error = frame(&mut query, &[])
        .group_by([col("resid")])
        .unwrap()
        .agg([sum(col("resid"))])
        .unwrap_err();
    assert!(error.to_string().contains("sum(resid)"), "{error}");
    let mut query = Query::builder();
    let error = frame(&mut query, &[])
        .filter(col("hz") + lit(1))
        .unwrap_err();
    assert!(error.to_string().contains("boolean"), "{error}");
    let mut query = Query::builder();
    frame(&mut query, &[]).create_or_replace_temp_view("r");
    let error = query.sql("SELECT chlppm FROM r").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the columns are: resid, hz, n, ts"),
        "{error}"
    );
}

#[test]
fn a_runtime_error_fails_the_query_naming_the_expression() {
    let data = [(Some("COHUTTA"), Some(1.0), Some(i32::MAX), 0)];
    let mut query = Query::builder();
    let _ = frame(&mut query, &data)
        .select([(col("n") + lit(1)).alias("next")])
        .unwrap()
        .to_memory("out");
    let error = query.start().unwrap().await_termination().unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("(n + 1)") && message.contains("overflow"),
        "{message}"
    );
}

fn refused(sql: &str) -> SqlError {
    let mut query = Query::builder();
    frame(&mut query, &[]).create_or_replace_temp_view("readings");
    query.sql(sql).expect_err(sql)
}

#[test]
fn unsupported_sql_names_the_construct_and_its_position() {
    let cases = [
        (
            "SELECT resid FROM readings ORDER BY resid",
            "ORDER BY",
            (1, 28),
        ),
        (
            "SELECT resid FROM readings r JOIN readings s ON r.resid = s.resid",
            "JOIN",
            (1, 35),
        ),
        ("SELECT DISTINCT resid FROM readings", "DISTINCT", (1, 17)),
        ("SELECT upper(resid) FROM readings", "upper", (1, 8)),
        // A subquery is placed at its own SELECT (sqlparser's span of the query).
        (
            "SELECT resid FROM readings\n  WHERE hz > (SELECT 1)",
            "(SELECT 1)",
            (2, 15),
        ),
        ("SELECT resid FROM readings LIMIT 3", "LIMIT", (1, 28)),
        (
            "SELECT count(DISTINCT resid) FROM readings",
            "DISTINCT",
            (1, 8),
        ),
        (
            "SELECT resid FROM readings WHERE count(*) > 1",
            "WHERE",
            (1, 34),
        ),
        (
            "SELECT resid FROM readings GROUP BY hz + 1",
            "GROUP BY an expression",
            (1, 37),
        ),
    ];
    for (sql, construct, (line, column)) in cases {
        match refused(sql) {
            SqlError::Unsupported {
                construct: what,
                position,
            } => {
                assert!(what.contains(construct), "{sql}: {what}");
                assert_eq!(
                    (position.line, position.column),
                    (line, column),
                    "{sql}: {what}"
                );
            }
            other => panic!("{sql}: {other}"),
        }
    }
    match refused("SELECT resid FROM sensors") {
        SqlError::UnknownName { name, known, .. } => {
            assert_eq!(name, "sensors");
            assert_eq!(known, ["readings"]);
        }
        other => panic!("{other}"),
    }
    assert!(matches!(
        refused("SELEC resid FROM readings"),
        SqlError::Parse(_)
    ));
}

#[test]
fn arbitrary_text_is_refused_without_a_panic() {
    let words = [
        "SELECT", "FROM", "readings", "WHERE", "GROUP", "BY", "(", ")", ",", "*", "resid", "hz",
        "count", "window", "'1 hour'", "AND", "NOT", "IN", "LIKE", "CASE", "WHEN", "THEN", "END",
        "1", "0.5", "-", "/", "=", "AS", "s", ".", "HAVING", "NULL", "IS", "JOIN", "ON",
    ];
    let mut rng = Rng::new(11);
    for _ in 0..500 {
        let mut sql = String::from("SELECT ");
        for _ in 0..rng.below(14) {
            sql.push_str(words[rng.below(words.len() as u64) as usize]);
            sql.push(' ');
        }
        let mut query = Query::builder();
        frame(&mut query, &[]).create_or_replace_temp_view("readings");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            query.sql(&sql).map(|frame| frame.columns())
        }));
        assert!(result.is_ok(), "panicked on {sql}");
    }
}

/// The static side of the join tests: `(resid, vendor, code)`, two rows for COHUTTA,
/// none for MOJAVE, one with a null pump (which matches nothing).
fn pumps() -> StaticFrame {
    let schema = Arc::new(
        Schema::new([
            Field::new("resid", DataType::String),
            Field::new("vendor", DataType::String),
            Field::new("code", DataType::Long),
        ])
        .unwrap(),
    );
    let rows = PUMP_ROWS.iter().map(|&(resid, vendor, code)| {
        Row::new(vec![resid.into(), Value::string(vendor), Value::Long(code)])
    });
    StaticFrame::new(schema, rows).unwrap()
}

const PUMP_ROWS: [(Option<&str>, &str, i64); 5] = [
    (Some("COHUTTA"), "HydroPump", 7),
    (Some("BUTTE"), "Pumps Inc", -3),
    (Some("COHUTTA"), "Acme", 42),
    (None, "Nobody", 0),
    (Some("CARGO"), "Cargo Co", 7),
];

/// Nested loops: a row per (reading, pump row) whose keys are equal and not null, the
/// reading's columns then the pump's; with `outer`, a reading without one gets nulls.
fn reference_join<K: PartialEq>(
    data: &[Reading],
    left_key: impl Fn(&Reading) -> Option<K>,
    right_key: impl Fn(&(Option<&'static str>, &'static str, i64)) -> Option<K>,
    outer: bool,
) -> Vec<Row> {
    let mut out = Vec::new();
    for reading in data {
        let mut matched = false;
        for pump in &PUMP_ROWS {
            if let (Some(l), Some(r)) = (left_key(reading), right_key(pump)) {
                if l == r {
                    matched = true;
                    let mut values = row(reading).into_values();
                    values.extend([pump.0.into(), Value::string(pump.1), Value::Long(pump.2)]);
                    out.push(Row::new(values));
                }
            }
        }
        if outer && !matched {
            let mut values = row(reading).into_values();
            values.extend([Value::Null, Value::Null, Value::Null]);
            out.push(Row::new(values));
        }
    }
    out
}

#[test]
fn join_static_inner_and_left_outer_match_nested_loops() {
    let data = readings(1_500, 21);
    let renamed = |frame: StaticFrame| {
        // The pump's columns renamed so that both sides' names differ.
        let names = ["pump", "vendor", "code"];
        let fields = frame
            .schema()
            .fields()
            .iter()
            .zip(names)
            .map(|(f, n)| Field::new(n, f.data_type()));
        StaticFrame::new(
            Arc::new(Schema::new(fields).unwrap()),
            frame.rows().to_vec(),
        )
        .unwrap()
    };
    let pumps = renamed(pumps());
    for (how, outer) in [(JoinType::Inner, false), (JoinType::LeftOuter, true)] {
        let mut query = Query::builder();
        let joined = frame(&mut query, &data)
            .join_static(&pumps, [(col("resid"), col("pump"))], how)
            .unwrap();
        assert_eq!(
            joined.columns(),
            ["resid", "hz", "n", "ts", "pump", "vendor", "code"]
        );
        let table = joined.to_memory("joined");
        run(query);
        let expected = reference_join(
            &data,
            |r| r.0,
            |p: &(Option<&'static str>, &str, i64)| p.0,
            outer,
        );
        assert!(expected.len() > data.len() / 4);
        assert_eq!(table.rows(), expected, "{how:?}");
    }

    // An integer key against a long one (widened), after a filter, with a step after
    // the join that reads a table column.
    let mut query = Query::builder();
    let out = frame(&mut query, &data)
        .filter(col("n").lt(lit(50)))
        .unwrap()
        .join_static(&pumps, [(col("n"), col("code"))], JoinType::Inner)
        .unwrap()
        .filter(col("vendor").not_eq(lit("Cargo Co")))
        .unwrap()
        .to_memory("by_code");
    run(query);
    let small: Vec<Reading> = data
        .iter()
        .copied()
        .filter(|r| r.2.is_some_and(|n| n < 50))
        .collect();
    let expected: Vec<Row> = reference_join(&small, |r| r.2.map(i64::from), |p| Some(p.2), false)
        .into_iter()
        .filter(|row| row.values()[5] != Value::string("Cargo Co"))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(out.rows(), expected);
}

#[test]
fn sql_join_with_a_static_view_matches_nested_loops() {
    let data = readings(1_500, 22);
    let mut query = Query::builder();
    frame(&mut query, &data).create_or_replace_temp_view("readings");
    pumps().create_or_replace_temp_view(&query, "pumps");
    let out = query
        .sql(
            "SELECT r.resid, p.resid AS presid, vendor, code + 1 AS c FROM readings r \
             LEFT OUTER JOIN pumps p ON r.resid = p.resid WHERE r.hz > 50",
        )
        .unwrap();
    assert_eq!(out.columns(), ["resid", "presid", "vendor", "c"]);
    let table = out.to_memory("out");
    run(query);
    let hot: Vec<Reading> = data
        .iter()
        .copied()
        .filter(|r| r.1.is_some_and(|hz| hz > 50.0))
        .collect();
    let expected: Vec<Row> = reference_join(
        &hot,
        |r| r.0,
        |p: &(Option<&'static str>, &str, i64)| p.0,
        true,
    )
    .into_iter()
    .map(|row| {
        let v = row.into_values();
        let c = match &v[6] {
            Value::Long(code) => Value::Long(code + 1),
            _ => Value::Null,
        };
        Row::new(vec![v[0].clone(), v[4].clone(), v[5].clone(), c])
    })
    .collect();
    assert_eq!(table.rows(), expected);
}

#[test]
fn sql_joins_that_are_not_planned_are_refused() {
    let refused_join = |sql: &str| {
        let mut query = Query::builder();
        frame(&mut query, &[]).create_or_replace_temp_view("readings");
        pumps().create_or_replace_temp_view(&query, "pumps");
        query.sql(sql).expect_err(sql)
    };
    match refused_join("SELECT resid FROM readings r JOIN pumps p ON r.resid = p.resid") {
        SqlError::Ambiguous { name, .. } => assert_eq!(name, "resid"),
        other => panic!("{other}"),
    }
    let cases = [
        (
            "SELECT r.n FROM readings r RIGHT JOIN pumps p ON r.resid = p.resid",
            "JOIN",
            (1, 39),
        ),
        (
            "SELECT r.n FROM readings r JOIN pumps p ON r.hz > p.code",
            "ON condition",
            (1, 44),
        ),
        (
            "SELECT r.n FROM readings r JOIN pumps p USING (resid)",
            "without ON",
            (1, 33),
        ),
        ("SELECT vendor FROM pumps", "static view first", (1, 20)),
    ];
    for (sql, construct, (line, column)) in cases {
        match refused_join(sql) {
            SqlError::Unsupported {
                construct: what,
                position,
            } => {
                assert!(what.contains(construct), "{sql}: {what}");
                assert_eq!(
                    (position.line, position.column),
                    (line, column),
                    "{sql}: {what}"
                );
            }
            other => panic!("{sql}: {other}"),
        }
    }
}

#[test]
fn join_static_using_keeps_one_key_column() {
    let data = readings(800, 23);
    let mut query = Query::builder();
    let joined = frame(&mut query, &data)
        .join_static_using(&pumps(), &["RESID"], JoinType::LeftOuter)
        .unwrap();
    assert_eq!(
        joined.columns(),
        ["resid", "hz", "n", "ts", "vendor", "code"]
    );
    let table = joined.to_memory("joined");
    run(query);
    let expected: Vec<Row> = reference_join(
        &data,
        |r| r.0,
        |p: &(Option<&'static str>, &str, i64)| p.0,
        true,
    )
    .into_iter()
    .map(|row| {
        let mut values = row.into_values();
        values.remove(4);
        Row::new(values)
    })
    .collect();
    assert_eq!(table.rows(), expected);
}
