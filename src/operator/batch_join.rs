//! Spark Streaming's joins of two keyed streams *per batch*: `join`, `leftOuterJoin`,
//! `rightOuterJoin`, `fullOuterJoin` and `cogroup` of two pair DStreams, as one operator,
//! [`BatchJoin`], whose [`BatchJoinKind`] says what it emits for a key.
//!
//! The builder methods are
//! [`KeyedStream::join_per_batch`](crate::KeyedStream::join_per_batch),
//! [`left_outer_join_per_batch`](crate::KeyedStream::left_outer_join_per_batch),
//! [`right_outer_join_per_batch`](crate::KeyedStream::right_outer_join_per_batch),
//! [`full_outer_join_per_batch`](crate::KeyedStream::full_outer_join_per_batch) and
//! [`cogroup_per_batch`](crate::KeyedStream::cogroup_per_batch).
//!
//! # Semantics
//!
//! Within one epoch (a micro-batch, or a continuous epoch of one checkpoint interval),
//! every left value of a key meets every right value of that key; nothing carries over
//! to the next epoch. The operator buffers the epoch's values per key and emits at the
//! epoch's marker, before the marker is forwarded, so a result row belongs to the epoch
//! of its inputs downstream too (a sink commits it with that epoch). At end of stream the
//! last, unfinished epoch is emitted the same way. What a key emits:
//!
//! | kind | Spark Streaming | per key with left values `ls` and right values `rs` |
//! |---|---|---|
//! | [`Inner`] | `join` | `(k, (l, r))` for every `l` in `ls`, `r` in `rs` |
//! | [`LeftOuter`] | `leftOuterJoin` | as `Inner`; if `rs` is empty, `(k, (l, None))` per `l` |
//! | [`RightOuter`] | `rightOuterJoin` | as `Inner`; if `ls` is empty, `(k, (None, r))` per `r` |
//! | [`FullOuter`] | `fullOuterJoin` | both of the above |
//! | [`Cogroup`] | `cogroup` | one `(k, (ls, rs))` per key present on either side |
//!
//! Values keep their arrival order within a side (left values in the outer loop); keys
//! come out in no particular order. Rows are final when emitted, whatever the query's
//! [`OutputMode`](crate::OutputMode) (Spark Streaming has none), so the operator counts
//! as a transformation for the output-mode rules.
//!
//! # Continuous epochs
//!
//! In a continuous epoch the "batch" is the checkpoint interval: records still flow
//! through the rest of the query one at a time, but the join holds them until the
//! epoch's marker, so its output lags its input by up to one interval. That is the price
//! of per-batch semantics; a join whose rows come out per record is a stream–stream join.
//!
//! # State and checkpoints
//!
//! The buffers are the epoch's state, but they are emptied at every marker before the
//! snapshot is taken (and at the end before the final one), so a checkpoint holds
//! nothing for this operator: what restores an interrupted epoch is the sources'
//! replay. Which records an epoch holds depends on the checkpoint mode:
//!
//! * **Micro-batch**, and **continuous with
//!   [`CheckpointMode::Aligned`](crate::checkpoint::CheckpointMode::Aligned)**: the
//!   operator's epoch *e* holds exactly the records its sources emitted in epoch *e*
//!   (batches run one after another; alignment holds back an input that delivered the
//!   marker until every input did). A replayed micro-batch holds the same records and
//!   joins to the same rows.
//! * **Continuous, at-least-once** (the default,
//!   [`CheckpointMode::AtLeastOnce`](crate::checkpoint::CheckpointMode::AtLeastOnce)): an
//!   input that delivered marker *e* keeps being read while another has not, so records
//!   the sources sent after marker *e* can join in the operator's epoch *e*, together
//!   with the epoch before them. After a crash that restores epoch *e*, they are replayed
//!   and join again in a later epoch: a row can be emitted twice, and a record's partners
//!   are those of its neighbouring epochs too. Without a crash every record is in exactly
//!   one of the operator's epochs.
//!
//! # Windows
//!
//! Spark Streaming's `windowedStream1.join(windowedStream2)` joins two windowed streams
//! per batch. In micro-batch mode the processing-time windows of
//! [`dstream`](crate::stream) emit each window at the end of the batch of its last slot,
//! so two streams windowed alike (same length and slide), flattened back into keyed
//! records and joined per batch, join window with window. In continuous mode the windows
//! come out by a timer, not at a marker, and the two sides' windows may fall into
//! different epochs.
//!
//! ```
//! use rivulet::operator::batch_join::{BatchJoin, Inner};
//! use rivulet::operator::{Either, Harness, TwoInput};
//!
//! let mut join = Harness::new(TwoInput::new(BatchJoin::<u32, &str, u64, _>::new(Inner)));
//! join.push(Either::Left((1, "a")));
//! join.push(Either::Right((1, 10)));
//! join.push(Either::Left((1, "b")));
//! join.push(Either::Right((2, 20))); // no left value of key 2 in this epoch
//! assert!(join.take_output().is_empty(), "nothing before the epoch ends");
//! join.end_epoch();
//! let mut rows = join.take_output();
//! rows.sort();
//! assert_eq!(rows, [(1, ("a", 10)), (1, ("b", 10))]);
//! join.push(Either::Left((2, "c")));
//! join.end_epoch();
//! assert!(join.take_output().is_empty(), "key 2's right value was in the epoch before");
//! ```

