//! A server's console log: the page and its live stream, from the built-in
//! supervisor's `console.log` or from the systemd journal.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use left4me_app::ops::server_log;

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::pages::{Layout, ServerLogPage, render};
use crate::responses::{log_resume_point, server_log_stream};
use crate::state::AppState;

/// Lines shown when the page opens.
const BACKLOG: usize = 200;

pub(crate) async fn page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let view = server_log::view(state.app(), &user, id, BACKLOG).await?;
    let page = ServerLogPage {
        l: Layout::of(&user),
        server_id: view.server.id,
        name: view.server.name,
        operate: view.operate,
        text: view.lines.join("\n"),
        note: view.note,
    };
    Ok(render(&page)?.into_response())
}

/// Server-sent `lines` events with ids a reconnect resumes from exactly
/// (`INODE:OFFSET` in `console.log`, or the journal cursor), across
/// restarts and rotations. While the server is down the stream stays open
/// (keep-alives) and continues when it prints again.
pub(crate) async fn events(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let resume = log_resume_point(&headers);
    let lines = server_log::follow_log(state.app(), &user, id, resume.as_deref(), BACKLOG).await?;
    Ok(server_log_stream(lines))
}
