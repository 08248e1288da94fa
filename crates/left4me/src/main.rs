//! `left4me`: run Left 4 Dead 2 servers on this host.

mod demo;
mod game;
mod instance;
mod logs;
mod net;
mod panel;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use left4me_config::{Config, SupervisorKind};
use left4me_host::layout::StateRoot;
use left4me_host::lifecycle::Host;
use left4me_host::mount::MountApi;
use left4me_host::name::InstanceName;
use left4me_host::supervisor::builtin::{RestartPolicy, SuperviseArgs};
use left4me_host::supervisor::systemd::{server_unit, sync_start_on_boot};

#[derive(Debug, Parser)]
#[command(
    name = "left4me",
    version,
    about = "Run Left 4 Dead 2 dedicated servers on this host"
)]
struct Cli {
    /// Configuration file (default /etc/left4me/left4me.toml, if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,

    /// State root: installation, overlays, instances, runtime state
    /// (default /var/lib/left4me; env LEFT4ME_ROOT).
    #[arg(long, global = true)]
    root: Option<PathBuf>,

    /// Who runs the game processes (env LEFT4ME_SUPERVISOR).
    #[arg(long, global = true, value_enum)]
    supervisor: Option<Backend>,

    /// Built-in supervisor: give up after this many crashes within the
    /// crash window (env LEFT4ME_MAX_CRASHES; default 5).
    #[arg(long, global = true)]
    max_crashes: Option<u32>,
    /// Crash window in seconds (env LEFT4ME_CRASH_WINDOW_SECS; default 60).
    #[arg(long, global = true)]
    crash_window_secs: Option<u64>,
    /// First restart delay in ms, doubling per crash, at most 30 s (env
    /// LEFT4ME_RESTART_BACKOFF_MS; default 1000).
    #[arg(long, global = true)]
    restart_backoff_ms: Option<u64>,
    /// Milliseconds between SIGINT and SIGKILL when stopping (env
    /// LEFT4ME_STOP_TIMEOUT_MS; default 15000).
    #[arg(long, global = true)]
    stop_timeout_ms: Option<u64>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// A supervisor daemon per instance, started by left4me itself.
    Builtin,
    /// systemd template units `left4me-server@NAME.service`.
    Systemd,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web panel.
    Serve(panel::ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Put the whole panel back from a backup: on a new host, install
    /// left4me, configure the backup repository as before, put its
    /// password file (and the old secrets.key) in place, stop the panel,
    /// run this, start the panel. It then installs the game, rebuilds the
    /// built overlays and starts the servers that were running.
    Restore(panel::RestoreArgs),
    /// Print a fresh one-time link to the page that creates the first
    /// admin (while no user exists; earlier links stop working).
    #[command(name = "setup-url")]
    SetupUrl,
    /// Manage panel users.
    #[command(subcommand)]
    User(panel::UserCommand),
    /// Manage the panel's overlays.
    #[command(subcommand)]
    Overlays(panel::OverlaysCommand),
    /// The panel's unfinished jobs, and cancelling one while the panel is
    /// stopped.
    #[command(subcommand)]
    Jobs(panel::JobsCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(panel::ConfigCommand),
    /// Manage server instances.
    #[command(subcommand)]
    Instance(instance::InstanceCommand),
    /// Install and update the game with steamcmd.
    #[command(subcommand)]
    Game(game::GameCommand),
    /// Start a demo server from a synthetic installation (no Steam needed).
    Demo(demo::DemoArgs),
    /// Query a game server with A2S (info, players, rules).
    Query(net::QueryArgs),
    /// Run an RCON command on a game server.
    Rcon(net::RconArgs),
    /// Mount or unmount an instance's overlay (root; used by
    /// left4me-mount@.service).
    #[command(name = "mount-helper", subcommand)]
    MountHelper(MountHelperCommand),
    /// Enable or disable left4me-server@NAME.service for boot to match the
    /// instance's start-on-boot file (root; used by
    /// left4me-autostart@.service).
    #[command(name = "autostart-helper")]
    AutostartHelper { name: InstanceName },
    /// Install, update or check the game and print events and the result
    /// as JSON lines (root; the ExecStart of left4me-game@TASK.service).
    #[command(name = "game-helper", hide = true)]
    GameHelper { task: String },
    /// Hand a script build's layer to the build user before the script
    /// (prepare) and back after it (finish), make and remove its network
    /// namespace (network-up, network-down) (root; used by
    /// left4me-build-prepare@, -finish@ and -net@).
    #[command(name = "build-helper", subcommand, hide = true)]
    BuildHelper(BuildHelperCommand),
    /// Replace this process with the instance's game, its arguments read
    /// from instance.env (the ExecStart of left4me-server@.service).
    #[command(name = "run-game")]
    RunGame { name: InstanceName },
    /// The built-in supervisor daemon (started by `instance start`).
    #[command(name = "supervise", hide = true)]
    Supervise {
        #[arg(long)]
        policy: String,
        #[arg(long)]
        detach: bool,
        name: InstanceName,
    },
}

#[derive(Debug, Subcommand)]
enum MountHelperCommand {
    /// Mount runtime/NAME/merged from instance.env's layers.
    Mount { name: InstanceName },
    /// Unmount runtime/NAME/merged.
    Umount { name: InstanceName },
}

#[derive(Debug, Subcommand)]
enum BuildHelperCommand {
    Prepare { name: String },
    Finish { name: String },
    NetworkUp { name: String },
    NetworkDown { name: String },
}

/// A failure with the exit code it maps to.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Self {
            code: 1,
            error: error.into(),
        }
    }
}

