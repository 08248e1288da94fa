//! The systemd backend against a stand-in `systemctl` that records its
//! arguments and answers `show` like systemd does (systemd is not PID 1
//! here, so the real one cannot start units).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use left4me_host::events::{CancellationToken, Ctx, Event, discard};
use left4me_host::lifecycle::Host;
use left4me_host::name::InstanceName;
use left4me_host::spec::{Port, Spec};
use left4me_host::supervisor::LogSource;
use left4me_host::supervisor::systemd::SystemdSupervisor;

/// Writes a fake systemctl into `dir`. `show` prints `show_output` for
/// each unit, and starting a server unit fails with `start_error` when
/// given. `is-enabled` prints the word in `dir/enabled` for each unit (like
/// systemd, exiting 1 unless it is "enabled"), and starting the autostart
/// unit fails while `dir/autostart-fails` exists.
fn fake_systemctl(dir: &Path, show_output: &str, start_error: Option<&str>) -> PathBuf {
    let script = dir.join("systemctl");
    let log = dir.join("calls.log");
    let fail = start_error.map_or(String::new(), |msg| {
        format!("case \"$1 $2\" in 'start left4me-server@'*) echo '{msg}' >&2; exit 1 ;; esac\n")
    });
    let dir = dir.display();
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
echo "$@" >> '{log}'
{fail}case "$1 $2" in
'start left4me-autostart@'*)
    if [ -e '{dir}/autostart-fails' ]; then echo 'Job failed.' >&2; exit 1; fi ;;
'is-enabled '*)
    word=$(cat '{dir}/enabled' 2>/dev/null || echo disabled)
    shift
    # "alternate": s-N is enabled for even N; "short": one line too few.
    [ "$word" = short ] && shift
    for unit in "$@"; do
        case "$word" in
        alternate | short)
            n=${{unit#left4me-server@s-}}; n=${{n%.service}}
            if [ $((n % 2)) = 0 ]; then echo enabled; else echo disabled; fi ;;
        *) echo "$word" ;;
        esac
    done
    [ "$word" = enabled ]; exit ;;
'show '*)
    # One block per unit asked about, separated by empty lines.
    first=1
    # Units named s-N get MainPID N+1000, so order mistakes show.
    for arg in "$@"; do
        case "$arg" in *.service)
            [ $first = 1 ] || echo
            first=0
            case "$arg" in
            left4me-server@s-*)
                n=${{arg#left4me-server@s-}}; n=${{n%.service}}
                printf '{show}' | sed "s/^MainPID=.*/MainPID=$((n + 1000))/" ;;
            *) printf '{show}' ;;
            esac ;;
        esac
    done ;;
esac
exit 0
"#,
            log = log.display(),
            show = show_output.replace('\n', "\\n")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn host(dir: &Path, systemctl: PathBuf) -> Host {
    let host = Host::open(dir.join("root"), Box::new(SystemdSupervisor { systemctl })).unwrap();
    host.root()
        .installation_versions()
        .publish_tree(None, |dir| {
            std::fs::write(dir.join("srcds_linux"), "#!/bin/sh\n")
        })
        .unwrap();
    host
}

const INACTIVE: &str = "ActiveState=inactive\nSubState=dead\nMainPID=0\nExecMainStartTimestamp=\nNRestarts=0\nResult=success\n";

#[test]
fn start_stop_status_and_delete_drive_the_server_unit() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), fake_systemctl(dir.path(), INACTIVE, None));
    let name = InstanceName::parse("coop-1").unwrap();
    let spec = Spec::new(
        Port::new(27015).unwrap(),
        vec![],
        vec!["hostname x".into()],
        vec![],
    )
    .unwrap();
    let cancel = CancellationToken::new();
    let ctx = Ctx::new(&discard, &cancel);

    host.start(&name, Some(&spec), &ctx).unwrap();
    // Staged before the unit starts, as user left4me would.
    let staged = host
        .root()
        .path()
        .join("runtime/coop-1/upper/left4dead2/cfg/server.cfg");
    assert_eq!(std::fs::read_to_string(staged).unwrap(), "hostname x\n");
    let marker = host.root().path().join("instances/coop-1/start-on-boot");
    assert!(
        marker.is_file(),
        "a started server comes back after a reboot"
    );
    host.stop(&name, &ctx).unwrap();
    assert!(!marker.exists(), "a stopped one does not");
    let status = host.status(&name).unwrap();
    assert_eq!(status.state, "stopped");
    assert_eq!(status.port, Some(27015));
    host.delete(&name, &ctx).unwrap();

    let calls = calls(dir.path());
    let show = "show --timestamp=unix --property=ActiveState,SubState,MainPID,ExecMainStartTimestamp,NRestarts,Result left4me-server@coop-1.service";
    assert_eq!(
        calls,
        [
            "start left4me-autostart@coop-1.service",
            show,
            "reset-failed left4me-server@coop-1.service",
            "start left4me-server@coop-1.service",
            "start left4me-autostart@coop-1.service",
            "stop left4me-server@coop-1.service",
            show,
            "start left4me-autostart@coop-1.service",
            "stop left4me-server@coop-1.service",
            "reset-failed left4me-server@coop-1.service",
            "start left4me-autostart@coop-1.service",
        ]
    );
    assert_eq!(
        host.log_source(&name),
        LogSource::Journal {
            unit: "left4me-server@coop-1.service".into()
        }
    );
}

