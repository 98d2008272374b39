//! The stream–stream inner join in SQL against the same join in the typed API, over the
//! same records in the same run (issue #16: what the row path costs on top of the
//! typed join operator it plans onto).
//!
//! ```text
//! cargo bench --bench sql_stream_join
//! RIVULET_JOIN_RECORDS=2000000 RIVULET_JOIN_RUNS=7 cargo bench --bench sql_stream_join
//! ```
//!
//! Both sides: `RECORDS` records (default 1,000,000 per side), record `i` with key
//! `i % 100` and event time `i` µs; `left.time BETWEEN right.time − 50 µs AND
//! right.time + 50 µs`; watermark delay 1 ms on both sides (the default emission: every
//! 1,024 records or 1 ms). Every row has exactly one partner (the other side's record
//! with the same `i`), and rows stay in the state for about the delay plus the range.
//!
//! * `typed`: `(u32 key, Timestamp)` tuples from two `from_iter` sources →
//!   `with_event_time → with_watermark → key_by → join → event_time → within → inner`,
//!   the pair as a `(u32, i64, u32, i64)` tuple → memory sink.
//! * `sql`: the same records as rows `(k bigint, t timestamp)` from two `from_iter`
//!   sources → DataFrames `with_watermark("t", "1 millisecond")` → temp views →
//!   `SELECT a.k, a.t AS a_t, b.t AS b_t FROM a JOIN b ON a.k = b.k AND a.t BETWEEN b.t - INTERVAL 50
//!   MICROSECONDS AND b.t + INTERVAL 50 MICROSECONDS` → memory sink (rows of three
//!   values: the join's four, projected).
//!
//! The input vectors are built before the clock starts; each query is timed from
//! `start()` to the end of `await_termination()`, one join instance, threads placed by
//! the OS. Prints the median of `RUNS` runs of each (alternating which goes first) and
//! the ratio of SQL's throughput to the typed one.

use rivulet::frame::DataFrame;
use rivulet::join::TimeRange;
use rivulet::row::{DataType, Field, Row, Schema, Value};
use rivulet::{Pinning, Query, QueryBuilder, Timestamp};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEYS: u32 = 100;
const RUNS: usize = 5;
// The columns named: rivulet refuses a result with two columns of one name (`SELECT *`
// here would give `k, t, k, t`), where Spark allows it until a name is used.
const SQL: &str = "SELECT a.k, a.t AS a_t, b.t AS b_t FROM a JOIN b ON a.k = b.k \
                   AND a.t BETWEEN b.t - INTERVAL 50 MICROSECONDS AND b.t + INTERVAL 50 MICROSECONDS";

fn builder() -> QueryBuilder {
    let mut query = Query::builder();
    query.pinning(Pinning::None).parallelism(1);
    query
}

fn typed(records: usize) -> (Duration, usize) {
    let side: Vec<(u32, Timestamp)> = (0..records)
        .map(|i| (i as u32 % KEYS, Timestamp(i as i64)))
        .collect();
    let mut query = builder();
    let delay = Duration::from_millis(1);
    let time = |e: &(u32, Timestamp)| e.1;
    let left = query
        .from_iter("left", side.clone())
        .with_event_time(time)
        .with_watermark(delay)
        .key_by(|e: &(u32, Timestamp)| e.0);
    let right = query
        .from_iter("right", side)
        .with_event_time(time)
        .with_watermark(delay)
        .key_by(|e: &(u32, Timestamp)| e.0);
    let pairs = left
        .join(right)
        .event_time(time, time)
        .within(TimeRange::from_micros(-50, 50).unwrap())
        .inner(|_, l, r| (l.0, l.1 .0, r.0, r.1 .0))
        .to_memory("pairs");
    let start = Instant::now();
    query.start().unwrap().await_termination().unwrap();
    (start.elapsed(), pairs.rows().len())
}

fn sql(records: usize) -> (Duration, usize) {
    let schema = Arc::new(
        Schema::new([
            Field::new("k", DataType::Long),
            Field::new("t", DataType::Timestamp),
        ])
        .unwrap(),
    );
    let side: Vec<Row> = (0..records)
        .map(|i| {
            Row::new(vec![
                Value::Long(i64::from(i as u32 % KEYS)),
                Value::Timestamp(Timestamp(i as i64)),
            ])
        })
        .collect();
    let mut query = builder();
    for (name, rows) in [("a", side.clone()), ("b", side)] {
        DataFrame::new(query.from_iter(name, rows), schema.clone())
            .with_watermark("t", "1 millisecond")
            .unwrap()
            .create_or_replace_temp_view(name);
    }
    let pairs = query.sql(SQL).unwrap().to_memory("pairs");
    let start = Instant::now();
    query.start().unwrap().await_termination().unwrap();
    (start.elapsed(), pairs.rows().len())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: a quick check then.
    let testing = !std::env::args().any(|arg| arg == "--bench");
    let records: usize = std::env::var("RIVULET_JOIN_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if testing { 20_000 } else { 1_000_000 });
    let runs = std::env::var("RIVULET_JOIN_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(if testing { 1 } else { RUNS });
    println!("sql_stream_join: {records} records per side; median of {runs} runs");
    let mut times: [Vec<Duration>; 2] = Default::default();
    for run in 0..runs {
        for step in 0..2 {
            let which = (run + step) % 2;
            let (elapsed, pairs) = if which == 0 {
                typed(records)
            } else {
                sql(records)
            };
            // Every record has exactly one partner.
            assert_eq!(pairs, records, "{}", ["typed", "sql"][which]);
            times[which].push(elapsed);
        }
    }
    let [typed, sql] = times.map(median);
    let rate = |d: Duration| 2.0 * records as f64 / d.as_secs_f64() / 1e6;
    println!(
        "typed join: {:>8.1} ms  {:>6.2} M records/s",
        typed.as_secs_f64() * 1e3,
        rate(typed)
    );
    println!(
        "sql join:   {:>8.1} ms  {:>6.2} M records/s  ({:.2}× the typed throughput)",
        sql.as_secs_f64() * 1e3,
        rate(sql),
        typed.as_secs_f64() / sql.as_secs_f64()
    );
}
