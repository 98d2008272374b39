//! The workloads as rivulet queries.

use super::workload::{
    count_step, keep, key_of, transform, BenchRecord, Generator, GeneratorSource, LatencySink,
    Recorded, Recorder, Workload,
};
use super::Outcome;
use anyhow::{Context, Result};
use rivulet::{Pinning, Query, Trigger, WaitPolicy};
use std::fmt;
use std::time::Duration;

/// How the engine's query is triggered in one benchmarked system (`--modes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EngineMode {
    /// Continuous processing. `epochs`: an epoch marker every this often (without a
    /// checkpoint directory the epochs are not persisted); `None`: epochs only if the
    /// run checkpoints (`--checkpoint-interval`).
    Continuous {
        /// Time between epoch markers, if set.
        epochs: Option<Duration>,
    },
    /// Micro-batches every `interval` (`Trigger::MicroBatch`).
    MicroBatch {
        /// Time between batch starts.
        interval: Duration,
    },
}

impl EngineMode {
    /// Parses `continuous`, `continuous:100ms` or `micro-batch:100ms`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (kind, interval) = match text.trim().split_once(':') {
            Some((kind, interval)) => (kind, Some(crate::parse_duration(interval)?)),
            None => (text.trim(), None),
        };
        if interval.is_some_and(|every| every.is_zero()) {
            return Err(format!("`{text}`: the interval must be positive"));
        }
        match (kind, interval) {
            ("continuous", epochs) => Ok(EngineMode::Continuous { epochs }),
            ("micro-batch", Some(interval)) => Ok(EngineMode::MicroBatch { interval }),
            ("micro-batch", None) => Err(format!(
                "`{text}`: a micro-batch mode needs its interval, e.g. micro-batch:100ms"
            )),
            _ => Err(format!(
                "unknown mode `{text}` (use continuous, continuous:INTERVAL or micro-batch:INTERVAL)"
            )),
        }
    }

    /// The trigger the query runs under, if it sets one (`checkpoint`: the checkpoint
    /// interval of the run, which gives a plain continuous query its epochs).
    fn trigger(self) -> Option<Trigger> {
        match self {
            EngineMode::Continuous { epochs } => {
                epochs.map(|checkpoint_interval| Trigger::Continuous {
                    checkpoint_interval,
                })
            }
            EngineMode::MicroBatch { interval } => Some(Trigger::MicroBatch { interval }),
        }
    }

    /// Whether records are released in batches.
    pub(crate) fn is_micro_batch(self) -> bool {
        matches!(self, EngineMode::MicroBatch { .. })
    }
}

/// `continuous`, `continuous:100ms`, `micro-batch:10ms` (what `parse` reads back).
impl fmt::Display for EngineMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineMode::Continuous { epochs: None } => f.write_str("continuous"),
            EngineMode::Continuous {
                epochs: Some(every),
            } => write!(f, "continuous:{}", short_duration(*every)),
            EngineMode::MicroBatch { interval } => {
                write!(f, "micro-batch:{}", short_duration(*interval))
            }
        }
    }
}

/// `100ms`, `2s`, `250us`: the shortest exact unit.
fn short_duration(duration: Duration) -> String {
    let ns = duration.as_nanos();
    if ns.is_multiple_of(1_000_000_000) {
        format!("{}s", ns / 1_000_000_000)
    } else if ns.is_multiple_of(1_000_000) {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{}us", ns / 1_000)
    }
}

/// How the engine runs.
#[derive(Debug, Clone)]
pub(crate) struct EngineSettings {
    /// Wait policy of every operator thread.
    pub(crate) wait: WaitPolicy,
    /// Its name on the command line (`spin`, `yield`, `park`).
    pub(crate) wait_name: String,
    /// Core placement.
    pub(crate) pinning: Pinning,
    /// Events per edge ring.
    pub(crate) ring_capacity: usize,
    /// Instances of the keyed count (keyed workload only). At 1 the count runs on one
    /// thread behind a `new_thread()` boundary; above 1 the source feeds a keyed exchange.
    pub(crate) parallelism: usize,
    /// How the query is triggered.
    pub(crate) mode: EngineMode,
    /// Records per micro-batch at most, if not the engine's default.
    pub(crate) max_batch_records: Option<usize>,
    /// Checkpoint every this often into a fresh directory under this path, if set. (In
    /// micro-batch mode every batch is checkpointed; the interval is the trigger's.)
    pub(crate) checkpoint: Option<(
        Duration,
        rivulet::checkpoint::Durability,
        std::path::PathBuf,
    )>,
}

