//! What processes and directories use: CPU time and resident memory of a
//! game's process tree (from `/proc`, one scan for all of them), the
//! space a tree of layers takes on disk (each inode once: versions share
//! their files as hard links), and the file system's size and free space.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// CPU time and memory of a process and its descendants (CPU time
/// including that of descendants which ended: it only grows).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// User and system time, in seconds, since the process started.
    pub cpu_seconds: f64,
    /// Resident memory.
    pub memory_bytes: u64,
}

/// One line of `/proc/PID/stat`, the parts used here.
struct Stat {
    ppid: u32,
    /// Its own user and system time.
    ticks: u64,
    /// That of its children it waited for (when they ended).
    children_ticks: u64,
    rss_pages: u64,
    threads: u64,
    /// Ticks after boot.
    start_ticks: u64,
}

/// Parses `/proc/PID/stat`; the command name may hold spaces and
/// parentheses, so fields are counted after its last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13)
    // cstime(14) … threads(17) … starttime(19) … rss(21).
    let field = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(Stat {
        ppid: fields.get(1)?.parse().ok()?,
        ticks: field(11)? + field(12)?,
        children_ticks: field(13)? + field(14)?,
        threads: field(17)?,
        start_ticks: field(19)?,
        rss_pages: field(21)?,
    })
}

fn clock_ticks() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// The usage of each of `roots` with all its descendants (`None` for a
/// process that is gone), from one pass over `/proc`.
pub fn of_process_trees(roots: &[u32]) -> Vec<Option<Usage>> {
    if roots.is_empty() {
        return Vec::new();
    }
    let mut stats: HashMap<u32, Stat> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(stat) = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .as_deref()
                .and_then(parse_stat)
            {
                stats.insert(pid, stat);
            }
        }
    }
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, stat) in &stats {
        children.entry(stat.ppid).or_default().push(*pid);
    }
    let page = rustix::param::page_size() as u64;
    let hz = clock_ticks();
    roots
        .iter()
        .map(|root| {
            stats.get(root)?;
            let (mut ticks, mut pages) = (0u64, 0u64);
            let mut stack = vec![*root];
            let mut seen = HashSet::new();
            while let Some(pid) = stack.pop() {
                if !seen.insert(pid) {
                    continue;
                }
                if let Some(stat) = stats.get(&pid) {
                    // With what its ended children used, so the tree's
                    // time never goes down when one of them ends.
                    ticks += stat.ticks + stat.children_ticks;
                    pages += stat.rss_pages;
                }
                stack.extend(children.get(&pid).into_iter().flatten());
            }
            Some(Usage {
                cpu_seconds: ticks as f64 / hz,
                memory_bytes: pages * page,
            })
        })
        .collect()
}

/// This process's own usage, open descriptors and threads.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OwnProcess {
    pub usage: Usage,
    pub open_fds: u64,
    pub threads: u64,
    /// Unix seconds when it started.
    pub start_time: f64,
}

pub fn own_process() -> io::Result<OwnProcess> {
    let text = std::fs::read_to_string("/proc/self/stat")?;
    let stat = parse_stat(&text).ok_or_else(|| io::Error::other("unreadable /proc/self/stat"))?;
    let boot = std::fs::read_to_string("/proc/stat")?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let hz = clock_ticks();
    Ok(OwnProcess {
        usage: Usage {
            cpu_seconds: stat.ticks as f64 / hz,
            memory_bytes: stat.rss_pages * rustix::param::page_size() as u64,
        },
        open_fds: std::fs::read_dir("/proc/self/fd")?.count() as u64,
        threads: stat.threads,
        start_time: boot as f64 + stat.start_ticks as f64 / hz,
    })
}

/// The space the files below `dir` take, each inode counted once
/// (0 when `dir` does not exist). Symlinks are not followed.
pub fn disk_used(dir: &Path) -> io::Result<u64> {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if seen.insert((meta.dev(), meta.ino())) {
            total += meta.blocks() * 512;
        }
        if meta.is_dir() {
            match std::fs::read_dir(&path) {
                Ok(entries) => stack.extend(entries.flatten().map(|e| e.path())),
                // A build's private directory: counted as far as readable;
                // one removed meanwhile (an old version pruned): gone.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::PermissionDenied | io::ErrorKind::NotFound
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(total)
}

/// The size of the file system holding `path` and what is free on it
/// for unprivileged users, in bytes.
pub fn file_system(path: &Path) -> io::Result<(u64, u64)> {
    let stat = rustix::fs::statvfs(path)?;
    Ok((stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stat_lines_whose_name_holds_spaces_and_parentheses() {
        let line = "42 (srcds (1) x) S 7 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 12345 1000000 300 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.ppid, 7);
        assert_eq!(stat.ticks, 300);
        assert_eq!(stat.children_ticks, 0);
        assert_eq!(stat.rss_pages, 300);
    }

    #[test]
    fn a_process_tree_sums_its_children() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        let children = || -> Vec<u32> {
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter_map(|e| {
                    let text = std::fs::read_to_string(e.path().join("stat")).ok()?;
                    (parse_stat(&text)?.ppid == pid)
                        .then(|| e.file_name().to_str()?.parse().ok())?
                })
                .collect()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while children().len() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the sleeps never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let kids = children();
        let usage = of_process_trees(&[pid, kids[0], kids[1], u32::MAX]);
        let (tree, a, b) = (usage[0].unwrap(), usage[1].unwrap(), usage[2].unwrap());
        assert!(a.memory_bytes > 0 && b.memory_bytes > 0);
        assert!(
            tree.memory_bytes > a.memory_bytes + b.memory_bytes,
            "the shell and both sleeps: {tree:?} {a:?} {b:?}"
        );
        assert_eq!(usage[3], None, "a process that is gone");
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
        let _ = child.wait();
    }

    #[test]
    fn hard_links_count_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 64 << 10]).unwrap();
        let one = disk_used(dir.path()).unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        assert_eq!(disk_used(dir.path()).unwrap(), one);
        std::fs::write(dir.path().join("c"), vec![1u8; 64 << 10]).unwrap();
        assert!(disk_used(dir.path()).unwrap() >= one + (64 << 10));
        assert_eq!(disk_used(&dir.path().join("missing")).unwrap(), 0);
    }
}
