//! What operator threads measure and progress reports show: counters kept by operator
//! threads ([`counters`]), latency samples ([`latency`]), what each thread reports per
//! epoch ([`StateMetrics`]), the per-epoch progress assembled from those reports
//! ([`progress`]) and its bounded history ([`ProgressHistory`]).

pub(crate) mod assemble;
pub mod counters;
pub(crate) mod epoch;
pub mod history;
pub mod latency;
pub mod progress;

pub use counters::{Counter, NamedCounters, OperatorMetrics};
pub use epoch::StateMetrics;
pub use history::ProgressHistory;
pub use latency::Percentiles;
pub use progress::StreamingQueryProgress;
