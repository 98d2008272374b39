//! Query listeners (Spark's `StreamingQueryListener`): callbacks for a query's start,
//! each epoch's progress, idle triggers and termination, run on a thread of their own.
//!
//! The events of one query reach its listeners in order, on the query's listener
//! thread (`rivulet:listeners`), never on an operator thread, so a slow listener delays
//! only other listeners: the query's data path and its epochs go on. The order is
//! fixed: [`on_query_started`](QueryListener::on_query_started) first, then
//! [`on_query_progress`](QueryListener::on_query_progress) once per completed epoch and
//! [`on_query_idle`](QueryListener::on_query_idle) as they come, and
//! [`on_query_terminated`](QueryListener::on_query_terminated) last, exactly once,
//! also when the query failed (its `exception` then says why). A query whose `start()`
//! fails calls nothing.
//!
//! A listener that panics is reported ([`Query::listener_failures`], and on standard
//! error) and keeps receiving the events that follow; the query is not affected.
//! [`Query::await_termination`] returns only after `on_query_terminated` returned, so do
//! not wait for the query from inside a callback.
//!
//! ```
//! use rivulet::metrics::StreamingQueryProgress;
//! use rivulet::query::{QueryListener, QueryStartedEvent, QueryTerminatedEvent};
//! use rivulet::{Query, Trigger};
//! use std::sync::{mpsc, Arc};
//!
//! struct Forward(mpsc::Sender<String>);
//!
//! impl QueryListener for Forward {
//!     fn on_query_started(&mut self, _: &QueryStartedEvent) {
//!         self.0.send("started".into()).unwrap();
//!     }
//!     fn on_query_progress(&mut self, progress: &Arc<StreamingQueryProgress>) {
//!         self.0.send(format!("batch with {} rows", progress.num_input_rows)).unwrap();
//!     }
//!     fn on_query_terminated(&mut self, event: &QueryTerminatedEvent) {
//!         assert!(event.exception.is_none());
//!         self.0.send("terminated".into()).unwrap();
//!     }
//! }
//!
//! let (tx, rx) = mpsc::channel();
//! let mut query = Query::builder();
//! query
//!     .trigger(Trigger::AvailableNow)
//!     .max_batch_records(2)
//!     .listener(Forward(tx));
//! query.from_iter("numbers", 1..=4u64).to_memory("out");
//! query.start().unwrap().await_termination().unwrap();
//! let events: Vec<String> = rx.try_iter().collect();
//! assert_eq!(events.first().unwrap(), "started");
//! assert_eq!(events.last().unwrap(), "terminated");
//! let rows: u64 = events
//!     .iter()
//!     .filter_map(|e| e.strip_prefix("batch with "))
//!     .map(|e| e.trim_end_matches(" rows").parse::<u64>().unwrap())
//!     .sum();
//! assert_eq!(rows, 4);
//! ```
//!
//! [`Query::listener_failures`]: crate::Query::listener_failures
//! [`Query::await_termination`]: crate::Query::await_termination

use crate::metrics::StreamingQueryProgress;
use crate::runtime::RunControl;
use crossbeam::channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Callbacks for the life of a query (Spark's `StreamingQueryListener`). Every method
/// has a default that does nothing. See the [module docs](self) for when and where they
/// run.
pub trait QueryListener: Send + 'static {
    /// The query started (its threads run).
    fn on_query_started(&mut self, event: &QueryStartedEvent) {
        let _ = event;
    }

    /// An epoch completed; `progress` is what it did (shared: keep a clone to serve it
    /// elsewhere).
    fn on_query_progress(&mut self, progress: &Arc<StreamingQueryProgress>) {
        let _ = progress;
    }

    /// A micro-batch trigger found no new data, so no batch ran (Spark's
    /// `onQueryIdle`). Continuous epochs always report progress instead.
    fn on_query_idle(&mut self, event: &QueryIdleEvent) {
        let _ = event;
    }

    /// The query ended: stopped, drained, aborted or failed. Called last, once.
    fn on_query_terminated(&mut self, event: &QueryTerminatedEvent) {
        let _ = event;
    }
}

/// A query started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryStartedEvent {
    /// The query's id (kept across restarts from one checkpoint directory).
    pub id: String,
    /// This run's id.
    pub run_id: String,
    /// The query's name.
    pub name: String,
    /// When it started, RFC 3339 UTC.
    pub timestamp: String,
}

