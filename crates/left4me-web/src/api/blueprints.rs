//! `/api/v1/blueprints`: what servers are made of; sharing; copies.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use left4me_app::ops::blueprints::{self, BlueprintDetail, BlueprintInput, OverlayEntry};
use left4me_app::ops::sharing;
use left4me_store::{ListedBlueprint, SharedItem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::ApiUser;
use super::problem::{ApiResult, Problem};
use super::{ApiJson, Paging, Sharing};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlueprintSummary {
    id: i64,
    name: String,
    owner: String,
    shared: bool,
    updated_at: i64,
}

impl From<ListedBlueprint> for BlueprintSummary {
    fn from(b: ListedBlueprint) -> Self {
        Self {
            id: b.blueprint.id,
            name: b.blueprint.name,
            owner: b.owner_name,
            shared: b.blueprint.shared,
            updated_at: b.blueprint.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlueprintList {
    items: Vec<BlueprintSummary>,
    total: usize,
    next: Option<String>,
}

/// One overlay of a blueprint, first wins.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlueprintOverlayView {
    overlay_id: i64,
    /// Stage its `cfg/server.cfg` so the server's config can exec it.
    #[serde(default)]
    expose_server_cfg: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BlueprintView {
    id: i64,
    name: String,
    owner: String,
    shared: bool,
    /// Whether the caller may change, share and delete it.
    can_change: bool,
    /// server.cfg lines (left4me adds hostname and rcon_password).
    config: String,
    /// Launch arguments, written like a shell command line.
    arguments: String,
    /// The launch arguments as the game gets them.
    argument_list: Vec<String>,
    overlays: Vec<BlueprintOverlayView>,
    /// The server.cfg a server of it gets.
    preview: String,
}

impl From<BlueprintDetail> for BlueprintView {
    fn from(d: BlueprintDetail) -> Self {
        Self {
            id: d.blueprint.id,
            name: d.blueprint.name,
            owner: d.owner,
            shared: d.blueprint.shared,
            can_change: d.can_change,
            config: d.blueprint.config,
            arguments: d.blueprint.arguments,
            argument_list: d.arguments,
            overlays: d
                .overlays
                .into_iter()
                .map(|o| BlueprintOverlayView {
                    overlay_id: o.overlay_id,
                    expose_server_cfg: o.expose_server_cfg,
                })
                .collect(),
            preview: d.preview,
        }
    }
}

/// The blueprints the caller may build on: their own, shared ones, all
/// for admins.
#[utoipa::path(get, path = "/blueprints", tag = "blueprints", params(Paging),
    responses((status = 200, body = BlueprintList)),
    security(("token" = ["read"])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    user: ApiUser,
    Query(paging): Query<Paging>,
) -> ApiResult<Json<BlueprintList>> {
    let all = blueprints::usable(state.app(), &user).await?;
    let (items, total, next) = paging.page(all, "/api/v1/blueprints");
    Ok(Json(BlueprintList {
        items: items.into_iter().map(BlueprintSummary::from).collect(),
        total,
        next,
    }))
}

/// One blueprint, with its overlays and the server.cfg it makes.
#[utoipa::path(get, path = "/blueprints/{id}", tag = "blueprints",
    params(("id" = i64, Path, description = "blueprint id")),
    responses((status = 200, body = BlueprintView)),
    security(("token" = ["read"])))]
pub(crate) async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<BlueprintView>> {
    Ok(Json(
        blueprints::detail(state.app(), &user, id).await?.into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewBlueprint {
    name: String,
}

/// Creates an empty blueprint (`+map c1m1_hotel`, no overlays).
#[utoipa::path(post, path = "/blueprints", tag = "blueprints", request_body = NewBlueprint,
    responses((status = 201, body = BlueprintView)),
    security(("token" = ["manage"])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<NewBlueprint>,
) -> ApiResult<Response> {
    created(blueprints::create(state.app(), &user, &body.name).await?)
}

fn created(detail: BlueprintDetail) -> ApiResult<Response> {
    let id = detail.blueprint.id;
    let view = BlueprintView::from(detail);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/blueprints/{id}"))],
        Json(view),
    )
        .into_response())
}

/// A blueprint as saved: everything, since it replaces what is there.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlueprintBody {
    name: String,
    #[serde(default)]
    config: String,
    #[serde(default)]
    arguments: String,
    /// In order: the first wins over later ones.
    #[serde(default)]
    overlays: Vec<BlueprintOverlayView>,
}

impl From<BlueprintBody> for BlueprintInput {
    fn from(body: BlueprintBody) -> Self {
        Self {
            name: body.name,
            config: body.config,
            arguments: body.arguments,
            overlays: body
                .overlays
                .into_iter()
                .map(|o| OverlayEntry {
                    overlay_id: o.overlay_id,
                    expose_server_cfg: o.expose_server_cfg,
                })
                .collect(),
        }
    }
}

/// Saves a blueprint (owner and admins): name, config, arguments and
/// overlays together. A shared blueprint takes shared overlays only (409).
#[utoipa::path(put, path = "/blueprints/{id}", tag = "blueprints", request_body = BlueprintBody,
    params(("id" = i64, Path, description = "blueprint id")),
    responses((status = 200, body = BlueprintView), (status = 403, body = Problem),
        (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn save(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<BlueprintBody>,
) -> ApiResult<Json<BlueprintView>> {
    let input = BlueprintInput::from(body);
    Ok(Json(
        blueprints::save(state.app(), &user, id, &input)
            .await?
            .into(),
    ))
}

/// The blueprint as the body would make it, unsaved: its server.cfg
/// preview and launch arguments as the game gets them (mistakes are 422,
/// as saving would say them).
#[utoipa::path(post, path = "/blueprints/{id}/preview", tag = "blueprints",
    request_body = BlueprintBody,
    params(("id" = i64, Path, description = "blueprint id")),
    responses((status = 200, body = BlueprintView), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn preview(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<BlueprintBody>,
) -> ApiResult<Json<BlueprintView>> {
    let input = BlueprintInput::from(body);
    Ok(Json(
        blueprints::draft(state.app(), &user, id, &input)
            .await?
            .into(),
    ))
}

/// Deletes a blueprint no server uses (409 names the servers).
#[utoipa::path(delete, path = "/blueprints/{id}", tag = "blueprints",
    params(("id" = i64, Path, description = "blueprint id")),
    responses((status = 204), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    blueprints::delete(state.app(), &user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A private copy for the caller of a blueprint they can see.
#[utoipa::path(post, path = "/blueprints/{id}/copy", tag = "blueprints",
    params(("id" = i64, Path, description = "blueprint id")),
    responses((status = 201, body = BlueprintView)),
    security(("token" = ["read", "manage"])))]
pub(crate) async fn copy(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    created(blueprints::copy(state.app(), &user, id).await?)
}

/// Shares a blueprint with everyone, or takes the share back (refused,
/// naming them, while others' servers use it).
#[utoipa::path(put, path = "/blueprints/{id}/shared", tag = "blueprints", request_body = Sharing,
    params(("id" = i64, Path, description = "blueprint id")),
    responses((status = 204), (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn share(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Sharing>,
) -> ApiResult<StatusCode> {
    sharing::set_shared(state.app(), &user, SharedItem::Blueprint, id, body.shared).await?;
    Ok(StatusCode::NO_CONTENT)
}
