//! What one ring hop costs: an engine edge (`rivulet::edge::channel` over `RtrbRing`, the
//! `Event` wrapper, dirty-flag notifications, the wait policy) against a raw `rtrb` ring
//! moving the same `u64`s, on two threads.
//!
//! ```text
//! cargo bench --bench edge_hop
//! ```
//!
//! * `hop_throughput/*`: one producer streams records through one ring as fast as it can;
//!   time per record (criterion also prints records/s).
//! * `hop_latency/*`: one-way latency of a lone record: the producer stamps it, the
//!   consumer subtracts the stamp on arrival (both read one monotonic clock); the next
//!   record is sent only after the previous one arrived, so nothing queues. Includes one
//!   clock read (~20 ns) on each side.
//! * `ping_pong/*`: round trip over two rings: A sends, B echoes, A waits for the echo.
//!
//! Each is measured for the raw ring (both threads spinning), the engine edge with
//! `WaitPolicy::BusySpin` (same waiting as raw: the difference is the edge itself) and
//! with the default `SpinThenPark` (what a query gets unless it asks).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rivulet::edge::wait::{wait_until, Backoff};
use rivulet::edge::{channel, EdgeReceiver, EdgeSender, Event, RtrbRing, WaitPolicy, WakeSignal};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RING: usize = 1024;
/// Records per flush on the engine edge, like the runtime's step budget.
const FLUSH_EVERY: u64 = 256;

type Tx = EdgeSender<u64, rtrb::Producer<Event<u64>>>;
type Rx = EdgeReceiver<u64, rtrb::Consumer<Event<u64>>>;

/// The two ends of an engine edge and the wake signals of the threads that own them.
struct Edge {
    tx: Tx,
    rx: Rx,
    producer: Arc<WakeSignal>,
    consumer: Arc<WakeSignal>,
    policy: WaitPolicy,
}

fn edge(policy: WaitPolicy) -> Edge {
    let producer = Arc::new(WakeSignal::new());
    let consumer = Arc::new(WakeSignal::new());
    let abort = Arc::new(AtomicBool::new(false));
    let (tx, rx) =
        channel::<u64, RtrbRing>(RING, producer.clone(), consumer.clone(), abort, policy);
    Edge {
        tx,
        rx,
        producer,
        consumer,
        policy,
    }
}

/// Receives the next event on `rx` as an operator thread does: pop, and when empty flush
/// pending notifications and wait by the policy (parking on `signal` if it says so).
#[inline]
fn recv(rx: &mut Rx, signal: &WakeSignal, backoff: &mut Backoff) -> Event<u64> {
    loop {
        if let Some(event) = rx.try_recv() {
            backoff.reset();
            return event;
        }
        rx.flush();
        wait_until(signal, backoff, None, || rx.is_ready(), || {});
    }
}

/// Pops from a raw ring, spinning while it is empty.
#[inline]
fn raw_pop(rx: &mut rtrb::Consumer<u64>) -> u64 {
    loop {
        match rx.pop() {
            Ok(value) => return value,
            Err(_) => std::hint::spin_loop(),
        }
    }
}

/// Pushes to a raw ring, spinning while it is full.
#[inline]
fn raw_push(tx: &mut rtrb::Producer<u64>, mut value: u64) {
    loop {
        match tx.push(value) {
            Ok(()) => return,
            Err(rtrb::PushError::Full(back)) => {
                value = back;
                std::hint::spin_loop();
            }
        }
    }
}

// ---- throughput -------------------------------------------------------------------------

fn raw_stream(records: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(RING);
    let consumer = std::thread::spawn(move || {
        let mut sum = 0u64;
        for _ in 0..records {
            sum = sum.wrapping_add(raw_pop(&mut rx));
        }
        black_box(sum);
    });
    let start = Instant::now();
    for i in 0..records {
        raw_push(&mut tx, i);
    }
    consumer.join().unwrap();
    start.elapsed()
}

fn edge_stream(records: u64, policy: WaitPolicy) -> Duration {
    let Edge {
        mut tx,
        mut rx,
        producer,
        consumer,
        policy,
    } = edge(policy);
    let receiver = std::thread::spawn(move || {
        consumer.register_current();
        let mut backoff = Backoff::new(policy);
        let mut sum = 0u64;
        let mut popped = 0u64;
        loop {
            match recv(&mut rx, &consumer, &mut backoff) {
                Event::Record(value) => sum = sum.wrapping_add(value),
                Event::End => break,
                _ => {}
            }
            popped += 1;
            if popped.is_multiple_of(FLUSH_EVERY) {
                rx.flush();
            }
        }
        rx.flush();
        black_box(sum);
    });
    producer.register_current();
    let start = Instant::now();
    for i in 0..records {
        tx.send(Event::Record(i)).unwrap();
        if i % FLUSH_EVERY == FLUSH_EVERY - 1 {
            tx.flush();
        }
    }
    tx.send(Event::End).unwrap();
    tx.flush();
    receiver.join().unwrap();
    start.elapsed()
}

// ---- one-way latency --------------------------------------------------------------------

