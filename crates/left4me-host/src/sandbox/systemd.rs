//! The production sandbox: each build runs as `left4me-build@NAME.service`
//! (hardening, user and limits in the packaged unit), which polkit lets
//! the panel start and stop; systemd itself runs the root oneshots that
//! hand the layer to the build user before and back after. The panel follows the unit's journal, stops
//! it on cancel or when the layer outgrows the output limit, and reads how
//! it ended from systemd: `timeout`, `oom-kill`, an exit status.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{BuildRun, Limits, Overrun, Sandbox, SandboxError};
use crate::events::{Ctx, Event};
use crate::units::{StartError, Systemctl};

#[derive(Debug, Clone)]
pub struct SystemdSandbox {
    pub units: Systemctl,
    /// Only `output_bytes` is watched from here; the unit sets the rest.
    pub limits: Limits,
}

/// A unit stopped (without waiting) when this goes out of scope.
struct StopOnDrop<'a> {
    units: &'a Systemctl,
    unit: String,
}

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        // Nothing more to do if systemd refuses: the unit is then gone.
        let _ = self.units.run(&["stop", "--no-block", &self.unit]);
    }
}

/// Why the panel stopped a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    Cancelled,
    Overrun(Overrun),
}

impl Sandbox for SystemdSandbox {
    fn run(&self, run: &BuildRun<'_>, ctx: &Ctx<'_>) -> Result<(), SandboxError> {
        crate::scripts::check_build_name(run.name)
            .map_err(|e| SandboxError::Unavailable(e.to_string()))?;
        let unit = format!("left4me-build@{}.service", run.name);
        let words = self.unit_limits(&unit);
        ctx.step(format!(
            "running the script in {unit} (memory {}, {} tasks, {}; output {})",
            words.memory, words.tasks, words.runtime, words.output
        ))
        .map_err(|_| SandboxError::Cancelled)?;
        run.write_resolv_conf()?;
        let note = run.dir.join(crate::scripts::NETWORK_NOTE);
        let _ = std::fs::remove_file(&note);
        let started = self.units.start_following(&unit);
        // left4me-build-net@ has run by now, whether the build started or
        // not. It stops once unneeded, except where the build never
        // started (a failed prepare): then systemd leaves it up, so it is
        // stopped here whatever happens next.
        let _network_unit = StopOnDrop {
            units: &self.units,
            unit: format!("left4me-build-net@{}.service", run.name),
        };
        let network = std::fs::read_to_string(&note).unwrap_or_default();
        let network = network.trim();
        let following = started.map_err(|e| match e {
            StartError::Busy => SandboxError::Unavailable(format!("{unit} is running already")),
            StartError::Failed(why) if network.is_empty() => SandboxError::Unavailable(why),
            StartError::Failed(why) => SandboxError::Unavailable(format!("{why} ({network})")),
        })?;
        ctx.emit(if network.starts_with("warning") {
            Event::Stderr(network.to_owned())
        } else if network.is_empty() {
            Event::Stderr(format!(
                "warning: left4me-build-net@{} left no word on the build's network",
                run.name
            ))
        } else {
            Event::Step(network.to_owned())
        });
        self.warn_unenforced(&unit, ctx);
        let mut stopped = None;
        let mut forks_refused = false;
        let mut ended_at: Option<Instant> = None;
        // The unit's ExecStopPost says this last: everything before it is
        // in the journal (which lags the unit's state).
        let end_line = format!("left4me: build {} ended", following.invocation);
        let mut end_seen = false;
        let mut next_check = Instant::now();
        let mut output = super::OutputWatch::new(run.layer(), &self.limits);
        loop {
            match following.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if line == end_line => end_seen = true,
                Ok(line) => {
                    // bash says so when the task limit refuses a fork.
                    forks_refused |= line.contains("fork: ")
                        && line.contains("Resource temporarily unavailable");
                    ctx.emit(Event::Stdout(line));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(SandboxError::Unavailable(format!(
                        "lost the journal of {unit}"
                    )));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            // A script that prints without pause still gets looked at.
            if Instant::now() < next_check {
                continue;
            }
            next_check = Instant::now() + Duration::from_millis(200);
            if stopped.is_none() {
                if ctx.is_cancelled() {
                    stopped = Some(Stopped::Cancelled);
                } else if let Some(overrun) = output.over() {
                    stopped = Some(Stopped::Overrun(overrun));
                }
                if stopped.is_some() {
                    self.units
                        .run(&["stop", "--no-block", &unit])
                        .map_err(SandboxError::Unavailable)?;
                }
            }
            let state = self.units.state(&unit).map_err(SandboxError::Unavailable)?;
            if !matches!(state.as_str(), "active" | "activating" | "deactivating") {
                let waited = ended_at.get_or_insert_with(Instant::now).elapsed();
                if end_seen {
                    break;
                }
                if waited > Duration::from_secs(10) {
                    ctx.emit(Event::Stderr(format!(
                        "warning: the journal of {unit} did not show its end: its last lines may be missing here"
                    )));
                    break;
                }
            }
        }
        let [result, status] = self.result(&unit);
        let _ = self.units.run(&["reset-failed", &unit]);
        self.wait_for_finish(run)?;
        if stopped.is_none() {
            stopped = output.reached().map(Stopped::Overrun);
        }
        verdict(
            &result,
            &status,
            stopped,
            forks_refused,
            &words,
            &self.limits,
        )
    }
}

impl SystemdSandbox {
    /// The unit's limits (and the output limit watched here), in words.
    fn unit_limits(&self, unit: &str) -> Words {
        let shown = self
            .units
            .show(unit, &["MemoryMax", "TasksMax", "RuntimeMaxUSec"])
            .unwrap_or_default();
        let get = |i: usize| shown.get(i).cloned().unwrap_or_else(|| "?".into());
        Words {
            memory: get(0)
                .parse::<u64>()
                .map_or_else(|_| get(0), |b| format!("{} MiB without swap", b >> 20)),
            tasks: get(1),
            runtime: get(2),
            output: format!(
                "{} MiB, {} MiB kept free",
                self.limits.output_bytes >> 20,
                self.limits.disk_reserve_bytes >> 20
            ),
        }
    }

