//! Crash and restart with real processes, for the file directory source: while files
//! are dripped into a directory (written under a hidden name, then renamed in), a child
//! process runs a checkpointed micro-batch query from the directory to a file sink; the
//! test kills it with SIGKILL at random moments and restarts it on the same
//! directories, then lets a last run finish. The committed output must hold every input
//! row exactly once: the discovery log and the offsets (file, byte, line) make an
//! interrupted batch replay the same rows, and the sink skips batches it committed.
//!
//! The child is this test binary itself, re-run with `--ignored --exact
//! files_crash_worker` and the `RIVULET_FILES_CRASH_WORKER` environment variable; it
//! stops itself once the committed output holds as many rows as the input will.

mod common;

use rivulet::checkpoint::{CheckpointConfig, Durability};
use rivulet::sink::file::read_committed;
use rivulet::sink::FileFormat;
use rivulet::source::FileSourceConfig;
use rivulet::{Query, Trigger};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    file: u32,
    seq: u32,
    value: u64,
}

fn value_of(file: u32, seq: u32) -> u64 {
    u64::from(file) * 7919 + u64::from(seq) * 31
}

/// The child process: runs the query until the output holds `RIVULET_FILES_TOTAL` rows.
#[test]
#[ignore = "entry point of the child process of the file source crash tests"]
fn files_crash_worker() {
    let Ok(dir) = std::env::var("RIVULET_FILES_CRASH_WORKER") else {
        return;
    };
    let total: usize = std::env::var("RIVULET_FILES_TOTAL")
        .unwrap()
        .parse()
        .unwrap();
    let dir = Path::new(&dir);
    let mut query = Query::builder();
    query
        .checkpoint(
            CheckpointConfig::new(dir.join("checkpoints"))
                .durability(Durability::OsBuffered)
                .retain(2)
                .segment_bytes(1 << 20),
        )
        .trigger(Trigger::MicroBatch {
            interval: Duration::from_millis(5),
        })
        // Batches end in the middle of files.
        .max_batch_records(157);
    query
        .read_dir::<Row>(
            "drops",
            FileSourceConfig::csv(dir.join("input")).poll_interval(Duration::from_millis(5)),
        )
        .to_files(dir.join("out"), FileFormat::Csv);
    let running = query.start().unwrap();
    common::note_run(&running, dir);
    let out = dir.join("out");
    loop {
        if let Some(result) = running.await_termination_timeout(Duration::from_millis(20)) {
            result.unwrap();
            panic!("the query ended by itself");
        }
        let committed = read_committed::<Row>(&out, FileFormat::Csv).map_or(0, |rows| rows.len());
        if committed >= total {
            break;
        }
    }
    running.stop().unwrap();
}

fn spawn_worker(dir: &Path, total: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "files_crash_worker",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RIVULET_FILES_CRASH_WORKER", dir)
        .env("RIVULET_FILES_TOTAL", total.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the test binary can run itself")
}

fn run_crash_test(files: u32, kills: usize, seed: u64) {
    let keep = std::env::var("RIVULET_KEEP").is_ok();
    let dir = tempfile::Builder::new()
        .disable_cleanup(keep)
        .tempdir()
        .unwrap();
    if keep {
        eprintln!("keeping {}", dir.path().display());
    }
    let input = dir.path().join("input");
    std::fs::create_dir(&input).unwrap();
    let mut random = common::Rng::new(seed);
    // The input, decided up front: file `f` has `sizes[f]` rows.
    let sizes: Vec<u32> = (0..files)
        .map(|_| 50 + (random.next_u64() % 400) as u32)
        .collect();
    let total: usize = sizes.iter().map(|n| *n as usize).sum();
    let started = Instant::now();

    // The dripper: one file every few milliseconds, each written under a hidden name
    // and renamed in.
    let drip_dir = input.clone();
    let drip_sizes = sizes.clone();
    let dripper = std::thread::spawn(move || {
        for (file, rows) in drip_sizes.iter().enumerate() {
            let file = file as u32;
            let mut text = String::new();
            for seq in 0..*rows {
                text.push_str(&format!("{file},{seq},{}\n", value_of(file, seq)));
            }
            let name = format!("drop-{file:05}.csv");
            let temp = drip_dir.join(format!(".{name}.tmp"));
            std::fs::write(&temp, text).unwrap();
            std::fs::rename(&temp, drip_dir.join(&name)).unwrap();
            std::thread::sleep(Duration::from_millis(15));
        }
    });

    for _ in 0..kills {
        common::kill_after(
            spawn_worker(dir.path(), total),
            Duration::from_millis(60 + random.next_u64() % 240),
        );
    }
    dripper.join().unwrap();
    common::expect_success(spawn_worker(dir.path(), total), "the final run");

    let runs: Vec<i64> = std::fs::read_to_string(dir.path().join("runs.txt"))
        .unwrap()
        .lines()
        .map(|line| line.parse().unwrap())
        .collect();
    assert!(
        *runs.last().unwrap() > 0,
        "the final run did not resume: {runs:?}"
    );

    // The reference: every (file, seq) of the input once, with its value.
    let rows: Vec<Row> = read_committed(dir.path().join("out"), FileFormat::Csv).unwrap();
    let mut seen: BTreeMap<(u32, u32), u32> = BTreeMap::new();
    for row in &rows {
        assert_eq!(
            row.value,
            value_of(row.file, row.seq),
            "a damaged row: {row:?}"
        );
        *seen.entry((row.file, row.seq)).or_default() += 1;
    }
    let expected: Vec<(u32, u32)> = sizes
        .iter()
        .enumerate()
        .flat_map(|(file, rows)| (0..*rows).map(move |seq| (file as u32, seq)))
        .collect();
    let missing: Vec<&(u32, u32)> = expected
        .iter()
        .filter(|key| !seen.contains_key(key))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "rows never committed (first 10): {missing:?}"
    );
    let duplicated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(10).collect();
    assert!(
        duplicated.is_empty(),
        "rows committed twice (first 10): {duplicated:?}"
    );
    assert_eq!(rows.len(), total);
    // Files arrive in order, and rows in file order: within the output (by epoch),
    // (file, seq) only grows.
    let keys: Vec<(u32, u32)> = rows.iter().map(|r| (r.file, r.seq)).collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "rows out of file order"
    );
    eprintln!(
        "{kills} kills, {} runs ({} resumed), {} rows in {files} files, {:?}",
        runs.len(),
        runs.iter().filter(|epoch| **epoch > 0).count(),
        rows.len(),
        started.elapsed()
    );
}

#[test]
fn micro_batch_file_source_is_exactly_once_across_kills() {
    run_crash_test(60, 10, 0x5eed_f11e);
}

#[test]
#[ignore = "long: 60 kill points"]
fn file_source_survives_many_kills() {
    run_crash_test(300, 60, 23);
}
