//! Workshop overlays: the items page, adding and removing items, refreshes.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use left4me_store::{Overlay, OverlayKind};
use serde::Deserialize;

use crate::access::{self, ItemAccess};
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::pages::{FormErrors, Layout, WorkshopItemRow, WorkshopPage, WorkshopSourceRow, render};
use crate::runner::Actor;
use crate::state::AppState;
use crate::workshop::AddError;

/// What the page shows besides the overlay's own state: the result of an
/// add, or its mistakes with the text kept.
#[derive(Debug, Default)]
struct Outcome {
    notice: String,
    notice_job: Option<i64>,
    refused: Vec<String>,
    entered: String,
    errors: FormErrors,
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    overlay: Overlay,
    outcome: Outcome,
) -> AppResult<WorkshopPage> {
    let store = state.store();
    let items = store.workshop_items(overlay.id).await?;
    let sources = store.workshop_sources(overlay.id).await?;
    let title_of = |id: i64| {
        sources
            .iter()
            .find(|s| s.published_id == id)
            .map_or_else(|| id.to_string(), |s| s.title.clone())
    };
    let built = super::overlays::build_state(state, overlay.id).await?;
    Ok(WorkshopPage {
        l: Layout::of(user),
        owner: store.user(overlay.owner_id).await?.username,
        can_change: user.item_access(&overlay) == Some(ItemAccess::Change),
        used_by: store
            .blueprints_using_overlay(overlay.id, Some(user.viewer()))
            .await?
            .join(", "),
        built,
        sources: sources
            .iter()
            .map(|s| WorkshopSourceRow {
                id: s.published_id,
                title: s.title.clone(),
                is_collection: s.is_collection,
                items: items
                    .iter()
                    .filter(|i| i.via == Some(s.published_id))
                    .count(),
            })
            .collect(),
        items: items
            .into_iter()
            .map(|i| WorkshopItemRow {
                id: i.item_id,
                title: i.title,
                size: i.file_size,
                updated: i.time_updated,
                state: i.state,
                error: i.error.unwrap_or_default(),
                via: i.via.map(title_of).unwrap_or_default(),
            })
            .collect(),
        notice: outcome.notice,
        notice_job: outcome.notice_job,
        refused: outcome.refused,
        entered: outcome.entered,
        errors: outcome.errors,
        overlay,
    })
}

pub(crate) async fn show(
    state: &AppState,
    user: &CurrentUser,
    overlay: Overlay,
) -> AppResult<Response> {
    let page = page(state, user, overlay, Outcome::default()).await?;
    Ok(render(&page)?.into_response())
}

/// A Workshop overlay the user may change.
async fn workshop_overlay(state: &AppState, user: &CurrentUser, id: i64) -> AppResult<Overlay> {
    let overlay = access::overlay(state, user, id, ItemAccess::Change).await?;
    super::overlays::of_kind(overlay, OverlayKind::Workshop)
}

#[derive(Debug, Deserialize)]
pub(crate) struct AddForm {
    ids: String,
}

pub(crate) async fn add(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<AddForm>,
) -> AppResult<Response> {
    let overlay = workshop_overlay(&state, &user, id).await?;
    let result = crate::workshop::add(
        state.store(),
        state.jobs(),
        Actor::User(&user.user),
        &overlay,
        &form.ids,
    )
    .await;
    let mut outcome = Outcome::default();
    let status = match result {
        Ok(added) => {
            if added.added > 0 {
                let detail = format!("added {} Workshop item(s) to {}", added.added, overlay.name);
                super::record(&state, &user, None, "overlay.workshop_add", detail).await?;
            }
            outcome.notice_job = added.build.as_ref().map(|job| job.id);
            outcome.notice = match (&added.build, added.added) {
                (Some(job), n) => format!("Added {n}; build job #{} fetches them.", job.id),
                (None, _) if added.refused.is_empty() => "Those are in the overlay already.".into(),
                (None, _) => String::new(),
            };
            if added.refused.is_empty() {
                StatusCode::OK
            } else {
                outcome.refused = added.refused;
                outcome.entered = form.ids;
                StatusCode::UNPROCESSABLE_ENTITY
            }
        }
        Err(AddError::Store(e)) => return Err(e.into()),
        Err(e) => {
            outcome.errors.add("ids", e.to_string());
            outcome.entered = form.ids;
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    let page = page(&state, &user, overlay, outcome).await?;
    Ok((status, render(&page)?).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct RemoveForm {
    id: i64,
}

/// Removes an item or collection and rebuilds without it.
pub(crate) async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<RemoveForm>,
) -> AppResult<Response> {
    let overlay = workshop_overlay(&state, &user, id).await?;
    if !state
        .store()
        .remove_workshop_source(overlay.id, form.id)
        .await?
    {
        return Err(AppError::NotFoundBecause(format!(
            "{} is not in overlay {}",
            form.id, overlay.name
        )));
    }
    let detail = format!("removed Workshop item {} from {}", form.id, overlay.name);
    super::record(&state, &user, None, "overlay.workshop_remove", detail).await?;
    state
        .jobs()
        .enqueue_build(Actor::User(&user.user), &overlay)
        .await?;
    Ok(Redirect::to(&format!("/overlays/{}", overlay.id)).into_response())
}

/// Queues a refresh (a build) of one overlay and shows its job.
pub(crate) async fn refresh(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let overlay = workshop_overlay(&state, &user, id).await?;
    let job = state
        .jobs()
        .enqueue_build(Actor::User(&user.user), &overlay)
        .await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}

/// Admins: queues a refresh of every Workshop overlay.
pub(crate) async fn refresh_all(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Response> {
    access::admin(&user, "refresh every Workshop overlay")?;
    crate::workshop::refresh_all(state.store(), state.jobs(), Actor::User(&user.user)).await?;
    Ok(Redirect::to("/jobs").into_response())
}
