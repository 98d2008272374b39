//! [`ReloadableTable`]: a static table whose new versions take effect at an epoch
//! boundary, the same one on every instance of a join ([`ReloadView`]).
//!
//! A reload only publishes the new version. Each join instance looks at the published
//! version when an epoch marker passes it (never per record), under a lock shared by the
//! join's instances, in a [`Schedule`] that decides from which epoch on the version
//! applies:
//!
//! * `M` is the newest marker any instance of the join has passed. Instances that passed
//!   it run epoch `M + 1` with the version they had; none has passed marker `M + 1`.
//! * The first instance to see a new version, at marker `e`, schedules it after marker
//!   `e` if `e > M` (it is the first past `e`: nobody runs epoch `e + 1` yet), else after
//!   marker `M + 1`.
//! * At marker `e` an instance takes the newest version scheduled after a marker `≤ e`.
//!
//! So every instance runs epoch `e + 1` with the same version, whatever the order in
//! which they pass their markers and whenever the reload happens.

use super::source::{JoinTable, TableSource};
use super::StaticTable;
use crate::event::Epoch;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// A table that can be replaced while queries that join with it run: a new version
/// ([`reload`](Self::reload)) takes effect at the next epoch boundary every instance of a
/// join can still agree on, and every record of one epoch is joined with one version.
///
/// Clone the handle to reload from another thread; every clone is the same table. A join
/// picks the version up when an epoch marker passes it, so a query without epochs (a
/// continuous query with neither a trigger nor a checkpoint) keeps the version it started
/// with. The table is not part of a checkpoint: a restarted query (including its
/// replayed epoch) joins with the version published when it runs.
///
/// Spark re-reads a static DataFrame's source for every micro-batch (a Delta table
/// updated between batches is seen by the next one); this is the same contract, made
/// explicit and extended to continuous epochs.
///
/// ```
/// use rivulet::table::{ReloadableTable, StaticTable};
///
/// let prices = ReloadableTable::new(StaticTable::from_pairs([("tea", 3)]));
/// assert_eq!(prices.version(), 0);
/// let handle = prices.clone();
/// assert_eq!(handle.reload(StaticTable::from_pairs([("tea", 4)])), 1);
/// assert_eq!(prices.current().get("tea"), [4]);
/// ```
pub struct ReloadableTable<K, V> {
    published: Arc<Mutex<Published<K, V>>>,
}

struct Published<K, V> {
    version: u64,
    table: StaticTable<K, V>,
}

impl<K, V> Clone for ReloadableTable<K, V> {
    fn clone(&self) -> Self {
        ReloadableTable {
            published: self.published.clone(),
        }
    }
}

impl<K, V> fmt::Debug for ReloadableTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let published = lock(&self.published);
        f.debug_struct("ReloadableTable")
            .field("version", &published.version)
            .field("table", &published.table)
            .finish()
    }
}

/// Locks `mutex`; a panic elsewhere while it was held leaves consistent data here (every
/// update is a single assignment or push), so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<K, V> ReloadableTable<K, V> {
    /// A reloadable table whose first version (version 0) is `table`.
    pub fn new(table: StaticTable<K, V>) -> Self {
        ReloadableTable {
            published: Arc::new(Mutex::new(Published { version: 0, table })),
        }
    }

    /// Publishes `table` as the next version and returns its number. Running joins take
    /// it at their next agreed epoch boundary (see the type's docs); joins built later
    /// start with it.
    pub fn reload(&self, table: StaticTable<K, V>) -> u64 {
        let mut published = lock(&self.published);
        published.version += 1;
        published.table = table;
        published.version
    }

    /// The newest version's number (0 for the first).
    pub fn version(&self) -> u64 {
        lock(&self.published).version
    }

    /// The newest version.
    pub fn current(&self) -> StaticTable<K, V> {
        lock(&self.published).table.clone()
    }

    fn snapshot(&self) -> (u64, StaticTable<K, V>) {
        let published = lock(&self.published);
        (published.version, published.table.clone())
    }
}

impl<K, V> JoinTable for ReloadableTable<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    type Key = K;
    type Row = V;
    type Source = ReloadView<K, V>;

    fn join_source(&self, parallelism: usize) -> ReloadView<K, V> {
        let (version, table) = self.snapshot();
        ReloadView {
            table: self.clone(),
            schedule: Arc::new(Mutex::new(Schedule::new(
                parallelism,
                version,
                table.clone(),
            ))),
            current: table,
            slot: None,
        }
    }
}

/// One join's view of a [`ReloadableTable`], held by each of its instances: the version
/// the instance joins with, switched at epoch markers as the join's shared schedule says
/// (see the module docs of `table::reload`).
pub struct ReloadView<K, V> {
    table: ReloadableTable<K, V>,
    schedule: Arc<Mutex<Schedule<StaticTable<K, V>>>>,
    current: StaticTable<K, V>,
    /// The instance's place in the schedule, taken at its first marker.
    slot: Option<usize>,
}

impl<K, V> Clone for ReloadView<K, V> {
    fn clone(&self) -> Self {
        ReloadView {
            table: self.table.clone(),
            schedule: self.schedule.clone(),
            current: self.current.clone(),
            slot: None,
        }
    }
}

