//! Writing epochs to the log and completing them: the `META`, `STATE`, `COMPLETE` and
//! `COMMIT` entries, the sync, the sinks' commits, the progress statistics, and the
//! removal of the segments that [`retention`] finds unneeded.

use super::retention;
use super::stats::EpochReport;
use super::{Coordinator, QueryControl};
use crate::checkpoint::codec;
use crate::checkpoint::commit::PendingCommit;
use crate::checkpoint::entries::{self, CommitEntry, CompleteEntry, StateEntry};
use crate::checkpoint::error::CheckpointError;
use crate::checkpoint::log::{EntryKind, Location};
use crate::metrics::assemble::EpochFacts;

impl<C: QueryControl> Coordinator<C> {
    /// Appends an entry (nothing without a log).
    pub(super) fn append(
        &mut self,
        kind: EntryKind,
        payload: &[u8],
        epoch: u64,
    ) -> Result<Option<Location>, CheckpointError> {
        let Some(log) = self.log.as_mut() else {
            return Ok(None);
        };
        let location = log.append(kind, payload)?;
        let newest = self.segment_epochs.entry(location.segment).or_insert(0);
        *newest = (*newest).max(epoch);
        self.stats.lock().unwrap().bytes_written += payload.len() as u64;
        if self.last_segment != Some(location.segment) {
            // A new segment: start it with the query's identity, so a directory whose
            // older segments were removed still says which query wrote it.
            self.last_segment = Some(location.segment);
            if kind != entries::META {
                self.write_meta()?;
            }
        }
        Ok(Some(location))
    }

    pub(super) fn write_meta(&mut self) -> Result<(), CheckpointError> {
        if self.log.is_none() {
            return Ok(());
        }
        let payload = codec::encode(&self.meta)?;
        self.append(entries::META, &payload, 0)?;
        Ok(())
    }

    /// Appends `participant`'s snapshot for `epoch`; returns the bytes written.
    pub(super) fn write_state(
        &mut self,
        epoch: u64,
        participant: usize,
        state: Vec<u8>,
    ) -> Result<u64, CheckpointError> {
        let (operator, instance) = self.participants[participant].clone();
        let entry = StateEntry {
            epoch,
            attempt: self.attempt,
            operator,
            instance,
            state,
        };
        let payload = codec::encode(&entry)?;
        self.append(entries::STATE, &payload, epoch)?;
        Ok(payload.len() as u64)
    }

    pub(super) fn complete(&mut self, epoch: u64) -> Result<(), CheckpointError> {
        if self.halted() {
            // An older epoch completed by the same acknowledgement failed its commit (or
            // the query failed meanwhile): this one must not leapfrog it.
            return Ok(());
        }
        let mut open = self.open_epochs.remove(&epoch).unwrap_or_default();
        let mut commits = std::mem::take(&mut open.commits);
        commits.append(&mut self.final_commits);
        if self.log.is_some() {
            // Participants that finished before this epoch's marker reached them restore
            // from their final state (their upstreams finished too, so nothing of theirs
            // replays).
            let carried: Vec<(usize, Vec<u8>)> = self
                .final_states
                .iter()
                .filter(|(participant, _)| {
                    let (operator, instance) = &self.participants[**participant];
                    !open
                        .states
                        .iter()
                        .any(|(name, i)| name == operator && i == instance)
                })
                .map(|(participant, state)| (*participant, state.clone()))
                .collect();
            for (participant, state) in carried {
                open.bytes += self.write_state(epoch, participant, state)?;
                open.states.push(self.participants[participant].clone());
            }
        }
        // Older open epochs can no longer complete on their own; this one supersedes them.
        self.open_epochs.retain(|older, _| *older > epoch);
        let entry = CompleteEntry {
            epoch,
            attempt: self.attempt,
            mode: open.mode,
            needs_commit: !commits.is_empty(),
            fingerprint: self.meta.fingerprint,
            states: open.states.clone(),
            duration_us: open
                .triggered
                .map(|at| at.elapsed())
                .unwrap_or_default()
                .as_micros() as u64,
        };
        let payload = codec::encode(&entry)?;
        self.append(entries::COMPLETE, &payload, epoch)?;
        if let Some(log) = self.log.as_mut() {
            log.sync()?;
        }
        let commit_count = commits.len();
        let commit_started = std::time::Instant::now();
        if !commits.is_empty() {
            if !self.run_commits(commits) {
                // The query is failing (`halted` from now on): this epoch stays
                // unpublished, no later one completes, and a restart replays it.
                return Ok(());
            }
            // Not synced on its own: if it is lost, the epoch is replayed and the sinks,
            // which recorded their commits themselves, skip it.
            let payload = codec::encode(&CommitEntry {
                epoch,
                attempt: self.attempt,
            })?;
            self.append(entries::COMMIT, &payload, epoch)?;
        }
        let commit_time = commit_started.elapsed();
        let duration = open.triggered.map(|at| at.elapsed()).unwrap_or_default();
        let facts = EpochFacts {
            epoch,
            mode: open.mode,
            triggered: open.triggered,
            completed: std::time::Instant::now(),
            commit: commit_time,
            offsets: open
                .sources
                .iter()
                .map(|(participant, (_, offset))| (*participant, offset.clone()))
                .collect(),
        };
        self.stats.lock().unwrap().record_complete(EpochReport {
            epoch,
            mode: open.mode,
            duration,
            input_rows: (!open.sources.is_empty())
                .then(|| open.sources.values().map(|(records, _)| records).sum()),
            bytes_written: open.bytes + payload.len() as u64,
            snapshot_times: open.snapshot_times,
            commits: commit_count,
        });
        self.completed.push_back(epoch);
        self.shared.clock.set_last_complete(epoch);
        self.publish_progress(&facts);
        self.remove_old_segments(commit_count > 0)
    }

    /// Runs sink commits; a failing (or panicking) one fails the query, naming the sink.
    /// Returns whether all succeeded.
    fn run_commits(&mut self, commits: Vec<PendingCommit>) -> bool {
        for commit in commits {
            if let Err(error) = commit.publish() {
                self.control.fail(error);
                return false;
            }
        }
        true
    }

    /// Removes the segments [`retention`] finds unneeded: those holding nothing newer
    /// than the oldest complete epoch kept.
    fn remove_old_segments(&mut self, newest_needed_commit: bool) -> Result<(), CheckpointError> {
        let Some(oldest_kept) =
            retention::keep_newest(&mut self.completed, self.retain, newest_needed_commit)
        else {
            return Ok(());
        };
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        let current = log.current_segment();
        let removable = retention::removable_segments(&self.segment_epochs, current, oldest_kept);
        if removable.is_empty() {
            return Ok(());
        }
        log.remove_segments(&removable)?;
        for segment in removable {
            self.segment_epochs.remove(&segment);
        }
        Ok(())
    }
}
