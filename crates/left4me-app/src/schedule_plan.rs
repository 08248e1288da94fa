//! What a schedule does when it runs: its steps, in order, and how it
//! treats players on the server. Stored as JSON, checked when made.

use serde::{Deserialize, Serialize};

use crate::error::FieldErrors;

/// One step of a run.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// A message to the players (the console's `say`).
    Say {
        text: String,
    },
    /// A console command, as typed in the console.
    Command {
        command: String,
    },
    Restart,
    Stop,
    Start,
    /// The game from Steam (admins only; servers restart onto it once
    /// nobody plays).
    UpdateGame,
    /// Asks Steam for a newer build (admins only); in automatic mode an
    /// update follows when there is one.
    CheckGame,
    /// Backs up the panel (admins only).
    BackUp,
    /// Checks the backup repository (admins only).
    CheckBackups,
    /// The Workshop overlays: the server's, or every one for a
    /// panel-wide schedule.
    RefreshWorkshop,
    /// A pause before the next step.
    Wait {
        seconds: u32,
    },
}

/// What players on the server do to a run.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "players", rename_all = "snake_case")]
pub enum Players {
    /// Run whoever plays.
    #[default]
    Ignore,
    /// Skip the run when anyone plays.
    OnlyWhenEmpty,
    /// Wait until nobody plays, at most this long, then run anyway.
    WaitForEmpty { up_to_minutes: u32 },
}

/// A schedule's run: the steps and the players' part in it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    #[serde(flatten)]
    pub players: Players,
    /// Minutes before the steps at which players are told what is
    /// coming (with a wait for an empty server, before its end).
    #[serde(default)]
    pub warn_minutes: Vec<u32>,
}

/// Where a schedule acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One server.
    Server,
    /// The panel as a whole (admins).
    Panel,
}

const MAX_STEPS: usize = 20;
const MAX_TEXT: usize = 200;
const MAX_WAIT_SECS: u32 = 24 * 3600;
const MAX_WAIT_MINUTES: u32 = 24 * 60;

impl Step {
    /// What the run's log and the pages call it.
    pub fn describe(&self) -> String {
        match self {
            Self::Say { text } => format!("say {text:?}"),
            Self::Command { command } => format!("console: {command}"),
            Self::Restart => "restart".into(),
            Self::Stop => "stop".into(),
            Self::Start => "start".into(),
            Self::UpdateGame => "update the game".into(),
            Self::CheckGame => "check for game updates".into(),
            Self::BackUp => "back up the panel".into(),
            Self::CheckBackups => "check the backups".into(),
            Self::RefreshWorkshop => "refresh Workshop overlays".into(),
            Self::Wait { seconds } => format!("wait {seconds} s"),
        }
    }

    /// Whether the step acts on one server (so a panel-wide schedule has
    /// none to act on).
    fn needs_server(&self) -> bool {
        matches!(
            self,
            Self::Say { .. } | Self::Command { .. } | Self::Restart | Self::Stop | Self::Start
        )
    }

    /// Why the step cannot be, if it cannot.
    fn problem(&self, scope: Scope) -> Option<String> {
        let line = |what: &str, text: &str| -> Option<String> {
            if text.trim().is_empty() {
                Some(format!("{what} is empty"))
            } else if text.chars().count() > MAX_TEXT {
                Some(format!("{what} is longer than {MAX_TEXT} characters"))
            } else if text.contains(['\n', '\r', ';']) {
                // The console reads `;` and line ends as the start of
                // another command.
                Some(format!("{what} has a line break or a ';'"))
            } else {
                None
            }
        };
        match self {
            _ if scope == Scope::Panel && self.needs_server() => Some(format!(
                "\"{}\" acts on a server; this schedule is the panel's",
                self.describe()
            )),
            Self::Say { text } if text.contains('"') => {
                Some("a message has a '\"', which the console's say cannot pass".into())
            }
            Self::Say { text } => line("a message", text),
            Self::Command { command } => line("a command", command),
            Self::Wait { seconds } if *seconds == 0 || *seconds > MAX_WAIT_SECS => {
                Some(format!("a wait is 1 s to {MAX_WAIT_SECS} s (a day)"))
            }
            _ => None,
        }
    }
}

