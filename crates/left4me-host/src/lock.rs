//! One lock per instance, so two operations on it never interleave.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::name::InstanceName;

/// How long a held lock is waited for before the instance counts as busy.
const BUSY_GRACE: Duration = Duration::from_millis(250);

/// Held for the length of an operation; released on drop (and by the
/// kernel if the process dies, so a killed CLI never leaves it stuck).
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("instance {0} is busy: another operation on it is running; try again when it ends")]
    Busy(InstanceName),
    #[error("cannot open lock file {path}: {error}")]
    Io {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
}

impl InstanceLock {
    pub fn try_acquire(name: &InstanceName, path: &Path) -> Result<Self, LockError> {
        let io = |error| LockError::Io {
            path: path.to_owned(),
            error,
        };
        let file = open_lock_file(path).map_err(io)?;
        // A child forked by another thread shares the lock's open file
        // until it execs, so a lock just released can look held for a few
        // milliseconds: only a lock held past a short grace is "busy".
        let deadline = Instant::now() + BUSY_GRACE;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TryLockError::WouldBlock) => return Err(LockError::Busy(name.clone())),
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
    }
}

/// Whether some process holds an exclusive lock on `path` right now.
pub fn is_locked(path: &Path) -> std::io::Result<bool> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Opens (creating it and its directory) a file that is only ever locked.
pub fn open_lock_file(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// An exclusive lock on `path` if nobody holds one (`None` otherwise);
/// released when the file is dropped or the process dies.
pub fn try_lock_file(path: &Path) -> std::io::Result<Option<File>> {
    let file = open_lock_file(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// The panel's lock on its state root, held while it runs and while
/// `left4me restore` replaces what it works with: `None` when another
/// holds it. Released when dropped or the process dies.
pub fn lock_panel(root: &crate::layout::StateRoot) -> std::io::Result<Option<File>> {
    try_lock_file(&root.panel_lock())
}

/// The installation lock, waited for: shared while a start picks and
/// mounts its layers, exclusive while unused versions are removed.
pub fn lock_installation(
    root: &crate::layout::StateRoot,
    exclusive: bool,
) -> std::io::Result<File> {
    let file = open_lock_file(&root.locks().join("installation.lock"))?;
    if exclusive {
        file.lock()?;
    } else {
        file.lock_shared()?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_told_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/a.lock");
        let name = InstanceName::parse("a").unwrap();
        let held = InstanceLock::try_acquire(&name, &path).unwrap();
        assert!(is_locked(&path).unwrap());
        let err = InstanceLock::try_acquire(&name, &path).unwrap_err();
        assert!(err.to_string().contains("instance a is busy"), "{err}");
        drop(held);
        assert!(!is_locked(&path).unwrap());
        InstanceLock::try_acquire(&name, &path).unwrap();
    }
}
