//! A server's console log: the page and its live stream, from the built-in
//! supervisor's `console.log` or from the systemd journal.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use left4me_host::supervisor::LogSource;
use tokio::sync::mpsc;

use crate::access::{self, ServerAction};
use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::pages::{Layout, ServerLogPage, render};
use crate::spec_builder::instance_name;
use crate::state::AppState;
use left4me_host::journal::follow_journal;
use left4me_host::log_follow::{Position, follow, last_lines};

/// Lines shown when the page opens.
const BACKLOG: usize = 200;

pub(crate) async fn page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let grant = access::server(&state, &user, id, ServerAction::Log).await?;
    let (lines, note) = match state.host().log_source(&instance_name(id)) {
        LogSource::File(path) => {
            let lines = last_lines(&path, BACKLOG).await;
            (lines.into_iter().map(|l| l.text).collect(), String::new())
        }
        LogSource::Journal { unit } => (Vec::new(), format!("Live from the journal of {unit}.")),
    };
    let page = ServerLogPage {
        l: Layout::of(&user),
        server_id: grant.server.id,
        name: grant.server.name,
        operate: grant.access.allows(ServerAction::Console),
        text: lines.join("\n"),
        note,
    };
    Ok(render(&page)?.into_response())
}

fn receiver_stream<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> impl Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The most lines sent as one event.
const BATCH: usize = 256;

/// One event for the lines that were ready together: its data holds them
/// one per `data:` field, and its id is where the last one ends, so a
/// reconnect resumes after the batch. Batching keeps a fast log from
/// costing one write per line per watcher.
fn lines_event(lines: Vec<(String, String)>) -> Event {
    let id = lines.last().map(|(id, _)| id.clone()).unwrap_or_default();
    let text: Vec<String> = lines
        .into_iter()
        // A carriage return would end an SSE line too.
        .map(|(_, text)| text.replace('\r', ""))
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
    access::server(&state, &user, id, ServerAction::Log).await?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Each line with the id that resumes after it.
    let lines: BoxStream<'static, (String, String)> =
        match state.host().log_source(&instance_name(id)) {
            LogSource::File(path) => {
                let rx = follow(path, resume.as_deref().and_then(Position::parse), BACKLOG);
                Box::pin(receiver_stream(rx).map(|l| (l.end.to_string(), l.text)))
            }
            LogSource::Journal { unit } => {
                let rx = follow_journal(
                    std::path::Path::new("journalctl"),
                    &unit,
                    resume.as_deref(),
                    BACKLOG,
                );
                Box::pin(receiver_stream(rx).map(|l| (l.cursor, l.text)))
            }
        };
    let stream = lines
        .ready_chunks(BATCH)
        .map(|batch| Ok(lines_event(batch)));
    let stream = stream.take_until(state.shutdown().clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))))
}
