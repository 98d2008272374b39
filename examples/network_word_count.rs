//! Spark's `NetworkWordCount`, in structured form: lines of text from a TCP socket, split
//! on spaces, a running count per word, printed after every micro-batch as the whole
//! result table (complete output mode), the way Spark's console sink prints it.
//!
//! With a built-in line generator (no `nc` needed; stops after 10 seconds):
//!
//! ```text
//! cargo run --release --example network_word_count -- --generate --seconds 10
//! ```
//!
//! Against `nc`, as in Spark's guide: start `nc -lk 9999` in one terminal, then
//!
//! ```text
//! cargo run --release --example network_word_count
//! ```
//!
//! and type lines into `nc`. The source connects to `localhost:9999` (`--host`,
//! `--port`), and reconnects with backoff if `nc` is not there yet or goes away.
//!
//! Output after each batch (one second by default, `--interval-ms`):
//!
//! ```text
//! -------------------------------------------
//! Batch: 3
//! -------------------------------------------
//! +-------+-----+
//! |  value|count|
//! +-------+-----+
//! |  spark|   12|
//! |  ...  |  ...|
//! ```

use clap::Parser;
use rivulet::source::SocketSourceConfig;
use rivulet::{OutputMode, Query, Trigger};
use serde::Serialize;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Spark's NetworkWordCount on rivulet: word counts over lines from a TCP socket.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Start a built-in line generator: a server on --host:--port writing random words,
    /// which the source then connects to.
    #[arg(long)]
    generate: bool,
    /// The host to connect to (and the generator's address).
    #[arg(long, default_value = "localhost")]
    host: String,
    /// The port to connect to (and the generator's port).
    #[arg(long, default_value_t = 9999)]
    port: u16,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    seconds: Option<u64>,
    /// The micro-batch interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Lines per second the generator writes.
    #[arg(long, default_value_t = 5)]
    rate: u32,
}

/// A row of the result table, named as Spark names the columns of
/// `words.groupBy("value").count()`.
#[derive(Debug, Clone, Serialize)]
struct WordCount {
    value: String,
    count: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let address = format!("{}:{}", args.host, args.port);
    if args.generate {
        let listener = TcpListener::bind(&address).map_err(|error| {
            format!("the generator cannot listen on {address}: {error} (try another --port)")
        })?;
        println!("generator: writing {} lines/s on {address}", args.rate);
        let rate = args.rate.max(1);
        std::thread::spawn(move || generate(listener, rate));
    } else {
        println!(
            "connecting to {address} (start `nc -lk {}` and type lines)",
            args.port
        );
    }

    let mut query = Query::builder();
    query
        .name("network_word_count")
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(args.interval_ms.max(1)),
        })
        .output_mode(OutputMode::Complete);
    query
        .socket_text("lines", SocketSourceConfig::client(address))
        .flat_map(|line: String| {
            line.split(' ')
                .filter(|word| !word.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .key_by(|word: &String| word.clone())
        .count()
        .map(|(value, count)| WordCount { value, count })
        .to_console();
    let running = query.start()?;
    match args.seconds {
        Some(seconds) => {
            std::thread::sleep(Duration::from_secs(seconds));
            running.stop()?;
            println!("{}", running.progress());
        }
        None => running.await_termination()?,
    }
    Ok(())
}

/// Words the generator picks from.
const VOCABULARY: [&str; 12] = [
    "spark",
    "streaming",
    "rivulet",
    "socket",
    "word",
    "count",
    "batch",
    "epoch",
    "ring",
    "thread",
    "line",
    "stream",
];

/// Accepts clients and writes each `rate` lines per second of random words until it
/// goes away.
fn generate(listener: TcpListener, rate: u32) {
    for (seed, client) in listener.incoming().enumerate() {
        let Ok(client) = client else {
            continue;
        };
        std::thread::spawn(move || write_lines(client, rate, seed as u64 + 1));
    }
}

fn write_lines(mut client: TcpStream, rate: u32, seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut random = move |bound: usize| {
        // xorshift64*: enough for picking words.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % bound
    };
    let start = Instant::now();
    for n in 1u64.. {
        let words: Vec<&str> = (0..1 + random(6))
            .map(|_| VOCABULARY[random(VOCABULARY.len())])
            .collect();
        if writeln!(client, "{}", words.join(" ")).is_err() {
            return; // the client left
        }
        let due = start + Duration::from_secs_f64(n as f64 / f64::from(rate));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
}
