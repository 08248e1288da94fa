//! The built-in supervisor: a small daemon per running instance.
//!
//! `start` mounts the overlay, then launches `PROGRAM supervise --detach`,
//! which launches the daemon (`PROGRAM supervise`) in its own process group
//! and exits, so the daemon is reparented to init and outlives the CLI or
//! the panel that started it. The daemon holds `supervisor.lock` for its
//! whole life (liveness without PID guessing), runs `merged/srcds_linux` with
//! the merged tree as working directory, copies its output into the rotated
//! `console.log`, restarts it after crashes with backoff, gives up after
//! too many crashes in a window, and records everything in
//! `supervisor.json`. SIGTERM asks it to stop: SIGINT to the game's process
//! group, SIGKILL after the stop timeout.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::process::Signal;
use serde::{Deserialize, Serialize};

use super::console_log::ConsoleLog;
use super::process::{self, group_exists, signal_group, signal_process};
use super::{
    GAME_PROGRAM, LogSource, ProcessStatus, Supervisor, SupervisorError, Target, game_command,
    mount_instance, unmount_instance,
};
use crate::events::{Ctx, fault_point};
use crate::fsutil::{remove_file_if_exists, write_atomic};
use crate::instance_env::InstanceEnv;
use crate::layout::{InstancePaths, StateRoot};
use crate::lock::is_locked;
use crate::mount::{self, MountApi, MountState};
use crate::name::InstanceName;

/// The subcommand of the host program that runs [`supervise_main`].
pub const SUPERVISE_SUBCOMMAND: &str = "supervise";

/// How the daemon treats crashes, stops and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    /// Give up after this many crashes within `window_secs`.
    pub max_crashes: u32,
    pub window_secs: u64,
    /// First restart delay; doubles per crash in the window.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// SIGINT first; SIGKILL when the game has not exited after this.
    pub stop_timeout_ms: u64,
    pub log_max_bytes: u64,
    /// Rotated logs kept besides the current one.
    pub log_keep: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            max_crashes: 5,
            window_secs: 60,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 30_000,
            stop_timeout_ms: 15_000,
            log_max_bytes: 8 * 1024 * 1024,
            log_keep: 3,
        }
    }
}

impl RestartPolicy {
    fn stop_timeout(&self) -> Duration {
        Duration::from_millis(self.stop_timeout_ms)
    }

    fn backoff(&self, crashes_in_window: u32) -> Duration {
        let factor = 1u64 << crashes_in_window.saturating_sub(1).min(20);
        Duration::from_millis(
            self.backoff_initial_ms
                .saturating_mul(factor)
                .min(self.backoff_max_ms),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Starting,
    Running,
    Backoff,
    Stopping,
    Stopped,
    Failed,
}

/// `supervisor.json`, written atomically by the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonState {
    pub supervisor_pid: u32,
    /// The kernel's boot id: PIDs and start times repeat across reboots.
    pub boot_id: String,
    /// The daemon's own stop timeout, which `stop` waits for.
    pub stop_timeout_ms: u64,
    pub state: RunState,
    pub pid: Option<u32>,
    pub pid_start_time: Option<u64>,
    pub since: Option<u64>,
    pub restarts: u32,
    pub reason: Option<String>,
}

impl DaemonState {
    fn load(path: &Path) -> Option<Self> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// The game process recorded here, if it still runs.
    fn live_game(&self) -> Option<u32> {
        let (pid, started) = (self.pid?, self.pid_start_time?);
        (self.boot_id == process::boot_id() && process::is_same_process_alive(pid, started))
            .then_some(pid)
    }

