//! The systemd backend: `left4me-server@NAME.service`, which requires
//! `left4me-mount@NAME.service` (a root oneshot running the mount helper).
//! The panel itself holds no privilege; polkit lets it start and stop
//! exactly these units.
//!
//! Enabling a unit for boot is a unit-file change, which polkit cannot
//! narrow to one unit. So the panel records its wish in the instance's
//! `start-on-boot` file and starts `left4me-autostart@NAME.service`, a root
//! oneshot that enables or disables the server unit to match
//! ([`sync_start_on_boot`]) and can do nothing else.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{LogSource, ProcessStatus, Supervisor, SupervisorError, Target};
use crate::events::{Ctx, Event};
use crate::fsutil;
use crate::layout::StateRoot;
use crate::mount;
use crate::name::InstanceName;

#[derive(Debug, Clone)]
pub struct SystemdSupervisor {
    /// `systemctl`, found on `PATH` unless configured.
    pub systemctl: PathBuf,
}

impl Default for SystemdSupervisor {
    fn default() -> Self {
        Self {
            systemctl: PathBuf::from("systemctl"),
        }
    }
}

/// `left4me-server@NAME.service`.
pub fn server_unit(name: &InstanceName) -> String {
    format!("left4me-server@{name}.service")
}

/// `left4me-mount@NAME.service`.
pub fn mount_unit(name: &InstanceName) -> String {
    format!("left4me-mount@{name}.service")
}

/// `left4me-autostart@NAME.service`.
pub fn autostart_unit(name: &InstanceName) -> String {
    format!("left4me-autostart@{name}.service")
}

/// The root side of `left4me-autostart@NAME.service`: enables the server
/// unit when the instance exists and has a `start-on-boot` file, disables
/// it otherwise. Idempotent, so running it again repairs any crash.
/// Returns whether the unit is now enabled.
pub fn sync_start_on_boot(
    root: &StateRoot,
    name: &InstanceName,
    systemctl: &Path,
) -> Result<bool, SupervisorError> {
    // The directory is the panel's to write: no symlinks, a plain file.
    let marker = root.instance(name).start_on_boot();
    let relative = marker
        .strip_prefix(root.path())
        .expect("instance paths are below the root");
    let on = fsutil::is_file_beneath(root.path(), relative).map_err(SupervisorError::io(
        format!("checking {}", marker.display()),
    ))?;
    let supervisor = SystemdSupervisor {
        systemctl: systemctl.to_owned(),
    };
    // --no-reload: the symlink only matters at the next boot, and a
    // daemon-reload per click would be costly on a busy host.
    let verb = if on { "enable" } else { "disable" };
    supervisor.systemctl(None, ["--no-reload", verb, server_unit(name).as_str()])?;
    Ok(on)
}

