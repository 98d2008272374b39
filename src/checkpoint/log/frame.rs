//! The byte layout of a segment: its header and the frames that follow it.
//!
//! Pure functions over byte slices, no I/O, so the writer and the reader agree on one
//! definition and the rules can be tested (and fuzzed) without files.
//!
//! ```text
//! segment header (24 bytes)
//!   magic    8 bytes   b"RIVLOG01"
//!   segment  u64 LE    the segment number, equal to the one in the file name
//!   crc      u32 LE    crc32 over the 16 bytes above
//!   reserved 4 bytes   zero
//! frame (9-byte header, then the payload)
//!   len      u32 LE    payload length in bytes
//!   kind     u8        entry kind, never 0
//!   crc      u32 LE    crc32 over the kind byte followed by the payload
//!   payload  len bytes
//! ```
//!
//! The space after the last frame is zero (segments are preallocated with zeros), so a
//! frame header whose `len` and `kind` are both zero marks the end of the entries.

use std::fmt;

/// The first eight bytes of every segment file.
pub(super) const MAGIC: [u8; 8] = *b"RIVLOG01";
/// Length of the segment header; the first frame starts here.
pub(super) const HEADER_LEN: usize = 24;
/// Length of a frame header (`len`, `kind`, `crc`).
pub(super) const FRAME_HEADER_LEN: usize = 9;
/// The largest payload a frame can describe (`len` is a `u32`).
pub(super) const MAX_PAYLOAD: u64 = u32::MAX as u64;

/// The segment header for segment `number`.
pub(super) fn encode_header(number: u64) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..16].copy_from_slice(&number.to_le_bytes());
    let crc = crc32fast::hash(&header[..16]);
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Checks the header at the start of `bytes` (a whole segment file) against the number
/// in the file's name; `Err` says what is wrong, for [`Problem::BadHeader`].
///
/// [`Problem::BadHeader`]: super::Problem::BadHeader
pub(super) fn check_header(bytes: &[u8], number: u64) -> Result<(), String> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(format!(
            "the file is {} bytes long, shorter than the {HEADER_LEN}-byte header",
            bytes.len()
        ));
    };
    if header[..8] != MAGIC {
        return Err(format!(
            "magic is {:02x?}, expected {:02x?} (\"RIVLOG01\")",
            &header[..8],
            MAGIC
        ));
    }
    let stored = u32::from_le_bytes(le4(&header[16..20]));
    let computed = crc32fast::hash(&header[..16]);
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
    if header[20..24] != [0; 4] {
        return Err("reserved header bytes are not zero".to_string());
    }
    Ok(())
}

/// The CRC stored in a frame: crc32 over the kind byte, then the payload.
pub(super) fn frame_crc(kind: u8, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind]);
    hasher.update(payload);
    hasher.finalize()
}

/// The `len` field of a frame header, for a payload the caller has checked against
/// [`MAX_PAYLOAD`].
pub(super) fn encode_len(payload: &[u8]) -> [u8; 4] {
    let len = u32::try_from(payload.len()).expect("payload length checked against MAX_PAYLOAD");
    len.to_le_bytes()
}

/// The `kind` and `crc` fields of a frame header (bytes 4..9).
pub(super) fn encode_kind_crc(kind: u8, payload: &[u8]) -> [u8; 5] {
    let mut out = [0u8; 5];
    out[0] = kind;
    out[1..].copy_from_slice(&frame_crc(kind, payload).to_le_bytes());
    out
}

/// What [`read_frame`] found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Read<'a> {
    /// A complete frame with a matching CRC; the next frame starts at `next`.
    Entry {
        /// The entry kind (never 0).
        kind: u8,
        /// The payload, borrowed from the segment bytes.
        payload: &'a [u8],
        /// Offset of the next frame.
        next: usize,
    },
    /// The end of the entries: the segment is full, or a zero `len` and `kind`
    /// follow, with only zeros after them.
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
    /// `len` and `kind` are zero (the end marker) but non-zero bytes follow.
    GarbageAfterEnd,
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
    /// if it fits in the segment.
    pub(super) fn claimed_next(&self) -> Option<usize> {
        match *self {
            BadFrame::ReservedKind { next } | BadFrame::Crc { next, .. } => Some(next),
            BadFrame::ShortHeader { .. } | BadFrame::GarbageAfterEnd | BadFrame::PastEnd { .. } => {
                None
            }
        }
    }
}

impl fmt::Display for BadFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadFrame::ShortHeader { remaining } => write!(
                f,
                "{remaining} non-zero trailing bytes, too few for a {FRAME_HEADER_LEN}-byte frame header"
            ),
            BadFrame::GarbageAfterEnd => {
                write!(f, "non-zero bytes after the end-of-entries marker")
            }
            BadFrame::PastEnd { len, available } => write!(
                f,
                "frame length {len} runs past the end of the segment ({available} bytes left)"
            ),
            BadFrame::ReservedKind { .. } => write!(f, "entry kind 0 is reserved"),
            BadFrame::Crc {
                stored, computed, ..
            } => write!(
                f,
                "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
        }
    }
}

