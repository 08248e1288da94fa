//! Process helpers: liveness, identity across PID reuse, group signals.

use rustix::process::{Pid, Signal};

/// Start time of a process in clock ticks since boot (field 22 of
/// `/proc/PID/stat`). With the PID it identifies a process for good.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and ')'; fields after
    // the last ')' are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Whether the process `pid` that started at `started` still exists and
/// is not a zombie.
pub fn is_same_process_alive(pid: u32, started: u64) -> bool {
    start_time(pid) == Some(started) && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .and_then(|i| s.get(i + 2..i + 3))
                .map(|c| c == "Z")
        })
        .unwrap_or(false)
}

/// This boot's id; empty if the kernel does not say. Read once: it cannot
/// change while we run.
pub fn boot_id() -> String {
    static BOOT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        })
        .clone()
}

fn pid(raw: u32) -> Option<Pid> {
    i32::try_from(raw).ok().and_then(Pid::from_raw)
}

/// Sends `signal` to process group `pgid`. A vanished group is fine.
pub fn signal_group(pgid: u32, signal: Signal) {
    if let Some(pid) = pid(pgid) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Sends `signal` to process `raw`. A vanished process is fine.
pub fn signal_process(raw: u32, signal: Signal) {
    if let Some(pid) = pid(raw) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Whether any process is still in group `pgid`.
pub fn group_exists(pgid: u32) -> bool {
    pid(pgid).is_some_and(|p| rustix::process::test_kill_process_group(p).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_this_process() {
        let me = std::process::id();
        let started = start_time(me).unwrap();
        assert!(is_same_process_alive(me, started));
        assert!(!is_same_process_alive(me, started + 1));
    }
}
