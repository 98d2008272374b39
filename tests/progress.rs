//! Progress per epoch, listeners and latency percentiles, checked against what the
//! tests fed (computed by plain loops here).

use rivulet::aggregate::count;
use rivulet::metrics::StreamingQueryProgress;
use rivulet::query::{QueryIdleEvent, QueryListener, QueryStartedEvent, QueryTerminatedEvent};
use rivulet::window::TimeWindows;
use rivulet::{Query, Timestamp, Trigger};
use std::collections::BTreeSet;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The progress reports that had input, oldest first.
fn with_input(query: &Query) -> Vec<Arc<StreamingQueryProgress>> {
    query
        .recent_progress()
        .into_iter()
        .filter(|p| p.num_input_rows > 0)
        .collect()
}

#[test]
fn micro_batch_progress_counts_what_each_batch_held() {
    const N: u64 = 1_000;
    const BATCH: usize = 64;
    const KEYS: u64 = 37;
    let mut query = Query::builder();
    query
        .name("counts")
        .trigger(Trigger::AvailableNow)
        .max_batch_records(BATCH);
    query
        .from_iter("numbers", 0..N)
        .key_by(|n| (n * 7919) % KEYS)
        .count()
        .to_memory("out");
    let running = query.start().unwrap();
    running.await_termination().unwrap();

    let reports = with_input(&running);
    let input: Vec<u64> = (0..N).collect();
    let batches: Vec<&[u64]> = input.chunks(BATCH).collect();
    assert_eq!(
        reports.len(),
        batches.len(),
        "one progress per batch with data"
    );
    let mut seen_keys = BTreeSet::new();
    let mut previous_batch = None;
    for (progress, batch) in reports.iter().zip(&batches) {
        let keys: BTreeSet<u64> = batch.iter().map(|n| (n * 7919) % KEYS).collect();
        seen_keys.extend(keys.iter().copied());
        assert_eq!(progress.num_input_rows, batch.len() as u64);
        assert_eq!(progress.sources.len(), 1);
        assert_eq!(progress.sources[0].num_input_rows, batch.len() as u64);
        let count = progress.operator("count").expect("the count operator");
        assert_eq!(count.num_input_rows, batch.len() as u64);
        // Micro-batch update mode: each key the batch changed, once.
        assert_eq!(count.num_output_rows, keys.len() as u64);
        assert_eq!(progress.sink.num_output_rows, keys.len() as u64);
        let state = progress
            .state_operator("count")
            .expect("state of the count");
        assert_eq!(state.num_rows_total, seen_keys.len() as u64);
        assert_eq!(state.num_rows_updated, batch.len() as u64);
        assert_eq!(state.num_rows_dropped_by_watermark, 0);
        assert!(state.memory_used_bytes > 0);
        // Rates are never zero for a batch with rows, the last one (after the end of
        // the stream) included.
        assert!(progress.input_rows_per_second > 0.0, "{progress:?}");
        assert!(progress.processed_rows_per_second > 0.0, "{progress:?}");
        assert_eq!(progress.name, "counts");
        assert_eq!(progress.id, running.id());
        assert_eq!(progress.run_id, running.run_id());
        assert!(previous_batch < Some(progress.batch_id));
        previous_batch = Some(progress.batch_id);
    }
    // Nothing is counted twice or lost across the reports without data.
    let all = running.recent_progress();
    assert_eq!(all.iter().map(|p| p.num_input_rows).sum::<u64>(), N);
    assert_eq!(
        all.iter()
            .map(|p| p.operator("count").unwrap().num_input_rows)
            .sum::<u64>(),
        N
    );
    assert_eq!(
        running.last_progress().unwrap().batch_id,
        all.last().unwrap().batch_id
    );
    // The live counters agree, and their rates after the end are not zero either.
    let live = running.progress();
    assert_eq!(live.input_rows, N);
    assert!(live.input_rows_per_second > 0.0);
    assert!(
        running.progress().input_rows_per_second > 0.0,
        "asked twice"
    );
    assert_eq!(running.status().message, "Stopped");
}

