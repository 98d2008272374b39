//! Every damage of a small checkpoint log: truncation at every byte offset of every
//! segment, a flipped bit pattern at every byte, each segment deleted, all deleted.
//!
//! For each, the reference is computed from what was written and where the damage fell:
//! an entry is lost if its frame (or its segment's header) holds a damaged byte, lies
//! past a cut, or is in a deleted segment; the epoch to restore is the newest whose
//! completion, snapshots and (if it published output) commit record are all intact.
//! Recovery must restore exactly that epoch, or, with none left, refuse with an error
//! that names the damage (never start afresh). The inspector must report the same
//! decision, and call the directory damaged whenever recovery found damage.

use super::{run, Recovery};
use rivulet::checkpoint::codec;
use rivulet::checkpoint::entries::{
    self, CommitEntry, CompleteEntry, MetaEntry, OffsetsEntry, PlanShape, SourceOffsets, StateEntry,
};
use rivulet::checkpoint::log::{EntryKind, LogConfig, LogWriter};
use rivulet::checkpoint::recovery::{inspect, recover};
use rivulet::checkpoint::{CheckpointError, Durability};
use rivulet::trigger::ExecutionMode;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Format 2's segment header and frame header lengths (see `checkpoint::log`'s docs).
const SEGMENT_HEADER: u64 = 32;
const FRAME_HEADER: u64 = 17;

/// One entry as written: what it is for and where its frame lies.
#[derive(Debug, Clone)]
struct Written {
    kind: EntryKind,
    epoch: u64,
    segment: u64,
    start: u64,
    end: u64,
}

/// Writes a log as the coordinator does: a `META` at the start of every segment; per
/// epoch the offsets, two snapshots, the completion, and for even epochs (which
/// published output) the commit record.
fn write_log(dir: &Path, epochs: u64) -> Vec<Written> {
    let config = LogConfig {
        segment_bytes: 400,
        durability: Durability::OsBuffered,
    };
    let mut writer = LogWriter::open(dir, config).unwrap();
    let mut written = Vec::new();
    let meta = MetaEntry {
        version: entries::FORMAT_VERSION,
        fingerprint: 7,
        plan: PlanShape {
            operators: vec![("numbers".into(), "Source".into(), 1)],
        },
        query_id: Some("0123456789abcdef0123456789abcdef".into()),
    };
    let mut last_segment = None;
    let mut append = |kind: EntryKind, epoch: u64, entry: &dyn ErasedEntry| {
        let payload = entry.encode();
        let at = writer.append(kind, &payload).unwrap();
        written.push(Written {
            kind,
            epoch,
            segment: at.segment,
            start: at.offset,
            end: at.offset + FRAME_HEADER + payload.len() as u64,
        });
        if last_segment != Some(at.segment) {
            last_segment = Some(at.segment);
            if kind != entries::META {
                let payload = meta.encode();
                let at = writer.append(entries::META, &payload).unwrap();
                written.push(Written {
                    kind: entries::META,
                    epoch: 0,
                    segment: at.segment,
                    start: at.offset,
                    end: at.offset + FRAME_HEADER + payload.len() as u64,
                });
            }
        }
    };
    append(entries::META, 0, &meta);
    let states = vec![("numbers".to_string(), 0), ("count".to_string(), 0)];
    for epoch in 1..=epochs {
        let offsets = OffsetsEntry {
            epoch,
            attempt: 1,
            mode: ExecutionMode::MicroBatch,
            sources: vec![SourceOffsets {
                operator: "numbers".into(),
                instance: 0,
                records: 10,
                end_offset: (epoch * 10).to_le_bytes().to_vec(),
            }],
            batch_time: Some(epoch as i64 * 1_000),
        };
        append(entries::OFFSETS, epoch, &offsets);
        for (operator, instance) in &states {
            let state = StateEntry {
                epoch,
                attempt: 1,
                operator: operator.clone(),
                instance: *instance,
                state: vec![epoch as u8; 12],
            };
            append(entries::STATE, epoch, &state);
        }
        let needs_commit = epoch % 2 == 0;
        let complete = CompleteEntry {
            epoch,
            attempt: 1,
            mode: ExecutionMode::MicroBatch,
            needs_commit,
            fingerprint: 7,
            states: states.clone(),
            duration_us: 1,
        };
        append(entries::COMPLETE, epoch, &complete);
        if needs_commit {
            append(entries::COMMIT, epoch, &CommitEntry { epoch, attempt: 1 });
        }
    }
    drop(writer);
    written
}

