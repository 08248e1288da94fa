//! Live state of running servers: a poller asks each one and keeps the
//! latest answer in memory. Player sessions go to the database when
//! players come and go.
//!
//! Quiet by design: map and players come from A2S (INFO, and PLAYER when
//! someone is on), which the game does not log. RCON `status` is asked
//! only when the players changed, to learn the newcomers' Steam ids for
//! player sessions, because srcds writes every RCON command into its
//! console (`rcon from "IP:PORT": command "status"`): asked every cycle it
//! would drown the server's log in 720 lines an hour. An idle server gets
//! nothing from the poller in its console. Each question is bounded by a
//! timeout so a silent server never stalls the others.
//!
//! RCON is asked only for what is missing, and less often after failures
//! ([`RconMemory`]): a player whose Steam id `status` does not give (still
//! connecting, a bot, a name it prints differently) is asked about again
//! after 15 s, then 30 s, … up to 15 min; a server that does not answer
//! RCON likewise. A server that refuses the password is not asked again
//! until its process changes: srcds bans an address after repeated wrong
//! passwords (`sv_rcon_maxfailures`), which would lock the panel's console
//! out too. The server page says so.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use left4me_host::lifecycle::Host;
use left4me_store::{PlayerSession, Server, Store};
use srcds_protocol::{RconClient, a2s};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::spec_builder::ask_host;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OnlinePlayer {
    pub name: String,
    pub score: i32,
    pub seconds: u64,
    pub steam_id: Option<String>,
    /// From the last RCON `status`, asked when the players changed.
    pub ping: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct LiveState {
    pub map: String,
    pub players: u8,
    pub max_players: u8,
    pub hibernating: bool,
    pub online: Vec<OnlinePlayer>,
    /// Unix seconds of the answer.
    pub at: i64,
    /// How long the server took to answer A2S_INFO, in microseconds.
    pub query_micros: u64,
}

/// What the supervisor said of a server's processes at the last poll,
/// with their CPU time and memory while running.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessSample {
    /// `running`, `backoff`, `stopped`, `failed`, … as the backend says.
    pub state: String,
    pub running: bool,
    /// Restarts after crashes since the last start.
    pub restarts: u32,
    pub usage: Option<left4me_host::usage::Usage>,
}

/// The latest live state per server id, and how many poll cycles have
/// finished (so tests and callers can wait for a pass instead of sleeping).
#[derive(Debug)]
pub struct Live {
    states: RwLock<HashMap<i64, LiveState>>,
    processes: RwLock<HashMap<i64, ProcessSample>>,
    rcon: RwLock<HashMap<i64, RconMemory>>,
    cycles: watch::Sender<u64>,
    /// Unix seconds of the last finished cycle (0: none yet).
    last_cycle_at: std::sync::atomic::AtomicI64,
}

/// Failures in a row and when the next attempt may be made: 15 s after
/// the first, doubling up to 15 min.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backoff {
    failures: u32,
    next_at: i64,
}

impl Backoff {
    const FIRST_SECS: i64 = 15;
    const MAX_SECS: i64 = 15 * 60;

    fn ready(self, now: i64) -> bool {
        now >= self.next_at
    }

    #[must_use]
    fn failed(self, now: i64) -> Self {
        // 15 s << 6 is past the limit already: no shift overflows.
        let delay = (Self::FIRST_SECS << self.failures.min(6)).min(Self::MAX_SECS);
        Self {
            failures: self.failures.saturating_add(1),
            next_at: now + delay,
        }
    }
}

/// What the poller remembers of asking one server process over RCON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RconMemory {
    /// The process this is about: another one (a restart) starts afresh.
    pid: Option<u32>,
    /// The server refused the panel's password.
    refused: bool,
    /// `status` got no answer (timeouts, network errors).
    failures: Backoff,
    /// Players `status` gave no Steam id for, by name.
    unknown: HashMap<String, Backoff>,
    /// Console commands' answers noted so far: one noted while a cycle
    /// asked the server wins over what that cycle learnt.
    noted: u64,
}

