//! The activity log: everyone's actions for admins, a server's for its owner.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use left4me_app::ops::activity;
use left4me_store::ActivityFilter;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::pages::{ActivityPage, Layout, render};
use crate::state::AppState;

const PAGE: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActivityQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    actor: String,
    before: Option<i64>,
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    server: Option<i64>,
    query: ActivityQuery,
) -> AppResult<Response> {
    let filter = ActivityFilter {
        server_id: None,
        kind: Some(query.kind.clone()).filter(|k| !k.is_empty()),
        actor: Some(query.actor.clone()).filter(|a| !a.is_empty()),
        before: query.before,
    };
    let (server, found) = activity::list(state.app(), user, server, filter, PAGE).await?;
    let base = match &server {
        Some(s) => format!("/servers/{}/activity", s.id),
        None => "/activity".to_owned(),
    };
    let older = found.more.then(|| {
        let before = found.entries.last().map_or(0, |e| e.id).to_string();
        let pairs = [
            ("kind", query.kind.as_str()),
            ("actor", query.actor.as_str()),
            ("before", &before),
        ];
        format!(
            "{base}?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    });
    let page = ActivityPage {
        l: Layout::of(user),
        title: server.map_or("Activity".to_owned(), |s| format!("Activity of {}", s.name)),
        base,
        kinds: found.kinds,
        kind: query.kind,
        actor: query.actor,
        entries: found.entries,
        older,
    };
    Ok(render(&page)?.into_response())
}

pub(crate) async fn all(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ActivityQuery>,
) -> AppResult<Response> {
    page(&state, &user, None, query).await
}

pub(crate) async fn of_server(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<ActivityQuery>,
) -> AppResult<Response> {
    page(&state, &user, Some(id), query).await
}
