//! What the benchmarks share: knobs from the environment, medians and
//! the built-in host. Each benchmark uses some of it.
#![allow(dead_code)]

use std::time::Duration;

/// The environment variable `key` parsed, or `default`.
pub(crate) fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The host over `root` with the built-in supervisor, as the CLI makes it.
pub(crate) fn builtin_host(root: &std::path::Path) -> left4me_host::lifecycle::Host {
    use left4me_host::supervisor::builtin::{BuiltinSupervisor, RestartPolicy};
    left4me_host::lifecycle::Host::open(
        root,
        Box::new(BuiltinSupervisor {
            program: env!("CARGO_BIN_EXE_left4me").into(),
            policy: RestartPolicy::default(),
            mount_api: left4me_host::mount::MountApi::Auto,
        }),
    )
    .unwrap()
}
