//! Splitting one connection's bytes into lines, with a bounded buffer.
//!
//! [`LineBuffer`] is the per-connection state of the socket source, kept free of I/O so
//! that it can be tested on its own: a fixed read buffer the socket is read into once
//! every byte in it has been scanned, and a partial-line buffer that never grows past
//! the maximum line length. A line longer than that is reported once
//! ([`Scan::TooLong`]) and its bytes are skipped up to the next `\n`.

use std::io::{self, Read};

/// What [`LineBuffer::scan`] found in the bytes read so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// A complete line, without its `\n` and a trailing `\r`.
    Line(String),
    /// A complete line whose bytes were not UTF-8, decoded with replacement characters
    /// (only when decoding lossily).
    Lossy(String),
    /// A complete line whose bytes were not UTF-8, skipped.
    InvalidUtf8,
    /// A line grew past the maximum: its bytes are skipped up to the next `\n`. Reported
    /// once per line, as soon as it is known (the `\n` may never come).
    TooLong,
    /// Every byte read has been scanned: read more.
    NeedBytes,
}

/// One connection's bytes on their way to becoming lines.
#[derive(Debug)]
pub(crate) struct LineBuffer {
    /// Bytes read from the socket; `start..end` not scanned yet.
    read: Box<[u8]>,
    start: usize,
    end: usize,
    /// The beginning of a line whose `\n` has not been read yet (at most `max_line`
    /// bytes, and never a capacity above it).
    partial: Vec<u8>,
    /// Skipping the rest of a line that was too long.
    skipping: bool,
    max_line: usize,
    lossy: bool,
}

/// Above this, the partial-line buffer is released after its line completes instead of
/// being kept for the next one.
const KEEP_PARTIAL_CAPACITY: usize = 64 * 1024;

impl LineBuffer {
    /// A buffer reading `read_bytes` at a time, for lines of at most `max_line` bytes
    /// (counted before the `\n`, a `\r` included).
    pub(crate) fn new(read_bytes: usize, max_line: usize, lossy: bool) -> Self {
        LineBuffer {
            read: vec![0; read_bytes.max(1)].into_boxed_slice(),
            start: 0,
            end: 0,
            partial: Vec::new(),
            skipping: false,
            max_line,
            lossy,
        }
    }

    /// The next line (or event) in the bytes read so far.
    pub(crate) fn scan(&mut self) -> Scan {
        while self.start < self.end {
            let unscanned = &self.read[self.start..self.end];
            let Some(newline) = memchr::memchr(b'\n', unscanned) else {
                let rest = unscanned.len();
                self.start = self.end;
                if self.skipping {
                    continue;
                }
                if self.partial.len() + rest > self.max_line {
                    self.start_skipping();
                    return Scan::TooLong;
                }
                let (from, to) = (self.end - rest, self.end);
                self.grow_partial(rest);
                self.partial.extend_from_slice(&self.read[from..to]);
                continue;
            };
            let (from, to) = (self.start, self.start + newline);
            self.start = to + 1;
            if self.skipping {
                // The end of a line already reported as too long.
                self.skipping = false;
                continue;
            }
            if self.partial.is_empty() {
                if to - from > self.max_line {
                    return Scan::TooLong;
                }
                return decode(&self.read[from..to], self.lossy);
            }
            if self.partial.len() + (to - from) > self.max_line {
                self.start_skipping();
                // The `\n` is here: nothing more to skip.
                self.skipping = false;
                return Scan::TooLong;
            }
            self.grow_partial(to - from);
            self.partial.extend_from_slice(&self.read[from..to]);
            let line = decode(&self.partial, self.lossy);
            self.partial.clear();
            if self.partial.capacity() > KEEP_PARTIAL_CAPACITY {
                self.partial = Vec::new();
            }
            return line;
        }
        Scan::NeedBytes
    }

