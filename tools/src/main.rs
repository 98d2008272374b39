//! `rivulet`: command-line programs around the rivulet engine.
//!
//! ```text
//! cargo run --release -p rivulet-tools -- demo --rate 500000 --duration 2s
//! cargo run --release -p rivulet-tools -- gen sensor --rows 20000 --files 40 --out /tmp/oil --drip-ms 500
//! cargo run --release -p rivulet-tools -- bench --workload stateless --rate 1000000 \
//!     --duration 10s --warmup 2s --mode continuous --runs 3
//! cargo run --release -p rivulet-tools -- demo --duration 60s --serve 127.0.0.1:9184
//! cargo run --release -p rivulet-tools -- watch http://127.0.0.1:9184/
//! ```

mod bench;
mod gen;
mod inspect;
mod watch;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use rivulet::{Pinning, Query, WaitPolicy};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "rivulet",
    version,
    about = "Tools for the rivulet stream engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs a rate source → filter → map → keyed count pipeline and prints progress.
    Demo {
        /// Rows per second of the rate source.
        #[arg(long, default_value_t = 200_000)]
        rate: u64,
        /// How long to run, e.g. `2s`, `500ms`.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        duration: Duration,
        /// Instances of the keyed count.
        #[arg(long, default_value_t = 1)]
        parallelism: usize,
        /// Wait policy of idle threads: `park`, `yield` or `spin` (or `park:SPINS:YIELDS`,
        /// `yield:SPINS`).
        #[arg(long, default_value = "park")]
        wait: String,
        /// Pin threads to cores (`auto`, `none`, or a comma-separated core list).
        #[arg(long, default_value = "auto")]
        pin: String,
        /// Serve the query's metrics and live dashboard on this address (e.g.
        /// `127.0.0.1:9184`) while it runs.
        #[arg(long)]
        serve: Option<String>,
    },
    /// A terminal view of a running query's progress, read from its metrics endpoint
    /// (`Query::serve_metrics`): rates, epoch, watermark, latency percentiles, one row
    /// per operator. Ends when the query does.
    Watch {
        /// The endpoint, e.g. `http://127.0.0.1:9184/`.
        url: String,
        /// Time between reads, e.g. `1s`, `500ms`.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        interval: Duration,
        /// Print the table once and exit.
        #[arg(long)]
        once: bool,
    },
    /// Open-loop latency benchmark of a workload on the engine and on hand-written
    /// baselines (raw rtrb ring, crossbeam-channel, std mpsc), in the same run.
    Bench(bench::BenchArgs),
    /// Lists the epochs in a checkpoint directory, verifies every CRC, shows per-operator
    /// state sizes; exits non-zero if anything is damaged.
    Inspect {
        /// The checkpoint directory (the one given to `CheckpointConfig::new`).
        dir: std::path::PathBuf,
        /// Print the findings as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Generates test data: `gen sensor` writes the oil-pump sensor CSV files of the
    /// `sensor` example (and its vendor and maintenance tables), optionally dripping
    /// them into the directory.
    Gen {
        #[command(subcommand)]
        what: gen::GenCommand,
    },
}

