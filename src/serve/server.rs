//! The serving thread and its handle.

use super::feed::Feed;
use crate::error::{Error, Result};
use crate::query::progress::ProgressReader;
use crate::sync::Arc;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tiny_http::{Header, Method, Request, Response};

/// Settings of a metrics server
/// ([`Query::serve_metrics_with`](crate::Query::serve_metrics_with)).
///
/// ```
/// use rivulet::serve::ServeOptions;
/// use std::time::Duration;
///
/// let options = ServeOptions::default()
///     .sample_every(Duration::from_millis(250))
///     .history(240); // one minute
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct ServeOptions {
    sample_every: Duration,
    history: usize,
}

impl Default for ServeOptions {
    /// A sample every second, the last 300 kept (five minutes).
    fn default() -> Self {
        ServeOptions {
            sample_every: Duration::from_secs(1),
            history: 300,
        }
    }
}

impl ServeOptions {
    /// How often the serving thread samples the live counters into the history that
    /// `/live/recent` returns (what the dashboard charts for a query without epochs);
    /// at least 1 ms.
    pub fn sample_every(mut self, interval: Duration) -> Self {
        self.sample_every = interval.max(Duration::from_millis(1));
        self
    }

    /// How many samples the history keeps (at least 1).
    pub fn history(mut self, samples: usize) -> Self {
        self.history = samples.max(1);
        self
    }
}

/// A running metrics server: its address, and a way to stop it before the query.
///
/// Clones share the server. Dropping a handle does not stop it: the query does
/// ([`Query::stop`](crate::Query::stop), [`Query::abort`](crate::Query::abort), or
/// dropping the `Query`), or [`stop`](Self::stop).
#[derive(Debug, Clone)]
pub struct MetricsServer {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    stop: AtomicBool,
    server: Mutex<Option<Arc<tiny_http::Server>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .field("stopped", &self.stop.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// Listens on `addr` and starts the serving thread.
    pub(crate) fn start(
        addr: &str,
        reader: Arc<ProgressReader>,
        options: ServeOptions,
    ) -> Result<MetricsServer> {
        let serve_error = |source: Box<dyn std::error::Error + Send + Sync>| Error::Serve {
            addr: addr.to_string(),
            source: std::sync::Arc::from(source),
        };
        let resolved: SocketAddr = addr
            .to_socket_addrs()
            .map_err(|error| serve_error(Box::new(error)))?
            .next()
            .ok_or_else(|| serve_error("the name resolves to no address".into()))?;
        let server = Arc::new(tiny_http::Server::http(resolved).map_err(serve_error)?);
        let local = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| serve_error("not an IP address".into()))?;
        let inner = Arc::new(Inner {
            addr: local,
            stop: AtomicBool::new(false),
            server: Mutex::new(Some(server.clone())),
            thread: Mutex::new(None),
        });
        let feed = Feed::new(reader, options.history);
        let thread_inner = inner.clone();
        let thread = std::thread::Builder::new()
            .name("rivulet:metrics".to_string())
            .spawn(move || serve(&server, &feed, &thread_inner.stop, options.sample_every))
            .map_err(|error| Error::Spawn {
                operator: "metrics server".to_string(),
                source: std::sync::Arc::new(error),
            })?;
        *inner.thread.lock().unwrap() = Some(thread);
        Ok(MetricsServer { inner })
    }

    /// The address the server listens on (with the port picked, if `0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The dashboard's URL, `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.inner.addr)
    }

    /// `true` until the server is stopped.
    pub fn is_running(&self) -> bool {
        !self.inner.stop.load(Ordering::Acquire)
    }

    /// Stops the server: joins the serving thread and returns once the port is closed
    /// (see the [module docs](super) on tiny_http's own threads). Idempotent.
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::Release);
        let server = self.inner.server.lock().unwrap().take();
        if let Some(server) = &server {
            server.unblock();
        }
        let thread = self.inner.thread.lock().unwrap().take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        if let Some(server) = server {
            // The last reference: dropping it wakes tiny_http's accept thread, which
            // closes the listening socket as it ends.
            drop(server);
            wait_closed(self.inner.addr);
        }
    }
}

/// Waits (a bounded time) until nothing accepts connections on `addr` any more.
fn wait_closed(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(probe) => drop(probe),
            Err(_) => return,
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The serving thread: answers requests, samples the progress every `interval`.
fn serve(server: &tiny_http::Server, feed: &Feed, stop: &AtomicBool, interval: Duration) {
    let mut next_sample = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if now >= next_sample {
            feed.sample();
            next_sample = now + interval;
        }
        match server.recv_timeout(next_sample.saturating_duration_since(Instant::now())) {
            Ok(Some(request)) => respond(feed, request),
            Ok(None) => {}
            Err(_) => break,
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

/// Answers one request.
fn respond(feed: &Feed, request: Request) {
    if *request.method() != Method::Get && *request.method() != Method::Head {
        let _ = request.respond(
            Response::from_string("only GET is served\n")
                .with_status_code(405)
                .with_header(header("Allow", "GET, HEAD")),
        );
        return;
    }
    let path = request.url().split('?').next().unwrap_or("/").to_string();
    let (body, content_type) = match path.as_str() {
        "/" | "/index.html" => (
            super::dashboard_html().to_string(),
            "text/html; charset=utf-8",
        ),
        "/dashboard.js" => (
            super::dashboard_script().to_string(),
            "text/javascript; charset=utf-8",
        ),
        "/metrics" => (
            feed.prometheus(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/progress" => (feed.last_progress_json(), "application/json"),
        "/progress/recent" => (feed.recent_progress_json(), "application/json"),
        "/status" => (feed.status_json(), "application/json"),
        "/live" => (feed.live_json(), "application/json"),
        "/live/recent" => (feed.live_recent_json(), "application/json"),
        "/plan" => (feed.plan_json(), "application/json"),
        _ => {
            let _ = request.respond(
                Response::from_string(format!(
                    "no such page: {path} (try /, /metrics, /progress, /progress/recent, /status, \
                     /live, /live/recent, /plan)\n"
                ))
                .with_status_code(404),
            );
            return;
        }
    };
    let _ = request.respond(
        Response::from_string(body)
            .with_header(header("Content-Type", content_type))
            .with_header(header("Cache-Control", "no-store")),
    );
}
