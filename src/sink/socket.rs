//! A sink that writes text lines to TCP (the counterpart of the socket source), on `mio`.
//!
//! [`SocketSink`] turns each record into one line (its [`Display`](fmt::Display) text, or
//! what a closure makes of it, followed by `\n`) and writes it, in one of two modes:
//!
//! * **Client** ([`SocketSinkConfig::client`]): each sink instance connects to
//!   `host:port` when the query starts (a refused connection makes `start()` fail) and
//!   writes every line to it. A slow peer is **back-pressure**: when the kernel's send
//!   buffer is full the sink waits, blocking the query's thread (and so, through the
//!   full rings, the sources), for at most
//!   [`write_timeout`](SocketSinkConfig::write_timeout) without progress; then the query
//!   fails with an error naming the peer. A peer that closed or reset the connection
//!   fails the query at the next write, naming it. Nothing is dropped silently and the
//!   sink never reconnects (lines written to a connection that broke may be lost with
//!   it, so a new connection would hide a gap).
//! * **Server** ([`SocketSinkConfig::server`]): the sink listens on `host:port` and
//!   broadcasts every line to every client connected at the time (instances of a
//!   parallel sink share the listener and the clients; their lines interleave at line
//!   boundaries). Clients connect and leave at any time; a client gets the lines written
//!   after it was accepted (accepted at the sink's next flush). A slow client is **not**
//!   allowed to hold the query back: each client has a bounded buffer
//!   ([`client_buffer_bytes`](SocketSinkConfig::client_buffer_bytes)) beyond the kernel's,
//!   and a client whose buffer overflows is disconnected and counted
//!   (`clients_dropped_slow`); one whose connection fails is disconnected and counted
//!   (`clients_dropped_gone`). Lines written while no client is connected are counted
//!   (`lines_without_clients`); [`wait_for_clients`](SocketSinkConfig::wait_for_clients)
//!   holds the first line back until enough clients are there.
//!
//! At end of stream (a graceful `stop()`, or the sources ending) the sink hands what it
//! buffered to the kernel, waiting at most `write_timeout` without progress (server:
//! clients that do not drain by then are disconnected and counted). No wait is
//! unbounded, so `stop()` never hangs on a peer.
//!
//! `mio` rather than blocking sockets: server mode writes to many clients from one
//! thread and must never block on one of them, and client mode needs a wait for
//! writability with a timeout that a `stop()` cannot outlast; both are one `mio` poll.
//!
//! The sink is not transactional: in a checkpointed query, epochs replayed after a crash
//! send their lines again (at least once), as Spark's `foreach` sinks do.
//!
//! Text is written as the format gives it: a record whose text holds a `\n` becomes
//! several lines at the peer.
//!
//! ```
//! use rivulet::sink::SocketSinkConfig;
//! use std::io::Read;
//!
//! let peer = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let mut query = rivulet::Query::builder();
//! query
//!     .from_iter("numbers", 1..=3u32)
//!     .to_socket(SocketSinkConfig::client(peer.local_addr()?.to_string()));
//! let running = query.start()?; // connected
//! let (mut connection, _) = peer.accept()?;
//! running.await_termination()?;
//! let mut text = String::new();
//! connection.read_to_string(&mut text)?;
//! assert_eq!(text, "1\n2\n3\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{Sink, SinkContext};
use crate::error::BoxError;
use crate::metrics::Counter;
use crate::source::socket::SocketMode;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::fmt;
use std::io::{self, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Lines are handed to the socket once this many bytes are buffered (and at every
/// flush).
const SEND_AT: usize = 64 * 1024;
/// The listener's token; client `i` has token `1 + i`.
const LISTENER: Token = Token(0);

/// The settings of a [`SocketSink`], as a small builder.
///
/// ```
/// use rivulet::sink::SocketSinkConfig;
/// use std::time::Duration;
///
/// let config = SocketSinkConfig::server("0.0.0.0:9998")
///     .write_timeout(Duration::from_secs(2))
///     .client_buffer_bytes(4 << 20)
///     .wait_for_clients(1, Duration::from_secs(30));
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct SocketSinkConfig {
    mode: SocketMode,
    write_timeout: Duration,
    connect_timeout: Duration,
    client_buffer_bytes: usize,
    wait_for_clients: Option<(usize, Duration)>,
    stats: SocketSinkStats,
}

impl SocketSinkConfig {
    fn new(mode: SocketMode) -> Self {
        SocketSinkConfig {
            mode,
            write_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            client_buffer_bytes: 1024 * 1024,
            wait_for_clients: None,
            stats: SocketSinkStats::default(),
        }
    }

    /// Each sink instance connects to `address` (`host:port`; every address it resolves
    /// to is tried in turn) when the query starts.
    pub fn client(address: impl Into<String>) -> Self {
        Self::new(SocketMode::Client(address.into()))
    }

    /// The sink listens on `address` (`host:port`; port 0 picks a free port, see
    /// [`SocketSinkStats::local_addr`]) when the query starts, and broadcasts to every
    /// client. A port in use makes `start()` fail.
    pub fn server(address: impl Into<String>) -> Self {
        Self::new(SocketMode::Server(address.into()))
    }

    /// The longest the sink waits for a peer to take data (client mode: before failing
    /// the query; server mode, at end of stream: before disconnecting a client). Default
    /// 10 s.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Client mode: how long connecting may take when the query starts (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Server mode: bytes a client may fall behind (beyond what the kernel buffers)
    /// before it is disconnected as too slow. Default 1 MiB.
    pub fn client_buffer_bytes(mut self, bytes: usize) -> Self {
        self.client_buffer_bytes = bytes.max(1);
        self
    }

    /// Server mode: hold the first line back until `clients` clients are connected;
    /// fail the query if they are not after `timeout`. Default: write at once.
    pub fn wait_for_clients(mut self, clients: usize, timeout: Duration) -> Self {
        self.wait_for_clients = Some((clients, timeout));
        self
    }

    /// The counters of the sink built from this configuration (a handle: clone it before
    /// the configuration is handed to the query).
    pub fn stats(&self) -> SocketSinkStats {
        self.stats.clone()
    }
}

#[derive(Debug, Clone, Copy)]
enum Stat {
    LinesSent,
    BytesSent,
    LinesWithoutClients,
    ClientsAccepted,
    ClientsDroppedSlow,
    ClientsDroppedGone,
}

impl Stat {
    const ALL: [Stat; 6] = [
        Stat::LinesSent,
        Stat::BytesSent,
        Stat::LinesWithoutClients,
        Stat::ClientsAccepted,
        Stat::ClientsDroppedSlow,
        Stat::ClientsDroppedGone,
    ];

    fn name(self) -> &'static str {
        match self {
            Stat::LinesSent => "lines_sent",
            Stat::BytesSent => "bytes_sent",
            Stat::LinesWithoutClients => "lines_without_clients",
            Stat::ClientsAccepted => "clients_accepted",
            Stat::ClientsDroppedSlow => "clients_dropped_slow",
            Stat::ClientsDroppedGone => "clients_dropped_gone",
        }
    }
}

#[derive(Default)]
struct StatsInner {
    values: [AtomicU64; 6],
    local_addr: Mutex<Option<SocketAddr>>,
}

/// A socket sink's counters, readable from any thread (a cheap handle). The query's
/// progress also shows them, per sink operator ([`SinkContext::counter`]).
#[derive(Clone, Default)]
pub struct SocketSinkStats {
    inner: Arc<StatsInner>,
}

impl fmt::Debug for SocketSinkStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("SocketSinkStats");
        for stat in Stat::ALL {
            s.field(stat.name(), &self.get(stat));
        }
        s.field("local_addr", &self.local_addr()).finish()
    }
}

