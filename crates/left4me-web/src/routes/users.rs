//! User administration (admins only).

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use left4me_app::ops::second_factor::{self, Policy};
use left4me_app::ops::users::{self, NewUserInput};
use serde::Deserialize;

use super::form_failure;
use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::pages::{FormErrors, Layout, UsersPage, render};
use crate::state::AppState;

async fn users_page(
    state: &AppState,
    user: &CurrentUser,
    username: String,
    errors: FormErrors,
) -> AppResult<UsersPage> {
    Ok(UsersPage {
        l: Layout::of(user),
        users: users::list(state.app(), user).await?,
        policy: second_factor::policy_for(state.app(), user).await?.as_str(),
        me: user.id(),
        username,
        errors,
    })
}

pub(crate) async fn index(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let page = users_page(&state, &user, String::new(), FormErrors::default()).await?;
    Ok(render(&page)?.into_response())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<NewUserInput>,
) -> AppResult<Response> {
    match users::create(state.app(), &user, &form).await {
        Ok(_) => Ok(Redirect::to("/users").into_response()),
        Err(error) => {
            let (status, errors) = form_failure(error)?;
            let page = users_page(&state, &user, form.username, errors).await?;
            Ok((status, render(&page)?).into_response())
        }
    }
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
    users::set_active(state.app(), &user, id, form.active).await?;
    Ok(Redirect::to("/users").into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    users::delete(state.app(), &user, id).await?;
    Ok(Redirect::to("/users").into_response())
}

pub(crate) async fn end_sessions(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    users::end_sessions(state.app(), &user, id).await?;
    Ok(Redirect::to("/users").into_response())
}

pub(crate) async fn reset_second_factor(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    users::reset_second_factor(state.app(), &user, id).await?;
    Ok(Redirect::to("/users").into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PolicyForm {
    policy: Policy,
}

pub(crate) async fn set_policy(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<PolicyForm>,
) -> AppResult<Response> {
    second_factor::set_policy(state.app(), &user, form.policy).await?;
    Ok(Redirect::to("/users").into_response())
}
