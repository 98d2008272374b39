//! The socket text source: lines of text from TCP connections (Spark's
//! `socketTextStream` / `readStream.format("socket")`), on `mio`.
//!
//! [`SocketTextSource`] reads lines from TCP, one record per line, in one of two modes:
//!
//! * **Client** ([`SocketSourceConfig::client`]): it connects to `host:port`, as Spark's
//!   socket source does, and reconnects with exponential backoff when the connection
//!   drops or is refused (Spark's socket source fails instead). By default it keeps
//!   trying until the query stops; [`SocketSourceConfig::max_connect_attempts`] makes it
//!   fail the query after that many failed attempts in a row.
//! * **Server** ([`SocketSourceConfig::server`]): it listens on `host:port` and accepts any
//!   number of clients (Spark has no such mode). All of them feed the **same** source
//!   instance: each connection keeps its own order and its own partial-line buffer, and
//!   lines of different connections interleave at line boundaries (connections are
//!   served in turn, a burst of at most 256 lines each). A client that closes is
//!   normal; the source ends on `stop()`, or when the last client leaves if
//!   [`end_when_clients_leave`](SocketSourceConfig::end_when_clients_leave) is set. One
//!   instance rather than one partition per client because rivulet's instances are
//!   fixed when the query starts and clients come and go; a keyed operator after the
//!   source spreads the work over threads.
//!
//! ## Rows of a schema
//!
//! [`QueryBuilder::socket_rows`](crate::QueryBuilder::socket_rows) makes the lines a
//! DataFrame of one `value` column (Spark's `readStream.format("socket")`), and
//! [`socket_rows_with_schema`](crate::QueryBuilder::socket_rows_with_schema) decodes
//! each line as CSV or JSON into rows of a schema given at run time ([`LineDecoding`],
//! [`DecodeLines`]), with the file source's malformed-record verdicts. The lines are
//! ingest-logged before they are decoded.
//!
//! ## Lines
//!
//! A line ends at `\n`; a `\r` before it is removed (so `\r\n` works), and a line may
//! arrive in any number of reads (split anywhere, inside `\r\n` or inside a multi-byte
//! UTF-8 character). A line longer than
//! [`max_line_bytes`](SocketSourceConfig::max_line_bytes) (counted before the `\n`, a
//! `\r` included) is counted (`lines_too_long`) and its bytes are skipped up to the next
//! `\n`: the buffer never grows past the maximum. A line that is not UTF-8 is counted
//! (`invalid_utf8_lines`) and skipped, or, with
//! [`lossy_utf8`](SocketSourceConfig::lossy_utf8), decoded with U+FFFD replacement
//! characters (and still counted). When a connection ends (the peer closes, an error,
//! or `stop()`), the complete lines already read are still handed out; a line begun
//! but not ended by `\n` is dropped and counted (`truncated_lines`). Spark's socket
//! source differs: it has no maximum, decodes as UTF-8 with replacement, and returns a
//! last line without `\n` at end of stream.
//!
//! ## Back-pressure and memory
//!
//! The source reads from a connection only when the query asks for the next record and
//! every byte read before has been scanned, so when the downstream ring is full it stops
//! reading: the kernel's socket buffer fills and TCP flow control slows the writer. Per
//! connection it holds one read buffer
//! ([`read_buffer_bytes`](SocketSourceConfig::read_buffer_bytes), 64 KiB) and at most one
//! partial line (up to `max_line_bytes`). In a micro-batch query, a batch is what the
//! source holds when the batch is planned, bounded by
//! [`QueryBuilder::max_batch_records`](crate::QueryBuilder::max_batch_records).
//!
//! ## Latency
//!
//! When idle the source blocks in its own `mio` poll, after the spin and yield phases of
//! the query's [`WaitPolicy`](crate::WaitPolicy). On a machine with fewer free cores than
//! busy threads, the yield phase hands the core to other processes and costs
//! milliseconds; `WaitPolicy::SpinThenPark { spins: 0, yields: 0 }` blocks in the poll
//! at once, as a hand-written `mio` reader does (`benches/socket_latency.rs` measures
//! both).
//!
//! ## Replay
//!
//! A socket cannot rewind, so the source cannot replay ([`Source::can_replay`] is
//! `false`). [`QueryBuilder::socket_text`](crate::QueryBuilder::socket_text) wraps it in
//! the ingest write-ahead log ([`IngestLogged`]): in a checkpointed query every line is
//! logged before it is emitted and replayed after a crash. Lines still in the kernel's
//! buffer or in the source's read buffer at a crash were never accepted and are lost
//! (what the peer wrote but nobody acknowledged, as with any TCP receiver).
//!
//! ## Counters
//!
//! [`SocketSourceStats`] (from [`SocketSourceConfig::stats`]) reads the source's
//! counters from any thread; the query's progress also shows them (through
//! [`SourceContext::counter`](crate::source::SourceContext::counter)), in the source
//! operator's
//! [`counters`](crate::query::OperatorProgress::counters): `bytes_read`,
//! `connections`, `disconnects`, `connect_failures`, `lines_too_long`,
//! `invalid_utf8_lines`, `truncated_lines`.
//!
//! ```
//! use rivulet::source::SocketSourceConfig;
//! use std::io::Write;
//!
//! let config = SocketSourceConfig::server("127.0.0.1:0").end_when_clients_leave(true);
//! let stats = config.stats();
//! let mut query = rivulet::Query::builder();
//! let lines = query.socket_text("lines", config).to_memory("lines");
//! let running = query.start()?;
//! // The server is listening once start() returned.
//! let mut client = std::net::TcpStream::connect(stats.local_addr().unwrap())?;
//! client.write_all(b"hello\r\nworld\n")?;
//! drop(client); // the last client leaves: the stream ends
//! running.await_termination()?;
//! assert_eq!(lines.rows(), ["hello", "world"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Source::can_replay`]: super::Source::can_replay
//! [`IngestLogged`]: super::IngestLogged

