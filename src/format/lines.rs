//! Splitting a byte stream into lines with bounded memory: [`LineReader`].

use std::io::{self, Read};

/// Bytes read from the stream per refill (on top of the longest line kept).
const CHUNK: usize = 64 * 1024;

/// Bytes of an over-long line kept for a report (a quarantine entry, an error).
pub const PREVIEW_BYTES: usize = 1024;

/// One line from a [`LineReader`], without its terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line's bytes; for a line longer than the limit, its first
    /// [`PREVIEW_BYTES`] bytes.
    pub bytes: &'a [u8],
    /// The line's number in the stream, from 1 (lines before a restored position
    /// included).
    pub number: u64,
    /// The byte offset of the line's first byte in the stream.
    pub start: u64,
    /// `Some(length)` when the line was longer than the reader's limit: it was skipped
    /// (only its first bytes kept, in `bytes`) and `length` is its full length.
    pub too_long: Option<u64>,
}

/// Reads lines ending in `\n`, `\r\n` or a lone `\r` (Hadoop's `LineRecordReader`, which
/// Spark's text, CSV and JSON sources read with, accepts the same three) from a byte
/// stream, keeping at most `max_line` bytes of a line in memory: a longer line is
/// skipped up to its terminator and reported with [`Line::too_long`], so one endless
/// line (a binary file, a 100 MB record) never grows the buffer past
/// `max_line + 64 KiB` (it starts at 128 KiB and reads 64 KiB at a time). A last line
/// without a terminator is a line.
///
/// It counts lines and bytes, so a reader can stop after any line and a new one can
/// continue from [`position`](Self::position) and [`lines_read`](Self::lines_read) of
/// the old one (after seeking the stream there): [`LineReader::resume`].
///
/// ```
/// use rivulet::format::LineReader;
///
/// let text = "first\r\nsecond\rthird\n\nlast";
/// let mut reader = LineReader::new(text.as_bytes(), 1024);
/// let mut lines = Vec::new();
/// while let Some(line) = reader.next_line()? {
///     lines.push((line.number, String::from_utf8_lossy(line.bytes).into_owned()));
/// }
/// let expected = [(1, "first"), (2, "second"), (3, "third"), (4, ""), (5, "last")];
/// assert!(lines.iter().map(|(n, l)| (*n, l.as_str())).eq(expected));
/// assert_eq!(reader.position(), text.len() as u64);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// The unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// The stream said end of file.
    eof: bool,
    /// Stream offset of `buf[start]`.
    offset: u64,
    /// Lines handed out (including those before a resumed position).
    lines: u64,
    max_line: usize,
    /// The first bytes of the over-long line being skipped.
    preview: Vec<u8>,
}

impl<R: Read> LineReader<R> {
    /// A reader of `inner` from its start that keeps lines of up to `max_line` bytes.
    pub fn new(inner: R, max_line: usize) -> Self {
        Self::resume(inner, max_line, 0, 0)
    }

    /// A reader that continues a stream already read up to byte `position`, after
    /// `lines_read` lines: `inner` must be positioned there (a file seeked to it).
    pub fn resume(inner: R, max_line: usize, position: u64, lines_read: u64) -> Self {
        let max_line = max_line.max(1);
        LineReader {
            inner,
            // Grown on demand up to `max_line + CHUNK` (a long line needs it whole).
            buf: vec![0; max_line.saturating_add(CHUNK).min(2 * CHUNK)],
            start: 0,
            end: 0,
            eof: false,
            offset: position,
            lines: lines_read,
            max_line,
            preview: Vec::new(),
        }
    }

    /// The byte offset just after the last line handed out (and its terminator).
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// Lines handed out so far (including those before a resumed position).
    pub fn lines_read(&self) -> u64 {
        self.lines
    }

