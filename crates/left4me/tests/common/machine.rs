//! A real systemd, booted as PID 1 of a throwaway copy of this machine
//! (`shared/DOMAIN.md` §6), for tests of what only systemd can show:
//! the packaged units, polkit, sandboxes.
//!
//! The copy is an overlay of the host's root (bound non-recursively, so
//! read-only in effect) with its upper layer on a tmpfs: everything the
//! machine writes lands there and survives a reboot of the machine, never
//! the host. All mounts live in a private mount namespace held open by a
//! `sleep` process; killing it (by PID) unmounts everything at once, so a
//! crashed test leaves no mount behind either. The machine has its own
//! network namespace with only a loopback: a test talks to its services
//! from a thread that enters that namespace ([`Machine::in_network`]).
//!
//! ```text
//! let machine = Machine::boot(&[Bind::disk("/var/lib/left4me")]);
//! machine.ok("apt-get install -y /srv/packages/x.deb");
//! machine.reboot();
//! ```

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A directory of the machine.
#[derive(Debug, Clone)]
pub struct Bind {
    /// `None`: a directory on the machine's own tmpfs disk, which
    /// overlayfs can use as an upper layer (the machine's root, itself an
    /// overlay, cannot) and which is kept across reboots.
    host: Option<PathBuf>,
    inside: String,
    read_only: bool,
}

impl Bind {
    /// A host directory, read-only inside (a build to install, say).
    pub fn read_only(host: &Path, inside: &str) -> Self {
        Self {
            host: Some(host.to_owned()),
            inside: inside.to_owned(),
            read_only: true,
        }
    }

    /// A host directory the machine may write.
    pub fn read_write(host: &Path, inside: &str) -> Self {
        Self {
            host: Some(host.to_owned()),
            inside: inside.to_owned(),
            read_only: false,
        }
    }

    /// A directory on the machine's disk that overlayfs mounts can use.
    pub fn disk(inside: &str) -> Self {
        Self {
            host: None,
            inside: inside.to_owned(),
            read_only: false,
        }
    }
}

