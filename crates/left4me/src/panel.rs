//! `left4me serve`, `migrate`, `setup-url`, `user create`, `overlays seed`
//! and `config default`.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use left4me_config::DEFAULT_TOML;
use left4me_web::domain::{NewPassword, Username};

use crate::{Cli, CliResult, Failure, settings};

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8000; env LEFT4ME_LISTEN).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Without a game installation, create a synthetic one whose servers
    /// are the bundled simulator, so everything can be tried without Steam.
    #[arg(long)]
    demo: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup to restore: its id or the start of it (default: the
    /// newest backup of a panel in the repository).
    #[arg(long)]
    snapshot: Option<String>,
    /// List the panel's backups in the repository and exit.
    #[arg(long)]
    list: bool,
    /// Restore over a panel that has users; what is here is moved aside
    /// into backups/replaced-TIME first, not deleted.
    #[arg(long)]
    replace: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user; the password comes from LEFT4ME_ADMIN_PASSWORD or a prompt.
    Create {
        name: String,
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// The jobs still queued or running (with the panel stopped: running
    /// when it stopped).
    List,
    /// Cancel a job while the panel is stopped: a queued one ends now; a
    /// running one ends as cancelled when the panel starts (a server's
    /// start is undone: it is wanted stopped). With the panel running,
    /// cancel it on its page or with the API.
    Cancel { id: i64 },
}

#[derive(Debug, Subcommand)]
pub(crate) enum OverlaysCommand {
    /// Add a shared script overlay, owned by the first admin, for each
    /// `*.sh` file in DIR (named after the file, described by its
    /// `# description:` line). Script overlays of those names are left as
    /// they are, so seeding again changes nothing. Nothing is built until
    /// an admin builds it in the panel. The package's examples are in
    /// /usr/share/left4me/scripts.
    Seed { dir: PathBuf },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print a commented default configuration file.
    Default,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

pub(crate) fn serve(cli: &Cli, args: &ServeArgs) -> CliResult {
    let mut config = settings(cli)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes are noise in the journal and in files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEFT4ME_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if args.demo {
        let root = left4me_host::layout::StateRoot::open(&config.root)?;
        crate::demo::ensure_synthetic_installation(&root)?;
    }
    let launch = left4me_web::Launch {
        supervisor_program: std::env::current_exe()?,
        ready_timeout: Duration::from_secs(60),
        live: std::sync::Arc::default(),
    };
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        left4me_web::launch_with_listener(config, launch, listener, shutdown_signal()).await?;
        Ok::<_, Failure>(())
    })
}

/// The configuration, for a command that writes the database: run as
/// root on a packaged install, it continues as the state root's owner.
fn settings_as_state_owner(cli: &Cli) -> Result<left4me_config::Config, Failure> {
    let config = settings(cli)?;
    left4me_host::privilege::become_state_owner(&config.root)?;
    Ok(config)
}

pub(crate) fn migrate(cli: &Cli) -> CliResult {
    let config = settings_as_state_owner(cli)?;
    runtime()?.block_on(async {
        let store = left4me_web::open_store(&config).await?;
        let version = store.schema_version().await;
        store.close().await;
        println!(
            "database {} is up to date (migration {})",
            config.database_path().display(),
            version?
        );
        Ok::<_, Failure>(())
    })
}

pub(crate) fn restore(cli: &Cli, args: &RestoreArgs) -> CliResult {
    use left4me_web::restore::{self, RestoreError};
    let config = settings_as_state_owner(cli)?;
    let refused = |e: RestoreError| {
        if e.is_refusal() {
            Failure::invalid(e)
        } else {
            Failure::from(e)
        }
    };
    if args.list {
        let backups = left4me_web::backups::Backups::new(&config);
        for s in restore::panel_snapshots(&backups).map_err(refused)? {
            println!("{}  {}  {}", s.short_id, s.time, s.paths.join(" "));
        }
        return Ok(());
    }
    let request = restore::Request {
        snapshot: args.snapshot.clone(),
        replace: args.replace,
    };
    let restored = runtime()?
        .block_on(restore::restore_panel(&config, &request, |step| {
            println!("{step}");
        }))
        .map_err(refused)?;
    let h = restored.holdings;
    println!(
        "restored backup {} of {}: {} user(s), {} server(s), {} blueprint(s), {} overlay(s)",
        restored.snapshot.short_id,
        restored.snapshot.time,
        h.users,
        h.servers,
        h.blueprints,
        h.overlays
    );
    if let Some(aside) = restored.aside {
        println!("what was here before is in {}", aside.display());
    }
    if let Some(file) = restored.config_file {
        println!(
            "the old host's configuration is in {}: compare it with this host's",
            file.display()
        );
    }
    if h.authenticators > 0 {
        let key = match config.supervisor {
            left4me_config::SupervisorKind::Systemd => PathBuf::from("/etc/left4me/secrets.key"),
            left4me_config::SupervisorKind::Builtin => config.root.join("secrets.key"),
        };
        println!(
            "{} user(s) sign in with an authenticator app: their keys open only with the secrets.key of the host that was backed up; put your copy of it at {} before starting the panel (without it they sign in with a recovery code or a passkey)",
            h.authenticators,
            key.display()
        );
    }
    println!(
        "start the panel now (`systemctl start left4me`): it installs the game, builds the Workshop and script overlays again and starts the servers that were running"
    );
    Ok(())
}

