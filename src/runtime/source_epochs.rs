//! A source's part in epochs, as a pure state machine: [`SourceEpochs`].
//!
//! A source thread injects a marker for every continuous epoch the coordinator starts,
//! replays a restored epoch with exactly the records the offset log holds, plans a
//! micro-batch and emits it once it is released, holds back behind a micro-batch that a
//! continuous epoch follows until the batch is complete, and, when it ends, reports the
//! final epoch with the records it emitted after its last marker.
//!
//! [`SourceEpochs`] makes those decisions and nothing else: no I/O, no threads, no clock
//! reads. Its shell, `SourceTask` (`runtime::heads`), reads the stop flag and then the
//! epoch clock, hands what it read to [`SourceEpochs::next`] as a [`Seen`], performs the
//! [`Action`] it gets (polls the source, acknowledges to the coordinator, pushes into the
//! chain), and reports back what happened ([`emitted`](SourceEpochs::emitted),
//! [`replayed`](SourceEpochs::replayed), [`marked`](SourceEpochs::marked),
//! [`planned`](SourceEpochs::planned)). The park re-check asks
//! [`has_work`](SourceEpochs::has_work) the same way.
//!
//! The unit tests below drive the machine through a model of that shell, a model
//! coordinator and a model source, over every order of their events up to a bound, and
//! check what reaches the chain against the rules of ARCHITECTURE.md ("Checkpoints and
//! recovery", "Triggers").

use crate::trigger::ExecutionMode;

/// What the source thread read right before it asked the machine: the stop flag (once
/// per step, before the clock), then the epoch clock, in the order of the fields.
///
/// The order matters for `round`: `EpochClock::advance` bumps the round before the epoch,
/// so a round read after `current` is at least the round of the advance that started the
/// epoch a plan is made for, and the coordinator, which drops plans of older rounds, keeps
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Seen {
    /// A graceful stop was requested.
    pub(crate) stopping: bool,
    /// The newest complete epoch (`EpochClock::last_complete`).
    pub(crate) last_complete: u64,
    /// The newest micro-batch released (`EpochClock::released`).
    pub(crate) released: u64,
    /// The newest epoch started (`EpochClock::current`).
    pub(crate) current: u64,
    /// The planning round (`EpochClock::round`).
    pub(crate) round: u64,
}

/// A micro-batch a source polled and reported, not emitted yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PlannedBatch<T> {
    /// The epoch it is.
    pub(crate) epoch: u64,
    /// The planning round it was made in.
    pub(crate) round: u64,
    /// Its records, in the order polled.
    pub(crate) records: Vec<T>,
    /// The source's offset after them.
    pub(crate) offset: Vec<u8>,
    /// The source was exhausted after them: the stream ends with the batch.
    pub(crate) exhausted: bool,
}

/// What the source thread does next, as [`SourceEpochs::next`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action<T> {
    /// Nothing to do until the clock moves (a trigger, a release, a completion, a new
    /// planning round): the step ends idle, and the thread parks until woken.
    Wait,
    /// A continuous epoch started: record the source's offset for it, acknowledge it with
    /// [`records`](SourceEpochs::records), report [`marked`](SourceEpochs::marked), send
    /// its marker, and ask again in the same step.
    InjectMarker(u64),
    /// Replay the restored epoch: poll and emit up to `remaining` more records (at most a
    /// step's budget), reporting each with [`replayed`](SourceEpochs::replayed). If all
    /// `remaining` went out, ask again in the same step (the marker follows); otherwise
    /// end the step. A source that waits for records asks
    /// [`replay_stalled`](SourceEpochs::replay_stalled) what to do.
    Replay {
        /// Records still owed to the replayed epoch.
        remaining: u64,
    },
    /// The replayed epoch has all its records: record the offset, acknowledge, report
    /// [`marked`](SourceEpochs::marked), send the marker; the step ends there (busy).
    ReplayMarker(u64),
    /// Micro-batch `epoch` started: poll what the source holds (up to `max` records),
    /// report the plan to the coordinator under `round`, and hand the batch back with
    /// [`planned`](SourceEpochs::planned); the step ends there (busy).
    PlanBatch {
        /// The batch's epoch.
        epoch: u64,
        /// The planning round it is made in.
        round: u64,
        /// The most records it may hold.
        max: usize,
    },
    /// The coordinator released this planned batch: push its records, then acknowledge
    /// and send its marker with the planned offset (reporting
    /// [`marked`](SourceEpochs::marked)); then end the stream if the batch is
    /// `exhausted`, else end the step (busy).
    EmitBatch(PlannedBatch<T>),
    /// End the stream: report [`final_epoch`](SourceEpochs::final_epoch) and send
    /// end-of-stream.
    Finish,
    /// No epoch holds the source back: poll and emit records as they come (a continuous
    /// epoch, or the drain after a stop), counting each with
    /// [`emitted`](SourceEpochs::emitted).
    EmitFreely,
}

/// Whether a step would find work ([`SourceEpochs::has_work`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// Yes: step.
    Yes,
    /// No: park until woken.
    No,
    /// Only if the source has data (`Source::has_data`).
    IfSourceHasData,
}

/// A replay that cannot be completed: the source waits for feeders that are stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayShortfall {
    /// The replayed epoch.
    pub(crate) epoch: u64,
    /// Records its offset log holds that the source could not give.
    pub(crate) remaining: u64,
}