use super::{Collector, Context, TwoInputOperator};
use crate::error::BoxError;
use crate::event::Epoch;
use rustc_hash::FxHashMap;
use std::fmt;
use std::hash::Hash;

/// What a [`BatchJoin`] emits for one key at the end of an epoch, from the key's left
/// and right values in that epoch (at least one of them non-empty).
pub trait BatchJoinKind<K, L, R>: Clone + Send + 'static {
    /// The rows emitted.
    type Out;

    /// Emits the rows of `key`, whose values in the epoch were `left` and `right` (in
    /// arrival order).
    fn emit<C: Collector<Self::Out>>(&mut self, key: K, left: Vec<L>, right: Vec<R>, out: &mut C);
}

/// Spark Streaming's `join`: `(k, (l, r))` for every pair of a key's left and right
/// values.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inner;

/// Spark Streaming's `leftOuterJoin`: [`Inner`]'s rows, and `(k, (l, None))` for the left
/// values of a key without right values.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeftOuter;

/// Spark Streaming's `rightOuterJoin`: [`Inner`]'s rows, and `(k, (None, r))` for the
/// right values of a key without left values.
#[derive(Debug, Clone, Copy, Default)]
pub struct RightOuter;

/// Spark Streaming's `fullOuterJoin`: [`LeftOuter`]'s and [`RightOuter`]'s rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct FullOuter;

/// Spark Streaming's `cogroup`: one `(k, (left values, right values))` per key present on
/// either side.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cogroup;

/// Every pair of `left` and `right`, left values in the outer loop, through `row`. Each
/// left value moves into its last pair and is cloned for the others.
#[inline]
fn pairs<K, L, R, O, C>(key: &K, left: Vec<L>, right: &[R], out: &mut C, row: impl Fn(K, L, R) -> O)
where
    K: Clone,
    L: Clone,
    R: Clone,
    C: Collector<O>,
{
    for l in left {
        if let Some((last, rest)) = right.split_last() {
            for r in rest {
                out.push(row(key.clone(), l.clone(), r.clone()));
            }
            out.push(row(key.clone(), l, last.clone()));
        }
    }
}

impl<K, L, R> BatchJoinKind<K, L, R> for Inner
where
    K: Clone,
    L: Clone,
    R: Clone,
{
    type Out = (K, (L, R));

    #[inline]
    fn emit<C: Collector<Self::Out>>(&mut self, key: K, left: Vec<L>, right: Vec<R>, out: &mut C) {
        pairs(&key, left, &right, out, |k, l, r| (k, (l, r)));
    }
}

impl<K, L, R> BatchJoinKind<K, L, R> for LeftOuter
where
    K: Clone,
    L: Clone,
    R: Clone,
{
    type Out = (K, (L, Option<R>));

    #[inline]
    fn emit<C: Collector<Self::Out>>(&mut self, key: K, left: Vec<L>, right: Vec<R>, out: &mut C) {
        if right.is_empty() {
            for l in left {
                out.push((key.clone(), (l, None)));
            }
        } else {
            pairs(&key, left, &right, out, |k, l, r| (k, (l, Some(r))));
        }
    }
}

