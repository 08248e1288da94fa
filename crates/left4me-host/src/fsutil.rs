//! Small filesystem helpers shared by the lifecycle and the supervisor.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `contents` to `path` atomically: a temp file in the same
/// directory, fsync, rename over the target, fsync the directory. A crash
/// leaves either the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "path has no parent directory")
    })?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o640))?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Makes the directory's entries (a rename into it) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Removes a directory tree; a missing directory is success.
/// Puts the directory `replacement` in place of `target` (both on one
/// file system): `target` is moved aside, `replacement` in, and the old
/// one removed. A replace that died between its two moves (nothing in
/// place, the old one aside) is put back first, so a crash loses neither.
pub fn replace_dir(target: &Path, replacement: &Path) -> io::Result<()> {
    let mut name = target.file_name().unwrap_or_default().to_owned();
    name.push(".before-restore");
    let aside = target.with_file_name(name);
    if aside.exists() && !target.exists() {
        std::fs::rename(&aside, target)?;
    }
    remove_dir_all_if_exists(&aside)?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if target.exists() {
        std::fs::rename(target, &aside)?;
    }
    crate::events::fault_point("restore-between-moves");
    std::fs::rename(replacement, target)?;
    remove_dir_all_if_exists(&aside)
}

pub fn remove_dir_all_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes a file; a missing file is success.
pub fn remove_file_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Copies a file atomically (see [`write_atomic`]).
pub fn copy_atomic(from: &Path, to: &Path) -> io::Result<()> {
    write_atomic(to, &std::fs::read(from)?)
}

/// Whether `relative` below `dir` is a regular file, resolved without
/// following any symlink (for root code reading what a less privileged
/// user may write). Missing, or anything but a plain file, means `false`;
/// a symlink on the way or another error is an error, so tampering is
/// loud.
pub fn is_file_beneath(dir: &Path, relative: &Path) -> io::Result<bool> {
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::AsFd;
    let dir_fd = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    match open_beneath::open_beneath(dir_fd.as_fd(), relative, OFlags::PATH | OFlags::NOFOLLOW, 0) {
        Ok(fd) => {
            Ok(rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode).is_file())
        }
        Err(rustix::io::Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// How [`clone_tree`] makes the files of the new tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// New inodes: writing the copy never touches the original.
    Copy,
    /// Hard links (copies across filesystems): metadata only.
    Link,
}

/// Recreates `from` at `to` (created if missing): directories with their
/// modes, symlinks as links, files as `files` says.
pub fn clone_tree(from: &Path, to: &Path, files: Files) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            clone_tree(&source, &target, files)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else if kind.is_file() {
            let linked = match files {
                Files::Copy => false,
                Files::Link => match std::fs::hard_link(&source, &target) {
                    Err(e) if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
                        false
                    }
                    other => other.map(|()| true)?,
                },
            };
            if !linked {
                std::fs::copy(&source, &target)?;
            }
        }
    }
    Ok(())
}

/// The owner of `path`, to hand files back to.
pub fn owner_of(path: &Path) -> io::Result<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    Ok((meta.uid(), meta.gid()))
}

/// Bytes used by the files below `dir` (hard links once each).
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if seen.insert((meta.dev(), meta.ino())) {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_file_beneath_trusts_only_plain_files_and_follows_no_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/file"), "x").unwrap();
        std::fs::write(outside.path().join("file"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("file"), dir.path().join("a/link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("b")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("a/fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let check = |rel: &str| is_file_beneath(dir.path(), Path::new(rel));
        assert!(check("a/file").unwrap());
        assert!(!check("a/missing").unwrap());
        assert!(!check("a/link").unwrap(), "a symlink is not the file");
        assert!(
            !check("a/fifo").unwrap(),
            "nor is a FIFO, and nothing blocks"
        );
        assert!(check("b/file").is_err(), "a symlinked directory is refused");
        assert!(check("../x").is_err(), "and so is leaving the directory");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f.txt");
        write_atomic(&target, b"one").unwrap();
        write_atomic(&target, b"two").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f.txt")]);
    }
}
