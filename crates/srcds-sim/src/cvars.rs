//! Console variables: the ones the project touches, the ones L4D2 reports in
//! A2S_RULES, and the simulator's own `sim_*` knobs.
//!
//! Only known cvars can be set (srcds answers `Unknown command` otherwise), so
//! the table lists the cvars a left4me blueprint is likely to set.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Reported by A2S_RULES (`FCVAR_NOTIFY`).
const NOTIFY: u8 = 1;
/// Value never shown: A2S_RULES reports `1`/`0` for set/unset (`FCVAR_PROTECTED`).
const PROTECTED: u8 = 2;
/// Only meaningful to the simulator.
const SIM: u8 = 4;
/// Replicated to clients (only shown in `cvarlist`).
const REPLICATED: u8 = 8;
/// Needs `sv_cheats` (only shown in `cvarlist`).
const CHEAT: u8 = 16;

struct Def {
    name: &'static str,
    default: &'static str,
    flags: u8,
    help: &'static str,
}

const fn def(name: &'static str, default: &'static str, flags: u8, help: &'static str) -> Def {
    Def {
        name,
        default,
        flags,
        help,
    }
}

const N: u8 = NOTIFY;
const NR: u8 = NOTIFY | REPLICATED;

#[rustfmt::skip]
const DEFS: &[Def] = &[
    def("hostname", "Left 4 Dead 2", 0, "Hostname for server."),
    def("rcon_password", "", PROTECTED, "remote console password."),
    def("sv_password", "", NOTIFY | PROTECTED, "Server password for entry into multiplayer games"),
    def("maxplayers", "8", 0, "Maximum number of players (set on the command line or in server.cfg)."),
    def("ip", "0.0.0.0", 0, "Overrides IP for multihomed hosts"),
    def("hostport", "27015", 0, "Host game server port"),
    def("servercfgfile", "server.cfg", 0, "Config file executed on every map load."),
    def("sv_rcon_maxfailures", "5", 0, "Max number of times a user can fail rcon authentication before being banned"),
    def("sv_rcon_minfailuretime", "30", 0, "Number of seconds to track failed rcon authentications"),
    def("sv_rcon_banpenalty", "0", 0, "Number of minutes to ban users who fail rcon authentication"),
    def("sv_rcon_log", "1", 0, "Enable/disable rcon logging."),
    def("sv_lan", "0", 0, "Server is a lan server ( no heartbeat, no authentication, no non-class C addresses )"),
    def("sv_region", "-1", 0, "The region of the world to report this server in."),
    def("sv_steamgroup", "", NOTIFY, "The Steam group ID(s) that the server belongs to."),
    def("sv_steamgroup_exclusive", "0", 0, "If set, only members of the Steam group can join the server when it is empty."),
    def("sv_allow_lobby_connect_only", "1", 0, "If set, players may only join this server from matchmaking lobby, not directly."),
    def("sv_search_key", "", 0, "When searching for a dedicated server from lobby, restrict search to only dedicated servers having the same sv_search_key."),
    def("sv_tags", "", NOTIFY, "Server tags. Used to provide extra information to clients when they're browsing for servers."),
    def("sv_gametypes", "coop,realism,survival,versus,scavenge", N, "Game types the server accepts."),
    def("sv_consistency", "1", REPLICATED, "Whether the server enforces file consistency for critical files"),
    def("sv_pure", "0", 0, "Show user data."),
    def("sv_hibernate_when_empty", "1", 0, "Puts the server into extremely low CPU usage mode when no clients connected"),
    def("sv_minrate", "5000", REPLICATED, "Min bandwidth rate allowed on server, 0 == unlimited"),
    def("sv_maxrate", "30000", REPLICATED, "Max bandwidth rate allowed on server, 0 == unlimited"),
    def("sv_mincmdrate", "0", REPLICATED, "This sets the minimum value for cl_cmdrate. 0 == unlimited."),
    def("sv_maxcmdrate", "30", REPLICATED, "(If sv_mincmdrate is > 0), this sets the maximum value for cl_cmdrate."),
    def("sv_minupdaterate", "10", REPLICATED, "Minimum updates per second that the server will allow"),
    def("sv_maxupdaterate", "30", REPLICATED, "Maximum updates per second that the server will allow"),
    def("sv_visiblemaxplayers", "-1", 0, "Overrides the max players reported to prospective clients"),
    def("sv_logecho", "1", 0, "Echo log information to the console."),
    def("sv_logfile", "1", 0, "Log server information in the log file."),
    def("sv_log_onefile", "0", 0, "Log server information to only one file."),
    def("fps_max", "300", 0, "Frame rate limiter"),
    def("motd_enabled", "1", 0, "If set to 1, show the message of the day when players join."),
    def("host_timescale", "1.0", CHEAT | REPLICATED, "Prescale the clock by this amount."),
    def("mp_gamemode", "coop", NR, "Current game mode, acceptable values are coop, realism, versus, survival, scavenge and holdout."),
    def("z_difficulty", "Normal", N, "Difficulty of the current game (Easy, Normal, Hard, Impossible)"),
    def("sv_cheats", "0", NR, "Allow cheats on server"),
    def("sv_alltalk", "0", NR, "Players can hear all other players, no team restrictions"),
    def("sv_voiceenable", "1", N, ""),
    def("sv_gravity", "800", NR, "World gravity."),
    def("sv_friction", "4", NR, "World friction."),
    def("sv_stopspeed", "75", NR, "Minimum stopping speed when on ground."),
    def("sv_accelerate", "5", NR, "Linear acceleration amount (old value is 5.6)"),
    def("sv_airaccelerate", "10", NR, ""),
    def("sv_wateraccelerate", "10", NR, ""),
    def("sv_waterfriction", "1", NR, ""),
    def("sv_maxspeed", "1000", NR, ""),
    def("sv_noclipaccelerate", "5", NR, ""),
    def("sv_noclipspeed", "5", NR, ""),
    def("sv_specaccelerate", "5", NR, ""),
    def("sv_specspeed", "3", NR, ""),
    def("sv_specnoclip", "1", NR, ""),
    def("sv_stepsize", "18", NR, ""),
    def("sv_bounce", "0", NR, "Bounce multiplier for when physically simulated objects collide with other objects."),
    def("sv_rollangle", "0", NR, "Max view roll angle"),
    def("sv_rollspeed", "200", NR, ""),
    def("sv_footsteps", "1", NR, "Play footstep sound for players"),
    def("sv_pausable", "0", N, "Is the server pausable."),
    def("sv_contact", "", N, "Contact email for server sysop"),
    def("sv_vote_kick_ban_duration", "5", N, "How long should a kick vote ban someone from the server? (in minutes)"),
    def("sv_vote_issue_change_difficulty_allowed", "1", NR, "Can people hold votes to change difficulty?"),
    def("sv_vote_issue_change_mission_allowed", "1", NR, "Can people hold votes to change missions?"),
    def("sv_vote_issue_restart_game_allowed", "1", NR, "Can people hold votes to restart the game?"),
    def("sv_vote_issue_kick_allowed", "1", NR, "Can people hold votes to kick players?"),
    def("sv_vote_creation_timer", "120", N, "How often someone can individually call a vote."),
    def("sv_vote_timer_duration", "15", NR, "How long to allow voting on an issue"),
    def("sb_all_bot_game", "0", N, "Allow a game to continue with no human players"),
    def("survivor_limit", "4", NR, "Maximum number of survivors"),
    def("survivor_max_incapacitated_count", "2", NR, ""),
    def("survivor_friendly_fire_factor_normal", "0.1", NR, ""),
    def("z_max_player_zombies", "4", NR, "Maximum number of player-controlled infected"),
    def("z_common_limit", "30", CHEAT | NOTIFY, "Max number of wandering zombies that can be in existence at any time"),
    def("director_afk_timeout", "45", N, "Seconds before an idle survivor is replaced by a bot"),
    def("director_no_death_check", "0", CHEAT | NOTIFY, ""),
    def("versus_boss_buffer", "2000", NR, ""),
    def("versus_force_start_time", "90", NR, ""),
    def("scavenge_round_initial_time", "90", NR, ""),
    def("mp_allowNPCs", "1", N, ""),
    def("mp_autocrosshair", "1", NR, ""),
    def("mp_autoteambalance", "1", N, ""),
    def("mp_disable_autokick", "0", N, "Prevents a userid from being auto-kicked"),
    def("mp_fadetoblack", "0", NR, "fade a player's screen to black when he dies"),
    def("mp_falldamage", "0", N, ""),
    def("mp_flashlight", "1", NR, ""),
    def("mp_footsteps", "1", NR, ""),
    def("mp_forcerespawn", "1", N, ""),
    def("mp_fraglimit", "0", N, ""),
    def("mp_friendlyfire", "0", NR, "Allows team members to injure other members of their team"),
    def("mp_limitteams", "2", N, "Max # of players 1 team can have over another (0 disables check)"),
    def("mp_teamlist", "hgrunt;scientist", N, ""),
    def("mp_teamplay", "0", N, ""),
    def("mp_teams_unbalance_limit", "1", N, "Teams are unbalanced when one team has this many more players than the other team. (0 disables check)"),
    def("mp_timelimit", "0", N, "game time per map in minutes"),
    def("mp_weaponstay", "0", N, ""),
    def("nextlevel", "", N, "If set to a valid map name, will change to this map during the next changelevel"),
    def("coop", "0", N, "Cooperative play."),
    def("deathmatch", "1", N, "Running a deathmatch server."),
    def("decalfrequency", "10", N, ""),
    def("r_AirboatViewDampenDamp", "1.0", N, ""),
    def("r_AirboatViewDampenFreq", "7.0", N, ""),
    def("r_AirboatViewZHeight", "0.0", N, ""),
    def("r_JeepViewDampenDamp", "1.0", N, ""),
    def("r_JeepViewDampenFreq", "7.0", N, ""),
    def("r_JeepViewZHeight", "10.0", N, ""),
    def("r_VehicleViewDampen", "1", N, ""),
    def("tv_enable", "0", N, "Activates SourceTV on server."),
    def("tv_password", "", NOTIFY | PROTECTED, "SourceTV password for all clients"),
    def("tv_relaypassword", "", NOTIFY | PROTECTED, "SourceTV password for relay proxies"),
    def("sim_boot_delay_ms", "0", SIM, "srcds-sim: milliseconds to stay silent (no A2S, no RCON) after start-up."),
    def("sim_crash_after_ms", "0", SIM, "srcds-sim: crash this many milliseconds after start-up (0 = never)."),
    def("sim_exit_code", "139", SIM, "srcds-sim: exit status of a simulated crash."),
];

