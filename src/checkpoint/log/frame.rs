//! The byte layout of a segment: its header and the frames that follow it, in both log
//! formats.
//!
//! Pure functions over byte slices, no I/O, so the writer and the reader agree on one
//! definition and the rules can be tested (and fuzzed) without files.
//!
//! ```text
//! format 2 (written since issue #15)
//! segment header (32 bytes)
//!   magic    8 bytes   b"RIVLOG02"
//!   segment  u64 LE    the segment number, equal to the one in the file name
//!   size     u64 LE    the file's length as created (a shorter file was truncated)
//!   flags    u32 LE    bit 0: ROLLED, the writer that filled the segment before this one
//!                      went on here (so that segment cannot end in a torn write);
//!                      other bits zero
//!   crc      u32 LE    crc32 over the 28 bytes above
//! frame (17-byte header, then the payload)
//!   sync     4 bytes   SYNC, where the reader resumes after a damaged frame
//!   len      u32 LE    payload length in bytes
//!   kind     u8        entry kind, never 0
//!   crc      u32 LE    crc32 over the kind byte followed by the payload
//!   nlen     u32 LE    !len, the bitwise complement of len (as DEFLATE's NLEN)
//!   payload  len bytes
//!
//! format 1 (read only)
//! segment header (24 bytes)
//!   magic    8 bytes   b"RIVLOG01"
//!   segment  u64 LE
//!   crc      u32 LE    crc32 over the 16 bytes above
//!   reserved 4 bytes   zero
//! frame (9-byte header, then the payload)
//!   len      u32 LE
//!   kind     u8
//!   crc      u32 LE    crc32 over the kind byte followed by the payload
//!   payload  len bytes
//! ```
//!
//! The space after the last frame is zero (segments are preallocated with zeros), so a
//! frame header that starts with zeros (format 2: a zero `sync`; format 1: zero `len` and
//! `kind`) followed by nothing but zeros marks the end of the entries.
//!
//! Format 2's `sync` marker and `nlen` let the reader find the next intact frame after a
//! damaged one: it searches for the marker and accepts a candidate only if `nlen` matches
//! `len` (checked in constant time, before any payload is read) and the CRC matches. Only
//! `len` needs the check: damage to `kind` or `crc` fails the CRC, and a trusted `len`
//! says where the next frame starts. (A crc32 over the header would check it as well, but
//! cost a 64-byte append a quarter more; see `benches/log_write.rs`.) Format 1 has neither; after a damaged frame its reader can resume only
//! where the damaged frame's own length says the next one starts, if a valid frame is
//! there (a payload flip); a damaged length loses the rest of the segment, since finding
//! the next frame by trying every offset would cost a CRC over up to the whole segment per
//! offset.

use std::fmt;

/// The first eight bytes of a format-1 segment file.
pub(super) const MAGIC_V1: [u8; 8] = *b"RIVLOG01";
/// The first eight bytes of a format-2 segment file.
pub(super) const MAGIC_V2: [u8; 8] = *b"RIVLOG02";
/// Length of a format-2 segment header; the first frame starts here.
pub(super) const HEADER_LEN: usize = 32;
/// Length of a format-1 segment header.
pub(super) const HEADER_LEN_V1: usize = 24;
/// Length of a format-2 frame header (`sync`, `len`, `kind`, `crc`, `nlen`).
pub(super) const FRAME_HEADER_LEN: usize = 17;
/// Length of a format-1 frame header (`len`, `kind`, `crc`).
pub(super) const FRAME_HEADER_LEN_V1: usize = 9;
/// The largest payload a frame can describe (`len` is a `u32`).
pub(super) const MAX_PAYLOAD: u64 = u32::MAX as u64;
/// The sync marker that starts every format-2 frame. Its first byte is not zero (a zero
/// first byte means the end of the entries), and it is not ASCII, so text payloads do not
/// hold it by chance.
pub(super) const SYNC: [u8; 4] = [0xE5, 0x9A, 0x17, 0xC3];

/// A segment's format, as its header's magic says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// `RIVLOG01`: frames without sync marker, no size in the header.
    V1,
    /// `RIVLOG02`: sync markers, checked lengths, the size in the header.
    V2,
}