    fn stop_timeout(&self) -> Duration {
        Duration::from_millis(self.stop_timeout_ms)
    }
}

#[derive(Debug, Clone)]
pub struct BuiltinSupervisor {
    /// The program with the [`SUPERVISE_SUBCOMMAND`] (the `left4me` binary).
    pub program: PathBuf,
    pub policy: RestartPolicy,
    pub mount_api: MountApi,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `PROGRAM supervise --root ROOT --policy JSON NAME`.
fn supervise_command(
    program: &Path,
    root: &StateRoot,
    name: &InstanceName,
    policy: &RestartPolicy,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.arg(SUPERVISE_SUBCOMMAND)
        .arg("--root")
        .arg(root.path())
        .arg("--policy")
        .arg(serde_json::to_string(policy).expect("a policy always serialises"))
        .arg(name.as_str());
    cmd
}

impl BuiltinSupervisor {
    fn spawn_daemon(&self, target: &Target<'_>) -> Result<(), SupervisorError> {
        let state_path = target.paths.supervisor_state();
        remove_file_if_exists(&state_path)
            .map_err(SupervisorError::io("removing old supervisor state"))?;
        let status = supervise_command(&self.program, target.root, target.name, &self.policy)
            .arg("--detach")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(SupervisorError::io(format!(
                "running {} {SUPERVISE_SUBCOMMAND}",
                self.program.display()
            )))?;
        if !status.success() {
            return Err(SupervisorError::Failed(format!(
                "the supervisor could not be launched ({status})"
            )));
        }
        self.wait_for_launch(target)
    }

