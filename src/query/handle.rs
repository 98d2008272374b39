//! The handle of a running query.

use super::listener::{BusEvent, ListenerBus, QueryStartedEvent};
use super::progress::{LastReport, OperatorKind, ProgressReader, QueryProgress, QueryStatus};
use crate::checkpoint::coordinator::progress::ProgressOut;
use crate::checkpoint::coordinator::{
    AckTracker, CheckpointShared, CheckpointStats, Coordinator, Message,
};
use crate::checkpoint::entries::{self, MetaEntry, PlanShape};
use crate::checkpoint::log::{DirLock, LogConfig, LogWriter};
use crate::checkpoint::recovery;
use crate::checkpoint::CheckpointError;
use crate::error::{Error, Result};
use crate::metrics::assemble::{Assembler, PlanOperator, ProgressPlan};
use crate::metrics::{ProgressHistory, StreamingQueryProgress};
use crate::plan::{CheckpointBuild, Graph};
use crate::runtime::affinity;
use crate::runtime::worker::Worker;
use crate::runtime::{RunControl, Task};
use crate::serve::{MetricsServer, ServeOptions};
use crate::sink::MemoryTable;
use crate::sync::Arc;
use crate::trigger::{OutputMode, Trigger};
use std::any::Any;
use std::fmt;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running query: stop it, wait for it, read its progress.
///
/// Dropping a `Query` that is still running aborts it and waits for its threads, so no
/// operator thread outlives its handle.
pub struct Query {
    name: String,
    control: Arc<RunControl>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    thread_count: usize,
    tables: Vec<(String, Box<dyn Any + Send + Sync>)>,
    /// What progress reports read (shared with metrics servers).
    reader: Arc<ProgressReader>,
    /// Totals and time of the previous progress report, for rates.
    last_report: Mutex<LastReport>,
    checkpoint: Option<CheckpointHandle>,
    /// Metrics servers started by [`Query::serve_metrics`], stopped with the query.
    servers: Mutex<Vec<MetricsServer>>,
    /// The query's id (kept across restarts) and this run's.
    id: String,
    run_id: String,
    /// The progress of recent epochs.
    history: ProgressHistory,
    /// The listener thread, if the query has listeners.
    listeners: Option<ListenerBus>,
}

/// The progress side of a start: the plan as progress shows it, the history, the
/// listener thread.
struct ProgressSetup {
    id: String,
    run_id: String,
    history: ProgressHistory,
    listeners: Option<ListenerBus>,
}

impl ProgressSetup {
    /// Starts the listener thread (if there are listeners) for a query whose id is
    /// `id`; `coordinator`: whether the query has a coordinator.
    fn new(graph: &mut Graph, id: String, coordinator: bool) -> Result<ProgressSetup> {
        let run_id = entries::new_query_id();
        let listeners = std::mem::take(&mut graph.listeners);
        let listeners = if listeners.is_empty() {
            None
        } else {
            Some(
                ListenerBus::start(
                    listeners,
                    coordinator,
                    graph.control.clone(),
                    (id.clone(), run_id.clone()),
                )
                .map_err(|error| Error::Spawn {
                    operator: "listeners".to_string(),
                    source: std::sync::Arc::new(error),
                })?,
            )
        };
        Ok(ProgressSetup {
            id,
            run_id,
            history: ProgressHistory::new(graph.config.recent_progress),
            listeners,
        })
    }

    /// What the coordinator publishes progress with.
    fn out(&self, graph: &Graph) -> ProgressOut {
        let plan = ProgressPlan {
            id: self.id.clone(),
            run_id: self.run_id.clone(),
            name: graph.config.name.clone(),
            operators: graph
                .operators
                .iter()
                .map(|op| PlanOperator {
                    name: op.name.to_string(),
                    kind: op.kind,
                    base: op.participant_base as usize,
                    instances: op.instances.len(),
                })
                .collect(),
        };
        ProgressOut {
            assembler: Assembler::new(plan, Instant::now()),
            history: self.history.clone(),
            listeners: self.listeners.as_ref().map(|bus| bus.sender.clone()),
            ids: (self.id.clone(), self.run_id.clone()),
        }
    }

    /// `start()` failed: the listener thread ends without calling anything.
    fn abandon(&self) {
        if let Some(bus) = &self.listeners {
            let _ = bus.sender.send(BusEvent::Abandon);
            bus.join();
        }
    }
}