pub(crate) fn setup_url(cli: &Cli) -> CliResult {
    let config = settings_as_state_owner(cli)?;
    runtime()?.block_on(async {
        let store = left4me_web::open_store(&config).await?;
        let token = left4me_web::auth::issue_setup_token(&store).await;
        store.close().await;
        println!(
            "{}",
            left4me_web::auth::setup_url(
                config.public_url.as_ref(),
                config.listen,
                &token.map_err(Failure::invalid)?
            )
        );
        Ok::<_, Failure>(())
    })
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("LEFT4ME_ADMIN_PASSWORD") {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(rpassword::prompt_password("Password: ")?);
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

pub(crate) fn user(cli: &Cli, cmd: &UserCommand) -> CliResult {
    let UserCommand::Create { name, admin } = cmd;
    // Before the password prompt: becoming the owner runs this again.
    let config = settings_as_state_owner(cli)?;
    let username = Username::parse(name)
        .map_err(|e| Failure::invalid(anyhow::anyhow!("username {name:?}: {e}")))?;
    let password = NewPassword::parse(&read_password()?)
        .map_err(|e| Failure::invalid(anyhow::anyhow!("password: {e}")))?;
    let hash =
        left4me_web::auth::hash_password(password.as_str()).map_err(|e| anyhow::anyhow!("{e}"))?;
    runtime()?.block_on(async {
        let store = left4me_web::open_store(&config).await?;
        let user = store.create_user(username.as_str(), &hash, *admin).await?;
        store.close().await;
        println!(
            "created {} {}",
            if user.is_admin { "admin" } else { "user" },
            user.username
        );
        Ok::<_, Failure>(())
    })
}

pub(crate) fn overlays(cli: &Cli, cmd: &OverlaysCommand) -> CliResult {
    let OverlaysCommand::Seed { dir } = cmd;
    let config = settings_as_state_owner(cli)?;
    let examples = left4me_web::scripts::examples_in(dir)
        .with_context(|| format!("reading the scripts in {}", dir.display()))
        .map_err(Failure::invalid)?;
    if examples.is_empty() {
        return Err(Failure::invalid(anyhow::anyhow!(
            "{} has no *.sh files",
            dir.display()
        )));
    }
    runtime()?.block_on(async {
        let store = left4me_web::open_store(&config).await?;
        let seeded = seed_as_first_admin(&store, &examples).await;
        store.close().await;
        let seeded = seeded?;
        for overlay in &seeded.created {
            println!("created script overlay {} (#{})", overlay.name, overlay.id);
        }
        for name in &seeded.kept {
            println!("kept script overlay {name}: it exists");
        }
        Ok::<_, Failure>(())
    })
}

async fn seed_as_first_admin(
    store: &left4me_store::Store,
    examples: &[left4me_web::scripts::Example],
) -> Result<left4me_web::scripts::Seeded, Failure> {
    let admin = store.first_admin().await?.ok_or_else(|| {
        Failure::invalid(anyhow::anyhow!(
            "there is no admin to own the overlays yet: create one first"
        ))
    })?;
    let actor = left4me_web::runner::Actor::CommandLine;
    Ok(left4me_web::scripts::seed(store, actor, admin.id, examples).await?)
}

pub(crate) fn jobs(cli: &Cli, cmd: &JobsCommand) -> CliResult {
    use left4me_web::job_control::{self, JobControlError};
    let config = settings_as_state_owner(cli)?;
    let root = left4me_host::layout::StateRoot::open(&config.root)?;
    runtime()?.block_on(async {
        let store = left4me_web::open_store(&config).await?;
        let done = match cmd {
            JobsCommand::List => job_control::unfinished(&store).await.map(|jobs| {
                if jobs.is_empty() {
                    println!("no job is queued or running");
                }
                for job in jobs {
                    println!("{}", job_line(&job));
                }
            }),
            JobsCommand::Cancel { id } => {
                match job_control::cancel_while_stopped(&root, &store, *id).await {
                    Ok((request, job)) => {
                        println!("{}", cancelled(request, &job));
                        Ok(())
                    }
                    Err(e @ (JobControlError::PanelRunning(_) | JobControlError::NotFound(_))) => {
                        store.close().await;
                        return Err(Failure::invalid(e));
                    }
                    Err(e) => {
                        store.close().await;
                        return Err(anyhow::Error::from(e).into());
                    }
                }
            }
        };
        store.close().await;
        done.map_err(|e| anyhow::Error::from(e).into())
    })
}

/// One job for `left4me jobs list`.
fn job_line(job: &left4me_store::Job) -> String {
    let since = job.started_at.unwrap_or(job.created_at);
    let since = jiff::Timestamp::from_second(since)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default();
    format!(
        "#{}  {}  {}  {}  since {since}{}",
        job.id,
        job.state.as_str(),
        left4me_web::runner::job_label(&job.kind),
        job.subject,
        if job.cancel_requested_at.is_some() {
            "  (cancel asked)"
        } else {
            ""
        }
    )
}

/// What `left4me jobs cancel` did, in words.
fn cancelled(request: left4me_store::CancelRequest, job: &left4me_store::Job) -> String {
    use left4me_store::CancelRequest;
    match request {
        CancelRequest::Dequeued => format!("job #{} was queued: cancelled", job.id),
        CancelRequest::Asked => format!(
            "job #{} was running when the panel stopped: it ends as cancelled when the panel starts{}",
            job.id,
            if job.kind == left4me_web::runner::JobKind::ServerStart.as_str() {
                ", and its server is wanted stopped"
            } else {
                ""
            }
        ),
        CancelRequest::Finished => format!(
            "job #{} has ended already ({}): nothing to cancel",
            job.id,
            job.state.as_str()
        ),
    }
}

pub(crate) fn config(cmd: &ConfigCommand) -> CliResult {
    let ConfigCommand::Default = cmd;
    std::io::stdout().write_all(DEFAULT_TOML.as_bytes())?;
    Ok(())
}
