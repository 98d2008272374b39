//! Streaming k-means: [`KMeansModel`] and MLlib's per-batch update rule
//! ([`KMeansModel::update`]), [`StreamingKMeans`] (the configuration: k, decay, initial
//! centres), and [`KMeansBatch`], one batch's per-cluster sums.

use super::vector::{axpy, scale, squared_distance};
use super::ModelHandle;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A k-means model: cluster centres and their weights (MLlib's `StreamingKMeansModel`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansModel {
    /// The centres, each of the model's dimension.
    pub centers: Vec<Vec<f64>>,
    /// Each centre's weight: its (decayed) number of points.
    pub weights: Vec<f64>,
}

/// How the decay factor discounts the past: once per batch, or once per point of the
/// batch (MLlib's time units `batches` and `points`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeUnit {
    /// The weights are multiplied by the decay factor once per batch (epoch).
    Batches,
    /// The weights are multiplied by the decay factor once per new point.
    Points,
}

impl KMeansModel {
    /// A model with these centres and weights.
    ///
    /// # Panics
    ///
    /// If there are no centres, their dimensions differ, or the weights are not one per
    /// centre.
    pub fn new(centers: Vec<Vec<f64>>, weights: Vec<f64>) -> KMeansModel {
        assert!(
            !centers.is_empty(),
            "a k-means model needs at least one centre"
        );
        let dim = centers[0].len();
        assert!(
            centers.iter().all(|c| c.len() == dim),
            "every centre must have dimension {dim}"
        );
        assert_eq!(centers.len(), weights.len(), "one weight per centre");
        KMeansModel { centers, weights }
    }

    /// The number of clusters.
    pub fn k(&self) -> usize {
        self.centers.len()
    }

    /// The dimension of the points.
    pub fn dim(&self) -> usize {
        self.centers[0].len()
    }

    /// The cluster of `point`: the index of the nearest centre by squared Euclidean
    /// distance (the first of equally near ones).
    ///
    /// # Panics
    ///
    /// If `point` does not have the model's dimension.
    #[inline]
    pub fn predict(&self, point: &[f64]) -> usize {
        assert_eq!(point.len(), self.dim(), "point of the wrong dimension");
        let mut best = 0;
        let mut best_distance = f64::INFINITY;
        for (index, center) in self.centers.iter().enumerate() {
            let distance = squared_distance(center, point);
            if distance < best_distance {
                best_distance = distance;
                best = index;
            }
        }
        best
    }

    /// Applies one batch: MLlib's update rule. The weights are discounted (by
    /// `decay_factor`, or by `decay_factor` to the power of the batch's point count with
    /// [`TimeUnit::Points`]); each cluster that received points moves to the weighted mean
    /// of its old centre (weight: its discounted weight) and its new points, and its
    /// weight grows by their count; then, if the lightest cluster weighs less than `1e-8`
    /// of the heaviest, the heaviest is split in two (both halves at nearly its centre,
    /// each with half the two weights' sum), as MLlib does for dying clusters.
    pub fn update(&mut self, batch: &KMeansBatch, decay_factor: f64, time_unit: TimeUnit) {
        let discount = match time_unit {
            TimeUnit::Batches => decay_factor,
            TimeUnit::Points => decay_factor.powf(batch.points() as f64),
        };
        scale(discount, &mut self.weights);
        for (label, (sum, &count)) in batch.sums.iter().zip(&batch.counts).enumerate() {
            if count == 0 {
                continue;
            }
            let count = count as f64;
            let updated_weight = self.weights[label] + count;
            let lambda = count / updated_weight.max(1e-16);
            self.weights[label] = updated_weight;
            let centroid = &mut self.centers[label];
            scale(1.0 - lambda, centroid);
            axpy(lambda / count, sum, centroid);
        }
        self.split_dying_cluster();
    }