/// A source's epoch decisions: which marker is owed, whether a restored epoch is being
/// replayed, which micro-batch is planned, whether the source is held behind a batch.
///
/// Epoch `injected + 1` is the one the source's records go to; `mode` says how it runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SourceEpochs<T> {
    /// The newest epoch this source has emitted a marker for.
    injected: u64,
    /// How epoch `injected + 1` runs (cached: the clock's table is behind a lock).
    mode: ExecutionMode,
    /// Records emitted since the last marker.
    records: u64,
    /// Records still to replay before the marker of `injected + 1`: a restored epoch
    /// runs again with exactly the records the offset log recorded.
    replay: Option<u64>,
    /// A planned micro-batch, waiting for its release.
    batch: Option<PlannedBatch<T>>,
    /// A micro-batch this source ended, followed by a continuous epoch: the source sends
    /// nothing more until the batch is complete, so no record of the continuous epoch can
    /// reach an operator (at an unaligned fan-in) or a sink before the batch is
    /// committed. Micro-batches stay exactly-once across a switch.
    held_behind: Option<u64>,
    /// The most records in one batch.
    max_batch: usize,
}

impl<T> SourceEpochs<T> {
    /// A source whose newest marked epoch is `injected` (the clock's current epoch when
    /// the query is built), whose next epoch runs in `mode`, which replays `replay`
    /// records first if that epoch is a restored one, and whose batches hold at most
    /// `max_batch` records (at least one).
    pub(crate) fn new(
        injected: u64,
        mode: ExecutionMode,
        replay: Option<u64>,
        max_batch: usize,
    ) -> Self {
        SourceEpochs {
            injected,
            mode,
            records: 0,
            replay,
            batch: None,
            held_behind: None,
            max_batch: max_batch.max(1),
        }
    }

    /// Records emitted since the last marker (what the next acknowledgement reports).
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// The epoch the source's records go to when it ends now, and how many it emitted in
    /// it (after its last marker): what the final report carries, so that a replay of
    /// that epoch emits exactly them again.
    pub(crate) fn final_epoch(&self) -> (u64, u64) {
        (self.injected + 1, self.records)
    }

    /// What to do next, given what the shell `seen` just now.
    ///
    /// In order: a source held behind a micro-batch waits for its completion; a restored
    /// epoch is replayed; a planned batch waits for its release (an empty one the
    /// coordinator will not run is dropped, and planned again or, when stopping, left
    /// for the final epoch); a marker is owed for every continuous epoch started; a
    /// started micro-batch is planned (not when stopping: the rest drains as in
    /// continuous mode and the final epoch takes it); else records flow freely.
    pub(crate) fn next(&mut self, seen: Seen) -> Action<T> {
        if let Some(batch) = self.held_behind {
            if seen.last_complete < batch {
                return Action::Wait;
            }
            self.held_behind = None;
        }
        if let Some(remaining) = self.replay {
            if remaining > 0 {
                return Action::Replay { remaining };
            }
            self.replay = None;
            return Action::ReplayMarker(self.injected + 1);
        }
        if let Some(batch) = &self.batch {
            if seen.released >= batch.epoch {
                let batch = self.batch.take().expect("a planned batch");
                self.records = batch.records.len() as u64;
                return Action::EmitBatch(batch);
            }
            if !(batch.records.is_empty() && (seen.stopping || seen.round > batch.round)) {
                return Action::Wait;
            }
            // An empty plan the coordinator will not run (no source had records): drop
            // it, then plan again, or end the stream when stopping.
            let exhausted = batch.exhausted;
            self.batch = None;
            if exhausted {
                return Action::Finish;
            }
        }
        if self.injected < seen.current && self.mode == ExecutionMode::Continuous {
            return Action::InjectMarker(self.injected + 1);
        }
        if self.mode != ExecutionMode::MicroBatch || seen.stopping {
            // Continuous (or stopping: the rest drains as in continuous mode, and the
            // final epoch takes it).
            return Action::EmitFreely;
        }
        let epoch = self.injected + 1;
        if seen.current < epoch {
            // Between batches: records wait in the source.
            return Action::Wait;
        }
        Action::PlanBatch {
            epoch,
            round: seen.round,
            max: self.max_batch,
        }
    }

    /// Whether a step would find work, given what the shell `seen` just now (the
    /// re-check before parking). A held source waits for the completion and a planned
    /// batch for its release (both before the stop flag: a stopping source parks for them
    /// instead of spinning); anything else for a stop, a new epoch or, while records
    /// flow (continuous, or a replay), data.
    pub(crate) fn has_work(&self, seen: Seen) -> Work {
        let yes = |condition: bool| if condition { Work::Yes } else { Work::No };
        if let Some(batch) = self.held_behind {
            return yes(seen.last_complete >= batch);
        }
        if let Some(batch) = &self.batch {
            return yes(seen.released >= batch.epoch
                || (batch.records.is_empty() && (seen.stopping || seen.round > batch.round)));
        }
        if seen.stopping || seen.current > self.injected {
            return Work::Yes;
        }
        if self.mode == ExecutionMode::Continuous || self.replay.is_some() {
            Work::IfSourceHasData
        } else {
            Work::No
        }
    }

    /// A record was emitted outside a batch and a replay ([`Action::EmitFreely`]).
    #[inline]
    pub(crate) fn emitted(&mut self) {
        self.records += 1;
    }

    /// A record of the replayed epoch was emitted ([`Action::Replay`]).
    pub(crate) fn replayed(&mut self) {
        if let Some(remaining) = &mut self.replay {
            debug_assert!(*remaining > 0, "no more records owed to the replay");
            *remaining = remaining.saturating_sub(1);
        }
        self.records += 1;
    }

