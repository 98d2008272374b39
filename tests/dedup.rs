//! Streaming deduplication (`drop_duplicates`, `drop_duplicates_within_watermark`) in
//! running queries, typed and DataFrame, against a sequential reference of Spark's
//! semantics.
//!
//! The reference runs the same micro-batches one after the other: batch `k` runs under
//! the watermark `wm(k)` = (largest event time of the batches before it) − delay; a row
//! at or behind `wm(k − 1)` (the watermark the previous batch ended with) is late and
//! dropped; a row whose key has no state is emitted and its key stored, to be evicted
//! at the end of batch `k` once `wm(k)` reaches the key's expiry (its first row's
//! time, plus the delay for `within_watermark`; never without a watermark).
//!
//! * Micro-batch (`AvailableNow`, fixed batch sizes) at parallelism 1: exactly the
//!   reference's rows in order; at parallelism 2, the same rows in some order.
//! * Continuous at parallelism 2, event times that never go back (nothing is late):
//!   exactly the first row of each key, whenever the watermarks arrive.
//! * A checkpointed query stopped at a batch boundary and restarted on more input
//!   continues from the restored keys and watermarks as the reference does.
//! * `SELECT DISTINCT` is refused, naming the construct.
//!
//! Waits are hang guards only (`common`).

mod common;

use common::Rng;
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::frame::DataFrame;
use rivulet::row::{DataType, Field, Row, Schema, Value};
use rivulet::{Query, QueryBuilder, Stream, Timestamp, Trigger};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The watermark delay, µs.
const DELAY: i64 = 200;
/// Rows per micro-batch.
const BATCH: usize = 16;

type Record = (u32, i64);

/// `n` rows `(id, time)`: times rise by 10 with a jitter up to 600 (more than `DELAY`
/// and two batches, so some rows are late), and a third of the rows repeat one of the 40 rows before them
/// exactly (so duplicates come early, on time and late).
fn input(n: usize, seed: u64) -> Vec<Record> {
    let mut rng = Rng::new(seed);
    let mut rows: Vec<Record> = Vec::with_capacity(n);
    for i in 0..n {
        if i > 0 && rng.below(3) == 0 {
            let back = 1 + rng.below(40.min(i as u64)) as usize;
            rows.push(rows[i - back]);
        } else {
            let t = i as i64 * 10 - rng.below(600) as i64;
            rows.push((rng.below(30) as u32, t));
        }
    }
    rows
}

/// How a key and its expiry are made.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// No watermark: key `(id, time)`, kept for ever.
    Unbounded,
    /// `dropDuplicates(id, time)` with a watermark: evicted at the row's time.
    WithWatermark,
    /// `dropDuplicatesWithinWatermark(id)`: evicted at the first row's time + delay.
    WithinWatermark,
}

