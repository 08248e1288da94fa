//! The HTTP surface: one module per area.

mod account;
mod activity;
mod backups;
mod blueprints;
mod console;
mod game;
mod jobs;
pub(crate) mod metrics;
mod overlays;
mod schedules;
mod scripts;
mod server_files;
mod server_log;
mod servers;
mod session;
mod users;
mod workshop;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use left4me_app::error::OpError;

use crate::pages::FormErrors;
use crate::state::AppState;

pub(crate) fn router(state: AppState) -> Router {
    // The handler enforces the configured limit per file; this only keeps
    // the multipart reader from refusing large bodies early.
    let upload_body_limit = usize::try_from(state.app().config().upload_limit_bytes())
        .unwrap_or(usize::MAX)
        .saturating_add(1024 * 1024);
    Router::new()
        .route("/health", get(health))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .route("/setup", get(session::setup_page).post(session::setup))
        .route("/login", get(session::login_page).post(session::login))
        .route(
            "/login/second-factor",
            get(session::second_factor_page).post(session::second_factor),
        )
        .route("/login/passkey", post(session::passkey))
        .route("/login/passkey/options", post(session::passkey_options))
        .route("/logout", post(session::logout))
        .route("/", get(servers::dashboard))
        .route("/servers", post(servers::create))
        .route("/servers/{id}", get(servers::show))
        .route("/servers/{id}/action", post(servers::action))
        .route("/servers/{id}/settings", post(servers::settings))
        .route("/servers/{id}/members", post(servers::member))
        .route(
            "/blueprints",
            get(blueprints::index).post(blueprints::create),
        )
        .route(
            "/blueprints/{id}",
            get(blueprints::show).post(blueprints::save),
        )
        .route("/blueprints/{id}/preview", post(blueprints::preview))
        .route("/blueprints/{id}/delete", post(blueprints::delete))
        .route("/blueprints/{id}/copy", post(blueprints::copy))
        .route("/blueprints/{id}/share", post(blueprints::share))
        .route("/overlays", get(overlays::index).post(overlays::create))
        .route("/overlays/examples", post(overlays::add_examples))
        .route("/overlays/{id}", get(overlays::show))
        .route(
            "/overlays/{id}/upload",
            post(overlays::upload).layer(DefaultBodyLimit::max(upload_body_limit)),
        )
        .route("/overlays/{id}/mkdir", post(overlays::mkdir))
        .route("/overlays/{id}/move", post(overlays::rename))
        .route("/overlays/{id}/remove", post(overlays::remove))
        .route("/overlays/{id}/download", get(overlays::download))
        .route("/overlays/{id}/zip", get(overlays::zip))
        .route(
            "/overlays/{id}/edit",
            get(overlays::edit_page).post(overlays::edit),
        )
        .route("/overlays/{id}/delete", post(overlays::delete))
        .route("/overlays/{id}/share", post(overlays::share))
        .route("/overlays/{id}/items", post(workshop::add))
        .route("/overlays/{id}/items/remove", post(workshop::remove))
        .route("/overlays/{id}/refresh", post(workshop::refresh))
        .route("/overlays/{id}/script", post(scripts::save))
        .route("/overlays/{id}/rebuild", post(scripts::rebuild))
        .route("/workshop/refresh", post(workshop::refresh_all))
        .route("/jobs", get(jobs::index))
        .route("/jobs/{id}", get(jobs::show))
        .route("/jobs/{id}/events", get(jobs::events))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route(
            "/servers/{id}/console",
            get(console::page).post(console::execute),
        )
        .route("/servers/{id}/files", get(server_files::browse))
        .route("/servers/{id}/files/download", get(server_files::download))
        .route("/servers/{id}/log", get(server_log::page))
        .route("/servers/{id}/log/events", get(server_log::events))
        .route(
            "/servers/{id}/schedules",
            get(schedules::of_server).post(schedules::create_for_server),
        )
        .route(
            "/schedules",
            get(schedules::of_panel).post(schedules::create_for_panel),
        )
        .route("/schedules/{id}", post(schedules::change))
        .route("/schedules/{id}/run", post(schedules::run))
        .route("/schedules/{id}/delete", post(schedules::delete))
        .route("/backups", get(backups::page).post(backups::back_up))
        .route("/backups/check", post(backups::check))
        .route("/backups/{id}/restore", post(backups::restore_server))
        .route(
            "/backups/{id}/restore-overlay",
            post(backups::restore_overlay),
        )
        .route("/activity", get(activity::all))
        .route("/servers/{id}/activity", get(activity::of_server))
        .route("/game", get(game::page))
        .route("/game/{action}", post(game::action))
        .route("/users", get(users::index).post(users::create))
        .route("/users/{id}/active", post(users::set_active))
        .route("/users/{id}/delete", post(users::delete))
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route("/account/confirm", post(account::confirm))
        .route("/account/totp", post(account::begin_totp))
        .route("/account/totp/confirm", post(account::confirm_totp))
        .route("/account/totp/remove", post(account::remove_totp))
        .route("/account/recovery-codes", post(account::new_recovery_codes))
        .route("/account/passkeys", post(account::add_passkey))
        .route("/account/passkeys/options", post(account::passkey_options))
        .route(
            "/account/passkeys/{id}/remove",
            post(account::remove_passkey),
        )
        .route("/account/passkeys/sign-in", post(account::passkey_sign_in))
        .route("/account/sessions/{id}/end", post(account::end_session))
        .route("/users/{id}/sessions/end", post(users::end_sessions))
        .route("/users/second-factor-policy", post(users::set_policy))
        .route(
            "/users/{id}/second-factor/reset",
            post(users::reset_second_factor),
        )
        .route("/account/tokens", post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .fallback(crate::error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::csrf_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::second_factor_gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::error::error_pages,
        ))
        // Not behind the pages' CSRF form check and error pages: the API
        // and the metrics check their own callers and answer in
        // problem+json.
        .nest("/api/v1", crate::api::router())
        .route("/metrics", get(metrics::on_panel))
        .layer(header_layer(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header_layer(header::REFERRER_POLICY, "same-origin"))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::observe::observe,
        ))
        .with_state(state)
}