/// The query's side of checkpointing: the epoch clock and the coordinator thread.
struct CheckpointHandle {
    shared: Arc<CheckpointShared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<Mutex<CheckpointStats>>,
}

impl CheckpointHandle {
    /// Tells the coordinator that every operator thread has ended and waits for it to
    /// write what remains.
    fn shut_down(&self) {
        // Held while joining, so a second caller returns only after the coordinator ended.
        let mut thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(thread) = thread.take() {
            let _ = self.shared.sender.send(Message::Shutdown);
            let _ = thread.join();
        }
    }
}

/// The shape of the plan being started, as checkpoints record it.
fn plan_shape(graph: &Graph) -> PlanShape {
    PlanShape {
        operators: graph
            .operators
            .iter()
            .map(|op| {
                (
                    op.name.to_string(),
                    format!("{:?}", op.kind),
                    op.instances.len() as u32,
                )
            })
            .collect(),
    }
}

fn checkpoint_error(error: CheckpointError) -> Error {
    Error::Checkpoint(std::sync::Arc::new(error))
}

/// Reads the checkpoint directory (if the query checkpoints): what to restore, the
/// query's identity. Reads only.
fn recover(build: &mut CheckpointBuild) -> Result<()> {
    let Some(config) = &build.config else {
        return Ok(());
    };
    let (recovered, report) = recovery::recover(config.dir()).map_err(checkpoint_error)?;
    if let Some(id) = report.meta.as_ref().and_then(|meta| meta.query_id.clone()) {
        // The query that wrote this directory, started again.
        build.query_id = id;
    }
    build.recovered = recovered;
    build.report = report;
    Ok(())
}

/// Refuses a checkpoint directory written by a different plan. Checked before anything
/// else is reported, since restoring state into a different plan fails in confusing ways.
fn check_plan(build: &CheckpointBuild, graph: &Graph) -> Result<()> {
    let plan = plan_shape(graph);
    let fingerprint = plan.fingerprint();
    let recorded = build.report.meta.as_ref();
    let recorded_fingerprint = build
        .recovered
        .fingerprint
        .or(recorded.map(|meta| meta.fingerprint));
    let Some(config) = &build.config else {
        return Ok(());
    };
    match recorded_fingerprint {
        Some(found) if found != fingerprint => Err(Error::Checkpoint(std::sync::Arc::new(
            CheckpointError::DifferentPlan {
                dir: config.dir().display().to_string(),
                expected: plan.describe(),
                found: recorded
                    .map(|meta| meta.plan.describe())
                    .unwrap_or_else(|| format!("fingerprint {found:016x}")),
            },
        ))),
        _ => Ok(()),
    }
}

