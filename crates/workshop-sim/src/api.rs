//! The `ISteamRemoteStorage` endpoints.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::{Entry, Fault, L4D2_APP_ID, MAX_IDS_PER_CALL, Shared, State, Storage, cdn, lock};

/// Whose steamid64 every item seems to be published by.
const CREATOR: &str = "76561197960287930";

#[derive(Clone, Copy)]
enum Call {
    Details,
    Collections,
}

pub(crate) fn router() -> Router<Shared> {
    // Steam answers with and without the trailing slash.
    Router::new()
        .route(
            "/ISteamRemoteStorage/GetPublishedFileDetails/v1/",
            post(details_call),
        )
        .route(
            "/ISteamRemoteStorage/GetPublishedFileDetails/v1",
            post(details_call),
        )
        .route(
            "/ISteamRemoteStorage/GetCollectionDetails/v1/",
            post(collections_call),
        )
        .route(
            "/ISteamRemoteStorage/GetCollectionDetails/v1",
            post(collections_call),
        )
}

async fn details_call(Extract(shared): Extract<Shared>, body: Bytes) -> Response {
    answer(&shared, Call::Details, &body)
}

async fn collections_call(Extract(shared): Extract<Shared>, body: Bytes) -> Response {
    answer(&shared, Call::Collections, &body)
}

fn answer(shared: &Shared, call: Call, body: &[u8]) -> Response {
    let mut state = lock(shared);
    state.counters.api_calls += 1;
    if let Some(status) = take_api_fault(&mut state.faults) {
        if status == StatusCode::TOO_MANY_REQUESTS {
            state.counters.rejected_429 += 1;
        } else {
            state.counters.rejected_503 += 1;
        }
        return status.into_response();
    }
    let count_key = match call {
        Call::Details => "itemcount",
        Call::Collections => "collectioncount",
    };
    let ids = match parse_ids(body, count_key) {
        Ok(ids) => ids,
        Err(reason) => {
            state.counters.bad_requests += 1;
            let page = format!(
                "<html><head><title>Bad Request</title></head><body><h1>Bad Request</h1>{reason}</body></html>"
            );
            return (StatusCode::BAD_REQUEST, Html(page)).into_response();
        }
    };
    state.counters.ids_requested += ids.len() as u64;
    let (list_key, entries): (_, Vec<Value>) = match call {
        Call::Details => {
            state.counters.details_calls += 1;
            let entries = ids.iter().map(|&id| details(&state, id)).collect();
            ("publishedfiledetails", entries)
        }
        Call::Collections => {
            state.counters.collection_calls += 1;
            let entries = ids.iter().map(|&id| collection(&state, id)).collect();
            ("collectiondetails", entries)
        }
    };
    let mut response = json!({"result": 1, "resultcount": entries.len()});
    response[list_key] = Value::Array(entries);
    Json(json!({ "response": response })).into_response()
}

/// Counts down the first rate limit or outage still pending, if any.
fn take_api_fault(faults: &mut [Fault]) -> Option<StatusCode> {
    faults.iter_mut().find_map(|fault| {
        let (n, status) = match fault {
            Fault::RateLimited(n) if *n > 0 => (n, StatusCode::TOO_MANY_REQUESTS),
            Fault::Unavailable(n) if *n > 0 => (n, StatusCode::SERVICE_UNAVAILABLE),
            _ => return None,
        };
        *n -= 1;
        Some(status)
    })
}

