//! `left4me game status|check|install|update`: the game from Steam, the
//! same operations as the panel's Game page.

use clap::Subcommand;
use left4me_host::game::systemd::{Task, run_helper};
use left4me_host::game::{Game, GameError, GameStatus, Updated};

use crate::instance::{until_interrupted, with_ctrl_c};
use crate::{Cli, CliResult, Failure, settings};

#[derive(Debug, Subcommand)]
pub(crate) enum GameCommand {
    /// The installed build, the versions on disk, the last check.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Ask Steam for the public build and compare it with the installed one.
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Install the game (when it is not installed yet).
    Install {
        /// Have steamcmd check every file.
        #[arg(long)]
        validate: bool,
        #[arg(long)]
        json: bool,
    },
    /// Update the game to Steam's public build as a new version; running
    /// servers keep theirs until they restart.
    Update {
        #[arg(long)]
        validate: bool,
        #[arg(long)]
        json: bool,
    },
}

fn game(cli: &Cli) -> Result<Game, Failure> {
    Ok(settings(cli)?.game()?)
}

fn failure(error: GameError) -> Failure {
    match error {
        GameError::SteamcmdMissing(_) | GameError::Missing32BitLibraries { .. } => {
            Failure::invalid(error)
        }
        other => Failure::from(other),
    }
}

fn print_status(status: &GameStatus) {
    match &status.installed {
        Some(v) => println!(
            "installed: version {} (build {})",
            v.version,
            v.build_id.as_deref().unwrap_or("unknown")
        ),
        None => println!("installed: no (left4me game install)"),
    }
    if let Some(check) = &status.latest {
        println!(
            "public build: {}{}",
            check.public_build,
            if check.update_available() {
                " (update available: left4me game update)"
            } else {
                " (up to date)"
            }
        );
    }
    println!("versions on disk: {}", status.versions.len());
    println!("disk used: {} MiB", status.disk_bytes.div_ceil(1 << 20));
}

pub(crate) fn run(cli: &Cli, cmd: &GameCommand) -> CliResult {
    let game = game(cli)?;
    match cmd {
        GameCommand::Status { json } => {
            let status = game.status().map_err(failure)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print_status(&status);
            }
        }
        GameCommand::Check { json } => {
            let check = with_ctrl_c(move |ctx| game.check(ctx))?.map_err(failure)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&check)?);
            } else {
                println!(
                    "installed build: {}, public build: {}{}",
                    check.installed_build.as_deref().unwrap_or("none"),
                    check.public_build,
                    if check.update_available() {
                        " (update available)"
                    } else {
                        ""
                    }
                );
            }
        }
        GameCommand::Install { validate, json } | GameCommand::Update { validate, json } => {
            let installed = game.status().map_err(failure)?.installed;
            match (cmd, &installed) {
                (GameCommand::Install { .. }, Some(v)) => {
                    return Err(Failure::invalid(anyhow::anyhow!(
                        "the game is installed (version {}); update it with `left4me game update`",
                        v.version
                    )));
                }
                (GameCommand::Update { .. }, None) => {
                    return Err(Failure::invalid(anyhow::anyhow!(
                        "the game is not installed; install it with `left4me game install`"
                    )));
                }
                _ => {}
            }
            let validate = *validate;
            let updated = with_ctrl_c(move |ctx| game.update(validate, ctx))?.map_err(failure)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&updated)?);
                return Ok(());
            }
            match updated {
                Updated::Published(v) => println!(
                    "version {} (build {}) is current",
                    v.version,
                    v.build_id.as_deref().unwrap_or("unknown")
                ),
                Updated::UpToDate => println!("the game is up to date"),
            }
        }
    }
    Ok(())
}

/// `left4me game-helper TASK`, the `ExecStart` of `left4me-game@TASK`:
/// the task in this process, its events and result as JSON lines.
pub(crate) fn helper(cli: &Cli, task: &str) -> CliResult {
    let task = Task::parse(task).ok_or_else(|| {
        Failure::invalid(anyhow::anyhow!(
            "unknown task {task:?}: update, validate, check or workshop-ID"
        ))
    })?;
    let game = game(cli)?;
    until_interrupted(move |token| run_helper(&game, task, token))?.map_err(failure)
}