/// Opens the log (if checkpointing) and starts the coordinator thread (after
/// [`check_plan`]).
fn start_coordinator(
    build: CheckpointBuild,
    shared: Arc<CheckpointShared>,
    graph: &Graph,
    lock: Option<DirLock>,
    progress: ProgressOut,
) -> Result<CheckpointHandle> {
    let plan = plan_shape(graph);
    let fingerprint = plan.fingerprint();
    let log = match (&build.config, lock) {
        (Some(config), Some(lock)) => Some(
            LogWriter::open_locked(
                lock,
                LogConfig {
                    segment_bytes: config.segment_bytes,
                    durability: config.durability,
                },
            )
            .map_err(|error| checkpoint_error(error.into()))?,
        ),
        _ => None,
    };
    // Segments left by earlier runs hold nothing newer than the newest epoch they
    // mention; they go once enough newer epochs are complete.
    let segment_epochs = log
        .iter()
        .flat_map(|log| {
            let current = log.current_segment();
            log.segments()
                .into_iter()
                .filter(move |segment| *segment != current)
        })
        .map(|segment| (segment, build.report.newest_epoch))
        .collect();
    let participants: Vec<(String, u32)> = graph
        .operators
        .iter()
        .flat_map(|op| (0..op.instances.len() as u32).map(move |i| (op.name.to_string(), i)))
        .collect();
    debug_assert_eq!(participants.len() as u32, graph.participant_count());
    let recovered_epoch = (build.recovered.epoch > 0).then_some(build.recovered.epoch);
    let stats = Arc::new(Mutex::new(CheckpointStats {
        trigger: build.trigger.to_string(),
        persistent: log.is_some(),
        recovered_epoch,
        recovery_damage: build.report.damage().cloned().collect(),
        last_complete_epoch: recovered_epoch,
        ..CheckpointStats::default()
    }));
    let coordinator = Coordinator {
        receiver: build.receiver,
        shared: shared.clone(),
        log,
        tracker: AckTracker::new(participants.len(), build.recovered.epoch),
        retain: build.config.as_ref().map_or(1, |config| config.retain),
        attempt: build.recovered.attempt,
        trigger: build.trigger,
        meta: MetaEntry {
            version: entries::FORMAT_VERSION,
            fingerprint,
            plan,
            query_id: Some(build.query_id),
        },
        participants,
        control: graph.control.clone(),
        stats: stats.clone(),
        segment_epochs,
        open_epochs: Default::default(),
        completed: recovered_epoch.into_iter().collect(),
        last_segment: None,
        sources: graph
            .operators
            .iter()
            .filter(|op| op.kind == OperatorKind::Source)
            .flat_map(|op| (0..op.instances.len()).map(move |i| op.participant_base as usize + i))
            .collect(),
        final_states: Default::default(),
        final_commits: Vec::new(),
        final_epoch_taken: false,
        replay: build.recovered.replay,
        next_trigger: Instant::now(),
        drained: Default::default(),
        idle_batch: None,
        progress: Some(progress),
    };
    let thread = std::thread::Builder::new()
        .name("rivulet:checkpoint".to_string())
        .spawn(move || coordinator.run())
        .map_err(|error| Error::Spawn {
            operator: "checkpoint coordinator".to_string(),
            source: std::sync::Arc::new(error),
        })?;
    Ok(CheckpointHandle {
        shared,
        thread: Mutex::new(Some(thread)),
        stats,
    })
}

/// Steps 2 to 4 of [`start`], under the checkpoint directory's lock: recovery, building
/// the tasks, opening sinks and sources.
fn prepare(graph: &mut Graph) -> Result<()> {
    if let Some(build) = graph.checkpoint.as_mut() {
        recover(build)?;
    }
    if let Some(build) = &graph.checkpoint {
        check_plan(build, graph)?;
    }
    graph.build_tasks().map_err(Error::config)?;
    if let Some(error) = graph.fatal.take() {
        return Err(error);
    }
    if !graph.unreplayable.is_empty() {
        return Err(Error::config(format!(
            "checkpointing needs sources that can replay; these cannot: {}",
            graph.unreplayable.join(", ")
        )));
    }
    open_tasks(graph).map_err(Error::config)
}

/// Opens every source, then every sink: the built-in sources only read at open (an
/// ingest log is scanned and checked; its writer starts with the first record), so a
/// damaged log is refused before a sink changed its directory.
fn open_tasks(graph: &mut Graph) -> std::result::Result<(), String> {
    let mut tasks: Vec<&mut Box<dyn Task>> = graph
        .groups
        .iter_mut()
        .flat_map(|group| group.tasks.iter_mut())
        .map(|task| task.as_mut().expect("every group's tasks were built"))
        .collect();
    for task in &mut tasks {
        task.open_source()?;
    }
    for task in &mut tasks {
        task.open_sinks()?;
    }
    Ok(())
}

/// Spark's output-mode rules, checked at start.
fn check_output_mode(graph: &Graph) -> Option<String> {
    if let Some(message) = check_groups_with_state(graph) {
        return Some(message);
    }
    let running = graph
        .operators
        .iter()
        .find(|op| op.kind == OperatorKind::Aggregate);
    let windowed = graph
        .operators
        .iter()
        .any(|op| op.kind == OperatorKind::WindowAggregate);
    match graph.config.output_mode {
        OutputMode::Complete if running.is_none() && !windowed => Some(
            "complete output mode needs an aggregation (key_by(..).count(), fold, reduce, \
             count_by_value, a window aggregate); use append or update"
                .to_string(),
        ),
        OutputMode::Append => {
            if let Some(op) = running {
                return Some(format!(
                    "append output mode is not supported on the running aggregate `{}`: its \
                     rows never become final (Spark refuses it too); aggregate over \
                     event-time windows with a watermark, or use update or complete",
                    op.name
                ));
            }
            graph.unwatermarked_windows.first().map(|name| {
                format!(
                    "append output mode on the window aggregate `{name}` needs a watermark \
                     to know when a window is final (Spark: \"Append output mode not \
                     supported when there are streaming aggregations without watermark\"); \
                     add with_event_time(..).with_watermark(delay) before it, or use update \
                     or complete"
                )
            })
        }
        _ => None,
    }
}

