//! Workshop builds against the loopback Steam stand-in: real HTTP, a real
//! state root, real cache files and published versions.

use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use left4me_host::events::{CancellationToken, Ctx, Event};
use left4me_host::layer::OverlayPath;
use left4me_host::layout::StateRoot;
use left4me_workshop::build::{BuildError, Built, ItemReport, ItemState};
use left4me_workshop::{ApiSettings, Builder, Source, SteamApi, WorkshopId};
use workshop_sim::{Child, Content, Fault, SimItem, Storage, WorkshopSim};

struct Env {
    sim: WorkshopSim,
    api: Arc<SteamApi>,
    root: StateRoot,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let sim = WorkshopSim::start().await.unwrap();
    let mut settings = ApiSettings::new(&sim.base_url());
    settings.first_retry = Duration::from_millis(10);
    settings.timeout = Duration::from_secs(5);
    let api = SteamApi::new(settings, tokio::runtime::Handle::current()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = StateRoot::open(dir.path().join("root")).unwrap();
    Env {
        sim,
        api: Arc::new(api),
        root,
        _dir: dir,
    }
}

/// What one build said and did.
struct Run {
    result: Result<Built, BuildError>,
    events: Vec<Event>,
    reports: Vec<ItemReport>,
}

impl Run {
    fn log(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Step(t) | Event::Stdout(t) | Event::Stderr(t) => Some(t.as_str()),
                Event::Progress { .. } => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn built(&self) -> &Built {
        match &self.result {
            Ok(built) => built,
            Err(e) => panic!("the build failed: {e}\n{}", self.log()),
        }
    }

    fn error(&self) -> String {
        match &self.result {
            Ok(_) => panic!("the build succeeded:\n{}", self.log()),
            Err(e) => left4me_workshop::describe(e),
        }
    }

    /// The last report about each item.
    fn state_of(&self, id: u64) -> ItemState {
        self.reports
            .iter()
            .rev()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no report on item {id}"))
            .state
            .clone()
    }
}

fn overlay() -> OverlayPath {
    OverlayPath::parse("7").unwrap()
}

fn item(id: u64) -> Source {
    Source {
        id: WorkshopId::new(id).unwrap(),
        collection: false,
    }
}

fn collection(id: u64) -> Source {
    Source {
        id: WorkshopId::new(id).unwrap(),
        collection: true,
    }
}

async fn build(env: &Env, sources: &[Source]) -> Run {
    build_with(
        Arc::clone(&env.api),
        env.root.clone(),
        sources.to_vec(),
        CancellationToken::new(),
    )
    .await
}

async fn build_with(
    api: Arc<SteamApi>,
    root: StateRoot,
    sources: Vec<Source>,
    cancel: CancellationToken,
) -> Run {
    tokio::task::spawn_blocking(move || {
        let events = Mutex::new(Vec::new());
        let reports = Mutex::new(Vec::new());
        let sink = |e: Event| events.lock().unwrap().push(e);
        let observe = |r: &ItemReport| reports.lock().unwrap().push(r.clone());
        let result = Builder {
            root: &root,
            api: &api,
            parallel: 3,
        }
        .build(
            &overlay(),
            &sources,
            &observe,
            None,
            &Ctx::new(&sink, &cancel),
        );
        Run {
            result,
            events: events.into_inner().unwrap(),
            reports: reports.into_inner().unwrap(),
        }
    })
    .await
    .unwrap()
}

/// The published layer's file for an item.
fn layer_file(env: &Env, version: u32, id: u64) -> std::path::PathBuf {
    env.root
        .overlay_versions(&overlay())
        .layer_dir(version)
        .join(format!("left4dead2/addons/{id}.vpk"))
}

fn addons(env: &Env, version: u32) -> Vec<String> {
    let dir = env
        .root
        .overlay_versions(&overlay())
        .layer_dir(version)
        .join("left4dead2/addons");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn current(env: &Env) -> Option<u32> {
    env.root.overlay_versions(&overlay()).current().unwrap()
}

fn tmp_files(env: &Env) -> usize {
    std::fs::read_dir(env.root.workshop_cache().join("tmp")).map_or(0, Iterator::count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_and_nested_collections_become_one_layer_of_hard_links() {
    let env = env().await;
    for id in [1, 2, 3, 4] {
        env.sim.add_item(SimItem::vpk(id, 10_000 + id));
    }
    env.sim
        .add_collection(100, "Campaigns", &[Child::item(3), Child::collection(101)]);
    // A loop back to the outer collection is followed once.
    env.sim.add_collection(
        101,
        "More",
        &[Child::item(4), Child::item(1), Child::collection(100)],
    );
    let run = build(&env, &[item(1), collection(100), item(2)]).await;
    let built = run.built();
    assert!(built.published);
    assert_eq!(built.items, 4);
    assert_eq!(
        addons(&env, built.version.version),
        ["1.vpk", "2.vpk", "3.vpk", "4.vpk"]
    );
    for id in [1, 2, 3, 4] {
        let file = layer_file(&env, built.version.version, id);
        assert_eq!(
            std::fs::read(&file).unwrap(),
            Content::Vpk {
                size: 10_000 + id,
                seed: id
            }
            .bytes(),
            "item {id}"
        );
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(meta.nlink(), 2, "the layer links the cache's copy of {id}");
        assert_eq!(
            meta.mode() & 0o777,
            0o644,
            "readable by the game, written by nobody"
        );
    }
    let via = |id| run.reports.iter().rev().find(|r| r.id == id).unwrap().via;
    assert_eq!(
        (via(1), via(2), via(3), via(4)),
        (None, None, Some(100), Some(100))
    );
    assert_eq!(run.state_of(4), ItemState::Ok);
    assert_eq!(env.sim.counters().downloads, 4);
    assert_eq!(tmp_files(&env), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_refresh_downloads_nothing_and_publishes_nothing() {
    let env = env().await;
    for id in 1..=150 {
        env.sim.add_item(SimItem::vpk(id, 100));
    }
    let children: Vec<Child> = (51..=150).map(Child::item).collect();
    env.sim.add_collection(1000, "Maps", &children);
    let mut sources: Vec<Source> = (1..=50).map(item).collect();
    sources.push(collection(1000));
    let first = build(&env, &sources).await;
    let version = first.built().version.version;
    env.sim.reset_counters();

    let again = build(&env, &sources).await;
    let built = again.built();
    assert!(!built.published, "{}", again.log());
    assert_eq!(built.version.version, version, "the current version stays");
    let counters = env.sim.counters();
    assert_eq!(counters.downloads, 0);
    assert_eq!(counters.bytes_served, 0);
    // One collection call, then 150 ids in two details calls.
    assert_eq!(counters.api_calls, 3, "{counters:?}");
    assert!(again.log().contains("nothing changed"), "{}", again.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_updated_item_makes_a_new_version_and_its_old_file_goes_once_unused() {
    let env = env().await;
    env.sim.add_item(SimItem::vpk(1, 5_000));
    env.sim.add_item(SimItem::vpk(2, 6_000));
    let first = build(&env, &[item(1), item(2)]).await;
    let v1 = first.built().version.version;
    let old_entry = std::fs::read_dir(env.root.workshop_cache().join("items/1"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();

    let updated = Content::Vpk {
        size: 7_000,
        seed: 99,
    };
    env.sim.update_item(1, updated.clone());
    env.sim.reset_counters();
    let second = build(&env, &[item(1), item(2)]).await;
    let built = second.built();
    assert!(built.published);
    assert!(built.version.version > v1);
    assert_eq!(env.sim.counters().downloads, 1, "only the changed item");
    assert_eq!(
        std::fs::read(layer_file(&env, built.version.version, 1)).unwrap(),
        updated.bytes()
    );
    // No server mounts version 1: it went, and with it the old revision.
    assert!(!env.root.overlay_versions(&overlay()).layer_dir(v1).exists());
    assert!(!old_entry.exists(), "the cache dropped the unused revision");
    assert!(
        second.log().contains("removed 1 cached file"),
        "{}",
        second.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_steam_rules_out_are_skipped_with_a_warning_keeping_a_copy_they_had() {
    let env = env().await;
    env.sim.add_item(SimItem::vpk(1, 1_000));
    env.sim.add_item(SimItem::vpk(5, 1_000));
    env.sim.add_item(SimItem {
        app_id: 730,
        title: "A CS map".into(),
        ..SimItem::vpk(2, 1_000)
    });
    env.sim.add_item(SimItem {
        banned: true,
        ..SimItem::vpk(3, 1_000)
    });
    let first = build(&env, &[item(1), item(2), item(3), item(4), item(5)]).await;
    assert_eq!(
        addons(&env, first.built().version.version),
        ["1.vpk", "5.vpk"]
    );
    assert_eq!(first.built().skipped, 3);
    let log = first.log();
    for expected in ["is for app 730", "banned", "item 4 was not found"] {
        assert!(log.contains(expected), "{expected:?} in:\n{log}");
    }
    assert!(matches!(first.state_of(2), ItemState::Failed(why) if why.contains("A CS map")));

    // Item 5 goes private: the overlay keeps the copy it has.
    env.sim.remove_item(5);
    let second = build(&env, &[item(1), item(5)]).await;
    assert_eq!(
        addons(&env, second.built().version.version),
        ["1.vpk", "5.vpk"]
    );
    assert!(
        second
            .log()
            .contains("the copy already in the overlay is kept"),
        "{}",
        second.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_downloads_fail_the_build_and_keep_the_current_version() {
    let env = env().await;
    env.sim.add_item(SimItem::vpk(1, 4_000));
    let good = build(&env, &[item(1)]).await;
    let version = good.built().version.version;
    for (id, fault, expected) in [
        (
            2,
            Fault::Truncated {
                id: 2,
                after: 3_000,
            },
            "ended after",
        ),
        (3, Fault::Image(3), "Steam sent an image"),
        (4, Fault::NotFound(4), "404"),
    ] {
        env.sim.add_item(SimItem::vpk(id, 200_000));
        env.sim.add_item(SimItem::vpk(10 + id, 3_000));
        env.sim.set_fault(fault);
        let run = build(&env, &[item(1), item(id), item(10 + id)]).await;
        let error = run.error();
        assert!(error.contains(&format!("item {id}")), "{error}");
        assert!(error.contains(expected), "{expected:?} in {error}");
        assert!(error.contains("stays as it was"), "{error}");
        assert_eq!(current(&env), Some(version), "the current version stays");
        assert!(matches!(run.state_of(id), ItemState::Failed(_)));
        assert_eq!(
            run.state_of(10 + id),
            ItemState::Ok,
            "the other item is fine"
        );
        assert!(
            env.root
                .workshop_cache()
                .join(format!("items/{}", 10 + id))
                .is_dir(),
            "what did download stays cached"
        );
        assert_eq!(tmp_files(&env), 0, "no partial download is left");
        env.sim.clear_faults();
    }
    // Truncation is retried before giving up.
    assert!(env.sim.counters().downloads >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_outages_are_retried() {
    let env = env().await;
    env.sim.add_item(SimItem::vpk(1, 1_000));
    env.sim.set_fault(Fault::RateLimited(2));
    env.sim.set_fault(Fault::Unavailable(1));
    let run = build(&env, &[item(1)]).await;
    assert!(run.built().published);
    assert!(run.log().contains("429"), "{}", run.log());
    assert!(run.log().contains("trying again"), "{}", run.log());
    let counters = env.sim.counters();
    assert_eq!((counters.rejected_429, counters.rejected_503), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steam_unreachable_is_said_and_nothing_changes() {
    let env = env().await;
    env.sim.add_item(SimItem::vpk(1, 1_000));
    env.sim.set_fault(Fault::Unavailable(100));
    let run = build(&env, &[item(1)]).await;
    assert!(run.error().contains("503"), "{}", run.error());
    assert_eq!(current(&env), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_without_a_direct_download_need_steamcmd() {
    let env = env().await;
    for (id, storage) in [(1, Storage::PreviewAsFileUrl), (2, Storage::NoFileUrl)] {
        env.sim.add_item(SimItem {
            storage,
            ..SimItem::vpk(id, 1_000)
        });
    }
    let run = build(&env, &[item(1), item(2)]).await;
    let error = run.error();
    for id in [1, 2] {
        assert!(
            error.contains(&format!(
                "item {id}: Steam gives no direct download and steamcmd is not available"
            )),
            "{error}"
        );
    }
    assert_eq!(
        env.sim.counters().previews,
        0,
        "the preview is never taken for the map"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_collection_is_said_plainly() {
    let env = env().await;
    env.sim.add_collection(100, "Empty", &[]);
    let run = build(&env, &[collection(100)]).await;
    assert!(
        run.error().contains("the overlay has no items"),
        "{}",
        run.error()
    );
    assert!(
        run.log().contains("collection 100 has no items"),
        "{}",
        run.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_download_keeps_the_current_version_and_leaves_no_partial_file() {
    let env = env().await;
    env.sim.add_item(SimItem::vpk(1, 1_000));
    let version = build(&env, &[item(1)]).await.built().version.version;
    env.sim.add_item(SimItem::vpk(2, 4 << 20));
    env.sim.set_fault(Fault::Slow {
        id: 2,
        bytes_per_second: 256 << 10,
    });
    let cancel = CancellationToken::new();
    let running = tokio::spawn(build_with(
        Arc::clone(&env.api),
        env.root.clone(),
        vec![item(1), item(2)],
        cancel.clone(),
    ));
    // Cancel once bytes arrive: the download is under way.
    let partial = env.root.workshop_cache().join("tmp");
    tokio::time::timeout(Duration::from_secs(10), async {
        while !std::fs::read_dir(&partial)
            .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.metadata().is_ok_and(|m| m.len() > 0))))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the slow download started");
    cancel.cancel();
    let run = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("a cancel ends the build promptly")
        .unwrap();
    assert!(
        matches!(run.result, Err(BuildError::Cancelled)),
        "{}",
        run.log()
    );
    assert_eq!(current(&env), Some(version));
    assert_eq!(tmp_files(&env), 0);
    let progress = run
        .events
        .iter()
        .filter(|e| matches!(e, Event::Progress { done, .. } if *done > 0))
        .count();
    assert!(progress > 0, "download progress was reported");
}
