//! `left4me instance ...`: the lifecycle commands.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Subcommand;
use left4me_host::events::{CancellationToken, Ctx, Event};
use left4me_host::lifecycle::{Host, HostError, InstanceStatus, StartOutcome};
use left4me_host::name::InstanceName;
use left4me_host::spec::Spec;
use srcds_protocol::a2s::{ReadyWait, Try};

use crate::{Cli, CliResult, Failure, open_host};

#[derive(Debug, Subcommand)]
pub(crate) enum InstanceCommand {
    /// Write an instance's files from a spec (idempotent).
    Init {
        name: InstanceName,
        #[arg(long)]
        spec: PathBuf,
    },
    /// Start an instance (initializing it from --spec first if given).
    Start {
        name: InstanceName,
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Wait up to SECS for the server to answer A2S_INFO.
        #[arg(long, value_name = "SECS")]
        wait_ready: Option<u64>,
    },
    /// Stop the server and unmount (succeeds when already stopped).
    Stop { name: InstanceName },
    /// Stop and remove the instance's files and runtime state.
    Reset { name: InstanceName },
    /// Stop and remove the instance entirely.
    Delete { name: InstanceName },
    /// Show an instance's state.
    Status {
        name: InstanceName,
        #[arg(long)]
        json: bool,
    },
    /// List instances.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print the console log.
    Logs {
        name: InstanceName,
        #[arg(long, default_value_t = 50)]
        lines: usize,
        /// Keep printing new lines as they come.
        #[arg(long, short)]
        follow: bool,
    },
}

/// Console lines printed with a failed start.
const CONSOLE_TAIL: usize = 20;

fn print_event(event: Event) {
    match event {
        Event::Step(text) => eprintln!("› {text}"),
        Event::Stdout(line) | Event::Stderr(line) => eprintln!("  | {line}"),
        Event::Progress { done, total } => eprintln!("  [{done}/{total}]"),
    }
}

/// Runs a lifecycle operation on a worker thread; Ctrl-C cancels it
/// between steps (the operation rolls back what it did).
pub(crate) fn cancellable<T: Send + 'static>(
    host: Host,
    op: impl FnOnce(&Host, &Ctx<'_>) -> Result<T, HostError> + Send + 'static,
) -> Result<T, Failure> {
    with_ctrl_c(move |ctx| op(&host, ctx))?.map_err(host_failure)
}

/// Runs `op` on a worker thread with a context that prints its events;
/// Ctrl-C cancels it. The outer error is the runtime's, the inner `op`'s.
pub(crate) fn with_ctrl_c<T: Send + 'static, E: Send + 'static>(
    op: impl FnOnce(&Ctx<'_>) -> Result<T, E> + Send + 'static,
) -> Result<Result<T, E>, Failure> {
    until_interrupted(move |token| op(&Ctx::new(&print_event, token)))
}

/// Runs `op` on a worker thread; SIGINT (Ctrl-C, or systemd stopping a
/// unit whose `KillSignal=SIGINT`) cancels the token it gets.
pub(crate) fn until_interrupted<T: Send + 'static, E: Send + 'static>(
    op: impl FnOnce(&CancellationToken) -> Result<T, E> + Send + 'static,
) -> Result<Result<T, E>, Failure> {
    let token = CancellationToken::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(async {
        let worker_token = token.clone();
        let mut task = tokio::task::spawn_blocking(move || op(&worker_token));
        loop {
            tokio::select! {
                joined = &mut task => break joined,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("› cancelling...");
                    token.cancel();
                }
            }
        }
    })?)
}

pub(crate) fn host_failure(error: HostError) -> Failure {
    if error.is_invalid_input() {
        Failure::invalid(error)
    } else {
        Failure::from(error)
    }
}

fn load_spec(host: &Host, path: &std::path::Path) -> Result<Spec, Failure> {
    Spec::load(path, host.root()).map_err(Failure::invalid)
}

