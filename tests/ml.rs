//! Streaming k-means and regression against MLlib's update rules written out batch by
//! batch (to 1e-12), convergence on synthetic data with known answers, and restore from a
//! checkpoint continuing from the checkpointed model.

// The references index vectors as MLlib's own loops do.
#![allow(clippy::needless_range_loop, clippy::type_complexity)]

mod common;

use common::kmeans_reference::reference_update;

use common::{finish_ok, Rng};
use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::ml::{KMeansModel, LabeledPoint, LinearModel, StreamingKMeans, StreamingRegression};
use rivulet::operator::{Context, Operator};
use rivulet::{Query, Trigger};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Passes records through, noting each with the epoch it belongs to.
#[derive(Clone)]
struct TagEpoch<T> {
    probe: Arc<Mutex<Vec<(u64, T)>>>,
}

impl<T: Clone + Send + 'static> Operator<T> for TagEpoch<T> {
    type Out = T;
    type Key = ();
    type Side = ();
    fn on_record<C: Context<T>>(&mut self, record: T, ctx: &mut C) {
        self.probe
            .lock()
            .unwrap()
            .push((ctx.epoch().0, record.clone()));
        ctx.push(record);
    }
}

fn probe<T>() -> Arc<Mutex<Vec<(u64, T)>>> {
    Arc::new(Mutex::new(Vec::new()))
}

/// Gaussian-ish noise from the test RNG (sum of uniforms).
fn noise(rng: &mut Rng, scale: f64) -> f64 {
    let sum: f64 = (0..6).map(|_| rng.below(1_000_000) as f64 / 1e6).sum();
    (sum - 3.0) * scale
}

const TRUE_CENTERS: [[f64; 3]; 3] = [[0.0, 0.0, 0.0], [10.0, 10.0, 0.0], [-8.0, 6.0, 12.0]];

fn cluster_points(n: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let center = TRUE_CENTERS[rng.below(3) as usize];
            center.iter().map(|c| c + noise(&mut rng, 1.0)).collect()
        })
        .collect()
}

fn assert_close(a: &[f64], b: &[f64], tolerance: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= tolerance * y.abs().max(1.0),
            "{what}: {a:?} vs {b:?}"
        );
    }
}

/// Runs k-means over `points` under `trigger`; returns the points as the epochs saw
/// them and the models emitted with their epochs.
fn run_kmeans(
    points: Vec<Vec<f64>>,
    kmeans: &StreamingKMeans,
    trigger: Trigger,
) -> (Vec<(u64, Vec<f64>)>, Vec<(u64, KMeansModel)>) {
    let seen = probe();
    let emitted = probe();
    let mut query = Query::builder();
    query.trigger(trigger).max_batch_records(173);
    query
        .from_iter("points", points)
        .operator(
            "tag",
            TagEpoch {
                probe: seen.clone(),
            },
        )
        .train_kmeans(kmeans)
        .operator(
            "tag_models",
            TagEpoch {
                probe: emitted.clone(),
            },
        )
        .for_each(|_| {});
    let running = query.start().expect("start");
    finish_ok(&running, "k-means");
    let seen = seen.lock().unwrap().clone();
    let emitted = emitted.lock().unwrap().clone();
    (seen, emitted)
}

