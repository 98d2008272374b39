//! Spark's structured word count over a real loopback socket, as a DataFrame
//! (`select(explode(split(col("value"), " ")).alias("word")).group_by(["word"]).count()`)
//! and as SQL (`SELECT explode(split(value, ' ')) AS word FROM lines`, then a count by
//! word over a view of that result), against a plain `HashMap` count of the same words
//! (`str::split(' ')`, empty words included, as Spark's `split` keeps them).
//!
//! Both trigger modes; the source ends when its client leaves, so each query ends by
//! itself. Update mode: the last row of each word is its count. Waits are hang guards
//! only (`common`).

mod common;

use common::Rng;
use rivulet::expr::{col, explode, split};
use rivulet::frame::DataFrame;
use rivulet::row::{Row, Value};
use rivulet::source::SocketSourceConfig;
use rivulet::{OutputMode, Query, QueryBuilder, Trigger};
use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

const WORDS: [&str; 8] = ["spark", "rivulet", "to", "be", "or", "not", "é", "stream"];

/// `n` lines of one to six words, some separated by two spaces (an empty word).
fn lines(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let words: Vec<&str> = (0..1 + rng.below(6))
                .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
                .collect();
            let gap = if rng.below(8) == 0 { "  " } else { " " };
            words.join(gap)
        })
        .collect()
}

/// The reference: every piece of every line, counted.
fn reference(lines: &[String]) -> HashMap<String, i64> {
    let mut counts = HashMap::new();
    for line in lines {
        for word in line.split(' ') {
            *counts.entry(word.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// Runs the word count `build` makes over a server-mode socket in `trigger`, writes
/// `lines` on one connection and returns the last count of each word.
fn run(
    trigger: Trigger,
    lines: &[String],
    build: impl FnOnce(&mut QueryBuilder, DataFrame) -> DataFrame,
) -> HashMap<String, i64> {
    let config = SocketSourceConfig::server("127.0.0.1:0").end_when_clients_leave(true);
    let stats = config.stats();
    let mut query = Query::builder();
    query.trigger(trigger).output_mode(OutputMode::Update);
    let socket = query.socket_rows("lines", config);
    let counts = build(&mut query, socket);
    assert_eq!(counts.columns(), ["word", "count"]);
    let out = counts.to_memory("counts");
    let running = query.start().expect("the query starts");
    let address = stats.local_addr().expect("the server listens once started");
    let mut connection = TcpStream::connect(address).unwrap();
    for line in lines {
        writeln!(connection, "{line}").unwrap();
    }
    drop(connection);
    common::finish_ok(&running, "word count");
    let mut last = HashMap::new();
    for row in out.rows() {
        match row.values() {
            [Value::String(word), Value::Long(count)] => {
                last.insert(word.to_string(), *count);
            }
            other => panic!("unexpected row {other:?}"),
        }
    }
    last
}

fn triggers() -> [Trigger; 2] {
    [
        Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(2),
        },
        Trigger::MicroBatch {
            interval: Duration::from_millis(2),
        },
    ]
}

#[test]
fn data_frame_word_count_matches_a_hash_map_count() {
    for (seed, trigger) in triggers().into_iter().enumerate() {
        let lines = lines(3000, seed as u64 + 1);
        let counts = run(trigger, &lines, |_, lines| {
            lines
                .select([explode(split(col("value"), " ")).alias("word")])
                .unwrap()
                .group_by(["word"])
                .unwrap()
                .count()
                .unwrap()
        });
        assert_eq!(counts, reference(&lines), "{trigger:?}");
    }
}

#[test]
fn sql_word_count_matches_a_hash_map_count() {
    for (seed, trigger) in triggers().into_iter().enumerate() {
        let lines = lines(3000, seed as u64 + 10);
        let counts = run(trigger, &lines, |query, lines| {
            lines.create_or_replace_temp_view("lines");
            query
                .sql("SELECT explode(split(value, ' ')) AS word FROM lines")
                .unwrap()
                .create_or_replace_temp_view("words");
            query
                .sql("SELECT word, count(*) AS count FROM words GROUP BY word")
                .unwrap()
        });
        assert_eq!(counts, reference(&lines), "{trigger:?}");
    }
}

#[test]
fn explode_repeats_the_other_items_and_skips_null_strings() {
    let schema = std::sync::Arc::new(
        rivulet::row::Schema::new([
            rivulet::row::Field::new("id", rivulet::row::DataType::Long),
            rivulet::row::Field::new("text", rivulet::row::DataType::String),
        ])
        .unwrap(),
    );
    let input = [
        (1, Some("a,b")),
        (2, None),
        (3, Some("")),
        (4, Some("c,,d,")),
    ];
    let rows: Vec<Row> = input
        .iter()
        .map(|(id, text)| {
            Row::new(vec![
                Value::Long(*id),
                text.map_or(Value::Null, Value::string),
            ])
        })
        .collect();
    let mut query = Query::builder();
    let frame = DataFrame::new(query.from_iter("rows", rows), schema);
    let out = frame
        .select([
            col("id"),
            explode(split(col("text"), ",")),
            col("id").alias("again"),
        ])
        .unwrap();
    assert_eq!(out.columns(), ["id", "col", "again"]);
    let table = out.to_memory("out");
    query.start().unwrap().await_termination().unwrap();
    // The reference: `str::split`, a row per piece; none for a null.
    let mut expected = Vec::new();
    for (id, text) in input {
        for piece in text.into_iter().flat_map(|t| t.split(',')) {
            expected.push(Row::new(vec![
                Value::Long(id),
                Value::string(piece),
                Value::Long(id),
            ]));
        }
    }
    assert_eq!(table.rows(), expected);
}

#[test]
fn generators_out_of_place_are_refused() {
    let mut query = Query::builder();
    let frame = || {
        std::sync::Arc::new(
            rivulet::row::Schema::new([rivulet::row::Field::new(
                "value",
                rivulet::row::DataType::String,
            )])
            .unwrap(),
        )
    };
    let lines = DataFrame::new(query.from_iter("a", Vec::<Row>::new()), frame());
    let error = lines
        .filter(explode(split(col("value"), " ")).is_null())
        .unwrap_err()
        .to_string();
    assert!(error.contains("generator"), "{error}");
    let lines = DataFrame::new(query.from_iter("b", Vec::<Row>::new()), frame());
    let error = lines
        .select([split(col("value"), " ")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("array"), "{error}");
    let lines = DataFrame::new(query.from_iter("c", Vec::<Row>::new()), frame());
    let two = [
        explode(split(col("value"), " ")),
        explode(split(col("value"), ",")).alias("b"),
    ];
    let error = lines.select(two).unwrap_err().to_string();
    assert!(error.contains("one generator"), "{error}");
    let lines = DataFrame::new(query.from_iter("d", Vec::<Row>::new()), frame());
    let error = lines
        .select([explode(split(col("value"), " *"))])
        .unwrap_err()
        .to_string();
    assert!(error.contains("empty string"), "{error}");
}
