//! The live dashboard in a real headless browser (Debian's `chromium`): against a
//! running query its charts and plan render with data; against a broken data feed the
//! same check fails.
//!
//! Skipped, with a message, only where no chromium can exist: outside CI without one
//! installed. In CI (`CI` set) a missing browser fails the test; `.ci/run` installs it.
//! `RIVULET_CHROMIUM` names another binary.

mod common;

use common::{http_get, wait_until, HANG_GUARD};
use rivulet::serve::{PlanView, ServeOptions};
use rivulet::{Query, Trigger};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browser to drive, or `None` (with the reason printed) if the test must skip.
fn chromium() -> Option<PathBuf> {
    let named = std::env::var_os("RIVULET_CHROMIUM").map(PathBuf::from);
    let found = named.or_else(|| {
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|name| {
                std::env::var_os("PATH").and_then(|paths| {
                    std::env::split_paths(&paths)
                        .map(|dir| dir.join(name))
                        .find(|path| path.is_file())
                })
            })
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no chromium on PATH: CI must run the browser test (.ci/run installs it)"
        );
        eprintln!(
            "SKIPPED dashboard_browser: no chromium on PATH (apt-get install chromium, or \
             set RIVULET_CHROMIUM)"
        );
    }
    found
}

/// Loads `url` in headless chromium, lets the page run for `virtual_ms` of virtual
/// time (its timers fire, its fetches complete) and returns the DOM it built.
fn dump_dom(browser: &PathBuf, url: &str, virtual_ms: u32) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--virtual-time-budget={virtual_ms}"),
            "--dump-dom",
            url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium hung on {url}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && dom.contains("</html>"),
        "chromium failed on {url}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    dom
}

/// The value of `attribute` in the first tag that contains `marker`.
fn attribute_after<'a>(dom: &'a str, marker: &str, attribute: &str) -> Option<&'a str> {
    let start = dom.find(marker)?;
    let tag_start = dom[..=start].rfind('<')?;
    let tag_end = start + dom[start..].find('>')?;
    let tag = &dom[tag_start..tag_end];
    let key = format!("{attribute}=\"");
    let at = tag.find(&key)? + key.len();
    Some(&tag[at..at + tag[at..].find('"')?])
}

/// Points drawn in the chart `id` (its `svg` element's `data-points`).
fn chart_points(dom: &str, id: &str) -> Result<usize, String> {
    let figure = dom
        .find(&format!("<figure id=\"{id}\""))
        .ok_or(format!("no chart {id}"))?;
    let rest = &dom[figure..];
    let rest = &rest[..rest.find("</figure>").unwrap_or(rest.len())];
    let points: usize = attribute_after(rest, "<svg", "data-points")
        .ok_or(format!("chart {id} has no data-points"))?
        .parse()
        .map_err(|_| format!("chart {id}: bad data-points"))?;
    if points > 0 && !rest.contains("<path d=\"M") {
        return Err(format!(
            "chart {id} claims {points} points but draws no line"
        ));
    }
    Ok(points)
}

/// What a working dashboard shows for the test query: the feed read, the charts with
/// data, the plan with every operator and its counts. `plan` is the endpoint's own view,
/// read after the page: counts only grow, so the page's are at most those.
fn check_rendered(dom: &str, plan: &PlanView) -> Result<(), String> {
    let body = dom.find("<body").ok_or("no body")?;
    match attribute_after(&dom[body..], "<body", "data-feed") {
        Some("ok") => {}
        other => return Err(format!("the feed is {other:?}, not ok")),
    }
    let updates: u32 = attribute_after(&dom[body..], "<body", "data-updates")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if updates < 2 {
        return Err(format!(
            "the page refreshed {updates} times, not at least twice"
        ));
    }
    for chart in [
        "chart-rates",
        "chart-epochs",
        "chart-watermark",
        "chart-state",
        "chart-latency",
    ] {
        let points = chart_points(dom, chart)?;
        if points < 2 {
            return Err(format!("chart {chart} has {points} points"));
        }
    }
    for node in &plan.nodes {
        let marker = format!("data-name=\"{}\"", node.name);
        let shown: u64 = attribute_after(dom, &marker, "data-records-out")
            .ok_or(format!("the plan has no node {}", node.name))?
            .parse()
            .map_err(|_| format!("node {}: bad count", node.name))?;
        if shown > node.records_out {
            return Err(format!("node {} shows {shown} records out", node.name));
        }
        if node.name == "rate" && shown == 0 {
            return Err("the source node shows no records".to_string());
        }
    }
    let edges = dom.matches("class=\"edge\"").count();
    if edges != plan.edges.len() {
        return Err(format!(
            "{edges} edges drawn, {} in the plan",
            plan.edges.len()
        ));
    }
    Ok(())
}

