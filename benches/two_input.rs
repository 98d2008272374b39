//! Records per second into a two-input operator, measured in the same run as what it is
//! built from and what it replaces by hand.
//!
//! ```text
//! cargo bench --bench two_input
//! ```
//!
//! Two producer threads, one consumer thread, `u64` records, each side summed apart:
//!
//! * `raw_rtrb/two_rings`: two threads each pushing into its own raw `rtrb` ring, one
//!   thread polling both rings in turn (the hand-written floor);
//! * `rivulet/union`: two `from_iter` sources → `union` → a sink summing everything (the
//!   one-input fan-in a two-input operator is built on: the same rings and fan-in);
//! * `rivulet/connect`: two `from_iter` sources → `connect` → a `TwoInputOperator`
//!   summing each side → sink (what the tag and the per-record `match` cost on top of the
//!   union).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rivulet::operator::{Context, TwoInputOperator};
use rivulet::Query;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Records per side.
const RECORDS: u64 = 1_000_000;
const RING: usize = 1024;

fn push_all(mut producer: rtrb::Producer<u64>, records: u64) {
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
}

/// Two producers on their own rings, one consumer polling both.
fn raw_two_rings(records: u64) -> Duration {
    let (left_tx, mut left) = rtrb::RingBuffer::<u64>::new(RING);
    let (right_tx, mut right) = rtrb::RingBuffer::<u64>::new(RING);
    let start = Instant::now();
    let a = std::thread::spawn(move || push_all(left_tx, records));
    let b = std::thread::spawn(move || push_all(right_tx, records));
    let (mut left_sum, mut right_sum) = (0u64, 0u64);
    let (mut left_seen, mut right_seen) = (0u64, 0u64);
    while left_seen < records || right_seen < records {
        let mut idle = true;
        while let Ok(value) = left.pop() {
            left_sum = left_sum.wrapping_add(value);
            left_seen += 1;
            idle = false;
        }
        while let Ok(value) = right.pop() {
            right_sum = right_sum.wrapping_add(value);
            right_seen += 1;
            idle = false;
        }
        if idle {
            std::hint::spin_loop();
        }
    }
    a.join().unwrap();
    b.join().unwrap();
    black_box((left_sum, right_sum));
    start.elapsed()
}

fn rivulet_union(records: u64) -> Duration {
    let mut query = Query::builder();
    query.ring_capacity(RING);
    let left = query.from_iter("left", 0..records);
    let right = query.from_iter("right", 0..records);
    let mut sum = 0u64;
    left.union(right).for_each(move |value| {
        sum = sum.wrapping_add(value);
        black_box(sum);
    });
    let start = Instant::now();
    query.start().unwrap().await_termination().unwrap();
    start.elapsed()
}

/// Sums each side apart; emits nothing per record.
#[derive(Clone, Default)]
struct SideSums(u64, u64);

impl TwoInputOperator<u64, u64> for SideSums {
    type Out = (u64, u64);
    type Key = ();
    type Side = ();
    #[inline]
    fn on_left<C: Context<(u64, u64)>>(&mut self, value: u64, _ctx: &mut C) {
        self.0 = self.0.wrapping_add(value);
    }
    #[inline]
    fn on_right<C: Context<(u64, u64)>>(&mut self, value: u64, _ctx: &mut C) {
        self.1 = self.1.wrapping_add(value);
    }
    fn on_end<C: Context<(u64, u64)>>(&mut self, ctx: &mut C) {
        ctx.push((self.0, self.1));
    }
}

fn rivulet_connect(records: u64) -> Duration {
    let mut query = Query::builder();
    query.ring_capacity(RING);
    let left = query.from_iter("left", 0..records);
    let right = query.from_iter("right", 0..records);
    left.connect(right)
        .operator("side_sums", SideSums::default())
        .for_each(|sums| {
            black_box(sums);
        });
    let start = Instant::now();
    query.start().unwrap().await_termination().unwrap();
    start.elapsed()
}

fn two_inputs(c: &mut Criterion) {
    let mut group = c.benchmark_group("two_input");
    group.throughput(Throughput::Elements(2 * RECORDS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    let total = |iters: u64, run: &dyn Fn() -> Duration| (0..iters).map(|_| run()).sum();
    group.bench_function(BenchmarkId::new("raw_rtrb", "two_rings"), |b| {
        b.iter_custom(|iters| total(iters, &|| raw_two_rings(RECORDS)))
    });
    group.bench_function(BenchmarkId::new("rivulet", "union"), |b| {
        b.iter_custom(|iters| total(iters, &|| rivulet_union(RECORDS)))
    });
    group.bench_function(BenchmarkId::new("rivulet", "connect"), |b| {
        b.iter_custom(|iters| total(iters, &|| rivulet_connect(RECORDS)))
    });
    group.finish();
}

criterion_group!(benches, two_inputs);
criterion_main!(benches);
