//! `/api/v1/users` (admins): the users, new users, deactivating and
//! deleting them, never locking everyone out.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
