//! Time as operators see it: the processing-time [`Clock`] a query runs on.
//!
//! Event time (timestamps carried by records, watermarks) travels in-band with the
//! records; processing time is read from the query's clock. Production queries use the
//! system clock; tests use a [`ManualClock`] and move it by hand, so timer tests need no
//! sleeps and give the same result on a loaded machine.

mod clock;
pub mod watermark;

pub use clock::{Clock, ManualClock};
pub use watermark::WatermarkConfig;
