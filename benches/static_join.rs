//! Stream–static join lookup cost per record, against a plain `HashMap` lookup doing the
//! same work in the same run.
//!
//! ```text
//! cargo bench --bench static_join
//! ```
//!
//! Every variant gets the same records and emits the same outputs into a collector that
//! only `black_box`es them: 4 in 5 records find their key in the table (1000 keys; the
//! records' keys cycle through 1250), each match gives one output.
//!
//! * `u64/*`: `u64` keys, one `u64` row per key, output `record ^ row`.
//!   `join_static` is the operator through its public [`Operator`] trait (a
//!   [`StaticTable`], combiner `join_static_with`); `reloadable` the same through a
//!   [`ReloadableTable`]'s view; `std_hashmap` a hand-written loop over a
//!   `std::collections::HashMap<u64, Vec<u64>>` (SipHash, the plain baseline);
//!   `fx_hashmap` the same loop over an `FxHashMap` (the table's hasher: what is left is
//!   the operator's own cost).
//! * `str/*`: `String` keys (pump names, as the sensor example) looked up by `&str`, two
//!   rows per key, output the row's length plus the record's.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rivulet::operator::static_join::{StaticJoin, With};
use rivulet::operator::{Collector, Context, Operator, TimerKey};
use rivulet::table::{JoinTable, ReloadableTable, StaticTable};
use rivulet::{Epoch, Timestamp};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Keys in the table.
const KEYS: u64 = 1000;
/// Keys the records cycle through: a fifth of them are not in the table.
const RECORD_KEYS: u64 = 1250;

/// A collector that swallows everything.
struct Discard;

impl<T> Collector<T> for Discard {
    #[inline]
    fn push(&mut self, record: T) {
        black_box(record);
    }
}

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

/// A `u64` record: `(key, payload)`.
type Record = (u64, u64);

fn key(record: &Record) -> &u64 {
    &record.0
}

fn combine(record: &Record, row: &u64) -> u64 {
    record.1 ^ row
}

/// Feeds `iters` records `(i % RECORD_KEYS, i)` to `op`.
fn drive<O: Operator<Record>>(mut op: O, iters: u64) -> Duration {
    let mut out = Discard;
    let start = Instant::now();
    for i in 0..iters {
        let i = black_box(i);
        op.on_record((i % RECORD_KEYS, i), &mut out);
    }
    start.elapsed()
}

/// The same records, looked up by hand in `map`.
fn drive_map<S: std::hash::BuildHasher>(map: &HashMap<u64, Vec<u64>, S>, iters: u64) -> Duration {
    let mut out = Discard;
    let start = Instant::now();
    for i in 0..iters {
        let i = black_box(i);
        let record = (i % RECORD_KEYS, i);
        if let Some(rows) = map.get(&record.0) {
            for row in rows {
                out.push(combine(&record, row));
            }
        }
    }
    start.elapsed()
}

fn u64_keys(c: &mut Criterion) {
    let pairs: Vec<(u64, u64)> = (0..KEYS).map(|k| (k, k.wrapping_mul(0x9E37))).collect();
    let table: StaticTable<u64, u64> = pairs.iter().copied().collect();
    let reloadable = ReloadableTable::new(table.clone());
    let mut std_map: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut fx_map: FxHashMap<u64, Vec<u64>> = FxHashMap::default();
    for (k, v) in &pairs {
        std_map.entry(*k).or_default().push(*v);
        fx_map.entry(*k).or_default().push(*v);
    }

    let mut group = c.benchmark_group("static_join/u64");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("join_static", |b| {
        b.iter_custom(|n| {
            let combine: fn(&Record, &u64) -> u64 = combine;
            drive(StaticJoin::new(table.clone(), key, With(combine)), n)
        })
    });
    group.bench_function("reloadable", |b| {
        b.iter_custom(|n| {
            let combine: fn(&Record, &u64) -> u64 = combine;
            drive(
                StaticJoin::new(reloadable.join_source(1), key, With(combine)),
                n,
            )
        })
    });
    group.bench_function("std_hashmap", |b| b.iter_custom(|n| drive_map(&std_map, n)));
    group.bench_function("fx_hashmap", |b| b.iter_custom(|n| drive_map(&fx_map, n)));
    group.finish();
}

/// A record keyed by pump name.
type Alert = (&'static str, u64);

fn alert_key(alert: &Alert) -> &str {
    alert.0
}

#[allow(clippy::ptr_arg)] // the combiner's signature: the table's rows are `String`s
fn alert_combine(alert: &Alert, row: &String) -> u64 {
    alert.1 + row.len() as u64
}

fn str_keys(c: &mut Criterion) {
    // Record keys: `pump-0` … `pump-1249`, leaked once so records borrow them.
    let names: Vec<&'static str> = (0..RECORD_KEYS)
        .map(|k| &*Box::leak(format!("pump-{k}").into_boxed_str()))
        .collect();
    let rows: Vec<(String, String)> = (0..KEYS)
        .flat_map(|k| {
            [
                (format!("pump-{k}"), format!("vendor {k}")),
                (format!("pump-{k}"), format!("maint {k}")),
            ]
        })
        .collect();
    let table: StaticTable<String, String> = rows.iter().cloned().collect();
    let mut std_map: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in &rows {
        std_map.entry(k.clone()).or_default().push(v.clone());
    }

    let mut group = c.benchmark_group("static_join/str");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    let names_op = names.clone();
    group.bench_function("join_static", move |b| {
        b.iter_custom(|n| {
            let combine: fn(&Alert, &String) -> u64 = alert_combine;
            let mut op = StaticJoin::<_, _, _, str>::new(table.clone(), alert_key, With(combine));
            let mut out = Discard;
            let start = Instant::now();
            for i in 0..n {
                let i = black_box(i);
                op.on_record((names_op[(i % RECORD_KEYS) as usize], i), &mut out);
            }
            start.elapsed()
        })
    });
    group.bench_function("std_hashmap", move |b| {
        b.iter_custom(|n| {
            let mut out = Discard;
            let start = Instant::now();
            for i in 0..n {
                let i = black_box(i);
                let alert: Alert = (names[(i % RECORD_KEYS) as usize], i);
                if let Some(rows) = std_map.get(alert.0) {
                    for row in rows {
                        out.push(alert_combine(&alert, row));
                    }
                }
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, u64_keys, str_keys);
criterion_main!(benches);
