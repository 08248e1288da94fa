//! The instance lifecycle: initialize, start, stop, reset, delete, status
//! and list. Every mutating operation holds the instance's lock, reports
//! its steps and checks for cancellation between them.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use crate::events::{Cancelled, Ctx, Event};
use crate::fsutil::{copy_atomic, remove_dir_all_if_exists, remove_file_if_exists, write_atomic};
use crate::instance_env::InstanceEnv;
use crate::layout::{InstancePaths, StateRoot};
use crate::lock::{InstanceLock, LockError};
use crate::mount::{self, MountError};
use crate::name::InstanceName;
use crate::ports::{self, PortInUse};
use crate::spec::{Spec, SpecError};
use crate::supervisor::{LogSource, ProcessStatus, Supervisor, SupervisorError, Target};

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Spec(#[from] Box<SpecError>),
    #[error("instance {0} is not initialized; give it a spec (`--spec FILE`) first")]
    NotInitialized(InstanceName),
    #[error("instance {name}: {problem}")]
    BadOverlay { name: InstanceName, problem: String },
    #[error(
        "the game is not installed in {0}: install it on the Game page or with \
         `left4me game install` (or try the simulator: `left4me demo --installation-only`)"
    )]
    NotInstalled(std::path::PathBuf),
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    #[error(transparent)]
    Mount(#[from] MountError),
    // The io error is in the message and deliberately not a `source`, so
    // a cause chain (anyhow's `{:#}`) prints it once.
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
    #[error("{0} is still mounted; refusing to delete files below it")]
    StillMounted(std::path::PathBuf),
    #[error(transparent)]
    PortInUse(#[from] PortInUse),
}

impl From<Cancelled> for HostError {
    fn from(c: Cancelled) -> Self {
        Self::Supervisor(SupervisorError::Cancelled(c))
    }
}

impl From<SpecError> for HostError {
    fn from(e: SpecError) -> Self {
        Self::Spec(Box::new(e))
    }
}

impl HostError {
    /// Whether the caller asked for something invalid (exit code 2), as
    /// opposed to an operation that failed.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::Spec(_) | Self::NotInitialized(_) | Self::BadOverlay { .. }
        )
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Supervisor(SupervisorError::Cancelled(_)))
    }

    /// Whether the supervisor failed while starting or running the game,
    /// so the game's console may tell why ([`Host::console_tail`]). Not
    /// for refusals before the game ran (a busy port, a bad spec, a
    /// mount), where the console holds only an earlier run's lines.
    pub fn concerns_the_game(&self) -> bool {
        matches!(
            self,
            Self::Supervisor(SupervisorError::Failed(_) | SupervisorError::Io { .. })
        )
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HostError {
    let context = context.into();
    move |error| HostError::Io { context, error }
}

/// What `start` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    Started,
    AlreadyRunning,
}

/// Everything `status` reports about an instance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub initialized: bool,
    pub mounted: bool,
    pub running: bool,
    pub pid: Option<u32>,
    /// Unix seconds.
    pub since: Option<u64>,
    pub restarts: u32,
    pub port: Option<u16>,
    pub state: String,
    pub reason: Option<String>,
}

/// The host layer's entry point: a state root and a supervisor backend.
#[derive(Debug)]
pub struct Host {
    root: StateRoot,
    supervisor: Box<dyn Supervisor>,
}

impl Host {
    /// Opens the state root (creating its directories) with a backend.
    pub fn open(
        root: impl AsRef<Path>,
        supervisor: Box<dyn Supervisor>,
    ) -> Result<Self, HostError> {
        let root = root.as_ref();
        let root =
            StateRoot::open(root).map_err(io(format!("opening state root {}", root.display())))?;
        Ok(Self { root, supervisor })
    }

    pub fn root(&self) -> &StateRoot {
        &self.root
    }

    fn lock(&self, name: &InstanceName) -> Result<InstanceLock, HostError> {
        Ok(InstanceLock::try_acquire(
            name,
            &self.root.instance(name).lock,
        )?)
    }

