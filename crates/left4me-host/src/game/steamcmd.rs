//! Running Valve's steamcmd and reading what it says.
//!
//! steamcmd block-buffers its output without a terminal (progress would
//! arrive at the end), so it runs under a pseudo-terminal. Its exit code
//! is no proof of anything: success is its success line. It runs in a
//! process group of its own, so a cancel or a stall ends all of it.
//!
//! It also downloads Workshop items (`workshop_download_item`): the
//! fallback for the items whose `file_url` is not the map.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{GameError, ItemUnavailable, RETRIES};
use crate::events::{Cancelled, Ctx, Event};

/// Steam's app id of the Left 4 Dead 2 dedicated server.
pub const APP_ID: u32 = 222_860;

/// Steam's app id of the game, whose Workshop the items are in.
pub const WORKSHOP_APP_ID: u32 = 550;

/// How steamcmd is found and run.
#[derive(Debug, Clone)]
pub struct Steamcmd {
    /// The program (`steamcmd.sh` of Valve's tarball, or Debian's
    /// `/usr/games/steamcmd`), called by absolute path.
    pub program: PathBuf,
    /// A run that prints nothing for this long is ended as hung.
    pub stall_timeout: Duration,
    /// The first wait before retrying a network failure; it doubles.
    pub retry_backoff: Duration,
}

/// One line of steamcmd's output, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// ` Update state (0x61) downloading, progress: 45.12 (1234 / 5678)`
    Progress {
        state: String,
        phase: String,
        done: u64,
        total: u64,
    },
    Success {
        up_to_date: bool,
    },
    /// `Error! App '222860' state is 0x202 after update job.`
    State(u32),
    /// `ERROR! Failed to install app '222860' (REASON)`
    Failed(String),
    /// `Success. Downloaded item ID to "DIR" (BYTES bytes)`
    ItemDownloaded {
        item: u64,
        dir: PathBuf,
    },
    /// `ERROR! Download item ID failed (REASON).`
    ItemFailed {
        item: u64,
        reason: String,
    },
    LoginFailed,
    /// steamcmd ignored the install directory (ours would be a bug).
    ForceInstallDirAfterLogin,
    Other,
}

/// Reads one line of steamcmd's output.
pub fn classify(line: &str) -> Line {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("Update state (") {
        return progress(rest).unwrap_or(Line::Other);
    }
    if line.starts_with("Success! App '") {
        return Line::Success {
            up_to_date: line.contains("already up to date"),
        };
    }
    if let Some(rest) = line.strip_prefix("Error! App '")
        && let Some(code) = rest
            .split("state is 0x")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
    {
        return Line::State(code);
    }
    if line.starts_with("ERROR! Failed to install app")
        && let (Some(open), Some(close)) = (line.rfind('('), line.rfind(')'))
        && open < close
    {
        return Line::Failed(line[open + 1..close].to_owned());
    }
    if let Some(rest) = line.strip_prefix("Success. Downloaded item ")
        && let Some((item, rest)) = rest.split_once(" to \"")
        && let Some((dir, _)) = rest.rsplit_once('"')
        && let Ok(item) = item.parse()
    {
        return Line::ItemDownloaded {
            item,
            dir: PathBuf::from(dir),
        };
    }
    if let Some(rest) = line.strip_prefix("ERROR! Download item ")
        && let Some((item, rest)) = rest.split_once(" failed (")
        && let Some((reason, _)) = rest.rsplit_once(')')
        && let Ok(item) = item.parse()
    {
        return Line::ItemFailed {
            item,
            reason: reason.to_owned(),
        };
    }
    if line.starts_with("FAILED") || line.contains("Login Failure") {
        return Line::LoginFailed;
    }
    if line.contains("Please use force_install_dir before logon") {
        return Line::ForceInstallDirAfterLogin;
    }
    Line::Other
}