    /// Reads once from `reader` into the read buffer. Call only after [`scan`](Self::scan)
    /// returned [`Scan::NeedBytes`]. Returns what `read` returned (`Ok(0)`: end of file).
    pub(crate) fn read_from(&mut self, reader: &mut impl Read) -> io::Result<usize> {
        debug_assert_eq!(self.start, self.end, "read before scanning everything");
        let n = reader.read(&mut self.read)?;
        self.start = 0;
        self.end = n;
        Ok(n)
    }

    /// The connection ended: `true` if a line had begun (and not been reported as too
    /// long), which is lost. Forgets it.
    pub(crate) fn close(&mut self) -> bool {
        let truncated = !self.partial.is_empty() && !self.skipping;
        self.partial = Vec::new();
        self.skipping = false;
        self.start = self.end;
        truncated
    }

    /// The capacity of the partial-line buffer now (never above the maximum line length).
    pub(crate) fn partial_capacity(&self) -> usize {
        self.partial.capacity()
    }

    fn start_skipping(&mut self) {
        self.skipping = true;
        self.partial.clear();
        if self.partial.capacity() > KEEP_PARTIAL_CAPACITY {
            self.partial = Vec::new();
        }
    }

    /// Makes room for `more` bytes without letting the capacity pass the maximum line
    /// length (the caller checked that the line still fits).
    fn grow_partial(&mut self, more: usize) {
        let needed = self.partial.len() + more;
        if needed <= self.partial.capacity() {
            return;
        }
        let target = (self.partial.capacity() * 2)
            .max(needed)
            .max(256)
            .min(self.max_line.max(needed));
        self.partial.reserve_exact(target - self.partial.len());
    }
}

/// A line's bytes (before the `\n`) as text: a trailing `\r` is removed.
fn decode(bytes: &[u8], lossy: bool) -> Scan {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Scan::Line(text.to_owned()),
        Err(_) if lossy => Scan::Lossy(String::from_utf8_lossy(bytes).into_owned()),
        Err(_) => Scan::InvalidUtf8,
    }
}