/// The current cvar values.
#[derive(Debug, Clone)]
pub(crate) struct Cvars {
    values: BTreeMap<&'static str, String>,
}

impl Cvars {
    pub(crate) fn new() -> Self {
        Self {
            values: DEFS
                .iter()
                .map(|d| (d.name, d.default.to_owned()))
                .collect(),
        }
    }

    fn def(name: &str) -> Option<&'static Def> {
        DEFS.iter().find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// Whether `name` is a cvar (case-insensitive).
    pub(crate) fn is_known(name: &str) -> bool {
        Self::def(name).is_some()
    }

    /// The value of a known cvar; unknown names read as empty.
    pub(crate) fn get(&self, name: &str) -> &str {
        Self::def(name)
            .and_then(|d| self.values.get(d.name))
            .map_or("", String::as_str)
    }

    /// A numeric cvar, read like srcds reads `atoi`: garbage is 0.
    pub(crate) fn get_u64(&self, name: &str) -> u64 {
        let value = self.get(name).trim();
        let digits: &str = &value[..value
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(value.len())];
        digits.parse().unwrap_or(0)
    }

    /// Sets a known cvar; returns false for unknown names.
    pub(crate) fn set(&mut self, name: &str, value: &str) -> bool {
        match Self::def(name) {
            Some(d) => {
                self.values.insert(d.name, value.to_owned());
                true
            }
            None => false,
        }
    }