impl SocketSinkStats {
    fn get(&self, stat: Stat) -> u64 {
        self.inner.values[stat as usize].load(Ordering::Relaxed)
    }

    /// Lines handed to the kernel (client mode) or to the connected clients (server
    /// mode; a line counts once however many clients get it).
    pub fn lines_sent(&self) -> u64 {
        self.get(Stat::LinesSent)
    }

    /// Bytes written to sockets (server mode: summed over clients).
    pub fn bytes_sent(&self) -> u64 {
        self.get(Stat::BytesSent)
    }

    /// Server mode: lines written while no client was connected.
    pub fn lines_without_clients(&self) -> u64 {
        self.get(Stat::LinesWithoutClients)
    }

    /// Server mode: clients accepted.
    pub fn clients_accepted(&self) -> u64 {
        self.get(Stat::ClientsAccepted)
    }

    /// Server mode: clients disconnected because they fell too far behind.
    pub fn clients_dropped_slow(&self) -> u64 {
        self.get(Stat::ClientsDroppedSlow)
    }

    /// Server mode: clients whose connection failed (closed, reset).
    pub fn clients_dropped_gone(&self) -> u64 {
        self.get(Stat::ClientsDroppedGone)
    }

    /// Server mode: the address listened on, once the query started.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self
            .inner
            .local_addr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where one sink instance counts: the shared stats and the instance's counters in the
/// query's progress ([`SinkContext::counter`]; only that instance's thread writes them).
struct Tally {
    stats: SocketSinkStats,
    progress: Vec<Arc<Counter>>,
}

impl Tally {
    fn add(&self, stat: Stat, n: u64) {
        self.stats.inner.values[stat as usize].fetch_add(n, Ordering::Relaxed);
        self.progress[stat as usize].add(n);
    }
}

/// Turns a record into the text of one line (without the `\n`).
pub trait LineFormat<T>: Clone + Send + 'static {
    /// Appends `record`'s line to `out`.
    fn write_line(&mut self, record: T, out: &mut Vec<u8>);
}

