//! Oneshot units the panel starts and follows: game tasks
//! (`left4me-game@`) and script builds (`left4me-build@`). Start with
//! `systemctl start --no-block`, wait for the new invocation, follow its
//! journal line by line, poll its state, stop it on cancel.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `systemctl` and `journalctl` (paths, so tests can stand in for them).
#[derive(Debug, Clone)]
pub struct Systemctl {
    pub systemctl: PathBuf,
    pub journalctl: PathBuf,
}

impl Default for Systemctl {
    fn default() -> Self {
        Self {
            systemctl: PathBuf::from("systemctl"),
            journalctl: PathBuf::from("journalctl"),
        }
    }
}

/// A started unit's journal, line by line; ends `journalctl` when dropped.
#[derive(Debug)]
pub struct Following {
    pub unit: String,
    /// The invocation followed (`$INVOCATION_ID` inside the unit).
    pub invocation: String,
    pub lines: mpsc::Receiver<String>,
    journal: Child,
}

impl Drop for Following {
    fn drop(&mut self) {
        let _ = self.journal.kill();
        let _ = self.journal.wait();
    }
}

impl Systemctl {
    /// `systemctl ARGS`, its stdout; a failure says what systemctl said.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new(&self.systemctl);
        command.args(args).stdin(Stdio::null());
        let out = crate::spawn::retry_while_text_busy(|| command.output())
            .map_err(|e| format!("running {}: {e}", self.systemctl.display()))?;
        if !out.status.success() {
            return Err(format!(
                "systemctl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Properties of a unit, in the order asked.
    pub fn show(&self, unit: &str, properties: &[&str]) -> Result<Vec<String>, String> {
        let out = self.run(&[
            "show",
            &format!("--property={}", properties.join(",")),
            unit,
        ])?;
        Ok(properties
            .iter()
            .map(|key| {
                out.lines()
                    .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect())
    }

    /// The unit's `ActiveState`.
    pub fn state(&self, unit: &str) -> Result<String, String> {
        Ok(self.show(unit, &["ActiveState"])?.remove(0))
    }

    /// Starts the unit unless it runs, and follows its new invocation's
    /// journal.
    pub fn start_following(&self, unit: &str) -> Result<Following, StartError> {
        let [before, state]: [String; 2] = self
            .show(unit, &["InvocationID", "ActiveState"])
            .map_err(StartError::Failed)?
            .try_into()
            .expect("two properties asked");
        if matches!(state.as_str(), "active" | "activating" | "deactivating") {
            return Err(StartError::Busy);
        }
        let _ = self.run(&["reset-failed", unit]);
        self.run(&["start", "--no-block", unit])
            .map_err(StartError::Failed)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let id = loop {
            let [id, job]: [String; 2] = self
                .show(unit, &["InvocationID", "Job"])
                .map_err(StartError::Failed)?
                .try_into()
                .expect("two properties asked");
            if !id.is_empty() && id != before {
                break id;
            }
            if job.is_empty() || job == "0" {
                // The start job ended without starting the unit: a unit
                // it needs failed.
                return Err(StartError::Failed(self.failed_needs(unit)));
            }
            if Instant::now() > deadline {
                return Err(StartError::Failed(format!(
                    "{unit} did not start within 30 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut command = Command::new(&self.journalctl);
        command
            .args(["--follow", "--lines", "all", "--output", "cat"])
            .arg(format!("_SYSTEMD_INVOCATION_ID={id}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut journal = crate::spawn::retry_while_text_busy(|| command.spawn()).map_err(|e| {
            StartError::Failed(format!("running {}: {e}", self.journalctl.display()))
        })?;
        let stdout = journal.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Following {
            unit: unit.to_owned(),
            invocation: id,
            lines: rx,
            journal,
        })
    }
}

impl Systemctl {
    /// Why `unit`'s start job ended without starting it, naming the units
    /// it needs that failed.
    fn failed_needs(&self, unit: &str) -> String {
        let needs = self
            .show(unit, &["Requires"])
            .ok()
            .and_then(|mut v| v.pop())
            .unwrap_or_default();
        let failed: Vec<String> = needs
            .split_whitespace()
            .filter(|need| self.state(need).is_ok_and(|s| s == "failed"))
            .map(|need| format!("{need} failed (journalctl -u {need})"))
            .collect();
        if failed.is_empty() {
            format!("{unit} did not start")
        } else {
            format!("{unit} did not start: {}", failed.join("; "))
        }
    }
}

/// Why a unit was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("it is running already")]
    Busy,
    #[error("{0}")]
    Failed(String),
}