impl<K, L, R> BatchJoinKind<K, L, R> for RightOuter
where
    K: Clone,
    L: Clone,
    R: Clone,
{
    type Out = (K, (Option<L>, R));

    #[inline]
    fn emit<C: Collector<Self::Out>>(&mut self, key: K, left: Vec<L>, right: Vec<R>, out: &mut C) {
        if left.is_empty() {
            for r in right {
                out.push((key.clone(), (None, r)));
            }
        } else {
            pairs(&key, left, &right, out, |k, l, r| (k, (Some(l), r)));
        }
    }
}

impl<K, L, R> BatchJoinKind<K, L, R> for FullOuter
where
    K: Clone,
    L: Clone,
    R: Clone,
{
    type Out = (K, (Option<L>, Option<R>));

    #[inline]
    fn emit<C: Collector<Self::Out>>(&mut self, key: K, left: Vec<L>, right: Vec<R>, out: &mut C) {
        if right.is_empty() {
            for l in left {
                out.push((key.clone(), (Some(l), None)));
            }
        } else if left.is_empty() {
            for r in right {
                out.push((key.clone(), (None, Some(r))));
            }
        } else {
            pairs(&key, left, &right, out, |k, l, r| (k, (Some(l), Some(r))));
        }
    }
}

impl<K, L, R> BatchJoinKind<K, L, R> for Cogroup {
    type Out = (K, (Vec<L>, Vec<R>));

    #[inline]
    fn emit<C: Collector<Self::Out>>(&mut self, key: K, left: Vec<L>, right: Vec<R>, out: &mut C) {
        out.push((key, (left, right)));
    }
}

/// Joins the `(key, value)` records of its two inputs per epoch, emitting at each marker
/// what its [`BatchJoinKind`] makes of each key's values. See the [module docs](self).
///
/// Run it on two [`KeyedStream`](crate::KeyedStream)s connected by key (the builder
/// methods do), so that each key's records of both sides meet on one instance.
pub struct BatchJoin<K, L, R, J> {
    /// The epoch's values per key: left, right.
    buffers: FxHashMap<K, (Vec<L>, Vec<R>)>,
    kind: J,
}

impl<K, L, R, J> BatchJoin<K, L, R, J> {
    /// A per-batch join emitting what `kind` makes of each key's values.
    pub fn new(kind: J) -> Self {
        BatchJoin {
            buffers: FxHashMap::default(),
            kind,
        }
    }

    /// Number of keys with values in the current epoch.
    pub fn buffered_keys(&self) -> usize {
        self.buffers.len()
    }
}

/// A clone is a join of the same kind with empty buffers: instances are cloned from the
/// builder's operator before any record arrives, and values never cross an epoch.
impl<K, L, R, J: Clone> Clone for BatchJoin<K, L, R, J> {
    fn clone(&self) -> Self {
        BatchJoin::new(self.kind.clone())
    }
}

impl<K, L, R, J: fmt::Debug> fmt::Debug for BatchJoin<K, L, R, J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchJoin")
            .field("kind", &self.kind)
            .field("buffered_keys", &self.buffers.len())
            .finish()
    }
}

impl<K, L, R, J> BatchJoin<K, L, R, J>
where
    K: Hash + Eq,
    J: BatchJoinKind<K, L, R>,
{
    /// Emits the epoch's rows and empties the buffers (keeping the table's capacity).
    fn emit_epoch<C: Collector<J::Out>>(&mut self, out: &mut C) {
        let kind = &mut self.kind;
        for (key, (left, right)) in self.buffers.drain() {
            kind.emit(key, left, right, out);
        }
    }
}

