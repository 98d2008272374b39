//! Streaming k-means, k = 10 clusters of 8 dimensions: points per second for prediction
//! and for training (assign, sum, and MLlib's update per batch of 10,000 points), each
//! against a hand-written loop over the same points in the same run.
//!
//! ```text
//! cargo bench --bench kmeans
//! ```

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rivulet::ml::{KMeansBatch, KMeansModel, TimeUnit};
use std::hint::black_box;

const K: usize = 10;
const DIM: usize = 8;
const POINTS: usize = 10_000;

fn points() -> Vec<Vec<f64>> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..POINTS)
        .map(|_| (0..DIM).map(|_| next() * 10.0).collect())
        .collect()
}

fn model() -> KMeansModel {
    let centers = (0..K)
        .map(|i| (0..DIM).map(|j| ((i * 7 + j * 3) % 10) as f64).collect())
        .collect();
    KMeansModel::new(centers, vec![100.0; K])
}

/// The nearest centre, written out.
fn nearest(centers: &[Vec<f64>], point: &[f64]) -> usize {
    let mut best = 0;
    let mut best_distance = f64::INFINITY;
    for (i, center) in centers.iter().enumerate() {
        let mut distance = 0.0;
        for j in 0..point.len() {
            let d = center[j] - point[j];
            distance += d * d;
        }
        if distance < best_distance {
            best_distance = distance;
            best = i;
        }
    }
    best
}

fn kmeans(c: &mut Criterion) {
    let points = points();
    let model = model();
    let mut group = c.benchmark_group("kmeans");
    group.throughput(Throughput::Elements(POINTS as u64));

    group.bench_function(BenchmarkId::new("predict", "hand_loop"), |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for point in &points {
                sum += nearest(&model.centers, point);
            }
            black_box(sum)
        })
    });
    group.bench_function(BenchmarkId::new("predict", "model"), |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for point in &points {
                sum += model.predict(point);
            }
            black_box(sum)
        })
    });

    group.bench_function(BenchmarkId::new("train", "hand_loop"), |b| {
        b.iter(|| {
            let mut centers = model.centers.clone();
            let mut weights = model.weights.clone();
            let mut sums = vec![vec![0.0; DIM]; K];
            let mut counts = [0u64; K];
            for point in &points {
                let c = nearest(&centers, point);
                for j in 0..DIM {
                    sums[c][j] += point[j];
                }
                counts[c] += 1;
            }
            for i in 0..K {
                weights[i] *= 0.9;
                if counts[i] > 0 {
                    let n = counts[i] as f64;
                    let updated = weights[i] + n;
                    let lambda = n / updated;
                    weights[i] = updated;
                    for j in 0..DIM {
                        centers[i][j] = centers[i][j] * (1.0 - lambda) + lambda / n * sums[i][j];
                    }
                }
            }
            black_box((centers, weights))
        })
    });
    group.bench_function(BenchmarkId::new("train", "model"), |b| {
        b.iter(|| {
            let mut trained = model.clone();
            let mut batch = KMeansBatch::new(K, DIM);
            for point in &points {
                batch.add(trained.predict(point), point);
            }
            trained.update(&batch, 0.9, TimeUnit::Batches);
            black_box(trained)
        })
    });
    group.finish();
}

criterion_group!(benches, kmeans);
criterion_main!(benches);