/// `0x61) downloading, progress: 45.12 (1234 / 5678)`
fn progress(rest: &str) -> Option<Line> {
    let (state, rest) = rest.split_once(')')?;
    let (phase, rest) = rest.split_once(", progress:")?;
    let counts = rest.split_once('(')?.1.split_once(')')?.0;
    let (done, total) = counts.split_once('/')?;
    Some(Line::Progress {
        state: state.trim().to_owned(),
        phase: phase.trim().to_owned(),
        done: done.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
    })
}

/// What one run of steamcmd came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// It printed its success line.
    Success {
        up_to_date: bool,
    },
    /// It said it downloaded a Workshop item into `dir`.
    Downloaded {
        item: u64,
        dir: PathBuf,
    },
    /// It printed a failure (the first one seen) and its line.
    Failure(Line, String),
    /// It ended without saying either.
    Silent,
    /// It printed nothing for the stall timeout and was ended.
    Stalled,
    Cancelled,
}

/// A finished run: how it ended, the largest byte total it announced, and
/// its last lines (for error messages).
#[derive(Debug, Clone)]
pub struct Run {
    pub ended: Ended,
    /// Its exit status, as text.
    pub status: String,
    pub total_bytes: u64,
    pub last_lines: Vec<String>,
    pub output: String,
}