#[test]
fn a_refused_start_reports_systemctls_words() {
    let dir = tempfile::tempdir().unwrap();
    let systemctl = fake_systemctl(
        dir.path(),
        INACTIVE,
        Some("Failed to start left4me-server@coop-2.service: Access denied"),
    );
    let host = host(dir.path(), systemctl);
    let name = InstanceName::parse("coop-2").unwrap();
    let spec = Spec::new(Port::new(27016).unwrap(), vec![], vec![], vec![]).unwrap();
    let cancel = CancellationToken::new();
    let err = host
        .start(&name, Some(&spec), &Ctx::new(&discard, &cancel))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("systemctl start left4me-server@coop-2.service failed"),
        "{text}"
    );
    assert!(text.contains("Access denied"), "{text}");
}

#[test]
fn an_active_unit_is_not_started_twice() {
    let dir = tempfile::tempdir().unwrap();
    let running = "ActiveState=active\nSubState=running\nMainPID=99\nExecMainStartTimestamp=@1763870000\nNRestarts=1\nResult=success\n";
    let host = host(dir.path(), fake_systemctl(dir.path(), running, None));
    let name = InstanceName::parse("coop-3").unwrap();
    let spec = Spec::new(Port::new(27017).unwrap(), vec![], vec![], vec![]).unwrap();
    let cancel = CancellationToken::new();
    let outcome = host
        .start(&name, Some(&spec), &Ctx::new(&discard, &cancel))
        .unwrap();
    assert_eq!(
        outcome,
        left4me_host::lifecycle::StartOutcome::AlreadyRunning
    );
    let calls = calls(dir.path());
    assert!(!calls.iter().any(|c| c.starts_with("start left4me-server")));
    assert!(calls.contains(&"start left4me-autostart@coop-3.service".to_owned()));
    let status = host.status(&name).unwrap();
    assert_eq!(
        (status.running, status.pid, status.restarts),
        (true, Some(99), 1)
    );
}

fn spec(port: u16) -> Spec {
    Spec::new(Port::new(port).unwrap(), vec![], vec![], vec![]).unwrap()
}

#[test]
fn a_failing_boot_setting_warns_but_never_blocks_start_or_stop() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), fake_systemctl(dir.path(), INACTIVE, None));
    std::fs::write(dir.path().join("autostart-fails"), "").unwrap();
    let name = InstanceName::parse("coop-4").unwrap();
    let cancel = CancellationToken::new();
    let events = std::sync::Mutex::new(Vec::new());
    let sink = |e: Event| events.lock().unwrap().push(e);
    let ctx = Ctx::new(&sink, &cancel);

    host.start(&name, Some(&spec(27018)), &ctx).unwrap();
    let marker = host.root().path().join("instances/coop-4/start-on-boot");
    assert!(marker.is_file(), "the wish is recorded all the same");
    host.stop(&name, &ctx).unwrap();
    assert!(!marker.exists());

    let calls = calls(dir.path());
    assert!(calls.contains(&"start left4me-server@coop-4.service".to_owned()));
    assert!(calls.contains(&"stop left4me-server@coop-4.service".to_owned()));
    let warnings: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Stderr(text) if text.starts_with("warning: the boot setting") => {
                Some(text.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("Job failed."), "{warnings:?}");

    // Deleting is where it must work: afterwards nothing would repair it.
    let err = host.delete(&name, &ctx).unwrap_err();
    assert!(err.to_string().contains("Job failed."), "{err}");
    std::fs::remove_file(dir.path().join("autostart-fails")).unwrap();
    host.delete(&name, &ctx).unwrap();
}

