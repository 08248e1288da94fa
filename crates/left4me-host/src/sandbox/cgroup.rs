//! A build's cgroup: memory without swap, tasks and CPUs, on the unified
//! hierarchy (cgroup v2) or on v1 controllers, whichever the host has.
//! What cannot be set up is listed, so the build log can say so.

use std::path::{Path, PathBuf};

use super::Limits;

#[derive(Debug)]
enum Layout {
    /// One directory with every controller.
    Unified(PathBuf),
    /// A directory per controller (`memory`, `pids`, `cpu`).
    Split {
        memory: Option<PathBuf>,
        pids: Option<PathBuf>,
        cpu: Option<PathBuf>,
    },
}

/// The cgroup a build runs in; removed by [`BuildCgroup::remove`].
#[derive(Debug)]
pub(crate) struct BuildCgroup {
    layout: Layout,
    /// Limits that are not enforced, with why.
    unenforced: Vec<String>,
}

/// Removes the empty cgroups that builds of the same state root left when
/// their panel died (names share the root's tag, the part after the last
/// dash); a cgroup in use is busy and stays.
pub(crate) fn sweep(root: &Path, name: &str) {
    let Some((_, tag)) = name.rsplit_once('-') else {
        return;
    };
    let parents = [
        root.join("left4me-builds"),
        root.join("memory"),
        root.join("pids"),
        root.join("cpu"),
    ];
    for parent in parents {
        let Ok(entries) = std::fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let file = file.to_string_lossy();
            let ours = file.ends_with(&format!("-{tag}"))
                && (file.starts_with("left4me-build-") || parent.ends_with("left4me-builds"));
            if ours {
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
}

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)
}

/// `key N` from a flat keyed file such as `memory.events`.
fn counter(file: &Path, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let (k, v) = line.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            })
        })
        .unwrap_or(0)
}

impl BuildCgroup {
    /// Creates the cgroup below `root` (`/sys/fs/cgroup`) for build `name`.
    pub(crate) fn create(root: &Path, name: &str, limits: &Limits) -> Self {
        sweep(root, name);
        if root.join("cgroup.controllers").exists() {
            match Self::unified(root, name, limits) {
                Ok(cgroup) => cgroup,
                Err(e) => Self::none(&format!("the build's cgroup could not be set up: {e}")),
            }
        } else if root.join("memory").is_dir() || root.join("pids").is_dir() {
            Self::split(root, name, limits)
        } else {
            Self::none("this host has no cgroup controllers to use")
        }
    }

    fn none(why: &str) -> Self {
        Self {
            layout: Layout::Split {
                memory: None,
                pids: None,
                cpu: None,
            },
            unenforced: vec![
                format!("the memory limit ({why})"),
                format!("the task limit ({why})"),
                format!("the CPU limit ({why})"),
            ],
        }
    }

    fn unified(root: &Path, name: &str, limits: &Limits) -> std::io::Result<Self> {
        let parent = root.join("left4me-builds");
        std::fs::create_dir_all(&parent)?;
        // Controllers reach a cgroup only through its parents.
        for dir in [root, parent.as_path()] {
            write(&dir.join("cgroup.subtree_control"), "+memory +pids +cpu")?;
        }
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir)?;
        write(&dir.join("memory.max"), &limits.memory_bytes.to_string())?;
        let mut unenforced = Vec::new();
        if write(&dir.join("memory.swap.max"), "0").is_err() {
            unenforced.push("the swap limit (no swap accounting on this host)".to_owned());
        }
        write(&dir.join("pids.max"), &limits.tasks.to_string())?;
        write(
            &dir.join("cpu.max"),
            &format!("{} 100000", u64::from(limits.cpus) * 100_000),
        )?;
        Ok(Self {
            layout: Layout::Unified(dir),
            unenforced,
        })
    }

    fn split(root: &Path, name: &str, limits: &Limits) -> Self {
        let mut unenforced = Vec::new();
        let dir_name = format!("left4me-build-{name}");
        let mut make =
            |controller: &str, what: &str, set: &dyn Fn(&Path) -> std::io::Result<()>| {
                let dir = root.join(controller).join(&dir_name);
                match std::fs::create_dir_all(&dir).and_then(|()| set(&dir)) {
                    Ok(()) => Some(dir),
                    Err(e) => {
                        let _ = std::fs::remove_dir(&dir);
                        unenforced.push(format!("the {what} limit (cgroup {controller}: {e})"));
                        None
                    }
                }
            };
        let memory = make("memory", "memory", &|dir| {
            write(
                &dir.join("memory.limit_in_bytes"),
                &limits.memory_bytes.to_string(),
            )
        });
        let pids = make("pids", "task", &|dir| {
            write(&dir.join("pids.max"), &limits.tasks.to_string())
        });
        let cpu = make("cpu", "CPU", &|dir| {
            write(&dir.join("cpu.cfs_period_us"), "100000")?;
            write(
                &dir.join("cpu.cfs_quota_us"),
                &(u64::from(limits.cpus) * 100_000).to_string(),
            )
        });
        if let Some(dir) = &memory {
            let swap = dir.join("memory.memsw.limit_in_bytes");
            if write(&swap, &limits.memory_bytes.to_string()).is_err() {
                // Without swap accounting, keep the build's pages out of swap
                // as far as the kernel allows.
                let _ = write(&dir.join("memory.swappiness"), "0");
                unenforced.push("the swap limit (swap accounting is off on this host)".to_owned());
            }
        }
        Self {
            layout: Layout::Split { memory, pids, cpu },
            unenforced,
        }
    }

    pub(crate) fn unenforced(&self) -> &[String] {
        &self.unenforced
    }

    /// The `cgroup.procs` files a process writes its pid to, to join.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs()
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    fn dirs(&self) -> Vec<&PathBuf> {
        match &self.layout {
            Layout::Unified(dir) => vec![dir],
            Layout::Split { memory, pids, cpu } => {
                [memory, pids, cpu].into_iter().flatten().collect()
            }
        }
    }

    /// Whether the memory limit killed something.
    pub(crate) fn memory_hit(&self) -> bool {
        match &self.layout {
            Layout::Unified(dir) => counter(&dir.join("memory.events"), "oom_kill") > 0,
            Layout::Split {
                memory: Some(dir), ..
            } => counter(&dir.join("memory.oom_control"), "oom_kill") > 0,
            Layout::Split { memory: None, .. } => false,
        }
    }

    /// Whether a fork was refused by the task limit.
    pub(crate) fn tasks_hit(&self) -> bool {
        let dir = match &self.layout {
            Layout::Unified(dir) => Some(dir),
            Layout::Split { pids, .. } => pids.as_ref(),
        };
        dir.is_some_and(|dir| counter(&dir.join("pids.events"), "max") > 0)
    }

    /// The pids still in the cgroup.
    pub(crate) fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .procs_files()
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<_>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Ends every process left in it, then removes it.
    pub(crate) fn remove(self) {
        for _ in 0..100 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        for dir in self.dirs() {
            // Empty once its last process is reaped.
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}
