//! `OverlayFiles`: every file operation of the web panel on one overlay.
//!
//! The overlay directory is opened once; every path is then resolved
//! relative to that descriptor with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`, and every change is made
//! with an `*at` call on a single name inside an already opened directory.
//! So no string path is ever handed to the kernel from the outside, a
//! symlink anywhere stops the operation instead of redirecting it, and a
//! rename of the overlay directory itself cannot redirect us either.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use crate::atomic::{CopyError, TempFile, copy_limited};
use crate::error::FilesError;
use crate::path::RelPath;
use crate::sys;

/// `walk` (and so `write_zip`) gives up beyond this many entries, so one
/// request cannot make the panel list an unbounded tree.
pub const MAX_WALK_ENTRIES: usize = 100_000;

/// What a directory entry is. Devices, FIFOs and sockets are shown as
/// `File` (they cannot be created through this crate); opening one fails
/// with [`FilesError::NotAFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    /// Listed so the user can see and remove it, but never followed.
    Symlink,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub path: RelPath,
    pub name: String,
    pub kind: EntryKind,
    /// Bytes for files; the length of the link text for symlinks; 0 for
    /// directories (their `st_size` means nothing to a user).
    pub size: u64,
    /// Last modification, Unix seconds.
    pub modified: i64,
}

/// File operations confined to one overlay directory.
#[derive(Debug)]
pub struct OverlayFiles {
    /// Opened `O_RDONLY | O_DIRECTORY`, so it can also be fsynced after a
    /// file is replaced at the top level.
    root: OwnedFd,
    dir: PathBuf,
}

