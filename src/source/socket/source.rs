//! [`SocketTextSource`]: the `mio` state machine behind the socket text source.

use super::lines::{LineBuffer, Scan};
use super::{SocketMode, SocketSourceConfig, Stat, Tally};
use crate::error::BoxError;
use crate::source::{Source, SourceContext, SourcePoll};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The thread's waker: its events only mean "re-check".
const WAKE: Token = Token(0);
/// The listener (server) or the connection being established (client).
const SETUP: Token = Token(1);
/// Connection `i` has token `FIRST_CONNECTION + i`.
const FIRST_CONNECTION: usize = 2;
/// Lines served from one connection before the next ready one gets its turn.
const BURST: u32 = 256;
/// Lines handed out between two non-blocking looks at the poll while busy (so that
/// other connections and new clients are noticed while one connection keeps the source
/// busy).
const LOOK_EVERY: u32 = 512;

/// Lines of text from TCP connections, in client or server mode: see the
/// [module documentation](super) for the semantics and
/// [`QueryBuilder::socket_text`](crate::QueryBuilder::socket_text) for the usual way to
/// add one (with the ingest log, and its counters in the query's progress).
///
/// ```
/// use rivulet::source::{SocketSourceConfig, SocketTextSource};
/// use std::io::Write;
///
/// let config = SocketSourceConfig::server("127.0.0.1:0").end_when_clients_leave(true);
/// let stats = config.stats();
/// let mut query = rivulet::Query::builder();
/// // Without the ingest log: fine for a query that does not checkpoint.
/// let lengths = query
///     .source("lines", SocketTextSource::new(config))
///     .map(|line: String| line.len())
///     .to_memory("lengths");
/// let running = query.start()?;
/// let mut client = std::net::TcpStream::connect(stats.local_addr().unwrap())?;
/// client.write_all("a\nbb\nccc".as_bytes())?; // "ccc" never ends: truncated
/// drop(client);
/// running.await_termination()?;
/// assert_eq!(lengths.rows(), [1, 2]);
/// assert_eq!(stats.truncated_lines(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SocketTextSource {
    config: SocketSourceConfig,
    /// Everything that exists once the source is open.
    open: Option<Open>,
}

impl fmt::Debug for SocketTextSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketTextSource")
            .field("mode", &self.config.mode)
            .field("open", &self.open.is_some())
            .finish_non_exhaustive()
    }
}

/// One accepted or established connection.
struct Connection {
    stream: TcpStream,
    lines: LineBuffer,
    /// A readiness event was seen and no read has hit `WouldBlock` since.
    readable: bool,
    /// In the ready queue.
    queued: bool,
    /// Data was read from it (client mode: the backoff starts over).
    delivered: bool,
}

/// Client mode: the connection's life.
enum Link {
    /// Waiting to try again at this time.
    Waiting(Instant),
    /// A non-blocking connect to `trying` in progress, given up at `deadline`; `rest`:
    /// the other addresses of this attempt.
    Connecting {
        stream: TcpStream,
        trying: SocketAddr,
        deadline: Instant,
        rest: Vec<SocketAddr>,
    },
    /// Connected: the connection is in `connections`.
    Connected,
}

enum Mode {
    Server {
        listener: TcpListener,
        /// A client connected at some point (for `end_when_clients_leave`).
        had_client: bool,
    },
    Client {
        link: Link,
        /// The wait after the next failure.
        backoff: Duration,
        /// Failed attempts in a row.
        failures: u32,
    },
}

struct Open {
    config: SocketSourceConfig,
    poll: Poll,
    events: Events,
    mode: Mode,
    /// The listener or the connect in progress reported an event.
    setup_event: bool,
    connections: Vec<Option<Connection>>,
    /// Connections that may have a line: unscanned bytes or readable.
    ready: VecDeque<usize>,
    /// Lines served from the front of `ready` in a row.
    burst: u32,
    /// Lines handed out since the last look at the poll.
    since_look: u32,
    /// Stopping: hand out what was read, read nothing more.
    draining: bool,
    /// The largest partial-line buffer capacity reported to the counters so far.
    peak_line_buffer: usize,
    /// A failure to report at the next poll.
    failure: Option<BoxError>,
    tally: Tally,
}

