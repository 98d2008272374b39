//! What every system under test runs: the record, the open-loop schedule, the generator,
//! the per-record work of each workload, and the latency recorder at the sink.
//!
//! The engine and the hand-written baselines share all of it, so they differ only in how
//! records travel between the two threads.

use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A named benchmark pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Workload {
    /// generator → filter → map → thread boundary → sink (2 threads).
    Stateless,
    /// generator → thread boundary → key_by (1,000 keys) → running count → sink.
    Keyed,
}

/// Largest latency a histogram holds (100 s, in ns); larger values saturate there.
pub(crate) const HISTOGRAM_MAX_NS: u64 = 100_000_000_000;
/// Significant decimal digits of every histogram.
pub(crate) const HISTOGRAM_SIGFIG: u8 = 3;

/// An empty latency histogram (nanoseconds, 1 ns to 100 s, 3 significant digits). All
/// histograms of a run share this shape, so they can be merged.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, HISTOGRAM_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// A monotonic clock in nanoseconds since a base [`Instant`] shared by every thread of a
/// benchmark, so a time taken on one thread can be subtracted from one taken on another.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    base: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub(crate) fn new() -> Self {
        Clock {
            base: Instant::now(),
        }
    }

    /// Nanoseconds since the base.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// The [`Instant`] `ns` nanoseconds after the base.
    pub(crate) fn instant_at(&self, ns: u64) -> Instant {
        self.base + Duration::from_nanos(ns)
    }
}

/// The record every system moves: 40 bytes, plain old data. (Serde, because keyed state
/// must be snapshot-able: the running count keeps the last record per key.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct BenchRecord {
    /// 0, 1, 2, … in schedule order.
    pub(crate) seq: u64,
    /// The record's key (`value % keys`).
    pub(crate) key: u64,
    /// A pseudo-random payload derived from `seq`.
    pub(crate) value: u64,
    /// When the schedule said to send it, in [`Clock`] nanoseconds.
    pub(crate) scheduled_ns: u64,
    /// When the generator actually produced it, in [`Clock`] nanoseconds.
    pub(crate) sent_ns: u64,
}

/// Gives the sink the [`BenchRecord`] inside whatever a pipeline emits.
pub(crate) trait Timed {
    /// The record that carries the send times.
    fn bench_record(&self) -> &BenchRecord;
}

impl Timed for BenchRecord {
    #[inline]
    fn bench_record(&self) -> &BenchRecord {
        self
    }
}

/// A keyed running count's output: `(key, (count, last record))`.
impl Timed for (u64, (u64, BenchRecord)) {
    #[inline]
    fn bench_record(&self) -> &BenchRecord {
        &self.1 .1
    }
}

/// The open-loop schedule: record `i` is due `i / rate` seconds after the start. The first
/// `warmup_records` are sent but not measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// Records per second.
    pub(crate) rate: u64,
    /// Records sent during the warm-up.
    pub(crate) warmup_records: u64,
    /// Records sent in all (warm-up plus measurement).
    pub(crate) total_records: u64,
}

impl Schedule {
    /// The schedule of `rate` records per second for `warmup` then `duration`.
    ///
    /// # Panics
    ///
    /// If `rate` is 0 (the command line refuses it earlier).
    pub(crate) fn new(rate: u64, warmup: Duration, duration: Duration) -> Self {
        assert!(rate > 0, "the rate must be positive");
        let warmup_records = records_in(rate, warmup);
        Schedule {
            rate,
            warmup_records,
            total_records: warmup_records + records_in(rate, duration),
        }
    }

    /// Nanoseconds from the start at which record `seq` is due.
    #[inline]
    pub(crate) fn offset_ns(&self, seq: u64) -> u64 {
        let ns = u128::from(seq) * 1_000_000_000 / u128::from(self.rate);
        ns.min(u128::from(u64::MAX)) as u64
    }

