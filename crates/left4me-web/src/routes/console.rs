//! The RCON console of a server, with a history kept in the database.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use left4me_app::ops::console;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::pages::{ConsolePage, Layout, render};
use crate::state::AppState;

/// Commands shown on the page (and offered by ↑/↓).
const HISTORY: i64 = 50;

pub(crate) async fn page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let (server, commands) = console::history(state.app(), &user, id, HISTORY).await?;
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
    let entry = console::execute(state.app(), &user, id, &form.command).await?;
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
