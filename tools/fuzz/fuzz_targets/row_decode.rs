//! Shared by the `csv_decode` and `json_decode` targets: arbitrary bytes split into lines
//! by `LineReader` and decoded by a `Decoder` under options the first byte picks.

use rivulet::format::{
    DecodeOptions, Decoder, Format, InvalidUtf8, LineReader, ParseMode, Verdict,
};

/// The record type: every kind of field the decoders convert, and the corrupt-record
/// field of permissive mode.
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
pub struct Row {
    name: String,
    count: Option<i64>,
    value: Option<f64>,
    flag: Option<bool>,
    tags: Option<String>,
    _corrupt_record: Option<String>,
}

/// Byte 0: bits 0-1 the parse mode, bit 2 invalid UTF-8 is malformed (not replaced),
/// bits 3-4 the maximum record length (16, 64, 256 bytes or the default); `format`
/// gets byte 1 for its own options. Every verdict must be one the mode allows, and
/// nothing may panic.
pub fn check(data: &[u8], format: impl Fn(u8) -> Format) {
    let [mode, format_byte, body @ ..] = data else {
        return;
    };
    let parse_mode = match mode & 3 {
        1 => ParseMode::DropMalformed,
        2 => ParseMode::FailFast,
        _ => ParseMode::Permissive,
    };
    let utf8 = if mode & 4 != 0 {
        InvalidUtf8::Malformed
    } else {
        InvalidUtf8::Replace
    };
    let max = match (mode >> 3) & 3 {
        0 => 16,
        1 => 64,
        2 => 256,
        _ => rivulet::format::DEFAULT_MAX_RECORD_BYTES,
    };
    let options = DecodeOptions::default()
        .mode(parse_mode)
        .invalid_utf8(utf8)
        .max_record_bytes(max);
    let mut decoder: Decoder<Row> =
        Decoder::new(&format(*format_byte), &options).expect("the row type decodes");
    decoder.start_file();
    let mut lines = LineReader::new(body, max);
    while let Some(line) = lines.next_line().expect("reading from memory") {
        let verdict = decoder.decode(line.bytes, line.too_long);
        match (&verdict, parse_mode) {
            (Verdict::Row(_) | Verdict::Skipped, _) => {}
            (Verdict::Repaired(row, _), ParseMode::Permissive) => {
                assert!(row._corrupt_record.is_some(), "{verdict:?}");
            }
            (Verdict::Dropped(_), ParseMode::Permissive | ParseMode::DropMalformed) => {}
            (Verdict::Failed(_), ParseMode::FailFast) => {}
            _ => panic!("{parse_mode:?} gave {verdict:?} for line {:?}", line.bytes),
        }
        if let Verdict::Repaired(_, malformed)
        | Verdict::Dropped(malformed)
        | Verdict::Failed(malformed) = &verdict
        {
            let _ = malformed.to_string();
        }
    }
}
