//! Backups against Debian's real `restic`: a repository made once, a
//! backup that restores byte for byte and deduplicates the next, retention,
//! a backup killed with SIGKILL that leaves the repository usable, a
//! damaged repository and a wrong password named as such.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use left4me_host::backup::{BackupError, Keep, Restic};
use left4me_host::events::{CancellationToken, Ctx, Event};

const RESTIC: &str = "/usr/bin/restic";

fn restic(dir: &Path, password: &str) -> Restic {
    assert!(
        Path::new(RESTIC).exists(),
        "{RESTIC} is missing: install Debian's restic (./run-tests does); this test does not skip"
    );
    let password_file = dir.join(format!("password-{password}"));
    std::fs::write(&password_file, password).unwrap();
    Restic {
        program: RESTIC.into(),
        repository: dir.join("repo").display().to_string(),
        password_file,
        cache_dir: dir.join("cache"),
    }
}

/// A directory of files to back up: a config, a map and a cache.
fn panel_files(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("maps")).unwrap();
    std::fs::create_dir_all(data.join("cache")).unwrap();
    std::fs::write(data.join("server.cfg"), "sv_cheats 0\n").unwrap();
    std::fs::write(data.join("maps/c1m1.vpk"), random_bytes(1 << 20)).unwrap();
    std::fs::write(data.join("cache/big.bin"), random_bytes(1 << 20)).unwrap();
    data
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    bytes
}

fn quiet() -> (CancellationToken, impl Fn(Event) + Send + Sync) {
    (CancellationToken::new(), |_: Event| {})
}

#[test]
fn a_backup_restores_what_it_took_and_the_next_adds_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = restic(dir.path(), "correct horse");
    let (cancel, sink) = quiet();
    let ctx = Ctx::new(&sink, &cancel);
    assert!(repo.ensure_repository(&ctx).unwrap(), "made");
    assert!(!repo.ensure_repository(&ctx).unwrap(), "made once");

    let data = panel_files(dir.path());
    let progress = Mutex::new(Vec::new());
    let record = |e: Event| progress.lock().unwrap().push(e);
    let ctx_with_progress = Ctx::new(&record, &cancel);
    let first = repo
        .backup(
            &[&data],
            &[&data.join("cache")],
            &["panel"],
            &ctx_with_progress,
        )
        .unwrap();
    assert_eq!(first.files_new, 2, "{first:?}");
    assert!(first.data_added > 1 << 20, "{first:?}");

    let snapshots = repo.snapshots(&ctx).unwrap();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].tags, ["panel"]);
    assert_eq!(snapshots[0].paths, [data.display().to_string()]);
    assert!(
        snapshots[0].id.starts_with(&first.snapshot_id[..8])
            || snapshots[0].id == first.snapshot_id
    );

    // Byte for byte, without what was left out.
    let target = dir.path().join("restored");
    repo.restore(&snapshots[0].id, &target, &[], &ctx).unwrap();
    let back = target.join(data.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read(back.join("maps/c1m1.vpk")).unwrap(),
        std::fs::read(data.join("maps/c1m1.vpk")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(back.join("server.cfg")).unwrap(),
        "sv_cheats 0\n"
    );
    assert!(!back.join("cache").exists(), "the cache was left out");

    // Unchanged: the next snapshot adds (almost) nothing.
    let second = repo
        .backup(&[&data], &[&data.join("cache")], &["panel"], &ctx)
        .unwrap();
    assert_eq!(second.files_unmodified, 2, "{second:?}");
    assert!(second.data_added < 64 * 1024, "{second:?}");

    // Kept: one a day.
    repo.forget(
        Keep {
            daily: 1,
            weekly: 0,
            monthly: 0,
        },
        &ctx,
    )
    .unwrap();
    assert_eq!(repo.snapshots(&ctx).unwrap().len(), 1);
    repo.check(100, &ctx).unwrap();
}