impl Step {
    /// A step as one line of the form's text: `say TEXT`, `command TEXT`,
    /// `restart`, `stop`, `start`, `update game`, `refresh workshop`,
    /// `wait N` (seconds, or with `m` or `h`).
    pub fn parse_line(line: &str) -> Result<Self, String> {
        let line = line.trim();
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match (word.to_ascii_lowercase().as_str(), rest) {
            ("say", text) => Ok(Self::Say { text: text.into() }),
            ("command" | "console", command) => Ok(Self::Command {
                command: command.into(),
            }),
            ("restart", "") => Ok(Self::Restart),
            ("stop", "") => Ok(Self::Stop),
            ("start", "") => Ok(Self::Start),
            ("update", "game") => Ok(Self::UpdateGame),
            ("check", "game") => Ok(Self::CheckGame),
            ("back", "up") | ("backup", "") => Ok(Self::BackUp),
            ("check", "backups") => Ok(Self::CheckBackups),
            ("refresh", "workshop") => Ok(Self::RefreshWorkshop),
            ("wait", amount) => {
                let (number, unit) = match amount.strip_suffix(['s', 'm', 'h']) {
                    Some(n) => (n.trim(), &amount[amount.len() - 1..]),
                    None => (amount, "s"),
                };
                let scale = match unit {
                    "h" => 3600,
                    "m" => 60,
                    _ => 1,
                };
                number
                    .parse::<u32>()
                    .ok()
                    .and_then(|n| n.checked_mul(scale))
                    .map(|seconds| Self::Wait { seconds })
                    .ok_or_else(|| format!("{line:?}: wait how long? (\"wait 30\", \"wait 5m\")"))
            }
            _ => Err(format!(
                "{line:?} is not a step: say TEXT, command TEXT, restart, stop, start, \
                 update game, check game, back up, check backups, refresh workshop or wait N"
            )),
        }
    }

    /// The step as [`Step::parse_line`] reads it.
    pub fn to_line(&self) -> String {
        match self {
            Self::Say { text } => format!("say {text}"),
            Self::Command { command } => format!("command {command}"),
            Self::Restart => "restart".into(),
            Self::Stop => "stop".into(),
            Self::Start => "start".into(),
            Self::UpdateGame => "update game".into(),
            Self::CheckGame => "check game".into(),
            Self::BackUp => "back up".into(),
            Self::CheckBackups => "check backups".into(),
            Self::RefreshWorkshop => "refresh workshop".into(),
            Self::Wait { seconds } => format!("wait {seconds}"),
        }
    }

    /// The steps of a form's text, one per line (blank lines skipped).
    pub fn parse_lines(text: &str) -> Result<Vec<Self>, FieldErrors> {
        let mut errors = FieldErrors::default();
        let steps = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| Self::parse_line(l).map_err(|e| errors.add("steps", e)).ok())
            .collect();
        if errors.is_empty() {
            Ok(steps)
        } else {
            Err(errors)
        }
    }
}