    /// The longest line kept whole.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// The size of the internal buffer now: it starts at 128 KiB (less for a small
    /// `max_line`) and grows, for long lines, to at most `max_line` plus 64 KiB.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.len()
    }

    /// The stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Moves the unconsumed bytes to the front and reads more after them. Returns how
    /// far the bytes moved (subtract it from indices into the buffer).
    fn fill(&mut self) -> io::Result<usize> {
        let moved = self.start;
        if moved > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= moved;
            self.start = 0;
        }
        let limit = self.max_line.saturating_add(CHUNK);
        if self.buf.len() - self.end < CHUNK && self.buf.len() < limit {
            let grown = (self.buf.len() * 2).min(limit);
            self.buf.resize(grown, 0);
        }
        // At most one chunk per read: the bytes are scanned while they are still in
        // the cache the kernel copied them through.
        let until = (self.end + CHUNK).min(self.buf.len());
        loop {
            match self.inner.read(&mut self.buf[self.end..until]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    self.end += n;
                    break;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(moved)
    }

    /// The next line, or `None` at the end of the stream.
    ///
    /// # Errors
    ///
    /// A read error of the stream; the reader can be asked again (it resumes where the
    /// error happened).
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        let line_start = self.offset;
        // Bytes of this line already dropped (an over-long line).
        let mut skipped: u64 = 0;
        let mut scan = self.start;
        loop {
            if let Some(found) = memchr::memchr2(b'\n', b'\r', &self.buf[scan..self.end]) {
                let at = scan + found;
                if self.buf[at] == b'\r' && at + 1 == self.end && !self.eof {
                    // A `\r` at the end of what is buffered: whether a `\n` follows
                    // decides where the next line starts.
                    let moved = self.fill()?;
                    scan = at - moved;
                    continue;
                }
                let terminator = if self.buf[at] == b'\r'
                    && self.buf.get(at + 1) == Some(&b'\n')
                    && at + 1 < self.end
                {
                    2
                } else {
                    1
                };
                return Ok(Some(self.take_line(line_start, at, terminator, skipped)));
            }
            scan = self.end;
            if self.eof {
                if self.start == self.end && skipped == 0 {
                    return Ok(None);
                }
                let at = self.end;
                return Ok(Some(self.take_line(line_start, at, 0, skipped)));
            }
            if skipped > 0 || self.end - self.start > self.max_line {
                // Over-long: keep a preview, drop the rest as it streams past.
                if skipped == 0 {
                    self.preview.clear();
                }
                let keep = (self.end - self.start).min(PREVIEW_BYTES - self.preview.len());
                self.preview
                    .extend_from_slice(&self.buf[self.start..self.start + keep]);
                let dropped = self.end - self.start;
                skipped += dropped as u64;
                self.offset += dropped as u64;
                self.start = self.end;
            }
            let moved = self.fill()?;
            scan -= moved;
        }
    }

    /// Hands out the line `buf[start..at]` followed by `terminator` bytes, with
    /// `skipped` bytes of it dropped before.
    fn take_line(
        &mut self,
        line_start: u64,
        at: usize,
        terminator: usize,
        skipped: u64,
    ) -> Line<'_> {
        let kept = at - self.start;
        let length = skipped + kept as u64;
        self.lines += 1;
        let number = self.lines;
        let begin = self.start;
        self.start = at + terminator;
        self.offset += (kept + terminator) as u64;
        if skipped > 0 {
            return Line {
                bytes: &self.preview,
                number,
                start: line_start,
                too_long: Some(length),
            };
        }
        if kept > self.max_line {
            let preview = kept.min(PREVIEW_BYTES);
            return Line {
                bytes: &self.buf[begin..begin + preview],
                number,
                start: line_start,
                too_long: Some(length),
            };
        }
        Line {
            bytes: &self.buf[begin..at],
            number,
            start: line_start,
            too_long: None,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Reads everything with reads of at most `step` bytes.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.data.len().min(self.step).min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn lines_of(data: &[u8], step: usize, max: usize) -> Vec<(Vec<u8>, u64, u64, Option<u64>)> {
        let mut reader = LineReader::new(Trickle { data, step }, max);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            out.push((line.bytes.to_vec(), line.number, line.start, line.too_long));
        }
        assert_eq!(reader.position(), data.len() as u64);
        out
    }

    /// The reference: split on the three terminators by hand.
    fn reference(data: &[u8]) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        let mut i = 0;
        let mut start = 0;
        while i < data.len() {
            match data[i] {
                b'\n' => {
                    out.push((data[start..i].to_vec(), start as u64));
                    i += 1;
                    start = i;
                }
                b'\r' => {
                    out.push((data[start..i].to_vec(), start as u64));
                    i += if data.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                    start = i;
                }
                _ => i += 1,
            }
        }
        if start < data.len() {
            out.push((data[start..].to_vec(), start as u64));
        }
        out
    }

    #[test]
    fn matches_the_reference_for_any_read_size() {
        let data = b"a,b\r\n\r\nccc\rdd\n\n\r\r\neee\r";
        for step in 1..data.len() + 2 {
            let got = lines_of(data, step, 100);
            let want = reference(data);
            assert_eq!(got.len(), want.len(), "step {step}");
            for (i, ((bytes, number, start, long), (wb, ws))) in got.iter().zip(&want).enumerate() {
                assert_eq!(bytes, wb, "step {step} line {i}");
                assert_eq!(*number, i as u64 + 1);
                assert_eq!(start, ws);
                assert_eq!(*long, None);
            }
        }
    }

    #[test]
    fn long_lines_are_skipped_with_bounded_memory() {
        let mut data = b"short\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 300_000));
        data.extend_from_slice(b"\r\nafter\n");
        data.extend(std::iter::repeat_n(b'y', 50));
        for step in [7, 4096, 1 << 20] {
            let got = lines_of(&data, step, 40);
            assert_eq!(got.len(), 4, "step {step}");
            assert_eq!(got[0].0, b"short");
            assert_eq!(got[1].3, Some(300_000));
            assert_eq!(got[1].0.len(), PREVIEW_BYTES);
            assert_eq!(got[1].2, 6);
            assert_eq!(got[2].0, b"after");
            assert_eq!(got[2].3, None);
            // The last line, 50 bytes without a terminator, is also too long.
            assert_eq!(got[3].3, Some(50));
        }
        let reader = LineReader::new(&data[..], 40);
        assert_eq!(reader.buffer_capacity(), 40 + CHUNK);
    }

    #[test]
    fn resumes_where_another_reader_stopped() {
        let data = b"one\ntwo\r\nthree\rfour";
        let mut first = LineReader::new(&data[..], 64);
        first.next_line().unwrap();
        first.next_line().unwrap();
        let (position, lines) = (first.position(), first.lines_read());
        assert_eq!(position, 9);
        let mut second = LineReader::resume(&data[position as usize..], 64, position, lines);
        let line = second.next_line().unwrap().unwrap();
        assert_eq!((line.bytes, line.number, line.start), (&b"three"[..], 3, 9));
        let line = second.next_line().unwrap().unwrap();
        assert_eq!((line.bytes, line.number), (&b"four"[..], 4));
        assert!(second.next_line().unwrap().is_none());
    }

    #[test]
    fn a_hundred_megabyte_line_keeps_the_buffer_fixed() {
        /// 100 MB of `z`, then a newline and one short line, generated.
        struct Endless {
            left: u64,
            tail: &'static [u8],
        }
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.left > 0 {
                    let n = (buf.len() as u64).min(self.left) as usize;
                    buf[..n].fill(b'z');
                    self.left -= n as u64;
                    return Ok(n);
                }
                let n = self.tail.len().min(buf.len());
                buf[..n].copy_from_slice(&self.tail[..n]);
                self.tail = &self.tail[n..];
                Ok(n)
            }
        }
        let mut reader = LineReader::new(
            Endless {
                left: 100 << 20,
                tail: b"\nok\n",
            },
            1 << 20,
        );
        let line = reader.next_line().unwrap().unwrap();
        assert_eq!(line.too_long, Some(100 << 20));
        let line = reader.next_line().unwrap().unwrap();
        assert_eq!(line.bytes, b"ok");
        assert!(reader.buffer_capacity() <= (1 << 20) + CHUNK);
    }
}
