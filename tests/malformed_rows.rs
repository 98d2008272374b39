//! Spark's three malformed-record modes, end to end through the file source, on a
//! hand-written malformed CSV file (and a JSON lines file) whose expected verdicts were
//! written down from Spark's rules (`UnivocityParser.convert`, `FailureSafeParser`,
//! `CSVExprUtils.filterCommentAndEmpty`), not from rivulet's output:
//!
//! * blank lines (empty after `trim`) are no records;
//! * a row with too few or too many fields is malformed; PERMISSIVE keeps the fields it
//!   has (missing ones null, extra ones ignored);
//! * a field that does not convert makes the row malformed; PERMISSIVE nulls that field
//!   and keeps the others;
//! * an empty field is null, not malformed;
//! * invalid UTF-8 becomes U+FFFD (malformed only where a typed field then fails);
//! * a header row where none is expected is a data row, malformed by its typed fields;
//! * booleans in any case, doubles with surrounding spaces, `Inf`.
//!
//! Every wait is a hang guard (`common::HANG_GUARD`); nothing asserts on timing.

mod common;

use common::{finish, HANG_GUARD};
use rivulet::format::{CsvOptions, ParseMode};
use rivulet::source::FileSourceConfig;
use rivulet::{Query, QueryProgress};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// A Spark-like schema: every field nullable, plus the corrupt-record column.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Reading {
    id: Option<i32>,
    name: Option<String>,
    psi: Option<f64>,
    ok: Option<bool>,
    _corrupt_record: Option<String>,
}

/// The same schema without a corrupt-record column.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Plain {
    id: Option<i32>,
    name: Option<String>,
    psi: Option<f64>,
    ok: Option<bool>,
}

/// A schema with fields that cannot be null.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Strict {
    id: i32,
    name: String,
    psi: f64,
    ok: bool,
}

/// The malformed file, line by line, with Spark's verdict for each.
fn lines() -> Vec<(&'static [u8], Expect)> {
    use Expect::*;
    vec![
        (
            b"1,alpha,0.5,true",
            Good(Some(1), Some("alpha"), Some(0.5), Some(true)),
        ),
        (b"", Blank),
        (b"   \t", Blank),
        (
            b"2,beta,abc,false",
            Bad(Some(2), Some("beta"), None, Some(false)),
        ),
        (b"3,gamma", Bad(Some(3), Some("gamma"), None, None)),
        (
            b"4,delta,1.5,true,extra",
            Bad(Some(4), Some("delta"), Some(1.5), Some(true)),
        ),
        (
            b"x5,eps,2.5,TRUE",
            Bad(None, Some("eps"), Some(2.5), Some(true)),
        ),
        (b"6,,,", Good(Some(6), None, None, None)),
        (
            b"7,\"quoted, name\",3.5,false",
            Good(Some(7), Some("quoted, name"), Some(3.5), Some(false)),
        ),
        (
            b"8,caf\xff,4.5,true",
            Good(Some(8), Some("caf\u{FFFD}"), Some(4.5), Some(true)),
        ),
        (
            b"9,zeta,\xff1.0,true",
            Bad(Some(9), Some("zeta"), None, Some(true)),
        ),
        (b"id,name,psi,ok", Bad(None, Some("name"), None, None)),
        (
            b"10,eta, 2.0 ,False",
            Good(Some(10), Some("eta"), Some(2.0), Some(false)),
        ),
        (
            b"11,theta,Inf,true",
            Good(Some(11), Some("theta"), Some(f64::INFINITY), Some(true)),
        ),
        (
            b"12,iota,7,yes",
            Bad(Some(12), Some("iota"), Some(7.0), None),
        ),
        (
            b"13,kappa,1e3,false",
            Good(Some(13), Some("kappa"), Some(1000.0), Some(false)),
        ),
        (
            b"\"14\",lambda,-0.25,true",
            Good(Some(14), Some("lambda"), Some(-0.25), Some(true)),
        ),
    ]
}