impl RconMemory {
    /// Forgets everything learnt of another process than `pid`.
    fn for_process(self, pid: Option<u32>) -> Self {
        match (self.pid, pid) {
            (Some(before), Some(now)) if before != now => Self {
                pid,
                // Not a console command's answer: the count goes on.
                noted: self.noted,
                ..Self::default()
            },
            _ => Self {
                pid: pid.or(self.pid),
                ..self
            },
        }
    }
}

impl Default for Live {
    fn default() -> Self {
        Self {
            states: RwLock::default(),
            processes: RwLock::default(),
            rcon: RwLock::default(),
            cycles: watch::Sender::new(0),
            last_cycle_at: std::sync::atomic::AtomicI64::new(0),
        }
    }
}

impl Live {
    pub fn get(&self, server_id: i64) -> Option<LiveState> {
        self.states
            .read()
            .expect("live lock")
            .get(&server_id)
            .cloned()
    }

    pub(crate) fn set(&self, server_id: i64, state: Option<LiveState>) {
        let mut map = self.states.write().expect("live lock");
        match state {
            Some(state) => map.insert(server_id, state),
            None => map.remove(&server_id),
        };
    }

    /// Every server's latest answer and process sample (for metrics).
    pub fn all(&self) -> (HashMap<i64, LiveState>, HashMap<i64, ProcessSample>) {
        (
            self.states.read().expect("live lock").clone(),
            self.processes.read().expect("live lock").clone(),
        )
    }

    pub(crate) fn set_processes(&self, samples: HashMap<i64, ProcessSample>) {
        *self.processes.write().expect("live lock") = samples;
    }

    /// Whether the server refused the panel's RCON password, to the poller
    /// or to a console command, since it last started.
    pub fn rcon_refused(&self, server_id: i64) -> bool {
        self.rcon
            .read()
            .expect("live lock")
            .get(&server_id)
            .is_some_and(|m| m.refused)
    }

    /// What a console command learnt: the password was refused, or it
    /// worked (someone put it right).
    pub(crate) fn note_rcon_answer(&self, server_id: i64, refused: bool) {
        let mut memories = self.rcon.write().expect("live lock");
        let memory = memories.entry(server_id).or_default();
        memory.refused = refused;
        memory.noted += 1;
        if !refused {
            memory.failures = Backoff::default();
        }
    }

    fn take_rcon(&self, server_id: i64, pid: Option<u32>) -> RconMemory {
        self.rcon
            .read()
            .expect("live lock")
            .get(&server_id)
            .cloned()
            .unwrap_or_default()
            .for_process(pid)
    }

    /// Keeps what a cycle learnt of the servers it asked, but not over a
    /// console command's answer noted meanwhile, and forgets the servers
    /// it saw stopped or gone (their next process starts afresh). Servers
    /// the supervisor could not tell of keep what they had.
    fn keep_rcon(&self, polled: Vec<(i64, RconMemory)>, forget: impl Fn(i64) -> bool) {
        let mut memories = self.rcon.write().expect("live lock");
        memories.retain(|id, _| !forget(*id));
        for (id, mut learnt) in polled {
            if let Some(now) = memories.get(&id)
                && now.noted != learnt.noted
            {
                learnt.refused = now.refused;
                learnt.failures = now.failures;
                learnt.noted = now.noted;
            }
            memories.insert(id, learnt);
        }
    }

    /// Whether nobody plays on the server, by a poll at most `max_age`
    /// seconds old: `None` when no recent poll heard it. The one rule for
    /// "restart only when nobody plays" (reconciler, automatic updates).
    pub fn nobody_plays(&self, server_id: i64, max_age: i64) -> Option<bool> {
        self.get(server_id)
            .filter(|l| left4me_store::now() - l.at <= max_age)
            .map(|l| l.players == 0)
    }

    /// Poll cycles finished so far.
    pub fn cycles(&self) -> u64 {
        *self.cycles.borrow()
    }

    /// Waits until `count` cycles have finished in all.
    pub async fn wait_for_cycles(&self, count: u64) {
        let mut rx = self.cycles.subscribe();
        // The sender lives as long as `self`: this cannot fail.
        let _ = rx.wait_for(|done| *done >= count).await;
    }