mod lines;
mod rows;
pub(crate) use lines::oracle as lines_oracle;
mod source;

pub use rows::{DecodeLines, LineDecoding, DROPPED_ROWS, MALFORMED_ROWS};
pub use source::SocketTextSource;

use crate::metrics::Counter;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The stream [`QueryBuilder::socket_text`](crate::QueryBuilder::socket_text) returns:
/// lines from a [`SocketTextSource`] wrapped in the ingest write-ahead log.
pub type SocketTextStream =
    crate::Stream<crate::stream::SourceChain<super::IngestLogged<SocketTextSource>>>;

/// Whether the source connects or listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketMode {
    /// Connect to this `host:port` (and reconnect).
    Client(String),
    /// Listen on this `host:port` and accept every client.
    Server(String),
}

/// The settings of a [`SocketTextSource`], as a small builder.
///
/// ```
/// use rivulet::source::SocketSourceConfig;
/// use std::time::Duration;
///
/// let config = SocketSourceConfig::client("localhost:9999")
///     .max_line_bytes(64 * 1024)
///     .lossy_utf8(true)
///     .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(2))
///     .max_connect_attempts(10);
/// assert_eq!(config.max_line(), 64 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct SocketSourceConfig {
    pub(crate) mode: SocketMode,
    pub(crate) max_line_bytes: usize,
    pub(crate) lossy_utf8: bool,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) max_connect_attempts: Option<u32>,
    pub(crate) connect_timeout: Duration,
    pub(crate) end_when_clients_leave: bool,
    pub(crate) read_buffer_bytes: usize,
    pub(crate) stats: SocketSourceStats,
}

