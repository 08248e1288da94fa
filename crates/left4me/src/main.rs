//! `left4me`: run Left 4 Dead 2 servers on this host.

mod demo;
mod instance;
mod logs;
mod net;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use left4me_host::layout::{DEFAULT_ROOT, StateRoot};
use left4me_host::lifecycle::Host;
use left4me_host::mount::MountApi;
use left4me_host::name::InstanceName;
use left4me_host::supervisor::Supervisor;
use left4me_host::supervisor::builtin::{BuiltinSupervisor, RestartPolicy, SuperviseArgs};
use left4me_host::supervisor::systemd::SystemdSupervisor;

#[derive(Debug, Parser)]
#[command(
    name = "left4me",
    version,
    about = "Run Left 4 Dead 2 dedicated servers on this host"
)]
struct Cli {
    /// State root: installation, overlays, instances, runtime state.
    #[arg(long, global = true, env = "LEFT4ME_ROOT", default_value = DEFAULT_ROOT)]
    root: PathBuf,

    /// Who runs the game processes.
    #[arg(long, global = true, env = "LEFT4ME_SUPERVISOR", value_enum, default_value_t = Backend::Builtin)]
    supervisor: Backend,

    #[command(flatten)]
    policy: PolicyArgs,

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

/// Crash and stop handling of the built-in supervisor.
#[derive(Debug, Args)]
struct PolicyArgs {
    /// Give up after this many crashes within the crash window.
    #[arg(long, global = true, env = "LEFT4ME_MAX_CRASHES", default_value_t = 5)]
    max_crashes: u32,
    /// Crash window in seconds.
    #[arg(
        long,
        global = true,
        env = "LEFT4ME_CRASH_WINDOW_SECS",
        default_value_t = 60
    )]
    crash_window_secs: u64,
    /// First restart delay in milliseconds; doubles per crash (max 30 s).
    #[arg(
        long,
        global = true,
        env = "LEFT4ME_RESTART_BACKOFF_MS",
        default_value_t = 1000
    )]
    restart_backoff_ms: u64,
    /// Milliseconds between SIGINT and SIGKILL when stopping.
    #[arg(
        long,
        global = true,
        env = "LEFT4ME_STOP_TIMEOUT_MS",
        default_value_t = 15_000
    )]
    stop_timeout_ms: u64,
}

impl PolicyArgs {
    fn policy(&self) -> RestartPolicy {
        RestartPolicy {
            max_crashes: self.max_crashes,
            window_secs: self.crash_window_secs,
            backoff_initial_ms: self.restart_backoff_ms,
            stop_timeout_ms: self.stop_timeout_ms,
            ..RestartPolicy::default()
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage server instances.
    #[command(subcommand)]
    Instance(instance::InstanceCommand),
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

fn supervisor(cli: &Cli) -> anyhow::Result<Box<dyn Supervisor>> {
    Ok(match cli.supervisor {
        Backend::Builtin => Box::new(BuiltinSupervisor {
            program: std::env::current_exe()?,
            policy: cli.policy.policy(),
            mount_api: MountApi::Auto,
        }),
        Backend::Systemd => Box::new(SystemdSupervisor::default()),
    })
}

fn open_host(cli: &Cli) -> anyhow::Result<Host> {
    Ok(Host::open(&cli.root, supervisor(cli)?)?)
}

fn run(cli: &Cli) -> CliResult {
    match &cli.command {
        Command::Instance(cmd) => instance::run(cli, cmd),
        Command::Demo(args) => demo::run(cli, args),
        Command::Query(args) => net::query(args),
        Command::Rcon(args) => net::rcon(args),
        Command::MountHelper(cmd) => mount_helper(cli, cmd),
        Command::Supervise {
            policy,
            detach,
            name,
        } => {
            let policy: RestartPolicy = serde_json::from_str(policy).map_err(Failure::invalid)?;
            left4me_host::supervisor::builtin::supervise_main(SuperviseArgs {
                root: cli.root.clone(),
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
    let root = StateRoot::new(&cli.root)?;
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
