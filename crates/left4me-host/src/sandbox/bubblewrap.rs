//! The sandbox without systemd: bubblewrap's namespaces, cgroup limits,
//! and a watch on time and output from here.
//!
//! The command is `sh` (joins the build's cgroups, then execs) →
//! `prlimit` (a file may not outgrow the output limit) → `setpriv` (when
//! root: an unprivileged user, no groups, no capabilities, no new
//! privileges) → `bwrap` → `bash /script.sh`. Each step execs the next,
//! so the child this process watches is bubblewrap itself, started with
//! `--die-with-parent`: it and everything in the sandbox end when it or
//! this process dies. As root, `nsenter` first puts it all in the build's
//! filtered network namespace ([`super::network`]); otherwise the build
//! has no network, and says so. As root, `unshare --mount` comes first of
//! all: a private mount namespace where the build's directory is bound at
//! `/tmp/build`, so the build user reaches it whatever the modes of the
//! directories above it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::cgroup::BuildCgroup;
use super::network::{BuildNetwork, Uplink};
use super::{BuildRun, Limits, Overrun, Sandbox, SandboxError, io};
use crate::events::{Ctx, Event};

/// Directories of the host's system the script sees, read-only; links at
/// the top (`/bin` → `usr/bin` on merged-usr systems) are kept as links.
const SYSTEM: &[&str] = &[
    "usr", "etc", "opt", "bin", "sbin", "lib", "lib32", "lib64", "libx32",
];

/// Where the build's directory is bound for bubblewrap when the build runs
/// as another user (in the chain's own mount namespace).
const BOUND_BUILD_DIR: &str = "/tmp/build";

/// Always hidden, besides what the caller names.
const HIDDEN: &[&str] = &["/etc/left4me"];

/// Longest line passed on; a script printing megabytes without a newline
/// must not hold the log hostage.
const MAX_LINE: usize = 4096;

/// How the user the script runs as is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    /// This process's user (when it is not root).
    Current,
    /// An unprivileged user (`nobody` when the panel runs as root).
    User { uid: u32, gid: u32 },
}

#[derive(Debug, Clone)]
pub struct Bubblewrap {
    pub bwrap: PathBuf,
    pub limits: Limits,
    /// `/sys/fs/cgroup`.
    pub cgroup_root: PathBuf,
    pub run_as: RunAs,
}

impl Bubblewrap {
    /// Debian's bubblewrap, the host's cgroups, and `nobody` when root.
    pub fn new(limits: Limits) -> Self {
        let run_as = if rustix::process::geteuid().is_root() {
            RunAs::User {
                uid: 65_534,
                gid: 65_534,
            }
        } else {
            RunAs::Current
        };
        Self {
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            limits,
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            run_as,
        }
    }

    /// Where bubblewrap finds the build's directory: as root, where the
    /// chain's private mount namespace binds it (see [`Self::command`]);
    /// otherwise where it is.
    fn build_dir_seen<'a>(&self, run: &'a BuildRun<'_>) -> &'a Path {
        match self.run_as {
            RunAs::User { .. } => Path::new(BOUND_BUILD_DIR),
            RunAs::Current => run.dir,
        }
    }