    /// Waits until the daemon reports the game process, or its failure.
    fn wait_for_launch(&self, target: &Target<'_>) -> Result<(), SupervisorError> {
        let started = Instant::now();
        let state_path = target.paths.supervisor_state();
        // The console's last lines are the caller's to show
        // (`Host::console_tail`): the job log and the CLI print them.
        let failed = |why: &str| SupervisorError::Failed(why.to_owned());
        loop {
            let state = DaemonState::load(&state_path);
            match &state {
                Some(s) if s.state == RunState::Running => return Ok(()),
                // A crash on the first run already counts as started: the
                // daemon is restarting it and `status` tells the story.
                Some(s) if s.state == RunState::Backoff => return Ok(()),
                Some(s) if matches!(s.state, RunState::Failed | RunState::Stopped) => {
                    return Err(SupervisorError::Failed(format!(
                        "the server did not start: {}",
                        s.reason.as_deref().unwrap_or("no reason recorded")
                    )));
                }
                Some(_) if !is_locked(&target.paths.supervisor_lock()).unwrap_or(false) => {
                    return Err(failed("the supervisor died while starting the server"));
                }
                None if started.elapsed() > Duration::from_secs(5) => {
                    return Err(failed("the supervisor did not come up within 5 s"));
                }
                _ if started.elapsed() > Duration::from_secs(30) => {
                    return Err(failed("the server process did not start within 30 s"));
                }
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Supervisor for BuiltinSupervisor {
    fn prepare(&self, target: &Target<'_>, ctx: &Ctx<'_>) -> Result<(), SupervisorError> {
        let env = target.load_env()?;
        if mount::mount_state(target.root, &target.overlay_spec(&env))? == MountState::Foreign {
            return Err(mount::MountError::ForeignMount(target.paths.merged()).into());
        }
        // Staging writes into upper/, which must not change under a live
        // mount: take our stale mount down and make a fresh one after.
        self.stop(target, ctx)
    }

    fn start(&self, target: &Target<'_>, ctx: &Ctx<'_>) -> Result<(), SupervisorError> {
        ctx.step("mounting the overlay...")?;
        mount_instance(target, self.mount_api)?;
        fault_point("after-mount");
        let launched = ctx
            .step("starting the server process...")
            .map_err(SupervisorError::from)
            .and_then(|()| self.spawn_daemon(target));
        if launched.is_ok() {
            fault_point("start-launched");
        }
        if let Err(e) = launched {
            // Leave nothing half-started: no mount without a process.
            let _ = self.stop(
                target,
                &Ctx::new(&crate::events::discard, &Default::default()),
            );
            return Err(e);
        }
        Ok(())
    }

    fn stop(&self, target: &Target<'_>, ctx: &Ctx<'_>) -> Result<(), SupervisorError> {
        let paths = target.paths;
        let state = DaemonState::load(&paths.supervisor_state());
        if is_locked(&paths.supervisor_lock()).unwrap_or(false) {
            ctx.emit(crate::events::Event::Step(
                "stopping the server process...".into(),
            ));
            if let Some(state) = &state {
                signal_process(state.supervisor_pid, Signal::TERM);
            }
            let timeout = state
                .as_ref()
                .map_or(self.policy.stop_timeout(), DaemonState::stop_timeout);
            let deadline = Instant::now() + timeout + Duration::from_secs(5);
            while is_locked(&paths.supervisor_lock()).unwrap_or(false) {
                if Instant::now() > deadline {
                    // The daemon is stuck: take it and the game down hard.
                    if let Some(state) = &state {
                        signal_process(state.supervisor_pid, Signal::KILL);
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // A daemon killed with -9 leaves its game running: find it by the
        // recorded PID and start time and stop it the same way.
        if let Some(state) = DaemonState::load(&paths.supervisor_state())
            && let Some(pid) = state.live_game()
        {
            ctx.emit(crate::events::Event::Step(format!(
                "stopping orphaned server process {pid}..."
            )));
            stop_group(pid, state.stop_timeout());
        }
        if mount::find_mount(&paths.merged())?.is_some() {
            ctx.emit(crate::events::Event::Step("unmounting overlay...".into()));
        }
        unmount_instance(target)
    }

    fn status(&self, target: &Target<'_>) -> Result<ProcessStatus, SupervisorError> {
        let state = DaemonState::load(&target.paths.supervisor_state());
        let supervised = is_locked(&target.paths.supervisor_lock()).unwrap_or(false);
        let Some(state) = state else {
            return Ok(ProcessStatus {
                state: "stopped".into(),
                ..Default::default()
            });
        };
        let game_alive = state.live_game().is_some();
        let (label, reason) = match (supervised, state.state) {
            (true, s) => (state_label(s), state.reason.clone()),
            (false, RunState::Failed | RunState::Stopped) => {
                (state_label(state.state), state.reason.clone())
            }
            (false, _) if game_alive => (
                "orphaned",
                Some("the supervisor died; the game still runs (stop will end it)".into()),
            ),
            // Not a give-up: a reconciler may start it again.
            (false, _) => (
                "stopped",
                Some("the supervisor is gone (it was killed, or the host restarted)".into()),
            ),
        };
        let running = game_alive && state.state == RunState::Running;
        Ok(ProcessStatus {
            running,
            active: supervised,
            pid: state.pid.filter(|_| game_alive),
            since: state.since.filter(|_| running),
            restarts: state.restarts,
            state: label.into(),
            reason,
        })
    }

    fn log_source(&self, target: &Target<'_>) -> LogSource {
        LogSource::File(target.paths.console_log())
    }

    fn apply_start_on_boot(
        &self,
        _target: &Target<'_>,
        _ctx: &Ctx<'_>,
    ) -> Result<(), SupervisorError> {
        // Nothing of ours survives a reboot to act on the file: the panel
        // starts the servers it wants running when it starts itself.
        Ok(())
    }

    fn starts_on_boot(&self, targets: &[Target<'_>]) -> Vec<Result<Option<bool>, SupervisorError>> {
        targets.iter().map(|_| Ok(None)).collect()
    }

    fn forget(&self, _target: &Target<'_>) -> Result<(), SupervisorError> {
        Ok(())
    }
}

fn state_label(state: RunState) -> &'static str {
    match state {
        RunState::Starting => "starting",
        RunState::Running => "running",
        RunState::Backoff => "restarting",
        RunState::Stopping => "stopping",
        RunState::Stopped => "stopped",
        RunState::Failed => "failed",
    }
}

/// SIGINT to the group, SIGKILL after `timeout`, until the group is gone.
fn stop_group(pgid: u32, timeout: Duration) {
    signal_group(pgid, Signal::INT);
    let deadline = Instant::now() + timeout;
    while group_exists(pgid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if group_exists(pgid) {
        signal_group(pgid, Signal::KILL);
    }
}

/// Arguments of the [`SUPERVISE_SUBCOMMAND`].
#[derive(Debug, Clone)]
pub struct SuperviseArgs {
    pub root: PathBuf,
    pub name: InstanceName,
    pub policy: RestartPolicy,
    pub detach: bool,
}

/// Entry point of the supervise subcommand.
pub fn supervise_main(args: SuperviseArgs) -> Result<(), SupervisorError> {
    let root = StateRoot::new(&args.root).map_err(SupervisorError::io("state root"))?;
    let paths = root.instance(&args.name);
    if args.detach {
        return launch_detached(&root, &args, &paths);
    }
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.supervisor_lock())
        .map_err(SupervisorError::io("opening supervisor.lock"))?;
    // `status` probes the lock with a brief shared lock; retry for a while
    // so a probe at the wrong moment does not stop us from starting.
    let deadline = Instant::now() + Duration::from_secs(2);
    while lock.try_lock().is_err() {
        if Instant::now() > deadline {
            return Err(SupervisorError::Failed(format!(
                "instance {} already has a supervisor",
                args.name
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let target = Target {
        root: &root,
        name: &args.name,
        paths: &paths,
    };
    let env = target.load_env()?;
    let log = ConsoleLog::open(
        &paths.console_log(),
        args.policy.log_max_bytes,
        args.policy.log_keep,
    )
    .map_err(SupervisorError::io("opening console.log"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SupervisorError::io("starting the supervisor runtime"))?;
    let daemon = Daemon {
        paths: paths.clone(),
        env,
        policy: args.policy,
        log: Arc::new(Mutex::new(log)),
    };
    let result = runtime.block_on(daemon.run());
    drop(lock);
    result
}

fn launch_detached(
    root: &StateRoot,
    args: &SuperviseArgs,
    paths: &InstancePaths,
) -> Result<(), SupervisorError> {
    // Early failures of the daemon (before it opens the log) land here too.
    let log = File::options()
        .create(true)
        .append(true)
        .open(paths.console_log())
        .map_err(SupervisorError::io("opening console.log"))?;
    let program = std::env::current_exe().map_err(SupervisorError::io("locating self"))?;
    use std::os::unix::process::CommandExt;
    supervise_command(&program, root, &args.name, &args.policy)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // Its own group: a Ctrl-C in the terminal that ran the CLI does not
        // reach it.
        .process_group(0)
        .spawn()
        .map_err(SupervisorError::io("launching the supervisor"))?;
    Ok(())
}

struct Daemon {
    paths: InstancePaths,
    env: InstanceEnv,
    policy: RestartPolicy,
    log: Arc<Mutex<ConsoleLog>>,
}

/// How one run of the game ended.
enum Outcome {
    Exited(ExitStatus),
    StopRequested,
}

/// A running game process and the tasks copying its output.
struct Running {
    child: tokio::process::Child,
    pid: u32,
    pumps: Vec<tokio::task::JoinHandle<()>>,
}

impl Daemon {
    fn note(&self, text: &str) {
        let line = format!("[left4me] {text}");
        let _ = self
            .log
            .lock()
            .expect("log lock")
            .write_line(line.as_bytes());
    }

    fn record(&self, state: &DaemonState) {
        let json = serde_json::to_vec_pretty(state).expect("state serialises");
        if let Err(e) = write_atomic(&self.paths.supervisor_state(), &json) {
            self.note(&format!("cannot write supervisor.json: {e}"));
        }
    }

    /// Records a final state and ends the daemon.
    fn finish(&self, mut state: DaemonState, run: RunState, reason: String) {
        self.note(&reason);
        state.state = run;
        state.reason = Some(reason);
        self.record(&state);
    }

    async fn run(self) -> Result<(), SupervisorError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())
            .map_err(SupervisorError::io("installing SIGTERM handler"))?;
        let mut int = signal(SignalKind::interrupt())
            .map_err(SupervisorError::io("installing SIGINT handler"))?;
        // Registered so a hangup is ignored rather than fatal.
        let _hup = signal(SignalKind::hangup())
            .map_err(SupervisorError::io("installing SIGHUP handler"))?;

        let mut state = DaemonState {
            supervisor_pid: std::process::id(),
            boot_id: process::boot_id(),
            stop_timeout_ms: self.policy.stop_timeout_ms,
            state: RunState::Starting,
            pid: None,
            pid_start_time: None,
            since: None,
            restarts: 0,
            reason: None,
        };
        // Written at once, so `stop` can find us even before the game runs.
        self.record(&state);
        let mut crashes: VecDeque<Instant> = VecDeque::new();
        let window = Duration::from_secs(self.policy.window_secs);
        loop {
            let mut running = match self.spawn() {
                Ok(running) => running,
                Err(e) => {
                    // Not a crash: retrying cannot help a missing program.
                    let program = self.paths.merged().join(GAME_PROGRAM);
                    let reason = format!("cannot run {}: {e}", program.display());
                    self.finish(state, RunState::Failed, reason);
                    return Ok(());
                }
            };
            state.state = RunState::Running;
            state.pid = Some(running.pid);
            state.pid_start_time = process::start_time(running.pid);
            state.since = Some(unix_now());
            self.record(&state);
            self.note(&format!("server process {} started", running.pid));
            let outcome = tokio::select! {
                status = running.child.wait() => match status {
                    Ok(status) => Outcome::Exited(status),
                    Err(e) => {
                        self.note(&format!("lost track of the server process: {e}"));
                        Outcome::StopRequested
                    }
                },
                _ = term.recv() => Outcome::StopRequested,
                _ = int.recv() => Outcome::StopRequested,
            };
            if let Outcome::StopRequested = outcome {
                state.state = RunState::Stopping;
                self.record(&state);
                self.stop_child(&mut running).await;
            }
            self.drain(running).await;
            state.pid = None;
            state.pid_start_time = None;
            state.since = None;
            let status = match outcome {
                Outcome::StopRequested => {
                    self.finish(state, RunState::Stopped, "server stopped on request".into());
                    return Ok(());
                }
                Outcome::Exited(status) => status,
            };
            if status.success() {
                let reason = "the server exited by itself (exit code 0); not restarting";
                self.finish(state, RunState::Stopped, reason.into());
                return Ok(());
            }
            let how = describe_exit(status);
            let now = Instant::now();
            crashes.push_back(now);
            while crashes
                .front()
                .is_some_and(|t| now.duration_since(*t) > window)
            {
                crashes.pop_front();
            }
            let in_window = u32::try_from(crashes.len()).unwrap_or(u32::MAX);
            if in_window >= self.policy.max_crashes {
                let reason = format!(
                    "gave up after {in_window} crashes within {}s; last: {how}",
                    self.policy.window_secs
                );
                self.finish(state, RunState::Failed, reason);
                return Ok(());
            }
            let delay = self.policy.backoff(in_window);
            self.note(&format!(
                "server crashed ({how}); restarting in {} ms",
                delay.as_millis()
            ));
            state.state = RunState::Backoff;
            state.reason = Some(format!("crashed ({how})"));
            state.restarts += 1;
            self.record(&state);
            let stop = tokio::select! {
                () = tokio::time::sleep(delay) => false,
                _ = term.recv() => true,
                _ = int.recv() => true,
            };
            if stop {
                let reason = "stopped on request while waiting to restart";
                self.finish(state, RunState::Stopped, reason.into());
                return Ok(());
            }
        }
    }

    fn spawn(&self) -> std::io::Result<Running> {
        let mut child = tokio::process::Command::from(game_command(&self.paths, &self.env))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let pid = child.id().unwrap_or(0);
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(tokio::spawn(pump(out, Arc::clone(&self.log))));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::spawn(pump(err, Arc::clone(&self.log))));
        }
        Ok(Running { child, pid, pumps })
    }

    async fn stop_child(&self, running: &mut Running) {
        let pid = running.pid;
        self.note(&format!("stopping server process {pid} (SIGINT)"));
        signal_group(pid, Signal::INT);
        let timeout = self.policy.stop_timeout();
        if tokio::time::timeout(timeout, running.child.wait())
            .await
            .is_err()
        {
            self.note(&format!(
                "server did not exit within {} ms; killing it",
                timeout.as_millis()
            ));
            signal_group(pid, Signal::KILL);
            let _ = running.child.wait().await;
        }
    }

    /// After the game exits: end what it left in its process group, then
    /// let the pumps copy the last of its output (a crash message is the
    /// line that matters most).
    async fn drain(&self, running: Running) {
        signal_group(running.pid, Signal::KILL);
        for mut pump in running.pumps {
            if tokio::time::timeout(Duration::from_secs(2), &mut pump)
                .await
                .is_err()
            {
                pump.abort();
                self.note("the server's output pipe stayed open; stopped reading it");
            }
        }
    }
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

async fn pump(stream: impl tokio::io::AsyncRead + Unpin, log: Arc<Mutex<ConsoleLog>>) {
    use tokio::io::AsyncBufReadExt;
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = line.strip_suffix(b"\n").unwrap_or(&line);
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                let _ = log.lock().expect("log lock").write_line(text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RestartPolicy {
            backoff_initial_ms: 100,
            backoff_max_ms: 500,
            ..Default::default()
        };
        let ms: Vec<u128> = (1..=5).map(|n| p.backoff(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 500, 500]);
    }
}
