//! Supervisors run an instance's game process. Two backends share one
//! interface: systemd template units in production, and a built-in
//! supervisor where systemd is absent (development, CI, containers).
//!
//! Starting includes mounting the overlay: the built-in backend mounts in
//! process; with systemd, `left4me-mount@NAME.service` does it as root.

pub mod builtin;
pub mod console_log;
pub mod process;
pub mod systemd;

use std::path::PathBuf;

use crate::events::{Cancelled, Ctx};
use crate::instance_env::InstanceEnv;
use crate::layout::{InstancePaths, StateRoot};
use crate::lock::LockError;
use crate::mount::{self, MountApi, MountError, MountState, OverlaySpec};
use crate::name::InstanceName;

/// The instance a supervisor acts on.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub root: &'a StateRoot,
    pub name: &'a InstanceName,
    pub paths: &'a InstancePaths,
}

/// What a supervisor knows about an instance's process.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProcessStatus {
    /// The game process is up.
    pub running: bool,
    /// A supervisor is in charge (running, or waiting to restart).
    pub active: bool,
    pub pid: Option<u32>,
    /// Unix seconds when the current process started.
    pub since: Option<u64>,
    /// Restarts after crashes since the last start.
    pub restarts: u32,
    /// `running`, `backoff`, `stopped`, `failed`, ... as the backend says.
    pub state: String,
    /// Why it is not running, when the supervisor knows.
    pub reason: Option<String>,
}

/// Where an instance's console log lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// The built-in supervisor's rotated `console.log`.
    File(PathBuf),
    /// A systemd unit's journal.
    Journal { unit: String },
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

impl SupervisorError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |error| Self::Io { context, error }
    }
}

/// One interface over the two backends.
pub trait Supervisor: Send + Sync + std::fmt::Debug {
    /// Clears what an earlier run left (an orphaned process, a stale mount
    /// of ours) so the caller can stage files into `upper/`. Refuses when
    /// something it did not make is mounted at `merged`.
    fn prepare(&self, target: &Target<'_>, ctx: &Ctx<'_>) -> Result<(), SupervisorError>;

    /// Mounts the instance's overlay (built-in backend) and starts its
    /// process. Staging is done by the caller. On cancellation or failure
    /// everything this call did is undone.
    fn start(&self, target: &Target<'_>, ctx: &Ctx<'_>) -> Result<(), SupervisorError>;

    /// Stops the process and unmounts. Succeeds when already stopped.
    fn stop(&self, target: &Target<'_>, ctx: &Ctx<'_>) -> Result<(), SupervisorError>;

