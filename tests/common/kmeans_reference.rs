//! MLlib's streaming k-means update written out, the reference of the k-means tests
//! (`tests/ml.rs`, `tests/crash_kmeans.rs`).

// Indexed as MLlib's own loops are.
#![allow(clippy::needless_range_loop)]

use rivulet::ml::KMeansModel;

/// MLlib's `StreamingKMeansModel.update` for one batch: discount, weighted mean per
/// cluster, dying-cluster split.
pub(crate) fn reference_update(model: &mut KMeansModel, batch: &[Vec<f64>], decay: f64) {
    let k = model.centers.len();
    let dim = model.centers[0].len();
    let mut sums = vec![vec![0.0; dim]; k];
    let mut counts = vec![0u64; k];
    for point in batch {
        let mut best = 0;
        let mut best_d = f64::INFINITY;
        for (i, c) in model.centers.iter().enumerate() {
            let d: f64 = c.iter().zip(point).map(|(a, b)| (a - b) * (a - b)).sum();
            if d < best_d {
                best_d = d;
                best = i;
            }
        }
        for j in 0..dim {
            sums[best][j] += point[j];
        }
        counts[best] += 1;
    }
    for w in &mut model.weights {
        *w *= decay;
    }
    for i in 0..k {
        if counts[i] == 0 {
            continue;
        }
        let count = counts[i] as f64;
        let updated = model.weights[i] + count;
        let lambda = count / updated.max(1e-16);
        model.weights[i] = updated;
        for j in 0..dim {
            model.centers[i][j] =
                model.centers[i][j] * (1.0 - lambda) + (lambda / count) * sums[i][j];
        }
    }
    let (mut largest, mut smallest) = (0, 0);
    for i in 0..k {
        if model.weights[i] > model.weights[largest] {
            largest = i;
        }
        if model.weights[i] < model.weights[smallest] {
            smallest = i;
        }
    }
    if model.weights[smallest] < 1e-8 * model.weights[largest] {
        let w = (model.weights[largest] + model.weights[smallest]) / 2.0;
        model.weights[largest] = w;
        model.weights[smallest] = w;
        for j in 0..dim {
            let x = model.centers[largest][j];
            let p = 1e-14 * x.abs().max(1.0);
            model.centers[largest][j] = x + p;
            model.centers[smallest][j] = x - p;
        }
    }
}
