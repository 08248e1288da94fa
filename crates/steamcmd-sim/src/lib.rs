//! A simulated Valve steamcmd, so tests install and update "the game"
//! without Steam, through the same code that drives the real one.
//!
//! A simulated steamcmd is a directory, like Valve's unpacked tarball:
//!
//! ```text
//! DIR/steamcmd.sh            symlink to the simulator binary (it finds DIR from argv[0],
//!                            as Valve's steamcmd.sh does from $0)
//! DIR/linux32/steamclient.so, DIR/linux64/steamclient.so
//! DIR/sim/config.json        behaviour and faults (SimConfig), read at every run
//! DIR/sim/depot/BUILD/       the files of each build Steam serves
//! DIR/sim/public             the public branch's build id
//! DIR/sim/workshop/ID        the file of Workshop item ID (app 550)
//! DIR/sim/invocations.log    every run's argv, one JSON array per line
//! ```
//!
//! Documented behaviour (shared/DOMAIN.md §1) it reproduces: commands as
//! `+command args` in order, `force_install_dir` before `login`; the
//! banner, progress lines `Update state (0x61) downloading, progress:
//! 45.12 (1234 / 5678)`, success and failure lines; exit codes 0, 5
//! (login) and 8 (install error), and a network failure (0x602) that
//! exits 0; block buffering (4 KiB) without a terminal; the late-2024
//! "Invalid platform" trap for anonymous Linux installs and both
//! workarounds; `app_info_print` that is sometimes empty;
//! `workshop_download_item 550 ID` (after `login`, into the
//! `force_install_dir`), which writes
//! `steamapps/workshop/content/550/ID/ID_legacy.bin`, says `Success.
//! Downloaded item ID to "DIR" (BYTES bytes)` or `ERROR! Download item ID
//! failed (REASON).` (`Failure`, `Access Denied`, `File Not Found`) and
//! exits 0 either way (DOMAIN.md §2).
//!
//! Assumptions, where Valve documents nothing: a changed file is
//! rewritten in place (open, truncate, write), the worst case for anyone
//! sharing inodes with the install directory; new files are staged in
//! `steamapps/downloading/222860/` and renamed; files of the previous
//! build that the new one lacks are deleted, other files are left alone;
//! the Windows pass writes `srcds.exe` and a manifest of its own; a
//! Workshop item is staged in `steamapps/workshop/downloads/550/ID/` and
//! renamed, its download is paced by `bytes_per_second` without printing
//! progress, and an item of another app than 550 fails with `(Failure)`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod program;
pub use program::main;

/// The app the simulator serves.
pub const APP_ID: u32 = 222_860;

/// The app whose Workshop items the simulator serves (the game's).
pub const WORKSHOP_APP_ID: u32 = 550;

/// How `workshop_download_item` fails for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkshopFault {
    /// `(Failure)`, transient: only the first `fault_runs` downloads of
    /// the item when that is not 0.
    Failure,
    /// `(Access Denied)`: the item is private.
    AccessDenied,
    /// `(File Not Found)`: the item was deleted.
    FileNotFound,
}

/// A failure to simulate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// `Error! App '222860' state is 0xCODE after update job.` (0x202 and
    /// 0x212 disk space, 0x402 and 0x602 network, 0x606 write failure).
    State(u32),
    MissingConfiguration,
    NoSubscription,
    LoginFailure,
    /// Prints a progress line, then nothing, forever.
    Hang,
}

/// What `DIR/sim/config.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// Anonymous Linux installs without an installed or seeded manifest
    /// fail with "Invalid platform" (true since late 2024).
    pub invalid_platform: bool,
    pub fault: Option<Fault>,
    /// The fault hits only the first this many `app_update` runs (0: all),
    /// and a Workshop `Failure` only the first this many downloads of its
    /// item.
    pub fault_runs: u32,
    /// Workshop items whose download fails, and how.
    pub workshop_faults: BTreeMap<u64, WorkshopFault>,
    /// The first this many `app_info_print` runs print nothing for the app.
    pub app_info_empty_runs: u32,
    /// Download speed; progress lines are paced by it.
    pub bytes_per_second: u64,
    /// The Windows pass installs (and so gets a later Linux pass past
    /// "Invalid platform"); off when Valve closes that door.
    pub windows_pass_installs: bool,
    /// A pre-seeded appmanifest (`StateFlags` 2) gets past it.
    pub seeded_manifest_works: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            invalid_platform: true,
            fault: None,
            fault_runs: 0,
            workshop_faults: BTreeMap::new(),
            app_info_empty_runs: 0,
            bytes_per_second: 1 << 30,
            windows_pass_installs: true,
            seeded_manifest_works: true,
        }
    }
}

/// A simulated steamcmd directory.
#[derive(Debug, Clone)]
pub struct SteamcmdSim {
    dir: PathBuf,
}

