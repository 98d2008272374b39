//! The query graph as it is being built: thread groups, edges, operators and their
//! counters. [`QueryBuilder`](crate::QueryBuilder) and [`Stream`](crate::Stream) fill it;
//! `start()` turns it into threads.
//!
//! A *group* is one operator chain run by `parallelism` threads (instances). A *port* is
//! the set of input edges of a group: each instance owns the receiving ends addressed to
//! it. Edges are created when `start()` builds the chains that send into a port, so every
//! edge knows the wake signals of both of its threads from the start.
//!
//! A port has two sides: the graph keeps what build ordering needs (its kind and the
//! groups that send into it), and a typed [`Port<T>`] handle holds the receiving ends.
//! The handle is held by whoever needs the record type: the build steps of the chains
//! that send into the port (which [`connect`](Graph::connect) edges to it) and the
//! `InputChain` that reads it. Only memory tables (`Graph::tables`) stay type-erased:
//! `Query::memory_table` looks them up by name with a type the caller chooses.

use crate::checkpoint::coordinator::{CheckpointShared, EpochClock, Message, Participant};
use crate::checkpoint::entries::new_query_id;
use crate::checkpoint::recovery::{DirectoryReport, Recovered};
use crate::checkpoint::{CheckpointConfig, CheckpointError, CheckpointMode};
use crate::edge::{self, EdgeReceiver, EdgeSender, PeerSet, RtrbRing, WaitPolicy, WakeSignal};
use crate::metrics::OperatorMetrics;
use crate::runtime::{Pinning, RunControl, Task};
use crate::sync::{Arc, Mutex};
use crate::time::Clock;
use crate::trigger::{EmitMode, ExecutionMode, OutputMode, Trigger};
use serde::Serialize;
use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

/// Index of a thread group.
pub(crate) type GroupId = usize;
/// Index of a port (a group's input edges).
pub(crate) type PortId = usize;
/// Index of an operator in the registry.
pub(crate) type OpId = usize;

/// Settings of a query, chosen on the builder.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) name: String,
    pub(crate) ring_capacity: usize,
    pub(crate) wait_policy: WaitPolicy,
    pub(crate) pinning: Pinning,
    pub(crate) parallelism: usize,
    pub(crate) output_mode: OutputMode,
    pub(crate) max_batch_records: usize,
    pub(crate) clock: Clock,
    /// One record in this many is followed by a latency marker (0: none).
    pub(crate) latency_sample_every: u32,
    /// Progress reports the query keeps.
    pub(crate) recent_progress: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "query".to_string(),
            ring_capacity: 1024,
            wait_policy: WaitPolicy::default(),
            pinning: Pinning::Auto,
            parallelism: 1,
            output_mode: OutputMode::Update,
            max_batch_records: 1 << 20,
            clock: Clock::system(),
            latency_sample_every: crate::metrics::latency::DEFAULT_SAMPLE_EVERY,
            recent_progress: crate::metrics::history::DEFAULT_RECENT_PROGRESS,
        }
    }
}

/// One operator chain and the threads that will run it.
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) signals: Vec<Arc<WakeSignal>>,
    /// Each instance's peers (the other ends of its edges).
    pub(crate) peers: Vec<Arc<PeerSet>>,
    pub(crate) tasks: Vec<Option<Box<dyn Task>>>,
    /// Whether the builder ended this group's chain (in a sink or a thread boundary).
    pub(crate) terminated: bool,
}

/// Building one group's tasks, recorded by the builder and run by `start()`.
pub(crate) struct Deferred {
    /// The group whose tasks it builds.
    pub(crate) group: GroupId,
    /// The port the group's chain reads, if it starts at input edges: every group that
    /// sends into it must be built first (building a sender creates the edge).
    pub(crate) reads: Option<PortId>,
    pub(crate) build: Box<dyn FnOnce(&mut Graph)>,
}

/// What a port's edges are for; a union port may gain inputs after it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortKind {
    Forward,
    Union,
    Exchange,
}