/// Encodes any entry type through one `dyn` (the test writes five kinds).
trait ErasedEntry {
    fn encode(&self) -> Vec<u8>;
}

impl<T: Serialize> ErasedEntry for T {
    fn encode(&self) -> Vec<u8> {
        codec::encode(self).unwrap()
    }
}

/// What recovery must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    /// Restore this epoch.
    Restores(u64),
    /// Start afresh: no epoch was complete, and what is lost is what a crash during a
    /// write loses (a torn tail).
    Afresh,
    /// Refuse, naming the damage.
    Refuses,
}

/// The newest epoch whose completion, snapshots and needed commit are all intact;
/// without one, a fresh start if the damage looks like a torn write, else a refusal.
fn reference(written: &[Written], lost: impl Fn(&Written) -> bool, looks_torn: bool) -> Expected {
    let epochs = written.iter().map(|w| w.epoch).max().unwrap_or(0);
    let newest = (1..=epochs).rev().find(|epoch| {
        let of = |kind: EntryKind| {
            written
                .iter()
                .filter(move |w| w.epoch == *epoch && w.kind == kind)
        };
        let complete = of(entries::COMPLETE).all(|w| !lost(w));
        let states = of(entries::STATE).all(|w| !lost(w));
        let commit = epoch % 2 == 1 || of(entries::COMMIT).any(|w| !lost(w));
        complete && states && commit
    });
    match newest {
        Some(epoch) => Expected::Restores(epoch),
        None if looks_torn => Expected::Afresh,
        None => Expected::Refuses,
    }
}

/// Segment files by number: path and intact bytes.
type Files = BTreeMap<u64, (PathBuf, Vec<u8>)>;

/// The log's segment files, by number.
fn segment_files(dir: &Path) -> Files {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let hex = name.strip_prefix("segment-")?.strip_suffix(".log")?;
            let number = u64::from_str_radix(hex, 16).ok()?;
            let bytes = std::fs::read(&path).unwrap();
            Some((number, (path, bytes)))
        })
        .collect()
}

/// Checks recovery and the inspector on the damaged directory against `expected`.
fn check(dir: &Path, case: &str, expected: Expected, must_be_damage: bool) {
    let report = inspect(dir).unwrap();
    let inspection = run(dir).unwrap();
    match recover(dir) {
        Ok((recovered, _)) => {
            let got = match recovered.epoch {
                0 => Expected::Afresh,
                epoch => Expected::Restores(epoch),
            };
            assert_eq!(
                got, expected,
                "{case}: the reference says {expected:?}; problems {:?}",
                report.problems
            );
            let recovery = match got {
                Expected::Restores(epoch) => Recovery::Restores { epoch },
                _ => Recovery::StartsAfresh,
            };
            assert_eq!(inspection.recovery, recovery, "{case}");
        }
        Err(error) => {
            assert_eq!(expected, Expected::Refuses, "{case}: refused: {error}");
            assert!(
                matches!(error, CheckpointError::NoIntactEpoch { .. }),
                "{case}: {error}"
            );
            let message = error.to_string();
            // The message names the damage: one of the problems found, word for word.
            let damage: Vec<&String> = report.damage().collect();
            assert!(!damage.is_empty(), "{case}: refused without damage");
            assert!(
                damage
                    .iter()
                    .any(|problem| message.contains(problem.as_str())),
                "{case}: {message}"
            );
            assert_eq!(
                inspection.recovery,
                Recovery::Refuses { error: message },
                "{case}"
            );
        }
    }
    if must_be_damage {
        assert!(report.is_corrupt(), "{case}: {:?}", report.problems);
    }
    if report.is_corrupt() {
        assert!(
            !inspection.healthy,
            "{case}: damage, but the inspector says healthy"
        );
    } else {
        assert!(inspection.healthy, "{case}: {:?}", inspection.problems);
    }
}

