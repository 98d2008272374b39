//! Assembling one [`StreamingQueryProgress`] per completed epoch from the participants'
//! reports: pure bookkeeping, run by the checkpoint coordinator's thread and tested on
//! its own.

use super::epoch::{EpochMetrics, EventTimeStats, StateMetrics};
use super::latency::{new_histogram, Percentiles};
use super::progress::{
    LatencyProgress, LatencyWindow, OperatorEpochProgress, SinkProgress, SourceProgress,
    StateOperatorProgress, StreamingQueryProgress,
};
use crate::plan::OperatorKind;
use crate::trigger::ExecutionMode;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// The counter whose growth is a state operator's `numRowsDroppedByWatermark`.
pub(crate) const ROWS_DROPPED_BY_WATERMARK: &str = "rows_dropped_by_watermark";

/// An operator as progress shows it: its participants are `base .. base + instances`.
#[derive(Debug, Clone)]
pub(crate) struct PlanOperator {
    pub(crate) name: String,
    pub(crate) kind: OperatorKind,
    pub(crate) base: usize,
    pub(crate) instances: usize,
}

/// The query as progress shows it.
#[derive(Debug, Clone)]
pub(crate) struct ProgressPlan {
    pub(crate) id: String,
    pub(crate) run_id: String,
    pub(crate) name: String,
    pub(crate) operators: Vec<PlanOperator>,
}

/// What the coordinator knows of a completed epoch.
#[derive(Debug, Clone)]
pub(crate) struct EpochFacts {
    pub(crate) epoch: u64,
    pub(crate) mode: ExecutionMode,
    /// When it was triggered (`None`: completed without a trigger of this run).
    pub(crate) triggered: Option<Instant>,
    pub(crate) completed: Instant,
    /// Time spent in the sinks' commits.
    pub(crate) commit: Duration,
    /// Each source participant's offset after the epoch (empty without a log).
    pub(crate) offsets: BTreeMap<usize, Vec<u8>>,
}

/// One participant's running totals, as last reported.
#[derive(Debug, Default, Clone)]
struct Totals {
    records_in: u64,
    records_out: u64,
    counters: Vec<(&'static str, u64)>,
    rows_updated: u64,
    rows_removed: u64,
}

/// What the epoch being assembled gathered for one operator.
#[derive(Debug, Default)]
struct OperatorEpoch {
    records_in: u64,
    records_out: u64,
    counters: BTreeMap<String, u64>,
    rows_updated: u64,
    rows_removed: u64,
    latency: Option<Histogram<u64>>,
}

/// Turns participants' reports into one progress per completed epoch.
#[derive(Debug)]
pub(crate) struct Assembler {
    plan: ProgressPlan,
    /// Operator index of each participant.
    operator_of: Vec<usize>,
    totals: Vec<Totals>,
    /// Each participant's latest state report.
    state: Vec<Option<StateMetrics>>,
    /// Each participant's latest watermark.
    watermarks: Vec<Option<i64>>,
    /// Reports of epochs not completed yet: `(epoch, participant, report)`.
    pending: Vec<(u64, usize, Box<EpochMetrics>)>,
    /// Latency since the start, per operator and end to end, with their percentiles
    /// (recomputed only when samples arrive).
    cumulative: Vec<Option<(Histogram<u64>, Percentiles)>>,
    end_to_end: Option<(Histogram<u64>, Percentiles)>,
    /// Each source participant's offset after the previous epoch.
    offsets: BTreeMap<usize, Vec<u8>>,
    previous_trigger: Instant,
    previous_completion: Instant,
}

impl Assembler {
    /// An assembler for `plan`, whose run started at `started`.
    pub(crate) fn new(plan: ProgressPlan, started: Instant) -> Self {
        let participants = plan
            .operators
            .iter()
            .map(|op| op.base + op.instances)
            .max()
            .unwrap_or(0);
        let mut operator_of = vec![0; participants];
        for (index, op) in plan.operators.iter().enumerate() {
            operator_of[op.base..op.base + op.instances].fill(index);
        }
        Assembler {
            cumulative: plan.operators.iter().map(|_| None).collect(),
            plan,
            totals: vec![Totals::default(); participants],
            state: vec![None; participants],
            watermarks: vec![None; participants],
            operator_of,
            pending: Vec::new(),
            end_to_end: None,
            offsets: BTreeMap::new(),
            previous_trigger: started,
            previous_completion: started,
        }
    }

    /// Keeps `participant`'s report for `epoch` (the epoch whose marker it passed, or at
    /// end of stream the epoch its last records belong to).
    pub(crate) fn receive(&mut self, epoch: u64, participant: usize, metrics: Box<EpochMetrics>) {
        if participant < self.operator_of.len() {
            self.pending.push((epoch, participant, metrics));
        }
    }

