//! The stream–stream inner join (issue #13): peak throughput against a hand-written join
//! of the same records on one thread, and open-loop latency and state size at a fixed
//! rate per side against a hand-written one-thread join fed by the same schedule, in the
//! same run.
//!
//! ```text
//! cargo bench --bench stream_join                   # everything
//! cargo bench --bench stream_join -- throughput     # or: latency
//! RUNS=5 RECORDS=5000000 RATE=1000000 BENCH_SECONDS=10 cargo bench --bench stream_join
//! ```
//!
//! **The join.** Both sides are `(key, event time)` records, record `i` of either side at
//! event time `i` µs (throughput) or at its scheduled send time (latency), key `i % 100`;
//! `left.time BETWEEN right.time − 50 µs AND right.time + 50 µs`, watermark delay 1 ms on
//! both sides (sent every 64 records or 100 µs). So every row has exactly one partner (the
//! other side's record with the same `i`), and a row stays in the state for about the
//! delay plus the range.
//!
//! **Throughput.** `RECORDS` records per side from two `from_iter` sources:
//! `with_event_time → with_watermark → key_by → join → event_time → within → inner →
//! for_each` (three threads: two sources, the join with its sink). Against it, one thread
//! joining the same records by hand (alternating sides; per side a hash map of key to a
//! deque of times and a FIFO of arrivals for eviction, evicting every 64 records by the
//! same state watermarks). Both count the pairs, which must agree. Medians of `RUNS` runs.
//!
//! **Latency and state.** `RATE` records per second per side, open loop, for
//! `BENCH_SECONDS`: record `i` of each side is due at `start + i / RATE` and carries that
//! instant as its event time; a pair's latency is the sink's clock minus the later of its
//! two rows' scheduled times (coordinated-omission free: a source that falls behind still
//! stamps the schedule), into an HDR histogram. The state size is the join's `state_rows`
//! gauge, read from progress every 100 ms. The hand-written side: one thread generating
//! the same schedule for both sides and joining each record as it falls due (the floor:
//! no rings, no threads; caught up, it waits as the engine's default wait policy does:
//! 8 spins, 100 yields, then a sleep until the next record is due), same histogram; its
//! state size is sampled every 100 ms.

use hdrhistogram::Histogram;
use rivulet::join::{TimeRange, STATE_ROWS};
use rivulet::source::{Source, SourcePoll};
use rivulet::time::WatermarkConfig;
use rivulet::{Query, Timestamp};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEYS: u64 = 100;
/// left.time − right.time ∈ [LOWER, UPPER], µs.
const LOWER: i64 = -50;
const UPPER: i64 = 50;
const DELAY_US: i64 = 1_000;
const RING: usize = 1024;

/// One record: (key, event time µs).
type Ev = (u32, i64);

fn watermark() -> WatermarkConfig {
    WatermarkConfig::new(Duration::from_micros(DELAY_US as u64))
        .emit_every_records(64)
        .emit_interval(Duration::from_micros(100))
}

fn event_time(e: &Ev) -> Timestamp {
    Timestamp(e.1)
}

/// Counts pairs in the sink thread and hands the count over when dropped (at the end of
/// the query), so the sink does no shared write per record.
struct Tally {
    local: u64,
    latencies: Option<Histogram<u64>>,
    shared: Arc<Mutex<(u64, Option<Histogram<u64>>)>>,
}

impl Tally {
    #[inline]
    fn pair(&mut self, latency: Option<u64>) {
        self.local += 1;
        if let (Some(h), Some(latency)) = (&mut self.latencies, latency) {
            h.saturating_record(latency);
        }
    }
}

