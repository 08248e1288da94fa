//! The RCON console of a server, with a history kept in the database.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use left4me_store::Server;
use serde::Deserialize;
use srcds_protocol::{RconClient, RconError};

use crate::access::{self, ServerAction};
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::pages::{ConsolePage, Layout, render};
use crate::state::AppState;

/// Commands shown on the page (and offered by ↑/↓).
const HISTORY: i64 = 50;
const RCON_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let server = access::server(&state, &user, id, ServerAction::Console)
        .await?
        .server;
    let commands = state.store().console_commands(id, HISTORY).await?;
    let history: Vec<&str> = commands.iter().map(|c| c.command.as_str()).collect();
    let page = ConsolePage {
        l: Layout::of(&user),
        server_id: server.id,
        name: server.name,
        history_json: serde_json::to_string(&history).map_err(AppError::internal)?,
        commands,
    };
    Ok(render(&page)?.into_response())
}

/// What a user should read for each way RCON can fail.
fn describe(err: &RconError, port: i64) -> String {
    match err {
        RconError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("the server is not running (nothing answers RCON on port {port})")
        }
        RconError::AuthFailed => {
            "the server refused the RCON password (did a config change rcon_password?)".to_owned()
        }
        RconError::Timeout { .. } => format!("no reply within {} s", RCON_TIMEOUT.as_secs()),
        other => other.to_string(),
    }
}

async fn run(server: &Server, command: &str) -> Result<String, String> {
    let port = u16::try_from(server.port).map_err(|_| "bad port".to_owned())?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut client = RconClient::connect(addr, server.rcon_password.expose(), RCON_TIMEOUT)
        .await
        .map_err(|e| describe(&e, server.port))?;
    client
        .exec(command)
        .await
        .map_err(|e| describe(&e, server.port))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommandForm {
    command: String,
}

pub(crate) async fn execute(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CommandForm>,
) -> AppResult<Response> {
    let server = access::server(&state, &user, id, ServerAction::Console)
        .await?
        .server;
    let command = form.command.trim();
    if command.is_empty() || command.len() > 1000 || command.contains(['\n', '\r', '\0']) {
        return Err(AppError::BadRequest(
            "type one command line (at most 1000 characters)".into(),
        ));
    }
    let outcome = run(&server, command).await;
    let entry = state
        .store()
        .record_console_command(
            id,
            (user.id(), &user.user.username),
            command,
            outcome.as_deref().map_err(String::as_str),
        )
        .await?;
    crate::routes::record(
        &state,
        &user,
        Some(id),
        "console",
        format!("ran {command:?} on {}", server.name),
    )
    .await?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        Ok(Json(entry).into_response())
    } else {
        Ok(Redirect::to(&format!("/servers/{id}/console#end")).into_response())
    }
}
