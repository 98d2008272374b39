//! Crash and restart with real processes, for streaming k-means (`Stream::train_kmeans`,
//! MLlib's `StreamingKMeans.trainOn`) in micro-batch mode: a child process runs a
//! checkpointed query — a rate source with a row limit, each row id turned into a point
//! near one of three known centres, the points fanned out to the trainer and to a CSV
//! sink of the row ids, the model after each batch to a JSON-lines sink — and the test
//! kills it with SIGKILL at random moments, restarts it on the same directories, and
//! finally lets it finish.
//!
//! After the final run: every epoch committed exactly once by both sinks, epochs
//! contiguous, every row id in exactly one batch; MLlib's update rule (written out as in
//! tests/ml.rs), run batch by batch from the initial centres over the committed batches,
//! gives every committed model to 1e-9 — so each restarted run continued from the
//! checkpointed model, not from the initial centres or a model that saw a batch twice;
//! and the last model is near the true centres.
//!
//! The child is this test binary itself, re-run with `--ignored --exact
//! kmeans_crash_worker` and the `RIVULET_KMEANS_CRASH_WORKER` environment variable.

// The reference indexes vectors as MLlib's own loops do.
#![allow(clippy::needless_range_loop)]

mod common;

use common::kmeans_reference::reference_update;

use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::ml::{KMeansModel, StreamingKMeans};
use rivulet::sink::file::committed_parts;
use rivulet::sink::FileFormat;
use rivulet::source::RateSource;
use rivulet::{OutputMode, Query, Trigger};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Rows of the source.
const ROWS: u64 = 20_000;
/// Rows per second: the data takes 2 s, so that the kills fall all over it.
const RATE: u64 = 10_000;
/// The decay factor per batch: below 1, so every batch, empty or not, changes the model.
const DECAY: f64 = 0.9;
/// The clusters' true centres.
const TRUE_CENTERS: [[f64; 3]; 3] = [[0.0, 0.0, 0.0], [10.0, 10.0, 0.0], [-8.0, 6.0, 12.0]];
/// Where training starts: each true centre moved by a few units.
const INITIAL_CENTERS: [[f64; 3]; 3] = [[2.0, -1.5, 1.0], [8.0, 12.5, -2.0], [-6.0, 3.5, 10.0]];

/// A fixed pseudo-random function of the row id (splitmix64's finalizer).
fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Row `v`'s point: a true centre chosen by `v`, plus noise in `[-1, 1)` per coordinate.
fn point_of(v: u64) -> Vec<f64> {
    let center = TRUE_CENTERS[(mix(v) % 3) as usize];
    center
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let u = mix(v ^ ((j as u64 + 1) << 40)) % 1_000_000;
            c + u as f64 / 500_000.0 - 1.0
        })
        .collect()
}

fn kmeans() -> StreamingKMeans {
    StreamingKMeans::new(3)
        .with_decay_factor(DECAY)
        .initial_centers(
            INITIAL_CENTERS.iter().map(|c| c.to_vec()).collect(),
            vec![1.0; 3],
        )
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

/// The child process: runs the query until its source ends.
#[test]
#[ignore = "entry point of the child process of the k-means crash test"]
fn kmeans_crash_worker() {
    let Ok(dir) = std::env::var("RIVULET_KMEANS_CRASH_WORKER") else {
        return;
    };
    let dir = Path::new(&dir);
    let mut query = Query::builder();
    query
        .output_mode(OutputMode::Update)
        .max_batch_records(700)
        .checkpoint(
            CheckpointConfig::new(dir.join("checkpoints"))
                .durability(Durability::OsBuffered)
                .retain(2)
                .segment_bytes(1 << 20),
        )
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(5),
        });
    let mut branches = query
        .source("rows", RateSource::new(RATE).with_limit(ROWS))
        .map(|row| row.value)
        .fan_out(2)
        .into_iter();
    let (train, ids) = (branches.next().unwrap(), branches.next().unwrap());
    ids.to_files(dir.join("ids"), FileFormat::Csv);
    train
        .map(point_of)
        .train_kmeans(&kmeans())
        .to_files(dir.join("models"), FileFormat::JsonLines);
    let running = query.start().unwrap();
    common::note_run(&running, dir);
    running.await_termination().unwrap();
}

