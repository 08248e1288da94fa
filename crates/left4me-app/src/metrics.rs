//! The panel's metrics for Prometheus, in its text format: counted as the
//! panel works (HTTP requests, jobs) and read at each scrape from what
//! the panel already keeps in memory (servers as the poller last saw
//! them, disk use as last measured, backups), so a scrape never asks a
//! game server or the supervisor anything.
//!
//! Names follow Prometheus' conventions: a `left4me_` prefix, units in
//! the name, `_total` on counters, and the standard `process_*` names for
//! the panel's own process.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::live::{LiveState, ProcessSample};

/// The content type of what [`Metrics::render`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

const PREFIX: &str = "left4me";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    server: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerStateLabels {
    server: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerMapLabels {
    server: String,
    map: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartLabels {
    part: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;
type FloatCounter = Counter<f64, std::sync::atomic::AtomicU64>;

fn http_histogram() -> Histogram {
    // 0.5 ms to 4 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

fn job_histogram() -> Histogram {
    // 0.1 s to about 27 minutes.
    Histogram::new(exponential_buckets(0.1, 2.0, 15))
}

/// Space used below the state root, as last measured (walking layers
/// takes a while: done now and then, not per scrape).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskSample {
    /// Bytes by part: `game`, `overlay_versions`, `overlays`,
    /// `workshop_cache`, `servers`.
    pub used: Vec<(&'static str, u64)>,
    pub file_system_size: u64,
    pub file_system_avail: u64,
}

/// How the poller and the backups went, read at scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PanelSample {
    /// Unix seconds when the poller last finished a cycle.
    pub poller_last_cycle: Option<i64>,
    /// Unix seconds of the last successful backup, if any.
    pub last_success: Option<i64>,
    pub last_failed: bool,
    pub last_check_failed: bool,
}

/// One server as a scrape sees it.
#[derive(Debug, Clone, Copy)]
pub struct ServerSample<'a> {
    pub name: &'a str,
    /// Whether the server should be running (its desired state).
    pub wanted: bool,
    pub live: Option<&'a LiveState>,
    pub process: Option<&'a ProcessSample>,
}

/// The panel's metrics: create one per panel.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<RouteLabels, Histogram>,
    jobs: Family<JobLabels, Counter>,
    job_seconds: Family<KindLabels, Histogram>,
    workshop_bytes: Counter,
    disk: Mutex<Option<DiskSample>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            http_requests.clone(),
        );
        let http_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(http_histogram as fn() -> _);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (to its headers), by method and route",
            http_seconds.clone(),
        );
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs",
            "Jobs finished, by kind and outcome (succeeded, failed, cancelled)",
            jobs.clone(),
        );
        let job_seconds =
            Family::<KindLabels, Histogram>::new_with_constructor(job_histogram as fn() -> _);
        registry.register(
            "job_duration_seconds",
            "How long jobs ran, by kind (steamcmd's game jobs, Workshop and script builds, starts, backups)",
            job_seconds.clone(),
        );
        let workshop_bytes = Counter::default();
        registry.register(
            "workshop_download_bytes",
            "Bytes Workshop builds downloaded",
            workshop_bytes.clone(),
        );
        Self {
            registry,
            http_requests,
            http_seconds,
            jobs,
            job_seconds,
            workshop_bytes,
            disk: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Counts an answered HTTP request. `route` is the route's pattern
    /// (`/servers/{id}`), never the path, so the series stay few.
    pub fn http_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.http_seconds
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts what a Workshop build downloaded.
    pub fn workshop_downloaded(&self, bytes: u64) {
        self.workshop_bytes.inc_by(bytes);
    }

    /// Counts a finished job.
    pub fn job_finished(&self, kind: &str, outcome: &str, took: Duration) {
        self.jobs
            .get_or_create(&JobLabels {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.job_seconds
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn set_disk(&self, sample: DiskSample) {
        *self.disk.lock().expect("disk lock") = Some(sample);
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self, servers: &[ServerSample<'_>], panel: PanelSample) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        let _ = encode(&mut out, &servers_registry(servers));
        let _ = encode(&mut out, &self.state_registry(panel));
        let _ = encode(&mut out, &process_registry());
        out
    }

    fn state_registry(&self, panel: PanelSample) -> Registry {
        let mut registry = Registry::with_prefix(PREFIX);
        if let Some(disk) = self.disk.lock().expect("disk lock").clone() {
            let used = Family::<PartLabels, Gauge>::default();
            for (part, bytes) in &disk.used {
                used.get_or_create(&PartLabels {
                    part: (*part).to_owned(),
                })
                .set(saturating_i64(*bytes));
            }
            registry.register(
                "disk_used_bytes",
                "Space used below the state root, by part (game versions, overlay versions, overlays' own files, the Workshop cache, servers' own state)",
                used,
            );
            registry.register(
                "file_system_size_bytes",
                "Size of the file system holding the state root",
                gauge(disk.file_system_size),
            );
            registry.register(
                "file_system_avail_bytes",
                "Space left on the file system holding the state root",
                gauge(disk.file_system_avail),
            );
        }
        registry.register(
            "poller_last_cycle_timestamp_seconds",
            "When the poller last finished a round over the servers (0: not yet); the servers' figures are as old as this",
            gauge(panel.poller_last_cycle.map_or(0, |t| t.max(0).unsigned_abs())),
        );
        registry.register(
            "backup_last_success_timestamp_seconds",
            "When the last successful backup finished (0: never)",
            gauge(panel.last_success.map_or(0, |t| t.max(0).unsigned_abs())),
        );
        registry.register(
            "backup_last_failed",
            "1 when the last backup failed",
            gauge(u64::from(panel.last_failed)),
        );
        registry.register(
            "backup_check_last_failed",
            "1 when the last check of the backup repository failed",
            gauge(u64::from(panel.last_check_failed)),
        );
        registry
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn gauge(v: u64) -> Gauge {
    let g = Gauge::default();
    g.set(saturating_i64(v));
    g
}

/// The servers' metrics, labelled by name.
fn servers_registry(servers: &[ServerSample<'_>]) -> Registry {
    let mut registry = Registry::with_prefix(format!("{PREFIX}_server"));
    let up = Family::<ServerLabels, Gauge>::default();
    let wanted = Family::<ServerLabels, Gauge>::default();
    let running = Family::<ServerLabels, Gauge>::default();
    let state = Family::<ServerStateLabels, Gauge>::default();
    let players = Family::<ServerLabels, Gauge>::default();
    let max_players = Family::<ServerLabels, Gauge>::default();
    let map = Family::<ServerMapLabels, Gauge>::default();
    let restarts = Family::<ServerLabels, Counter>::default();
    let query = Family::<ServerLabels, FloatGauge>::default();
    let cpu = Family::<ServerLabels, FloatCounter>::default();
    let memory = Family::<ServerLabels, Gauge>::default();
    for server in servers {
        let labels = ServerLabels {
            server: server.name.to_owned(),
        };
        up.get_or_create(&labels)
            .set(i64::from(server.live.is_some()));
        wanted.get_or_create(&labels).set(i64::from(server.wanted));
        if let Some(process) = server.process {
            running
                .get_or_create(&labels)
                .set(i64::from(process.running));
            state
                .get_or_create(&ServerStateLabels {
                    server: server.name.to_owned(),
                    state: process.state.clone(),
                })
                .set(1);
            restarts
                .get_or_create(&labels)
                .inc_by(u64::from(process.restarts));
            if let Some(usage) = process.usage {
                cpu.get_or_create(&labels).inc_by(usage.cpu_seconds);
                memory
                    .get_or_create(&labels)
                    .set(saturating_i64(usage.memory_bytes));
            }
        }
        if let Some(live) = server.live {
            players.get_or_create(&labels).set(i64::from(live.players));
            max_players
                .get_or_create(&labels)
                .set(i64::from(live.max_players));
            map.get_or_create(&ServerMapLabels {
                server: server.name.to_owned(),
                map: live.map.clone(),
            })
            .set(1);
            query
                .get_or_create(&labels)
                .set(live.query_micros as f64 / 1e6);
        }
    }
    registry.register(
        "up",
        "1 when the server answered the panel's last query (A2S_INFO)",
        up,
    );
    registry.register(
        "wanted_running",
        "1 when the server should be running (started, and not stopped since)",
        wanted,
    );
    registry.register("running", "1 when the server's game process runs", running);
    registry.register(
        "state",
        "The supervisor's state of the server (1 for the current one)",
        state,
    );
    registry.register("players", "Players on the server", players);
    registry.register("max_players", "Player slots of the server", max_players);
    registry.register("map_info", "The server's map (1 for the current one)", map);
    registry.register(
        "crash_restarts",
        "Restarts after crashes since the server was last started",
        restarts,
    );
    registry.register(
        "query_seconds",
        "How long the server took to answer the panel's last A2S_INFO",
        query,
    );
    registry.register(
        "cpu_seconds",
        "CPU time of the server's processes since they started",
        cpu,
    );
    registry.register(
        "memory_bytes",
        "Resident memory of the server's processes",
        memory,
    );
    registry
}

/// The panel's own process, under the standard `process_*` names.
fn process_registry() -> Registry {
    let mut registry = Registry::default();
    let Ok(own) = left4me_host::usage::own_process() else {
        return registry;
    };
    let cpu = FloatCounter::default();
    cpu.inc_by(own.usage.cpu_seconds);
    registry.register(
        "process_cpu_seconds",
        "User and system CPU time of the panel",
        cpu,
    );
    registry.register(
        "process_resident_memory_bytes",
        "Resident memory of the panel",
        gauge(own.usage.memory_bytes),
    );
    registry.register(
        "process_open_fds",
        "File descriptors the panel has open",
        gauge(own.open_fds),
    );
    registry.register(
        "process_threads",
        "Threads of the panel",
        gauge(own.threads),
    );
    let start = FloatGauge::default();
    start.set(own.start_time);
    registry.register(
        "process_start_time_seconds",
        "When the panel started, in Unix seconds",
        start,
    );
    registry
}

/// Measures the space used below `root` (see [`DiskSample`]): a part
/// that cannot be read is left out (and said), the file system's figures
/// (the disk-full alert's) are there whatever the parts do.
pub fn measure_disk(root: &left4me_host::layout::StateRoot) -> std::io::Result<DiskSample> {
    let parts: [(&'static str, std::path::PathBuf); 5] = [
        ("game", root.installation()),
        ("overlay_versions", root.overlay_versions_root()),
        ("overlays", root.overlays()),
        ("workshop_cache", root.workshop_cache()),
        ("servers", root.runtime()),
    ];
    let mut used = Vec::new();
    for (part, dir) in parts {
        match disk_used_outside_mounts(&dir) {
            Ok(bytes) => used.push((part, bytes)),
            Err(e) => tracing::warn!("measuring {}: {e}", dir.display()),
        }
    }
    let (size, avail) = left4me_host::usage::file_system(root.path())?;
    Ok(DiskSample {
        used,
        file_system_size: size,
        file_system_avail: avail,
    })
}

/// A server's runtime holds its mounted game: only its own directories
/// (upper, work, logs) count.
fn disk_used_outside_mounts(dir: &Path) -> std::io::Result<u64> {
    if !dir.ends_with("runtime") {
        return left4me_host::usage::disk_used(dir);
    }
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries.flatten() {
        // A server deleted meanwhile, or a stray file: nothing of its own.
        let Ok(own) = std::fs::read_dir(entry.path()) else {
            continue;
        };
        for own in own.flatten() {
            if own.file_name() != "merged" {
                total += left4me_host::usage::disk_used(&own.path())?;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms_with_help_and_units() {
        let metrics = Metrics::default();
        metrics.http_request("GET", "/servers/{id}", 200, Duration::from_millis(3));
        metrics.job_finished("server.start", "succeeded", Duration::from_secs(2));
        metrics.workshop_downloaded(1 << 30);
        let live = LiveState {
            map: "c1m1_hotel".into(),
            players: 1,
            max_players: 8,
            query_micros: 1500,
            ..LiveState::default()
        };
        let process = ProcessSample {
            state: "running".into(),
            running: true,
            restarts: 2,
            usage: Some(left4me_host::usage::Usage {
                cpu_seconds: 1.5,
                memory_bytes: 4096,
            }),
        };
        let text = metrics.render(
            &[ServerSample {
                name: "coop \"one\"",
                wanted: true,
                live: Some(&live),
                process: Some(&process),
            }],
            PanelSample {
                last_success: Some(1_700_000_000),
                ..PanelSample::default()
            },
        );
        for expected in [
            "# HELP left4me_http_requests_total HTTP requests answered",
            "left4me_http_requests_total{method=\"GET\",route=\"/servers/{id}\",status=\"200\"} 1",
            "left4me_http_request_duration_seconds_count{method=\"GET\",route=\"/servers/{id}\"} 1",
            "left4me_jobs_total{kind=\"server.start\",outcome=\"succeeded\"} 1",
            "left4me_workshop_download_bytes_total 1073741824",
            "# TYPE left4me_job_duration_seconds histogram",
            "left4me_server_players{server=\"coop \\\"one\\\"\"} 1",
            "left4me_server_max_players{server=\"coop \\\"one\\\"\"} 8",
            "left4me_server_map_info{server=\"coop \\\"one\\\"\",map=\"c1m1_hotel\"} 1",
            "left4me_server_crash_restarts_total{server=\"coop \\\"one\\\"\"} 2",
            "left4me_server_cpu_seconds_total{server=\"coop \\\"one\\\"\"} 1.5",
            "left4me_server_query_seconds{server=\"coop \\\"one\\\"\"} 0.0015",
            "left4me_backup_last_success_timestamp_seconds 1700000000",
            "# TYPE process_cpu_seconds_total counter",
            "process_resident_memory_bytes ",
        ] {
            assert!(text.contains(expected), "{expected}\n{text}");
        }
    }
}