impl Format {
    /// Length of the segment header.
    pub(super) fn header_len(self) -> usize {
        match self {
            Format::V1 => HEADER_LEN_V1,
            Format::V2 => HEADER_LEN,
        }
    }

    fn frame_header_len(self) -> usize {
        match self {
            Format::V1 => FRAME_HEADER_LEN_V1,
            Format::V2 => FRAME_HEADER_LEN,
        }
    }
}

/// Header flag: the segment was created by a writer rolling over from the segment before
/// it, which it had filled (not by a writer opening the directory).
pub(super) const ROLLED: u32 = 1;

/// What a valid segment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentHeader {
    /// The format of the frames that follow.
    pub(super) format: Format,
    /// The file's length when it was created (format 2 only).
    pub(super) size: Option<u64>,
    /// Whether the writer of the segment before this one went on here ([`ROLLED`];
    /// format 2 only, `false` in format 1).
    pub(super) rolled: bool,
}

/// The format-2 segment header for segment `number`, `size` bytes long in all; `rolled`
/// sets [`ROLLED`].
pub(super) fn encode_header(number: u64, size: u64, rolled: bool) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC_V2);
    header[8..16].copy_from_slice(&number.to_le_bytes());
    header[16..24].copy_from_slice(&size.to_le_bytes());
    let flags = if rolled { ROLLED } else { 0 };
    header[24..28].copy_from_slice(&flags.to_le_bytes());
    let crc = crc32fast::hash(&header[..28]);
    header[28..32].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Checks the header at the start of `bytes` (a whole segment file) against the number
/// in the file's name; `Err` says what is wrong, for [`Problem::BadHeader`].
///
/// [`Problem::BadHeader`]: super::Problem::BadHeader
pub(super) fn check_header(bytes: &[u8], number: u64) -> Result<SegmentHeader, String> {
    let format = match bytes.get(..8) {
        Some(magic) if magic == MAGIC_V2 => Format::V2,
        Some(magic) if magic == MAGIC_V1 => Format::V1,
        Some(magic) if bytes.len() >= HEADER_LEN_V1 => {
            return Err(format!(
                "magic is {magic:02x?}, expected \"RIVLOG02\" (or \"RIVLOG01\" of the older format)"
            ))
        }
        _ => Err(format!(
            "the file is {} bytes long, shorter than a segment header",
            bytes.len()
        ))?,
    };
    let header_len = format.header_len();
    let Some(header) = bytes.get(..header_len) else {
        return Err(format!(
            "the file is {} bytes long, shorter than the {header_len}-byte header",
            bytes.len()
        ));
    };
    // Format 1: crc at 16..20, then 4 reserved zero bytes. Format 2: crc at 28..32.
    let crc_at = match format {
        Format::V1 => 16,
        Format::V2 => 28,
    };
    let stored = u32::from_le_bytes(le4(&header[crc_at..crc_at + 4]));
    let computed = crc32fast::hash(&header[..crc_at]);
    if stored != computed {
        return Err(format!(
            "header CRC is {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let in_header = u64::from_le_bytes(le8(&header[8..16]));
    if in_header != number {
        return Err(format!(
            "the header names segment {in_header}, the file name segment {number}"
        ));
    }
    match format {
        Format::V1 => {
            if header[20..24] != [0; 4] {
                return Err("reserved header bytes are not zero".to_string());
            }
            Ok(SegmentHeader {
                format,
                size: None,
                rolled: false,
            })
        }
        Format::V2 => {
            let flags = u32::from_le_bytes(le4(&header[24..28]));
            if flags & !ROLLED != 0 {
                return Err(format!("unknown header flags {flags:#x}"));
            }
            Ok(SegmentHeader {
                format,
                size: Some(u64::from_le_bytes(le8(&header[16..24]))),
                rolled: flags & ROLLED != 0,
            })
        }
    }
}

/// The CRC stored in a frame: crc32 over the kind byte, then the payload.
pub(super) fn frame_crc(kind: u8, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind]);
    hasher.update(payload);
    hasher.finalize()
}

/// Bytes 4..17 of a format-2 frame header (`len`, `kind`, `crc`, `nlen`), for a payload
/// the caller has checked against [`MAX_PAYLOAD`]. The writer stores them before the
/// [`SYNC`] marker, which it writes last.
pub(super) fn encode_frame_header(kind: u8, payload: &[u8]) -> [u8; FRAME_HEADER_LEN - 4] {
    let len = u32::try_from(payload.len()).expect("payload length checked against MAX_PAYLOAD");
    let mut out = [0u8; FRAME_HEADER_LEN - 4];
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4] = kind;
    out[5..9].copy_from_slice(&frame_crc(kind, payload).to_le_bytes());
    out[9..13].copy_from_slice(&(!len).to_le_bytes());
    out
}

