//! The checkpoint log's write path: `LogWriter::append` of one entry into a mapped
//! segment, against a hand-written baseline doing the same work (crc32 of the payload and
//! a copy into preallocated memory) in the same run.
//!
//! ```text
//! cargo bench --bench log_write
//! ```
//!
//! Two payload sizes: 64 bytes (a completion or commit entry) and 16 KiB (a snapshot of a
//! keyed table). `Durability::OsBuffered`, so the time is the append alone, not the disk;
//! each writer is opened outside the timed region with a segment large enough for its
//! appends, so no roll (and no preallocation) is timed either.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rivulet::checkpoint::log::{EntryKind, LogConfig, LogWriter};
use rivulet::checkpoint::Durability;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Appends per writer (the segment is sized for them).
const CHUNK: u64 = 2_000;

/// Times `iters` appends of `payload`, opening a fresh writer every [`CHUNK`] appends.
fn log_appends(payload: &[u8], iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = LogConfig {
            segment_bytes: (n + 1) * (payload.len() as u64 + 64) + 4096,
            durability: Durability::OsBuffered,
        };
        let mut writer = LogWriter::open(dir.path(), config).expect("the log opens");
        let start = Instant::now();
        for _ in 0..n {
            black_box(writer.append(EntryKind(2), black_box(payload)).unwrap());
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

/// The same work by hand: crc32 over kind and payload, then the header and the payload
/// copied into zeroed memory of the same size.
fn baseline(payload: &[u8], iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let mut buffer = vec![0u8; (n as usize + 1) * (payload.len() + 64)];
        let start = Instant::now();
        let mut at = 0;
        for _ in 0..n {
            let payload = black_box(payload);
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&[2]);
            hasher.update(payload);
            let crc = hasher.finalize();
            buffer[at + 9..at + 9 + payload.len()].copy_from_slice(payload);
            buffer[at + 4] = 2;
            buffer[at + 5..at + 9].copy_from_slice(&crc.to_le_bytes());
            buffer[at..at + 4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
            at += 9 + payload.len();
        }
        total += start.elapsed();
        black_box(&buffer);
        left -= n;
    }
    total
}

fn appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_write");
    for size in [64usize, 16 << 10] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new("append", size), |b| {
            b.iter_custom(|iters| log_appends(&payload, iters))
        });
        group.bench_function(BenchmarkId::new("baseline", size), |b| {
            b.iter_custom(|iters| baseline(&payload, iters))
        });
    }
    group.finish();
}

criterion_group!(benches, appends);
criterion_main!(benches);