/// Spark's output-mode rules for `mapGroupsWithState` and `flatMapGroupsWithState`
/// (its `UnsupportedOperationChecker`): the first is allowed in update mode without
/// aggregation only; the second, without aggregation, in the query's output mode, and
/// with an aggregation in append mode only.
fn check_groups_with_state(graph: &Graph) -> Option<String> {
    let query = graph.config.output_mode;
    let aggregation = graph
        .operators
        .iter()
        .find(|op| {
            matches!(
                op.kind,
                OperatorKind::Aggregate | OperatorKind::WindowAggregate
            )
        })
        .map(|op| op.name.to_string());
    let mode = |mode: OutputMode| format!("{mode:?}").to_lowercase();
    for op in &graph.group_state_ops {
        let name = &op.name;
        let problem = match (op.output, &aggregation) {
            (None, Some(agg)) => format!(
                "map_groups_with_state `{name}` is not supported with an aggregation in the \
                 query (`{agg}`), as in Spark"
            ),
            (None, None) if query != OutputMode::Update => format!(
                "map_groups_with_state `{name}` is supported in update output mode only (the \
                 query's is {}), as in Spark",
                mode(query)
            ),
            (Some(OutputMode::Complete), _) => format!(
                "flat_map_groups_with_state `{name}`: its output mode must be append or \
                 update, not complete"
            ),
            (Some(own), None) if own != query => format!(
                "flat_map_groups_with_state `{name}` in {} mode is not supported with {} \
                 output mode (without an aggregation they must be the same, as in Spark)",
                mode(own),
                mode(query)
            ),
            (Some(OutputMode::Update), Some(agg)) => format!(
                "flat_map_groups_with_state `{name}` in update mode is not supported with an \
                 aggregation in the query (`{agg}`); use its append mode, as in Spark"
            ),
            _ => continue,
        };
        return Some(problem);
    }
    None
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("name", &self.name)
            .field("threads", &self.thread_count)
            .field("active", &self.is_active())
            .finish_non_exhaustive()
    }
}

