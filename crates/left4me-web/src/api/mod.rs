//! `/api/v1`: the panel as JSON, over the same operations as the pages.
//! Its OpenAPI document is generated from these handlers (utoipa), so it
//! cannot drift from them.

mod account;
mod activity;
pub(crate) mod auth;
mod backups;
mod blueprints;
mod game;
mod jobs;
mod overlay_files;
mod overlays;
pub(crate) mod problem;
mod schedules;
mod servers;
mod users;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::Html;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::openapi::content::{Content, ContentBuilder};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi, Ref, RefOr};
use utoipa::{IntoParams, Modify, OpenApi as _};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use problem::Problem;

use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "left4me",
        description = "Left 4 Dead 2 servers on one host. Every call acts as the user of its API \
            token (`Authorization: Bearer l4m_…`, made on the account page) within the token's \
            scopes: `read`, `operate` (start, stop, restart, console, cancel), `manage` \
            (create, change, delete) and `admin`. Errors are `application/problem+json` \
            (RFC 9457); the fields of a rejected input are in `errors`. Long work answers \
            202 with the job; follow it at `/api/v1/jobs/{id}/events` (server-sent events)."
    ),
    tags((name = "servers"), (name = "jobs"), (name = "blueprints"), (name = "overlays"),
        (name = "overlay files"), (name = "game"), (name = "activity"), (name = "users"),
        (name = "schedules", description = "What servers and the panel do by themselves."),
        (name = "backups", description = "The panel's backups, with restic (admins)."),
        (name = "account", description = "Only from a signed-in browser session."))
)]
struct ApiDoc;

/// The bearer token scheme every call may use.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "token",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// Every failure is `application/problem+json`, and any call may meet the
/// failures every handler shares (an unreadable request, no or a wrong
/// token, guessing slowed down): said once here for all operations.
struct ProblemResponses;

impl ProblemResponses {
    const TYPE: &str = "application/problem+json";

    fn response(description: &str) -> RefOr<Response> {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    Self::TYPE,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build(),
        )
    }
}

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                for response in responses.values_mut() {
                    // A `Problem` body goes out as problem+json: say so.
                    if let RefOr::T(response) = response
                        && response
                            .content
                            .get("application/json")
                            .is_some_and(is_problem)
                        && let Some(problem) = response.content.shift_remove("application/json")
                    {
                        response.content.insert(Self::TYPE.to_owned(), problem);
                    }
                }
                let mut shared = vec![
                    (
                        "400",
                        "The request could not be read (a query or path parameter).",
                    ),
                    (
                        "401",
                        "No API token, or an unknown, expired or revoked one.",
                    ),
                    (
                        "429",
                        "Too many failed tokens from this address: wait Retry-After seconds.",
                    ),
                ];
                if operation.security.is_some() {
                    shared.push((
                        "403",
                        "The token lacks a scope this needs, or the admins require a second \
                         factor the caller has not set up.",
                    ));
                }
                if operation.parameters.iter().flatten().next().is_some() {
                    shared.push(("404", "No such thing, or not the caller's to see."));
                }
                // Raw uploads take any content type and have no fields.
                let json_body = operation
                    .request_body
                    .as_ref()
                    .is_some_and(|body| match body {
                        RefOr::T(body) => body.content.contains_key("application/json"),
                        RefOr::Ref(_) => true,
                    });
                if json_body {
                    shared.push(("415", "The body is not sent as application/json."));
                    shared.push(("422", "The body has mistakes; see errors."));
                }
                for (status, description) in shared {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| Self::response(description));
                }
            }
        }
    }
}

