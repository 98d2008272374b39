//! What the endpoint serves, read from the query: the one module that knows the
//! progress type. It turns "the latest progress and the recent history" into the JSON
//! bodies; [`prometheus`](super::prometheus) renders the same progress as text.

use crate::query::progress::{LastReport, ProgressReader};
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

/// The query's progress as the server reads it: fresh reads for `/metrics` and
/// `/progress`, a bounded history of samples for `/progress/recent`.
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

    /// The progress now, its rates since the last sample (the history is unchanged).
    pub(crate) fn latest(&self) -> QueryProgress {
        let mut last = self.state.lock().unwrap().last;
        self.reader.read(&mut last)
    }

    /// The samples, oldest first.
    pub(crate) fn recent(&self) -> Vec<QueryProgress> {
        self.state.lock().unwrap().samples.iter().cloned().collect()
    }

    /// The plan with the counters as they are now.
    pub(crate) fn plan(&self) -> PlanView {
        let progress = self.latest();
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

    /// `/progress` as JSON.
    pub(crate) fn latest_json(&self) -> String {
        serde_json::to_string(&self.latest()).expect("progress serializes")
    }

    /// `/progress/recent` as JSON.
    pub(crate) fn recent_json(&self) -> String {
        serde_json::to_string(&self.recent()).expect("progress serializes")
    }

    /// `/plan` as JSON.
    pub(crate) fn plan_json(&self) -> String {
        serde_json::to_string(&self.plan()).expect("the plan serializes")
    }

    /// `/metrics`.
    pub(crate) fn prometheus(&self) -> String {
        super::prometheus::render(&self.latest())
    }
}
