//! One segment being written: a preallocated file, memory-mapped, and a write cursor.
//!
//! This file holds the log's only `unsafe` code: the call to [`MmapMut::map_mut`] in
//! [`map_segment`]. Everything else writes through the safe `&mut [u8]` the map derefs to.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};

use memmap2::MmapMut;

use super::frame::{self, FRAME_HEADER_LEN, HEADER_LEN};
use super::{dir, Durability, LogError};

/// Zeros are written in chunks of this size when a segment is preallocated.
const ZERO_CHUNK: usize = 1 << 20;

/// A segment open for appending.
#[derive(Debug)]
pub(super) struct Segment {
    number: u64,
    path: PathBuf,
    /// The segment file, kept open to map it again after each flush.
    file: File,
    map: MmapMut,
    /// Offset of the next frame.
    end: usize,
    /// Everything before this offset has been flushed by [`Segment::flush`].
    synced: usize,
}

impl Segment {
    /// Creates segment `number` in `dir`, `size` bytes long in all (header included), and
    /// maps it. `rolled`: the writer filled the segment before it and goes on here (the
    /// header's `ROLLED` flag).
    ///
    /// The file is written in full (header, then zeros) under a temporary name, so that
    /// every block is allocated before it is mapped: on a full disk this fails here with
    /// [`LogError::NoSpace`] rather than with `SIGBUS` on a later store into the map.
    /// Then it is renamed into place, so a reader never sees a half-written segment.
    /// With [`Durability::Msync`] the file and the directory are fsynced, so that the
    /// segment survives power loss once entries in it are synced.
    pub(super) fn create(
        dir_path: &Path,
        number: u64,
        size: u64,
        rolled: bool,
        durability: Durability,
    ) -> Result<Segment, LogError> {
        let path = dir::segment_path(dir_path, number);
        let temp = dir::temp_path(dir_path, number);
        let size_usize = usize::try_from(size).map_err(|_| LogError::EntryTooLarge {
            len: size,
            max: usize::MAX as u64,
        })?;
        debug_assert!(size_usize >= HEADER_LEN + FRAME_HEADER_LEN);

        let file = match preallocate(&temp, number, size_usize, rolled, durability) {
            Ok(file) => file,
            Err((operation, source)) => {
                // Best effort: the partial file must not be left behind, but the error
                // that matters is the one that made us stop.
                let _ = std::fs::remove_file(&temp);
                return Err(if is_no_space(&source) {
                    LogError::NoSpace { path, needed: size }
                } else {
                    LogError::io(operation, &temp, source)
                });
            }
        };
        if let Err(source) = std::fs::rename(&temp, &path) {
            let _ = std::fs::remove_file(&temp);
            return Err(LogError::io("rename into place", &temp, source));
        }
        if durability == Durability::Msync {
            sync_dir(dir_path)?;
        }
        let map = map_segment(&file).map_err(|source| LogError::io("map", &path, source))?;
        if map.len() != size_usize {
            return Err(LogError::io(
                "map",
                &path,
                std::io::Error::other(format!("mapped {} bytes, expected {size_usize}", map.len())),
            ));
        }
        Ok(Segment {
            number,
            path,
            file,
            map,
            end: HEADER_LEN,
            synced: HEADER_LEN,
        })
    }

    /// The segment number.
    pub(super) fn number(&self) -> u64 {
        self.number
    }

    /// Bytes left for frames (headers included).
    pub(super) fn remaining(&self) -> usize {
        self.map.len() - self.end
    }