    fn split_dying_cluster(&mut self) {
        // The first of equal maxima and minima, as Scala's maxBy/minBy.
        let mut largest = 0;
        let mut smallest = 0;
        for (index, &weight) in self.weights.iter().enumerate() {
            if weight > self.weights[largest] {
                largest = index;
            }
            if weight < self.weights[smallest] {
                smallest = index;
            }
        }
        let (max_weight, min_weight) = (self.weights[largest], self.weights[smallest]);
        if min_weight < 1e-8 * max_weight {
            let weight = (max_weight + min_weight) / 2.0;
            self.weights[largest] = weight;
            self.weights[smallest] = weight;
            for j in 0..self.dim() {
                let x = self.centers[largest][j];
                let p = 1e-14 * x.abs().max(1.0);
                self.centers[largest][j] = x + p;
                self.centers[smallest][j] = x - p;
            }
        }
    }
}

impl fmt::Display for KMeansModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (center, weight)) in self.centers.iter().zip(&self.weights).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{i}: [")?;
            for (j, x) in center.iter().enumerate() {
                if j > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{x:.4}")?;
            }
            write!(f, "] weight {weight:.1}")?;
        }
        Ok(())
    }
}

/// One batch's points, summed per cluster of the model they were assigned to (what the
/// update needs: MLlib's `pointStats`), so a batch costs `k × dim` memory, not its
/// points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansBatch {
    sums: Vec<Vec<f64>>,
    counts: Vec<u64>,
}

impl KMeansBatch {
    /// An empty batch for `k` clusters of dimension `dim`.
    pub fn new(k: usize, dim: usize) -> KMeansBatch {
        KMeansBatch {
            sums: vec![vec![0.0; dim]; k],
            counts: vec![0; k],
        }
    }

    /// Adds `point`, assigned to `cluster`.
    #[inline]
    pub fn add(&mut self, cluster: usize, point: &[f64]) {
        axpy(1.0, point, &mut self.sums[cluster]);
        self.counts[cluster] += 1;
    }

    /// The number of points added.
    pub fn points(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Empties the batch.
    pub fn clear(&mut self) {
        for sum in &mut self.sums {
            sum.iter_mut().for_each(|x| *x = 0.0);
        }
        self.counts.iter_mut().for_each(|n| *n = 0);
    }
}

/// A streaming k-means configuration (MLlib's `StreamingKMeans`): the number of clusters,
/// the decay, the initial centres; train it on a stream with
/// [`Stream::train_kmeans`](crate::Stream::train_kmeans) and predict with the models it
/// emits.
///
/// ```
/// use rivulet::ml::{StreamingKMeans, TimeUnit};
///
/// let kmeans = StreamingKMeans::new(3)
///     .half_life(5.0, TimeUnit::Batches)
///     .random_centers(2, 0.0, 42);
/// let model = kmeans.initial_model().unwrap();
/// assert_eq!((model.k(), model.dim()), (3, 2));
/// assert!((kmeans.decay_factor() - 0.5f64.powf(1.0 / 5.0)).abs() < 1e-15);
/// ```
#[derive(Debug, Clone)]
pub struct StreamingKMeans {
    k: usize,
    decay_factor: f64,
    time_unit: TimeUnit,
    initial: Option<KMeansModel>,
    handle: ModelHandle<KMeansModel>,
}

impl StreamingKMeans {
    /// `k` clusters, no forgetting (decay factor 1, per batch), no centres yet.
    pub fn new(k: usize) -> StreamingKMeans {
        StreamingKMeans {
            k,
            decay_factor: 1.0,
            time_unit: TimeUnit::Batches,
            initial: None,
            handle: ModelHandle::default(),
        }
    }

    /// The decay factor (MLlib's `setDecayFactor`): 1 weighs every batch alike, 0 keeps
    /// only the newest batch. (MLlib 1.x–3.x's setter assigned the field to itself and
    /// changed nothing; this one sets it.)
    pub fn with_decay_factor(mut self, decay_factor: f64) -> StreamingKMeans {
        self.decay_factor = decay_factor;
        self
    }