/// What the graph knows of a port: enough to order the build and to extend a union.
struct PortInfo {
    kind: PortKind,
    /// The groups that send into this port.
    producers: Vec<GroupId>,
}

/// The receiving ends of a port's edges, typed by their records: one list per instance
/// of the group behind the port. Created by [`Graph::add_port`]; clones share the lists.
pub(crate) struct Port<T> {
    id: PortId,
    group: GroupId,
    receivers: Rc<RefCell<Vec<Vec<EdgeReceiver<T>>>>>,
}

impl<T> Clone for Port<T> {
    fn clone(&self) -> Self {
        Port {
            id: self.id,
            group: self.group,
            receivers: self.receivers.clone(),
        }
    }
}

impl<T> fmt::Debug for Port<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.id)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl<T> Port<T> {
    /// The port's index in the graph (for its kind and producers).
    pub(crate) fn id(&self) -> PortId {
        self.id
    }

    /// The number of instances of the group behind the port.
    pub(crate) fn instances(&self) -> usize {
        self.receivers.borrow().len()
    }

    /// Takes the receiving ends addressed to `instance` of the port's group.
    pub(crate) fn take_receivers(&self, instance: usize) -> Vec<EdgeReceiver<T>> {
        std::mem::take(&mut self.receivers.borrow_mut()[instance])
    }
}

/// The role of an operator in the query.
///
/// Defined with the graph that records it, and shown by progress reports
/// ([`OperatorProgress::kind`](crate::query::OperatorProgress::kind)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum OperatorKind {
    /// Produces records.
    Source,
    /// A stateless transformation (map, filter, …) or a custom operator.
    Transform,
    /// A keyed aggregate holding state per key.
    Aggregate,
    /// An aggregate over event-time windows or sessions: its rows become final once the
    /// watermark passes their end, so append mode allows it on a watermarked stream.
    WindowAggregate,
    /// Joins two inputs (a stream–stream or per-batch join), holding state per key.
    Join,
    /// `map_groups_with_state` / `flat_map_groups_with_state`: arbitrary state per key,
    /// under Spark's output-mode rules for them.
    GroupsWithState,
    /// Consumes records.
    Sink,
}

/// A `map_groups_with_state` or `flat_map_groups_with_state` operator, as `start()`
/// checks it against the output mode.
#[derive(Debug)]
pub(crate) struct GroupStateUse {
    /// The operator's name.
    pub(crate) name: String,
    /// `None` for `map_groups_with_state`; the operator's own output mode for
    /// `flat_map_groups_with_state`.
    pub(crate) output: Option<OutputMode>,
}

/// An operator as progress reports show it.
#[derive(Debug, Clone)]
pub(crate) struct OperatorInfo {
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) kind: OperatorKind,
    pub(crate) instances: Vec<Arc<OperatorMetrics>>,
    /// Checkpoint participant index of instance 0; instance `i` is `base + i`.
    pub(crate) participant_base: u32,
}

/// Epochs (a trigger, checkpointing, or both) as configured on the builder, before start.
pub(crate) struct CheckpointBuild {
    /// The checkpoint directory and settings; `None`: epochs without a log.
    pub(crate) config: Option<CheckpointConfig>,
    /// The trigger the query starts with.
    pub(crate) trigger: Trigger,
    /// Whether `trigger` was chosen explicitly (else it follows the checkpoint interval).
    pub(crate) trigger_set: bool,
    /// Created when the first participant is attached; settings are fixed from then on.
    pub(crate) shared: Option<Arc<CheckpointShared>>,
    pub(crate) sender: crossbeam::channel::Sender<Message>,
    pub(crate) receiver: crossbeam::channel::Receiver<Message>,
    pub(crate) recovered: Recovered,
    pub(crate) report: DirectoryReport,
    /// The query's identity: the one the checkpoint log recorded, else a new one (see
    /// [`MetaEntry::query_id`](crate::checkpoint::entries::MetaEntry::query_id)).
    pub(crate) query_id: String,
}

