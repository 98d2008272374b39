//! Records per second through rivulet pipelines, measured in the same run as the
//! hand-written floor: two threads moving the same `u64`s over one raw `rtrb` ring.
//!
//! ```text
//! cargo bench --bench pipeline_throughput
//! ```
//!
//! * `raw_rtrb/2_threads`: producer and consumer threads spinning on one ring (the floor).
//! * `crossbeam/2_threads`: the same over a bounded `crossbeam-channel` (what a user would
//!   hand-roll).
//! * `rivulet/2_threads`: `from_iter` source → `new_thread()` → sink: one edge, two
//!   threads, default wait policy and pinning.
//! * `rivulet/2_threads_busy_spin`: the same with `WaitPolicy::BusySpin`.
//! * `rivulet/3_stages`: source → map → thread → filter → thread → sink (three threads on
//!   however many cores the machine has).
//! * `rivulet/2_threads_epochs_latency_{off,on}` and `rivulet/3_stages_epochs_latency_{off,on}`:
//!   the same with continuous epochs every 100 ms, latency sampling off
//!   (`latency_sampling(0)`) and at its default (one record in 1024 followed by a latency
//!   marker). The cost of latency measurement is the ratio of the two.
//!
//! `RIVULET_LATENCY_COST=ROUNDS` skips criterion and runs the latency-off and latency-on
//! pipelines alternately, `ROUNDS` times each, printing the medians and their ratio
//! (alternating keeps the machine's drift out of the ratio). Each run moves
//! `RIVULET_LATENCY_RECORDS` records (default 50 M), so that it spans several 100 ms epochs
//! and the per-epoch work (marker flushes, histogram merges) is in the figure.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use rivulet::{Query, Trigger, WaitPolicy};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RECORDS: u64 = 2_000_000;
const RING: usize = 1024;

/// Two threads, one raw rtrb ring, both spinning: the floor the engine is compared to.
fn raw_rtrb(records: u64) -> Duration {
    let (mut producer, mut consumer) = rtrb::RingBuffer::<u64>::new(RING);
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        for i in 0..records {
            let mut item = i;
            loop {
                match producer.push(item) {
                    Ok(()) => break,
                    Err(rtrb::PushError::Full(back)) => {
                        item = back;
                        std::hint::spin_loop();
                    }
                }
            }
        }
    });
    let mut sum = 0u64;
    let mut received = 0;
    while received < records {
        match consumer.pop() {
            Ok(value) => {
                sum = sum.wrapping_add(value);
                received += 1;
            }
            Err(_) => std::hint::spin_loop(),
        }
    }
    sender.join().unwrap();
    black_box(sum);
    start.elapsed()
}

/// The same over a bounded crossbeam channel.
fn crossbeam(records: u64) -> Duration {
    let (sender, receiver) = crossbeam_channel::bounded::<u64>(RING);
    let start = Instant::now();
    let producer = std::thread::spawn(move || {
        for i in 0..records {
            sender.send(i).unwrap();
        }
    });
    let mut sum = 0u64;
    for value in receiver.iter() {
        sum = sum.wrapping_add(value);
    }
    producer.join().unwrap();
    black_box(sum);
    start.elapsed()
}

/// source → thread boundary → sink.
fn rivulet_two_threads(records: u64, policy: WaitPolicy) -> Duration {
    let sum = Arc::new(AtomicU64::new(0));
    let mut query = Query::builder();
    query.ring_capacity(RING).wait_policy(policy);
    let total = sum.clone();
    let mut local = 0u64;
    let mut seen = 0u64;
    query
        .from_iter("numbers", 0..records)
        .new_thread()
        .for_each(move |value| {
            local = local.wrapping_add(value);
            seen += 1;
            if seen == records {
                total.store(local, Ordering::Relaxed);
            }
        });
    let start = Instant::now();
    let running = query.start().unwrap();
    running.await_termination().unwrap();
    let elapsed = start.elapsed();
    black_box(sum.load(Ordering::Relaxed));
    elapsed
}

/// source → map → thread → filter → thread → sink.
fn rivulet_three_stages(records: u64) -> Duration {
    three_stages(records, None)
}

/// Continuous epochs every 100 ms with latency sampling every `every` records (0: off).
fn epochs(query: &mut rivulet::QueryBuilder, every: u32) {
    query
        .trigger(Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(100),
        })
        .latency_sampling(every);
}

/// source → thread boundary → sink with epochs, latency sampling every `every`.
fn two_threads_epochs(records: u64, every: u32) -> Duration {
    let mut query = Query::builder();
    query.ring_capacity(RING);
    epochs(&mut query, every);
    let mut sum = 0u64;
    query
        .from_iter("numbers", 0..records)
        .new_thread()
        .for_each(move |value| {
            sum = sum.wrapping_add(value);
            black_box(sum);
        });
    let start = Instant::now();
    let running = query.start().unwrap();
    running.await_termination().unwrap();
    start.elapsed()
}