#[test]
fn progress_round_trips_through_json_with_sparks_names() {
    let mut query = Query::builder();
    query.trigger(Trigger::AvailableNow).max_batch_records(10);
    query
        .from_iter("numbers", 0..100u64)
        .key_by(|n| n % 3)
        .count()
        .to_memory("out");
    let running = query.start().unwrap();
    running.await_termination().unwrap();
    let reports = running.recent_progress();
    assert!(!reports.is_empty());
    for progress in &reports {
        let json = progress.json();
        let back: StreamingQueryProgress = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, &**progress);
        let pretty: StreamingQueryProgress = serde_json::from_str(&progress.pretty_json()).unwrap();
        assert_eq!(&pretty, &**progress);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        for field in [
            "id",
            "runId",
            "name",
            "timestamp",
            "batchId",
            "numInputRows",
            "inputRowsPerSecond",
            "processedRowsPerSecond",
            "durationMs",
            "eventTime",
            "stateOperators",
            "sources",
            "sink",
        ] {
            assert!(value.get(field).is_some(), "{field} missing in {json}");
        }
        let state = &value["stateOperators"][0];
        for field in [
            "numRowsTotal",
            "numRowsUpdated",
            "memoryUsedBytes",
            "numRowsDroppedByWatermark",
            "customMetrics",
        ] {
            assert!(state.get(field).is_some(), "{field} missing in {state}");
        }
        assert!(value["durationMs"].get("triggerExecution").is_some());
        assert!(value["sink"].get("numOutputRows").is_some());
    }
    let history: Vec<StreamingQueryProgress> =
        serde_json::from_str(&running.progress_history().json()).unwrap();
    assert_eq!(history.len(), reports.len());
}

/// Event time in seconds.
fn secs(s: i64) -> Timestamp {
    Timestamp(s * 1_000_000)
}

fn time_text(t: Timestamp) -> String {
    format!("{:.3}", jiff::Timestamp::from_microsecond(t.0).unwrap())
}

#[test]
fn rows_dropped_by_watermark_and_event_time_per_batch() {
    // Three batches of 30, watermark delay 0. As in Spark 3.4+, batch k judges records
    // late by the watermark batch k - 1 ran with, which batch k - 2's records set: in
    // batch 3, by batch 1's largest time, 49 s. Batch 3's times cycle through 0..60 s;
    // a record is late there when its 10 s window ends at or before 49 s.
    let batches: [Vec<i64>; 3] = [
        (20..50).collect(),
        (50..80).collect(),
        (0..30).map(|i| (i * 7) % 60).collect(),
    ];
    let late = batches[2]
        .iter()
        .filter(|t| (*t / 10 + 1) * 10 <= 49)
        .count() as u64;
    assert!(late > 0 && late < 30);
    let records: Vec<i64> = batches.concat();
    let mut query = Query::builder();
    query.trigger(Trigger::AvailableNow).max_batch_records(30);
    query
        .from_iter("events", records)
        .with_event_time(|t: &i64| secs(*t))
        .with_watermark(Duration::ZERO)
        .key_by(|_| 0u8)
        .window(
            TimeWindows::tumbling(Duration::from_secs(10)).unwrap(),
            |t: &i64| secs(*t),
        )
        .agg(count())
        .to_memory("out");
    let running = query.start().unwrap();
    running.await_termination().unwrap();
    let reports = with_input(&running);
    assert_eq!(reports.len(), 3);
    let window_state = |p: &StreamingQueryProgress| p.state_operator("window").unwrap().clone();
    let dropped: Vec<u64> = reports
        .iter()
        .map(|p| window_state(p).num_rows_dropped_by_watermark)
        .collect();
    assert_eq!(dropped, [0, 0, late]);
    assert_eq!(
        reports[2].operator("window").unwrap().counters["late_records"],
        late
    );
    // Rows written: every record that was not late.
    let updated: Vec<u64> = reports
        .iter()
        .map(|p| window_state(p).num_rows_updated)
        .collect();
    assert_eq!(updated, [30, 30, 30 - late]);
    // Windows [20, 50) hold batch 1's rows: three of them.
    assert_eq!(window_state(&reports[0]).num_rows_total, 3);
    for (progress, times) in reports.iter().zip(&batches) {
        let min = *times.iter().min().unwrap();
        let max = *times.iter().max().unwrap();
        let avg = times.iter().map(|t| t * 1_000_000).sum::<i64>() / times.len() as i64;
        assert_eq!(progress.event_time["min"], time_text(secs(min)));
        assert_eq!(progress.event_time["max"], time_text(secs(max)));
        assert_eq!(progress.event_time["avg"], time_text(Timestamp(avg)));
    }
    // The watermark each batch ran with: none yet, then batch 1's and batch 2's largest.
    assert!(!reports[0].event_time.contains_key("watermark"));
    assert_eq!(reports[1].event_time["watermark"], time_text(secs(49)));
    assert_eq!(reports[2].event_time["watermark"], time_text(secs(79)));
}

