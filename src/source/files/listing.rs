//! Listing the directory: which files count, in which order, and the name filter.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A file found in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The file name (no directory).
    pub(crate) name: String,
    /// Its modification time, µs since the Unix epoch.
    pub(crate) mtime: i64,
    /// Its length when it was listed.
    pub(crate) len: u64,
}

/// Whether Spark (Hadoop's file listing) leaves `name` out: hidden (`.`), metadata or
/// temporary (`_`), or a copy in progress (`._COPYING_`).
pub(crate) fn is_hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_') || name.ends_with("._COPYING_")
}

/// µs since the Unix epoch (negative before it).
pub(crate) fn micros(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_micros().min(i64::MAX as u128) as i64,
        Err(before) => -(before.duration().as_micros().min(i64::MAX as u128) as i64),
    }
}

/// The order files are read in: by modification time, ties by name; newest first with
/// `latest_first`.
pub(crate) fn order(a: &Entry, b: &Entry, latest_first: bool) -> Ordering {
    let by_time = a.mtime.cmp(&b.mtime).then_with(|| a.name.cmp(&b.name));
    if latest_first {
        by_time.reverse()
    } else {
        by_time
    }
}

/// What one listing found.
#[derive(Debug, Default)]
pub(crate) struct Listed {
    /// New files old enough to read, unsorted.
    pub(crate) ready: Vec<Entry>,
}

/// Lists the regular files in `dir` for which `wanted(name)` holds, that are not hidden,
/// and sorts out those modified less than `settle` ago.
pub(crate) fn list(
    dir: &Path,
    settle: Duration,
    mut wanted: impl FnMut(&str) -> bool,
) -> io::Result<Listed> {
    let now = SystemTime::now();
    let mut listed = Listed::default();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let name = item.file_name();
        // Names that are not UTF-8 are left out.
        let Some(name) = name.to_str() else {
            continue;
        };
        if is_hidden(name) || !wanted(name) {
            continue;
        }
        let metadata = match std::fs::metadata(item.path()) {
            Ok(metadata) => metadata,
            // Gone between the listing and now: it was never there for us.
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        if !metadata.is_file() {
            continue;
        }
        let modified = metadata.modified()?;
        let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
        if age < settle {
            // Not yet: a later listing takes it.
            continue;
        }
        listed.ready.push(Entry {
            name: name.to_string(),
            mtime: micros(modified),
            len: metadata.len(),
        });
    }
    Ok(listed)
}

/// A file-name pattern: `*` (any run of characters), `?` (one character), `[abc]`,
/// `[a-z]`, `[!a-z]` (one of, or none of), `{csv,txt}` (one of the alternatives),
/// `\x` (a literal `x`). Hadoop's glob syntax, which Spark's `pathGlobFilter` uses,
/// for file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    pattern: Vec<char>,
}

impl Glob {
    /// Compiles `pattern`.
    pub(crate) fn new(pattern: &str) -> Result<Glob, String> {
        let chars: Vec<char> = pattern.chars().collect();
        // Check brackets and braces balance.
        let (mut in_class, mut braces, mut escaped) = (false, 0i32, false);
        for c in &chars {
            match (escaped, in_class, c) {
                (true, ..) => escaped = false,
                (false, _, '\\') => escaped = true,
                (false, false, '[') => in_class = true,
                (false, true, ']') => in_class = false,
                (false, false, '{') => braces += 1,
                (false, false, '}') => braces -= 1,
                _ => {}
            }
            if braces < 0 {
                return Err(format!("`}}` without `{{` in {pattern:?}"));
            }
        }
        if in_class || braces != 0 || escaped {
            return Err(format!(
                "unbalanced `[`, `{{` or trailing `\\` in {pattern:?}"
            ));
        }
        Ok(Glob { pattern: chars })
    }

    /// Whether `name` matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        matches_at(&self.pattern, &name)
    }
}

/// Index after the `]` closing the class that starts at `pattern[start] == '['`.
fn class_end(pattern: &[char], start: usize) -> usize {
    let mut i = start + 1;
    if matches!(pattern.get(i), Some('!' | '^')) {
        i += 1;
    }
    if pattern.get(i) == Some(&']') {
        i += 1;
    }
    while i < pattern.len() && pattern[i] != ']' {
        i += 1;
    }
    i + 1
}

fn class_matches(class: &[char], c: char) -> bool {
    let (negated, class) = match class.first() {
        Some('!' | '^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut found = false;
    let mut i = 0;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == '-' {
            if class[i] <= c && c <= class[i + 2] {
                found = true;
            }
            i += 3;
        } else {
            if class[i] == c {
                found = true;
            }
            i += 1;
        }
    }
    found != negated
}

/// The alternatives of the brace group starting at `pattern[start] == '{'`, and the
/// index after its `}`.
fn alternatives(pattern: &[char], start: usize) -> (Vec<&[char]>, usize) {
    let mut depth = 0;
    let mut begin = start + 1;
    let mut parts = Vec::new();
    let mut i = start;
    while i < pattern.len() {
        match pattern[i] {
            '\\' => i += 1,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    parts.push(&pattern[begin..i]);
                    return (parts, i + 1);
                }
            }
            ',' if depth == 1 => {
                parts.push(&pattern[begin..i]);
                begin = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    (parts, pattern.len())
}

fn matches_at(pattern: &[char], name: &[char]) -> bool {
    let Some(&first) = pattern.first() else {
        return name.is_empty();
    };
    match first {
        '*' => (0..=name.len()).any(|skip| matches_at(&pattern[1..], &name[skip..])),
        '?' => !name.is_empty() && matches_at(&pattern[1..], &name[1..]),
        '[' => {
            let end = class_end(pattern, 0);
            !name.is_empty()
                && class_matches(&pattern[1..end - 1], name[0])
                && matches_at(&pattern[end..], &name[1..])
        }
        '{' => {
            let (parts, end) = alternatives(pattern, 0);
            parts.iter().any(|part| {
                let mut joined = part.to_vec();
                joined.extend_from_slice(&pattern[end..]);
                matches_at(&joined, name)
            })
        }
        '\\' if pattern.len() > 1 => {
            name.first() == Some(&pattern[1]) && matches_at(&pattern[2..], &name[1..])
        }
        c => name.first() == Some(&c) && matches_at(&pattern[1..], &name[1..]),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("*.csv", "a.csv", true),
            ("*.csv", "a.csv.tmp", false),
            ("part-?.csv", "part-1.csv", true),
            ("part-?.csv", "part-12.csv", false),
            ("[a-c]*", "banana", true),
            ("[!a-c]*", "banana", false),
            ("*.{csv,txt}", "x.txt", true),
            ("*.{csv,txt}", "x.json", false),
            ("data-{20*,19*}.csv", "data-2014.csv", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("", "", true),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                Glob::new(pattern).unwrap().matches(name),
                want,
                "{pattern} {name}"
            );
        }
        assert!(Glob::new("[abc").is_err());
        assert!(Glob::new("{a,b").is_err());
    }

    #[test]
    fn hidden_files() {
        for name in [".part.csv", "_tmp_1.csv", "_SUCCESS", "a.csv._COPYING_"] {
            assert!(is_hidden(name), "{name}");
        }
        assert!(!is_hidden("part_1.csv"));
    }
}
