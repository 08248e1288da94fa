//! left4me's configuration, shared by the panel and the CLI's host
//! commands: defaults, then `/etc/left4me/left4me.toml` (or
//! `--config`), then `LEFT4ME_*` environment variables, then command-line
//! flags. Unknown keys in the file are errors.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use left4me_host::mount::MountApi;
use left4me_host::supervisor::Supervisor;
use left4me_host::supervisor::builtin::{BuiltinSupervisor, RestartPolicy};
use left4me_host::supervisor::systemd::SystemdSupervisor;
use serde::{Deserialize, Serialize};

/// Where the file is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/left4me/left4me.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SupervisorKind {
    Builtin,
    Systemd,
}

/// Addresses of reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct TrustedProxies(pub Vec<IpAddr>);

impl std::str::FromStr for TrustedProxies {
    type Err = std::net::AddrParseError;

    /// A comma-separated list, as in `LEFT4ME_TRUSTED_PROXIES=127.0.0.1,::1`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub root: PathBuf,
    pub listen: SocketAddr,
    /// Defaults to `<root>/left4me.db`.
    pub database: Option<PathBuf>,
    pub supervisor: SupervisorKind,
    pub secure_cookies: bool,
    pub port_range_start: u16,
    pub port_range_end: u16,
    pub workers: usize,
    pub upload_limit_mb: u64,
    /// Host name players connect to; defaults to the panel's own host.
    pub public_host: Option<String>,
    /// The panel's address as browsers open it: passkeys are bound to
    /// its host name and origin. See [`Config::web_origin`].
    pub public_url: Option<url::Url>,
    /// How often the servers' graphs' history is written (seconds).
    pub history_write_secs: u64,
    /// Serves the metrics (Prometheus' text format, `/metrics`) on this
    /// address of their own, without sign-in: keep it private.
    pub metrics_listen: Option<SocketAddr>,
    /// Also serves `/metrics` on the panel's own address, to an admin's
    /// API token with the read scope.
    pub metrics_on_panel: bool,
    /// Reverse proxies in front of the panel: for requests from them, the
    /// client address (for login rate limits) is taken from
    /// `X-Forwarded-For`.
    pub trusted_proxies: TrustedProxies,
    pub max_crashes: u32,
    pub crash_window_secs: u64,
    pub restart_backoff_ms: u64,
    pub stop_timeout_ms: u64,
    /// How often desired and actual server states are compared.
    pub reconcile_interval_secs: u64,
    /// How often running servers are asked for their live state.
    pub poll_interval_secs: u64,
    /// How long finished player sessions are kept.
    pub player_history_days: u64,
    /// Valve's steamcmd (`steamcmd.sh`, or Debian's `/usr/games/steamcmd`).
    pub steamcmd: PathBuf,
    /// A steamcmd run silent for this long is ended as hung.
    pub steamcmd_stall_secs: u64,
    /// The first wait before retrying a network failure (doubling).
    pub steamcmd_retry_ms: u64,
    /// Update the game by itself when a check finds a new build.
    pub auto_update: bool,
    /// The installation is flattened into one layer when an update makes
    /// it deeper than this.
    pub installation_max_layers: usize,
    /// No longer read: the built-in schedule "Check for game updates"
    /// says when. Kept so that files which set it still load.
    pub game_check_interval_secs: u64,
    /// Where the host's system files are, for the 32-bit library check
    /// (`/`; tests use a directory of their own).
    pub system_root: PathBuf,
    /// The Steam Web API (Workshop details), or a mirror.
    pub steam_api_url: String,
    /// The first wait before retrying a rate-limited or failed call or
    /// download (doubling, 4 retries).
    pub steam_api_retry_ms: u64,
    /// Workshop downloads at once.
    pub workshop_downloads: usize,
    /// When Workshop overlays refresh by themselves each day ("HH:MM",
    /// UTC; empty: off), for the built-in schedule the first start makes.
    pub workshop_refresh_at: String,
    /// Limits of a script overlay's build.
    pub build_memory_mb: u64,
    pub build_tasks: u32,
    pub build_cpus: u32,
    pub build_timeout_secs: u64,
    pub build_output_mb: u64,
    /// Free space a build must leave on the state root's file system.
    pub build_disk_reserve_mb: u64,
    /// Debian's restic, which keeps the backups.
    pub restic: PathBuf,
    /// Where backups go: a directory, or any location restic takes
    /// (`sftp:…`, `s3:…`, `rest:…`). Defaults to `<root>/backups/repository`.
    pub backup_repository: Option<String>,
    /// The file with the backup repository's password (made on the first
    /// backup when missing). Defaults to `<root>/backups/password`.
    pub backup_password_file: Option<PathBuf>,
    /// Backups kept: the newest of each of this many days, weeks, months.
    pub backup_keep_daily: u32,
    pub backup_keep_weekly: u32,
    pub backup_keep_monthly: u32,
    /// The file this configuration was read from (`None`: defaults and
    /// the environment only); backups keep a copy of it.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            root: PathBuf::from(left4me_host::layout::DEFAULT_ROOT),
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database: None,
            supervisor: SupervisorKind::Builtin,
            secure_cookies: false,
            port_range_start: 27015,
            port_range_end: 27115,
            workers: 2,
            upload_limit_mb: 512,
            public_host: None,
            public_url: None,
            history_write_secs: 60,
            metrics_listen: None,
            metrics_on_panel: false,
            trusted_proxies: TrustedProxies::default(),
            max_crashes: 5,
            crash_window_secs: 60,
            restart_backoff_ms: 1000,
            stop_timeout_ms: 15_000,
            reconcile_interval_secs: 30,
            poll_interval_secs: 5,
            player_history_days: 30,
            steamcmd: PathBuf::from("/usr/games/steamcmd"),
            steamcmd_stall_secs: 600,
            steamcmd_retry_ms: 10_000,
            auto_update: false,
            game_check_interval_secs: 86_400,
            installation_max_layers: 16,
            system_root: PathBuf::from("/"),
            steam_api_url: "https://api.steampowered.com".into(),
            steam_api_retry_ms: 2_000,
            workshop_downloads: 4,
            workshop_refresh_at: "04:30".into(),
            build_memory_mb: 4096,
            build_tasks: 512,
            build_cpus: 2,
            build_timeout_secs: 3600,
            build_output_mb: 20_480,
            build_disk_reserve_mb: 2048,
            restic: PathBuf::from("/usr/bin/restic"),
            backup_repository: None,
            backup_password_file: None,
            backup_keep_daily: 7,
            backup_keep_weekly: 4,
            backup_keep_monthly: 6,
            file: None,
        }
    }
}

