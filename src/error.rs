//! rivulet's error type.

use std::sync::Arc;

/// A boxed error from user code (a sink, a source).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong building or running a query.
///
/// Errors are `Clone` so that every caller of
/// [`Query::await_termination`](crate::Query::await_termination) sees the same failure.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query was refused at build time: no sink, zero parallelism, a zero ring
    /// capacity, a stream left without a consumer, and so on.
    #[error("invalid query: {0}")]
    Config(String),

    /// User code in an operator, source or sink panicked; the query was stopped.
    #[error("operator `{operator}` panicked: {message}")]
    OperatorPanicked {
        /// The operator's name, as shown in progress reports.
        operator: String,
        /// The panic message.
        message: String,
    },

    /// A sink reported an error; the query was stopped.
    #[error("sink `{operator}` failed: {source}")]
    Sink {
        /// The sink's name.
        operator: String,
        /// What the sink reported.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The operating system refused to start an operator thread.
    #[error("could not start the thread for `{operator}`: {source}")]
    Spawn {
        /// The thread's operators.
        operator: String,
        /// The error from `std::thread::Builder::spawn`.
        #[source]
        source: Arc<std::io::Error>,
    },

    /// A source reported an error; the query was stopped.
    #[error("source `{operator}` failed: {source}")]
    Source {
        /// The source's name.
        operator: String,
        /// What the source reported.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// Writing or restoring checkpoints failed.
    #[error("checkpoint failure: {0}")]
    Checkpoint(#[source] Arc<crate::checkpoint::CheckpointError>),

    /// An edge lost its peer without an end-of-stream while the query was still running:
    /// an operator thread ended unexpectedly.
    #[error("operator `{operator}` lost its {peer} without an end-of-stream")]
    Disconnected {
        /// The operator that noticed.
        operator: String,
        /// `"upstream"` or `"downstream"`.
        peer: &'static str,
    },

    /// The metrics endpoint could not listen on the address asked for
    /// ([`Query::serve_metrics`](crate::Query::serve_metrics)): not an address, or the
    /// port is taken or not allowed.
    #[error("cannot serve metrics on `{addr}`: {source}")]
    Serve {
        /// The address as given.
        addr: String,
        /// Why.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl Error {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }

    pub(crate) fn from_panic(operator: &str, payload: &(dyn std::any::Any + Send)) -> Self {
        Error::OperatorPanicked {
            operator: operator.to_string(),
            message: panic_message(payload),
        }
    }
}

/// The message of a panic payload (`panic!` with a string or a format).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(panic payload is not a string)".to_string()
    }
}

/// Runs user code outside the hot path (a `restore`, a sink's or source's `open`) and
/// turns an error it returns, or a panic, into the message `start()` reports.
pub(crate) fn run_guarded(call: impl FnOnce() -> Result<(), BoxError>) -> Result<(), String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(payload) => Err(format!("panicked: {}", panic_message(payload.as_ref()))),
    }
}

/// `Result` with rivulet's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
