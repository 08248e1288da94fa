//! Script overlays: a build runs an admin's script in a [`Sandbox`] into
//! a fresh directory, which becomes the overlay's next version when the
//! script succeeds. A failed, cancelled or killed build publishes
//! nothing; the current version stays.
//!
//! ```text
//! tmp/builds/NAME/script.sh   the script, as the sandbox sees it at /script.sh
//! tmp/builds/NAME/layer/      what it sees at /overlay; renamed into the version
//! ```

use std::path::PathBuf;

use crate::events::Ctx;
use crate::layer::OverlayPath;
use crate::layout::StateRoot;
use crate::sandbox::{BuildRun, Sandbox, SandboxError, normalize_layer};
use crate::versions::VersionInfo;

/// One build of a script overlay.
#[derive(Debug, Clone)]
pub struct ScriptBuild<'a> {
    pub overlay: &'a OverlayPath,
    pub script: &'a str,
    /// Start from an empty layer; otherwise from a copy of the current
    /// version (the script may change it in place: it is a copy).
    pub from_scratch: bool,
    /// Names the version (a job id, say); unique per build.
    pub build_id: String,
    /// Paths the script must not see besides the state root.
    pub hidden: &'a [PathBuf],
}

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("{0:?} is not a build name: lowercase letters, digits and dashes, at most 100")]
    BadName(String),
    #[error("{action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
}

impl ScriptError {
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Sandbox(SandboxError::Cancelled))
    }
}

fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> ScriptError {
    let action = action.into();
    move |source| ScriptError::Io { action, source }
}

/// The user `left4me-build@` units run scripts as.
pub const BUILD_USER: &str = "left4me-build";

/// A build's name, as the instance of its unit: `[a-z0-9][a-z0-9-]{0,99}`
/// (the polkit rule allows no other).
pub fn check_build_name(name: &str) -> Result<(), ScriptError> {
    let ok = (1..=100).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ScriptError::BadName(name.to_owned()))
    }
}