impl<K, L, R, J> TwoInputOperator<(K, L), (K, R)> for BatchJoin<K, L, R, J>
where
    K: Hash + Eq + Send + 'static,
    L: Send + 'static,
    R: Send + 'static,
    J: BatchJoinKind<K, L, R>,
{
    type Out = J::Out;
    type Key = ();
    type Side = ();

    #[inline]
    fn on_left<C: Context<J::Out>>(&mut self, (key, value): (K, L), _ctx: &mut C) {
        self.buffers.entry(key).or_default().0.push(value);
    }

    #[inline]
    fn on_right<C: Context<J::Out>>(&mut self, (key, value): (K, R), _ctx: &mut C) {
        self.buffers.entry(key).or_default().1.push(value);
    }

    fn on_marker<C: Context<J::Out>>(&mut self, _epoch: Epoch, ctx: &mut C) {
        self.emit_epoch(ctx);
    }

    fn on_end<C: Context<J::Out>>(&mut self, ctx: &mut C) {
        self.emit_epoch(ctx);
    }

    /// Nothing to save: the buffers were emptied by the marker (or the end) that asks for
    /// the snapshot.
    fn snapshot(&self) -> Result<Option<Vec<u8>>, BoxError> {
        debug_assert!(self.buffers.is_empty(), "a snapshot between markers");
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::{Either, Harness, TwoInput};

    /// A record of either input.
    type Input = Either<(u8, char), (u8, u32)>;

    fn run<J>(kind: J, epochs: &[Vec<Input>]) -> Vec<Vec<J::Out>>
    where
        J: BatchJoinKind<u8, char, u32>,
        J::Out: Ord + Send + 'static,
    {
        let mut harness = Harness::new(TwoInput::new(BatchJoin::new(kind)));
        epochs
            .iter()
            .map(|records| {
                for record in records {
                    harness.push(*record);
                }
                harness.end_epoch();
                let mut rows = harness.take_output();
                rows.sort();
                rows
            })
            .collect()
    }

    fn epochs() -> Vec<Vec<Input>> {
        use Either::{Left, Right};
        vec![
            vec![
                Left((1, 'a')),
                Right((1, 10)),
                Left((1, 'b')),
                Right((1, 11)),
                Left((2, 'c')),
                Right((3, 30)),
            ],
            // Key 1's values of epoch 1 are gone; key 3 has a left value only now.
            vec![Left((3, 'd')), Right((1, 12))],
            vec![],
        ]
    }

    #[test]
    fn each_kind_joins_within_an_epoch_only() {
        assert_eq!(
            run(Inner, &epochs()),
            vec![
                vec![
                    (1, ('a', 10)),
                    (1, ('a', 11)),
                    (1, ('b', 10)),
                    (1, ('b', 11))
                ],
                vec![],
                vec![],
            ]
        );
        assert_eq!(
            run(LeftOuter, &epochs()),
            vec![
                vec![
                    (1, ('a', Some(10))),
                    (1, ('a', Some(11))),
                    (1, ('b', Some(10))),
                    (1, ('b', Some(11))),
                    (2, ('c', None)),
                ],
                vec![(3, ('d', None))],
                vec![],
            ]
        );
        assert_eq!(
            run(RightOuter, &epochs()),
            vec![
                vec![
                    (1, (Some('a'), 10)),
                    (1, (Some('a'), 11)),
                    (1, (Some('b'), 10)),
                    (1, (Some('b'), 11)),
                    (3, (None, 30)),
                ],
                vec![(1, (None, 12))],
                vec![],
            ]
        );
        assert_eq!(
            run(FullOuter, &epochs())[1],
            vec![(1, (None, Some(12))), (3, (Some('d'), None))]
        );
        assert_eq!(
            run(Cogroup, &epochs()),
            vec![
                vec![
                    (1, (vec!['a', 'b'], vec![10, 11])),
                    (2, (vec!['c'], vec![])),
                    (3, (vec![], vec![30])),
                ],
                vec![(1, (vec![], vec![12])), (3, (vec!['d'], vec![]))],
                vec![],
            ]
        );
    }

    #[test]
    fn the_end_emits_the_last_epoch_and_snapshots_are_empty() {
        let mut harness = Harness::new(TwoInput::new(BatchJoin::new(Inner)));
        harness.push(Either::Left((7u8, 'x')));
        harness.push(Either::Right((7u8, 1u32)));
        assert_eq!(harness.operator().get_ref().buffered_keys(), 1);
        harness.end();
        assert_eq!(harness.take_output(), vec![(7, ('x', 1))]);
        assert_eq!(harness.operator().get_ref().buffered_keys(), 0);
        assert!(harness.snapshot().unwrap().is_none());
    }
}
