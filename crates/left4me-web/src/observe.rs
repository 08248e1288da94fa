//! Every request runs in a tracing span with an id of its own: the id is
//! in every log line the request causes, in its `X-Request-Id` answer
//! header and in the message of an error page, so "something went wrong
//! (id 4f2a…)" leads to its log lines. Each answer is counted in the
//! metrics by method, route pattern and status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::state::AppState;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being answered, if any.
pub(crate) fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// What an answer says of a failure it does not explain: where the
/// details are.
pub(crate) fn went_wrong() -> String {
    match request_id() {
        Some(id) => format!(
            "Something went wrong on the server (id {id}). The panel's log has the details under that id."
        ),
        None => "Something went wrong on the server. The details are in the panel's log.".into(),
    }
}

/// The method as a metrics label: the standard ones, else `other`, so a
/// client inventing methods cannot make a series each.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn new_id() -> String {
    let mut bytes = [0u8; 8];
    // Without randomness the id is only less unique, never wrong.
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) async fn observe(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let id = new_id();
    let method = method_label(request.method());
    // The pattern, never the path: ids in paths would make a series each.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!("request", id = %id, method = %request.method(), route = %route);
    let started = Instant::now();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    state
        .app()
        .metrics()
        .http_request(method, &route, status, took);
    span.in_scope(|| tracing::debug!(status, micros = took.as_micros(), "answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failure_names_the_request_it_happened_in() {
        let said = REQUEST_ID
            .scope("4f2a00000000beef".into(), async { went_wrong() })
            .await;
        assert!(said.contains("(id 4f2a00000000beef)"), "{said}");
        assert!(!went_wrong().contains("(id"), "outside a request");
    }

    #[test]
    fn invented_methods_share_one_label() {
        let invented = axum::http::Method::from_bytes(b"FOO1").unwrap();
        assert_eq!(method_label(&invented), "other");
        assert_eq!(method_label(&axum::http::Method::POST), "POST");
    }
}
