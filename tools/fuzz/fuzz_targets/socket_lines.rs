//! Fuzzes the socket source's line framing (`LineBuffer`): any bytes, read through any
//! buffer size in reads of any size, give the lines of splitting the whole input at once,
//! with over-long lines reported and skipped and the partial-line buffer bounded. The
//! property itself lives in rivulet (`rivulet::fuzzing::socket_lines`), beside the code.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rivulet::fuzzing::socket_lines(data);
});
