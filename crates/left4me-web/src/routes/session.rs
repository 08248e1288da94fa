//! First-run setup, login and logout.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use serde::Deserialize;

use left4me_store::Secret;

use crate::auth::{self, MaybeUser, PRE_SESSION_CSRF_COOKIE, SESSION_COOKIE, SESSION_TTL_SECS};
use crate::domain::{NewPassword, Username};
use crate::error::{AppError, AppResult};
use crate::pages::{FormErrors, LoginPage, SetupPage, render};
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
                state.config().secure_cookies,
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

#[derive(Debug, Deserialize)]
pub(crate) struct SetupQuery {
    #[serde(default)]
    token: Secret,
}

/// The setup token lives until it is used or replaced: each start of the
/// panel and each `left4me setup-url` issues a new one while no user exists.
fn invalid_setup_link() -> AppError {
    AppError::NotFoundBecause(
        "This setup link was already used or has been replaced by a newer one (links also \
         expire after a day). If the first \
         admin exists, log in; an admin adds users under Users, or from a shell with \
         `left4me user create NAME`. Otherwise run `left4me setup-url` on the host and open \
         the link it prints."
            .into(),
    )
}

async fn setup_token_valid(state: &AppState, token: &Secret) -> AppResult<bool> {
    Ok(state
        .store()
        .setup_token_valid(&auth::token_hash(token.expose()))
        .await?)
}

pub(crate) async fn setup_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SetupQuery>,
) -> AppResult<Response> {
    if !setup_token_valid(&state, &query.token).await? {
        return Err(invalid_setup_link());
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
    Form(form): Form<SetupForm>,
) -> AppResult<Response> {
    if !setup_token_valid(&state, &form.token).await? {
        return Err(invalid_setup_link());
    }
    let mut errors = FormErrors::default();
    let username = Username::parse(&form.username)
        .map_err(|e| errors.add("username", e))
        .ok();
    let password = NewPassword::parse(form.password.expose())
        .map_err(|e| errors.add("password", e))
        .ok();
    if form.password != form.confirm {
        errors.add("confirm", "the passwords differ");
    }
    let (Some(username), Some(password), true) = (username, password, errors.is_empty()) else {
        let page = SetupPage {
            token: form.token.expose().to_owned(),
            csrf: form.csrf.expose().to_owned(),
            username: form.username,
            errors,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let hash = hash_blocking(password).await?;
    // Checked again with the insert: another request may have used the
    // link (or created the first user) while this one hashed.
    let created = state
        .store()
        .create_first_admin(
            &auth::token_hash(form.token.expose()),
            username.as_str(),
            &hash,
        )
        .await?;
    let Some(user) = created else {
        return Err(if state.store().count_users().await? > 0 {
            AppError::Conflict("the first user already exists; log in".into())
        } else {
            invalid_setup_link()
        });
    };
    tracing::info!(user = %user.username, "first admin created");
    start_session(&state, user.id).await
}

/// Hashes on a blocking thread (argon2 is slow on purpose).
pub(crate) async fn hash_blocking(password: NewPassword) -> AppResult<String> {
    Ok(
        tokio::task::spawn_blocking(move || auth::hash_password(password.as_str()))
            .await
            .map_err(AppError::internal)??,
    )
}

async fn start_session(state: &AppState, user_id: i64) -> AppResult<Response> {
    let token = auth::random_token();
    let csrf = auth::random_token();
    state
        .store()
        .create_session(&auth::token_hash(&token), user_id, &csrf, SESSION_TTL_SECS)
        .await?;
    let cookie = auth::set_cookie(
        SESSION_COOKIE,
        &token,
        SESSION_TTL_SECS,
        state.config().secure_cookies,
    );
    Ok(with_cookies([cookie], Redirect::to("/")))
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
    let page = LoginPage {
        csrf,
        username: String::new(),
        error: String::new(),
    };
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> AppResult<Response> {
    let limiter = state.limiter();
    let client = auth::client_ip(peer.ip(), &headers, &state.config().trusted_proxies);
    let username = form.username.trim();
    if let Err(wait) = limiter.attempt(client, username) {
        return Err(AppError::TooManyRequests {
            message: format!(
                "Too many failed logins from your address. Try again in {} seconds.",
                wait.as_secs().max(1)
            ),
            retry_after: wait,
        });
    }
    let user = state.store().user_by_name(username).await?;
    let password = form.password.clone();
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    // Verify even for unknown users, so timing does not tell who exists.
    let valid = tokio::task::spawn_blocking(move || {
        let hash = hash.as_ref().map_or(DUMMY_HASH, Secret::expose);
        auth::verify_password(hash, password.expose())
    })
    .await
    .map_err(AppError::internal)?;
    match user {
        Some(user) if valid && user.is_active => {
            limiter.record_success(client, username);
            start_session(&state, user.id).await
        }
        _ => {
            // Already counted by `attempt`.
            // At most 64 characters of what was typed as the name: enough
            // to tell who was tried, not a way to fill the log.
            let tried: String = username.chars().take(64).collect();
            tracing::warn!(address = %client, username = ?tried, "failed login");
            state
                .store()
                .record_anonymous_activity(
                    &client.to_string(),
                    "login.failed",
                    &format!("failed login as {tried:?}"),
                )
                .await?;
            let page = LoginPage {
                csrf: form.csrf.expose().to_owned(),
                username: form.username,
                error: "Wrong username or password, or the account is deactivated.".into(),
            };
            Ok((axum::http::StatusCode::UNAUTHORIZED, render(&page)?).into_response())
        }
    }
}

/// An argon2id hash of a random password, verified against when the
/// username does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$W3yBlhu1jv8D6rKy5cTBNGf7Ua8OlK3A4xC4qbT6nAQ";

pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> AppResult<Response> {
    if let Some(token) = auth::cookie(&headers, SESSION_COOKIE) {
        state
            .store()
            .delete_session(&auth::token_hash(&token))
            .await?;
    }
    let clear = auth::set_cookie(SESSION_COOKIE, "", 0, state.config().secure_cookies);
    Ok(with_cookies([clear], Redirect::to("/login")))
}