    /// Says which of the unit's cgroup limits this host does not apply:
    /// systemd sets them silently aside where it has no controller (a
    /// container on the legacy hierarchy, say).
    fn warn_unenforced(&self, unit: &str, ctx: &Ctx<'_>) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let group = loop {
            let group = self
                .units
                .show(unit, &["ControlGroup"])
                .ok()
                .and_then(|mut v| v.pop())
                .unwrap_or_default();
            if !group.is_empty() || Instant::now() > deadline {
                break group;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let root = std::path::Path::new("/sys/fs/cgroup");
        let relative = group.trim_start_matches('/');
        let has = |v2: &str, v1: (&str, &str)| {
            root.join(relative).join(v2).exists()
                || root.join(v1.0).join(relative).join(v1.1).exists()
        };
        if group.is_empty() {
            return; // It ended already; the result tells.
        }
        if !has("memory.max", ("memory", "memory.limit_in_bytes")) {
            ctx.emit(Event::Stderr(
                "warning: the memory limit is not enforced on this host (systemd has no memory cgroup for the unit)".into(),
            ));
        }
        if !has("pids.max", ("pids", "pids.max")) {
            ctx.emit(Event::Stderr(
                "warning: the task limit is enforced only per build user here (systemd has no pids cgroup for the unit)".into(),
            ));
        }
    }

    /// Waits until `left4me-build-finish@` has handed the layer back to
    /// this process's user (it runs when the build unit ends).
    fn wait_for_finish(&self, run: &BuildRun<'_>) -> Result<(), SandboxError> {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::fs::metadata(run.layer()).is_ok_and(|m| m.uid() == me) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(SandboxError::Unavailable(format!(
                    "left4me-build-finish@{}.service did not hand the layer back within 60 s",
                    run.name
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn result(&self, unit: &str) -> [String; 2] {
        let shown = self
            .units
            .show(unit, &["Result", "ExecMainStatus"])
            .unwrap_or_default();
        [
            shown.first().cloned().unwrap_or_default(),
            shown.get(1).cloned().unwrap_or_default(),
        ]
    }
}

/// A build's limits as the messages name them.
#[derive(Debug)]
struct Words {
    memory: String,
    tasks: String,
    runtime: String,
    output: String,
}

/// How the unit ended, in words that name the limit.
fn verdict(
    result: &str,
    status: &str,
    stopped: Option<Stopped>,
    forks_refused: bool,
    words: &Words,
    limits: &Limits,
) -> Result<(), SandboxError> {
    let mut hits = Vec::new();
    match stopped {
        Some(Stopped::Cancelled) => return Err(SandboxError::Cancelled),
        Some(Stopped::Overrun(overrun)) => hits.push(overrun.describe(limits)),
        None => {}
    }
    match result {
        "oom-kill" => hits.push(format!(
            "its memory limit ({}) killed a process",
            words.memory
        )),
        "timeout" => hits.push(format!(
            "it ran past its time limit ({}) and was stopped",
            words.runtime
        )),
        // SIGXFSZ: a file reached the unit's LimitFSIZE.
        "signal" if status == "25" => {
            hits.push("a file reached its size limit (LimitFSIZE)".into());
        }
        _ => {}
    }
    if forks_refused {
        hits.push(format!(
            "its task limit ({} tasks) refused new ones",
            words.tasks
        ));
    }
    if !hits.is_empty() {
        return Err(SandboxError::LimitHit(format!(
            "the build was stopped: {}",
            hits.join("; ")
        )));
    }
    match result {
        "success" => Ok(()),
        "exit-code" => Err(SandboxError::Failed {
            status: format!("exit status: {status}"),
        }),
        other => Err(SandboxError::Failed {
            status: format!("{other} {status}"),
        }),
    }
}