/// The reference (module docs) over `batches`, run one after the other.
fn reference(batches: &[&[Record]], kind: Kind) -> Vec<Record> {
    let mut state: HashMap<(u32, Option<i64>), Option<i64>> = HashMap::new();
    let mut out = Vec::new();
    let (mut max_seen, mut previous) = (i64::MIN, i64::MIN);
    for batch in batches {
        let watermark = if max_seen == i64::MIN {
            i64::MIN
        } else {
            max_seen - DELAY
        };
        for &(id, t) in *batch {
            let watched = !matches!(kind, Kind::Unbounded);
            if watched && previous != i64::MIN && t <= previous {
                continue;
            }
            let (key, expiry) = match kind {
                Kind::Unbounded => ((id, Some(t)), None),
                Kind::WithWatermark => ((id, Some(t)), Some(t)),
                Kind::WithinWatermark => ((id, None), Some(t + DELAY)),
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = state.entry(key) {
                slot.insert(expiry);
                out.push((id, t));
            }
        }
        max_seen = batch.iter().map(|r| r.1).fold(max_seen, i64::max);
        if watermark != i64::MIN {
            state.retain(|_, expiry| expiry.is_none_or(|e| e > watermark));
        }
        previous = watermark;
    }
    out
}

fn micro_batches(query: &mut QueryBuilder) {
    query
        .trigger(Trigger::AvailableNow)
        .max_batch_records(BATCH);
}

/// The typed query of `kind` over `rows`, at `parallelism`, into a memory table.
fn typed(
    query: &mut QueryBuilder,
    rows: Vec<Record>,
    kind: Kind,
    parallelism: usize,
) -> rivulet::sink::MemoryTable<Record> {
    let source = query.from_iter("rows", rows);
    let time = |r: &Record| Timestamp(r.1);
    match kind {
        Kind::Unbounded => source
            .key_by(|r: &Record| *r)
            .with_parallelism(parallelism)
            .drop_duplicates()
            .to_memory("out"),
        Kind::WithWatermark => watermark(source)
            .key_by(|r: &Record| *r)
            .with_parallelism(parallelism)
            .drop_duplicates_with_watermark(time)
            .to_memory("out"),
        Kind::WithinWatermark => watermark(source)
            .key_by(|r: &Record| r.0)
            .with_parallelism(parallelism)
            .drop_duplicates_within_watermark(time, Duration::from_micros(DELAY as u64))
            .to_memory("out"),
    }
}

fn watermark<S: rivulet::stream::Chain<Out = Record>>(
    stream: Stream<S>,
) -> Stream<impl rivulet::stream::Chain<Out = Record>> {
    stream
        .with_event_time(|r: &Record| Timestamp(r.1))
        .with_watermark(Duration::from_micros(DELAY as u64))
}

fn run_typed(rows: &[Record], kind: Kind, parallelism: usize) -> Vec<Record> {
    let mut query = Query::builder();
    micro_batches(&mut query);
    let out = typed(&mut query, rows.to_vec(), kind, parallelism);
    let running = query.start().unwrap();
    common::finish_ok(&running, "dedup");
    out.rows()
}

fn sorted(mut rows: Vec<Record>) -> Vec<Record> {
    rows.sort_unstable();
    rows
}

#[test]
fn micro_batches_match_the_reference() {
    for (seed, kind) in [
        (1, Kind::Unbounded),
        (2, Kind::WithWatermark),
        (3, Kind::WithinWatermark),
    ] {
        let rows = input(800, seed);
        let batches: Vec<&[Record]> = rows.chunks(BATCH).collect();
        let expected = reference(&batches, kind);
        assert!(expected.len() < rows.len(), "{kind:?}: no duplicates");
        assert_eq!(run_typed(&rows, kind, 1), expected, "{kind:?}");
        assert_eq!(
            sorted(run_typed(&rows, kind, 2)),
            sorted(expected),
            "{kind:?} at parallelism 2"
        );
    }
}

/// The inputs exercise what the tests are about: the three kinds differ (late rows
/// dropped, evicted keys emitted again).
#[test]
fn the_watermark_matters() {
    let rows = input(800, 4);
    let batches: Vec<&[Record]> = rows.chunks(BATCH).collect();
    let unbounded = reference(&batches, Kind::Unbounded);
    let with = reference(&batches, Kind::WithWatermark);
    assert!(with.len() < unbounded.len(), "no row was late");
    let within = reference(&batches, Kind::WithinWatermark);
    let ids: std::collections::HashSet<u32> = within.iter().map(|r| r.0).collect();
    assert!(
        within.len() > ids.len(),
        "no key was evicted and seen again"
    );
}

#[test]
fn continuous_emits_the_first_row_of_each_key() {
    // Times never go back and the delay is positive: nothing is late, so whenever the
    // watermarks arrive, the output is the first row of each key.
    let mut rng = Rng::new(5);
    let rows: Vec<Record> = (0..3000).map(|i| (rng.below(50) as u32, i / 7)).collect();
    let mut expected = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &r in &rows {
        if seen.insert(r) {
            expected.push(r);
        }
    }
    let mut query = Query::builder();
    query.trigger(Trigger::Continuous {
        checkpoint_interval: Duration::from_millis(1),
    });
    let out = typed(&mut query, rows, Kind::WithWatermark, 2);
    let running = query.start().unwrap();
    common::finish_ok(&running, "continuous dedup");
    assert_eq!(sorted(out.rows()), sorted(expected));
}

fn schema() -> Arc<Schema> {
    Arc::new(
        Schema::new([
            Field::new("id", DataType::Long),
            Field::new("ts", DataType::Timestamp),
        ])
        .unwrap(),
    )
}

fn to_row(&(id, t): &Record) -> Row {
    Row::new(vec![
        Value::Long(i64::from(id)),
        Value::Timestamp(Timestamp(t)),
    ])
}

fn from_row(row: &Row) -> Record {
    match row.values() {
        [Value::Long(id), Value::Timestamp(t)] => (*id as u32, t.0),
        other => panic!("unexpected row {other:?}"),
    }
}

#[test]
fn data_frames_match_the_reference() {
    for (seed, kind) in [
        (6, Kind::Unbounded),
        (7, Kind::WithWatermark),
        (8, Kind::WithinWatermark),
    ] {
        let rows = input(800, seed);
        let batches: Vec<&[Record]> = rows.chunks(BATCH).collect();
        let expected = reference(&batches, kind);
        let mut query = Query::builder();
        micro_batches(&mut query);
        let frame = DataFrame::new(
            query.from_iter("rows", rows.iter().map(to_row).collect::<Vec<_>>()),
            schema(),
        );
        let delay = format!("{DELAY} microseconds");
        let frame = match kind {
            Kind::Unbounded => frame.drop_duplicates(&[]),
            Kind::WithWatermark => frame
                .with_watermark("ts", &delay)
                .unwrap()
                .drop_duplicates(&["ID", "ts"]),
            Kind::WithinWatermark => frame
                .with_watermark("ts", &delay)
                .unwrap()
                .drop_duplicates_within_watermark(&["id"]),
        }
        .unwrap();
        assert_eq!(frame.columns(), ["id", "ts"]);
        let out = frame.to_memory("out");
        let running = query.start().unwrap();
        common::finish_ok(&running, "frame dedup");
        let got: Vec<Record> = out.rows().iter().map(from_row).collect();
        assert_eq!(got, expected, "{kind:?}");
    }
}

#[test]
fn frame_errors_name_the_problem() {
    let mut query = Query::builder();
    let frame = DataFrame::new(query.from_iter("rows", [to_row(&(1, 1))]), schema());
    let error = frame.drop_duplicates(&["nope"]).unwrap_err().to_string();
    assert!(error.contains("nope") && error.contains("ts"), "{error}");
    let frame = DataFrame::new(query.from_iter("more", [to_row(&(1, 1))]), schema());
    let error = frame
        .drop_duplicates_within_watermark(&["id"])
        .unwrap_err()
        .to_string();
    assert!(error.contains("watermark"), "{error}");
}

#[test]
fn event_time_dedup_without_a_watermark_is_refused_at_start() {
    let mut query = Query::builder();
    query
        .from_iter("rows", [(1u32, 1i64)])
        .key_by(|r: &Record| *r)
        .drop_duplicates_with_watermark(|r: &Record| Timestamp(r.1))
        .to_memory("out");
    let error = match query.start() {
        Ok(_) => panic!("an event-time dedup without a watermark started"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("needs a watermark"), "{error}");
}

#[test]
fn select_distinct_is_refused() {
    let mut query = Query::builder();
    let frame = DataFrame::new(query.from_iter("rows", [to_row(&(1, 1))]), schema());
    frame.create_or_replace_temp_view("rows");
    let error = query
        .sql("SELECT DISTINCT id FROM rows")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("DISTINCT") && error.contains("drop_duplicates"),
        "{error}"
    );
}

#[test]
fn a_restart_continues_from_the_checkpointed_keys() {
    for kind in [Kind::WithWatermark, Kind::WithinWatermark] {
        let dir = tempfile::tempdir().unwrap();
        let rows = input(640, 9);
        let run = |rows: &[Record]| {
            let mut query = Query::builder();
            micro_batches(&mut query);
            query.checkpoint(
                CheckpointConfig::new(dir.path())
                    .interval(Duration::from_secs(3600))
                    .durability(Durability::OsBuffered),
            );
            let out = typed(&mut query, rows.to_vec(), kind, 1);
            let running = query.start().unwrap();
            common::finish_ok(&running, "checkpointed dedup");
            out.rows()
        };
        // The first run ends at a batch boundary; a source that resumed at its end
        // offset then reads the rest.
        let split = 20 * BATCH;
        let mut got = run(&rows[..split]);
        got.extend(run(&rows));
        // The first run's last watermark ends one more (empty) batch.
        let mut batches: Vec<&[Record]> = rows[..split].chunks(BATCH).collect();
        batches.push(&[]);
        batches.extend(rows[split..].chunks(BATCH));
        assert_eq!(got, reference(&batches, kind), "{kind:?}");
    }
}