    /// `online`: the build has its network namespace and its own
    /// `resolv.conf` (otherwise bubblewrap gives it an empty network).
    fn bwrap_args(&self, run: &BuildRun<'_>, online: bool) -> Vec<String> {
        let dir = self.build_dir_seen(run);
        let mut args: Vec<String> = [
            "--unshare-user",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "left4me-build",
            "--tmpfs",
            "/",
        ]
        .map(str::to_owned)
        .into();
        for name in SYSTEM {
            let host = Path::new("/").join(name);
            match std::fs::symlink_metadata(&host) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(&host) {
                        args.extend([
                            "--symlink".into(),
                            target.display().to_string(),
                            host.display().to_string(),
                        ]);
                    }
                }
                Ok(meta) if meta.is_dir() => {
                    let host = host.display().to_string();
                    args.extend(["--ro-bind".into(), host.clone(), host]);
                }
                _ => {}
            }
        }
        if !online {
            args.push("--unshare-net".into());
        } else if Path::new("/etc/resolv.conf").exists() {
            // Over the host's, which names resolvers the build cannot reach.
            args.extend([
                "--ro-bind".into(),
                dir.join("resolv.conf").display().to_string(),
                "/etc/resolv.conf".into(),
            ]);
        }
        let hidden = HIDDEN
            .iter()
            .map(PathBuf::from)
            .chain(run.hidden.iter().cloned());
        for path in hidden {
            // Only what the system directories above would show.
            if path.is_dir()
                && SYSTEM
                    .iter()
                    .any(|s| path.starts_with(Path::new("/").join(s)))
            {
                args.extend(["--tmpfs".into(), path.display().to_string()]);
            }
        }
        args.extend(
            [
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "--tmpfs",
                "/tmp",
                "--bind",
                &dir.join("layer").display().to_string(),
                "/overlay",
                "--ro-bind",
                &dir.join("script.sh").display().to_string(),
                "/script.sh",
                "--chdir",
                "/overlay",
                "--clearenv",
                "--setenv",
                "PATH",
                "/usr/local/bin:/usr/bin:/bin",
                "--setenv",
                "HOME",
                "/tmp",
                "--setenv",
                "LANG",
                "C.UTF-8",
                "--setenv",
                "OVERLAY",
                "/overlay",
                // The mount points exist now; nothing else is writable.
                "--remount-ro",
                "/",
                "--",
                "/bin/bash",
                "/script.sh",
            ]
            .map(str::to_owned),
        );
        args
    }

    fn command(
        &self,
        run: &BuildRun<'_>,
        cgroup: &BuildCgroup,
        network: Option<&Network>,
    ) -> Command {
        let mut chain: Vec<std::ffi::OsString> = Vec::new();
        if let RunAs::User { .. } = self.run_as {
            // The build user must reach the build's directory whatever
            // the modes above it (a state root made by `mktemp -d` is 0700,
            // and so is /root): a private mount namespace gets a /tmp of
            // its own with the directory bound in it. Nothing of this
            // outlives the chain.
            chain.extend(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "/bin/sh",
                    "-c",
                    // Held open while /tmp is covered (the directory may be below
                    // it) and closed before the sandbox could inherit it.
                    // A failure is said in the log in words (an exit code
                    // could be the script's own).
                    r#"fail() { echo "left4me: the build's directory could not be bound where the build user reaches it: $1" >&2; exit 1; }; [ -d "$1" ] || fail "$1 is not a directory"; exec 3<"$1"; { mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /tmp && mkdir "$2" && mount --no-canonicalize --bind /proc/self/fd/3 "$2"; } || fail "mount failed (see above)"; exec 3<&-; shift 2; exec "$@""#,
                    "sh",
                ]
                .map(Into::into),
            );
            chain.push(run.dir.into());
            chain.push(BOUND_BUILD_DIR.into());
        }
        if let Some(network) = network {
            chain.push("nsenter".into());
            chain.push(format!("--net={}", network.namespace.path().display()).into());
            chain.push("--".into());
        }
        chain.push("/bin/sh".into());
        let mut command = Command::new(&chain[0]);
        command.args(&chain[1..]);
        // Joins every cgroup (the pid is the shell's, which the rest
        // replaces), then runs what follows `--`.
        command.args([
            "-c",
            r#"while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@""#,
            "sh",
        ]);
        command.args(cgroup.procs_files());
        command.args([
            "--".to_owned(),
            "prlimit".to_owned(),
            format!("--fsize={}", self.limits.output_bytes),
            "--".to_owned(),
        ]);
        if let RunAs::User { uid, gid } = self.run_as {
            command.args([
                "setpriv".to_owned(),
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".to_owned(),
                "--inh-caps=-all".to_owned(),
                "--bounding-set=-all".to_owned(),
                "--no-new-privs".to_owned(),
                "--".to_owned(),
            ]);
        }
        command
            .arg(&self.bwrap)
            .args(self.bwrap_args(run, network.is_some()))
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }
}