impl SystemdSupervisor {
    /// Asks `query` about the targets' server units in batches of
    /// [`UNIT_BATCH`] (short command lines); `query` answers one value per
    /// unit, in order, or fails for the whole batch. A batch answered with
    /// too few or too many values fails whole, never shifted.
    fn per_unit<T>(
        &self,
        targets: &[Target<'_>],
        query: impl Fn(&[String]) -> Result<Vec<T>, SupervisorError>,
    ) -> Vec<Result<T, SupervisorError>> {
        targets
            .chunks(UNIT_BATCH)
            .flat_map(|chunk| {
                let units: Vec<String> = chunk.iter().map(|t| server_unit(t.name)).collect();
                match query(&units) {
                    Ok(values) if values.len() == units.len() => {
                        values.into_iter().map(Ok).collect::<Vec<_>>()
                    }
                    Ok(values) => {
                        let message = format!(
                            "systemctl answered for {} units, asked about {}",
                            values.len(),
                            units.len()
                        );
                        units
                            .iter()
                            .map(|_| Err(SupervisorError::Failed(message.clone())))
                            .collect()
                    }
                    Err(e) => {
                        let message = e.to_string();
                        units
                            .iter()
                            .map(|_| Err(SupervisorError::Failed(message.clone())))
                            .collect()
                    }
                }
            })
            .collect()
    }

    fn systemctl<I, S>(&self, ctx: Option<&Ctx<'_>>, args: I) -> Result<String, SupervisorError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let mut command = Command::new(&self.systemctl);
        command.args(&args);
        let output = crate::spawn::retry_while_text_busy(|| command.output()).map_err(
            SupervisorError::io(format!("running {}", self.systemctl.display())),
        )?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if let Some(ctx) = ctx {
            for line in stderr.lines() {
                ctx.emit(Event::Stderr(line.to_owned()));
            }
        }
        if !output.status.success() {
            return Err(SupervisorError::Failed(format!(
                "systemctl {} failed ({}): {}",
                shown.join(" "),
                output.status,
                stderr.trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Supervisor for SystemdSupervisor {
    fn prepare(&self, _target: &Target<'_>, _ctx: &Ctx<'_>) -> Result<(), SupervisorError> {
        // The mount unit unmounts when the server unit stops, so a stopped
        // instance has nothing mounted; the mount helper refuses the rest.
        Ok(())
    }

    fn start(&self, target: &Target<'_>, ctx: &Ctx<'_>) -> Result<(), SupervisorError> {
        let unit = server_unit(target.name);
        ctx.step(format!("starting {unit}..."))?;
        // A start someone asked for is not a crash loop: clear the failed
        // state and the start rate limit that automatic restarts count
        // against, or a server that gave up could never be started again.
        // Nothing to clear when it never failed; ignore that error.
        let _ = self.systemctl(None, ["reset-failed", unit.as_str()]);
        self.systemctl(Some(ctx), ["start", unit.as_str()])?;
        Ok(())
    }

    fn stop(&self, target: &Target<'_>, ctx: &Ctx<'_>) -> Result<(), SupervisorError> {
        // The mount unit has StopWhenUnneeded=yes: it unmounts when the
        // server unit stops, and polkit need only allow the server unit.
        let unit = server_unit(target.name);
        ctx.emit(Event::Step(format!("stopping {unit}...")));
        self.systemctl(Some(ctx), ["stop", unit.as_str()])?;
        // The unmount is a separate job that systemd queues after the
        // stop; wait for it, so nothing stages into a live upper/.
        let merged = target.paths.merged();
        let deadline = Instant::now() + Duration::from_secs(30);
        while mount::find_mount(&merged)?.is_some() {
            if Instant::now() > deadline {
                return Err(SupervisorError::Failed(format!(
                    "{} is still mounted 30 s after stopping {unit}; see `systemctl status {}`",
                    merged.display(),
                    mount_unit(target.name)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn status(&self, target: &Target<'_>) -> Result<ProcessStatus, SupervisorError> {
        self.statuses(std::slice::from_ref(target))
            .pop()
            .expect("one status per target")
    }

    fn statuses(&self, targets: &[Target<'_>]) -> Vec<Result<ProcessStatus, SupervisorError>> {
        self.per_unit(targets, |units| {
            let args = ["show", "--timestamp=unix", SHOW_PROPERTIES]
                .into_iter()
                .map(str::to_owned)
                .chain(units.iter().cloned());
            let out = self.systemctl(None, args)?;
            Ok(split_show(&out).into_iter().map(parse_show).collect())
        })
    }

    fn log_source(&self, target: &Target<'_>) -> LogSource {
        LogSource::Journal {
            unit: server_unit(target.name),
        }
    }

    fn apply_start_on_boot(
        &self,
        target: &Target<'_>,
        ctx: &Ctx<'_>,
    ) -> Result<(), SupervisorError> {
        self.systemctl(Some(ctx), ["start", autostart_unit(target.name).as_str()])?;
        Ok(())
    }

    fn starts_on_boot(&self, targets: &[Target<'_>]) -> Vec<Result<Option<bool>, SupervisorError>> {
        self.per_unit(targets, |units| {
            // `is-enabled` exits non-zero when any unit is not enabled:
            // read the words, one line per unit, instead.
            let mut command = Command::new(&self.systemctl);
            command.arg("is-enabled").args(units);
            let output = crate::spawn::retry_while_text_busy(|| command.output()).map_err(
                SupervisorError::io(format!("running {}", self.systemctl.display())),
            )?;
            let words: Vec<Option<bool>> = String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(|word| Some(word.trim().starts_with("enabled")))
                .collect();
            if words.len() == units.len() {
                Ok(words)
            } else {
                // It stops at the first unit it cannot tell about: say why.
                Err(SupervisorError::Failed(format!(
                    "systemctl is-enabled answered for {} of {} units ({}): {}",
                    words.len(),
                    units.len(),
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )))
            }
        })
    }

    fn forget(&self, target: &Target<'_>) -> Result<(), SupervisorError> {
        // Nothing to forget when the unit never failed; ignore that error.
        let _ = self.systemctl(None, ["reset-failed", server_unit(target.name).as_str()]);
        // The files are gone, so the helper disables the unit. Here that
        // must work: once the server is deleted nothing would repair it,
        // and the unit would fail at every boot. An error keeps the server
        // in the panel, so deleting it again retries.
        self.systemctl(None, ["start", autostart_unit(target.name).as_str()])?;
        Ok(())
    }
}

/// Units asked about per `systemctl show` or `is-enabled`.
const UNIT_BATCH: usize = 100;

const SHOW_PROPERTIES: &str =
    "--property=ActiveState,SubState,MainPID,ExecMainStartTimestamp,NRestarts,Result";

/// `systemctl show` about several units prints one block each, in order,
/// separated by empty lines.
pub fn split_show(text: &str) -> Vec<&str> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .collect()
}

/// Parses `systemctl show --property=... --timestamp=unix` output.
pub fn parse_show(text: &str) -> ProcessStatus {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
    };
    let active = get("ActiveState");
    let sub = get("SubState");
    let pid: Option<u32> = get("MainPID").parse().ok().filter(|p| *p != 0);
    let running = active == "active" && sub == "running";
    let since = get("ExecMainStartTimestamp")
        .strip_prefix('@')
        .and_then(|s| s.parse().ok())
        .filter(|_| running);
    let result = get("Result");
    ProcessStatus {
        running,
        active: matches!(active, "active" | "activating" | "reloading"),
        pid: pid.filter(|_| running),
        since,
        restarts: get("NRestarts").parse().unwrap_or(0),
        state: match (active, sub) {
            ("activating", "auto-restart") => "restarting".into(),
            ("active", "running") => "running".into(),
            ("failed", _) => "failed".into(),
            ("inactive", _) => "stopped".into(),
            (a, s) => format!("{a}/{s}"),
        },
        reason: (active == "failed" && !result.is_empty())
            .then(|| format!("systemd reports result {result:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_systemctl_show_output() {
        let running = "ActiveState=active\nSubState=running\nMainPID=4242\nExecMainStartTimestamp=@1763870000\nNRestarts=2\nResult=success\n";
        let s = parse_show(running);
        assert!(s.running && s.active);
        assert_eq!(
            (s.pid, s.since, s.restarts),
            (Some(4242), Some(1_763_870_000), 2)
        );

        let failed = "ActiveState=failed\nSubState=failed\nMainPID=0\nExecMainStartTimestamp=\nNRestarts=5\nResult=start-limit-hit\n";
        let s = parse_show(failed);
        assert!(!s.running && !s.active);
        assert_eq!(s.state, "failed");
        assert_eq!(
            s.reason.as_deref(),
            Some("systemd reports result \"start-limit-hit\"")
        );

        let restarting = "ActiveState=activating\nSubState=auto-restart\nMainPID=0\nNRestarts=1\n";
        assert_eq!(parse_show(restarting).state, "restarting");

        let two = format!("{running}\n{failed}");
        let blocks = split_show(&two);
        assert_eq!(blocks.len(), 2);
        assert!(parse_show(blocks[0]).running);
        assert_eq!(parse_show(blocks[1]).state, "failed");
    }

    #[test]
    fn unit_names_follow_the_template() {
        let name = InstanceName::parse("coop-1").unwrap();
        assert_eq!(server_unit(&name), "left4me-server@coop-1.service");
        assert_eq!(mount_unit(&name), "left4me-mount@coop-1.service");
        assert_eq!(autostart_unit(&name), "left4me-autostart@coop-1.service");
    }
}
