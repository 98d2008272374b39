//! `rivulet bench`: open-loop latency benchmarks of the engine against hand-written
//! baselines, in the same run.
//!
//! A generator sends record `i` at `t0 + i/rate` whatever happens downstream (open loop);
//! the sink measures each record's latency from its *scheduled* send time, so a stall
//! shows up in the latency of every record it delayed (coordinated-omission corrected),
//! and also from its actual send time (uncorrected), for contrast. Each sink thread fills
//! its own HDR histograms and hands them over when its stream ends.
//!
//! The engine and every baseline run the same schedule, record type and per-record work,
//! one after the other, `--runs` times (the order rotates each run); the table reports
//! medians over runs and ratios to the raw `rtrb` ring, the floor.
//!
//! Output, in `--out` (default `target/bench-results/<workload>-<rate>-<UTC time>`):
//! `table.txt` (what the terminal shows), `table.md` (corrected medians as Markdown),
//! `summary.json`, `<system>.hgrm` and `<system>.uncorrected.hgrm` (all runs merged;
//! `<system>.run<k>.hgrm` per run), `latency.svg` and `latency-uncorrected.svg`.
//!
//! On a shared machine, `--max-interference` waits for quiet and repeats disturbed runs;
//! every run reports the CPU share other processes took while it ran.

mod baseline;
mod engine;
pub(crate) mod hgrm;
pub(crate) mod interference;
mod plot;
pub(crate) mod report;
pub(crate) mod workload;

use anyhow::{bail, Context, Result};
use baseline::Baseline;
use clap::{Args, ValueEnum};
use engine::EngineMode;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use report::{RunStats, Stats, SystemReport};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use workload::{BenchRecord, Clock, Generator, Recorded, Recorder, Schedule, Workload};

/// Attempts at one system's run when `--max-interference` rejects it.
const MAX_ATTEMPTS: u32 = 5;

/// How long to wait for a quiet machine before each attempt under `--max-interference`.
const QUIET_WAIT: Duration = Duration::from_secs(300);

/// The engine's name in tables and files.
const ENGINE: &str = "rivulet";
/// The name of the uncheckpointed engine run beside a checkpointed one.
const ENGINE_WITHOUT_CHECKPOINTS: &str = "rivulet-no-ckpt";

/// Arguments of `rivulet bench`.
#[derive(Args, Debug, Clone)]
pub(crate) struct BenchArgs {
    /// The pipeline to run.
    #[arg(long, value_enum, default_value_t = Workload::Stateless)]
    workload: Workload,
    /// Records per second the generator sends (open loop).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Measured time after the warm-up, e.g. `10s`.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    duration: Duration,
    /// Time sent but not measured before the measurement.
    #[arg(long, default_value = "2s", value_parser = crate::parse_duration)]
    warmup: Duration,
    /// How the engine is triggered, one system per entry, all in the same run:
    /// `continuous` (epochs only with `--checkpoint-interval`), `continuous:INTERVAL`
    /// (epoch markers every INTERVAL) or `micro-batch:INTERVAL`, e.g.
    /// `continuous,micro-batch:100ms,micro-batch:10ms`. Micro-batch modes need the
    /// stateless workload (every record reaches the sink and is measured).
    #[arg(long, alias = "mode", value_delimiter = ',', default_value = "continuous",
          value_parser = EngineMode::parse)]
    modes: Vec<EngineMode>,
    /// The most records the source releases in one micro-batch (the engine's
    /// `max_batch_records`; Spark's `maxOffsetsPerTrigger`). Unset: the engine's default.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_batch_records: Option<u64>,
    /// Repetitions of every system; the table shows medians over runs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Baselines to run in the same benchmark: `raw`, `crossbeam`, `mpsc`, `all` or `none`.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    baselines: Vec<String>,
    /// Run only the baselines, not the engine.
    #[arg(long)]
    skip_engine: bool,
    /// Wait policy of the engine's threads: `spin`, `yield` or `park` (the engine's
    /// default), or tuned: `park:SPINS:YIELDS`, `yield:SPINS`. (The raw ring always spins;
    /// the channels block as they do.)
    #[arg(long, default_value = "spin")]
    wait: String,
    /// Pin threads to cores (`auto`, `none`, or a comma-separated core list); applies to
    /// the engine and the baselines alike.
    #[arg(long, default_value = "auto")]
    pin: String,
    /// Capacity of every ring and channel, in records.
    #[arg(long, default_value_t = 1024)]
    ring_capacity: usize,
    /// Distinct keys (keyed workload).
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Instances of the engine's keyed count; above 1 the source feeds a keyed exchange.
    #[arg(long, default_value_t = 1)]
    parallelism: usize,
    /// Shared machines: before each run wait (up to 5 min) until other processes and the
    /// hypervisor use at most this fraction of the machine's CPU, e.g. `0.02`, and repeat
    /// a run they disturbed beyond it (up to 5 attempts, keeping the least disturbed).
    /// Every run's interference is reported either way.
    #[arg(long)]
    max_interference: Option<f64>,
    /// Checkpoint the engine's query at this interval (e.g. `100ms`), into the results
    /// directory; unset: no checkpoints. The baselines never checkpoint.
    #[arg(long, value_parser = crate::parse_duration)]
    checkpoint_interval: Option<Duration>,
    /// Durability of the engine's checkpoints: `msync` (the default, `Durability::Msync`:
    /// each completed epoch is synced to disk) or `os-buffered` (no sync; survives a
    /// process kill, not power loss).
    #[arg(long, default_value = "msync", value_parser = parse_durability)]
    durability: rivulet::checkpoint::Durability,
    /// Directory for the results.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// What one system's run produced.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The sink's histograms (all instances merged).
    pub(crate) recorded: Recorded,
    /// Threads the system ran on.
    pub(crate) threads: usize,
    /// Where they ran.
    pub(crate) pinning: String,
    /// How they waited.
    pub(crate) wait: String,
}