/// The build's namespace while it runs; removed with its pasta when
/// dropped, a panic included.
struct Network {
    namespace: BuildNetwork,
}

impl Drop for Network {
    fn drop(&mut self) {
        self.namespace.down();
    }
}

/// Forwards a pipe's lines (lossily decoded, cut at [`MAX_LINE`]).
fn forward(
    pipe: impl std::io::Read + Send + 'static,
    stdout: bool,
    tx: mpsc::Sender<(bool, String)>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader
                .by_ref()
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buffer)
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buffer);
                    if tx
                        .send((stdout, line.trim_end_matches('\n').to_owned()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
}

/// Why a run was stopped from here.
#[derive(Clone, Copy)]
enum Stopped {
    Cancelled,
    Time,
    Overrun(Overrun),
}

impl Sandbox for Bubblewrap {
    fn run(&self, run: &BuildRun<'_>, ctx: &Ctx<'_>) -> Result<(), SandboxError> {
        if !self.bwrap.exists() {
            return Err(SandboxError::Unavailable(format!(
                "bubblewrap is not at {} (Debian: apt install bubblewrap)",
                self.bwrap.display()
            )));
        }
        ctx.step(format!(
            "running the script in a sandbox (bubblewrap; {})",
            self.limits.describe()
        ))
        .map_err(|_| SandboxError::Cancelled)?;
        let cgroup = BuildCgroup::create(&self.cgroup_root, run.name, &self.limits);
        for what in cgroup.unenforced() {
            ctx.emit(Event::Stderr(format!("warning: {what} is not enforced")));
        }
        let network = self.network(run, ctx)?;
        let result = self.watch(run, &cgroup, network.as_ref(), ctx);
        drop(network);
        cgroup.remove();
        result
    }
}

impl Bubblewrap {
    /// The build's filtered namespace and its `resolv.conf`, when this
    /// process may make them and they reach the internet; the log says
    /// what the build gets. A build without an uplink gets no namespace of
    /// ours and nothing of its `resolv.conf`: bubblewrap's empty network.
    fn network(&self, run: &BuildRun<'_>, ctx: &Ctx<'_>) -> Result<Option<Network>, SandboxError> {
        let offline = |why: String| {
            ctx.emit(Event::Stderr(Uplink::Offline(why).describe()));
            Ok(None)
        };
        if !rustix::process::geteuid().is_root() {
            return offline(
                "making its filtered network namespace needs a panel running as root".into(),
            );
        }
        let namespace = BuildNetwork::new(run.name);
        match namespace.up() {
            Ok(uplink @ Uplink::Public) => ctx.emit(Event::Step(uplink.describe())),
            Ok(Uplink::Offline(why)) => {
                namespace.down();
                return offline(why);
            }
            Err(e) => return offline(e.to_string()),
        }
        // Held first, so a failure below still removes the namespace; the
        // file is made only now, as a build without network binds nothing
        // of it.
        let network = Network { namespace };
        run.write_resolv_conf()?;
        Ok(Some(network))
    }

    fn watch(
        &self,
        run: &BuildRun<'_>,
        cgroup: &BuildCgroup,
        network: Option<&Network>,
        ctx: &Ctx<'_>,
    ) -> Result<(), SandboxError> {
        if let RunAs::User { uid, gid } = self.run_as {
            // A copy of the previous version included.
            super::open_dir(&run.layer())
                .and_then(|fd| super::chown_tree_at(std::os::fd::AsFd::as_fd(&fd), uid, gid))
                .map_err(io("handing the layer to the build user"))?;
        }
        let mut command = self.command(run, cgroup, network);
        let mut child = crate::spawn::retry_while_text_busy(|| command.spawn())
            .map_err(io("starting bubblewrap"))?;
        let (tx, rx) = mpsc::channel();
        forward(child.stdout.take().expect("piped"), true, tx.clone());
        forward(child.stderr.take().expect("piped"), false, tx);
        let started = Instant::now();
        let mut output = super::OutputWatch::new(run.layer(), &self.limits);
        let mut stopped = None;
        let status = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok((true, line)) => ctx.emit(Event::Stdout(line)),
                Ok((false, line)) => ctx.emit(Event::Stderr(line)),
                Err(_) => {}
            }
            if stopped.is_none() {
                if ctx.is_cancelled() {
                    stopped = Some(Stopped::Cancelled);
                } else if started.elapsed() > self.limits.timeout {
                    stopped = Some(Stopped::Time);
                } else if let Some(overrun) = output.over() {
                    stopped = Some(Stopped::Overrun(overrun));
                }
                if stopped.is_some() {
                    // bubblewrap takes everything in the sandbox with it.
                    let _ = child.kill();
                }
            }
            if let Some(status) = child.try_wait().map_err(io("waiting for bubblewrap"))? {
                break status;
            }
        };
        // What the script printed last.
        while let Ok((stdout, line)) = rx.recv_timeout(Duration::from_millis(200)) {
            ctx.emit(if stdout {
                Event::Stdout(line)
            } else {
                Event::Stderr(line)
            });
        }
        if stopped.is_none() {
            stopped = output.reached().map(Stopped::Overrun);
        }
        self.verdict(status, stopped, cgroup)
    }

    /// What ended the run, in words that name the limit.
    fn verdict(
        &self,
        status: std::process::ExitStatus,
        stopped: Option<Stopped>,
        cgroup: &BuildCgroup,
    ) -> Result<(), SandboxError> {
        let limits = &self.limits;
        let mut hits = Vec::new();
        if cgroup.memory_hit() {
            hits.push(format!(
                "its memory limit ({} MiB) killed a process",
                limits.memory_bytes >> 20
            ));
        }
        if cgroup.tasks_hit() {
            hits.push(format!(
                "its task limit ({} processes) refused new ones",
                limits.tasks
            ));
        }
        match stopped {
            Some(Stopped::Cancelled) => return Err(SandboxError::Cancelled),
            Some(Stopped::Time) => hits.push(format!(
                "it ran past its time limit ({} s) and was stopped",
                limits.timeout.as_secs()
            )),
            Some(Stopped::Overrun(overrun)) => hits.push(overrun.describe(limits)),
            None => {}
        }
        if !hits.is_empty() {
            return Err(SandboxError::LimitHit(format!(
                "the build was stopped: {}",
                hits.join("; ")
            )));
        }
        if status.success() {
            Ok(())
        } else if status.code() == Some(125) {
            Err(SandboxError::Unavailable(
                "the build could not join its cgroup".into(),
            ))
        } else {
            Err(SandboxError::Failed {
                status: status.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(run_as: RunAs, online: bool) -> Vec<String> {
        let sandbox = Bubblewrap {
            run_as,
            ..Bubblewrap::new(Limits::default())
        };
        let dir = Path::new("/state/tmp/builds/b-1");
        sandbox.bwrap_args(
            &BuildRun {
                name: "b-1",
                dir,
                hidden: &[],
            },
            online,
        )
    }

    #[test]
    fn a_build_without_network_binds_nothing_of_it() {
        let nobody = RunAs::User {
            uid: 65_534,
            gid: 65_534,
        };
        let offline = args(nobody, false);
        assert!(offline.contains(&"--unshare-net".to_owned()));
        assert!(
            !offline.iter().any(|a| a.contains("resolv.conf")),
            "{offline:?}"
        );
        let online = args(nobody, true);
        assert!(!online.contains(&"--unshare-net".to_owned()));
        if Path::new("/etc/resolv.conf").exists() {
            assert!(
                online.contains(&"/tmp/build/resolv.conf".to_owned()),
                "{online:?}"
            );
        }
        // As another user the build's directory is where the chain binds
        // it; as oneself, where it is.
        assert!(
            online.contains(&"/tmp/build/layer".to_owned()),
            "{online:?}"
        );
        let own = args(RunAs::Current, false);
        assert!(
            own.contains(&"/state/tmp/builds/b-1/layer".to_owned()),
            "{own:?}"
        );
    }
}