/// What [`read_frame`] found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Read<'a> {
    /// A complete frame with matching CRCs; the next frame starts at `next`.
    Entry {
        /// The entry kind (never 0).
        kind: u8,
        /// The payload, borrowed from the segment bytes.
        payload: &'a [u8],
        /// Offset of the next frame.
        next: usize,
    },
    /// The end of the entries: the segment is full, or zeros follow to its end.
    End,
    /// Something that is not a valid frame.
    Bad(BadFrame),
}

/// Why the bytes at an offset are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BadFrame {
    /// Fewer bytes than a frame header remain, and they are not all zero.
    ShortHeader {
        /// How many bytes remain.
        remaining: usize,
    },
    /// The frame header starts like the end marker, but non-zero bytes follow.
    GarbageAfterEnd,
    /// Format 2: the frame does not start with the sync marker.
    NoSync,
    /// Format 2: `nlen` is not the complement of `len`, so the length cannot be trusted.
    BadLength,
    /// The payload would run past the end of the segment.
    PastEnd {
        /// The `len` field.
        len: u64,
        /// Bytes left after the frame header.
        available: usize,
    },
    /// `kind` is 0, which is reserved, but `len` is not.
    ReservedKind {
        /// Offset just past the payload the frame claims.
        next: usize,
    },
    /// The stored CRC does not match the kind and payload.
    Crc {
        /// The CRC in the frame header.
        stored: u32,
        /// The CRC of the bytes found.
        computed: u32,
        /// Offset just past the payload the frame claims.
        next: usize,
    },
}

impl BadFrame {
    /// Where the next frame would start if this frame's `len` can be trusted, that is,
    /// if it fits in the segment (and, in format 2, `nlen` matched it).
    pub(super) fn claimed_next(&self) -> Option<usize> {
        match *self {
            BadFrame::ReservedKind { next } | BadFrame::Crc { next, .. } => Some(next),
            BadFrame::ShortHeader { .. }
            | BadFrame::GarbageAfterEnd
            | BadFrame::NoSync
            | BadFrame::BadLength
            | BadFrame::PastEnd { .. } => None,
        }
    }
}

impl fmt::Display for BadFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadFrame::ShortHeader { remaining } => write!(
                f,
                "{remaining} trailing bytes that are not zero, too few for a frame header"
            ),
            BadFrame::GarbageAfterEnd => {
                write!(
                    f,
                    "non-zero bytes after what looks like the end of the entries"
                )
            }
            BadFrame::NoSync => write!(f, "no frame starts here (no sync marker)"),
            BadFrame::BadLength => write!(f, "the frame's length field is damaged"),
            BadFrame::PastEnd { len, available } => write!(
                f,
                "frame length {len} runs past the end of the segment ({available} bytes left)"
            ),
            BadFrame::ReservedKind { .. } => write!(f, "entry kind 0 is reserved"),
            BadFrame::Crc {
                stored, computed, ..
            } => write!(
                f,
                "the entry's CRC does not match (stored {stored:#010x}, computed {computed:#010x})"
            ),
        }
    }
}