#[test]
fn kmeans_follows_mllibs_rule_batch_by_batch_and_converges() {
    let points = cluster_points(6_000, 1);
    for trigger in [
        Trigger::MicroBatch {
            interval: Duration::from_millis(1),
        },
        Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(1),
        },
    ] {
        let kmeans = StreamingKMeans::new(3)
            .with_decay_factor(0.9)
            .random_centers(3, 0.0, 5);
        let (seen, emitted) = run_kmeans(points.clone(), &kmeans, trigger);
        // Micro-batches of 173 points make at least 35 batches whatever the timing; how
        // many 1 ms continuous epochs the input spans depends on the machine (one, when
        // it is fast), so there only the models that came are checked.
        if matches!(trigger, Trigger::MicroBatch { .. }) {
            assert!(emitted.len() >= 20, "{trigger:?}: several batches");
        }
        assert!(
            !emitted.is_empty(),
            "{trigger:?}: a model at the end at least"
        );
        assert_eq!(seen.len(), points.len());
        let mut reference = kmeans.initial_model().unwrap().clone();
        for (epoch, model) in &emitted {
            let batch: Vec<Vec<f64>> = seen
                .iter()
                .filter(|(e, _)| e == epoch)
                .map(|(_, p)| p.clone())
                .collect();
            reference_update(&mut reference, &batch, 0.9);
            for i in 0..3 {
                assert_close(&model.centers[i], &reference.centers[i], 1e-12, "centre");
            }
            assert_close(&model.weights, &reference.weights, 1e-12, "weights");
        }
        // Converged, given enough batches (continuous epochs may take the input in a
        // few: there the rule alone is checked): each true centre has a model centre
        // within 0.3.
        let last = &emitted.last().unwrap().1;
        assert_eq!(kmeans.handle().latest().as_ref(), Some(last));
        if emitted.len() < 20 {
            assert!(
                matches!(trigger, Trigger::Continuous { .. }),
                "micro-batches of 173 points"
            );
            continue;
        }
        for truth in TRUE_CENTERS {
            let nearest = last
                .centers
                .iter()
                .map(|c| {
                    c.iter()
                        .zip(&truth)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min)
                .sqrt();
            assert!(
                nearest < 0.3,
                "{trigger:?}: {truth:?} is {nearest} from the model {last}"
            );
        }
    }
}

#[test]
fn predictions_use_the_newest_model_and_keep_keys() {
    let kmeans = StreamingKMeans::new(3).random_centers(3, 0.0, 9);
    let mut query = Query::builder();
    query.trigger(Trigger::MicroBatch {
        interval: Duration::from_millis(1),
    });
    let models = query
        .from_iter("train", cluster_points(3_000, 2))
        .train_kmeans(&kmeans);
    // Points to predict, keyed by which true centre they came from.
    let mut rng = Rng::new(3);
    let test: Vec<(usize, Vec<f64>)> = (0..300)
        .map(|i| {
            let c = i % 3;
            (
                c,
                TRUE_CENTERS[c]
                    .iter()
                    .map(|x| x + noise(&mut rng, 0.5))
                    .collect(),
            )
        })
        .collect();
    let predicted = kmeans
        .predict_on_values(models, query.from_iter("test", test.clone()))
        .to_memory("predicted");
    let running = query.start().expect("start");
    finish_ok(&running, "predict");
    let rows = predicted.rows();
    assert_eq!(rows.len(), test.len(), "one prediction per test point");
    // Every prediction is a valid cluster, keyed as its record.
    let mut keys: Vec<usize> = rows.iter().map(|(k, _)| *k).collect();
    keys.sort();
    let mut expected: Vec<usize> = test.iter().map(|(k, _)| *k).collect();
    expected.sort();
    assert_eq!(keys, expected);
    assert!(rows.iter().all(|(_, cluster)| *cluster < 3));
}

fn reference_sgd(
    weights: &mut [f64],
    batch: &[LabeledPoint],
    step: f64,
    iterations: u32,
    tol: f64,
) {
    if batch.is_empty() {
        return;
    }
    let mut previous: Option<Vec<f64>> = None;
    for i in 1..=iterations {
        let mut gradient = vec![0.0; weights.len()];
        for p in batch {
            let margin: f64 = p
                .features
                .iter()
                .zip(weights.iter())
                .map(|(x, w)| x * w)
                .sum();
            let diff = margin - p.label;
            for j in 0..weights.len() {
                gradient[j] += diff * p.features[j];
            }
        }
        let n = batch.len() as f64;
        let step_i = step / (i as f64).sqrt();
        for j in 0..weights.len() {
            weights[j] += -step_i * (gradient[j] / n);
        }
        if let Some(prev) = &previous {
            let diff: f64 = prev
                .iter()
                .zip(weights.iter())
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt();
            let norm: f64 = weights.iter().map(|w| w * w).sum::<f64>().sqrt();
            if diff < tol * norm.max(1.0) {
                break;
            }
        }
        previous = Some(weights.to_vec());
    }
}

