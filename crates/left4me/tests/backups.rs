//! Backups of the real panel with Debian's restic: one taken while a
//! server runs and its console keeps writing to the database restores to
//! a database SQLite finds whole, with every row committed before it; the
//! next adds little; a check finds the repository sound, then damaged
//! once a pack file is cut short; a backup or check that fails is said on
//! the Backups page; a server's own state comes back; and a panel killed
//! (with its restic) mid-backup leaves a repository the next backup and
//! check use.

mod common;

use std::time::Duration;

use common::panel::*;
use common::*;
use left4me_host::backup::Restic;
use left4me_host::events::{CancellationToken, Ctx, Event};
use reqwest::StatusCode;

const STEAMCMD_SIM: &str = env!("CARGO_BIN_EXE_steamcmd-sim");

async fn back_up(client: &Client) -> (Vec<String>, String) {
    let res = client.post("/backups", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    finished_job(client, Client::redirect_id(&res)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_while_the_panel_works_restores_whole() {
    let mut app = App::spawn_configured(|c| c.poll_interval_secs = 1).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&admin, "coop", "maxplayers 8").await;
    let server = create_server(&admin, "coop", bp, free_port()).await;
    act_ok(&admin, server, "start").await;

    // The console keeps writing (its history, the activity log) while the
    // backup runs.
    let writer = tokio::spawn({
        let admin = admin.clone();
        async move {
            let mut sent = 0;
            loop {
                console(&admin, server, &format!("echo line {sent}")).await;
                sent += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let database = app.config.database_path();
    let count = async |path: &std::path::Path| -> i64 {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM console_commands")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    };
    let before = count(&database).await;
    assert!(before > 0);
    let (log, end) = back_up(&admin).await;
    writer.abort();
    assert_eq!(end, "succeeded", "{log:?}");
    let log = log.join("\n");
    for expected in [
        "made the repository's password",
        "made the backup repository",
        "snapshot ",
    ] {
        assert!(log.contains(expected), "{expected}: {log}");
    }
    let (_, detail) = admin.get_text(&format!("/servers/{server}")).await;
    let state = &detail[detail.find("id=\"server-state\"").expect("the state")..];
    assert!(
        state[..120].contains("running"),
        "the server ran on: {state}"
    );

    // Restored with restic as an admin would: whole, and with every row.
    let restic = Restic {
        program: "/usr/bin/restic".into(),
        repository: app.config.backup_repository(),
        password_file: app.config.backup_password_file(),
        cache_dir: app.root.path().join("backups/cache"),
    };
    let mode = std::fs::metadata(&restic.password_file).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let cancel = CancellationToken::new();
    let sink = |_: Event| {};
    let ctx = Ctx::new(&sink, &cancel);
    let snapshots = restic.snapshots(&ctx).unwrap();
    assert_eq!(snapshots.len(), 1);
    let target = tempfile::tempdir().unwrap();
    restic
        .restore(&snapshots[0].id, target.path(), &[], &ctx)
        .unwrap();
    let root = app.root.path().canonicalize().unwrap();
    let restored = target.path().join(root.strip_prefix("/").unwrap());
    let copy = restored.join("backups/staging/left4me.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", copy.display()))
        .await
        .unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    pool.close().await;
    assert!(
        count(&copy).await >= before,
        "every row committed before it"
    );
    assert!(
        restored
            .join(format!("runtime/server-{server}/upper"))
            .is_dir(),
        "the server's own state"
    );
    assert!(
        !restored
            .join(format!("runtime/server-{server}/merged/left4dead2"))
            .exists(),
        "not the mounted game"
    );

    // Listed; the next adds little.
    let (log, end) = back_up(&admin).await;
    assert_eq!(end, "succeeded", "{log:?}");
    let (_, page) = admin.get_text("/backups").await;
    assert_eq!(page.matches("<td><code>").count(), 2, "{page}");

    // Checked: sound; then half a pack file gone, and the check says the
    // repository is damaged, on the page too.
    let check = async || {
        let res = admin.post("/backups/check", &[]).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        finished_job(&admin, Client::redirect_id(&res)).await
    };
    let (log, end) = check().await;
    assert_eq!(end, "succeeded", "{log:?}");
    assert!(
        log.join("\n").contains("the repository is sound"),
        "{log:?}"
    );
    let pack = largest_file(&std::path::Path::new(&restic.repository).join("data"));
    let bytes = std::fs::read(&pack).unwrap();
    std::fs::write(&pack, &bytes[..bytes.len() / 2]).unwrap();
    let (log, end) = check().await;
    assert_eq!(end, "failed", "{log:?}");
    let (_, page) = admin.get_text("/backups").await;
    assert!(page.contains("id=\"backup-failed\""), "{page}");
    assert!(page.contains("is damaged"), "{page}");

    // A repository that no longer takes the password: the backup fails,
    // and the page says so.
    std::fs::write(&restic.password_file, "not the password").unwrap();
    let (log, end) = back_up(&admin).await;
    assert_eq!(end, "failed", "{log:?}");
    assert!(
        log.join("\n").contains("copying the database"),
        "the copy was made: {log:?}"
    );
    assert!(
        !app.root.path().join("backups/staging").exists(),
        "the failed backup's database copy is gone"
    );
    let (_, page) = admin.get_text("/backups").await;
    assert!(page.contains("id=\"backup-failed\""), "{page}");
    assert!(page.contains("does not take this password"), "{page}");
    // Said on the servers' pages too, to admins only.
    let (_, page) = admin.get_text(&format!("/servers/{server}")).await;
    assert!(page.contains("id=\"backup-failed\""), "{page}");
    let bob = add_user(&app, &admin, "bob", "bob-password-1").await;
    let bobs = create_blueprint(&bob, "bobs", "maxplayers 8").await;
    let bobs = create_server(&bob, "bobs", bobs, free_port()).await;
    let (status, page) = bob.get_text(&format!("/servers/{bobs}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("backup-failed"), "not to others: {page}");
    act_ok(&admin, server, "stop").await;
    app.stop().await;
}

fn largest_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut largest: Option<(u64, std::path::PathBuf)> = None;
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let len = path.metadata().unwrap().len();
                if largest.as_ref().is_none_or(|(l, _)| len > *l) {
                    largest = Some((len, path));
                }
            }
        }
    }
    largest.expect("a pack file").1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_servers_own_state_comes_back_from_a_backup() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bp = create_blueprint(&admin, "coop", "maxplayers 8").await;
    let server = create_server(&admin, "coop", bp, free_port()).await;
    act_ok(&admin, server, "start").await;
    act_ok(&admin, server, "stop").await;
    let upper = app
        .root
        .path()
        .join(format!("runtime/server-{server}/upper"));
    let bans = upper.join("left4dead2/cfg/banned_user.cfg");
    std::fs::create_dir_all(bans.parent().unwrap()).unwrap();
    std::fs::write(&bans, "banid 0 STEAM_1:0:1\n").unwrap();
    let (log, end) = back_up(&admin).await;
    assert_eq!(end, "succeeded", "{log:?}");
    let (_, page) = admin.get_text("/backups").await;
    let end = page.find("/restore\"").expect("a backup to restore from");
    let start = page[..end].rfind('/').unwrap() + 1;
    let backup: i64 = page[start..end].parse().unwrap();

    // Changed since: another ban, a new file.
    std::fs::write(&bans, "banid 0 STEAM_1:0:2\n").unwrap();
    std::fs::write(upper.join("extra.txt"), "new").unwrap();

    // Not while it runs.
    act_ok(&admin, server, "start").await;
    let server_field = server.to_string();
    let res = admin
        .post(
            &format!("/backups/{backup}/restore"),
            &[("server", server_field.as_str())],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("Stop coop first"));
    act_ok(&admin, server, "stop").await;

    let res = admin
        .post(
            &format!("/backups/{backup}/restore"),
            &[("server", server_field.as_str())],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (log, end) = finished_job(&admin, Client::redirect_id(&res)).await;
    assert_eq!(end, "succeeded", "{log:?}");
    assert_eq!(
        std::fs::read_to_string(&bans).unwrap(),
        "banid 0 STEAM_1:0:1\n"
    );
    assert!(!upper.join("extra.txt").exists(), "as the backup holds it");
    assert!(
        !upper.with_file_name("upper.before-restore").exists(),
        "nothing left aside"
    );
    assert!(
        !app.root
            .path()
            .join("backups")
            .read_dir()
            .unwrap()
            .any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("restore-")),
        "nothing left of the restore's scratch"
    );
    // It runs on its restored state.
    act_ok(&admin, server, "start").await;
    act_ok(&admin, server, "stop").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_files_overlays_own_files_come_back_from_a_backup() {
    let mut app = App::spawn().await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let res = admin.post("/overlays", &[("name", "configs")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let overlay = Client::redirect_id(&res);
    let copy = app.root.path().join(format!("overlays/{overlay}"));
    let cfg = copy.join("left4dead2/cfg/server.cfg");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, "sv_cheats 0\n").unwrap();
    let (log, end) = back_up(&admin).await;
    assert_eq!(end, "succeeded", "{log:?}");
    let (_, page) = admin.get_text("/backups").await;
    let end_at = page
        .find("/restore-overlay\"")
        .expect("a backup to restore from");
    let start = page[..end_at].rfind('/').unwrap() + 1;
    let backup = &page[start..end_at];

    // Changed since (replaced, as the panel writes files), and a new one.
    let new = cfg.with_extension("new");
    std::fs::write(&new, "sv_cheats 1\n").unwrap();
    std::fs::rename(&new, &cfg).unwrap();
    std::fs::write(copy.join("extra.cfg"), "x").unwrap();

    let overlay_field = overlay.to_string();
    let res = admin
        .post(
            &format!("/backups/{backup}/restore-overlay"),
            &[("overlay", overlay_field.as_str())],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (log, end) = finished_job(&admin, Client::redirect_id(&res)).await;
    assert_eq!(end, "succeeded", "{log:?}");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "sv_cheats 0\n");
    assert!(!copy.join("extra.cfg").exists(), "as the backup holds it");
    let (_, files) = admin.get_text(&format!("/overlays/{overlay}")).await;
    assert!(files.contains("left4dead2"), "{files}");
    app.stop().await;
}

/// restic processes backing up into `repository` (restic runs in a
/// process group of its own and outlives a killed panel).
fn restic_pids(repository: &str) -> Vec<rustix::process::Pid> {
    let wanted = format!("RESTIC_REPOSITORY={repository}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == wanted.as_bytes()))
        })
        .filter_map(rustix::process::Pid::from_raw)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panel_killed_during_a_backup_leaves_the_repository_usable() {
    let root = root_with_admin();
    // Enough to back up that the kill lands mid-way.
    let big = root.path().join("overlays/big");
    std::fs::create_dir_all(&big).unwrap();
    for n in 0..8 {
        let mut bytes = vec![0u8; 16 << 20];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .unwrap();
        std::fs::write(big.join(format!("{n}.bin")), bytes).unwrap();
    }
    let port = free_port();
    let mut panel = PanelProcess::start(&root, port);
    let admin = panel.admin().await;
    let res = admin.post("/backups", &[]).await;
    let job = Client::redirect_id(&res);
    page_showing(
        &admin,
        &format!("/jobs/{job}"),
        "backing up into",
        Duration::from_secs(30),
    )
    .await;
    // Everything dies at once, as in a power cut.
    panel.child.kill().unwrap();
    panel.child.wait().unwrap();
    let repository = root.path().join("backups/repository").display().to_string();
    for pid in restic_pids(&repository) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }

    let panel = PanelProcess::start(&root, port);
    let admin = panel.admin().await;
    let (_, page) = admin.get_text(&format!("/jobs/{job}")).await;
    assert!(page.contains("interrupted"), "{page}");
    let (log, end) = back_up(&admin).await;
    assert_eq!(end, "succeeded", "{log:?}");
    let res = admin.post("/backups/check", &[]).await;
    let (log, end) = finished_job(&admin, Client::redirect_id(&res)).await;
    assert_eq!(end, "succeeded", "the repository checks out: {log:?}");
    let (_, page) = admin.get_text("/backups").await;
    assert_eq!(
        page.matches("<td><code>").count(),
        1,
        "the killed backup never finished; the next one did: {page}"
    );
    panel.terminate();
}

/// `left4me restore` on a new host: `args` with the old host's
/// repository and the copy of its password file.
fn restore(root: &TestRoot, repository: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = root.cmd();
    cmd.arg("restore")
        .args(args)
        .env("LEFT4ME_BACKUP_REPOSITORY", repository)
        .env(
            "LEFT4ME_BACKUP_PASSWORD_FILE",
            root.path().join("kept-password"),
        );
    cmd.output().unwrap()
}

fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_panel_comes_back_on_a_new_host() {
    // The old host: an admin, a user, a blueprint and a running server
    // with a ban of its own; backed up while it runs.
    let configured = tempfile::tempdir().unwrap();
    let old_config = configured.path().join("left4me.toml");
    std::fs::write(&old_config, "# the old host's configuration\n").unwrap();
    let mut old = App::spawn_configured(|c| c.file = Some(old_config.clone())).await;
    let admin = old.login(ADMIN.0, ADMIN.1).await;
    add_user(&old, &admin, "bob", "bob-password-1").await;
    let bp = create_blueprint(&admin, "coop", "maxplayers 8").await;
    let port = free_port();
    let server = create_server(&admin, "coop", bp, port).await;
    act_ok(&admin, server, "start").await;
    let ban = format!("runtime/server-{server}/upper/left4dead2/cfg/banned_user.cfg");
    let bans = old.root.path().join(&ban);
    std::fs::create_dir_all(bans.parent().unwrap()).unwrap();
    std::fs::write(&bans, "banid 0 STEAM_1:0:1\n").unwrap();
    let (log, end) = back_up(&admin).await;
    assert_eq!(end, "succeeded", "{log:?}");
    // The old host is gone (its server with it).
    act_ok(&admin, server, "stop").await;
    old.stop().await;
    let repository = old.config.backup_repository();

    // The new host: left4me installed, no game yet, Steam reachable; the
    // admin configures the repository and puts the kept password back.
    let new = TestRoot::new();
    std::fs::remove_dir_all(new.path().join("installation")).unwrap();
    std::fs::copy(
        old.config.backup_password_file(),
        new.path().join("kept-password"),
    )
    .unwrap();
    let mut config = test_config(&new);
    let sim = steamcmd_sim::SteamcmdSim::create(
        &new.path().join("steamcmd"),
        std::path::Path::new(STEAMCMD_SIM),
    )
    .unwrap();
    sim.publish_game(1001, std::path::Path::new(SRCDS_SIM), 20, 200_000)
        .unwrap();
    config.steamcmd = sim.program();
    config.system_root = fake_system_root(new.path(), &libraries_32());
    config.backup_repository = Some(repository.clone());
    config.backup_password_file = Some(new.path().join("kept-password"));
    config.reconcile_interval_secs = 1;

    // Not while its panel runs.
    let mut fresh = App::spawn_with(new, config.clone()).await;
    let out = restore(&fresh.root, &repository, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains("the panel (or another `left4me restore`) is running"),
        "{}",
        said(&out)
    );
    fresh.stop().await;
    let new = fresh.root;

    let out = restore(&new, &repository, &["--list"]);
    assert!(out.status.success(), "{}", said(&out));
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let out = restore(&new, &repository, &["--snapshot", "0000"]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains(listed.split_whitespace().next().unwrap()),
        "the error names the backups there are: {}",
        said(&out)
    );

    let out = restore(&new, &repository, &[]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("2 user(s), 1 server(s), 1 blueprint(s)"),
        "{}",
        said(&out)
    );
    let kept = new.path().join("backups/restored-left4me.toml");
    assert!(
        said(&out).contains(&format!(
            "the old host's configuration is in {}",
            kept.display()
        )),
        "{}",
        said(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap(),
        "# the old host's configuration\n"
    );
    assert_eq!(
        std::fs::read_to_string(new.path().join(&ban)).unwrap(),
        "banid 0 STEAM_1:0:1\n",
        "the server's own state is back"
    );
    let again = restore(&new, &repository, &[]);
    assert_eq!(again.status.code(), Some(2), "{}", said(&again));
    assert!(said(&again).contains("--replace"), "{}", said(&again));

    // A first start whose install fails (steamcmd missing): the server
    // that waited for it does not start, and the restore is not over.
    let broken = left4me_web::config::Config {
        steamcmd: "/nonexistent/steamcmd.sh".into(),
        ..config.clone()
    };
    let mut first = App::spawn_with(new, broken).await;
    let admin = first.login(ADMIN.0, ADMIN.1).await;
    page_showing(&admin, "/jobs", "state-failed", Duration::from_secs(30)).await;
    first.stop().await;
    let new = first.root;

    // The next start repairs it: the same people, servers and blueprints;
    // the game is installed from Steam, then the server that ran starts.
    let mut app = App::spawn_with(new, config).await;
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    app.login("bob", "bob-password-1").await;
    let (_, blueprints) = admin.get_text("/blueprints").await;
    assert!(blueprints.contains("coop"), "{blueprints}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, page) = admin.get_text(&format!("/servers/{server}")).await;
        let state = &page[page.find("id=\"server-state\"").expect("the state")..];
        if state[..120].contains("running") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restored server never started: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, activity) = admin.get_text("/activity").await;
    assert!(
        activity.contains("panel restored from backup")
            && activity.contains("the game is installed again"),
        "{activity}"
    );
    let (_, game) = admin.get_text("/game").await;
    assert!(game.contains("1001"), "the game is Steam's build: {game}");
    // The restore is over once the game is back (a reconciler pass says).
    page_showing(
        &admin,
        "/activity",
        "is complete: the game and the built overlays are back",
        Duration::from_secs(30),
    )
    .await;

    // Restoring over it puts what is there aside, never deletes it.
    act_ok(&admin, server, "stop").await;
    app.stop().await;
    let out = restore(&app.root, &repository, &["--replace"]);
    assert!(out.status.success(), "{}", said(&out));
    let aside = said(&out)
        .lines()
        .find_map(|l| l.strip_prefix("what was here before is in "))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("where it went: {}", said(&out)));
    assert!(aside.join("left4me.db").is_file(), "{}", aside.display());
    assert!(aside.join("runtime").is_dir(), "{}", aside.display());
}