impl SocketTextSource {
    /// A source with these settings; nothing is bound or connected before the query
    /// starts ([`Source::open`]).
    pub fn new(config: SocketSourceConfig) -> Self {
        SocketTextSource { config, open: None }
    }

    /// The settings.
    pub fn config(&self) -> &SocketSourceConfig {
        &self.config
    }
}

impl Source for SocketTextSource {
    type Item = String;

    /// Creates the poll (with the thread's waker); server mode binds and listens (a port
    /// in use is an error), client mode starts the first connection attempt.
    fn open(&mut self, context: &SourceContext) -> Result<(), BoxError> {
        let poll = Poll::new()?;
        context.wake.register_mio(poll.registry(), WAKE)?;
        let tally = Tally::new(self.config.stats.clone(), context);
        let mode = match &self.config.mode {
            SocketMode::Server(address) => {
                let bind = resolve(address)
                    .map_err(|error| format!("cannot listen on {address}: {error}"))?;
                let mut listener = TcpListener::bind(bind[0])
                    .map_err(|error| format!("cannot listen on {address}: {error}"))?;
                poll.registry()
                    .register(&mut listener, SETUP, Interest::READABLE)?;
                self.config
                    .stats
                    .set_local_addr(Some(listener.local_addr()?));
                Mode::Server {
                    listener,
                    had_client: false,
                }
            }
            SocketMode::Client(address) => {
                // A malformed address can never work: refuse it now. One that does not
                // resolve yet may later: that is a failed attempt.
                if let Err(error) = address.to_socket_addrs() {
                    if error.kind() == ErrorKind::InvalidInput {
                        return Err(format!("invalid address {address:?}: {error}").into());
                    }
                }
                Mode::Client {
                    link: Link::Waiting(Instant::now()),
                    backoff: self.config.backoff_min,
                    failures: 0,
                }
            }
        };
        self.open = Some(Open {
            config: self.config.clone(),
            poll,
            events: Events::with_capacity(256),
            mode,
            setup_event: false,
            connections: Vec::new(),
            ready: VecDeque::new(),
            burst: 0,
            since_look: 0,
            draining: false,
            peak_line_buffer: 0,
            failure: None,
            tally,
        });
        Ok(())
    }

    fn poll_next(&mut self) -> SourcePoll<String> {
        let Some(open) = &mut self.open else {
            return SourcePoll::Failed("the socket source was polled before it was opened".into());
        };
        open.next()
    }

    fn has_data(&self) -> bool {
        self.open.as_ref().is_some_and(Open::has_data)
    }

    fn park(&mut self, timeout: Option<Duration>) -> bool {
        if let Some(open) = &mut self.open {
            open.look(timeout);
        }
        true
    }

    /// `true`: on `stop()` the complete lines already read are handed out, then the
    /// stream ends (nothing more is read; a begun line is counted as truncated).
    fn drain_on_stop(&mut self) -> bool {
        if let Some(open) = &mut self.open {
            open.draining = true;
        }
        true
    }
}

impl Open {
    fn has_data(&self) -> bool {
        if self.failure.is_some() || self.draining || self.setup_event || !self.ready.is_empty() {
            return true;
        }
        match &self.mode {
            Mode::Server { had_client, .. } => {
                self.config.end_when_clients_leave && *had_client && self.live() == 0
            }
            Mode::Client { link, .. } => match link {
                Link::Waiting(at) => Instant::now() >= *at,
                Link::Connecting { deadline, .. } => Instant::now() >= *deadline,
                Link::Connected => false,
            },
        }
    }

    fn live(&self) -> usize {
        self.connections.iter().flatten().count()
    }

