//! Publishing progress: the coordinator hands each completed epoch's facts to the
//! [`Assembler`], keeps the result in the query's [`ProgressHistory`] and sends it to
//! the listener thread. All of it on the coordinator's thread, off the operator threads.

use super::{Coordinator, QueryControl};
use crate::metrics::assemble::{Assembler, EpochFacts};
use crate::metrics::ProgressHistory;
use crate::query::listener::{BusEvent, QueryIdleEvent};
use crossbeam::channel::Sender;
use std::sync::Arc;

/// Where the coordinator's progress goes.
#[derive(Debug)]
pub(crate) struct ProgressOut {
    pub(crate) assembler: Assembler,
    pub(crate) history: ProgressHistory,
    /// The listener thread, if the query has listeners.
    pub(crate) listeners: Option<Sender<BusEvent>>,
    /// The query's id and run id, for idle events.
    pub(crate) ids: (String, String),
}

impl ProgressOut {
    /// Tells the listeners that the coordinator ended.
    pub(crate) fn coordinator_done(&self) {
        if let Some(listeners) = &self.listeners {
            let _ = listeners.send(BusEvent::CoordinatorDone);
        }
    }
}

impl<C: QueryControl> Coordinator<C> {
    /// Assembles and publishes the progress of the completed epoch `facts.epoch`.
    pub(super) fn publish_progress(&mut self, facts: &EpochFacts) {
        let Some(out) = self.progress.as_mut() else {
            return;
        };
        let progress = Arc::new(out.assembler.assemble(facts));
        out.history.push(progress.clone());
        if let Some(listeners) = &out.listeners {
            let _ = listeners.send(BusEvent::Progress(progress));
        }
    }

    /// A micro-batch trigger found no data: tells the listeners.
    pub(super) fn publish_idle(&self) {
        let Some(out) = &self.progress else {
            return;
        };
        if let Some(listeners) = &out.listeners {
            let _ = listeners.send(BusEvent::Idle(QueryIdleEvent {
                id: out.ids.0.clone(),
                run_id: out.ids.1.clone(),
                timestamp: crate::metrics::assemble::wall_clock(std::time::Instant::now()),
            }));
        }
    }
}
