//! What the endpoint serves, read from the query: the one module that knows where the
//! progress comes from. It turns "the latest progress and the recent history" (the
//! per-epoch [`StreamingQueryProgress`] reports, the live counters, the status) into the
//! JSON bodies; [`prometheus`](super::prometheus) renders the same figures as text.

use crate::metrics::StreamingQueryProgress;
use crate::query::progress::{LastReport, ProgressReader, QueryStatus};
use crate::query::{OperatorKind, QueryProgress};
use crate::sync::Arc;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;

/// One operator of the plan, as `/plan` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanNode {
    /// The operator's name (unique in the query).
    pub name: String,
    /// Its role.
    pub kind: OperatorKind,
    /// Instances (threads) it runs on.
    pub parallelism: usize,
    /// Records it received so far.
    pub records_in: u64,
    /// Records it emitted so far.
    pub records_out: u64,
}

/// Records flow from the operator `from` to the operator `to` (names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEdge {
    /// The upstream operator.
    pub from: String,
    /// The downstream operator.
    pub to: String,
}

/// The query plan with its counters: what `/plan` returns and the dashboard draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    /// The query's name.
    pub name: String,
    /// Every operator, in the order they were added.
    pub nodes: Vec<PlanNode>,
    /// The edges between operators.
    pub edges: Vec<PlanEdge>,
}

/// The query's progress as the server reads it: the per-epoch reports the query keeps
/// (`/progress`, `/progress/recent`), its status, fresh reads of the live counters
/// (`/live`) and a bounded history of samples of them (`/live/recent`: the only history
/// a query without epochs has).
#[derive(Debug)]
pub(crate) struct Feed {
    reader: Arc<ProgressReader>,
    state: Mutex<History>,
    capacity: usize,
}

#[derive(Debug)]
struct History {
    /// Rates of the next sample are taken since this one.
    last: LastReport,
    samples: VecDeque<QueryProgress>,
}

impl Feed {
    pub(crate) fn new(reader: Arc<ProgressReader>, capacity: usize) -> Self {
        let last = LastReport::starting_at(reader.started);
        Feed {
            reader,
            state: Mutex::new(History {
                last,
                samples: VecDeque::new(),
            }),
            capacity: capacity.max(1),
        }
    }

    /// Takes a sample into the history (the oldest goes beyond the capacity).
    pub(crate) fn sample(&self) {
        let mut state = self.state.lock().unwrap();
        let progress = self.reader.read(&mut state.last);
        if state.samples.len() == self.capacity {
            state.samples.pop_front();
        }
        state.samples.push_back(progress);
    }

    /// The live counters now, rates since the last sample (the history is unchanged).
    pub(crate) fn live(&self) -> QueryProgress {
        let mut last = self.state.lock().unwrap().last;
        self.reader.read(&mut last)
    }

    /// The samples of the live counters, oldest first.
    pub(crate) fn live_recent(&self) -> Vec<QueryProgress> {
        self.state.lock().unwrap().samples.iter().cloned().collect()
    }

    /// The plan with the counters as they are now.
    pub(crate) fn plan(&self) -> PlanView {
        let progress = self.live();
        PlanView {
            name: progress.name,
            nodes: progress
                .operators
                .into_iter()
                .map(|op| PlanNode {
                    name: op.name,
                    kind: op.kind,
                    parallelism: op.parallelism,
                    records_in: op.records_in,
                    records_out: op.records_out,
                })
                .collect(),
            edges: self
                .reader
                .edges
                .iter()
                .map(|(from, to)| PlanEdge {
                    from: from.clone(),
                    to: to.clone(),
                })
                .collect(),
        }
    }

    /// The newest epoch's report (Spark's `lastProgress`), if any.
    pub(crate) fn last_progress(&self) -> Option<std::sync::Arc<StreamingQueryProgress>> {
        self.reader.history.last()
    }

    /// `/progress` as JSON: the newest epoch's report, or `null` before the first.
    pub(crate) fn last_progress_json(&self) -> String {
        match self.last_progress() {
            Some(progress) => progress.json(),
            None => "null".to_string(),
        }
    }

    /// `/progress/recent` as JSON: the reports the query keeps, oldest first.
    pub(crate) fn recent_progress_json(&self) -> String {
        self.reader.history.json()
    }

    /// `/status` as JSON.
    pub(crate) fn status_json(&self) -> String {
        serde_json::to_string(&self.reader.status()).expect("the status serializes")
    }

    /// `/live` as JSON.
    pub(crate) fn live_json(&self) -> String {
        serde_json::to_string(&self.live()).expect("progress serializes")
    }

    /// `/live/recent` as JSON.
    pub(crate) fn live_recent_json(&self) -> String {
        serde_json::to_string(&self.live_recent()).expect("progress serializes")
    }

    /// `/plan` as JSON.
    pub(crate) fn plan_json(&self) -> String {
        serde_json::to_string(&self.plan()).expect("the plan serializes")
    }

    /// `/metrics`.
    pub(crate) fn prometheus(&self) -> String {
        let status: QueryStatus = self.reader.status();
        super::prometheus::render(&self.live(), self.last_progress().as_deref(), &status)
    }
}