/// Each record's [`Display`](fmt::Display) text is its line.
#[derive(Debug, Clone, Copy, Default)]
pub struct DisplayLines;

impl<T: fmt::Display> LineFormat<T> for DisplayLines {
    #[inline]
    fn write_line(&mut self, record: T, out: &mut Vec<u8>) {
        // Writing into a `Vec` cannot fail.
        let _ = write!(out, "{record}");
    }
}

/// The closure's `String` is the line.
#[derive(Debug, Clone, Copy)]
pub struct FnLines<F>(pub F);

impl<T, F> LineFormat<T> for FnLines<F>
where
    F: FnMut(T) -> String + Clone + Send + 'static,
{
    #[inline]
    fn write_line(&mut self, record: T, out: &mut Vec<u8>) {
        out.extend_from_slice((self.0)(record).as_bytes());
    }
}

/// Writes records as text lines to TCP: see the [module documentation](self).
/// [`Stream::to_socket`](crate::Stream::to_socket) and
/// [`Stream::to_socket_with`](crate::Stream::to_socket_with) add one.
pub struct SocketSink<L> {
    config: SocketSinkConfig,
    format: L,
    /// The instance's formatted lines not yet handed on, and how many lines they are.
    pending: Vec<u8>,
    pending_lines: u64,
    /// Server mode: the listener and clients, shared by the clones (bound by the first
    /// instance to open).
    server: Arc<Mutex<Option<Server>>>,
    /// Client mode: this instance's connection, once open.
    link: Option<Link>,
    tally: Option<Tally>,
}

impl<L: Clone> Clone for SocketSink<L> {
    fn clone(&self) -> Self {
        SocketSink {
            config: self.config.clone(),
            format: self.format.clone(),
            pending: Vec::new(),
            pending_lines: 0,
            server: self.server.clone(),
            link: None,
            tally: None,
        }
    }
}

impl<L> fmt::Debug for SocketSink<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketSink")
            .field("mode", &self.config.mode)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl SocketSink<DisplayLines> {
    /// A sink writing each record's `Display` text as a line.
    pub fn new(config: SocketSinkConfig) -> Self {
        Self::with_lines(config, DisplayLines)
    }
}

impl<F> SocketSink<FnLines<F>> {
    /// A sink writing `line(record)` as each record's line.
    pub fn with_format(config: SocketSinkConfig, line: F) -> Self {
        Self::with_lines(config, FnLines(line))
    }
}

