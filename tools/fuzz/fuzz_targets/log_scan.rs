//! Fuzzes the checkpoint log's reader with arbitrary segment file contents, through
//! `rivulet::fuzzing::scan_segment`: what `checkpoint::log::scan` returns for a
//! directory holding only that segment, read in memory (a unit test checks the two agree;
//! `log_damage` goes through real files).
//!
//! The first input byte picks a mode, the rest is the segment file:
//!
//! * bit 0 set: a valid header for segment 0 is put in front, so the frame parser is
//!   reached (a fuzzer cannot easily guess the segment header's CRC); format 2 (`RIVLOG02`), or
//!   format 1 (`RIVLOG01`) with bit 2 set; bit 3 sets format 2's `ROLLED` flag;
//! * bit 1 set (with bit 0): the frames in the body are repaired (sync marker, `nlen` and
//!   CRC in format 2, CRC in format 1) as far as their lengths fit, so inputs hold valid entries
//!   and the entry path is exercised. Then the scan must return those frames, with their
//!   kinds and payloads, first (what follows them is garbage, in which a resyncing reader
//!   may still find a frame).
//!
//! Whatever the bytes, the scan must not panic, and every entry it returns must lie inside the file, hold the file's bytes there and
//! have a non-zero kind.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rivulet::checkpoint::log::EntryKind;

const SYNC: [u8; 4] = [0xE5, 0x9A, 0x17, 0xC3];

/// A format-2 header for segment 0 of `size` bytes, or a format-1 header.
fn header(v1: bool, size: u64, rolled: bool) -> Vec<u8> {
    let mut header = Vec::new();
    if v1 {
        header.extend_from_slice(b"RIVLOG01");
        header.extend_from_slice(&0u64.to_le_bytes());
        let crc = crc32fast::hash(&header);
        header.extend_from_slice(&crc.to_le_bytes());
        header.extend_from_slice(&[0; 4]);
    } else {
        header.extend_from_slice(b"RIVLOG02");
        header.extend_from_slice(&0u64.to_le_bytes());
        header.extend_from_slice(&size.to_le_bytes());
        header.extend_from_slice(&u32::from(rolled).to_le_bytes());
        let crc = crc32fast::hash(&header);
        header.extend_from_slice(&crc.to_le_bytes());
    }
    header
}

fn frame_crc(kind: u8, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind]);
    hasher.update(payload);
    hasher.finalize()
}

/// Walks the frames from `offset` on and makes each one valid whose length fits and
/// whose kind is not 0; returns the (offset, kind, payload) of each.
fn repair(file: &mut [u8], mut offset: usize, v1: bool) -> Vec<(u64, u8, Vec<u8>)> {
    let (header_len, fields) = if v1 { (9, 0) } else { (17, 4) };
    let mut frames = Vec::new();
    while offset + header_len <= file.len() {
        let len = u32::from_le_bytes(file[offset + fields..offset + fields + 4].try_into().unwrap())
            as usize;
        let kind = file[offset + fields + 4];
        let payload_at = offset + header_len;
        if kind == 0 || len > file.len() - payload_at {
            break;
        }
        let payload = file[payload_at..payload_at + len].to_vec();
        let crc = frame_crc(kind, &payload);
        file[offset + fields + 5..offset + fields + 9].copy_from_slice(&crc.to_le_bytes());
        if !v1 {
            file[offset..offset + 4].copy_from_slice(&SYNC);
            file[offset + 13..offset + 17].copy_from_slice(&(!(len as u32)).to_le_bytes());
        }
        frames.push((offset as u64, kind, payload));
        offset = payload_at + len;
    }
    frames
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let v1 = mode & 4 != 0;
    let mut file = Vec::new();
    if mode & 1 != 0 {
        let header_len = if v1 { 24 } else { 32 };
        file = header(v1, (header_len + body.len()) as u64, mode & 8 != 0);
    }
    let header_len = file.len();
    file.extend_from_slice(body);
    let expected = (mode & 3 == 3).then(|| repair(&mut file, header_len, v1));

    let found = rivulet::fuzzing::scan_segment(&file);

    assert_eq!(found.segments, vec![0]);
    let frame_header = if v1 { 9 } else { 17 };
    for entry in &found.entries {
        assert_ne!(entry.kind, EntryKind(0));
        assert_eq!(entry.location.segment, 0);
        let start = entry.location.offset as usize + frame_header;
        let end = start + entry.payload.len();
        assert!(end <= file.len());
        assert_eq!(&file[start..end], &entry.payload[..]);
    }
    if let Some(expected) = expected {
        let got: Vec<_> = found
            .entries
            .iter()
            .take(expected.len())
            .map(|e| (e.location.offset, e.kind.0, e.payload.clone()))
            .collect();
        assert_eq!(got, expected);
    }
    for problem in &found.problems {
        let _ = problem.to_string();
    }
});
