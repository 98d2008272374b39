//! Spark's structured word count over a socket, in SQL: lines from TCP as a `value`
//! column (`readStream.format("socket")`), `explode(split(value, ' '))` into words, a
//! running count per word, printed after every micro-batch as the whole result table
//! (complete output mode).
//!
//! ```text
//! cargo run --release --example socket_word_count_sql -- --generate --seconds 10
//! ```
//!
//! or against `nc -lk 9999` (type lines into it):
//!
//! ```text
//! cargo run --release --example socket_word_count_sql
//! ```
//!
//! The two statements, as in Spark (`spark.sql(..)` on a view of the socket frame, then
//! on a view of the first result):
//!
//! ```sql
//! SELECT explode(split(value, ' ')) AS word FROM lines
//! SELECT word, count(*) AS count FROM words GROUP BY word
//! ```
//!
//! The DataFrame form of the same query is
//! `lines.select([explode(split(col("value"), " ")).alias("word")])?.group_by(["word"])?.count()?`.

use clap::Parser;
use rivulet::source::SocketSourceConfig;
use rivulet::{OutputMode, Query, Trigger};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Structured word count over a socket, in SQL.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Start a built-in line generator on --host:--port, which the source connects to.
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
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let address = format!("{}:{}", args.host, args.port);
    if args.generate {
        let listener = TcpListener::bind(&address).map_err(|error| {
            format!("the generator cannot listen on {address}: {error} (try another --port)")
        })?;
        println!("generator: writing 5 lines/s on {address}");
        std::thread::spawn(move || generate(listener));
    } else {
        println!(
            "connecting to {address} (start `nc -lk {}` and type lines)",
            args.port
        );
    }

    let mut query = Query::builder();
    query
        .name("socket_word_count_sql")
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(args.interval_ms.max(1)),
        })
        .output_mode(OutputMode::Complete);
    query
        .socket_rows("lines", SocketSourceConfig::client(address))
        .create_or_replace_temp_view("lines");
    query
        .sql("SELECT explode(split(value, ' ')) AS word FROM lines")?
        .create_or_replace_temp_view("words");
    query
        .sql("SELECT word, count(*) AS count FROM words GROUP BY word")?
        .to_console();
    let running = query.start()?;
    match args.seconds {
        Some(seconds) => {
            std::thread::sleep(Duration::from_secs(seconds));
            running.stop()?;
        }
        None => running.await_termination()?,
    }
    Ok(())
}

/// Accepts clients and writes each five lines per second of words from a small
/// vocabulary until it goes away.
fn generate(listener: TcpListener) {
    for client in listener.incoming().flatten() {
        std::thread::spawn(move || write_lines(client));
    }
}

fn write_lines(mut client: TcpStream) {
    const VOCABULARY: [&str; 8] = [
        "spark",
        "streaming",
        "rivulet",
        "socket",
        "word",
        "count",
        "sql",
        "stream",
    ];
    let start = Instant::now();
    for n in 1u64.. {
        let words: Vec<&str> = (0..1 + n % 5)
            .map(|i| VOCABULARY[((n * 31 + i * 17) % 8) as usize])
            .collect();
        if writeln!(client, "{}", words.join(" ")).is_err() {
            return; // the client left
        }
        let due = start + Duration::from_millis(n * 200);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
}
