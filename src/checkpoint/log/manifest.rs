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
//! The writer replaces the file whole (a temporary file renamed over it, both fsynced
//! with [`Durability::Msync`]) after it creates a segment and before it removes the
//! oldest ones, so at every instant every segment in `first..=last` exists unless
//! something outside rivulet removed it. Segments above `last` (created just before a
//! crash) and below `first` (retention interrupted by a crash) are not damage.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::{Durability, LogError};

/// Name of the manifest file in a log directory.
pub(super) const MANIFEST_FILE: &str = "MANIFEST";
const TEMP_FILE: &str = "MANIFEST.tmp";
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

/// Replaces the manifest of `dir` with `manifest`: a temporary file renamed over it, so a
/// reader sees the old or the new one whole. With [`Durability::Msync`] the file and the
/// directory are fsynced before this returns.
pub(super) fn write(
    dir: &Path,
    manifest: Manifest,
    durability: Durability,
) -> Result<(), LogError> {
    let temp = dir.join(TEMP_FILE);
    let mut file =
        File::create(&temp).map_err(|source| LogError::io("create manifest", &temp, source))?;
    file.write_all(&manifest.encode())
        .map_err(|source| LogError::io("write manifest", &temp, source))?;
    if durability == Durability::Msync {
        file.sync_all()
            .map_err(|source| LogError::io("fsync manifest", &temp, source))?;
    }
    drop(file);
    let target = path(dir);
    std::fs::rename(&temp, &target)
        .map_err(|source| LogError::io("rename manifest into place", &target, source))?;
    if durability == Durability::Msync {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| LogError::io("fsync directory", dir, source))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), Ok(None));
        let manifest = Manifest { first: 3, last: 9 };
        write(dir.path(), manifest, Durability::Msync).unwrap();
        assert_eq!(read(dir.path()), Ok(Some(manifest)));
        assert!(!dir.path().join(TEMP_FILE).exists());
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
