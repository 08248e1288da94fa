//! First-run setup, login and logout.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use serde::Deserialize;

use left4me_store::Secret;

use left4me_app::error::OpError;
use left4me_app::ops::sessions::{self, NewSession, SignIn};

use crate::auth::{
    self, ClientAddress, MaybeUser, PRE_SESSION_CSRF_COOKIE, SESSION_COOKIE, SESSION_TTL_SECS,
};
use crate::error::AppResult;
use crate::pages::{FormErrors, LoginPage, SecondFactorPage, SetupPage, render};
use crate::state::AppState;

/// The pre-session CSRF token: the cookie's if present, else a new one
/// (returned with the cookie header to set).
fn pre_session_csrf(state: &AppState, headers: &HeaderMap) -> (String, Option<String>) {
    match auth::cookie(headers, PRE_SESSION_CSRF_COOKIE) {
        Some(token) if token.len() == 64 => (token, None),
        _ => {
            let token = auth::random_token();
            let set = auth::set_cookie(
                PRE_SESSION_CSRF_COOKIE,
                &token,
                3600,
                state.app().config().secure_cookies,
            );
            (token, Some(set))
        }
    }
}

fn with_cookies(cookies: impl IntoIterator<Item = String>, body: impl IntoResponse) -> Response {
    let headers: Vec<(header::HeaderName, String)> = cookies
        .into_iter()
        .map(|c| (header::SET_COOKIE, c))
        .collect();
    (AppendHeaders(headers), body).into_response()
}