    /// The answer to a cvar name typed without a value.
    pub(crate) fn describe(&self, name: &str) -> Option<String> {
        let d = Self::def(name)?;
        let mut text = format!("\"{}\" = \"{}\"", d.name, self.get(d.name));
        if self.get(d.name) != d.default {
            let _ = write!(text, " ( def. \"{}\" )", d.default);
        }
        text.push('\n');
        let flags = flag_words(d.flags);
        if !flags.is_empty() {
            let _ = writeln!(text, " {}", flags.join(" "));
        }
        if !d.help.is_empty() {
            let _ = writeln!(text, " - {}", d.help);
        }
        Some(text)
    }

    /// The name/value pairs A2S_RULES reports.
    pub(crate) fn rules(&self) -> Vec<(&'static str, String)> {
        DEFS.iter()
            .filter(|d| d.flags & NOTIFY != 0)
            .map(|d| {
                let value = self.get(d.name);
                let shown = if d.flags & PROTECTED == 0 {
                    value.to_owned()
                } else if value.is_empty() {
                    "0".to_owned()
                } else {
                    "1".to_owned()
                };
                (d.name, shown)
            })
            .collect()
    }

    /// The output of `cvarlist [prefix]`.
    ///
    /// Real L4D2 lists about 3,000 cvars and commands, far more than fit in
    /// one RCON packet; clients must handle that, so after the known cvars the
    /// list is padded with generated entries until it is about as long.
    pub(crate) fn cvarlist(&self, prefix: &str) -> String {
        let prefix = prefix.to_ascii_lowercase();
        let mut out = String::from("cvar list\n--------------\n");
        let mut count = 0usize;
        let mut line = |out: &mut String, name: &str, value: &str, flags: &str, help: &str| {
            if name.to_ascii_lowercase().starts_with(&prefix) {
                let _ = writeln!(out, "{name:<40} : {value:<8} : {flags:<22} : {help}");
                count += 1;
            }
        };
        for d in DEFS {
            let flags = flag_list(d.flags);
            let value = if d.flags & PROTECTED != 0 {
                ""
            } else {
                self.get(d.name)
            };
            line(&mut out, d.name, value, &flags, d.help);
        }
        for command in COMMANDS {
            line(&mut out, command, "cmd", "", "");
        }
        for i in 0..FILLER_CVARS {
            let family = FILLER_FAMILIES[i % FILLER_FAMILIES.len()];
            let name = format!("{family}_tuning_{i:04}");
            let value = (i * 7 % 100).to_string();
            line(
                &mut out,
                &name,
                &value,
                ", \"sv\", \"cheat\"",
                "Simulated tuning value; has no effect.",
            );
        }
        out.push_str("--------------\n");
        if prefix.is_empty() {
            let _ = writeln!(out, "{count:>6} total convars/concommands");
        } else {
            let _ = writeln!(out, "{count:>6} convars/concommands for [{prefix}]");
        }
        out
    }
}

