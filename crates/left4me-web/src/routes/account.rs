//! The user's own account: changing the password ends other sessions;
//! API tokens are made (shown once), listed and revoked here.

use axum::Form;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use left4me_app::actor::Scope;
use left4me_app::error::OpError;
use left4me_app::ops::passkeys::{self, Challenge, NewPasskey};
use left4me_app::ops::second_factor::{self, TotpSetup};
use left4me_app::ops::servers;
use left4me_app::ops::sessions;
use left4me_app::ops::tokens::{self, MadeToken, NewTokenInput};
use left4me_app::ops::users::{self, PasswordInput};

use super::form_failure;
use crate::auth::{ClientAddress, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::pages::{
    AccountPage, FormErrors, Layout, RecoveryCodesPage, SessionRow, TokenRow, TotpSetupPage,
    datetime, render,
};
use crate::state::AppState;

async fn account_page(
    state: &AppState,
    user: &CurrentUser,
    errors: FormErrors,
    changed: bool,
    made: Option<MadeToken>,
) -> AppResult<AccountPage> {
    let app = state.app();
    let names: Vec<(i64, String)> = servers::list(app, user)
        .await?
        .into_iter()
        .map(|s| (s.server().id, s.server().name.clone()))
        .collect();
    let tokens = tokens::list(app, user)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            scopes: t
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            servers: t.servers.map_or_else(
                || "all".to_owned(),
                |ids| {
                    ids.iter()
                        .map(|id| {
                            names
                                .iter()
                                .find(|(s, _)| s == id)
                                .map_or_else(|| format!("#{id}"), |(_, n)| n.clone())
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ),
            expires: t
                .expires_at
                .as_ref()
                .map_or_else(|| "never".into(), datetime),
            last_used: t
                .last_used_at
                .as_ref()
                .map_or_else(|| "never".into(), datetime),
            name: t.name,
        })
        .collect();
    Ok(AccountPage {
        l: Layout::of(user),
        errors,
        changed,
        tokens,
        servers: names,
        made: made.map(|m| (m.info.name, m.token.expose().to_owned())),
        factor: second_factor::status(app, user).await?,
        recent: user.signed_in_recently(),
        sessions: sessions::list(app, user, user.session.token_hash.expose())
            .await?
            .into_iter()
            .map(|s| SessionRow {
                id: s.id,
                browser: s.browser,
                address: s.address,
                signed_in: datetime(&s.signed_in_at),
                last_seen: datetime(&s.last_seen_at),
                current: s.current,
            })
            .collect(),
    })
}

pub(crate) async fn page(State(state): State<AppState>, user: CurrentUser) -> AppResult<Response> {
    let page = account_page(&state, &user, FormErrors::default(), false, None).await?;
    Ok(render(&page)?.into_response())
}

pub(crate) async fn change_password(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    user: CurrentUser,
    Form(form): Form<PasswordInput>,
) -> AppResult<Response> {
    let keep = user.session.token_hash.expose();
    let (status, errors, changed) =
        match users::change_password(state.app(), &user, address, keep, &form).await {
            Ok(()) => (StatusCode::OK, FormErrors::default(), true),
            Err(error) => {
                let (status, errors) = form_failure(error)?;
                (status, errors, false)
            }
        };
    let page = account_page(&state, &user, errors, changed, None).await?;
    Ok((status, render(&page)?).into_response())
}

/// The token form as submitted: checkboxes and a multiple select repeat
/// their field name, which a plain form struct cannot take.
fn token_input(fields: Vec<(String, String)>) -> AppResult<NewTokenInput> {
    let mut input = NewTokenInput::default();
    for (key, value) in fields {
        match key.as_str() {
            "name" => input.name = value,
            "scopes" => input.scopes.push(
                Scope::parse(&value)
                    .ok_or_else(|| AppError::BadRequest(format!("unknown scope {value:?}")))?,
            ),
            "servers" => input.servers.push(
                value
                    .parse()
                    .map_err(|_| AppError::BadRequest("bad server id".into()))?,
            ),
            "expires_in_days" if value.trim().is_empty() => {}
            "expires_in_days" => {
                input.expires_in_days = Some(value.trim().parse().map_err(|_| {
                    AppError::BadRequest("expires_in_days: a number of days".into())
                })?);
            }
            _ => {}
        }
    }
    Ok(input)
}

pub(crate) async fn create_token(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let input = token_input(fields)?;
    let (status, errors, made) = match tokens::create(state.app(), &user, &input).await {
        Ok(made) => (StatusCode::CREATED, FormErrors::default(), Some(made)),
        Err(error) => {
            let (status, errors) = form_failure(error)?;
            (status, errors, None)
        }
    };
    // The token is on this page and nowhere else: no redirect to reload,
    // and no copy in a cache.
    let page = account_page(&state, &user, errors, false, made).await?;
    Ok((
        status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        render(&page)?,
    )
        .into_response())
}

pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    tokens::revoke(state.app(), &user, id).await?;
    Ok(Redirect::to("/account#tokens").into_response())
}

fn setup_page(user: &CurrentUser, setup: TotpSetup, errors: FormErrors) -> TotpSetupPage {
    TotpSetupPage {
        l: Layout::of(user),
        errors,
        secret: setup.secret.expose().to_owned(),
        qr_svg: setup.qr_svg,
    }
}

/// Secrets shown once are kept by no cache.
fn no_store(status: StatusCode, body: impl IntoResponse) -> Response {
    (
        status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        body,
    )
        .into_response()
}

/// A new key to put into an authenticator app.
pub(crate) async fn begin_totp(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Response> {
    let setup = second_factor::begin_totp(state.app(), &user).await?;
    let page = setup_page(&user, setup, FormErrors::default());
    Ok(no_store(StatusCode::OK, render(&page)?))
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct CodeForm {
    code: left4me_store::Secret,
}

/// Turns the app on with one of its codes; shows the recovery codes.
pub(crate) async fn confirm_totp(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<CodeForm>,
) -> AppResult<Response> {
    let keep = user.session.token_hash.expose();
    match second_factor::confirm_totp(state.app(), &user, keep, form.code.expose()).await {
        Ok(codes) => codes_page(&user, &codes),
        Err(error) => {
            let (status, errors) = form_failure(error)?;
            let setup = second_factor::current_setup(state.app(), &user).await?;
            Ok(no_store(status, render(&setup_page(&user, setup, errors))?))
        }
    }
}

fn codes_page(user: &CurrentUser, codes: &[left4me_store::Secret]) -> AppResult<Response> {
    let page = RecoveryCodesPage {
        l: Layout::of(user),
        codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
    };
    Ok(no_store(StatusCode::OK, render(&page)?))
}

pub(crate) async fn new_recovery_codes(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Response> {
    let codes = second_factor::new_recovery_codes(state.app(), &user).await?;
    codes_page(&user, &codes)
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct PasswordForm {
    password: left4me_store::Secret,
}

/// Turns two-factor sign-in off, with the password.
pub(crate) async fn remove_totp(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    user: CurrentUser,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    match second_factor::remove_totp(state.app(), &user, address, &form.password).await {
        Ok(()) => Ok(Redirect::to("/account#second-factor").into_response()),
        Err(error) => account_failure(&state, &user, "totp", error).await,
    }
}

/// Ends one of the user's other sessions.
pub(crate) async fn end_session(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    sessions::end(state.app(), &user, id).await?;
    Ok(Redirect::to("/account#sessions").into_response())
}

/// The password typed again: tokens and a new second factor may follow
/// for ten minutes.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    user: CurrentUser,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    let current = user.session.token_hash.expose();
    match sessions::confirm_identity(state.app(), &user, address, current, &form.password).await {
        Ok(()) => Ok(Redirect::to("/account").into_response()),
        Err(error) => account_failure(&state, &user, "confirm_password", error).await,
    }
}

/// A challenge for the browser to make a new passkey with (fetched by the
/// page's script).
pub(crate) async fn passkey_options(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Json<Challenge>> {
    Ok(Json(
        passkeys::begin_registration(state.app(), &user).await?,
    ))
}

/// The passkey the browser made, named; the first second factor shows
/// the recovery codes.
pub(crate) async fn add_passkey(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<NewPasskey>,
) -> AppResult<Response> {
    let keep = user.session.token_hash.expose();
    match passkeys::finish_registration(state.app(), &user, keep, &form).await {
        Ok(Some(codes)) => codes_page(&user, &codes),
        Ok(None) => Ok(Redirect::to("/account#passkeys").into_response()),
        Err(error) => account_failure(&state, &user, "passkey", error).await,
    }
}

/// The account page again, with why a form of its own did not do what
/// was asked said at `form` (its forms share field names, such as
/// `password`).
async fn account_failure(
    state: &AppState,
    user: &CurrentUser,
    form: &'static str,
    error: OpError,
) -> AppResult<Response> {
    let (status, messages) = match error {
        OpError::BadRequest(message) => (StatusCode::BAD_REQUEST, vec![message]),
        other => {
            let (status, errors) = form_failure(other)?;
            (status, errors.messages())
        }
    };
    let mut errors = FormErrors::default();
    errors.add(form, messages.join("; "));
    let page = account_page(state, user, errors, false, None).await?;
    Ok((status, render(&page)?).into_response())
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RemovePasskeyForm {
    #[serde(default)]
    password: Option<left4me_store::Secret>,
}

/// Removes a passkey (the last second factor with the password).
pub(crate) async fn remove_passkey(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<RemovePasskeyForm>,
) -> AppResult<Response> {
    match passkeys::remove(state.app(), &user, address, id, form.password.as_ref()).await {
        Ok(()) => Ok(Redirect::to("/account#passkeys").into_response()),
        Err(error) => account_failure(&state, &user, "passkey", error).await,
    }
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct SignInAloneForm {
    on: bool,
}

/// Whether a passkey alone signs the user in.
pub(crate) async fn passkey_sign_in(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<SignInAloneForm>,
) -> AppResult<Response> {
    passkeys::set_sign_in_alone(state.app(), &user, form.on).await?;
    Ok(Redirect::to("/account#passkeys").into_response())
}
