//! The hand-written baselines: the same generator, the same per-record work and the same
//! recorder as the engine, on two threads joined by a raw `rtrb` ring (the floor), a
//! bounded `crossbeam-channel`, or a `std::sync::mpsc::sync_channel`.
//!
//! The producer thread generates, filters and maps (stateless) and pushes; the consumer
//! thread does the keyed count (keyed) and records latency, like the engine's two threads.

use super::workload::{Generator, KeyedCount, Recorded, Recorder, Timed, Workload};
use super::Outcome;
use anyhow::{anyhow, Result};
use clap::ValueEnum;
use rivulet::Pinning;
use std::hint::black_box;
use std::thread::JoinHandle;
use std::time::Duration;

/// A hand-written two-thread pipeline to compare the engine with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub(crate) enum Baseline {
    /// A raw `rtrb` SPSC ring, both threads spinning: the floor.
    Raw,
    /// A bounded `crossbeam-channel` with blocking send and receive.
    Crossbeam,
    /// `std::sync::mpsc::sync_channel` with blocking send and receive.
    Mpsc,
}

impl Baseline {
    /// Every baseline, in table order.
    pub(crate) const ALL: [Baseline; 3] = [Baseline::Raw, Baseline::Crossbeam, Baseline::Mpsc];

    /// The name in tables, files and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Baseline::Raw => "raw-rtrb",
            Baseline::Crossbeam => "crossbeam",
            Baseline::Mpsc => "mpsc",
        }
    }

    /// How its threads wait, for the table.
    pub(crate) fn wait(self) -> &'static str {
        match self {
            Baseline::Raw => "spin",
            Baseline::Crossbeam | Baseline::Mpsc => "blocking",
        }
    }
}

/// The producer's share of the work: generate, then (stateless) filter and map.
#[inline]
fn produce(workload: Workload, generator: &mut Generator) -> Option<Option<super::BenchRecord>> {
    let record = generator.next_blocking()?;
    Some(match workload {
        Workload::Stateless => {
            super::workload::keep(&record).then(|| super::workload::transform(record))
        }
        Workload::Keyed => Some(record),
    })
}

/// The consumer's share: (keyed) count, then record the latency.
#[derive(Debug)]
struct SinkSide {
    recorder: Recorder,
    count: Option<KeyedCount>,
}

impl SinkSide {
    fn new(workload: Workload, recorder: Recorder) -> Self {
        SinkSide {
            recorder,
            count: (workload == Workload::Keyed).then(KeyedCount::default),
        }
    }

    #[inline]
    fn accept(&mut self, record: super::BenchRecord) {
        match &mut self.count {
            None => {
                self.recorder.record(&record);
                black_box(&record);
            }
            Some(count) => {
                let out = count.update(record);
                self.recorder.record(out.bench_record());
                black_box(&out);
            }
        }
    }

    fn finish(mut self) -> Recorded {
        self.recorder.take()
    }
}

/// Pins the calling thread to `core`, if any.
fn pin(core: Option<core_affinity::CoreId>) {
    if let Some(core) = core {
        // As in the engine, failing to pin is not fatal.
        let _pinned = core_affinity::set_for_current(core);
    }
}

/// Runs `baseline` over the whole schedule of `generator`, calling `tick` about every
/// 100 ms while it runs.
pub(crate) fn run(
    baseline: Baseline,
    workload: Workload,
    generator: Generator,
    recorder: Recorder,
    capacity: usize,
    pinning: &Pinning,
    tick: &mut dyn FnMut(),
) -> Result<Outcome> {
    let cores = rivulet::runtime::affinity::place(pinning, 2);
    let (producer_core, consumer_core) = (cores[0], cores[1]);
    let sink = SinkSide::new(workload, recorder);
    let (producer, consumer) = match baseline {
        Baseline::Raw => raw(
            workload,
            generator,
            sink,
            capacity,
            producer_core,
            consumer_core,
        ),
        Baseline::Crossbeam => {
            let (tx, rx) = crossbeam_channel::bounded(capacity);
            spawn_pair(
                workload,
                generator,
                sink,
                [producer_core, consumer_core],
                move |record| tx.send(record).is_ok(),
                move |sink: &mut SinkSide| rx.iter().for_each(|record| sink.accept(record)),
            )
        }
        Baseline::Mpsc => {
            let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
            spawn_pair(
                workload,
                generator,
                sink,
                [producer_core, consumer_core],
                move |record| tx.send(record).is_ok(),
                move |sink: &mut SinkSide| rx.iter().for_each(|record| sink.accept(record)),
            )
        }
    }?;
    while !consumer.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        tick();
    }
    producer
        .join()
        .map_err(|_| anyhow!("{} producer panicked", baseline.name()))?;
    let recorded = consumer
        .join()
        .map_err(|_| anyhow!("{} consumer panicked", baseline.name()))?;
    Ok(Outcome {
        recorded,
        threads: 2,
        pinning: super::describe_placement(&cores),
        wait: baseline.wait().to_string(),
    })
}

