//! The game from Steam: installs and updates with steamcmd onto the
//! installation's versions, and the check for a newer build.
//!
//! An update never writes into a published version: steamcmd writes into
//! an overlay mount whose lower layers are the current version and whose
//! upper directory becomes the next version's layer. Whatever steamcmd
//! does to a file (rewrite it in place, replace it, delete it), overlayfs
//! copies it up or whites it out first, so the layers running servers
//! have mounted never change, and the new layer costs only what changed.
//! A fresh install has no base: steamcmd writes a full tree.

pub mod steamcmd;
pub mod systemd;
mod vdf;

/// For the fuzz targets: steamcmd's KeyValues text (an app manifest, an
/// `app_info_print` output) read for build ids. Whatever the text, this
/// returns.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn fuzz_vdf(text: &str) {
    let _ = vdf::manifest_build(text);
    let _ = vdf::public_build(text);
}

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use self::steamcmd::{APP_ID, Steamcmd, WORKSHOP_APP_ID};
use self::steamcmd::{Attempted, Ended, Line, Run, RunAs};
use crate::events::{Cancelled, Ctx, Event};
use crate::layer::{Layer, OverlayPath};
use crate::layout::StateRoot;
use crate::mount::{self, MountApi, MountError, OverlaySpec};
use crate::versions::{Version, VersionInfo};

/// Network failures and missing configuration are retried this often.
const RETRIES: u32 = 3;
/// An empty answer to the update check is asked again this often.
const CHECK_ATTEMPTS: u32 = 4;
/// Roughly what a fresh install downloads, for the disk-space message.
const FRESH_INSTALL_BYTES: u64 = 12 << 30;

/// The 32-bit libraries the game and steamcmd load (relative to the
/// system root), with the Debian package of each.
pub const LIBRARIES_32: &[(&str, &str)] = &[
    ("usr/lib32/libgcc_s.so.1", "lib32gcc-s1"),
    ("usr/lib32/libstdc++.so.6", "lib32stdc++6"),
    (
        "usr/lib/i386-linux-gnu/libSDL2-2.0.so.0",
        "libsdl2-2.0-0:i386",
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum GameError {
    #[error(
        "steamcmd is not at {0}. Install Debian's package (enable non-free and the i386 \
         architecture: `dpkg --add-architecture i386 && apt update && apt install steamcmd`, \
         then set steamcmd = \"/usr/games/steamcmd\") or unpack Valve's \
         steamcmd_linux.tar.gz below the state root and set steamcmd to its steamcmd.sh \
         (config key `steamcmd`, variable LEFT4ME_STEAMCMD)"
    )]
    SteamcmdMissing(PathBuf),
    #[error(
        "the game and steamcmd are 32-bit programs and these libraries are missing: install \
         {packages} (`dpkg --add-architecture i386 && apt update && apt install {packages}`)"
    )]
    Missing32BitLibraries { packages: String },
    #[error(
        "steamcmd is busy with another install or update of the game, or a Workshop download; \
         wait for it to finish (or cancel it)"
    )]
    Busy,
    #[error(
        "steamcmd refused to install the game for Linux (Invalid platform), and neither \
         workaround (a Windows pass before the Linux one, a pre-seeded appmanifest) got past \
         it. Valve may have changed something; steamcmd said: {0}"
    )]
    InvalidPlatform(String),
    #[error(
        "not enough disk space (steamcmd state 0x{code:x}): {free} free below the state root, \
         about {needed} needed. Free some space and try again"
    )]
    DiskFull {
        code: u32,
        free: String,
        needed: String,
    },
    #[error(
        "steamcmd could not reach Steam or finish the download (state 0x{code:x}), {RETRIES} \
         attempts. Check the host's internet connection and try again"
    )]
    Network { code: u32 },
    #[error(
        "steamcmd could not write the game's files (state 0x{code:x}): check the free space \
         and that the state root belongs to the user running it"
    )]
    WriteFailure { code: u32 },
    #[error("steamcmd failed with state 0x{code:x}: {line}")]
    State { code: u32, line: String },
    #[error(
        "steamcmd could not get Steam's configuration (Missing configuration), {RETRIES} \
         attempts; try again later"
    )]
    MissingConfiguration,
    #[error("Steam says the anonymous account may not install app {APP_ID} (No subscription): {0}")]
    NoSubscription(String),
    #[error("steamcmd could not log in to Steam anonymously: {0}")]
    LoginFailed(String),
    #[error("steamcmd failed: {0}")]
    Failed(String),
    /// From the `left4me-game@` unit, in its words.
    #[error("{0}")]
    Relayed(String),
    #[error("steamcmd printed nothing for {0} s and was ended; Steam may be unreachable")]
    Stalled(u64),
    #[error("steamcmd ended ({status}) without saying {what}; its last words: {last}")]
    NoSuccess {
        what: String,
        status: String,
        last: String,
    },
    #[error(transparent)]
    ItemUnavailable(#[from] ItemUnavailable),
    #[error("steamcmd could not download item {item}: {reason}")]
    ItemFailed { item: u64, reason: String },
    #[error("steamcmd never said which build is public (asked {CHECK_ATTEMPTS} times)")]
    CheckEmpty,
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
}