impl<K, V> fmt::Debug for ReloadView<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadView")
            .field("current", &self.current)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl<K, V> TableSource for ReloadView<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    type Key = K;
    type Row = V;

    #[inline(always)]
    fn table(&self) -> &StaticTable<K, V> {
        &self.current
    }

    fn on_marker(&mut self, epoch: Epoch) {
        let mut schedule = lock(&self.schedule);
        let slot = *self.slot.get_or_insert_with(|| schedule.join());
        let (version, table) = self.table.snapshot();
        if schedule.is_newer(version) {
            schedule.publish(epoch.0, version, table);
        }
        self.current = schedule.passed(slot, epoch.0).clone();
    }
}

/// The version schedule of one join, shared by its instances: which version applies
/// after which marker. Pure bookkeeping, unit-tested on its own.
#[derive(Debug)]
struct Schedule<T> {
    /// `(after, version, table)`: `table` applies to the epochs after marker `after`;
    /// `after` never decreases. The first entry (after 0) is the version the join was
    /// built with.
    versions: Vec<(u64, u64, T)>,
    /// The newest marker any instance passed.
    newest_marker: Option<u64>,
    /// The newest marker each instance passed (by slot), for dropping versions no
    /// instance can take any more.
    passed: Vec<Option<u64>>,
    /// Instances of the join.
    instances: usize,
}

impl<T> Schedule<T> {
    fn new(instances: usize, version: u64, table: T) -> Self {
        Schedule {
            versions: vec![(0, version, table)],
            newest_marker: None,
            passed: Vec::new(),
            instances: instances.max(1),
        }
    }

    /// A new instance's slot.
    fn join(&mut self) -> usize {
        self.passed.push(None);
        self.passed.len() - 1
    }

    /// Whether version `published` is newer than every version scheduled.
    fn is_newer(&self, published: u64) -> bool {
        self.versions
            .last()
            .is_none_or(|(_, version, _)| published > *version)
    }

    /// Schedules `table` (version `version`), first seen at marker `epoch`.
    fn publish(&mut self, epoch: u64, version: u64, table: T) {
        let after = match self.newest_marker {
            Some(newest) if epoch <= newest => newest + 1,
            _ => epoch,
        };
        self.versions.push((after, version, table));
    }

    /// Instance `slot` passed marker `epoch`: the version for the epoch after it.
    fn passed(&mut self, slot: usize, epoch: u64) -> &T {
        self.newest_marker = Some(self.newest_marker.map_or(epoch, |m| m.max(epoch)));
        self.passed[slot] = Some(epoch);
        // Versions every instance has moved past can go (once every instance has a slot).
        if self.passed.len() >= self.instances {
            if let Some(oldest) = self.passed.iter().copied().min().flatten() {
                let current = self.position(oldest);
                self.versions.drain(..current);
            }
        }
        let at = self.position(epoch);
        &self.versions[at].2
    }

    /// The entry that applies after marker `epoch`.
    fn position(&self, epoch: u64) -> usize {
        self.versions
            .iter()
            .rposition(|(after, _, _)| *after <= epoch)
            .unwrap_or(0)
    }

    #[cfg(test)]
    fn version_numbers(&self) -> Vec<u64> {
        self.versions
            .iter()
            .map(|(_, version, _)| *version)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instance `slot` passes marker `epoch`, seeing version `published`; returns the
    /// version it runs the next epoch with.
    fn step(schedule: &mut Schedule<u64>, slot: usize, epoch: u64, published: u64) -> u64 {
        if schedule.is_newer(published) {
            schedule.publish(epoch, published, published);
        }
        *schedule.passed(slot, epoch)
    }

    #[test]
    fn a_reload_seen_first_by_the_leader_applies_after_its_marker() {
        let mut schedule = Schedule::new(2, 0, 0u64);
        let (a, b) = (schedule.join(), schedule.join());
        assert_eq!(step(&mut schedule, a, 1, 0), 0);
        // Reloaded; `a` is the first past marker 2: epoch 3 gets the new version.
        assert_eq!(step(&mut schedule, a, 2, 1), 1);
        assert_eq!(
            step(&mut schedule, b, 1, 1),
            0,
            "b still finishes epoch 2 on v0"
        );
        assert_eq!(step(&mut schedule, b, 2, 1), 1);
    }

    #[test]
    fn a_reload_seen_first_by_a_straggler_waits_for_the_next_marker() {
        let mut schedule = Schedule::new(2, 0, 0u64);
        let (a, b) = (schedule.join(), schedule.join());
        // `a` ran ahead to epoch 4 on v0; the reload comes; `b` sees it at marker 2.
        for epoch in 1..=3 {
            assert_eq!(step(&mut schedule, a, epoch, 0), 0);
        }
        assert_eq!(step(&mut schedule, b, 2, 1), 0);
        assert_eq!(step(&mut schedule, b, 3, 1), 0, "a runs epoch 4 on v0");
        assert_eq!(step(&mut schedule, b, 4, 1), 1);
        assert_eq!(step(&mut schedule, a, 4, 1), 1);
    }

    #[test]
    fn versions_no_instance_can_take_are_dropped() {
        let mut schedule = Schedule::new(2, 0, 0u64);
        let (a, b) = (schedule.join(), schedule.join());
        for version in 1..=5 {
            let epoch = version;
            assert_eq!(step(&mut schedule, a, epoch, version), version);
            assert_eq!(step(&mut schedule, b, epoch, version), version);
        }
        assert_eq!(schedule.version_numbers(), [5]);
        // Two reloads between markers: only the newest is scheduled.
        assert_eq!(step(&mut schedule, a, 6, 7), 7);
        assert_eq!(step(&mut schedule, b, 6, 7), 7);
        assert_eq!(schedule.version_numbers(), [7]);
    }
}