impl OverlayFiles {
    /// Opens the overlay directory. It must exist and be a real directory:
    /// a symlink as its last component is refused. (The components above it
    /// come from the state root layout, not from users.)
    pub fn open(dir: &Path) -> Result<Self, FilesError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let root = rustix::fs::open(dir, flags, Mode::empty()).map_err(|errno| {
            let context = format!("cannot open overlay directory {}", dir.display());
            // With O_NOFOLLOW | O_DIRECTORY a symlink fails as ENOTDIR (or
            // ELOOP); say which it was, for whoever reads the log.
            let is_link = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_symlink());
            match errno {
                Errno::LOOP | Errno::NOTDIR if is_link => {
                    FilesError::io(context, io::Error::other("it is a symbolic link"))
                }
                _ => FilesError::io(context, errno),
            }
        })?;
        Ok(Self {
            root,
            dir: dir.to_owned(),
        })
    }

    /// Like [`open`](Self::open), creating the directory (and its parents)
    /// first if it does not exist: a new overlay's directory appears with
    /// its first file.
    pub fn create(dir: &Path) -> Result<Self, FilesError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| FilesError::io(format!("cannot create {}", dir.display()), e))?;
        Self::open(dir)
    }

    /// The directory this was opened from, for messages and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entries of one directory: directories first, then by name.
    ///
    /// Names that cannot be expressed as a [`RelPath`] (not UTF-8, control
    /// characters, backslashes) are left out: no other call could address
    /// them anyway.
    pub fn list(&self, dir: &RelPath) -> Result<Vec<Entry>, FilesError> {
        let fd = self.open_dir(dir)?;
        let mut entries = read_entries(fd, dir)?;
        entries.sort_by(|a, b| {
            (a.kind != EntryKind::Dir)
                .cmp(&(b.kind != EntryKind::Dir))
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(entries)
    }

    /// The whole tree, depth-first: each directory is followed by its
    /// contents, every level sorted like [`list`](Self::list). Symlinks are
    /// listed, never descended into. More than [`MAX_WALK_ENTRIES`] entries
    /// is an error.
    pub fn walk(&self) -> Result<Vec<Entry>, FilesError> {
        self.walk_limited(MAX_WALK_ENTRIES)
    }

    fn walk_limited(&self, limit: usize) -> Result<Vec<Entry>, FilesError> {
        let mut out = Vec::new();
        self.walk_into(&RelPath::root(), &mut out, limit)?;
        Ok(out)
    }

    /// One level of [`walk`](Self::walk). Each directory is listed and
    /// closed before descending, so depth costs no descriptors.
    fn walk_into(
        &self,
        dir: &RelPath,
        out: &mut Vec<Entry>,
        limit: usize,
    ) -> Result<(), FilesError> {
        let entries = match self.list(dir) {
            // A subdirectory removed or replaced while walking: skip it.
            Err(
                FilesError::NotFound(_) | FilesError::NotADirectory(_) | FilesError::Symlink(_),
            ) if !dir.is_root() => return Ok(()),
            other => other?,
        };
        for entry in entries {
            if out.len() >= limit {
                return Err(FilesError::TooManyEntries { limit });
            }
            let subdir = (entry.kind == EntryKind::Dir).then(|| entry.path.clone());
            out.push(entry);
            if let Some(subdir) = subdir {
                self.walk_into(&subdir, out, limit)?;
            }
        }
        Ok(())
    }

    /// Reads a whole file, refusing one larger than `max_bytes` (checked
    /// before reading and again while reading, in case it grows).
    pub fn read(&self, file: &RelPath, max_bytes: u64) -> Result<Vec<u8>, FilesError> {
        let (opened, size) = self.open_file(file)?;
        let too_large = || FilesError::FileTooLarge {
            path: file.clone(),
            limit: max_bytes,
        };
        if size > max_bytes {
            return Err(too_large());
        }
        let mut contents = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        opened
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut contents)
            .map_err(|e| FilesError::io(format!("cannot read \"{file}\""), e))?;
        if contents.len() as u64 > max_bytes {
            return Err(too_large());
        }
        Ok(contents)
    }

    /// Opens a regular file for reading, e.g. to stream a download.
    pub fn open_read(&self, file: &RelPath) -> Result<File, FilesError> {
        self.open_file(file).map(|(opened, _)| opened)
    }

    /// Replaces (or creates) `file` with `contents` atomically, creating
    /// missing parent directories.
    pub fn write(&self, file: &RelPath, contents: &[u8]) -> Result<(), FilesError> {
        self.replace_file(file, |out| {
            out.write_all(contents)
                .map(|()| contents.len() as u64)
                .map_err(|e| FilesError::io(format!("cannot write \"{file}\""), e))
        })
        .map(drop)
    }

    /// Like [`write`](Self::write), streaming from `reader`; more than
    /// `max_bytes` aborts with [`FilesError::FileTooLarge`] and leaves the
    /// old file (or no file) in place. Returns the number of bytes written.
    pub fn write_from(
        &self,
        file: &RelPath,
        reader: &mut dyn Read,
        max_bytes: u64,
    ) -> Result<u64, FilesError> {
        self.replace_file(file, |out| {
            copy_limited(reader, out, max_bytes).map_err(|e| match e {
                CopyError::TooLarge => FilesError::FileTooLarge {
                    path: file.clone(),
                    limit: max_bytes,
                },
                CopyError::Read(e) => FilesError::io(format!("cannot receive \"{file}\""), e),
                CopyError::Write(e) => FilesError::io(format!("cannot write \"{file}\""), e),
            })
        })
    }

    /// Creates a directory and its missing parents, like `mkdir -p`. An
    /// existing directory is fine; an existing file or symlink anywhere on
    /// the way is an error.
    pub fn mkdir(&self, dir: &RelPath) -> Result<(), FilesError> {
        self.ensure_dir(dir).map(drop)
    }

    /// Moves a file, symlink (the link itself) or directory. An existing
    /// target is never replaced (`RENAME_NOREPLACE`), a directory cannot be
    /// moved into itself, and missing parents of the target are created.
    pub fn rename(&self, from: &RelPath, to: &RelPath) -> Result<(), FilesError> {
        let (from_parent, from_name) = from.split_parent("move")?;
        let (to_parent, to_name) = to.split_parent("replace")?;
        if to == from {
            return Err(FilesError::AlreadyExists(to.clone()));
        }
        let from_dir = self.open_dir(&from_parent)?;
        let from_stat = require_entry(from_dir.as_fd(), from_name, from)?;
        if sys::file_type(&from_stat) == FileType::Directory && to.is_inside(from) {
            return Err(FilesError::MoveIntoItself {
                from: from.clone(),
                to: to.clone(),
            });
        }
        let context = || format!("cannot move \"{from}\" to \"{to}\"");
        self.with_parent_dirs(&to_parent, |to_dir| {
            rustix::fs::renameat_with(
                &from_dir,
                from_name,
                to_dir,
                to_name,
                RenameFlags::NOREPLACE,
            )
            .map_err(|e| match e {
                Errno::EXIST => FilesError::AlreadyExists(to.clone()),
                Errno::NOENT => FilesError::NotFound(from.clone()),
                _ => FilesError::io(context(), e),
            })?;
            rustix::fs::fsync(to_dir).map_err(|e| FilesError::io(context(), e))
        })?;
        rustix::fs::fsync(&from_dir).map_err(|e| FilesError::io(context(), e))
    }

    /// Removes a file, a symlink (the link, not its target) or a whole
    /// directory tree. The root itself is refused.
    pub fn remove(&self, path: &RelPath) -> Result<(), FilesError> {
        let (parent, name) = path.split_parent("remove")?;
        let dir = self.open_dir(&parent)?;
        let context = || format!("cannot remove \"{path}\"");
        let stat = require_entry(dir.as_fd(), name, path)?;
        if sys::file_type(&stat) == FileType::Directory {
            let c_name = std::ffi::CString::new(name).map_err(|e| FilesError::io(context(), e))?;
            sys::remove_tree(dir.as_fd(), &c_name, 0).map_err(|e| FilesError::io(context(), e))?;
        } else {
            match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
                Ok(()) => {}
                Err(Errno::NOENT) => return Err(FilesError::NotFound(path.clone())),
                Err(e) => return Err(FilesError::io(context(), e)),
            }
        }
        rustix::fs::fsync(&dir).map_err(|e| FilesError::io(context(), e))
    }

    /// What `path` is, without following a symlink at its end; `None` when
    /// it does not exist. A symlink or file on the way is an error.
    pub(crate) fn probe(&self, path: &RelPath) -> Result<Option<FileType>, FilesError> {
        match sys::open_path_nofollow(self.root.as_fd(), path.as_fs_path()) {
            Ok(fd) => rustix::fs::fstat(&fd)
                .map(|stat| Some(sys::file_type(&stat)))
                .map_err(|e| FilesError::io(format!("cannot examine \"{path}\""), e)),
            Err(Errno::NOENT) => Ok(None),
            Err(errno) => Err(self.open_error(path, errno)),
        }
    }

    /// Opens a directory (for listing, or as the parent of an `*at` call).
    fn open_dir(&self, dir: &RelPath) -> Result<OwnedFd, FilesError> {
        self.open_beneath(dir, OFlags::RDONLY | OFlags::DIRECTORY)
    }

    /// Opens a regular file for reading and returns its size.
    ///
    /// `O_NONBLOCK` keeps a planted FIFO from hanging the open; it is
    /// cleared again once the descriptor is known to be a regular file.
    pub(crate) fn open_file(&self, file: &RelPath) -> Result<(File, u64), FilesError> {
        if file.is_root() {
            return Err(FilesError::IsADirectory(file.clone()));
        }
        let fd = self.open_beneath(file, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY)?;
        let context = || format!("cannot read \"{file}\"");
        let stat = rustix::fs::fstat(&fd).map_err(|e| FilesError::io(context(), e))?;
        match sys::file_type(&stat) {
            FileType::RegularFile => {}
            FileType::Directory => return Err(FilesError::IsADirectory(file.clone())),
            _ => return Err(FilesError::NotAFile(file.clone())),
        }
        let flags = rustix::fs::fcntl_getfl(&fd).map_err(|e| FilesError::io(context(), e))?;
        rustix::fs::fcntl_setfl(&fd, flags.difference(OFlags::NONBLOCK))
            .map_err(|e| FilesError::io(context(), e))?;
        Ok((File::from(fd), sys::stat_size(&stat)))
    }

    /// The one place user paths are resolved from the root.
    fn open_beneath(&self, path: &RelPath, flags: OFlags) -> Result<OwnedFd, FilesError> {
        sys::open_beneath(self.root.as_fd(), path.as_fs_path(), flags, 0)
            .map_err(|errno| self.open_error(path, errno))
    }

    /// Turns a failed lookup of `path` into an error that names the
    /// component at fault where that can be found out.
    fn open_error(&self, path: &RelPath, errno: Errno) -> FilesError {
        match errno {
            Errno::NOENT => FilesError::NotFound(path.clone()),
            Errno::LOOP => self
                .diagnose(path)
                .unwrap_or_else(|| FilesError::Symlink(path.clone())),
            Errno::NOTDIR => self
                .diagnose(path)
                .unwrap_or_else(|| FilesError::NotADirectory(path.clone())),
            Errno::XDEV => FilesError::invalid(path, "the path leads outside the overlay"),
            _ => FilesError::io(format!("cannot open \"{path}\""), errno),
        }
    }

    /// Finds the first component of `path` that is missing, a symlink, or
    /// a non-directory with more path after it. Only used to word an
    /// error; it looks with `O_PATH | O_NOFOLLOW`, so it follows nothing.
    fn diagnose(&self, path: &RelPath) -> Option<FilesError> {
        let prefixes = path.prefixes();
        let last = prefixes.len().saturating_sub(1);
        for (index, prefix) in prefixes.into_iter().enumerate() {
            let kind = match sys::open_path_nofollow(self.root.as_fd(), prefix.as_str()) {
                Ok(fd) => sys::file_type(&rustix::fs::fstat(&fd).ok()?),
                Err(Errno::NOENT) => return Some(FilesError::NotFound(prefix)),
                Err(_) => return None,
            };
            match kind {
                FileType::Symlink => return Some(FilesError::Symlink(prefix)),
                FileType::Directory => {}
                _ if index < last => return Some(FilesError::NotADirectory(prefix)),
                _ => {}
            }
        }
        None
    }

    /// `mkdir -p`, one component at a time relative to the previous
    /// directory's descriptor, so nothing is resolved twice and a symlink or
    /// file anywhere on the way stops it. Returns the final directory and
    /// the directories that did not exist before.
    fn ensure_dir(&self, dir: &RelPath) -> Result<(OwnedFd, Vec<RelPath>), FilesError> {
        let mut current = self.open_dir(&RelPath::root())?;
        let mut created = Vec::new();
        let mut prefix = RelPath::root();
        for name in dir.components() {
            prefix = prefix.join(name)?;
            let existed = sys::lstat_at(current.as_fd(), name).is_ok();
            current = sys::make_subdir(current.as_fd(), name).map_err(|e| match e {
                Errno::LOOP => FilesError::Symlink(prefix.clone()),
                Errno::NOTDIR => FilesError::NotADirectory(prefix.clone()),
                Errno::NOENT => FilesError::NotFound(prefix.clone()),
                _ => FilesError::io(format!("cannot create directory \"{prefix}\""), e),
            })?;
            if !existed {
                created.push(prefix.clone());
            }
        }
        Ok((current, created))
    }

    /// Runs `action` in the directory `dir`, creating it if needed; if the
    /// action fails, directories created for it are removed again (only if
    /// still empty), so a failed write leaves nothing behind.
    fn with_parent_dirs<T>(
        &self,
        dir: &RelPath,
        action: impl FnOnce(BorrowedFd<'_>) -> Result<T, FilesError>,
    ) -> Result<T, FilesError> {
        let (fd, created) = self.ensure_dir(dir)?;
        let result = action(fd.as_fd());
        if result.is_err() {
            drop(fd);
            self.remove_empty_dirs(&created);
        }
        result
    }

    /// Best-effort `rmdir` of `dirs`, deepest first; a directory someone
    /// else filled in the meantime stays.
    fn remove_empty_dirs(&self, dirs: &[RelPath]) {
        for dir in dirs.iter().rev() {
            let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
                continue;
            };
            if let Ok(parent_fd) = self.open_dir(&parent) {
                let _ = rustix::fs::unlinkat(&parent_fd, name, AtFlags::REMOVEDIR);
            }
        }
    }

    /// Atomically replaces `file` with what `fill` writes into a temp file
    /// next to it (see [`crate::atomic`]). Refuses before writing anything
    /// when the target is a directory, a symlink or a special file.
    pub(crate) fn replace_file(
        &self,
        file: &RelPath,
        fill: impl FnOnce(&mut File) -> Result<u64, FilesError>,
    ) -> Result<u64, FilesError> {
        let (parent, name) = file.split_parent("write")?;
        self.with_parent_dirs(&parent, |dir| {
            check_replaceable(dir, name, file)?;
            let mut temp = TempFile::create(dir, file)?;
            let written = fill(temp.file())?;
            temp.commit(name)?;
            Ok(written)
        })
    }
}