/// A Workshop item Steam will not give anyone: retrying cannot help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, thiserror::Error)]
pub enum ItemUnavailable {
    #[error("item {0} is private (Access Denied)")]
    Private(u64),
    #[error("item {0} was deleted (File Not Found)")]
    Deleted(u64),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> GameError {
    let context = context.into();
    move |error| GameError::Io { context, error }
}

/// What the Game page and `left4me game status` show.
#[derive(Debug, Clone, Serialize)]
pub struct GameStatus {
    /// The current version, if the game is installed.
    pub installed: Option<VersionInfo>,
    /// Every version still on disk (the current one and those servers run).
    pub versions: Vec<VersionInfo>,
    /// The last check for updates, if any.
    pub latest: Option<Check>,
    /// Bytes the installation's layers use.
    pub disk_bytes: u64,
}

/// The answer of a check for updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Check {
    pub installed_build: Option<String>,
    pub public_build: String,
    /// Unix seconds.
    pub checked: i64,
}

impl Check {
    pub fn update_available(&self) -> bool {
        self.installed_build.as_deref() != Some(&self.public_build)
    }
}

/// What an install or update did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Updated {
    /// A new version is current.
    Published(VersionInfo),
    /// Steam had nothing newer; nothing changed.
    UpToDate,
}