/// A trigger found no new data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryIdleEvent {
    /// The query's id.
    pub id: String,
    /// This run's id.
    pub run_id: String,
    /// When, RFC 3339 UTC.
    pub timestamp: String,
}

/// A query ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryTerminatedEvent {
    /// The query's id.
    pub id: String,
    /// This run's id.
    pub run_id: String,
    /// Why it failed, if it did.
    pub exception: Option<String>,
}

/// What the listener thread is told.
pub(crate) enum BusEvent {
    Started(QueryStartedEvent),
    Progress(Arc<StreamingQueryProgress>),
    Idle(QueryIdleEvent),
    /// Every operator thread ended.
    ThreadsDone,
    /// The coordinator ended (it sends nothing more).
    CoordinatorDone,
    /// `start()` failed: end without calling anything.
    Abandon,
}

/// The query's side of its listeners: where to send events, and the thread that
/// delivers them.
#[derive(Debug)]
pub(crate) struct ListenerBus {
    pub(crate) sender: Sender<BusEvent>,
    thread: Mutex<Option<JoinHandle<()>>>,
    failures: Arc<Mutex<Vec<String>>>,
}

/// The listener thread's state.
struct Delivery {
    listeners: Vec<Box<dyn QueryListener>>,
    failures: Arc<Mutex<Vec<String>>>,
}

impl Delivery {
    /// Calls `call` on every listener, catching and reporting panics.
    fn each(&mut self, callback: &str, mut call: impl FnMut(&mut dyn QueryListener)) {
        for (index, listener) in self.listeners.iter_mut().enumerate() {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| call(listener.as_mut()))) {
                let message = format!(
                    "listener {index} panicked in {callback}: {}",
                    crate::error::panic_message(payload.as_ref())
                );
                eprintln!("rivulet: {message}");
                self.failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(message);
            }
        }
    }
}

impl ListenerBus {
    /// Starts the listener thread for `listeners`. It ends after `on_query_terminated`,
    /// once every operator thread and (if `coordinator`) the coordinator ended.
    pub(crate) fn start(
        listeners: Vec<Box<dyn QueryListener>>,
        coordinator: bool,
        control: crate::sync::Arc<RunControl>,
        ids: (String, String),
    ) -> std::io::Result<ListenerBus> {
        let (sender, receiver) = crossbeam::channel::unbounded();
        let failures = Arc::new(Mutex::new(Vec::new()));
        let delivery = Delivery {
            listeners,
            failures: failures.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("rivulet:listeners".to_string())
            .spawn(move || deliver(delivery, receiver, coordinator, &control, ids))?;
        Ok(ListenerBus {
            sender,
            thread: Mutex::new(Some(thread)),
            failures,
        })
    }

    /// Waits until the listener thread has delivered everything and ended.
    pub(crate) fn join(&self) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// The panics of listeners so far.
    pub(crate) fn failures(&self) -> Vec<String> {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The listener thread: holds events back until the start is announced, then delivers
/// them in order, and the termination last.
fn deliver(
    mut delivery: Delivery,
    receiver: Receiver<BusEvent>,
    coordinator: bool,
    control: &RunControl,
    (id, run_id): (String, String),
) {
    let mut started = false;
    let mut held = Vec::new();
    let mut threads_done = false;
    let mut coordinator_done = !coordinator;
    while let Ok(event) = receiver.recv() {
        match event {
            BusEvent::Abandon => return,
            BusEvent::Started(event) => {
                started = true;
                delivery.each("on_query_started", |l| l.on_query_started(&event));
                for event in std::mem::take(&mut held) {
                    deliver_one(&mut delivery, event);
                }
            }
            BusEvent::ThreadsDone => threads_done = true,
            BusEvent::CoordinatorDone => coordinator_done = true,
            event if started => deliver_one(&mut delivery, event),
            event => held.push(event),
        }
        if started && threads_done && coordinator_done {
            break;
        }
    }
    if !started {
        return;
    }
    let event = QueryTerminatedEvent {
        id,
        run_id,
        exception: control.failure().map(|error| error.to_string()),
    };
    delivery.each("on_query_terminated", |l| l.on_query_terminated(&event));
}

fn deliver_one(delivery: &mut Delivery, event: BusEvent) {
    match event {
        BusEvent::Progress(progress) => {
            delivery.each("on_query_progress", |l| l.on_query_progress(&progress))
        }
        BusEvent::Idle(event) => delivery.each("on_query_idle", |l| l.on_query_idle(&event)),
        _ => {}
    }
}