fn spawn_worker(dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "kmeans_crash_worker",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RIVULET_KMEANS_CRASH_WORKER", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the test binary can run itself")
}

/// Each epoch's records in `dir`, asserting that no epoch was committed twice.
fn per_epoch<R: serde::de::DeserializeOwned>(dir: &Path) -> BTreeMap<u64, Vec<R>> {
    let mut epochs: BTreeMap<u64, Vec<R>> = BTreeMap::new();
    for part in committed_parts(dir).unwrap() {
        assert_eq!(part.instance, 0, "{}: one instance", dir.display());
        let before = epochs.insert(part.epoch.0, part.read().unwrap());
        assert!(
            before.is_none(),
            "{}: epoch {} committed twice",
            dir.display(),
            part.epoch.0
        );
    }
    epochs
}

fn run_crash_test(kills: usize, seed: u64) {
    // RIVULET_KEEP=1 keeps the directories for a post-mortem.
    let keep = std::env::var("RIVULET_KEEP").is_ok();
    let dir = tempfile::Builder::new()
        .disable_cleanup(keep)
        .tempdir()
        .unwrap();
    if keep {
        eprintln!("keeping {}", dir.path().display());
    }
    let mut random = common::Rng::new(seed);
    let started = Instant::now();
    for _ in 0..kills {
        common::kill_after(
            spawn_worker(dir.path()),
            Duration::from_millis(40 + random.below(350)),
        );
    }
    common::expect_success(spawn_worker(dir.path()), "the final run");

    let runs: Vec<i64> = std::fs::read_to_string(dir.path().join("runs.txt"))
        .unwrap()
        .lines()
        .map(|line| line.parse().unwrap())
        .collect();
    let resumed = runs.iter().filter(|epoch| **epoch > 0).count();
    assert!(
        *runs.last().unwrap() > 0,
        "the final run did not resume: {runs:?}"
    );
    assert!(resumed * 2 >= runs.len(), "few runs resumed: {runs:?}");

    let models: BTreeMap<u64, Vec<KMeansModel>> = per_epoch(&dir.path().join("models"));
    let ids: BTreeMap<u64, Vec<u64>> = per_epoch(&dir.path().join("ids"));
    let epochs: Vec<u64> = models.keys().copied().collect();
    let first = epochs[0];
    assert_eq!(
        epochs,
        (first..first + epochs.len() as u64).collect::<Vec<_>>(),
        "the models' epochs are contiguous"
    );
    assert!(
        ids.keys().all(|epoch| models.contains_key(epoch)),
        "a batch of points without a model"
    );
    let mut seen: Vec<u64> = ids.values().flatten().copied().collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..ROWS).collect::<Vec<_>>(),
        "every row in one batch"
    );

    // MLlib's rule, batch by batch from the initial centres, meets every committed model.
    let mut model = kmeans().initial_model().unwrap().clone();
    for (epoch, committed) in &models {
        assert_eq!(committed.len(), 1, "epoch {epoch}: one model");
        let batch: Vec<Vec<f64>> = ids
            .get(epoch)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|v| point_of(*v))
            .collect();
        reference_update(&mut model, &batch, DECAY);
        for i in 0..3 {
            let what = format!("epoch {epoch}, centre {i}");
            assert_close(&committed[0].centers[i], &model.centers[i], 1e-9, &what);
        }
        assert_close(
            &committed[0].weights,
            &model.weights,
            1e-9,
            &format!("epoch {epoch}, weights"),
        );
    }
    for (center, truth) in model.centers.iter().zip(TRUE_CENTERS) {
        assert_close(center, &truth, 0.2, "the last model near the true centres");
    }
    eprintln!(
        "{kills} kills, {} runs, {resumed} resumed, {} epochs, {:?}",
        runs.len(),
        epochs.len(),
        started.elapsed()
    );
}

#[test]
fn micro_batch_kmeans_continues_from_checkpointed_model_across_kills() {
    run_crash_test(5, 0x5eed_0301);
}
