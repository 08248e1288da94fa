//! A server's console log: the page and its live stream, from the built-in
//! supervisor's `console.log` or from the systemd journal.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use futures_util::stream::BoxStream;
use left4me_host::supervisor::LogSource;

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::journal::follow_journal;
use crate::log_follow::{Position, follow, last_lines};
use crate::pages::{Layout, ServerLogPage, render};
use crate::routes::servers::load_server;
use crate::spec_builder::instance_name;
use crate::state::AppState;

/// Lines shown when the page opens.
const BACKLOG: usize = 200;

pub(crate) async fn page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let server = load_server(&state, &user, id).await?;
    let (lines, note) = match state.host().log_source(&instance_name(id)) {
        LogSource::File(path) => {
            let lines = last_lines(&path, BACKLOG).await;
            (lines.into_iter().map(|l| l.text).collect(), String::new())
        }
        LogSource::Journal { unit } => (Vec::new(), format!("Live from the journal of {unit}.")),
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

fn line_event(id: &str, text: String) -> Event {
    let event = Event::default().event("line").data(text);
    if id.is_empty() { event } else { event.id(id) }
}

/// Server-sent events, one per line, with ids a reconnect resumes from
/// exactly (`INODE:OFFSET` in `console.log`, or the journal cursor), across
/// restarts and rotations. While the server is down the stream stays open
/// (keep-alives) and continues when it prints again.
pub(crate) async fn events(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    load_server(&state, &user, id).await?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let stream: BoxStream<'static, Result<Event, Infallible>> =
        match state.host().log_source(&instance_name(id)) {
            LogSource::File(path) => {
                let rx = follow(path, resume.as_deref().and_then(Position::parse), BACKLOG);
                Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
                    let line = rx.recv().await?;
                    Some((Ok(line_event(&line.end.to_string(), line.text)), rx))
                }))
            }
            LogSource::Journal { unit } => {
                let rx = follow_journal(
                    std::path::Path::new("journalctl"),
                    &unit,
                    resume.as_deref(),
                    BACKLOG,
                );
                Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
                    let line = rx.recv().await?;
                    Some((Ok(line_event(&line.cursor, line.text)), rx))
                }))
            }
        };
    let stream =
        futures_util::StreamExt::take_until(stream, state.shutdown().clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))))
}