impl<L> SocketSink<L> {
    /// A sink formatting lines with `format`.
    pub fn with_lines(config: SocketSinkConfig, format: L) -> Self {
        SocketSink {
            config,
            format,
            pending: Vec::new(),
            pending_lines: 0,
            server: Arc::new(Mutex::new(None)),
            link: None,
            tally: None,
        }
    }

    fn tally(&self) -> &Tally {
        self.tally.as_ref().expect("the sink was opened")
    }

    fn lock_server(&self) -> MutexGuard<'_, Option<Server>> {
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands the pending lines on: to the connection (client) or to every client
    /// (server).
    fn send_pending(&mut self) -> Result<(), BoxError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.pending_lines);
        let tally = self.tally.as_ref().expect("the sink was opened");
        let result = match &mut self.link {
            Some(link) => link.send(&self.pending, self.config.write_timeout, tally),
            None => {
                let mut server = self.server.lock().unwrap_or_else(PoisonError::into_inner);
                match server.as_mut() {
                    Some(server) => server.broadcast(&self.pending, lines, &self.config, tally),
                    None => Err("the socket sink was written to before it was opened".into()),
                }
            }
        };
        if result.is_ok() && self.link.is_some() {
            tally.add(Stat::LinesSent, lines);
        }
        self.pending.clear();
        result
    }
}