impl CheckpointBuild {
    /// Epochs with `trigger` and no log yet.
    pub(crate) fn new(trigger: Trigger) -> Self {
        let (sender, receiver) = crossbeam::channel::unbounded();
        CheckpointBuild {
            config: None,
            trigger,
            trigger_set: false,
            shared: None,
            sender,
            receiver,
            recovered: Recovered {
                attempt: 1,
                ..Recovered::default()
            },
            report: DirectoryReport::default(),
            query_id: new_query_id(),
        }
    }

    /// How the first epoch of this start runs (a replayed epoch runs as it did).
    pub(crate) fn first_mode(&self) -> ExecutionMode {
        self.recovered
            .replay
            .as_ref()
            .map(|replay| replay.mode)
            .unwrap_or_else(|| self.trigger.mode())
    }
}

/// The graph under construction.
pub(crate) struct Graph {
    pub(crate) config: Config,
    pub(crate) control: Arc<RunControl>,
    pub(crate) groups: Vec<Group>,
    ports: Vec<PortInfo>,
    pub(crate) operators: Vec<OperatorInfo>,
    /// Problems found while building, reported by `start()`.
    pub(crate) errors: Vec<String>,
    /// Window aggregates whose input carries no watermark (append mode refuses them).
    pub(crate) unwatermarked_windows: Vec<String>,
    /// The groups-with-state operators, for the output-mode rules checked at start.
    pub(crate) group_state_ops: Vec<GroupStateUse>,
    /// Memory tables by name, for `Query::memory_table`. Erased: the record type is the
    /// one the caller of `memory_table` names, checked by a downcast there.
    pub(crate) tables: Vec<(String, Box<dyn Any + Send + Sync>)>,
    /// Temporary views for SQL (`DataFrame::create_or_replace_temp_view`), by name
    /// (ignoring case). Erased: each holds a `frame::DataFrame`, which holds a stream of
    /// this graph, so `start()` empties the registry before anything else.
    pub(crate) views: Vec<(String, Box<dyn Any>)>,
    /// Static views for SQL (`StaticFrame::create_or_replace_temp_view`), by name
    /// (ignoring case); read by any number of statements.
    #[cfg(feature = "sql")]
    pub(crate) static_views: Vec<(String, crate::frame::StaticFrame)>,
    /// Checkpointing, if configured.
    pub(crate) checkpoint: Option<CheckpointBuild>,
    /// An error that must stop `start()` as it is (not as a configuration message).
    pub(crate) fatal: Option<crate::error::Error>,
    /// Sources that cannot replay (refused when checkpointing).
    pub(crate) unreplayable: Vec<String>,
    /// What `start()` runs to build the tasks, in the order the chains were ended.
    pub(crate) deferred: Vec<Deferred>,
    /// Where records flow between operators: `(upstream, downstream)`, for the plan
    /// that progress endpoints draw.
    pub(crate) edges: Vec<(OpId, OpId)>,
    participants: u32,
    /// The query's listeners, started with it.
    pub(crate) listeners: Vec<Box<dyn crate::query::QueryListener>>,
}

impl Graph {
    pub(crate) fn new() -> Self {
        Graph {
            config: Config::default(),
            control: Arc::new(RunControl::new()),
            groups: Vec::new(),
            ports: Vec::new(),
            operators: Vec::new(),
            errors: Vec::new(),
            unwatermarked_windows: Vec::new(),
            group_state_ops: Vec::new(),
            tables: Vec::new(),
            views: Vec::new(),
            #[cfg(feature = "sql")]
            static_views: Vec::new(),
            checkpoint: None,
            fatal: None,
            unreplayable: Vec::new(),
            deferred: Vec::new(),
            edges: Vec::new(),
            participants: 0,
            listeners: Vec::new(),
        }
    }

    /// Total checkpoint participants (operator instances).
    pub(crate) fn participant_count(&self) -> u32 {
        self.participants
    }