impl Failure {
    /// Exit code 2: the input was invalid.
    pub(crate) fn invalid(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 2,
            error: error.into(),
        }
    }
}

pub(crate) type CliResult = Result<(), Failure>;

/// The configuration: file, then environment, then these flags.
pub(crate) fn settings(cli: &Cli) -> Result<Config, Failure> {
    let mut config = Config::load(cli.config.as_deref()).map_err(Failure::invalid)?;
    if let Some(root) = &cli.root {
        config.root.clone_from(root);
    }
    if let Some(backend) = cli.supervisor {
        config.supervisor = match backend {
            Backend::Builtin => SupervisorKind::Builtin,
            Backend::Systemd => SupervisorKind::Systemd,
        };
    }
    if let Some(v) = cli.max_crashes {
        config.max_crashes = v;
    }
    if let Some(v) = cli.crash_window_secs {
        config.crash_window_secs = v;
    }
    if let Some(v) = cli.restart_backoff_ms {
        config.restart_backoff_ms = v;
    }
    if let Some(v) = cli.stop_timeout_ms {
        config.stop_timeout_ms = v;
    }
    Ok(config)
}

pub(crate) fn open_host(cli: &Cli) -> Result<Host, Failure> {
    let config = settings(cli)?;
    let program = std::env::current_exe()?;
    Ok(Host::open(&config.root, config.supervisor(&program))?)
}

fn run(cli: &Cli) -> CliResult {
    match &cli.command {
        Command::Serve(args) => panel::serve(cli, args),
        Command::Migrate => panel::migrate(cli),
        Command::Restore(args) => panel::restore(cli, args),
        Command::SetupUrl => panel::setup_url(cli),
        Command::User(cmd) => panel::user(cli, cmd),
        Command::Overlays(cmd) => panel::overlays(cli, cmd),
        Command::Jobs(cmd) => panel::jobs(cli, cmd),
        Command::Config(cmd) => panel::config(cmd),
        Command::Instance(cmd) => instance::run(cli, cmd),
        Command::Game(cmd) => game::run(cli, cmd),
        Command::GameHelper { task } => game::helper(cli, task),
        Command::Demo(args) => demo::run(cli, args),
        Command::Query(args) => net::query(args),
        Command::Rcon(args) => net::rcon(args),
        Command::MountHelper(cmd) => mount_helper(cli, cmd),
        Command::BuildHelper(cmd) => {
            let root = StateRoot::new(settings(cli)?.root)?;
            match cmd {
                BuildHelperCommand::Prepare { name } => {
                    left4me_host::scripts::prepare_unit(&root, name)?;
                }
                BuildHelperCommand::Finish { name } => {
                    left4me_host::scripts::finish_unit(&root, name)?;
                }
                BuildHelperCommand::NetworkUp { name } => {
                    left4me_host::scripts::network_up(&root, name)?;
                }
                BuildHelperCommand::NetworkDown { name } => {
                    left4me_host::scripts::network_down(name)?;
                }
            }
            Ok(())
        }
        Command::AutostartHelper { name } => {
            let root = StateRoot::new(settings(cli)?.root)?;
            let on = sync_start_on_boot(&root, name, Path::new("systemctl"))?;
            let unit = server_unit(name);
            println!("{unit} {}", if on { "enabled" } else { "disabled" });
            Ok(())
        }
        Command::RunGame { name } => {
            let root = StateRoot::new(settings(cli)?.root)?;
            Err(left4me_host::supervisor::exec_game(&root, name).into())
        }
        Command::Supervise {
            policy,
            detach,
            name,
        } => {
            let policy: RestartPolicy = serde_json::from_str(policy).map_err(Failure::invalid)?;
            left4me_host::supervisor::builtin::supervise_main(SuperviseArgs {
                root: settings(cli)?.root,
                name: name.clone(),
                policy,
                detach: *detach,
            })?;
            Ok(())
        }
    }
}

fn mount_helper(cli: &Cli, cmd: &MountHelperCommand) -> CliResult {
    use left4me_host::supervisor::{Target, mount_instance, unmount_instance};
    let root = StateRoot::new(settings(cli)?.root)?;
    let (MountHelperCommand::Mount { name } | MountHelperCommand::Umount { name }) = cmd;
    let paths = root.instance(name);
    let target = Target {
        root: &root,
        name,
        paths: &paths,
    };
    match cmd {
        MountHelperCommand::Mount { .. } => mount_instance(&target, MountApi::Auto)?,
        MountHelperCommand::Umount { .. } => unmount_instance(&target)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            // One line: the error and its causes.
            eprintln!("left4me: error: {error:#}");
            ExitCode::from(code)
        }
    }
}
