//! Fuzzes the checkpoint log's recovery read after damage: a log written by `LogWriter`,
//! then bytes overwritten and the file cut where the input says.
//!
//! Input: byte 0 is the number of entries (1 to 32), byte 1 their payload size (0 to
//! 63), byte 2 the segment size (in units of 64 bytes, at least 128 bytes); then pairs
//! `(offset u16 LE, value)` of damage, and a last odd byte, if any, cuts the last segment
//! at that fraction of its length.
//!
//! Property: `scan` never panics, and every entry whose frame no damage changed, in a
//! segment whose header is intact, and that the cut left whole, is read back: one damaged
//! entry costs that entry alone (the reader resumes at the next intact frame).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rivulet::checkpoint::log::{scan, EntryKind, LogConfig, LogWriter};
use rivulet::checkpoint::Durability;

const SEGMENT_HEADER: usize = 32;
const FRAME_HEADER: usize = 17;

fuzz_target!(|data: &[u8]| {
    let [count, size, segment, rest @ ..] = data else {
        return;
    };
    let count = usize::from(*count % 32) + 1;
    let size = usize::from(*size % 64);
    let segment_bytes = (u64::from(*segment % 32) + 2) * 64;
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let config = LogConfig {
        segment_bytes,
        durability: Durability::OsBuffered,
    };
    let mut writer = LogWriter::open(dir.path(), config).expect("open the log");
    let mut written = Vec::new();
    for i in 0..count {
        let payload: Vec<u8> = (0..size).map(|j| (i * 37 + j * 11) as u8).collect();
        let at = writer
            .append(EntryKind((i % 200 + 1) as u8), &payload)
            .expect("append");
        written.push((at, payload));
    }
    let last = writer.current_segment();
    drop(writer);

    let path = |n: u64| dir.path().join(format!("segment-{n:016x}.log"));
    let mut files: Vec<Vec<u8>> = (0..=last).map(|n| std::fs::read(path(n)).unwrap()).collect();
    // Changed bytes, per segment.
    let mut changed: Vec<Vec<usize>> = vec![Vec::new(); files.len()];
    let total: usize = files.iter().map(Vec::len).sum();
    for pair in rest.chunks_exact(3) {
        let mut at = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % total;
        let mut n = 0;
        while at >= files[n].len() {
            at -= files[n].len();
            n += 1;
        }
        if files[n][at] != pair[2] {
            files[n][at] = pair[2];
            changed[n].push(at);
        }
    }
    let last_len = files[last as usize].len();
    let cut = match rest.len() % 3 {
        0 => last_len,
        _ => last_len * usize::from(rest[rest.len() - 1]) / 255,
    };
    files[last as usize].truncate(cut);
    for (n, bytes) in files.iter().enumerate() {
        std::fs::write(path(n as u64), bytes).unwrap();
    }

    let found = scan(dir.path()).expect("scan of a readable directory");
    for (at, payload) in &written {
        let segment = at.segment as usize;
        let start = at.offset as usize;
        let end = start + FRAME_HEADER + payload.len();
        let header_intact = changed[segment].iter().all(|i| *i >= SEGMENT_HEADER)
            && (at.segment != last || cut >= SEGMENT_HEADER);
        let frame_intact = !changed[segment].iter().any(|i| (start..end).contains(i));
        let whole = at.segment != last || end <= cut;
        if header_intact && frame_intact && whole {
            assert!(
                found
                    .entries
                    .iter()
                    .any(|e| e.location == *at && e.payload == *payload),
                "entry at {at} lost; problems {:?}",
                found.problems
            );
        }
    }
    for problem in &found.problems {
        let _ = problem.to_string();
    }
});
