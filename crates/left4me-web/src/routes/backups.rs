//! The Backups page (admins): the backups, where they go, and Back up now.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use left4me_app::ops::backups;

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::pages::{BackupRow, BackupsPage, Layout, datetime, human_size, render};
use crate::state::AppState;

pub(crate) async fn page(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let view = backups::list(state.app(), &user).await?;
    let servers = left4me_app::ops::servers::list(state.app(), &user)
        .await?
        .into_iter()
        .map(|s| (s.server().id, s.server().name.clone()))
        .collect();
    let overlays = left4me_app::ops::overlays::list(state.app(), &user)
        .await?
        .into_iter()
        .filter(|o| o.overlay.kind == left4me_store::OverlayKind::Files)
        .map(|o| (o.overlay.id, o.overlay.name))
        .collect();
    let size = |bytes: i64| human_size(&u64::try_from(bytes).unwrap_or(0));
    let page = BackupsPage {
        l: Layout::of(&user),
        repository: view.repository,
        password_file: view.password_file,
        backups: view
            .backups
            .into_iter()
            .map(|b| BackupRow {
                id: b.id,
                snapshot: b.snapshot_id.chars().take(8).collect(),
                job_id: b.job_id,
                taken: datetime(&b.started_at),
                took: format!("{} s", (b.finished_at - b.started_at).max(0)),
                files: b.files,
                looked_at: size(b.bytes_processed),
                added: size(b.data_added),
            })
            .collect(),
        last_failed: view
            .last_failed
            .map(|j| (j.id, j.error.unwrap_or_default())),
        servers,
        overlays,
    };
    Ok(render(&page)?.into_response())
}

pub(crate) async fn back_up(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Response> {
    let job = backups::back_up(state.app(), &user).await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}

pub(crate) async fn check(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let job = backups::check(state.app(), &user).await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RestoreForm {
    server: i64,
}

/// Puts a stopped server's own state back as the backup holds it.
pub(crate) async fn restore_server(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<RestoreForm>,
) -> AppResult<Response> {
    let job = backups::restore_server(state.app(), &user, form.server, id).await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RestoreOverlayForm {
    overlay: i64,
}

/// Puts a files overlay's own files back as the backup holds them.
pub(crate) async fn restore_overlay(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<RestoreOverlayForm>,
) -> AppResult<Response> {
    let job = backups::restore_overlay(state.app(), &user, form.overlay, id).await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}
