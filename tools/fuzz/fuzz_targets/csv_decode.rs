//! Fuzzes the CSV row decoder (`rivulet::format::Decoder` with `Format::Csv`, behind
//! `LineReader`): byte 0 picks the parse mode, the invalid-UTF-8 policy and the maximum
//! record length; byte 1 the CSV options (bit 0 header, bit 1 `#` comments, bit 2 `;` as
//! the delimiter, bit 3 `'` as the quote); the rest is the file. Nothing may panic, and
//! every verdict must be one the parse mode allows.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rivulet::format::{CsvOptions, Format};

#[path = "row_decode.rs"]
mod row_decode;

fuzz_target!(|data: &[u8]| {
    row_decode::check(data, |byte| {
        let mut options = CsvOptions::new().header(byte & 1 != 0);
        if byte & 2 != 0 {
            options = options.comment(Some(b'#'));
        }
        if byte & 4 != 0 {
            options = options.delimiter(b';');
        }
        if byte & 8 != 0 {
            options = options.quote(b'\'');
        }
        Format::Csv(options)
    });
});