/// Where installs, updates and checks run: in this process ([`Game`]), or
/// in a `left4me-game@` unit under systemd ([`systemd::SystemdInstaller`]).
pub trait Installer: Send + Sync + std::fmt::Debug {
    /// The game, for its status and the checks before a task (read only).
    fn game(&self) -> &Game;
    fn update(&self, validate: bool, ctx: &Ctx<'_>) -> Result<Updated, GameError>;
    fn check(&self, ctx: &Ctx<'_>) -> Result<Check, GameError>;
    /// Downloads Workshop item `id` with steamcmd (the fallback for items
    /// not downloadable over HTTP); the path of its VPK
    /// (see [`Game::download_workshop_item`]).
    fn download_workshop_item(&self, id: u64, ctx: &Ctx<'_>) -> Result<PathBuf, GameError>;

    /// At the panel's start: what an install or update that died with an
    /// earlier panel left (its build's mount and directory). Where
    /// installs run outside the panel (a unit that outlives it), nothing:
    /// the next install cleans up.
    fn clear_interrupted(&self) -> Result<(), GameError> {
        Ok(())
    }
}

impl Installer for Game {
    fn game(&self) -> &Game {
        self
    }

    fn update(&self, validate: bool, ctx: &Ctx<'_>) -> Result<Updated, GameError> {
        Game::update(self, validate, ctx)
    }

    fn check(&self, ctx: &Ctx<'_>) -> Result<Check, GameError> {
        Game::check(self, ctx)
    }

    fn download_workshop_item(&self, id: u64, ctx: &Ctx<'_>) -> Result<PathBuf, GameError> {
        Game::download_workshop_item(self, id, ctx)
    }

    fn clear_interrupted(&self) -> Result<(), GameError> {
        // Busy: an install by the command line runs now, and is its own.
        let Some(_busy) = crate::lock::try_lock_file(&self.steamcmd_lock())
            .map_err(io("taking the install lock"))?
        else {
            return Ok(());
        };
        self.unmount_builds()?;
        self.root
            .installation_versions()
            .clean()
            .map_err(io("cleaning the installation"))
    }
}

/// Installs and updates the game below a state root.
#[derive(Debug, Clone)]
pub struct Game {
    pub root: StateRoot,
    pub steamcmd: Steamcmd,
    /// Where the 32-bit libraries are looked for (`/`; tests use a
    /// directory of their own).
    pub system_root: PathBuf,
    /// A current version deeper than this many layers is flattened into
    /// one after an update (overlayfs stacks at most 500 layers in all).
    pub max_layers: usize,
}

/// The workarounds for "Invalid platform", in the order tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    Linux,
    WindowsThenLinux,
    SeededManifest,
}

impl Platform {
    fn describe(self) -> &'static str {
        match self {
            Platform::Linux => "a plain Linux install",
            Platform::WindowsThenLinux => "a Windows pass, then the Linux one, in one run",
            Platform::SeededManifest => "a pre-seeded appmanifest (StateFlags 2)",
        }
    }
}

impl Game {
    /// The installed version, the versions on disk, the last check.
    pub fn status(&self) -> Result<GameStatus, GameError> {
        let versions = self.root.installation_versions();
        let installed = versions
            .current_info()
            .map_err(io("reading the installation"))?;
        let all = versions
            .versions()
            .map_err(io("reading the installation"))?
            .into_iter()
            .map(|v| versions.info(v))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io("reading the installation"))?;
        Ok(GameStatus {
            installed,
            versions: all,
            latest: self.last_check(),
            disk_bytes: versions
                .disk_bytes()
                .map_err(io("measuring the installation"))?,
        })
    }

    fn check_file(&self) -> PathBuf {
        self.root.installation().join("check.json")
    }

