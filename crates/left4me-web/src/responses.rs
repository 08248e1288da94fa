//! Answers the pages and the API share: files as downloads, and job and
//! console logs as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use left4me_app::ops::jobs::Followed;
use left4me_app::ops::server_log::FollowedLine;
use left4me_files::RelPath;

pub(crate) fn attachment(name: &str, content_type: &str, body: Body) -> Response {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// A file of an overlay or of a server's merged tree, downloaded under
/// its own name.
pub(crate) fn file_download(path: &RelPath, file: std::fs::File) -> Response {
    attachment(
        path.file_name().unwrap_or("file"),
        "application/octet-stream",
        file_body(file),
    )
}

fn file_body(file: std::fs::File) -> Body {
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Body::from_stream(stream)
}

/// A files overlay as its zip archive.
pub(crate) fn zip_download(archive: left4me_app::ops::overlays::Archive) -> Response {
    let name = format!(
        "overlay-{}-{}.zip",
        archive.overlay.id, archive.overlay.name
    );
    attachment(&name, "application/zip", file_body(archive.file))
}

/// Where a job log stream resumes: after `Last-Event-ID`, else `after`,
/// else from the start.
pub(crate) fn resume_point(headers: &HeaderMap, after: Option<i64>) -> i64 {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or(after)
        .unwrap_or(0)
}

/// A followed job log as server-sent events: one shape for the pages and
/// the API.
pub(crate) fn job_log_stream(
    followed: tokio::sync::mpsc::Receiver<Followed>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = futures_util::stream::unfold(followed, |mut rx| async move {
        let event = match rx.recv().await? {
            Followed::Line(line) => Event::default()
                .id(line.seq.to_string())
                .event("line")
                .data(serde_json::to_string(&line).unwrap_or_default()),
            Followed::Progress { done, total } => Event::default()
                .event("progress")
                .data(format!("{done}/{total}")),
            Followed::End(job_state) => Event::default().event("end").data(job_state.as_str()),
        };
        Some((Ok(event), rx))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
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

/// A followed console log as `lines` events with ids a reconnect resumes
/// from exactly (`INODE:OFFSET` in `console.log`, or the journal cursor).
pub(crate) fn server_log_stream(
    lines: BoxStream<'static, FollowedLine>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = lines
        .ready_chunks(BATCH)
        .map(|batch| Ok(lines_event(batch)));
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

/// Where a console log stream resumes: after `Last-Event-ID`.
pub(crate) fn log_resume_point(headers: &HeaderMap) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
