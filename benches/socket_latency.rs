//! Latency from a TCP client's write to the sink: rivulet's socket source against a
//! hand-written `mio` reader doing the same line splitting and hand-off, in the same run.
//!
//! ```text
//! cargo bench --bench socket_latency
//! ```
//!
//! A writer thread sends 100,000 lines per second over loopback **open loop**: line `i`
//! is due at `start + i × 10 µs`, and the writer sends every line that is due (all of them
//! in one write when it fell behind), never waiting for the reader. A line's latency is
//! the time the sink saw it minus its *scheduled* send time, so a stall in the writer or
//! the reader shows up in every line it delays (no coordinated omission; nothing to
//! correct afterwards). The first 0.5 s of each run are warm-up and not recorded.
//!
//! Five runs of 3 s each:
//!
//! * `rivulet, chained`: `socket_text` (server mode) with the sink chained on the
//!   source's thread, default wait policy (spin briefly, then block in the source's
//!   `mio` poll);
//! * `mio reader, same thread`: one thread blocking in a `mio` poll, reading 64 KiB at a
//!   time, splitting lines with `memchr`, making a `String` of each and recording it;
//! * `rivulet, chained, no spin`: the same with `SpinThenPark { spins: 0, yields: 0 }`,
//!   blocking in the poll as soon as the source is idle, as the hand-written reader does;
//! * `rivulet, new_thread`: the same source with the sink on a thread of its own (one
//!   ring between them);
//! * `mio reader → channel`: the hand-written reader handing each `String` over a bounded
//!   `crossbeam-channel` to a recording thread;
//! * diagnostics of the `new_thread` run: `no spin` (`SpinThenPark { spins: 0, yields: 0
//!   }`), `no yield` (`SpinThenPark { spins: 8, yields: 0 }`: the default without its
//!   yield phase) and `unpinned` (`Pinning::None`).
//!
//! `SOCKET_LATENCY_RUNS=new_thread,channel` (keys: `chained`, `reader`, `no_spin`,
//! `new_thread`, `new_thread_no_spin`, `new_thread_no_yields`, `new_thread_unpinned`,
//! `channel`) runs only those, e.g. to look at one under `strace -f` or `perf`.
//!
//! The writer thread spins between its lines, so on a 2-core machine it takes a core, and
//! one of the query's two threads shares a core with it. Under the default wait policy a
//! thread that waits through its yield phase next to that busy writer loses the core for
//! a time slice at each `yield_now` (ms): that is what the `new_thread` run measures at
//! p50, and the `no yield` run shows it.
//!
//! Percentiles come from HDR histograms (3 significant digits). Under `cargo test
//! --benches` (no `--bench` argument) each run lasts 0.3 s: a smoke test.

use hdrhistogram::Histogram;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use rivulet::error::BoxError;
use rivulet::sink::Sink;
use rivulet::source::SocketSourceConfig;
use rivulet::{Pinning, Query, WaitPolicy};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RATE: u64 = 100_000;
/// A wait policy that blocks in the source's poll as soon as it is idle, as the
/// hand-written reader does.
const BLOCK_AT_ONCE: WaitPolicy = WaitPolicy::SpinThenPark {
    spins: 0,
    yields: 0,
};
/// The default's spin rounds without its yield phase: spin a few µs, then block.
const SPIN_NO_YIELDS: WaitPolicy = WaitPolicy::SpinThenPark {
    spins: 8,
    yields: 0,
};
const WARM_UP: Duration = Duration::from_millis(500);
/// Bytes per line, `\n` included.
const LINE: usize = 64;