    /// `true` if record `seq` falls in the measured part (after the warm-up).
    #[inline]
    pub(crate) fn is_measured(&self, seq: u64) -> bool {
        seq >= self.warmup_records
    }

    /// Records sent after the warm-up.
    pub(crate) fn measured_records(&self) -> u64 {
        self.total_records - self.warmup_records
    }
}

/// Records sent at `rate` per second in `span`.
fn records_in(rate: u64, span: Duration) -> u64 {
    let records = span.as_nanos() * u128::from(rate) / 1_000_000_000;
    records.min(u128::from(u64::MAX)) as u64
}

/// SplitMix64: the payload of record `seq`, so every system sees the same values.
#[inline]
pub(crate) fn payload(seq: u64) -> u64 {
    let mut z = seq.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What [`Generator::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// The next record, due now or overdue (a generator that fell behind catches up at
    /// full speed).
    Ready(BenchRecord),
    /// The next record is due at this [`Clock`] time.
    NotBefore(u64),
    /// Every record was sent.
    Done,
}

/// Produces the schedule's records, each no earlier than its scheduled time.
#[derive(Debug, Clone)]
pub(crate) struct Generator {
    clock: Clock,
    schedule: Schedule,
    keys: u64,
    next: u64,
    /// Clock time of record 0; set by the first poll.
    start_ns: Option<u64>,
}

impl Generator {
    /// A generator of `schedule`'s records with keys in `0..keys`.
    pub(crate) fn new(clock: Clock, schedule: Schedule, keys: u64) -> Self {
        Generator {
            clock,
            schedule,
            keys: keys.max(1),
            next: 0,
            start_ns: None,
        }
    }

    /// The next record if it is due, else when it will be.
    #[inline]
    pub(crate) fn poll(&mut self) -> Due {
        if self.next >= self.schedule.total_records {
            return Due::Done;
        }
        let now = self.clock.now_ns();
        let start = *self.start_ns.get_or_insert(now);
        let scheduled_ns = start + self.schedule.offset_ns(self.next);
        if now < scheduled_ns {
            return Due::NotBefore(scheduled_ns);
        }
        let seq = self.next;
        self.next += 1;
        let value = payload(seq);
        Due::Ready(BenchRecord {
            seq,
            key: value % self.keys,
            value,
            scheduled_ns,
            sent_ns: now,
        })
    }

    /// The next record, waiting for its time as the engine's source thread does (spin
    /// through gaps under 50 µs, sleep through longer ones); `None` at the end.
    #[inline]
    pub(crate) fn next_blocking(&mut self) -> Option<BenchRecord> {
        loop {
            match self.poll() {
                Due::Ready(record) => return Some(record),
                Due::Done => return None,
                Due::NotBefore(due) => {
                    let gap = due.saturating_sub(self.clock.now_ns());
                    if gap > 50_000 {
                        std::thread::sleep(Duration::from_nanos(gap - 50_000));
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
        }
    }

    /// The clock the generator stamps records with.
    pub(crate) fn clock(&self) -> Clock {
        self.clock
    }
}

/// The engine's view of a [`Generator`].
#[derive(Debug)]
pub(crate) struct GeneratorSource(pub(crate) Generator);

impl rivulet::source::Source for GeneratorSource {
    type Item = BenchRecord;

    #[inline]
    fn poll_next(&mut self) -> rivulet::source::SourcePoll<BenchRecord> {
        use rivulet::source::SourcePoll;
        match self.0.poll() {
            Due::Ready(record) => SourcePoll::Ready(record),
            Due::NotBefore(due) => SourcePoll::Pending {
                until: Some(self.0.clock().instant_at(due)),
            },
            Due::Done => SourcePoll::Exhausted,
        }
    }

    fn has_data(&self) -> bool {
        // Time, not a peer, makes records due: wait with the deadline from `Pending`.
        false
    }

    fn can_replay(&self) -> bool {
        true
    }

    fn checkpoint(&mut self, _epoch: rivulet::Epoch) -> Result<Vec<u8>, rivulet::error::BoxError> {
        Ok(self.0.next.to_le_bytes().to_vec())
    }

    fn restore(&mut self, offset: &[u8]) -> Result<(), rivulet::error::BoxError> {
        let bytes: [u8; 8] = offset
            .try_into()
            .map_err(|_| format!("a generator offset is 8 bytes, not {}", offset.len()))?;
        self.0.next = u64::from_le_bytes(bytes);
        Ok(())
    }
}

/// The stateless workload's filter: drops one record in 64.
#[inline]
pub(crate) fn keep(record: &BenchRecord) -> bool {
    !record.value.is_multiple_of(64)
}

/// The stateless workload's map: rewrites the payload.
#[inline]
pub(crate) fn transform(mut record: BenchRecord) -> BenchRecord {
    record.value = record.value.rotate_left(17) ^ 0x5851_F42D_4C95_7F2D;
    record
}

/// The keyed workload's key.
#[inline]
pub(crate) fn key_of(record: &BenchRecord) -> u64 {
    record.key
}

/// The keyed workload's running count, by hand (what the baselines run): the state and
/// output of `key_by(key_of).fold((0, record), …)`.
#[derive(Debug, Default)]
pub(crate) struct KeyedCount {
    counts: FxHashMap<u64, (u64, BenchRecord)>,
}

impl KeyedCount {
    /// Counts `record` under its key and returns the emitted `(key, (count, record))`.
    #[inline]
    pub(crate) fn update(&mut self, record: BenchRecord) -> (u64, (u64, BenchRecord)) {
        let key = key_of(&record);
        let entry = self.counts.entry(key).or_insert((0, record));
        entry.0 += 1;
        entry.1 = record;
        (key, *entry)
    }
}

/// The fold step of the engine's keyed count (same state as [`KeyedCount`]).
#[inline]
pub(crate) fn count_step(acc: &mut (u64, BenchRecord), record: BenchRecord) {
    acc.0 += 1;
    acc.1 = record;
}

/// Latency histograms of one sink thread, filled without sharing, handed over at the end.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    clock: Clock,
    schedule: Schedule,
    recorded: Recorded,
}

/// What a [`Recorder`] collected.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// Latency from the scheduled send time (coordinated-omission corrected), ns.
    pub(crate) corrected: Histogram<u64>,
    /// Latency from the actual send time (uncorrected), ns.
    pub(crate) uncorrected: Histogram<u64>,
    /// Every record that reached the sink, warm-up included.
    pub(crate) received: u64,
    /// Clock time of the first and last measured record's arrival (0 if none).
    pub(crate) first_ns: u64,
    /// See `first_ns`.
    pub(crate) last_ns: u64,
    /// Lowest and highest sequence number measured (`u64::MAX`, 0 if none).
    pub(crate) first_seq: u64,
    /// See `first_seq`.
    pub(crate) last_seq: u64,
}

impl Recorded {
    /// Nothing recorded yet.
    pub(crate) fn empty() -> Self {
        Recorded {
            corrected: new_histogram(),
            uncorrected: new_histogram(),
            received: 0,
            first_ns: 0,
            last_ns: 0,
            first_seq: u64::MAX,
            last_seq: 0,
        }
    }

    /// Adds `other`'s records (another sink instance of the same run).
    pub(crate) fn merge(&mut self, other: &Recorded) {
        self.corrected
            .add(&other.corrected)
            .expect("histograms of one shape merge");
        self.uncorrected
            .add(&other.uncorrected)
            .expect("histograms of one shape merge");
        self.received += other.received;
        if other.first_ns != 0 && (self.first_ns == 0 || other.first_ns < self.first_ns) {
            self.first_ns = other.first_ns;
        }
        self.last_ns = self.last_ns.max(other.last_ns);
        self.first_seq = self.first_seq.min(other.first_seq);
        self.last_seq = self.last_seq.max(other.last_seq);
    }

    /// Generator records per second that made it through to the sink, between the first
    /// and last measured arrival. Counted by sequence number, so records a filter dropped
    /// on the way count too: this is the offered rate when the system keeps up.
    pub(crate) fn achieved_rate(&self) -> f64 {
        let span = self.last_ns.saturating_sub(self.first_ns);
        if self.last_seq <= self.first_seq || span == 0 {
            0.0
        } else {
            (self.last_seq - self.first_seq) as f64 * 1e9 / span as f64
        }
    }
}

impl Recorder {
    /// An empty recorder for `schedule` on `clock`.
    pub(crate) fn new(clock: Clock, schedule: Schedule) -> Self {
        Recorder {
            clock,
            schedule,
            recorded: Recorded::empty(),
        }
    }

    /// Records the arrival of `record` now.
    #[inline]
    pub(crate) fn record(&mut self, record: &BenchRecord) {
        let now = self.clock.now_ns();
        let recorded = &mut self.recorded;
        recorded.received += 1;
        if self.schedule.is_measured(record.seq) {
            recorded
                .corrected
                .saturating_record(now.saturating_sub(record.scheduled_ns));
            recorded
                .uncorrected
                .saturating_record(now.saturating_sub(record.sent_ns));
            if recorded.first_ns == 0 {
                recorded.first_ns = now;
            }
            recorded.last_ns = now;
            recorded.first_seq = recorded.first_seq.min(record.seq);
            recorded.last_seq = recorded.last_seq.max(record.seq);
        }
    }

    /// Hands over what was recorded, leaving the recorder empty.
    pub(crate) fn take(&mut self) -> Recorded {
        std::mem::replace(&mut self.recorded, Recorded::empty())
    }
}

/// The engine's sink: records every arrival into its own [`Recorder`] (no lock, no
/// sharing per record) and sends the histograms over a channel at end-of-stream.
#[derive(Debug, Clone)]
pub(crate) struct LatencySink {
    recorder: Recorder,
    done: std::sync::mpsc::Sender<Recorded>,
}

impl LatencySink {
    /// A sink that hands its histograms to `done` when its stream ends.
    pub(crate) fn new(recorder: Recorder, done: std::sync::mpsc::Sender<Recorded>) -> Self {
        LatencySink { recorder, done }
    }
}

impl<T: Timed> rivulet::sink::Sink<T> for LatencySink {
    #[inline]
    fn write(&mut self, record: T) -> Result<(), rivulet::error::BoxError> {
        self.recorder.record(record.bench_record());
        black_box(&record);
        Ok(())
    }

    fn close(&mut self) -> Result<(), rivulet::error::BoxError> {
        // The receiver outlives the query unless the benchmark gave up on it.
        let _ = self.done.send(self.recorder.take());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_counts_and_offsets() {
        let schedule = Schedule::new(1_000_000, Duration::from_secs(2), Duration::from_secs(10));
        assert_eq!(schedule.warmup_records, 2_000_000);
        assert_eq!(schedule.total_records, 12_000_000);
        assert_eq!(schedule.measured_records(), 10_000_000);
        assert_eq!(schedule.offset_ns(0), 0);
        assert_eq!(schedule.offset_ns(1), 1_000);
        assert_eq!(schedule.offset_ns(1_000_000), 1_000_000_000);
        assert!(!schedule.is_measured(1_999_999));
        assert!(schedule.is_measured(2_000_000));

        // Rates that do not divide a second: offsets round down and never drift.
        let odd = Schedule::new(3, Duration::ZERO, Duration::from_secs(1));
        assert_eq!(odd.total_records, 3);
        assert_eq!(
            (0..4).map(|i| odd.offset_ns(i)).collect::<Vec<_>>(),
            vec![0, 333_333_333, 666_666_666, 1_000_000_000]
        );
        let fast = Schedule::new(
            7_000_000,
            Duration::from_millis(1),
            Duration::from_millis(3),
        );
        assert_eq!(fast.warmup_records, 7_000);
        assert_eq!(fast.total_records, 28_000);
        assert_eq!(fast.offset_ns(7_000_000 * 3600), 3600 * 1_000_000_000);
    }

    #[test]
    fn generator_follows_the_schedule_and_catches_up() {
        let clock = Clock::new();
        let schedule = Schedule::new(10_000, Duration::ZERO, Duration::from_millis(5));
        let mut generator = Generator::new(clock, schedule, 1000);
        let mut records = Vec::new();
        while let Some(record) = generator.next_blocking() {
            assert!(record.sent_ns >= record.scheduled_ns, "never sent early");
            records.push(record);
        }
        assert_eq!(records.len(), 50);
        let start = records[0].scheduled_ns;
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record.seq, i as u64);
            assert_eq!(record.scheduled_ns - start, i as u64 * 100_000);
            assert_eq!(record.value, payload(i as u64));
            assert!(record.key < 1000);
        }
        assert_eq!(generator.poll(), Due::Done);

        // Behind schedule: everything already due comes out at once, with the scheduled
        // times of the plan, not of the (late) sending.
        let mut late = Generator::new(clock, schedule, 10);
        let Due::Ready(first) = late.poll() else {
            panic!("record 0 is due at once")
        };
        std::thread::sleep(Duration::from_millis(2));
        let mut burst = 0;
        while let Due::Ready(record) = late.poll() {
            assert_eq!(
                record.scheduled_ns - first.scheduled_ns,
                record.seq * 100_000
            );
            burst += 1;
        }
        assert!(
            burst >= 19,
            "2 ms behind at 10k/s is ~20 records, got {burst}"
        );
    }

    #[test]
    fn recorder_skips_the_warmup_and_measures_both_latencies() {
        let clock = Clock::new();
        let schedule = Schedule {
            rate: 1000,
            warmup_records: 2,
            total_records: 5,
        };
        let mut recorder = Recorder::new(clock, schedule);
        std::thread::sleep(Duration::from_millis(3));
        for seq in 0..5 {
            recorder.record(&BenchRecord {
                seq,
                scheduled_ns: 0,
                sent_ns: 2_000_000,
                ..BenchRecord::default()
            });
        }
        let recorded = recorder.take();
        assert_eq!(recorded.received, 5);
        assert_eq!(recorded.corrected.len(), 3);
        assert!(recorded.corrected.min() >= 3_000_000);
        // Sent 2 ms after they were due: the uncorrected latency is 2 ms shorter.
        assert!(recorded.uncorrected.min() >= 1_000_000);
        let gap = recorded.corrected.max() - recorded.uncorrected.max();
        assert!((1_990_000..=2_010_000).contains(&gap), "{gap}");
        assert_eq!(recorder.take().received, 0);

        let mut merged = Recorded::empty();
        merged.merge(&recorded);
        merged.merge(&recorded);
        assert_eq!(merged.corrected.len(), 6);
        assert_eq!(merged.received, 10);
        assert_eq!((merged.first_seq, merged.last_seq), (2, 4));
        // Seq 2..=4 arrived over (last_ns - first_ns): 2 records' worth of schedule.
        let span = (merged.last_ns - merged.first_ns) as f64;
        if span > 0.0 {
            assert!((merged.achieved_rate() - 2e9 / span).abs() < 1e-6);
        }
    }

    #[test]
    fn keyed_count_by_hand_counts_per_key() {
        let mut count = KeyedCount::default();
        let record = |seq, key| BenchRecord {
            seq,
            key,
            ..BenchRecord::default()
        };
        assert_eq!(count.update(record(0, 7)).1 .0, 1);
        assert_eq!(count.update(record(1, 8)).1 .0, 1);
        let (key, (n, last)) = count.update(record(2, 7));
        assert_eq!((key, n, last.seq), (7, 2, 2));
        let mut acc = (0, BenchRecord::default());
        count_step(&mut acc, record(5, 7));
        assert_eq!((acc.0, acc.1.seq), (1, 5));
    }
}
