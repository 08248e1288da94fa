//! Workshop builds against the loopback Steam stand-in, through the real
//! builder (`Builder::build`: API client, cache, published versions).
//!
//! 1. A refresh of 1,000 unchanged items: the API calls and the bytes the
//!    stand-in counted. Fails above 10 calls or any byte downloaded.
//! 2. Adding 200 items at once: the build's wall time against fetching
//!    the same bytes in one plain stream from the stand-in (to a file on
//!    the same disk, synced), measured in the same run.
//!
//! Run with `cargo bench -p left4me-workshop --bench workshop`. Knobs
//! (environment): BENCH_ITEMS (200), BENCH_ITEM_BYTES (1 MiB),
//! BENCH_REFRESH_ITEMS (1000), BENCH_DIR (default /var/tmp).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use left4me_host::events::{CancellationToken, Ctx, discard};
use left4me_host::layer::OverlayPath;
use left4me_host::layout::StateRoot;
use left4me_workshop::build::Built;
use left4me_workshop::{ApiSettings, Builder, Source, SteamApi, WorkshopId};
use workshop_sim::{SimItem, WorkshopSim};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sources(ids: std::ops::RangeInclusive<u64>) -> Vec<Source> {
    ids.map(|id| Source {
        id: WorkshopId::new(id).unwrap(),
        collection: false,
    })
    .collect()
}

/// One build of `overlay` on a blocking thread.
async fn build(
    api: &Arc<SteamApi>,
    root: &StateRoot,
    overlay: &str,
    sources: Vec<Source>,
) -> Built {
    let (api, root) = (Arc::clone(api), root.clone());
    let overlay = OverlayPath::parse(overlay).unwrap();
    tokio::task::spawn_blocking(move || {
        let cancel = CancellationToken::new();
        Builder {
            root: &root,
            api: &api,
            parallel: 4,
        }
        .build(
            &overlay,
            &sources,
            &|_| {},
            None,
            &Ctx::new(&discard, &cancel),
        )
        .expect("the build succeeds")
    })
    .await
    .unwrap()
}

/// Downloads one file in a plain stream to `to`, synced: the baseline.
async fn plain_stream(url: &str, to: &std::path::Path) -> u64 {
    let mut response = reqwest::get(url).await.unwrap().error_for_status().unwrap();
    let mut file = std::fs::File::create(to).unwrap();
    let mut bytes = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        file.write_all(&chunk).unwrap();
        bytes += chunk.len() as u64;
    }
    file.sync_all().unwrap();
    bytes
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let items: u64 = env_or("BENCH_ITEMS", 200);
    let item_bytes: u64 = env_or("BENCH_ITEM_BYTES", 1 << 20);
    let refresh_items: u64 = env_or("BENCH_REFRESH_ITEMS", 1000);
    let base: std::path::PathBuf = env_or("BENCH_DIR", "/var/tmp".into());
    let dir = tempfile::tempdir_in(&base).unwrap();
    let root = StateRoot::open(dir.path().join("root")).unwrap();
    let sim = WorkshopSim::start().await.unwrap();
    let mut settings = ApiSettings::new(&sim.base_url());
    settings.first_retry = Duration::from_millis(10);
    let api = Arc::new(SteamApi::new(settings, tokio::runtime::Handle::current()).unwrap());

    // 1. A refresh of unchanged items.
    for id in 1..=refresh_items {
        sim.add_item(SimItem::vpk(id, 4096));
    }
    build(&api, &root, "refresh", sources(1..=refresh_items)).await;
    sim.reset_counters();
    let refreshed = build(&api, &root, "refresh", sources(1..=refresh_items)).await;
    let counters = sim.counters();
    println!(
        "refresh of {refresh_items} unchanged items: {} API calls, {} downloads, {} bytes, new version: {}",
        counters.api_calls, counters.downloads, counters.bytes_served, refreshed.published
    );
    assert!(
        counters.api_calls <= refresh_items.div_ceil(100),
        "at most one call per 100 items"
    );
    assert_eq!(
        counters.bytes_served, 0,
        "an unchanged refresh downloads nothing"
    );
    assert!(!refreshed.published);

    // 2. Adding many items at once, against one plain stream of the bytes.
    let first = 1_000_000;
    for id in first..first + items {
        sim.add_item(SimItem::vpk(id, item_bytes));
    }
    sim.add_item(SimItem::vpk(1, items * item_bytes));
    let baseline_url = {
        // The big item's URL, as the API gives it.
        let cancel = CancellationToken::new();
        let api = Arc::clone(&api);
        tokio::task::spawn_blocking(move || {
            api.details(&[WorkshopId::new(1).unwrap()], &Ctx::new(&discard, &cancel))
                .unwrap()
                .remove(0)
                .file_url
        })
        .await
        .unwrap()
    };
    let started = Instant::now();
    let streamed = plain_stream(&baseline_url, &dir.path().join("baseline.vpk")).await;
    let baseline = started.elapsed();
    assert_eq!(streamed, items * item_bytes);

    sim.reset_counters();
    let started = Instant::now();
    let added = build(&api, &root, "added", sources(first..=first + items - 1)).await;
    let took = started.elapsed();
    assert_eq!(added.items as u64, items);
    assert_eq!(sim.counters().bytes_served, items * item_bytes);
    let mib = (items * item_bytes) as f64 / f64::from(1u32 << 20);
    println!(
        "{items} items of {:.1} MiB ({mib:.0} MiB): build {:.0} ms, one plain stream {:.0} ms: {:.2}x",
        item_bytes as f64 / f64::from(1u32 << 20),
        took.as_secs_f64() * 1000.0,
        baseline.as_secs_f64() * 1000.0,
        took.as_secs_f64() / baseline.as_secs_f64()
    );
}