    fn last_check(&self) -> Option<Check> {
        let text = std::fs::read_to_string(self.check_file()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Asks Steam for the public build id (retrying the empty answers
    /// steamcmd sometimes gives) and compares it with the installed one.
    pub fn check(&self, ctx: &Ctx<'_>) -> Result<Check, GameError> {
        let result = self.check_inner(ctx);
        self.hand_over()?;
        result
    }

    fn check_inner(&self, ctx: &Ctx<'_>) -> Result<Check, GameError> {
        self.preflight()?;
        // Its home is the downloads' and the updates' home.
        let _steamcmd = self.wait_for_steamcmd(ctx)?;
        let commands: Vec<String> = [
            "+login",
            "anonymous",
            "+app_info_update",
            "1",
            "+app_info_print",
            &APP_ID.to_string(),
            "+quit",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for attempt in 1..=CHECK_ATTEMPTS {
            ctx.step(format!(
                "asking Steam for the public build (attempt {attempt})..."
            ))?;
            let run = self.run_steamcmd(&commands, ctx)?;
            if let Ended::Cancelled = run.ended {
                return Err(Cancelled.into());
            }
            if let Some(public) = vdf::public_build(&run.output) {
                let installed = self
                    .root
                    .installation_versions()
                    .current_info()
                    .map_err(io("reading the installation"))?
                    .and_then(|v| v.build_id);
                let check = Check {
                    installed_build: installed,
                    public_build: public,
                    checked: now(),
                };
                crate::fsutil::write_atomic(
                    &self.check_file(),
                    serde_json::to_string(&check)
                        .expect("a check serializes")
                        .as_bytes(),
                )
                .map_err(io("recording the check"))?;
                return Ok(check);
            }
            ctx.emit(Event::Step(
                "steamcmd printed no build for the app (it sometimes does); asking again".into(),
            ));
        }
        Err(GameError::CheckEmpty)
    }

    /// The state root's owner, when running as root for another user:
    /// steamcmd runs as the account that owns the game's files.
    fn run_as(&self) -> Option<RunAs> {
        use std::os::unix::fs::MetadataExt;
        if !rustix::process::geteuid().is_root() {
            return None;
        }
        let meta = std::fs::metadata(self.root.path()).ok()?;
        (meta.uid() != 0).then(|| RunAs {
            uid: meta.uid(),
            gid: meta.gid(),
        })
    }

    /// Gives what this run (as root, for the owner) wrote to the state
    /// root's owner, who reads and removes it later: the descriptions,
    /// `current`, the last check, the directories around them.
    fn hand_over(&self) -> Result<(), GameError> {
        let Some(who) = self.run_as() else {
            return Ok(());
        };
        let installation = self.root.installation();
        let mut paths = vec![
            installation.join("current"),
            installation.join("check.json"),
            installation.join("v"),
            installation.join("build"),
            // The panel's starts lock this one too.
            self.root.locks().join("installation.lock"),
            self.steamcmd_lock(),
        ];
        let steam = self.root.path().join(".steam");
        paths.push(steam.clone());
        for sdk in ["sdk32", "sdk64"] {
            paths.push(steam.join(sdk));
            paths.push(steam.join(sdk).join("steamclient.so"));
        }
        if let Ok(entries) = std::fs::read_dir(installation.join("v")) {
            paths.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json")),
            );
        }
        for path in paths {
            // lchown: the steamclient links themselves, not their targets.
            match std::os::unix::fs::lchown(&path, Some(who.uid), Some(who.gid)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io(format!("handing {} to the game's user", path.display()))(e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn run_steamcmd(&self, commands: &[String], ctx: &Ctx<'_>) -> Result<Run, GameError> {
        self.steamcmd
            .run(commands, self.root.path(), self.run_as(), ctx)
            .map_err(io(format!("running {}", self.steamcmd.program.display())))
    }

    /// The host's steamcmd lock: steamcmd cannot run twice at once on one
    /// home (DOMAIN.md §1), so every run takes it (installs and updates
    /// refuse to wait, checks and Workshop downloads wait).
    fn steamcmd_lock(&self) -> PathBuf {
        self.root.locks().join("install.lock")
    }

    /// Downloads Workshop item `id` with steamcmd into
    /// `workshop_cache/steamcmd` and returns its VPK there (see
    /// [`Steamcmd::download_workshop_item`]). Waits while an install,
    /// update or another download runs steamcmd.
    pub fn download_workshop_item(&self, id: u64, ctx: &Ctx<'_>) -> Result<PathBuf, GameError> {
        let result = self.download_workshop_item_inner(id, ctx);
        self.hand_over()?;
        result
    }

    fn download_workshop_item_inner(&self, id: u64, ctx: &Ctx<'_>) -> Result<PathBuf, GameError> {
        self.preflight()?;
        let _steamcmd = self.wait_for_steamcmd(ctx)?;
        let dir = self.root.workshop_steamcmd();
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        let owner = self.run_as();
        // steamcmd runs as the owner; root may have made these.
        for made in [self.root.workshop_cache(), dir.clone()] {
            if let Some(who) = owner {
                std::os::unix::fs::chown(&made, Some(who.uid), Some(who.gid))
                    .map_err(io(format!("handing {} to the game's user", made.display())))?;
            }
        }
        ctx.step(format!("downloading Workshop item {id} with steamcmd..."))?;
        self.steamcmd
            .download_workshop_item(id, &dir, self.root.path(), owner, ctx)
    }

    /// The steamcmd lock, waited for (and said so) while someone else
    /// holds it; a cancel ends the wait.
    fn wait_for_steamcmd(&self, ctx: &Ctx<'_>) -> Result<std::fs::File, GameError> {
        let path = self.steamcmd_lock();
        let mut said = false;
        loop {
            if let Some(lock) =
                crate::lock::try_lock_file(&path).map_err(io("taking the install lock"))?
            {
                return Ok(lock);
            }
            if !said {
                ctx.step("waiting for steamcmd (a game install or update is running)...")?;
                said = true;
            }
            ctx.sleep(Duration::from_millis(200))?;
        }
    }

    /// steamcmd is there and so are the 32-bit libraries.
    pub fn preflight(&self) -> Result<(), GameError> {
        if !self.steamcmd.program.is_file() {
            return Err(GameError::SteamcmdMissing(self.steamcmd.program.clone()));
        }
        let missing: Vec<&str> = LIBRARIES_32
            .iter()
            .filter(|(file, _)| !self.system_root.join(file).exists())
            .map(|(_, package)| *package)
            .collect();
        if !missing.is_empty() {
            return Err(GameError::Missing32BitLibraries {
                packages: missing.join(" "),
            });
        }
        Ok(())
    }

    /// Installs the game, or updates it to Steam's public build, as a new
    /// version; the current one stays as it is until the new one is
    /// complete. `validate` has steamcmd check every file.
    pub fn update(&self, validate: bool, ctx: &Ctx<'_>) -> Result<Updated, GameError> {
        let result = self.update_inner(validate, ctx);
        self.hand_over()?;
        result
    }

    fn update_inner(&self, validate: bool, ctx: &Ctx<'_>) -> Result<Updated, GameError> {
        self.preflight()?;
        let _busy = crate::lock::try_lock_file(&self.steamcmd_lock())
            .map_err(io("taking the install lock"))?
            .ok_or(GameError::Busy)?;
        let versions = self.root.installation_versions();
        ctx.step("clearing what an interrupted install left...")?;
        self.unmount_builds()?;
        versions.clean().map_err(io("cleaning the installation"))?;
        self.link_steamclient(ctx);
        let build = versions.begin(true).map_err(io("preparing the build"))?;
        crate::events::fault_point("update-begun");
        let result = self.build(&build, validate, ctx);
        crate::events::fault_point("update-downloaded");
        let unmounted = mount::unmount(&build.merged());
        match result {
            Ok(Some(build_id)) => {
                unmounted?;
                ctx.step("publishing the new version...")?;
                let info = versions
                    .publish(build, Some(build_id))
                    .map_err(io("publishing the new version"))?;
                ctx.emit(Event::Step(format!(
                    "version {} (build {}) is current; servers use it from their next start",
                    info.version,
                    info.build_id.as_deref().unwrap_or("?")
                )));
                let info = match versions
                    .compact(self.max_layers)
                    .map_err(io("flattening the installation"))?
                {
                    Some(flat) => {
                        ctx.emit(Event::Step(format!(
                            "version {} is {} layers deep: flattened into version {} (hard links)",
                            info.version,
                            info.stack.len(),
                            flat.version
                        )));
                        flat
                    }
                    None => info,
                };
                self.remove_unused(ctx)?;
                Ok(Updated::Published(info))
            }
            Ok(None) => {
                unmounted?;
                versions.abandon(build).map_err(io("removing the build"))?;
                ctx.emit(Event::Step(
                    "the game is up to date; nothing changed".into(),
                ));
                Ok(Updated::UpToDate)
            }
            Err(e) => {
                let _ = versions.abandon(build);
                Err(e)
            }
        }
    }

    /// Runs steamcmd into the build; the build id when there is a new
    /// version, `None` when Steam had nothing new.
    fn build(
        &self,
        build: &crate::versions::Build,
        validate: bool,
        ctx: &Ctx<'_>,
    ) -> Result<Option<String>, GameError> {
        let owner = self.run_as();
        // The whole path down to the install directory: steamcmd runs as
        // the owner, and root made these directories.
        let builds = build
            .dir()
            .parent()
            .expect("builds have a parent")
            .to_owned();
        for dir in [
            builds,
            build.dir().to_owned(),
            build.upper(),
            build.merged(),
        ] {
            if let Some(who) = owner {
                std::os::unix::fs::chown(&dir, Some(who.uid), Some(who.gid))
                    .map_err(io(format!("handing {} to the game's user", dir.display())))?;
            }
        }
        let target = match &build.base {
            Some(base) => {
                ctx.step(format!(
                    "mounting version {} with an empty layer on top for steamcmd...",
                    base.version
                ))?;
                let relative = |p: &Path| {
                    p.strip_prefix(self.root.path())
                        .expect("builds are below the root")
                        .to_owned()
                };
                mount::mount(
                    &self.root,
                    &OverlaySpec {
                        lowers: base
                            .stack
                            .iter()
                            .copied()
                            .map(Layer::Installation)
                            .collect(),
                        upper: relative(&build.upper()),
                        work: relative(&build.work()),
                        target: relative(&build.merged()),
                    },
                    MountApi::Auto,
                )?;
                build.merged()
            }
            None => build.upper(),
        };
        let installed = vdf::installed_build(&target);
        let mut platform = if installed.is_some() {
            Platform::Linux
        } else {
            // A fresh anonymous Linux install fails since late 2024.
            Platform::WindowsThenLinux
        };
        loop {
            match self.app_update(&target, platform, validate, ctx)? {
                Attempt::Done { up_to_date } => {
                    if platform != Platform::Linux {
                        ctx.emit(Event::Step(format!(
                            "got past \"Invalid platform\" with {}",
                            platform.describe()
                        )));
                    }
                    let build_id = vdf::installed_build(&target);
                    if up_to_date && build_id == installed && !validate {
                        return Ok(None);
                    }
                    return Ok(Some(build_id.unwrap_or_else(|| "unknown".into())));
                }
                Attempt::InvalidPlatform(line) => {
                    platform = match platform {
                        Platform::Linux => Platform::WindowsThenLinux,
                        Platform::WindowsThenLinux => Platform::SeededManifest,
                        Platform::SeededManifest => return Err(GameError::InvalidPlatform(line)),
                    };
                    ctx.emit(Event::Step(format!(
                        "steamcmd said \"Invalid platform\"; trying {}",
                        platform.describe()
                    )));
                }
            }
        }
    }

    /// One `app_update` with the given workaround, retrying network
    /// failures with backoff.
    fn app_update(
        &self,
        dir: &Path,
        platform: Platform,
        validate: bool,
        ctx: &Ctx<'_>,
    ) -> Result<Attempt, GameError> {
        if platform == Platform::SeededManifest {
            vdf::seed_manifest(dir).map_err(io("pre-seeding the appmanifest"))?;
        }
        let app = APP_ID.to_string();
        let mut commands: Vec<String> = vec![
            "+force_install_dir".into(),
            dir.display().to_string(),
            "+login".into(),
            "anonymous".into(),
        ];
        if platform == Platform::WindowsThenLinux {
            commands.extend(
                [
                    "+@sSteamCmdForcePlatformType",
                    "windows",
                    "+app_update",
                    &app,
                ]
                .map(String::from),
            );
        }
        commands.extend(
            ["+@sSteamCmdForcePlatformType", "linux", "+app_update", &app].map(String::from),
        );
        if validate {
            commands.push("validate".into());
        }
        commands.push("+quit".into());
        self.steamcmd.with_retries(ctx, || {
            let run = self.run_steamcmd(&commands, ctx)?;
            let transient = |error: GameError, why: String| Ok(Attempted::Transient { error, why });
            match run.ended {
                Ended::Success { up_to_date } => Ok(Attempted::Done(Attempt::Done { up_to_date })),
                Ended::Failure(Line::Failed(reason), line) => match reason.as_str() {
                    "Invalid platform" => Ok(Attempted::Done(Attempt::InvalidPlatform(line))),
                    "Missing configuration" => transient(
                        GameError::MissingConfiguration,
                        "Missing configuration".into(),
                    ),
                    "No subscription" => Err(GameError::NoSubscription(line)),
                    _ => Err(GameError::Failed(line)),
                },
                Ended::Failure(Line::State(code), line) => match code {
                    0x202 | 0x212 => Err(self.disk_full(code, run.total_bytes)),
                    0x402 | 0x602 => transient(
                        GameError::Network { code },
                        format!("network failure (state 0x{code:x})"),
                    ),
                    0x606 => Err(GameError::WriteFailure { code }),
                    _ => Err(GameError::State { code, line }),
                },
                _ => Err(self.steamcmd.unsuccessful(run, "the game is installed")),
            }
        })
    }

    fn disk_full(&self, code: u32, announced: u64) -> GameError {
        let free = rustix::fs::statvfs(self.root.path())
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
            .unwrap_or(0);
        let needed = if announced > 0 {
            announced
        } else {
            FRESH_INSTALL_BYTES
        };
        GameError::DiskFull {
            code,
            free: human(free),
            needed: human(needed),
        }
    }

    /// Links `~/.steam/sdk32/steamclient.so` (and `sdk64`) of the game's
    /// account to steamcmd's, without which servers are reachable only by
    /// direct IP. The account's home is the state root.
    fn link_steamclient(&self, ctx: &Ctx<'_>) {
        let Some(dir) = self.steamcmd.program.parent() else {
            return;
        };
        for (bits, sub) in [("32", "linux32"), ("64", "linux64")] {
            let source = dir.join(sub).join("steamclient.so");
            let link_dir = self.root.path().join(".steam").join(format!("sdk{bits}"));
            let link = link_dir.join("steamclient.so");
            if !source.is_file() {
                ctx.emit(Event::Step(format!(
                    "no {} next to steamcmd: servers may be reachable by direct IP only",
                    source.display()
                )));
                continue;
            }
            let _ = std::fs::create_dir_all(&link_dir);
            let _ = std::fs::remove_file(&link);
            if let Err(e) = std::os::unix::fs::symlink(&source, &link) {
                ctx.emit(Event::Step(format!("cannot link {}: {e}", link.display())));
            }
        }
    }

    /// Unmounts builds an interrupted run left mounted.
    fn unmount_builds(&self) -> Result<(), GameError> {
        let builds = self.root.installation().join("build");
        for target in mount::mounts_below(&builds)? {
            mount::unmount(&target)?;
        }
        Ok(())
    }

    /// Removes the versions that are neither current nor mounted by a
    /// server (see [`remove_unused_versions`]).
    pub fn remove_unused(&self, ctx: &Ctx<'_>) -> Result<Vec<Version>, GameError> {
        let removed = remove_unused_versions(&self.root)?;
        if !removed.is_empty() {
            ctx.emit(Event::Step(format!(
                "removed versions no server uses: {}",
                removed
                    .iter()
                    .map(Version::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(removed)
    }
}

/// Removes the installation versions and overlay snapshots that are
/// neither current nor mounted by a server (and every snapshot of an
/// overlay that was deleted). Starts hold the installation lock shared
/// while they pick and mount their layers, so none is removed under them.
/// Returns the installation versions removed.
pub fn remove_unused_versions(root: &StateRoot) -> Result<Vec<Version>, GameError> {
    let _exclusive =
        crate::lock::lock_installation(root, true).map_err(io("taking the installation lock"))?;
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| GameError::Mount(MountError::MountInfo(e)))?;
    let mounts = mount::parse_mountinfo(&text);
    let removed = root
        .installation_versions()
        .remove_unused(&mounted_layers(&mounts, &root.installation()))
        .map_err(io("removing unused versions"))?;
    for (path, versions) in overlay_snapshots(root) {
        let mounted = mounted_layers(&mounts, versions.dir());
        // Deleted: no working copy and no current version (see
        // `snapshot::forget_overlay`); a built overlay has only the latter.
        let deleted = !root.overlay(&path).exists()
            && versions
                .current()
                .map_err(io("reading an overlay's current version"))?
                .is_none();
        if deleted && mounted.is_empty() {
            crate::fsutil::remove_dir_all_if_exists(versions.dir())
                .map_err(io("removing a deleted overlay's snapshots"))?;
        } else {
            versions
                .remove_unused(&mounted)
                .map_err(io("removing unused overlay snapshots"))?;
        }
    }
    Ok(removed)
}

/// Every overlay that has snapshots, with them.
fn overlay_snapshots(
    root: &StateRoot,
) -> Vec<(crate::layer::OverlayPath, crate::versions::VersionedLayer)> {
    let base = root.overlay_versions_root();
    let mut found = Vec::new();
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        if dir.join("v").is_dir() {
            if let Some(path) = dir
                .strip_prefix(&base)
                .ok()
                .and_then(Path::to_str)
                .and_then(|p| crate::layer::OverlayPath::parse(p).ok())
            {
                found.push((path.clone(), root.overlay_versions(&path)));
            }
            continue;
        }
        stack.extend(
            entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.path()),
        );
    }
    found
}

/// The layers of the versioned layer at `dir` that mounts use.
fn mounted_layers(mounts: &[mount::MountEntry], dir: &Path) -> BTreeSet<Version> {
    let prefix = dir.join("v");
    mounts
        .iter()
        .filter(|m| m.fs_type == "overlay")
        .flat_map(mount::MountEntry::overlay_lowers)
        .filter_map(|d| d.strip_prefix(&prefix).ok()?.to_str()?.parse().ok())
        .collect()
}

enum Attempt {
    Done { up_to_date: bool },
    InvalidPlatform(String),
}

/// Each overlay mount of this host with the installation layers it uses
/// (top first), as the kernel reports them.
fn installation_mounts(root: &StateRoot) -> Result<Vec<(PathBuf, Vec<Version>)>, GameError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| GameError::Mount(MountError::MountInfo(e)))?;
    let prefix = root.installation().join("v");
    Ok(mount::parse_mountinfo(&text)
        .into_iter()
        .filter(|m| m.fs_type == "overlay")
        .map(|m| {
            let layers = m
                .overlay_lowers()
                .iter()
                .filter_map(|dir| dir.strip_prefix(&prefix).ok()?.to_str()?.parse().ok())
                .collect();
            (m.mount_point, layers)
        })
        .collect())
}

/// The installation version each mounted server runs (the top layer of
/// its installation stack is the version's own), by instance.
pub fn running_versions(
    root: &StateRoot,
) -> Result<std::collections::BTreeMap<crate::name::InstanceName, Version>, GameError> {
    Ok(installation_mounts(root)?
        .into_iter()
        .filter_map(|(target, layers)| Some((instance_of_mount(root, &target)?, *layers.first()?)))
        .collect())
}

/// The built overlays (Workshop items, scripts) each mounted server runs
/// an older version of: they were rebuilt since it started.
pub fn rebuilt_overlays(
    root: &StateRoot,
) -> Result<std::collections::BTreeMap<crate::name::InstanceName, Vec<OverlayPath>>, GameError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| GameError::Mount(MountError::MountInfo(e)))?;
    let mut rebuilt = std::collections::BTreeMap::new();
    for m in mount::parse_mountinfo(&text) {
        let Some(name) = (m.fs_type == "overlay")
            .then(|| instance_of_mount(root, &m.mount_point))
            .flatten()
        else {
            continue;
        };
        let mut paths = Vec::new();
        for dir in m.overlay_lowers() {
            if let Some(Layer::OverlayVersion(path, version)) = dir
                .to_str()
                .and_then(|d| crate::instance_env::layer_of(d, root).ok())
                && crate::snapshot::is_newer_than(root, &path, version)
                    .map_err(io("reading an overlay's current version"))?
            {
                paths.push(path);
            }
        }
        if !paths.is_empty() {
            rebuilt.insert(name, paths);
        }
    }
    Ok(rebuilt)
}

/// The instance whose game a mount at `target` (`runtime/NAME/merged`) is.
fn instance_of_mount(root: &StateRoot, target: &Path) -> Option<crate::name::InstanceName> {
    let relative = target.strip_prefix(root.runtime()).ok()?;
    let mut parts = relative.components();
    let name = parts.next()?.as_os_str().to_str()?;
    (parts.next()?.as_os_str() == "merged" && parts.next().is_none()).then_some(())?;
    crate::name::InstanceName::parse(name).ok()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn human(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if bytes >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else {
        format!("{} MiB", bytes.div_ceil(MIB))
    }
}