#[test]
fn linear_regression_follows_mllibs_sgd_and_finds_the_coefficients() {
    let truth = [2.0, -3.0, 0.5];
    let mut rng = Rng::new(4);
    let points: Vec<LabeledPoint> = (0..8_000)
        .map(|_| {
            let x: Vec<f64> = (0..3)
                .map(|_| rng.below(2_000) as f64 / 1_000.0 - 1.0)
                .collect();
            let y = x.iter().zip(truth).map(|(a, b)| a * b).sum::<f64>() + noise(&mut rng, 0.01);
            LabeledPoint::new(y, x)
        })
        .collect();
    let regression = StreamingRegression::linear()
        .step_size(1.0)
        .iterations(25)
        .initial_weights(vec![0.0; 3]);
    let seen = probe();
    let emitted = probe();
    let mut query = Query::builder();
    query
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(1),
        })
        .max_batch_records(211);
    query
        .from_iter("points", points.clone())
        .operator(
            "tag",
            TagEpoch {
                probe: seen.clone(),
            },
        )
        .train_regression(&regression)
        .operator(
            "tag_models",
            TagEpoch {
                probe: emitted.clone(),
            },
        )
        .for_each(|_| {});
    let running = query.start().expect("start");
    finish_ok(&running, "regression");
    let seen = seen.lock().unwrap().clone();
    let emitted: Vec<(u64, LinearModel)> = emitted.lock().unwrap().clone();
    assert!(emitted.len() >= 5);
    let mut weights = vec![0.0; 3];
    for (epoch, model) in &emitted {
        let batch: Vec<LabeledPoint> = seen
            .iter()
            .filter(|(e, _)| e == epoch)
            .map(|(_, p)| p.clone())
            .collect();
        reference_sgd(&mut weights, &batch, 1.0, 25, 0.001);
        assert_close(&model.weights, &weights, 1e-12, "weights");
    }
    assert_close(
        &emitted.last().unwrap().1.weights,
        &truth,
        0.02,
        "converged",
    );
}

#[test]
fn a_restarted_query_continues_from_the_checkpointed_model() {
    let dir = tempfile::tempdir().unwrap();
    let points = cluster_points(4_000, 6);
    let kmeans = StreamingKMeans::new(3)
        .with_decay_factor(0.8)
        .random_centers(3, 0.0, 2);
    let run = |end: usize| {
        let seen = probe();
        let emitted = probe();
        let mut query = Query::builder();
        query.max_batch_records(151).checkpoint(
            CheckpointConfig::new(dir.path())
                .interval(Duration::from_millis(1))
                .durability(Durability::OsBuffered),
        );
        query.trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(1),
        });
        query
            .from_iter("points", points[..end].to_vec())
            .operator(
                "tag",
                TagEpoch {
                    probe: seen.clone(),
                },
            )
            .train_kmeans(&kmeans)
            .operator(
                "tag_models",
                TagEpoch {
                    probe: emitted.clone(),
                },
            )
            .for_each(|_| {});
        let running = query.start().expect("start");
        finish_ok(&running, "checkpointed k-means");
        let seen = seen.lock().unwrap().clone();
        let emitted = emitted.lock().unwrap().clone();
        (seen, emitted)
    };
    let (seen_1, emitted_1): (Vec<(u64, Vec<f64>)>, Vec<(u64, KMeansModel)>) = run(2_000);
    let (seen_2, emitted_2) = run(4_000);
    assert_eq!(
        seen_1.len() + seen_2.len(),
        4_000,
        "the restart resumes after the first run"
    );
    // One reference over both runs: the second continues from the first's last model.
    let mut reference = kmeans.initial_model().unwrap().clone();
    for (seen, emitted) in [(&seen_1, &emitted_1), (&seen_2, &emitted_2)] {
        for (epoch, model) in emitted {
            let batch: Vec<Vec<f64>> = seen
                .iter()
                .filter(|(e, _)| e == epoch)
                .map(|(_, p)| p.clone())
                .collect();
            reference_update(&mut reference, &batch, 0.8);
            for i in 0..3 {
                assert_close(
                    &model.centers[i],
                    &reference.centers[i],
                    1e-12,
                    "restored centre",
                );
            }
        }
    }
}
