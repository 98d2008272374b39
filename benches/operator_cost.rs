//! What one operator costs per record, on one thread.
//!
//! ```text
//! cargo bench --bench operator_cost
//! ```
//!
//! * `operator/*`: the operator alone, driven through the public [`Operator`] and
//!   [`Context`] traits into a collector that only `black_box`es what it gets: the
//!   user closure plus the operator's own work (for the keyed count, the hash map).
//! * `chain/*`: a whole single-thread query, `from_iter(0..N) → op → for_each`, per
//!   record: adds the source poll, the per-stage counters and panic guard, and the sink.
//!   `chain/none` (no operator) is the fixed cost those add.
//! * `timers/*`: an event-time timer set per record and fired by a watermark every 64
//!   records, through the operator context and timer service (`harness`) and by a
//!   hand-written loop over a `BTreeSet` (`hand-written`).
//! * `group_state/*`: a running sum per key (1,000 keys), by `map_groups_with_state`'s
//!   operator (`FlatMapGroupsWithState`, continuous mode: a call per record with a
//!   `GroupState` handle, state in `KeyedState`) and by a hand-written loop over an
//!   `FxHashMap` (`hand-written`), both emitting `(key, sum)` per record.
//! * `dedup/*`: `drop_duplicates`'s operator (`DropDuplicates` without event time: a
//!   `KeyedState` of keys) against a hand-written `FxHashSet` loop, both emitting the
//!   record when its key is new: `*/repeated` over 1,000 keys (almost every record a
//!   duplicate), `*/new` with a new key per record (every record stored and emitted).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rivulet::operator::keyed::KeyedFold;
use rivulet::operator::stateless::{Filter, Map};
use rivulet::operator::{Collector, Context, Harness, Operator, Timer, TimerKey};
use rivulet::state::{
    DropDuplicates, FlatMapGroupsWithState, GroupState, GroupStateTimeout, Values,
};
use rivulet::{Epoch, Query, Timestamp};
use rustc_hash::{FxHashMap, FxHashSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Distinct keys of the keyed count, as in `rivulet bench --workload keyed`.
const KEYS: u64 = 1000;
/// Records per query run in the `chain/*` group.
const RECORDS: u64 = 1_000_000;

/// A collector that swallows everything.
struct Discard;

impl<T> Collector<T> for Discard {
    #[inline]
    fn push(&mut self, record: T) {
        black_box(record);
    }
}

/// The context an operator gets, with nothing behind it: no timers, no side output.
impl<T, K: TimerKey, S> Context<T, K, S> for Discard {
    fn side_output(&mut self, record: S) {
        black_box(record);
    }
    fn watermark(&self) -> Timestamp {
        Timestamp::MIN
    }
    fn processing_time(&self) -> Timestamp {
        Timestamp(0)
    }
    fn epoch(&self) -> Epoch {
        Epoch(1)
    }
    fn register_event_time_timer(&mut self, _: K, _: Timestamp) -> bool {
        false
    }
    fn register_processing_time_timer(&mut self, _: K, _: Timestamp) -> bool {
        false
    }
    fn delete_event_time_timer(&mut self, _: &K, _: Timestamp) -> bool {
        false
    }
    fn delete_processing_time_timer(&mut self, _: &K, _: Timestamp) -> bool {
        false
    }
    fn count(&mut self, name: &'static str, n: u64) {
        black_box((name, n));
    }
}

/// Feeds `iters` records `0, 1, 2, …` to `op`.
fn drive<O: Operator<u64>>(mut op: O, iters: u64) -> Duration {
    let mut out = Discard;
    let start = Instant::now();
    for i in 0..iters {
        op.on_record(black_box(i), &mut out);
    }
    start.elapsed()
}

/// Feeds `iters` keyed records `(i % KEYS, i)` to `op`.
fn drive_keyed<O: Operator<(u64, u64)>>(mut op: O, iters: u64) -> Duration {
    let mut out = Discard;
    let start = Instant::now();
    for i in 0..iters {
        let i = black_box(i);
        op.on_record((i % KEYS, i), &mut out);
    }
    start.elapsed()
}

fn operators(c: &mut Criterion) {
    let mut group = c.benchmark_group("operator");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("map", |b| {
        b.iter_custom(|n| drive(Map(|x: u64| x.wrapping_mul(31).rotate_left(7)), n))
    });
    group.bench_function("filter", |b| {
        b.iter_custom(|n| drive(Filter(|x: &u64| !x.is_multiple_of(64)), n))
    });
    group.bench_function("keyed_count", |b| {
        b.iter_custom(|n| {
            drive_keyed(
                KeyedFold::new(|| 0u64, |count: &mut u64, _: u64| *count += 1),
                n,
            )
        })
    });
    group.finish();
}

/// Runs `build`'s single-thread query over `0..RECORDS` and returns its wall time.
fn query_time(build: impl FnOnce(&mut rivulet::QueryBuilder)) -> Duration {
    let mut query = Query::builder();
    build(&mut query);
    let start = Instant::now();
    query.start().unwrap().await_termination().unwrap();
    start.elapsed()
}

fn chains(c: &mut Criterion) {
    let mut group = c.benchmark_group("chain");
    group.throughput(Throughput::Elements(RECORDS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    let total = |iters: u64, run: &dyn Fn() -> Duration| (0..iters).map(|_| run()).sum();
    group.bench_function("none", |b| {
        b.iter_custom(|iters| {
            total(iters, &|| {
                query_time(|q| {
                    q.from_iter("n", 0..RECORDS).for_each(|x| {
                        black_box(x);
                    })
                })
            })
        })
    });
    group.bench_function("map", |b| {
        b.iter_custom(|iters| {
            total(iters, &|| {
                query_time(|q| {
                    q.from_iter("n", 0..RECORDS)
                        .map(|x: u64| x.wrapping_mul(31).rotate_left(7))
                        .for_each(|x| {
                            black_box(x);
                        })
                })
            })
        })
    });
    group.bench_function("filter", |b| {
        b.iter_custom(|iters| {
            total(iters, &|| {
                query_time(|q| {
                    q.from_iter("n", 0..RECORDS)
                        .filter(|x: &u64| !x.is_multiple_of(64))
                        .for_each(|x| {
                            black_box(x);
                        })
                })
            })
        })
    });
    group.bench_function("keyed_count", |b| {
        b.iter_custom(|iters| {
            total(iters, &|| {
                query_time(|q| {
                    q.from_iter("n", 0..RECORDS)
                        .key_by(|x: &u64| x % KEYS)
                        .count()
                        .for_each(|x| {
                            black_box(x);
                        })
                })
            })
        })
    });
    group.finish();
}

/// Sets an event-time timer per record, keyed by `record % KEYS` at time `record`, and
/// emits the key when it fires.
#[derive(Clone)]
struct TimerPerRecord;

impl Operator<u64> for TimerPerRecord {
    type Out = u64;
    type Key = u64;
    type Side = ();
    #[inline]
    fn on_record<C: Context<u64, u64>>(&mut self, record: u64, ctx: &mut C) {
        ctx.register_event_time_timer(record % KEYS, Timestamp(record as i64));
    }
    #[inline]
    fn on_timer<C: Context<u64, u64>>(&mut self, timer: Timer<u64>, ctx: &mut C) {
        ctx.push(timer.key);
    }
}

/// Records between two watermarks in the `timers` group.
const WATERMARK_EVERY: u64 = 64;

/// Event-time timers: one set per record, fired by a watermark every
/// [`WATERMARK_EVERY`] records. `hand-written` does the same with a `BTreeSet` of
/// `(time, key)` and no operator around it; `harness` runs the operator with rivulet's
/// timer service and context, as a stage fires them.
fn timers(c: &mut Criterion) {
    let mut group = c.benchmark_group("timers");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("hand-written", |b| {
        b.iter_custom(|n| {
            let mut pending = std::collections::BTreeSet::new();
            let start = Instant::now();
            for i in 0..n {
                let i = black_box(i);
                pending.insert((i as i64, i % KEYS));
                if i % WATERMARK_EVERY == WATERMARK_EVERY - 1 {
                    while let Some(&(time, key)) = pending.first() {
                        if time > i as i64 {
                            break;
                        }
                        pending.pop_first();
                        black_box(key);
                    }
                }
            }
            start.elapsed()
        })
    });
    group.bench_function("harness", |b| {
        b.iter_custom(|n| {
            let mut harness = Harness::new(TimerPerRecord);
            let start = Instant::now();
            for i in 0..n {
                let i = black_box(i);
                harness.push(i);
                if i % WATERMARK_EVERY == WATERMARK_EVERY - 1 {
                    harness.advance_watermark(Timestamp(i as i64));
                    black_box(harness.take_output());
                }
            }
            start.elapsed()
        })
    });
    group.finish();
}

/// A running sum per key: `map_groups_with_state`'s operator against a hand-written
/// `FxHashMap` loop doing the same update and emitting the same row.
fn group_state(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_state");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("hand-written", |b| {
        b.iter_custom(|n| {
            let mut sums: FxHashMap<u64, u64> = FxHashMap::default();
            let mut out = Discard;
            let start = Instant::now();
            for i in 0..n {
                let i = black_box(i);
                let (key, value) = (i % KEYS, i);
                let sum = sums.entry(key).or_insert(0);
                *sum += value;
                out.push((key, *sum));
            }
            start.elapsed()
        })
    });
    group.bench_function("map_groups_with_state", |b| {
        b.iter_custom(|n| {
            let op = FlatMapGroupsWithState::new(
                GroupStateTimeout::NoTimeout,
                |key: &u64, values: Values<'_, u64>, state: &mut GroupState<u64>| {
                    let sum = state.get_option().copied().unwrap_or(0) + values.sum::<u64>();
                    state.update(sum);
                    std::iter::once((*key, sum))
                },
            );
            drive_keyed(op, n)
        })
    });
    group.finish();
}