    /// The source had no record for the replay. `waits_for_feeders`: it has no time to
    /// poll again at (`SourcePoll::Pending { until: None }`); `stop_requested`: the stop
    /// flag, read just now. A source that waits for feeders while the query stops cannot
    /// complete the replayed epoch as it was logged: the query fails with the shortfall.
    /// `None`: wait for the records.
    pub(crate) fn replay_stalled(
        &self,
        waits_for_feeders: bool,
        stop_requested: bool,
    ) -> Option<ReplayShortfall> {
        let remaining = self.replay?;
        (waits_for_feeders && stop_requested).then_some(ReplayShortfall {
            epoch: self.injected + 1,
            remaining,
        })
    }

    /// The shell acknowledged `epoch` (with [`records`](Self::records)) and is about to
    /// send its marker; the epoch after it runs in `next_mode` (`EpochClock::mode_of`,
    /// read after the acknowledgement). A micro-batch followed by a continuous epoch holds
    /// the source back until the batch is complete.
    pub(crate) fn marked(&mut self, epoch: u64, next_mode: ExecutionMode) {
        debug_assert_eq!(epoch, self.injected + 1, "markers go in order");
        self.injected = epoch;
        self.records = 0;
        let ended = self.mode;
        self.mode = next_mode;
        if ended == ExecutionMode::MicroBatch && next_mode == ExecutionMode::Continuous {
            self.held_behind = Some(epoch);
        }
    }