#[test]
fn a_backup_killed_with_sigkill_leaves_the_repository_usable() {
    let dir = tempfile::tempdir().unwrap();
    let repo = restic(dir.path(), "correct horse");
    let (cancel, sink) = quiet();
    let ctx = Ctx::new(&sink, &cancel);
    repo.ensure_repository(&ctx).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for n in 0..8 {
        std::fs::write(data.join(format!("{n}.bin")), random_bytes(16 << 20)).unwrap();
    }

    // restic itself, as the panel would run it, killed mid-way.
    let mut child = Command::new(RESTIC)
        .args(["backup", "--json"])
        .arg(&data)
        .env("RESTIC_REPOSITORY", &repo.repository)
        .env("RESTIC_PASSWORD_FILE", &repo.password_file)
        .env("RESTIC_CACHE_DIR", &repo.cache_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("\"status\""));
    assert!(started, "restic reported progress before it was killed");
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed before it finished");

    // Its stale lock goes; the next backup succeeds and the repository
    // checks out.
    repo.unlock(&ctx).unwrap();
    let summary = repo.backup(&[&data], &[], &["panel"], &ctx).unwrap();
    assert_eq!(summary.total_files_processed, 8, "{summary:?}");
    repo.check(0, &ctx).unwrap();
    assert_eq!(repo.snapshots(&ctx).unwrap().len(), 1);
}

#[test]
fn a_damaged_repository_and_a_wrong_password_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let repo = restic(dir.path(), "correct horse");
    let (cancel, sink) = quiet();
    let ctx = Ctx::new(&sink, &cancel);
    repo.ensure_repository(&ctx).unwrap();
    let data = panel_files(dir.path());
    repo.backup(&[&data], &[], &[], &ctx).unwrap();

    let wrong = Restic {
        password_file: restic(dir.path(), "battery staple").password_file,
        ..repo.clone()
    };
    let err = wrong.snapshots(&ctx).unwrap_err();
    assert!(matches!(err, BackupError::WrongPassword { .. }), "{err}");
    assert!(
        err.to_string().contains("does not take this password"),
        "{err}"
    );

    // Half a pack file gone: the check says the repository is damaged.
    let pack = walk(&Path::new(&repo.repository).join("data"))
        .into_iter()
        .max_by_key(|p| p.metadata().unwrap().len())
        .expect("a pack file");
    let bytes = std::fs::read(&pack).unwrap();
    std::fs::write(&pack, &bytes[..bytes.len() / 2]).unwrap();
    let err = repo.check(0, &ctx).unwrap_err();
    assert!(matches!(err, BackupError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("is damaged"), "{err}");

    let missing = Restic {
        program: "/nonexistent/restic".into(),
        ..repo
    };
    let err = missing.snapshots(&ctx).unwrap_err();
    assert!(err.to_string().contains("apt install restic"), "{err}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A restore that died between moving a server's state aside and moving
/// the backup's in (no layer in place, the old one aside) is finished by
/// the next: the old layer put back first, then replaced, nothing left
/// aside.
#[test]
fn a_restore_that_died_midway_is_repaired_by_the_next() {
    use left4me_host::lifecycle::Host;
    use left4me_host::name::InstanceName;
    use left4me_host::supervisor::builtin::{BuiltinSupervisor, RestartPolicy};
    let dir = tempfile::tempdir().unwrap();
    let supervisor = BuiltinSupervisor {
        program: "/nonexistent/left4me".into(),
        policy: RestartPolicy::default(),
        mount_api: left4me_host::mount::MountApi::Auto,
    };
    let host = Host::open(dir.path(), Box::new(supervisor)).unwrap();
    let name = InstanceName::parse("server-1").unwrap();
    let paths = host.root().instance(&name);
    let upper = paths.upper();
    let aside = upper.with_file_name("upper.before-restore");
    // The state of the died restore: the server's layer aside, none in
    // place.
    std::fs::create_dir_all(&aside).unwrap();
    std::fs::write(aside.join("bans.cfg"), "old").unwrap();
    let restored = dir.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::write(restored.join("bans.cfg"), "from the backup").unwrap();

    let (cancel, sink) = quiet();
    let ctx = Ctx::new(&sink, &cancel);
    host.replace_upper(&name, &restored, &ctx).unwrap();
    assert_eq!(
        std::fs::read_to_string(upper.join("bans.cfg")).unwrap(),
        "from the backup"
    );
    assert!(
        !aside.exists(),
        "the old state went once the new was in place"
    );
    assert!(!restored.exists(), "moved, not copied");
}