/// Sends `records` lone records, each stamped; returns the sum of their one-way latencies.
fn raw_one_way(records: u64) -> Duration {
    let base = Instant::now();
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(RING);
    let arrived = Arc::new(AtomicU64::new(0));
    let seen = arrived.clone();
    let consumer = std::thread::spawn(move || {
        let mut total = 0u64;
        for i in 0..records {
            let sent = raw_pop(&mut rx);
            total += base.elapsed().as_nanos() as u64 - sent;
            seen.store(i + 1, Ordering::Release);
        }
        total
    });
    for i in 0..records {
        raw_push(&mut tx, base.elapsed().as_nanos() as u64);
        while arrived.load(Ordering::Acquire) <= i {
            std::hint::spin_loop();
        }
    }
    Duration::from_nanos(consumer.join().unwrap())
}

fn edge_one_way(records: u64, policy: WaitPolicy) -> Duration {
    let base = Instant::now();
    let Edge {
        mut tx,
        mut rx,
        producer,
        consumer,
        policy,
    } = edge(policy);
    let arrived = Arc::new(AtomicU64::new(0));
    let seen = arrived.clone();
    let receiver = std::thread::spawn(move || {
        consumer.register_current();
        let mut backoff = Backoff::new(policy);
        let mut total = 0u64;
        for i in 0..records {
            if let Event::Record(sent) = recv(&mut rx, &consumer, &mut backoff) {
                total += base.elapsed().as_nanos() as u64 - sent;
            }
            rx.flush();
            seen.store(i + 1, Ordering::Release);
        }
        total
    });
    producer.register_current();
    for i in 0..records {
        tx.send(Event::Record(base.elapsed().as_nanos() as u64))
            .unwrap();
        // A lone record ends a step of work: the runtime flushes (wakes a parked peer).
        tx.flush();
        while arrived.load(Ordering::Acquire) <= i {
            std::hint::spin_loop();
        }
    }
    Duration::from_nanos(receiver.join().unwrap())
}

// ---- ping-pong --------------------------------------------------------------------------

fn raw_ping_pong(round_trips: u64) -> Duration {
    let (mut ping_tx, mut ping_rx) = rtrb::RingBuffer::<u64>::new(RING);
    let (mut pong_tx, mut pong_rx) = rtrb::RingBuffer::<u64>::new(RING);
    let echo = std::thread::spawn(move || {
        for _ in 0..round_trips {
            let value = raw_pop(&mut ping_rx);
            raw_push(&mut pong_tx, value);
        }
    });
    let start = Instant::now();
    for i in 0..round_trips {
        raw_push(&mut ping_tx, i);
        black_box(raw_pop(&mut pong_rx));
    }
    let elapsed = start.elapsed();
    echo.join().unwrap();
    elapsed
}

fn edge_ping_pong(round_trips: u64, policy: WaitPolicy) -> Duration {
    // Thread A owns ping.tx and pong.rx; thread B owns ping.rx and pong.tx. Each thread
    // has one wake signal, shared by its two edge ends.
    let a = Arc::new(WakeSignal::new());
    let b = Arc::new(WakeSignal::new());
    let abort = Arc::new(AtomicBool::new(false));
    let (mut ping_tx, mut ping_rx) =
        channel::<u64, RtrbRing>(RING, a.clone(), b.clone(), abort.clone(), policy);
    let (mut pong_tx, mut pong_rx) =
        channel::<u64, RtrbRing>(RING, b.clone(), a.clone(), abort, policy);
    let echo = {
        let b = b.clone();
        std::thread::spawn(move || {
            b.register_current();
            let mut backoff = Backoff::new(policy);
            for _ in 0..round_trips {
                if let Event::Record(value) = recv(&mut ping_rx, &b, &mut backoff) {
                    pong_tx.send(Event::Record(value)).unwrap();
                    pong_tx.flush();
                }
                ping_rx.flush();
            }
        })
    };
    a.register_current();
    let mut backoff = Backoff::new(policy);
    let start = Instant::now();
    for i in 0..round_trips {
        ping_tx.send(Event::Record(i)).unwrap();
        ping_tx.flush();
        black_box(recv(&mut pong_rx, &a, &mut backoff));
        pong_rx.flush();
    }
    let elapsed = start.elapsed();
    echo.join().unwrap();
    elapsed
}

// ---- criterion --------------------------------------------------------------------------

const POLICIES: [(&str, WaitPolicy); 2] = [
    ("edge_busy_spin", WaitPolicy::BusySpin),
    (
        "edge_spin_then_park",
        WaitPolicy::SpinThenPark {
            spins: 6,
            yields: 4,
        },
    ),
];

fn hop(c: &mut Criterion) {
    let mut group = c.benchmark_group("hop_throughput");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("raw_rtrb", |b| b.iter_custom(raw_stream));
    for (name, policy) in POLICIES {
        group.bench_function(name, |b| b.iter_custom(|n| edge_stream(n, policy)));
    }
    group.finish();

    let mut group = c.benchmark_group("hop_latency");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("raw_rtrb", |b| b.iter_custom(raw_one_way));
    for (name, policy) in POLICIES {
        group.bench_function(name, |b| b.iter_custom(|n| edge_one_way(n, policy)));
    }
    group.finish();

    let mut group = c.benchmark_group("ping_pong");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function(BenchmarkId::new("raw_rtrb", "2_rings"), |b| {
        b.iter_custom(raw_ping_pong)
    });
    for (name, policy) in POLICIES {
        group.bench_function(BenchmarkId::new(name, "2_edges"), |b| {
            b.iter_custom(|n| edge_ping_pong(n, policy))
        });
    }
    group.finish();
}

criterion_group!(benches, hop);
criterion_main!(benches);
