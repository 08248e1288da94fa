//! The activity log: everyone's actions for admins, a server's for its owner.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use left4me_store::ActivityFilter;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::pages::{ActivityPage, Layout, render};
use crate::state::AppState;

const PAGE: i64 = 50;

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
    server: Option<(i64, String)>,
    query: ActivityQuery,
) -> AppResult<Response> {
    let filter = ActivityFilter {
        server_id: server.as_ref().map(|s| s.0),
        kind: Some(query.kind.clone()).filter(|k| !k.is_empty()),
        actor: Some(query.actor.clone()).filter(|a| !a.is_empty()),
        before: query.before,
    };
    let entries = state.store().activity(&filter, PAGE + 1).await?;
    let more = entries.len() > usize::try_from(PAGE).unwrap_or(usize::MAX);
    let entries: Vec<_> = entries
        .into_iter()
        .take(usize::try_from(PAGE).unwrap_or(usize::MAX))
        .collect();
    let base = match &server {
        Some((id, _)) => format!("/servers/{id}/activity"),
        None => "/activity".to_owned(),
    };
    let older = more.then(|| {
        let before = entries.last().map_or(0, |e| e.id).to_string();
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
        title: server.map_or("Activity".to_owned(), |(_, name)| {
            format!("Activity of {name}")
        }),
        base,
        kinds: state.store().activity_kinds(filter.server_id).await?,
        kind: query.kind,
        actor: query.actor,
        entries,
        older,
    };
    Ok(render(&page)?.into_response())
}

pub(crate) async fn all(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ActivityQuery>,
) -> AppResult<Response> {
    user.require_admin()?;
    page(&state, &user, None, query).await
}

pub(crate) async fn of_server(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<ActivityQuery>,
) -> AppResult<Response> {
    let server = crate::access::server(&state, &user, id, crate::access::ServerAction::Activity)
        .await?
        .server;
    page(&state, &user, Some((server.id, server.name)), query).await
}
