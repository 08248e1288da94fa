//! The server board: every server with its names, members, the
//! supervisor's state and its restart note, kept in memory so the lists
//! (the dashboard, `GET /api/v1/servers`) cost no query, no `/proc` read
//! and no `systemctl` per request.
//!
//! A snapshot is rebuilt before it is served when the store has committed
//! a change since it was read (a created server shows on the very next
//! page). What changes outside the store (a crash, systemd restarting a
//! unit) is read again once a snapshot is [`FRESH_FOR`] old: while pages
//! are asked for, one background task reads a new one and the older one
//! is served meanwhile, so no request waits; a snapshot twice that old
//! (after a quiet while) is rebuilt before it is served.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use left4me_host::lifecycle::Host;
use left4me_host::supervisor::ProcessStatus;
use left4me_store::{ListedServer, ServerRole, Store, StoreError};

use crate::spec_builder::ask_host;
use left4me_host::game::Installer;

/// How long what the store does not record (process states, the builds
/// servers run) may be served before it is read again.
pub const FRESH_FOR: Duration = Duration::from_secs(2);

/// Which servers to take from the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFilter {
    All,
    /// The servers a user owns or is a member of.
    Of(i64),
    One(i64),
}

/// One server as the board knows it.
#[derive(Debug, Clone)]
pub struct BoardServer {
    /// `member_role` is `None` here: it depends on who looks.
    pub listed: ListedServer,
    /// `running`, `stopped`, `failed`, ... as the supervisor says, or
    /// `unknown (why)`.
    pub state: String,
    pub process: Option<ProcessStatus>,
    /// For a running server on older layers.
    pub restart_note: Option<String>,
}

impl BoardServer {
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// All servers at one moment, in the lists' order (name, then id).
#[derive(Debug)]
pub struct Snapshot {
    /// The store's generation read before the servers were.
    generation: u64,
    taken: Instant,
    servers: Vec<BoardServer>,
    /// Per server: its members and their roles.
    members: HashMap<i64, Vec<(i64, ServerRole)>>,
}

impl Snapshot {
    /// The servers `filter` selects, each with the role `viewer` has on it
    /// as a member.
    pub fn select(
        &self,
        filter: ServerFilter,
        viewer: i64,
    ) -> impl Iterator<Item = (&BoardServer, Option<ServerRole>)> {
        self.servers.iter().filter_map(move |server| {
            let id = server.listed.server.id;
            let role = self.members.get(&id).and_then(|members| {
                members
                    .iter()
                    .find(|(user, _)| *user == viewer)
                    .map(|(_, role)| *role)
            });
            let selected = match filter {
                ServerFilter::All => true,
                ServerFilter::Of(user) => {
                    server.listed.server.owner_id == user || self.is_member(id, user)
                }
                ServerFilter::One(wanted) => id == wanted,
            };
            selected.then_some((server, role))
        })
    }

    fn is_member(&self, server: i64, user: i64) -> bool {
        self.members
            .get(&server)
            .is_some_and(|members| members.iter().any(|(id, _)| *id == user))
    }
}

#[derive(Debug, Clone)]
pub struct Board(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    store: Store,
    host: Arc<Host>,
    installer: Arc<dyn Installer>,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// One rebuild at a time; the others wait for its result.
    rebuilding: tokio::sync::Mutex<()>,
    /// A background refresh is under way.
    refreshing: AtomicBool,
}

impl Board {
    pub fn new(store: Store, host: Arc<Host>, installer: Arc<dyn Installer>) -> Self {
        Self(Arc::new(Inner {
            store,
            host,
            installer,
            current: RwLock::new(None),
            rebuilding: tokio::sync::Mutex::new(()),
            refreshing: AtomicBool::new(false),
        }))
    }

    /// A snapshot holding every change the store has committed.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, BoardError> {
        if let Some(snapshot) = self.current_if_valid() {
            let age = snapshot.taken.elapsed();
            if age < FRESH_FOR {
                return Ok(snapshot);
            }
            if age < 2 * FRESH_FOR {
                self.refresh_in_background();
                return Ok(snapshot);
            }
        }
        let _only_one = self.0.rebuilding.lock().await;
        // Someone else may have rebuilt it while this one waited.
        if let Some(snapshot) = self.current_if_valid()
            && snapshot.taken.elapsed() < FRESH_FOR
        {
            return Ok(snapshot);
        }
        self.rebuild().await
    }