/// The key of record `i` in a `dedup/*` workload.
#[inline]
fn dedup_key(i: u64, repeated: bool) -> u64 {
    if repeated {
        i % KEYS
    } else {
        i
    }
}

/// First record per key: `DropDuplicates` against a hand-written `FxHashSet` loop.
fn dedup(c: &mut Criterion) {
    let mut group = c.benchmark_group("dedup");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    for (workload, repeated) in [("repeated", true), ("new", false)] {
        group.bench_function(format!("hand-written/{workload}"), |b| {
            b.iter_custom(|n| {
                let mut seen: FxHashSet<u64> = FxHashSet::default();
                let mut out = Discard;
                let start = Instant::now();
                for i in 0..n {
                    let i = black_box(i);
                    if seen.insert(dedup_key(i, repeated)) {
                        out.push(i);
                    }
                }
                start.elapsed()
            })
        });
        group.bench_function(format!("drop_duplicates/{workload}"), |b| {
            b.iter_custom(|n| {
                let mut op = DropDuplicates::new();
                let mut out = Discard;
                let start = Instant::now();
                for i in 0..n {
                    let i = black_box(i);
                    Operator::<(u64, u64)>::on_record(
                        &mut op,
                        (dedup_key(i, repeated), i),
                        &mut out,
                    );
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, operators, chains, timers, group_state, dedup);
criterion_main!(benches);
