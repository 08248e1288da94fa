//! The simulated steamcmd program (see the crate docs). Called through a
//! symlink in a simulated steamcmd directory, which it finds from
//! `argv[0]`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{APP_ID, Fault, Manifest, SimConfig, WORKSHOP_APP_ID, WorkshopFault, files_below};

/// steamcmd's stdout: line-flushed on a terminal, block-buffered (4 KiB)
/// otherwise, as the real one is.
struct Out {
    inner: io::BufWriter<io::Stdout>,
    terminal: bool,
}

impl Out {
    fn line(&mut self, text: &str) {
        let _ = writeln!(self.inner, "{text}");
        if self.terminal {
            let _ = self.inner.flush();
        }
    }
}

/// How a run ends early.
enum Stop {
    Exit(i32),
}

struct Run {
    dir: PathBuf,
    config: SimConfig,
    out: Out,
    logged_in: bool,
    install_dir: Option<PathBuf>,
    platform: String,
}

fn counter(file: &Path) -> u32 {
    let n = std::fs::read_to_string(file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
        + 1;
    let _ = std::fs::write(file, n.to_string());
    n
}

fn manifest(dir: &Path) -> PathBuf {
    dir.join("steamapps")
        .join(format!("appmanifest_{APP_ID}.acf"))
}

/// `(StateFlags, buildid)` of the manifest in `dir`, if any.
fn read_manifest(dir: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(manifest(dir)).ok()?;
    let value = |key: &str| {
        text.lines().find_map(|l| {
            let mut words = l.split('"').filter(|w| !w.trim().is_empty());
            (words.next()? == key).then(|| words.next().map(str::to_owned))?
        })
    };
    Some((value("StateFlags")?, value("buildid").unwrap_or_default()))
}

fn write_manifest(dir: &Path, flags: &str, build: &str, size: u64) -> io::Result<()> {
    std::fs::create_dir_all(dir.join("steamapps"))?;
    std::fs::write(
        manifest(dir),
        format!(
            "\"AppState\"\n{{\n\t\"appid\"\t\t\"{APP_ID}\"\n\t\"Universe\"\t\t\"1\"\n\
             \t\"name\"\t\t\"Left 4 Dead 2 Dedicated Server\"\n\t\"StateFlags\"\t\t\"{flags}\"\n\
             \t\"installdir\"\t\t\"Left 4 Dead 2 Dedicated Server\"\n\t\"SizeOnDisk\"\t\t\"{size}\"\n\
             \t\"buildid\"\t\t\"{build}\"\n}}\n"
        ),
    )
}

impl Run {
    fn sim(&self) -> PathBuf {
        self.dir.join("sim")
    }

    fn public(&self) -> Option<String> {
        std::fs::read_to_string(self.sim().join("public"))
            .ok()
            .map(|t| t.trim().to_owned())
    }

    fn command(&mut self, name: &str, args: &[String]) -> Result<(), Stop> {
        match name {
            "force_install_dir" => {
                if self.logged_in {
                    self.out.line("Please use force_install_dir before logon!");
                } else if let Some(dir) = args.first() {
                    self.install_dir = Some(PathBuf::from(dir));
                }
            }
            "login" => self.login(args.first().map_or("", String::as_str))?,
            "@sSteamCmdForcePlatformType" => {
                self.platform = args.first().cloned().unwrap_or_default();
            }
            "app_update" => {
                if !self.logged_in {
                    self.out.line("ERROR! Not logged on.");
                    return Ok(());
                }
                let validate = args.iter().any(|a| a == "validate");
                self.app_update(validate)?;
            }
            "workshop_download_item" => {
                if !self.logged_in {
                    self.out.line("ERROR! Not logged on.");
                    return Ok(());
                }
                let app = args.first().and_then(|a| a.parse::<u32>().ok());
                let item = args.get(1).and_then(|a| a.parse::<u64>().ok());
                match app.zip(item) {
                    Some((app, item)) => self.workshop_download(app, item),
                    None => self
                        .out
                        .line("Usage: workshop_download_item <appid> <PublishedFileId> [validate]"),
                }
            }
            "app_info_update" => {}
            "app_info_print" => self.app_info_print(),
            "quit" => {
                self.out.line("Unloading Steam API...OK");
                return Err(Stop::Exit(0));
            }
            other => self.out.line(&format!("Command \"{other}\" not found.")),
        }
        Ok(())
    }

    fn login(&mut self, user: &str) -> Result<(), Stop> {
        if user != "anonymous" {
            self.out
                .line(&format!("Logging in user '{user}' to Steam Public..."));
            self.out.line("FAILED (Invalid Password)");
            return Err(Stop::Exit(5));
        }
        self.out.line("Connecting anonymously to Steam Public...OK");
        self.out.line("Waiting for client config...OK");
        self.out.line("Waiting for user info...OK");
        if self.config.fault == Some(Fault::LoginFailure) {
            self.out.line("FAILED (No Connection)");
            return Err(Stop::Exit(5));
        }
        self.logged_in = true;
        Ok(())
    }

    fn app_info_print(&mut self) {
        let runs = counter(&self.sim().join("info-runs"));
        let Some(build) = self
            .public()
            .filter(|_| runs > self.config.app_info_empty_runs)
        else {
            self.out.line(&format!(
                "No app info for AppID {APP_ID} found, requesting..."
            ));
            return;
        };
        self.out.line(&format!(
            "AppID : {APP_ID}, change number : 1/0, last change : Sat Nov 28 00:00:00 2026"
        ));
        for line in [
            format!("\"{APP_ID}\""),
            "{".into(),
            "\t\"common\"".into(),
            "\t{".into(),
            "\t\t\"name\"\t\t\"Left 4 Dead 2 Dedicated Server\"".into(),
            "\t}".into(),
            "\t\"depots\"".into(),
            "\t{".into(),
            "\t\t\"branches\"".into(),
            "\t\t{".into(),
            "\t\t\t\"public\"".into(),
            "\t\t\t{".into(),
            format!("\t\t\t\t\"buildid\"\t\t\"{build}\""),
            "\t\t\t\t\"timeupdated\"\t\t\"1795824000\"".into(),
            "\t\t\t}".into(),
            "\t\t}".into(),
            "\t}".into(),
            "}".into(),
        ] {
            self.out.line(&line);
        }
    }

    fn fault(&mut self) -> Option<Fault> {
        let runs = counter(&self.sim().join("update-runs"));
        let fault = self.config.fault.clone()?;
        (self.config.fault_runs == 0 || runs <= self.config.fault_runs).then_some(fault)
    }

    fn app_update(&mut self, validate: bool) -> Result<(), Stop> {
        let dir = self.install_dir.clone().unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join("Steam/steamapps/common/Left 4 Dead 2 Dedicated Server")
        });
        self.out
            .line(" Update state (0x3) reconfiguring, progress: 0.00 (0 / 0)");
        match self.fault() {
            Some(Fault::State(code)) => {
                self.out
                    .line(" Update state (0x61) downloading, progress: 0.00 (0 / 1048576)");
                self.out.line(&format!(
                    "Error! App '{APP_ID}' state is 0x{code:x} after update job."
                ));
                // The real one sometimes exits 0 after a failed download.
                return Err(Stop::Exit(if code == 0x602 { 0 } else { 8 }));
            }
            Some(Fault::MissingConfiguration) => {
                self.out.line(&format!(
                    "ERROR! Failed to install app '{APP_ID}' (Missing configuration)"
                ));
                return Err(Stop::Exit(8));
            }
            Some(Fault::NoSubscription) => {
                self.out.line(&format!(
                    "ERROR! Failed to install app '{APP_ID}' (No subscription)"
                ));
                return Err(Stop::Exit(8));
            }
            Some(Fault::Hang) => {
                self.out
                    .line(" Update state (0x61) downloading, progress: 0.00 (0 / 1048576)");
                let _ = self.out.inner.flush();
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            Some(Fault::LoginFailure) | None => {}
        }
        if self.platform == "windows" {
            let manifest = self.config.windows_pass_installs;
            let written = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(dir.join("srcds.exe"), b"MZ simulated"))
                .and_then(|()| {
                    if manifest {
                        write_manifest(&dir, "4", "0", 0)
                    } else {
                        Ok(())
                    }
                });
            if let Err(e) = written {
                self.out.line(&format!("write failed: {e}"));
                self.out.line(&format!(
                    "Error! App '{APP_ID}' state is 0x606 after update job."
                ));
                return Err(Stop::Exit(8));
            }
            self.out
                .line(&format!("Success! App '{APP_ID}' fully installed."));
            return Ok(());
        }
        let installed = read_manifest(&dir);
        let seeded = self.config.seeded_manifest_works;
        let known = installed
            .as_ref()
            .is_some_and(|(flags, _)| flags == "4" || (flags == "2" && seeded));
        if self.config.invalid_platform && !known {
            self.out.line(&format!(
                "ERROR! Failed to install app '{APP_ID}' (Invalid platform)"
            ));
            return Err(Stop::Exit(8));
        }
        let Some(public) = self.public() else {
            self.out.line(&format!(
                "ERROR! Failed to install app '{APP_ID}' (No Steam depot)"
            ));
            return Err(Stop::Exit(8));
        };
        let old = installed.map(|(_, build)| build).unwrap_or_default();
        self.sync(&dir, &old, &public, validate)
    }

    /// Makes `dir` match the public build's depot.
    fn sync(&mut self, dir: &Path, old: &str, public: &str, validate: bool) -> Result<(), Stop> {
        let fail = |e: io::Error| e;
        let depot = self.sim().join("depot").join(public);
        let files = files_below(&depot).unwrap_or_default();
        let depots = self.sim().join("depot");
        let manifests = Manifest::load(&depots, old).zip(Manifest::load(&depots, public));
        let changed: Vec<&PathBuf> = files
            .iter()
            .filter(|f| {
                // Between two known builds without validate, as Steam
                // does: the manifests say what changed.
                if let (Some((from, to)), false) = (&manifests, validate) {
                    let key = f.to_string_lossy();
                    return from.files.get(key.as_ref()) != to.files.get(key.as_ref())
                        || !dir.join(f).exists();
                }
                let target = dir.join(f);
                let same_size = target
                    .metadata()
                    .ok()
                    .zip(depot.join(f).metadata().ok())
                    .is_some_and(|(a, b)| a.len() == b.len());
                if old == public && !validate {
                    !same_size
                } else {
                    !same_size || std::fs::read(&target).ok() != std::fs::read(depot.join(f)).ok()
                }
            })
            .collect();
        let old_files = files_below(&self.sim().join("depot").join(old)).unwrap_or_default();
        let current: std::collections::BTreeSet<&PathBuf> = files.iter().collect();
        let gone: Vec<&PathBuf> = old_files
            .iter()
            .filter(|f| !current.contains(f) && dir.join(f).exists())
            .collect();
        if old == public && changed.is_empty() && gone.is_empty() {
            self.out
                .line(&format!("Success! App '{APP_ID}' already up to date."));
            return Ok(());
        }
        let total: u64 = changed
            .iter()
            .filter_map(|f| depot.join(f).metadata().ok())
            .map(|m| m.len())
            .sum();
        let result = (|| -> io::Result<()> {
            let staging = dir.join("steamapps/downloading").join(APP_ID.to_string());
            let mut done = 0u64;
            for f in &changed {
                let bytes = std::fs::read(depot.join(f))?;
                done += bytes.len() as u64;
                self.progress(done, bytes.len() as u64, total);
                let target = dir.join(f);
                if target.exists() {
                    // In place: whoever shares this inode sees the change.
                    let mut file = std::fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(&target)?;
                    file.write_all(&bytes)?;
                } else {
                    let staged = staging.join(f);
                    std::fs::create_dir_all(staged.parent().expect("a file has a parent"))?;
                    std::fs::write(&staged, &bytes)?;
                    std::fs::set_permissions(&staged, depot.join(f).metadata()?.permissions())?;
                    std::fs::create_dir_all(target.parent().expect("a file has a parent"))?;
                    std::fs::rename(&staged, &target)?;
                }
            }
            for f in &gone {
                std::fs::remove_file(dir.join(f))?;
            }
            let _ = std::fs::remove_dir_all(&staging);
            self.out.line(&format!(
                " Update state (0x81) verifying update, progress: 100.00 ({total} / {total})"
            ));
            write_manifest(dir, "4", public, total)
        })()
        .map_err(fail);
        match result {
            Ok(()) => {
                self.out
                    .line(&format!("Success! App '{APP_ID}' fully installed."));
                Ok(())
            }
            Err(e) => {
                self.out.line(&format!("write failed: {e}"));
                self.out.line(&format!(
                    "Error! App '{APP_ID}' state is 0x606 after update job."
                ));
                Err(Stop::Exit(8))
            }
        }
    }

    /// The fault for this download of `item`, if it gets one: a
    /// `Failure` only for the item's first `fault_runs` downloads.
    fn workshop_fault(&self, item: u64) -> Option<WorkshopFault> {
        let fault = *self.config.workshop_faults.get(&item)?;
        let runs = counter(&self.sim().join(format!("workshop-runs-{item}")));
        let limited = fault == WorkshopFault::Failure && self.config.fault_runs > 0;
        (!limited || runs <= self.config.fault_runs).then_some(fault)
    }

    /// `workshop_download_item APP ITEM`. A failed download does not end
    /// the run or change its exit code, as with the real one.
    fn workshop_download(&mut self, app: u32, item: u64) {
        self.out.line(&format!("Downloading item {item} ..."));
        let failed = |reason: &str| format!("ERROR! Download item {item} failed ({reason}).");
        // Assumed: an app without this item fails like a transient error.
        if app != WORKSHOP_APP_ID {
            self.out.line(&failed("Failure"));
            return;
        }
        match self.workshop_fault(item) {
            Some(WorkshopFault::Failure) => return self.out.line(&failed("Failure")),
            Some(WorkshopFault::AccessDenied) => return self.out.line(&failed("Access Denied")),
            Some(WorkshopFault::FileNotFound) => return self.out.line(&failed("File Not Found")),
            None => {}
        }
        let Ok(content) = std::fs::read(self.sim().join("workshop").join(item.to_string())) else {
            return self.out.line(&failed("File Not Found"));
        };
        let root = self.install_dir.clone().unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join("Steam")
        });
        let workshop = root.join("steamapps/workshop");
        let app = WORKSHOP_APP_ID.to_string();
        let staging = workshop.join("downloads").join(&app).join(item.to_string());
        let content_dir = workshop.join("content").join(&app).join(item.to_string());
        let file = format!("{item}_legacy.bin");
        // Paced by the set speed, silently: steamcmd prints no progress
        // for Workshop items.
        let speed = self.config.bytes_per_second.max(1);
        let _ = self.out.inner.flush();
        std::thread::sleep(Duration::from_secs_f64(content.len() as f64 / speed as f64));
        let written = (|| -> io::Result<()> {
            std::fs::create_dir_all(&staging)?;
            std::fs::write(staging.join(&file), &content)?;
            std::fs::create_dir_all(&content_dir)?;
            std::fs::rename(staging.join(&file), content_dir.join(&file))?;
            std::fs::remove_dir(&staging)
        })();
        match written {
            Ok(()) => self.out.line(&format!(
                "Success. Downloaded item {item} to \"{}\" ({} bytes)",
                content_dir.display(),
                content.len()
            )),
            Err(e) => {
                self.out.line(&format!("write failed: {e}"));
                self.out.line(&failed("Failure"));
            }
        }
    }

    /// Progress lines for a file of `chunk` bytes ending at `done`, paced
    /// by the set speed.
    fn progress(&mut self, done: u64, chunk: u64, total: u64) {
        let speed = self.config.bytes_per_second.max(1);
        let wait = Duration::from_secs_f64(chunk as f64 / speed as f64 / 4.0);
        for quarter in 1..=4u64 {
            std::thread::sleep(wait.min(Duration::from_secs(5)));
            let shown = done.saturating_sub(chunk) + chunk * quarter / 4;
            let percent = if total == 0 {
                100.0
            } else {
                shown as f64 * 100.0 / total as f64
            };
            self.out.line(&format!(
                " Update state (0x61) downloading, progress: {percent:.2} ({shown} / {total})"
            ));
        }
    }
}