    fn current_if_valid(&self) -> Option<Arc<Snapshot>> {
        let current = self.0.current.read().expect("board lock");
        current
            .as_ref()
            .filter(|s| s.generation == self.0.store.generation())
            .cloned()
    }

    fn refresh_in_background(&self) {
        if self.0.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        /// Lets the next refresh start however this one ends (a panic
        /// included).
        struct Done(Board);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.0.refreshing.store(false, Ordering::Release);
            }
        }
        let done = Done(self.clone());
        tokio::spawn(async move {
            let board = &done.0;
            let _only_one = board.0.rebuilding.lock().await;
            if let Err(e) = board.rebuild().await {
                tracing::warn!("refreshing the server list: {e}");
            }
        });
    }

    /// Reads everything anew; the caller holds `rebuilding`.
    async fn rebuild(&self) -> Result<Arc<Snapshot>, BoardError> {
        let inner = &self.0;
        let generation = inner.store.generation();
        let taken = Instant::now();
        let listed = inner.store.listed_servers().await?;
        let mut members: HashMap<i64, Vec<(i64, ServerRole)>> = HashMap::new();
        for (server, user, role) in inner.store.all_server_members().await? {
            members.entry(server).or_default().push((user, role));
        }
        let ids: Vec<i64> = listed.iter().map(|l| l.server.id).collect();
        let statuses = ask_host(&inner.host, &ids, |host, names| {
            host.process_statuses(names)
        })
        .await?;
        let builds = crate::game::builds(&inner.store, &inner.installer).await;
        let servers = listed
            .into_iter()
            .zip(statuses)
            .map(|(listed, status)| {
                let (state, process) = match status {
                    Ok(s) => (s.state.clone(), Some(s)),
                    Err(e) => (format!("unknown ({e})"), None),
                };
                let restart_note = (state == "running")
                    .then(|| builds.restart_note(listed.server.id))
                    .flatten();
                BoardServer {
                    listed,
                    state,
                    process,
                    restart_note,
                }
            })
            .collect();
        let snapshot = Arc::new(Snapshot {
            generation,
            taken,
            servers,
            members,
        });
        *inner.current.write().expect("board lock") = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("reading the servers: {0}")]
    Store(#[from] StoreError),
    #[error("asking the host about the servers: {0}")]
    Host(#[from] tokio::task::JoinError),
}

#[cfg(test)]
mod tests {
    use left4me_store::{DesiredState, Secret, Server};

    use super::*;

    fn server(id: i64, owner_id: i64) -> BoardServer {
        BoardServer {
            listed: ListedServer {
                server: Server {
                    id,
                    owner_id,
                    blueprint_id: 1,
                    name: format!("s{id}"),
                    hostname: String::new(),
                    port: 27015 + id,
                    rcon_password: Secret::default(),
                    desired_state: DesiredState::Stopped,
                    created_at: 0,
                },
                owner_name: String::new(),
                blueprint_name: String::new(),
                member_role: None,
            },
            state: "stopped".into(),
            process: None,
            restart_note: None,
        }
    }

    #[test]
    fn a_selection_takes_owners_members_and_their_roles() {
        let snapshot = Snapshot {
            generation: 0,
            taken: Instant::now(),
            servers: vec![server(1, 10), server(2, 20), server(3, 20)],
            members: HashMap::from([(
                2,
                vec![(10, ServerRole::Viewer), (30, ServerRole::Operator)],
            )]),
        };
        let ids = |filter, viewer| {
            snapshot
                .select(filter, viewer)
                .map(|(s, role)| (s.listed.server.id, role))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(ServerFilter::Of(10), 10),
            [(1, None), (2, Some(ServerRole::Viewer))],
            "owned, and a member's with the role"
        );
        assert_eq!(
            ids(ServerFilter::Of(30), 30),
            [(2, Some(ServerRole::Operator))]
        );
        assert_eq!(ids(ServerFilter::All, 40).len(), 3);
        assert_eq!(ids(ServerFilter::One(3), 10), [(3, None)]);
        assert!(ids(ServerFilter::One(9), 10).is_empty());
    }
}
