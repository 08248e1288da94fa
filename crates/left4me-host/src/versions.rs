//! Layers that never change once published: a new state of the layer is a
//! new version, and a running server keeps the versions it mounted (the
//! kernel leaves a lower layer that changes under a live overlayfs mount
//! undefined).
//!
//! ```text
//! installation/
//!   current          "3": the published version, replaced atomically
//!   v/3.json         version 3: its stack (3 2 1, top first), build id, time
//!   v/3/             its layer: a delta over 2 (whiteouts included), or a full tree
//!   build/4/         a build in progress: upper/, work/, merged/
//! ```
//!
//! A version is a stack of layer directories, top first: a full tree at
//! the bottom and the deltas of later builds above it. Publishing writes
//! the version's description, renames its finished layer into `v/` and
//! then replaces `current`; a crash anywhere leaves the previous version
//! current, and [`VersionedLayer::clean`] removes the leftovers.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{remove_dir_all_if_exists, write_atomic};

/// A version number: 1, 2, ... in publishing order.
pub type Version = u32;

/// What a published version is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: Version,
    /// The layer directories of this version, top first.
    pub stack: Vec<Version>,
    /// Where the contents came from (for the installation, Steam's build id).
    pub build_id: Option<String>,
    /// Unix seconds.
    pub created: i64,
}

/// A versioned layer rooted at `dir` (for example `<root>/installation`).
#[derive(Debug, Clone)]
pub struct VersionedLayer {
    dir: PathBuf,
}

/// A version being built: its future number and the stack it goes on.
#[derive(Debug)]
pub struct Build {
    pub version: Version,
    /// The published version this build starts from (`None`: a full tree).
    pub base: Option<VersionInfo>,
    dir: PathBuf,
}