fn restore(files: &Files) {
    for (path, bytes) in files.values() {
        std::fs::write(path, bytes).unwrap();
    }
}

/// Logs of one epoch (one segment) and of four (several segments): in the first most
/// damage leaves nothing to restore, in the second an older epoch or the newest.
const SHAPES: [u64; 2] = [1, 4];

fn setup(epochs: u64) -> (tempfile::TempDir, Vec<Written>, Files) {
    let dir = tempfile::tempdir().unwrap();
    let written = write_log(dir.path(), epochs);
    let files = segment_files(dir.path());
    assert!(
        epochs == 1 || files.len() >= 3,
        "the log should span several segments"
    );
    check(dir.path(), "intact", Expected::Restores(epochs), false);
    (dir, written, files)
}

#[test]
fn truncation_at_every_offset() {
    for epochs in SHAPES {
        let (dir, written, files) = setup(epochs);
        for (&segment, (path, bytes)) in &files {
            for cut in 0..bytes.len() as u64 {
                restore(&files);
                std::fs::write(path, &bytes[..cut as usize]).unwrap();
                let lost =
                    |w: &Written| w.segment == segment && (cut < SEGMENT_HEADER || w.end > cut);
                let case = format!("{epochs} epochs: segment {segment} cut at {cut}");
                check(dir.path(), &case, reference(&written, lost, false), true);
            }
        }
    }
}

#[test]
fn a_flipped_byte_at_every_offset() {
    for epochs in SHAPES {
        let (dir, written, files) = setup(epochs);
        let last = *files.keys().last().unwrap();
        let last_frame = written
            .iter()
            .filter(|w| w.segment == last)
            .map(|w| w.start)
            .max()
            .unwrap();
        for (&segment, (path, bytes)) in &files {
            for at in 0..bytes.len() as u64 {
                restore(&files);
                let mut damaged = bytes.clone();
                damaged[at as usize] ^= 0x5a;
                std::fs::write(path, &damaged).unwrap();
                let lost = |w: &Written| {
                    w.segment == segment && (at < SEGMENT_HEADER || (w.start..w.end).contains(&at))
                };
                let case = format!("{epochs} epochs: segment {segment} byte {at} flipped");
                // A flip in the last segment's last frame or in the zeros after it is what
                // a torn write looks like; everywhere else it is damage.
                let looks_torn = segment == last && at >= last_frame;
                check(
                    dir.path(),
                    &case,
                    reference(&written, lost, looks_torn),
                    !looks_torn,
                );
            }
        }
    }
}

#[test]
fn each_segment_deleted_and_all_deleted() {
    for epochs in SHAPES {
        let (dir, written, files) = setup(epochs);
        for (&segment, (path, _)) in &files {
            restore(&files);
            std::fs::remove_file(path).unwrap();
            let lost = |w: &Written| w.segment == segment;
            let case = format!("{epochs} epochs: segment {segment} deleted");
            check(dir.path(), &case, reference(&written, lost, false), true);
        }
        restore(&files);
        for (path, _) in files.values() {
            std::fs::remove_file(path).unwrap();
        }
        check(dir.path(), "every segment deleted", Expected::Refuses, true);
        let error = recover(dir.path()).unwrap_err().to_string();
        assert!(error.contains("no checkpoint segment is left"), "{error}");
    }
}
