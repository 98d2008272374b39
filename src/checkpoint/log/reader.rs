//! Recovery scan: reads every segment of a log directory and returns the intact entries
//! and what was wrong with the rest.
//!
//! The scan reads files with [`std::fs::read`], never a memory map, so a corrupt, truncated
//! or concurrently changing file cannot crash it; it never panics on any file content.

use std::path::Path;

use super::frame::{self, Read, SegmentHeader};
use super::manifest::{self, Manifest};
use super::{dir, Entry, EntryKind, Location, LogError, Problem, Scan};

/// Reads the log in `dir`: every entry with a valid frame, in log order (segment number,
/// then offset), and a [`Problem`] for everything that was skipped or is missing.
///
/// Needs no lock and does not write. Run it after opening the [`LogWriter`](super::LogWriter) (which
/// creates the directory and holds the lock), or at least while no writer is appending:
/// an entry being appended during the scan may be reported as a [`Problem::TornTail`].
///
/// Rules, per segment in ascending order:
///
/// * A segment whose header is wrong (magic, header CRC, or a number that differs from
///   the file name) yields no entries: [`Problem::BadHeader`]. Segments of both formats
///   are read (`RIVLOG01` and `RIVLOG02`, see the module docs).
/// * A format-2 segment shorter than its header says was cut: [`Problem::Truncated`].
/// * Frames are read from the header on. After a frame that is not valid, reading
///   resumes at the next valid frame: where the bad frame's length says (if its header
///   checks out) or, in format 2, at the next sync marker that starts a valid frame.
///   The skipped bytes are [`Problem::Corrupt`]. A bad frame with no valid frame after it
///   ends the segment's entries: [`Problem::TornTail`], what a crash mid-append leaves
///   (not reported in a truncated segment, where the cut explains it). A torn tail can
///   be in any segment, not only the last: a writer that restarts after a crash starts a
///   new segment, leaving the torn tail in what is then an older segment. But if the next
///   segment's header says the writer rolled over to it, the segment was whole when its
///   writer left it, and the bad tail is [`Problem::DamagedTail`].
/// * Segments that should be there but are not are [`Problem::MissingSegments`], one per
///   run of missing numbers: with a `MANIFEST` (written by every writer since format 2),
///   every number from its `first` to the newest of its `last` and the segments present;
///   without one (an older log), the gaps between the segments present. Numbers below
///   the `first` (or, without a manifest, below the lowest segment) are not missing:
///   retention removes old segments from the front. A `MANIFEST` that cannot be decoded
///   is [`Problem::Manifest`] (and gaps are then found as without one).
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
    let manifest = match manifest::read(dir) {
        Ok(manifest) => manifest,
        Err(reason) => {
            scan.problems.push(Problem::Manifest { reason });
            None
        }
    };
    scan.segments = listing.segments.iter().map(|(number, _)| *number).collect();
    for (first, last) in missing(&scan.segments, manifest) {
        scan.problems.push(Problem::MissingSegments { first, last });
    }
    let mut rolled_to = std::collections::BTreeSet::new();
    for (number, path) in listing.segments {
        match std::fs::read(&path) {
            Ok(bytes) => {
                if scan_segment(number, &bytes, &mut scan).is_some_and(|header| header.rolled) {
                    rolled_to.insert(number);
                }
            }
            Err(error) => scan.problems.push(Problem::Unreadable {
                path,
                reason: error.to_string(),
            }),
        }
    }
    // A crash leaves a torn tail only in the segment its writer was filling; a writer
    // that went on to the next segment had left this one whole.
    for problem in &mut scan.problems {
        if let Problem::TornTail { segment, offset } = *problem {
            if segment
                .checked_add(1)
                .is_some_and(|next| rolled_to.contains(&next))
            {
                *problem = Problem::DamagedTail { segment, offset };
            }
        }
    }
    Ok(scan)
}

/// What [`scan`] returns for a directory holding one segment file, segment `number`
/// with `bytes`, without touching files (for `rivulet::fuzzing`).
pub(crate) fn scan_one(number: u64, bytes: &[u8]) -> Scan {
    let mut scan = Scan {
        segments: vec![number],
        ..Scan::default()
    };
    scan_segment(number, bytes, &mut scan);
    scan
}

/// The runs of segment numbers that should be present but are not, as `(first, last)`,
/// given the segments present (ascending) and the manifest.
fn missing(present: &[u64], manifest: Option<Manifest>) -> Vec<(u64, u64)> {
    let (mut expected, newest) = match (manifest, present.last()) {
        (Some(manifest), Some(&newest)) => (manifest.first, newest.max(manifest.last)),
        (Some(manifest), None) => (manifest.first, manifest.last),
        (None, Some(&newest)) => (present[0], newest),
        (None, None) => return Vec::new(),
    };
    let mut runs = Vec::new();
    let lowest = expected;
    for &number in present.iter().filter(|number| **number >= lowest) {
        if number > expected {
            runs.push((expected, number - 1));
        }
        expected = number.saturating_add(1);
    }
    if present.last().is_none_or(|last| *last < newest) {
        runs.push((expected, newest));
    }
    runs
}

/// Scans one segment's bytes into `scan`; returns its header if it is valid.
pub(super) fn scan_segment(number: u64, bytes: &[u8], scan: &mut Scan) -> Option<SegmentHeader> {
    let header = match frame::check_header(bytes, number) {
        Ok(header) => header,
        Err(reason) => {
            scan.problems.push(Problem::BadHeader {
                segment: number,
                reason,
            });
            return None;
        }
    };
    let truncated = header.size.is_some_and(|size| (bytes.len() as u64) < size);
    if let Some(size) = header.size.filter(|_| truncated) {
        scan.problems.push(Problem::Truncated {
            segment: number,
            len: bytes.len() as u64,
            expected: size,
        });
    }
    let mut offset = header.format.header_len();
    loop {
        match frame::read_frame(header.format, bytes, offset) {
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
            Read::End => return Some(header),
            Read::Bad(bad) => match frame::resync(header.format, bytes, offset, &bad) {
                Some(resumed_at) => {
                    scan.problems.push(Problem::Corrupt {
                        segment: number,
                        offset: offset as u64,
                        resumed_at: resumed_at as u64,
                        reason: bad.to_string(),
                    });
                    offset = resumed_at;
                }
                None => {
                    if !truncated {
                        scan.problems.push(Problem::TornTail {
                            segment: number,
                            offset: offset as u64,
                        });
                    }
                    return Some(header);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_runs() {
        let m = |first, last| Some(Manifest { first, last });
        assert_eq!(missing(&[], None), vec![]);
        assert_eq!(missing(&[3, 4, 7, 9], None), vec![(5, 6), (8, 8)]);
        // Everything wiped.
        assert_eq!(missing(&[], m(2, 5)), vec![(2, 5)]);
        // The newest deleted.
        assert_eq!(missing(&[2, 3, 4], m(2, 5)), vec![(5, 5)]);
        // The oldest deleted; one below `first` (interrupted retention) is not a gap.
        assert_eq!(missing(&[0, 3, 4, 5], m(2, 5)), vec![(2, 2)]);
        // A segment created just before a crash, after the manifest was written.
        assert_eq!(missing(&[2, 3, 4, 5, 6], m(2, 5)), vec![]);
        assert_eq!(missing(&[2, 4, 6], m(2, 5)), vec![(3, 3), (5, 5)]);
        assert_eq!(
            missing(&[u64::MAX], m(u64::MAX - 1, u64::MAX)),
            vec![(u64::MAX - 1, u64::MAX - 1)]
        );
    }
}