/// Parses `10s`, `250ms`, `2m` or a plain number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s or 250ms"))?;
    let seconds = match unit {
        "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" => value * 60.0,
        other => return Err(format!("unknown unit `{other}` (use s, ms, us or m)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// `park`, `yield`, `spin`, or the tunable forms `park:SPINS:YIELDS` and `yield:SPINS`.
fn parse_wait(text: &str) -> Result<WaitPolicy> {
    let mut parts = text.split(':');
    let kind = parts.next().unwrap_or_default();
    let numbers: Vec<u32> = parts
        .map(|n| n.parse::<u32>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("`{text}`: spins and yields are whole numbers"))?;
    Ok(match (kind, numbers.as_slice()) {
        ("park", []) => WaitPolicy::default(),
        ("park", [spins, yields]) => WaitPolicy::SpinThenPark {
            spins: *spins,
            yields: *yields,
        },
        ("yield", []) => WaitPolicy::SpinThenYield { spins: 6 },
        ("yield", [spins]) => WaitPolicy::SpinThenYield { spins: *spins },
        ("spin", []) => WaitPolicy::BusySpin,
        _ => bail!(
            "unknown wait policy `{text}` (use park, yield, spin, park:SPINS:YIELDS or yield:SPINS)"
        ),
    })
}

fn parse_pinning(text: &str) -> Result<Pinning> {
    Ok(match text {
        "auto" => Pinning::Auto,
        "none" => Pinning::None,
        list => Pinning::Cores(
            list.split(',')
                .map(|core| core.trim().parse::<usize>())
                .collect::<Result<_, _>>()
                .with_context(|| format!("`{list}` is not auto, none or a list of core ids"))?,
        ),
    })
}

fn demo(
    rate: u64,
    duration: Duration,
    parallelism: usize,
    wait: &str,
    pin: &str,
    serve: Option<&str>,
) -> Result<()> {
    let mut query = Query::builder();
    query
        .name("demo")
        // Continuous, with an epoch (and a progress report) every 200 ms.
        .trigger(rivulet::Trigger::Continuous {
            checkpoint_interval: Duration::from_millis(200),
        })
        .parallelism(parallelism)
        .wait_policy(parse_wait(wait)?)
        .pinning(parse_pinning(pin)?);
    query
        .rate("rate", rate)
        .filter(|row| row.value % 4 != 0)
        .map(|row| (row.value % 1000, row.timestamp))
        .key_by(|(key, _)| *key)
        .count()
        .for_each(|update| {
            std::hint::black_box(update);
        });
    let running = query.start()?;
    if let Some(addr) = serve {
        let server = running.serve_metrics(addr)?;
        println!(
            "dashboard: {} (rivulet watch {})",
            server.url(),
            server.url()
        );
    }
    let start = Instant::now();
    while start.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(500).min(duration));
        let progress = running.progress();
        println!(
            "{:>7.2}s {:>10} in {:>10} out {:>12.0} rows/s in",
            progress.elapsed.as_secs_f64(),
            progress.input_rows,
            progress.output_rows,
            progress.input_rows_per_second
        );
    }
    running.stop()?;
    println!("{}", running.progress());
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Demo {
            rate,
            duration,
            parallelism,
            wait,
            pin,
            serve,
        } => demo(rate, duration, parallelism, &wait, &pin, serve.as_deref()),
        Command::Watch {
            url,
            interval,
            once,
        } => watch::run(&url, interval, once),
        Command::Bench(args) => bench::run(args),
        Command::Gen { what } => gen::run(what),
        Command::Inspect { dir, json } => {
            let inspection = inspect::run(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&inspection)?);
            } else {
                inspect::print(&inspection);
            }
            if !inspection.healthy {
                std::process::exit(2);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn gen_sensor_parses() {
        let cli = Cli::try_parse_from([
            "rivulet",
            "gen",
            "sensor",
            "--rows",
            "10",
            "--files",
            "2",
            "--out",
            "/tmp/x",
            "--drip-ms",
            "50",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Gen {
                what: gen::GenCommand::Sensor(_)
            }
        ));
        assert!(Cli::try_parse_from(["rivulet", "gen", "sensor", "--rows", "10"]).is_err());
    }

    #[test]
    fn wait_and_pin_parse() {
        assert_eq!(parse_wait("spin").unwrap(), WaitPolicy::BusySpin);
        assert!(parse_wait("nap").is_err());
        assert_eq!(
            parse_wait("park:10:100").unwrap(),
            WaitPolicy::SpinThenPark {
                spins: 10,
                yields: 100
            }
        );
        assert_eq!(
            parse_wait("yield:3").unwrap(),
            WaitPolicy::SpinThenYield { spins: 3 }
        );
        assert!(parse_wait("park:1").is_err());
        assert!(parse_wait("spin:x").is_err());
        assert_eq!(parse_pinning("0,1").unwrap(), Pinning::Cores(vec![0, 1]));
        assert!(parse_pinning("x").is_err());
    }
}