    /// The progress of the completed epoch `facts.epoch`: every report up to it.
    pub(crate) fn assemble(&mut self, facts: &EpochFacts) -> StreamingQueryProgress {
        let mut ops: Vec<OperatorEpoch> = self
            .plan
            .operators
            .iter()
            .map(|_| OperatorEpoch::default())
            .collect();
        let mut event_time: Option<EventTimeStats> = None;
        let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(epoch, _, _)| *epoch <= facts.epoch);
        self.pending = kept;
        for (_, participant, metrics) in taken {
            let op = &mut ops[self.operator_of[participant]];
            self.account(participant, *metrics, op, &mut event_time);
        }
        let triggered = facts.triggered.unwrap_or(facts.completed);
        let interval = triggered.saturating_duration_since(self.previous_trigger);
        let processing = match facts.mode {
            ExecutionMode::MicroBatch => facts.completed.saturating_duration_since(triggered),
            ExecutionMode::Continuous => facts
                .completed
                .saturating_duration_since(self.previous_completion),
        };
        self.previous_trigger = triggered;
        self.previous_completion = facts.completed;
        // Rounded to thousandths, so the JSON text parses back to the same value.
        let rate = |rows: u64, over: Duration| {
            let seconds = over.as_secs_f64();
            if seconds > 0.0 {
                (rows as f64 / seconds * 1_000.0).round() / 1_000.0
            } else {
                0.0
            }
        };

        let mut operators = Vec::new();
        let mut state_operators = Vec::new();
        let mut sources = Vec::new();
        let mut sinks = Vec::new();
        let mut end_to_end_epoch: Option<Histogram<u64>> = None;
        for (index, (plan, op)) in self.plan.operators.iter().zip(ops).enumerate() {
            let latency = op.latency.map(|epoch| {
                let (cumulative, percentiles) = self.cumulative[index]
                    .get_or_insert_with(|| (new_histogram(), Percentiles::default()));
                let _ = cumulative.add(&epoch);
                *percentiles = Percentiles::of(cumulative);
                if plan.kind == OperatorKind::Sink {
                    let _ = end_to_end_epoch
                        .get_or_insert_with(new_histogram)
                        .add(&epoch);
                }
                LatencyWindow {
                    epoch: Percentiles::of(&epoch),
                    cumulative: percentiles.clone(),
                }
            });
            let latency = latency.or_else(|| {
                self.cumulative[index]
                    .as_ref()
                    .map(|(_, cumulative)| LatencyWindow {
                        epoch: Percentiles::default(),
                        cumulative: cumulative.clone(),
                    })
            });
            let participants = plan.base..plan.base + plan.instances;
            let states: Vec<&StateMetrics> = participants
                .clone()
                .filter_map(|p| self.state[p].as_ref())
                .collect();
            if !states.is_empty() {
                let mut custom = BTreeMap::new();
                for state in &states {
                    for (name, value) in &state.custom {
                        *custom.entry(name.to_string()).or_insert(0) += value;
                    }
                }
                state_operators.push(StateOperatorProgress {
                    operator_name: plan.name.clone(),
                    num_rows_total: states.iter().map(|s| s.rows_total).sum(),
                    num_rows_updated: op.rows_updated,
                    num_rows_removed: op.rows_removed,
                    memory_used_bytes: states.iter().map(|s| s.memory_used_bytes).sum(),
                    num_rows_dropped_by_watermark: op
                        .counters
                        .get(ROWS_DROPPED_BY_WATERMARK)
                        .copied()
                        .unwrap_or(0),
                    num_state_store_instances: plan.instances as u64,
                    custom_metrics: custom,
                });
            }
            match plan.kind {
                OperatorKind::Source => {
                    let offsets = |map: &BTreeMap<usize, Vec<u8>>| {
                        let parts: Vec<String> = participants
                            .clone()
                            .filter_map(|p| map.get(&p))
                            .filter(|offset| !offset.is_empty())
                            .map(|offset| hex(offset))
                            .collect();
                        (!parts.is_empty()).then(|| parts.join(","))
                    };
                    sources.push(SourceProgress {
                        description: plan.name.clone(),
                        start_offset: offsets(&self.offsets),
                        end_offset: offsets(&facts.offsets),
                        num_input_rows: op.records_out,
                        input_rows_per_second: rate(op.records_out, interval),
                        processed_rows_per_second: rate(op.records_out, processing),
                    });
                }
                OperatorKind::Sink => sinks.push(SinkProgress {
                    description: plan.name.clone(),
                    num_output_rows: op.records_in,
                }),
                _ => {}
            }
            operators.push(OperatorEpochProgress {
                name: plan.name.clone(),
                kind: plan.kind,
                parallelism: plan.instances,
                num_input_rows: op.records_in,
                num_output_rows: op.records_out,
                counters: op.counters,
                latency,
            });
        }
        for (participant, offset) in &facts.offsets {
            self.offsets.insert(*participant, offset.clone());
        }
        let end_to_end = match end_to_end_epoch {
            Some(epoch) => {
                let (cumulative, percentiles) = self
                    .end_to_end
                    .get_or_insert_with(|| (new_histogram(), Percentiles::default()));
                let _ = cumulative.add(&epoch);
                *percentiles = Percentiles::of(cumulative);
                LatencyWindow {
                    epoch: Percentiles::of(&epoch),
                    cumulative: percentiles.clone(),
                }
            }
            None => LatencyWindow {
                epoch: Percentiles::default(),
                cumulative: self
                    .end_to_end
                    .as_ref()
                    .map(|(_, percentiles)| percentiles.clone())
                    .unwrap_or_default(),
            },
        };
        let num_input_rows: u64 = sources.iter().map(|s| s.num_input_rows).sum();
        let mut duration_ms = BTreeMap::new();
        duration_ms.insert(
            "triggerExecution".to_string(),
            facts
                .completed
                .saturating_duration_since(triggered)
                .as_millis() as u64,
        );
        duration_ms.insert("commit".to_string(), facts.commit.as_millis() as u64);
        duration_ms.insert("interval".to_string(), interval.as_millis() as u64);
        StreamingQueryProgress {
            id: self.plan.id.clone(),
            run_id: self.plan.run_id.clone(),
            name: self.plan.name.clone(),
            timestamp: wall_clock(triggered),
            batch_id: facts.epoch,
            execution_mode: facts.mode,
            num_input_rows,
            input_rows_per_second: rate(num_input_rows, interval),
            processed_rows_per_second: rate(num_input_rows, processing),
            duration_ms,
            event_time: self.event_time(event_time),
            state_operators,
            sources,
            sink: SinkProgress {
                description: sinks
                    .iter()
                    .map(|s| s.description.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                num_output_rows: sinks.iter().map(|s| s.num_output_rows).sum(),
            },
            sinks,
            operators,
            latency: LatencyProgress { end_to_end },
        }
    }

