//! The watermark generator: the stage [`with_watermark`](crate::stream::EventTimeStream::with_watermark)
//! adds to a chain. It reads each record's event time, keeps the largest, and sends
//! watermarks downstream as [`time::watermark`](crate::time::watermark) describes:
//! per batch from every instance's reports in micro-batch epochs, periodically from its
//! own records in continuous ones, with idleness. Watermarks and idleness from upstream
//! are replaced by its own.
//!
//! It is a stage of its own rather than an [`Operator`](super::Operator): it sends
//! control events (watermarks, idle/active), which operators cannot.

use super::stage::StageSnapshot;
use crate::checkpoint::codec;
use crate::checkpoint::coordinator::Participant;
use crate::checkpoint::CheckpointError;
use crate::error::{BoxError, Error};
use crate::event::{Signal, Timestamp, WatermarkStatus};
use crate::metrics::epoch::{EpochMetrics, EventTimeStats};
use crate::metrics::latency::LatencyRecorder;
use crate::metrics::OperatorMetrics;
use crate::runtime::{Downstream, RunControl};
use crate::sync::Arc;
use crate::time::watermark::{watermark_of, WatermarkConfig};
use crate::trigger::ExecutionMode;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// What a generator checkpoints.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct GeneratorState {
    /// The largest event time seen (µs; `i64::MIN`: none).
    max_event_time: i64,
    /// The watermark sent last.
    watermark: i64,
}

/// Decodes a generator's checkpointed state (a stage snapshot holding its bytes).
fn decode_state(bytes: &[u8]) -> Result<GeneratorState, BoxError> {
    let snapshot: StageSnapshot = codec::decode(bytes)?;
    match snapshot.operator {
        Some(state) => Ok(codec::decode(&state)?),
        None => Err("the watermark generator's snapshot holds no state".into()),
    }
}

/// Where the generator sits in the query.
pub(crate) struct GeneratorParts {
    /// Its operator id: the key of its reports on the board.
    pub(crate) id: usize,
    pub(crate) instance: usize,
    pub(crate) instances: usize,
    pub(crate) metrics: Arc<OperatorMetrics>,
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) control: Arc<RunControl>,
    pub(crate) participant: Option<Participant>,
    /// The first epoch of this start and how it runs.
    pub(crate) first_epoch: u64,
    pub(crate) mode: ExecutionMode,
    /// The restored state's bytes, if any.
    pub(crate) restored: Option<Vec<u8>>,
}

/// The generator stage for records of type `T`, reading event time with `F`.
pub(crate) struct WatermarkStage<T, F, C> {
    time: F,
    next: C,
    delay: i64,
    every_records: u32,
    interval: i64,
    idle_timeout: Option<i64>,
    state: GeneratorState,
    /// Whether `state.watermark` has been sent in this run (a restored one has not).
    sent: bool,
    /// Records since the watermark was last considered (continuous epochs).
    since_emit: u32,
    /// When a moved, unsent watermark was first noticed by the thread's timer check.
    armed_at: Option<i64>,
    /// Whether the first event of the current epoch is still to come: a micro-batch
    /// takes its watermark then.
    epoch_starting: bool,
    epoch: u64,
    mode: ExecutionMode,
    /// Idleness (continuous epochs with an idle timeout): whether the output is marked
    /// active, whether a record came since the last check, and when one last did.
    active: bool,
    seen: bool,
    last_active: Option<i64>,
    parts: GeneratorParts,
    /// Event times since the last epoch report (progress's `eventTime`).
    event_times: EventTimeStats,
    /// Latency markers' samples since the last epoch report.
    latency: LatencyRecorder,
    _record: PhantomData<fn(T)>,
}