/// The program: runs `argv` and exits with steamcmd's exit code.
pub fn main() -> ! {
    let args: Vec<String> = std::env::args().collect();
    let program = PathBuf::from(args.first().cloned().unwrap_or_default());
    let dir = program
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let config: SimConfig = std::fs::read(dir.join("sim/config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if let Ok(mut log) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("sim/invocations.log"))
    {
        let _ = writeln!(
            log,
            "{}",
            serde_json::to_string(&args[1..]).unwrap_or_default()
        );
    }
    let stdout = io::stdout();
    let terminal = rustix::termios::isatty(&stdout);
    let mut run = Run {
        dir,
        config,
        out: Out {
            inner: io::BufWriter::with_capacity(4096, stdout),
            terminal,
        },
        logged_in: false,
        install_dir: None,
        platform: "linux".into(),
    };
    run.out
        .line("Redirecting stderr to 'Steam/logs/stderr.txt'");
    run.out
        .line("Steam Console Client (c) Valve Corporation - version 1732999999");
    run.out.line("-- type 'quit' to exit --");
    run.out.line("Loading Steam API...OK");
    let mut code = 0;
    let mut i = 1;
    while i < args.len() {
        let Some(name) = args[i].strip_prefix('+') else {
            i += 1;
            continue;
        };
        let mut end = i + 1;
        while end < args.len() && !args[end].starts_with('+') {
            end += 1;
        }
        if let Err(Stop::Exit(c)) = run.command(name, &args[i + 1..end]) {
            code = c;
            break;
        }
        i = end;
    }
    let _ = run.out.inner.flush();
    std::process::exit(code);
}
