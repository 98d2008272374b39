//! The metrics endpoint (`Query::serve_metrics`): Prometheus text that parses and
//! carries the query's figures, JSON that round-trips into the progress types, the plan,
//! a server that stops with its query, and clear errors for bad addresses.

mod common;

use common::{finish_ok, http_get, http_request, wait_until};
use rivulet::metrics::StreamingQueryProgress;
use rivulet::query::QueryStatus;
use rivulet::serve::{PlanEdge, PlanView, ServeOptions};
use rivulet::{Error, Query, QueryProgress, Trigger};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

const ROWS: u64 = 1_000;

/// The test query: numbers → keep the odd ones → count per key (x % 7) → memory.
/// Micro-batches, so there are epochs to report.
fn bounded_query(name: &str) -> (Query, rivulet::sink::MemoryTable<(u64, u64)>) {
    let mut builder = Query::builder();
    builder
        .name(name)
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(5),
        })
        .latency_sampling(16);
    let table = builder
        .from_iter("numbers", 0..ROWS)
        .filter(|x| x % 2 == 1)
        .named("odd")
        .key_by(|x| x % 7)
        .count()
        .named("count")
        .to_memory("counts");
    let query = builder.start().expect("the query starts");
    (query, table)
}

/// One sample line: `name{label="value",...} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses Prometheus text exposition strictly: every sample's family has `# HELP` and
/// `# TYPE` lines before it, names and label names are well formed, label values are
/// quoted with escapes, values are numbers; counters end in `_total`.
fn parse_prometheus(text: &str) -> Result<Vec<Sample>, String> {
    let mut help: HashMap<String, String> = HashMap::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').ok_or(format!("bad HELP: {line}"))?;
            if !valid_name(name) || doc.is_empty() {
                return Err(format!("bad HELP: {line}"));
            }
            if help.insert(name.to_string(), doc.to_string()).is_some() {
                return Err(format!("second HELP for {name}"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
            if !["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind) {
                return Err(format!("bad type: {line}"));
            }
            if !help.contains_key(name) {
                return Err(format!("TYPE before HELP for {name}"));
            }
            if kind == "counter" && !name.ends_with("_total") {
                return Err(format!("counter {name} does not end in _total"));
            }
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(format!("unexpected line {line:?}"));
        }
        let brace = line.find('{').ok_or(format!("no labels: {line}"))?;
        let name = &line[..brace];
        if !valid_name(name) {
            return Err(format!("bad metric name {name:?}"));
        }
        if !types.contains_key(name) {
            return Err(format!("sample of {name} before its TYPE"));
        }
        let mut labels = BTreeMap::new();
        let mut rest = &line[brace + 1..];
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or(format!("bad labels: {line}"))?;
            let label = &rest[..eq];
            if !valid_name(label) || label.contains(':') {
                return Err(format!("bad label name {label:?}"));
            }
            let mut chars = rest[eq + 1..].char_indices();
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("unquoted label value: {line}"));
            }
            let mut value = String::new();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => return Err(format!("bad escape {other:?}: {line}")),
                    },
                    '"' => {
                        end = Some(eq + 1 + i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or(format!("unterminated label value: {line}"))?;
            labels.insert(label.to_string(), value);
            rest = &rest[end..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        let value_text = rest.strip_prefix(' ').ok_or(format!("no value: {line}"))?;
        let value = match value_text {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            text => text
                .parse()
                .map_err(|_| format!("bad value {text:?}: {line}"))?,
        };
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "one sample of {name} {labels:?}: {matching:?}"
    );
    matching[0].value
}

#[test]
fn the_parser_refuses_malformed_text() {
    for bad in [
        "x{query=\"q\"} 1\n",
        "# HELP x h\n# TYPE x counter\nx{query=\"q\"} 1\n",
        "# HELP x_total h\n# TYPE x_total counter\nx_total{query=q} 1\n",
        "# HELP x h\n# TYPE x gauge\nx{query=\"q\"} one\n",
        "# HELP 1x h\n# TYPE 1x gauge\n1x{query=\"q\"} 1\n",
    ] {
        assert!(parse_prometheus(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn prometheus_text_parses_and_carries_the_query_figures() {
    let (query, table) = bounded_query("prom \"q\"");
    finish_ok(&query, "the bounded query");
    let server = query.serve_metrics("127.0.0.1:0").expect("serve");
    let (status, text) = http_get(server.local_addr(), "/metrics");
    assert_eq!(status, 200);
    let samples = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    // The reference: what was fed, computed sequentially.
    let odd = (0..ROWS).filter(|x| x % 2 == 1).count() as f64;
    let sink_rows = table.rows().len() as f64;
    let q = ("query", "prom \"q\""); // the label value round-trips through the escapes
    assert_eq!(
        value_of(&samples, "rivulet_input_rows_total", &[q]),
        ROWS as f64
    );
    assert_eq!(
        value_of(&samples, "rivulet_output_rows_total", &[q]),
        sink_rows
    );
    assert_eq!(value_of(&samples, "rivulet_active", &[q]), 0.0);
    let op = |name: &'static str| [q, ("operator", name)];
    let out = "rivulet_operator_records_out_total";
    let inn = "rivulet_operator_records_in_total";
    assert_eq!(value_of(&samples, out, &op("numbers")), ROWS as f64);
    assert_eq!(value_of(&samples, inn, &op("odd")), ROWS as f64);
    assert_eq!(value_of(&samples, out, &op("odd")), odd);
    assert_eq!(value_of(&samples, inn, &op("count")), odd);
    assert_eq!(value_of(&samples, inn, &op("counts")), sink_rows);

    // And every figure equals the query's own progress report.
    let progress = query.progress();
    for operator in &progress.operators {
        let labels = [q, ("operator", operator.name.as_str())];
        assert_eq!(value_of(&samples, inn, &labels), operator.records_in as f64);
        assert_eq!(
            value_of(&samples, out, &labels),
            operator.records_out as f64
        );
        assert_eq!(
            value_of(&samples, "rivulet_operator_parallelism", &labels),
            operator.parallelism as f64
        );
    }
    let checkpoint = progress.checkpoint.expect("micro-batches have epochs");
    assert_eq!(
        value_of(&samples, "rivulet_epochs_triggered_total", &[q]),
        checkpoint.epochs_triggered as f64
    );

    // The newest epoch's figures: Spark's lastProgress.
    let last = query.last_progress().expect("epochs completed");
    assert_eq!(
        value_of(&samples, "rivulet_batch_id", &[q]),
        last.batch_id as f64
    );
    assert_eq!(
        value_of(&samples, "rivulet_batch_input_rows", &[q]),
        last.num_input_rows as f64
    );
    assert_eq!(
        value_of(
            &samples,
            "rivulet_batch_duration_seconds",
            &[q, ("phase", "triggerExecution")]
        ),
        last.duration_ms["triggerExecution"] as f64 / 1e3
    );
    // State rows: one per key, as many keys as odd numbers have residues mod 7.
    let keys: HashSet<u64> = (0..ROWS).filter(|x| x % 2 == 1).map(|x| x % 7).collect();
    assert_eq!(
        value_of(&samples, "rivulet_state_rows", &[q, ("operator", "count")]),
        keys.len() as f64
    );
    let latency = &last.latency.end_to_end.cumulative;
    assert!(latency.count > 0, "latency markers reached the sink");
    let e2e = "rivulet_end_to_end_latency_seconds";
    let window = ("window", "cumulative");
    assert_eq!(
        value_of(&samples, e2e, &[q, window, ("quantile", "0.5")]),
        latency.p50 / 1e6
    );
    assert_eq!(
        value_of(&samples, e2e, &[q, window, ("quantile", "0.99")]),
        latency.p99 / 1e6
    );
    let sink = last.operator("counts").expect("the sink's progress");
    let sink_latency = &sink
        .latency
        .as_ref()
        .expect("the sink's latency")
        .cumulative;
    assert_eq!(
        value_of(
            &samples,
            "rivulet_operator_latency_seconds",
            &[q, ("operator", "counts"), window, ("quantile", "1")]
        ),
        sink_latency.max / 1e6
    );
    query.stop().unwrap();
}

#[test]
fn json_round_trips_into_the_progress_types() {
    let (query, table) = bounded_query("json");
    finish_ok(&query, "the bounded query");
    let server = query
        .serve_metrics_with(
            "127.0.0.1:0",
            ServeOptions::default().sample_every(Duration::from_millis(5)),
        )
        .expect("serve");
    let addr = server.local_addr();

    // Spark's lastProgress, recentProgress and status.
    let (status, body) = http_get(addr, "/progress");
    assert_eq!(status, 200);
    let last: StreamingQueryProgress = serde_json::from_str(&body).expect("progress JSON");
    assert_eq!(last, *query.last_progress().expect("epochs completed"));
    assert_eq!(last.json(), body);
    let (_, body) = http_get(addr, "/progress/recent");
    let recent: Vec<StreamingQueryProgress> = serde_json::from_str(&body).expect("a JSON list");
    let expected: Vec<StreamingQueryProgress> = query
        .recent_progress()
        .iter()
        .map(|progress| (**progress).clone())
        .collect();
    assert_eq!(recent, expected);
    assert_eq!(
        recent.iter().map(|p| p.num_input_rows).sum::<u64>(),
        ROWS,
        "the epochs hold every row once"
    );
    let (_, body) = http_get(addr, "/status");
    let status: QueryStatus = serde_json::from_str(&body).expect("status JSON");
    assert_eq!(status, query.status());
    assert_eq!(status.message, "Stopped");

    // The live counters and their sampled history.
    let (status, body) = http_get(addr, "/live");
    assert_eq!(status, 200);
    let served: QueryProgress = serde_json::from_str(&body).expect("QueryProgress JSON");
    let local = query.progress();
    // The query ended: counts and epochs are final, only the clock and rates move.
    assert_eq!(served.name, "json");
    assert!(!served.is_active);
    assert_eq!(served.input_rows, ROWS);
    assert_eq!(served.output_rows, table.rows().len() as u64);
    assert_eq!(served.operators, local.operators);
    assert_eq!(served.checkpoint, local.checkpoint);
    assert_eq!(serde_json::to_string(&served).unwrap(), body);

    wait_until("two samples in the history", || {
        let (_, body) = http_get(addr, "/live/recent");
        serde_json::from_str::<Vec<QueryProgress>>(&body)
            .expect("Vec<QueryProgress> JSON")
            .len()
            >= 2
    });
    let (_, body) = http_get(addr, "/live/recent");
    let samples: Vec<QueryProgress> = serde_json::from_str(&body).unwrap();
    for sample in &samples {
        assert_eq!(sample.operators, local.operators);
    }
    assert!(samples.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));

    let (status, body) = http_get(addr, "/plan");
    assert_eq!(status, 200);
    let plan: PlanView = serde_json::from_str(&body).expect("PlanView JSON");
    let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["numbers", "odd", "key_by", "count", "counts"]);
    for (node, operator) in plan.nodes.iter().zip(&local.operators) {
        assert_eq!(
            (node.records_in, node.records_out, node.kind),
            (operator.records_in, operator.records_out, operator.kind)
        );
    }
    let edge = |from: &str, to: &str| PlanEdge {
        from: from.to_string(),
        to: to.to_string(),
    };
    assert_eq!(
        plan.edges,
        [
            edge("numbers", "odd"),
            edge("odd", "key_by"),
            edge("key_by", "count"),
            edge("count", "counts")
        ]
    );
    query.stop().unwrap();
}

#[test]
fn pages_and_errors() {
    let (query, _table) = bounded_query("pages");
    let server = query.serve_metrics("127.0.0.1:0").expect("serve");
    let addr = server.local_addr();
    let (status, page) = http_get(addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"dashboard.js\">"), "{page}");
    assert_eq!(page, rivulet::serve::dashboard_html());
    let (status, script) = http_get(addr, "/dashboard.js");
    assert_eq!(status, 200);
    assert_eq!(script, rivulet::serve::dashboard_script());
    assert_eq!(http_get(addr, "/nothing").0, 404);
    finish_ok(&query, "the bounded query");
    // Without epochs there is no per-epoch progress: `null`, as Spark's lastProgress.
    let mut builder = Query::builder();
    builder.from_iter("n", 0..3u64).for_each(|_| {});
    let plain = builder.start().unwrap();
    finish_ok(&plain, "the query without epochs");
    let plain_server = plain.serve_metrics("127.0.0.1:0").unwrap();
    assert_eq!(http_get(plain_server.local_addr(), "/progress").1, "null");
    assert_eq!(
        http_get(plain_server.local_addr(), "/progress/recent").1,
        "[]"
    );
    plain.stop().unwrap();
    assert_eq!(http_request(addr, "POST", "/metrics").0, 405);
    query.stop().unwrap();
}

#[test]
fn a_bad_address_is_a_clear_error() {
    let (query, _table) = bounded_query("bad address");
    for addr in ["not an address", "127.0.0.1:99999", ""] {
        match query.serve_metrics(addr) {
            Err(error @ Error::Serve { .. }) => {
                let message = error.to_string();
                assert!(
                    message.starts_with(&format!("cannot serve metrics on `{addr}`: ")),
                    "{message}"
                );
            }
            other => panic!("{addr:?}: expected Error::Serve, got {other:?}"),
        }
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    match query.serve_metrics(&addr) {
        Err(Error::Serve {
            addr: reported,
            source,
        }) => {
            assert_eq!(reported, addr);
            assert!(source.to_string().contains("in use"), "{source}");
        }
        other => panic!("expected Error::Serve, got {other:?}"),
    }
    finish_ok(&query, "the bounded query");
}

/// Threads of this process whose name is `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// Starts a server from a thread named `spawner`: the threads tiny_http starts inherit
/// that name (Linux gives a new thread its creator's name), so they can be counted.
fn serve_from(query: &Query, spawner: &str) -> rivulet::serve::MetricsServer {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(spawner.to_string())
            .spawn_scoped(scope, || query.serve_metrics("127.0.0.1:0").expect("serve"))
            .unwrap()
            .join()
            .unwrap()
    })
}

fn running_query(name: &str) -> Query {
    let mut builder = Query::builder();
    builder.name(name);
    builder
        .rate("rate", 10_000)
        .map(|row| row.value)
        .for_each(|_| {});
    builder.start().expect("the query starts")
}

/// After `stop`, the port is free at once and no server thread is left (tiny_http's
/// idle connection threads take up to five seconds to end: waited for, not timed).
fn assert_gone(addr: std::net::SocketAddr, spawner: &str) {
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "something still accepts on {addr}"
    );
    drop(std::net::TcpListener::bind(addr).expect("the port is free again"));
    assert_eq!(
        threads_named("rivulet:metric"),
        0,
        "the serving thread ended"
    );
    wait_until("tiny_http's threads end", || threads_named(spawner) == 0);
}