impl SocketSourceConfig {
    fn new(mode: SocketMode) -> Self {
        SocketSourceConfig {
            mode,
            max_line_bytes: 1024 * 1024,
            lossy_utf8: false,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            max_connect_attempts: None,
            connect_timeout: Duration::from_secs(10),
            end_when_clients_leave: false,
            read_buffer_bytes: 64 * 1024,
            stats: SocketSourceStats::default(),
        }
    }

    /// Connects to `address` (`host:port`, resolved at each attempt; every address it
    /// resolves to is tried in turn) and reconnects after a disconnect.
    pub fn client(address: impl Into<String>) -> Self {
        Self::new(SocketMode::Client(address.into()))
    }

    /// Listens on `address` (`host:port`; port 0 picks a free port, see
    /// [`SocketSourceStats::local_addr`]) and accepts every client. The port is bound
    /// when the query starts; a port in use makes `start()` fail.
    pub fn server(address: impl Into<String>) -> Self {
        Self::new(SocketMode::Server(address.into()))
    }

    /// The longest line accepted, in bytes before the `\n` (a `\r` included); longer
    /// ones are counted and skipped. Default 1 MiB; at least 1.
    pub fn max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes.max(1);
        self
    }

    /// Decodes lines that are not UTF-8 with U+FFFD replacement characters instead of
    /// skipping them (both are counted). Default `false`: skip.
    pub fn lossy_utf8(mut self, lossy: bool) -> Self {
        self.lossy_utf8 = lossy;
        self
    }

    /// Client mode: the wait before reconnecting starts at `min` and doubles after every
    /// failed attempt up to `max`; it is back at `min` once a connection delivered data.
    /// Default 100 ms to 10 s. `max` below `min` is taken as `min`.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// Client mode: fail the query after `attempts` failed connection attempts in a row
    /// (refused, timed out, unresolvable). Default: retry until the query stops.
    pub fn max_connect_attempts(mut self, attempts: u32) -> Self {
        self.max_connect_attempts = Some(attempts.max(1));
        self
    }

    /// Client mode: how long one connection attempt may take before it counts as failed
    /// (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Server mode: end the stream once a client has connected and every client has
    /// left. Default `false`: run until the query stops.
    pub fn end_when_clients_leave(mut self, end: bool) -> Self {
        self.end_when_clients_leave = end;
        self
    }

    /// Bytes read from a connection at a time (default 64 KiB): one such buffer per
    /// connection.
    pub fn read_buffer_bytes(mut self, bytes: usize) -> Self {
        self.read_buffer_bytes = bytes.max(1);
        self
    }

    /// The counters of the source built from this configuration (a handle: clone it
    /// before the configuration is handed to the query). Build one source per
    /// configuration: sources built from clones share the counters.
    pub fn stats(&self) -> SocketSourceStats {
        self.stats.clone()
    }

    /// The mode and address.
    pub fn mode(&self) -> &SocketMode {
        &self.mode
    }

    /// The maximum line length in bytes.
    pub fn max_line(&self) -> usize {
        self.max_line_bytes
    }
}

/// The counters a socket source keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stat {
    BytesRead,
    Connections,
    Disconnects,
    ConnectFailures,
    LinesTooLong,
    InvalidUtf8,
    Truncated,
}

impl Stat {
    const ALL: [Stat; 7] = [
        Stat::BytesRead,
        Stat::Connections,
        Stat::Disconnects,
        Stat::ConnectFailures,
        Stat::LinesTooLong,
        Stat::InvalidUtf8,
        Stat::Truncated,
    ];

    /// The name in progress reports.
    fn name(self) -> &'static str {
        match self {
            Stat::BytesRead => "bytes_read",
            Stat::Connections => "connections",
            Stat::Disconnects => "disconnects",
            Stat::ConnectFailures => "connect_failures",
            Stat::LinesTooLong => "lines_too_long",
            Stat::InvalidUtf8 => "invalid_utf8_lines",
            Stat::Truncated => "truncated_lines",
        }
    }
}