    /// Waits in the poll for at most `timeout` and notes what became ready.
    fn look(&mut self, timeout: Option<Duration>) {
        self.since_look = 0;
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::Interrupted => return,
            Err(error) => {
                self.failure = Some(format!("polling the sockets failed: {error}").into());
                return;
            }
        }
        for event in self.events.iter() {
            match event.token() {
                WAKE => {}
                SETUP => self.setup_event = true,
                Token(token) => {
                    let index = token - FIRST_CONNECTION;
                    if let Some(Some(connection)) = self.connections.get_mut(index) {
                        connection.readable = true;
                        if !connection.queued {
                            connection.queued = true;
                            self.ready.push_back(index);
                        }
                    }
                }
            }
        }
    }

    /// The next line, or why there is none.
    fn next(&mut self) -> SourcePoll<String> {
        if let Some(error) = self.failure.take() {
            return SourcePoll::Failed(error);
        }
        if !self.draining {
            if self.since_look >= LOOK_EVERY {
                self.look(Some(Duration::ZERO));
            }
            if let Err(error) = self.set_up() {
                return SourcePoll::Failed(error);
            }
        }
        if let Some(line) = self.serve() {
            self.since_look += 1;
            return SourcePoll::Ready(line);
        }
        if self.draining {
            // Lines begun on connections still open are lost with the stop.
            for connection in self.connections.iter_mut().flatten() {
                if connection.lines.close() {
                    self.tally.add(Stat::Truncated, 1);
                }
            }
            return SourcePoll::Exhausted;
        }
        match &self.mode {
            Mode::Server { had_client, .. } => {
                if self.config.end_when_clients_leave && *had_client && self.live() == 0 {
                    return SourcePoll::Exhausted;
                }
                SourcePoll::Pending { until: None }
            }
            Mode::Client { link, .. } => SourcePoll::Pending {
                until: match link {
                    Link::Waiting(at) => Some(*at),
                    Link::Connecting { deadline, .. } => Some(*deadline),
                    Link::Connected => None,
                },
            },
        }
    }

    /// Accepts clients (server) or drives the connection attempts (client).
    fn set_up(&mut self) -> Result<(), BoxError> {
        let event = std::mem::take(&mut self.setup_event);
        if matches!(self.mode, Mode::Server { .. }) {
            if event {
                self.accept_all()?;
            }
            return Ok(());
        }
        self.drive_client(event)
    }

    fn accept_all(&mut self) -> Result<(), BoxError> {
        loop {
            let Mode::Server {
                listener,
                had_client,
            } = &mut self.mode
            else {
                return Ok(());
            };
            match listener.accept() {
                Ok((mut stream, _)) => {
                    *had_client = true;
                    let index = self.free_slot();
                    self.poll.registry().register(
                        &mut stream,
                        Token(FIRST_CONNECTION + index),
                        Interest::READABLE,
                    )?;
                    self.add_connection(index, stream);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) => {}
                // Out of file descriptors, say: the client waits in the backlog, and the
                // next event (another client) retries.
                Err(_) => return Ok(()),
            }
        }
    }

    /// A free index in `connections`.
    fn free_slot(&mut self) -> usize {
        match self.connections.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.connections.push(None);
                self.connections.len() - 1
            }
        }
    }

    /// Keeps `stream`, registered with `index`'s token, as a connection that may
    /// already hold data.
    fn add_connection(&mut self, index: usize, stream: TcpStream) {
        self.tally.add(Stat::Connections, 1);
        self.connections[index] = Some(Connection {
            stream,
            lines: LineBuffer::new(
                self.config.read_buffer_bytes,
                self.config.max_line_bytes,
                self.config.lossy_utf8,
            ),
            readable: true,
            queued: true,
            delivered: false,
        });
        self.ready.push_back(index);
    }

    /// Serves lines from the ready connections in turn; `None` once none has a line
    /// without blocking.
    fn serve(&mut self) -> Option<String> {
        while let Some(&index) = self.ready.front() {
            if self.burst >= BURST && self.ready.len() > 1 {
                self.burst = 0;
                self.ready.rotate_left(1);
                continue;
            }
            match self.next_line(index) {
                Some(line) => {
                    self.burst += 1;
                    return Some(line);
                }
                None => {
                    self.burst = 0;
                    self.ready.pop_front();
                    if let Some(Some(connection)) = self.connections.get_mut(index) {
                        connection.queued = false;
                    }
                }
            }
        }
        None
    }

    /// The next line of connection `index`; `None` when it has none without blocking
    /// (or it ended: then it is closed here).
    fn next_line(&mut self, index: usize) -> Option<String> {
        loop {
            let connection = self.connections[index].as_mut()?;
            let scan = connection.lines.scan();
            let capacity = connection.lines.partial_capacity();
            if capacity > self.peak_line_buffer {
                self.peak_line_buffer = capacity;
                self.tally.line_buffer(capacity);
            }
            match scan {
                Scan::Line(line) => return Some(line),
                Scan::Lossy(line) => {
                    self.tally.add(Stat::InvalidUtf8, 1);
                    return Some(line);
                }
                Scan::InvalidUtf8 => self.tally.add(Stat::InvalidUtf8, 1),
                Scan::TooLong => self.tally.add(Stat::LinesTooLong, 1),
                Scan::NeedBytes => {
                    if self.draining || !connection.readable {
                        return None;
                    }
                    match connection.lines.read_from(&mut connection.stream) {
                        Ok(0) => {
                            self.close(index);
                            return None;
                        }
                        Ok(n) => {
                            connection.delivered = true;
                            self.tally.add(Stat::BytesRead, n as u64);
                        }
                        Err(error) if error.kind() == ErrorKind::WouldBlock => {
                            connection.readable = false;
                            return None;
                        }
                        Err(error) if error.kind() == ErrorKind::Interrupted => {}
                        // Reset by the peer, say: the connection is over.
                        Err(_) => {
                            self.close(index);
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// Ends connection `index` (it stays in the ready queue until served past).
    fn close(&mut self, index: usize) {
        let Some(mut connection) = self.connections[index].take() else {
            return;
        };
        if connection.lines.close() {
            self.tally.add(Stat::Truncated, 1);
        }
        self.tally.add(Stat::Disconnects, 1);
        let _ = self.poll.registry().deregister(&mut connection.stream);
        if let Mode::Client { link, backoff, .. } = &mut self.mode {
            if connection.delivered {
                *backoff = self.config.backoff_min;
            }
            self.config.stats.set_peer_addr(None);
            self.config.stats.set_local_addr(None);
            // Reconnect after the shortest wait: a peer that restarts is back soon.
            *link = Link::Waiting(Instant::now() + self.config.backoff_min);
        }
    }

    /// Client mode: starts an attempt when one is due, and finishes or fails the one in
    /// progress (looked at after an `event` for it, or at its deadline).
    fn drive_client(&mut self, event: bool) -> Result<(), BoxError> {
        let Mode::Client { link, .. } = &mut self.mode else {
            return Ok(());
        };
        let now = Instant::now();
        match link {
            Link::Connected => Ok(()),
            Link::Waiting(at) if now < *at => Ok(()),
            Link::Waiting(_) => {
                let SocketMode::Client(address) = &self.config.mode else {
                    unreachable!("client state in server mode")
                };
                match resolve(address) {
                    Ok(addresses) => self.try_addresses(addresses),
                    Err(error) => self.attempt_failed(format!("{address}: {error}")),
                }
            }
            Link::Connecting {
                stream, deadline, ..
            } => {
                let deadline = *deadline;
                if !event && now < deadline {
                    return Ok(());
                }
                match connect_outcome(stream) {
                    Some(Ok(peer)) => self.connected(peer),
                    Some(Err(error)) => self.next_address(error.to_string()),
                    None if now >= deadline => self
                        .next_address(format!("timed out after {:?}", self.config.connect_timeout)),
                    None => Ok(()),
                }
            }
        }
    }

    /// Starts connecting to the first of `addresses` that accepts a connect call.
    fn try_addresses(&mut self, mut addresses: Vec<SocketAddr>) -> Result<(), BoxError> {
        addresses.reverse();
        let mut last_error = String::from("the address resolved to nothing");
        while let Some(address) = addresses.pop() {
            match TcpStream::connect(address) {
                Ok(mut stream) => {
                    self.poll.registry().register(
                        &mut stream,
                        SETUP,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    addresses.reverse();
                    let Mode::Client { link, .. } = &mut self.mode else {
                        unreachable!("client state in server mode")
                    };
                    *link = Link::Connecting {
                        stream,
                        trying: address,
                        deadline: Instant::now() + self.config.connect_timeout,
                        rest: addresses,
                    };
                    // The connect may have completed already: look at it at once.
                    self.setup_event = true;
                    return Ok(());
                }
                Err(error) => last_error = format!("{address}: {error}"),
            }
        }
        self.attempt_failed(last_error)
    }

    /// The connect in progress failed: try the attempt's next address, or fail it.
    fn next_address(&mut self, error: String) -> Result<(), BoxError> {
        let Mode::Client { link, .. } = &mut self.mode else {
            return Ok(());
        };
        let previous = std::mem::replace(link, Link::Waiting(Instant::now()));
        let Link::Connecting {
            mut stream,
            trying,
            rest,
            ..
        } = previous
        else {
            *link = previous;
            return Ok(());
        };
        let _ = self.poll.registry().deregister(&mut stream);
        drop(stream);
        let error = format!("{trying}: {error}");
        if rest.is_empty() {
            self.attempt_failed(error)
        } else {
            self.try_addresses(rest)
        }
    }

    /// Counts a failed attempt and schedules the next (or fails the query after the
    /// configured number).
    fn attempt_failed(&mut self, error: String) -> Result<(), BoxError> {
        self.tally.add(Stat::ConnectFailures, 1);
        let Mode::Client {
            link,
            backoff,
            failures,
        } = &mut self.mode
        else {
            return Ok(());
        };
        *failures += 1;
        if let Some(max) = self.config.max_connect_attempts {
            if *failures >= max {
                let SocketMode::Client(address) = &self.config.mode else {
                    unreachable!("client state in server mode")
                };
                return Err(format!(
                    "could not connect to {address} after {failures} attempts (last: {error})"
                )
                .into());
            }
        }
        *link = Link::Waiting(Instant::now() + *backoff);
        *backoff = (*backoff * 2).min(self.config.backoff_max);
        Ok(())
    }

    /// The connect in progress succeeded: the stream becomes the connection.
    fn connected(&mut self, peer: SocketAddr) -> Result<(), BoxError> {
        let Mode::Client { link, failures, .. } = &mut self.mode else {
            return Ok(());
        };
        let Link::Connecting { mut stream, .. } = std::mem::replace(link, Link::Connected) else {
            return Ok(());
        };
        *failures = 0;
        self.config.stats.set_peer_addr(Some(peer));
        self.config.stats.set_local_addr(stream.local_addr().ok());
        let index = self.free_slot();
        self.poll.registry().reregister(
            &mut stream,
            Token(FIRST_CONNECTION + index),
            Interest::READABLE,
        )?;
        self.add_connection(index, stream);
        Ok(())
    }
}

/// Whether a non-blocking connect finished: `Some(Ok(peer))` connected,
/// `Some(Err(..))` failed, `None` still under way (mio's recipe: the socket's pending
/// error first, then the peer address).
fn connect_outcome(stream: &TcpStream) -> Option<io::Result<SocketAddr>> {
    match stream.take_error() {
        Ok(Some(error)) | Err(error) => return Some(Err(error)),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(peer) => Some(Ok(peer)),
        Err(error)
            if error.kind() == ErrorKind::NotConnected
                || error.raw_os_error() == Some(einprogress()) =>
        {
            None
        }
        Err(error) => Some(Err(error)),
    }
}

/// `EINPROGRESS` on the platforms mio supports (what `peer_addr` may report while a
/// non-blocking connect is under way on some of them).
fn einprogress() -> i32 {
    if cfg!(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd"
    )) {
        36
    } else {
        115
    }
}

/// Every address `address` resolves to (at least one).
fn resolve(address: &str) -> io::Result<Vec<SocketAddr>> {
    let addresses: Vec<SocketAddr> = address.to_socket_addrs()?.collect();
    if addresses.is_empty() {
        return Err(io::Error::new(
            ErrorKind::NotFound,
            "the address resolved to nothing",
        ));
    }
    Ok(addresses)
}
