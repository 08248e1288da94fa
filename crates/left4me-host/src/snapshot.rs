//! Files overlays as immutable layers. The panel's file manager edits an
//! overlay's working copy (`overlays/PATH`); a server start mounts a
//! published snapshot of it (`overlay-versions/PATH/v/N`), so an edit
//! applies at the next start and never changes a layer under a running
//! server.
//!
//! A snapshot is a tree of hard links to the working copy's files: it
//! costs metadata, not data. That is safe because nothing writes into a
//! working copy's file in place: `left4me-files` replaces a file by
//! writing a new one and renaming it over (a new inode), and deletes by
//! unlinking, so the snapshot keeps the old file. A start whose working
//! copy did not change since the last snapshot reuses it.

use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::layer::OverlayPath;
use crate::layout::StateRoot;
use crate::versions::Version;

/// The overlay's current snapshot, made anew if its working copy changed.
pub fn snapshot_overlay(root: &StateRoot, path: &OverlayPath) -> io::Result<Version> {
    // One snapshot of an overlay at a time: two starts sharing it.
    let lock = crate::lock::open_lock_file(&root.locks().join("overlays.lock"))?;
    lock.lock()?;
    let working = root.overlay(path);
    let versions = root.overlay_versions(path);
    let print = fingerprint(&working)?;
    if let Some(current) = versions.current_info()?
        && current.build_id.as_deref() == Some(print.as_str())
    {
        return Ok(current.version);
    }
    versions.clean()?;
    let info = versions.publish_tree(Some(print), |dir| link_tree(&working, dir))?;
    Ok(info.version)
}

/// What changes when a working copy changes: every entry's path, type,
/// size, modification time and inode. (The hash is std's, stable within
/// a build: after an upgrade one extra snapshot at most.)
fn fingerprint(dir: &Path) -> io::Result<String> {
    let mut hasher = std::hash::DefaultHasher::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&current)?.collect::<io::Result<_>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let meta = entry.metadata()?;
            entry
                .path()
                .strip_prefix(dir)
                .expect("below")
                .hash(&mut hasher);
            (
                meta.mode(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ino(),
            )
                .hash(&mut hasher);
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(format!("files:{:016x}", hasher.finish()))
}

/// Recreates `from`'s directories below `to` and hard-links its files
/// (copies them across filesystems); symlinks are copied as links.
fn link_tree(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            std::fs::create_dir(&target)?;
            link_tree(&source, &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else if kind.is_file() {
            match std::fs::hard_link(&source, &target) {
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
                    std::fs::copy(&source, &target).map(drop)?;
                }
                other => other?,
            }
        }
    }
    Ok(())
}