    /// The shell planned `batch` ([`Action::PlanBatch`]) and reported it: keep it until
    /// its release.
    pub(crate) fn planned(&mut self, batch: PlannedBatch<T>) {
        debug_assert_eq!(batch.epoch, self.injected + 1, "a batch for the next epoch");
        self.batch = Some(batch);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! The machine driven by a model of its shell (`SourceTask`), a model coordinator
    //! (`Coordinator::maybe_trigger`, `check_plans`, `retry_idle_batch`, `release_batch`,
    //! `start_replay`, completions) and a model source, over every order of their events
    //! up to a depth: a step of the source thread, a trigger (the clock advances to
    //! *e + 1*, fixing the mode of *e + 2* from the trigger asked for), the release of a
    //! planned batch, a new planning round (or, switched to continuous, the idle batch run
    //! empty), a completion, a trigger switch, a stop, a record arriving, the source
    //! ending, and, for a restored epoch, the coordinator's start of its replay.
    //!
    //! The oracle ([`World::check`]) reads what reached the chain, with what the clock
    //! said when each event went out, against the rules: records once and in order;
    //! markers once, in order, each acknowledged with its epoch's record count; a
    //! continuous marker only for a started epoch; a micro-batch exactly its last plan,
    //! emitted after its release; a replayed epoch exactly the recorded count, then its
    //! marker; nothing (record or marker) after a micro-batch that a continuous epoch
    //! follows until the batch is complete; the final report counts the records after the
    //! last marker. After the internal events run out ([`World::settled`]): every started
    //! continuous epoch is marked, every record polled has gone out (a planned batch
    //! too, after a stop), and a stopped source ends. At every state, a `has_work` of
    //! "no" means a step would do nothing (the park re-check loses no wake-up).

    use super::*;
    use std::collections::HashMap;
    use ExecutionMode::{Continuous, MicroBatch};

    /// The epoch the clock starts at (the restored one); the source's first is the next.
    const START: u64 = 2;

    /// A batch as the shell plans it.
    fn batch(epoch: u64, round: u64, records: Vec<u32>) -> PlannedBatch<u32> {
        PlannedBatch {
            epoch,
            round,
            records,
            offset: Vec::new(),
            exhausted: false,
        }
    }

    #[test]
    fn continuous_epochs_are_marked_in_order() {
        let mut epochs = SourceEpochs::<u32>::new(START, Continuous, None, 4);
        let seen = Seen {
            current: START + 2,
            released: START + 2,
            last_complete: START,
            ..Seen::default()
        };
        assert_eq!(epochs.has_work(seen), Work::Yes);
        assert_eq!(epochs.next(seen), Action::InjectMarker(START + 1));
        epochs.marked(START + 1, Continuous);
        assert_eq!(epochs.next(seen), Action::InjectMarker(START + 2));
        epochs.emitted();
        assert_eq!(epochs.records(), 1);
        epochs.marked(START + 2, MicroBatch);
        assert_eq!(epochs.records(), 0);
        // Epoch START + 3 is a micro-batch, not started yet: records wait in the source.
        assert_eq!(epochs.next(seen), Action::Wait);
        assert_eq!(epochs.has_work(seen), Work::No);
    }

    #[test]
    fn a_replay_emits_the_recorded_count_then_its_marker() {
        let mut epochs = SourceEpochs::<u32>::new(START, MicroBatch, Some(2), 4);
        let seen = Seen {
            current: START + 1,
            released: START + 1,
            last_complete: START,
            ..Seen::default()
        };
        assert_eq!(epochs.next(seen), Action::Replay { remaining: 2 });
        epochs.replayed();
        assert_eq!(epochs.next(seen), Action::Replay { remaining: 1 });
        assert_eq!(epochs.replay_stalled(true, false), None);
        assert_eq!(epochs.replay_stalled(false, true), None);
        assert_eq!(
            epochs.replay_stalled(true, true),
            Some(ReplayShortfall {
                epoch: START + 1,
                remaining: 1
            })
        );
        epochs.replayed();
        assert_eq!(epochs.next(seen), Action::ReplayMarker(START + 1));
        assert_eq!(epochs.records(), 2);
        epochs.marked(START + 1, Continuous);
        // A micro-batch followed by a continuous epoch: held until it is complete, even
        // when stopping.
        assert_eq!(epochs.next(seen), Action::Wait);
        assert_eq!(
            epochs.has_work(Seen {
                stopping: true,
                ..seen
            }),
            Work::No
        );
        let complete = Seen {
            last_complete: START + 1,
            ..seen
        };
        assert_eq!(epochs.has_work(complete), Work::Yes);
        assert_eq!(epochs.next(complete), Action::EmitFreely);
        assert_eq!(epochs.has_work(complete), Work::IfSourceHasData);
    }

    #[test]
    fn a_batch_goes_out_after_its_release_and_an_empty_one_is_planned_again() {
        let mut epochs = SourceEpochs::new(START, MicroBatch, None, 2);
        let started = Seen {
            current: START + 1,
            released: START,
            last_complete: START,
            round: 1,
            ..Seen::default()
        };
        let plan = |round| Action::PlanBatch {
            epoch: START + 1,
            round,
            max: 2,
        };
        assert_eq!(epochs.next(started), plan(1));
        epochs.planned(batch(START + 1, 1, Vec::new()));
        assert_eq!(epochs.next(started), Action::Wait);
        assert_eq!(epochs.has_work(started), Work::No);
        // A new round: the empty plan is dropped and made again.
        let replanned = Seen {
            round: 2,
            ..started
        };
        assert_eq!(epochs.has_work(replanned), Work::Yes);
        assert_eq!(epochs.next(replanned), plan(2));
        epochs.planned(batch(START + 1, 2, vec![7, 8]));
        // Not even a stop moves a planned batch before its release.
        let stopping = Seen {
            stopping: true,
            ..replanned
        };
        assert_eq!(epochs.next(stopping), Action::Wait);
        let released = Seen {
            released: START + 1,
            ..stopping
        };
        assert_eq!(
            epochs.next(released),
            Action::EmitBatch(batch(START + 1, 2, vec![7, 8]))
        );
        assert_eq!(epochs.records(), 2);
        epochs.marked(START + 1, MicroBatch);
        // Stopping: the rest drains, and the final epoch takes it.
        assert_eq!(epochs.next(released), Action::EmitFreely);
        epochs.emitted();
        assert_eq!(epochs.final_epoch(), (START + 2, 1));
    }

    /// One run of the exploration: the query as built, and the bounds.
    #[derive(Debug, Clone, Copy)]
    struct Scenario {
        /// How epoch `START + 1` runs.
        first: ExecutionMode,
        /// The trigger asked for at start: for a replay, how epoch `START + 2` runs.
        then: ExecutionMode,
        /// Records of the restored epoch `START + 1` to replay.
        replay: Option<u64>,
        /// The step budget.
        budget: usize,
        /// The most records in a batch.
        max_batch: usize,
        /// `Source::drain_on_stop`.
        drain_on_stop: bool,
        /// The most records that arrive.
        records: u32,
        /// The most epochs the coordinator starts after `START`.
        epochs: u64,
        /// The most trigger switches.
        switches: u32,
        /// The most events on one path.
        depth: usize,
        /// A deliberate mistake in the shell, which the checks must catch.
        bug: Option<Bug>,
    }

    impl Scenario {
        fn new(first: ExecutionMode) -> Self {
            Scenario {
                first,
                then: first,
                replay: None,
                budget: 1,
                max_batch: 2,
                drain_on_stop: false,
                records: 3,
                epochs: 3,
                switches: 2,
                depth: 12,
                bug: None,
            }
        }
    }

    /// Mistakes the checks must catch.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Bug {
        /// The shell tells the machine every epoch is complete: no hold after a batch.
        NoHold,
        /// The shell tells the machine every started batch is released.
        EarlyRelease,
        /// Records emitted freely are not counted.
        Uncounted,
        /// The mode after a marker is not read again (the one at start is kept).
        ModeReadOnce,
    }

