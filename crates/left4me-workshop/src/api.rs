//! The Steam Web API calls Workshop overlays need (no API key):
//! `ISteamRemoteStorage/GetPublishedFileDetails/v1` and
//! `GetCollectionDetails/v1`, batched, with bounded retries.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::BackoffBuilder;
use left4me_host::events::Ctx;
use serde::Deserialize;

use crate::id::WorkshopId;

/// Left 4 Dead 2's app id on the Workshop.
pub const L4D2_APP: u32 = 550;

/// Steam answers at most this many ids per call.
pub const BATCH: usize = 100;

/// How the client talks to Steam.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// `https://api.steampowered.com`, or a mirror or test stand-in.
    pub base_url: String,
    /// Waits before retrying a 429, a 5xx or a network failure: the first,
    /// doubling after that.
    pub first_retry: Duration,
    /// Retries after the first attempt.
    pub retries: usize,
    /// The longest a connection may stay silent.
    pub timeout: Duration,
}

impl ApiSettings {
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            first_retry: Duration::from_secs(2),
            retries: 4,
            timeout: Duration::from_secs(30),
        }
    }
}

/// A call that did not get an answer worth reading.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Steam could not be reached at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Steam answered {status} at {url}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error("Steam's answer from {url} could not be read")]
    Malformed {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("cancelled")]
    Cancelled,
}

impl ApiError {
    /// Worth another try: rate limits, server trouble, the network.
    fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => {
                *status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            Self::Malformed { .. } | Self::Cancelled => false,
        }
    }
}

/// One item as `GetPublishedFileDetails` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ItemDetails {
    #[serde(rename = "publishedfileid", deserialize_with = "number_or_string")]
    pub id: u64,
    /// 1 found; 9 not found, private or deleted.
    pub result: i32,
    #[serde(default, rename = "consumer_app_id")]
    pub app_id: u32,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub filename: String,
    #[serde(default, deserialize_with = "number_or_string")]
    pub file_size: u64,
    #[serde(default)]
    pub file_url: String,
    #[serde(default)]
    pub preview_url: String,
    #[serde(default)]
    pub time_updated: u64,
    #[serde(default, deserialize_with = "flag")]
    pub banned: bool,
}

/// Why an item cannot be part of an overlay, whatever happens later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemProblem {
    #[error("item {0} was not found: it is private, deleted or never existed")]
    NotFound(u64),
    #[error("item {id} ({title}) is for app {app}, not Left 4 Dead 2 (550)")]
    OtherApp { id: u64, title: String, app: u32 },
    #[error("item {id} ({title}) is banned on the Workshop")]
    Banned { id: u64, title: String },
}

impl ItemDetails {
    /// What rules the item out, if anything.
    pub fn problem(&self) -> Option<ItemProblem> {
        if self.result != 1 {
            Some(ItemProblem::NotFound(self.id))
        } else if self.app_id != L4D2_APP {
            Some(ItemProblem::OtherApp {
                id: self.id,
                title: self.title.clone(),
                app: self.app_id,
            })
        } else if self.banned {
            Some(ItemProblem::Banned {
                id: self.id,
                title: self.title.clone(),
            })
        } else {
            None
        }
    }

    /// The URL of the `.vpk` itself, when Steam gives one. Items kept on
    /// Steam's content system have none, or the preview image's.
    pub fn direct_url(&self) -> Option<&str> {
        let direct = !self.file_url.is_empty()
            && self.file_url != self.preview_url
            && self.filename.to_ascii_lowercase().ends_with(".vpk");
        direct.then_some(self.file_url.as_str())
    }

    /// What changes when the author uploads a new file.
    pub fn revision(&self) -> u64 {
        self.time_updated
    }
}

/// One entry of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Child {
    #[serde(rename = "publishedfileid", deserialize_with = "number_or_string")]
    pub id: u64,
    /// 0 an item, 2 a nested collection.
    #[serde(default)]
    pub filetype: u32,
}

