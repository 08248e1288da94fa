//! Blueprints: server templates with config, arguments and ordered overlays.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use left4me_app::ops::blueprints::{self, BlueprintDetail, BlueprintInput, OverlayEntry};
use serde::Deserialize;

use super::form_failure;
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::pages::{BlueprintPage, BlueprintsPage, Choice, FormErrors, Layout, render};
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
        blueprints: blueprints::usable(state.app(), user).await?,
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
    match blueprints::create(state.app(), &user, &form.name).await {
        Ok(made) => Ok(Redirect::to(&format!("/blueprints/{}", made.blueprint.id)).into_response()),
        Err(error) => {
            let (status, errors) = form_failure(error)?;
            let page = list_page(&state, &user, form.name, errors).await?;
            Ok((status, render(&page)?).into_response())
        }
    }
}

fn page(
    user: &CurrentUser,
    detail: BlueprintDetail,
    errors: FormErrors,
    saved: bool,
) -> BlueprintPage {
    BlueprintPage {
        l: Layout::of(user),
        available: detail
            .available
            .into_iter()
            .map(|o| {
                Choice::new(
                    o.overlay.id,
                    o.overlay.name,
                    o.overlay.owner_id,
                    &o.owner_name,
                    user,
                )
            })
            .collect(),
        preview: detail.preview,
        can_change: detail.can_change,
        owner: detail.owner,
        arguments: detail.arguments,
        blueprint: detail.blueprint,
        overlays: detail.overlays,
        errors,
        saved,
    }
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
    let detail = blueprints::detail(state.app(), &user, id).await?;
    let page = page(&user, detail, FormErrors::default(), query.saved);
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

    /// The blueprint the form describes: its overlay rows reordered by
    /// their position fields, removals dropped, an addition last.
    fn input(&self) -> AppResult<BlueprintInput> {
        let bad_id = |_| AppError::BadRequest("bad overlay id".into());
        let mut rows: Vec<(f64, usize, OverlayEntry)> = Vec::new();
        for (index, (key, value)) in self.0.iter().enumerate() {
            if key != "overlay" {
                continue;
            }
            let id: i64 = value.parse().map_err(bad_id)?;
            if self.get(&format!("remove_{id}")).is_some() {
                continue;
            }
            let position = self
                .get(&format!("pos_{id}"))
                .and_then(|p| p.trim().parse::<f64>().ok())
                .unwrap_or(index as f64);
            let entry = OverlayEntry {
                overlay_id: id,
                expose_server_cfg: self.get(&format!("expose_{id}")).is_some(),
            };
            rows.push((position, index, entry));
        }
        if let Some(added) = self.get("add_overlay").filter(|v| !v.is_empty()) {
            let id: i64 = added.parse().map_err(bad_id)?;
            let entry = OverlayEntry {
                overlay_id: id,
                expose_server_cfg: false,
            };
            rows.push((f64::MAX, usize::MAX, entry));
        }
        rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Ok(BlueprintInput {
            name: self.get("name").unwrap_or_default().to_owned(),
            config: self.get("config").unwrap_or_default().to_owned(),
            arguments: self.get("arguments").unwrap_or_default().to_owned(),
            overlays: rows.into_iter().map(|(_, _, entry)| entry).collect(),
        })
    }
}

pub(crate) async fn save(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let input = Submitted(fields).input()?;
    match blueprints::save(state.app(), &user, id, &input).await {
        // Redirect after the post, so reloading the page does not send it again.
        Ok(_) => Ok(Redirect::to(&format!("/blueprints/{id}?saved=true")).into_response()),
        Err(error) => {
            let (status, errors) = form_failure(error)?;
            let detail = blueprints::draft(state.app(), &user, id, &input).await?;
            Ok((status, render(&page(&user, detail, errors, false))?).into_response())
        }
    }
}

/// The live preview: the same form, answered with the server.cfg text.
pub(crate) async fn preview(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let input = Submitted(fields).input()?;
    let draft = blueprints::draft(state.app(), &user, id, &input).await?;
    Ok(draft.preview.into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    blueprints::delete(state.app(), &user, id).await?;
    Ok(Redirect::to("/blueprints").into_response())
}

/// Anyone who can see a blueprint can copy it into their own.
pub(crate) async fn copy(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let copy = blueprints::copy(state.app(), &user, id).await?;
    Ok(Redirect::to(&format!("/blueprints/{}", copy.blueprint.id)).into_response())
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
