//! `/api/v1/account`: the caller's own password and API tokens. Only a
//! signed-in browser session may use these (with its CSRF header to
//! change anything): a token makes no tokens and changes no password.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use left4me_app::actor::Scope;
use left4me_app::error::OpError;
use left4me_app::ops::sessions;
use left4me_app::ops::tokens::{self, NewTokenInput, TokenInfo};
use left4me_app::ops::users::{self, PasswordInput};
use left4me_store::Secret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use super::auth::ApiUser;
use super::problem::{ApiResult, Problem};
use crate::auth::ClientAddress;
use crate::state::AppState;

/// A token as its owner sees it: never the token itself.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenView {
    id: i64,
    name: String,
    /// `read`, `operate`, `manage`, `admin`.
    scopes: Vec<String>,
    /// Only these servers; `null`: every server of the owner.
    servers: Option<Vec<i64>>,
    expires_at: Option<i64>,
    created_at: i64,
    /// To the minute.
    last_used_at: Option<i64>,
}

impl From<TokenInfo> for TokenView {
    fn from(t: TokenInfo) -> Self {
        Self {
            id: t.id,
            name: t.name,
            scopes: t.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            servers: t.servers,
            expires_at: t.expires_at,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenList {
    items: Vec<TokenView>,
}

/// The caller's tokens, newest first.
#[utoipa::path(get, path = "/account/tokens", tag = "account",
    responses((status = 200, body = TokenList), (status = 403, body = Problem)))]
pub(crate) async fn tokens(
    State(state): State<AppState>,
    user: ApiUser,
) -> ApiResult<Json<TokenList>> {
    let all = tokens::list(state.app(), &user).await?;
    Ok(Json(TokenList {
        items: all.into_iter().map(TokenView::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    name: String,
    /// `read`, `operate`, `manage`, `admin` (admins only).
    scopes: Vec<String>,
    /// Only these servers (left out or empty: every server of the caller).
    #[serde(default)]
    servers: Vec<i64>,
    /// Days until it stops working (left out or 0: until revoked).
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// A token just made: the only time the token itself is shown.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MadeToken {
    /// `l4m_…`: send it as `Authorization: Bearer …`.
    token: String,
    info: TokenView,
}

/// Makes a token. Its secret is in this answer only.
#[utoipa::path(post, path = "/account/tokens", tag = "account", request_body = NewToken,
    responses((status = 201, body = MadeToken), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<Response> {
    let scopes = body
        .scopes
        .iter()
        .map(|word| {
            Scope::parse(word)
                .ok_or_else(|| OpError::invalid("scopes", format!("unknown scope {word:?}")))
        })
        .collect::<Result<_, _>>()?;
    let input = NewTokenInput {
        name: body.name,
        scopes,
        servers: body.servers,
        expires_in_days: body.expires_in_days,
    };
    let made = tokens::create(state.app(), &user, &input).await?;
    let body = MadeToken {
        token: made.token.expose().to_owned(),
        info: made.info.into(),
    };
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response())
}

/// Revokes one of the caller's tokens: its next use fails.
#[utoipa::path(delete, path = "/account/tokens/{id}", tag = "account",
    params(("id" = i64, Path, description = "token id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    tokens::revoke(state.app(), &user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The passwords are never shown, in `Debug` output either.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPassword {
    #[schema(value_type = String)]
    current: Secret,
    #[schema(value_type = String)]
    password: Secret,
    #[schema(value_type = String)]
    confirm: Secret,
}

/// Changes the caller's password and ends their other sessions.
#[utoipa::path(put, path = "/account/password", tag = "account", request_body = NewPassword,
    responses((status = 204), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    user: ApiUser,
    ApiJson(body): ApiJson<NewPassword>,
) -> ApiResult<StatusCode> {
    let input = PasswordInput {
        current: body.current,
        password: body.password,
        confirm: body.confirm,
    };
    // A token has no session to keep: the operation refuses it.
    let keep = user.session_hash().unwrap_or_default();
    users::change_password(state.app(), &user, address, keep, &input).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Confirm {
    #[schema(value_type = String)]
    password: Secret,
}

/// The password typed again: making tokens and adding a second factor
/// need it within ten minutes of signing in or of this.
#[utoipa::path(post, path = "/account/confirm", tag = "account", request_body = Confirm,
    responses((status = 204), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn confirm(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    user: ApiUser,
    ApiJson(body): ApiJson<Confirm>,
) -> ApiResult<StatusCode> {
    // A token has no session: the operation refuses it.
    let current = user.session_hash().unwrap_or_default();
    sessions::confirm_identity(state.app(), &user, address, current, &body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One of the caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionView {
    id: i64,
    /// The browser, in a few words.
    browser: String,
    address: String,
    signed_in_at: i64,
    /// To the minute.
    last_seen_at: i64,
    /// The session this request came with.
    current: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionList {
    items: Vec<SessionView>,
}

/// Where the caller is signed in, the session seen last first.
#[utoipa::path(get, path = "/account/sessions", tag = "account",
    responses((status = 200, body = SessionList), (status = 403, body = Problem)))]
pub(crate) async fn sessions(
    State(state): State<AppState>,
    user: ApiUser,
) -> ApiResult<Json<SessionList>> {
    let current = user.session_hash().unwrap_or_default();
    let all = sessions::list(state.app(), &user, current).await?;
    Ok(Json(SessionList {
        items: all
            .into_iter()
            .map(|s| SessionView {
                id: s.id,
                browser: s.browser,
                address: s.address,
                signed_in_at: s.signed_in_at,
                last_seen_at: s.last_seen_at,
                current: s.current,
            })
            .collect(),
    }))
}

/// Ends one of the caller's sessions: its next request is signed out.
#[utoipa::path(delete, path = "/account/sessions/{id}", tag = "account",
    params(("id" = i64, Path, description = "session id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn end_session(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    sessions::end(state.app(), &user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