impl<T, F, C> WatermarkStage<T, F, C>
where
    F: FnMut(&T) -> Timestamp,
    C: Downstream<T>,
{
    /// A generator with `config` in front of `next`. Fails if the restored state cannot
    /// be read.
    pub(crate) fn new(
        time: F,
        config: WatermarkConfig,
        next: C,
        mut parts: GeneratorParts,
    ) -> Result<Self, BoxError> {
        let state = match parts.restored.take() {
            Some(bytes) => decode_state(&bytes)?,
            None => GeneratorState {
                max_event_time: i64::MIN,
                watermark: i64::MIN,
            },
        };
        if let Some(participant) = &parts.participant {
            // The restored epoch's largest event time, for the batch that follows it.
            participant.shared.watermarks.report(
                parts.id,
                (parts.instance, parts.instances),
                config.delay_micros(),
                parts.first_epoch - 1,
                state.max_event_time,
            );
        }
        Ok(WatermarkStage {
            time,
            next,
            delay: config.delay_micros(),
            every_records: config.every_records(),
            interval: config.interval_micros(),
            idle_timeout: config.idle_timeout_micros(),
            state,
            sent: false,
            since_emit: 0,
            armed_at: None,
            epoch_starting: true,
            epoch: parts.first_epoch,
            mode: parts.mode,
            active: true,
            seen: false,
            last_active: None,
            parts,
            event_times: EventTimeStats::default(),
            latency: LatencyRecorder::default(),
            _record: PhantomData,
        })
    }

    /// Sends `watermark` if it is later than the last one sent (or the restored one was
    /// not sent yet).
    fn send(&mut self, watermark: i64) {
        let unsent_restore = !self.sent && self.state.watermark > i64::MIN;
        if watermark > self.state.watermark || unsent_restore {
            self.state.watermark = self.state.watermark.max(watermark);
            self.sent = true;
            self.armed_at = None;
            self.next
                .signal(Signal::Watermark(Timestamp(self.state.watermark)));
        }
    }

    /// The watermark of this instance's own records.
    fn local_watermark(&self) -> i64 {
        watermark_of(self.state.max_event_time, self.delay)
    }

    /// The first event of an epoch: a micro-batch starts with the query's batch
    /// watermark (every generator's instances' records up to the end of the batch
    /// before); a continuous epoch with this instance's own. A restored watermark is sent
    /// first in either.
    #[cold]
    fn start_epoch(&mut self) {
        self.epoch_starting = false;
        let watermark = match (&self.parts.participant, self.mode) {
            (Some(participant), ExecutionMode::MicroBatch) => {
                let board = &participant.shared.watermarks;
                let watermark = board.batch_watermark(self.epoch - 1);
                board.started_batch(watermark.max(self.state.watermark));
                watermark
            }
            _ => self.local_watermark(),
        };
        self.send(watermark);
    }

    /// The thread's `fire_timers` found this instance without records since the last
    /// check for longer than the idle timeout: mark the output idle.
    fn check_idle(&mut self, now: i64) {
        let Some(timeout) = self.idle_timeout else {
            return;
        };
        if self.seen || self.last_active.is_none() {
            self.seen = false;
            self.last_active = Some(now);
        } else if self.active
            && self
                .last_active
                .is_some_and(|last| now.saturating_sub(last) >= timeout)
        {
            self.active = false;
            self.next.signal(Signal::Status(WatermarkStatus::Idle));
        }
    }

    /// Encodes the state for a checkpoint, as a stage snapshot.
    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        let state = codec::encode(&self.state)?;
        Ok(Some(codec::encode(&StageSnapshot {
            operator: Some(state),
            timers: None,
        })?))
    }

    fn on_marker(&mut self, epoch: u64) {
        if self.mode == ExecutionMode::Continuous {
            // The epoch's output carries the watermark its records reached.
            self.send(self.local_watermark());
        }
        if let Some(participant) = &self.parts.participant {
            participant.shared.watermarks.report(
                self.parts.id,
                (self.parts.instance, self.parts.instances),
                self.delay,
                epoch,
                self.state.max_event_time,
            );
            participant.report(
                epoch,
                Self::epoch_metrics(
                    &mut self.event_times,
                    &mut self.latency,
                    self.state.watermark,
                    &self.parts.metrics,
                ),
            );
            if let Err(error) = participant.ack_state(epoch, &mut || self.snapshot()) {
                self.parts
                    .control
                    .fail(CheckpointError::snapshot_failed(&self.parts.name, error));
            }
            self.mode = participant.shared.emit_mode(epoch + 1).execution;
        }
        self.epoch = epoch + 1;
        self.epoch_starting = true;
        self.next.signal(Signal::Marker(crate::event::Epoch(epoch)));
    }

    fn on_end(&mut self) {
        if self.mode == ExecutionMode::Continuous {
            self.send(self.local_watermark());
        }
        if let Some(participant) = &self.parts.participant {
            // Everything this instance saw, for the watermark operators downstream apply
            // at the end of a micro-batch stream (see `Stage::end_batches`).
            participant.shared.watermarks.report(
                self.parts.id,
                (self.parts.instance, self.parts.instances),
                self.delay,
                crate::time::watermark::FINISHED,
                self.state.max_event_time,
            );
            participant.report(
                self.epoch,
                Self::epoch_metrics(
                    &mut self.event_times,
                    &mut self.latency,
                    self.state.watermark,
                    &self.parts.metrics,
                ),
            );
            if let Err(error) = participant.finish_state(&mut || self.snapshot()) {
                self.parts
                    .control
                    .fail(CheckpointError::snapshot_failed(&self.parts.name, error));
            }
        }
        self.next.signal(Signal::End);
    }

    /// What this generator reports for an epoch's progress: its counters, the event
    /// times since the last report, its watermark.
    fn epoch_metrics(
        event_times: &mut EventTimeStats,
        latency: &mut LatencyRecorder,
        watermark: i64,
        metrics: &OperatorMetrics,
    ) -> EpochMetrics {
        let event_time = std::mem::take(event_times);
        EpochMetrics {
            event_time: (event_time.count > 0).then_some(event_time),
            watermark: Some(watermark),
            ..EpochMetrics::of(metrics, latency)
        }
    }

    #[cold]
    #[inline(never)]
    fn panicked(&self, payload: Box<dyn std::any::Any + Send>) -> ! {
        self.parts
            .control
            .fail(Error::from_panic(&self.parts.name, payload.as_ref()));
        resume_unwind(payload)
    }
}