/// A listener that writes down what it heard.
struct Recorder(Arc<Mutex<Vec<String>>>);

impl QueryListener for Recorder {
    fn on_query_started(&mut self, _: &QueryStartedEvent) {
        self.0.lock().unwrap().push("started".to_string());
    }
    fn on_query_progress(&mut self, progress: &Arc<StreamingQueryProgress>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("progress {}", progress.batch_id));
    }
    fn on_query_idle(&mut self, _: &QueryIdleEvent) {
        self.0.lock().unwrap().push("idle".to_string());
    }
    fn on_query_terminated(&mut self, event: &QueryTerminatedEvent) {
        self.0.lock().unwrap().push(format!(
            "terminated {}",
            event.exception.as_deref().unwrap_or("ok")
        ));
    }
}

/// A listener that panics on every progress.
struct Panicky;

impl QueryListener for Panicky {
    fn on_query_progress(&mut self, _: &Arc<StreamingQueryProgress>) {
        panic!("listener bug");
    }
}

/// Checks the order of `events`: started first, terminated last and once, progress in
/// between with increasing batch ids. Returns the batch ids.
fn check_order(events: &[String]) -> Vec<u64> {
    assert_eq!(
        events.first().map(String::as_str),
        Some("started"),
        "{events:?}"
    );
    assert!(
        events.last().unwrap().starts_with("terminated"),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.starts_with("terminated"))
            .count(),
        1
    );
    assert_eq!(events.iter().filter(|e| *e == "started").count(), 1);
    let batches: Vec<u64> = events
        .iter()
        .filter_map(|e| e.strip_prefix("progress "))
        .map(|b| b.parse().unwrap())
        .collect();
    assert!(batches.windows(2).all(|w| w[0] < w[1]), "{events:?}");
    batches
}

#[test]
fn listeners_hear_start_progress_and_termination_in_order() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut query = Query::builder();
    query
        .trigger(Trigger::AvailableNow)
        .max_batch_records(25)
        .listener(Panicky)
        .listener(Recorder(events.clone()));
    query.from_iter("numbers", 0..200u64).to_memory("out");
    let running = query.start().unwrap();
    running.await_termination().unwrap();
    let events = events.lock().unwrap().clone();
    let batches = check_order(&events);
    let recent: Vec<u64> = running
        .recent_progress()
        .iter()
        .map(|p| p.batch_id)
        .collect();
    assert_eq!(batches, recent);
    assert_eq!(events.last().unwrap(), "terminated ok");
    // The panicking listener was reported once per progress and stopped nothing.
    let failures = running.listener_failures();
    assert_eq!(failures.len(), batches.len());
    assert!(failures[0].contains("listener bug"), "{failures:?}");
    assert_eq!(
        running.memory_table::<u64>("out").unwrap().rows().len(),
        200
    );
}

