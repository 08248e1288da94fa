//! Blueprints: server templates with config, arguments and ordered overlays.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use left4me_store::{Blueprint, BlueprintOverlay};
use serde::Deserialize;

use crate::access::{self, ItemAccess};
use crate::auth::CurrentUser;
use crate::domain::{DisplayName, parse_arguments};
use crate::error::{AppError, AppResult};
use crate::pages::{BlueprintPage, BlueprintsPage, Choice, FormErrors, Layout, render};
use crate::spec_builder::server_cfg_lines;
use crate::state::AppState;

/// The list with the creation form (refilled after a mistake).
async fn list_page(
    state: &AppState,
    user: &CurrentUser,
    name: String,
    errors: FormErrors,
) -> AppResult<BlueprintsPage> {
    Ok(BlueprintsPage {
        l: Layout::of(user),
        blueprints: state.store().visible_blueprints(user.viewer()).await?,
        me: user.id(),
        name,
        errors,
    })
}

pub(crate) async fn index(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let page = list_page(&state, &user, String::new(), FormErrors::default()).await?;
    Ok(render(&page)?.into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    name: String,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<CreateForm>,
) -> AppResult<Response> {
    match DisplayName::parse(&form.name) {
        Ok(name) => {
            let blueprint = state
                .store()
                .create_blueprint(user.id(), name.as_str())
                .await?;
            let detail = format!("created blueprint {}", blueprint.name);
            super::record(&state, &user, None, "blueprint.create", detail).await?;
            Ok(Redirect::to(&format!("/blueprints/{}", blueprint.id)).into_response())
        }
        Err(message) => {
            let mut errors = FormErrors::default();
            errors.add("name", message);
            let page = list_page(&state, &user, form.name, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
        }
    }
}

/// The preview text: what a server of this blueprint gets as server.cfg.
fn preview_text(config: &str, overlays: &[BlueprintOverlay]) -> String {
    server_cfg_lines(
        config,
        overlays,
        "<the server's hostname>",
        "<generated per server>",
    )
    .join("\n")
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    blueprint: Blueprint,
    overlays: Vec<BlueprintOverlay>,
    errors: FormErrors,
    saved: bool,
) -> AppResult<BlueprintPage> {
    let available = state
        .store()
        .visible_overlays(user.viewer())
        .await?
        .into_iter()
        .filter(|o| !overlays.iter().any(|bo| bo.overlay_id == o.overlay.id))
        .map(|o| {
            Choice::new(
                o.overlay.id,
                o.overlay.name,
                o.overlay.owner_id,
                &o.owner_name,
                user,
            )
        })
        .collect();
    Ok(BlueprintPage {
        l: Layout::of(user),
        preview: preview_text(&blueprint.config, &overlays),
        can_change: user.item_access(&blueprint) == Some(ItemAccess::Change),
        owner: state.store().user(blueprint.owner_id).await?.username,
        // Arguments that do not parse show their error instead.
        arguments: parse_arguments(&blueprint.arguments).unwrap_or_default(),
        blueprint,
        overlays,
        available,
        errors,
        saved,
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct ShowQuery {
    /// Set by the redirect after a save, to say so.
    #[serde(default)]
    saved: bool,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<ShowQuery>,
) -> AppResult<Response> {
    let blueprint = access::blueprint(&state, &user, id, ItemAccess::Use).await?;
    let overlays = state.store().blueprint_overlays(id).await?;
    let page = page(
        &state,
        &user,
        blueprint,
        overlays,
        FormErrors::default(),
        query.saved,
    )
    .await?;
    Ok(render(&page)?.into_response())
}

/// The blueprint form as submitted: fields in order, several with the
/// same name (`overlay`), some named after an overlay (`pos_7`).
struct Submitted(Vec<(String, String)>);

impl Submitted {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The overlay list after moves, removals and an addition. Only
    /// overlays the user can see may be added; ones already in the
    /// blueprint (`current`) stay, whoever put them there.
    async fn overlays(
        &self,
        state: &AppState,
        user: &CurrentUser,
        current: &[BlueprintOverlay],
    ) -> AppResult<Vec<BlueprintOverlay>> {
        let mut rows: Vec<(f64, usize, i64, bool)> = Vec::new();
        for (index, (key, value)) in self.0.iter().enumerate() {
            if key != "overlay" {
                continue;
            }
            let id: i64 = value
                .parse()
                .map_err(|_| AppError::BadRequest("bad overlay id".into()))?;
            // An overlay is in a blueprint once: a repeated row (only a
            // hand-made request sends one) counts once.
            if self.get(&format!("remove_{id}")).is_some() || rows.iter().any(|r| r.2 == id) {
                continue;
            }
            let position = self
                .get(&format!("pos_{id}"))
                .and_then(|p| p.trim().parse::<f64>().ok())
                .unwrap_or(index as f64);
            let expose = self.get(&format!("expose_{id}")).is_some();
            rows.push((position, index, id, expose));
        }
        if let Some(added) = self.get("add_overlay").filter(|v| !v.is_empty()) {
            let id: i64 = added
                .parse()
                .map_err(|_| AppError::BadRequest("bad overlay id".into()))?;
            if !rows.iter().any(|r| r.2 == id) {
                rows.push((f64::MAX, usize::MAX, id, false));
            }
        }
        rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut overlays = Vec::new();
        for (position, (_, _, id, expose)) in rows.into_iter().enumerate() {
            let overlay = state.store().overlay(id).await?;
            if user.item_access(&overlay).is_none() && !current.iter().any(|c| c.overlay_id == id) {
                return Err(AppError::NotFound);
            }
            overlays.push(BlueprintOverlay {
                overlay_id: id,
                name: overlay.name,
                position: i64::try_from(position).unwrap_or(i64::MAX),
                expose_server_cfg: expose,
            });
        }
        Ok(overlays)
    }
}

pub(crate) async fn save(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let mut blueprint = access::blueprint(&state, &user, id, ItemAccess::Change).await?;
    let form = Submitted(fields);
    let current = state.store().blueprint_overlays(id).await?;
    let overlays = form.overlays(&state, &user, &current).await?;
    let mut errors = FormErrors::default();
    let name = DisplayName::parse(form.get("name").unwrap_or_default())
        .map_err(|e| errors.add("name", e))
        .ok();
    let config = form.get("config").unwrap_or_default().replace("\r\n", "\n");
    // Kept as typed (quotes and all), once it parses: the page shows how.
    let arguments = form.get("arguments").unwrap_or_default().trim().to_owned();
    if let Err(problem) = parse_arguments(&arguments) {
        errors.add("arguments", problem);
    }
    blueprint.config.clone_from(&config);
    blueprint.arguments.clone_from(&arguments);
    let (Some(name), true) = (name, errors.is_empty()) else {
        blueprint.name = form.get("name").unwrap_or_default().to_owned();
        let page = page(&state, &user, blueprint, overlays, errors, false).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let store = state.store();
    let list: Vec<(i64, bool)> = overlays
        .iter()
        .map(|o| (o.overlay_id, o.expose_server_cfg))
        .collect();
    // The overlays first: they are what can be refused (a shared blueprint
    // takes shared overlays only), and then nothing else is saved either.
    match store.set_blueprint_overlays(id, &list).await {
        Ok(()) => {}
        Err(left4me_store::StoreError::Conflict(message)) => {
            errors.add("overlays", message);
            let page = page(&state, &user, blueprint, overlays, errors, false).await?;
            return Ok((StatusCode::CONFLICT, render(&page)?).into_response());
        }
        Err(e) => return Err(e.into()),
    }
    store
        .update_blueprint(id, name.as_str(), &config, &arguments)
        .await?;
    let names: Vec<&str> = overlays.iter().map(|o| o.name.as_str()).collect();
    let detail = format!(
        "saved blueprint {} (overlays: {})",
        name.as_str(),
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    );
    super::record(&state, &user, None, "blueprint.edit", detail).await?;
    // Redirect after the post, so reloading the page does not send it again.
    Ok(Redirect::to(&format!("/blueprints/{id}?saved=true")).into_response())
}

/// The live preview: the same form, answered with the server.cfg text.
pub(crate) async fn preview(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    access::blueprint(&state, &user, id, ItemAccess::Use).await?;
    let form = Submitted(fields);
    let current = state.store().blueprint_overlays(id).await?;
    let overlays = form.overlays(&state, &user, &current).await?;
    let config = form.get("config").unwrap_or_default().replace("\r\n", "\n");
    Ok(preview_text(&config, &overlays).into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let blueprint = access::blueprint(&state, &user, id, ItemAccess::Change).await?;
    state.store().delete_blueprint(id).await?;
    let detail = format!("deleted blueprint {}", blueprint.name);
    super::record(&state, &user, None, "blueprint.delete", detail).await?;
    Ok(Redirect::to("/blueprints").into_response())
}

/// Anyone who can see a blueprint can copy it into their own.
pub(crate) async fn copy(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let blueprint = access::blueprint(&state, &user, id, ItemAccess::Use).await?;
    let name = format!("{} (copy)", blueprint.name);
    let copy = state
        .store()
        .copy_blueprint(
            id,
            user.id(),
            DisplayName::parse(&name).map_or(&blueprint.name, |_| &name),
        )
        .await?;
    let detail = format!("copied blueprint {} as {}", blueprint.name, copy.name);
    super::record(&state, &user, None, "blueprint.create", detail).await?;
    Ok(Redirect::to(&format!("/blueprints/{}", copy.id)).into_response())
}

pub(crate) async fn share(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<super::ShareForm>,
) -> AppResult<Response> {
    super::share(
        &state,
        &user,
        left4me_store::SharedItem::Blueprint,
        id,
        &form,
    )
    .await
}
