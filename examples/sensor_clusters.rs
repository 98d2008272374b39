//! Streaming k-means on pump sensor readings, in the spirit of Spark Streaming's "filter
//! tweets by cluster": one stream of readings trains the model, another is predicted
//! with the newest model and only the readings of the low-pressure cluster are kept.
//! Prints how the centres move batch by batch, and the alerts.
//!
//! ```text
//! cargo run --release --example sensor_clusters
//! ```
//!
//! The readings are synthetic (a rate source): most pumps run normally (about 85 Hz,
//! 5 psi), some lose pressure (0.4 psi), some over-chlorinate (3.5 ppm). Features:
//! `[hz / 10, psi, chlorine ppm]`.

use rivulet::ml::StreamingKMeans;
use rivulet::source::RateSource;
use rivulet::{Query, RateRow, Trigger};
use std::time::Duration;

/// A reading of pump `id % 30`: its regime follows from the id, with deterministic noise.
fn reading(row: &RateRow) -> (String, Vec<f64>) {
    let id = row.value;
    let noise = |salt: u64| {
        let mut z = (id ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let pump = format!("pump-{:02}", id % 30);
    let (hz, psi, chlorine) = match id % 10 {
        0 => (80.0, 0.4, 1.5), // losing pressure
        1 => (86.0, 5.0, 3.5), // over-chlorinated
        _ => (85.0, 5.0, 1.5), // normal
    };
    let features = vec![
        (hz + 4.0 * noise(1)) / 10.0,
        psi + 0.6 * noise(2),
        chlorine + 0.4 * noise(3),
    ];
    (pump, features)
}

fn main() -> rivulet::Result<()> {
    let kmeans = StreamingKMeans::new(3)
        .with_decay_factor(0.8)
        .initial_centers(
            // Rough guesses: a normal pump, a weak one, a chlorine-heavy one. Weights of 1,
            // not 0: a first batch that misses a cluster would otherwise leave it at
            // weight 0, "dying", and MLlib's rule splits the largest cluster onto it.
            vec![
                vec![8.5, 5.0, 1.0],
                vec![8.5, 1.0, 2.0],
                vec![8.5, 5.0, 4.0],
            ],
            vec![1.0; 3],
        );
    let mut query = Query::builder();
    query.trigger(Trigger::MicroBatch {
        interval: Duration::from_millis(250),
    });
    let training = query
        .source("training", RateSource::new(20_000).with_limit(60_000))
        .map(|row| reading(&row).1);
    let mut models = training.train_kmeans(&kmeans).fan_out(2).into_iter();
    let (print, predict) = (models.next().unwrap(), models.next().unwrap());
    print.for_each(|model| println!("centres  {model}"));
    let readings = query
        .source("readings", RateSource::new(2_000).with_limit(6_000))
        .map(|row| reading(&row));
    let handle = kmeans.handle().clone();
    let alerts = kmeans
        .predict_on_values(predict, readings)
        .filter(move |(_, cluster)| {
            // The low-pressure cluster: the centre with the lowest psi in the newest model.
            let low = handle.latest().map(|model| {
                (0..model.k())
                    .min_by(|a, b| model.centers[*a][1].total_cmp(&model.centers[*b][1]))
                    .unwrap_or(0)
            });
            low == Some(*cluster)
        })
        .to_memory("alerts");
    let running = query.start()?;
    running.await_termination()?;
    let model = kmeans.handle().latest().expect("trained");
    println!("final    {model}");
    let mut per_pump = std::collections::BTreeMap::<String, u64>::new();
    for (pump, _) in alerts.rows() {
        *per_pump.entry(pump).or_default() += 1;
    }
    println!("low-pressure readings per pump: {per_pump:?}");
    Ok(())
}