/// The account steamcmd runs as, when not the current one.
#[derive(Debug, Clone, Copy)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl Steamcmd {
    /// Runs steamcmd with `commands` (`+force_install_dir`, `+login`, ...)
    /// under a pseudo-terminal, reporting its lines and progress to `ctx`.
    pub fn run(
        &self,
        commands: &[String],
        home: &Path,
        run_as: Option<RunAs>,
        ctx: &Ctx<'_>,
    ) -> std::io::Result<Run> {
        let (master, slave) = open_pty()?;
        let mut command = Command::new(&self.program);
        command
            .args(commands)
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(slave.try_clone()?)
            .stderr(slave)
            .process_group(0);
        if let Some(who) = run_as {
            command.uid(who.uid).gid(who.gid);
        }
        let mut child = crate::spawn::retry_while_text_busy(|| command.spawn())?;
        // The child holds the terminal now; ours is closed with `command`.
        drop(command);
        let pid = rustix::process::Pid::from_child(&child);
        let lines = read_lines(master);
        let mut run = Run {
            ended: Ended::Silent,
            status: String::new(),
            total_bytes: 0,
            last_lines: Vec::new(),
            output: String::new(),
        };
        let mut verdict: Option<Ended> = None;
        let mut last_output = Instant::now();
        let mut phase = String::new();
        loop {
            match lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    last_output = Instant::now();
                    run.output.push_str(&line);
                    run.output.push('\n');
                    run.last_lines.push(line.clone());
                    if run.last_lines.len() > 20 {
                        run.last_lines.remove(0);
                    }
                    match classify(&line) {
                        Line::Progress {
                            phase: p,
                            state,
                            done,
                            total,
                        } => {
                            if p != phase {
                                ctx.emit(Event::Step(format!("steamcmd: {p} (state {state})")));
                                phase = p;
                            }
                            run.total_bytes = run.total_bytes.max(total);
                            ctx.emit(Event::Progress { done, total });
                        }
                        Line::Other => ctx.emit(Event::Stdout(line)),
                        // The last verdict counts: a run with a Windows
                        // pass first succeeds once, then may fail.
                        said => {
                            ctx.emit(Event::Stdout(line.clone()));
                            if !ended_by_us(verdict.as_ref()) {
                                verdict = Some(match said {
                                    Line::Success { up_to_date } => Ended::Success { up_to_date },
                                    Line::ItemDownloaded { item, dir } => {
                                        Ended::Downloaded { item, dir }
                                    }
                                    failure => Ended::Failure(failure, line),
                                });
                            }
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if ctx.is_cancelled() {
                        verdict = Some(Ended::Cancelled);
                        end_group(pid, &mut child);
                    } else if last_output.elapsed() >= self.stall_timeout {
                        verdict = Some(Ended::Stalled);
                        end_group(pid, &mut child);
                    }
                }
                // The terminal closed: every process of the run is gone.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        run.status = child.wait()?.to_string();
        run.ended = verdict.unwrap_or(Ended::Silent);
        Ok(run)
    }

    /// Runs `attempt` until it is done, or up to [`RETRIES`] times while
    /// it fails transiently, waiting `retry_backoff` before the first
    /// retry and twice as long before each next one.
    pub(super) fn with_retries<T>(
        &self,
        ctx: &Ctx<'_>,
        mut attempt: impl FnMut() -> Result<Attempted<T>, GameError>,
    ) -> Result<T, GameError> {
        let mut wait = self.retry_backoff;
        for n in 1..=RETRIES {
            ctx.step(format!("running steamcmd (attempt {n} of {RETRIES})..."))?;
            let (error, why) = match attempt()? {
                Attempted::Done(done) => return Ok(done),
                Attempted::Transient { error, why } => (error, why),
            };
            if n == RETRIES {
                return Err(error);
            }
            ctx.emit(Event::Step(format!(
                "steamcmd: {why}; retrying in {} s",
                wait.as_secs_f32()
            )));
            ctx.sleep(wait)?;
            wait *= 2;
        }
        unreachable!("the last attempt returns")
    }

    /// The error for a run that did not do `what` (\"the game is
    /// installed\") for the reasons any run can fail: cancelled, stalled,
    /// no login, a failure line, or silence.
    pub(super) fn unsuccessful(&self, run: Run, what: &str) -> GameError {
        match run.ended {
            Ended::Cancelled => Cancelled.into(),
            Ended::Stalled => GameError::Stalled(self.stall_timeout.as_secs()),
            Ended::Failure(Line::LoginFailed, line) => GameError::LoginFailed(line),
            Ended::Failure(_, line) => GameError::Failed(line),
            // A success line of another kind says nothing of `what`.
            Ended::Silent | Ended::Success { .. } | Ended::Downloaded { .. } => {
                GameError::NoSuccess {
                    what: what.to_owned(),
                    status: run.status,
                    last: run.last_lines.join(" | "),
                }
            }
        }
    }

    /// Downloads Workshop item `item` of the game with
    /// `workshop_download_item` into `dir` (steamcmd's
    /// `force_install_dir`), retrying `(Failure)`, and returns its file,
    /// `steamapps/workshop/content/550/ITEM/*_legacy.bin` (the VPK). It
    /// stays there until the next download of the item.
    pub fn download_workshop_item(
        &self,
        item: u64,
        dir: &Path,
        home: &Path,
        run_as: Option<RunAs>,
        ctx: &Ctx<'_>,
    ) -> Result<PathBuf, GameError> {
        let commands: Vec<String> = vec![
            "+force_install_dir".into(),
            dir.display().to_string(),
            "+login".into(),
            "anonymous".into(),
            "+workshop_download_item".into(),
            WORKSHOP_APP_ID.to_string(),
            item.to_string(),
            "+quit".into(),
        ];
        let what = format!("item {item} was downloaded");
        self.with_retries(ctx, || {
            let run = self
                .run(&commands, home, run_as, ctx)
                .map_err(super::io(format!("running {}", self.program.display())))?;
            match run.ended {
                Ended::Downloaded { item: got, dir } if got == item => {
                    legacy_bin(item, &dir).map(Attempted::Done)
                }
                Ended::Failure(Line::ItemFailed { reason, .. }, _) => match reason.as_str() {
                    "Failure" => Ok(Attempted::Transient {
                        error: GameError::ItemFailed {
                            item,
                            reason: format!(
                                "Steam answered (Failure) {RETRIES} times; try again later"
                            ),
                        },
                        why: format!("download of item {item} failed (Failure)"),
                    }),
                    "Access Denied" => Err(ItemUnavailable::Private(item).into()),
                    "File Not Found" => Err(ItemUnavailable::Deleted(item).into()),
                    _ => Err(GameError::ItemFailed { item, reason }),
                },
                _ => Err(self.unsuccessful(run, &what)),
            }
        })
    }
}

/// One attempt of a run [`Steamcmd::with_retries`] repeats.
pub(super) enum Attempted<T> {
    Done(T),
    /// A failure worth another try; `error` if it was the last one,
    /// `why` for the message before the wait.
    Transient {
        error: GameError,
        why: String,
    },
}

/// The item's file in the directory steamcmd named: the `*_legacy.bin`
/// there (the newest, should an older download have left another).
fn legacy_bin(item: u64, dir: &Path) -> Result<PathBuf, GameError> {
    let entries = std::fs::read_dir(dir).map_err(super::io(format!(
        "reading {} (item {item})",
        dir.display()
    )))?;
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_legacy.bin"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, path)| path)
        .ok_or_else(|| GameError::ItemFailed {
            item,
            reason: format!(
                "steamcmd said it downloaded it to {}, but there is no *_legacy.bin there",
                dir.display()
            ),
        })
}

/// Whether we ended the run (cancel, stall): what it prints while dying
/// does not change that.
fn ended_by_us(verdict: Option<&Ended>) -> bool {
    matches!(verdict, Some(Ended::Cancelled | Ended::Stalled))
}

/// SIGTERM to the whole group, then SIGKILL if it lingers.
fn end_group(pid: rustix::process::Pid, child: &mut std::process::Child) {
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

/// A new pseudo-terminal: the reading end and the child's end.
fn open_pty() -> std::io::Result<(std::fs::File, std::fs::File)> {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
        .open(std::ffi::OsStr::from_bytes(name.to_bytes()))?;
    // No echo and no CR/LF rewriting: the child only writes.
    let mut termios = rustix::termios::tcgetattr(&slave)?;
    termios.make_raw();
    rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &termios)?;
    Ok((std::fs::File::from(master), slave))
}

/// Lines from the terminal's reading end, split at `\n` and at the `\r`
/// steamcmd rewrites progress with; the channel closes when all writers
/// are gone (the kernel then answers `EIO`).
fn read_lines(mut master: std::fs::File) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut pending = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    for &b in &buf[..n] {
                        if b == b'\n' || b == b'\r' {
                            if !pending.is_empty() {
                                let line = String::from_utf8_lossy(&pending).into_owned();
                                pending.clear();
                                if tx.send(line).is_err() {
                                    return;
                                }
                            }
                        } else {
                            pending.push(b);
                        }
                    }
                }
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(String::from_utf8_lossy(&pending).into_owned());
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_steamcmds_lines() {
        assert_eq!(
            classify(" Update state (0x61) downloading, progress: 45.12 (1234 / 5678)"),
            Line::Progress {
                state: "0x61".into(),
                phase: "downloading".into(),
                done: 1234,
                total: 5678
            }
        );
        assert_eq!(
            classify("Success! App '222860' fully installed."),
            Line::Success { up_to_date: false }
        );
        assert_eq!(
            classify("Success! App '222860' already up to date."),
            Line::Success { up_to_date: true }
        );
        assert_eq!(
            classify("Error! App '222860' state is 0x202 after update job."),
            Line::State(0x202)
        );
        assert_eq!(
            classify("ERROR! Failed to install app '222860' (Invalid platform)"),
            Line::Failed("Invalid platform".into())
        );
        assert_eq!(
            classify(
                "Success. Downloaded item 123 to \"/s/steamapps/workshop/content/550/123\" (42 bytes)"
            ),
            Line::ItemDownloaded {
                item: 123,
                dir: "/s/steamapps/workshop/content/550/123".into()
            }
        );
        assert_eq!(
            classify("ERROR! Download item 123 failed (Access Denied)."),
            Line::ItemFailed {
                item: 123,
                reason: "Access Denied".into()
            }
        );
        assert_eq!(classify("FAILED (Invalid Password)"), Line::LoginFailed);
        assert_eq!(classify("Loading Steam API...OK"), Line::Other);
    }
}
