//! `/api/v1/overlays`: the overlays the caller may see, and Workshop
//! overlays' items and refreshes.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use left4me_app::ops::overlays;
use left4me_app::ops::workshop::{self, AddItemsInput};
use left4me_store::ListedOverlay;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiUser;
use super::jobs::{JobView, accepted};
use super::problem::{ApiResult, Problem};
use super::{ApiJson, Paging};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OverlayView {
    id: i64,
    name: String,
    /// `files`, `workshop` or `script`.
    kind: String,
    owner: String,
    shared: bool,
    updated_at: i64,
}

impl From<ListedOverlay> for OverlayView {
    fn from(o: ListedOverlay) -> Self {
        Self {
            id: o.overlay.id,
            kind: o.overlay.kind.as_str().to_owned(),
            name: o.overlay.name,
            owner: o.owner_name,
            shared: o.overlay.shared,
            updated_at: o.overlay.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OverlayList {
    items: Vec<OverlayView>,
    total: usize,
    next: Option<String>,
}

/// The overlays the caller may see: their own, shared ones, all for admins.
#[utoipa::path(get, path = "/overlays", tag = "overlays", params(Paging),
    responses((status = 200, body = OverlayList), (status = 401, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    user: ApiUser,
    Query(paging): Query<Paging>,
) -> ApiResult<Json<OverlayList>> {
    let all = overlays::list(state.app(), &user).await?;
    let (items, total, next) = paging.page(all, "/api/v1/overlays");
    Ok(Json(OverlayList {
        items: items.into_iter().map(OverlayView::from).collect(),
        total,
        next,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewItems {
    /// Workshop ids or links (`https://steamcommunity.com/sharedfiles/filedetails/?id=N`),
    /// items or collections, separated by spaces, commas or lines.
    ids: String,
}

/// What adding items did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ItemsAdded {
    /// New items and collections.
    added: u64,
    /// What Steam ruled out, each with its reason.
    refused: Vec<String>,
    /// The build that fetches them, when anything was new.
    build: Option<JobView>,
}

/// Adds Workshop items or collections to a Workshop overlay (Steam is
/// asked about each first) and queues the build that fetches them.
#[utoipa::path(post, path = "/overlays/{id}/items", tag = "overlays", request_body = NewItems,
    params(("id" = i64, Path, description = "overlay id")),
    responses((status = 200, body = ItemsAdded), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn add_items(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<NewItems>,
) -> ApiResult<Json<ItemsAdded>> {
    let added =
        workshop::add_items(state.app(), &user, id, &AddItemsInput { ids: body.ids }).await?;
    Ok(Json(ItemsAdded {
        added: added.added,
        refused: added.refused,
        build: added.build.map(JobView::from),
    }))
}

/// Refreshes a Workshop overlay: one build that fetches what changed.
#[utoipa::path(post, path = "/overlays/{id}/refresh", tag = "overlays",
    params(("id" = i64, Path, description = "overlay id")),
    responses((status = 202, body = JobView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    Ok(accepted(workshop::refresh(state.app(), &user, id).await?))
}