    fn cycle_done(&self) {
        self.last_cycle_at
            .store(left4me_store::now(), std::sync::atomic::Ordering::Relaxed);
        self.cycles.send_modify(|done| *done += 1);
    }

    /// When the last cycle finished (Unix seconds), if one has.
    pub fn last_cycle_at(&self) -> Option<i64> {
        Some(
            self.last_cycle_at
                .load(std::sync::atomic::Ordering::Relaxed),
        )
        .filter(|t| *t > 0)
    }
}

/// A player line of RCON `status`:
/// `#  2 "Name" STEAM_1:0:12345 05:12 48 0 active 30000 127.0.0.1:27005`.
/// The name is what lies between the first and the last quote (a name may
/// hold quotes; the fields after it never do).
fn parse_status_player(line: &str) -> Option<(String, String, u32)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let (_userid, rest) = rest.split_once(' ')?;
    let rest = rest.trim_start().strip_prefix('"')?;
    let (name, rest) = rest.rsplit_once('"')?;
    let mut fields = rest.split_whitespace();
    let steam_id = fields.next()?.to_owned();
    let _connected = fields.next()?;
    let ping = fields.next()?.parse().ok()?;
    Some((name.to_owned(), steam_id, ping))
}

/// Players in RCON `status` with a Steam id: name → (Steam id, ping).
/// `BOT`, `STEAM_ID_PENDING` (still connecting) and `STEAM_ID_LAN` are not
/// ids.
pub fn parse_status(text: &str) -> HashMap<String, (String, u32)> {
    text.lines()
        .filter_map(parse_status_player)
        .filter(|(_, id, _)| is_steam_id(id))
        .map(|(name, id, ping)| (name, (id, ping)))
        .collect()
}

/// `STEAM_X:Y:Z` or `[U:1:N]`.
fn is_steam_id(id: &str) -> bool {
    let numbers = |s: &str, count: usize| {
        let parts: Vec<&str> = s.split(':').collect();
        parts.len() == count
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    id.strip_prefix("STEAM_")
        .is_some_and(|rest| numbers(rest, 3))
        || id
            .strip_prefix("[U:")
            .and_then(|rest| rest.strip_suffix(']'))
            .is_some_and(|rest| numbers(rest, 2))
}

/// One server to poll: its previous answer (the Steam ids already known)
/// and what was learnt of asking it over RCON.
#[derive(Debug)]
pub struct PollTarget<'a> {
    pub server: &'a Server,
    pub before: Option<&'a LiveState>,
    pub rcon: &'a mut RconMemory,
}

