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

/// The checkpoint log's reader on one segment file's bytes, in memory: what
/// [`scan`](crate::checkpoint::log::scan) returns for a directory holding only segment 0
/// with these bytes (the unit tests check that it is the same), without the file system,
/// so a fuzzer runs it many times faster.
pub fn scan_segment(bytes: &[u8]) -> crate::checkpoint::log::Scan {
    crate::checkpoint::log::scan_one(0, bytes)
}