pub struct Machine {
    /// `root/` (the host's root, bound), `disk/` (the tmpfs: `upper/`,
    /// `work/`, one directory per disk bind), `merged/` (the machine).
    dir: tempfile::TempDir,
    /// Holds the private mount namespace with all of the above.
    holder: Child,
    binds: Vec<Bind>,
    nspawn: Option<Child>,
    /// The machine's PID 1, as the host numbers it.
    leader: u32,
    /// The machine's console (nspawn's output), for failure messages.
    console: PathBuf,
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ppid_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// SIGKILL by PID; 0 (no process) is skipped.
fn kill(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

impl Machine {
    /// Boots the machine and waits until systemd says it is up. Fails the
    /// test, saying why, when this host cannot do it.
    pub fn boot(binds: &[Bind]) -> Self {
        super::require_root();
        for tool in ["systemd-nspawn", "unshare", "nsenter"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success()),
                "{tool} is missing: apt-get install systemd-container util-linux \
                 (.ci/run installs them); this test does not skip"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("left4me-machine-")
            .tempdir()
            .unwrap();
        for sub in ["root", "disk", "merged"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        // --pdeathsig: if the test process dies without dropping the
        // machine (a SIGKILL, a timeout), the holder and nspawn die too.
        let holder = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--"])
            .args([
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sleep",
                "infinity",
            ])
            .spawn()
            .expect("unshare");
        let mut machine = Self {
            console: dir.path().join("console.log"),
            dir,
            holder,
            binds: binds.to_vec(),
            nspawn: None,
            leader: 0,
        };
        // Wait until the holder is in its own namespace, then mount there.
        let own = std::fs::read_link("/proc/self/ns/mnt").unwrap();
        let ns = format!("/proc/{}/ns/mnt", machine.holder.id());
        super::wait_until(
            "the mount namespace holder",
            Duration::from_secs(10),
            || std::fs::read_link(&ns).is_ok_and(|n| n != own),
        );
        let (root, disk, merged) = (
            machine.path("root"),
            machine.path("disk"),
            machine.path("merged"),
        );
        machine.in_holder(&["mount", "--bind", "/", &root]);
        machine.in_holder(&["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", &disk]);
        let mut dirs = vec![format!("{disk}/upper"), format!("{disk}/work")];
        dirs.extend(
            machine
                .binds
                .iter()
                .filter(|b| b.host.is_none())
                .map(|b| format!("{disk}/binds{}", b.inside)),
        );
        let mut mkdir = vec!["mkdir", "-p"];
        mkdir.extend(dirs.iter().map(String::as_str));
        machine.in_holder(&mkdir);
        machine.in_holder(&[
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            &format!("lowerdir={root},upperdir={disk}/upper,workdir={disk}/work"),
            &merged,
        ]);
        machine.start();
        // A container image forbids service starts during package
        // installs (policy-rc.d answers 101); a real host has no such file.
        machine.ok("rm -f /usr/sbin/policy-rc.d");
        machine
    }

    fn path(&self, sub: &str) -> String {
        self.dir.path().join(sub).to_string_lossy().into_owned()
    }

    fn in_holder(&self, args: &[&str]) {
        run(Command::new("nsenter")
            .args(["-t", &self.holder.id().to_string(), "-m", "--"])
            .args(args));
    }

    /// Starts systemd-nspawn on the machine's disk and waits for boot.
    fn start(&mut self) {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL", "--", "nsenter"])
            .args(["-t", &self.holder.id().to_string(), "-m", "--"])
            .args(["systemd-nspawn", "-D", &self.path("merged")])
            .args([
                "--register=no",
                "--link-journal=no",
                "--keep-unit",
                "--private-network",
                "--quiet",
            ]);
        for bind in &self.binds {
            let (flag, host) = match &bind.host {
                Some(host) => (
                    if bind.read_only {
                        "--bind-ro"
                    } else {
                        "--bind"
                    },
                    host.to_string_lossy().into_owned(),
                ),
                None => (
                    "--bind",
                    format!("{}/binds{}", self.path("disk"), bind.inside),
                ),
            };
            cmd.arg(format!("{flag}={host}:{}", bind.inside));
        }
        let console = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.console)
            .unwrap();
        let nspawn = cmd
            .arg("-b")
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console)
            .spawn()
            .expect("systemd-nspawn");
        let nspawn_pid = nspawn.id();
        self.nspawn = Some(nspawn);
        // The machine's PID 1 is nspawn's child running systemd.
        let mut leader = None;
        super::wait_until("systemd in the machine", Duration::from_secs(30), || {
            leader = std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .find(|&pid| {
                    ppid_of(pid) == Some(nspawn_pid)
                        && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                            .is_ok_and(|c| c.trim() == "systemd")
                });
            leader.is_some() || self.nspawn_exited()
        });
        assert!(
            !self.nspawn_exited(),
            "systemd-nspawn ended: {}",
            self.console_text()
        );
        self.leader = leader.unwrap();
        let started = Instant::now();
        let out = loop {
            // Fails while D-Bus is not up yet; `--wait` then waits for
            // the boot to finish.
            let out = self.sh("systemctl is-system-running --wait");
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if state == "running" || state == "degraded" {
                break out;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "the machine did not boot: {state}\n{}",
                self.console_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        if String::from_utf8_lossy(&out.stdout).trim() == "degraded" {
            // Units of the host's image that cannot run in a container;
            // none of ours (tests check their own units).
            eprintln!(
                "machine degraded: {}",
                String::from_utf8_lossy(&self.sh("systemctl --failed --no-legend").stdout)
            );
        }
    }

    fn nspawn_exited(&mut self) -> bool {
        self.nspawn
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    fn console_text(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Runs `script` with `sh -c` as root inside the machine (all of its
    /// namespaces), with a plain root environment.
    pub fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.leader.to_string(), "-a", "--"])
            .args(["/bin/sh", "-c", script])
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// Waits until systemd says `unit` is active; fails naming `what`.
    pub fn wait_active(&self, unit: &str, what: &str, timeout: std::time::Duration) {
        super::wait_until(what, timeout, || {
            self.sh(&format!("systemctl is-active {unit}"))
                .status
                .success()
        });
    }

    /// [`sh`](Self::sh) that must succeed; returns its standard output.
    pub fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "in the machine, `{script}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Installs a package file with apt, as an admin would; returns apt's
    /// output. `deb` is the path inside the machine.
    pub fn install(&self, deb: &str) -> String {
        self.ok(&format!("apt-get install -y {deb} 2>&1"))
    }

    /// The host PIDs of the mount-namespace holder and of nspawn, to
    /// check that they are gone after the machine is dropped.
    pub fn host_pids(&self) -> Vec<u32> {
        let mut pids = vec![self.holder.id()];
        pids.extend(self.nspawn.as_ref().map(Child::id));
        pids
    }

    /// The host directory that holds the machine's mounts.
    pub fn directory(&self) -> &Path {
        self.dir.path()
    }

    /// The machine's PID 1 as the host numbers it: `/proc/PID/root` is
    /// the machine's filesystem.
    pub fn leader(&self) -> u32 {
        self.leader
    }

    /// Runs `f` on a thread inside the machine's network namespace: its
    /// sockets (and those of threads it starts, such as a tokio runtime's)
    /// reach the machine's loopback, not the host's.
    pub fn in_network<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.leader)).unwrap();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    rustix::thread::move_into_link_name_space(
                        ns.as_fd(),
                        Some(rustix::thread::LinkNameSpaceType::Network),
                    )
                    .expect("entering the machine's network namespace");
                    f()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Powers the machine off and boots it again on the same disk.
    pub fn reboot(&mut self) {
        self.power_off();
        self.start();
    }

    /// `systemctl poweroff` inside; waits for nspawn to end.
    fn power_off(&mut self) {
        let _ = self.sh("systemctl poweroff");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.nspawn_exited() {
            if Instant::now() > deadline {
                kill(self.leader);
                panic!("the machine did not power off within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.nspawn = None;
        // Gone with nspawn: its number may soon be another process's.
        self.leader = 0;
    }
}

impl Drop for Machine {
    /// Powers off (or, failing that, kills the machine's PID 1, which ends
    /// everything in it), then ends the holder: its namespace and every
    /// mount in it go away.
    fn drop(&mut self) {
        if !self.nspawn_exited() {
            let _ = self.sh("systemctl poweroff");
            let deadline = Instant::now() + Duration::from_secs(30);
            while !self.nspawn_exited() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if let Some(mut nspawn) = self.nspawn.take() {
                kill(self.leader);
                kill(nspawn.id());
                let _ = nspawn.wait();
            }
        }
        kill(self.holder.id());
        let _ = self.holder.wait();
    }
}