    /// The epoch handle of one operator instance, if the query has epochs.
    pub(crate) fn participant(&mut self, op: OpId, instance: usize) -> Option<Participant> {
        let shared = self.epochs()?;
        Some(Participant {
            shared,
            index: self.operators[op].participant_base + instance as u32,
        })
    }

    /// What operators and sinks share about epochs, if the query has any; created at
    /// the first call, which fixes the trigger and output mode.
    pub(crate) fn epochs(&mut self) -> Option<Arc<CheckpointShared>> {
        let output_mode = self.config.output_mode;
        let build = self.checkpoint.as_mut()?;
        if build.shared.is_none() {
            let clock = EpochClock::with_mode(build.recovered.epoch, build.first_mode());
            // A replayed epoch runs as it did; the epochs after it under the trigger asked
            // for now. Both are fixed before any thread starts: a source may replay and
            // pass the replayed epoch's marker before the coordinator runs at all.
            clock.set_mode_from(build.recovered.epoch + 2, build.trigger.mode());
            build.shared = Some(Arc::new(CheckpointShared {
                sender: build.sender.clone(),
                clock,
                persistent: build.config.is_some(),
                requested: Mutex::new(build.trigger),
                output_mode,
                processing_clock: self.config.clock.clone(),
                timer_deadlines: (0..self.participants)
                    .map(|_| std::sync::atomic::AtomicI64::new(i64::MAX))
                    .collect(),
                watermarks: Default::default(),
            }));
        }
        build.shared.clone()
    }

    /// The emit mode of the first epoch of this start.
    pub(crate) fn first_emit_mode(&self) -> EmitMode {
        EmitMode {
            execution: self
                .checkpoint
                .as_ref()
                .map(CheckpointBuild::first_mode)
                .unwrap_or_default(),
            output: self.config.output_mode,
        }
    }

    /// The epoch the first records of this start belong to.
    pub(crate) fn first_epoch(&self) -> u64 {
        self.checkpoint
            .as_ref()
            .map_or(0, |build| build.recovered.epoch)
            + 1
    }

    /// Whether the query writes checkpoints.
    pub(crate) fn persistent(&self) -> bool {
        self.checkpoint
            .as_ref()
            .is_some_and(|build| build.config.is_some())
    }

    /// The checkpoint build, if the query writes checkpoints.
    fn persistent_build(&self) -> Option<&CheckpointBuild> {
        self.checkpoint
            .as_ref()
            .filter(|build| build.config.is_some())
    }

    /// The epoch this start replays with the records the offset log holds for it (only
    /// in checkpointed queries).
    pub(crate) fn replayed_epoch(&self) -> Option<u64> {
        let build = self.persistent_build()?;
        build.recovered.replay.as_ref().map(|replay| replay.epoch)
    }

    /// The identity of a checkpointed query (`None` without checkpoints).
    pub(crate) fn query_id(&self) -> Option<String> {
        self.persistent_build().map(|build| build.query_id.clone())
    }

    /// The recovered snapshot of one operator instance, if any, and whether the log
    /// predates stage snapshots (format 3 and older: operator bytes without timers).
    pub(crate) fn restored_state(&self, op: OpId, instance: usize) -> Option<(&[u8], bool)> {
        let recovered = &self.checkpoint.as_ref()?.recovered;
        let key = (self.operators[op].name.to_string(), instance as u32);
        let legacy = recovered.legacy_states.contains(&key);
        recovered
            .states
            .get(&key)
            .map(|state| (state.as_slice(), legacy))
    }

    /// The recovered offset of one source instance, if any.
    pub(crate) fn restored_offset(&self, op: OpId, instance: usize) -> Option<&[u8]> {
        self.restored_state(op, instance).map(|(offset, _)| offset)
    }

    /// The checkpoint directory, if the query checkpoints.
    pub(crate) fn checkpoint_dir(&self) -> Option<std::path::PathBuf> {
        self.checkpoint_config()
            .map(|config| config.dir().to_path_buf())
    }