    /// Appends one frame and returns its offset. The caller has checked that
    /// `FRAME_HEADER_LEN + payload.len() <= self.remaining()`, that the payload fits
    /// a `u32` length, and that `kind` is not 0.
    ///
    /// # Torn writes
    ///
    /// The frame is written payload first, then `len`, `kind`, `crc` and `nlen`, then
    /// the sync marker last. The bytes being written were all zero before (the segment
    /// was preallocated with zeros and no byte is written twice), so any torn state is a
    /// mix of the intended bytes and zeros:
    ///
    /// * Process crash (`kill -9`): the page cache keeps every store made before the
    ///   crash, in program order (the fence keeps the compiler and CPU from moving the
    ///   marker's store ahead of the others). If the marker is still zero, the frame reads
    ///   as the end of the entries (when nothing else was written yet) or as non-zero
    ///   bytes after it with no valid frame following, which the reader reports as a torn
    ///   tail. A partly written marker is no marker.
    /// * Power loss: pages reach the disk in any order, so any subset of the frame's
    ///   bytes may be missing (zero). The reader accepts a frame only if it starts with the
    ///   marker, `nlen` is the complement of `len`, `len` fits, `kind` is not zero and
    ///   crc32 over `kind` and the `len` payload bytes equals `crc`. A missing non-zero
    ///   byte of `len` or `nlen` breaks the complement (a byte and its complement are
    ///   never both zero; a missing byte that was meant to be zero is no change at all).
    ///   Missing bytes of `kind`, `crc` or the payload change the CRC's input or value,
    ///   so the CRC mismatches unless the change collides with crc32 (all changes within
    ///   32 consecutive bits are detected; others slip through with probability about
    ///   2^-32).
    ///
    /// So a crash mid-write never yields a valid frame with wrong content, short of a
    /// CRC collision. An entry is guaranteed durable only after [`Segment::flush`].
    pub(super) fn append(&mut self, kind: u8, payload: &[u8]) -> u64 {
        let offset = self.end;
        let payload_at = offset + FRAME_HEADER_LEN;
        let next = payload_at + payload.len();
        self.map[payload_at..next].copy_from_slice(payload);
        self.map[offset + 4..payload_at]
            .copy_from_slice(&frame::encode_frame_header(kind, payload));
        fence(Ordering::Release);
        self.map[offset..offset + 4].copy_from_slice(&frame::SYNC);
        self.end = next;
        offset as u64
    }

    /// Makes the bytes written since the last flush durable.
    ///
    /// Not with `msync` on the map: the kernel writes a page back only after making it
    /// read-only in every mapping, and it does that page by page, each time with a TLB
    /// shootdown, an interrupt to every core running one of this process's threads. The
    /// operator threads are those threads, and on a small machine they are pinned and
    /// busy: measured on a 2-vCPU VM, msync of one epoch's ~60 KB snapshot cost about 9
    /// shootdowns and tripled the p99 latency of records flowing meanwhile. So the map is
    /// replaced by a fresh one (mapping is lazy: the fresh one maps no page yet) and the
    /// old one unmapped, one shootdown for the whole range; then `fdatasync` writes the
    /// pages back with no mapping left to write-protect. The next appends fault the pages
    /// they touch into the new map, on this (the coordinator's) thread only.
    pub(super) fn flush(&mut self) -> Result<(), LogError> {
        if self.synced == self.end {
            return Ok(());
        }
        let fresh =
            map_segment(&self.file).map_err(|source| LogError::io("map", &self.path, source))?;
        drop(std::mem::replace(&mut self.map, fresh));
        self.file
            .sync_data()
            .map_err(|source| LogError::io("fdatasync", &self.path, source))?;
        self.synced = self.end;
        Ok(())
    }
}

/// Maps a segment file for writing. The only call to [`MmapMut::map_mut`] in rivulet.
fn map_segment(file: &File) -> std::io::Result<MmapMut> {
    // SAFETY: `map_mut` is unsafe because the map's memory changes (or, if the file
    // shrinks, faults with SIGBUS) when anything else modifies the file while it is
    // mapped, which `&mut [u8]` access cannot allow for. rivulet promises that does not
    // happen to a segment it maps:
    // * rivulet alone writes a log directory, and one `LogWriter` at a time: `LogWriter`
    //   holds an exclusive lock on the directory's LOCK file for its whole life (a
    //   second writer, in this process or another, gets `LogError::Locked`). Other
    //   programs writing into the directory break this promise, as files edited under
    //   ripgrep break its promise.
    // * The file mapped here was just created by this writer and written to its full
    //   size before mapping, and is never truncated or resized while mapped: segment
    //   files are only ever created (by `Segment::create`) or removed whole (an unlink,
    //   which leaves an existing map valid), and `LogWriter::remove_segment` refuses the
    //   current segment, the only one mapped.
    // * The reader (`scan`) never maps and never writes: it reads with `std::fs::read`.
    // * The map is owned by one `Segment`, owned by the `LogWriter`, written only
    //   through `&mut self`, so within the process there is no aliasing. `flush` maps
    //   the same file again and drops the old map at once, inside one `&mut self` call:
    //   two maps of the file exist only there, and neither is written while both do.
    unsafe { MmapMut::map_mut(file) }
}