impl SteamcmdSim {
    /// Makes `dir` a steamcmd whose program is a symlink to `sim_binary`.
    pub fn create(dir: &Path, sim_binary: &Path) -> io::Result<Self> {
        for sub in ["linux32", "linux64", "sim/depot"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        for lib in ["linux32/steamclient.so", "linux64/steamclient.so"] {
            std::fs::write(dir.join(lib), b"\x7fELF simulated steamclient")?;
        }
        let program = dir.join("steamcmd.sh");
        if program.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(sim_binary, &program)?;
        }
        let sim = Self {
            dir: dir.to_owned(),
        };
        sim.set_config(&SimConfig::default())?;
        Ok(sim)
    }

    /// A simulated steamcmd made earlier by [`create`](Self::create).
    pub fn open(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// What to configure as `steamcmd`.
    pub fn program(&self) -> PathBuf {
        self.dir.join("steamcmd.sh")
    }

    fn sim(&self) -> PathBuf {
        self.dir.join("sim")
    }

    pub fn set_config(&self, config: &SimConfig) -> io::Result<()> {
        std::fs::write(
            self.sim().join("config.json"),
            serde_json::to_vec_pretty(config).expect("the config serializes"),
        )
    }

    /// Copies `tree` in as build `build` with its manifest and makes it
    /// the public one.
    pub fn publish_build(&self, build: u64, tree: &Path) -> io::Result<()> {
        let target = self.sim().join("depot").join(build.to_string());
        copy_tree(tree, &target)?;
        let manifest = Manifest::of(&target)?;
        std::fs::write(
            self.sim().join("depot").join(format!("{build}.manifest")),
            serde_json::to_vec(&manifest).expect("a manifest serializes"),
        )?;
        std::fs::write(self.sim().join("public"), build.to_string())
    }

    /// Publishes a synthetic game (the srcds simulator as `srcds_linux`, see
    /// `srcds_sim::make_installation`) as build `build`, with a
    /// `build.txt` naming it.
    pub fn publish_game(
        &self,
        build: u64,
        simulator: &Path,
        files: usize,
        bytes: u64,
    ) -> io::Result<()> {
        let staging = self.sim().join(format!("staging-{build}"));
        srcds_sim::make_installation(&staging, simulator, files, bytes)?;
        std::fs::write(staging.join("build.txt"), format!("{build}\n"))?;
        self.publish_build(build, &staging)?;
        std::fs::remove_dir_all(staging)
    }

    /// Publishes build `build` as the public build's files with `changes`
    /// applied: `(path, Some(text))` writes a file, `(path, None)` deletes
    /// one. `build.txt` names the new build.
    pub fn derive_build(&self, build: u64, changes: &[(&str, Option<&str>)]) -> io::Result<()> {
        let from = self
            .public_build()?
            .ok_or_else(|| io::Error::other("no public build to derive from"))?;
        let staging = self.sim().join(format!("staging-{build}"));
        copy_tree(&self.sim().join("depot").join(from.to_string()), &staging)?;
        std::fs::write(staging.join("build.txt"), format!("{build}\n"))?;
        for (path, text) in changes {
            let file = staging.join(path);
            match text {
                Some(text) => {
                    if let Some(parent) = file.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::write(file, text)?;
                }
                None => std::fs::remove_file(file)?,
            }
        }
        self.publish_build(build, &staging)?;
        std::fs::remove_dir_all(staging)
    }

    /// Publishes Workshop item `id` (of app 550) with `content` as its
    /// file.
    pub fn publish_workshop_item(&self, id: u64, content: &[u8]) -> io::Result<()> {
        let dir = self.sim().join("workshop");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(id.to_string()), content)
    }

    pub fn public_build(&self) -> io::Result<Option<u64>> {
        match std::fs::read_to_string(self.sim().join("public")) {
            Ok(text) => Ok(text.trim().parse().ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every run's arguments, oldest first.
    pub fn invocations(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.sim().join("invocations.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A build's files and a hash of each, as Steam's depot manifests list
/// them: an update compares manifests, not the files on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub files: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Manifest {
    /// Sizes and FNV-1a hashes of the files below `dir`.
    pub fn of(dir: &Path) -> io::Result<Self> {
        let mut files = std::collections::BTreeMap::new();
        for path in files_below(dir)? {
            let bytes = std::fs::read(dir.join(&path))?;
            let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
            });
            files.insert(
                path.to_string_lossy().into_owned(),
                (bytes.len() as u64, hash),
            );
        }
        Ok(Self { files })
    }

    pub fn load(depot: &Path, build: &str) -> Option<Self> {
        let bytes = std::fs::read(depot.join(format!("{build}.manifest"))).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Copies a tree of plain files and directories (mode bits kept).
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The relative paths of the plain files below `dir`, sorted.
pub fn files_below(dir: &Path) -> io::Result<Vec<PathBuf>> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(base, &path, out)?;
            } else {
                out.push(path.strip_prefix(base).expect("below base").to_owned());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out)?;
    }
    out.sort();
    Ok(out)
}
