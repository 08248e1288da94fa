//! Workshop overlays: the items page, adding and removing items, refreshes.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use left4me_app::error::OpError;
use left4me_app::ops::access::ItemAccess;
use left4me_app::ops::overlays::{self, OverlayContent, OverlayDetail, OverlayInfo, WorkshopView};
use left4me_app::ops::workshop::{self, AddItemsInput, RemoveItemInput};

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::pages::{FormErrors, Layout, WorkshopItemRow, WorkshopPage, WorkshopSourceRow, render};
use crate::state::AppState;

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

fn page(
    user: &CurrentUser,
    info: OverlayInfo,
    view: WorkshopView,
    outcome: Outcome,
) -> WorkshopPage {
    let WorkshopView {
        sources,
        items,
        built,
    } = view;
    let title_of = |id: i64| {
        sources
            .iter()
            .find(|s| s.published_id == id)
            .map_or_else(|| id.to_string(), |s| s.title.clone())
    };
    WorkshopPage {
        l: Layout::of(user),
        owner: info.owner,
        can_change: info.access == ItemAccess::Change,
        used_by: info.used_by.join(", "),
        built: super::overlays::build_state(built),
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
        overlay: info.overlay,
    }
}

pub(crate) fn show(
    user: &CurrentUser,
    info: OverlayInfo,
    view: WorkshopView,
) -> AppResult<Response> {
    let page = page(user, info, view, Outcome::default());
    Ok(render(&page)?.into_response())
}

pub(crate) async fn add(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<AddItemsInput>,
) -> AppResult<Response> {
    let mut outcome = Outcome::default();
    let status = match workshop::add_items(state.app(), &user, id, &form).await {
        Ok(added) => {
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
        Err(OpError::Invalid(fields)) => {
            outcome.errors = fields.into();
            outcome.entered = form.ids;
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(other) => return Err(other.into()),
    };
    let OverlayDetail {
        info,
        content: OverlayContent::Workshop(view),
    } = overlays::detail(state.app(), &user, id, "").await?
    else {
        // The add found a Workshop overlay, and no overlay changes kind.
        return Err(AppError::NotFound);
    };
    let page = page(&user, info, view, outcome);
    Ok((status, render(&page)?).into_response())
}

/// Removes an item or collection and rebuilds without it.
pub(crate) async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<RemoveItemInput>,
) -> AppResult<Response> {
    workshop::remove_item(state.app(), &user, id, &form).await?;
    Ok(Redirect::to(&format!("/overlays/{id}")).into_response())
}

/// Queues a refresh (a build) of one overlay and shows its job.
pub(crate) async fn refresh(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let job = workshop::refresh(state.app(), &user, id).await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}

/// Admins: queues a refresh of every Workshop overlay.
pub(crate) async fn refresh_all(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Response> {
    workshop::refresh_all(state.app(), &user).await?;
    Ok(Redirect::to("/jobs").into_response())
}