#[test]
fn the_server_stops_with_the_query() {
    for (how, spawner) in [("stop", "rv-probe-stop"), ("drop", "rv-probe-drop")] {
        let query = running_query(how);
        let server = serve_from(&query, spawner);
        let addr = server.local_addr();
        // A client that keeps its connection open must not keep the server alive.
        let (status, _) = http_get(addr, "/metrics");
        assert_eq!(status, 200);
        assert!(
            threads_named(spawner) > 0,
            "tiny_http's threads are counted"
        );
        match how {
            "stop" => query.stop().unwrap(),
            _ => drop(query),
        }
        assert!(!server.is_running());
        assert_gone(addr, spawner);
    }
}

#[test]
fn a_stopped_server_leaves_the_query_running() {
    let query = running_query("early stop");
    let server = serve_from(&query, "rv-probe-early");
    let addr = server.local_addr();
    server.stop();
    server.stop(); // idempotent
    assert_gone(addr, "rv-probe-early");
    assert!(query.is_active());
    query.stop().unwrap();
}

#[test]
fn the_plan_follows_unions_exchanges_and_fan_outs() {
    let mut builder = Query::builder();
    let left = builder.from_iter("left", 0..100u64);
    let right = builder.from_iter("right", 100..200u64);
    let mut branches = left
        .union(right)
        .map(|x| x * 2)
        .named("double")
        .fan_out(2)
        .into_iter();
    branches
        .next()
        .unwrap()
        .key_by(|x| x % 3)
        .with_parallelism(2)
        .count()
        .named("count")
        .to_memory("counts");
    branches.next().unwrap().to_memory("all");
    let query = builder.start().unwrap();
    finish_ok(&query, "the fan-out query");
    let server = query.serve_metrics("127.0.0.1:0").unwrap();
    let (_, body) = http_get(server.local_addr(), "/plan");
    let plan: PlanView = serde_json::from_str(&body).unwrap();
    let mut edges: Vec<(String, String)> = plan.edges.into_iter().map(|e| (e.from, e.to)).collect();
    edges.sort();
    let expected = [
        ("count", "counts"),
        ("double", "all"),
        ("double", "count"),
        ("left", "double"),
        ("right", "double"),
    ];
    assert_eq!(edges, expected.map(|(a, b)| (a.to_string(), b.to_string())));
    query.stop().unwrap();
}