    /// The checkpoint settings, if the query checkpoints.
    pub(crate) fn checkpoint_config(&self) -> Option<CheckpointConfig> {
        self.checkpoint.as_ref()?.config.clone()
    }

    /// Records a source instance replays in the epoch after the restored one, if the
    /// offset log says.
    pub(crate) fn replay_records(&self, op: OpId, instance: usize) -> Option<u64> {
        self.replayed_source(op, instance)
            .map(|source| source.records)
    }

    /// The offset a source instance had after the records it replays (see
    /// [`replay_records`](Self::replay_records)), as its `checkpoint` returned it when
    /// the epoch was planned.
    pub(crate) fn replay_end_offset(&self, op: OpId, instance: usize) -> Option<&[u8]> {
        self.replayed_source(op, instance)
            .map(|source| source.end_offset.as_slice())
    }

    fn replayed_source(
        &self,
        op: OpId,
        instance: usize,
    ) -> Option<&crate::checkpoint::entries::SourceOffsets> {
        let replay = self.checkpoint.as_ref()?.recovered.replay.as_ref()?;
        let name = &*self.operators[op].name;
        replay
            .sources
            .iter()
            .find(|source| source.operator == name && source.instance == instance as u32)
    }

    /// `true` if multi-input operators align markers.
    pub(crate) fn aligned(&self) -> bool {
        self.checkpoint.as_ref().is_some_and(|checkpoint| {
            checkpoint
                .config
                .as_ref()
                .is_some_and(|config| config.mode == CheckpointMode::Aligned)
        })
    }

    /// Records that restoring `op` failed.
    pub(crate) fn restore_failed(&mut self, op: OpId, message: String) {
        if self.fatal.is_none() {
            self.fatal = Some(crate::error::Error::Checkpoint(std::sync::Arc::new(
                CheckpointError::Operator {
                    operator: self.operators[op].name.to_string(),
                    action: "restore",
                    message,
                },
            )));
        }
    }

    /// A new group of `parallelism` threads.
    pub(crate) fn add_group(&mut self, name: &str, parallelism: usize) -> GroupId {
        let signals = (0..parallelism)
            .map(|_| Arc::new(WakeSignal::new()))
            .collect();
        self.groups.push(Group {
            name: name.to_string(),
            signals,
            peers: (0..parallelism).map(|_| Arc::new(PeerSet::new())).collect(),
            tasks: (0..parallelism).map(|_| None).collect(),
            terminated: false,
        });
        self.groups.len() - 1
    }

    /// Registers an operator with one set of counters per instance.
    pub(crate) fn add_operator(
        &mut self,
        name: &str,
        kind: OperatorKind,
        parallelism: usize,
    ) -> OpId {
        let participant_base = self.participants;
        self.participants += parallelism as u32;
        self.operators.push(OperatorInfo {
            name: std::sync::Arc::from(name),
            kind,
            instances: (0..parallelism)
                .map(|_| Arc::new(OperatorMetrics::default()))
                .collect(),
            participant_base,
        });
        self.operators.len() - 1
    }

    /// Records that the operators `from` send records to `to`.
    pub(crate) fn add_edges(&mut self, from: &[OpId], to: OpId) {
        for &from in from {
            if !self.edges.contains(&(from, to)) {
                self.edges.push((from, to));
            }
        }
    }

    /// The edges between operators by name, `(upstream, downstream)`.
    pub(crate) fn named_edges(&self) -> Vec<(String, String)> {
        self.edges
            .iter()
            .map(|&(from, to)| {
                (
                    self.operators[from].name.to_string(),
                    self.operators[to].name.to_string(),
                )
            })
            .collect()
    }

    /// A name not used by another operator yet: `base`, else `base#2`, `base#3`, …
    pub(crate) fn unique_name(&self, base: &str) -> String {
        let taken = |name: &str| self.operators.iter().any(|op| &*op.name == name);
        if !taken(base) {
            return base.to_string();
        }
        (2..)
            .map(|n| format!("{base}#{n}"))
            .find(|name| !taken(name))
            .expect("an unbounded range always has a free name")
    }

