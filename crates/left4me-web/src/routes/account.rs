//! The user's own account: changing the password ends other sessions.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use left4me_store::Secret;
use serde::Deserialize;

use crate::auth::{CurrentUser, verify_password};
use crate::domain::NewPassword;
use crate::error::{AppError, AppResult};
use crate::pages::{AccountPage, FormErrors, Layout, render};
use crate::routes::session::hash_blocking;
use crate::state::AppState;

pub(crate) async fn page(user: CurrentUser) -> AppResult<Response> {
    let page = AccountPage {
        l: Layout::of(&user),
        errors: FormErrors::default(),
        changed: false,
    };
    Ok(render(&page)?.into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasswordForm {
    current: Secret,
    password: Secret,
    confirm: Secret,
}

pub(crate) async fn change_password(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    let mut errors = FormErrors::default();
    let hash = user.user.password_hash.clone();
    let current = form.current.clone();
    let current_ok =
        tokio::task::spawn_blocking(move || verify_password(hash.expose(), current.expose()))
            .await
            .map_err(AppError::internal)?;
    if !current_ok {
        errors.add("current", "that is not your current password");
    }
    let password = NewPassword::parse(form.password.expose())
        .map_err(|e| errors.add("password", e))
        .ok();
    if form.password != form.confirm {
        errors.add("confirm", "the passwords differ");
    }
    let (Some(password), true) = (password, errors.is_empty()) else {
        let page = AccountPage {
            l: Layout::of(&user),
            errors,
            changed: false,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let hash = hash_blocking(password).await?;
    state.store().set_password_hash(user.id(), &hash).await?;
    state
        .store()
        .delete_other_sessions(user.id(), user.session.token_hash.expose())
        .await?;
    let page = AccountPage {
        l: Layout::of(&user),
        errors: FormErrors::default(),
        changed: true,
    };
    Ok(render(&page)?.into_response())
}
