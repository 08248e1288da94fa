//! Jobs: lists, the job page, its live log (SSE, resumable with
//! `Last-Event-ID`) and cancellation.

use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::Stream;
use left4me_app::ops::jobs::{self, Cancel};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::AppResult;
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
    let (server, jobs) = jobs::list(state.app(), &user, query.server).await?;
    let title = match server {
        Some(name) => format!("Jobs of {name}"),
        None if user.is_admin() => "All jobs".to_owned(),
        None => "Your jobs".to_owned(),
    };
    let page = JobsPage {
        l: Layout::of(&user),
        title,
        jobs,
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
    let detail = jobs::detail(state.app(), &user, id).await?;
    let page = JobPage {
        l: Layout::of(&user),
        last_seq: detail.lines.last().map_or(0, |l| l.seq),
        job: detail.job,
        lines: detail.lines,
        waiting_for: detail.waiting_for,
        late_cancel: query.late_cancel,
    };
    Ok(render(&page)?.into_response())
}

pub(crate) async fn cancel(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let to = match jobs::cancel(state.app(), &user, id).await? {
        Cancel::Asked(_) => format!("/jobs/{id}"),
        // Nothing to cancel (it ended meanwhile): say so on the page.
        Cancel::AlreadyFinished(_) => format!("/jobs/{id}?late_cancel=true"),
    };
    Ok(Redirect::to(&to).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    after: Option<i64>,
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
    let after = crate::responses::resume_point(&headers, query.after);
    let followed = jobs::follow(state.app(), &user, id, after).await?;
    Ok(crate::responses::job_log_stream(followed))
}
