//! The operators behind training and prediction: [`KMeansTrainer`],
//! [`RegressionTrainer`] (one instance each: a model sees every training point) and
//! [`Predictor`], a two-input operator that keeps the newest model from its left input
//! and predicts its right input's records with it.

use super::kmeans::{KMeansBatch, KMeansModel, StreamingKMeans};
use super::regression::{LabeledPoint, LinearModel, StreamingRegression};
use super::{Model, ModelHandle};
use crate::checkpoint::codec;
use crate::error::BoxError;
use crate::event::Epoch;
use crate::operator::{Context, Operator, TwoInputOperator};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// Trains a k-means model: each point is assigned to the nearest centre of the model as
/// it was at the epoch's start and summed there; at the epoch's end the model takes
/// MLlib's update, is published on the handle and emitted. Input: `(key, point)` pairs
/// from a single-instance route; the key is ignored.
#[derive(Debug, Clone)]
pub struct KMeansTrainer {
    model: KMeansModel,
    batch: KMeansBatch,
    config: StreamingKMeans,
}

impl KMeansTrainer {
    /// A trainer for `config`, starting from its initial centres.
    ///
    /// # Panics
    ///
    /// If the configuration has no initial centres.
    pub(crate) fn new(config: StreamingKMeans) -> KMeansTrainer {
        let model = config
            .initial_model()
            .cloned()
            .expect("initial centres checked by the builder");
        let batch = KMeansBatch::new(model.k(), model.dim());
        KMeansTrainer {
            model,
            batch,
            config,
        }
    }

    fn finish_batch<C: Context<KMeansModel>>(&mut self, ctx: &mut C) {
        self.model.update(
            &self.batch,
            self.config.decay_factor(),
            self.config.time_unit(),
        );
        ctx.count("points_trained", self.batch.points());
        self.batch.clear();
        self.config.handle().publish(self.model.clone());
        ctx.push(self.model.clone());
    }
}

impl<K> Operator<(K, Vec<f64>)> for KMeansTrainer {
    type Out = KMeansModel;
    type Key = ();
    type Side = ();

    #[inline]
    fn on_record<C: Context<KMeansModel>>(&mut self, (_, point): (K, Vec<f64>), _ctx: &mut C) {
        check_dimension(point.len(), self.model.dim());
        let cluster = self.model.predict(&point);
        self.batch.add(cluster, &point);
    }

    fn on_marker<C: Context<KMeansModel>>(&mut self, _epoch: Epoch, ctx: &mut C) {
        self.finish_batch(ctx);
    }

    fn on_end<C: Context<KMeansModel>>(&mut self, ctx: &mut C) {
        if self.batch.points() > 0 {
            self.finish_batch(ctx);
        }
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(codec::encode(&(&self.model, &self.batch))?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        let (model, batch): (KMeansModel, KMeansBatch) = codec::decode(state)?;
        self.model = model;
        self.batch = batch;
        self.config.handle().publish(self.model.clone());
        Ok(())
    }
}

/// A point of the wrong dimension is a bug in the query: it fails it, naming both.
#[inline]
fn check_dimension(found: usize, expected: usize) {
    if found != expected {
        panic!("a point of dimension {found} reached a model of dimension {expected}");
    }
}

/// Trains a linear or logistic regression: the epoch's points are kept and, at its end,
/// trained on with mini-batch SGD from the current weights; the model is then published
/// and emitted. Input: `(key, point)` pairs from a single-instance route.
#[derive(Debug, Clone)]
pub struct RegressionTrainer {
    model: LinearModel,
    batch: Vec<LabeledPoint>,
    config: StreamingRegression,
}

impl RegressionTrainer {
    /// A trainer for `config`, starting from its initial weights.
    ///
    /// # Panics
    ///
    /// If the configuration has no initial weights.
    pub(crate) fn new(config: StreamingRegression) -> RegressionTrainer {
        let model = config
            .initial_model()
            .expect("initial weights checked by the builder");
        RegressionTrainer {
            model,
            batch: Vec::new(),
            config,
        }
    }

    fn finish_batch<C: Context<LinearModel>>(&mut self, epoch: u64, ctx: &mut C) {
        self.model
            .train_batch(&self.batch, self.config.sgd(), epoch);
        ctx.count("points_trained", self.batch.len() as u64);
        self.batch.clear();
        self.config.handle().publish(self.model.clone());
        ctx.push(self.model.clone());
    }
}

impl<K> Operator<(K, LabeledPoint)> for RegressionTrainer {
    type Out = LinearModel;
    type Key = ();
    type Side = ();

    #[inline]
    fn on_record<C: Context<LinearModel>>(&mut self, (_, point): (K, LabeledPoint), _ctx: &mut C) {
        check_dimension(point.features.len(), self.model.weights.len());
        self.batch.push(point);
    }

    fn on_marker<C: Context<LinearModel>>(&mut self, epoch: Epoch, ctx: &mut C) {
        // An empty batch leaves the model as it is but still reports it.
        self.finish_batch(epoch.0, ctx);
    }