impl<T, L: LineFormat<T>> Sink<T> for SocketSink<L> {
    /// Client mode: connects (an error names the address). Server mode: the first
    /// instance binds and listens (a port in use is an error).
    fn open(&mut self, context: &SinkContext) -> Result<(), BoxError> {
        self.tally = Some(Tally {
            stats: self.config.stats.clone(),
            progress: Stat::ALL
                .iter()
                .map(|s| context.counter(s.name()))
                .collect(),
        });
        match &self.config.mode {
            SocketMode::Client(address) => {
                self.link = Some(Link::connect(address, self.config.connect_timeout)?);
            }
            SocketMode::Server(address) => {
                let mut server = self.lock_server();
                match server.as_mut() {
                    Some(server) => server.instances += 1,
                    None => {
                        let bound = Server::bind(address)?;
                        *self
                            .config
                            .stats
                            .inner
                            .local_addr
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(bound.address);
                        *server = Some(bound);
                    }
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn write(&mut self, record: T) -> Result<(), BoxError> {
        self.format.write_line(record, &mut self.pending);
        self.pending.push(b'\n');
        self.pending_lines += 1;
        if self.pending.len() >= SEND_AT {
            self.send_pending()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        if self.pending.is_empty() && self.link.is_none() {
            // Server mode: take in new clients even when there is nothing to send.
            if let Some(server) = self.lock_server().as_mut() {
                server.accept(self.tally.as_ref().expect("the sink was opened"));
            }
            return Ok(());
        }
        self.send_pending()
    }

    /// Sends what is buffered, waiting at most the write timeout without progress;
    /// client mode then shuts the connection down, server mode (the last instance to
    /// close) drains the clients' buffers the same way and closes every connection.
    fn close(&mut self) -> Result<(), BoxError> {
        let sent = self.send_pending();
        if let Some(link) = self.link.take() {
            let _ = link.stream.shutdown(Shutdown::Write);
            return sent;
        }
        let write_timeout = self.config.write_timeout;
        let tally = self.tally();
        let mut guard = self.server.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = guard.as_mut() {
            server.instances -= 1;
            if server.instances == 0 {
                server.drain(write_timeout, tally);
                *guard = None;
            }
        }
        sent
    }
}

/// Client mode: one instance's connection.
struct Link {
    poll: Poll,
    events: Events,
    stream: TcpStream,
    peer: SocketAddr,
}

impl Link {
    /// Connects to the first address of `address` that accepts within `timeout`.
    fn connect(address: &str, timeout: Duration) -> Result<Link, BoxError> {
        let addresses: Vec<SocketAddr> = address
            .to_socket_addrs()
            .map_err(|error| format!("cannot connect to {address}: {error}"))?
            .collect();
        let mut last = format!("cannot connect to {address}: it resolved to no address");
        for peer in addresses {
            match std::net::TcpStream::connect_timeout(&peer, timeout) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    stream.set_nonblocking(true)?;
                    let mut stream = TcpStream::from_std(stream);
                    let poll = Poll::new()?;
                    poll.registry()
                        .register(&mut stream, Token(0), Interest::WRITABLE)?;
                    return Ok(Link {
                        poll,
                        events: Events::with_capacity(4),
                        stream,
                        peer,
                    });
                }
                Err(error) => last = format!("cannot connect to {address} ({peer}): {error}"),
            }
        }
        Err(last.into())
    }

    /// Writes all of `bytes`, waiting for the peer at most `timeout` without progress.
    fn send(&mut self, bytes: &[u8], timeout: Duration, tally: &Tally) -> Result<(), BoxError> {
        let mut written = 0;
        let mut progress = Instant::now();
        while written < bytes.len() {
            match self.stream.write(&bytes[written..]) {
                Ok(0) => {
                    return Err(format!("the peer {} stopped taking data", self.peer).into());
                }
                Ok(n) => {
                    written += n;
                    tally.add(Stat::BytesSent, n as u64);
                    progress = Instant::now();
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    let waited = progress.elapsed();
                    if waited >= timeout {
                        return Err(format!(
                            "the peer {} took no data for {timeout:?} ({} bytes unsent)",
                            self.peer,
                            bytes.len() - written
                        )
                        .into());
                    }
                    match self.poll.poll(&mut self.events, Some(timeout - waited)) {
                        Ok(()) => {}
                        Err(error) if error.kind() == ErrorKind::Interrupted => {}
                        Err(error) => return Err(error.into()),
                    }
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => {
                    return Err(format!("writing to the peer {} failed: {error}", self.peer).into())
                }
            }
        }
        Ok(())
    }
}

/// Server mode: the listener and its clients, shared by the sink's instances.
struct Server {
    poll: Poll,
    events: Events,
    listener: TcpListener,
    address: SocketAddr,
    clients: Vec<Client>,
    next_token: usize,
    /// Instances open and not closed yet.
    instances: usize,
    /// The wait for the first clients is over (or was never asked for).
    waited: bool,
}

struct Client {
    stream: TcpStream,
    /// Bytes the kernel did not take yet: `out[sent..]`.
    out: Vec<u8>,
    sent: usize,
}

/// Why a client is dropped.
enum Verdict {
    Slow,
    Gone,
}

impl Client {
    fn backlog(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Writes as much of the backlog, then of `bytes`, as the kernel takes now; keeps
    /// the rest. `Err` if the connection failed.
    fn offer(&mut self, bytes: &[u8], tally: &Tally) -> io::Result<()> {
        self.write_backlog(tally)?;
        let mut from = 0;
        if self.backlog() == 0 {
            from = write_some(&mut self.stream, bytes, tally)?;
        }
        self.out.extend_from_slice(&bytes[from..]);
        Ok(())
    }

    fn write_backlog(&mut self, tally: &Tally) -> io::Result<()> {
        if self.backlog() > 0 {
            self.sent += write_some(&mut self.stream, &self.out[self.sent..], tally)?;
            if self.sent == self.out.len() {
                self.out.clear();
                self.sent = 0;
            } else if self.sent > self.out.len() / 2 {
                self.out.drain(..self.sent);
                self.sent = 0;
            }
        }
        Ok(())
    }
}

/// Writes `bytes` until the kernel takes no more; returns how many it took.
fn write_some(stream: &mut TcpStream, bytes: &[u8], tally: &Tally) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match stream.write(&bytes[written..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                written += n;
                tally.add(Stat::BytesSent, n as u64);
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(written)
}

impl Server {
    fn bind(address: &str) -> Result<Server, BoxError> {
        let bind = address
            .to_socket_addrs()
            .map_err(|error| format!("cannot listen on {address}: {error}"))?
            .next()
            .ok_or_else(|| format!("cannot listen on {address}: it resolved to no address"))?;
        let mut listener = TcpListener::bind(bind)
            .map_err(|error| format!("cannot listen on {address}: {error}"))?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Server {
            address: listener.local_addr()?,
            poll,
            events: Events::with_capacity(64),
            listener,
            clients: Vec::new(),
            next_token: 1,
            instances: 1,
            waited: false,
        })
    }

    /// Accepts every client waiting.
    fn accept(&mut self, tally: &Tally) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    let _ = stream.set_nodelay(true);
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, token, Interest::WRITABLE)
                        .is_err()
                    {
                        continue;
                    }
                    tally.add(Stat::ClientsAccepted, 1);
                    self.clients.push(Client {
                        stream,
                        out: Vec::new(),
                        sent: 0,
                    });
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) => {}
                // WouldBlock: nobody else waits; anything else (out of file descriptors):
                // the client stays in the backlog until the next flush.
                Err(_) => return,
            }
        }
    }

