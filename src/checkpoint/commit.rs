//! The commit vocabulary shared by sinks and the coordinator: a sink stages an epoch's
//! output and hands over an [`EpochCommit`]; the coordinator runs it, as a
//! [`PendingCommit`], once the epoch is complete.
//!
//! It lives here, not in [`crate::sink`], so that dependencies point one way: sinks use
//! the checkpoint machinery, and the checkpoint machinery knows nothing of sinks.
//! [`crate::sink`] re-exports [`EpochCommit`] for the [`Sink`](crate::sink::Sink) trait.

use crate::error::{BoxError, Error};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Publishes one epoch's staged output, once the epoch is complete (see
/// [`Sink::prepare_commit`](crate::sink::Sink::prepare_commit)). It runs on the
/// checkpoint coordinator's thread, never on an operator thread, and at most once; an
/// error fails the query, naming the sink.
pub type EpochCommit = Box<dyn FnOnce() -> Result<(), BoxError> + Send>;

/// A sink's second commit phase for one epoch, run by the coordinator once the epoch is
/// complete.
pub(crate) struct PendingCommit {
    /// The sink (named in the error if the commit fails).
    pub(crate) sink: std::sync::Arc<str>,
    pub(crate) run: EpochCommit,
}

impl PendingCommit {
    /// Runs the commit. A failing (or panicking) commit becomes the query's error,
    /// naming the sink.
    pub(crate) fn publish(self) -> Result<(), Error> {
        let PendingCommit { sink, run } = self;
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Error::Sink {
                operator: sink.to_string(),
                source: std::sync::Arc::from(error),
            }),
            Err(payload) => Err(Error::from_panic(&sink, payload.as_ref())),
        }
    }
}

impl fmt::Debug for PendingCommit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingCommit")
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}
