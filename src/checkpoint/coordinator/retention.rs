//! Which log segments to keep: pure decisions over epoch numbers, applied by the
//! coordinator after each completed epoch (see `Coordinator::remove_old_segments`).
//!
//! The coordinator keeps the last `retain` complete epochs (at least one). When the
//! newest one had sink commits it keeps one more: the newest epoch's `COMMIT` entry is
//! not synced on its own (the next epoch's sync covers it), and if a power loss takes
//! it, recovery falls back to the complete epoch before the newest and replays the
//! newest. A segment can go once the newest epoch with an entry in it is older than the
//! oldest epoch kept; the segment being written never goes.

use std::collections::{BTreeMap, VecDeque};

/// Drops the oldest epochs from `completed` (complete epochs, oldest first) until the
/// ones to keep are left: `retain` of them (at least one), one more if
/// `newest_needed_commit`. Returns the oldest epoch kept, `None` if there is none.
pub(super) fn keep_newest(
    completed: &mut VecDeque<u64>,
    retain: usize,
    newest_needed_commit: bool,
) -> Option<u64> {
    let retain = retain.max(1) + usize::from(newest_needed_commit);
    while completed.len() > retain {
        completed.pop_front();
    }
    completed.front().copied()
}

/// The segments that can be removed, in order: every one but `current` whose newest
/// epoch (in `segment_epochs`: segment → newest epoch with an entry in it, 0 for
/// metadata only) is older than `oldest_kept`.
pub(super) fn removable_segments(
    segment_epochs: &BTreeMap<u64, u64>,
    current: u64,
    oldest_kept: u64,
) -> Vec<u64> {
    segment_epochs
        .iter()
        .filter(|(segment, newest)| **segment != current && **newest < oldest_kept)
        .map(|(segment, _)| *segment)
        .collect()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_retain_epochs_and_at_least_one() {
        let mut completed = VecDeque::from([1, 2, 3, 4]);
        assert_eq!(keep_newest(&mut completed, 2, false), Some(3));
        assert_eq!(completed, [3, 4]);
        assert_eq!(
            keep_newest(&mut completed, 0, false),
            Some(4),
            "retain 0 keeps one"
        );
        assert_eq!(completed, [4]);
        assert_eq!(keep_newest(&mut VecDeque::new(), 3, true), None);
    }

    #[test]
    fn a_newest_epoch_with_commits_keeps_one_more() {
        let mut completed = VecDeque::from([1, 2, 3, 4]);
        assert_eq!(keep_newest(&mut completed, 1, true), Some(3));
        assert_eq!(completed, [3, 4]);
        // Fewer epochs than the window: nothing dropped.
        let mut completed = VecDeque::from([7]);
        assert_eq!(keep_newest(&mut completed, 1, true), Some(7));
        assert_eq!(completed, [7]);
    }

    #[test]
    fn removes_segments_older_than_the_oldest_kept_epoch_but_never_the_current_one() {
        // segment → newest epoch with an entry in it (0: metadata only).
        let segments = BTreeMap::from([(1, 0), (2, 3), (3, 4), (4, 5), (5, 2)]);
        assert_eq!(removable_segments(&segments, 5, 4), [1, 2]);
        // A segment whose newest epoch is the oldest kept stays.
        assert_eq!(removable_segments(&segments, 5, 5), [1, 2, 3]);
        // The segment being written stays whatever it holds.
        assert_eq!(removable_segments(&segments, 1, 6), [2, 3, 4, 5]);
        assert!(removable_segments(&segments, 5, 0).is_empty());
    }
}
