//! The one error type at the HTTP edge: it logs what went wrong in detail
//! and shows the user a page that says what to do.

use std::time::Duration;

use askama::Template;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use left4me_app::error::OpError;
use left4me_store::StoreError;

use crate::auth::{self, SeenUser};
use crate::pages::{FormFailure, Layout};
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Not logged in: send to the login page.
    #[error("please log in")]
    LoginRequired,
    /// Missing, or not the user's to see (never tell which).
    #[error("not found")]
    NotFound,
    /// Missing, with a word on what to do (where there is nothing to hide).
    #[error("{0}")]
    NotFoundBecause(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// Slowed down (failed logins): try again after `retry_after`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: Duration,
    },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::LoginRequired => StatusCode::UNAUTHORIZED,
            Self::NotFound | Self::NotFoundBecause(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(message) => Self::Conflict(message),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<left4me_files::FilesError> for AppError {
    fn from(err: left4me_files::FilesError) -> Self {
        OpError::from(err).into()
    }
}

impl From<OpError> for AppError {
    fn from(err: OpError) -> Self {
        match err {
            OpError::NotFound => Self::NotFound,
            OpError::NotFoundBecause(message) => Self::NotFoundBecause(message),
            OpError::Forbidden(message) => Self::Forbidden(message),
            OpError::Invalid(errors) => Self::BadRequest(errors.to_string()),
            OpError::BadRequest(message) => Self::BadRequest(message),
            OpError::Conflict { message, .. } => Self::Conflict(message),
            OpError::TooLarge(message) => Self::PayloadTooLarge(message),
            OpError::Unauthenticated(_) => Self::LoginRequired,
            OpError::TooManyAttempts {
                message,
                retry_after,
            } => Self::TooManyRequests {
                message,
                retry_after,
            },
            internal @ OpError::Internal { .. } => Self::Internal(internal.chain()),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(err: askama::Error) -> Self {
        Self::Internal(format!("rendering a page: {err}"))
    }
}

/// The error page for visitors who are not logged in.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// The error page inside the navigation, for a logged-in user.
#[derive(Template)]
#[template(path = "error_nav.html")]
struct ErrorPageWithNav<'a> {
    l: Layout,
    title: &'a str,
    message: &'a str,
}

fn title_of(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

/// What an error response says, kept beside the page so [`error_pages`]
/// can answer a script that asked for JSON with the same words.
#[derive(Debug, Clone)]
struct ErrorMessage {
    status: StatusCode,
    message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(%detail, "request failed");
                crate::observe::went_wrong()
            }
            other => other.to_string(),
        };
        let mut response = if let Self::LoginRequired = self {
            Redirect::to("/login").into_response()
        } else {
            let page = ErrorPage {
                title: title_of(status),
                message: &message,
            };
            match page.render() {
                Ok(html) => (status, Html(html)).into_response(),
                Err(_) => (status, message.clone()).into_response(),
            }
        };
        if let Self::TooManyRequests { retry_after, .. } = self {
            // Whole seconds, rounded up: never "retry after 0".
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
            .extensions_mut()
            .insert(ErrorMessage { status, message });
        response
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// For routes nobody defined: the same "not found" page as for objects.
pub(crate) async fn not_found() -> AppError {
    AppError::NotFound
}

/// Every response passes here. axum answers requests its extractors cannot
/// read (a path id that is no number, a form with a missing field) with
/// plain text: those become the panel's own error page (400: the request
/// was malformed), and an unreadable id is "not found" like any other.
/// Error pages of a logged-in user keep the navigation. A script that asked
/// for JSON gets every failure as JSON with the same status (see
/// [`as_json`]).
pub(crate) async fn error_pages(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let wants_json = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let seen = SeenUser::default();
    request.extensions_mut().insert(seen.clone());
    let session = auth::session_token(request.headers());
    let mut response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if status.is_client_error() && plain && response.extensions().get::<ErrorMessage>().is_none() {
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap_or_default();
        let detail = String::from_utf8_lossy(&body);
        response = if detail.starts_with("Invalid URL") {
            AppError::NotFound.into_response()
        } else {
            AppError::BadRequest(format!(
                "The request could not be read ({detail}). Reload the page and try again."
            ))
            .into_response()
        };
    }
    if wants_json {
        return as_json(response);
    }
    let Some(error) = response.extensions().get::<ErrorMessage>().cloned() else {
        return response;
    };
    if response.status().is_redirection() {
        return response;
    }
    // The handler usually looked the user up already; otherwise (an
    // unknown path, an unreadable request) once here.
    let user = match (seen.get(), session) {
        (Some(user), _) => Some(user.clone()),
        (None, Some(token)) => auth::user_of_token(&state, &token).await.ok().flatten(),
        (None, None) => None,
    };
    let Some(user) = user else {
        return response;
    };
    let page = ErrorPageWithNav {
        l: Layout::of(&user),
        title: title_of(error.status),
        message: &error.message,
    };
    match page.render() {
        Ok(html) => with_body(response, error.status, "text/html; charset=utf-8", html),
        Err(_) => response,
    }
}

/// The answer for a script that asked for JSON: `{"error": "..."}` with the
/// status of the failure (401 where a browser would be sent to the login
/// page), plus `"fields"` for a form with mistakes. Successes, and JSON
/// the handler wrote itself, pass unchanged.
fn as_json(response: Response) -> Response {
    let status = response.status();
    let (status, body) = if let Some(error) = response.extensions().get::<ErrorMessage>() {
        (error.status, serde_json::json!({ "error": error.message }))
    } else if !(status.is_client_error() || status.is_server_error()) {
        return response;
    } else if let Some(failure) = response.extensions().get::<FormFailure>() {
        (
            status,
            serde_json::json!({ "error": failure.message, "fields": failure.fields }),
        )
    } else if response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        return response;
    } else {
        (status, serde_json::json!({ "error": title_of(status) }))
    };
    with_body(response, status, "application/json", body.to_string())
}

/// `response` with another status and body; its other headers (cookies,
/// `Retry-After`) stay.
fn with_body(
    response: Response,
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response {
    let (mut parts, _) = response.into_parts();
    parts.status = status;
    parts.headers.remove(header::LOCATION);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Response::from_parts(parts, Body::from(body))
}
