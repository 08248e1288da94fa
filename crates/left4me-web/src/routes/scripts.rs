//! Script overlays: the script page, saving and building, rebuilding.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use left4me_app::error::OpError;
use left4me_app::ops::access::ItemAccess;
use left4me_app::ops::overlays::{self, OverlayContent, OverlayDetail, OverlayInfo, ScriptView};
use left4me_app::ops::scripts::{self, ScriptInput};

use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::pages::{FormErrors, Layout, ScriptPage, render};
use crate::state::AppState;

/// The page with the saved script, or with what was entered and its
/// mistakes.
fn page(
    user: &CurrentUser,
    info: OverlayInfo,
    view: ScriptView,
    entered: Option<ScriptInput>,
    errors: FormErrors,
) -> ScriptPage {
    let (script, description, from_previous) = match entered {
        Some(input) => (input.script, input.description, input.from_previous),
        None => view
            .script
            .map(|s| (s.script, s.description, s.from_previous))
            .unwrap_or_default(),
    };
    ScriptPage {
        l: Layout::of(user),
        owner: info.owner,
        can_change: info.access == ItemAccess::Change,
        can_edit: view.may_edit,
        used_by: info.used_by.join(", "),
        built: super::overlays::build_state(view.built),
        script,
        description,
        from_previous,
        script_limit_kib: left4me_app::scripts::SCRIPT_LIMIT / 1024,
        errors,
        overlay: info.overlay,
    }
}

pub(crate) fn show(user: &CurrentUser, info: OverlayInfo, view: ScriptView) -> AppResult<Response> {
    let page = page(user, info, view, None, FormErrors::default());
    Ok(render(&page)?.into_response())
}

/// Saves the script and queues a build (or joins the queued one), then
/// shows the build.
pub(crate) async fn save(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<ScriptInput>,
) -> AppResult<Response> {
    let fields = match scripts::save_and_build(state.app(), &user, id, &form).await {
        Ok(job) => return Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response()),
        Err(OpError::Invalid(fields)) => fields,
        Err(other) => return Err(other.into()),
    };
    let OverlayDetail {
        info,
        content: OverlayContent::Script(view),
    } = overlays::detail(state.app(), &user, id, "").await?
    else {
        // The save found a script overlay, and no overlay changes kind.
        return Err(AppError::NotFound);
    };
    let page = page(&user, info, view, Some(form), fields.into());
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
}

/// Queues a build of the saved script from an empty layer.
pub(crate) async fn rebuild(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let job = scripts::rebuild_from_scratch(state.app(), &user, id).await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}
