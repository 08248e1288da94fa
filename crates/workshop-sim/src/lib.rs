//! A loopback stand-in for the Steam Web API's `ISteamRemoteStorage` and
//! the Steam Workshop CDN, so tests and benchmarks resolve, download and
//! update Workshop items without Steam, through the same HTTP client code
//! that talks to the real one.
//!
//! One [`WorkshopSim`] serves, on `127.0.0.1` and a free port:
//!
//! ```text
//! POST /ISteamRemoteStorage/GetPublishedFileDetails/v1/   itemcount=N&publishedfileids[0]=ID...
//! POST /ISteamRemoteStorage/GetCollectionDetails/v1/      collectioncount=N&publishedfileids[0]=ID...
//! GET  /ugc/{id}/{hcontent_file}/{basename}                an item's file (its `file_url`)
//! GET  /ugc/{id}/{hcontent_preview}/preview.png            its preview image (its `preview_url`)
//! ```
//!
//! Documented behaviour it reproduces: the `{"response": ...}` envelope
//! with one entry per requested id in request order; found items with
//! `file_size` as a string of digits and `consumer_app_id` as a number;
//! missing, private and deleted items as only `publishedfileid` and
//! `result` 9; collections that are also items (size "0", no file);
//! collection children with `filetype` 0 (item) or 2 (collection), and no
//! `children` key for an item that is not a collection or an empty
//! collection; items kept on Steam's content system, whose `file_url` is
//! empty or the preview image; VPK files starting with `34 12 AA 55`;
//! 429 and 503 answers; a new `file_url` when an item is updated.
//!
//! Assumptions, where Valve documents nothing: more than 100 ids in one
//! call, a zero count, a count that does not match the ids, and a body
//! that does not parse are answered 400 with a short HTML page, like
//! Steam's other parameter errors; extra parameters (`key`, `format`) are
//! ignored; the URL of an item's previous version answers 404; faults
//! only touch `file_url` downloads, never preview images; an item's
//! `creator_app_id` is its game, as `consumer_app_id`; an update sets
//! `time_updated` to now, or one second later if now is not later.
//!
//! Downloads are streamed, generated on the fly for [`Content::Vpk`], so
//! benchmarks can serve hundreds of MiB in constant memory, and faults
//! (slow, truncated) happen on the real TCP connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;

mod api;
mod cdn;

/// The app id of Left 4 Dead 2, whose Workshop items left4me installs.
pub const L4D2_APP_ID: u32 = 550;

/// The first bytes of every L4D2 VPK file (signature 0x55AA1234, little
/// endian).
pub const VPK_MAGIC: [u8; 4] = [0x34, 0x12, 0xAA, 0x55];

/// The most ids one call may ask about.
pub const MAX_IDS_PER_CALL: usize = 100;

/// A Workshop item: a file some player published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimItem {
    pub id: u64,
    /// The game the item is for (`consumer_app_id`).
    pub app_id: u32,
    pub title: String,
    /// As Steam reports it, often with a `myl4d2addons/` prefix.
    pub filename: String,
    pub content: Content,
    /// Unix seconds.
    pub time_updated: u64,
    pub banned: bool,
    pub storage: Storage,
    pub tags: Vec<String>,
}

impl SimItem {
    /// A L4D2 map of `size` bytes, served directly: title `Map {id}`,
    /// filename `myl4d2addons/map_{id}.vpk`, VPK content seeded by the id.
    pub fn vpk(id: u64, size: u64) -> SimItem {
        SimItem {
            id,
            app_id: L4D2_APP_ID,
            title: format!("Map {id}"),
            filename: format!("myl4d2addons/map_{id}.vpk"),
            content: Content::Vpk { size, seed: id },
            time_updated: 1_700_000_000,
            banned: false,
            storage: Storage::Direct,
            tags: vec!["Campaigns".to_owned()],
        }
    }
}

/// The bytes of an item's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// `size` bytes starting with [`VPK_MAGIC`], the rest pseudo-random
    /// and determined by `seed`; generated as they are served.
    Vpk {
        size: u64,
        seed: u64,
    },
    Bytes(Vec<u8>),
}

impl Content {
    pub fn size(&self) -> u64 {
        match self {
            Content::Vpk { size, .. } => *size,
            Content::Bytes(bytes) => bytes.len() as u64,
        }
    }

    /// All of it, for tests to compare with what was downloaded.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Content::Vpk { size, seed } => {
                let len = usize::try_from(*size).expect("content fits in memory");
                let mut buf = vec![0; len];
                cdn::fill_vpk(*seed, 0, &mut buf);
                buf
            }
            Content::Bytes(bytes) => bytes.clone(),
        }
    }
}

/// Where Steam keeps an item's file, as seen in its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// `file_url` downloads the file.
    Direct,
    /// Kept on Steam's content system: `file_url` is the preview image.
    PreviewAsFileUrl,
    /// Kept on Steam's content system: `file_url` is empty.
    NoFileUrl,
}

/// An entry of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child {
    pub id: u64,
    /// 0 for an item, 2 for a nested collection.
    pub filetype: u32,
}

impl Child {
    pub fn item(id: u64) -> Child {
        Child { id, filetype: 0 }
    }

    pub fn collection(id: u64) -> Child {
        Child { id, filetype: 2 }
    }
}

