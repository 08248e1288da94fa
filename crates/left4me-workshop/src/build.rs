//! A build of a Workshop overlay: collections followed, every item's
//! details read in batches, missing revisions downloaded into the cache,
//! and a new version published only when the set of files changed.
//!
//! Items Steam rules out (private, deleted, banned, another game) are
//! skipped with a warning, keeping the copy the current version has. Any
//! other failure (Steam unreachable, a download that stays short or is
//! not a VPK) fails the build after the other downloads finished: they
//! stay cached, and the current version stays as it was.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use left4me_host::events::{Ctx, Event};
use left4me_host::layer::OverlayPath;
use left4me_host::layout::StateRoot;
use left4me_host::versions::VersionInfo;
use sha2::Digest;

use crate::api::{ApiError, ItemDetails, SteamApi};
use crate::cache::{Cache, DownloadError};
use crate::id::WorkshopId;

/// Where items appear in the layer: `left4dead2/addons/ID.vpk` (one dot:
/// the game on Linux skips names with more).
pub const ADDONS: &str = "left4dead2/addons";

/// Items one overlay may resolve to: far beyond any real collection, low
/// enough that a collection loop cannot run away.
pub const MAX_ITEMS: usize = 5_000;

/// What a user added to an overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub id: WorkshopId,
    pub collection: bool,
}

/// An item's state, as the overlay's page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemState {
    Ok,
    Downloading,
    Failed(String),
}

/// What the build knows about one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemReport {
    pub id: u64,
    /// The collection (as the user added it) the item came from.
    pub via: Option<u64>,
    pub title: String,
    pub file_size: u64,
    pub time_updated: u64,
    pub state: ItemState,
}

impl ItemReport {
    /// The item as Steam describes it, fine so far; `ids` says which
    /// collection it came from.
    fn ok(item: &ItemDetails, ids: &BTreeMap<u64, Option<u64>>) -> Self {
        Self {
            id: item.id,
            via: ids.get(&item.id).copied().flatten(),
            title: item.title.clone(),
            file_size: item.file_size,
            time_updated: item.time_updated,
            state: ItemState::Ok,
        }
    }
}

/// steamcmd's `workshop_download_item`: the downloaded file's path, or why not.
pub type Fallback<'a> = &'a (dyn Fn(WorkshopId, &Ctx<'_>) -> Result<PathBuf, String> + Sync);

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The current version after the build.
    pub version: VersionInfo,
    /// False when nothing changed and the current version stayed.
    pub published: bool,
    pub items: usize,
    pub skipped: usize,
    pub downloaded_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the overlay has no items: add some, or check that its collections still have any")]
    Empty,
    #[error("{} item(s) failed; the overlay stays as it was:\n{}", .0.len(), .0.join("\n"))]
    Items(Vec<String>),
    #[error("{action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cancelled")]
    Cancelled,
}

fn io(action: &str) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        action: action.to_owned(),
        source,
    }
}

/// Builds Workshop overlays below one state root.
#[derive(Debug)]
pub struct Builder<'a> {
    pub root: &'a StateRoot,
    pub api: &'a SteamApi,
    /// Downloads at once.
    pub parallel: usize,
}

