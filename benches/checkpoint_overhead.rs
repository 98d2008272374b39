//! What checkpoints cost: the same keyed pipeline with checkpoints off, every 100 ms and
//! every 10 ms, in one run.
//!
//! ```text
//! cargo bench --bench checkpoint_overhead
//! ```
//!
//! Pipeline: `from_iter` source → `key_by` (1,000 keys) → running count → sink, on one
//! thread plus the checkpoint coordinator. Each checkpoint snapshots the 1,000-key count
//! table (bincode), writes it to the memory-mapped log and msyncs it.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rivulet::checkpoint::CheckpointConfig;
use rivulet::Query;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Enough records for about half a second per run, so that runs hold several 100 ms
/// epochs.
const RECORDS: u64 = 60_000_000;

fn run(interval: Option<Duration>) -> Duration {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut query = Query::builder();
    if let Some(interval) = interval {
        query.checkpoint(CheckpointConfig::new(dir.path()).interval(interval));
    }
    let mut sum = 0u64;
    query
        .from_iter("numbers", 0..RECORDS)
        .key_by(|x| x % 1_000)
        .count()
        .for_each(move |(key, count)| {
            sum = sum.wrapping_add(key ^ count);
            black_box(sum);
        });
    // Timed from after start(): opening the log (preallocating its first segment) is a
    // one-off cost of starting a checkpointed query, not of checkpointing.
    let running = query.start().expect("the query starts");
    let start = Instant::now();
    running.await_termination().expect("the query ends");
    let elapsed = start.elapsed();
    if interval.is_some() {
        let stats = running.progress().checkpoint.expect("checkpointing is on");
        assert!(
            stats.last_complete_epoch.is_some(),
            "no checkpoint completed in {elapsed:?}"
        );
    }
    elapsed
}

fn checkpoint_intervals(c: &mut Criterion) {
    let mut group = c.benchmark_group("checkpoint_overhead");
    group.throughput(Throughput::Elements(RECORDS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(6));
    for (label, interval) in [
        ("off", None),
        ("100ms", Some(Duration::from_millis(100))),
        ("10ms", Some(Duration::from_millis(10))),
    ] {
        group.bench_function(BenchmarkId::new("keyed_count", label), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run(interval)).sum())
        });
    }
    group.finish();
}

criterion_group!(benches, checkpoint_intervals);
criterion_main!(benches);