/// A misbehaviour of Steam. Several may be active at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next `n` API calls are answered 429 Too Many Requests (then normal).
    RateLimited(u32),
    /// The next `n` API calls are answered 503.
    Unavailable(u32),
    /// Downloads of this item answer 404.
    NotFound(u64),
    /// Downloads of this item send Content-Length of the full size but
    /// close the connection after `after` bytes.
    Truncated { id: u64, after: u64 },
    /// Downloads of this item are paced at this many bytes per second.
    Slow { id: u64, bytes_per_second: u64 },
    /// Downloads of this item serve a PNG image instead of the file (same URL).
    Image(u64),
}

/// What the simulator has been asked, since it started or
/// [`WorkshopSim::reset_counters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every request to an API endpoint, rejected ones included.
    pub api_calls: u64,
    /// `GetPublishedFileDetails` calls answered 200.
    pub details_calls: u64,
    /// `GetCollectionDetails` calls answered 200.
    pub collection_calls: u64,
    /// Ids asked about in calls answered 200.
    pub ids_requested: u64,
    /// API calls answered 400.
    pub bad_requests: u64,
    pub rejected_429: u64,
    pub rejected_503: u64,
    /// `file_url` downloads started (answered 200).
    pub downloads: u64,
    /// Preview image downloads.
    pub previews: u64,
    /// CDN requests answered 404.
    pub not_found: u64,
    /// Body bytes of `file_url` downloads handed to the HTTP server; a
    /// client that stops reading sees up to a socket buffer less.
    pub bytes_served: u64,
}

/// A stored item or collection, with the handles Steam gives its files.
#[derive(Debug)]
enum Entry {
    Item {
        item: SimItem,
        time_created: u64,
        hcontent_file: u64,
        hcontent_preview: u64,
    },
    Collection {
        title: String,
        children: Vec<Child>,
        hcontent_preview: u64,
    },
}

#[derive(Debug)]
struct State {
    base_url: String,
    entries: HashMap<u64, Entry>,
    faults: Vec<Fault>,
    counters: Counters,
    next_handle: u64,
}

impl State {
    /// A fresh content handle; Steam's are large numbers shown as strings.
    fn handle(&mut self) -> u64 {
        self.next_handle += 1;
        self.next_handle
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panicking test thread must not hide the state from the server.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running simulated Steam; the server stops when it is dropped.
#[derive(Debug)]
pub struct WorkshopSim {
    shared: Shared,
    server: JoinHandle<()>,
}

impl Drop for WorkshopSim {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl WorkshopSim {
    /// Binds 127.0.0.1 on a free port and serves both the API and the CDN.
    pub async fn start() -> std::io::Result<WorkshopSim> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let shared = Arc::new(Mutex::new(State {
            base_url: format!("http://{}", listener.local_addr()?),
            entries: HashMap::new(),
            faults: Vec::new(),
            counters: Counters::default(),
            next_handle: 1_000_000_000_000_000_000,
        }));
        let app = api::router()
            .merge(cdn::router())
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            // Only an accept loop failure ends this; tests then see refused connections.
            let _ = axum::serve(listener, app).await;
        });
        Ok(WorkshopSim { shared, server })
    }

    /// What left4me's `steam_api_url` is set to, e.g.
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        lock(&self.shared).base_url.clone()
    }

    /// Publishes `item`, replacing any item or collection with its id.
    pub fn add_item(&self, item: SimItem) {
        let id = item.id;
        let mut state = lock(&self.shared);
        let entry = Entry::Item {
            time_created: item.time_updated,
            hcontent_file: state.handle(),
            hcontent_preview: state.handle(),
            item,
        };
        state.entries.insert(id, entry);
    }

    /// Publishes a new version of an item: new content, a later
    /// `time_updated`, a new `hcontent_file` and so a new `file_url`.
    ///
    /// # Panics
    ///
    /// If `id` is not an item.
    pub fn update_item(&self, id: u64, content: Content) {
        let mut state = lock(&self.shared);
        let handle = state.handle();
        let Some(Entry::Item {
            item,
            hcontent_file,
            ..
        }) = state.entries.get_mut(&id)
        else {
            panic!("workshop-sim: no item {id} to update");
        };
        item.content = content;
        item.time_updated = (item.time_updated + 1).max(unix_now());
        *hcontent_file = handle;
    }

    /// Deletes an item or collection; Steam then answers `result` 9 for it.
    pub fn remove_item(&self, id: u64) {
        lock(&self.shared).entries.remove(&id);
    }

    /// Publishes a collection of `children` in that order, replacing any
    /// item or collection with its id.
    pub fn add_collection(&self, id: u64, title: &str, children: &[Child]) {
        let mut state = lock(&self.shared);
        let entry = Entry::Collection {
            title: title.to_owned(),
            children: children.to_vec(),
            hcontent_preview: state.handle(),
        };
        state.entries.insert(id, entry);
    }

    pub fn set_fault(&self, fault: Fault) {
        lock(&self.shared).faults.push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared).faults.clear();
    }

    pub fn counters(&self) -> Counters {
        lock(&self.shared).counters.clone()
    }

    pub fn reset_counters(&self) {
        lock(&self.shared).counters = Counters::default();
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
