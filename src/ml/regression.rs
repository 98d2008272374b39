//! Streaming linear and logistic regression trained by mini-batch SGD, per batch (MLlib's
//! `StreamingLinearRegressionWithSGD` and `StreamingLogisticRegressionWithSGD`).

use super::vector::{axpy, dot, scale};
use super::ModelHandle;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A labelled example: what regression trains on (MLlib's `LabeledPoint`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabeledPoint {
    /// The value to predict (0 or 1 for logistic regression).
    pub label: f64,
    /// The features.
    pub features: Vec<f64>,
}

impl LabeledPoint {
    /// A point of `features` labelled `label`.
    pub fn new(label: f64, features: Vec<f64>) -> LabeledPoint {
        LabeledPoint { label, features }
    }
}

/// What a regression model predicts: a value (least squares) or a class (logistic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Loss {
    /// Linear regression: squared error, predictions `w · x`.
    LeastSquares,
    /// Binary logistic regression: log loss, predictions 1 when `σ(w · x) > 0.5`, else 0.
    Logistic,
}

/// A linear model: weights (no intercept, as MLlib's streaming regressions train none)
/// and what it predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    /// One weight per feature.
    pub weights: Vec<f64>,
    /// Least squares or logistic.
    pub loss: Loss,
}

impl LinearModel {
    /// The prediction for `features`: `w · x` (least squares), or the class 1.0 / 0.0
    /// (logistic, threshold 0.5).
    ///
    /// # Panics
    ///
    /// If `features` does not have one value per weight.
    #[inline]
    pub fn predict(&self, features: &[f64]) -> f64 {
        assert_eq!(
            features.len(),
            self.weights.len(),
            "features of the wrong dimension"
        );
        let margin = dot(&self.weights, features);
        match self.loss {
            Loss::LeastSquares => margin,
            Loss::Logistic => {
                let score = 1.0 / (1.0 + (-margin).exp());
                if score > 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// Adds the gradient of the loss at `point` to `cumulative` (MLlib's
    /// `LeastSquaresGradient` / `LogisticGradient`).
    #[inline]
    fn add_gradient(&self, point: &LabeledPoint, cumulative: &mut [f64]) {
        let margin = dot(&point.features, &self.weights);
        let multiplier = match self.loss {
            Loss::LeastSquares => margin - point.label,
            Loss::Logistic => 1.0 / (1.0 + (-margin).exp()) - point.label,
        };
        axpy(multiplier, &point.features, cumulative);
    }

    /// Trains on one batch with mini-batch SGD from the current weights (MLlib's
    /// `GradientDescent.runMiniBatchSGD` with its `SimpleUpdater` / `SquaredL2Updater`):
    /// `iterations` steps, step `i` of size `step_size / √i`, each on the points `sample`
    /// keeps (all of them at a fraction of 1), stopping early once two successive weight
    /// vectors differ by less than `convergence_tol × max(|w|, 1)`. An empty batch changes
    /// nothing.
    pub fn train_batch(&mut self, points: &[LabeledPoint], sgd: &Sgd, batch_seed: u64) {
        if points.is_empty() {
            return;
        }
        let n = self.weights.len();
        let mut gradient = vec![0.0; n];
        let mut previous: Option<Vec<f64>> = None;
        for i in 1..=sgd.iterations {
            gradient.iter_mut().for_each(|g| *g = 0.0);
            let mut size = 0u64;
            let keep = sample(sgd.mini_batch_fraction, batch_seed, i);
            for (index, point) in points.iter().enumerate() {
                if keep(index) {
                    self.add_gradient(point, &mut gradient);
                    size += 1;
                }
            }
            if size == 0 {
                continue;
            }
            // gradient / size, then w ← w·(1 − step·reg) − step·gradient.
            // Divided, not multiplied by the reciprocal: MLlib's rounding.
            let size = size as f64;
            gradient.iter_mut().for_each(|g| *g /= size);
            let step = sgd.step_size / (i as f64).sqrt();
            if sgd.reg_param != 0.0 {
                scale(1.0 - step * sgd.reg_param, &mut self.weights);
            }
            axpy(-step, &gradient, &mut self.weights);
            if let Some(previous) = &previous {
                let difference: f64 = previous
                    .iter()
                    .zip(&self.weights)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
                    .sqrt();
                let norm = dot(&self.weights, &self.weights).sqrt();
                if difference < sgd.convergence_tol * norm.max(1.0) {
                    break;
                }
            }
            previous = Some(self.weights.clone());
        }
    }
}

/// Which points iteration `i` of a batch uses: all of them at a fraction of 1, else each
/// with probability `fraction`, drawn from `(seed, i)` (MLlib samples with seed `42 + i`
/// and its own generator; rivulet's draws differ, so only full batches reproduce MLlib
/// exactly).
fn sample(fraction: f64, seed: u64, iteration: u32) -> impl Fn(usize) -> bool {
    let threshold = (fraction.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
    let all = fraction >= 1.0;
    let base = seed ^ (42 + u64::from(iteration)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    move |index: usize| {
        if all {
            return true;
        }
        // SplitMix64 of (base, index): independent per point and iteration.
        let mut z = base.wrapping_add((index as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        z < threshold
    }
}

impl fmt::Display for LinearModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("weights [")?;
        for (i, w) in self.weights.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{w:.6}")?;
        }
        f.write_str("]")
    }
}

/// Mini-batch SGD settings (MLlib's defaults: step 0.1, 50 iterations, fraction 1,
/// convergence tolerance 0.001, no regularisation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sgd {
    /// The initial step size.
    pub step_size: f64,
    /// Iterations per batch.
    pub iterations: u32,
    /// The fraction of a batch's points each iteration uses.
    pub mini_batch_fraction: f64,
    /// Early stop when an iteration moves the weights less than this, relative.
    pub convergence_tol: f64,
    /// L2 regularisation (logistic regression only in MLlib's streaming API).
    pub reg_param: f64,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd {
            step_size: 0.1,
            iterations: 50,
            mini_batch_fraction: 1.0,
            convergence_tol: 0.001,
            reg_param: 0.0,
        }
    }
}

/// A streaming regression configuration (MLlib's `StreamingLinearRegressionWithSGD`, or
/// with [`logistic`](Self::logistic) `StreamingLogisticRegressionWithSGD`): the SGD
/// settings and the initial weights; train it with
/// [`Stream::train_regression`](crate::Stream::train_regression).
///
/// ```
/// use rivulet::ml::{LabeledPoint, StreamingRegression};
///
/// let regression = StreamingRegression::linear()
///     .step_size(0.5)
///     .iterations(20)
///     .initial_weights(vec![0.0, 0.0]);
/// let mut model = regression.initial_model().unwrap();
/// let batch: Vec<LabeledPoint> = (0..100)
///     .map(|i| {
///         let x = [i as f64 / 100.0, 1.0];
///         LabeledPoint::new(3.0 * x[0] - 1.0, x.to_vec())
///     })
///     .collect();
/// for seed in 0..50 {
///     model.train_batch(&batch, regression.sgd(), seed);
/// }
/// assert!((model.weights[0] - 3.0).abs() < 0.1 && (model.weights[1] + 1.0).abs() < 0.1);
/// ```
#[derive(Debug, Clone)]
pub struct StreamingRegression {
    loss: Loss,
    sgd: Sgd,
    initial: Option<Vec<f64>>,
    handle: ModelHandle<LinearModel>,
}

impl StreamingRegression {
    /// Linear regression (least squares) with MLlib's SGD defaults.
    pub fn linear() -> StreamingRegression {
        StreamingRegression {
            loss: Loss::LeastSquares,
            sgd: Sgd::default(),
            initial: None,
            handle: ModelHandle::default(),
        }
    }

    /// Binary logistic regression with MLlib's SGD defaults.
    pub fn logistic() -> StreamingRegression {
        StreamingRegression {
            loss: Loss::Logistic,
            ..StreamingRegression::linear()
        }
    }

    /// The initial step size.
    pub fn step_size(mut self, step_size: f64) -> StreamingRegression {
        self.sgd.step_size = step_size;
        self
    }

    /// SGD iterations per batch.
    pub fn iterations(mut self, iterations: u32) -> StreamingRegression {
        self.sgd.iterations = iterations;
        self
    }

    /// The fraction of each batch's points each iteration uses.
    pub fn mini_batch_fraction(mut self, fraction: f64) -> StreamingRegression {
        self.sgd.mini_batch_fraction = fraction;
        self
    }

    /// The relative change under which a batch's iterations stop early.
    pub fn convergence_tol(mut self, tolerance: f64) -> StreamingRegression {
        self.sgd.convergence_tol = tolerance;
        self
    }

    /// L2 regularisation.
    pub fn reg_param(mut self, reg_param: f64) -> StreamingRegression {
        self.sgd.reg_param = reg_param;
        self
    }

    /// The weights training starts from (MLlib's `setInitialWeights`; required).
    pub fn initial_weights(mut self, weights: Vec<f64>) -> StreamingRegression {
        self.initial = Some(weights);
        self
    }

    /// The SGD settings.
    pub fn sgd(&self) -> &Sgd {
        &self.sgd
    }

    /// The model training starts from, if the initial weights were set.
    pub fn initial_model(&self) -> Option<LinearModel> {
        self.initial.clone().map(|weights| LinearModel {
            weights,
            loss: self.loss,
        })
    }

    /// The handle on which the training operator publishes its model at every epoch end
    /// (MLlib's `latestModel()`); clones share it.
    pub fn handle(&self) -> &ModelHandle<LinearModel> {
        &self.handle
    }
}