/// Spark's verdict on a line: fields (id, name, psi, ok).
#[derive(Debug, Clone)]
enum Expect {
    Good(Option<i32>, Option<&'static str>, Option<f64>, Option<bool>),
    /// Malformed; the PERMISSIVE row.
    Bad(Option<i32>, Option<&'static str>, Option<f64>, Option<bool>),
    Blank,
}

fn write_file(dir: &Path) -> String {
    let mut bytes = Vec::new();
    for (line, _) in lines() {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    let name = "readings.csv";
    std::fs::write(dir.join(".tmp"), &bytes).unwrap();
    std::fs::rename(dir.join(".tmp"), dir.join(name)).unwrap();
    name.to_string()
}

/// The line's text as Spark keeps it in the corrupt-record column.
fn raw(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

fn config(dir: &Path, mode: ParseMode) -> FileSourceConfig {
    FileSourceConfig::csv(dir)
        .mode(mode)
        .poll_interval(Duration::from_millis(5))
}

fn counter(progress: &QueryProgress, name: &str) -> u64 {
    progress
        .operator("readings")
        .and_then(|op| op.counters.get(name).copied())
        .unwrap_or(0)
}

/// Runs a query over `dir` until it has `rows` rows.
fn collect<T>(config: FileSourceConfig, rows: usize) -> (Vec<T>, QueryProgress)
where
    T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    let mut query = Query::builder();
    let table = query.read_dir::<T>("readings", config).to_memory("rows");
    let running = query.start().unwrap();
    assert_eq!(
        table.wait_for_len(rows, HANG_GUARD),
        rows,
        "rows did not arrive"
    );
    // Let the rest of the file (if any) through: more rows would fail the comparison.
    std::thread::sleep(Duration::from_millis(30));
    running.stop().unwrap();
    (table.rows(), running.progress())
}

#[test]
fn permissive_keeps_malformed_rows_with_nulls_and_the_raw_line() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path());
    let mut expected = Vec::new();
    let mut malformed = 0;
    for (line, expect) in lines() {
        let (fields, corrupt) = match expect {
            Expect::Good(a, b, c, d) => ((a, b, c, d), None),
            Expect::Bad(a, b, c, d) => {
                malformed += 1;
                ((a, b, c, d), Some(raw(line)))
            }
            Expect::Blank => continue,
        };
        expected.push(Reading {
            id: fields.0,
            name: fields.1.map(str::to_string),
            psi: fields.2,
            ok: fields.3,
            _corrupt_record: corrupt,
        });
    }
    let (rows, progress) =
        collect::<Reading>(config(dir.path(), ParseMode::Permissive), expected.len());
    assert_eq!(rows, expected);
    assert_eq!(counter(&progress, "malformed_rows"), malformed);
    assert_eq!(counter(&progress, "dropped_rows"), 0);

    // Without a corrupt-record column: the same rows, no raw line.
    let plain: Vec<Plain> = expected
        .iter()
        .map(|r| Plain {
            id: r.id,
            name: r.name.clone(),
            psi: r.psi,
            ok: r.ok,
        })
        .collect();
    let (rows, _) = collect::<Plain>(config(dir.path(), ParseMode::Permissive), plain.len());
    assert_eq!(rows, plain);
}

#[test]
fn drop_malformed_drops_counts_and_quarantines_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path());
    let quarantine = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    let mut bad_lines = Vec::new();
    for (number, (line, expect)) in lines().into_iter().enumerate() {
        match expect {
            Expect::Good(a, b, c, d) => expected.push(Plain {
                id: a,
                name: b.map(str::to_string),
                psi: c,
                ok: d,
            }),
            Expect::Bad(..) => bad_lines.push((number as u64 + 1, raw(line))),
            Expect::Blank => {}
        }
    }
    let config = config(dir.path(), ParseMode::DropMalformed).quarantine_dir(quarantine.path());
    let (rows, progress) = collect::<Plain>(config, expected.len());
    assert_eq!(rows, expected);
    assert_eq!(counter(&progress, "malformed_rows"), bad_lines.len() as u64);
    assert_eq!(counter(&progress, "dropped_rows"), bad_lines.len() as u64);
    let text =
        std::fs::read_to_string(quarantine.path().join("_quarantine/readings.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let got: Vec<(u64, String)> = entries
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["record"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, bad_lines);
    for entry in &entries {
        assert!(entry["file"].as_str().unwrap().ends_with(&file), "{entry}");
        assert!(!entry["error"].as_str().unwrap().is_empty());
    }
    // The bad number on line 4 names its field.
    assert_eq!(entries[0]["field"], "`psi` (column 3)");
}

#[test]
fn fail_fast_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path());
    let mut query = Query::builder();
    let table = query
        .read_dir::<Plain>("readings", config(dir.path(), ParseMode::FailFast))
        .to_memory("rows");
    let running = query.start().unwrap();
    let message = finish(&running, "fail fast").unwrap_err().to_string();
    assert!(message.contains(&file), "{message}");
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("`psi` (column 3)"), "{message}");
    assert!(message.contains("abc"), "{message}");
    // At most the row before it came through (the sink may not have published it).
    assert!(table.len() <= 1);
}

