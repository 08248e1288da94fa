//! The one error type at the HTTP edge: it logs what went wrong in detail
//! and shows the user a page that says what to do.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use left4me_store::StoreError;

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
    #[error("{0}")]
    TooManyRequests(String),
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
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
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
        match err {
            left4me_files::FilesError::Io { .. } => AppError::Internal(err.to_string()),
            left4me_files::FilesError::AlreadyExists(_) => AppError::Conflict(err.to_string()),
            left4me_files::FilesError::FileTooLarge { .. }
            | left4me_files::FilesError::ZipTooLarge { .. } => {
                AppError::PayloadTooLarge(err.to_string())
            }
            other => AppError::BadRequest(other.to_string()),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(err: askama::Error) -> Self {
        Self::Internal(format!("rendering a page: {err}"))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
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
                "Something went wrong on the server. The details are in the panel's log.".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = if let Self::LoginRequired = self {
            Redirect::to("/login").into_response()
        } else {
            let title = status.canonical_reason().unwrap_or("Error");
            let page = ErrorPage {
                title,
                message: &message,
            };
            match page.render() {
                Ok(html) => (status, Html(html)).into_response(),
                Err(_) => (status, message.clone()).into_response(),
            }
        };
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
/// was malformed), and an unreadable id is "not found" like any other. A script that asked for JSON gets
/// errors as `{"error": "..."}` with the same status (401 where a browser
/// would be sent to the login page).
pub(crate) async fn error_pages(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let wants_json = request
        .headers()
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let mut response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
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
    match response.extensions().get::<ErrorMessage>() {
        Some(error) if wants_json => (
            error.status,
            axum::Json(serde_json::json!({ "error": error.message })),
        )
            .into_response(),
        _ => response,
    }
}