/// Who signs in, as the limits and the list of sessions know them.
fn client_of(address: ClientAddress, headers: &HeaderMap) -> sessions::Client {
    sessions::Client {
        address: address.0,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SetupQuery {
    #[serde(default)]
    token: Secret,
}

pub(crate) async fn setup_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SetupQuery>,
) -> AppResult<Response> {
    if !sessions::setup_link_valid(state.app(), &query.token).await? {
        return Err(sessions::invalid_setup_link().into());
    }
    let (csrf, set) = pre_session_csrf(&state, &headers);
    let page = SetupPage {
        token: query.token.expose().to_owned(),
        csrf,
        username: String::new(),
        errors: FormErrors::default(),
    };
    Ok(with_cookies(set, render(&page)?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SetupForm {
    token: Secret,
    csrf: Secret,
    username: String,
    password: Secret,
    confirm: Secret,
}

pub(crate) async fn setup(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> AppResult<Response> {
    let opened = sessions::set_up_first_admin(
        state.app(),
        &client_of(address, &headers),
        &form.token,
        &form.username,
        &form.password,
        &form.confirm,
    )
    .await;
    match opened {
        Ok(session) => Ok(session_cookie(&state, &session)),
        Err(OpError::Invalid(fields)) => {
            let page = SetupPage {
                token: form.token.expose().to_owned(),
                csrf: form.csrf.expose().to_owned(),
                username: form.username,
                errors: fields.into(),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
        }
        Err(other) => Err(other.into()),
    }
}

/// A sign-in waiting for its second factor (its own cookie: it opens
/// nothing but that step).
const PENDING_COOKIE: &str = "left4me_pending";

/// Signed in: the session cookie (a pending sign-in's goes), and on to
/// the dashboard.
fn session_cookie(state: &AppState, session: &NewSession) -> Response {
    let secure = state.app().config().secure_cookies;
    let cookie = auth::set_cookie(
        SESSION_COOKIE,
        session.token.expose(),
        SESSION_TTL_SECS,
        secure,
    );
    let pending = auth::set_cookie(PENDING_COOKIE, "", 0, secure);
    with_cookies([cookie, pending], Redirect::to("/"))
}

pub(crate) async fn login_page(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    headers: HeaderMap,
) -> AppResult<Response> {
    if user.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let (csrf, set) = pre_session_csrf(&state, &headers);
    let page = LoginPage::new(&state, csrf, String::new(), String::new());
    Ok(with_cookies(set, render(&page)?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    csrf: Secret,
    username: String,
    password: Secret,
}

pub(crate) async fn login(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    let client = client_of(address, &headers);
    match sessions::log_in(state.app(), &client, &form.username, &form.password).await {
        Ok(SignIn::Session(session)) => Ok(session_cookie(&state, &session)),
        Ok(SignIn::SecondFactor(pending)) => {
            let cookie = auth::set_cookie(
                PENDING_COOKIE,
                pending.expose(),
                sessions::PENDING_TTL_SECS,
                state.app().config().secure_cookies,
            );
            Ok(with_cookies([cookie], Redirect::to("/login/second-factor")))
        }
        Err(OpError::Unauthenticated(error)) => {
            let page = LoginPage::new(&state, form.csrf.expose().to_owned(), form.username, error);
            Ok((StatusCode::UNAUTHORIZED, render(&page)?).into_response())
        }
        Err(other) => Err(other.into()),
    }
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> AppResult<Response> {
    if let Some(token) = auth::cookie(&headers, SESSION_COOKIE) {
        sessions::log_out(state.app(), &token).await?;
    }
    let secure = state.app().config().secure_cookies;
    let clear = [
        auth::set_cookie(SESSION_COOKIE, "", 0, secure),
        auth::set_cookie(PENDING_COOKIE, "", 0, secure),
    ];
    Ok(with_cookies(clear, Redirect::to("/login")))
}

/// The second step of a sign-in, while its cookie lasts.
pub(crate) async fn second_factor_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let Some(pending) = auth::cookie(&headers, PENDING_COOKIE) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let (csrf, set) = pre_session_csrf(&state, &headers);
    let page = second_factor_step(&state, &pending, csrf, String::new()).await;
    Ok(with_cookies(set, page?))
}

/// The second step's page (a fresh passkey challenge on it), or the
/// login page once the pending sign-in is over.
async fn second_factor_step(
    state: &AppState,
    pending: &str,
    csrf: String,
    error: String,
) -> AppResult<Response> {
    match sessions::pending(state.app(), pending).await {
        Ok(step) => {
            let passkey = step
                .passkey
                .map(|c| serde_json::to_string(&c))
                .transpose()
                .map_err(|e| OpError::internal("passkey options", e))?;
            let page = SecondFactorPage {
                csrf,
                error,
                totp: step.totp,
                passkey,
            };
            let status = if page.error.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            Ok((status, render(&page)?).into_response())
        }
        Err(OpError::Unauthenticated(error)) => login_again(state, csrf, error),
        Err(other) => Err(other.into()),
    }
}

fn login_again(state: &AppState, csrf: String, error: String) -> AppResult<Response> {
    let page = LoginPage::new(state, csrf, String::new(), error);
    Ok((StatusCode::UNAUTHORIZED, render(&page)?).into_response())
}

/// The second step as sent: a code, or a passkey's answer.
#[derive(Debug, Deserialize)]
pub(crate) struct SecondFactorForm {
    csrf: Secret,
    #[serde(default)]
    code: Option<Secret>,
    #[serde(default)]
    ceremony: Option<String>,
    #[serde(default)]
    credential: Option<String>,
}

pub(crate) async fn second_factor(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    Form(form): Form<SecondFactorForm>,
) -> AppResult<Response> {
    let client = client_of(address, &headers);
    let pending = auth::cookie(&headers, PENDING_COOKIE).unwrap_or_default();
    let proof = match (&form.code, &form.ceremony, &form.credential) {
        (_, Some(ceremony), Some(answer)) => sessions::Proof::Passkey { ceremony, answer },
        (Some(code), _, _) => sessions::Proof::Code(code.expose()),
        _ => sessions::Proof::Code(""),
    };
    let csrf = form.csrf.expose().to_owned();
    match sessions::second_factor(state.app(), &client, &pending, proof).await {
        Ok(session) => Ok(session_cookie(&state, &session)),
        Err(OpError::Invalid(fields)) => {
            let error = FormErrors::from(fields).get("code").to_owned();
            second_factor_step(&state, &pending, csrf, error).await
        }
        Err(OpError::BadRequest(error)) => second_factor_step(&state, &pending, csrf, error).await,
        Err(OpError::Unauthenticated(error)) => login_again(&state, csrf, error),
        Err(other) => Err(other.into()),
    }
}

/// A challenge to sign in with a passkey alone (fetched by the login
/// page's script).
pub(crate) async fn passkey_options(
    State(state): State<AppState>,
) -> AppResult<axum::Json<left4me_app::ops::passkeys::Challenge>> {
    Ok(axum::Json(
        left4me_app::ops::passkeys::begin_sign_in(state.app()).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasskeyForm {
    csrf: Secret,
    ceremony: String,
    credential: String,
}

/// Signs in with a passkey alone.
pub(crate) async fn passkey(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    Form(form): Form<PasskeyForm>,
) -> AppResult<Response> {
    let client = client_of(address, &headers);
    let signed_in =
        left4me_app::ops::passkeys::sign_in(state.app(), &client, &form.ceremony, &form.credential)
            .await;
    match signed_in {
        Ok(session) => Ok(session_cookie(&state, &session)),
        Err(OpError::Unauthenticated(error) | OpError::BadRequest(error)) => {
            login_again(&state, form.csrf.expose().to_owned(), error)
        }
        Err(other) => Err(other.into()),
    }
}