    fn target<'a>(&'a self, name: &'a InstanceName, paths: &'a InstancePaths) -> Target<'a> {
        Target {
            root: &self.root,
            name,
            paths,
        }
    }

    /// Writes the instance's files from `spec`. Idempotent; a running
    /// server keeps its old files until the next start.
    pub fn initialize(
        &self,
        name: &InstanceName,
        spec: &Spec,
        ctx: &Ctx<'_>,
    ) -> Result<(), HostError> {
        let _lock = self.lock(name)?;
        self.initialize_locked(name, spec, ctx)
    }

    fn initialize_locked(
        &self,
        name: &InstanceName,
        spec: &Spec,
        ctx: &Ctx<'_>,
    ) -> Result<(), HostError> {
        let paths = self.root.instance(name);
        let existed = self.exists(name);
        let result = self.write_instance(name, &paths, spec, ctx);
        if result.is_err() && !existed {
            // A first initialize that did not finish leaves nothing behind
            // (nothing can be mounted yet: it never got that far).
            let _ = remove_dir_all_if_exists(&paths.dir);
            if mount::mounts_below(&paths.runtime).is_ok_and(|m| m.is_empty()) {
                let _ = remove_dir_all_if_exists(&paths.runtime);
            }
        }
        result
    }

    fn write_instance(
        &self,
        name: &InstanceName,
        paths: &InstancePaths,
        spec: &Spec,
        ctx: &Ctx<'_>,
    ) -> Result<(), HostError> {
        ctx.step("checking overlays...")?;
        self.check_overlays(name, spec)?;
        ctx.step("creating instance directories...")?;
        for dir in [&paths.dir, &paths.upper(), &paths.work(), &paths.merged()] {
            std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        }
        // The last cancellation point: the three files below belong
        // together, so once the first is written the rest follow.
        ctx.step("writing instance.env, server.cfg and spec.yaml...")?;
        let installation = self
            .root
            .installation_versions()
            .current_info()
            .map_err(io("reading the installation's current version"))?
            .ok_or_else(|| HostError::NotInstalled(self.root.installation()))?;
        let overlays = spec
            .overlays()
            .iter()
            .map(|o| {
                crate::snapshot::snapshot_overlay(&self.root, &o.path)
                    .map_err(io(format!("taking a snapshot of overlay {}", o.path)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let env = InstanceEnv::from_spec(spec, &overlays, &installation.stack).render(&self.root);
        write_atomic(&paths.instance_env(), env.as_bytes()).map_err(io("writing instance.env"))?;
        write_atomic(&paths.server_cfg(), spec.server_cfg().as_bytes())
            .map_err(io("writing server.cfg"))?;
        // The spec goes last: its presence means "initialized", and start
        // re-renders the other two from it.
        write_atomic(&paths.spec(), spec.to_yaml().as_bytes()).map_err(io("writing spec.yaml"))?;
        Ok(())
    }

    fn check_overlays(&self, name: &InstanceName, spec: &Spec) -> Result<(), HostError> {
        for o in spec.overlays() {
            self.root
                .check_overlay(&o.path)
                .map_err(|problem| HostError::BadOverlay {
                    name: name.clone(),
                    problem,
                })?;
        }
        Ok(())
    }

    /// Initializes from `spec` when given, stages the cfg files into the
    /// upper layer, mounts and starts the server.
    pub fn start(
        &self,
        name: &InstanceName,
        spec: Option<&Spec>,
        ctx: &Ctx<'_>,
    ) -> Result<StartOutcome, HostError> {
        let _lock = self.lock(name)?;
        // Shared: versions are removed only while no start is between
        // picking the installation's layers and mounting them.
        let _installation = crate::lock::lock_installation(&self.root, false)
            .map_err(io("taking the installation lock"))?;
        let paths = self.root.instance(name);
        let target = self.target(name, &paths);
        // spec.yaml is the source of truth: re-rendering the other files
        // from it repairs whatever an interrupted operation left.
        let spec = match spec {
            Some(spec) => spec.clone(),
            None if paths.spec().exists() => Spec::load(&paths.spec(), &self.root)?,
            None => return Err(HostError::NotInitialized(name.clone())),
        };
        self.initialize_locked(name, &spec, ctx)?;
        crate::events::fault_point("start-initialized");
        // Before the active check: a server started by an older version,
        // or by hand, gets its boot setting all the same.
        self.record_start_on_boot(&target, true, ctx)?;
        if self.supervisor.status(&target)?.active {
            ctx.step(format!("instance {name} is already running"))?;
            return Ok(StartOutcome::AlreadyRunning);
        }
        ctx.step("clearing leftovers of an earlier run...")?;
        self.supervisor.prepare(&target, ctx)?;
        // After `prepare`, which ends an orphaned game of ours: whatever
        // holds the port now is another program.
        ctx.step(format!("checking that port {} is free...", spec.port()))?;
        ports::check_free(spec.port().get())?;
        ctx.step("staging server.cfg files into the upper layer...")?;
        self.stage(&paths, &spec)?;
        crate::events::fault_point("start-staged");
        self.supervisor.start(&target, ctx)?;
        ctx.emit(Event::Step("start complete.".into()));
        Ok(StartOutcome::Started)
    }

    /// Copies `server.cfg` and each aliased overlay's `cfg/server.cfg` (as
    /// `server_<alias>.cfg`) into `upper/left4dead2/cfg/` before mounting:
    /// writing through `merged` later would copy the lower file up with
    /// its owner.
    fn stage(&self, paths: &InstancePaths, spec: &Spec) -> Result<(), HostError> {
        let cfg = paths.upper_cfg();
        std::fs::create_dir_all(&cfg).map_err(io(format!("creating {}", cfg.display())))?;
        for entry in std::fs::read_dir(&cfg).map_err(io("listing staged cfg files"))? {
            let entry = entry.map_err(io("listing staged cfg files"))?;
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            if file_name.starts_with("server") && file_name.ends_with(".cfg") {
                std::fs::remove_file(entry.path())
                    .map_err(io(format!("removing stale {file_name}")))?;
            }
        }
        copy_atomic(&paths.server_cfg(), &cfg.join("server.cfg"))
            .map_err(io("staging server.cfg"))?;
        for o in spec.overlays() {
            let Some(alias) = &o.alias else { continue };
            let layer = self.root.overlay(&o.path);
            if let Some(text) = read_beneath(&layer, Path::new("left4dead2/cfg/server.cfg"))
                .map_err(io(format!("reading server.cfg of overlay {}", o.path)))?
            {
                write_atomic(&cfg.join(alias.staged_cfg_name()), &text)
                    .map_err(io(format!("staging {}", alias.staged_cfg_name())))?;
            }
        }
        Ok(())
    }

    /// Stops the server and unmounts. Succeeds when already stopped.
    pub fn stop(&self, name: &InstanceName, ctx: &Ctx<'_>) -> Result<(), HostError> {
        let _lock = self.lock(name)?;
        self.stop_locked(name, ctx)?;
        // The versions of the game only this server still ran can go.
        match crate::game::remove_unused_versions(&self.root) {
            Ok(removed) if !removed.is_empty() => ctx.emit(Event::Step(format!(
                "removed game versions no server uses any more: {removed:?}"
            ))),
            Ok(_) => {}
            Err(e) => ctx.emit(Event::Step(format!(
                "could not remove unused game versions ({e}); the next update retries"
            ))),
        }
        ctx.emit(Event::Step("stop complete.".into()));
        Ok(())
    }

    /// Stops the server and removes the instance's files and runtime
    /// state; the next start re-initializes from a spec.
    pub fn reset(&self, name: &InstanceName, ctx: &Ctx<'_>) -> Result<(), HostError> {
        let _lock = self.lock(name)?;
        self.purge(name, ctx)?;
        ctx.emit(Event::Step("reset complete.".into()));
        Ok(())
    }

    /// Like reset, and the supervisor forgets the instance too.
    pub fn delete(&self, name: &InstanceName, ctx: &Ctx<'_>) -> Result<(), HostError> {
        let _lock = self.lock(name)?;
        self.purge(name, ctx)?;
        let paths = self.root.instance(name);
        self.supervisor.forget(&self.target(name, &paths))?;
        ctx.emit(Event::Step("delete complete.".into()));
        Ok(())
    }

    fn stop_locked(&self, name: &InstanceName, ctx: &Ctx<'_>) -> Result<(), HostError> {
        let paths = self.root.instance(name);
        let target = self.target(name, &paths);
        self.record_start_on_boot(&target, false, ctx)?;
        self.supervisor.stop(&target, ctx)?;
        Ok(())
    }

    /// Writes or removes `start-on-boot`, then has the backend follow it.
    /// The file is the record and must be written; the backend's update
    /// may fail (a unit not installed, a rate limit) without blocking the
    /// start or stop, and `repair_start_on_boot` finishes it later.
    fn record_start_on_boot(
        &self,
        target: &Target<'_>,
        on: bool,
        ctx: &Ctx<'_>,
    ) -> Result<(), HostError> {
        write_start_on_boot(target.paths, target.name, on)?;
        if let Err(e) = self.supervisor.apply_start_on_boot(target, ctx) {
            ctx.emit(Event::Stderr(format!(
                "warning: the boot setting was not updated ({e}); it is retried later"
            )));
        }
        Ok(())
    }

    /// Makes the backend's boot setting say `on` where it says otherwise
    /// (after an update that failed or was interrupted). Returns whether
    /// anything had to change. Turning it on needs an initialized
    /// instance; turning it off never does.
    pub fn repair_start_on_boot(
        &self,
        name: &InstanceName,
        on: bool,
        ctx: &Ctx<'_>,
    ) -> Result<bool, HostError> {
        let _lock = self.lock(name)?;
        let paths = self.root.instance(name);
        let target = self.target(name, &paths);
        if on && !paths.spec().exists() {
            return Ok(false);
        }
        let actual = self
            .supervisor
            .starts_on_boot(std::slice::from_ref(&target))
            .pop()
            .expect("one answer per target")?;
        match actual {
            Some(actual) if actual != on => {
                write_start_on_boot(&paths, name, on)?;
                self.supervisor.apply_start_on_boot(&target, ctx)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn purge(&self, name: &InstanceName, ctx: &Ctx<'_>) -> Result<(), HostError> {
        let paths = self.root.instance(name);
        self.stop_locked(name, ctx)?;
        // Never walk into a mount: that would delete through it.
        if let Some(point) = mount::mounts_below(&paths.runtime)?.into_iter().next() {
            return Err(HostError::StillMounted(point));
        }
        // spec.yaml first: without it the instance counts as uninitialized,
        // whatever an interruption leaves of the rest.
        ctx.emit(Event::Step("removing instance files...".into()));
        remove_file_if_exists(&paths.spec()).map_err(io("removing spec.yaml"))?;
        remove_dir_all_if_exists(&paths.dir).map_err(io("removing instance directory"))?;
        ctx.emit(Event::Step("removing runtime files...".into()));
        remove_dir_all_if_exists(&paths.runtime).map_err(io("removing runtime directory"))?;
        Ok(())
    }

    /// Whether the instance has files or runtime state.
    /// Puts `restored` (a directory on the state root's file system: a
    /// backup's copy of the instance's writable layer) in place of its
    /// upper layer. The server must be stopped. The layer it had stays
    /// aside until the new one is in place, and a restore that died
    /// between the two moves is put back first, so a crash loses neither.
    pub fn replace_upper(
        &self,
        name: &InstanceName,
        restored: &std::path::Path,
        ctx: &Ctx<'_>,
    ) -> Result<(), HostError> {
        let _lock = self.lock(name)?;
        let status = self.status(name)?;
        if status.running || status.mounted {
            return Err(HostError::Io {
                context: format!("restoring the state of {name}"),
                error: std::io::Error::other("it is running: stop it first"),
            });
        }
        let upper = self.root.instance(name).upper();
        ctx.step(format!("putting the backup's state of {name} in place"))?;
        crate::fsutil::replace_dir(&upper, restored).map_err(|error| HostError::Io {
            context: format!("putting the restored state in {}", upper.display()),
            error,
        })
    }

    pub fn exists(&self, name: &InstanceName) -> bool {
        let paths = self.root.instance(name);
        paths.dir.exists() || paths.runtime.exists()
    }

    /// Only what the supervisor says (no file or mount checks), for many
    /// instances in one question (one `systemctl show`, not one per
    /// instance), in the order given.
    pub fn process_statuses(
        &self,
        names: &[InstanceName],
    ) -> Vec<Result<ProcessStatus, HostError>> {
        self.ask_many(names, |targets| self.supervisor.statuses(targets))
    }

    /// Whether the supervisor will start each instance at boot, in the
    /// order given (`None`: the built-in supervisor keeps no such setting).
    pub fn boot_settings(&self, names: &[InstanceName]) -> Vec<Result<Option<bool>, HostError>> {
        self.ask_many(names, |targets| self.supervisor.starts_on_boot(targets))
    }

    fn ask_many<T>(
        &self,
        names: &[InstanceName],
        ask: impl FnOnce(&[Target<'_>]) -> Vec<Result<T, SupervisorError>>,
    ) -> Vec<Result<T, HostError>> {
        let paths: Vec<InstancePaths> = names.iter().map(|n| self.root.instance(n)).collect();
        let targets: Vec<Target<'_>> = names
            .iter()
            .zip(&paths)
            .map(|(name, paths)| self.target(name, paths))
            .collect();
        ask(&targets)
            .into_iter()
            .map(|r| r.map_err(HostError::from))
            .collect()
    }

    pub fn status(&self, name: &InstanceName) -> Result<InstanceStatus, HostError> {
        let paths = self.root.instance(name);
        let process = self.supervisor.status(&self.target(name, &paths))?;
        let port = InstanceEnv::load(&paths.instance_env(), &self.root)
            .ok()
            .map(|env| env.port.get());
        Ok(InstanceStatus {
            name: name.to_string(),
            initialized: paths.spec().exists(),
            mounted: mount::find_mount(&paths.merged())?.is_some(),
            running: process.running,
            pid: process.pid,
            since: process.since,
            restarts: process.restarts,
            port,
            state: process.state,
            reason: process.reason,
        })
    }

    /// Every instance with files or runtime state, by name.
    pub fn list(&self) -> Result<Vec<InstanceStatus>, HostError> {
        let mut names = BTreeSet::new();
        for dir in [self.root.instances(), self.root.runtime()] {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(format!("listing {}", dir.display()))(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io(format!("listing {}", dir.display())))?;
                if let Some(name) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| InstanceName::parse(n).ok())
                {
                    names.insert(name);
                }
            }
        }
        names.iter().map(|name| self.status(name)).collect()
    }

    pub fn log_source(&self, name: &InstanceName) -> LogSource {
        let paths = self.root.instance(name);
        self.supervisor.log_source(&self.target(name, &paths))
    }

    /// The last `count` lines of the game's console (`console.log`, or the
    /// unit's journal), to show with a failed start: the game's own words
    /// ("Address already in use") are usually the cause. A console that
    /// cannot be read gives one line saying why.
    pub fn console_tail(&self, name: &InstanceName, count: usize) -> Vec<String> {
        match self.log_source(name) {
            LogSource::File(path) => crate::log_follow::last_lines_blocking(&path, count)
                .into_iter()
                .map(|line| line.text)
                .collect(),
            LogSource::Journal { unit } => {
                match crate::journal::tail(Path::new("journalctl"), &unit, count) {
                    Ok(lines) => lines.into_iter().map(|line| line.text).collect(),
                    Err(e) => vec![format!("(the console could not be read: {e})")],
                }
            }
        }
    }
}

fn write_start_on_boot(
    paths: &InstancePaths,
    name: &InstanceName,
    on: bool,
) -> Result<(), HostError> {
    let marker = paths.start_on_boot();
    let written = if on {
        let text = format!("{name} should run after a reboot while this file exists.\n");
        write_atomic(&marker, text.as_bytes())
    } else {
        remove_file_if_exists(&marker)
    };
    written.map_err(io(format!("writing {}", marker.display())))
}

/// Reads `relative` below `dir` without following any symlink, so an
/// overlay cannot point the staging at a file outside it. `None` when
/// the file does not exist.
fn read_beneath(dir: &Path, relative: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let dir_fd = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let fd = match open_beneath::open_beneath(
        std::os::fd::AsFd::as_fd(&dir_fd),
        relative,
        OFlags::RDONLY,
        0,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut contents = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut contents)?;
    Ok(Some(contents))
}