    /// The coordinator's view of the current micro-batch's plan.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    struct Plan {
        epoch: u64,
        records: u64,
        /// Empty, planned while not stopping: not run, planned again at the next trigger.
        idle: bool,
    }

    /// What the clock (and the stop flag) said when something went out.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    struct At {
        current: u64,
        released: u64,
        last_complete: u64,
        stop: bool,
    }

    /// How a record went out.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum Via {
        Free,
        Replay,
        Batch(u64),
    }

    /// What went into the chain.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum Out {
        Record(u32, Via),
        Marker(u64),
        End,
    }

    /// A model source's poll.
    enum Poll {
        Ready(u32),
        Pending,
        Exhausted,
    }

    /// The events enumerated.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Event {
        /// The source thread steps.
        Step,
        /// The coordinator starts the next epoch.
        Trigger,
        /// The coordinator releases the planned batch.
        Release,
        /// The coordinator retries an idle batch: a new planning round, or (switched to
        /// continuous) the batch run empty.
        Retry,
        /// The oldest acknowledged epoch completes.
        Complete,
        /// The trigger asked for switches mode.
        Switch,
        /// A graceful stop.
        Stop,
        /// A record arrives at the source.
        Arrive,
        /// The source will have no more records.
        End,
        /// The coordinator starts and releases the restored epoch.
        StartReplay,
    }

    const EVENTS: [Event; 10] = [
        Event::Step,
        Event::Trigger,
        Event::Release,
        Event::Retry,
        Event::Complete,
        Event::Switch,
        Event::Stop,
        Event::Arrive,
        Event::End,
        Event::StartReplay,
    ];

    /// The coordinator's events that happen without the outside world (no timer, no
    /// user): what a settled world has run out of.
    const INTERNAL: [Event; 3] = [Event::StartReplay, Event::Release, Event::Complete];

    /// The source thread with the machine, the coordinator, the clock and the source.
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    struct World {
        // The epoch clock.
        current: u64,
        released: u64,
        round: u64,
        last_complete: u64,
        /// `(first epoch, mode)`, as in `EpochClock`.
        modes: Vec<(u64, ExecutionMode)>,
        // The coordinator.
        requested: ExecutionMode,
        switches: u32,
        replay_pending: bool,
        plan: Option<Plan>,
        /// Acknowledgements: epoch and records.
        acks: Vec<(u64, u64)>,
        /// The source's final report: epoch and records.
        final_report: Option<(u64, u64)>,
        stop: bool,
        /// The query failed (a replay cut short by a stop).
        failed: bool,
        // The source: records `1..=arrived` arrived, `1..=polled` were taken.
        arrived: u32,
        polled: u32,
        ended: bool,
        // The source thread.
        epochs: SourceEpochs<u32>,
        draining: bool,
        done: bool,
        /// The last step ended idle: the thread parks unless `has_work` says otherwise.
        parked: bool,
        // For the checks.
        out: Vec<(Out, At)>,
        /// Every plan made: epoch, records, and when.
        plans: Vec<(u64, Vec<u32>, At)>,
    }

    impl World {
        /// The query as built: the clock at `START`, the source's machine made from it
        /// (`SourceCheckpoint::new`).
        fn new(scenario: &Scenario) -> Self {
            let mut modes = vec![(START + 1, scenario.first)];
            if scenario.replay.is_some() && scenario.then != scenario.first {
                // Recovery fixes the modes of the restored epoch and the next.
                modes.push((START + 2, scenario.then));
            }
            World {
                current: START,
                released: START,
                round: 0,
                last_complete: START,
                modes,
                requested: scenario.then,
                switches: 0,
                replay_pending: scenario.replay.is_some(),
                plan: None,
                acks: Vec::new(),
                final_report: None,
                stop: false,
                failed: false,
                arrived: 0,
                polled: 0,
                ended: false,
                epochs: SourceEpochs::new(
                    START,
                    scenario.first,
                    scenario.replay,
                    scenario.max_batch,
                ),
                draining: false,
                done: false,
                parked: false,
                out: Vec::new(),
                plans: Vec::new(),
            }
        }

        /// `EpochClock::mode_of`.
        fn mode_of(&self, epoch: u64) -> ExecutionMode {
            self.modes
                .iter()
                .rev()
                .find(|(first, _)| *first <= epoch)
                .or(self.modes.first())
                .map(|(_, mode)| *mode)
                .unwrap_or_default()
        }

        /// `EpochClock::set_mode_from`.
        fn set_mode_from(&mut self, epoch: u64, mode: ExecutionMode) {
            self.modes.retain(|(first, _)| *first < epoch);
            if self.modes.last().map(|(_, last)| *last) != Some(mode) {
                self.modes.push((epoch, mode));
            }
        }

        fn at(&self) -> At {
            At {
                current: self.current,
                released: self.released,
                last_complete: self.last_complete,
                stop: self.stop,
            }
        }

        /// What the shell reads (`SourceCheckpoint::seen`), with the bug's lie.
        fn seen(&self, stopping: bool, scenario: &Scenario) -> Seen {
            let mut seen = Seen {
                stopping,
                last_complete: self.last_complete,
                released: self.released,
                current: self.current,
                round: self.round,
            };
            match scenario.bug {
                Some(Bug::NoHold) => seen.last_complete = u64::MAX,
                Some(Bug::EarlyRelease) => seen.released = seen.current,
                _ => {}
            }
            seen
        }

        fn poll(&mut self) -> Poll {
            if self.polled < self.arrived {
                self.polled += 1;
                Poll::Ready(self.polled)
            } else if self.ended {
                Poll::Exhausted
            } else {
                Poll::Pending
            }
        }

        /// `Source::has_data`: whether a poll finds something.
        fn has_data(&self) -> bool {
            self.polled < self.arrived || self.ended
        }

        fn send(&mut self, out: Out) {
            let at = self.at();
            self.out.push((out, at));
        }

        /// `SourceTask::mark` and `emit_marker`.
        fn mark(&mut self, epoch: u64, scenario: &Scenario) {
            self.acks.push((epoch, self.epochs.records()));
            let next_mode = if scenario.bug == Some(Bug::ModeReadOnce) {
                scenario.first
            } else {
                self.mode_of(epoch + 1)
            };
            self.epochs.marked(epoch, next_mode);
            self.send(Out::Marker(epoch));
        }

        /// `SourceTask::finish` (a step that ends the stream is not idle).
        fn finish(&mut self) -> bool {
            self.final_report = Some(self.epochs.final_epoch());
            self.send(Out::End);
            self.done = true;
            true
        }

        /// The coordinator receives a plan (`Message::Planned`, `on_planned`,
        /// `check_plans`): plans of an older round or of a released batch are dropped; an
        /// empty one found while not stopping is not run (it waits for a retry).
        fn on_planned(&mut self, epoch: u64, round: u64, records: u64) {
            if round != self.round || epoch <= self.released {
                return;
            }
            let idle = records == 0 && !self.stop;
            self.plan = Some(Plan {
                epoch,
                records,
                idle,
            });
        }

        /// One step of the source thread, noting whether it ended idle (the thread then
        /// parks unless `has_work` finds work).
        fn step(&mut self, scenario: &Scenario) {
            self.parked = !self.step_inner(scenario);
        }

        /// `SourceTask::step` with the model's I/O. Returns `false` where the real one
        /// returns `Step::Idle`.
        fn step_inner(&mut self, scenario: &Scenario) -> bool {
            let stopping = self.stop;
            let budget = scenario.budget;
            loop {
                let seen = self.seen(stopping, scenario);
                match self.epochs.next(seen) {
                    Action::Wait => return false,
                    Action::EmitFreely => break,
                    Action::InjectMarker(epoch) => self.mark(epoch, scenario),
                    Action::Replay { remaining } => {
                        let count = remaining.min(budget as u64);
                        for emitted in 0..count {
                            match self.poll() {
                                Poll::Ready(record) => {
                                    self.epochs.replayed();
                                    self.send(Out::Record(record, Via::Replay));
                                }
                                Poll::Pending => {
                                    if self.epochs.replay_stalled(true, self.stop).is_some() {
                                        self.failed = true;
                                        self.done = true;
                                        return true;
                                    }
                                    return emitted > 0;
                                }
                                Poll::Exhausted => return self.finish(),
                            }
                        }
                        if count < remaining {
                            return true;
                        }
                    }
                    Action::ReplayMarker(epoch) => {
                        self.mark(epoch, scenario);
                        return true;
                    }
                    Action::PlanBatch { epoch, round, max } => {
                        let mut records = Vec::new();
                        let mut exhausted = false;
                        while records.len() < max {
                            match self.poll() {
                                Poll::Ready(record) => records.push(record),
                                Poll::Pending => break,
                                Poll::Exhausted => {
                                    exhausted = true;
                                    break;
                                }
                            }
                        }
                        let at = self.at();
                        self.plans.push((epoch, records.clone(), at));
                        self.on_planned(epoch, round, records.len() as u64);
                        self.epochs.planned(PlannedBatch {
                            epoch,
                            round,
                            records,
                            offset: Vec::new(),
                            exhausted,
                        });
                        return true;
                    }
                    Action::EmitBatch(batch) => {
                        for record in batch.records {
                            self.send(Out::Record(record, Via::Batch(batch.epoch)));
                        }
                        self.mark(batch.epoch, scenario);
                        if batch.exhausted {
                            return self.finish();
                        }
                        return true;
                    }
                    Action::Finish => return self.finish(),
                }
            }
            if !self.draining && stopping {
                if !scenario.drain_on_stop {
                    return self.finish();
                }
                self.draining = true;
            }
            for emitted in 0..budget {
                match self.poll() {
                    Poll::Ready(record) => {
                        if scenario.bug != Some(Bug::Uncounted) {
                            self.epochs.emitted();
                        }
                        self.send(Out::Record(record, Via::Free));
                    }
                    Poll::Pending => return emitted > 0,
                    Poll::Exhausted => return self.finish(),
                }
            }
            true
        }

        /// The world after `event`, if it can happen now.
        fn apply(&self, event: Event, scenario: &Scenario) -> Option<World> {
            let mut world = self.clone();
            match event {
                Event::Step => {
                    if self.done {
                        return None;
                    }
                    world.step(scenario);
                }
                Event::Trigger => {
                    // `maybe_trigger`: not while stopping, after the source ended, while
                    // the current batch waits for its plans, or while a batch (or the
                    // batch before a continuous epoch) is incomplete.
                    let current = self.current;
                    let previous_done = self.last_complete >= current;
                    if self.stop
                        || self.done
                        || self.replay_pending
                        || current >= START + scenario.epochs
                        || self.released < current
                        || (!previous_done
                            && (self.mode_of(current + 1) == MicroBatch
                                || self.mode_of(current) == MicroBatch))
                    {
                        return None;
                    }
                    // `trigger`.
                    let epoch = current + 1;
                    world.set_mode_from(epoch + 1, self.requested);
                    world.round += 1;
                    world.current = epoch;
                    world.plan = None;
                    if world.mode_of(epoch) == Continuous {
                        world.released = epoch;
                    }
                }
                Event::Release => {
                    // `check_plans` with records (or stopping), then `release_batch`.
                    let plan = self.plan?;
                    if plan.idle || plan.epoch != self.current || self.released >= plan.epoch {
                        return None;
                    }
                    world.set_mode_from(plan.epoch + 1, self.requested);
                    world.released = plan.epoch;
                }
                Event::Retry => {
                    // `retry_idle_batch` (not while stopping: `maybe_trigger` returns).
                    let plan = self.plan?;
                    if !plan.idle || self.stop || self.released >= plan.epoch {
                        return None;
                    }
                    world.set_mode_from(plan.epoch + 1, self.requested);
                    if self.requested == Continuous {
                        world.released = plan.epoch;
                        world.plan = Some(Plan {
                            idle: false,
                            ..plan
                        });
                    } else {
                        world.plan = None;
                        world.round += 1;
                    }
                }
                Event::Complete => {
                    let epoch = self.last_complete + 1;
                    if epoch > self.current || !self.acks.iter().any(|(e, _)| *e == epoch) {
                        return None;
                    }
                    world.last_complete = epoch;
                }
                Event::Switch => {
                    if self.switches >= scenario.switches {
                        return None;
                    }
                    world.switches += 1;
                    world.requested = match self.requested {
                        Continuous => MicroBatch,
                        MicroBatch => Continuous,
                    };
                }
                Event::Stop => {
                    if self.stop {
                        return None;
                    }
                    world.stop = true;
                }
                Event::Arrive => {
                    if self.ended || self.arrived >= scenario.records {
                        return None;
                    }
                    world.arrived += 1;
                }
                Event::End => {
                    if self.ended {
                        return None;
                    }
                    world.ended = true;
                }
                Event::StartReplay => {
                    // `start_replay`: advance, release.
                    if !self.replay_pending {
                        return None;
                    }
                    world.replay_pending = false;
                    world.round += 1;
                    world.current += 1;
                    world.released = world.current;
                }
            }
            Some(world)
        }

        /// The world once the source has stepped, and the coordinator released and
        /// completed, as long as anything happened.
        fn settled(&self, scenario: &Scenario) -> World {
            let mut world = self.clone();
            'settle: for _ in 0..1_000 {
                if !world.done {
                    let before = world.clone();
                    world.step(scenario);
                    if world != before {
                        continue;
                    }
                }
                for event in INTERNAL {
                    if let Some(next) = world.apply(event, scenario) {
                        world = next;
                        continue 'settle;
                    }
                }
                return world;
            }
            panic!("the world does not settle: {world:#?}");
        }

        /// The safety rules, on everything that went out so far.
        fn check(&self, scenario: &Scenario) -> Result<(), String> {
            macro_rules! ensure {
                ($condition:expr, $($message:tt)+) => {
                    if !$condition {
                        return Err(format!($($message)+));
                    }
                };
            }
            // The epoch records go to, and its records so far.
            let mut epoch = START + 1;
            let mut records: Vec<(u32, Via)> = Vec::new();
            let mut next_record = 1;
            let mut markers = 0;
            let mut ended = false;
            for &(out, at) in &self.out {
                ensure!(!ended, "{out:?} after the end");
                let replaying = epoch == START + 1 && scenario.replay.is_some();
                // After a micro-batch that a continuous epoch follows, nothing goes out
                // until the batch is complete.
                let held = epoch - 1 > START
                    && self.mode_of(epoch - 1) == MicroBatch
                    && self.mode_of(epoch) == Continuous
                    && at.last_complete < epoch - 1;
                match out {
                    Out::Record(record, via) => {
                        ensure!(
                            record == next_record,
                            "record {record} went out where {next_record} was due"
                        );
                        next_record += 1;
                        ensure!(!held, "record {record} went out behind batch {}", epoch - 1);
                        match via {
                            Via::Replay => ensure!(
                                replaying && (records.len() as u64) < scenario.replay.unwrap_or(0),
                                "record {record} replayed beyond the replay"
                            ),
                            Via::Batch(batch) => ensure!(
                                batch == epoch
                                    && !replaying
                                    && self.mode_of(epoch) == MicroBatch
                                    && at.released >= batch,
                                "record {record} of batch {batch} went out in epoch {epoch} \
                                 ({:?}), released {}",
                                self.mode_of(epoch),
                                at.released
                            ),
                            Via::Free => ensure!(
                                !replaying && (self.mode_of(epoch) == Continuous || at.stop),
                                "record {record} went out freely in epoch {epoch} ({:?})",
                                self.mode_of(epoch)
                            ),
                        }
                        records.push((record, via));
                    }
                    Out::Marker(marker) => {
                        ensure!(marker == epoch, "marker {marker} where {epoch} was due");
                        ensure!(!held, "marker {marker} went out behind batch {}", epoch - 1);
                        let count = records.len() as u64;
                        if replaying {
                            let owed = scenario.replay.unwrap_or(0);
                            ensure!(
                                count == owed,
                                "replayed epoch {epoch} ended after {count} of {owed} records"
                            );
                        } else {
                            ensure!(
                                marker <= at.current,
                                "marker {marker} of an epoch not started ({})",
                                at.current
                            );
                            if self.mode_of(marker) == MicroBatch {
                                ensure!(at.released >= marker, "batch {marker} not released");
                                let planned = self
                                    .plans
                                    .iter()
                                    .rev()
                                    .find(|(planned, _, _)| *planned == marker)
                                    .map(|(_, records, _)| records.clone());
                                let emitted: Vec<u32> = records
                                    .iter()
                                    .map(|(record, via)| {
                                        (*via == Via::Batch(marker)).then_some(*record)
                                    })
                                    .collect::<Option<_>>()
                                    .unwrap_or_default();
                                ensure!(
                                    planned.as_ref() == Some(&emitted)
                                        && emitted.len() == records.len(),
                                    "batch {marker} emitted {records:?}, planned {planned:?}"
                                );
                            }
                        }
                        ensure!(
                            self.acks.get(markers) == Some(&(marker, count)),
                            "marker {marker} after {count} records, acknowledged as {:?}",
                            self.acks.get(markers)
                        );
                        markers += 1;
                        epoch += 1;
                        records.clear();
                    }
                    Out::End => {
                        ended = true;
                        let tail = (epoch, records.len() as u64);
                        ensure!(
                            self.final_report == Some(tail),
                            "final report {:?}, but the stream ended in {tail:?}",
                            self.final_report
                        );
                    }
                }
            }
            ensure!(
                self.acks.len() == markers,
                "{} acknowledgements for {markers} markers",
                self.acks.len()
            );
            ensure!(
                ended == (self.done && !self.failed),
                "ended: {ended}, done: {}, failed: {}",
                self.done,
                self.failed
            );
            for (planned, _, at) in &self.plans {
                ensure!(
                    *planned <= at.current && self.mode_of(*planned) == MicroBatch && !at.stop,
                    "batch {planned} planned at {at:?}"
                );
            }
            Ok(())
        }

        /// The rules once nothing more happens by itself.
        fn check_settled(&self, scenario: &Scenario) -> Result<(), String> {
            let emitted = self
                .out
                .iter()
                .filter(|(out, _)| matches!(out, Out::Record(..)))
                .count();
            if emitted != self.polled as usize {
                return Err(format!(
                    "{} records polled, {emitted} went out",
                    self.polled
                ));
            }
            if self.stop && (!scenario.drain_on_stop || self.ended) && !self.done {
                return Err("stopped, yet the source did not end".into());
            }
            if !self.done && !self.stop {
                let replay_waits =
                    self.epochs.replay.is_some_and(|owed| owed > 0) && !self.has_data();
                let batch_idle = self.plan.is_some_and(|plan| plan.idle);
                if self.epochs.injected < self.current && !replay_waits && !batch_idle {
                    return Err(format!(
                        "epoch {} started, the source marked {} only",
                        self.current, self.epochs.injected
                    ));
                }
            }
            Ok(())
        }

        /// For a thread about to park (or parked): a `has_work` of "no" means a step
        /// would do nothing, so no wake-up is lost. (Before its first step, a thread
        /// steps without asking.)
        fn check_has_work(&self, scenario: &Scenario) -> Result<(), String> {
            if self.done || !self.parked {
                return Ok(());
            }
            let work = match self.epochs.has_work(self.seen(self.stop, scenario)) {
                Work::Yes => true,
                Work::No => false,
                Work::IfSourceHasData => self.has_data(),
            };
            if !work {
                let mut stepped = self.clone();
                stepped.step(scenario);
                if stepped != *self {
                    return Err("has_work said no, but a step did something".into());
                }
            }
            Ok(())
        }
    }

    /// Explores every order of events up to the scenario's depth (each state once per
    /// depth left), checking every state. Returns the number of states, or the first
    /// violation with the events that led to it.
    fn explore(scenario: &Scenario) -> Result<usize, String> {
        let mut visited: HashMap<World, usize> = HashMap::new();
        let mut stack = vec![(World::new(scenario), Vec::new())];
        while let Some((world, path)) = stack.pop() {
            let checked = world
                .check(scenario)
                .and_then(|()| world.check_has_work(scenario))
                .and_then(|()| world.settled(scenario).check_settled(scenario));
            if let Err(violation) = checked {
                return Err(format!(
                    "{violation}\nscenario: {scenario:?}\nevents: {path:?}\nout: {:?}",
                    world.out.iter().map(|(out, _)| out).collect::<Vec<_>>()
                ));
            }
            if world.done || path.len() == scenario.depth {
                continue;
            }
            let left = scenario.depth - path.len() - 1;
            for event in EVENTS {
                let Some(next) = world.apply(event, scenario) else {
                    continue;
                };
                if visited
                    .get(&next)
                    .is_some_and(|seen_left| *seen_left >= left)
                {
                    continue;
                }
                visited.insert(next.clone(), left);
                let mut path = path.clone();
                path.push(event);
                stack.push((next, path));
            }
        }
        Ok(visited.len())
    }

    fn explore_all(scenarios: impl IntoIterator<Item = Scenario>) {
        for scenario in scenarios {
            match explore(&scenario) {
                // A guard against an exploration that stopped short.
                Ok(states) => assert!(states > 1_000, "{states} states in {scenario:?}"),
                Err(violation) => panic!("{violation}"),
            }
        }
    }

    #[test]
    fn every_order_from_a_continuous_start() {
        let mut scenarios = Vec::new();
        for budget in [1, 2] {
            for drain_on_stop in [false, true] {
                scenarios.push(Scenario {
                    budget,
                    drain_on_stop,
                    // Two more events to reach a micro-batch after a switch.
                    depth: 13,
                    ..Scenario::new(Continuous)
                });
            }
        }
        explore_all(scenarios);
    }

    #[test]
    fn every_order_from_a_micro_batch_start() {
        let mut scenarios = Vec::new();
        for max_batch in [1, 2] {
            for drain_on_stop in [false, true] {
                scenarios.push(Scenario {
                    max_batch,
                    drain_on_stop,
                    ..Scenario::new(MicroBatch)
                });
            }
        }
        explore_all(scenarios);
    }

    #[test]
    fn every_order_of_a_replayed_epoch() {
        let mut scenarios = Vec::new();
        for replay in 0..=2 {
            for first in [Continuous, MicroBatch] {
                for then in [Continuous, MicroBatch] {
                    scenarios.push(Scenario {
                        then,
                        replay: Some(replay),
                        drain_on_stop: replay == 1,
                        ..Scenario::new(first)
                    });
                }
            }
        }
        explore_all(scenarios);
    }

    #[test]
    fn the_checks_catch_broken_shells() {
        for (bug, first) in [
            (Bug::NoHold, MicroBatch),
            (Bug::EarlyRelease, MicroBatch),
            (Bug::Uncounted, Continuous),
            (Bug::ModeReadOnce, Continuous),
        ] {
            let scenario = Scenario {
                bug: Some(bug),
                ..Scenario::new(first)
            };
            assert!(explore(&scenario).is_err(), "{bug:?} went unnoticed");
        }
    }
}
