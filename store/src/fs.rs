//! Filesystem guard around the engine: the journal directory is created 0700 and every file in it
//! made 0600, and a lock file (holding the owner's pid) makes a second opener fail at once with a
//! clear error instead of waiting on the engine's own lock.

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) with mode 0700, or tightens an existing one to 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|e| Error::io("create journal directory", dir, e))?;
    }
    set_mode(dir, DIR_MODE)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
    if meta.permissions().mode() & 0o777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("restrict permissions of", path, e))?;
    }
    Ok(())
}

/// Makes every directory under `dir` 0700 and every file 0600. The engine creates files with the
/// process umask; the directory being 0700 already keeps others out, this makes it exact.
pub fn restrict_tree(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(|e| Error::io("stat", &path, e))?;
        if ty.is_dir() {
            set_mode(&path, DIR_MODE)?;
            restrict_tree(&path)?;
        } else if ty.is_file() {
            match set_mode(&path, FILE_MODE) {
                // The engine may remove a temporary file between listing and chmod.
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    Ok(())
}

/// Sum of the sizes of all files under `dir`.
pub fn size_of_tree(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of_tree(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// An exclusive advisory lock on `DIR/LOCK`, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join("LOCK");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(|e| Error::io("open lock file", &path, e))?;
        // A lock that names this very process is a passing one: a child this process just forked
        // shares the lock file's descriptor until it execs, so a journal closed and reopened at
        // that moment still finds it held. It is waited out briefly; another holder fails at once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.rewind();
                    let _ = file.read_to_string(&mut holder);
                    let pid = holder.trim().parse().ok();
                    if pid != Some(std::process::id()) || std::time::Instant::now() >= deadline {
                        return Err(Error::Locked { dir: dir.to_path_buf(), pid });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(fs::TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
            }
        }
        file.set_len(0).map_err(|e| Error::io("write lock file", &path, e))?;
        file.rewind().map_err(|e| Error::io("write lock file", &path, e))?;
        write!(file, "{}", std::process::id()).map_err(|e| Error::io("write lock file", &path, e))?;
        Ok(DirLock { _file: file })
    }
}