/// [`rivulet_three_stages`], with epochs and latency sampling every `every` if set.
fn three_stages(records: u64, sampling: Option<u32>) -> Duration {
    let mut query = Query::builder();
    query.ring_capacity(RING);
    if let Some(every) = sampling {
        epochs(&mut query, every);
    }
    let mut sum = 0u64;
    query
        .from_iter("numbers", 0..records)
        .map(|x| x.wrapping_mul(3))
        .new_thread()
        .filter(|x| x % 7 != 1)
        .new_thread()
        .for_each(move |value| {
            sum = sum.wrapping_add(value);
            black_box(sum);
        });
    let start = Instant::now();
    let running = query.start().unwrap();
    running.await_termination().unwrap();
    start.elapsed()
}

fn pipelines(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(RECORDS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    let total = |iters: u64, run: &dyn Fn() -> Duration| (0..iters).map(|_| run()).sum();
    group.bench_function(BenchmarkId::new("raw_rtrb", "2_threads"), |b| {
        b.iter_custom(|iters| total(iters, &|| raw_rtrb(RECORDS)))
    });
    group.bench_function(BenchmarkId::new("crossbeam", "2_threads"), |b| {
        b.iter_custom(|iters| total(iters, &|| crossbeam(RECORDS)))
    });
    group.bench_function(BenchmarkId::new("rivulet", "2_threads"), |b| {
        b.iter_custom(|iters| {
            total(iters, &|| {
                rivulet_two_threads(RECORDS, WaitPolicy::default())
            })
        })
    });
    group.bench_function(BenchmarkId::new("rivulet", "2_threads_busy_spin"), |b| {
        b.iter_custom(|iters| {
            total(iters, &|| {
                rivulet_two_threads(RECORDS, WaitPolicy::BusySpin)
            })
        })
    });
    group.bench_function(BenchmarkId::new("rivulet", "3_stages"), |b| {
        b.iter_custom(|iters| total(iters, &|| rivulet_three_stages(RECORDS)))
    });
    let every = rivulet::metrics::latency::DEFAULT_SAMPLE_EVERY;
    for (name, sampling) in [("off", 0), ("on", every)] {
        group.bench_function(
            BenchmarkId::new("rivulet", format!("2_threads_epochs_latency_{name}")),
            |b| b.iter_custom(|iters| total(iters, &|| two_threads_epochs(RECORDS, sampling))),
        );
        group.bench_function(
            BenchmarkId::new("rivulet", format!("3_stages_epochs_latency_{name}")),
            |b| b.iter_custom(|iters| total(iters, &|| three_stages(RECORDS, Some(sampling)))),
        );
    }
    group.finish();
}

/// `RIVULET_LATENCY_COST=ROUNDS`: latency off and on, alternately, medians and ratios.
fn latency_cost(rounds: usize) {
    let every = rivulet::metrics::latency::DEFAULT_SAMPLE_EVERY;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    type Pipeline = fn(u64, u32) -> Duration;
    let pipelines: [(&str, Pipeline); 2] = [
        ("2_threads_epochs", two_threads_epochs),
        ("3_stages_epochs", |records, every| {
            three_stages(records, Some(every))
        }),
    ];
    let records: u64 = std::env::var("RIVULET_LATENCY_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000_000);
    for (name, run) in pipelines {
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let rate = |elapsed: Duration| records as f64 / elapsed.as_secs_f64() / 1e6;
            // Alternate which variant goes first, so neither always runs on a warmer machine.
            if round % 2 == 0 {
                off.push(rate(run(records, 0)));
                on.push(rate(run(records, every)));
            } else {
                on.push(rate(run(records, every)));
                off.push(rate(run(records, 0)));
            }
        }
        // The ratio of each round's pair, whose median is steadier than the ratio of the
        // medians when the machine is bimodal (thread placement on 2 cores).
        let paired = median(off.iter().zip(&on).map(|(off, on)| on / off).collect());
        let (off, on) = (median(off), median(on));
        println!(
            "{name}: latency off {off:.2} M rec/s, on (1 in {every}) {on:.2} M rec/s, \
             on/off {:.3}, median of paired on/off {paired:.3} \
             (medians of {rounds}, {records} records a run)",
            on / off
        );
    }
}

fn main() {
    if let Some(rounds) = std::env::var("RIVULET_LATENCY_COST")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        latency_cost(rounds);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

criterion_group!(benches, pipelines);
