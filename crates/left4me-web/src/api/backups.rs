//! `/api/v1/backups`: the panel's backups (admins), and one taken now.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use left4me_app::ops::backups;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use super::auth::ApiUser;
use super::jobs::{JobView, accepted};
use super::problem::{ApiResult, Problem};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BackupView {
    id: i64,
    /// The restic snapshot.
    snapshot_id: String,
    /// The job that took it.
    job_id: Option<i64>,
    started_at: i64,
    finished_at: i64,
    files: i64,
    /// What the backup looked at.
    bytes_processed: i64,
    /// What it added to the repository, after deduplication.
    data_added: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BackupList {
    /// The restic repository.
    repository: String,
    /// The file with the repository's password: keep a copy apart.
    password_file: String,
    /// Newest first.
    items: Vec<BackupView>,
    /// The last backup or check of the backups, when it failed.
    last_failed: Option<JobView>,
}

/// The backups, newest first, and where they go (admins).
#[utoipa::path(get, path = "/backups", tag = "backups",
    responses((status = 200, body = BackupList), (status = 403, body = Problem)),
    security(("token" = ["read", "admin"])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    user: ApiUser,
) -> ApiResult<Json<BackupList>> {
    let view = backups::list(state.app(), &user).await?;
    Ok(Json(BackupList {
        repository: view.repository,
        password_file: view.password_file,
        items: view
            .backups
            .into_iter()
            .map(|b| BackupView {
                id: b.id,
                snapshot_id: b.snapshot_id,
                job_id: b.job_id,
                started_at: b.started_at,
                finished_at: b.finished_at,
                files: b.files,
                bytes_processed: b.bytes_processed,
                data_added: b.data_added,
            })
            .collect(),
        last_failed: view.last_failed.map(JobView::from),
    }))
}

/// Backs the panel up now: 202 with the job (one queued already is
/// reused).
#[utoipa::path(post, path = "/backups", tag = "backups",
    responses((status = 202, body = JobView), (status = 403, body = Problem)),
    security(("token" = ["admin"])))]
pub(crate) async fn back_up(State(state): State<AppState>, user: ApiUser) -> ApiResult<Response> {
    Ok(accepted(backups::back_up(state.app(), &user).await?))
}

/// Checks the backup repository (its structure and 5% of its data read
/// back): 202 with the job.
#[utoipa::path(post, path = "/backups/check", tag = "backups",
    responses((status = 202, body = JobView), (status = 403, body = Problem)),
    security(("token" = ["admin"])))]
pub(crate) async fn check(State(state): State<AppState>, user: ApiUser) -> ApiResult<Response> {
    Ok(accepted(backups::check(state.app(), &user).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Restore {
    /// The backup (its `id` in `GET /backups`) to take the state from.
    backup_id: i64,
}

/// Puts a stopped server's own state (bans, admin lists, saved files)
/// back as a backup holds it (admins): 202 with the job; 409 while the
/// server runs.
#[utoipa::path(post, path = "/servers/{id}/restore", tag = "backups", request_body = Restore,
    params(("id" = i64, Path, description = "server id")),
    responses((status = 202, body = JobView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("token" = ["manage", "admin"])))]
pub(crate) async fn restore_server(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Restore>,
) -> ApiResult<Response> {
    Ok(accepted(
        backups::restore_server(state.app(), &user, id, body.backup_id).await?,
    ))
}

/// Puts a files overlay's own files back as a backup holds them (admins):
/// 202 with the job; servers take them at their next start. Workshop and
/// script overlays are built again instead (409).
#[utoipa::path(post, path = "/overlays/{id}/restore", tag = "backups", request_body = Restore,
    params(("id" = i64, Path, description = "overlay id")),
    responses((status = 202, body = JobView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("token" = ["manage", "admin"])))]
pub(crate) async fn restore_overlay(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Restore>,
) -> ApiResult<Response> {
    Ok(accepted(
        backups::restore_overlay(state.app(), &user, id, body.backup_id).await?,
    ))
}
