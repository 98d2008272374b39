//! Recovery scan: reads every segment of a log directory and returns the intact entries
//! and what was wrong with the rest.
//!
//! The scan reads files with [`std::fs::read`], never a memory map, so a corrupt, truncated
//! or concurrently changing file cannot crash it; it never panics on any file content.

use std::path::Path;

use super::frame::{self, Read, HEADER_LEN};
use super::{dir, Entry, EntryKind, Location, LogError, Problem, Scan};

/// Reads the log in `dir`: every entry with a valid frame, in log order (segment number,
/// then offset), and a [`Problem`] for everything that was skipped.
///
/// Needs no lock and does not write. Run it after opening the [`LogWriter`](super::LogWriter) (which
/// creates the directory and holds the lock), or at least while no writer is appending:
/// an entry being appended during the scan may be reported as a [`Problem::TornTail`].
///
/// Rules, per segment in ascending order:
///
/// * A segment whose header is wrong (magic, header CRC, or a number that differs from
///   the file name) yields no entries: [`Problem::BadHeader`].
/// * Frames are read from the header on. The first frame that is not valid (its length
///   runs past the end of the file, its kind is 0 with a non-zero length, its CRC does not
///   match, or non-zero bytes follow the zero end marker) ends that segment's entries.
///   It is reported as [`Problem::Corrupt`] if a valid frame starts right where the bad
///   frame claims to end (so a frame that was once complete was damaged), and as
///   [`Problem::TornTail`] otherwise (the bad frame is followed by zeros or garbage, as
///   after a crash mid-append). The classification does not depend on whether the segment
///   is the last one: a writer that restarts after a crash starts a new segment, leaving
///   the torn tail in what is then an older segment.
/// * Scanning goes on with the next segment either way.
/// * Between two segments present, each run of missing numbers is reported once, as
///   [`Problem::MissingSegment`] naming the first missing number (`segments` shows where
///   the run ends). Numbers below the lowest segment are not missing: retention removes
///   old segments from the front.
/// * A segment file that cannot be read is [`Problem::Unreadable`]. Files that are not
///   named like segments (the `LOCK` file, leftovers from preallocation) are ignored.
///
/// An empty directory gives an empty [`Scan`].
///
/// # Errors
///
/// [`LogError::Io`] if `dir` cannot be listed. In particular, a directory that does not
/// exist is an error (with [`std::io::ErrorKind::NotFound`], see
/// [`LogError::is_not_found`]) rather than an empty scan, so that a mistyped path is not
/// taken for a fresh start.
pub fn scan(dir: &Path) -> Result<Scan, LogError> {
    let listing = dir::list(dir)?;
    let mut scan = Scan::default();
    for (path, reason) in listing.unreadable {
        scan.problems.push(Problem::Unreadable { path, reason });
    }
    let mut previous: Option<u64> = None;
    for (number, path) in listing.segments {
        scan.segments.push(number);
        if let Some(previous) = previous {
            if number > previous + 1 {
                scan.problems.push(Problem::MissingSegment {
                    segment: previous + 1,
                });
            }
        }
        previous = Some(number);
        match std::fs::read(&path) {
            Ok(bytes) => scan_segment(number, &bytes, &mut scan),
            Err(error) => scan.problems.push(Problem::Unreadable {
                path,
                reason: error.to_string(),
            }),
        }
    }
    Ok(scan)
}

/// Scans one segment's bytes into `scan`.
pub(super) fn scan_segment(number: u64, bytes: &[u8], scan: &mut Scan) {
    if let Err(reason) = frame::check_header(bytes, number) {
        scan.problems.push(Problem::BadHeader {
            segment: number,
            reason,
        });
        return;
    }
    let mut offset = HEADER_LEN;
    loop {
        match frame::read_frame(bytes, offset) {
            Read::Entry {
                kind,
                payload,
                next,
            } => {
                scan.entries.push(Entry {
                    location: Location {
                        segment: number,
                        offset: offset as u64,
                    },
                    kind: EntryKind(kind),
                    payload: payload.to_vec(),
                });
                offset = next;
            }
            Read::End => return,
            Read::Bad(bad) => {
                let followed_by_entry = bad.claimed_next().is_some_and(|next| {
                    matches!(frame::read_frame(bytes, next), Read::Entry { .. })
                });
                scan.problems.push(if followed_by_entry {
                    Problem::Corrupt {
                        segment: number,
                        offset: offset as u64,
                        reason: bad.to_string(),
                    }
                } else {
                    Problem::TornTail {
                        segment: number,
                        offset: offset as u64,
                    }
                });
                return;
            }
        }
    }
}
