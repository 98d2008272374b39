//! The log directory: file names and listing.
//!
//! A log directory holds `segment-{:016x}.log` files (lower-case hex, sixteen digits, so
//! names sort like numbers), the writer's `LOCK` file, and, only while a segment is being
//! preallocated, `segment-{:016x}.log.tmp`. Any other file is ignored.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::LogError;

/// Name of the lock file the [`LogWriter`](super::LogWriter) holds.
pub(super) const LOCK_FILE: &str = "LOCK";

const PREFIX: &str = "segment-";
const SUFFIX: &str = ".log";
const TEMP_SUFFIX: &str = ".log.tmp";

/// Path of segment `number` in `dir`.
pub(super) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{PREFIX}{number:016x}{SUFFIX}"))
}

/// Path under which segment `number` is preallocated before it is renamed into place.
pub(super) fn temp_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{PREFIX}{number:016x}{TEMP_SUFFIX}"))
}

/// The segment number in a segment file name, or `None` if `name` is not one.
pub(super) fn parse_segment_name(name: &OsStr) -> Option<u64> {
    parse_with_suffix(name, SUFFIX)
}

/// Whether `name` is a leftover preallocation file.
pub(super) fn is_temp_name(name: &OsStr) -> bool {
    parse_with_suffix(name, TEMP_SUFFIX).is_some()
}

fn parse_with_suffix(name: &OsStr, suffix: &str) -> Option<u64> {
    let hex = name.to_str()?.strip_prefix(PREFIX)?.strip_suffix(suffix)?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The files of a log directory.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// Segment files, ascending by number.
    pub(super) segments: Vec<(u64, PathBuf)>,
    /// Leftover preallocation files.
    pub(super) temps: Vec<PathBuf>,
    /// Directory entries that could not be read, with the reason.
    pub(super) unreadable: Vec<(PathBuf, String)>,
}

/// Lists `dir`. Fails only if the directory itself cannot be read (it does not exist,
/// is not a directory, or is not readable); a bad entry goes to `unreadable`.
pub(super) fn list(dir: &Path) -> Result<Listing, LogError> {
    let entries =
        std::fs::read_dir(dir).map_err(|source| LogError::io("read log directory", dir, source))?;
    let mut listing = Listing::default();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                listing.unreadable.push((
                    dir.to_path_buf(),
                    format!("reading a directory entry: {error}"),
                ));
                continue;
            }
        };
        let name = entry.file_name();
        if let Some(number) = parse_segment_name(&name) {
            listing.segments.push((number, entry.path()));
        } else if is_temp_name(&name) {
            listing.temps.push(entry.path());
        }
    }
    listing.segments.sort_unstable_by_key(|(number, _)| *number);
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let dir = Path::new("/x");
        for number in [0, 1, 0xabc, u64::MAX] {
            let path = segment_path(dir, number);
            assert_eq!(parse_segment_name(path.file_name().unwrap()), Some(number));
            let temp = temp_path(dir, number);
            assert!(is_temp_name(temp.file_name().unwrap()));
            assert_eq!(parse_segment_name(temp.file_name().unwrap()), None);
        }
        assert_eq!(
            segment_path(dir, 26),
            Path::new("/x/segment-000000000000001a.log")
        );
    }

    #[test]
    fn other_names_are_not_segments() {
        for name in [
            "LOCK",
            "segment-1.log",
            "segment-000000000000001A.log",
            "segment-000000000000001a.log.bak",
            "segment-+00000000000001a.log",
            "xsegment-000000000000001a.log",
            "segment-0000000000000001a.log",
        ] {
            assert_eq!(parse_segment_name(OsStr::new(name)), None, "{name}");
        }
    }
}
