//! Installs, updates, checks and Workshop downloads under systemd: the
//! panel holds no privilege (an update mounts its build) and its sandbox
//! cannot run the 32-bit steamcmd, so each task runs in
//! `left4me-game@TASK.service` (`workshop-ID` for a download), a
//! root oneshot that polkit lets user `left4me` start and stop. The unit
//! runs `left4me game-helper TASK` ([`run_helper`]), which prints every
//! event and then its result as one JSON line each; the panel follows
//! that invocation's journal and turns the lines back into events.

use std::fmt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Check, Game, GameError, Installer, ItemUnavailable, Updated};
use crate::events::{Cancelled, Ctx, Event};
use crate::units::{Following, StartError, Systemctl};

/// What a `left4me-game@` unit does; its instance name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Update,
    Validate,
    Check,
    /// Downloads a Workshop item (`workshop-ID`).
    Workshop(u64),
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Task::Update => f.write_str("update"),
            Task::Validate => f.write_str("validate"),
            Task::Check => f.write_str("check"),
            Task::Workshop(id) => write!(f, "workshop-{id}"),
        }
    }
}

impl Task {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "update" => Some(Task::Update),
            "validate" => Some(Task::Validate),
            "check" => Some(Task::Check),
            // Digits only (`parse` would take a sign); the polkit rule
            // allows at most 20, as many as a u64 has.
            _ => raw
                .strip_prefix("workshop-")
                .filter(|id| (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|id| id.parse().ok())
                .map(Task::Workshop),
        }
    }

    pub fn unit(self) -> String {
        format!("left4me-game@{self}.service")
    }
}

/// One line the helper prints.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Message {
    Event(Event),
    Updated(Updated),
    Checked(Check),
    Downloaded(PathBuf),
    /// Kept typed across the unit: the caller marks the item, not retries.
    Unavailable(ItemUnavailable),
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
        Task::Workshop(id) => game
            .download_workshop_item(id, &ctx)
            .map(|path| say(&Message::Downloaded(path))),
    };
    match &result {
        Err(GameError::ItemUnavailable(why)) => say(&Message::Unavailable(*why)),
        Err(error) => say(&Message::Error(error.to_string())),
        Ok(()) => {}
    }
    result
}

/// Runs the tasks in `left4me-game@` units.
#[derive(Debug, Clone)]
pub struct SystemdInstaller {
    /// Read-only here: the status and the checks before a start.
    pub game: Game,
    pub units: Systemctl,
}

impl SystemdInstaller {
    /// Starts the task's unit, relays its events to `ctx` and returns the
    /// result line.
    fn run(&self, task: Task, ctx: &Ctx<'_>) -> Result<Message, GameError> {
        self.game.preflight()?;
        let unit = task.unit();
        ctx.step(format!("starting {unit}..."))?;
        let following = self.units.start_following(&unit).map_err(|e| match e {
            StartError::Busy => GameError::Busy,
            StartError::Failed(why) => GameError::Relayed(why),
        })?;
        self.relay(&following, ctx)
    }

    fn relay(&self, following: &Following, ctx: &Ctx<'_>) -> Result<Message, GameError> {
        let unit = following.unit.as_str();
        let mut stopping = false;
        let mut ended_at: Option<Instant> = None;
        loop {
            match following.lines.recv_timeout(Duration::from_millis(200)) {
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
                        self.units
                            .run(&["stop", unit])
                            .map_err(GameError::Relayed)?;
                    }
                    let state = self.units.state(unit).map_err(GameError::Relayed)?;
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
            other => Err(unexpected(other)),
        }
    }

    fn check(&self, ctx: &Ctx<'_>) -> Result<Check, GameError> {
        match self.run(Task::Check, ctx)? {
            Message::Checked(check) => Ok(check),
            other => Err(unexpected(other)),
        }
    }

    fn download_workshop_item(&self, id: u64, ctx: &Ctx<'_>) -> Result<PathBuf, GameError> {
        match self.run(Task::Workshop(id), ctx)? {
            Message::Downloaded(path) => Ok(path),
            other => Err(unexpected(other)),
        }
    }
}

/// The error a result line other than the task's stands for.
fn unexpected(message: Message) -> GameError {
    match message {
        Message::Error(message) => GameError::Relayed(message),
        Message::Unavailable(why) => why.into(),
        other => GameError::Relayed(format!("unexpected result {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_unit_instances_and_workshop_ids_are_digits_only() {
        for task in [
            Task::Update,
            Task::Validate,
            Task::Check,
            Task::Workshop(123_456_789),
            Task::Workshop(u64::MAX),
        ] {
            assert_eq!(Task::parse(&task.to_string()), Some(task));
        }
        assert_eq!(
            Task::Workshop(42).unit(),
            "left4me-game@workshop-42.service"
        );
        for bad in [
            "workshop-",
            "workshop-+1",
            "workshop--1",
            "workshop-1a",
            "workshop-18446744073709551616",
            "workshop-123456789012345678901",
            "Workshop-1",
            "other",
        ] {
            assert_eq!(Task::parse(bad), None, "{bad}");
        }
    }
}
