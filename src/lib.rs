//! # rivulet
//!
//! An embeddable stream engine with the programming model of Spark Structured Streaming
//! (sources → transformations → sinks, keyed running aggregates, query handles with
//! progress) and the execution model of a low-latency continuous engine: long-running
//! operator threads pinned to cores, linked by lock-free single-producer single-consumer
//! rings, processing one record at a time.
//!
//! ```
//! use rivulet::Query;
//!
//! let mut query = Query::builder();
//! let counts = query
//!     .from_iter("events", ["click", "view", "click", "buy", "click"])
//!     .filter(|kind| *kind != "view")
//!     .key_by(|kind| kind.to_string()) // keys are serde types: they are checkpointed
//!     .count()
//!     .to_memory("counts");
//! let running = query.start()?;
//! running.await_termination()?;
//! // A running count per key, updated by every record.
//! let rows: Vec<(String, u64)> = counts.rows();
//! let expected = [("click", 1), ("click", 2), ("buy", 1), ("click", 3)];
//! assert!(rows.iter().map(|(k, c)| (k.as_str(), *c)).eq(expected));
//! # Ok::<(), rivulet::Error>(())
//! ```
//!
//! ## How it runs
//!
//! Operators between thread boundaries are chained into one generic function per thread
//! (no boxing or dynamic dispatch per record). Boundaries are keyed exchanges with
//! parallelism, unions, fan-outs and explicit [`Stream::new_thread`] calls; each is a set
//! of `rtrb` rings, one per (producer, consumer) pair. Records and control events
//! (watermarks, epoch markers, end-of-stream) share a ring, so a marker never overtakes
//! a record. A full ring is back-pressure; idle threads wait by a [`WaitPolicy`].
//!
//! ## Modules
//!
//! | module | what it holds |
//! |---|---|
//! | [`query`] | [`QueryBuilder`], the running [`Query`] handle, [`QueryProgress`] |
//! | [`stream`] | [`Stream`] and its combinators, [`KeyedStream`] and the keyed aggregates, the chain types, thread boundaries |
//! | [`source`], [`sink`] | where records enter and leave |
//! | [`operator`] | the [`Operator`](operator::Operator) trait and built-in operators |
//! | [`join`] | stream–stream joins with Spark's semantics (event-time conditions, outer joins, state bounded by the watermark) |
//! | [`state`] | keyed state with expiry; `map_groups_with_state`, `update_state_by_key` |
//! | [`edge`] | rings, edges, wait policies and the wake-up protocol |
//! | [`runtime`] | threads, pinning, stop/abort; the heads that drive each thread's chain |
//! | [`sync`] | the std/loom concurrency shim |
//! | [`table`] | static tables for stream–static joins: loaded from a `Vec`, an iterator or a CSV file, shared by every instance; reloadable at epoch boundaries |
//! | [`time`] | the processing-time clock (system or manual, for tests) |
//! | [`expr`] | expressions over rows (`col("psi").lt(lit(0.5))`, `CASE`, `IN`, `LIKE`, `CAST`) bound once to a schema, with Spark SQL's null, coercion and ANSI semantics |
//! | [`ml`] | streaming machine learning: MLlib's streaming k-means and linear/logistic regression, trained and applied on streams |
//! | [`frame`], [`sql`] (feature `sql`, on by default) | DataFrames over streams of rows and SQL over temp views (`QueryBuilder::sql`), planned onto the same operators |
//! | [`row`] | rows with a schema ([`row::Row`], [`row::Schema`], [`row::Value`]): the untyped layer under DataFrames and SQL; serde conversions to and from typed records |
//! | [`format`](mod@format) | decoding text, CSV and JSON lines into serde records; dates and timestamps from text; malformed-record modes |
//! | [`serve`] | the opt-in metrics endpoint: Prometheus text, progress JSON, a live dashboard |
//! | `kafka` (feature `kafka`) | the Kafka source and sink over librdkafka, and their client configuration |
//! | [`event`], [`metrics`], [`error`] | shared vocabulary |

#![deny(unsafe_code)]
// Without the DataFrame/SQL layer (feature `sql`), the crate-private helpers that only it
// calls (erased unions, one-input-at-a-time connections, row decoding of socket lines)
// are unused: built that way only for the fuzz targets.
#![cfg_attr(not(feature = "sql"), allow(dead_code, unused_imports))]

pub mod aggregate;
pub mod checkpoint;
#[allow(unsafe_code)]
pub mod edge;
pub mod error;
pub mod event;
pub mod expr;
pub mod format;
#[cfg(feature = "sql")]
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod join;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod metrics;
pub mod ml;
pub mod operator;
pub(crate) mod plan;
pub mod query;
pub mod row;
pub mod runtime;
pub mod serve;
pub mod sink;
pub mod source;
#[cfg(feature = "sql")]
pub mod sql;
pub mod state;
pub mod stream;
pub mod sync;
pub mod table;
pub mod time;
pub mod trigger;
pub mod window;

pub use edge::WaitPolicy;
pub use error::{Error, Result};
pub use event::{Epoch, Event, Signal, Timestamp};
pub use metrics::StreamingQueryProgress;
pub use query::{Query, QueryBuilder, QueryListener, QueryProgress};
pub use runtime::Pinning;
pub use source::{PushHandle, RateRow};
pub use stream::{KeyedStream, Stream};
pub use trigger::{ExecutionMode, OutputMode, Trigger};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
