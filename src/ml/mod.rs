//! Streaming machine learning (Spark Streaming with MLlib): models that learn as data
//! arrives and models applied to every record, as ordinary operators in both trigger
//! modes, their state in checkpoints.
//!
//! * [`StreamingKMeans`]: MLlib's streaming k-means (per-batch update with decay, dying
//!   clusters split);
//! * [`StreamingRegression`]: MLlib's streaming linear and logistic regression with
//!   mini-batch SGD.
//!
//! Training a model on a stream ([`Stream::train_kmeans`],
//! [`Stream::train_regression`]) gives the stream of its versions: one at each epoch's
//! end (a micro-batch, or the checkpoint interval of continuous epochs: the update is
//! per epoch in both modes, MLlib's per-batch rule) and one at the end of the input for
//! what came after the last epoch. Predicting ([`StreamingKMeans::predict_on`],
//! [`predict_on_values`](StreamingKMeans::predict_on_values), and the same on
//! [`StreamingRegression`]) connects that stream with the data to predict: a two-input
//! operator keeps the newest model and predicts each record with it. The latest model is
//! also readable from the configuration's [`ModelHandle`] while the query runs (MLlib's
//! `latestModel()`).
//!
//! ```
//! use rivulet::ml::StreamingKMeans;
//!
//! let kmeans = StreamingKMeans::new(2).initial_centers(vec![vec![0.0], vec![10.0]], vec![0.0, 0.0]);
//! let mut query = rivulet::Query::builder();
//! let training = query.from_iter("train", vec![vec![1.0], vec![9.0], vec![11.0]]);
//! let models = kmeans.train_on(training); // or training.train_kmeans(&kmeans)
//! let test = query.from_iter("test", vec![vec![-5.0], vec![20.0]]);
//! let clusters = kmeans.predict_on(models, test).to_memory("clusters");
//! query.start()?.await_termination()?;
//! let mut clusters = clusters.rows();
//! clusters.sort();
//! assert_eq!(clusters, [0, 1]);
//! assert_eq!(kmeans.handle().latest().unwrap().centers, vec![vec![1.0], vec![10.0]]);
//! # Ok::<(), rivulet::Error>(())
//! ```
//!
//! Training runs as one instance (every point reaches the one model, as MLlib's driver
//! sees every batch's statistics); so does prediction. Vectors are plain `Vec<f64>`.

mod kmeans;
mod operators;
mod regression;
mod vector;

pub use kmeans::{KMeansBatch, KMeansModel, StreamingKMeans, TimeUnit};
pub use operators::{
    KMeansTrainer, KeyWithPrediction, PredictionOnly, PredictionOutput, Predictor,
    RegressionTrainer,
};
pub use regression::{LabeledPoint, LinearModel, Loss, Sgd, StreamingRegression};

use crate::stream::{Chain, Stream};
use std::fmt;
use std::sync::{Arc, Mutex};

/// A model that predicts from a feature vector.
pub trait Model: Clone + Send + 'static {
    /// What it predicts.
    type Prediction: Send + 'static;
    /// The prediction for `features`.
    fn predict(&self, features: &[f64]) -> Self::Prediction;
}

impl Model for KMeansModel {
    type Prediction = usize;
    #[inline]
    fn predict(&self, features: &[f64]) -> usize {
        KMeansModel::predict(self, features)
    }
}

impl Model for LinearModel {
    type Prediction = f64;
    #[inline]
    fn predict(&self, features: &[f64]) -> f64 {
        LinearModel::predict(self, features)
    }
}

/// The latest version of a model being trained, readable from any thread while the
/// query runs (MLlib's `latestModel()`): the training operator publishes each version
/// here when it emits it. Clones share the model.
pub struct ModelHandle<M> {
    latest: Arc<Mutex<Option<M>>>,
}

impl<M> Default for ModelHandle<M> {
    fn default() -> Self {
        ModelHandle {
            latest: Arc::new(Mutex::new(None)),
        }
    }
}

impl<M> Clone for ModelHandle<M> {
    fn clone(&self) -> Self {
        ModelHandle {
            latest: self.latest.clone(),
        }
    }
}

impl<M> fmt::Debug for ModelHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelHandle").finish_non_exhaustive()
    }
}

