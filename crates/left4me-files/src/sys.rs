//! Thin wrappers over the `*at` system calls, each relative to a directory
//! descriptor. This is the only module that names resolve flags, so every
//! lookup in the crate refuses symlinks the same way.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// Permissions for new files (the game server may run as another user in
/// the same group, so they stay world-readable; the umask still applies).
pub(crate) const FILE_MODE: u32 = 0o644;
/// Permissions for new directories (the umask still applies).
pub(crate) const DIR_MODE: u32 = 0o755;

/// Opens `path` below `dir`, following no symlink (see `open_beneath`).
pub(crate) fn open_beneath<P: rustix::path::Arg>(
    dir: BorrowedFd<'_>,
    path: P,
    flags: OFlags,
    mode: u32,
) -> rustix::io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let path = path.into_c_str()?;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()));
    open_beneath::open_beneath(dir, path, flags, mode)
}

/// An `O_PATH` descriptor for `path` itself: a symlink as the last
/// component is returned as the link (never followed), a symlink before it
/// fails with `ELOOP`.
pub(crate) fn open_path_nofollow(dir: BorrowedFd<'_>, path: &str) -> rustix::io::Result<OwnedFd> {
    open_beneath(dir, path, OFlags::PATH | OFlags::NOFOLLOW, 0)
}

/// `lstat` of one entry of `dir`; the entry itself is described, a link
/// is not followed.
pub(crate) fn lstat_at<P: rustix::path::Arg>(
    dir: BorrowedFd<'_>,
    name: P,
) -> rustix::io::Result<Stat> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
}

pub(crate) fn file_type(stat: &Stat) -> FileType {
    FileType::from_raw_mode(stat.st_mode)
}

/// `st_size` as an unsigned byte count (it is a `c_long` on some targets).
#[allow(clippy::useless_conversion)]
pub(crate) fn stat_size(stat: &Stat) -> u64 {
    u64::try_from(i64::from(stat.st_size)).unwrap_or(0)
}

/// `st_mtime` in Unix seconds (it is a `c_long` on some targets).
#[allow(clippy::useless_conversion)]
pub(crate) fn stat_mtime(stat: &Stat) -> i64 {
    i64::from(stat.st_mtime)
}

/// `mkdir` one level below `parent` (an existing entry is fine) and open
/// it. Opening with [`BENEATH_NO_LINKS`] and `O_DIRECTORY` is what rejects
/// an existing symlink (`ELOOP`) or file (`ENOTDIR`) of that name.
pub(crate) fn make_subdir(parent: BorrowedFd<'_>, name: &str) -> rustix::io::Result<OwnedFd> {
    match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(DIR_MODE)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(error) => return Err(error),
    }
    open_beneath(parent, name, OFlags::RDONLY | OFlags::DIRECTORY, 0)
}

/// The names in a directory, without `.` and `..`, as raw bytes: names
/// that are not UTF-8 must still be removable.
pub(crate) fn child_names(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut reader = Dir::read_from(dir)?;
    let mut names = Vec::new();
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name();
        if !is_dot_or_dotdot(name) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

fn is_dot_or_dotdot(name: &CStr) -> bool {
    matches!(name.to_bytes(), b"." | b"..")
}

/// A missing entry counts as removed: someone else was faster.
fn ignore_missing(result: rustix::io::Result<()>) -> io::Result<()> {
    match result {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Deepest directory nesting `remove_tree` descends into; each level holds
/// one descriptor open, so the bound keeps a hostile tree from exhausting
/// the process's descriptors.
const MAX_REMOVE_DEPTH: usize = 256;

/// Removes the directory `name` in `parent` with everything in it. Every
/// entry is examined with `lstat` and removed with `unlinkat`, so a symlink
/// inside is removed as a link and its target is never touched.
pub(crate) fn remove_tree(parent: BorrowedFd<'_>, name: &CStr, depth: usize) -> io::Result<()> {
    if depth > MAX_REMOVE_DEPTH {
        return Err(io::Error::other("the directory tree is nested too deeply"));
    }
    let dir = match open_beneath(parent, name, OFlags::RDONLY | OFlags::DIRECTORY, 0) {
        Err(Errno::NOENT) => return Ok(()),
        other => other?,
    };
    for child in child_names(dir.as_fd())? {
        match lstat_at(dir.as_fd(), child.as_c_str()) {
            Ok(stat) if file_type(&stat) == FileType::Directory => {
                remove_tree(dir.as_fd(), &child, depth + 1)?;
            }
            Ok(_) => ignore_missing(rustix::fs::unlinkat(
                &dir,
                child.as_c_str(),
                AtFlags::empty(),
            ))?,
            Err(Errno::NOENT) => {}
            Err(error) => return Err(error.into()),
        }
    }
    ignore_missing(rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR))
}
