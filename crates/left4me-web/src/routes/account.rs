//! The user's own account: changing the password ends other sessions.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use left4me_app::ops::users::{self, PasswordInput};

use super::form_failure;
use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::pages::{AccountPage, FormErrors, Layout, render};
use crate::state::AppState;

pub(crate) async fn page(user: CurrentUser) -> AppResult<Response> {
    let page = AccountPage {
        l: Layout::of(&user),
        errors: FormErrors::default(),
        changed: false,
    };
    Ok(render(&page)?.into_response())
}

pub(crate) async fn change_password(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<PasswordInput>,
) -> AppResult<Response> {
    let keep = user.session.token_hash.expose();
    let (status, errors, changed) =
        match users::change_password(state.app(), &user, keep, &form).await {
            Ok(()) => (Default::default(), FormErrors::default(), true),
            Err(error) => {
                let (status, errors) = form_failure(error)?;
                (status, errors, false)
            }
        };
    let page = AccountPage {
        l: Layout::of(&user),
        errors,
        changed,
    };
    Ok((status, render(&page)?).into_response())
}