/// A dashboard page served by a stand-in endpoint whose data feed is broken:
/// `recent` and `plan` are the bodies of `/progress/recent` and `/plan` (`None`: 500).
fn broken_endpoint(
    recent: Option<&'static str>,
    plan: Option<&'static str>,
) -> (
    SocketAddr,
    std::thread::JoinHandle<()>,
    std::sync::Arc<tiny_http::Server>,
) {
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let addr = server.server_addr().to_ip().unwrap();
    let serving = server.clone();
    let thread = std::thread::spawn(move || {
        while let Ok(request) = serving.recv() {
            let (status, body, kind) = match request.url() {
                "/" => (200, Some(rivulet::serve::dashboard_html()), "text/html"),
                "/dashboard.js" => (
                    200,
                    Some(rivulet::serve::dashboard_script()),
                    "text/javascript",
                ),
                "/progress/recent" | "/live/recent" => (200, recent, "application/json"),
                "/plan" => (200, plan, "application/json"),
                _ => (404, Some(""), "text/plain"),
            };
            let response = match body {
                Some(body) => tiny_http::Response::from_string(body).with_status_code(status),
                None => tiny_http::Response::from_string("broken").with_status_code(500),
            }
            .with_header(tiny_http::Header::from_bytes("Content-Type", kind).unwrap());
            let _ = request.respond(response);
        }
    });
    (addr, thread, server)
}

#[test]
fn the_dashboard_renders_a_running_query() {
    let Some(browser) = chromium() else {
        return;
    };
    let mut builder = Query::builder();
    builder
        .name("dashboard")
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(20),
        })
        .latency_sampling(64);
    builder
        .rate("rate", 20_000)
        .with_event_time(|row| row.timestamp)
        .with_watermark(Duration::from_millis(50))
        .map(|row| row.value)
        .key_by(|x| x % 16)
        .count()
        .named("count")
        .for_each(|_| {});
    let query = builder.start().unwrap();
    let server = query
        .serve_metrics_with(
            "127.0.0.1:0",
            ServeOptions::default().sample_every(Duration::from_millis(20)),
        )
        .unwrap();
    let addr = server.local_addr();
    wait_until("epochs with rows, state, a watermark and latency", || {
        let recent = query.recent_progress();
        let full = recent
            .iter()
            .filter(|p| {
                p.num_input_rows > 0
                    && p.event_time.contains_key("watermark")
                    && !p.state_operators.is_empty()
                    && p.latency.end_to_end.epoch.count > 0
            })
            .count();
        full >= 3 && query.progress_history().recent().len() >= 4
    });
    let (status, _) = http_get(addr, "/live/recent");
    assert_eq!(status, 200);

    let dom = dump_dom(&browser, &server.url(), 2_500);
    let (_, body) = http_get(addr, "/plan");
    let plan: PlanView = serde_json::from_str(&body).unwrap();
    assert_eq!(plan.nodes.len(), 6, "{plan:?}");
    if let Err(problem) = check_rendered(&dom, &plan) {
        panic!("the dashboard did not render: {problem}\n{dom}");
    }
    query.stop().unwrap();
}

#[test]
fn the_check_fails_when_the_data_feed_is_broken() {
    let Some(browser) = chromium() else {
        return;
    };
    let plan = PlanView {
        name: "q".to_string(),
        nodes: Vec::new(),
        edges: Vec::new(),
    };
    let good_plan = r#"{"name":"q","nodes":[],"edges":[]}"#;
    for (what, recent, plan_body) in [
        ("the history fails", None, Some(good_plan)),
        ("the plan fails", Some("[]"), None),
        (
            "the history is not a list",
            Some(r#"{"oops":1}"#),
            Some(good_plan),
        ),
        ("the history is empty", Some("[]"), Some(good_plan)),
    ] {
        let (addr, thread, server) = broken_endpoint(recent, plan_body);
        let dom = dump_dom(&browser, &format!("http://{addr}/"), 2_500);
        server.unblock();
        thread.join().unwrap();
        assert!(
            check_rendered(&dom, &plan).is_err(),
            "{what}: the check passed\n{dom}"
        );
    }
}