type Pair = (JoinHandle<()>, JoinHandle<Recorded>);

/// Two threads over a channel: `send` returns `false` once the receiver is gone;
/// `drain` receives until the sender is dropped.
fn spawn_pair(
    workload: Workload,
    mut generator: Generator,
    mut sink: SinkSide,
    cores: [Option<core_affinity::CoreId>; 2],
    mut send: impl FnMut(super::BenchRecord) -> bool + Send + 'static,
    drain: impl FnOnce(&mut SinkSide) + Send + 'static,
) -> Result<Pair> {
    let consumer = std::thread::Builder::new()
        .name("baseline-consumer".into())
        .spawn(move || {
            pin(cores[1]);
            drain(&mut sink);
            sink.finish()
        })?;
    let producer = std::thread::Builder::new()
        .name("baseline-producer".into())
        .spawn(move || {
            pin(cores[0]);
            while let Some(item) = produce(workload, &mut generator) {
                if let Some(record) = item {
                    if !send(record) {
                        break;
                    }
                }
            }
            // Dropping `send` (and the sender in it) ends the consumer's loop.
        })?;
    Ok((producer, consumer))
}

/// Two threads over a raw rtrb ring, both spinning (full ring: the producer spins).
fn raw(
    workload: Workload,
    mut generator: Generator,
    mut sink: SinkSide,
    capacity: usize,
    producer_core: Option<core_affinity::CoreId>,
    consumer_core: Option<core_affinity::CoreId>,
) -> Result<Pair> {
    let (mut tx, mut rx) = rtrb::RingBuffer::<super::BenchRecord>::new(capacity);
    let consumer = std::thread::Builder::new()
        .name("raw-consumer".into())
        .spawn(move || {
            pin(consumer_core);
            loop {
                match rx.pop() {
                    Ok(record) => sink.accept(record),
                    // The producer's pushes happen before it drops its half: once that is
                    // seen, an empty ring stays empty.
                    Err(_) if rx.is_abandoned() && rx.is_empty() => break,
                    Err(_) => std::hint::spin_loop(),
                }
            }
            sink.finish()
        })?;
    let producer = std::thread::Builder::new()
        .name("raw-producer".into())
        .spawn(move || {
            pin(producer_core);
            while let Some(item) = produce(workload, &mut generator) {
                let Some(mut record) = item else { continue };
                loop {
                    match tx.push(record) {
                        Ok(()) => break,
                        Err(rtrb::PushError::Full(back)) => {
                            if tx.is_abandoned() {
                                return;
                            }
                            record = back;
                            std::hint::spin_loop();
                        }
                    }
                }
            }
        })?;
    Ok((producer, consumer))
}

#[cfg(test)]
mod tests {
    use super::super::workload::{Clock, Schedule};
    use super::*;

    #[test]
    fn every_baseline_delivers_every_measured_record() {
        for workload in [Workload::Stateless, Workload::Keyed] {
            for baseline in Baseline::ALL {
                let clock = Clock::new();
                let schedule = Schedule::new(
                    200_000,
                    Duration::from_millis(20),
                    Duration::from_millis(50),
                );
                let outcome = run(
                    baseline,
                    workload,
                    Generator::new(clock, schedule, 1000),
                    Recorder::new(clock, schedule),
                    64,
                    &Pinning::None,
                    &mut || {},
                )
                .unwrap();
                let expected: u64 = (schedule.warmup_records..schedule.total_records)
                    .filter(|&seq| {
                        workload == Workload::Keyed
                            || super::super::workload::keep(&super::super::BenchRecord {
                                value: super::super::workload::payload(seq),
                                ..Default::default()
                            })
                    })
                    .count() as u64;
                assert_eq!(
                    outcome.recorded.corrected.len(),
                    expected,
                    "{workload:?} over {}",
                    baseline.name()
                );
                assert_eq!(outcome.threads, 2);
            }
        }
    }
}
