//! The quick-start query: Spark's classic word count and a rate-source pipeline, run
//! continuously on operator threads linked by SPSC rings, then the word count again in
//! micro-batches on the same operators, printed as Spark's console tables.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```

use rivulet::{Query, Result, Timestamp};
use std::time::Duration;

const TEXT: [&str; 3] = [
    "the quick brown fox jumps over the lazy dog",
    "the dog barks and the fox runs",
    "a quick dog is a happy dog",
];

fn main() -> Result<()> {
    word_count()?;
    rate_pipeline()?;
    micro_batches()
}

/// The word count as micro-batches in complete mode: the application pushes a line at a
/// time; every 50 ms the lines that arrived form one batch and the console sink prints
/// the whole result table (Spark's `Batch: N` output).
fn micro_batches() -> Result<()> {
    use rivulet::{OutputMode, Trigger};
    println!("\n== micro-batches every 50 ms, complete mode, console sink ==");
    let mut query = Query::builder();
    query
        .name("word_count_batches")
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(50),
        })
        .output_mode(OutputMode::Complete);
    let (lines, stream) = query.push_source::<String>("lines");
    stream
        .flat_map(|line: String| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .key_by(|word: &String| word.clone())
        .count()
        .to_console();
    let running = query.start()?;
    for line in TEXT {
        lines.push(line.to_string()).expect("the query is running");
        std::thread::sleep(Duration::from_millis(80));
    }
    drop(lines);
    running.await_termination()
}

/// Word count over an in-memory source: flat_map → keyed running count (2 instances).
fn word_count() -> Result<()> {
    println!("== word count (in-memory source, keyed count on 2 threads) ==");
    let mut query = Query::builder();
    query.name("word_count").parallelism(2);
    let counts = query
        .from_iter("lines", TEXT.map(str::to_string))
        .flat_map(|line: String| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .named("split_words")
        .key_by(|word: &String| word.clone())
        .count()
        .to_memory("word_counts");
    let running = query.start()?;
    running.await_termination()?;

    // The sink saw one running count per word occurrence; the last one per word is final.
    let mut last = std::collections::BTreeMap::new();
    for (word, count) in counts.rows() {
        last.insert(word, count);
    }
    let mut top: Vec<_> = last.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (word, count) in top.iter().take(5) {
        println!("{word:>8} {count}");
    }
    println!("{}", running.progress());
    Ok(())
}

/// A rate source at 200k rows/s for one second: filter → map on the source thread, a
/// keyed exchange to 2 counting threads, and a sink that measures end-to-end latency
/// from each row's *scheduled* time (so stalls are not hidden).
fn rate_pipeline() -> Result<()> {
    println!("== rate source, 200k rows/s for 1 s, keyed count on 2 threads ==");
    let mut query = Query::builder();
    query.name("rate_demo").parallelism(2);
    let latencies = query
        .rate("rate", 200_000)
        .filter(|row| row.value % 3 != 0)
        .map(|row| (row.value % 10, row.timestamp))
        .key_by(|(bucket, _)| *bucket)
        .fold((0u64, Timestamp::MIN), |(count, latest), (_, scheduled)| {
            *count += 1;
            *latest = scheduled;
        })
        .map(|(bucket, (count, scheduled))| {
            let latency_us = Timestamp::now().as_micros() - scheduled.as_micros();
            (bucket, count, latency_us.max(0) as u64)
        })
        .named("latency")
        .to_memory("latest");
    let running = query.start()?;
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(250));
        let progress = running.progress();
        println!(
            "  {:>8} rows in, {:>8} rows out, {:>9.0} rows/s",
            progress.input_rows, progress.output_rows, progress.input_rows_per_second
        );
    }
    running.stop()?;
    let rows = latencies.rows();
    // Bounded explicitly: an auto-resizing `Histogram::new` starts with a highest
    // trackable value of 2, and `saturating_record` clamps to it instead of resizing.
    let mut histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .expect("valid histogram bounds");
    let mut last = std::collections::BTreeMap::new();
    for (bucket, count, latency_us) in &rows {
        last.insert(*bucket, *count);
        histogram.saturating_record(*latency_us);
    }
    println!("rows that passed the filter: {}", rows.len());
    println!("final counts by value % 10: {last:?}");
    println!(
        "end-to-end latency from scheduled time (µs, wall clock): p50 {} p99 {} p99.9 {} max {}",
        histogram.value_at_quantile(0.50),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max()
    );
    println!("{}", running.progress());
    Ok(())
}
