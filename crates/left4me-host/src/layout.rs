//! The state root and every path below it. Nothing else in the workspace
//! joins path strings for state: ask the layout.

use std::io;
use std::path::{Path, PathBuf};

use crate::layer::{Layer, OverlayPath};
use crate::name::InstanceName;
use crate::versions::VersionedLayer;

/// Where production keeps mutable state.
pub const DEFAULT_ROOT: &str = "/var/lib/left4me";

/// The state root (`--root` / `LEFT4ME_ROOT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRoot {
    root: PathBuf,
}

impl StateRoot {
    /// Uses `root` as the state root: absolute, and with symlinks and `..`
    /// resolved when it exists, because mounts are recognised by comparing
    /// paths with what the kernel reports in `/proc/self/mountinfo`.
    pub fn new(root: impl AsRef<Path>) -> io::Result<Self> {
        let absolute = std::path::absolute(root.as_ref())?;
        let root = match std::fs::canonicalize(&absolute) {
            Ok(real) => real,
            Err(e) if e.kind() == io::ErrorKind::NotFound => absolute,
            Err(e) => return Err(e),
        };
        Ok(Self { root })
    }

    /// Creates the root and its top-level directories if missing
    /// (idempotent), and returns the root with its real path.
    pub fn open(root: impl AsRef<Path>) -> io::Result<Self> {
        let candidate = Self::new(root)?;
        candidate.ensure()?;
        Self::new(&candidate.root)
    }

    /// Creates the top-level directories if missing. Idempotent.
    pub fn ensure(&self) -> io::Result<()> {
        for dir in [
            self.root.clone(),
            self.installation(),
            self.overlays(),
            self.workshop_cache(),
            self.instances(),
            self.runtime(),
            self.tmp(),
            self.locks(),
        ] {
            std::fs::create_dir_all(&dir)?;
        }
        self.installation_versions().adopt_flat()
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The installation's versions (see `versions`).
    pub fn installation(&self) -> PathBuf {
        self.root.join("installation")
    }

    /// Where the published snapshots of overlays live.
    pub fn overlay_versions_root(&self) -> PathBuf {
        self.root.join("overlay-versions")
    }

    /// The published snapshots of one overlay (see `versions`).
    pub fn overlay_versions(&self, path: &OverlayPath) -> VersionedLayer {
        VersionedLayer::new(self.overlay_versions_root().join(path.as_str()))
    }

    pub fn installation_versions(&self) -> VersionedLayer {
        VersionedLayer::new(self.installation())
    }

    pub fn overlays(&self) -> PathBuf {
        self.root.join("overlays")
    }

    pub fn overlay(&self, path: &OverlayPath) -> PathBuf {
        self.overlays().join(path.as_str())
    }

    /// Checks an overlay is a real directory (not a symlink, which the
    /// mount would refuse anyway) or a built overlay with a published
    /// version, and says what is wrong if not.
    pub fn check_overlay(&self, path: &OverlayPath) -> Result<(), String> {
        let dir = self.overlay(path);
        let versions = self.overlay_versions(path);
        if !dir.exists() && versions.dir().exists() {
            return match versions.current() {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(format!(
                    "overlay {:?} has no published version yet: its first build has not finished",
                    path.as_str()
                )),
                Err(e) => Err(format!("overlay {:?}: {e}", path.as_str())),
            };
        }
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(meta) if meta.file_type().is_symlink() => Err(format!(
                "overlay {:?} is a symlink ({}); overlays must be real directories",
                path.as_str(),
                dir.display()
            )),
            Ok(_) => Err(format!(
                "overlay {:?} is not a directory ({})",
                path.as_str(),
                dir.display()
            )),
            Err(_) => Err(format!(
                "overlay {:?} does not exist: create the directory {} or remove the entry",
                path.as_str(),
                dir.display()
            )),
        }
    }

    pub fn layer(&self, layer: &Layer) -> PathBuf {
        match layer {
            Layer::Overlay(path) => self.overlay(path),
            Layer::OverlayVersion(path, version) => self.overlay_versions(path).layer_dir(*version),
            Layer::Installation(version) => self.installation_versions().layer_dir(*version),
        }
    }

    /// The layer's path relative to the root, for `openat2` beneath it.
    pub fn layer_relative(layer: &Layer) -> PathBuf {
        match layer {
            Layer::Overlay(path) => Path::new("overlays").join(path.as_str()),
            Layer::OverlayVersion(path, version) => VersionedLayer::layer_relative(
                &Path::new("overlay-versions").join(path.as_str()),
                *version,
            ),
            Layer::Installation(version) => {
                VersionedLayer::layer_relative(Path::new("installation"), *version)
            }
        }
    }

    pub fn workshop_cache(&self) -> PathBuf {
        self.root.join("workshop_cache")
    }

    /// steamcmd's install directory for Workshop downloads (the fallback
    /// for items not downloadable over HTTP): its files land in
    /// `steamapps/workshop/content/550/ID/` below.
    pub fn workshop_steamcmd(&self) -> PathBuf {
        self.workshop_cache().join("steamcmd")
    }

    pub fn instances(&self) -> PathBuf {
        self.root.join("instances")
    }

    pub fn runtime(&self) -> PathBuf {
        self.root.join("runtime")
    }

    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// Beside `locks/` rather than in it, where an instance could be
    /// named `panel`.
    pub fn panel_lock(&self) -> PathBuf {
        self.root.join("panel.lock")
    }

    pub fn instance(&self, name: &InstanceName) -> InstancePaths {
        InstancePaths {
            dir: self.instances().join(name.as_str()),
            runtime: self.runtime().join(name.as_str()),
            lock: self.locks().join(format!("{name}.lock")),
        }
    }
}

/// Paths of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePaths {
    /// `instances/NAME/`: what `initialize` writes.
    pub dir: PathBuf,
    /// `runtime/NAME/`: overlay dirs, console log, supervisor state.
    pub runtime: PathBuf,
    /// `locks/NAME.lock`: outlives `delete`, so deletes serialize too.
    pub lock: PathBuf,
}

impl InstancePaths {
    pub fn instance_env(&self) -> PathBuf {
        self.dir.join("instance.env")
    }
    pub fn server_cfg(&self) -> PathBuf {
        self.dir.join("server.cfg")
    }
    pub fn spec(&self) -> PathBuf {
        self.dir.join("spec.yaml")
    }
    /// Present while the instance should come back after a host reboot;
    /// the systemd backend's root helper enables the unit to match.
    pub fn start_on_boot(&self) -> PathBuf {
        self.dir.join("start-on-boot")
    }
    pub fn upper(&self) -> PathBuf {
        self.runtime.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.runtime.join("work")
    }
    pub fn merged(&self) -> PathBuf {
        self.runtime.join("merged")
    }
    /// Where staged cfg files go: `upper/left4dead2/cfg`.
    pub fn upper_cfg(&self) -> PathBuf {
        self.upper().join("left4dead2").join("cfg")
    }
    pub fn console_log(&self) -> PathBuf {
        self.runtime.join("console.log")
    }
    pub fn supervisor_state(&self) -> PathBuf {
        self.runtime.join("supervisor.json")
    }
    pub fn supervisor_lock(&self) -> PathBuf {
        self.runtime.join("supervisor.lock")
    }
}