impl Child {
    pub fn is_collection(&self) -> bool {
        self.filetype == 2
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    response: T,
}

/// For the fuzz targets: a Steam Web API answer read as details and as
/// collections, and what the panel asks of each item. Whatever the bytes,
/// this returns.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn fuzz_answers(json: &[u8]) {
    if let Ok(details) = serde_json::from_slice::<Envelope<DetailsResponse>>(json) {
        for item in &details.response.publishedfiledetails {
            let _ = (item.problem(), item.direct_url(), item.revision());
        }
    }
    if let Ok(collections) = serde_json::from_slice::<Envelope<CollectionsResponse>>(json) {
        for c in &collections.response.collectiondetails {
            let _ = c.children.iter().map(Child::is_collection).count();
        }
    }
}

#[derive(Deserialize)]
struct DetailsResponse {
    #[serde(default)]
    publishedfiledetails: Vec<ItemDetails>,
}

#[derive(Deserialize)]
struct CollectionsResponse {
    #[serde(default)]
    collectiondetails: Vec<CollectionDetails>,
}

#[derive(Deserialize)]
struct CollectionDetails {
    #[serde(rename = "publishedfileid", deserialize_with = "number_or_string")]
    id: u64,
    result: i32,
    #[serde(default)]
    children: Vec<Child>,
}

/// The Steam Web API client. Counts its calls, so callers and benchmarks
/// can see what a refresh cost.
///
/// Its methods block: they run the async client on the runtime given at
/// construction, so they are for blocking threads (`spawn_blocking`),
/// where builds run next to the host's other blocking work.
#[derive(Debug)]
pub struct SteamApi {
    settings: ApiSettings,
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    calls: AtomicU64,
}

impl SteamApi {
    pub fn new(
        settings: ApiSettings,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("left4me/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // Per read: a download may take long, a silent one may not.
            .read_timeout(settings.timeout)
            .build()?;
        Ok(Self {
            settings,
            client,
            runtime,
            calls: AtomicU64::new(0),
        })
    }

    /// The HTTP client, shared with downloads.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Waits for `future` on the client's runtime. Pass an `async` block
    /// that makes the request: reqwest needs the runtime when it starts
    /// one, and the block starts it inside.
    pub(crate) fn wait<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Enters the client's runtime on this thread, for as long as the
    /// guard lives: responses kept between waits need it when dropped.
    pub(crate) fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.runtime.enter()
    }

    pub fn settings(&self) -> &ApiSettings {
        &self.settings
    }

