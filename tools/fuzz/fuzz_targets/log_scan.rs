//! Fuzzes `rivulet::checkpoint::log::scan` with arbitrary segment file contents.
//!
//! The first input byte picks a mode, the rest is the segment file:
//!
//! * bit 0 set: a valid header for segment 0 is put in front, so the frame parser is
//!   reached (a fuzzer cannot easily guess the header CRC);
//! * bit 1 set (with bit 0): the CRCs of the frames in the body are repaired, so inputs
//!   contain valid entries and the entry path is exercised. Then the scan must return
//!   exactly the frames repaired, with their kinds and payloads.
//!
//! Whatever the bytes, `scan` must not panic, must succeed (the directory is readable),
//! and every entry it returns must lie inside the file and have a non-zero kind.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rivulet::checkpoint::log::{scan, EntryKind};

const HEADER_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;

fn header() -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(b"RIVLOG01");
    // Segment number 0: bytes 8..16 stay zero.
    let crc = crc32fast::hash(&header[..16]);
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Walks the frames from the header on and writes the correct CRC into each one whose
/// length fits and whose kind is not 0; returns the (offset, kind, payload) of each.
fn repair(file: &mut [u8]) -> Vec<(u64, u8, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut offset = HEADER_LEN;
    while offset + FRAME_HEADER_LEN <= file.len() {
        let len = u32::from_le_bytes(file[offset..offset + 4].try_into().unwrap()) as usize;
        let kind = file[offset + 4];
        let payload_at = offset + FRAME_HEADER_LEN;
        if kind == 0 || len > file.len() - payload_at {
            break;
        }
        let payload = &file[payload_at..payload_at + len];
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&[kind]);
        hasher.update(payload);
        let crc = hasher.finalize();
        frames.push((offset as u64, kind, payload.to_vec()));
        file[offset + 5..payload_at].copy_from_slice(&crc.to_le_bytes());
        offset = payload_at + len;
    }
    frames
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let mut file = Vec::with_capacity(HEADER_LEN + body.len());
    if mode & 1 != 0 {
        file.extend_from_slice(&header());
    }
    file.extend_from_slice(body);
    let expected = (mode & 3 == 3).then(|| repair(&mut file));

    let dir = tempfile::tempdir().expect("create a temporary directory");
    std::fs::write(dir.path().join("segment-0000000000000000.log"), &file)
        .expect("write the segment file");
    let found = scan(dir.path()).expect("scan of a readable directory");

    assert_eq!(found.segments, vec![0]);
    for entry in &found.entries {
        assert_ne!(entry.kind, EntryKind(0));
        assert_eq!(entry.location.segment, 0);
        let end = entry.location.offset as usize + FRAME_HEADER_LEN + entry.payload.len();
        assert!(end <= file.len());
        assert_eq!(
            &file[entry.location.offset as usize + FRAME_HEADER_LEN..end],
            &entry.payload[..]
        );
    }
    if let Some(expected) = expected {
        let got: Vec<_> = found
            .entries
            .iter()
            .map(|e| (e.location.offset, e.kind.0, e.payload.clone()))
            .collect();
        assert_eq!(got, expected);
    }
    for problem in &found.problems {
        let _ = problem.to_string();
    }
});
