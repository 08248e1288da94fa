//! Errors of the API as `application/problem+json` (RFC 9457): a status,
//! a title, what went wrong in words, and the fields of the input that
//! were wrong.

use std::time::Duration;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use left4me_app::error::OpError;
use serde::Serialize;
use utoipa::ToSchema;

/// A failed request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Problem {
    /// `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) title: String,
    pub(crate) status: u16,
    /// What went wrong and what to do, in words.
    pub(crate) detail: String,
    /// The input's mistakes, by field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) errors: Vec<FieldProblem>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct FieldProblem {
    pub(crate) field: String,
    pub(crate) message: String,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, Json(self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// An operation's failure, answered as a problem.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) OpError);

impl From<OpError> for ApiError {
    fn from(err: OpError) -> Self {
        Self(err)
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

fn with_retry_after(mut response: Response, wait: Duration) -> Response {
    // Whole seconds, rounded up: never "retry after 0".
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            OpError::NotFound | OpError::NotFoundBecause(_) => StatusCode::NOT_FOUND,
            OpError::Forbidden(_) => StatusCode::FORBIDDEN,
            OpError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            OpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            OpError::Conflict { .. } => StatusCode::CONFLICT,
            OpError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            OpError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            OpError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            OpError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let detail = match &self.0 {
            internal @ OpError::Internal { .. } => {
                tracing::error!(error = %internal.chain(), "API request failed");
                crate::observe::went_wrong()
            }
            other => other.to_string(),
        };
        let mut problem = Problem::new(status, detail);
        match self.0 {
            OpError::Invalid(fields) => {
                problem.detail = "The request has mistakes; see errors.".into();
                problem.errors = fields
                    .iter()
                    .map(|e| FieldProblem {
                        field: e.field.to_owned(),
                        message: e.message.clone(),
                    })
                    .collect();
            }
            OpError::Conflict {
                message,
                field: Some(field),
            } => {
                problem.errors.push(FieldProblem {
                    field: field.to_owned(),
                    message,
                });
            }
            OpError::Unauthenticated(_) => {
                let mut response = problem.into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return response;
            }
            OpError::TooManyAttempts { retry_after, .. } => {
                return with_retry_after(problem.into_response(), retry_after);
            }
            _ => {}
        }
        problem.into_response()
    }
}

/// axum answers what its extractors cannot read (malformed JSON, a path
/// id that is no number) in plain text: the API says it as a problem.
pub(crate) async fn problems_only(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let detail = String::from_utf8_lossy(&body).into_owned();
    let (status, detail) = if detail.starts_with("Invalid URL") {
        (StatusCode::NOT_FOUND, "No such resource.".to_owned())
    } else if detail.is_empty() {
        (
            status,
            status.canonical_reason().unwrap_or("Error").to_owned(),
        )
    } else {
        (status, detail)
    };
    Problem::new(status, detail).into_response()
}