impl<M: Clone> ModelHandle<M> {
    /// The latest model trained, `None` before the first epoch ended (or a checkpoint
    /// restored one).
    pub fn latest(&self) -> Option<M> {
        self.latest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// The features of a `(key, features)` record.
fn value_features<K>(record: &(K, Vec<f64>)) -> &[f64] {
    &record.1
}

impl<S: Chain<Out = Vec<f64>>> Stream<S> {
    /// Trains `kmeans` on this stream of points (MLlib's `trainOn`): one update per
    /// epoch, and the stream of the models after each (see the [module docs](crate::ml)).
    ///
    /// # Panics
    ///
    /// If `kmeans` has no initial centres (`initial_centers` or `random_centers`), as
    /// MLlib refuses; a point of another dimension than the centres' fails the query.
    pub fn train_kmeans(self, kmeans: &StreamingKMeans) -> Stream<impl Chain<Out = KMeansModel>> {
        assert!(
            kmeans.initial_model().is_some(),
            "initial cluster centres must be set before training (initial_centers or random_centers)"
        );
        self.key_by(|_: &Vec<f64>| ())
            .with_parallelism(1)
            .aggregate("train_kmeans", KMeansTrainer::new(kmeans.clone()))
    }
}

impl<S: Chain<Out = LabeledPoint>> Stream<S> {
    /// Trains `regression` on this stream of labelled points (MLlib's `trainOn`): one
    /// round of mini-batch SGD per epoch, and the stream of the models after each.
    ///
    /// # Panics
    ///
    /// If `regression` has no initial weights, as MLlib refuses; a point of another
    /// dimension fails the query.
    pub fn train_regression(
        self,
        regression: &StreamingRegression,
    ) -> Stream<impl Chain<Out = LinearModel>> {
        assert!(
            regression.initial_model().is_some(),
            "initial weights must be set before training (initial_weights)"
        );
        self.key_by(|_: &LabeledPoint| ())
            .with_parallelism(1)
            .aggregate(
                "train_regression",
                RegressionTrainer::new(regression.clone()),
            )
    }
}

impl StreamingKMeans {
    /// Trains this configuration on `points` (MLlib's `trainOn`); the same as
    /// [`points.train_kmeans(self)`](Stream::train_kmeans).
    ///
    /// # Panics
    ///
    /// As [`Stream::train_kmeans`].
    pub fn train_on<S: Chain<Out = Vec<f64>>>(
        &self,
        points: Stream<S>,
    ) -> Stream<impl Chain<Out = KMeansModel>> {
        points.train_kmeans(self)
    }
}

impl StreamingRegression {
    /// Trains this configuration on `points` (MLlib's `trainOn`); the same as
    /// [`points.train_regression(self)`](Stream::train_regression).
    ///
    /// # Panics
    ///
    /// As [`Stream::train_regression`].
    pub fn train_on<S: Chain<Out = LabeledPoint>>(
        &self,
        points: Stream<S>,
    ) -> Stream<impl Chain<Out = LinearModel>> {
        points.train_regression(self)
    }
}

macro_rules! predictions {
    ($config:ty, $model:ty, $initial:expr) => {
        impl $config {
            /// Predicts each point of `data` with the newest of `models` (those
            /// [trained](crate::ml) from this configuration; its initial model before the
            /// first), emitting the predictions (MLlib's `predictOn`).
            ///
            /// # Panics
            ///
            /// If the configuration has no initial model.
            pub fn predict_on<M, D>(
                &self,
                models: Stream<M>,
                data: Stream<D>,
            ) -> Stream<impl Chain<Out = <$model as Model>::Prediction>>
            where
                M: Chain<Out = $model>,
                D: Chain<Out = Vec<f64>>,
            {
                let initial: $model = ($initial)(self);
                models.connect(data).operator(
                    "predict",
                    Predictor::new(
                        initial,
                        Vec::as_slice as fn(&Vec<f64>) -> &[f64],
                        PredictionOnly,
                    ),
                )
            }

            /// Predicts the features of each `(key, features)` record of `data` with the
            /// newest of `models`, emitting `(key, prediction)` (MLlib's
            /// `predictOnValues`).
            ///
            /// # Panics
            ///
            /// If the configuration has no initial model.
            pub fn predict_on_values<M, D, K>(
                &self,
                models: Stream<M>,
                data: Stream<D>,
            ) -> Stream<impl Chain<Out = (K, <$model as Model>::Prediction)>>
            where
                M: Chain<Out = $model>,
                D: Chain<Out = (K, Vec<f64>)>,
                K: Send + 'static,
            {
                let initial: $model = ($initial)(self);
                models.connect(data).operator(
                    "predict",
                    Predictor::new(
                        initial,
                        value_features::<K> as fn(&(K, Vec<f64>)) -> &[f64],
                        KeyWithPrediction::<K>::default(),
                    ),
                )
            }
        }
    };
}

predictions!(StreamingKMeans, KMeansModel, |kmeans: &StreamingKMeans| {
    kmeans
        .initial_model()
        .cloned()
        .expect("initial cluster centres must be set before predicting")
});
predictions!(
    StreamingRegression,
    LinearModel,
    |regression: &StreamingRegression| {
        regression
            .initial_model()
            .expect("initial weights must be set before predicting")
    }
);
