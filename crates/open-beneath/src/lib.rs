//! Opens a path below a directory descriptor without ever following a
//! symlink or leaving the directory: the lookup every left4me crate uses
//! on directories that a less trusted user can write.
//!
//! The kernel does it in one call, `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`. But seccomp filters
//! answer `openat2` with `ENOSYS` when they cannot inspect its flags:
//! systemd's `RestrictSUIDSGID=` and `RestrictRealtime=` do, so the
//! hardened units would fail. Then the path is walked one component at a
//! time with `openat(O_NOFOLLOW)` from descriptors already held, which
//! gives the same answers: `ELOOP` for a symlink, `EXDEV` for an absolute
//! path (and for any `..`), and no escape through a concurrent rename.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::{Errno, Result};

/// Stay below the starting directory, follow no symlink (not even as the
/// last component) and no `/proc` magic link.
const BENEATH_NO_LINKS: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// The kernel answers `EAGAIN` when a rename elsewhere raced with a
/// `RESOLVE_BENEATH` lookup; retrying a few times is the documented remedy.
const EAGAIN_RETRIES: usize = 8;

/// Opens `path` below `dir` with `flags` (`O_CLOEXEC` is added) and
/// `mode` (for `O_CREAT`). A symlink anywhere in `path` fails with
/// `ELOOP`, except as the last component with `O_PATH | O_NOFOLLOW`,
/// which returns the link itself; an absolute path fails with `EXDEV`, as
/// does a `..` that leaves `dir` (without `openat2`, any `..`).
pub fn open_beneath(dir: BorrowedFd<'_>, path: &Path, flags: OFlags, mode: u32) -> Result<OwnedFd> {
    let flags = flags | OFlags::CLOEXEC;
    let mut attempts = 0;
    loop {
        match rustix::fs::openat2(
            dir,
            path,
            flags,
            Mode::from_raw_mode(mode),
            BENEATH_NO_LINKS,
        ) {
            Err(Errno::AGAIN) if attempts < EAGAIN_RETRIES => attempts += 1,
            Err(Errno::NOSYS) => return walk(dir, path, flags, mode),
            other => return other,
        }
    }
}

/// [`open_beneath`] without `openat2`.
fn walk(dir: BorrowedFd<'_>, path: &Path, flags: OFlags, mode: u32) -> Result<OwnedFd> {
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            Component::RootDir | Component::ParentDir | Component::Prefix(_) => {
                return Err(Errno::XDEV);
            }
        }
    }
    let Some((last, parents)) = names.split_last() else {
        // The directory itself, as openat2 opens "" or ".".
        return rustix::fs::openat(dir, ".", flags, Mode::from_raw_mode(mode));
    };
    let mut held: Option<OwnedFd> = None;
    for name in parents {
        let at = held.as_ref().map_or(dir, AsFd::as_fd);
        let next = rustix::fs::openat(
            at,
            *name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        match FileType::from_raw_mode(rustix::fs::fstat(&next)?.st_mode) {
            FileType::Directory => held = Some(next),
            FileType::Symlink => return Err(Errno::LOOP),
            _ => return Err(Errno::NOTDIR),
        }
    }
    let at = held.as_ref().map_or(dir, AsFd::as_fd);
    // A final symlink is returned only to `O_PATH | O_NOFOLLOW`, as by
    // openat2; anything else gets ELOOP (not ENOTDIR for O_DIRECTORY).
    let link_wanted = flags.contains(OFlags::PATH | OFlags::NOFOLLOW);
    if !link_wanted
        && rustix::fs::statat(at, *last, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
    {
        return Err(Errno::LOOP);
    }
    let fd = rustix::fs::openat(
        at,
        *last,
        flags | OFlags::NOFOLLOW,
        Mode::from_raw_mode(mode),
    )?;
    // A link swapped in after the check, opened by O_PATH: still refused.
    if !link_wanted && FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) == FileType::Symlink
    {
        return Err(Errno::LOOP);
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn dir_fd(path: &Path) -> OwnedFd {
        rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    /// Both ways answer alike: the kernel's lookup and the walk used when
    /// a seccomp filter hides openat2.
    #[test]
    fn the_walk_answers_like_openat2() {
        let base = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = base.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/file"), "x").unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        symlink(outside.path(), root.join("a/out")).unwrap();
        symlink("b/file", root.join("a/link")).unwrap();
        let fd = dir_fd(root);
        let read = OFlags::RDONLY;
        let cases: &[(&str, OFlags, std::result::Result<(), Errno>)] = &[
            ("a/b/file", read, Ok(())),
            ("./a/b/file", read, Ok(())),
            ("a/b", OFlags::PATH | OFlags::DIRECTORY, Ok(())),
            ("a/out/secret", read, Err(Errno::LOOP)),
            ("a/link", read, Err(Errno::LOOP)),
            ("a/link", OFlags::PATH | OFlags::NOFOLLOW, Ok(())),
            ("a/link", OFlags::PATH, Err(Errno::LOOP)),
            ("a/out", OFlags::PATH | OFlags::DIRECTORY, Err(Errno::LOOP)),
            ("a/missing", read, Err(Errno::NOENT)),
            ("a/b/file/x", read, Err(Errno::NOTDIR)),
        ];
        for (path, flags, expected) in cases {
            let path = Path::new(path);
            let kernel = open_beneath(fd.as_fd(), path, *flags, 0).map(drop);
            let walked = walk(fd.as_fd(), path, *flags | OFlags::CLOEXEC, 0).map(drop);
            assert_eq!(kernel, *expected, "openat2 {path:?}");
            assert_eq!(walked, *expected, "walk {path:?}");
        }
        // Stricter than the kernel, which allows a `..` that stays below:
        // left4me's paths never contain one.
        assert_eq!(
            walk(fd.as_fd(), Path::new("a/../a/b/file"), read, 0).map(drop),
            Err(Errno::XDEV)
        );
        let absolute = outside.path().join("secret");
        assert_eq!(
            walk(fd.as_fd(), &absolute, read, 0).map(drop),
            Err(Errno::XDEV)
        );
        assert_eq!(
            open_beneath(fd.as_fd(), &absolute, read, 0).map(drop),
            Err(Errno::XDEV)
        );
    }

    #[test]
    fn the_walk_creates_files_but_not_through_a_dangling_link() {
        let base = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path().join("new"), base.path().join("dangling")).unwrap();
        let fd = dir_fd(base.path());
        let create = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        walk(fd.as_fd(), Path::new("made"), create, 0o600).unwrap();
        assert!(base.path().join("made").is_file());
        assert!(walk(fd.as_fd(), Path::new("dangling"), create, 0o600).is_err());
        assert!(!outside.path().join("new").exists());
    }
}