pub(crate) fn run(cli: &Cli, cmd: &InstanceCommand) -> CliResult {
    let host = open_host(cli)?;
    match cmd {
        InstanceCommand::Init { name, spec } => {
            let spec = load_spec(&host, spec)?;
            let name = name.clone();
            cancellable(host, move |h, ctx| h.initialize(&name, &spec, ctx))?;
        }
        InstanceCommand::Start {
            name,
            spec,
            wait_ready,
        } => {
            let spec = spec.as_ref().map(|p| load_spec(&host, p)).transpose()?;
            let owned = name.clone();
            let outcome = cancellable(host, move |h, ctx| {
                let outcome = h.start(&owned, spec.as_ref(), ctx).inspect_err(|e| {
                    if e.concerns_the_game() {
                        ctx.emit(Event::Step(format!(
                            "the last {CONSOLE_TAIL} lines of its console:"
                        )));
                        for line in h.console_tail(&owned, CONSOLE_TAIL) {
                            ctx.emit(Event::Stderr(line));
                        }
                    }
                })?;
                Ok((outcome, h.status(&owned)?))
            })?;
            if let (Some(secs), (_, status)) = (wait_ready, &outcome) {
                wait_ready_for(status, Duration::from_secs(*secs))?;
            }
            if outcome.0 == StartOutcome::AlreadyRunning {
                eprintln!("› {name} was already running");
            }
        }
        InstanceCommand::Stop { name } => {
            let name = name.clone();
            cancellable(host, move |h, ctx| h.stop(&name, ctx))?;
        }
        InstanceCommand::Reset { name } => {
            let name = name.clone();
            cancellable(host, move |h, ctx| h.reset(&name, ctx))?;
        }
        InstanceCommand::Delete { name } => {
            let name = name.clone();
            cancellable(host, move |h, ctx| h.delete(&name, ctx))?;
        }
        InstanceCommand::Status { name, json } => {
            require_exists(&host, name)?;
            let status = host.status(name).map_err(host_failure)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print_status(&status);
            }
        }
        InstanceCommand::List { json } => {
            let all = host.list().map_err(host_failure)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print_list(&all);
            }
        }
        InstanceCommand::Logs {
            name,
            lines,
            follow,
        } => {
            require_exists(&host, name)?;
            crate::logs::show(&host.log_source(name), *lines, *follow)?;
        }
    }
    Ok(())
}

pub(crate) fn require_exists(host: &Host, name: &InstanceName) -> CliResult {
    if host.exists(name) {
        Ok(())
    } else {
        Err(Failure::invalid(anyhow::anyhow!(
            "there is no instance {name} (`left4me instance list` shows them)"
        )))
    }
}

pub(crate) fn wait_ready_for(status: &InstanceStatus, limit: Duration) -> CliResult {
    let port = status
        .port
        .context("the instance has no port in instance.env")?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    eprintln!(
        "› waiting up to {}s for {addr} to answer A2S_INFO...",
        limit.as_secs()
    );
    let waited = runtime.block_on(ReadyWait::new(addr, limit).finish());
    match waited {
        Try::Ready(info) => {
            eprintln!(
                "› ready: {} on {} ({}/{} players)",
                info.name, info.map, info.players, info.max_players
            );
            Ok(())
        }
        Try::NotYet | Try::TimedOut => Err(Failure::from(anyhow::anyhow!(
            "the server did not answer A2S_INFO on {addr} within {}s (it is still running; see `left4me instance logs {}`)",
            limit.as_secs(),
            status.name
        ))),
    }
}

fn uptime(since: Option<u64>) -> String {
    let Some(since) = since else {
        return "-".into();
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let secs = now.saturating_sub(since);
    format!("{}h{:02}m{:02}s", secs / 3600, secs / 60 % 60, secs % 60)
}

fn print_status(s: &InstanceStatus) {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!("name:        {}", s.name);
    println!("state:       {}", s.state);
    if let Some(reason) = &s.reason {
        println!("reason:      {reason}");
    }
    println!("initialized: {}", s.initialized);
    println!("mounted:     {}", s.mounted);
    println!("running:     {}", s.running);
    println!("pid:         {}", or_dash(s.pid.map(|p| p.to_string())));
    println!("uptime:      {}", uptime(s.since));
    println!("restarts:    {}", s.restarts);
    println!("port:        {}", or_dash(s.port.map(|p| p.to_string())));
}

fn print_list(all: &[InstanceStatus]) {
    println!(
        "{:<24} {:<11} {:>6} {:>8} {:>8}  UPTIME",
        "NAME", "STATE", "PORT", "PID", "RESTARTS"
    );
    for s in all {
        println!(
            "{:<24} {:<11} {:>6} {:>8} {:>8}  {}",
            s.name,
            s.state,
            s.port.map_or("-".into(), |p| p.to_string()),
            s.pid.map_or("-".into(), |p| p.to_string()),
            s.restarts,
            uptime(s.since)
        );
    }
}