/// `lstat` of `name` in `dir`; missing is [`FilesError::NotFound`].
fn require_entry(
    dir: BorrowedFd<'_>,
    name: &str,
    path: &RelPath,
) -> Result<rustix::fs::Stat, FilesError> {
    sys::lstat_at(dir, name).map_err(|e| match e {
        Errno::NOENT => FilesError::NotFound(path.clone()),
        _ => FilesError::io(format!("cannot examine \"{path}\""), e),
    })
}

/// A file may be replaced if it is absent or a regular file; replacing a
/// symlink would silently turn a link into a file, so that is refused too.
fn check_replaceable(dir: BorrowedFd<'_>, name: &str, file: &RelPath) -> Result<(), FilesError> {
    let stat = match sys::lstat_at(dir, name) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(FilesError::io(format!("cannot examine \"{file}\""), e)),
    };
    match sys::file_type(&stat) {
        FileType::RegularFile => Ok(()),
        FileType::Directory => Err(FilesError::IsADirectory(file.clone())),
        FileType::Symlink => Err(FilesError::Symlink(file.clone())),
        _ => Err(FilesError::NotAFile(file.clone())),
    }
}

/// Reads the entries of an open directory; `lstat` per entry, so symlinks
/// are reported as such. Entries that vanish meanwhile are skipped.
fn read_entries(fd: OwnedFd, dir: &RelPath) -> Result<Vec<Entry>, FilesError> {
    let context = || format!("cannot list \"{dir}\"");
    let mut reader = Dir::new(fd).map_err(|e| FilesError::io(context(), e))?;
    let mut entries = Vec::new();
    while let Some(item) = reader.read() {
        let item = item.map_err(|e| FilesError::io(context(), e))?;
        let Ok(name) = item.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        let Ok(path) = dir.join(name) else {
            continue;
        };
        let dir_fd = reader.fd().map_err(|e| FilesError::io(context(), e))?;
        let stat = match sys::lstat_at(dir_fd, name) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(FilesError::io(context(), e)),
        };
        entries.push(entry_from_stat(path, name, &stat));
    }
    Ok(entries)
}