/// A fresh tally per sink instance, handing over to the same total.
impl Clone for Tally {
    fn clone(&self) -> Self {
        Tally {
            local: 0,
            latencies: self.latencies.as_ref().map(|_| histogram()),
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let mut shared = self.shared.lock().unwrap();
        shared.0 += self.local;
        if let Some(h) = self.latencies.take() {
            match &mut shared.1 {
                Some(all) => all.add(&h).unwrap(),
                None => shared.1 = Some(h),
            }
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap()
}

/// The hand-written join state of one side: rows per key in time order, and the arrival
/// FIFO that eviction pops (rows arrive in time order here).
#[derive(Default)]
struct HandSide {
    by_key: FxHashMap<u32, VecDeque<i64>>,
    fifo: VecDeque<Ev>,
}

impl HandSide {
    fn insert(&mut self, (key, time): Ev) {
        self.by_key.entry(key).or_default().push_back(time);
        self.fifo.push_back((key, time));
    }

    /// Matches of a row of the other side: times in `[lo, hi]` of `key`.
    #[inline]
    fn matches(&self, key: u32, lo: i64, hi: i64, mut f: impl FnMut(i64)) {
        if let Some(times) = self.by_key.get(&key) {
            let start = times.partition_point(|t| *t < lo);
            for t in times.range(start..) {
                if *t > hi {
                    break;
                }
                f(*t);
            }
        }
    }

    fn evict(&mut self, until: i64) {
        while let Some(&(key, time)) = self.fifo.front() {
            if time > until {
                break;
            }
            self.fifo.pop_front();
            let times = self.by_key.get_mut(&key).unwrap();
            times.pop_front();
            if times.is_empty() {
                self.by_key.remove(&key);
            }
        }
    }

    fn len(&self) -> usize {
        self.fifo.len()
    }
}

/// The hand-written symmetric hash join: both sides' states and the watermark rule.
#[derive(Default)]
struct HandJoin {
    left: HandSide,
    right: HandSide,
    max_left: i64,
    max_right: i64,
    since_evict: u32,
}

impl HandJoin {
    #[inline]
    fn left(&mut self, e: Ev, mut pair: impl FnMut(i64, i64)) {
        self.right
            .matches(e.0, e.1 - UPPER, e.1 - LOWER, |r| pair(e.1, r));
        self.left.insert(e);
        self.max_left = self.max_left.max(e.1);
        self.tick();
    }

    #[inline]
    fn right(&mut self, e: Ev, mut pair: impl FnMut(i64, i64)) {
        self.left
            .matches(e.0, e.1 + LOWER, e.1 + UPPER, |l| pair(l, e.1));
        self.right.insert(e);
        self.max_right = self.max_right.max(e.1);
        self.tick();
    }

    #[inline]
    fn tick(&mut self) {
        self.since_evict += 1;
        if self.since_evict == 64 {
            self.since_evict = 0;
            let w = self.max_left.min(self.max_right) - DELAY_US;
            self.left.evict(w + LOWER);
            self.right.evict(w - UPPER);
        }
    }

    fn len(&self) -> usize {
        self.left.len() + self.right.len()
    }
}

fn left_events(records: u64) -> impl Iterator<Item = Ev> + Send + 'static {
    (0..records).map(|i| ((i % KEYS) as u32, i as i64))
}

fn range() -> TimeRange {
    TimeRange::from_micros(LOWER, UPPER).unwrap()
}

/// The engine over `records` per side: records per second per side, and the pairs.
fn engine(records: u64) -> (f64, u64) {
    let shared = Arc::new(Mutex::new((0u64, None)));
    let mut tally = Tally {
        local: 0,
        latencies: None,
        shared: shared.clone(),
    };
    let mut query = Query::builder();
    query.ring_capacity(RING);
    let left = query
        .from_iter("left", left_events(records))
        .with_event_time(event_time)
        .with_watermark_config(watermark())
        .key_by(|e: &Ev| e.0);
    let right = query
        .from_iter("right", left_events(records))
        .with_event_time(event_time)
        .with_watermark_config(watermark())
        .key_by(|e: &Ev| e.0);
    left.join(right)
        .event_time(event_time, event_time)
        .within(range())
        .inner(|_, l, r| (l.1, r.1))
        .for_each(move |pair: (i64, i64)| {
            black_box(pair);
            tally.pair(None);
        });
    let start = Instant::now();
    let running = query.start().expect("start");
    running.await_termination().expect("run");
    let elapsed = start.elapsed().as_secs_f64();
    let pairs = shared.lock().unwrap().0;
    (records as f64 / elapsed, pairs)
}

/// The same join by hand on one thread.
fn by_hand(records: u64) -> (f64, u64) {
    let start = Instant::now();
    let mut join = HandJoin::default();
    let mut pairs = 0u64;
    for (l, r) in left_events(records).zip(left_events(records)) {
        join.left(l, |a, b| {
            black_box((a, b));
            pairs += 1;
        });
        join.right(r, |a, b| {
            black_box((a, b));
            pairs += 1;
        });
    }
    let elapsed = start.elapsed().as_secs_f64();
    (records as f64 / elapsed, pairs)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn throughput(runs: usize, records: u64) {
    println!("## Throughput: inner join, {records} records per side, medians of {runs} runs");
    println!();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (rate, pairs) = engine(records);
        let (hand_rate, hand_pairs) = by_hand(records);
        assert_eq!(pairs, hand_pairs, "the engine and the hand join agree");
        assert_eq!(pairs, records, "one partner per row");
        ours.push(rate);
        theirs.push(hand_rate);
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!("| join | records/s per side | ratio |");
    println!("|---|---|---|");
    println!(
        "| rivulet (3 threads) | {:.2} M | {:.2} |",
        ours / 1e6,
        ours / theirs
    );
    println!("| by hand (1 thread) | {:.2} M | 1 |", theirs / 1e6);
    println!();
}

/// Records of one side due on a schedule, with the scheduled instant as event time.
#[derive(Debug)]
struct Scheduled {
    start: Instant,
    start_us: i64,
    interval_ns: u64,
    total: u64,
    next: u64,
}

impl Scheduled {
    fn new(start: Instant, start_us: i64, rate: u64, seconds: u64) -> Self {
        Scheduled {
            start,
            start_us,
            interval_ns: 1_000_000_000 / rate,
            total: rate * seconds,
            next: 0,
        }
    }

    /// Record `i`: its due instant and the event.
    #[inline]
    fn record(&self, i: u64) -> (Instant, Ev) {
        let offset_ns = i * self.interval_ns;
        let event = (
            (i % KEYS) as u32,
            self.start_us + (offset_ns / 1_000) as i64,
        );
        (self.start + Duration::from_nanos(offset_ns), event)
    }
}

impl Source for Scheduled {
    type Item = Ev;

    #[inline]
    fn poll_next(&mut self) -> SourcePoll<Ev> {
        if self.next >= self.total {
            return SourcePoll::Exhausted;
        }
        let (due, event) = self.record(self.next);
        if Instant::now() < due {
            return SourcePoll::Pending { until: Some(due) };
        }
        self.next += 1;
        SourcePoll::Ready(event)
    }

    fn has_data(&self) -> bool {
        false
    }
}

/// A latency run's results.
struct LatencyRun {
    histogram: Histogram<u64>,
    pairs: u64,
    /// State rows, sampled.
    state: Vec<u64>,
}

fn latency_engine(rate: u64, seconds: u64) -> LatencyRun {
    let shared = Arc::new(Mutex::new((0u64, None)));
    let mut tally = Tally {
        local: 0,
        latencies: Some(histogram()),
        shared: shared.clone(),
    };
    let mut query = Query::builder();
    query.ring_capacity(RING);
    let (start, start_us) = (Instant::now(), Timestamp::now().0);
    let left = query
        .source("left", Scheduled::new(start, start_us, rate, seconds))
        .with_event_time(event_time)
        .with_watermark_config(watermark())
        .key_by(|e: &Ev| e.0);
    let right = query
        .source("right", Scheduled::new(start, start_us, rate, seconds))
        .with_event_time(event_time)
        .with_watermark_config(watermark())
        .key_by(|e: &Ev| e.0);
    left.join(right)
        .event_time(event_time, event_time)
        .within(range())
        .inner(|_, l, r| l.1.max(r.1))
        .for_each(move |sent: i64| {
            let now = Timestamp::now().0;
            tally.pair(Some(now.saturating_sub(sent).max(0) as u64));
        });
    let running = query.start().expect("start");
    let mut state = Vec::new();
    while running.is_active() {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(join) = running.progress().operator("join") {
            state.push(join.counters.get(STATE_ROWS).copied().unwrap_or(0));
        }
    }
    running.await_termination().expect("run");
    let mut shared = shared.lock().unwrap();
    LatencyRun {
        histogram: shared.1.take().unwrap(),
        pairs: shared.0,
        state,
    }
}

/// The same join by hand on one thread, fed by the same schedule: whatever both sides have
/// due is joined at once; caught up, it waits as the engine's default wait policy does (8
/// spins, 100 yields, then a sleep until the next record is due).
fn latency_by_hand(rate: u64, seconds: u64) -> LatencyRun {
    let (start, start_us) = (Instant::now(), Timestamp::now().0);
    let schedule = Scheduled::new(start, start_us, rate, seconds);
    let mut h = histogram();
    let mut join = HandJoin::default();
    let mut pairs = 0u64;
    let mut state = Vec::new();
    let mut next_sample = start + Duration::from_millis(100);
    let mut idle = 0u32;
    let mut i = 0;
    while i < schedule.total {
        let now = Instant::now();
        let (due, event) = schedule.record(i);
        if due <= now {
            let mut record = |l: i64, r: i64| {
                let now = Timestamp::now().0;
                h.saturating_record(now.saturating_sub(l.max(r)).max(0) as u64);
                pairs += 1;
            };
            join.left(event, &mut record);
            join.right(event, &mut record);
            i += 1;
            idle = 0;
            continue;
        }
        if now >= next_sample {
            state.push(join.len() as u64);
            next_sample += Duration::from_millis(100);
        }
        idle += 1;
        if idle <= 8 {
            std::hint::spin_loop();
        } else if idle <= 108 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(due - now);
        }
    }
    LatencyRun {
        histogram: h,
        pairs,
        state,
    }
}

fn latency(runs: usize, rate: u64, seconds: u64) {
    println!(
        "## Latency and state: inner join, {rate} records/s per side, open loop, {seconds} s, \
         {runs} runs"
    );
    println!();
    println!(
        "| join | run | pairs | p50 (µs) | p99 (µs) | p99.9 (µs) | max (µs) | state rows \
         (median / max of samples) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for run in 0..runs {
        for (name, result) in [
            ("rivulet", latency_engine(rate, seconds)),
            ("by hand", latency_by_hand(rate, seconds)),
        ] {
            let h = &result.histogram;
            let mut state = result.state.clone();
            state.sort_unstable();
            let (mid, max) = (
                state.get(state.len() / 2).copied().unwrap_or(0),
                state.last().copied().unwrap_or(0),
            );
            println!(
                "| {name} | {run} | {} | {} | {} | {} | {} | {mid} / {max} |",
                result.pairs,
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max()
            );
        }
    }
    println!();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wants = |what: &str| {
        !args.iter().any(|a| a == "throughput" || a == "latency") || args.iter().any(|a| a == what)
    };
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let runs = env("RUNS", 5) as usize;
    if wants("throughput") {
        throughput(runs, env("RECORDS", 5_000_000));
    }
    if wants("latency") {
        latency(
            runs.min(3),
            env("RATE", 1_000_000),
            env("BENCH_SECONDS", 10),
        );
    }
}