impl Builder<'_> {
    /// Builds `overlay` from `sources`. `observe` hears every item's state
    /// as it changes.
    pub fn build(
        &self,
        overlay: &OverlayPath,
        sources: &[Source],
        observe: &(dyn Fn(&ItemReport) + Sync),
        fallback: Option<Fallback<'_>>,
        ctx: &Ctx<'_>,
    ) -> Result<Built, BuildError> {
        let cancelled = |_| BuildError::Cancelled;
        let ids = self.resolve(sources, ctx)?;
        if ids.is_empty() {
            return Err(BuildError::Empty);
        }
        ctx.step(format!("reading the details of {} item(s)...", ids.len()))
            .map_err(cancelled)?;
        let list: Vec<WorkshopId> = ids.keys().filter_map(|id| WorkshopId::new(*id)).collect();
        let details = self.api.details(&list, ctx)?;
        let cache = Cache::new(self.root);
        let cache_lock = cache
            .lock(false)
            .map_err(io("locking the Workshop cache"))?;
        let current = self.current_files(overlay)?;

        let mut files: BTreeMap<u64, (PathBuf, String)> = BTreeMap::new();
        let mut queue = Vec::new();
        let mut skipped = 0;
        for item in details {
            let mut report = ItemReport::ok(&item, &ids);
            if let Some(problem) = item.problem() {
                skipped += 1;
                let kept = current.get(&item.id);
                let note = if kept.is_some() {
                    "; the copy already in the overlay is kept"
                } else {
                    ""
                };
                ctx.emit(Event::Stderr(format!("skipped: {problem}{note}")));
                if let Some(path) = kept {
                    files.insert(item.id, (path.clone(), "kept".into()));
                }
                report.state = ItemState::Failed(problem.to_string());
            } else if let Some(entry) = cache.get(&item) {
                files.insert(item.id, (entry, item.revision().to_string()));
            } else {
                report.state = ItemState::Downloading;
                queue.push(item);
            }
            observe(&report);
        }

        let downloaded_bytes = queue.iter().map(|i| i.file_size).sum();
        let (fetched, failures) = self.download_all(&cache, queue, &ids, observe, fallback, ctx);
        ctx.check().map_err(cancelled)?;
        if !failures.is_empty() {
            return Err(BuildError::Items(failures));
        }
        files.extend(fetched);
        if files.is_empty() {
            return Err(BuildError::Empty);
        }

        ctx.step("publishing the overlay...").map_err(cancelled)?;
        let build_id = build_id(&files);
        let (version, published) =
            left4me_host::snapshot::publish_built(self.root, overlay, &build_id, |dir| {
                let addons = dir.join(ADDONS);
                std::fs::create_dir_all(&addons)?;
                for (id, (path, _)) in &files {
                    std::fs::hard_link(path, addons.join(format!("{id}.vpk")))?;
                }
                Ok(())
            })
            .map_err(io("publishing the overlay's new version"))?;
        drop(cache_lock);
        self.remove_unused(&cache, published, ctx);
        ctx.step(if published {
            format!(
                "published version {} with {} item(s)",
                version.version,
                files.len()
            )
        } else {
            format!("nothing changed: version {} stays current", version.version)
        })
        .map_err(cancelled)?;
        Ok(Built {
            version,
            published,
            items: files.len(),
            skipped,
            downloaded_bytes,
        })
    }

    /// Old versions no server runs, and cache entries no version links.
    /// Failing here costs disk space only: said in the log, not fatal.
    fn remove_unused(&self, cache: &Cache, published: bool, ctx: &Ctx<'_>) {
        if published && let Err(e) = left4me_host::game::remove_unused_versions(self.root) {
            ctx.emit(Event::Stderr(format!(
                "removing unused versions: {}",
                crate::describe(&e)
            )));
        }
        match cache.remove_unused() {
            Ok(Some((files, bytes))) if files > 0 => ctx.emit(Event::Stdout(format!(
                "removed {files} cached file(s) no overlay uses ({:.1} MiB)",
                bytes as f64 / (1024.0 * 1024.0)
            ))),
            Ok(_) => {}
            Err(e) => ctx.emit(Event::Stderr(format!("cleaning the Workshop cache: {e}"))),
        }
    }

    /// Every item id with the collection it came from, collections
    /// followed level by level (nested ones too, each once).
    fn resolve(
        &self,
        sources: &[Source],
        ctx: &Ctx<'_>,
    ) -> Result<BTreeMap<u64, Option<u64>>, BuildError> {
        let mut items: BTreeMap<u64, Option<u64>> = sources
            .iter()
            .filter(|s| !s.collection)
            .map(|s| (s.id.get(), None))
            .collect();
        let mut seen: BTreeSet<u64> = BTreeSet::new();
        // (collection, the collection the user added)
        let mut level: Vec<(u64, u64)> = sources
            .iter()
            .filter(|s| s.collection && seen.insert(s.id.get()))
            .map(|s| (s.id.get(), s.id.get()))
            .collect();
        while !level.is_empty() {
            ctx.step(format!("reading {} collection(s)...", level.len()))
                .map_err(|_| BuildError::Cancelled)?;
            let ids: Vec<WorkshopId> = level
                .iter()
                .filter_map(|(c, _)| WorkshopId::new(*c))
                .collect();
            let children = self.api.collections(&ids, ctx)?;
            let mut next = Vec::new();
            for (collection, added) in level {
                let Some(children) = children.get(&collection) else {
                    ctx.emit(Event::Stderr(format!(
                        "collection {collection} has no items (or is no longer a collection)"
                    )));
                    continue;
                };
                for child in children {
                    if child.is_collection() {
                        if seen.insert(child.id) {
                            next.push((child.id, added));
                        }
                    } else if items.len() < MAX_ITEMS {
                        items.entry(child.id).or_insert(Some(added));
                    } else {
                        ctx.emit(Event::Stderr(format!(
                            "more than {MAX_ITEMS} items: the rest of collection {collection} is left out"
                        )));
                        break;
                    }
                }
            }
            level = next;
        }
        Ok(items)
    }

    /// The files of the current version, by item id.
    fn current_files(&self, overlay: &OverlayPath) -> Result<BTreeMap<u64, PathBuf>, BuildError> {
        let versions = self.root.overlay_versions(overlay);
        let Some(current) = versions
            .current()
            .map_err(io("reading the overlay's current version"))?
        else {
            return Ok(BTreeMap::new());
        };
        let addons = versions.layer_dir(current).join(ADDONS);
        let mut files = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(&addons) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                if let Some(id) = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".vpk"))
                    .and_then(|n| n.parse().ok())
                {
                    files.insert(id, entry.path());
                }
            }
        }
        Ok(files)
    }

    /// Downloads `queue` with at most `parallel` at once. Returns the
    /// cached files and the failures, each naming its item.
    fn download_all(
        &self,
        cache: &Cache,
        queue: Vec<ItemDetails>,
        ids: &BTreeMap<u64, Option<u64>>,
        observe: &(dyn Fn(&ItemReport) + Sync),
        fallback: Option<Fallback<'_>>,
        ctx: &Ctx<'_>,
    ) -> (BTreeMap<u64, (PathBuf, String)>, Vec<String>) {
        let total: u64 = queue.iter().map(|i| i.file_size).sum();
        if queue.is_empty() {
            return (BTreeMap::new(), Vec::new());
        }
        let _ = ctx.step(format!(
            "downloading {} item(s), {:.1} MiB...",
            queue.len(),
            total as f64 / (1024.0 * 1024.0)
        ));
        let progress = Progress::new(total, ctx);
        let work = Mutex::new(queue.into_iter().collect::<VecDeque<_>>());
        let done = Mutex::new((BTreeMap::new(), Vec::new()));
        std::thread::scope(|scope| {
            for _ in 0..self.parallel.max(1) {
                scope.spawn(|| {
                    loop {
                        let Some(item) = work.lock().expect("queue").pop_front() else {
                            return;
                        };
                        if ctx.is_cancelled() {
                            return;
                        }
                        let slot = AtomicU64::new(0);
                        let result =
                            self.fetch(cache, &item, fallback, &|n| progress.set(&slot, n), ctx);
                        let mut report = ItemReport::ok(&item, ids);
                        let mut done = done.lock().expect("results");
                        match result {
                            Ok(path) => {
                                ctx.emit(Event::Stdout(format!(
                                    "downloaded item {} ({})",
                                    item.id, item.title
                                )));
                                done.0.insert(item.id, (path, item.revision().to_string()));
                            }
                            Err(e) if ctx.is_cancelled() => {
                                report.state = ItemState::Failed(format!("cancelled: {e}"));
                            }
                            Err(e) => {
                                let line = format!("{e} ({})", item.title);
                                ctx.emit(Event::Stderr(line.clone()));
                                report.state = ItemState::Failed(e);
                                done.1.push(line);
                            }
                        }
                        observe(&report);
                    }
                });
            }
        });
        done.into_inner().expect("results")
    }

    /// One item into the cache: directly when Steam gives the file's URL,
    /// through steamcmd when not.
    fn fetch(
        &self,
        cache: &Cache,
        item: &ItemDetails,
        fallback: Option<Fallback<'_>>,
        progress: &(dyn Fn(u64) + Sync),
        ctx: &Ctx<'_>,
    ) -> Result<PathBuf, String> {
        let chain = |e: DownloadError| crate::describe(&e);
        if let Some(url) = item.direct_url() {
            return cache
                .download(self.api, item, url, progress, ctx)
                .map_err(chain);
        }
        let Some(fallback) = fallback else {
            return Err(format!(
                "item {}: Steam gives no direct download and steamcmd is not available",
                item.id
            ));
        };
        ctx.emit(Event::Stdout(format!(
            "item {}: Steam gives no direct download; asking steamcmd",
            item.id
        )));
        let id = WorkshopId::new(item.id).expect("Steam's ids are not 0");
        let path = fallback(id, ctx)?;
        let entry = cache.adopt(item, &path).map_err(chain)?;
        progress(item.file_size);
        Ok(entry)
    }
}