    /// Calls made so far (each retry counts).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Details of every id, in order, [`BATCH`] ids per call.
    pub fn details(&self, ids: &[WorkshopId], ctx: &Ctx<'_>) -> Result<Vec<ItemDetails>, ApiError> {
        let mut all = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH) {
            let answer: DetailsResponse =
                self.post("GetPublishedFileDetails", "itemcount", chunk, ctx)?;
            all.extend(answer.publishedfiledetails);
        }
        Ok(all)
    }

    /// The children of those ids that are collections with children;
    /// anything else (an item, an unknown id, an empty collection) is
    /// absent from the answer.
    pub fn collections(
        &self,
        ids: &[WorkshopId],
        ctx: &Ctx<'_>,
    ) -> Result<BTreeMap<u64, Vec<Child>>, ApiError> {
        let mut found = BTreeMap::new();
        for chunk in ids.chunks(BATCH) {
            let answer: CollectionsResponse =
                self.post("GetCollectionDetails", "collectioncount", chunk, ctx)?;
            for c in answer.collectiondetails {
                if c.result == 1 && !c.children.is_empty() {
                    found.insert(c.id, c.children);
                }
            }
        }
        Ok(found)
    }

    fn post<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        count_key: &str,
        ids: &[WorkshopId],
        ctx: &Ctx<'_>,
    ) -> Result<T, ApiError> {
        let url = format!(
            "{}/ISteamRemoteStorage/{method}/v1/",
            self.settings.base_url
        );
        let mut form = vec![(count_key.to_owned(), ids.len().to_string())];
        form.extend(
            ids.iter()
                .enumerate()
                .map(|(i, id)| (format!("publishedfileids[{i}]"), id.to_string())),
        );
        let _runtime = self.enter();
        let attempt = || {
            ctx.check().map_err(|_| ApiError::Cancelled)?;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let response = self
                .wait(async {
                    self.client
                        .post(&url)
                        .timeout(self.settings.timeout)
                        .form(&form)
                        .send()
                        .await
                })
                .map_err(|source| ApiError::Unreachable {
                    url: url.clone(),
                    source,
                })?;
            let status = response.status();
            if !status.is_success() {
                return Err(ApiError::Status {
                    url: url.clone(),
                    status,
                });
            }
            self.wait(response.json::<Envelope<T>>())
                .map(|e| e.response)
                .map_err(|source| ApiError::Malformed {
                    url: url.clone(),
                    source,
                })
        };
        retry(&self.backoff(), ctx, ApiError::is_transient, attempt)
    }

    /// The retry schedule, shared with downloads.
    pub fn backoff(&self) -> backon::ExponentialBuilder {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.settings.first_retry)
            .with_max_delay(self.settings.first_retry * 16)
            .with_max_times(self.settings.retries)
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the schedule
/// runs out; each wait is said in the log and ends early on cancel.
pub(crate) fn retry<T, E: std::fmt::Display>(
    schedule: &backon::ExponentialBuilder,
    ctx: &Ctx<'_>,
    is_transient: impl Fn(&E) -> bool,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut waits = schedule.build();
    loop {
        match attempt() {
            Err(e) if is_transient(&e) && !ctx.is_cancelled() => {
                let Some(wait) = waits.next() else {
                    return Err(e);
                };
                ctx.emit(left4me_host::events::Event::Stderr(format!(
                    "{e}; trying again in {:.1} s",
                    wait.as_secs_f64()
                )));
                // A cancel ends the wait; the next attempt sees it.
                let _ = ctx.sleep(wait);
            }
            other => return other,
        }
    }
}

/// Steam writes ids and sizes as strings; accept numbers too.
fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Number(n) => Ok(n),
        Raw::Text(t) if t.is_empty() => Ok(0),
        Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
    }
}

/// `banned` arrives as 0/1 (and as a boolean in some answers).
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Number(u64),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Bool(b) => b,
        Raw::Number(n) => n != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_steams_answer_shapes() {
        let text = r#"{"response":{"result":1,"resultcount":2,"publishedfiledetails":[
            {"publishedfileid":"123","result":1,"consumer_app_id":550,"title":"Map",
             "filename":"myl4d2addons/map.vpk","file_size":"4096","file_url":"https://cdn/x",
             "preview_url":"https://cdn/p.png","time_updated":1700000000,"banned":0,"tags":[]},
            {"publishedfileid":"9","result":9}]}}"#;
        let details: Envelope<DetailsResponse> = serde_json::from_str(text).unwrap();
        let [found, missing] = &details.response.publishedfiledetails[..] else {
            panic!("two entries")
        };
        assert_eq!(found.file_size, 4096);
        assert_eq!(found.direct_url(), Some("https://cdn/x"));
        assert_eq!(found.problem(), None);
        assert_eq!(missing.problem(), Some(ItemProblem::NotFound(9)));
    }

    #[test]
    fn only_a_vpk_url_that_is_not_the_preview_is_direct() {
        let item = |file_url: &str, filename: &str| ItemDetails {
            id: 1,
            result: 1,
            app_id: L4D2_APP,
            title: "t".into(),
            filename: filename.into(),
            file_size: 1,
            file_url: file_url.into(),
            preview_url: "https://cdn/p.png".into(),
            time_updated: 1,
            banned: false,
        };
        assert!(item("https://cdn/f", "a.VPK").direct_url().is_some());
        assert!(item("", "a.vpk").direct_url().is_none());
        assert!(item("https://cdn/p.png", "a.vpk").direct_url().is_none());
        assert!(item("https://cdn/f", "a.bin").direct_url().is_none());
        let other = ItemDetails {
            app_id: 730,
            ..item("https://cdn/f", "a.vpk")
        };
        assert!(other.problem().unwrap().to_string().contains("app 730"));
    }
}
