//! A server's console log: the page and its live stream, from the built-in
//! supervisor's `console.log` or from the systemd journal.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use left4me_app::ops::server_log::{self, FollowedLine};

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::pages::{Layout, ServerLogPage, render};
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

/// The most lines sent as one event.
const BATCH: usize = 256;

/// One event for the lines that were ready together: its data holds them
/// one per `data:` field, and its id is where the last one ends, so a
/// reconnect resumes after the batch. Batching keeps a fast log from
/// costing one write per line per watcher.
fn lines_event(lines: Vec<FollowedLine>) -> Event {
    let id = lines.last().map(|l| l.resume.clone()).unwrap_or_default();
    let text: Vec<String> = lines
        .into_iter()
        // A carriage return would end an SSE line too.
        .map(|l| l.text.replace('\r', ""))
        .collect();
    let mut data = text.join("\n");
    if data.is_empty() {
        // A browser drops an event whose data is empty; keep the blank line.
        data.push(' ');
    }
    let event = Event::default().event("lines").data(data);
    if id.is_empty() { event } else { event.id(id) }
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
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let lines = server_log::follow_log(state.app(), &user, id, resume.as_deref(), BACKLOG).await?;
    let stream = lines
        .ready_chunks(BATCH)
        .map(|batch| Ok(lines_event(batch)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))))
}