    fn on_end<C: Context<LinearModel>>(&mut self, ctx: &mut C) {
        if !self.batch.is_empty() {
            let epoch = ctx.epoch().0;
            self.finish_batch(epoch, ctx);
        }
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(codec::encode(&(&self.model, &self.batch))?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        let (model, batch): (LinearModel, Vec<LabeledPoint>) = codec::decode(state)?;
        self.model = model;
        self.batch = batch;
        self.config.handle().publish(self.model.clone());
        Ok(())
    }
}

/// Predicts its right input's records with the newest model from its left input (the
/// initial one until the first arrives). With aligned checkpoints, a record of epoch
/// `e + 1` is predicted with the model trained on epochs up to `e`, as Spark Streaming
/// predicts a batch with the model of the batches before it.
///
/// `F` picks a record's features, `O` builds the output from the record and its
/// prediction.
pub struct Predictor<M, F, O> {
    model: M,
    features: F,
    output: O,
}

impl<M: Clone, F: Clone, O: Clone> Clone for Predictor<M, F, O> {
    fn clone(&self) -> Self {
        Predictor {
            model: self.model.clone(),
            features: self.features.clone(),
            output: self.output.clone(),
        }
    }
}

impl<M: std::fmt::Debug, F, O> std::fmt::Debug for Predictor<M, F, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictor")
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl<M, F, O> Predictor<M, F, O> {
    /// Predicts with `initial` until a model arrives.
    pub(crate) fn new(initial: M, features: F, output: O) -> Self {
        Predictor {
            model: initial,
            features,
            output,
        }
    }
}

/// What a predictor emits for a record: MLlib's `predictOn` keeps the prediction only,
/// `predictOnValues` the key with it.
pub trait PredictionOutput<T, P>: Clone + Send + 'static {
    /// The output.
    type Out;
    /// The output for `record` predicted as `prediction`.
    fn output(&mut self, record: T, prediction: P) -> Self::Out;
}

/// Emits the prediction alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct PredictionOnly;

impl<T, P> PredictionOutput<T, P> for PredictionOnly {
    type Out = P;
    #[inline]
    fn output(&mut self, _record: T, prediction: P) -> P {
        prediction
    }
}

/// Emits `(key, prediction)` for a `(key, features)` record.
pub struct KeyWithPrediction<K>(PhantomData<fn() -> K>);

impl<K> Default for KeyWithPrediction<K> {
    fn default() -> Self {
        KeyWithPrediction(PhantomData)
    }
}

impl<K> Clone for KeyWithPrediction<K> {
    fn clone(&self) -> Self {
        KeyWithPrediction(PhantomData)
    }
}

impl<K> std::fmt::Debug for KeyWithPrediction<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyWithPrediction")
    }
}

impl<K: 'static, V, P> PredictionOutput<(K, V), P> for KeyWithPrediction<K> {
    type Out = (K, P);
    #[inline]
    fn output(&mut self, (key, _): (K, V), prediction: P) -> (K, P) {
        (key, prediction)
    }
}

impl<M, T, F, O> TwoInputOperator<M, T> for Predictor<M, F, O>
where
    M: Model + Serialize + DeserializeOwned,
    F: Fn(&T) -> &[f64] + Clone + Send + 'static,
    O: PredictionOutput<T, M::Prediction>,
    T: 'static,
{
    type Out = O::Out;
    type Key = ();
    type Side = ();

    fn on_left<C: Context<O::Out>>(&mut self, model: M, _ctx: &mut C) {
        self.model = model;
    }

    #[inline]
    fn on_right<C: Context<O::Out>>(&mut self, record: T, ctx: &mut C) {
        let prediction = self.model.predict((self.features)(&record));
        ctx.push(self.output.output(record, prediction));
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(codec::encode(&self.model)?))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.model = codec::decode(state)?;
        Ok(())
    }
}

// The handle is shared state, not part of the operator's checkpointed state.
impl<M> ModelHandle<M> {
    /// Publishes `model` as the latest.
    pub(crate) fn publish(&self, model: M) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(model);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::{KMeansModel, StreamingKMeans};
    use crate::operator::{Either, Harness, TwoInput};

    #[test]
    fn a_predictor_uses_the_newest_model() {
        let a = KMeansModel::new(vec![vec![0.0], vec![10.0]], vec![1.0, 1.0]);
        let b = KMeansModel::new(vec![vec![10.0], vec![0.0]], vec![1.0, 1.0]);
        let features = Vec::as_slice as fn(&Vec<f64>) -> &[f64];
        let mut harness = Harness::new(TwoInput::new(Predictor::new(
            a.clone(),
            features,
            PredictionOnly,
        )));
        harness.push(Either::Right(vec![1.0]));
        harness.push(Either::Left(b));
        harness.push(Either::Right(vec![1.0]));
        harness.push(Either::Left(a));
        harness.push(Either::Right(vec![9.0]));
        assert_eq!(harness.take_output(), [0, 1, 1]);
        let snapshot = harness.snapshot().unwrap();
        assert!(snapshot.is_some(), "the model is checkpointed");
    }

    #[test]
    fn a_point_of_the_wrong_dimension_fails_naming_both() {
        let kmeans = StreamingKMeans::new(1).initial_centers(vec![vec![0.0, 0.0]], vec![0.0]);
        let mut harness = Harness::new(KMeansTrainer::new(kmeans));
        let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            harness.push(((), vec![1.0, 2.0, 3.0]));
        }))
        .unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert_eq!(
            message,
            "a point of dimension 3 reached a model of dimension 2"
        );
    }
}
