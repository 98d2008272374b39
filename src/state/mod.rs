//! Keyed state with expiry, and the operators built on it.
//!
//! * [`KeyedState`]: values per key (an `FxHashMap`), the keys changed in the current
//!   epoch (what update mode emits), an optional [`Expiry`] per key through the
//!   operator's [timers](crate::operator::timer), and snapshot/restore with the checkpoint
//!   codec. Users' own operators and rivulet's stateful operators keep their per-key state
//!   in it; its docs show a user operator that forgets idle keys.
//! * [`FlatMapGroupsWithState`]: Structured Streaming's arbitrary stateful processing,
//!   [`KeyedStream::map_groups_with_state`](crate::KeyedStream::map_groups_with_state)
//!   and [`flat_map_groups_with_state`](crate::KeyedStream::flat_map_groups_with_state):
//!   a user function per group with a [`GroupState`] handle and
//!   [`GroupStateTimeout`]s.
//! * [`DropDuplicates`]: Spark's streaming `dropDuplicates` (and
//!   `dropDuplicatesWithinWatermark`),
//!   [`KeyedStream::drop_duplicates`](crate::KeyedStream::drop_duplicates): the first
//!   record per key, keys evicted by the watermark.
//! * [`UpdateStateByKey`]: Spark Streaming's `updateStateByKey`,
//!   [`KeyedStream::update_state_by_key`](crate::KeyedStream::update_state_by_key).
//!
//! State is a serde value: each operator's [`snapshot`](crate::operator::Operator::snapshot)
//! encodes its `KeyedState`, and the stage saves the pending timers beside it, so after a
//! restart the same timeouts fire, once.
//!
//! ```
//! use rivulet::state::GroupStateTimeout;
//! use rivulet::{OutputMode, Query};
//!
//! // A running count per user, emitted after each of the user's events.
//! let mut query = Query::builder();
//! query.output_mode(OutputMode::Update);
//! let counts = query
//!     .from_iter("clicks", ["ann", "bob", "ann"])
//!     .key_by(|user| user.to_string())
//!     .map_groups_with_state(GroupStateTimeout::NoTimeout, |user: &String, clicks, state| {
//!         let count = state.get_option().copied().unwrap_or(0u64) + clicks.len() as u64;
//!         state.update(count);
//!         (user.clone(), count)
//!     })
//!     .to_memory("counts");
//! query.start()?.await_termination()?;
//! let rows = counts.rows();
//! assert_eq!(rows.last(), Some(&("ann".to_string(), 2)));
//! # Ok::<(), rivulet::Error>(())
//! ```

mod dedup;
mod group;
mod keyed;
mod map_groups;
mod update;

pub use dedup::{DropDuplicates, NoEventTime};
pub use group::{GroupState, GroupStateError, GroupStateTimeout, Values};
pub use keyed::{Expiry, KeyedState};
pub use map_groups::FlatMapGroupsWithState;
pub use update::UpdateStateByKey;

#[cfg(test)]
mod tests;