    /// Renames an operator (keeps names unique).
    pub(crate) fn rename_operator(&mut self, op: OpId, name: &str) {
        if &*self.operators[op].name == name {
            return;
        }
        let name = self.unique_name(name);
        self.operators[op].name = std::sync::Arc::from(name.as_str());
    }

    /// Counters and name of one instance of `op`.
    pub(crate) fn operator_instance(
        &self,
        op: OpId,
        instance: usize,
    ) -> (Arc<OperatorMetrics>, std::sync::Arc<str>) {
        let info = &self.operators[op];
        (info.instances[instance].clone(), info.name.clone())
    }

    /// A port receiving into `group`.
    pub(crate) fn add_port<T: Send + 'static>(
        &mut self,
        group: GroupId,
        kind: PortKind,
    ) -> Port<T> {
        let instances = self.groups[group].signals.len();
        self.ports.push(PortInfo {
            kind,
            producers: Vec::new(),
        });
        Port {
            id: self.ports.len() - 1,
            group,
            receivers: Rc::new(RefCell::new((0..instances).map(|_| Vec::new()).collect())),
        }
    }

    pub(crate) fn port_kind(&self, port: PortId) -> PortKind {
        self.ports[port].kind
    }

    /// Records that `group` sends into `port` (its edges are created when `start()`
    /// builds it).
    pub(crate) fn add_producer(&mut self, port: PortId, group: GroupId) {
        self.ports[port].producers.push(group);
    }

    /// Builds every group's tasks, each after the groups that send into it.
    pub(crate) fn build_tasks(&mut self) -> Result<(), String> {
        let mut pending = std::mem::take(&mut self.deferred);
        let mut built = vec![false; self.groups.len()];
        while !pending.is_empty() {
            let ready = pending.iter().position(|deferred| {
                deferred.reads.is_none_or(|port| {
                    self.ports[port]
                        .producers
                        .iter()
                        .all(|producer| built[*producer])
                })
            });
            let Some(ready) = ready else {
                return Err("the query's streams form a cycle".to_string());
            };
            let deferred = pending.remove(ready);
            // User code runs here (operators' `Clone`, `set_emit_mode`, key functions'
            // clones): a panic is reported by `start()`, naming the thread group.
            let group = self.groups[deferred.group].name.clone();
            let build = deferred.build;
            if let Err(payload) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(self)))
            {
                return Err(format!(
                    "building `{group}` panicked: {}",
                    crate::error::panic_message(payload.as_ref())
                ));
            }
            built[deferred.group] = true;
        }
        Ok(())
    }

    /// A new edge from instance `from_instance` of `from` to instance `to_instance` of
    /// the group behind `port`; the receiving end waits in the port.
    pub(crate) fn connect<T: Send + 'static>(
        &mut self,
        from: GroupId,
        from_instance: usize,
        port: &Port<T>,
        to_instance: usize,
    ) -> EdgeSender<T> {
        let to = port.group;
        let producer = self.groups[from].signals[from_instance].clone();
        let consumer = self.groups[to].signals[to_instance].clone();
        self.groups[from].peers[from_instance].add(consumer);
        self.groups[to].peers[to_instance].add(producer);
        let (mut sender, receiver) = edge::channel::<T, RtrbRing>(
            self.config.ring_capacity.max(1),
            self.groups[from].signals[from_instance].clone(),
            self.groups[to].signals[to_instance].clone(),
            self.control.abort_flag(),
            self.config.wait_policy,
        );
        sender.set_thread_peers(self.groups[from].peers[from_instance].clone());
        port.receivers.borrow_mut()[to_instance].push(receiver);
        sender
    }

    /// Installs the task of one instance of a group.
    pub(crate) fn set_task(&mut self, group: GroupId, instance: usize, task: Box<dyn Task>) {
        self.groups[group].tasks[instance] = Some(task);
    }
}