/// Polls the given servers all at once; each answer is bounded by
/// `timeout` (a silent server gives `None` without delaying the others).
pub async fn poll_servers(
    targets: &mut [PollTarget<'_>],
    timeout: Duration,
) -> Vec<Option<LiveState>> {
    futures_util::future::join_all(
        targets
            .iter_mut()
            .map(|t| poll_one(t.server, t.before, t.rcon, timeout)),
    )
    .await
}

async fn poll_one(
    server: &Server,
    before: Option<&LiveState>,
    rcon: &mut RconMemory,
    timeout: Duration,
) -> Option<LiveState> {
    let port = u16::try_from(server.port).ok()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let asked = std::time::Instant::now();
    let info = a2s::info(addr, timeout).await.ok()?;
    let query_micros = u64::try_from(asked.elapsed().as_micros()).unwrap_or(u64::MAX);
    let players = if info.players == 0 {
        Vec::new()
    } else {
        a2s::players(addr, timeout).await.unwrap_or_default()
    };
    let players: Vec<a2s::Player> = players.into_iter().filter(|p| !p.name.is_empty()).collect();
    let known: HashMap<&str, &OnlinePlayer> = before
        .map(|b| b.online.iter().map(|p| (p.name.as_str(), p)).collect())
        .unwrap_or_default();
    let now = left4me_store::now();
    rcon.unknown
        .retain(|name, _| players.iter().any(|p| p.name == *name));
    // Asked for: the players without a known Steam id whose wait is over.
    let lacking: Vec<&str> = players
        .iter()
        .map(|p| p.name.as_str())
        .filter(|name| known.get(name).is_none_or(|p| p.steam_id.is_none()))
        .filter(|name| rcon.unknown.get(*name).is_none_or(|b| b.ready(now)))
        .collect();
    let details = if lacking.is_empty() || rcon.refused || !rcon.failures.ready(now) {
        HashMap::new()
    } else {
        let status = async {
            let mut client =
                RconClient::connect(addr, server.rcon_password.expose(), timeout).await?;
            client.exec("status").await
        };
        match tokio::time::timeout(timeout, status).await {
            Ok(Ok(text)) => {
                rcon.failures = Backoff::default();
                let details = parse_status(&text);
                for name in lacking {
                    if details.contains_key(name) {
                        rcon.unknown.remove(name);
                    } else {
                        let wait = rcon.unknown.entry(name.to_owned()).or_default();
                        *wait = wait.failed(now);
                    }
                }
                details
            }
            Ok(Err(srcds_protocol::RconError::AuthFailed)) => {
                tracing::warn!(
                    server = %server.name,
                    "the server refused the panel's RCON password (its rcon_password no longer \
                     matches); not asked again until it restarts"
                );
                rcon.refused = true;
                HashMap::new()
            }
            Ok(Err(_)) | Err(_) => {
                rcon.failures = rcon.failures.failed(now);
                HashMap::new()
            }
        }
    };
    let online = players
        .into_iter()
        .map(|p| {
            let (steam_id, ping) = match (details.get(&p.name), known.get(p.name.as_str())) {
                (Some((id, ping)), _) => (Some(id.clone()), Some(*ping)),
                (None, Some(old)) => (old.steam_id.clone(), old.ping),
                (None, None) => (None, None),
            };
            OnlinePlayer {
                steam_id,
                ping,
                name: p.name,
                score: p.score,
                seconds: p.duration.as_secs(),
            }
        })
        .collect();
    Some(LiveState {
        map: info.map,
        players: info.players,
        max_players: info.max_players,
        // L4D2 hibernates when empty (sv_hibernate_when_empty defaults to
        // 1) and wakes when someone joins; asking `status` to be sure
        // would put a line in the console every cycle.
        hibernating: info.players == 0,
        online,
        at: left4me_store::now(),
        query_micros,
    })
}

#[derive(Debug, Clone)]
pub struct Poller {
    pub store: Store,
    pub host: Arc<Host>,
    pub live: Arc<Live>,
    /// Finished player sessions are kept this long.
    pub history_secs: i64,
    /// When old sessions were last pruned.
    pub last_prune: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// What each poll sees, for the servers' graphs.
    pub history: Arc<crate::history::History>,
}

impl Poller {
    pub fn spawn(self, interval: Duration, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.cycle(interval.min(Duration::from_secs(2))).await {
                    tracing::error!("polling servers: {e}");
                }
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = stop.cancelled() => return,
                }
            }
        })
    }

    /// One round over every server, all at once.
    pub async fn cycle(&self, timeout: Duration) -> Result<(), String> {
        let servers = self.store.servers(None).await.map_err(|e| e.to_string())?;
        let ids: Vec<i64> = servers.iter().map(|s| s.id).collect();
        let statuses = ask_host(&self.host, &ids, |host, names| host.process_statuses(names))
            .await
            .map_err(|e| format!("asking the host: {e}"))?;
        let pids: Vec<u32> = statuses
            .iter()
            .filter_map(|s| s.as_ref().ok().filter(|s| s.running).and_then(|s| s.pid))
            .collect();
        // Read from /proc on a blocking thread while the servers answer
        // their queries, so it adds (almost) nothing to the cycle.
        let usage =
            tokio::task::spawn_blocking(move || left4me_host::usage::of_process_trees(&pids));
        let up: Vec<(&Server, Option<u32>)> = servers
            .iter()
            .zip(&statuses)
            .filter_map(|(server, status)| {
                let status = status.as_ref().ok().filter(|s| s.running)?;
                Some((server, status.pid))
            })
            .collect();
        let before: Vec<Option<LiveState>> = up.iter().map(|(s, _)| self.live.get(s.id)).collect();
        let mut memories: Vec<RconMemory> = up
            .iter()
            .map(|(s, pid)| self.live.take_rcon(s.id, *pid))
            .collect();
        let mut targets: Vec<PollTarget<'_>> = up
            .iter()
            .zip(&before)
            .zip(&mut memories)
            .map(|(((server, _), before), rcon)| PollTarget {
                server,
                before: before.as_ref(),
                rcon,
            })
            .collect();
        let polled = poll_servers(&mut targets, timeout).await;
        drop(targets);
        let mut answers: HashMap<i64, LiveState> = HashMap::new();
        for ((server, _), state) in up.iter().zip(polled) {
            if let Some(state) = state {
                answers.insert(server.id, state);
            }
        }
        let stopped: std::collections::HashSet<i64> = servers
            .iter()
            .zip(&statuses)
            .filter(|(_, status)| status.as_ref().is_ok_and(|s| !s.running))
            .map(|(server, _)| server.id)
            .collect();
        let known: std::collections::HashSet<i64> = ids.iter().copied().collect();
        self.live.keep_rcon(
            up.iter()
                .map(|(server, _)| server.id)
                .zip(memories)
                .collect(),
            |id| stopped.contains(&id) || !known.contains(&id),
        );
        let mut usage = usage
            .await
            .map_err(|e| format!("reading the servers' processes: {e}"))?
            .into_iter();
        let samples: HashMap<i64, ProcessSample> = ids
            .iter()
            .copied()
            .zip(statuses)
            .map(|(id, status)| {
                let sample = match status {
                    Ok(status) => ProcessSample {
                        usage: if status.running && status.pid.is_some() {
                            usage.next().flatten()
                        } else {
                            None
                        },
                        running: status.running,
                        restarts: status.restarts,
                        state: status.state,
                    },
                    Err(_) => ProcessSample {
                        state: "unknown".into(),
                        ..ProcessSample::default()
                    },
                };
                (id, sample)
            })
            .collect();
        // One query for every open session, not one per server and cycle.
        let mut open: HashMap<i64, Vec<PlayerSession>> = HashMap::new();
        for session in self
            .store
            .open_player_sessions_all()
            .await
            .map_err(|e| e.to_string())?
        {
            open.entry(session.server_id).or_default().push(session);
        }
        for server in &servers {
            let state = answers.remove(&server.id);
            let sessions = open.remove(&server.id).unwrap_or_default();
            self.record_sessions(server.id, &sessions, state.as_ref())
                .await?;
            match samples.get(&server.id) {
                Some(process) if process.running => {
                    self.history
                        .observe(server.id, state.as_ref().map(|s| s.players), process);
                }
                _ => self.history.forget_cpu(server.id),
            }
            self.live.set(server.id, state);
        }
        self.history
            .keep_only(&servers.iter().map(|s| s.id).collect());
        self.live.set_processes(samples);
        self.prune_now_and_then().await?;
        self.live.cycle_done();
        Ok(())
    }

    /// Forgets old player sessions, at most once an hour.
    async fn prune_now_and_then(&self) -> Result<(), String> {
        let due = {
            let mut last = self.last_prune.lock().expect("prune lock");
            let due = !last.is_some_and(|at| at.elapsed() < Duration::from_secs(3600));
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if !due {
            return Ok(());
        }
        self.store
            .prune_player_sessions(self.history_secs)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Opens sessions for players who appeared and closes those of players
    /// who left (all of them when the server is down).
    async fn record_sessions(
        &self,
        server_id: i64,
        open: &[PlayerSession],
        state: Option<&LiveState>,
    ) -> Result<(), String> {
        let err = |e: left4me_store::StoreError| e.to_string();
        let online: &[OnlinePlayer] = state.map_or(&[], |s| &s.online);
        let key =
            |name: &str, steam: Option<&str>| steam.map_or_else(|| name.to_owned(), str::to_owned);
        for session in open {
            let still = online.iter().any(|p| {
                key(&p.name, p.steam_id.as_deref())
                    == key(&session.name, session.steam_id.as_deref())
            });
            if !still {
                self.store
                    .close_player_session(session.id)
                    .await
                    .map_err(err)?;
            }
        }
        for player in online {
            let known = open.iter().any(|s| {
                key(&s.name, s.steam_id.as_deref()) == key(&player.name, player.steam_id.as_deref())
            });
            if !known {
                self.store
                    .open_player_session(server_id, &player.name, player.steam_id.as_deref())
                    .await
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_players_from_status() {
        let text = "hostname: X\nplayers : 2 humans, 0 bots (8 max) (not hibernating)\n\n# userid name uniqueid connected ping loss state rate adr\n#  2 \"Coach\" STEAM_1:0:42 05:12 48 0 active 30000 127.0.0.1:27005\n#  3 \"Name With Spaces\" STEAM_1:1:7 00:03 120 0 active 30000 127.0.0.1:27006\n#end\n";
        let players = parse_status(text);
        assert_eq!(players["Coach"], ("STEAM_1:0:42".to_owned(), 48));
        assert_eq!(players["Name With Spaces"], ("STEAM_1:1:7".to_owned(), 120));
        assert_eq!(players.len(), 2);
    }

    #[test]
    fn names_with_quotes_and_ids_that_are_not_ids() {
        let text = "#  2 \"Say \"hi\"\" STEAM_1:0:42 05:12 48 0 active 30000 127.0.0.1:27005\n\
                    #  3 \"Joining\" STEAM_ID_PENDING 00:03 120 0 spawning 30000 127.0.0.1:27006\n\
                    #  4 \"Zoey\" [U:1:84] 00:03 20 0 active 30000 127.0.0.1:27007\n\
                    #  5 \"Coach\" BOT active\n";
        let players = parse_status(text);
        assert_eq!(players["Say \"hi\""], ("STEAM_1:0:42".to_owned(), 48));
        assert_eq!(players["Zoey"], ("[U:1:84]".to_owned(), 20));
        assert_eq!(players.len(), 2, "{players:?}");
    }

    #[test]
    fn backoff_doubles_up_to_a_limit() {
        let mut b = Backoff::default();
        assert!(b.ready(0));
        let mut waits = Vec::new();
        for _ in 0..9 {
            b = b.failed(1000);
            waits.push(b.next_at - 1000);
        }
        assert_eq!(waits, [15, 30, 60, 120, 240, 480, 900, 900, 900]);
        assert!(!b.ready(1899) && b.ready(1900));
        // Days of failures: the wait stays at the limit at every count.
        for failures in 9..200 {
            b = b.failed(0);
            assert_eq!(b.next_at, 900, "after {failures} failures");
        }
    }

    #[test]
    fn a_console_answer_during_a_cycle_wins_and_stopped_servers_are_forgotten() {
        let live = Live::default();
        live.note_rcon_answer(1, true);
        let mut learnt = live.take_rcon(1, Some(10));
        // A console command gets in while the cycle asks the server.
        live.note_rcon_answer(1, false);
        learnt.refused = true;
        live.keep_rcon(vec![(1, learnt)], |_| false);
        assert!(!live.rcon_refused(1), "the later answer stands");
        // Unasked servers keep theirs; stopped ones are forgotten.
        live.note_rcon_answer(2, true);
        live.keep_rcon(Vec::new(), |id| id == 1);
        assert!(live.rcon_refused(2));
        assert!(!live.rcon.read().unwrap().contains_key(&1));
        // A refusal ends with its process, though a console command
        // noted it.
        let seen = live.take_rcon(2, Some(7));
        live.keep_rcon(vec![(2, seen)], |_| false);
        assert!(live.rcon_refused(2));
        let restarted = live.take_rcon(2, Some(8));
        live.keep_rcon(vec![(2, restarted)], |_| false);
        assert!(!live.rcon_refused(2));
    }

    #[test]
    fn another_process_starts_afresh() {
        let memory = RconMemory {
            pid: Some(7),
            refused: true,
            ..RconMemory::default()
        };
        assert!(memory.clone().for_process(Some(7)).refused);
        assert!(memory.clone().for_process(None).refused);
        assert!(!memory.for_process(Some(8)).refused);
        // A refusal a console command noted before any poll is kept.
        let noted = RconMemory {
            refused: true,
            ..RconMemory::default()
        };
        assert!(noted.for_process(Some(9)).refused);
    }
}