impl<T, F, C> Downstream<T> for WatermarkStage<T, F, C>
where
    F: FnMut(&T) -> Timestamp,
    C: Downstream<T>,
{
    #[inline]
    fn push(&mut self, record: T) {
        if self.epoch_starting {
            self.start_epoch();
        }
        self.parts.metrics.records_in.add(1);
        let time = &mut self.time;
        let event_time = match catch_unwind(AssertUnwindSafe(|| time(&record))) {
            Ok(time) => time.0,
            Err(payload) => self.panicked(payload),
        };
        if event_time > self.state.max_event_time {
            self.state.max_event_time = event_time;
        }
        self.event_times.observe(event_time);
        if self.mode == ExecutionMode::Continuous {
            if !self.active {
                self.active = true;
                self.next.signal(Signal::Status(WatermarkStatus::Active));
            }
            self.seen = true;
            self.since_emit += 1;
            if self.since_emit >= self.every_records {
                self.since_emit = 0;
                self.send(self.local_watermark());
            }
        }
        self.parts.metrics.records_out.add(1);
        self.next.push(record);
    }

    fn signal(&mut self, signal: Signal) {
        match signal {
            // This stage makes the stream's watermark: upstream's is replaced.
            Signal::Watermark(_) | Signal::Status(_) => {}
            Signal::Latency(stamp) => {
                let latency = LatencyRecorder::arrived(stamp);
                self.next.signal(signal);
                self.latency.record(latency);
            }
            Signal::Marker(epoch) => {
                if self.epoch_starting {
                    self.start_epoch();
                }
                self.on_marker(epoch.0);
            }
            Signal::End => self.on_end(),
        }
    }

    #[inline]
    fn flush(&mut self) {
        self.next.flush();
    }

    fn next_timer(&self) -> Option<Timestamp> {
        let own = if self.mode != ExecutionMode::Continuous {
            None
        } else if self.local_watermark() > self.state.watermark {
            // A moved watermark waits at most the interval (the first check arms it).
            Some(Timestamp(self.armed_at.map_or(i64::MIN, |armed| {
                armed.saturating_add(self.interval)
            })))
        } else {
            match (self.idle_timeout, self.active) {
                (Some(timeout), true) => Some(Timestamp(
                    self.last_active
                        .map_or(i64::MIN, |last| last.saturating_add(timeout)),
                )),
                _ => None,
            }
        };
        match (own, self.next.next_timer()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn fire_timers(&mut self, now: Timestamp) {
        if self.mode == ExecutionMode::Continuous {
            if self.local_watermark() > self.state.watermark {
                match self.armed_at {
                    None => self.armed_at = Some(now.0),
                    Some(armed) if now.0 >= armed.saturating_add(self.interval) => {
                        self.send(self.local_watermark());
                    }
                    Some(_) => {}
                }
            }
            self.check_idle(now.0);
        }
        self.next.fire_timers(now);
    }

    fn committed(&mut self, epoch: crate::event::Epoch) {
        self.next.committed(epoch);
    }

    fn open(&mut self) -> Result<(), String> {
        self.next.open()
    }
}
