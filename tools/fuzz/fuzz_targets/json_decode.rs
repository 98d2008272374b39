//! Fuzzes the JSON-lines row decoder (`rivulet::format::Decoder` with
//! `Format::JsonLines`, behind `LineReader`): byte 0 picks the parse mode, the
//! invalid-UTF-8 policy and the maximum record length; byte 1 is unused; the rest is the
//! file. Nothing may panic, and every verdict must be one the parse mode allows.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rivulet::format::Format;

#[path = "row_decode.rs"]
mod row_decode;

fuzz_target!(|data: &[u8]| {
    row_decode::check(data, |_| Format::JsonLines);
});
