//! `/api/v1/servers/{id}/schedules` and `/api/v1/schedules`: what a
//! server, or the panel, does by itself, when, and its runs (jobs).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use left4me_app::ops::schedule_runs;
use left4me_app::ops::schedules::{self, ScheduleInput};
use left4me_app::schedule_plan::Plan;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use super::auth::ApiUser;
use super::jobs::{JobView, accepted};
use super::problem::{ApiResult, Problem};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScheduleView {
    id: i64,
    name: String,
    /// Its server; none for the panel's own.
    server_id: Option<i64>,
    /// "HH:MM" (every day at) or five cron fields.
    timing: String,
    /// The IANA time zone the timing is read in.
    time_zone: String,
    plan: Plan,
    /// A run missed while the panel was down runs once when it is back.
    catch_up: bool,
    enabled: bool,
    /// Its next runs (unix seconds), soonest first.
    next_runs: Vec<i64>,
    /// The last run skipped, and why.
    last_skipped: Option<String>,
    /// Its last runs, newest first.
    runs: Vec<JobView>,
    /// One of the panel's own routines (`game_check`,
    /// `workshop_refresh`): changed or turned off, never deleted.
    builtin: Option<String>,
    url: String,
}

impl From<schedules::ScheduleView> for ScheduleView {
    fn from(v: schedules::ScheduleView) -> Self {
        let s = v.schedule;
        Self {
            url: format!("/api/v1/schedules/{}", s.id),
            id: s.id,
            name: s.name,
            server_id: s.server_id,
            timing: s.timing,
            time_zone: s.time_zone,
            plan: v.plan,
            catch_up: s.catch_up,
            enabled: s.enabled,
            next_runs: v.next_runs,
            last_skipped: s.last_skipped,
            runs: v.runs.into_iter().map(JobView::from).collect(),
            builtin: s.builtin,
        }
    }
}

/// A schedule to make, or its new settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleBody {
    name: String,
    /// "HH:MM" (every day at) or five cron fields ("30 4 * * 1").
    timing: String,
    /// An IANA time zone; UTC when left out.
    #[serde(default = "utc")]
    time_zone: String,
    plan: Plan,
    #[serde(default = "yes")]
    catch_up: bool,
    #[serde(default = "yes")]
    enabled: bool,
}

fn utc() -> String {
    "UTC".into()
}

fn yes() -> bool {
    true
}

impl From<ScheduleBody> for ScheduleInput {
    fn from(b: ScheduleBody) -> Self {
        Self {
            name: b.name,
            timing: b.timing,
            time_zone: b.time_zone,
            plan: b.plan,
            catch_up: b.catch_up,
            enabled: b.enabled,
        }
    }
}

fn created(view: schedules::ScheduleView) -> Response {
    let view = ScheduleView::from(view);
    let location = view.url.clone();
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response()
}

fn views(list: schedules::ScheduleList) -> Json<Vec<ScheduleView>> {
    Json(list.schedules.into_iter().map(ScheduleView::from).collect())
}

/// A server's schedules.
#[utoipa::path(get, path = "/servers/{id}/schedules", tag = "schedules",
    params(("id" = i64, Path, description = "server id")),
    responses((status = 200, body = Vec<ScheduleView>)),
    security(("token" = ["read"])))]
pub(crate) async fn of_server(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<ScheduleView>>> {
    Ok(views(schedules::list(state.app(), &user, Some(id)).await?))
}

/// Makes a schedule for a server (its owner, admins and operators).
#[utoipa::path(post, path = "/servers/{id}/schedules", tag = "schedules",
    params(("id" = i64, Path, description = "server id")), request_body = ScheduleBody,
    responses((status = 201, body = ScheduleView), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn create_for_server(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> ApiResult<Response> {
    let input = ScheduleInput::from(body);
    Ok(created(
        schedules::create(state.app(), &user, Some(id), &input).await?,
    ))
}

/// The panel's own schedules (admins).
#[utoipa::path(get, path = "/schedules", tag = "schedules",
    responses((status = 200, body = Vec<ScheduleView>), (status = 403, body = Problem)),
    security(("token" = ["read", "admin"])))]
pub(crate) async fn of_panel(
    State(state): State<AppState>,
    user: ApiUser,
) -> ApiResult<Json<Vec<ScheduleView>>> {
    Ok(views(schedules::list(state.app(), &user, None).await?))
}

/// Makes a schedule of the panel's own (admins): the game, every
/// Workshop overlay.
#[utoipa::path(post, path = "/schedules", tag = "schedules", request_body = ScheduleBody,
    responses((status = 201, body = ScheduleView), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("token" = ["admin"])))]
pub(crate) async fn create_for_panel(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> ApiResult<Response> {
    let input = ScheduleInput::from(body);
    Ok(created(
        schedules::create(state.app(), &user, None, &input).await?,
    ))
}

/// One schedule, its next runs and its last ones.
#[utoipa::path(get, path = "/schedules/{id}", tag = "schedules",
    params(("id" = i64, Path, description = "schedule id")),
    responses((status = 200, body = ScheduleView)),
    security(("token" = ["read"])))]
pub(crate) async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<ScheduleView>> {
    Ok(Json(schedules::show(state.app(), &user, id).await?.into()))
}

/// New settings; the next run is counted from now.
#[utoipa::path(put, path = "/schedules/{id}", tag = "schedules",
    params(("id" = i64, Path, description = "schedule id")), request_body = ScheduleBody,
    responses((status = 200, body = ScheduleView), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn change(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> ApiResult<Json<ScheduleView>> {
    let input = ScheduleInput::from(body);
    Ok(Json(
        schedules::change(state.app(), &user, id, &input)
            .await?
            .into(),
    ))
}

#[utoipa::path(delete, path = "/schedules/{id}", tag = "schedules",
    params(("id" = i64, Path, description = "schedule id")),
    responses((status = 204), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    schedules::delete(state.app(), &user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs the schedule now, besides its regular runs: 202 with the run's
/// job (409 while a run is going on).
#[utoipa::path(post, path = "/schedules/{id}/run", tag = "schedules",
    params(("id" = i64, Path, description = "schedule id")),
    responses((status = 202, body = JobView), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn run(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    Ok(accepted(
        schedule_runs::run_now(state.app(), &user, id).await?,
    ))
}