/// Runs `workload` on the engine over the whole schedule of `generator`, calling `tick`
/// about every 100 ms while it runs.
pub(crate) fn run(
    workload: Workload,
    settings: &EngineSettings,
    generator: Generator,
    recorder: Recorder,
    tick: &mut dyn FnMut(),
) -> Result<Outcome> {
    let (done, finished) = std::sync::mpsc::channel::<Recorded>();
    let sink = LatencySink::new(recorder, done);
    let mut query = Query::builder();
    query
        .name(&format!("bench-{workload:?}").to_lowercase())
        .wait_policy(settings.wait)
        .pinning(settings.pinning.clone())
        .ring_capacity(settings.ring_capacity)
        .parallelism(settings.parallelism);
    if let Some(trigger) = settings.mode.trigger() {
        query.trigger(trigger);
    }
    if let Some(records) = settings.max_batch_records {
        query.max_batch_records(records);
    }
    let checkpoint_dir = match &settings.checkpoint {
        Some((interval, durability, parent)) => {
            let dir = fresh_dir(parent)?;
            query.checkpoint(
                rivulet::checkpoint::CheckpointConfig::new(&dir)
                    .interval(*interval)
                    .durability(*durability),
            );
            Some(dir)
        }
        None => None,
    };
    let source = query.source("generator", GeneratorSource(generator));
    let sinks = match workload {
        Workload::Stateless => {
            source
                .filter(keep)
                .map(transform)
                .new_thread()
                .sink("latency", sink);
            1
        }
        Workload::Keyed if settings.parallelism <= 1 => {
            source
                .new_thread()
                .key_by(key_of)
                .fold((0u64, BenchRecord::default()), count_step)
                .sink("latency", sink);
            1
        }
        Workload::Keyed => {
            source
                .key_by(key_of)
                .with_parallelism(settings.parallelism)
                .fold((0u64, BenchRecord::default()), count_step)
                .sink("latency", sink);
            settings.parallelism
        }
    };
    let running = query.start().context("starting the engine query")?;
    let threads = running.progress().threads;
    while running.is_active() {
        std::thread::sleep(Duration::from_millis(100));
        tick();
    }
    running
        .await_termination()
        .context("the engine query failed")?;
    if let Some(dir) = checkpoint_dir {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("removing checkpoints in {}", dir.display()))?;
    }
    let mut recorded = Recorded::empty();
    let mut reported = 0;
    for part in finished.try_iter() {
        recorded.merge(&part);
        reported += 1;
    }
    anyhow::ensure!(
        reported == sinks,
        "{reported} of {sinks} sink instances reported their histograms"
    );
    if let Some(progress) = running.last_progress() {
        report_engine_latency(&progress.latency.end_to_end.cumulative, &recorded);
    }
    let placement = rivulet::runtime::affinity::place(&settings.pinning, threads);
    Ok(Outcome {
        recorded,
        threads,
        pinning: super::describe_placement(&placement),
        wait: settings.wait_name.clone(),
    })
}

/// Prints the engine's own end-to-end percentiles (sampled latency markers, from a
/// source's hand-off to the sink) beside the bench's, measured on every record from its
/// actual send time (uncorrected), and their ratios: the accuracy of the engine's
/// progress reports. Only queries with epochs (`--modes continuous:100ms`, micro-batch)
/// report latency.
fn report_engine_latency(engine: &rivulet::metrics::Percentiles, recorded: &Recorded) {
    if engine.count == 0 || recorded.uncorrected.is_empty() {
        return;
    }
    let bench = &recorded.uncorrected;
    let us = |q: f64| bench.value_at_quantile(q) as f64 / 1_000.0;
    let line: Vec<String> = [
        ("p50", engine.p50, us(0.5)),
        ("p90", engine.p90, us(0.9)),
        ("p99", engine.p99, us(0.99)),
        ("p99.9", engine.p999, us(0.999)),
    ]
    .iter()
    .map(|(name, engine, bench)| {
        format!("{name} {engine:.1}/{bench:.1} us ({:.2})", engine / bench)
    })
    .collect();
    eprintln!(
        "engine-reported vs measured end-to-end latency ({} markers): {}",
        engine.count,
        line.join(", ")
    );
}

