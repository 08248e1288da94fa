//! Installs, updates and checks under systemd: the panel holds no
//! privilege (an update mounts its build) and its sandbox cannot run the
//! 32-bit steamcmd, so each task runs in `left4me-game@TASK.service`, a
//! root oneshot that polkit lets user `left4me` start and stop. The unit
//! runs `left4me game-helper TASK` ([`run_helper`]), which prints every
//! event and then its result as one JSON line each; the panel follows
//! that invocation's journal and turns the lines back into events.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Check, Game, GameError, Installer, Updated};
use crate::events::{Cancelled, Ctx, Event};

/// What a `left4me-game@` unit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Update,
    Validate,
    Check,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Update => "update",
            Task::Validate => "validate",
            Task::Check => "check",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Task::Update, Task::Validate, Task::Check]
            .into_iter()
            .find(|t| t.as_str() == raw)
    }

    pub fn unit(self) -> String {
        format!("left4me-game@{}.service", self.as_str())
    }
}

/// One line the helper prints.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Message {
    Event(Event),
    Updated(Updated),
    Checked(Check),
    Error(String),
}

fn say(message: &Message) {
    println!(
        "{}",
        serde_json::to_string(message).expect("messages serialize")
    );
}

/// The unit's side: runs `task` here and prints its events and result.
/// Returns the error too, for the exit status.
pub fn run_helper(
    game: &Game,
    task: Task,
    cancel: &crate::events::CancellationToken,
) -> Result<(), GameError> {
    let sink = |event: Event| say(&Message::Event(event));
    let ctx = Ctx::new(&sink, cancel);
    let result = match task {
        Task::Update => game.update(false, &ctx).map(|u| say(&Message::Updated(u))),
        Task::Validate => game.update(true, &ctx).map(|u| say(&Message::Updated(u))),
        Task::Check => game.check(&ctx).map(|c| say(&Message::Checked(c))),
    };
    if let Err(error) = &result {
        say(&Message::Error(error.to_string()));
    }
    result
}

/// Runs the tasks in `left4me-game@` units.
#[derive(Debug, Clone)]
pub struct SystemdInstaller {
    /// Read-only here: the status and the checks before a start.
    pub game: Game,
    pub systemctl: PathBuf,
    pub journalctl: PathBuf,
}

impl SystemdInstaller {
    fn systemctl(&self, args: &[&str]) -> Result<String, GameError> {
        let mut command = Command::new(&self.systemctl);
        command.args(args).stdin(Stdio::null());
        let out = crate::spawn::retry_while_text_busy(|| command.output())
            .map_err(super::io(format!("running {}", self.systemctl.display())))?;
        if !out.status.success() {
            return Err(GameError::Relayed(format!(
                "systemctl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The unit's `(InvocationID, ActiveState)`.
    fn invocation(&self, unit: &str) -> Result<(String, String), GameError> {
        let out = self.systemctl(&["show", "--property=InvocationID,ActiveState", unit])?;
        let value = |key: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_default()
                .to_owned()
        };
        Ok((value("InvocationID"), value("ActiveState")))
    }

    /// Starts the task's unit, relays its events to `ctx` and returns the
    /// result line.
    fn run(&self, task: Task, ctx: &Ctx<'_>) -> Result<Message, GameError> {
        self.game.preflight()?;
        let unit = task.unit();
        let (before, state) = self.invocation(&unit)?;
        if state == "active" || state == "activating" {
            return Err(GameError::Busy);
        }
        let _ = self.systemctl(&["reset-failed", &unit]);
        ctx.step(format!("starting {unit}..."))?;
        self.systemctl(&["start", "--no-block", &unit])?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let id = loop {
            let (id, _) = self.invocation(&unit)?;
            if !id.is_empty() && id != before {
                break id;
            }
            if Instant::now() > deadline {
                return Err(GameError::Relayed(format!(
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
        let mut journal = crate::spawn::retry_while_text_busy(|| command.spawn())
            .map_err(super::io(format!("running {}", self.journalctl.display())))?;
        let stdout = journal.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let result = self.relay(&unit, &rx, ctx);
        let _ = journal.kill();
        let _ = journal.wait();
        result
    }

    fn relay(
        &self,
        unit: &str,
        lines: &mpsc::Receiver<String>,
        ctx: &Ctx<'_>,
    ) -> Result<Message, GameError> {
        let mut stopping = false;
        let mut ended_at: Option<Instant> = None;
        loop {
            match lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => match serde_json::from_str::<Message>(&line) {
                    Ok(Message::Event(event)) => ctx.emit(event),
                    Ok(result) => return Ok(result),
                    // Not ours (systemd's own lines, a panic): shown as is.
                    Err(_) => ctx.emit(Event::Stdout(line)),
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if ctx.is_cancelled() && !stopping {
                        stopping = true;
                        ctx.emit(Event::Step(format!("stopping {unit}...")));
                        self.systemctl(&["stop", unit])?;
                    }
                    let (_, state) = self.invocation(unit)?;
                    if state != "active" && state != "activating" && state != "deactivating" {
                        // The journal may lag the unit by a moment.
                        let since = *ended_at.get_or_insert_with(Instant::now);
                        if since.elapsed() > Duration::from_secs(3) {
                            if stopping {
                                return Err(Cancelled.into());
                            }
                            return Err(GameError::Relayed(format!(
                                "{unit} ended ({state}) without a result; see `journalctl -u {unit}`"
                            )));
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(GameError::Relayed(format!("lost the journal of {unit}")));
                }
            }
        }
    }
}

impl Installer for SystemdInstaller {
    fn game(&self) -> &Game {
        &self.game
    }

    fn update(&self, validate: bool, ctx: &Ctx<'_>) -> Result<Updated, GameError> {
        let task = if validate {
            Task::Validate
        } else {
            Task::Update
        };
        match self.run(task, ctx)? {
            Message::Updated(updated) => Ok(updated),
            Message::Error(message) => Err(GameError::Relayed(message)),
            other => Err(GameError::Relayed(format!("unexpected result {other:?}"))),
        }
    }

    fn check(&self, ctx: &Ctx<'_>) -> Result<Check, GameError> {
        match self.run(Task::Check, ctx)? {
            Message::Checked(check) => Ok(check),
            Message::Error(message) => Err(GameError::Relayed(message)),
            other => Err(GameError::Relayed(format!("unexpected result {other:?}"))),
        }
    }
}