/// Starts a built query, in an order that keeps a failed start from changing anything
/// on disk:
///
/// 1. what the builder recorded is checked (configuration errors);
/// 2. the checkpoint directory is locked (undone if the start fails) and read (recovery:
///    what to restore);
/// 3. the tasks are built: edges connected, operator state and source offsets restored,
///    all in memory;
/// 4. only then is anything opened: the sources (an ingest log is read and checked), then
///    the sinks (the file sink refuses foreign output and retires stale output here),
///    then the checkpoint log;
/// 5. the threads start.
pub(crate) fn start(mut graph: Graph) -> Result<Query> {
    if let Some(error) = graph.fatal.take() {
        return Err(error);
    }
    let config = graph.config.clone();
    if let Some(message) = check_output_mode(&graph) {
        graph.errors.push(message);
    }
    if config.ring_capacity == 0 {
        graph
            .errors
            .push("ring capacity must be at least 1".to_string());
    }
    if config.parallelism == 0 {
        graph
            .errors
            .push("parallelism must be at least 1".to_string());
    }
    if !graph
        .operators
        .iter()
        .any(|op| op.kind == OperatorKind::Sink)
    {
        graph.errors.push("the query has no sink".to_string());
    }
    for group in &graph.groups {
        if !group.terminated {
            graph.errors.push(format!(
                "the stream from `{}` does not end in a sink",
                group.name
            ));
        }
    }
    if !graph.errors.is_empty() {
        return Err(Error::config(graph.errors.join("; ")));
    }

    // The lock first: recovery must not read a log another process still writes, and
    // it is undone (with any directory it created) if the start fails before the log is
    // written.
    let lock = match graph.checkpoint_dir() {
        Some(dir) => Some(DirLock::acquire(&dir).map_err(|error| checkpoint_error(error.into()))?),
        None => None,
    };
    let undo = lock.as_ref().map(DirLock::undo);
    let mut setup = None;
    let prepared = prepare(&mut graph).and_then(|()| {
        // The id recovery found, or the new one.
        let id = graph
            .checkpoint
            .as_ref()
            .map_or_else(entries::new_query_id, |build| build.query_id.clone());
        let coordinator = graph.checkpoint.is_some();
        let progress = setup.insert(ProgressSetup::new(&mut graph, id, coordinator)?);
        let shared = graph.epochs();
        match (graph.checkpoint.take(), shared) {
            (Some(build), Some(shared)) => {
                let out = progress.out(&graph);
                start_coordinator(build, shared, &graph, lock, out).map(Some)
            }
            _ => Ok(None),
        }
    });
    let checkpoint = match prepared {
        Ok(checkpoint) => checkpoint,
        Err(error) => {
            if let Some(setup) = &setup {
                setup.abandon();
            }
            if let Some(undo) = undo {
                undo.run();
            }
            return Err(error);
        }
    };
    let setup = setup.expect("set when the start succeeds");
    let control = graph.control.clone();
    let mut workers = Vec::new();
    for group in &mut graph.groups {
        let parallelism = group.tasks.len();
        for (instance, task) in group.tasks.iter_mut().enumerate() {
            let name = if parallelism == 1 {
                group.name.clone()
            } else {
                format!("{}#{instance}", group.name)
            };
            let signal = group.signals[instance].clone();
            control.add_signal(signal.clone());
            config.clock.attach(signal.clone());
            workers.push(Worker {
                name,
                task: task.take().expect("checked above"),
                signal,
                control: control.clone(),
                policy: config.wait_policy,
                core: None,
            });
        }
    }
    let cores = affinity::place(&config.pinning, workers.len());
    let thread_count = workers.len();
    let mut threads = Vec::with_capacity(thread_count);
    for (mut worker, core) in workers.into_iter().zip(cores) {
        worker.core = core;
        let thread_name = format!("rivulet:{}", worker.name);
        let operator = worker.name.clone();
        control.thread_started();
        match std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || worker.run())
        {
            Ok(handle) => threads.push(handle),
            Err(error) => {
                control.thread_finished();
                control.fail(Error::Spawn {
                    operator,
                    source: std::sync::Arc::new(error),
                });
                // The workers not spawned are dropped here; their edges wake the rest,
                // which see the abort and end.
                for handle in threads {
                    let _ = handle.join();
                }
                if let Some(checkpoint) = &checkpoint {
                    checkpoint.shut_down();
                }
                setup.abandon();
                return Err(control.failure().expect("just recorded"));
            }
        }
    }
    let started = Instant::now();
    let edges = graph.named_edges();
    let reader = Arc::new(ProgressReader {
        name: config.name.clone(),
        control: control.clone(),
        threads: thread_count,
        operators: std::mem::take(&mut graph.operators),
        started,
        checkpoint: checkpoint
            .as_ref()
            .map(|checkpoint| checkpoint.stats.clone()),
        edges,
        shared: checkpoint
            .as_ref()
            .map(|checkpoint| checkpoint.shared.clone()),
        history: setup.history.clone(),
    });
    if let Some(bus) = &setup.listeners {
        let _ = bus.sender.send(BusEvent::Started(QueryStartedEvent {
            id: setup.id.clone(),
            run_id: setup.run_id.clone(),
            name: config.name.clone(),
            timestamp: crate::metrics::assemble::wall_clock(started),
        }));
    }
    // Once every operator thread ended, the coordinator writes what is left and ends,
    // and the listeners hear of it, even if nobody waits for the query.
    let coordinator = checkpoint
        .as_ref()
        .map(|checkpoint| checkpoint.shared.sender.clone());
    let bus = setup.listeners.as_ref().map(|bus| bus.sender.clone());
    control.when_threads_finish(Box::new(move || {
        if let Some(coordinator) = coordinator {
            let _ = coordinator.send(Message::Shutdown);
        }
        if let Some(bus) = bus {
            let _ = bus.send(BusEvent::ThreadsDone);
        }
    }));
    Ok(Query {
        name: config.name,
        control,
        threads: Mutex::new(threads),
        thread_count,
        tables: std::mem::take(&mut graph.tables),
        reader,
        last_report: Mutex::new(LastReport::starting_at(started)),
        checkpoint,
        servers: Mutex::new(Vec::new()),
        id: setup.id,
        run_id: setup.run_id,
        history: setup.history,
        listeners: setup.listeners,
    })
}

impl Query {
    /// Starts describing a new query.
    pub fn builder() -> super::QueryBuilder {
        super::QueryBuilder::new()
    }

