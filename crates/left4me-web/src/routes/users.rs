//! User administration (admins only).

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::domain::{NewPassword, Username};
use crate::error::{AppError, AppResult};
use crate::pages::{FormErrors, Layout, UsersPage, render};
use crate::routes::session::hash_blocking;
use crate::state::AppState;

async fn users_page(
    state: &AppState,
    user: &CurrentUser,
    username: String,
    errors: FormErrors,
) -> AppResult<UsersPage> {
    Ok(UsersPage {
        l: Layout::of(user),
        users: state.store().users().await?,
        me: user.id(),
        username,
        errors,
    })
}

pub(crate) async fn index(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    user.require_admin()?;
    let page = users_page(&state, &user, String::new(), FormErrors::default()).await?;
    Ok(render(&page)?.into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    username: String,
    password: left4me_store::Secret,
    #[serde(default)]
    admin: Option<String>,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<CreateForm>,
) -> AppResult<Response> {
    user.require_admin()?;
    let mut errors = FormErrors::default();
    let username = Username::parse(&form.username)
        .map_err(|e| errors.add("username", e))
        .ok();
    let password = NewPassword::parse(form.password.expose())
        .map_err(|e| errors.add("password", e))
        .ok();
    if let (Some(username), Some(password)) = (username, password) {
        let hash = hash_blocking(password).await?;
        match state
            .store()
            .create_user(username.as_str(), &hash, form.admin.is_some())
            .await
        {
            Ok(created) => {
                let role = if created.is_admin { "admin" } else { "user" };
                let detail = format!("created {role} {}", created.username);
                super::record(&state, &user, None, "user.create", detail).await?;
                return Ok(Redirect::to("/users").into_response());
            }
            Err(left4me_store::StoreError::Conflict(message)) => errors.add("username", message),
            Err(e) => return Err(e.into()),
        }
    }
    let page = users_page(&state, &user, form.username, errors).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
}

/// Refuses changes that would lock everyone out.
async fn guard(
    state: &AppState,
    user: &CurrentUser,
    target: i64,
) -> AppResult<left4me_store::User> {
    user.require_admin()?;
    if target == user.id() {
        return Err(AppError::Conflict(
            "You cannot deactivate or delete yourself.".into(),
        ));
    }
    let target = state.store().user(target).await?;
    if target.is_admin && target.is_active && state.store().count_active_admins().await? <= 1 {
        return Err(AppError::Conflict("That is the last active admin.".into()));
    }
    Ok(target)
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActiveForm {
    active: bool,
}

pub(crate) async fn set_active(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<ActiveForm>,
) -> AppResult<Response> {
    let target = guard(&state, &user, id).await?;
    state
        .store()
        .set_user_active(target.id, form.active)
        .await?;
    let verb = if form.active {
        "activated"
    } else {
        "deactivated"
    };
    let detail = format!("{verb} {}", target.username);
    super::record(&state, &user, None, "user.active", detail).await?;
    Ok(Redirect::to("/users").into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let target = guard(&state, &user, id).await?;
    let owned = state.store().user_possessions(target.id).await?;
    if !owned.is_empty() {
        return Err(AppError::Conflict(format!(
            "{} still owns {}; delete or hand those over first.",
            target.username,
            owned.join(", ")
        )));
    }
    state.store().delete_user(target.id).await?;
    let detail = format!("deleted {}", target.username);
    super::record(&state, &user, None, "user.delete", detail).await?;
    Ok(Redirect::to("/users").into_response())
}