    /// The decay as a half-life: after `half_life` batches (or points) a batch's weight
    /// is halved (MLlib's `setHalfLife`).
    pub fn half_life(mut self, half_life: f64, time_unit: TimeUnit) -> StreamingKMeans {
        self.decay_factor = (0.5f64.ln() / half_life).exp();
        self.time_unit = time_unit;
        self
    }

    /// Starts from these centres and weights (MLlib's `setInitialCenters`).
    ///
    /// # Panics
    ///
    /// As [`KMeansModel::new`].
    pub fn initial_centers(mut self, centers: Vec<Vec<f64>>, weights: Vec<f64>) -> StreamingKMeans {
        self.k = centers.len();
        self.initial = Some(KMeansModel::new(centers, weights));
        self
    }

    /// Starts from `k` centres of `dim` standard normal coordinates drawn from `seed`,
    /// each of weight `weight` (MLlib's `setRandomCenters`; the draws are rivulet's own,
    /// not MLlib's for the same seed).
    pub fn random_centers(mut self, dim: usize, weight: f64, seed: u64) -> StreamingKMeans {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let centers = (0..self.k)
            .map(|_| (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect())
            .collect();
        self.initial = Some(KMeansModel::new(centers, vec![weight; self.k]));
        self
    }

    /// The decay factor in use.
    pub fn decay_factor(&self) -> f64 {
        self.decay_factor
    }

    /// The time unit of the decay.
    pub fn time_unit(&self) -> TimeUnit {
        self.time_unit
    }

    /// The model training starts from, if the centres were set.
    pub fn initial_model(&self) -> Option<&KMeansModel> {
        self.initial.as_ref()
    }

    /// The handle on which the training operator publishes its model at every epoch end
    /// (MLlib's `latestModel()`); clones share it.
    pub fn handle(&self) -> &ModelHandle<KMeansModel> {
        &self.handle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MLlib's update written out for one cluster: the weighted mean of the old centre
    /// (weight `old_weight * decay`) and the new points.
    #[test]
    fn one_cluster_moves_to_the_weighted_mean() {
        let mut model = KMeansModel::new(vec![vec![0.0, 0.0], vec![100.0, 100.0]], vec![2.0, 2.0]);
        let mut batch = KMeansBatch::new(2, 2);
        for point in [[1.0, 2.0], [3.0, 4.0]] {
            batch.add(model.predict(&point), &point);
        }
        model.update(&batch, 0.5, TimeUnit::Batches);
        // Old weight 2 × 0.5 = 1, two new points: the mean of (0,0)×1, (1,2), (3,4).
        let expected = [(0.0 + 1.0 + 3.0) / 3.0, (0.0 + 2.0 + 4.0) / 3.0];
        for (got, want) in model.centers[0].iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert_eq!(model.weights, vec![3.0, 1.0]);
        assert_eq!(model.centers[1], vec![100.0, 100.0]);
    }

    #[test]
    fn a_dying_cluster_takes_half_of_the_largest() {
        let mut model = KMeansModel::new(vec![vec![0.0], vec![50.0]], vec![1.0, 0.0]);
        let mut batch = KMeansBatch::new(2, 1);
        batch.add(0, &[2.0]);
        model.update(&batch, 1.0, TimeUnit::Batches);
        assert_eq!(model.weights, vec![1.0, 1.0]);
        let x = 1.0; // (0 × 1 + 2) / 2
        assert_eq!(model.centers[0], vec![x + 1e-14]);
        assert_eq!(model.centers[1], vec![x - 1e-14]);
    }

    #[test]
    fn points_time_unit_discounts_per_point() {
        let mut model = KMeansModel::new(vec![vec![0.0]], vec![8.0]);
        let mut batch = KMeansBatch::new(1, 1);
        batch.add(0, &[1.0]);
        batch.add(0, &[1.0]);
        model.update(&batch, 0.5, TimeUnit::Points);
        assert_eq!(model.weights, vec![8.0 * 0.25 + 2.0]);
        assert!((model.centers[0][0] - 0.5).abs() < 1e-15);
    }
}