impl Config {
    /// The game's installer for this state root.
    pub fn game(&self) -> std::io::Result<left4me_host::game::Game> {
        Ok(left4me_host::game::Game {
            root: left4me_host::layout::StateRoot::open(&self.root)?,
            steamcmd: left4me_host::game::Steamcmd {
                program: self.steamcmd.clone(),
                stall_timeout: std::time::Duration::from_secs(self.steamcmd_stall_secs),
                retry_backoff: std::time::Duration::from_millis(self.steamcmd_retry_ms),
            },
            system_root: self.system_root.clone(),
            max_layers: self.installation_max_layers,
        })
    }

    /// Where the game's installs, updates and checks run: in this process
    /// with the built-in supervisor, in `left4me-game@` units with systemd.
    pub fn installer(&self) -> std::io::Result<Box<dyn left4me_host::game::Installer>> {
        let game = self.game()?;
        Ok(match self.supervisor {
            SupervisorKind::Builtin => Box::new(game),
            SupervisorKind::Systemd => Box::new(left4me_host::game::systemd::SystemdInstaller {
                game,
                units: left4me_host::units::Systemctl::default(),
            }),
        })
    }

    /// The limits of a script overlay's build.
    pub fn build_limits(&self) -> left4me_host::sandbox::Limits {
        left4me_host::sandbox::Limits {
            memory_bytes: self.build_memory_mb.saturating_mul(1 << 20),
            tasks: self.build_tasks,
            cpus: self.build_cpus,
            timeout: std::time::Duration::from_secs(self.build_timeout_secs),
            output_bytes: self.build_output_mb.saturating_mul(1 << 20),
            disk_reserve_bytes: self.build_disk_reserve_mb.saturating_mul(1 << 20),
        }
    }