impl Plan {
    /// The plan, checked for `scope`: every mistake named under `steps`,
    /// `players` or `warn_minutes`.
    pub fn check(self, scope: Scope) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        if self.steps.is_empty() {
            errors.add("steps", "a schedule needs at least one step");
        }
        if self.steps.len() > MAX_STEPS {
            errors.add("steps", format!("at most {MAX_STEPS} steps"));
        }
        for (n, step) in self.steps.iter().enumerate() {
            if let Some(problem) = step.problem(scope) {
                errors.add("steps", format!("step {}: {problem}", n + 1));
            }
        }
        match self.players {
            Players::Ignore => {}
            _ if scope == Scope::Panel => {
                errors.add(
                    "players",
                    "a panel-wide schedule has no players to wait for",
                );
            }
            Players::WaitForEmpty { up_to_minutes }
                if up_to_minutes == 0 || up_to_minutes > MAX_WAIT_MINUTES =>
            {
                errors.add(
                    "players",
                    format!("wait 1 to {MAX_WAIT_MINUTES} minutes for the server to empty"),
                );
            }
            _ => {}
        }
        if !self.warn_minutes.is_empty() && scope == Scope::Panel {
            errors.add(
                "warn_minutes",
                "a panel-wide schedule has no players to warn",
            );
        }
        if self
            .warn_minutes
            .iter()
            .any(|&m| m == 0 || m > MAX_WAIT_MINUTES)
        {
            errors.add(
                "warn_minutes",
                format!("warnings are 1 to {MAX_WAIT_MINUTES} minutes before"),
            );
        }
        if let Players::WaitForEmpty { up_to_minutes } = self.players
            && self.warn_minutes.iter().any(|&m| m > up_to_minutes)
        {
            errors.add(
                "warn_minutes",
                format!("a warning falls before the {up_to_minutes} minutes of waiting"),
            );
        }
        if errors.is_empty() {
            let mut plan = self;
            // Said in order, the earliest first.
            plan.warn_minutes.sort_unstable_by(|a, b| b.cmp(a));
            plan.warn_minutes.dedup();
            Ok(plan)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> Plan {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_plan_reads_as_json_and_round_trips() {
        let plan = plan(
            r#"{"steps": [{"step": "say", "text": "Restart in 5 minutes"},
                         {"step": "wait", "seconds": 300}, {"step": "restart"}],
                "players": "wait_for_empty", "up_to_minutes": 30, "warn_minutes": [5, 15, 5]}"#,
        )
        .check(Scope::Server)
        .unwrap();
        assert_eq!(plan.players, Players::WaitForEmpty { up_to_minutes: 30 });
        assert_eq!(plan.warn_minutes, [15, 5], "earliest first, once each");
        assert_eq!(plan.steps[2], Step::Restart);
        let again: Plan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert_eq!(again, plan);
        assert!(
            serde_json::from_str::<Plan>(
                r#"{"steps": [{"step": "explode"}], "players": "ignore"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn steps_read_as_lines_and_back() {
        let steps = Step::parse_lines(
            "say Restart in 5 minutes\n\nwait 5m\nRESTART\ncommand sm_reload\nwait 30\nupdate game\nrefresh workshop\nstop\nstart\nwait 2h\ncheck game\nback up\ncheck backups",
        )
        .unwrap();
        assert_eq!(
            steps[0],
            Step::Say {
                text: "Restart in 5 minutes".into()
            }
        );
        assert_eq!(steps[1], Step::Wait { seconds: 300 });
        assert_eq!(steps[2], Step::Restart);
        assert_eq!(steps[4], Step::Wait { seconds: 30 });
        assert_eq!(steps[9], Step::Wait { seconds: 7200 });
        for step in &steps {
            assert_eq!(&Step::parse_line(&step.to_line()).unwrap(), step);
        }
        let errors = Step::parse_lines("reboot\nwait soon")
            .unwrap_err()
            .to_string();
        assert!(errors.contains("\"reboot\" is not a step"), "{errors}");
        assert!(errors.contains("\"wait soon\": wait how long"), "{errors}");
    }

    #[test]
    fn mistakes_are_named_by_step() {
        let errors = plan(
            r#"{"steps": [{"step": "say", "text": "hi; quit"}, {"step": "command", "command": ""},
                         {"step": "say", "text": "a \"quote\""}, {"step": "wait", "seconds": 0}],
                "players": "wait_for_empty", "up_to_minutes": 10, "warn_minutes": [20]}"#,
        )
        .check(Scope::Server)
        .unwrap_err()
        .to_string();
        for expected in [
            "step 1: a message has a line break or a ';'",
            "step 2: a command is empty",
            "step 3: a message has a '\"'",
            "step 4: a wait is 1 s",
            "a warning falls before the 10 minutes",
        ] {
            assert!(errors.contains(expected), "{expected}: {errors}");
        }
        let none = plan(r#"{"steps": [], "players": "ignore"}"#)
            .check(Scope::Server)
            .unwrap_err()
            .to_string();
        assert!(none.contains("at least one step"), "{none}");
    }

    #[test]
    fn a_panel_wide_plan_has_no_server_steps_and_no_players() {
        let errors = plan(
            r#"{"steps": [{"step": "restart"}, {"step": "update_game"}],
                "players": "only_when_empty", "warn_minutes": [5]}"#,
        )
        .check(Scope::Panel)
        .unwrap_err()
        .to_string();
        assert!(
            errors.contains("step 1: \"restart\" acts on a server"),
            "{errors}"
        );
        assert!(!errors.contains("step 2"), "{errors}");
        assert!(errors.contains("no players to wait for"), "{errors}");
        assert!(errors.contains("no players to warn"), "{errors}");
        assert!(
            plan(r#"{"steps": [{"step": "update_game"}, {"step": "refresh_workshop"}], "players": "ignore"}"#)
                .check(Scope::Panel)
                .is_ok()
        );
    }
}
