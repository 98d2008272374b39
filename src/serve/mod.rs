//! The metrics endpoint: a running query's progress over HTTP, for Prometheus, for
//! scripts and for people.
//!
//! [`Query::serve_metrics`](crate::Query::serve_metrics) starts it (opt-in; nothing
//! listens otherwise). It answers `GET` on:
//!
//! | path | what | type |
//! |---|---|---|
//! | `/` | the live dashboard: charts over time and the plan as a graph | `text/html` |
//! | `/metrics` | Prometheus text exposition (format 0.0.4): see [`prometheus_text`] | `text/plain` |
//! | `/progress` | the newest epoch's report (Spark's `lastProgress`, [`StreamingQueryProgress`]), `null` before the first | `application/json` |
//! | `/progress/recent` | the reports the query keeps, oldest first (Spark's `recentProgress`) | `application/json` |
//! | `/status` | what the query is doing ([`QueryStatus`]) | `application/json` |
//! | `/live` | the live counters now ([`QueryProgress`], as [`Query::progress`](crate::Query::progress) reads them) | `application/json` |
//! | `/live/recent` | samples of the live counters, one per [`ServeOptions::sample_every`]: the only history of a query without epochs | `application/json` |
//! | `/plan` | operators (kind, parallelism, records in/out) and the edges between them ([`PlanView`]) | `application/json` |
//!
//! ```
//! use rivulet::Query;
//! use std::io::{Read, Write};
//!
//! let mut builder = Query::builder();
//! builder.from_iter("numbers", 0..100u64).to_memory("out");
//! let query = builder.start().unwrap();
//! query.await_termination().unwrap();
//! let server = query.serve_metrics("127.0.0.1:0").unwrap();
//!
//! let mut http = std::net::TcpStream::connect(server.local_addr()).unwrap();
//! http.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
//! let mut response = String::new();
//! http.read_to_string(&mut response).unwrap();
//! assert!(response.contains("rivulet_input_rows_total{query=\"query\"} 100"));
//! query.stop().unwrap();
//! ```
//!
//! ## How it runs
//!
//! The server is [`tiny_http`]: a small, widely used blocking HTTP/1.1 server on std
//! threads. An embedded engine should not bring an async runtime into its users'
//! programs for a status page, and hyper-based servers without one are young and
//! little used. One thread of rivulet's (`rivulet:metrics`) answers every request and
//! takes a sample of the live counters every [`ServeOptions::sample_every`] into a
//! bounded history (`/live/recent`); tiny_http adds an accept thread and a small pool of
//! connection threads. None of them is an operator thread. They read the operators'
//! counters (relaxed atomic loads) and the per-epoch reports the coordinator keeps in
//! the query's [`ProgressHistory`](crate::metrics::ProgressHistory), without stopping the
//! query: the cost is in `BENCHMARKS.md`.
//!
//! [`MetricsServer::stop`] (and [`Query::stop`](crate::Query::stop),
//! [`Query::abort`](crate::Query::abort), dropping the `Query`) joins the serving
//! thread and returns once the port is closed. tiny_http's own threads are not joinable:
//! its accept thread ends at the stop, its idle connection threads within five seconds
//! of it, and a connection thread serving a client that keeps its connection open ends
//! when that client closes it.
//!
//! The page is self-contained: its HTML, CSS and script are compiled into the library
//! (`include_str!`) and its charts are hand-drawn SVG, so it needs no network access
//! beyond the endpoint itself.

mod dashboard;
mod feed;
mod prometheus;
mod server;

pub use dashboard::{dashboard_html, dashboard_script};
pub use feed::{PlanEdge, PlanNode, PlanView};
pub use prometheus::render as prometheus_text;
pub use server::{MetricsServer, ServeOptions};

#[cfg(doc)]
use crate::{metrics::StreamingQueryProgress, query::QueryStatus, QueryProgress};