/// How many generated cvars pad `cvarlist` (see [`Cvars::cvarlist`]).
const FILLER_CVARS: usize = 700;
const FILLER_FAMILIES: &[&str] = &[
    "z", "sb", "nb", "director", "survivor", "versus", "scavenge", "ai", "phys", "snd", "net",
    "mat",
];

/// Commands listed by `cvarlist` (the ones the simulator implements).
const COMMANDS: &[&str] = &[
    "changelevel",
    "cvarlist",
    "echo",
    "exec",
    "exit",
    "kick",
    "map",
    "quit",
    "say",
    "sim_addons",
    "sim_crash",
    "sim_join",
    "sim_leave",
    "status",
    "version",
];

/// The flag names shown when a cvar is described.
fn flag_words(flags: u8) -> Vec<&'static str> {
    let mut words = Vec::new();
    if flags & NOTIFY != 0 {
        words.push("notify");
    }
    if flags & REPLICATED != 0 {
        words.push("replicated");
    }
    if flags & CHEAT != 0 {
        words.push("cheat");
    }
    if flags & PROTECTED != 0 {
        words.push("protected");
    }
    if flags & SIM != 0 {
        words.push("srcds-sim");
    }
    words
}

fn flag_list(flags: u8) -> String {
    let mut list = String::new();
    for word in flag_words(flags) {
        let short = match word {
            "notify" => "nf",
            "replicated" => "rep",
            "protected" => "prot",
            other => other,
        };
        let _ = write!(list, ", \"{short}\"");
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_and_unknown() {
        let mut cvars = Cvars::new();
        assert_eq!(cvars.get("hostname"), "Left 4 Dead 2");
        assert!(cvars.set("HostName", "x"));
        assert_eq!(cvars.get("hostname"), "x");
        assert!(!cvars.set("no_such_cvar", "1"));
        assert_eq!(cvars.get("no_such_cvar"), "");
        assert!(cvars.set("sim_boot_delay_ms", "250ms"));
        assert_eq!(cvars.get_u64("sim_boot_delay_ms"), 250);
        assert!(cvars.set("sim_boot_delay_ms", "-3"));
        assert_eq!(cvars.get_u64("sim_boot_delay_ms"), 0);
    }

    #[test]
    fn describe_shows_default_when_changed() {
        let mut cvars = Cvars::new();
        assert!(
            cvars
                .describe("sv_cheats")
                .is_some_and(|d| d.starts_with("\"sv_cheats\" = \"0\"\n"))
        );
        cvars.set("sv_cheats", "1");
        assert!(
            cvars
                .describe("sv_cheats")
                .is_some_and(|d| d.starts_with("\"sv_cheats\" = \"1\" ( def. \"0\" )\n"))
        );
    }

    #[test]
    fn rules_hide_protected_values() {
        let mut cvars = Cvars::new();
        cvars.set("sv_password", "secret");
        let rules = cvars.rules();
        assert!(rules.contains(&("sv_password", "1".to_owned())));
        assert!(!rules.iter().any(|(n, _)| *n == "rcon_password"));
        let size: usize = rules.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
        assert!(size > 1400, "rules must not fit one packet, got {size}");
    }

    #[test]
    fn cvarlist_is_long_and_counted() {
        let list = Cvars::new().cvarlist("");
        assert!(list.len() > 60_000, "{}", list.len());
        assert!(list.trim_end().ends_with("total convars/concommands"));
        let filtered = Cvars::new().cvarlist("sv_rcon");
        assert!(filtered.contains("sv_rcon_maxfailures"));
        assert!(
            filtered
                .trim_end()
                .ends_with("convars/concommands for [sv_rcon]")
        );
    }
}
