//! `/api/v1/activity`: who did what: everything for admins, a server's
//! for its operators.

use axum::Json;
use axum::extract::{Path, Query, State};
use left4me_app::ops::activity;
use left4me_store::{Activity, ActivityFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiUser;
use super::problem::{ApiResult, Problem};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ActivityView {
    id: i64,
    at: i64,
    /// A user (`alice`, `alice (token bot)`) or the panel itself.
    actor: String,
    server_id: Option<i64>,
    /// `server.create`, `server.start`, `console`, `login.failed`, …
    kind: String,
    detail: String,
}

impl From<Activity> for ActivityView {
    fn from(a: Activity) -> Self {
        Self {
            id: a.id,
            at: a.at,
            actor: a.actor,
            server_id: a.server_id,
            kind: a.kind,
            detail: a.detail,
        }
    }
}

/// One page of the log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ActivityList {
    items: Vec<ActivityView>,
    /// The next (older) page, if there is one.
    next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ActivityQuery {
    /// Only entries of this kind.
    kind: Option<String>,
    /// Only entries by this actor.
    actor: Option<String>,
    /// Entries older than this id (the next page).
    before: Option<i64>,
    /// At most this many (1-200, 50 if left out).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
}

async fn page(
    state: &AppState,
    user: &ApiUser,
    server: Option<i64>,
    query: ActivityQuery,
) -> ApiResult<Json<ActivityList>> {
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let filter = ActivityFilter {
        server_id: None,
        kind: query.kind.filter(|k| !k.is_empty()),
        actor: query.actor.filter(|a| !a.is_empty()),
        before: query.before,
    };
    let (_, found) = activity::list(state.app(), user, server, filter, limit).await?;
    let base = match server {
        Some(id) => format!("/api/v1/servers/{id}/activity"),
        None => "/api/v1/activity".to_owned(),
    };
    let next = found
        .more
        .then(|| {
            found
                .entries
                .last()
                .map(|e| format!("{base}?limit={limit}&before={}", e.id))
        })
        .flatten();
    Ok(Json(ActivityList {
        items: found.entries.into_iter().map(ActivityView::from).collect(),
        next,
    }))
}

/// The whole activity log (admins), newest first.
#[utoipa::path(get, path = "/activity", tag = "activity", params(ActivityQuery),
    responses((status = 200, body = ActivityList), (status = 404, body = Problem)),
    security(("token" = ["read", "admin"])))]
pub(crate) async fn all(
    State(state): State<AppState>,
    user: ApiUser,
    Query(query): Query<ActivityQuery>,
) -> ApiResult<Json<ActivityList>> {
    page(&state, &user, None, query).await
}

/// A server's activity (operators, the owner and admins), newest first.
#[utoipa::path(get, path = "/servers/{id}/activity", tag = "activity",
    params(("id" = i64, Path, description = "server id"), ActivityQuery),
    responses((status = 200, body = ActivityList), (status = 403, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn of_server(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    Query(query): Query<ActivityQuery>,
) -> ApiResult<Json<ActivityList>> {
    page(&state, &user, Some(id), query).await
}
