//! Typed templates: full pages extend `base.html` and get a [`Layout`].

use std::collections::BTreeMap;

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use left4me_store::{
    Blueprint, BlueprintOverlay, Job, ListedBlueprint, ListedOverlay, LogLine, Overlay, User,
};

use crate::auth::CurrentUser;
use crate::error::AppResult;

/// What every page shows around its content. No `Debug`: it holds the
/// session's CSRF token.
#[derive(Clone)]
pub(crate) struct Layout {
    pub(crate) username: String,
    pub(crate) is_admin: bool,
    pub(crate) csrf: String,
    /// When an admin turned the user's second factor off: said on every
    /// page until they set one up again.
    pub(crate) second_factor_reset: Option<String>,
    /// The admins require a second factor the user has not set up.
    pub(crate) second_factor_required: bool,
}

impl Layout {
    pub(crate) fn of(user: &CurrentUser) -> Self {
        Self {
            second_factor_required: user.must_set_up_second_factor,
            username: user.user.username.clone(),
            is_admin: user.user.is_admin,
            csrf: user.session.csrf_token.expose().to_owned(),
            second_factor_reset: user.user.second_factor_reset_at.as_ref().map(datetime),
        }
    }
}

/// Field errors of a form, by field name.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct FormErrors(BTreeMap<&'static str, String>);

impl From<left4me_app::error::FieldErrors> for FormErrors {
    fn from(errors: left4me_app::error::FieldErrors) -> Self {
        let mut form = Self::default();
        for e in errors.iter() {
            form.add(e.field, e.message.clone());
        }
        form
    }
}