    /// Where script overlays build: `left4me-build@` units under systemd,
    /// bubblewrap without.
    pub fn sandbox(&self) -> Box<dyn left4me_host::sandbox::Sandbox> {
        match self.supervisor {
            SupervisorKind::Builtin => Box::new(
                left4me_host::sandbox::bubblewrap::Bubblewrap::new(self.build_limits()),
            ),
            SupervisorKind::Systemd => Box::new(left4me_host::sandbox::systemd::SystemdSandbox {
                units: left4me_host::units::Systemctl::default(),
                limits: self.build_limits(),
            }),
        }
    }

    /// The supervisor backend this configuration asks for. `program` is
    /// the binary with the `supervise` subcommand (the `left4me` binary).
    pub fn supervisor(&self, program: &Path) -> Box<dyn Supervisor> {
        match self.supervisor {
            SupervisorKind::Builtin => Box::new(BuiltinSupervisor {
                program: program.to_owned(),
                policy: RestartPolicy {
                    max_crashes: self.max_crashes,
                    window_secs: self.crash_window_secs,
                    backoff_initial_ms: self.restart_backoff_ms,
                    stop_timeout_ms: self.stop_timeout_ms,
                    ..RestartPolicy::default()
                },
                mount_api: MountApi::Auto,
            }),
            SupervisorKind::Systemd => Box::new(SystemdSupervisor::default()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}={value:?}: {message}")]
    Env {
        var: String,
        value: String,
        message: String,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The commented default file, as `left4me config default` prints it.
pub const DEFAULT_TOML: &str = r#"# left4me configuration (/etc/left4me/left4me.toml).
# Every key can be overridden by an environment variable LEFT4ME_<KEY>
# (upper case, e.g. LEFT4ME_LISTEN), and some by command-line flags.

# State root: game installation, overlays, instances, runtime state. The
# packaged systemd units use /var/lib/left4me.
root = "/var/lib/left4me"

# Where the web panel listens.
listen = "127.0.0.1:8000"

# SQLite database; defaults to <root>/left4me.db.
# database = "/var/lib/left4me/left4me.db"

# Who runs the game servers: "builtin" (a supervisor started by left4me)
# or "systemd" (left4me-server@NAME.service units).
supervisor = "builtin"

# Mark session cookies Secure; turn on when the panel is served over HTTPS.
secure_cookies = false

# Ports handed to new servers that do not ask for one.
port_range_start = 27015
port_range_end = 27115

# Background job workers.
workers = 2

# Largest upload, in MiB.
upload_limit_mb = 512

# Host name players use to connect (steam://connect/HOST:PORT); defaults to
# the host name the panel was opened with.
# public_host = "l4d2.example.org"

# The panel's address as browsers open it. Passkeys are bound to it: set
# it when the panel is reached by any address but http://localhost:PORT.
# It must be a host name (not an IP address) and https://, as browsers
# offer passkeys only to such pages (and to http://localhost).
# public_url = "https://l4d2.example.org"

# How often what the poller sees is written to the servers' graphs
# (seconds).
history_write_secs = 60

# Metrics for Prometheus (its text format, at /metrics): on an address of
# their own, answered without sign-in (keep it private), and/or on the
# panel's address to an admin's API token with the read scope. Off by
# default.
# metrics_listen = "127.0.0.1:9108"
metrics_on_panel = false

# Reverse proxies in front of the panel (exact addresses). Requests from
# them are attributed to the client named in X-Forwarded-For, so login
# rate limits apply per client rather than to the proxy as a whole.
# trusted_proxies = ["127.0.0.1", "::1"]

# Built-in supervisor: give up after max_crashes within crash_window_secs,
# first restart after restart_backoff_ms (doubling), SIGKILL stop_timeout_ms
# after SIGINT.
max_crashes = 5
crash_window_secs = 60
restart_backoff_ms = 1000
stop_timeout_ms = 15000

# Seconds between comparisons of each server's desired and actual state
# (also done right after the panel starts, which brings servers back after
# a reboot).
reconcile_interval_secs = 30

# Seconds between live-state polls of running servers (map, players), and
# days of player history kept.
poll_interval_secs = 5
player_history_days = 30

# Valve's steamcmd, which installs and updates the game: Debian's package
# (non-free, i386) puts it at /usr/games/steamcmd; Valve's tarball
# unpacked below the state root has a steamcmd.sh.
steamcmd = "/usr/games/steamcmd"
# A steamcmd run that prints nothing for this long is ended as hung.
steamcmd_stall_secs = 600
# First wait before retrying a network failure, doubling, 3 attempts.
steamcmd_retry_ms = 10000
# Update the game by itself when a check finds a new build, then restart
# each running server once nobody plays on it. When the panel checks is
# the built-in schedule "Check for game updates" (Schedules page; daily
# at 05:00 host time at first).
auto_update = false
# Each update adds a layer with what changed; past this many layers the
# installation is flattened into one (hard links, no copy).
installation_max_layers = 16
# Where the 32-bit libraries are looked for.
system_root = "/"
# The Steam Web API, which describes Workshop items (no key needed).
steam_api_url = "https://api.steampowered.com"
# First wait before retrying a rate-limited or failed call or download,
# doubling, 4 retries.
steam_api_retry_ms = 2000
# Workshop downloads at once.
workshop_downloads = 4
# When Workshop overlays refresh by themselves each day (HH:MM, UTC);
# "" turns it off. Unchanged items cost one API call per 100 items. The
# first start makes the built-in schedule "Refresh Workshop overlays"
# from it; change that on the Schedules page afterwards.
workshop_refresh_at = "04:30"
# Limits of a script overlay's build (memory without swap).
build_memory_mb = 4096
build_tasks = 512
build_cpus = 2
build_timeout_secs = 3600
build_output_mb = 20480
# A build is stopped when the state root's file system has less free.
build_disk_reserve_mb = 2048

# Backups (the Backups page): Debian's restic, where the repository is
# (a directory, or any restic location: sftp:..., s3:..., rest:...;
# default <root>/backups/repository), the file with its password (made
# on the first backup; keep a copy apart: without it no backup opens),
# and how many to keep.
restic = "/usr/bin/restic"
# backup_repository = "sftp:backup@example.org:/srv/left4me"
# backup_password_file = "/var/lib/left4me/backups/password"
backup_keep_daily = 7
backup_keep_weekly = 4
backup_keep_monthly = 6
"#;

impl Config {
    /// Loads the file (an explicit path must exist; the default may not),
    /// then applies the environment.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(explicit, |key| std::env::var(key).ok())
    }

    pub fn load_with_env(
        explicit: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let path = explicit.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
        let mut config = match std::fs::read_to_string(path) {
            Ok(text) => Self {
                file: Some(path.to_owned()),
                ..Self::parse(&text, path)?
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
                Self::default()
            }
            Err(error) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    error,
                });
            }
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn set<T: std::str::FromStr>(
            env: &impl Fn(&str) -> Option<String>,
            var: &str,
            slot: &mut T,
        ) -> Result<(), ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            if let Some(value) = env(var) {
                *slot = value.parse().map_err(|e: T::Err| ConfigError::Env {
                    var: var.to_owned(),
                    value: value.clone(),
                    message: e.to_string(),
                })?;
            }
            Ok(())
        }
        set(&env, "LEFT4ME_ROOT", &mut self.root)?;
        set(&env, "LEFT4ME_LISTEN", &mut self.listen)?;
        if let Some(db) = env("LEFT4ME_DATABASE") {
            self.database = Some(PathBuf::from(db));
        }
        if let Some(value) = env("LEFT4ME_SUPERVISOR") {
            self.supervisor = match value.as_str() {
                "builtin" => SupervisorKind::Builtin,
                "systemd" => SupervisorKind::Systemd,
                _ => {
                    return Err(ConfigError::Env {
                        var: "LEFT4ME_SUPERVISOR".into(),
                        value,
                        message: "use builtin or systemd".into(),
                    });
                }
            };
        }
        set(&env, "LEFT4ME_SECURE_COOKIES", &mut self.secure_cookies)?;
        if let Some(value) = env("LEFT4ME_METRICS_LISTEN") {
            self.metrics_listen = if value.is_empty() {
                None
            } else {
                Some(
                    value
                        .parse()
                        .map_err(|e: std::net::AddrParseError| ConfigError::Env {
                            var: "LEFT4ME_METRICS_LISTEN".into(),
                            value: value.clone(),
                            message: e.to_string(),
                        })?,
                )
            };
        }
        set(&env, "LEFT4ME_METRICS_ON_PANEL", &mut self.metrics_on_panel)?;
        set(
            &env,
            "LEFT4ME_HISTORY_WRITE_SECS",
            &mut self.history_write_secs,
        )?;
        set(&env, "LEFT4ME_PORT_RANGE_START", &mut self.port_range_start)?;
        set(&env, "LEFT4ME_PORT_RANGE_END", &mut self.port_range_end)?;
        set(&env, "LEFT4ME_WORKERS", &mut self.workers)?;
        set(&env, "LEFT4ME_UPLOAD_LIMIT_MB", &mut self.upload_limit_mb)?;
        if let Some(host) = env("LEFT4ME_PUBLIC_HOST") {
            self.public_host = Some(host).filter(|h| !h.is_empty());
        }
        if let Some(value) = env("LEFT4ME_PUBLIC_URL") {
            self.public_url = if value.is_empty() {
                None
            } else {
                Some(
                    value
                        .parse()
                        .map_err(|e: url::ParseError| ConfigError::Env {
                            var: "LEFT4ME_PUBLIC_URL".into(),
                            value: value.clone(),
                            message: e.to_string(),
                        })?,
                )
            };
        }
        set(&env, "LEFT4ME_TRUSTED_PROXIES", &mut self.trusted_proxies)?;
        set(&env, "LEFT4ME_MAX_CRASHES", &mut self.max_crashes)?;
        set(
            &env,
            "LEFT4ME_CRASH_WINDOW_SECS",
            &mut self.crash_window_secs,
        )?;
        set(
            &env,
            "LEFT4ME_RESTART_BACKOFF_MS",
            &mut self.restart_backoff_ms,
        )?;
        set(&env, "LEFT4ME_STOP_TIMEOUT_MS", &mut self.stop_timeout_ms)?;
        set(
            &env,
            "LEFT4ME_RECONCILE_INTERVAL_SECS",
            &mut self.reconcile_interval_secs,
        )?;
        set(
            &env,
            "LEFT4ME_POLL_INTERVAL_SECS",
            &mut self.poll_interval_secs,
        )?;
        set(
            &env,
            "LEFT4ME_PLAYER_HISTORY_DAYS",
            &mut self.player_history_days,
        )?;
        set(&env, "LEFT4ME_STEAMCMD", &mut self.steamcmd)?;
        set(
            &env,
            "LEFT4ME_STEAMCMD_STALL_SECS",
            &mut self.steamcmd_stall_secs,
        )?;
        set(
            &env,
            "LEFT4ME_STEAMCMD_RETRY_MS",
            &mut self.steamcmd_retry_ms,
        )?;
        set(&env, "LEFT4ME_AUTO_UPDATE", &mut self.auto_update)?;
        set(
            &env,
            "LEFT4ME_INSTALLATION_MAX_LAYERS",
            &mut self.installation_max_layers,
        )?;
        set(
            &env,
            "LEFT4ME_GAME_CHECK_INTERVAL_SECS",
            &mut self.game_check_interval_secs,
        )?;
        set(&env, "LEFT4ME_SYSTEM_ROOT", &mut self.system_root)?;
        set(&env, "LEFT4ME_STEAM_API_URL", &mut self.steam_api_url)?;
        set(
            &env,
            "LEFT4ME_STEAM_API_RETRY_MS",
            &mut self.steam_api_retry_ms,
        )?;
        set(
            &env,
            "LEFT4ME_WORKSHOP_DOWNLOADS",
            &mut self.workshop_downloads,
        )?;
        set(
            &env,
            "LEFT4ME_WORKSHOP_REFRESH_AT",
            &mut self.workshop_refresh_at,
        )?;
        set(&env, "LEFT4ME_BUILD_MEMORY_MB", &mut self.build_memory_mb)?;
        set(&env, "LEFT4ME_BUILD_TASKS", &mut self.build_tasks)?;
        set(&env, "LEFT4ME_BUILD_CPUS", &mut self.build_cpus)?;
        set(
            &env,
            "LEFT4ME_BUILD_TIMEOUT_SECS",
            &mut self.build_timeout_secs,
        )?;
        set(&env, "LEFT4ME_BUILD_OUTPUT_MB", &mut self.build_output_mb)?;
        set(
            &env,
            "LEFT4ME_BUILD_DISK_RESERVE_MB",
            &mut self.build_disk_reserve_mb,
        )?;
        set(&env, "LEFT4ME_RESTIC", &mut self.restic)?;
        if let Some(repository) = env("LEFT4ME_BACKUP_REPOSITORY") {
            self.backup_repository = Some(repository).filter(|r| !r.is_empty());
        }
        if let Some(file) = env("LEFT4ME_BACKUP_PASSWORD_FILE") {
            self.backup_password_file =
                Some(PathBuf::from(file)).filter(|f| !f.as_os_str().is_empty());
        }
        set(
            &env,
            "LEFT4ME_BACKUP_KEEP_DAILY",
            &mut self.backup_keep_daily,
        )?;
        set(
            &env,
            "LEFT4ME_BACKUP_KEEP_WEEKLY",
            &mut self.backup_keep_weekly,
        )?;
        set(
            &env,
            "LEFT4ME_BACKUP_KEEP_MONTHLY",
            &mut self.backup_keep_monthly,
        )?;
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.port_range_start < 1024 || self.port_range_start > self.port_range_end {
            return Err(ConfigError::Invalid(format!(
                "port_range_start..port_range_end ({}..{}) must be a non-empty range from 1024 up",
                self.port_range_start, self.port_range_end
            )));
        }
        if self.poll_interval_secs == 0 {
            return Err(ConfigError::Invalid(
                "poll_interval_secs must be at least 1".into(),
            ));
        }
        if self.reconcile_interval_secs == 0 {
            return Err(ConfigError::Invalid(
                "reconcile_interval_secs must be at least 1".into(),
            ));
        }
        if self.game_check_interval_secs == 0 {
            return Err(ConfigError::Invalid(
                "game_check_interval_secs must be at least 1".into(),
            ));
        }
        if self.workers == 0 {
            return Err(ConfigError::Invalid("workers must be at least 1".into()));
        }
        for (key, value) in [
            ("build_memory_mb", self.build_memory_mb),
            ("build_tasks", u64::from(self.build_tasks)),
            ("build_cpus", u64::from(self.build_cpus)),
            ("build_timeout_secs", self.build_timeout_secs),
            ("build_output_mb", self.build_output_mb),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{key} must be at least 1")));
            }
        }
        if self.workshop_downloads == 0 {
            return Err(ConfigError::Invalid(
                "workshop_downloads must be at least 1".into(),
            ));
        }
        if !(self.steam_api_url.starts_with("https://")
            || self.steam_api_url.starts_with("http://"))
        {
            return Err(ConfigError::Invalid(format!(
                "steam_api_url {:?} must be an http:// or https:// URL",
                self.steam_api_url
            )));
        }
        if !self.workshop_refresh_at.is_empty() && self.workshop_refresh_time().is_none() {
            return Err(ConfigError::Invalid(format!(
                "workshop_refresh_at {:?} must be a time of day as HH:MM (UTC), or empty",
                self.workshop_refresh_at
            )));
        }
        Ok(())
    }

    /// The daily Workshop refresh as seconds after midnight UTC, if on.
    pub fn workshop_refresh_time(&self) -> Option<u32> {
        let (hours, minutes) = self.workshop_refresh_at.split_once(':')?;
        let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
        (hours < 24 && minutes < 60 && self.workshop_refresh_at.len() == 5)
            .then_some(hours * 3600 + minutes * 60)
    }

    /// Where browsers open the panel, for passkeys: `public_url`, or
    /// `http://localhost:PORT` while the panel listens on loopback (browsers
    /// treat that as secure). Otherwise why there is none.
    pub fn web_origin(&self) -> Result<url::Url, String> {
        let url = match &self.public_url {
            Some(url) => url.clone(),
            None if self.listen.ip().is_loopback() => {
                url::Url::parse(&format!("http://localhost:{}", self.listen.port()))
                    .map_err(|e| e.to_string())?
            }
            None => {
                return Err(format!(
                    "the panel listens on {} and public_url is not set: set public_url to the \
                     address browsers open it with (https://NAME)",
                    self.listen
                ));
            }
        };
        match url.host() {
            Some(url::Host::Domain(name)) if url.scheme() == "https" || name == "localhost" => {
                Ok(url.join("/").map_err(|e| e.to_string())?)
            }
            Some(url::Host::Domain(_)) => Err(format!(
                "public_url {url} is not https://: browsers offer passkeys only to secure pages"
            )),
            _ => Err(format!(
                "public_url {url} has no host name: passkeys are bound to a name, not an address"
            )),
        }
    }

    /// Where backups go.
    pub fn backup_repository(&self) -> String {
        self.backup_repository
            .clone()
            .unwrap_or_else(|| self.root.join("backups/repository").display().to_string())
    }

    /// The backup repository's password file.
    pub fn backup_password_file(&self) -> PathBuf {
        self.backup_password_file
            .clone()
            .unwrap_or_else(|| self.root.join("backups/password"))
    }

    pub fn database_path(&self) -> PathBuf {
        self.database
            .clone()
            .unwrap_or_else(|| self.root.join("left4me.db"))
    }

    pub fn port_range(&self) -> RangeInclusive<u16> {
        self.port_range_start..=self.port_range_end
    }

    pub fn upload_limit_bytes(&self) -> u64 {
        self.upload_limit_mb.saturating_mul(1024 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_is_the_default_config() {
        let parsed = Config::parse(DEFAULT_TOML, Path::new("default.toml")).unwrap();
        assert_eq!(parsed, Config::default());
    }

    /// The Debian package's `/etc/left4me/left4me.toml` is the default
    /// file choosing the systemd supervisor, and nothing else.
    #[test]
    fn the_packaged_file_is_the_default_with_systemd() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/left4me.toml");
        let packaged = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            packaged,
            DEFAULT_TOML.replace("supervisor = \"builtin\"", "supervisor = \"systemd\"")
        );
        let parsed = Config::parse(&packaged, &path).unwrap();
        assert_eq!(
            parsed,
            Config {
                supervisor: SupervisorKind::Systemd,
                ..Config::default()
            }
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::parse(
            "listen = \"127.0.0.1:1\"\nlisten_port = 3\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("c.toml: "), "{text}");
        assert!(text.contains("listen_port"), "{text}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "workers = 3\nlisten = \"127.0.0.1:9000\"\n").unwrap();
        let env = |k: &str| (k == "LEFT4ME_LISTEN").then(|| "127.0.0.1:9100".to_owned());
        let config = Config::load_with_env(Some(&file), env).unwrap();
        assert_eq!(config.workers, 3);
        assert_eq!(config.listen.port(), 9100);

        let bad = |k: &str| (k == "LEFT4ME_WORKERS").then(|| "many".to_owned());
        let err = Config::load_with_env(Some(&file), bad).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("environment variable LEFT4ME_WORKERS=\"many\""),
            "{err}"
        );
    }

    #[test]
    fn trusted_proxies_come_from_the_file_or_the_environment() {
        let parsed = Config::parse(
            "trusted_proxies = [\"10.0.0.1\", \"::1\"]\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(parsed.trusted_proxies.contains("10.0.0.1".parse().unwrap()));
        assert!(parsed.trusted_proxies.contains("::1".parse().unwrap()));
        assert!(!parsed.trusted_proxies.contains("10.0.0.2".parse().unwrap()));
        // An IPv4 peer seen on an IPv6 socket is the same proxy.
        assert!(
            parsed
                .trusted_proxies
                .contains("::ffff:10.0.0.1".parse().unwrap())
        );

        let env = |k: &str| (k == "LEFT4ME_TRUSTED_PROXIES").then(|| "127.0.0.1, ::1".to_owned());
        let config = Config::load_with_env(Some(Path::new("/dev/null")), env).unwrap();
        assert_eq!(config.trusted_proxies.0.len(), 2);
        let bad = |k: &str| (k == "LEFT4ME_TRUSTED_PROXIES").then(|| "10.0.0.0/8".to_owned());
        let err = Config::load_with_env(Some(Path::new("/dev/null")), bad).unwrap_err();
        assert!(
            err.to_string()
                .contains("LEFT4ME_TRUSTED_PROXIES=\"10.0.0.0/8\""),
            "{err}"
        );
    }

    #[test]
    fn an_explicit_missing_file_is_an_error() {
        let err =
            Config::load_with_env(Some(Path::new("/nonexistent/l.toml")), |_| None).unwrap_err();
        assert!(
            err.to_string().contains("cannot read /nonexistent/l.toml"),
            "{err}"
        );
    }
}
