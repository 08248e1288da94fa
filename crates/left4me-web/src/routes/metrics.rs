//! `/metrics` in Prometheus' text format: on the metrics listener for
//! anyone who reaches it, on the panel's address for an admin's token.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use left4me_app::metrics::CONTENT_TYPE;

use crate::api::auth::ApiUser;
use crate::api::problem::ApiError;
use crate::state::AppState;

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// On the panel's address (`metrics_on_panel`).
pub(crate) async fn on_panel(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Response, ApiError> {
    Ok(text(
        left4me_app::ops::metrics::scrape_as(state.app(), &user).await?,
    ))
}

/// On the metrics listener (`metrics_listen`).
pub(crate) async fn on_own_address(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(text(left4me_app::ops::metrics::scrape(state.app()).await?))
}

/// The metrics listener's router: `/metrics` and nothing else.
pub(crate) fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(on_own_address))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::observe::observe,
        ))
        .with_state(state)
}
