//! Cost per record of the per-batch join, measured in the same run as a hand-written
//! `HashMap`-per-batch loop doing the same work.
//!
//! ```text
//! cargo bench --bench batch_join
//! ```
//!
//! The input: batches of 1,000 left and 1,000 right `(u32 key, u64 value)` records,
//! interleaved, keys uniform over 1,000 (so a key has about one value per side per
//! batch: duplicates and keys missing on one side both occur); about 1,000 joined rows
//! per batch. Throughput counts input records.
//!
//! * `hand/hashmap_per_batch`: an `FxHashMap<key, (Vec<left>, Vec<right>)>` filled per
//!   record, drained at the batch end into a `Vec` of `(key, (left, right))` pairs, which
//!   is handed over (taken) per batch — the work of the operator, written out;
//! * `operator/join_per_batch`: the engine's `BatchJoin` (inner) as a `TwoInput`
//!   operator, driven by a `Harness` (records pushed, `end_epoch` per batch, output
//!   taken per batch): the operator's own cost, no threads;
//! * `query/connect_passthrough` and `query/join_per_batch`: whole queries, two
//!   `from_iter` sources → `KeyedStream::connect` → a sink summing the rows, in
//!   micro-batches of 1,000 records per source; the first with an operator that only
//!   forwards each record's value, the second with `join_per_batch`. Their difference is
//!   what the join adds to a running query.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rivulet::operator::batch_join::{BatchJoin, Inner};
use rivulet::operator::{Context, Either, Harness, TwoInput, TwoInputOperator};
use rivulet::{Query, Trigger};
use rustc_hash::FxHashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const BATCHES: usize = 100;
const PER_SIDE: usize = 1_000;
const KEYS: u64 = 1_000;

type Rec = (u32, u64);

/// A small deterministic pseudo-random sequence (xorshift64*).
fn random(n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        })
        .collect()
}

fn side(n: usize, seed: u64) -> Vec<Rec> {
    random(n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, r)| ((r % KEYS) as u32, i as u64))
        .collect()
}

/// The batches, each its left and right records interleaved.
fn batches() -> Vec<Vec<Either<Rec, Rec>>> {
    let left = side(BATCHES * PER_SIDE, 1);
    let right = side(BATCHES * PER_SIDE, 2);
    left.chunks(PER_SIDE)
        .zip(right.chunks(PER_SIDE))
        .map(|(l, r)| {
            l.iter()
                .zip(r)
                .flat_map(|(l, r)| [Either::Left(*l), Either::Right(*r)])
                .collect()
        })
        .collect()
}

type Joined = (u32, (u64, u64));

fn hand_written(batches: &[Vec<Either<Rec, Rec>>]) -> Duration {
    let start = Instant::now();
    let mut buffers: FxHashMap<u32, (Vec<u64>, Vec<u64>)> = FxHashMap::default();
    for batch in batches {
        for record in batch {
            match *record {
                Either::Left((key, value)) => buffers.entry(key).or_default().0.push(value),
                Either::Right((key, value)) => buffers.entry(key).or_default().1.push(value),
            }
        }
        let mut out: Vec<Joined> = Vec::new();
        for (key, (left, right)) in buffers.drain() {
            for l in &left {
                for r in &right {
                    out.push((key, (*l, *r)));
                }
            }
        }
        black_box(std::mem::take(&mut out));
    }
    start.elapsed()
}

fn operator(batches: &[Vec<Either<Rec, Rec>>]) -> Duration {
    let start = Instant::now();
    let mut harness = Harness::new(TwoInput::new(BatchJoin::<u32, u64, u64, _>::new(Inner)));
    for batch in batches {
        for record in batch {
            harness.push(*record);
        }
        harness.end_epoch();
        black_box(harness.take_output());
    }
    start.elapsed()
}

/// Forwards each record's value: the engine's cost of a two-input operator.
#[derive(Clone, Default)]
struct Passthrough;

impl TwoInputOperator<(u32, Rec), (u32, Rec)> for Passthrough {
    type Out = u64;
    type Key = ();
    type Side = ();
    #[inline]
    fn on_left<C: Context<u64>>(&mut self, (_, (_, value)): (u32, Rec), ctx: &mut C) {
        ctx.push(value);
    }
    #[inline]
    fn on_right<C: Context<u64>>(&mut self, (_, (_, value)): (u32, Rec), ctx: &mut C) {
        ctx.push(value);
    }
}

fn query(join: bool) -> Duration {
    let mut query = Query::builder();
    query
        .trigger(Trigger::MicroBatch {
            interval: Duration::ZERO,
        })
        .max_batch_records(PER_SIDE)
        .ring_capacity(1024);
    let left = query
        .from_iter("left", side(BATCHES * PER_SIDE, 1))
        .key_by(|r: &Rec| r.0);
    let right = query
        .from_iter("right", side(BATCHES * PER_SIDE, 2))
        .key_by(|r: &Rec| r.0);
    let mut sum = 0u64;
    if join {
        left.join_per_batch(right)
            .for_each(move |(_, ((_, l), (_, r)))| {
                sum = sum.wrapping_add(l ^ r);
                black_box(sum);
            });
    } else {
        left.connect(right)
            .operator("passthrough", Passthrough)
            .for_each(move |value| {
                sum = sum.wrapping_add(value);
                black_box(sum);
            });
    }
    let start = Instant::now();
    query.start().unwrap().await_termination().unwrap();
    start.elapsed()
}

fn batch_join(c: &mut Criterion) {
    let batches = batches();
    let mut group = c.benchmark_group("batch_join");
    group.throughput(Throughput::Elements((2 * BATCHES * PER_SIDE) as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function(BenchmarkId::new("hand", "hashmap_per_batch"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| hand_written(&batches)).sum())
    });
    group.bench_function(BenchmarkId::new("operator", "join_per_batch"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| operator(&batches)).sum())
    });
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("query", "connect_passthrough"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| query(false)).sum())
    });
    group.bench_function(BenchmarkId::new("query", "join_per_batch"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| query(true)).sum())
    });
    group.finish();
}

criterion_group!(benches, batch_join);
criterion_main!(benches);
