//! `/api/v1/jobs`: what the panel does in the background, each job's log
//! as it happens (server-sent events, resumable), and Cancel.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use left4me_app::ops::jobs::{self, Cancel};
use left4me_store::Job;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Paging;
use super::auth::ApiUser;
use super::problem::{ApiResult, Problem};
use crate::responses::{job_log_stream, resume_point};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobView {
    id: i64,
    /// `server.start`, `server.stop`, `game.update`, `overlay.build`, …
    kind: String,
    /// `queued`, `running`, `succeeded`, `failed`, `cancelled` or `interrupted`.
    state: String,
    /// What it works on, in words.
    subject: String,
    server_id: Option<i64>,
    overlay_id: Option<i64>,
    /// Who asked for it.
    by: String,
    /// Why it failed.
    error: Option<String>,
    progress_done: Option<i64>,
    progress_total: Option<i64>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    /// This job in the API.
    url: String,
    /// Its log as server-sent events.
    events_url: String,
}

impl From<Job> for JobView {
    fn from(job: Job) -> Self {
        Self {
            url: format!("/api/v1/jobs/{}", job.id),
            events_url: format!("/api/v1/jobs/{}/events", job.id),
            id: job.id,
            kind: job.kind,
            state: job.state.as_str().to_owned(),
            subject: job.subject,
            server_id: job.server_id,
            overlay_id: job.overlay_id,
            by: job.username,
            error: job.error,
            progress_done: job.progress_done,
            progress_total: job.progress_total,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        }
    }
}

/// 202 with the queued job and where to follow it.
pub(crate) fn accepted(job: Job) -> Response {
    let view = JobView::from(job);
    let location = view.url.clone();
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response()
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JobList {
    items: Vec<JobView>,
    total: usize,
    next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct JobFilter {
    /// Only this server's jobs.
    server: Option<i64>,
}

/// Recent jobs, newest first: a server's, or the caller's own (every
/// job for admins).
#[utoipa::path(get, path = "/jobs", tag = "jobs", params(JobFilter, Paging),
    responses((status = 200, body = JobList), (status = 404, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    user: ApiUser,
    Query(filter): Query<JobFilter>,
    Query(paging): Query<Paging>,
) -> ApiResult<Json<JobList>> {
    let (_, all) = jobs::list(state.app(), &user, filter.server).await?;
    let base = match filter.server {
        Some(id) => format!("/api/v1/jobs?server={id}"),
        None => "/api/v1/jobs".to_owned(),
    };
    let (items, total, next) = paging.page(all, &base);
    Ok(Json(JobList {
        items: items.into_iter().map(JobView::from).collect(),
        total,
        next,
    }))
}

/// One job.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200, body = JobView), (status = 404, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<JobView>> {
    Ok(Json(jobs::detail(state.app(), &user, id).await?.job.into()))
}

/// Cancels a queued job, or asks a running one to stop (it rolls back
/// what it did). A job that had ended is left as it was.
#[utoipa::path(post, path = "/jobs/{id}/cancel", tag = "jobs",
    params(("id" = i64, Path, description = "job id")),
    responses((status = 202, body = JobView, description = "asked to stop"),
        (status = 409, body = Problem, description = "it had ended"),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("token" = ["operate"])))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    Ok(match jobs::cancel(state.app(), &user, id).await? {
        Cancel::Asked(job) => accepted(job),
        Cancel::AlreadyFinished(job) => Problem::new(
            StatusCode::CONFLICT,
            format!(
                "job {id} had ended ({}): nothing to cancel",
                job.state.as_str()
            ),
        )
        .into_response(),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct After {
    /// Lines after this number (or the `Last-Event-ID` header).
    after: Option<i64>,
}

/// The job's log as server-sent events: `line` events (id: the line's
/// number, data: `{"seq","stream","line","at"}`), `progress` (`done/total`)
/// and a last `end` (the final state). Reconnect with `Last-Event-ID` to
/// resume.
#[utoipa::path(get, path = "/jobs/{id}/events", tag = "jobs",
    params(("id" = i64, Path, description = "job id"), After),
    responses((status = 200, content_type = "text/event-stream", body = String),
        (status = 404, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn events(
    State(state): State<AppState>,
    user: ApiUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(after): Query<After>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let after = resume_point(&headers, after.after);
    let followed = jobs::follow(state.app(), &user, id, after).await?;
    Ok(job_log_stream(followed))
}
