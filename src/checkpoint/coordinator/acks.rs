//! The completion rule: when is an epoch complete? A pure state machine, with no
//! threads, channels or I/O, so its tests can enumerate every order of
//! acknowledgements (and the loom model `ack_race` drives it from several threads).

use std::collections::BTreeMap;

/// Decides when epochs are complete: exactly once, only after every participant
/// acknowledged (or had already finished: a participant that reached end-of-stream
/// counts as having acknowledged every epoch it never saw), in epoch order.
#[derive(Debug, Clone)]
pub struct AckTracker {
    participants: usize,
    last_complete: u64,
    pending: BTreeMap<u64, Vec<bool>>,
    finished: Vec<bool>,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// Recorded; the epoch still waits for others.
    Pending,
    /// This acknowledgement completed these epochs (oldest first; normally just one).
    Completed(Vec<u64>),
    /// Ignored: the epoch is already complete, or this participant already acknowledged
    /// it, or the participant is unknown or finished.
    Ignored,
}

impl AckTracker {
    /// A tracker for `participants` participants whose last complete epoch is
    /// `last_complete` (0 if none).
    pub fn new(participants: usize, last_complete: u64) -> Self {
        AckTracker {
            participants,
            last_complete,
            pending: BTreeMap::new(),
            finished: vec![false; participants],
        }
    }

    /// The newest complete epoch (0 if none).
    pub fn last_complete(&self) -> u64 {
        self.last_complete
    }

    /// `true` once every participant finished.
    pub fn all_finished(&self) -> bool {
        self.finished.iter().all(|finished| *finished)
    }

    /// `true` if `participant` finished.
    pub fn is_finished(&self, participant: usize) -> bool {
        self.finished.get(participant).copied().unwrap_or(false)
    }

    /// Registers a started epoch, so it can complete even if no participant is left to
    /// acknowledge it (all finished).
    pub fn open(&mut self, epoch: u64) -> AckOutcome {
        if epoch <= self.last_complete {
            return AckOutcome::Ignored;
        }
        let participants = self.participants;
        self.pending
            .entry(epoch)
            .or_insert_with(|| vec![false; participants]);
        self.complete_ready()
    }

    /// Records that `participant` acknowledged `epoch`.
    pub fn ack(&mut self, epoch: u64, participant: usize) -> AckOutcome {
        if epoch <= self.last_complete
            || participant >= self.participants
            || self.finished[participant]
        {
            return AckOutcome::Ignored;
        }
        let participants = self.participants;
        let acked = self
            .pending
            .entry(epoch)
            .or_insert_with(|| vec![false; participants]);
        if acked[participant] {
            return AckOutcome::Ignored;
        }
        acked[participant] = true;
        self.complete_ready()
    }

    /// Records that `participant` reached end-of-stream after its last acknowledgement:
    /// it acknowledges nothing more, and no epoch waits for it.
    pub fn finish(&mut self, participant: usize) -> AckOutcome {
        if participant >= self.participants || self.finished[participant] {
            return AckOutcome::Ignored;
        }
        self.finished[participant] = true;
        self.complete_ready()
    }

    /// Completes, in order, every oldest epoch that every participant acknowledged or
    /// finished before.
    fn complete_ready(&mut self) -> AckOutcome {
        let mut completed = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            let done = entry
                .get()
                .iter()
                .zip(&self.finished)
                .all(|(acked, finished)| *acked || *finished);
            if !done {
                break;
            }
            let epoch = *entry.key();
            entry.remove();
            self.last_complete = epoch;
            completed.push(epoch);
        }
        if completed.is_empty() {
            AckOutcome::Pending
        } else {
            AckOutcome::Completed(completed)
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn completes_once_after_every_participant() {
        let mut tracker = AckTracker::new(3, 0);
        assert_eq!(tracker.ack(1, 0), AckOutcome::Pending);
        assert_eq!(tracker.ack(1, 0), AckOutcome::Ignored, "duplicate");
        assert_eq!(tracker.ack(1, 2), AckOutcome::Pending);
        assert_eq!(tracker.ack(1, 1), AckOutcome::Completed(vec![1]));
        assert_eq!(tracker.ack(1, 1), AckOutcome::Ignored, "already complete");
        assert_eq!(tracker.last_complete(), 1);
    }

    #[test]
    fn a_newer_epoch_waits_for_the_older_one() {
        let mut tracker = AckTracker::new(2, 0);
        assert_eq!(tracker.ack(1, 0), AckOutcome::Pending);
        assert_eq!(tracker.ack(2, 0), AckOutcome::Pending);
        assert_eq!(tracker.ack(2, 1), AckOutcome::Pending, "epoch 1 still open");
        assert_eq!(tracker.ack(1, 1), AckOutcome::Completed(vec![1, 2]));
    }

    #[test]
    fn unknown_participants_and_old_epochs_are_ignored() {
        let mut tracker = AckTracker::new(1, 5);
        assert_eq!(tracker.ack(5, 0), AckOutcome::Ignored);
        assert_eq!(tracker.ack(6, 1), AckOutcome::Ignored);
        assert_eq!(tracker.ack(6, 0), AckOutcome::Completed(vec![6]));
    }

    #[test]
    fn every_order_of_acks_completes_each_epoch_exactly_once() {
        // All interleavings of 3 participants × 2 epochs where each participant acks
        // its epochs in order (as markers guarantee).
        fn orders(
            remaining: &mut [u64; 3],
            prefix: &mut Vec<(u64, usize)>,
            out: &mut Vec<Vec<(u64, usize)>>,
        ) {
            if remaining.iter().all(|next| *next > 2) {
                out.push(prefix.clone());
                return;
            }
            for participant in 0..3 {
                if remaining[participant] <= 2 {
                    let epoch = remaining[participant];
                    remaining[participant] += 1;
                    prefix.push((epoch, participant));
                    orders(remaining, prefix, out);
                    prefix.pop();
                    remaining[participant] -= 1;
                }
            }
        }
        let mut all = Vec::new();
        orders(&mut [1, 1, 1], &mut Vec::new(), &mut all);
        assert_eq!(all.len(), 90);
        for order in all {
            let mut tracker = AckTracker::new(3, 0);
            let mut completed = Vec::new();
            for (i, (epoch, participant)) in order.iter().enumerate() {
                if let AckOutcome::Completed(epochs) = tracker.ack(*epoch, *participant) {
                    for epoch in epochs {
                        // Complete only after all three acknowledged it.
                        let acks = order[..=i].iter().filter(|(e, _)| *e == epoch).count();
                        assert_eq!(acks, 3, "{order:?}");
                        completed.push(epoch);
                    }
                }
            }
            assert_eq!(completed, vec![1, 2], "{order:?}");
        }
    }
}