/// Line `seq`'s scheduled send time, relative to the start.
fn offset(seq: u64) -> Duration {
    Duration::from_nanos(seq * 1_000_000_000 / RATE)
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// The latency of `line` (its sequence number leads) seen now, if it is past the
/// warm-up.
fn latency(line: &str, start: Instant, warm: u64) -> Option<u64> {
    let now = Instant::now();
    let seq: u64 = line.split(' ').next()?.parse().ok()?;
    if seq < warm {
        return None;
    }
    let due = start + offset(seq);
    Some(now.saturating_duration_since(due).as_nanos() as u64)
}

/// Sends `total` lines on the open-loop schedule from `start`, then closes.
fn write_lines(mut stream: TcpStream, start: Instant, total: u64) {
    stream.set_nodelay(true).unwrap();
    let mut next = 0u64;
    let mut buffer = Vec::with_capacity(1 << 20);
    while next < total {
        let elapsed = start.elapsed();
        let due = ((elapsed.as_nanos() * u128::from(RATE) / 1_000_000_000) as u64 + 1).min(total);
        if due > next {
            buffer.clear();
            for seq in next..due {
                let head = format!("{seq} ");
                buffer.extend_from_slice(head.as_bytes());
                buffer.resize(buffer.len() + LINE - 1 - head.len(), b'x');
                buffer.push(b'\n');
            }
            stream.write_all(&buffer).expect("the reader is there");
            next = due;
            continue;
        }
        let wait = offset(next).saturating_sub(start.elapsed());
        if wait > Duration::from_micros(60) {
            std::thread::sleep(wait - Duration::from_micros(50));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Records every line's latency; merged into `out` at the end.
#[derive(Clone)]
struct LatencySink {
    start: Arc<Mutex<Option<Instant>>>,
    cached: Option<Instant>,
    warm: u64,
    histogram: Histogram<u64>,
    lines: u64,
    out: Arc<Mutex<(Histogram<u64>, u64)>>,
}

impl Sink<String> for LatencySink {
    fn write(&mut self, line: String) -> Result<(), BoxError> {
        let start = match self.cached {
            Some(start) => start,
            None => {
                let start = self.start.lock().unwrap().expect("the writer started");
                self.cached = Some(start);
                start
            }
        };
        self.lines += 1;
        if let Some(ns) = latency(&line, start, self.warm) {
            self.histogram.saturating_record(ns);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        let mut out = self.out.lock().unwrap();
        out.0.add(&self.histogram)?;
        out.1 += self.lines;
        Ok(())
    }
}

struct Outcome {
    histogram: Histogram<u64>,
    lines: u64,
}

fn rivulet(total: u64, warm: u64, new_thread: bool, policy: WaitPolicy, pin: bool) -> Outcome {
    let config = SocketSourceConfig::server("127.0.0.1:0").end_when_clients_leave(true);
    let stats = config.stats();
    let start = Arc::new(Mutex::new(None));
    let out = Arc::new(Mutex::new((new_histogram(), 0)));
    let sink = LatencySink {
        start: start.clone(),
        cached: None,
        warm,
        histogram: new_histogram(),
        lines: 0,
        out: out.clone(),
    };
    let mut query = Query::builder();
    query.wait_policy(policy);
    if !pin {
        query.pinning(Pinning::None);
    }
    let lines = query.socket_text("lines", config);
    if new_thread {
        lines.new_thread().sink("latency", sink);
    } else {
        lines.sink("latency", sink);
    }
    let running = query.start().expect("the query starts");
    let stream = TcpStream::connect(stats.local_addr().unwrap()).unwrap();
    let begin = Instant::now();
    *start.lock().unwrap() = Some(begin);
    write_lines(stream, begin, total);
    running.await_termination().expect("the query ends cleanly");
    let (histogram, lines) = std::mem::replace(&mut *out.lock().unwrap(), (new_histogram(), 0));
    Outcome { histogram, lines }
}

/// The hand-written reader: blocks in its poll, reads 64 KiB at a time, splits lines
/// with `memchr` (keeping a partial line across reads), makes a `String` of each, and
/// hands it to `deliver`.
fn read_lines(listener: &mut TcpListener, mut deliver: impl FnMut(String)) {
    let mut poll = Poll::new().unwrap();
    poll.registry()
        .register(listener, Token(0), Interest::READABLE)
        .unwrap();
    let mut events = Events::with_capacity(16);
    let mut stream = loop {
        poll.poll(&mut events, None).unwrap();
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(error) if error.kind() == ErrorKind::WouldBlock => continue,
            Err(error) => panic!("accept: {error}"),
        }
    };
    poll.registry()
        .register(&mut stream, Token(1), Interest::READABLE)
        .unwrap();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut partial = Vec::new();
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => {
                let mut bytes = &buffer[..n];
                while let Some(end) = memchr::memchr(b'\n', bytes) {
                    let line = if partial.is_empty() {
                        std::str::from_utf8(&bytes[..end]).unwrap().to_owned()
                    } else {
                        partial.extend_from_slice(&bytes[..end]);
                        let line = std::str::from_utf8(&partial).unwrap().to_owned();
                        partial.clear();
                        line
                    };
                    deliver(line);
                    bytes = &bytes[end + 1..];
                }
                partial.extend_from_slice(bytes);
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                poll.poll(&mut events, None).unwrap();
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => panic!("read: {error}"),
        }
    }
}

fn hand_written(total: u64, warm: u64, hand_off: bool) -> Outcome {
    let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let start = Arc::new(Mutex::new(None::<Instant>));
    let started = start.clone();
    let reader = std::thread::spawn(move || {
        let mut histogram = new_histogram();
        let mut lines = 0u64;
        let mut cached = None;
        let mut record = move |line: String, histogram: &mut Histogram<u64>| {
            let start = *cached.get_or_insert_with(|| started.lock().unwrap().unwrap());
            if let Some(ns) = latency(&line, start, warm) {
                histogram.saturating_record(ns);
            }
        };
        if hand_off {
            let (sender, receiver) = crossbeam_channel::bounded::<String>(1024);
            let consumer = std::thread::spawn(move || {
                let mut histogram = new_histogram();
                let mut lines = 0u64;
                for line in receiver {
                    lines += 1;
                    record(line, &mut histogram);
                }
                (histogram, lines)
            });
            read_lines(&mut listener, |line| sender.send(line).unwrap());
            drop(sender);
            consumer.join().unwrap()
        } else {
            read_lines(&mut listener, |line| {
                lines += 1;
                record(line, &mut histogram);
            });
            (histogram, lines)
        }
    });
    let stream = TcpStream::connect(address).unwrap();
    let begin = Instant::now();
    *start.lock().unwrap() = Some(begin);
    write_lines(stream, begin, total);
    let (histogram, lines) = reader.join().unwrap();
    Outcome { histogram, lines }
}

fn micros(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

fn row(name: &str, outcome: &Outcome, total: u64) {
    let h = &outcome.histogram;
    println!(
        "{name:<28} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10}{}",
        micros(h.value_at_quantile(0.5)),
        micros(h.value_at_quantile(0.99)),
        micros(h.value_at_quantile(0.999)),
        micros(h.max()),
        outcome.lines,
        if outcome.lines == total {
            String::new()
        } else {
            format!("  (expected {total}: lines lost!)")
        }
    );
}

fn ratio(name: &str, ours: &Outcome, theirs: &Outcome) {
    let of = |q: f64| {
        ours.histogram.value_at_quantile(q) as f64
            / theirs.histogram.value_at_quantile(q).max(1) as f64
    };
    println!(
        "{name:<28} {:>8.2}× {:>8.2}× {:>8.2}×",
        of(0.5),
        of(0.99),
        of(0.999)
    );
}

/// Whether run `key` was selected: all of them, unless `SOCKET_LATENCY_RUNS` names some
/// (comma-separated keys, listed in the module docs).
fn selected(key: &str) -> bool {
    match std::env::var("SOCKET_LATENCY_RUNS") {
        Ok(keys) => keys.split(',').any(|k| k.trim() == key),
        Err(_) => true,
    }
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let run = if full {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(300)
    };
    let total = RATE * run.as_millis() as u64 / 1_000;
    let warm = if full {
        RATE * WARM_UP.as_millis() as u64 / 1_000
    } else {
        0
    };
    println!(
        "socket source → sink over loopback: {RATE} lines/s open loop, {LINE}-byte lines, \
         {:.1} s per run ({} recorded after warm-up); latency = sink time − scheduled send time",
        run.as_secs_f64(),
        total - warm
    );
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "run", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "lines"
    );
    let run_if = |key: &str, name: &str, run: &dyn Fn() -> Outcome| {
        selected(key).then(|| {
            let outcome = run();
            row(name, &outcome, total);
            outcome
        })
    };
    let chained = run_if("chained", "rivulet, chained", &|| {
        rivulet(total, warm, false, WaitPolicy::default(), true)
    });
    let reader = run_if("reader", "mio reader, same thread", &|| {
        hand_written(total, warm, false)
    });
    let parking = run_if("no_spin", "rivulet, chained, no spin", &|| {
        rivulet(total, warm, false, BLOCK_AT_ONCE, true)
    });
    let threaded = run_if("new_thread", "rivulet, new_thread", &|| {
        rivulet(total, warm, true, WaitPolicy::default(), true)
    });
    let threaded_no_spin = run_if(
        "new_thread_no_spin",
        "rivulet, new_thread, no spin",
        &|| rivulet(total, warm, true, BLOCK_AT_ONCE, true),
    );
    let no_yields = run_if(
        "new_thread_no_yields",
        "rivulet, new_thread, no yield",
        &|| rivulet(total, warm, true, SPIN_NO_YIELDS, true),
    );
    let unpinned = run_if(
        "new_thread_unpinned",
        "rivulet, new_thread, unpinned",
        &|| rivulet(total, warm, true, WaitPolicy::default(), false),
    );
    let channel = run_if("channel", "mio reader → channel", &|| {
        hand_written(total, warm, true)
    });
    println!(
        "{:<28} {:>9} {:>9} {:>9}",
        "ratio (rivulet / mio)", "p50", "p99", "p99.9"
    );
    let pairs = [
        ("chained / same thread", &chained, &reader),
        ("chained, no spin / same", &parking, &reader),
        ("new_thread / channel", &threaded, &channel),
        ("new_thread, no spin / chan", &threaded_no_spin, &channel),
        ("new_thread, no yield / chan", &no_yields, &channel),
        ("new_thread, unpinned / chan", &unpinned, &channel),
    ];
    for (name, ours, theirs) in pairs {
        if let (Some(ours), Some(theirs)) = (ours, theirs) {
            ratio(name, ours, theirs);
        }
    }
}