    /// Adds one report to its operator's figures for the epoch.
    fn account(
        &mut self,
        participant: usize,
        metrics: EpochMetrics,
        op: &mut OperatorEpoch,
        event_time: &mut Option<EventTimeStats>,
    ) {
        let totals = &mut self.totals[participant];
        op.records_in += metrics.records_in.saturating_sub(totals.records_in);
        op.records_out += metrics.records_out.saturating_sub(totals.records_out);
        totals.records_in = metrics.records_in;
        totals.records_out = metrics.records_out;
        for (name, value) in &metrics.counters {
            let before = totals
                .counters
                .iter()
                .find(|(known, _)| known == name)
                .map_or(0, |(_, v)| *v);
            *op.counters.entry(name.to_string()).or_insert(0) += value.saturating_sub(before);
        }
        totals.counters = metrics.counters;
        if let Some(state) = metrics.state {
            op.rows_updated += state.rows_updated.saturating_sub(totals.rows_updated);
            op.rows_removed += state.rows_removed.saturating_sub(totals.rows_removed);
            totals.rows_updated = state.rows_updated;
            totals.rows_removed = state.rows_removed;
            self.state[participant] = Some(state);
        }
        if let Some(latency) = metrics.latency {
            let _ = op.latency.get_or_insert_with(new_histogram).add(&*latency);
        }
        if let Some(stats) = metrics.event_time {
            if stats.count > 0 {
                event_time
                    .get_or_insert_with(Default::default)
                    .merge(&stats);
            }
        }
        if let Some(watermark) = metrics.watermark {
            self.watermarks[participant] = Some(watermark);
        }
    }

    /// Spark's `eventTime` map: the epoch's event times and the query's watermark (the
    /// smallest of its generators').
    fn event_time(&self, stats: Option<EventTimeStats>) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        if let Some(stats) = stats {
            map.insert("min".to_string(), micros_text(stats.min));
            map.insert("max".to_string(), micros_text(stats.max));
            let avg = (stats.sum / i128::from(stats.count)) as i64;
            map.insert("avg".to_string(), micros_text(avg));
        }
        let watermark = self.watermarks.iter().flatten().min();
        if let Some(watermark) = watermark.filter(|w| **w > i64::MIN) {
            map.insert("watermark".to_string(), micros_text(*watermark));
        }
        map
    }
}

/// `bytes` as lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A time in µs since the Unix epoch as RFC 3339 UTC with milliseconds.
pub(crate) fn micros_text(micros: i64) -> String {
    match jiff::Timestamp::from_microsecond(micros) {
        Ok(time) => format!("{time:.3}"),
        Err(_) => micros.to_string(),
    }
}

/// The wall-clock time of `instant`, as [`micros_text`] writes it.
pub(crate) fn wall_clock(instant: Instant) -> String {
    let ago = Instant::now().saturating_duration_since(instant);
    let at = SystemTime::now()
        .checked_sub(ago)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let micros = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as i64;
    micros_text(micros)
}