    /// The query's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `true` while any operator thread is running.
    pub fn is_active(&self) -> bool {
        self.control.running_threads() > 0
    }

    /// Stops gracefully: sources end their streams (a push source first hands over what
    /// it accepted), every operator drains its inputs, sinks see end-of-stream, threads
    /// end. Returns when all threads have ended.
    ///
    /// # Errors
    ///
    /// The query's failure, if it failed before or while stopping.
    pub fn stop(&self) -> Result<()> {
        // With checkpoints, every participant reports its final state as its stream ends,
        // and the coordinator records one last epoch: a stopped query restarts without
        // replaying anything.
        self.control.request_stop();
        let result = self.await_termination();
        self.stop_servers();
        result
    }

    /// Stops at once: threads end at their next check; records in flight are dropped.
    ///
    /// # Errors
    ///
    /// The query's failure, if it had failed before the abort.
    pub fn abort(&self) -> Result<()> {
        self.control.abort();
        let result = self.await_termination();
        self.stop_servers();
        result
    }

    /// Waits until every thread has ended (the sources ended, `stop()`, or a failure).
    ///
    /// # Errors
    ///
    /// The first failure: a panic in user code ([`Error::OperatorPanicked`], with the
    /// operator's name), a sink error ([`Error::Sink`]), …
    pub fn await_termination(&self) -> Result<()> {
        // Join while holding the lock: a concurrent caller (another thread's `stop()`, say)
        // waits here until every thread has ended instead of finding the list empty.
        let mut threads = self
            .threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for thread in threads.drain(..) {
            // Workers catch panics themselves; a join error would mean a panic in the
            // runtime, which the failure slot already holds or which we report here.
            if let Err(payload) = thread.join() {
                self.control
                    .fail(Error::from_panic("runtime", payload.as_ref()));
            }
        }
        if let Some(checkpoint) = &self.checkpoint {
            checkpoint.shut_down();
        }
        if let Some(listeners) = &self.listeners {
            listeners.join();
        }
        drop(threads);
        match self.control.failure() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Like [`await_termination`](Self::await_termination), giving up after `timeout`.
    /// Returns `None` if the query is still running then.
    pub fn await_termination_timeout(&self, timeout: Duration) -> Option<Result<()>> {
        let deadline = Instant::now() + timeout;
        while self.is_active() {
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Some(self.await_termination())
    }

    /// Switches the running query to `trigger` at the next epoch boundary: the first
    /// epoch whose opening marker the sources have not sent yet runs under it. In
    /// continuous mode that is the epoch after the one in progress. A micro-batch sends
    /// its closing marker when it is released (its offsets logged), which fixes how the
    /// epoch after it runs: a switch asked for before that applies to the next epoch, one
    /// asked for later to the epoch after the next. A shorter interval also shortens the
    /// wait in progress. No record is lost
    /// or duplicated by the switch; after a micro-batch, sources hold continuous records
    /// back until the batch is complete, so the batch stays exactly-once. Progress
    /// reports show the mode each epoch ran in
    /// ([`EpochReport::mode`](crate::checkpoint::EpochReport::mode)).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the query was started without epochs (give it a trigger with
    /// [`QueryBuilder::trigger`](crate::QueryBuilder::trigger) or checkpointing), or
    /// `trigger` is invalid.
    pub fn set_trigger(&self, trigger: Trigger) -> Result<()> {
        let Some(checkpoint) = &self.checkpoint else {
            return Err(Error::config(
                "this query has no epochs, so it cannot switch triggers; start it with \
                 QueryBuilder::trigger (or checkpointing)",
            ));
        };
        trigger.validate().map_err(Error::config)?;
        *checkpoint.shared.requested.lock().unwrap() = trigger;
        let _ = checkpoint.shared.sender.send(Message::TriggerChanged);
        Ok(())
    }

    /// The failure that ended the query, if any (without waiting).
    pub fn failure(&self) -> Option<Error> {
        self.control.failure()
    }

    /// The memory table that [`Stream::to_memory`](crate::Stream::to_memory) created
    /// under `name`, if its rows are of type `T`.
    pub fn memory_table<T: 'static>(&self, name: &str) -> Option<MemoryTable<T>> {
        self.tables
            .iter()
            .filter(|(table, _)| table == name)
            .find_map(|(_, table)| table.downcast_ref::<MemoryTable<T>>().cloned())
    }

    /// What the query has done so far. Rates are over the time since the previous call
    /// (or the start).
    pub fn progress(&self) -> QueryProgress {
        self.reader.read(&mut self.last_report.lock().unwrap())
    }

    /// Serves the query's progress over HTTP on `addr` (`"127.0.0.1:9184"`; port `0`
    /// picks a free one): Prometheus text at `/metrics`, the per-epoch progress JSON at
    /// `/progress` and `/progress/recent` (as [`last_progress`](Self::last_progress) and
    /// [`recent_progress`](Self::recent_progress)), the status, the live counters, the
    /// plan, and a live dashboard at `/`. See [`serve`](crate::serve) for every page.
    ///
    /// The server runs on a thread of its own, never on an operator thread; it reads
    /// what [`progress`](Self::progress), [`status`](Self::status) and
    /// [`recent_progress`](Self::recent_progress) read. It keeps serving after the
    /// query's streams end (the final figures stay readable) and stops with
    /// [`stop`](Self::stop), [`abort`](Self::abort), when the `Query` is dropped, or
    /// with [`MetricsServer::stop`].
    ///
    /// ```
    /// use rivulet::Query;
    ///
    /// let mut builder = Query::builder();
    /// builder.from_iter("numbers", 0..10u64).to_memory("out");
    /// let query = builder.start().unwrap();
    /// let server = query.serve_metrics("127.0.0.1:0").unwrap();
    /// println!("dashboard: {}", server.url());
    /// query.stop().unwrap(); // also stops the server
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Serve`] if `addr` is not an address or cannot be listened on.
    pub fn serve_metrics(&self, addr: &str) -> Result<MetricsServer> {
        self.serve_metrics_with(addr, ServeOptions::default())
    }

    /// [`serve_metrics`](Self::serve_metrics) with options (how often the history the
    /// dashboard charts is sampled, how much of it is kept).
    ///
    /// # Errors
    ///
    /// [`Error::Serve`] if `addr` is not an address or cannot be listened on.
    pub fn serve_metrics_with(&self, addr: &str, options: ServeOptions) -> Result<MetricsServer> {
        let server = MetricsServer::start(addr, self.reader.clone(), options)?;
        self.servers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(server.clone());
        Ok(server)
    }

    /// Stops every metrics server of the query and waits for their threads.
    fn stop_servers(&self) {
        let servers = std::mem::take(
            &mut *self
                .servers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for server in servers {
            server.stop();
        }
    }
}

impl Query {
    /// The query's id: the same across restarts from one checkpoint directory (Spark's
    /// `id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// This run's id: new at every start (Spark's `runId`).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The progress of the newest completed epoch (Spark's `lastProgress`); `None` before
    /// the first, and always for a query without epochs (no trigger, no checkpointing).
    pub fn last_progress(&self) -> Option<std::sync::Arc<StreamingQueryProgress>> {
        self.history.last()
    }

    /// The progress of the recent epochs, oldest first (Spark's `recentProgress`): at
    /// most [`QueryBuilder::recent_progress_capacity`](crate::QueryBuilder::recent_progress_capacity).
    pub fn recent_progress(&self) -> Vec<std::sync::Arc<StreamingQueryProgress>> {
        self.history.recent()
    }

    /// A shared handle on this query's recent progress, to read from another thread (a
    /// metrics endpoint) without the `Query`; it keeps the reports after the query ends.
    pub fn progress_history(&self) -> ProgressHistory {
        self.history.clone()
    }

    /// What the query is doing now (Spark's `status`).
    pub fn status(&self) -> QueryStatus {
        self.reader.status()
    }

    /// What the query's listeners' panics said, if any panicked (each is also printed
    /// to standard error). A panicking listener does not stop the query.
    pub fn listener_failures(&self) -> Vec<String> {
        self.listeners
            .as_ref()
            .map(ListenerBus::failures)
            .unwrap_or_default()
    }
}

impl Drop for Query {
    fn drop(&mut self) {
        if self.is_active() {
            self.control.abort();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap());
        for thread in threads {
            let _ = thread.join();
        }
        if let Some(checkpoint) = &self.checkpoint {
            checkpoint.shut_down();
        }
        self.stop_servers();
        if let Some(listeners) = &self.listeners {
            listeners.join();
        }
    }
}