#[derive(Default)]
struct StatsInner {
    values: [AtomicU64; 7],
    /// The largest capacity a partial-line buffer reached.
    peak_line_buffer: AtomicU64,
    local_addr: Mutex<Option<SocketAddr>>,
    peer_addr: Mutex<Option<SocketAddr>>,
}

/// A socket source's counters, readable from any thread while the query runs (a cheap
/// handle; clones share the counters). Get it from [`SocketSourceConfig::stats`].
#[derive(Clone, Default)]
pub struct SocketSourceStats {
    inner: Arc<StatsInner>,
}

impl fmt::Debug for SocketSourceStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("SocketSourceStats");
        for stat in Stat::ALL {
            s.field(stat.name(), &self.get(stat));
        }
        s.field("peak_line_buffer", &self.peak_line_buffer())
            .field("local_addr", &self.local_addr())
            .finish()
    }
}

impl SocketSourceStats {
    fn get(&self, stat: Stat) -> u64 {
        self.inner.values[stat as usize].load(Ordering::Relaxed)
    }

    /// Bytes read from all connections.
    pub fn bytes_read(&self) -> u64 {
        self.get(Stat::BytesRead)
    }

    /// Connections established (server: accepted; client: connected).
    pub fn connections(&self) -> u64 {
        self.get(Stat::Connections)
    }

    /// Connections that ended (closed by the peer, or an error).
    pub fn disconnects(&self) -> u64 {
        self.get(Stat::Disconnects)
    }

    /// Client mode: failed connection attempts.
    pub fn connect_failures(&self) -> u64 {
        self.get(Stat::ConnectFailures)
    }

    /// Lines longer than the maximum, skipped.
    pub fn lines_too_long(&self) -> u64 {
        self.get(Stat::LinesTooLong)
    }

    /// Lines that were not UTF-8 (skipped, or decoded lossily).
    pub fn invalid_utf8_lines(&self) -> u64 {
        self.get(Stat::InvalidUtf8)
    }

    /// Lines begun but not ended when their connection ended, dropped.
    pub fn truncated_lines(&self) -> u64 {
        self.get(Stat::Truncated)
    }

    /// The largest capacity, in bytes, that a partial-line buffer reached (at most
    /// [`max_line_bytes`](SocketSourceConfig::max_line_bytes)).
    pub fn peak_line_buffer(&self) -> u64 {
        self.inner.peak_line_buffer.load(Ordering::Relaxed)
    }

    /// Server mode: the address it listens on, once the query started (with port 0, the
    /// port picked). Client mode: the local address of the current connection.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self
            .inner
            .local_addr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Client mode: the peer of the current connection, `None` while disconnected.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        *self
            .inner
            .peer_addr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_local_addr(&self, address: Option<SocketAddr>) {
        *self
            .inner
            .local_addr
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = address;
    }

    fn set_peer_addr(&self, address: Option<SocketAddr>) {
        *self
            .inner
            .peer_addr
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = address;
    }
}

/// Where the source counts: its [`SocketSourceStats`] and the operator's named counters
/// in the query's progress ([`SourceContext::counter`](crate::source::SourceContext::counter);
/// written only by the source's thread).
#[derive(Debug)]
pub(crate) struct Tally {
    stats: SocketSourceStats,
    progress: Vec<Arc<Counter>>,
}

impl Tally {
    fn new(stats: SocketSourceStats, context: &crate::source::SourceContext) -> Self {
        let progress = Stat::ALL
            .iter()
            .map(|s| context.counter(s.name()))
            .collect();
        Tally { stats, progress }
    }

    fn add(&self, stat: Stat, n: u64) {
        self.stats.inner.values[stat as usize].fetch_add(n, Ordering::Relaxed);
        self.progress[stat as usize].add(n);
    }

    fn line_buffer(&self, capacity: usize) {
        self.stats
            .inner
            .peak_line_buffer
            .fetch_max(capacity as u64, Ordering::Relaxed);
    }
}
