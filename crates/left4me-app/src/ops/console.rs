//! A server's RCON console, with its history kept in the database.

use std::time::Duration;

use left4me_store::{ConsoleCommand, Server};
use srcds_protocol::{RconClient, RconError};

use crate::App;
use crate::actor::Actor;
use crate::error::{OpError, OpResult};
use crate::ops::access::{self, ServerAction};
use crate::ops::activity::record;

/// How long a command may take to answer.
const RCON_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest command line taken.
const MAX_COMMAND: usize = 1000;

/// The server and its last `limit` commands, oldest first (operators,
/// the owner and admins).
pub async fn history(
    app: &App,
    actor: &Actor,
    id: i64,
    limit: i64,
) -> OpResult<(Server, Vec<ConsoleCommand>)> {
    let server = access::server(app, actor, id, ServerAction::Console)
        .await?
        .server;
    let commands = app.store().console_commands(id, limit).await?;
    Ok((server, commands))
}

/// Runs one command line over RCON and keeps it with its reply (or why
/// there was none) in the history and the activity log.
pub async fn execute(app: &App, actor: &Actor, id: i64, command: &str) -> OpResult<ConsoleCommand> {
    let server = access::server(app, actor, id, ServerAction::Console)
        .await?
        .server;
    let command = command.trim();
    if command.is_empty() || command.len() > MAX_COMMAND || command.contains(['\n', '\r', '\0']) {
        return Err(OpError::BadRequest(format!(
            "type one command line (at most {MAX_COMMAND} characters)"
        )));
    }
    let outcome = run(&server, command).await;
    match &outcome {
        Ok(_) => app.live().note_rcon_answer(id, false),
        Err(RconError::AuthFailed) => app.live().note_rcon_answer(id, true),
        Err(_) => {}
    }
    let outcome = outcome.map_err(|e| describe(&e, server.port));
    let mut write = app.store().write().await?;
    let entry = write
        .record_console_command(
            id,
            (actor.id(), actor.name()),
            command,
            outcome.as_deref().map_err(String::as_str),
        )
        .await?;
    let detail = format!("ran {command:?} on {}", server.name);
    record(&mut write, actor, Some(id), "console", &detail).await?;
    write.commit().await?;
    Ok(entry)
}

/// What a user should read for each way RCON can fail.
fn describe(err: &RconError, port: i64) -> String {
    match err {
        RconError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("the server is not running (nothing answers RCON on port {port})")
        }
        RconError::AuthFailed => "the server refused the panel's RCON password: its \
                                  rcon_password no longer matches (did a config change it?)"
            .to_owned(),
        RconError::Timeout { .. } => format!("no reply within {} s", RCON_TIMEOUT.as_secs()),
        other => other.to_string(),
    }
}

async fn run(server: &Server, command: &str) -> Result<String, RconError> {
    let port = u16::try_from(server.port)
        .map_err(|_| RconError::InvalidInput(format!("bad port {}", server.port)))?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut client = RconClient::connect(addr, server.rcon_password.expose(), RCON_TIMEOUT).await?;
    client.exec(command).await
}