impl Build {
    /// Where the new layer's contents go (the overlay's upper directory
    /// when building on a base).
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// The build's own directory (`build/N`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the base and the new layer appear together while building.
    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl VersionedLayer {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn versions_dir(&self) -> PathBuf {
        self.dir.join("v")
    }

    fn builds_dir(&self) -> PathBuf {
        self.dir.join("build")
    }

    /// The directory of one layer of the stack.
    pub fn layer_dir(&self, version: Version) -> PathBuf {
        self.versions_dir().join(version.to_string())
    }

    /// The layer's path relative to `base` (the state root), for opening
    /// it beneath the root.
    pub fn layer_relative(dir_relative: &Path, version: Version) -> PathBuf {
        dir_relative.join("v").join(version.to_string())
    }

    fn info_file(&self, version: Version) -> PathBuf {
        self.versions_dir().join(format!("{version}.json"))
    }

    /// The published version, if any.
    pub fn current(&self) -> io::Result<Option<Version>> {
        match std::fs::read_to_string(self.dir.join("current")) {
            Ok(text) => text.trim().parse().map(Some).map_err(|_| {
                invalid(format!(
                    "{}/current: {text:?} is not a version",
                    self.dir.display()
                ))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn info(&self, version: Version) -> io::Result<VersionInfo> {
        let file = self.info_file(version);
        let text = std::fs::read_to_string(&file)?;
        serde_json::from_str(&text).map_err(|e| invalid(format!("{}: {e}", file.display())))
    }

    /// The published version's description.
    pub fn current_info(&self) -> io::Result<Option<VersionInfo>> {
        self.current()?.map(|v| self.info(v)).transpose()
    }

    /// Every version whose description is in `v/`, oldest first.
    pub fn versions(&self) -> io::Result<Vec<Version>> {
        let mut found = numbers_in(&self.versions_dir(), ".json")?;
        found.sort_unstable();
        Ok(found)
    }

    /// Makes a plain directory tree at `dir` (written before layers were
    /// versioned: by hand, or by an older left4me) version 1, by renames
    /// only, so servers that run on it keep running. A crash between the
    /// renames is finished by the next call. A directory that holds both
    /// versions and loose files is refused: which of them is the game?
    pub fn adopt_flat(&self) -> io::Result<()> {
        let adopting = self.dir.with_extension("adopting");
        let fresh = self.dir.with_extension("new");
        if !adopting.exists() && !fresh.exists() {
            let entries: Vec<String> = match std::fs::read_dir(&self.dir) {
                Ok(entries) => entries
                    .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect::<io::Result<_>>()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            let ours = |name: &str| matches!(name, "current" | "v" | "build" | "check.json");
            let loose: Vec<&String> = entries.iter().filter(|n| !ours(n)).collect();
            if loose.is_empty() {
                return Ok(());
            }
            if entries.iter().any(|n| ours(n)) {
                return Err(invalid(format!(
                    "{} holds versions and loose files ({}); move the loose files away",
                    self.dir.display(),
                    loose
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            std::fs::rename(&self.dir, &adopting)?;
        }
        if adopting.exists() {
            remove_dir_all_if_exists(&fresh)?;
            std::fs::create_dir_all(fresh.join("v"))?;
            let info = VersionInfo {
                version: 1,
                stack: vec![1],
                build_id: None,
                created: now(),
            };
            write_atomic(
                &fresh.join("v/1.json"),
                serde_json::to_string_pretty(&info)
                    .expect("a version description serializes")
                    .as_bytes(),
            )?;
            write_atomic(&fresh.join("current"), b"1\n")?;
            std::fs::rename(&adopting, fresh.join("v/1"))?;
        }
        std::fs::rename(&fresh, &self.dir)?;
        Ok(())
    }

    /// Starts a build of the next version on top of the current one
    /// (`on_current`) or as a full tree.
    pub fn begin(&self, on_current: bool) -> io::Result<Build> {
        let taken = [
            numbers_in(&self.versions_dir(), "")?,
            numbers_in(&self.versions_dir(), ".json")?,
            numbers_in(&self.builds_dir(), "")?,
        ];
        let version = taken.iter().flatten().max().map_or(1, |n| n + 1);
        let base = if on_current {
            self.current_info()?
        } else {
            None
        };
        let dir = self.builds_dir().join(version.to_string());
        for sub in ["upper", "work", "merged"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        Ok(Build { version, base, dir })
    }

    /// Publishes a finished build: its upper directory becomes the layer
    /// of the new current version. The build must be unmounted.
    pub fn publish(&self, build: Build, build_id: Option<String>) -> io::Result<VersionInfo> {
        let upper = build.upper();
        let Build { version, base, dir } = build;
        let mut stack = vec![version];
        if let Some(base) = base {
            stack.extend(base.stack);
        }
        let info = VersionInfo {
            version,
            stack,
            build_id,
            created: now(),
        };
        std::fs::create_dir_all(self.versions_dir())?;
        write_atomic(
            &self.info_file(info.version),
            serde_json::to_string_pretty(&info)
                .expect("a version description serializes")
                .as_bytes(),
        )?;
        crate::events::fault_point("publish-described");
        std::fs::rename(upper, self.layer_dir(info.version))?;
        crate::fsutil::sync_dir(&self.versions_dir())?;
        crate::events::fault_point("publish-renamed");
        write_atomic(
            &self.dir.join("current"),
            format!("{}\n", info.version).as_bytes(),
        )?;
        remove_dir_all_if_exists(&dir)?;
        Ok(info)
    }

    /// Publishes a full tree that `fill` writes into the given directory
    /// as the new current version; a failing `fill` publishes nothing.
    pub fn publish_tree(
        &self,
        build_id: Option<String>,
        fill: impl FnOnce(&Path) -> io::Result<()>,
    ) -> io::Result<VersionInfo> {
        let build = self.begin(false)?;
        match fill(&build.upper()) {
            Ok(()) => self.publish(build, build_id),
            Err(e) => {
                self.abandon(build)?;
                Err(e)
            }
        }
    }

    /// Replaces a current version deeper than `max_layers` by one layer
    /// that shows the same tree (see [`flatten`]); the old layers stay
    /// while servers run them. Returns the new version, if it made one.
    pub fn compact(&self, max_layers: usize) -> io::Result<Option<VersionInfo>> {
        let Some(current) = self.current_info()? else {
            return Ok(None);
        };
        if current.stack.len() <= max_layers {
            return Ok(None);
        }
        let layers: Vec<PathBuf> = current.stack.iter().map(|v| self.layer_dir(*v)).collect();
        self.publish_tree(current.build_id, |dir| flatten(&layers, dir))
            .map(Some)
    }

    /// Drops an unfinished build (failed or cancelled): nothing changes.
    pub fn abandon(&self, build: Build) -> io::Result<()> {
        let Build { dir, .. } = build;
        remove_dir_all_if_exists(&dir)
    }

    /// Removes what a crash left: builds in progress (the caller made sure
    /// none runs and nothing is mounted there) and versions that were
    /// never published (described or renamed into `v/` before `current`
    /// moved to them).
    pub fn clean(&self) -> io::Result<()> {
        remove_dir_all_if_exists(&self.builds_dir())?;
        let current = self.current()?;
        for version in self.versions()? {
            if current.is_none_or(|c| version > c) {
                std::fs::remove_file(self.info_file(version))?;
            }
        }
        self.remove_unneeded_layers(&BTreeSet::new())
    }

    /// Removes every version but the current one and those that mounted
    /// servers run, then every layer none of the remaining versions (nor a
    /// mount) needs. `mounted` holds the layers mounted servers use.
    /// Returns the removed versions.
    pub fn remove_unused(&self, mounted: &BTreeSet<Version>) -> io::Result<Vec<Version>> {
        let current = self.current()?;
        let mut removed = Vec::new();
        for version in self.versions()? {
            if Some(version) != current && !mounted.contains(&version) {
                std::fs::remove_file(self.info_file(version))?;
                removed.push(version);
            }
        }
        self.remove_unneeded_layers(mounted)?;
        Ok(removed)
    }

    /// Removes the layers that no described version's stack and no mount
    /// uses.
    fn remove_unneeded_layers(&self, mounted: &BTreeSet<Version>) -> io::Result<()> {
        let mut needed = mounted.clone();
        for version in self.versions()? {
            needed.extend(self.info(version)?.stack);
        }
        for layer in numbers_in(&self.versions_dir(), "")? {
            if !needed.contains(&layer) {
                remove_dir_all_if_exists(&self.layer_dir(layer))?;
                crate::fsutil::remove_file_if_exists(&self.size_file(layer))?;
            }
        }
        Ok(())
    }

    fn size_file(&self, layer: Version) -> PathBuf {
        self.versions_dir().join(format!("{layer}.bytes"))
    }

    /// Bytes the layers on disk use, each layer walked once and its size
    /// remembered beside it (a layer never changes). Hard links shared by
    /// a flattened layer and the layers it replaced count twice while both
    /// exist.
    pub fn disk_bytes(&self) -> io::Result<u64> {
        let mut total = 0;
        for layer in numbers_in(&self.versions_dir(), "")? {
            let file = self.size_file(layer);
            let bytes = match std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                Some(bytes) => bytes,
                None => {
                    let bytes = crate::fsutil::disk_usage(&self.layer_dir(layer));
                    // Best effort: a reader without write access walks again.
                    let _ = write_atomic(&file, bytes.to_string().as_bytes());
                    bytes
                }
            };
            total += bytes;
        }
        Ok(total)
    }
}

/// Writes the tree that `layers` (top first, overlayfs's format: whiteouts
/// as 0/0 character devices, opaque directories by their xattr) show
/// together into `target`, its files as hard links to the layers' own:
/// a deep stack becomes one layer for the cost of its metadata. Safe
/// because published layers never change.
pub fn flatten(layers: &[PathBuf], target: &Path) -> io::Result<()> {
    use std::collections::BTreeMap;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut entries: BTreeMap<std::ffi::OsString, Vec<(PathBuf, std::fs::Metadata)>> =
        BTreeMap::new();
    for layer in layers {
        for entry in std::fs::read_dir(layer)? {
            let entry = entry?;
            let meta = std::fs::symlink_metadata(entry.path())?;
            entries
                .entry(entry.file_name())
                .or_default()
                .push((entry.path(), meta));
        }
    }
    for (name, found) in entries {
        let (top, meta) = &found[0];
        let to = target.join(&name);
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            continue; // deleted by a later build
        }
        if meta.is_dir() {
            // The directories below it merge until a non-directory (which
            // the directory hides) or an opaque one (which hides the rest).
            let mut dirs = Vec::new();
            for (path, m) in &found {
                if !m.is_dir() {
                    break;
                }
                dirs.push(path.clone());
                if is_opaque(path) {
                    break;
                }
            }
            std::fs::create_dir(&to)?;
            std::fs::set_permissions(&to, meta.permissions())?;
            std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()))?;
            flatten(&dirs, &to)?;
        } else if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(top)?, &to)?;
        } else {
            std::fs::hard_link(top, &to)?;
        }
    }
    Ok(())
}

fn is_opaque(dir: &Path) -> bool {
    let mut value = [0u8; 4];
    rustix::fs::lgetxattr(dir, "trusted.overlay.opaque", &mut value)
        .is_ok_and(|n| &value[..n] == b"y")
}

/// The numbers `N` of entries named `N{suffix}` in `dir`.
fn numbers_in(dir: &Path, suffix: &str) -> io::Result<Vec<Version>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_suffix(suffix))
            .and_then(|n| n.parse().ok())
        {
            found.push(n);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish_tree(
        layer: &VersionedLayer,
        on_current: bool,
        files: &[(&str, &str)],
    ) -> VersionInfo {
        let build = layer.begin(on_current).unwrap();
        for (path, text) in files {
            let file = build.upper().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        layer.publish(build, Some("b".into())).unwrap()
    }

    #[test]
    fn versions_stack_up_and_publish_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let layer = VersionedLayer::new(dir.path().join("installation"));
        assert_eq!(layer.current().unwrap(), None);
        let one = publish_tree(&layer, true, &[("a", "1")]);
        assert_eq!((one.version, one.stack), (1, vec![1]));
        let two = publish_tree(&layer, true, &[("b", "2")]);
        assert_eq!((two.version, two.stack), (2, vec![2, 1]));
        assert_eq!(layer.current().unwrap(), Some(2));
        // A full tree starts a new stack.
        let three = publish_tree(&layer, false, &[("a", "3")]);
        assert_eq!(three.stack, vec![3]);
        assert!(!dir.path().join("installation/build/3").exists());
    }

    #[test]
    fn a_crash_before_current_changes_leaves_the_old_version_and_clean_repairs() {
        let dir = tempfile::tempdir().unwrap();
        let layer = VersionedLayer::new(dir.path().join("installation"));
        publish_tree(&layer, true, &[("a", "1")]);
        // Crash mid-build, and crash after the description was written.
        let build = layer.begin(true).unwrap();
        std::fs::write(build.upper().join("x"), "partial").unwrap();
        std::fs::write(layer.info_file(3), "{}").unwrap();
        assert_eq!(layer.current().unwrap(), Some(1));
        layer.clean().unwrap();
        assert_eq!(layer.versions().unwrap(), vec![1]);
        assert!(!layer.builds_dir().exists());
        // The next build does not reuse a number a crash may have left.
        let next = publish_tree(&layer, true, &[("b", "2")]);
        assert_eq!(next.stack, vec![2, 1]);
    }

    #[test]
    fn a_flat_tree_becomes_version_one_by_renames() {
        let dir = tempfile::tempdir().unwrap();
        let flat = dir.path().join("installation");
        std::fs::create_dir_all(flat.join("left4dead2")).unwrap();
        std::fs::write(flat.join("srcds_run"), "game").unwrap();
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&flat).unwrap());
        let layer = VersionedLayer::new(flat.clone());
        layer.adopt_flat().unwrap();
        assert_eq!(layer.current().unwrap(), Some(1));
        let one = layer.layer_dir(1);
        assert_eq!(
            std::fs::read_to_string(one.join("srcds_run")).unwrap(),
            "game"
        );
        // The same directory, moved: a mount of it is undisturbed.
        assert_eq!(
            std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&one).unwrap()),
            inode
        );
        layer.adopt_flat().unwrap();
        assert_eq!(layer.versions().unwrap(), vec![1]);
        // Loose files next to versions are refused, not swallowed.
        std::fs::write(flat.join("stray"), "x").unwrap();
        let err = layer.adopt_flat().unwrap_err();
        assert!(err.to_string().contains("stray"), "{err}");
    }

