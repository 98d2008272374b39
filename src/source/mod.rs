//! Sources: where records enter a query.
//!
//! A source runs on its own thread and is polled for one item at a time; operators
//! chained after it run on the same thread. Provided sources:
//!
//! | source | Spark counterpart | ends |
//! |---|---|---|
//! | [`IterSource`] (`QueryBuilder::from_iter`) | `MemoryStream` | when the iterator ends |
//! | [`RateSource`] (`QueryBuilder::rate`) | `rate` | on `stop()` or after `limit` rows |
//! | [`PushSource`] (`QueryBuilder::push_source`) | — (an app-fed queue) | when every [`PushHandle`] is dropped, or on `stop()` |

pub(crate) mod ingest_log;
pub mod memory;
pub mod push;
pub mod rate;

pub use memory::IterSource;
pub use push::{PushError, PushHandle, PushSource};
pub use rate::{RateRow, RateSource};

use crate::checkpoint::coordinator::CheckpointShared;
use crate::checkpoint::CheckpointConfig;
use crate::error::BoxError;
use crate::event::Epoch;
use crate::sync::Arc;
use std::path::PathBuf;
use std::time::Instant;

/// What a source instance learns when the query starts (see [`Source::open`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct SourceContext {
    /// The source's name in the query (unique).
    pub name: String,
    /// This instance, `0..instances`.
    pub instance: usize,
    /// How many instances of the source run.
    pub instances: usize,
    /// The query's checkpoint directory, if it checkpoints. A source that keeps files of
    /// its own (an ingest log) keeps them under it, named after the source.
    pub checkpoint_dir: Option<PathBuf>,
    /// The checkpoint settings and the query's epoch state, for the ingest log.
    pub(crate) checkpoint: Option<(CheckpointConfig, Arc<CheckpointShared>)>,
}

impl std::fmt::Debug for SourceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceContext")
            .field("name", &self.name)
            .field("instance", &self.instance)
            .field("instances", &self.instances)
            .field("checkpoint_dir", &self.checkpoint_dir)
            .finish_non_exhaustive()
    }
}

/// What a [`Source::poll_next`] produced.
#[derive(Debug)]
pub enum SourcePoll<T> {
    /// The next item.
    Ready(T),
    /// Nothing yet. `until`: when to poll again at the latest (a rate source's next row);
    /// `None` means "when woken" (see [`Source::has_data`]).
    Pending {
        /// The next time the source has data, if it knows.
        until: Option<Instant>,
    },
    /// The source is finished; the runtime sends end-of-stream.
    Exhausted,
    /// The source failed (for example, its write-ahead log hit a full disk); the query
    /// stops with [`Error::Source`](crate::Error::Source).
    Failed(BoxError),
}

/// A producer of records, polled on its own thread.
pub trait Source: Send + 'static {
    /// The records it produces.
    type Item: Send + 'static;

    /// Opens the source when the query starts, after [`restore`](Self::restore) (if the
    /// query restored an offset) and before the first [`poll_next`](Self::poll_next):
    /// connect, open files, open an ingest log. Nothing of this may happen while the
    /// query is only being built. The default does nothing.
    ///
    /// # Errors
    ///
    /// An error makes `start()` fail, naming the source.
    fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        let _ = context;
        Ok(())
    }

    /// Returns the next item, says when to come back, or reports the end.
    fn poll_next(&mut self) -> SourcePoll<Self::Item>;

    /// Whether a poll might now find data. The thread re-checks this after announcing it
    /// is about to park; a source fed by other threads must make its feeders notify the
    /// thread (see [`PushHandle`]). The default, `true`, suits sources that never wait
    /// for anyone.
    fn has_data(&self) -> bool {
        true
    }

    /// The query is stopping gracefully. Return `true` to keep being polled until
    /// [`SourcePoll::Exhausted`] (to hand over records already accepted from elsewhere,
    /// as the push source does); the default, `false`, ends the stream at once.
    fn drain_on_stop(&mut self) -> bool {
        false
    }

    /// Whether this source can rewind to an offset it reported, so that a checkpointed
    /// query can replay what followed the last complete epoch. Checkpointing a query with
    /// a source that cannot is refused at `start()`. The default is `false`.
    fn can_replay(&self) -> bool {
        false
    }

    /// The offset to resume from after everything emitted so far, for `epoch`'s
    /// checkpoint (called just before the source emits the epoch's marker).
    ///
    /// # Errors
    ///
    /// An error fails the query. The default reports that the source cannot replay.
    fn checkpoint(&mut self, epoch: Epoch) -> Result<Vec<u8>, BoxError> {
        let _ = epoch;
        Err("this source cannot replay from an offset".into())
    }

    /// Rewinds to `offset`, as returned by [`checkpoint`](Self::checkpoint), when the
    /// query starts (before [`open`](Self::open)).
    ///
    /// # Errors
    ///
    /// An error makes `start()` fail. The default reports that the source cannot replay.
    fn restore(&mut self, offset: &[u8]) -> Result<(), BoxError> {
        let _ = offset;
        Err("this source cannot replay from an offset".into())
    }
}
