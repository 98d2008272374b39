//! The `MANIFEST` file: which segments the log directory should hold, recorded outside
//! the segments, so that deleted segments (the newest, or all of them) are found missing
//! rather than taken for a shorter log or a fresh directory.
//!
//! ```text
//! magic  8 bytes  b"RIVMAN01"
//! first  u64 LE   the oldest segment not removed by the writer
//! last   u64 LE   the newest segment the writer created
//! crc    u32 LE   crc32 over the 24 bytes above
//! ```
//!
//! The writer rewrites the file in place, one 28-byte write at offset 0 (`fdatasync`ed
//! with [`Durability::Msync`]), after it creates a segment and before it removes the
//! oldest ones, so at every instant every segment in `first..=last` exists unless
//! something outside rivulet removed it. Segments above `last` (created just before a
//! crash) and below `first` (retention interrupted by a crash) are not damage.
//!
//! In place, not a temporary file renamed over it: on ext4, renaming over an existing
//! file makes the kernel start writing the new file back at once (`auto_da_alloc`), a
//! disk write per segment even with [`Durability::OsBuffered`]; measured, that made a
//! test with 256-byte segments 15 times slower. A write of 28 bytes at the start of a
//! file lies in one disk sector, which disks write whole; should one be torn all the
//! same, the CRC finds it and the scan reports [`Problem::Manifest`] (damage, never a
//! silently wrong range).
//!
//! [`Problem::Manifest`]: super::Problem::Manifest

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Durability, LogError};

/// Name of the manifest file in a log directory.
pub(super) const MANIFEST_FILE: &str = "MANIFEST";
const MAGIC: [u8; 8] = *b"RIVMAN01";
const LEN: usize = 28;

/// The range of segments a log directory should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Manifest {
    /// The oldest segment not removed.
    pub(super) first: u64,
    /// The newest segment created.
    pub(super) last: u64,
}

impl Manifest {
    fn encode(self) -> [u8; LEN] {
        let mut bytes = [0u8; LEN];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..16].copy_from_slice(&self.first.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.last.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..24]);
        bytes[24..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Decodes the file's bytes; `Err` says what is wrong with them.
    fn decode(bytes: &[u8]) -> Result<Manifest, String> {
        if bytes.len() != LEN {
            return Err(format!("it is {} bytes long, not {LEN}", bytes.len()));
        }
        if bytes[..8] != MAGIC {
            return Err("it does not start with \"RIVMAN01\"".to_string());
        }
        let crc = u32::from_le_bytes(bytes[24..].try_into().expect("4 bytes"));
        if crc != crc32fast::hash(&bytes[..24]) {
            return Err("its CRC does not match".to_string());
        }
        let first = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let last = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        if first > last {
            return Err(format!("it names segments {first} to {last}"));
        }
        Ok(Manifest { first, last })
    }
}

/// The manifest's path in `dir`.
pub(super) fn path(dir: &Path) -> PathBuf {
    dir.join(MANIFEST_FILE)
}

/// Reads the manifest of `dir`: `Ok(None)` if there is none (a new directory, or one
/// written before manifests existed), `Err` with what is wrong if it cannot be read or
/// decoded.
pub(super) fn read(dir: &Path) -> Result<Option<Manifest>, String> {
    match std::fs::read(path(dir)) {
        Ok(bytes) => Manifest::decode(&bytes).map(Some),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error.to_string()),
    }
}

/// The manifest file of a log directory, open for rewriting.
#[derive(Debug)]
pub(super) struct ManifestFile {
    file: File,
    path: PathBuf,
    durability: Durability,
}

impl ManifestFile {
    /// Opens the manifest of `dir`, creating it (empty, until [`write`](Self::write)) if
    /// missing; a created file's directory entry is fsynced with [`Durability::Msync`].
    pub(super) fn open(dir: &Path, durability: Durability) -> Result<ManifestFile, LogError> {
        let path = path(dir);
        let existed = path.exists();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| LogError::io("open manifest", &path, source))?;
        if !existed && durability == Durability::Msync {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|source| LogError::io("fsync directory", dir, source))?;
        }
        Ok(ManifestFile {
            file,
            path,
            durability,
        })
    }

    /// Records `manifest`: one write at offset 0 (and `fdatasync` with
    /// [`Durability::Msync`]).
    pub(super) fn write(&mut self, manifest: Manifest) -> Result<(), LogError> {
        self.file
            .write_all_at(&manifest.encode(), 0)
            .map_err(|source| LogError::io("write manifest", &self.path, source))?;
        // A manifest of another length (none is written) would not decode: cut to size.
        self.file
            .set_len(LEN as u64)
            .map_err(|source| LogError::io("write manifest", &self.path, source))?;
        if self.durability == Durability::Msync {
            self.file
                .sync_data()
                .map_err(|source| LogError::io("fdatasync manifest", &self.path, source))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), Ok(None));
        let manifest = Manifest { first: 3, last: 9 };
        let mut file = ManifestFile::open(dir.path(), Durability::Msync).unwrap();
        file.write(manifest).unwrap();
        assert_eq!(read(dir.path()), Ok(Some(manifest)));
        let newer = Manifest { first: 4, last: 12 };
        file.write(newer).unwrap();
        drop(file);
        let mut file = ManifestFile::open(dir.path(), Durability::OsBuffered).unwrap();
        assert_eq!(read(dir.path()), Ok(Some(newer)));
        file.write(manifest).unwrap();
        assert_eq!(read(dir.path()), Ok(Some(manifest)));
        let bytes = std::fs::read(path(dir.path())).unwrap();
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x21;
            assert!(Manifest::decode(&damaged).is_err(), "byte {at}");
        }
        assert!(Manifest::decode(&bytes[..20])
            .unwrap_err()
            .contains("20 bytes"));
        let backwards = Manifest { first: 5, last: 4 }.encode();
        assert!(Manifest::decode(&backwards).is_err());
    }
}