fn entry_from_stat(path: RelPath, name: &str, stat: &rustix::fs::Stat) -> Entry {
    let kind = match sys::file_type(stat) {
        FileType::Directory => EntryKind::Dir,
        FileType::Symlink => EntryKind::Symlink,
        _ => EntryKind::File,
    };
    Entry {
        path,
        name: name.to_owned(),
        kind,
        size: if kind == EntryKind::Dir {
            0
        } else {
            sys::stat_size(stat)
        },
        modified: sys::stat_mtime(stat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound itself is tested small; 100 000 real files take too long
    /// to create for a unit test.
    #[test]
    fn walk_is_bounded() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(base.path().join("a/b")).unwrap();
        std::fs::write(base.path().join("a/b/c"), b"").unwrap();
        std::fs::write(base.path().join("d"), b"").unwrap();
        let files = OverlayFiles::open(base.path()).unwrap();
        assert_eq!(files.walk_limited(4).unwrap().len(), 4);
        assert!(matches!(
            files.walk_limited(3),
            Err(FilesError::TooManyEntries { limit: 3 })
        ));
        assert_eq!(MAX_WALK_ENTRIES, 100_000);
    }

    /// The web panel shares one `OverlayFiles` between request tasks.
    #[test]
    fn overlay_files_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<OverlayFiles>();
    }
}
