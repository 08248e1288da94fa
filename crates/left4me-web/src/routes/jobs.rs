//! Jobs: lists, the job page, its live log (SSE, resumable with
//! `Last-Event-ID`) and cancellation.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::Stream;
use left4me_store::{Job, JobFilter, JobState, LogLine};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};

use crate::access;
use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::jobs::JobEvent;
use crate::pages::{JobPage, JobsPage, Layout, render};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    server: Option<i64>,
}

pub(crate) async fn index(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ListQuery>,
) -> AppResult<Response> {
    let (title, filter) = match query.server {
        Some(id) => {
            let server = access::server(&state, &user, id, access::ServerAction::View)
                .await?
                .server;
            (format!("Jobs of {}", server.name), JobFilter::Server(id))
        }
        None if user.is_admin() => ("All jobs".to_owned(), JobFilter::All),
        None => ("Your jobs".to_owned(), JobFilter::User(user.id())),
    };
    let page = JobsPage {
        l: Layout::of(&user),
        title,
        jobs: state.store().jobs(filter, 200).await?,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct ShowQuery {
    /// Set when a cancel arrived after the job had ended.
    #[serde(default)]
    late_cancel: bool,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<ShowQuery>,
) -> AppResult<Response> {
    let job = access::job(&state, &user, id).await?;
    let lines = state.store().job_log_after(id, 0).await?;
    let waiting_for = waiting_for(&state, &job).await?;
    let page = JobPage {
        l: Layout::of(&user),
        last_seq: lines.last().map_or(0, |l| l.seq),
        job,
        lines,
        waiting_for,
        late_cancel: query.late_cancel,
    };
    Ok(render(&page)?.into_response())
}

/// For a queued job: the earlier job on the same server (or, for the
/// game, any earlier game job) it waits behind: such jobs run one at a
/// time, in order.
async fn waiting_for(state: &AppState, job: &Job) -> AppResult<Option<Job>> {
    if job.state != JobState::Queued {
        return Ok(None);
    }
    Ok(state.store().job_ahead(job).await?)
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let job = access::cancellable_job(&state, &user, id).await?;
    if job.state.is_finished() {
        // Nothing to cancel (it ended meanwhile): say so on the page.
        return Ok(Redirect::to(&format!("/jobs/{id}?late_cancel=true")).into_response());
    }
    state.jobs().cancel(&job).await?;
    let detail = format!(
        "cancelled job #{id} ({}, {})",
        crate::pages::job_label(&job.kind),
        job.subject
    );
    super::record(&state, &user, job.server_id, "job.cancel", detail).await?;
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    after: Option<i64>,
}

fn line_event(line: &LogLine) -> Event {
    Event::default()
        .id(line.seq.to_string())
        .event("line")
        .data(serde_json::to_string(line).unwrap_or_default())
}

/// The job log as server-sent events: every line after `Last-Event-ID`
/// (or `?after=`), then new lines as they come, then an `end` event.
pub(crate) async fn events(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(query): Query<EventsQuery>,
) -> AppResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    access::job(&state, &user, id).await?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or(query.after)
        .unwrap_or(0);
    // Subscribe before reading the backlog, so no line falls between.
    let events = state.jobs().subscribe();
    let (tx, rx) = mpsc::channel::<Event>(256);
    tokio::spawn(stream_job(state.clone(), id, after, events, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    });
    let stream =
        futures_util::StreamExt::take_until(stream, state.shutdown().clone().cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn stream_job(
    state: AppState,
    id: i64,
    mut last: i64,
    mut events: broadcast::Receiver<JobEvent>,
    tx: mpsc::Sender<Event>,
) {
    // Sends every stored line after `last`; false when the client left.
    async fn catch_up(state: &AppState, id: i64, last: &mut i64, tx: &mpsc::Sender<Event>) -> bool {
        let Ok(lines) = state.store().job_log_after(id, *last).await else {
            return false;
        };
        for line in &lines {
            if tx.send(line_event(line)).await.is_err() {
                return false;
            }
            *last = line.seq;
        }
        true
    }
    async fn end(
        state: &AppState,
        id: i64,
        last: &mut i64,
        tx: &mpsc::Sender<Event>,
        job_state: JobState,
    ) {
        if catch_up(state, id, last, tx).await {
            let _ = tx
                .send(Event::default().event("end").data(job_state.as_str()))
                .await;
        }
    }

    if !catch_up(&state, id, &mut last, &tx).await {
        return;
    }
    match state.store().job(id).await {
        Ok(job) if job.state.is_finished() => {
            return end(&state, id, &mut last, &tx, job.state).await;
        }
        Ok(_) => {}
        Err(_) => return,
    }
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = tx.closed() => return,
        };
        match event {
            Ok(JobEvent::Line { job_id, line }) if job_id == id => {
                if line.seq == last + 1 {
                    if tx.send(line_event(&line)).await.is_err() {
                        return;
                    }
                    last = line.seq;
                } else if line.seq > last && !catch_up(&state, id, &mut last, &tx).await {
                    return;
                }
            }
            Ok(JobEvent::Progress {
                job_id,
                done,
                total,
            }) if job_id == id => {
                let event = Event::default()
                    .event("progress")
                    .data(format!("{done}/{total}"));
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            Ok(JobEvent::Finished {
                job_id,
                state: job_state,
            }) if job_id == id => {
                return end(&state, id, &mut last, &tx, job_state).await;
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if !catch_up(&state, id, &mut last, &tx).await {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
