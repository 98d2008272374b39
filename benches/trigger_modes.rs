//! Peak throughput of the same pipeline under each trigger, in one run: continuous
//! (without epochs and with epochs every 100 ms), micro-batches every 100 ms and 10 ms,
//! and available-now (batches back to back).
//!
//! ```text
//! cargo bench --bench trigger_modes
//! ```
//!
//! Pipeline: `from_iter` source of `u64`s → filter → map → thread boundary → sink, the
//! stateless workload of `rivulet bench`, with every record available from the start (a
//! source that is never the bottleneck). Micro-batches take at most
//! `max_batch_records` (default 1,048,576) records each, as Spark's
//! `maxOffsetsPerTrigger`, so a 100 ms trigger caps throughput at about 10.5 M records/s
//! by design; a 10 ms trigger and available-now run batches back to back, which is the
//! mode's peak. Latency per mode is measured by `rivulet bench --modes`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rivulet::{Query, Trigger};
use std::hint::black_box;
use std::time::{Duration, Instant};

const RECORDS: u64 = 8_000_000;
const RING: usize = 1024;

fn run(trigger: Option<Trigger>) -> Duration {
    let mut query = Query::builder();
    query.ring_capacity(RING);
    if let Some(trigger) = trigger {
        query.trigger(trigger);
    }
    let mut sum = 0u64;
    query
        .from_iter("numbers", 0..RECORDS)
        .filter(|x| !x.is_multiple_of(64))
        .map(|x| x.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .new_thread()
        .for_each(move |value| {
            sum = sum.wrapping_add(value);
            black_box(sum);
        });
    let start = Instant::now();
    let running = query.start().expect("the query starts");
    running.await_termination().expect("the query ends");
    let elapsed = start.elapsed();
    // Every record went through (a trigger that stopped early would look fast).
    let kept = RECORDS - RECORDS.div_ceil(64);
    let received = running
        .progress()
        .operator("for_each")
        .map_or(0, |op| op.records_in);
    assert!(
        received == kept,
        "{trigger:?} lost records: {received} of {kept} arrived"
    );
    elapsed
}

fn triggers(c: &mut Criterion) {
    let mut group = c.benchmark_group("trigger_modes");
    group.throughput(Throughput::Elements(RECORDS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.warm_up_time(Duration::from_secs(1));
    let ms = Duration::from_millis;
    for (label, trigger) in [
        ("continuous", None),
        (
            "continuous_epochs_100ms",
            Some(Trigger::Continuous {
                checkpoint_interval: ms(100),
            }),
        ),
        (
            "micro_batch_100ms",
            Some(Trigger::MicroBatch { interval: ms(100) }),
        ),
        (
            "micro_batch_10ms",
            Some(Trigger::MicroBatch { interval: ms(10) }),
        ),
        ("available_now", Some(Trigger::AvailableNow)),
    ] {
        group.bench_function(BenchmarkId::new("stateless", label), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run(trigger)).sum())
        });
    }
    group.finish();
}

criterion_group!(benches, triggers);
criterion_main!(benches);