/// `cores 0,1` for pinned threads, `none` if none is pinned.
pub(crate) fn describe_placement(placement: &[Option<core_affinity::CoreId>]) -> String {
    if placement.iter().all(Option::is_none) {
        return "none".to_string();
    }
    let cores: Vec<String> = placement
        .iter()
        .map(|core| core.map_or("-".to_string(), |c| c.id.to_string()))
        .collect();
    format!("cores {}", cores.join(","))
}

/// The machine, for the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// `model name` from /proc/cpuinfo.
    cpu: String,
    /// Cores this process may use.
    cores: usize,
    /// Kernel release.
    kernel: String,
    /// /proc/loadavg when the benchmark started.
    load_average: String,
}

impl Machine {
    fn read() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split(':').nth(1))
                    .map(|model| model.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|text| text.trim().to_string())
                .unwrap_or_else(|_| "unknown".to_string())
        };
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: read("/proc/sys/kernel/osrelease"),
            load_average: read("/proc/loadavg"),
        }
    }
}

/// The JSON summary.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    workload: Workload,
    modes: Vec<String>,
    max_batch_records: Option<u64>,
    rate: u64,
    warmup_s: f64,
    duration_s: f64,
    runs: u32,
    ring_capacity: usize,
    keys: u64,
    parallelism: usize,
    checkpoint_interval_s: Option<f64>,
    wait: &'a str,
    pin: &'a str,
    record_bytes: usize,
    latency_unit: &'static str,
    started_unix_s: u64,
    machine: Machine,
    command: String,
    systems: &'a [SystemReport],
    bars: &'a [report::BarCheck],
}

/// One system to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    Engine(EngineMode),
    /// The engine with checkpoints off, run beside a checkpointed engine so the cost of
    /// checkpoints is measured within one run.
    EngineWithoutCheckpoints,
    Baseline(Baseline),
}

impl System {
    /// Its name in tables and file names: `rivulet` (plain continuous), `rivulet-mb-100ms`,
    /// `rivulet-cont-100ms` (continuous with epoch markers every 100 ms), a baseline's.
    fn name(self) -> String {
        match self {
            System::Engine(EngineMode::Continuous { epochs: None }) => ENGINE.to_string(),
            System::Engine(mode) => {
                let text = mode.to_string();
                let (kind, interval) = text.split_once(':').unwrap_or((&text, ""));
                let kind = if kind == "micro-batch" { "mb" } else { "cont" };
                format!("{ENGINE}-{kind}-{interval}")
            }
            System::EngineWithoutCheckpoints => ENGINE_WITHOUT_CHECKPOINTS.to_string(),
            System::Baseline(baseline) => baseline.name().to_string(),
        }
    }
}