/// The property the tests and the fuzz target check: any bytes, cut into reads anywhere,
/// split by a [`LineBuffer`] of any read size, give the lines of splitting the whole input
/// at once, and the partial-line buffer never grows past the maximum line length.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) mod oracle {
    use super::*;

    /// Feeds `chunks` through a buffer (each chunk one `read`), collecting every scan
    /// result except `NeedBytes`; the flag says whether a begun line was lost at the end.
    pub(super) fn run(
        chunks: &[Vec<u8>],
        read_bytes: usize,
        max: usize,
        lossy: bool,
    ) -> (Vec<Scan>, bool) {
        let mut buffer = LineBuffer::new(read_bytes, max, lossy);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut reader: &[u8] = chunk;
            while !reader.is_empty() {
                buffer.read_from(&mut reader).unwrap();
                loop {
                    match buffer.scan() {
                        Scan::NeedBytes => break,
                        other => out.push(other),
                    }
                    assert!(buffer.partial_capacity() <= max.max(1));
                }
            }
        }
        let truncated = buffer.close();
        (out, truncated)
    }

    /// The reference: split on `\n`, the last piece unterminated.
    pub(super) fn reference(bytes: &[u8], max: usize, lossy: bool) -> (Vec<Scan>, bool) {
        let mut pieces: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        let last = pieces.pop().unwrap();
        let mut out = Vec::new();
        for piece in pieces {
            if piece.len() > max {
                out.push(Scan::TooLong);
            } else {
                out.push(decode(piece, lossy));
            }
        }
        let truncated = if last.len() > max {
            out.push(Scan::TooLong);
            false
        } else {
            !last.is_empty()
        };
        (out, truncated)
    }

    /// Checks the property on arbitrary bytes: byte 0 sets the read size (1 to 64),
    /// byte 1 the maximum line length (0 to 127) and, in its top bit, lossy decoding;
    /// byte 2 the size of the reads the input arrives in (1 to 64); the rest is the input.
    /// Panics if the property fails.
    pub(crate) fn check(data: &[u8]) {
        let [read_bytes, max, cut, bytes @ ..] = data else {
            return;
        };
        let read_bytes = usize::from(*read_bytes % 64) + 1;
        let lossy = max & 0x80 != 0;
        let max = usize::from(max & 0x7f);
        let cut = usize::from(cut % 64) + 1;
        let chunks: Vec<Vec<u8>> = bytes.chunks(cut).map(<[u8]>::to_vec).collect();
        assert_eq!(
            run(&chunks, read_bytes, max, lossy),
            reference(bytes, max, lossy),
            "read size {read_bytes}, max line {max}, lossy {lossy}, reads of {cut}"
        );
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::oracle::{reference, run};
    use super::*;
    use proptest::prelude::*;

    fn line(text: &str) -> Scan {
        Scan::Line(text.to_string())
    }

    #[test]
    fn splits_lines_strips_cr_and_keeps_partial_lines() {
        let chunks = vec![
            b"ab\r".to_vec(),
            b"\ncd\n\n\xc3".to_vec(),
            b"\xa9\nrest".to_vec(),
        ];
        let (out, truncated) = run(&chunks, 4, 100, false);
        assert_eq!(out, vec![line("ab"), line("cd"), line(""), line("é")]);
        assert!(truncated);
    }

    #[test]
    fn too_long_lines_are_reported_once_and_skipped() {
        let mut bytes = b"ok\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 1000));
        bytes.extend(b"\nafter\n12345\n123456\n");
        let chunks: Vec<Vec<u8>> = bytes.chunks(7).map(<[u8]>::to_vec).collect();
        let (out, truncated) = run(&chunks, 16, 5, false);
        assert_eq!(
            out,
            vec![
                line("ok"),
                Scan::TooLong,
                line("after"),
                line("12345"),
                Scan::TooLong
            ]
        );
        assert!(!truncated);
    }

    #[test]
    fn invalid_utf8_is_skipped_or_replaced() {
        let chunks = vec![b"a\xff\nb\n".to_vec()];
        let (strict, _) = run(&chunks, 64, 100, false);
        assert_eq!(strict, vec![Scan::InvalidUtf8, line("b")]);
        let (lossy, _) = run(&chunks, 64, 100, true);
        assert_eq!(lossy, vec![Scan::Lossy("a\u{fffd}".to_string()), line("b")]);
    }

    proptest! {
        /// Any bytes, cut anywhere, read through any buffer size: the same lines as
        /// splitting the whole input at once.
        #[test]
        fn any_chunking_gives_the_reference_lines(
            words in proptest::collection::vec(
                prop_oneof![
                    Just(b"\n".to_vec()), Just(b"\r\n".to_vec()), Just("é€😀".as_bytes().to_vec()),
                    Just(vec![0xff]), Just(b"abc".to_vec()), Just(vec![b'x'; 40]),
                ],
                0..60,
            ),
            cuts in proptest::collection::vec(1usize..50, 1..20),
            read_bytes in 1usize..64,
            max in 1usize..100,
            lossy in any::<bool>(),
        ) {
            let bytes: Vec<u8> = words.concat();
            let mut chunks = Vec::new();
            let mut at = 0;
            let mut cut = cuts.iter().cycle();
            while at < bytes.len() {
                let next = (at + cut.next().unwrap()).min(bytes.len());
                chunks.push(bytes[at..next].to_vec());
                at = next;
            }
            prop_assert_eq!(run(&chunks, read_bytes, max, lossy), reference(&bytes, max, lossy));
        }

        /// The fuzz target's property (`rivulet::fuzzing::socket_lines`) on random bytes.
        #[test]
        fn the_fuzz_property_holds_on_random_bytes(
            data in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'\r'), Just(0xff), any::<u8>()],
                0..300,
            ),
        ) {
            crate::fuzzing::socket_lines(&data);
        }
    }
}
