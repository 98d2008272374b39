//! CSV options ([`CsvOptions`], Spark's defaults) and splitting one line into fields.

/// How CSV lines split into fields, with Spark's defaults: `,` between fields, `"`
/// around quoted fields, `\` escaping a quote inside them (a doubled quote `""` works
/// too), no header, no comment character.
///
/// One line is one record (Spark's `multiLine = false`, its default): a quoted field
/// cannot span lines.
///
/// ```
/// use rivulet::format::CsvOptions;
///
/// let options = CsvOptions::default().delimiter(b';').header(true).comment(Some(b'#'));
/// assert_eq!(options.delimiter_byte(), b';');
/// assert!(options.has_header());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    delimiter: u8,
    quote: u8,
    escape: Option<u8>,
    header: bool,
    comment: Option<u8>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            quote: b'"',
            escape: Some(b'\\'),
            header: false,
            comment: None,
        }
    }
}

impl CsvOptions {
    /// Spark's defaults (see the type's docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// The byte between fields (Spark's `sep`; default `,`).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// The byte that quotes a field (Spark's `quote`; default `"`).
    pub fn quote(mut self, quote: u8) -> Self {
        self.quote = quote;
        self
    }

    /// The byte that escapes a quote inside a quoted field (Spark's `escape`; default
    /// `\`), or `None` for doubled quotes only.
    pub fn escape(mut self, escape: Option<u8>) -> Self {
        self.escape = escape;
        self
    }

    /// Whether the first line of each file is a header (Spark's `header`; default
    /// `false`). The header is skipped; columns are matched to the record type's fields
    /// by position, as Spark does with its default `enforceSchema = true`.
    pub fn header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// Lines starting with this byte are skipped (Spark's `comment`; default none).
    pub fn comment(mut self, comment: Option<u8>) -> Self {
        self.comment = comment;
        self
    }

    /// The delimiter.
    pub fn delimiter_byte(&self) -> u8 {
        self.delimiter
    }

    /// Whether files start with a header line.
    pub fn has_header(&self) -> bool {
        self.header
    }

    /// The comment byte, if any.
    pub fn comment_byte(&self) -> Option<u8> {
        self.comment
    }
}

/// Splits lines into fields: lines without a quote byte split on the delimiter in
/// place; others go through `csv_core`'s parser.
#[derive(Debug)]
pub(crate) struct Tokenizer {
    delimiter: u8,
    quote: u8,
    parser: csv_core::Reader,
    /// Unquoted field bytes of the last quoted line.
    out: Vec<u8>,
    ends: Vec<usize>,
    /// Field boundaries of the last line, into the line or `out`.
    ranges: Vec<(usize, usize)>,
}

/// The fields of one line.
#[derive(Debug)]
pub(crate) struct Tokens<'t> {
    pub(crate) base: &'t str,
    pub(crate) ranges: &'t [(usize, usize)],
}

#[cfg(all(test, not(loom)))]
impl<'t> Tokens<'t> {
    /// Pushes the fields onto `fields` (cleared first).
    pub(crate) fn collect_into(&self, fields: &mut Vec<&'t str>) {
        fields.clear();
        for &(start, end) in self.ranges {
            // Boundaries sit next to ASCII bytes (delimiters, quotes), so they are
            // character boundaries; `get` keeps this panic-free all the same.
            fields.push(self.base.get(start..end).unwrap_or(""));
        }
    }
}

impl Tokenizer {
    pub(crate) fn new(options: &CsvOptions) -> Tokenizer {
        let parser = csv_core::ReaderBuilder::new()
            .delimiter(options.delimiter)
            .quote(options.quote)
            .escape(options.escape)
            .double_quote(true)
            .build();
        Tokenizer {
            delimiter: options.delimiter,
            quote: options.quote,
            parser,
            out: Vec::new(),
            ends: Vec::new(),
            ranges: Vec::new(),
        }
    }

    /// Splits `line` (one line, no terminator).
    #[inline]
    pub(crate) fn split<'t>(&'t mut self, line: &'t str) -> Tokens<'t> {
        self.ranges.clear();
        let bytes = line.as_bytes();
        // One pass for both bytes, eight at a time: delimiters split, a quote sends the
        // line to the full parser.
        let quoted = !split_plain(bytes, self.delimiter, self.quote, &mut self.ranges);
        if !quoted {
            return Tokens {
                base: line,
                ranges: &self.ranges,
            };
        }
        self.ranges.clear();
        self.parser.reset();
        // Quotes only ever shrink a field, and a line has at most one field more
        // than delimiters: these never fill up.
        self.out.resize(bytes.len() + 1, 0);
        self.ends.resize(bytes.len() + 2, 0);
        let (mut input, mut nout, mut nend) = (bytes, 0, 0);
        loop {
            let (result, nin, o, e) =
                self.parser
                    .read_record(input, &mut self.out[nout..], &mut self.ends[nend..]);
            input = &input[nin..];
            nout += o;
            nend += e;
            match result {
                csv_core::ReadRecordResult::InputEmpty => {
                    if input.is_empty() && nin == 0 && o == 0 && e == 0 {
                        // Already told the input ended; nothing more comes.
                        break;
                    }
                }
                csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End => break,
                csv_core::ReadRecordResult::OutputFull
                | csv_core::ReadRecordResult::OutputEndsFull => {
                    // Unreachable by the sizes above; give up on the rest of the line.
                    break;
                }
            }
        }
        let mut start = 0;
        for &end in &self.ends[..nend] {
            self.ranges.push((start, end));
            start = end;
        }
        if self.ranges.is_empty() {
            self.ranges.push((0, 0));
        }
        match std::str::from_utf8(&self.out[..nout]) {
            Ok(base) => Tokens {
                base,
                ranges: &self.ranges,
            },
            // Removing ASCII quote bytes from UTF-8 leaves UTF-8; keep going regardless.
            Err(_) => Tokens {
                base: "",
                ranges: &self.ranges,
            },
        }
    }
}