/// Whether a response body is the `Problem` schema.
fn is_problem(content: &RefOr<Content>) -> bool {
    matches!(content, RefOr::T(c) if matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem")))
}

/// The API's routes and its OpenAPI document, from the same handlers.
fn parts() -> (axum::Router<AppState>, OpenApi) {
    let (routes, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(servers::list, servers::create))
        .routes(routes!(servers::show, servers::change, servers::delete))
        .routes(routes!(servers::act))
        .routes(routes!(servers::console_history, servers::run_command))
        .routes(routes!(servers::log))
        .routes(routes!(servers::files))
        .routes(routes!(servers::file))
        .routes(routes!(servers::set_member, servers::remove_member))
        .routes(routes!(jobs::list))
        .routes(routes!(jobs::show))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::events))
        .routes(routes!(blueprints::list, blueprints::create))
        .routes(routes!(
            blueprints::show,
            blueprints::save,
            blueprints::delete
        ))
        .routes(routes!(blueprints::copy))
        .routes(routes!(blueprints::preview))
        .routes(routes!(blueprints::share))
        .routes(routes!(game::show))
        .routes(routes!(game::queue))
        .routes(routes!(activity::all))
        .routes(routes!(activity::of_server))
        .routes(routes!(overlays::list, overlays::create))
        .routes(routes!(overlays::show, overlays::delete))
        .routes(routes!(overlays::share))
        .routes(routes!(overlays::add_items))
        .routes(routes!(overlays::remove_item))
        .routes(routes!(overlays::refresh))
        .routes(routes!(overlays::refresh_all))
        .routes(routes!(overlays::save_script))
        .routes(routes!(overlays::rebuild))
        .routes(routes!(overlays::add_examples))
        .routes(routes!(overlay_files::list))
        .routes(routes!(
            overlay_files::download,
            overlay_files::put,
            overlay_files::remove
        ))
        .routes(routes!(overlay_files::mkdir))
        .routes(routes!(overlay_files::rename))
        .routes(routes!(overlay_files::archive, overlay_files::unpack))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::set_active))
        .routes(routes!(users::delete))
        .routes(routes!(account::tokens, account::create_token))
        .routes(routes!(account::revoke_token))
        .routes(routes!(account::change_password))
        .routes(routes!(account::confirm))
        .routes(routes!(account::sessions))
        .routes(routes!(account::end_session))
        .routes(routes!(users::end_sessions))
        .routes(routes!(users::reset_second_factor))
        .routes(routes!(users::policy, users::set_policy))
        .routes(routes!(schedules::of_server, schedules::create_for_server))
        .routes(routes!(schedules::of_panel, schedules::create_for_panel))
        .routes(routes!(
            schedules::show,
            schedules::change,
            schedules::delete
        ))
        .routes(routes!(schedules::run))
        .routes(routes!(backups::list, backups::back_up))
        .routes(routes!(backups::check))
        .routes(routes!(backups::restore_server))
        .routes(routes!(backups::restore_overlay))
        .split_for_parts();
    // After the routes: the modifiers work on every operation's entry.
    BearerToken.modify(&mut doc);
    ProblemResponses.modify(&mut doc);
    (routes, doc)
}

/// `/api/v1`: the routes, `openapi.json` and a readable reference page.
pub(crate) fn router() -> axum::Router<AppState> {
    let (routes, mut doc) = parts();
    doc.servers = Some(vec![utoipa::openapi::Server::new("/api/v1")]);
    let json = serde_json::to_string_pretty(&doc).unwrap_or_default();
    let reference = reference_page(&doc);
    routes
        .route(
            "/openapi.json",
            axum::routing::get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    json,
                )
            }),
        )
        .route(
            "/",
            axum::routing::get(move || async move { Html(reference) }),
        )
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "No such resource.") })
        .layer(axum::middleware::from_fn(problem::problems_only))
}

/// The reference page: every operation with its method, path, summary and
/// the scope it needs, from the document itself (no script, so the CSP
/// holds).
fn reference_page(doc: &OpenApi) -> String {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut rows = String::new();
    for (path, item) in &doc.paths.paths {
        let operations = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            let scopes: Vec<String> = operation
                .security
                .iter()
                .flatten()
                .flat_map(|s| serde_json::to_value(s).ok())
                .filter_map(|v| v.get("token").cloned())
                .flat_map(|v| serde_json::from_value::<Vec<String>>(v).unwrap_or_default())
                .collect();
            rows.push_str(&format!(
                "<tr><td><code>{method}</code></td><td><code>/api/v1{}</code></td><td>{}</td><td>{}</td></tr>\n",
                escape(path),
                escape(
                    operation
                        .description
                        .as_deref()
                        .or(operation.summary.as_deref())
                        .unwrap_or_default()
                ),
                escape(&scopes.join(", ")),
            ));
        }
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>left4me API</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
         <body><main><h1>left4me API</h1><p>{}</p>\
         <p>The machine-readable document: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI 3.1).</p>\
         <table><thead><tr><th>Method</th><th>Path</th><th>What it does</th><th>Token scope</th></tr></thead>\
         <tbody>{rows}</tbody></table></main></body></html>",
        escape(doc.info.description.as_deref().unwrap_or_default())
    )
}

/// A JSON body; one that cannot be read is a problem (400, or 422 when
/// it is JSON of the wrong shape), not axum's plain text.
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let status = match &rejection {
                    JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    _ => StatusCode::BAD_REQUEST,
                };
                Err(Problem::new(status, rejection.body_text()))
            }
        }
    }
}

/// Whether an overlay or a blueprint is shared with everyone.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sharing {
    shared: bool,
}

/// Which part of a list to answer with.
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Paging {
    /// At most this many items (1-200, 50 if left out).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
    /// Skip this many first.
    offset: Option<usize>,
}

impl Paging {
    const MAX: usize = 200;
    const DEFAULT: usize = 50;

    /// The page of `all`, how many there are, and the link to the next
    /// page (`base` may carry a query of its own).
    pub(crate) fn page<T>(self, all: Vec<T>, base: &str) -> (Vec<T>, usize, Option<String>) {
        let limit = self.limit.unwrap_or(Self::DEFAULT).clamp(1, Self::MAX);
        let offset = self.offset.unwrap_or(0);
        let total = all.len();
        let items: Vec<T> = all.into_iter().skip(offset).take(limit).collect();
        let next = (offset.saturating_add(limit) < total).then(|| {
            let join = if base.contains('?') { '&' } else { '?' };
            format!("{base}{join}limit={limit}&offset={}", offset + limit)
        });
        (items, total, next)
    }
}