/// Creates `temp` and writes the header and zeros up to `size` bytes. On failure, says
/// which operation failed.
fn preallocate(
    temp: &Path,
    number: u64,
    size: usize,
    rolled: bool,
    durability: Durability,
) -> Result<File, (&'static str, std::io::Error)> {
    // A leftover temp file of this number belongs to a writer that crashed while
    // preallocating (we hold the lock now): start over.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .map_err(|e| ("create", e))?;
    let header = frame::encode_header(number, size as u64, rolled);
    let zeros = vec![0u8; ZERO_CHUNK.min(size)];
    file.write_all(&header)
        .map_err(|e| ("write header to", e))?;
    let mut written = header.len();
    while written < size {
        let n = (size - written).min(zeros.len());
        file.write_all(&zeros[..n])
            .map_err(|e| ("preallocate (write zeros to)", e))?;
        written += n;
    }
    if durability == Durability::Msync {
        file.sync_all().map_err(|e| ("fsync", e))?;
    }
    Ok(file)
}

/// Fsyncs a directory, so a file created or renamed in it survives power loss.
fn sync_dir(dir_path: &Path) -> Result<(), LogError> {
    File::open(dir_path)
        .and_then(|d| d.sync_all())
        .map_err(|source| LogError::io("fsync directory", dir_path, source))
}

/// Whether an I/O error means the disk (or quota) is full.
fn is_no_space(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_space_errors_are_recognised() {
        assert!(is_no_space(&std::io::Error::from_raw_os_error(28))); // ENOSPC
        assert!(is_no_space(&std::io::Error::from_raw_os_error(122))); // EDQUOT
        assert!(!is_no_space(&std::io::Error::from_raw_os_error(13))); // EACCES
    }

    #[test]
    fn created_segment_is_full_size_with_header_and_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let size = 3 * ZERO_CHUNK as u64 / 2;
        let mut segment = Segment::create(dir.path(), 5, size, false, Durability::Msync).unwrap();
        assert_eq!(segment.number(), 5);
        assert_eq!(segment.remaining(), size as usize - HEADER_LEN);
        assert_eq!(segment.append(3, b"hello"), HEADER_LEN as u64);
        segment.flush().unwrap();
        let bytes = std::fs::read(dir::segment_path(dir.path(), 5)).unwrap();
        assert_eq!(bytes.len() as u64, size);
        assert_eq!(
            frame::check_header(&bytes, 5).map(|header| header.size),
            Ok(Some(size))
        );
        assert!(matches!(
            frame::read_frame(frame::Format::V2, &bytes, HEADER_LEN),
            frame::Read::Entry {
                kind: 3,
                payload: b"hello",
                ..
            }
        ));
        assert!(bytes[HEADER_LEN + FRAME_HEADER_LEN + 5..]
            .iter()
            .all(|b| *b == 0));
        assert!(!dir::temp_path(dir.path(), 5).exists());
    }

    /// A flush maps the segment afresh: appends before and after it land in one file, in
    /// order, and a flush with nothing new is a no-op.
    #[test]
    fn appends_continue_across_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(
            dir.path(),
            1,
            2 * ZERO_CHUNK as u64,
            false,
            Durability::Msync,
        )
        .unwrap();
        let payloads: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i + 1; 5000]).collect();
        let mut offsets = Vec::new();
        for payload in &payloads {
            offsets.push(segment.append(2, payload));
            segment.flush().unwrap();
            segment.flush().unwrap();
        }
        let bytes = std::fs::read(dir::segment_path(dir.path(), 1)).unwrap();
        for (payload, offset) in payloads.iter().zip(offsets) {
            match frame::read_frame(frame::Format::V2, &bytes, offset as usize) {
                frame::Read::Entry {
                    kind: 2,
                    payload: read,
                    ..
                } => assert_eq!(read, payload.as_slice()),
                _ => panic!("no entry at {offset}"),
            }
        }
    }
}