/// The ids of `count_key=N&publishedfileids[0]=ID...`, in index order.
fn parse_ids(body: &[u8], count_key: &str) -> Result<Vec<u64>, String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| format!("Malformed form body: {e}"))?;
    let count = pairs
        .iter()
        .find(|(k, _)| k == count_key)
        .ok_or_else(|| format!("Required parameter '{count_key}' is missing"))?;
    let count: usize = count
        .1
        .parse()
        .map_err(|_| format!("Parameter '{count_key}' is not a number"))?;
    if count == 0 || count > MAX_IDS_PER_CALL {
        return Err(format!(
            "Parameter '{count_key}' must be between 1 and {MAX_IDS_PER_CALL}"
        ));
    }
    let mut ids = vec![None; count];
    for (key, value) in &pairs {
        let Some(index) = key
            .strip_prefix("publishedfileids[")
            .and_then(|rest| rest.strip_suffix(']'))
        else {
            continue;
        };
        let slot = index
            .parse::<usize>()
            .ok()
            .and_then(|i| ids.get_mut(i))
            .ok_or_else(|| format!("Parameter '{key}' does not match '{count_key}'"))?;
        *slot = Some(
            value
                .parse::<u64>()
                .map_err(|_| format!("Parameter '{key}' is not a file id"))?,
        );
    }
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| {
            id.ok_or_else(|| format!("Required parameter 'publishedfileids[{i}]' is missing"))
        })
        .collect()
}

fn details(state: &State, id: u64) -> Value {
    let Some(entry) = state.entries.get(&id) else {
        return json!({"publishedfileid": id.to_string(), "result": 9});
    };
    let base = &state.base_url;
    match entry {
        Entry::Item {
            item,
            time_created,
            hcontent_file,
            hcontent_preview,
        } => {
            let preview_url = cdn::preview_url(base, id, *hcontent_preview);
            let file_url = match item.storage {
                Storage::Direct => cdn::file_url(base, id, *hcontent_file, &item.filename),
                Storage::PreviewAsFileUrl => preview_url.clone(),
                Storage::NoFileUrl => String::new(),
            };
            let tags: Vec<Value> = item.tags.iter().map(|t| json!({"tag": t})).collect();
            json!({
                "publishedfileid": id.to_string(),
                "result": 1,
                "creator": CREATOR,
                "creator_app_id": item.app_id,
                "consumer_app_id": item.app_id,
                "filename": item.filename,
                "file_size": item.content.size().to_string(),
                "file_url": file_url,
                "hcontent_file": hcontent_file.to_string(),
                "preview_url": preview_url,
                "hcontent_preview": hcontent_preview.to_string(),
                "title": item.title,
                "description": format!("{} for the Workshop simulator.", item.title),
                "time_created": time_created,
                "time_updated": item.time_updated,
                "visibility": 0,
                "banned": u8::from(item.banned),
                "ban_reason": "",
                "subscriptions": 120,
                "favorited": 15,
                "lifetime_subscriptions": 340,
                "lifetime_favorited": 21,
                "views": 2_048,
                "tags": tags,
            })
        }
        Entry::Collection {
            title,
            hcontent_preview,
            ..
        } => json!({
            "publishedfileid": id.to_string(),
            "result": 1,
            "creator": CREATOR,
            "creator_app_id": L4D2_APP_ID,
            "consumer_app_id": L4D2_APP_ID,
            "filename": "",
            "file_size": "0",
            "file_url": "",
            "hcontent_file": "0",
            "preview_url": cdn::preview_url(base, id, *hcontent_preview),
            "hcontent_preview": hcontent_preview.to_string(),
            "title": title,
            "description": "",
            "time_created": 1_700_000_000,
            "time_updated": 1_700_000_000,
            "visibility": 0,
            "banned": 0,
            "ban_reason": "",
            "subscriptions": 0,
            "favorited": 0,
            "lifetime_subscriptions": 0,
            "lifetime_favorited": 0,
            "views": 0,
            "tags": [],
        }),
    }
}

fn collection(state: &State, id: u64) -> Value {
    match state.entries.get(&id) {
        None => json!({"publishedfileid": id.to_string(), "result": 9}),
        // Steam leaves `children` out for empty collections too.
        Some(Entry::Collection { children, .. }) if !children.is_empty() => {
            let children: Vec<Value> = children
                .iter()
                .zip(1..)
                .map(|(child, sortorder)| {
                    json!({
                        "publishedfileid": child.id.to_string(),
                        "sortorder": sortorder,
                        "filetype": child.filetype,
                    })
                })
                .collect();
            json!({"publishedfileid": id.to_string(), "result": 1, "children": children})
        }
        Some(_) => json!({"publishedfileid": id.to_string(), "result": 1}),
    }
}