#[test]
fn listeners_hear_a_failure_last_and_once() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut query = Query::builder();
    query
        .trigger(Trigger::AvailableNow)
        .max_batch_records(10)
        .listener(Recorder(events.clone()));
    query
        .from_iter("numbers", 0..100u64)
        .map(|n| {
            assert!(n != 55, "operator bug at 55");
            n
        })
        .to_memory("out");
    let running = query.start().unwrap();
    let error = running.await_termination().unwrap_err();
    assert!(error.to_string().contains("operator bug at 55"), "{error}");
    let events = events.lock().unwrap().clone();
    check_order(&events);
    let last = events.last().unwrap();
    assert!(last.contains("operator bug at 55"), "{last}");
    // Batches after the failing one never completed.
    assert!(running
        .recent_progress()
        .iter()
        .all(|p| p.num_input_rows == 0 || p.operator("map").is_none_or(|m| m.num_output_rows > 0)));
}

#[test]
fn termination_reaches_listeners_without_anyone_waiting() {
    let (tx, rx) = mpsc::channel();
    struct Forward(mpsc::Sender<String>);
    impl QueryListener for Forward {
        fn on_query_terminated(&mut self, event: &QueryTerminatedEvent) {
            let _ = self.0.send(format!("{:?}", event.exception));
        }
    }
    let mut query = Query::builder();
    query.trigger(Trigger::AvailableNow).listener(Forward(tx));
    query.from_iter("numbers", 0..10u64).to_memory("out");
    let running = query.start().unwrap();
    // Nobody calls await_termination: the query ends on its own.
    let heard = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(heard, "None");
    drop(running);
}

#[test]
fn a_query_without_epochs_reports_start_and_termination_only() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut query = Query::builder();
    query.listener(Recorder(events.clone()));
    query.from_iter("numbers", 0..10u64).to_memory("out");
    let running = query.start().unwrap();
    running.await_termination().unwrap();
    assert_eq!(*events.lock().unwrap(), ["started", "terminated ok"]);
    assert!(running.last_progress().is_none());
}

#[test]
fn every_latency_marker_is_counted_once_per_operator_and_end_to_end() {
    const N: u64 = 5_000;
    for trigger in [
        Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(2),
        },
        Trigger::AvailableNow,
    ] {
        let mut query = Query::builder();
        query
            .trigger(trigger)
            .max_batch_records(700)
            .latency_sampling(1);
        query
            .from_iter("numbers", 0..N)
            .map(|n| n + 1)
            .new_thread()
            .filter(|n| n % 2 == 0)
            .to_memory("out");
        let running = query.start().unwrap();
        running.await_termination().unwrap();
        let reports = running.recent_progress();
        let epoch_counts = |name: &str| -> u64 {
            reports
                .iter()
                .filter_map(|p| p.operator(name).unwrap().latency.as_ref())
                .map(|l| l.epoch.count)
                .sum()
        };
        // One marker per record, each seen once by every operator after the source.
        assert_eq!(epoch_counts("map"), N, "{trigger}");
        assert_eq!(epoch_counts("filter"), N, "{trigger}");
        let end_to_end: u64 = reports
            .iter()
            .map(|p| p.latency.end_to_end.epoch.count)
            .sum();
        assert_eq!(end_to_end, N, "{trigger}");
        let last = running.last_progress().unwrap();
        let cumulative = &last.latency.end_to_end.cumulative;
        assert_eq!(cumulative.count, N);
        assert!(cumulative.p50 > 0.0);
        assert!(cumulative.p50 <= cumulative.p90);
        assert!(cumulative.p90 <= cumulative.p99);
        assert!(cumulative.p99 <= cumulative.p999);
        assert!(cumulative.p999 <= cumulative.max);
        assert!(last.operator("numbers").unwrap().latency.is_none());
    }
}

#[test]
fn latency_sampling_zero_measures_nothing() {
    let mut query = Query::builder();
    query.trigger(Trigger::AvailableNow).latency_sampling(0);
    query.from_iter("numbers", 0..1000u64).to_memory("out");
    let running = query.start().unwrap();
    running.await_termination().unwrap();
    let last = running.last_progress().unwrap();
    assert_eq!(last.latency.end_to_end.cumulative.count, 0);
    assert!(last.operator("out").unwrap().latency.is_none());
}
