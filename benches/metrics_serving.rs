//! The cost of serving metrics: records per second through a two-thread pipeline with
//! no endpoint, with an idle endpoint, and with a client polling the endpoint every
//! 100 ms, in the same run as the hand-written floor (two threads, one raw `rtrb` ring,
//! the same `u64`s).
//!
//! ```text
//! cargo bench --bench metrics_serving
//! RIVULET_SERVE_RUNS=15 RIVULET_SERVE_RECORDS=50000000 cargo bench --bench metrics_serving
//! ```
//!
//! Every rivulet variant is `from_iter` → `new_thread()` → sink, continuous, with an
//! epoch (and so a progress report) every 100 ms, default wait policy and pinning. The
//! polling client asks, every 100 ms, for what a Prometheus scrape and a dashboard
//! refresh ask for together (`/metrics`, `/progress/recent`, `/live/recent`, `/plan`);
//! the dashboard itself polls once a second. The server samples the live counters every
//! second (the default).
//!
//! Variants run interleaved, a different one first in each round, and each figure is
//! the median of the rounds (a custom `main`, as `csv_source`: the ratios come from the
//! same rounds, which a noisy shared machine needs more than criterion's statistics).

use rivulet::{Query, Trigger};
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RING: usize = 1024;
const RUNS: usize = 9;
const POLL: Duration = Duration::from_millis(100);

/// Two threads, one raw rtrb ring, both spinning: the floor.
fn raw_rtrb(records: u64) -> Duration {
    let (mut producer, mut consumer) = rtrb::RingBuffer::<u64>::new(RING);
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        for i in 0..records {
            let mut item = i;
            while let Err(rtrb::PushError::Full(back)) = producer.push(item) {
                item = back;
                std::hint::spin_loop();
            }
        }
    });
    let mut sum = 0u64;
    let mut received = 0;
    while received < records {
        match consumer.pop() {
            Ok(value) => {
                sum = sum.wrapping_add(value);
                received += 1;
            }
            Err(_) => std::hint::spin_loop(),
        }
    }
    sender.join().unwrap();
    black_box(sum);
    start.elapsed()
}

/// `GET path` over HTTP/1.0; the body's length.
fn get(addr: SocketAddr, path: &str) -> usize {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    response.len()
}

/// Polls `addr` every [`POLL`] until `stop`; returns the polls made.
fn poll(addr: SocketAddr, stop: Arc<AtomicBool>) -> u64 {
    let mut polls = 0;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        for path in ["/metrics", "/progress/recent", "/live/recent", "/plan"] {
            black_box(get(addr, path));
        }
        polls += 1;
        next += POLL;
        while !stop.load(Ordering::Relaxed) && Instant::now() < next {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    polls
}

#[derive(Clone, Copy, PartialEq)]
enum Serving {
    None,
    Idle,
    Polled,
}

/// source → thread boundary → sink, with epochs; the time from `start()` to the end,
/// and the polls made.
fn rivulet(records: u64, serving: Serving) -> (Duration, u64) {
    let sum = Arc::new(AtomicU64::new(0));
    let mut query = Query::builder();
    query.ring_capacity(RING).trigger(Trigger::Continuous {
        checkpoint_interval: Duration::from_millis(100),
    });
    let total = sum.clone();
    let mut local = 0u64;
    let mut seen = 0u64;
    query
        .from_iter("numbers", 0..records)
        .new_thread()
        .for_each(move |value| {
            local = local.wrapping_add(value);
            seen += 1;
            if seen == records {
                total.store(local, Ordering::Relaxed);
            }
        });
    let start = Instant::now();
    let running = query.start().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut client = None;
    if serving != Serving::None {
        let server = running.serve_metrics("127.0.0.1:0").unwrap();
        if serving == Serving::Polled {
            let (addr, stop) = (server.local_addr(), stop.clone());
            client = Some(std::thread::spawn(move || poll(addr, stop)));
        }
    }
    running.await_termination().unwrap();
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let polls = client.map_or(0, |client| client.join().unwrap());
    running.stop().unwrap();
    assert_eq!(
        sum.load(Ordering::Relaxed),
        (0..records).fold(0u64, u64::wrapping_add)
    );
    (elapsed, polls)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: a quick check then.
    let testing = !std::env::args().any(|arg| arg == "--bench");
    let records: u64 = std::env::var("RIVULET_SERVE_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if testing { 200_000 } else { 20_000_000 });
    let runs: usize = std::env::var("RIVULET_SERVE_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(if testing { 1 } else { RUNS });
    let names = [
        "raw rtrb, 2 threads (floor)",
        "rivulet, no endpoint",
        "rivulet, endpoint, no client",
        "rivulet, endpoint polled every 100 ms",
    ];
    let mut times: [Vec<Duration>; 4] = Default::default();
    let mut polls = Vec::new();
    for run in 0..runs {
        for step in 0..4 {
            let which = (run + step) % 4;
            let elapsed = match which {
                0 => raw_rtrb(records),
                1 => rivulet(records, Serving::None).0,
                2 => rivulet(records, Serving::Idle).0,
                _ => {
                    let (elapsed, made) = rivulet(records, Serving::Polled);
                    polls.push(made);
                    elapsed
                }
            };
            times[which].push(elapsed);
        }
    }
    println!("metrics_serving: {records} records, median of {runs} rounds");
    let rates: Vec<f64> = times
        .into_iter()
        .map(|samples| records as f64 / median(samples).as_secs_f64())
        .collect();
    for (name, rate) in names.iter().zip(&rates) {
        println!(
            "  {name:<40} {:>7.2} M records/s  {:>5.3}x the floor",
            rate / 1e6,
            rate / rates[0]
        );
    }
    polls.sort_unstable();
    println!(
        "  polled / no endpoint: {:.3} (polls per run: median {})",
        rates[3] / rates[1],
        polls[polls.len() / 2]
    );
    println!("  idle / no endpoint:   {:.3}", rates[2] / rates[1]);
}