/// Parses `--baselines`.
fn parse_baselines(names: &[String]) -> Result<Vec<Baseline>> {
    let mut chosen = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        match name {
            "all" => chosen.extend(Baseline::ALL),
            "none" => {}
            other => chosen.push(Baseline::from_str(other, true).map_err(|_| {
                anyhow::anyhow!(
                    "unknown baseline `{other}` (use raw, crossbeam, mpsc, all or none)"
                )
            })?),
        }
    }
    let mut unique = Vec::new();
    for baseline in Baseline::ALL {
        if chosen.contains(&baseline) {
            unique.push(baseline);
        }
    }
    Ok(unique)
}

/// `YYYYmmdd-HHMMSS` (UTC) of `unix_s` seconds since the epoch.
pub(crate) fn utc_stamp(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Seconds since the Unix epoch, now.
fn started_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs `rivulet bench`.
pub(crate) fn run(args: BenchArgs) -> Result<()> {
    if args.workload == Workload::Keyed && args.modes.iter().any(|mode| mode.is_micro_batch()) {
        bail!(
            "--modes micro-batch:…: the keyed workload emits one row per changed key per \
             batch in micro-batch mode, so most records never reach the sink to be \
             measured; compare modes with --workload stateless"
        );
    }
    let mut modes: Vec<EngineMode> = Vec::new();
    for mode in &args.modes {
        if !modes.contains(mode) {
            modes.push(*mode);
        }
    }
    anyhow::ensure!(args.ring_capacity > 0, "--ring-capacity must be at least 1");
    anyhow::ensure!(args.parallelism > 0, "--parallelism must be at least 1");
    anyhow::ensure!(
        args.workload == Workload::Keyed || args.parallelism == 1,
        "--parallelism applies to the keyed workload only"
    );
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("target/bench-results").join(format!(
            "{}-{}-{}",
            format!("{:?}", args.workload).to_lowercase(),
            args.rate,
            utc_stamp(started_unix_s())
        ))
    });
    let settings = engine::EngineSettings {
        wait: crate::parse_wait(&args.wait)?,
        wait_name: args.wait.clone(),
        pinning: crate::parse_pinning(&args.pin)?,
        ring_capacity: args.ring_capacity,
        parallelism: args.parallelism,
        mode: EngineMode::Continuous { epochs: None },
        max_batch_records: args.max_batch_records.map(|records| records as usize),
        checkpoint: args
            .checkpoint_interval
            .map(|interval| (interval, args.durability, out.clone())),
    };
    let mut systems: Vec<System> = Vec::new();
    if !args.skip_engine {
        systems.extend(modes.iter().map(|mode| System::Engine(*mode)));
        if settings.checkpoint.is_some() {
            systems.push(System::EngineWithoutCheckpoints);
        }
    }
    systems.extend(
        parse_baselines(&args.baselines)?
            .into_iter()
            .map(System::Baseline),
    );
    anyhow::ensure!(
        !systems.is_empty(),
        "nothing to run: no engine and no baseline"
    );

    let started = started_unix_s();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let machine = Machine::read();
    // Read the core list before anything is pinned (see rivulet::runtime::affinity).
    let _ = rivulet::runtime::affinity::available_cores();

    let schedule = Schedule::new(args.rate, args.warmup, args.duration);
    anyhow::ensure!(
        schedule.measured_records() > 0,
        "--rate × --duration sends no measured record"
    );
    let title = format!(
        "{} · {} · {} rec/s · {:.3}s measured after {:.3}s warm-up · ring {} · {} run{}",
        format!("{:?}", args.workload).to_lowercase(),
        modes
            .iter()
            .map(EngineMode::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        args.rate,
        args.duration.as_secs_f64(),
        args.warmup.as_secs_f64(),
        args.ring_capacity,
        args.runs,
        if args.runs == 1 { "" } else { "s, medians" }
    ) + &args
        .checkpoint_interval
        .map(|every| {
            format!(
                " · engine checkpoints every {every:?} ({:?})",
                args.durability
            )
        })
        .unwrap_or_default();
    let short = format!(
        "{} @ {} rec/s, engine wait {}, {} run{}",
        format!("{:?}", args.workload).to_lowercase(),
        args.rate,
        args.wait,
        args.runs,
        if args.runs == 1 { "" } else { "s merged" }
    );
    println!("rivulet bench: {title}");
    println!(
        "machine: {} · {} cores · kernel {} · load {}",
        machine.cpu, machine.cores, machine.kernel, machine.load_average
    );
    println!("results: {}", out.display());

    let per_system = args.warmup + args.duration;
    let total_ms = per_system.as_millis() as u64 * systems.len() as u64 * u64::from(args.runs);
    let bar = ProgressBar::with_draw_target(
        Some(total_ms),
        if std::io::stdout().is_terminal() {
            ProgressDrawTarget::stdout()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{msg:<24} [{wide_bar}] {percent:>3}% eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let say = |line: String| {
        if bar.is_hidden() {
            println!("{line}");
        } else {
            bar.println(line);
        }
    };

    let clock = Clock::new();
    let mut results: Vec<Vec<(Outcome, RunStats)>> = systems.iter().map(|_| Vec::new()).collect();
    let mut done_ms = 0u64;
    for run in 0..args.runs as usize {
        for offset in 0..systems.len() {
            let index = (run + offset) % systems.len();
            let system = systems[index];
            let mut kept: Option<(Outcome, RunStats)> = None;
            for attempt in 1..=MAX_ATTEMPTS {
                if let Some(limit) = args.max_interference {
                    bar.set_message(format!("waiting for a quiet machine ({})", system.name()));
                    if !interference::wait_for_quiet(limit, QUIET_WAIT) {
                        say(format!(
                            "  the machine was not quiet (others ≤ {:.1}%) within {}s; running anyway",
                            100.0 * limit,
                            QUIET_WAIT.as_secs()
                        ));
                    }
                }
                bar.set_message(format!("run {}/{} {}", run + 1, args.runs, system.name()));
                let generator = Generator::new(clock, schedule, args.keys);
                let recorder = Recorder::new(clock, schedule);
                let began = Instant::now();
                let mut tick = || {
                    let elapsed =
                        (began.elapsed().as_millis() as u64).min(per_system.as_millis() as u64);
                    bar.set_position(done_ms + elapsed);
                };
                let before = interference::CpuSample::now();
                let outcome = match system {
                    System::Engine(mode) => {
                        let settings = engine::EngineSettings {
                            mode,
                            ..settings.clone()
                        };
                        engine::run(args.workload, &settings, generator, recorder, &mut tick)
                    }
                    System::EngineWithoutCheckpoints => {
                        let settings = engine::EngineSettings {
                            checkpoint: None,
                            ..settings.clone()
                        };
                        engine::run(args.workload, &settings, generator, recorder, &mut tick)
                    }
                    System::Baseline(baseline) => baseline::run(
                        baseline,
                        args.workload,
                        generator,
                        recorder,
                        args.ring_capacity,
                        &settings.pinning,
                        &mut tick,
                    ),
                }
                .with_context(|| format!("run {} of {}", run + 1, system.name()))?;
                let interference = match (before, interference::CpuSample::now()) {
                    (Some(before), Some(after)) => before.since(&after, machine.cores),
                    _ => interference::Interference::default(),
                };
                done_ms += per_system.as_millis() as u64;
                bar.set_position(done_ms);
                let rate = outcome.recorded.achieved_rate();
                let stats = RunStats {
                    corrected: Stats::of(&outcome.recorded.corrected, rate),
                    uncorrected: Stats::of(&outcome.recorded.uncorrected, rate),
                    interference,
                };
                let corrected = &stats.corrected;
                say(format!(
                    "run {}/{} {:<10} p50 {:>10}  p99 {:>10}  p99.9 {:>10}  max {:>10}  {}  others {:.1}%",
                    run + 1,
                    args.runs,
                    system.name(),
                    report::format_us(corrected.p50_ns),
                    report::format_us(corrected.p99_ns),
                    report::format_us(corrected.p99_9_ns),
                    report::format_us(corrected.max_ns),
                    report::format_rate(corrected.achieved_rate),
                    100.0 * interference.total(),
                ));
                if corrected.count < schedule.measured_records() / 2 {
                    say(format!(
                        "warning: {} measured only {} of {} records",
                        system.name(),
                        corrected.count,
                        schedule.measured_records()
                    ));
                }
                let disturbed = args
                    .max_interference
                    .is_some_and(|limit| interference.total() > limit);
                // Keep the least disturbed attempt.
                if kept
                    .as_ref()
                    .is_none_or(|(_, best)| interference.total() < best.interference.total())
                {
                    kept = Some((outcome, stats));
                }
                if !disturbed {
                    break;
                }
                if attempt < MAX_ATTEMPTS {
                    say(format!(
                        "  other processes took {:.1}% of the machine (over --max-interference): \
                         repeating (attempt {}/{MAX_ATTEMPTS})",
                        100.0 * interference.total(),
                        attempt + 1
                    ));
                    bar.inc_length(per_system.as_millis() as u64);
                } else {
                    say(format!(
                        "warning: every attempt of {} was disturbed; keeping the least disturbed",
                        system.name()
                    ));
                }
            }
            results[index].push(kept.expect("at least one attempt ran"));
        }
    }
    bar.finish_and_clear();

    // Reports, medians, ratios.
    let mut reports: Vec<SystemReport> = systems
        .iter()
        .zip(&results)
        .map(|(system, runs)| {
            let first = &runs[0].0;
            SystemReport::new(
                &system.name(),
                first.threads,
                first.pinning.clone(),
                first.wait.clone(),
                runs.iter().map(|(_, stats)| stats.clone()).collect(),
            )
        })
        .collect();
    report::add_ratios(&mut reports, Baseline::Raw.name());
    let bars = if args.workload == Workload::Stateless {
        report::check_bars(&reports, ENGINE)
    } else {
        Vec::new()
    };
    let mut text = format!("{title}\n\n{}", report::table(&reports));
    if !bars.is_empty() {
        text.push_str("\nbars (issue #4, stateless continuous):\n");
        text.push_str(&report::bars_text(&bars));
    }
    println!("\n{text}");

    // Files.
    let mut merged: Vec<(String, Recorded)> = Vec::new();
    for (system, runs) in systems.iter().zip(&results) {
        let mut all = Recorded::empty();
        for (k, (outcome, _)) in runs.iter().enumerate() {
            all.merge(&outcome.recorded);
            if args.runs > 1 {
                write_hgrm(
                    &out.join(format!("{}.run{}.hgrm", system.name(), k + 1)),
                    &outcome.recorded.corrected,
                )?;
            }
        }
        write_hgrm(&out.join(format!("{}.hgrm", system.name())), &all.corrected)?;
        write_hgrm(
            &out.join(format!("{}.uncorrected.hgrm", system.name())),
            &all.uncorrected,
        )?;
        merged.push((system.name(), all));
    }
    let lines: Vec<(&str, &Histogram<u64>)> = merged
        .iter()
        .map(|(name, r)| (name.as_str(), &r.corrected))
        .collect();
    plot::write_svg(
        &out.join("latency.svg"),
        &format!("{short} — latency from scheduled send (corrected)"),
        &lines,
    )?;
    let lines: Vec<(&str, &Histogram<u64>)> = merged
        .iter()
        .map(|(name, r)| (name.as_str(), &r.uncorrected))
        .collect();
    plot::write_svg(
        &out.join("latency-uncorrected.svg"),
        &format!("{short} — latency from actual send (uncorrected)"),
        &lines,
    )?;
    std::fs::write(out.join("table.txt"), &text)?;
    std::fs::write(out.join("table.md"), report::markdown(&reports))?;
    let summary = Summary {
        workload: args.workload,
        modes: modes.iter().map(EngineMode::to_string).collect(),
        max_batch_records: args.max_batch_records,
        rate: args.rate,
        warmup_s: args.warmup.as_secs_f64(),
        duration_s: args.duration.as_secs_f64(),
        runs: args.runs,
        ring_capacity: args.ring_capacity,
        keys: args.keys,
        parallelism: args.parallelism,
        checkpoint_interval_s: args.checkpoint_interval.map(|d| d.as_secs_f64()),
        wait: &args.wait,
        pin: &args.pin,
        record_bytes: std::mem::size_of::<BenchRecord>(),
        latency_unit: "ns",
        started_unix_s: started,
        machine,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        systems: &reports,
        bars: &bars,
    };
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary)? + "\n",
    )?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Writes `histogram` (ns) as an `.hgrm` file in microseconds.
fn write_hgrm(path: &Path, histogram: &Histogram<u64>) -> Result<()> {
    let text = hgrm::percentile_distribution(
        histogram,
        hgrm::TICKS_PER_HALF_DISTANCE,
        hgrm::NANOS_PER_MICRO,
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Parses `--durability`.
fn parse_durability(text: &str) -> Result<rivulet::checkpoint::Durability, String> {
    match text {
        "msync" => Ok(rivulet::checkpoint::Durability::Msync),
        "os-buffered" => Ok(rivulet::checkpoint::Durability::OsBuffered),
        other => Err(format!(
            "unknown durability `{other}` (use msync or os-buffered)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_parse() {
        let names = |list: &[&str]| -> Vec<String> { list.iter().map(|s| s.to_string()).collect() };
        assert_eq!(
            parse_baselines(&names(&["all"])).unwrap(),
            Baseline::ALL.to_vec()
        );
        assert_eq!(
            parse_baselines(&names(&["mpsc", "raw", "raw"])).unwrap(),
            vec![Baseline::Raw, Baseline::Mpsc]
        );
        assert!(parse_baselines(&names(&["none"])).unwrap().is_empty());
        assert!(parse_baselines(&names(&["kafka"])).is_err());
    }

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_700_000_000), "20231114-221320");
    }

    #[test]
    fn system_names() {
        let mode = |text| System::Engine(EngineMode::parse(text).unwrap()).name();
        assert_eq!(mode("continuous"), "rivulet");
        assert_eq!(mode("continuous:100ms"), "rivulet-cont-100ms");
        assert_eq!(mode("micro-batch:10ms"), "rivulet-mb-10ms");
        assert_eq!(System::Baseline(Baseline::Raw).name(), "raw-rtrb");
    }

    #[test]
    fn placement_text() {
        assert_eq!(describe_placement(&[None, None]), "none");
        let core = |id| Some(core_affinity::CoreId { id });
        assert_eq!(describe_placement(&[core(0), core(1)]), "cores 0,1");
    }

    #[test]
    fn a_short_bench_writes_every_output() {
        let dir = std::env::temp_dir().join(format!("rivulet-bench-{}", std::process::id()));
        let args = BenchArgs {
            workload: Workload::Stateless,
            rate: 50_000,
            duration: Duration::from_millis(100),
            warmup: Duration::from_millis(20),
            modes: vec![EngineMode::Continuous { epochs: None }],
            max_batch_records: None,
            runs: 2,
            baselines: vec!["all".into()],
            skip_engine: false,
            wait: "park".into(),
            pin: "none".into(),
            ring_capacity: 256,
            keys: 1000,
            parallelism: 1,
            checkpoint_interval: None,
            durability: rivulet::checkpoint::Durability::Msync,
            max_interference: None,
            out: Some(dir.clone()),
        };
        run(args).unwrap();
        for file in [
            "table.txt",
            "table.md",
            "summary.json",
            "latency.svg",
            "latency-uncorrected.svg",
            "rivulet.hgrm",
            "rivulet.uncorrected.hgrm",
            "rivulet.run2.hgrm",
            "raw-rtrb.hgrm",
            "crossbeam.hgrm",
            "mpsc.hgrm",
        ] {
            assert!(dir.join(file).is_file(), "{file} missing");
        }
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        let systems = summary["systems"].as_array().unwrap();
        assert_eq!(systems.len(), 4);
        assert_eq!(systems[0]["name"], "rivulet");
        assert_eq!(systems[0]["runs"].as_array().unwrap().len(), 2);
        assert_eq!(systems[1]["ratio_to_raw"]["p50"], 1.0);
        let (rows, total) =
            hgrm::parse(&std::fs::read_to_string(dir.join("raw-rtrb.hgrm")).unwrap());
        assert_eq!(rows.last().unwrap().total_count, total);
        assert_eq!(
            total,
            systems[1]["runs"][0]["corrected"]["count"]
                .as_u64()
                .unwrap()
                + systems[1]["runs"][1]["corrected"]["count"]
                    .as_u64()
                    .unwrap()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