impl FormErrors {
    pub(crate) fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.insert(field, message.into());
    }

    pub(crate) fn get(&self, field: &str) -> &str {
        self.0.get(field).map_or("", String::as_str)
    }

    /// Every message, whatever its field.
    pub(crate) fn messages(self) -> Vec<String> {
        self.0.into_values().collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What was wrong with a submitted form. A rendered page carries it as a
/// response extension, so `error_pages` can answer a script that asked
/// for JSON with the same words and fields instead of the page.
#[derive(Debug, Clone)]
pub(crate) struct FormFailure {
    pub(crate) message: String,
    pub(crate) fields: FormErrors,
}

impl FormFailure {
    fn of(errors: &FormErrors) -> Option<Self> {
        let summary: Vec<String> = errors.0.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        (!errors.is_empty()).then(|| Self {
            message: format!("The form has mistakes ({}).", summary.join("; ")),
            fields: errors.clone(),
        })
    }
}

/// A page the panel renders.
pub(crate) trait Page: Template {
    /// The mistakes of the form it shows again, if any.
    fn failure(&self) -> Option<FormFailure> {
        None
    }
}

/// Pages whose form mistakes are in their `errors` field.
macro_rules! form_pages {
    ($($page:ty),* $(,)?) => {$(
        impl Page for $page {
            fn failure(&self) -> Option<FormFailure> {
                FormFailure::of(&self.errors)
            }
        }
    )*};
}

form_pages!(
    SetupPage,
    DashboardPage,
    ServerPage,
    BlueprintsPage,
    BlueprintPage,
    UsersPage,
    AccountPage,
    OverlaysPage,
    WorkshopPage,
    ScriptPage,
    TotpSetupPage,
);

impl Page for LoginPage {
    fn failure(&self) -> Option<FormFailure> {
        (!self.error.is_empty()).then(|| FormFailure {
            message: self.error.clone(),
            fields: FormErrors::default(),
        })
    }
}

impl Page for SecondFactorPage {
    fn failure(&self) -> Option<FormFailure> {
        (!self.error.is_empty()).then(|| FormFailure {
            message: self.error.clone(),
            fields: FormErrors::default(),
        })
    }
}

impl Page for SchedulesPage {
    fn failure(&self) -> Option<FormFailure> {
        FormFailure::of(&self.errors).or_else(|| {
            self.schedules
                .iter()
                .find_map(|s| FormFailure::of(&s.errors))
        })
    }
}

impl Page for RecoveryCodesPage {}
impl Page for JobsPage {}
impl Page for GamePage {}
impl Page for JobPage {}
impl Page for OverlayPage {}
impl Page for OverlayEditPage {}
impl Page for ActivityPage {}
impl Page for ConsolePage {}
impl Page for ServerLogPage {}
impl Page for ServerFilesPage {}

/// A rendered page, with its form's mistakes as a response extension.
/// No `Debug`: the page holds the session's CSRF token.
pub(crate) struct Rendered {
    html: String,
    failure: Option<FormFailure>,
}

impl IntoResponse for Rendered {
    fn into_response(self) -> Response {
        let mut response = Html(self.html).into_response();
        if let Some(failure) = self.failure {
            response.extensions_mut().insert(failure);
        }
        response
    }
}

pub(crate) fn render(page: &impl Page) -> AppResult<Rendered> {
    Ok(Rendered {
        html: page.render()?,
        failure: page.failure(),
    })
}

/// A job kind as the pages show it ("start server", not "server.start").
pub(crate) use crate::runner::job_label;

/// Why a queued job waits for an earlier one.
pub(crate) fn why_waiting(job: &Job, ahead: &Job) -> &'static str {
    match (job.server_id, ahead.server_id, ahead.overlay_id) {
        (Some(a), Some(b), _) if a == b => "jobs on one server run one at a time",
        (Some(_), _, Some(_)) => "a start waits for the builds of the overlays it mounts",
        (None, _, _) if job.overlay_id.is_some() => {
            "an overlay builds once the servers starting on it have started, one build at a time"
        }
        _ => "installs, updates and checks of the game run one at a time",
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`: the panel and its users
/// may be in different zones, so the zone is always said.
pub(crate) fn datetime(secs: &i64) -> String {
    jiff::Timestamp::from_second(*secs).map_or_else(
        |_| format!("{secs} (Unix time)"),
        |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// `secs` as wall-clock time in the IANA zone `zone` (a schedule's).
pub(crate) fn datetime_in(secs: i64, zone: &str) -> String {
    match (
        jiff::Timestamp::from_second(secs),
        jiff::tz::TimeZone::get(zone),
    ) {
        (Ok(t), Ok(zone)) => t
            .to_zoned(zone)
            .strftime("%a %Y-%m-%d %H:%M %Z")
            .to_string(),
        _ => datetime(&secs),
    }
}

#[derive(Template)]
#[template(path = "setup.html")]
pub(crate) struct SetupPage {
    pub(crate) token: String,
    pub(crate) csrf: String,
    pub(crate) username: String,
    pub(crate) errors: FormErrors,
}

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    pub(crate) csrf: String,
    pub(crate) username: String,
    pub(crate) error: String,
    /// Passkeys work on this panel (its web address allows them).
    pub(crate) passkeys: bool,
}

impl LoginPage {
    pub(crate) fn new(
        state: &crate::state::AppState,
        csrf: String,
        username: String,
        error: String,
    ) -> Self {
        Self {
            csrf,
            username,
            error,
            passkeys: state.app().passkeys().off_because().is_none(),
        }
    }
}

#[derive(Template)]
#[template(path = "second_factor.html")]
pub(crate) struct SecondFactorPage {
    pub(crate) csrf: String,
    pub(crate) error: String,
    /// The user has an authenticator app.
    pub(crate) totp: bool,
    /// A passkey challenge (JSON for the page's script), if the user has
    /// passkeys.
    pub(crate) passkey: Option<String>,
}

#[derive(Template)]
#[template(path = "totp_setup.html")]
pub(crate) struct TotpSetupPage {
    pub(crate) l: Layout,
    pub(crate) errors: FormErrors,
    pub(crate) secret: String,
    /// The QR code, drawn by the panel (SVG, no script).
    pub(crate) qr_svg: String,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub(crate) struct RecoveryCodesPage {
    pub(crate) l: Layout,
    /// Shown this once.
    pub(crate) codes: Vec<String>,
}

/// A server row with its live state.
#[derive(Debug, Clone)]
pub(crate) struct ServerRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) hostname: String,
    pub(crate) port: i64,
    pub(crate) owner: String,
    /// The viewer's role when they are a member ("operator", "viewer").
    pub(crate) role: &'static str,
    pub(crate) blueprint: String,
    pub(crate) desired: String,
    pub(crate) actual: String,
    /// Map and players from the last poll, if the server answered.
    pub(crate) live: String,
    /// "build 1001, 1002 available: restart to update" for a running
    /// server on an older installation version.
    pub(crate) outdated: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
pub(crate) struct DashboardPage {
    pub(crate) l: Layout,
    pub(crate) servers: Vec<ServerRow>,
    pub(crate) blueprints: Vec<Choice>,
    pub(crate) form: left4me_app::ops::servers::NewServerInput,
    pub(crate) errors: FormErrors,
}

/// What the server page offers the user, by their access and the
/// server's state: buttons that do not apply are disabled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerPermissions {
    /// Start, stop and restart; console, files and activity.
    pub(crate) operate: bool,
    pub(crate) manage: bool,
    pub(crate) can_start: bool,
    pub(crate) can_stop: bool,
    pub(crate) can_restart: bool,
}

impl ServerPermissions {
    pub(crate) fn new(access: crate::access::ServerAccess, actual: &str) -> Self {
        use crate::access::ServerAction;
        let operate = access.allows(ServerAction::Control);
        Self {
            operate,
            manage: access.allows(ServerAction::Manage),
            can_start: operate && actual != "running",
            can_stop: operate && actual != "stopped",
            can_restart: operate && actual == "running",
        }
    }
}

#[derive(Template)]
#[template(path = "server.html")]
pub(crate) struct ServerPage {
    pub(crate) l: Layout,
    pub(crate) row: ServerRow,
    pub(crate) p: ServerPermissions,
    pub(crate) members: Vec<left4me_store::ServerMember>,
    /// Users who could be added as members: `(id, name)`.
    pub(crate) candidates: Vec<(i64, String)>,
    /// For those who may use the console.
    pub(crate) rcon_password: Option<String>,
    /// The settings form: the stored values, or what was just submitted
    /// when it had a mistake.
    pub(crate) settings: left4me_app::ops::servers::ServerSettingsInput,
    /// The user's blueprints, plus the server's own if someone else's.
    pub(crate) blueprints: Vec<Choice>,
    pub(crate) connect: String,
    pub(crate) spec_yaml: String,
    pub(crate) pid: String,
    pub(crate) uptime: String,
    pub(crate) restarts: u32,
    pub(crate) reason: String,
    pub(crate) jobs: Vec<Job>,
    pub(crate) errors: FormErrors,
    pub(crate) online: Vec<crate::live::OnlinePlayer>,
    pub(crate) sessions: Vec<left4me_store::PlayerSession>,
    /// For admins: the failed last backup or check (job, why).
    pub(crate) backup_failed: Option<(i64, String)>,
    /// The running server refuses the panel's RCON password.
    pub(crate) rcon_refused: bool,
    pub(crate) charts: Vec<crate::charts::Chart>,
    /// The graphs' range, and the ranges to choose from (`?graph=`).
    pub(crate) graph_range: &'static str,
    pub(crate) graph_ranges: [(&'static str, &'static str); 3],
}

/// A blueprint or overlay in a drop-down: someone else's is labelled with
/// its owner, so two "Coop" can be told apart.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub(crate) id: i64,
    pub(crate) label: String,
}

impl Choice {
    pub(crate) fn new(
        id: i64,
        name: String,
        owner_id: i64,
        owner: &str,
        user: &CurrentUser,
    ) -> Self {
        Self {
            id,
            label: if owner_id == user.id() {
                name
            } else {
                format!("{name} ({owner})")
            },
        }
    }
}

#[derive(Template)]
#[template(path = "blueprints.html")]
pub(crate) struct BlueprintsPage {
    pub(crate) l: Layout,
    pub(crate) blueprints: Vec<ListedBlueprint>,
    pub(crate) me: i64,
    pub(crate) name: String,
    pub(crate) errors: FormErrors,
}

#[derive(Template)]
#[template(path = "blueprint.html")]
pub(crate) struct BlueprintPage {
    pub(crate) l: Layout,
    pub(crate) blueprint: Blueprint,
    pub(crate) owner: String,
    /// Owner or admin: the form saves; others see it read-only and copy.
    pub(crate) can_change: bool,
    pub(crate) overlays: Vec<BlueprintOverlay>,
    pub(crate) available: Vec<Choice>,
    pub(crate) preview: String,
    /// The launch arguments as the game will get them, one per item.
    pub(crate) arguments: Vec<String>,
    pub(crate) errors: FormErrors,
    pub(crate) saved: bool,
}

#[derive(Template)]
#[template(path = "jobs.html")]
pub(crate) struct JobsPage {
    pub(crate) l: Layout,
    pub(crate) title: String,
    pub(crate) jobs: Vec<Job>,
}

#[derive(Template)]
#[template(path = "job.html")]
pub(crate) struct JobPage {
    pub(crate) l: Layout,
    pub(crate) job: Job,
    pub(crate) lines: Vec<LogLine>,
    pub(crate) last_seq: i64,
    /// The running or earlier queued job on the same server, if queued.
    pub(crate) waiting_for: Option<Job>,
    /// A cancel came after the job had ended.
    pub(crate) late_cancel: bool,
}

#[derive(Template)]
#[template(path = "game.html")]
pub(crate) struct GamePage {
    pub(crate) l: Layout,
    pub(crate) o: left4me_app::game::Overview,
    pub(crate) update_available: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
pub(crate) struct UsersPage {
    pub(crate) l: Layout,
    pub(crate) users: Vec<User>,
    pub(crate) me: i64,
    pub(crate) username: String,
    pub(crate) errors: FormErrors,
    /// Who must have a second factor: `nobody`, `admins`, `everyone`.
    pub(crate) policy: &'static str,
}

#[derive(Template)]
#[template(path = "account.html")]
pub(crate) struct AccountPage {
    pub(crate) l: Layout,
    pub(crate) errors: FormErrors,
    pub(crate) changed: bool,
    pub(crate) tokens: Vec<TokenRow>,
    /// The servers a token may be limited to: `(id, name)`.
    pub(crate) servers: Vec<(i64, String)>,
    /// A token just made: its name and the token, shown this once.
    pub(crate) made: Option<(String, String)>,
    pub(crate) factor: left4me_app::ops::second_factor::FactorStatus,
    pub(crate) sessions: Vec<SessionRow>,
    /// The user proved who they are in the last ten minutes (tokens and a
    /// new second factor take that).
    pub(crate) recent: bool,
}

/// A session in the account page's list.
#[derive(Debug, Clone)]
pub(crate) struct SessionRow {
    pub(crate) id: i64,
    pub(crate) browser: String,
    pub(crate) address: String,
    pub(crate) signed_in: String,
    pub(crate) last_seen: String,
    pub(crate) current: bool,
}

/// An API token in the account page's list.
#[derive(Debug, Clone)]
pub(crate) struct TokenRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) scopes: String,
    pub(crate) servers: String,
    pub(crate) expires: String,
    pub(crate) last_used: String,
}

#[derive(Template)]
#[template(path = "overlays.html")]
pub(crate) struct OverlaysPage {
    pub(crate) l: Layout,
    pub(crate) overlays: Vec<ListedOverlay>,
    pub(crate) me: i64,
    pub(crate) name: String,
    /// The kind picked for a new overlay ("files", "workshop", "script").
    pub(crate) kind: String,
    /// What adding the example scripts did.
    pub(crate) notice: String,
    pub(crate) errors: FormErrors,
}

/// What the page of a built overlay (Workshop, script) shows of its
/// builds (`overlay_build.html`).
#[derive(Debug, Clone)]
pub(crate) struct BuildState {
    /// The published version, in words ("version 3 (2026-11-28 ...)").
    pub(crate) version: String,
    /// The build queued or running, if any.
    pub(crate) build: Option<Job>,
}

/// A Workshop overlay: its items, what was added, the build in progress.
#[derive(Template)]
#[template(path = "overlay_workshop.html")]
pub(crate) struct WorkshopPage {
    pub(crate) l: Layout,
    pub(crate) overlay: Overlay,
    pub(crate) owner: String,
    pub(crate) can_change: bool,
    pub(crate) used_by: String,
    pub(crate) built: BuildState,
    pub(crate) sources: Vec<WorkshopSourceRow>,
    pub(crate) items: Vec<WorkshopItemRow>,
    /// What the last add did, and the build it queued.
    pub(crate) notice: String,
    pub(crate) notice_job: Option<i64>,
    pub(crate) refused: Vec<String>,
    /// The add form's text, kept after a mistake.
    pub(crate) entered: String,
    pub(crate) errors: FormErrors,
}

/// A script overlay: its script (read-only but for admins), its builds.
#[derive(Template)]
#[template(path = "overlay_script.html")]
pub(crate) struct ScriptPage {
    pub(crate) l: Layout,
    pub(crate) overlay: Overlay,
    pub(crate) owner: String,
    /// Share or delete it.
    pub(crate) can_change: bool,
    /// Edit and build the script: admins only.
    pub(crate) can_edit: bool,
    pub(crate) used_by: String,
    pub(crate) built: BuildState,
    /// The saved script, or what was entered when the form had mistakes.
    pub(crate) script: String,
    pub(crate) description: String,
    pub(crate) from_previous: bool,
    pub(crate) script_limit_kib: usize,
    pub(crate) errors: FormErrors,
}

#[derive(Debug, Clone)]
pub(crate) struct WorkshopSourceRow {
    pub(crate) id: i64,
    pub(crate) title: String,
    pub(crate) is_collection: bool,
    /// Items a collection brought at the last build.
    pub(crate) items: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct WorkshopItemRow {
    pub(crate) id: i64,
    pub(crate) title: String,
    pub(crate) size: i64,
    pub(crate) updated: i64,
    pub(crate) state: String,
    pub(crate) error: String,
    /// The collection it came from (its title), or empty.
    pub(crate) via: String,
}

/// An item's page on the Steam Community.
pub(crate) fn workshop_url(id: &i64) -> String {
    format!("https://steamcommunity.com/sharedfiles/filedetails/?id={id}")
}

/// A row of the file browser.
#[derive(Debug, Clone)]
pub(crate) struct FileRow {
    pub(crate) path: String,
    pub(crate) name: String,
    pub(crate) is_dir: bool,
    pub(crate) is_link: bool,
    pub(crate) size: u64,
    pub(crate) editable: bool,
}

/// A size as people read it: `812 B`, `4.2 KiB`, `1.5 GiB`.
pub(crate) fn human_size(bytes: &u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = *bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl FileRow {
    /// A listed entry; files up to `edit_limit` bytes get an edit link.
    pub(crate) fn from_entry(e: left4me_files::Entry, edit_limit: u64) -> Self {
        use left4me_files::EntryKind;
        Self {
            path: e.path.as_str().to_owned(),
            name: e.name,
            is_dir: e.kind == EntryKind::Dir,
            is_link: e.kind == EntryKind::Symlink,
            size: e.size,
            editable: e.kind == EntryKind::File && e.size <= edit_limit,
        }
    }
}

#[derive(Template)]
#[template(path = "overlay.html")]
pub(crate) struct OverlayPage {
    pub(crate) l: Layout,
    pub(crate) overlay: Overlay,
    pub(crate) owner: String,
    /// Owner or admin: the editing forms are shown.
    pub(crate) can_change: bool,
    /// Names of the files just uploaded, to confirm them.
    pub(crate) uploaded: String,
    pub(crate) used_by: String,
    pub(crate) dir: String,
    pub(crate) parent: Option<String>,
    pub(crate) rows: Vec<FileRow>,
    pub(crate) upload_limit_mb: u64,
}

#[derive(Template)]
#[template(path = "overlay_edit.html")]
pub(crate) struct OverlayEditPage {
    pub(crate) l: Layout,
    pub(crate) overlay: Overlay,
    pub(crate) path: String,
    pub(crate) dir: String,
    pub(crate) content: String,
}

#[derive(Template)]
#[template(path = "activity.html")]
pub(crate) struct ActivityPage {
    pub(crate) l: Layout,
    pub(crate) title: String,
    pub(crate) base: String,
    /// The kinds recorded so far, for the filter's choice.
    pub(crate) kinds: Vec<String>,
    pub(crate) kind: String,
    pub(crate) actor: String,
    pub(crate) entries: Vec<left4me_store::Activity>,
    pub(crate) older: Option<String>,
}

#[derive(Template)]
#[template(path = "console.html")]
pub(crate) struct ConsolePage {
    pub(crate) l: Layout,
    pub(crate) server_id: i64,
    pub(crate) name: String,
    pub(crate) commands: Vec<left4me_store::ConsoleCommand>,
    /// The commands as a JSON list, for ↑/↓.
    pub(crate) history_json: String,
}

#[derive(Template)]
#[template(path = "server_log.html")]
pub(crate) struct ServerLogPage {
    pub(crate) l: Layout,
    pub(crate) server_id: i64,
    pub(crate) name: String,
    /// Operators and up: the console, files and activity tabs.
    pub(crate) operate: bool,
    /// The last lines, for readers without JavaScript.
    pub(crate) text: String,
    pub(crate) note: String,
}

#[derive(Template)]
#[template(path = "server_files.html")]
pub(crate) struct ServerFilesPage {
    pub(crate) l: Layout,
    pub(crate) server_id: i64,
    pub(crate) name: String,
    pub(crate) mounted: bool,
    pub(crate) dir: String,
    pub(crate) parent: Option<String>,
    pub(crate) rows: Vec<FileRow>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(super::human_size(&0), "0 B");
        assert_eq!(super::human_size(&812), "812 B");
        assert_eq!(super::human_size(&4300), "4.2 KiB");
        assert_eq!(super::human_size(&(3 << 30)), "3.0 GiB");
    }

    use super::*;

    #[test]
    fn formats_unix_time() {
        assert_eq!(datetime(&0), "1970-01-01 00:00:00 UTC");
        assert_eq!(datetime(&1_763_870_400), "2025-11-23 04:00:00 UTC");
        assert_eq!(datetime(&951_782_400), "2000-02-29 00:00:00 UTC");
    }
}

/// A schedule's form, as typed (every field text; a checkbox is there
/// when ticked).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(crate) struct ScheduleForm {
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) timing: String,
    #[serde(default)]
    pub(crate) time_zone: String,
    /// One step per line.
    #[serde(default)]
    pub(crate) steps: String,
    /// `ignore`, `only_when_empty` or `wait_for_empty`.
    #[serde(default)]
    pub(crate) players: String,
    #[serde(default)]
    pub(crate) up_to_minutes: String,
    /// Minutes, separated by commas or spaces.
    #[serde(default)]
    pub(crate) warn_minutes: String,
    pub(crate) catch_up: Option<String>,
    pub(crate) enabled: Option<String>,
}

/// A past run of a schedule.
#[derive(Debug)]
pub(crate) struct RunRow {
    pub(crate) job_id: i64,
    pub(crate) state: String,
    pub(crate) at: String,
}

/// A schedule as its page lists it.
#[derive(Debug)]
pub(crate) struct ScheduleRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) enabled: bool,
    /// One of the panel's own routines (never deleted).
    pub(crate) builtin: bool,
    /// When, in words: "04:00 (Europe/Berlin)".
    pub(crate) when: String,
    pub(crate) players: String,
    pub(crate) steps: Vec<String>,
    pub(crate) next_runs: Vec<String>,
    pub(crate) runs: Vec<RunRow>,
    pub(crate) last_skipped: Option<String>,
    /// Its settings, to change them.
    pub(crate) form: ScheduleForm,
    /// Mistakes in its settings as last submitted.
    pub(crate) errors: FormErrors,
}

#[derive(Template)]
#[template(path = "schedules.html")]
pub(crate) struct SchedulesPage {
    pub(crate) l: Layout,
    /// The server's id and name; `None` on the panel's page.
    pub(crate) server: Option<(i64, String)>,
    /// May make, change and run them (and, on a server, operate it).
    pub(crate) can_change: bool,
    pub(crate) schedules: Vec<ScheduleRow>,
    /// The new schedule's form.
    pub(crate) form: ScheduleForm,
    pub(crate) errors: FormErrors,
}

impl SchedulesPage {
    /// Where the new schedule's form goes.
    pub(crate) fn new_action(&self) -> String {
        match &self.server {
            Some((id, _)) => format!("/servers/{id}/schedules"),
            None => "/schedules".to_owned(),
        }
    }
}

/// A backup in the list.
#[derive(Debug)]
pub(crate) struct BackupRow {
    pub(crate) id: i64,
    pub(crate) snapshot: String,
    pub(crate) job_id: Option<i64>,
    pub(crate) taken: String,
    pub(crate) took: String,
    pub(crate) files: i64,
    pub(crate) looked_at: String,
    pub(crate) added: String,
}

#[derive(Template)]
#[template(path = "backups.html")]
pub(crate) struct BackupsPage {
    pub(crate) l: Layout,
    pub(crate) repository: String,
    pub(crate) password_file: String,
    pub(crate) backups: Vec<BackupRow>,
    /// The last backup job, when it failed.
    pub(crate) last_failed: Option<(i64, String)>,
    /// The servers whose state a backup can bring back: `(id, name)`.
    pub(crate) servers: Vec<(i64, String)>,
    /// The files overlays a backup can bring back: `(id, name)`.
    pub(crate) overlays: Vec<(i64, String)>,
}

impl Page for BackupsPage {}