/// Reads the frame at `offset` in `segment` (the whole segment file, header included),
/// a segment of `format`. Never panics, whatever the bytes; an `offset` past the end
/// reads as [`Read::End`].
pub(super) fn read_frame(format: Format, segment: &[u8], offset: usize) -> Read<'_> {
    let rest = segment.get(offset..).unwrap_or(&[]);
    if rest.is_empty() {
        return Read::End;
    }
    let header_len = format.frame_header_len();
    if rest.len() < header_len {
        return if all_zero(rest) {
            Read::End
        } else {
            Read::Bad(BadFrame::ShortHeader {
                remaining: rest.len(),
            })
        };
    }
    // Where `len`, `kind` and `crc` are in the frame header.
    let fields = match format {
        Format::V1 => 0,
        Format::V2 => 4,
    };
    let at_end = match format {
        Format::V1 => rest[..5] == [0; 5],
        Format::V2 => rest[..4] == [0; 4],
    };
    if at_end {
        return if all_zero(&rest[4..]) {
            Read::End
        } else {
            Read::Bad(BadFrame::GarbageAfterEnd)
        };
    }
    if format == Format::V2 {
        if rest[..4] != SYNC {
            return Read::Bad(BadFrame::NoSync);
        }
        if le4(&rest[4..8]) != (!u32::from_le_bytes(le4(&rest[13..17]))).to_le_bytes() {
            return Read::Bad(BadFrame::BadLength);
        }
    }
    let len = u32::from_le_bytes(le4(&rest[fields..fields + 4]));
    let kind = rest[fields + 4];
    let available = rest.len() - header_len;
    let Some(len) = usize::try_from(len).ok().filter(|len| *len <= available) else {
        return Read::Bad(BadFrame::PastEnd {
            len: u64::from(len),
            available,
        });
    };
    let next = offset + header_len + len;
    if kind == 0 {
        return Read::Bad(BadFrame::ReservedKind { next });
    }
    let stored = u32::from_le_bytes(le4(&rest[fields + 5..fields + 9]));
    let payload = &rest[header_len..header_len + len];
    let computed = frame_crc(kind, payload);
    if stored != computed {
        return Read::Bad(BadFrame::Crc {
            stored,
            computed,
            next,
        });
    }
    Read::Entry {
        kind,
        payload,
        next,
    }
}