/// Names the set of files: the same items at the same revisions give the
/// same id, so an unchanged refresh publishes nothing.
fn build_id(files: &BTreeMap<u64, (PathBuf, String)>) -> String {
    let mut hash = sha2::Sha256::new();
    for (id, (_, revision)) in files {
        hash.update(format!("{id} {revision}\n"));
    }
    let digest = hash.finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("workshop:{hex}")
}

/// The bytes of all downloads: the first bytes at once, then at most
/// five times a second.
struct Progress<'a> {
    done: AtomicI64,
    total: u64,
    last: Mutex<Option<Instant>>,
    ctx: &'a Ctx<'a>,
}

impl<'a> Progress<'a> {
    fn new(total: u64, ctx: &'a Ctx<'a>) -> Self {
        ctx.emit(Event::Progress { done: 0, total });
        Self {
            done: AtomicI64::new(0),
            total,
            last: Mutex::new(None),
            ctx,
        }
    }

    /// One download is at `n` bytes (back at 0 when it starts over).
    fn set(&self, slot: &AtomicU64, n: u64) {
        let before = slot.swap(n, Ordering::Relaxed);
        let delta = n as i64 - before as i64;
        let done = self.done.fetch_add(delta, Ordering::Relaxed) + delta;
        let mut last = self.last.lock().expect("progress");
        let done = u64::try_from(done).unwrap_or(0);
        let due = last.is_none_or(|at| at.elapsed() >= Duration::from_millis(200));
        if due || done == self.total {
            *last = Some(Instant::now());
            self.ctx.emit(Event::Progress {
                done,
                total: self.total,
            });
        }
    }
}
