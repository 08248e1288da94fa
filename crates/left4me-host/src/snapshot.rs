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
//!
//! Built overlays (Workshop items, build scripts) have no working copy:
//! their builds publish versions directly ([`publish_built`]), and a start
//! mounts the current one. A deleted overlay has neither a working copy
//! nor a current version ([`forget_overlay`]); its versions go once no
//! server mounts them.

use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::layer::OverlayPath;
use crate::layout::StateRoot;
use crate::versions::Version;

/// The version of the overlay a start mounts: for an edited overlay its
/// current snapshot, made anew if its working copy changed; for a built
/// one its current version.
pub fn snapshot_overlay(root: &StateRoot, path: &OverlayPath) -> io::Result<Version> {
    // One snapshot of an overlay at a time: two starts sharing it.
    let _lock = lock_overlays(root)?;
    let working = root.overlay(path);
    let versions = root.overlay_versions(path);
    if !working.exists() {
        return versions.current()?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("overlay {path} has no published version yet"),
            )
        });
    }
    let print = fingerprint(&working)?;
    if let Some(current) = versions.current_info()?
        && current.build_id.as_deref() == Some(print.as_str())
    {
        return Ok(current.version);
    }
    versions.clean()?;
    let info = versions.publish_tree(Some(print), |dir| {
        crate::fsutil::clone_tree(&working, dir, crate::fsutil::Files::Link)
    })?;
    Ok(info.version)
}

/// Publishes a new version of a built overlay: `fill` writes the layer
/// into an empty directory. Returns the current version unchanged when its
/// `build_id` is the same (the build produced what is already published).
pub fn publish_built(
    root: &StateRoot,
    path: &OverlayPath,
    build_id: &str,
    fill: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<(crate::versions::VersionInfo, bool)> {
    // Shared: unused versions are removed only between starts and builds.
    let _installation = crate::lock::lock_installation(root, false)?;
    let _lock = lock_overlays(root)?;
    let versions = root.overlay_versions(path);
    if let Some(current) = versions.current_info()?
        && current.build_id.as_deref() == Some(build_id)
    {
        return Ok((current, false));
    }
    versions.clean()?;
    Ok((
        versions.publish_tree(Some(build_id.to_owned()), fill)?,
        true,
    ))
}

/// Marks an overlay deleted: its working copy goes now, its versions once
/// no server mounts them (`game::remove_unused_versions`).
pub fn forget_overlay(root: &StateRoot, path: &OverlayPath) -> io::Result<()> {
    let _lock = lock_overlays(root)?;
    crate::fsutil::remove_dir_all_if_exists(&root.overlay(path))?;
    let versions = root.overlay_versions(path);
    match std::fs::remove_file(versions.dir().join("current")) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// True when the overlay's current version is newer than `mounted`: a
/// built overlay was rebuilt since a server started on it.
pub fn is_newer_than(root: &StateRoot, path: &OverlayPath, mounted: Version) -> io::Result<bool> {
    if root.overlay(path).exists() {
        // An edited overlay's snapshots are made by starts, never ahead.
        return Ok(false);
    }
    Ok(root
        .overlay_versions(path)
        .current()?
        .is_some_and(|current| current > mounted))
}

fn lock_overlays(root: &StateRoot) -> io::Result<std::fs::File> {
    let lock = crate::lock::open_lock_file(&root.locks().join("overlays.lock"))?;
    lock.lock()?;
    Ok(lock)
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