/// Where the first valid frame after the bad one at `offset` starts, if any: first where
/// the bad frame says its successor starts (when its length can be trusted); then, in
/// format 2, at each later sync marker, in order.
///
/// Linear in the bytes searched, plus a payload CRC for each candidate whose length checks
/// matches.
pub(super) fn resync(
    format: Format,
    segment: &[u8],
    offset: usize,
    bad: &BadFrame,
) -> Option<usize> {
    let claimed = bad.claimed_next();
    if let Some(next) = claimed {
        if matches!(read_frame(format, segment, next), Read::Entry { .. }) {
            return Some(next);
        }
    }
    if format == Format::V1 {
        return None;
    }
    // A frame whose length checked out has a trustworthy length: a frame inside its
    // payload (an entry that holds log bytes) is not one of this segment's.
    let mut from = claimed.unwrap_or(offset + 1).max(offset + 1);
    let finder = memchr::memmem::Finder::new(&SYNC);
    while let Some(found) = segment.get(from..).and_then(|rest| finder.find(rest)) {
        let candidate = from + found;
        if matches!(read_frame(format, segment, candidate), Read::Entry { .. }) {
            return Some(candidate);
        }
        from = candidate + 1;
    }
    None
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

fn le4(bytes: &[u8]) -> [u8; 4] {
    let mut out = [0u8; 4];
    out.copy_from_slice(bytes);
    out
}

fn le8(bytes: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(bytes);
    out
}

/// Format-1 encoders, for tests that write old logs: the writer no longer writes this
/// format.
#[cfg(test)]
pub(super) mod v1 {
    use super::*;

    /// The format-1 segment header for segment `number`.
    pub(in crate::checkpoint::log) fn encode_header(number: u64) -> [u8; HEADER_LEN_V1] {
        let mut header = [0u8; HEADER_LEN_V1];
        header[..8].copy_from_slice(&MAGIC_V1);
        header[8..16].copy_from_slice(&number.to_le_bytes());
        let crc = crc32fast::hash(&header[..16]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        header
    }

    /// A whole format-1 frame.
    pub(in crate::checkpoint::log) fn encode_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
        frame.push(kind);
        frame.extend_from_slice(&frame_crc(kind, payload).to_le_bytes());
        frame.extend_from_slice(payload);
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = SYNC.to_vec();
        bytes.extend_from_slice(&encode_frame_header(kind, payload));
        bytes.extend_from_slice(payload);
        bytes
    }

    fn segment_with(frames: &[(u8, &[u8])], size: usize) -> Vec<u8> {
        let mut bytes = encode_header(7, size as u64, false).to_vec();
        for (kind, payload) in frames {
            bytes.extend_from_slice(&frame(*kind, payload));
        }
        bytes.resize(size.max(bytes.len()), 0);
        bytes
    }

    fn read_all(format: Format, bytes: &[u8], from: usize) -> Vec<(u8, Vec<u8>)> {
        let mut offset = from;
        let mut seen = Vec::new();
        loop {
            match read_frame(format, bytes, offset) {
                Read::Entry {
                    kind,
                    payload,
                    next,
                } => {
                    seen.push((kind, payload.to_vec()));
                    offset = next;
                }
                Read::End => return seen,
                Read::Bad(bad) => panic!("unexpected {bad}"),
            }
        }
    }

    #[test]
    fn header_round_trips_and_checks_the_number() {
        let header = encode_header(42, 4096, true);
        assert_eq!(
            check_header(&header, 42),
            Ok(SegmentHeader {
                format: Format::V2,
                size: Some(4096),
                rolled: true,
            })
        );
        assert!(
            !check_header(&encode_header(42, 4096, false), 42)
                .unwrap()
                .rolled
        );
        assert!(check_header(&header, 43)
            .unwrap_err()
            .contains("segment 42"));
        assert!(check_header(&header[..10], 42)
            .unwrap_err()
            .contains("shorter"));
        let mut bad = header;
        bad[0] = b'X';
        assert!(check_header(&bad, 42).unwrap_err().contains("magic"));
        let mut bad = header;
        bad[17] ^= 1;
        assert!(check_header(&bad, 42).unwrap_err().contains("CRC"));
        let old = v1::encode_header(42);
        assert_eq!(
            check_header(&old, 42),
            Ok(SegmentHeader {
                format: Format::V1,
                size: None,
                rolled: false,
            })
        );
    }

    #[test]
    fn frames_read_back_then_end() {
        let bytes = segment_with(&[(1, b"abc"), (2, b""), (3, b"xyz!")], 100);
        assert_eq!(
            read_all(Format::V2, &bytes, HEADER_LEN),
            vec![(1, b"abc".to_vec()), (2, vec![]), (3, b"xyz!".to_vec())]
        );
    }

    #[test]
    fn format_1_frames_read_back() {
        let mut bytes = v1::encode_header(7).to_vec();
        bytes.extend(v1::encode_frame(1, b"abc"));
        bytes.extend(v1::encode_frame(4, b"defg"));
        bytes.resize(90, 0);
        assert_eq!(
            read_all(Format::V1, &bytes, HEADER_LEN_V1),
            vec![(1, b"abc".to_vec()), (4, b"defg".to_vec())]
        );
    }

    #[test]
    fn a_full_segment_ends_exactly() {
        let bytes = segment_with(&[(1, b"abc")], 0);
        assert_eq!(bytes.len(), HEADER_LEN + FRAME_HEADER_LEN + 3);
        assert!(matches!(
            read_frame(Format::V2, &bytes, HEADER_LEN),
            Read::Entry { .. }
        ));
        assert_eq!(read_frame(Format::V2, &bytes, bytes.len()), Read::End);
        assert_eq!(read_frame(Format::V2, &bytes, bytes.len() + 5), Read::End);
    }

    #[test]
    fn bad_frames_are_classified() {
        let good = segment_with(&[(1, b"abcdef")], 80);
        fn read(bytes: &[u8]) -> Read<'_> {
            read_frame(Format::V2, bytes, HEADER_LEN)
        }

        let mut bytes = good.clone();
        bytes[HEADER_LEN + FRAME_HEADER_LEN + 2] ^= 0x10;
        assert!(matches!(
            read(&bytes),
            Read::Bad(BadFrame::Crc { next, .. }) if next == HEADER_LEN + FRAME_HEADER_LEN + 6
        ));

        let mut bytes = good.clone();
        bytes[HEADER_LEN + 4] ^= 0x01;
        assert_eq!(read(&bytes), Read::Bad(BadFrame::BadLength));

        let mut bytes = good.clone();
        bytes[HEADER_LEN + 1] ^= 0x01;
        assert_eq!(read(&bytes), Read::Bad(BadFrame::NoSync));

        // A length that runs past the end, with an `nlen` that matches it.
        let mut bytes = good[..HEADER_LEN].to_vec();
        let mut header = [0u8; FRAME_HEADER_LEN];
        header[..4].copy_from_slice(&SYNC);
        header[4..8].copy_from_slice(&1000u32.to_le_bytes());
        header[8] = 1;
        header[13..].copy_from_slice(&(!1000u32).to_le_bytes());
        bytes.extend_from_slice(&header);
        bytes.resize(80, 0);
        assert!(matches!(
            read(&bytes),
            Read::Bad(BadFrame::PastEnd { len: 1000, .. })
        ));

        let mut bytes = good.clone();
        let last = bytes.len() - 1;
        bytes[last] = 9;
        let after = HEADER_LEN + FRAME_HEADER_LEN + 6;
        assert_eq!(
            read_frame(Format::V2, &bytes, after),
            Read::Bad(BadFrame::GarbageAfterEnd)
        );

        let mut bytes = good[..HEADER_LEN + 4].to_vec();
        bytes[HEADER_LEN] = 1;
        assert_eq!(
            read(&bytes),
            Read::Bad(BadFrame::ShortHeader { remaining: 4 })
        );
        assert_eq!(read_frame(Format::V2, &[0, 0, 0], 0), Read::End);
    }

    /// After any damaged byte of a frame, the reader finds the next frame: by the
    /// damaged frame's trusted length or by the sync marker.
    #[test]
    fn resync_finds_the_next_frame_after_any_damaged_byte() {
        let bytes = segment_with(&[(1, b"first"), (2, b"second entry"), (3, b"x")], 160);
        let second = HEADER_LEN + FRAME_HEADER_LEN + 5;
        let third = second + FRAME_HEADER_LEN + 12;
        for at in second..third {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x5a;
            let Read::Bad(bad) = read_frame(Format::V2, &damaged, second) else {
                panic!("byte {at}: the damaged frame still reads");
            };
            assert_eq!(
                resync(Format::V2, &damaged, second, &bad),
                Some(third),
                "byte {at}"
            );
        }
        // Nothing valid after the last frame: no resync.
        let mut damaged = bytes.clone();
        damaged[third + 2] ^= 1;
        let Read::Bad(bad) = read_frame(Format::V2, &damaged, third) else {
            panic!("the damaged frame still reads");
        };
        assert_eq!(resync(Format::V2, &damaged, third, &bad), None);
    }

    /// Format 1 resumes only where a damaged frame's length says.
    #[test]
    fn format_1_resyncs_only_by_the_claimed_length() {
        let mut bytes = v1::encode_header(7).to_vec();
        bytes.extend(v1::encode_frame(1, b"abc"));
        bytes.extend(v1::encode_frame(2, b"def"));
        bytes.resize(80, 0);
        let first = HEADER_LEN_V1;
        let second = first + FRAME_HEADER_LEN_V1 + 3;
        let mut payload_flip = bytes.clone();
        payload_flip[second - 1] ^= 1;
        let Read::Bad(bad) = read_frame(Format::V1, &payload_flip, first) else {
            panic!("still reads")
        };
        assert_eq!(resync(Format::V1, &payload_flip, first, &bad), Some(second));
        let mut len_flip = bytes.clone();
        len_flip[first] ^= 0x40;
        let Read::Bad(bad) = read_frame(Format::V1, &len_flip, first) else {
            panic!("still reads")
        };
        assert_eq!(resync(Format::V1, &len_flip, first, &bad), None);
    }
}