/// Reads the frame at `offset` in `segment` (the whole segment file, header included).
/// Never panics, whatever the bytes; an `offset` past the end reads as [`Read::End`].
pub(super) fn read_frame(segment: &[u8], offset: usize) -> Read<'_> {
    let rest = segment.get(offset..).unwrap_or(&[]);
    if rest.is_empty() {
        return Read::End;
    }
    if rest.len() < FRAME_HEADER_LEN {
        return if all_zero(rest) {
            Read::End
        } else {
            Read::Bad(BadFrame::ShortHeader {
                remaining: rest.len(),
            })
        };
    }
    let len = u32::from_le_bytes(le4(&rest[..4]));
    let kind = rest[4];
    if len == 0 && kind == 0 {
        return if all_zero(&rest[5..]) {
            Read::End
        } else {
            Read::Bad(BadFrame::GarbageAfterEnd)
        };
    }
    let available = rest.len() - FRAME_HEADER_LEN;
    let Some(len) = usize::try_from(len).ok().filter(|len| *len <= available) else {
        return Read::Bad(BadFrame::PastEnd {
            len: u64::from(len),
            available,
        });
    };
    let next = offset + FRAME_HEADER_LEN + len;
    if kind == 0 {
        return Read::Bad(BadFrame::ReservedKind { next });
    }
    let stored = u32::from_le_bytes(le4(&rest[5..9]));
    let payload = &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
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

#[cfg(test)]
mod tests {
    use super::*;

    fn segment_with(frames: &[(u8, &[u8])], size: usize) -> Vec<u8> {
        let mut bytes = encode_header(7).to_vec();
        for (kind, payload) in frames {
            bytes.extend_from_slice(&encode_len(payload));
            bytes.extend_from_slice(&encode_kind_crc(*kind, payload));
            bytes.extend_from_slice(payload);
        }
        bytes.resize(size.max(bytes.len()), 0);
        bytes
    }

    #[test]
    fn header_round_trips_and_checks_the_number() {
        let header = encode_header(42);
        assert_eq!(check_header(&header, 42), Ok(()));
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
        bad[9] ^= 1;
        assert!(check_header(&bad, 42).unwrap_err().contains("CRC"));
    }

    #[test]
    fn frames_read_back_then_end() {
        let bytes = segment_with(&[(1, b"abc"), (2, b""), (3, b"xyz!")], 100);
        let mut offset = HEADER_LEN;
        let mut seen = Vec::new();
        loop {
            match read_frame(&bytes, offset) {
                Read::Entry {
                    kind,
                    payload,
                    next,
                } => {
                    seen.push((kind, payload.to_vec()));
                    offset = next;
                }
                Read::End => break,
                Read::Bad(bad) => panic!("unexpected {bad}"),
            }
        }
        assert_eq!(
            seen,
            vec![(1, b"abc".to_vec()), (2, vec![]), (3, b"xyz!".to_vec())]
        );
    }

    #[test]
    fn a_full_segment_ends_exactly() {
        let bytes = segment_with(&[(1, b"abc")], 0);
        assert_eq!(bytes.len(), HEADER_LEN + FRAME_HEADER_LEN + 3);
        assert!(matches!(read_frame(&bytes, HEADER_LEN), Read::Entry { .. }));
        assert_eq!(read_frame(&bytes, bytes.len()), Read::End);
        assert_eq!(read_frame(&bytes, bytes.len() + 5), Read::End);
    }

    #[test]
    fn bad_frames_are_classified() {
        let good = segment_with(&[(1, b"abcdef")], 60);

        let mut bytes = good.clone();
        bytes[HEADER_LEN + FRAME_HEADER_LEN + 2] ^= 0x10;
        assert!(matches!(
            read_frame(&bytes, HEADER_LEN),
            Read::Bad(BadFrame::Crc { next, .. }) if next == HEADER_LEN + FRAME_HEADER_LEN + 6
        ));

        let mut bytes = good.clone();
        bytes[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(
            read_frame(&bytes, HEADER_LEN),
            Read::Bad(BadFrame::PastEnd { len: 1000, .. })
        ));

        let mut bytes = good.clone();
        bytes[HEADER_LEN + 4] = 0;
        assert!(matches!(
            read_frame(&bytes, HEADER_LEN),
            Read::Bad(BadFrame::ReservedKind { .. })
        ));

        let mut bytes = good.clone();
        let last = bytes.len() - 1;
        bytes[last] = 9;
        let after = HEADER_LEN + FRAME_HEADER_LEN + 6;
        assert_eq!(
            read_frame(&bytes, after),
            Read::Bad(BadFrame::GarbageAfterEnd)
        );

        let mut bytes = good[..HEADER_LEN + 4].to_vec();
        bytes[HEADER_LEN] = 1;
        assert_eq!(
            read_frame(&bytes, HEADER_LEN),
            Read::Bad(BadFrame::ShortHeader { remaining: 4 })
        );
        assert_eq!(read_frame(&[0, 0, 0], 0), Read::End);
    }
}
