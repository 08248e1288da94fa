//! Script overlays: a build runs an admin's script in a [`Sandbox`] into
//! a fresh directory, which becomes the overlay's next version when the
//! script succeeds. A failed, cancelled or killed build publishes
//! nothing; the current version stays.
//!
//! ```text
//! tmp/builds/NAME/script.sh   the script, as the sandbox sees it at /script.sh
//! tmp/builds/NAME/layer/      what it sees at /overlay; renamed into the version
//! tmp/builds/NAME/resolv.conf its /etc/resolv.conf
//! tmp/builds/NAME/network     under systemd: what its network is, from left4me-build-net@
//! ```

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};

use crate::events::Ctx;
use crate::layer::OverlayPath;
use crate::layout::StateRoot;
use crate::sandbox::network::{BuildNetwork, Uplink};
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

/// The build's directory, opened beneath the state root without following
/// a link: the root helpers act on it by descriptor only.
fn open_build_dir(root: &StateRoot, name: &str) -> Result<OwnedFd, ScriptError> {
    check_build_name(name)?;
    let state = rustix::fs::open(
        root.path(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("opening the state root")(e.into()))?;
    open_beneath::open_beneath(
        state.as_fd(),
        &Path::new("tmp/builds").join(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        0,
    )
    .map_err(|e| io(format!("opening the directory of build {name}"))(e.into()))
}

/// The build's layer directory (beside a plain script file), by
/// descriptor.
fn open_layer(root: &StateRoot, name: &str) -> Result<OwnedFd, ScriptError> {
    let dir = open_build_dir(root, name)?;
    let is_file = rustix::fs::statat(&dir, "script.sh", AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|s| rustix::fs::FileType::from_raw_mode(s.st_mode).is_file());
    if !is_file {
        return Err(io(format!(
            "the script of build {name} is not a plain file"
        ))(std::io::ErrorKind::InvalidInput.into()));
    }
    rustix::fs::openat(
        &dir,
        "layer",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(format!("opening the layer of build {name}"))(e.into()))
}

/// `left4me-build@NAME`'s root helper before the script: the layer goes
/// to the build user, who may write nothing else.
pub fn prepare_unit(root: &StateRoot, name: &str) -> Result<(), ScriptError> {
    let layer = open_layer(root, name)?;
    let (uid, gid) =
        crate::privilege::system_user(BUILD_USER).map_err(io("looking up the build user"))?;
    crate::sandbox::chown_tree_at(layer.as_fd(), uid, gid)
        .map_err(io("handing the layer to the build user"))
}

/// `left4me-build-finish@NAME`'s root helper after the script (its
/// processes are gone): the layer goes back to the state root's owner,
/// who checks and publishes it.
pub fn finish_unit(root: &StateRoot, name: &str) -> Result<(), ScriptError> {
    let layer = open_layer(root, name)?;
    let (uid, gid) =
        crate::fsutil::owner_of(root.path()).map_err(io("reading the state root's owner"))?;
    crate::sandbox::chown_tree_at(layer.as_fd(), uid, gid)
        .map_err(io("handing the layer back to the state root's owner"))
}

/// Where `left4me-build-net@NAME` leaves what the build's network is, for
/// the panel to say in the build log.
pub const NETWORK_NOTE: &str = "network";

/// `left4me-build-net@NAME`'s root helper: the build's filtered network
/// namespace and its uplink. The note in the build's directory says what
/// came of it; an error means there is no namespace to join.
pub fn network_up(root: &StateRoot, name: &str) -> Result<(), ScriptError> {
    let dir = open_build_dir(root, name)?;
    let (uplink, failed) = match BuildNetwork::new(name).up() {
        Ok(uplink) => (uplink, None),
        Err(e) => (Uplink::Offline(e.to_string()), Some(e)),
    };
    // A build without an uplink binds nothing of its network: the unit
    // binds resolv.conf only where it is.
    if let Uplink::Offline(_) = uplink {
        match rustix::fs::unlinkat(&dir, "resolv.conf", AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(io("removing the offline build's resolv.conf")(e.into())),
        }
    }
    // A new file, never one found there: the directory is the panel's,
    // and root must not write through a link it planted.
    match rustix::fs::unlinkat(&dir, NETWORK_NOTE, AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(io("replacing the build's network note")(e.into())),
    }
    let note = rustix::fs::openat(
        &dir,
        NETWORK_NOTE,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .map_err(|e| io("writing the build's network note")(e.into()))?;
    let (uid, gid) =
        crate::fsutil::owner_of(root.path()).map_err(io("reading the state root's owner"))?;
    rustix::fs::fchown(
        &note,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(|e| io("handing the network note to the panel")(e.into()))?;
    std::fs::File::from(note)
        .write_all(format!("{}\n", uplink.describe()).as_bytes())
        .map_err(io("writing the build's network note"))?;
    match failed {
        Some(e) => Err(io("making the build's network namespace")(
            std::io::Error::other(e),
        )),
        None => Ok(()),
    }
}

/// `left4me-build-net@NAME`'s root helper when it stops.
pub fn network_down(name: &str) -> Result<(), ScriptError> {
    check_build_name(name)?;
    BuildNetwork::new(name).down();
    Ok(())
}

/// Where builds keep their scratch directories.
fn builds_dir(root: &StateRoot) -> PathBuf {
    root.tmp().join("builds")
}

/// Removes what builds that died with the panel left behind: their
/// directories and (bubblewrap's) empty cgroups. Call when no build runs
/// (at the panel's start).
pub fn clean_leftovers(root: &StateRoot) -> std::io::Result<()> {
    let tag = root_tag(root);
    crate::sandbox::sweep_cgroups(&format!("leftovers-{tag}"));
    if rustix::process::geteuid().is_root() {
        crate::sandbox::network::sweep(&tag);
    }
    crate::fsutil::remove_dir_all_if_exists(&builds_dir(root))
}

/// Eight hex digits naming the state root in build names: the same from
/// one release to the next, so a new panel sweeps what an old one left.
fn root_tag(root: &StateRoot) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(root.path().as_os_str().as_encoded_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
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
    dir: &Path,
    ctx: &Ctx<'_>,
) -> Result<VersionInfo, ScriptError> {
    let layer = dir.join("layer");
    let script = dir.join("script.sh");
    std::fs::create_dir_all(dir).map_err(io("creating the build directory"))?;
    std::fs::write(&script, build.script).map_err(io("writing the script"))?;
    // Whatever the panel's umask: the build user passes through the
    // directory and reads the script.
    let mode = |path: &Path, mode| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
    };
    mode(dir, 0o711)
        .and_then(|()| mode(&script, 0o644))
        .map_err(io("letting the build user read the script"))?;
    crate::events::fault_point("build-prepared");
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
            dir,
            hidden: &hidden,
        },
        ctx,
    )?;
    crate::events::fault_point("build-ran");
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