/// The build's layer directory, opened beneath the state root without
/// following a link: the root helpers act on it by descriptor only.
fn open_layer_beneath(root: &StateRoot, name: &str) -> Result<std::os::fd::OwnedFd, ScriptError> {
    use rustix::fs::{Mode, OFlags};
    check_build_name(name)?;
    let dir = rustix::fs::open(
        root.path(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ScriptError::Io {
        action: "opening the state root".into(),
        source: e.into(),
    })?;
    let relative = std::path::Path::new("tmp/builds").join(name);
    let script = open_beneath::open_beneath(
        std::os::fd::AsFd::as_fd(&dir),
        &relative.join("script.sh"),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        0,
    )
    .map_err(|e| ScriptError::Io {
        action: format!("opening the script of build {name}"),
        source: e.into(),
    })?;
    let is_file = rustix::fs::fstat(&script)
        .map(|s| rustix::fs::FileType::from_raw_mode(s.st_mode).is_file())
        .unwrap_or(false);
    if !is_file {
        return Err(ScriptError::Io {
            action: format!("the script of build {name} is not a plain file"),
            source: std::io::ErrorKind::InvalidInput.into(),
        });
    }
    open_beneath::open_beneath(
        std::os::fd::AsFd::as_fd(&dir),
        &relative.join("layer"),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        0,
    )
    .map_err(|e| ScriptError::Io {
        action: format!("opening the layer of build {name}"),
        source: e.into(),
    })
}

/// `left4me-build@NAME`'s root helper before the script: the layer goes
/// to the build user, who may write nothing else.
pub fn prepare_unit(root: &StateRoot, name: &str) -> Result<(), ScriptError> {
    let layer = open_layer_beneath(root, name)?;
    let (uid, gid) =
        crate::privilege::system_user(BUILD_USER).map_err(io("looking up the build user"))?;
    crate::sandbox::chown_tree_at(std::os::fd::AsFd::as_fd(&layer), uid, gid)
        .map_err(io("handing the layer to the build user"))
}

/// `left4me-build-finish@NAME`'s root helper after the script (its
/// processes are gone): the layer goes back to the state root's owner,
/// who checks and publishes it.
pub fn finish_unit(root: &StateRoot, name: &str) -> Result<(), ScriptError> {
    let layer = open_layer_beneath(root, name)?;
    let (uid, gid) =
        crate::fsutil::owner_of(root.path()).map_err(io("reading the state root's owner"))?;
    crate::sandbox::chown_tree_at(std::os::fd::AsFd::as_fd(&layer), uid, gid)
        .map_err(io("handing the layer back to the state root's owner"))
}

/// Where builds keep their scratch directories.
fn builds_dir(root: &StateRoot) -> PathBuf {
    root.tmp().join("builds")
}

/// Removes what builds that died with the panel left behind: their
/// directories and (bubblewrap's) empty cgroups. Call when no build runs
/// (at the panel's start).
pub fn clean_leftovers(root: &StateRoot) -> std::io::Result<()> {
    crate::sandbox::sweep_cgroups(&format!("leftovers-{}", root_tag(root)));
    crate::fsutil::remove_dir_all_if_exists(&builds_dir(root))
}

/// Eight hex digits naming the state root in build names.
fn root_tag(root: &StateRoot) -> String {
    use std::hash::{Hash, Hasher};
    let mut hash = std::hash::DefaultHasher::new();
    root.path().hash(&mut hash);
    format!("{:08x}", hash.finish() as u32)
}

/// Runs the build and publishes its layer as the overlay's next version.
pub fn build_script_overlay(
    root: &StateRoot,
    sandbox: &dyn Sandbox,
    build: &ScriptBuild<'_>,
    ctx: &Ctx<'_>,
) -> Result<VersionInfo, ScriptError> {
    // Names cgroups and units host-wide, so the state root is in it too
    // (two panels, or two test roots, never share one); letters, digits
    // and dashes only.
    let name: String = format!("{}-{}-{}", build.overlay, build.build_id, root_tag(root))
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let dir = builds_dir(root).join(&name);
    crate::fsutil::remove_dir_all_if_exists(&dir).map_err(io("clearing the build directory"))?;
    let result = run_and_publish(root, sandbox, build, &name, &dir, ctx);
    let cleaned = crate::fsutil::remove_dir_all_if_exists(&dir);
    let info = result?;
    cleaned.map_err(io("removing the build directory"))?;
    Ok(info)
}

fn run_and_publish(
    root: &StateRoot,
    sandbox: &dyn Sandbox,
    build: &ScriptBuild<'_>,
    name: &str,
    dir: &std::path::Path,
    ctx: &Ctx<'_>,
) -> Result<VersionInfo, ScriptError> {
    let layer = dir.join("layer");
    let script = dir.join("script.sh");
    std::fs::create_dir_all(dir).map_err(io("creating the build directory"))?;
    std::fs::write(&script, build.script).map_err(io("writing the script"))?;
    let versions = root.overlay_versions(build.overlay);
    let current = versions
        .current()
        .map_err(io("reading the overlay's current version"))?;
    match current.filter(|_| !build.from_scratch) {
        Some(version) => {
            ctx.step(format!("copying version {version} to start from"))
                .map_err(|_| SandboxError::Cancelled)?;
            crate::fsutil::clone_tree(
                &versions.layer_dir(version),
                &layer,
                crate::fsutil::Files::Copy,
            )
            .map_err(io("copying the current version"))?;
        }
        None => std::fs::create_dir(&layer).map_err(io("creating the layer directory"))?,
    }
    let mut hidden = vec![root.path().to_owned()];
    hidden.extend(build.hidden.iter().cloned());
    sandbox.run(
        &BuildRun {
            name,
            script: &script,
            layer: &layer,
            hidden: &hidden,
        },
        ctx,
    )?;
    ctx.step("checking the layer")
        .map_err(|_| SandboxError::Cancelled)?;
    let owner =
        crate::fsutil::owner_of(root.path()).map_err(io("reading the state root's owner"))?;
    let hand_over = rustix::process::geteuid().is_root().then_some(owner);
    normalize_layer(&layer, hand_over, ctx)?;
    ctx.step("publishing the new version")
        .map_err(|_| SandboxError::Cancelled)?;
    let (info, _) = crate::snapshot::publish_built(root, build.overlay, &build.build_id, |upper| {
        // An empty directory is replaced by rename(2): no copy.
        std::fs::rename(&layer, upper)
    })
    .map_err(io("publishing the new version"))?;
    Ok(info)
}