#[test]
fn fail_fast_on_a_short_row_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "1,a,0.5,true\n\n2,b\n").unwrap();
    let mut query = Query::builder();
    query
        .read_dir::<Plain>("readings", config(dir.path(), ParseMode::FailFast))
        .for_each(|_| {});
    let running = query.start().unwrap();
    let message = finish(&running, "short row").unwrap_err().to_string();
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("2 fields"), "{message}");
}

/// Rust fields that cannot be null: Permissive cannot keep a row whose failed field is
/// one of them, so it drops (and counts) it, as DropMalformed would.
#[test]
fn permissive_drops_rows_the_type_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.csv"),
        "1,a,0.5,true\n2,b,abc,false\n3,c,1.5,true\n4,d,,true\n",
    )
    .unwrap();
    let (rows, progress) = collect::<Strict>(config(dir.path(), ParseMode::Permissive), 2);
    assert_eq!(
        rows,
        [
            Strict {
                id: 1,
                name: "a".into(),
                psi: 0.5,
                ok: true
            },
            Strict {
                id: 3,
                name: "c".into(),
                psi: 1.5,
                ok: true
            }
        ]
    );
    assert_eq!(counter(&progress, "malformed_rows"), 2);
    assert_eq!(counter(&progress, "dropped_rows"), 2);
}

#[test]
fn comments_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.csv"),
        "# made by hand\n\nid;name;psi;ok\n1;a;0,5;true\n# between\n2;b;1.5;false\n",
    )
    .unwrap();
    let options = CsvOptions::default()
        .delimiter(b';')
        .header(true)
        .comment(Some(b'#'));
    let config = config(dir.path(), ParseMode::Permissive).csv_options(options);
    let (rows, progress) = collect::<Plain>(config, 2);
    assert_eq!(
        rows,
        [
            // `0,5` is no double: null (malformed).
            Plain {
                id: Some(1),
                name: Some("a".into()),
                psi: None,
                ok: Some(true)
            },
            Plain {
                id: Some(2),
                name: Some("b".into()),
                psi: Some(1.5),
                ok: Some(false)
            }
        ]
    );
    assert_eq!(counter(&progress, "malformed_rows"), 1);
}

#[test]
fn json_lines_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"id":1,"name":"a","psi":0.5,"ok":true}"#,
        "",
        r#"{"id":"two","name":"b","psi":1.0,"ok":false}"#,
        "not json",
        r#"{"id":3}"#,
        "[1,2]",
        r#"{"id":4,"name":"c","psi":"high","ok":true}"#,
    ];
    std::fs::write(dir.path().join("a.jsonl"), lines.join("\n")).unwrap();
    let config = FileSourceConfig::json(dir.path()).poll_interval(Duration::from_millis(5));
    let (rows, progress) = collect::<Reading>(config, 6);
    let reading = |id, name: Option<&str>, psi, ok, corrupt: Option<&str>| Reading {
        id,
        name: name.map(str::to_string),
        psi,
        ok,
        _corrupt_record: corrupt.map(str::to_string),
    };
    assert_eq!(
        rows,
        [
            reading(Some(1), Some("a"), Some(0.5), Some(true), None),
            reading(None, Some("b"), Some(1.0), Some(false), Some(lines[2])),
            reading(None, None, None, None, Some(lines[3])),
            // A missing field is null, not malformed.
            reading(Some(3), None, None, None, None),
            reading(None, None, None, None, Some(lines[5])),
            reading(Some(4), Some("c"), None, Some(true), Some(lines[6])),
        ]
    );
    assert_eq!(counter(&progress, "malformed_rows"), 4);

    // FailFast names the JSON field.
    let mut query = Query::builder();
    query
        .read_dir::<Reading>(
            "readings",
            FileSourceConfig::json(dir.path())
                .mode(ParseMode::FailFast)
                .poll_interval(Duration::from_millis(5)),
        )
        .for_each(|_| {});
    let running = query.start().unwrap();
    let message = finish(&running, "json fail fast").unwrap_err().to_string();
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("`id`"), "{message}");
}

#[test]
fn a_corrupt_record_field_that_is_not_an_option_fails_clearly() {
    #[derive(Debug, Clone, Deserialize)]
    #[allow(dead_code)]
    struct Wrong {
        id: Option<i32>,
        _corrupt_record: String,
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "1\n").unwrap();
    let mut query = Query::builder();
    query
        .read_dir::<Wrong>("readings", config(dir.path(), ParseMode::Permissive))
        .for_each(|_| {});
    let running = query.start().unwrap();
    let message = finish(&running, "wrong corrupt field")
        .unwrap_err()
        .to_string();
    assert!(message.contains("Option<String>"), "{message}");
}