    /// Waits (once) until `clients` clients are connected, for at most `timeout`.
    fn wait_for(
        &mut self,
        clients: usize,
        timeout: Duration,
        tally: &Tally,
    ) -> Result<(), BoxError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.accept(tally);
            if self.clients.len() >= clients {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "only {} of {clients} clients connected to {} within {timeout:?}",
                    self.clients.len(),
                    self.address
                )
                .into());
            }
            let _ = self.poll.poll(&mut self.events, Some(deadline - now));
        }
    }

    /// Offers `bytes` (`lines` lines) to every client, dropping the ones too far behind
    /// or gone.
    fn broadcast(
        &mut self,
        bytes: &[u8],
        lines: u64,
        config: &SocketSinkConfig,
        tally: &Tally,
    ) -> Result<(), BoxError> {
        if !self.waited {
            self.waited = true;
            if let Some((clients, timeout)) = config.wait_for_clients {
                self.wait_for(clients, timeout, tally)?;
            }
        }
        self.accept(tally);
        if self.clients.is_empty() {
            tally.add(Stat::LinesWithoutClients, lines);
            return Ok(());
        }
        let limit = config.client_buffer_bytes;
        self.retain(tally, |client| match client.offer(bytes, tally) {
            Err(_) => Some(Verdict::Gone),
            Ok(()) if client.backlog() > limit => Some(Verdict::Slow),
            Ok(()) => None,
        });
        tally.add(Stat::LinesSent, lines);
        Ok(())
    }

    /// Drops the clients `verdict` gives a reason for, counting them.
    fn retain(&mut self, tally: &Tally, mut verdict: impl FnMut(&mut Client) -> Option<Verdict>) {
        let registry = self.poll.registry();
        self.clients.retain_mut(|client| match verdict(client) {
            None => true,
            Some(why) => {
                tally.add(
                    match why {
                        Verdict::Slow => Stat::ClientsDroppedSlow,
                        Verdict::Gone => Stat::ClientsDroppedGone,
                    },
                    1,
                );
                let _ = registry.deregister(&mut client.stream);
                let _ = client.stream.shutdown(Shutdown::Both);
                false
            }
        });
    }

    /// End of stream: waits for the clients to take their backlogs (at most `timeout`
    /// without progress), drops those that do not, and closes every connection.
    fn drain(&mut self, timeout: Duration, tally: &Tally) {
        let mut progress = Instant::now();
        loop {
            let before: usize = self.clients.iter().map(Client::backlog).sum();
            self.retain(tally, |client| match client.write_backlog(tally) {
                Err(_) => Some(Verdict::Gone),
                Ok(()) => None,
            });
            let after: usize = self.clients.iter().map(Client::backlog).sum();
            if after == 0 {
                break;
            }
            if after < before {
                progress = Instant::now();
            }
            let waited = progress.elapsed();
            if waited >= timeout {
                self.retain(tally, |client| {
                    (client.backlog() > 0).then_some(Verdict::Slow)
                });
                break;
            }
            let _ = self.poll.poll(&mut self.events, Some(timeout - waited));
        }
        for client in &mut self.clients {
            let _ = client.stream.shutdown(Shutdown::Write);
        }
    }
}