#[test]
fn repair_makes_the_enabled_state_follow_the_desired_one() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), fake_systemctl(dir.path(), INACTIVE, None));
    let name = InstanceName::parse("coop-5").unwrap();
    let cancel = CancellationToken::new();
    let ctx = Ctx::new(&discard, &cancel);
    let marker = host.root().path().join("instances/coop-5/start-on-boot");
    let autostarts = || {
        calls(dir.path())
            .iter()
            .filter(|c| *c == "start left4me-autostart@coop-5.service")
            .count()
    };

    // Not initialized: nothing to enable, but disabling is always allowed.
    assert!(!host.repair_start_on_boot(&name, true, &ctx).unwrap());
    std::fs::write(dir.path().join("enabled"), "enabled").unwrap();
    assert!(host.repair_start_on_boot(&name, false, &ctx).unwrap());
    assert_eq!(autostarts(), 1);

    host.initialize(&name, &spec(27019), &ctx).unwrap();
    std::fs::write(dir.path().join("enabled"), "disabled").unwrap();
    assert!(host.repair_start_on_boot(&name, true, &ctx).unwrap());
    assert!(marker.is_file());
    assert_eq!(autostarts(), 2);
    std::fs::write(dir.path().join("enabled"), "enabled").unwrap();
    assert!(
        !host.repair_start_on_boot(&name, true, &ctx).unwrap(),
        "in agreement: nothing to do"
    );
    assert!(host.repair_start_on_boot(&name, false, &ctx).unwrap());
    assert!(!marker.exists());
    assert_eq!(autostarts(), 3);

    // A helper that keeps failing is an error here: the caller reports it.
    std::fs::write(dir.path().join("autostart-fails"), "").unwrap();
    let err = host.repair_start_on_boot(&name, false, &ctx).unwrap_err();
    assert!(err.to_string().contains("Job failed."), "{err}");
}

#[test]
fn many_statuses_are_one_question_to_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let running = "ActiveState=active\nSubState=running\nMainPID=99\nExecMainStartTimestamp=@1763870000\nNRestarts=0\nResult=success\n";
    let host = host(dir.path(), fake_systemctl(dir.path(), running, None));
    let names: Vec<InstanceName> = (0..150)
        .map(|i| InstanceName::parse(&format!("s-{i}")).unwrap())
        .collect();
    let statuses = host.process_statuses(&names);
    assert_eq!(statuses.len(), 150);
    for (i, status) in statuses.iter().enumerate() {
        let status = status.as_ref().unwrap();
        assert!(status.running);
        assert_eq!(status.pid, Some(1000 + i as u32), "answer {i} is s-{i}'s");
    }

    let shows: Vec<String> = calls(dir.path())
        .into_iter()
        .filter(|c| c.starts_with("show "))
        .collect();
    assert_eq!(shows.len(), 2, "batches of 100");
    assert!(shows[0].ends_with("left4me-server@s-99.service"));
    assert!(shows[1].contains(" left4me-server@s-100.service "));

    // Boot settings likewise, although `is-enabled` exits 1 for "disabled".
    let boot = host.boot_settings(&names);
    assert!(boot.iter().all(|b| matches!(b, Ok(Some(false)))));
    std::fs::write(dir.path().join("enabled"), "enabled").unwrap();
    assert!(
        host.boot_settings(&names)
            .iter()
            .all(|b| matches!(b, Ok(Some(true))))
    );
    std::fs::write(dir.path().join("enabled"), "alternate").unwrap();
    for (i, b) in host.boot_settings(&names).iter().enumerate() {
        assert_eq!(b.as_ref().unwrap(), &Some(i % 2 == 0), "answer {i}");
    }
    let asked = calls(dir.path())
        .iter()
        .filter(|c| c.starts_with("is-enabled "))
        .count();
    assert_eq!(asked, 6, "two batches, three times");
    // A batch answered with a line missing fails whole, never shifted.
    std::fs::write(dir.path().join("enabled"), "short").unwrap();
    let short = host.boot_settings(&names);
    assert!(short.iter().all(Result::is_err));
    assert!(
        short[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("is-enabled answered for 99 of 100 units")
    );
}