    fn status(&self, target: &Target<'_>) -> Result<ProcessStatus, SupervisorError>;

    /// The status of each target, in order; backends that can ask about
    /// many at once override this.
    fn statuses(&self, targets: &[Target<'_>]) -> Vec<Result<ProcessStatus, SupervisorError>> {
        targets.iter().map(|t| self.status(t)).collect()
    }

    fn log_source(&self, target: &Target<'_>) -> LogSource;

    /// Brings the backend's boot setting in line with the instance's
    /// `start-on-boot` file (written by the host before every start and
    /// removed before every stop).
    fn apply_start_on_boot(
        &self,
        target: &Target<'_>,
        ctx: &Ctx<'_>,
    ) -> Result<(), SupervisorError>;

    /// Whether the backend will start each instance at boot, in order;
    /// `None` where it keeps no such setting.
    fn starts_on_boot(&self, targets: &[Target<'_>]) -> Vec<Result<Option<bool>, SupervisorError>>;

    /// Called when an instance is deleted, to forget backend state.
    fn forget(&self, target: &Target<'_>) -> Result<(), SupervisorError>;
}

impl Target<'_> {
    /// Reads and validates `instance.env`.
    pub fn load_env(&self) -> Result<InstanceEnv, SupervisorError> {
        InstanceEnv::load(&self.paths.instance_env(), self.root)
            .map_err(|e| SupervisorError::Failed(e.to_string()))
    }

    /// The overlay mount of this instance, paths relative to the root.
    pub fn overlay_spec(&self, env: &InstanceEnv) -> OverlaySpec {
        let rel = |p: PathBuf| {
            p.strip_prefix(self.root.path())
                .expect("instance paths are below the root")
                .to_owned()
        };
        OverlaySpec {
            lowers: env.lowers.clone(),
            upper: rel(self.paths.upper()),
            work: rel(self.paths.work()),
            target: rel(self.paths.merged()),
        }
    }
}

/// The engine's file name at the top of the installation. left4me runs it
/// itself rather than Valve's `srcds_run`, which joins its arguments into
/// one string and lets the shell split it again at spaces, so
/// `+hostname "My Cool Server"` would reach the engine as three words.
pub const GAME_PROGRAM: &str = "srcds_linux";

/// The game's command line, the same under both supervisors:
/// `merged/srcds_linux -game left4dead2 +ip 0.0.0.0 -port PORT ARGS`, each of
/// `env.arguments` one argv entry, spaces and quotes included. It gets what
/// `srcds_run` would give it: the merged tree as working directory (files
/// are found relative to it, which is what makes the overlays' add-ons load)
/// and the installation's own libraries first on `LD_LIBRARY_PATH`
/// (`merged` and `merged/bin`). `srcds_run`'s restart loop is the
/// supervisor's job, which sees every crash and delivers SIGINT itself.
pub fn game_command(paths: &InstancePaths, env: &InstanceEnv) -> std::process::Command {
    let merged = paths.merged();
    let mut library_path = std::ffi::OsString::from(merged.as_os_str());
    library_path.push(":");
    library_path.push(merged.join("bin"));
    if let Some(inherited) = std::env::var_os("LD_LIBRARY_PATH").filter(|p| !p.is_empty()) {
        library_path.push(":");
        library_path.push(inherited);
    }
    let mut command = std::process::Command::new(merged.join(GAME_PROGRAM));
    command
        .args(["-game", "left4dead2", "+ip", "0.0.0.0", "-port"])
        .arg(env.port.to_string())
        .args(&env.arguments)
        .env("LD_LIBRARY_PATH", library_path)
        .current_dir(&merged);
    command
}

/// The systemd unit's `ExecStart` (`left4me run-game NAME`): reads the
/// instance's `instance.env` and replaces this process with the game, so
/// systemd's main process is the game itself.
///
/// Why not `ExecStart=srcds_run ... $L4D2_ARGS`: systemd splits an
/// environment variable used as `$VAR` on whitespace and ignores quotes in
/// its value, so `+hostname "My Cool Server"` would reach the game as
/// three words; `${VAR}` keeps the whole value as one word. Neither
/// carries a list. Reading the list ourselves passes exactly what the
/// user wrote, under the unit's hardening (an `execve` as the unit's
/// user, nothing more). Returns only on failure.
pub fn exec_game(root: &StateRoot, name: &InstanceName) -> SupervisorError {
    use std::os::unix::process::CommandExt;
    let paths = root.instance(name);
    let target = Target {
        root,
        name,
        paths: &paths,
    };
    let env = match target.load_env() {
        Ok(env) => env,
        Err(e) => return e,
    };
    let error = game_command(&paths, &env).exec();
    SupervisorError::Io {
        context: format!("running {}", paths.merged().join(GAME_PROGRAM).display()),
        error,
    }
}

/// Mounts an instance's overlay from its `instance.env`: reused when our
/// exact layers are already mounted, refused when anything else is. Shared
/// by the built-in supervisor and the root mount helper.
pub fn mount_instance(target: &Target<'_>, api: MountApi) -> Result<(), SupervisorError> {
    let env = target.load_env()?;
    let spec = target.overlay_spec(&env);
    match mount::mount_state(target.root, &spec)? {
        MountState::NotMounted => Ok(mount::mount(target.root, &spec, api)?),
        MountState::Ours => Ok(()),
        MountState::Foreign => Err(MountError::ForeignMount(target.paths.merged()).into()),
    }
}

/// Unmounts everything at an instance's `merged` (stacked mounts included)
/// and empties `work/`, where overlayfs leaves a root-owned mode-0 `work/work`
/// that an unprivileged panel could not delete later.
pub fn unmount_instance(target: &Target<'_>) -> Result<(), SupervisorError> {
    for _ in 0..16 {
        if !mount::unmount(&target.paths.merged())? {
            let work = target.paths.work();
            if work.exists() {
                crate::fsutil::remove_dir_all_if_exists(&work)
                    .and_then(|()| std::fs::create_dir(&work))
                    .map_err(SupervisorError::io(format!("emptying {}", work.display())))?;
            }
            return Ok(());
        }
    }
    Err(SupervisorError::Failed(format!(
        "{} still has mounts after 16 unmounts",
        target.paths.merged().display()
    )))
}