/// `0x80` in each byte of `word` that is zero, `0` elsewhere (exact: no carry crosses a
/// byte).
#[inline(always)]
fn zero_bytes(word: u64) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    !(((word & LOW7) + LOW7) | word | LOW7)
}

/// Splits `bytes` at `delimiter` into `ranges` (the last field included), unless it
/// holds `quote`: then returns `false` (and `ranges` holds a prefix).
#[inline]
fn split_plain(bytes: &[u8], delimiter: u8, quote: u8, ranges: &mut Vec<(usize, usize)>) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let (delimiters, quotes) = (ONES * u64::from(delimiter), ONES * u64::from(quote));
    let mut start = 0;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        if zero_bytes(word ^ quotes) != 0 {
            return false;
        }
        let mut found = zero_bytes(word ^ delimiters);
        while found != 0 {
            let at = offset + (found.trailing_zeros() / 8) as usize;
            ranges.push((start, at));
            start = at + 1;
            found &= found - 1;
        }
        offset += 8;
    }
    for (i, &byte) in chunks.remainder().iter().enumerate() {
        if byte == delimiter {
            ranges.push((start, offset + i));
            start = offset + i + 1;
        } else if byte == quote {
            return false;
        }
    }
    ranges.push((start, bytes.len()));
    true
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn fields(options: &CsvOptions, line: &str) -> Vec<String> {
        let mut tokenizer = Tokenizer::new(options);
        let tokens = tokenizer.split(line);
        let mut out = Vec::new();
        tokens.collect_into(&mut out);
        out.into_iter().map(str::to_string).collect()
    }

    #[test]
    fn splits_plain_and_quoted_lines() {
        let options = CsvOptions::default();
        assert_eq!(fields(&options, "a,b,,c"), ["a", "b", "", "c"]);
        assert_eq!(fields(&options, ""), [""]);
        assert_eq!(fields(&options, "a,"), ["a", ""]);
        assert_eq!(fields(&options, r#""x, y",2"#), ["x, y", "2"]);
        assert_eq!(fields(&options, r#""say ""hi""",3"#), [r#"say "hi""#, "3"]);
        assert_eq!(fields(&options, r#""say \"hi\"",3"#), [r#"say "hi""#, "3"]);
        assert_eq!(fields(&options, r#""é",ü"#), ["é", "ü"]);
        // An unclosed quote takes the rest of the line.
        assert_eq!(fields(&options, r#"a,"b,c"#), ["a", "b,c"]);
        let semicolons = CsvOptions::default().delimiter(b';');
        assert_eq!(fields(&semicolons, "1;2,5"), ["1", "2,5"]);
    }

    #[test]
    fn the_word_at_a_time_split_matches_a_byte_loop() {
        let mut x: u64 = 99;
        let alphabet = b",ab\x7f\x80\xff-+. 0";
        for len in 0..70 {
            for _ in 0..50 {
                let line: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        alphabet[(x % alphabet.len() as u64) as usize]
                    })
                    .collect();
                let mut fast = Vec::new();
                assert!(split_plain(&line, b',', b'"', &mut fast));
                let mut want = Vec::new();
                let mut start = 0;
                for (i, b) in line.iter().enumerate() {
                    if *b == b',' {
                        want.push((start, i));
                        start = i + 1;
                    }
                }
                want.push((start, line.len()));
                assert_eq!(fast, want, "{line:?}");
                let mut quoted = line.clone();
                if len > 0 {
                    quoted[(x % len as u64) as usize] = b'"';
                    assert!(!split_plain(&quoted, b',', b'"', &mut Vec::new()));
                }
            }
        }
    }

    #[test]
    fn quoted_lines_match_the_csv_crate() {
        let lines = [
            r#""a","b""c",d"#,
            r#"x,"",y"#,
            r#""1,2",3,"4""#,
            r#"plain,"quoted with ""inner"" quotes",end"#,
        ];
        let options = CsvOptions::default().escape(None);
        for line in lines {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line.as_bytes());
            let record = reader.records().next().unwrap().unwrap();
            let want: Vec<String> = record.iter().map(str::to_string).collect();
            assert_eq!(fields(&options, line), want, "{line}");
        }
    }
}
