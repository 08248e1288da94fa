//! A server's console log: the page and its live stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use left4me_host::supervisor::LogSource;

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::log_follow::{Position, follow};
use crate::pages::{Layout, ServerLogPage, render};
use crate::routes::servers::load_server;
use crate::spec_builder::instance_name;
use crate::state::AppState;

/// Lines shown when the page opens.
const BACKLOG: usize = 200;

fn log_file(state: &AppState, server_id: i64) -> Result<std::path::PathBuf, String> {
    match state.host().log_source(&instance_name(server_id)) {
        LogSource::File(path) => Ok(path),
        LogSource::Journal { unit } => Err(format!(
            "This server runs under systemd: read its log with `journalctl -u {unit}` (streaming the journal here is not built yet)."
        )),
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let server = load_server(&state, &user, id).await?;
    let (lines, note) = match log_file(&state, id) {
        Ok(path) => {
            let lines = tokio::task::spawn_blocking(move || {
                left4me_host::supervisor::builtin::last_lines(&path, BACKLOG)
            })
            .await
            .map_err(AppError::internal)?;
            (lines, String::new())
        }
        Err(note) => (Vec::new(), note),
    };
    let page = ServerLogPage {
        l: Layout::of(&user),
        server_id: server.id,
        name: server.name,
        text: lines.join("\n"),
        note,
    };
    Ok(render(&page)?.into_response())
}

/// Server-sent events, one per line, with `INODE:OFFSET` ids so a reconnect
/// continues exactly where it stopped, across restarts and rotations. While
/// the server is down the stream stays open (keep-alives) and resumes.
pub(crate) async fn events(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    load_server(&state, &user, id).await?;
    let path = log_file(&state, id).map_err(AppError::BadRequest)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(Position::parse);
    let rx = follow(path, resume, BACKLOG);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let line = rx.recv().await?;
        let event = Event::default()
            .id(line.end.to_string())
            .event("line")
            .data(line.text);
        Some((Ok(event), rx))
    });
    let stream =
        futures_util::StreamExt::take_until(stream, state.shutdown().clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))))
}