/// The share button of an overlay or blueprint.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ShareForm {
    /// "true" shares, anything else takes the share back.
    #[serde(default)]
    shared: String,
}

/// Shares an overlay or blueprint with everyone, or takes the share back.
async fn share(
    state: &AppState,
    user: &crate::auth::CurrentUser,
    item: left4me_store::SharedItem,
    id: i64,
    form: &ShareForm,
) -> crate::error::AppResult<axum::response::Response> {
    let shared = form.shared == "true";
    left4me_app::ops::sharing::set_shared(state.app(), user, item, id, shared).await?;
    let back = format!("/{}s/{id}", item.noun());
    Ok(axum::response::Redirect::to(&back).into_response())
}

/// The status a form shown again with its mistakes answers with, and the
/// mistakes by field; other failures are no form's business.
pub(crate) fn form_failure(error: OpError) -> Result<(StatusCode, FormErrors), OpError> {
    match error {
        OpError::Invalid(fields) => Ok((StatusCode::UNPROCESSABLE_ENTITY, fields.into())),
        OpError::Conflict {
            message,
            field: Some(field),
        } => {
            let mut errors = FormErrors::default();
            errors.add(field, message);
            Ok((StatusCode::CONFLICT, errors))
        }
        other => Err(other),
    }
}

/// Scripts and styles come only from the panel's own files (no inline
/// script, style or `javascript:` URL anywhere), and no other site may
/// frame a page or receive a form.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// Sets a security header on every answer: pages, errors, redirects,
/// static files, streams and downloads alike (the outermost layers).
fn header_layer(
    name: header::HeaderName,
    value: &'static str,
) -> tower_http::set_header::SetResponseHeaderLayer<axum::http::HeaderValue> {
    tower_http::set_header::SetResponseHeaderLayer::overriding(
        name,
        axum::http::HeaderValue::from_static(value),
    )
}

/// Checks the database answers and the state root is there.
async fn health(State(state): State<AppState>) -> impl IntoResponse {
    match left4me_app::ops::health::check(state.app()).await {
        Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
        Err(problem) => (StatusCode::SERVICE_UNAVAILABLE, format!("{problem}\n")),
    }
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/app.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/app.js"),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// The CSP forbids inline script and style: no template may need them.
    #[test]
    fn templates_have_no_inline_script_style_or_handlers() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let html = std::fs::read_to_string(&path).unwrap().to_lowercase();
            for tag in html.split('<').skip(1) {
                let tag = tag.split('>').next().unwrap_or_default();
                let inline_script = tag.starts_with("script") && !tag.contains(" src=");
                let handler = tag
                    .split_whitespace()
                    .any(|a| a.starts_with("on") && a.contains('='));
                assert!(
                    !inline_script
                        && !handler
                        && !tag.starts_with("style")
                        && !tag.contains(" style=")
                        && !tag.contains("javascript:"),
                    "{}: <{tag}>",
                    path.display()
                );
            }
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} templates found in {dir}");
    }

    /// What a form brought in shows in `Debug` (handlers may log it), but
    /// never its passwords or tokens.
    #[test]
    fn forms_holding_secrets_do_not_show_them() {
        let login: super::session::LoginForm = serde_json::from_value(
            json!({"csrf": "csrf-value", "username": "alice", "password": "login-secret"}),
        )
        .unwrap();
        let setup: super::session::SetupForm = serde_json::from_value(json!({
            "token": "setup-token", "csrf": "csrf-value", "username": "alice",
            "password": "setup-secret", "confirm": "setup-secret"
        }))
        .unwrap();
        let query: super::session::SetupQuery =
            serde_json::from_value(json!({"token": "setup-token"})).unwrap();
        let account: left4me_app::ops::users::PasswordInput = serde_json::from_value(
            json!({"current": "old-secret", "password": "new-secret", "confirm": "new-secret"}),
        )
        .unwrap();
        let user: left4me_app::ops::users::NewUserInput =
            serde_json::from_value(json!({"username": "bob", "password": "bob-secret"})).unwrap();
        let shown = format!("{login:?} {setup:?} {query:?} {account:?} {user:?}");
        for secret in [
            "csrf-value",
            "login-secret",
            "setup-token",
            "setup-secret",
            "old-secret",
            "new-secret",
            "bob-secret",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("alice") && shown.contains("bob"), "{shown}");
    }
}
