//! Entry points for the fuzz targets in `tools/fuzz`: properties over arbitrary bytes for
//! code that is not public. Hidden from the docs and not part of rivulet's API; the unit
//! tests of each module check the same properties on stable with proptest.

/// Socket line framing (`LineBuffer`, the socket source's per-connection splitter): byte
/// 0 picks the read size, byte 1 the maximum line length and lossy decoding, byte 2 the
/// size of the reads the rest arrives in; the lines must equal those of splitting the
/// whole input at once. Panics if they do not.
pub fn socket_lines(data: &[u8]) {
    crate::source::socket::lines_oracle::check(data);
}