/// A directory under `parent` that no earlier run used (a used one would be recovered
/// from).
fn fresh_dir(parent: &std::path::Path) -> Result<std::path::PathBuf> {
    for n in 0.. {
        let dir = parent.join(format!("checkpoints-{n}"));
        if !dir.exists() {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            return Ok(dir);
        }
    }
    unreachable!("some directory name is free")
}

#[cfg(test)]
mod tests {
    use super::super::workload::{payload, Clock, Schedule};
    use super::*;

    fn settings(parallelism: usize) -> EngineSettings {
        EngineSettings {
            wait: WaitPolicy::default(),
            wait_name: "park".into(),
            pinning: Pinning::None,
            ring_capacity: 64,
            parallelism,
            mode: EngineMode::Continuous { epochs: None },
            max_batch_records: None,
            checkpoint: None,
        }
    }

    /// Runs `workload` on the engine over `schedule` (1,000 keys).
    fn run_schedule(workload: Workload, settings: &EngineSettings, schedule: Schedule) -> Outcome {
        let clock = Clock::new();
        run(
            workload,
            settings,
            Generator::new(clock, schedule, 1000),
            Recorder::new(clock, schedule),
            &mut || {},
        )
        .unwrap()
    }

    /// Records of `schedule` the sink measures: every one after the warm-up, less those
    /// the stateless workload's filter drops.
    fn measured(workload: Workload, schedule: Schedule) -> u64 {
        (schedule.warmup_records..schedule.total_records)
            .filter(|&seq| {
                workload == Workload::Keyed
                    || keep(&BenchRecord {
                        value: payload(seq),
                        ..BenchRecord::default()
                    })
            })
            .count() as u64
    }

    #[test]
    fn engine_workloads_deliver_every_measured_record() {
        for (workload, parallelism) in [
            (Workload::Stateless, 1),
            (Workload::Keyed, 1),
            (Workload::Keyed, 2),
        ] {
            let schedule = Schedule::new(
                200_000,
                Duration::from_millis(20),
                Duration::from_millis(50),
            );
            let outcome = run_schedule(workload, &settings(parallelism), schedule);
            assert_eq!(
                outcome.recorded.corrected.len(),
                measured(workload, schedule),
                "{workload:?}"
            );
            assert_eq!(outcome.threads, 1 + parallelism);
        }
    }

    #[test]
    fn modes_parse_and_print_back() {
        for text in [
            "continuous",
            "continuous:100ms",
            "micro-batch:10ms",
            "micro-batch:2s",
            "micro-batch:250us",
        ] {
            let mode = EngineMode::parse(text).unwrap();
            assert_eq!(mode.to_string(), text);
        }
        assert_eq!(
            EngineMode::parse("micro-batch:100ms").unwrap(),
            EngineMode::MicroBatch {
                interval: Duration::from_millis(100)
            }
        );
        for bad in ["micro-batch", "micro-batch:0ms", "batch:1s", "continuous:x"] {
            assert!(EngineMode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn micro_batches_deliver_every_measured_record_once() {
        for mode in [
            EngineMode::MicroBatch {
                interval: Duration::from_millis(10),
            },
            EngineMode::Continuous {
                epochs: Some(Duration::from_millis(10)),
            },
        ] {
            let schedule = Schedule::new(
                100_000,
                Duration::from_millis(20),
                Duration::from_millis(100),
            );
            let mut settings = settings(1);
            settings.mode = mode;
            settings.max_batch_records = Some(500);
            let outcome = run_schedule(Workload::Stateless, &settings, schedule);
            assert_eq!(
                outcome.recorded.corrected.len(),
                measured(Workload::Stateless, schedule),
                "{mode}"
            );
        }
    }

    #[test]
    fn checkpointed_keyed_delivers_every_measured_record() {
        let parent = std::env::temp_dir().join(format!("rivulet-ckpt-{}", std::process::id()));
        let schedule = Schedule::new(
            100_000,
            Duration::from_millis(20),
            Duration::from_millis(200),
        );
        let mut settings = settings(1);
        settings.checkpoint = Some((
            Duration::from_millis(20),
            rivulet::checkpoint::Durability::Msync,
            parent.clone(),
        ));
        let outcome = run_schedule(Workload::Keyed, &settings, schedule);
        assert_eq!(
            outcome.recorded.corrected.len(),
            schedule.measured_records()
        );
        // The run's checkpoint directory is removed afterwards.
        assert_eq!(std::fs::read_dir(&parent).unwrap().count(), 0);
        std::fs::remove_dir_all(&parent).unwrap();
    }
}
