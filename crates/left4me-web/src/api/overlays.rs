//! `/api/v1/overlays`: the overlays the caller may see; creating,
//! sharing and deleting them; Workshop overlays' items and refreshes;
//! script overlays' scripts and builds. Files overlays' files are in
//! `overlay_files`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use left4me_app::ops::access::ItemAccess;
use left4me_app::ops::overlays::{
    self, BuildState, NewOverlayInput, OverlayContent, OverlayDetail, Published,
};
use left4me_app::ops::scripts::{self, ScriptInput};
use left4me_app::ops::sharing;
use left4me_app::ops::workshop::{self, AddItemsInput, RemoveItemInput};
use left4me_store::{ListedOverlay, Overlay, SharedItem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiUser;
use super::jobs::{JobView, accepted};
use super::problem::{ApiResult, Problem};
use super::{ApiJson, Paging, Sharing};
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

impl OverlayView {
    fn of(overlay: Overlay, owner: String) -> Self {
        Self {
            id: overlay.id,
            kind: overlay.kind.as_str().to_owned(),
            name: overlay.name,
            owner,
            shared: overlay.shared,
            updated_at: overlay.updated_at,
        }
    }
}

impl From<ListedOverlay> for OverlayView {
    fn from(o: ListedOverlay) -> Self {
        Self::of(o.overlay, o.owner_name)
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOverlay {
    name: String,
    /// `files`, `workshop` or `script` (script overlays: admins).
    kind: String,
}

/// Makes an overlay of the caller's.
#[utoipa::path(post, path = "/overlays", tag = "overlays", request_body = NewOverlay,
    responses((status = 201, body = OverlayView), (status = 403, body = Problem),
        (status = 422, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<NewOverlay>,
) -> ApiResult<Response> {
    let input = NewOverlayInput {
        name: body.name,
        kind: body.kind,
    };
    let overlay = overlays::create(state.app(), &user, &input).await?;
    let view = OverlayView::of(overlay, user.user.username.clone());
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// A built overlay's published version and its build in progress.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BuildView {
    /// The version servers get, once one is published.
    version: Option<String>,
    /// When it was published, Unix seconds.
    published_at: Option<i64>,
    /// Why the published version cannot be read, if it cannot.
    unreadable: Option<String>,
    /// The build queued or running.
    job: Option<JobView>,
}

impl From<BuildState> for BuildView {
    fn from(built: BuildState) -> Self {
        let (version, published_at, unreadable) = match built.published {
            Published::NotYet => (None, None, None),
            Published::Version(info) => (Some(info.version.to_string()), Some(info.created), None),
            Published::Unreadable(why) => (None, None, Some(why)),
        };
        Self {
            version,
            published_at,
            unreadable,
            job: built.build.map(JobView::from),
        }
    }
}

/// An item or collection added to a Workshop overlay.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SourceView {
    published_id: i64,
    is_collection: bool,
    title: String,
    added_at: i64,
}

/// An item as the last build saw it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ItemView {
    item_id: i64,
    /// The collection it came with.
    via: Option<i64>,
    title: String,
    file_size: i64,
    time_updated: i64,
    /// `ok`, `downloading` or `failed` (with `error`).
    state: String,
    error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkshopContent {
    sources: Vec<SourceView>,
    items: Vec<ItemView>,
    build: BuildView,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScriptContent {
    /// Empty until one is saved.
    description: String,
    script: String,
    /// Builds start from a copy of the current version.
    from_previous: bool,
    /// Whether the caller may write and build it (admins).
    may_edit: bool,
    build: BuildView,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OverlayDetailView {
    id: i64,
    name: String,
    /// `files`, `workshop` or `script`.
    kind: String,
    owner: String,
    shared: bool,
    updated_at: i64,
    /// Whether the caller may change, share and delete it.
    can_change: bool,
    /// The blueprints using it (those the caller may see).
    used_by: Vec<String>,
    /// For Workshop overlays.
    workshop: Option<WorkshopContent>,
    /// For script overlays.
    script: Option<ScriptContent>,
}

impl From<OverlayDetail> for OverlayDetailView {
    fn from(d: OverlayDetail) -> Self {
        let info = d.info;
        let (mut workshop, mut script) = (None, None);
        match d.content {
            OverlayContent::Files { .. } => {}
            OverlayContent::Workshop(view) => {
                workshop = Some(WorkshopContent {
                    sources: view
                        .sources
                        .into_iter()
                        .map(|s| SourceView {
                            published_id: s.published_id,
                            is_collection: s.is_collection,
                            title: s.title,
                            added_at: s.added_at,
                        })
                        .collect(),
                    items: view
                        .items
                        .into_iter()
                        .map(|i| ItemView {
                            item_id: i.item_id,
                            via: i.via,
                            title: i.title,
                            file_size: i.file_size,
                            time_updated: i.time_updated,
                            state: i.state,
                            error: i.error,
                        })
                        .collect(),
                    build: view.built.into(),
                });
            }
            OverlayContent::Script(view) => {
                let saved = view.script;
                script = Some(ScriptContent {
                    description: saved
                        .as_ref()
                        .map(|s| s.description.clone())
                        .unwrap_or_default(),
                    from_previous: saved.as_ref().is_some_and(|s| s.from_previous),
                    script: saved.map(|s| s.script).unwrap_or_default(),
                    may_edit: view.may_edit,
                    build: view.built.into(),
                });
            }
        }
        let overlay = info.overlay;
        Self {
            id: overlay.id,
            kind: overlay.kind.as_str().to_owned(),
            name: overlay.name,
            owner: info.owner,
            shared: overlay.shared,
            updated_at: overlay.updated_at,
            can_change: info.access == ItemAccess::Change,
            used_by: info.used_by,
            workshop,
            script,
        }
    }
}

/// One overlay: for Workshop overlays their items and build, for script
/// overlays their script and build (files: see its `files`).
#[utoipa::path(get, path = "/overlays/{id}", tag = "overlays",
    params(("id" = i64, Path, description = "overlay id")),
    responses((status = 200, body = OverlayDetailView), (status = 404, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<OverlayDetailView>> {
    Ok(Json(
        overlays::detail(state.app(), &user, id, "").await?.into(),
    ))
}

/// Deletes an overlay and its files (refused, naming them, while a
/// blueprint uses it).
#[utoipa::path(delete, path = "/overlays/{id}", tag = "overlays",
    params(("id" = i64, Path, description = "overlay id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    overlays::delete(state.app(), &user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Shares an overlay with everyone, or takes the share back (refused,
/// naming them, while others' blueprints use it).
#[utoipa::path(put, path = "/overlays/{id}/shared", tag = "overlays", request_body = Sharing,
    params(("id" = i64, Path, description = "overlay id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn share(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Sharing>,
) -> ApiResult<StatusCode> {
    sharing::set_shared(state.app(), &user, SharedItem::Overlay, id, body.shared).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes an item or collection from a Workshop overlay and queues the
/// build without it.
#[utoipa::path(delete, path = "/overlays/{id}/items/{item_id}", tag = "overlays",
    params(("id" = i64, Path, description = "overlay id"),
        ("item_id" = i64, Path, description = "the Workshop id added")),
    responses((status = 202, body = JobView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn remove_item(
    State(state): State<AppState>,
    user: ApiUser,
    Path((id, item_id)): Path<(i64, i64)>,
) -> ApiResult<Response> {
    let input = RemoveItemInput { id: item_id };
    Ok(accepted(
        workshop::remove_item(state.app(), &user, id, &input).await?,
    ))
}

/// The builds queued by a refresh of every Workshop overlay.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Refreshes {
    builds: Vec<JobView>,
}

/// Admins: refreshes every Workshop overlay (what the daily refresh does).
#[utoipa::path(post, path = "/overlays/refresh", tag = "overlays",
    responses((status = 202, body = Refreshes), (status = 403, body = Problem)),
    security(("token" = ["admin"])))]
pub(crate) async fn refresh_all(
    State(state): State<AppState>,
    user: ApiUser,
) -> ApiResult<Response> {
    let builds = workshop::refresh_all(state.app(), &user).await?;
    let body = Refreshes {
        builds: builds.into_iter().map(JobView::from).collect(),
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Script {
    /// A bash script run in the build sandbox; it writes the overlay's
    /// files below `$OUT`.
    script: String,
    #[serde(default)]
    description: String,
    /// Start builds from a copy of the current version.
    #[serde(default)]
    from_previous: bool,
}

/// Admins: saves a script overlay's script and queues its build.
#[utoipa::path(put, path = "/overlays/{id}/script", tag = "overlays", request_body = Script,
    params(("id" = i64, Path, description = "overlay id")),
    responses((status = 202, body = JobView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("token" = ["manage", "admin"])))]
pub(crate) async fn save_script(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Script>,
) -> ApiResult<Response> {
    let input = ScriptInput {
        description: body.description,
        script: body.script,
        from_previous: body.from_previous,
    };
    Ok(accepted(
        scripts::save_and_build(state.app(), &user, id, &input).await?,
    ))
}

/// Admins: builds a script overlay again from an empty layer.
#[utoipa::path(post, path = "/overlays/{id}/rebuild", tag = "overlays",
    params(("id" = i64, Path, description = "overlay id")),
    responses((status = 202, body = JobView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("token" = ["manage", "admin"])))]
pub(crate) async fn rebuild(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    Ok(accepted(
        scripts::rebuild_from_scratch(state.app(), &user, id).await?,
    ))
}

/// What adding the examples did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExamplesAdded {
    created: Vec<OverlayView>,
    /// Examples a script overlay of that name already had: left alone.
    kept: Vec<String>,
}

/// Admins: adds the example scripts left4me ships as shared script
/// overlays (not built yet).
#[utoipa::path(post, path = "/overlays/examples", tag = "overlays",
    responses((status = 200, body = ExamplesAdded), (status = 403, body = Problem)),
    security(("token" = ["admin"])))]
pub(crate) async fn add_examples(
    State(state): State<AppState>,
    user: ApiUser,
) -> ApiResult<Json<ExamplesAdded>> {
    let seeded = scripts::add_examples(state.app(), &user).await?;
    Ok(Json(ExamplesAdded {
        created: seeded
            .created
            .into_iter()
            .map(|o| OverlayView::of(o, user.user.username.clone()))
            .collect(),
        kept: seeded.kept,
    }))
}
