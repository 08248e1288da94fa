//! `/api/v1/users` (admins): the users, new users, deactivating and
//! deleting them, never locking everyone out.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use left4me_app::ops::second_factor::{self, Policy};
use left4me_app::ops::users::{self, NewUserInput};
use left4me_store::{Secret, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use super::auth::ApiUser;
use super::problem::{ApiResult, Problem};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    id: i64,
    username: String,
    is_admin: bool,
    /// Deactivated users cannot sign in and their tokens fail.
    is_active: bool,
    created_at: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            is_admin: u.is_admin,
            is_active: u.is_active,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserList {
    items: Vec<UserView>,
}

/// Every user, by name.
#[utoipa::path(get, path = "/users", tag = "users",
    responses((status = 200, body = UserList), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("token" = ["read", "admin"])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    user: ApiUser,
) -> ApiResult<Json<UserList>> {
    let all = users::list(state.app(), &user).await?;
    Ok(Json(UserList {
        items: all.into_iter().map(UserView::from).collect(),
    }))
}

/// The password is never shown, in `Debug` output either.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    username: String,
    #[schema(value_type = String)]
    password: Secret,
    #[serde(default)]
    admin: bool,
}

/// Makes a user, who signs in with the password given.
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = UserView), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("token" = ["admin"])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<Response> {
    let input = NewUserInput {
        username: body.username,
        password: body.password,
        admin: body.admin,
    };
    let created = users::create(state.app(), &user, &input).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(created))).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Active {
    active: bool,
}

/// Activates or deactivates a user (deactivating ends their sessions;
/// never oneself or the last active admin).
#[utoipa::path(put, path = "/users/{id}/active", tag = "users", request_body = Active,
    params(("id" = i64, Path, description = "user id")),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("token" = ["admin"])))]
pub(crate) async fn set_active(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Active>,
) -> ApiResult<StatusCode> {
    users::set_active(state.app(), &user, id, body.active).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a user who owns nothing any more.
#[utoipa::path(delete, path = "/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("token" = ["admin"])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    users::delete(state.app(), &user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of a user (their tokens keep working).
#[utoipa::path(delete, path = "/users/{id}/sessions", tag = "users",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 204), (status = 404, body = Problem)),
    security(("token" = ["admin"])))]
pub(crate) async fn end_sessions(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    users::end_sessions(state.app(), &user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns a user's second factor off (a lost phone and no recovery codes)
/// and ends their sessions; they are told until they set one up again.
#[utoipa::path(delete, path = "/users/{id}/second-factor", tag = "users",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("token" = ["admin"])))]
pub(crate) async fn reset_second_factor(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    users::reset_second_factor(state.app(), &user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who must have a second factor.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecondFactorPolicy {
    /// `nobody`, `admins` or `everyone`.
    required_of: PolicyName,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PolicyName {
    Nobody,
    Admins,
    Everyone,
}

impl From<Policy> for PolicyName {
    fn from(p: Policy) -> Self {
        match p {
            Policy::Nobody => Self::Nobody,
            Policy::Admins => Self::Admins,
            Policy::Everyone => Self::Everyone,
        }
    }
}

impl From<PolicyName> for Policy {
    fn from(p: PolicyName) -> Self {
        match p {
            PolicyName::Nobody => Self::Nobody,
            PolicyName::Admins => Self::Admins,
            PolicyName::Everyone => Self::Everyone,
        }
    }
}

/// Who must have a second factor to use the panel.
#[utoipa::path(get, path = "/settings/second-factor", tag = "users",
    responses((status = 200, body = SecondFactorPolicy), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("token" = ["read", "admin"])))]
pub(crate) async fn policy(
    State(state): State<AppState>,
    user: ApiUser,
) -> ApiResult<Json<SecondFactorPolicy>> {
    Ok(Json(SecondFactorPolicy {
        required_of: second_factor::policy_for(state.app(), &user).await?.into(),
    }))
}

/// Requires a second factor of nobody, admins or everyone: those covered
/// without one reach nothing but its setup.
#[utoipa::path(put, path = "/settings/second-factor", tag = "users",
    request_body = SecondFactorPolicy,
    responses((status = 204), (status = 404, body = Problem)),
    security(("token" = ["admin"])))]
pub(crate) async fn set_policy(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<SecondFactorPolicy>,
) -> ApiResult<StatusCode> {
    second_factor::set_policy(state.app(), &user, body.required_of.into()).await?;
    Ok(StatusCode::NO_CONTENT)
}