    #[test]
    fn an_adoption_cut_short_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let flat = dir.path().join("installation");
        std::fs::create_dir_all(&flat).unwrap();
        std::fs::write(flat.join("srcds_run"), "game").unwrap();
        // The crash came right after the first rename.
        std::fs::rename(&flat, dir.path().join("installation.adopting")).unwrap();
        let layer = VersionedLayer::new(flat);
        layer.adopt_flat().unwrap();
        assert_eq!(layer.current().unwrap(), Some(1));
        assert!(layer.layer_dir(1).join("srcds_run").exists());
        assert!(!dir.path().join("installation.adopting").exists());
    }

    #[test]
    fn unused_versions_go_and_used_layers_stay() {
        let dir = tempfile::tempdir().unwrap();
        let layer = VersionedLayer::new(dir.path().join("installation"));
        publish_tree(&layer, false, &[("a", "1")]);
        publish_tree(&layer, true, &[("b", "2")]);
        publish_tree(&layer, false, &[("c", "3")]);
        publish_tree(&layer, true, &[("d", "4")]);
        // A server still runs version 2 (layers 2 and 1); version 3's
        // layer is part of the current stack (4 3).
        let removed = layer.remove_unused(&BTreeSet::from([2, 1])).unwrap();
        assert_eq!(removed, vec![3]);
        for version in 1..=4 {
            assert!(layer.layer_dir(version).exists(), "layer {version}");
        }
        // Once nothing runs it, only the current stack (4 3) remains.
        let removed = layer.remove_unused(&BTreeSet::new()).unwrap();
        assert_eq!(removed, vec![1, 2]);
        assert!(!layer.layer_dir(1).exists() && !layer.layer_dir(2).exists());
        assert!(layer.layer_dir(3).exists() && layer.layer_dir(4).exists());
        assert_eq!(layer.versions().unwrap(), vec![4]);
    }
}
