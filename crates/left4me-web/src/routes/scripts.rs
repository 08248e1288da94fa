//! Script overlays: the script page, saving and building, rebuilding.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use left4me_store::{Overlay, OverlayKind};
use serde::Deserialize;

use crate::access::{self, ItemAccess};
use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::pages::{FormErrors, Layout, ScriptPage, render};
use crate::runner::Actor;
use crate::scripts::ScriptText;
use crate::state::AppState;

/// The script form as entered, or `None` for the saved script.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ScriptForm {
    #[serde(default)]
    description: String,
    #[serde(default)]
    script: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    from_previous: Option<String>,
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    overlay: Overlay,
    entered: Option<ScriptForm>,
    errors: FormErrors,
) -> AppResult<ScriptPage> {
    let store = state.store();
    let (script, description, from_previous) = match entered {
        Some(form) => (form.script, form.description, form.from_previous.is_some()),
        None => store
            .overlay_script(overlay.id)
            .await?
            .map(|s| (s.script, s.description, s.from_previous))
            .unwrap_or_default(),
    };
    Ok(ScriptPage {
        l: Layout::of(user),
        owner: store.user(overlay.owner_id).await?.username,
        can_change: user.item_access(&overlay) == Some(ItemAccess::Change),
        can_edit: access::scripts(user).is_ok(),
        used_by: store
            .blueprints_using_overlay(overlay.id, Some(user.viewer()))
            .await?
            .join(", "),
        built: super::overlays::build_state(state, overlay.id).await?,
        script,
        description,
        from_previous,
        script_limit_kib: crate::scripts::SCRIPT_LIMIT / 1024,
        errors,
        overlay,
    })
}

pub(crate) async fn show(
    state: &AppState,
    user: &CurrentUser,
    overlay: Overlay,
) -> AppResult<Response> {
    let page = page(state, user, overlay, None, FormErrors::default()).await?;
    Ok(render(&page)?.into_response())
}

/// A script overlay whose script the user may write and build.
async fn script_overlay(state: &AppState, user: &CurrentUser, id: i64) -> AppResult<Overlay> {
    let overlay = access::overlay(state, user, id, ItemAccess::Change).await?;
    access::scripts(user)?;
    super::overlays::of_kind(overlay, OverlayKind::Script)
}

/// Saves the script and queues a build (or joins the queued one), then
/// shows the build.
pub(crate) async fn save(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<ScriptForm>,
) -> AppResult<Response> {
    let overlay = script_overlay(&state, &user, id).await?;
    let text = match ScriptText::parse(&form.script, &form.description) {
        Ok(text) => text,
        Err(mistakes) => {
            let mut errors = FormErrors::default();
            for mistake in mistakes {
                errors.add(mistake.field(), mistake.to_string());
            }
            let page = page(&state, &user, overlay, Some(form), errors).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
        }
    };
    let job = crate::scripts::save_and_build(
        state.store(),
        state.jobs(),
        Actor::User(&user.user),
        &overlay,
        &text,
        form.from_previous.is_some(),
    )
    .await?;
    let detail = format!("saved the script of overlay {}", overlay.name);
    super::record(&state, &user, None, "overlay.script", detail).await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}

/// Queues a build of the saved script from an empty layer.
pub(crate) async fn rebuild(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let overlay = script_overlay(&state, &user, id).await?;
    let job = crate::scripts::rebuild_from_scratch(
        state.store(),
        state.jobs(),
        Actor::User(&user.user),
        &overlay,
    )
    .await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}
