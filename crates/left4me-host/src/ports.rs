//! Who holds a port on this host, from `/proc`: the sockets bound to it
//! (`/proc/net/{udp,udp6,tcp,tcp6}`, TCP only when listening) and the
//! processes that have those sockets open (`/proc/PID/fd` links
//! `socket:[INODE]`, named by `/proc/PID/comm`).
//!
//! Checked before a start because the Source engine, when its port is
//! taken, silently moves to the next free one: the server would run where
//! nobody looks. Reading `/proc` instead of binding a probe socket never
//! holds the port, not even for a moment, so it cannot make a server that
//! starts at the same time fail.

use std::collections::{BTreeMap, BTreeSet};

/// A process that has a socket on the port open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// `/proc/PID/comm`: the program's name, at most 15 bytes.
    pub program: String,
}

/// The port is taken, and by whom as far as `/proc` tells.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.port, .protocols, .holders))]
pub struct PortInUse {
    pub port: u16,
    /// `UDP` (game traffic) and/or `TCP` (RCON).
    pub protocols: Vec<&'static str>,
    /// Empty when the sockets' owners cannot be seen (another user's
    /// processes, without root).
    pub holders: Vec<Holder>,
}

fn describe(port: &u16, protocols: &[&'static str], holders: &[Holder]) -> String {
    let who = if holders.is_empty() {
        format!(
            "another program (its name is not visible to this user; `ss -ulpn 'sport = :{port}'` as root shows it)"
        )
    } else {
        let names: Vec<String> = holders
            .iter()
            .map(|h| format!("{} (pid {})", h.program, h.pid))
            .collect();
        format!("another program: {}", names.join(", "))
    };
    format!(
        "port {port} ({}) is in use by {who}; stop that program or give this server another port",
        protocols.join(" and ")
    )
}

/// A socket bound on this host (in our network namespace).
struct Socket {
    /// `UDP` or `TCP`.
    protocol: &'static str,
    port: u16,
    inode: u64,
}

/// Every UDP socket and listening TCP socket.
fn sockets() -> Vec<Socket> {
    let mut found = Vec::new();
    for (file, protocol) in [
        ("/proc/net/udp", "UDP"),
        ("/proc/net/udp6", "UDP"),
        ("/proc/net/tcp", "TCP"),
        ("/proc/net/tcp6", "TCP"),
    ] {
        // A kernel without IPv6 has no udp6/tcp6: nothing bound there.
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        found.extend(
            parse_table(&text, protocol == "TCP")
                .into_iter()
                .map(|(port, inode)| Socket {
                    protocol,
                    port,
                    inode,
                }),
        );
    }
    found
}

/// (local port, inode) of the sockets in one `/proc/net/*` table; for TCP
/// only listening ones (state `0A`): a connection in TIME_WAIT does not
/// stop a server from listening.
fn parse_table(text: &str, listening_only: bool) -> Vec<(u16, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = u16::from_str_radix(fields.get(1)?.rsplit_once(':')?.1, 16).ok()?;
            let state = fields.get(3)?;
            let inode: u64 = fields.get(9)?.parse().ok()?;
            ((!listening_only || *state == "0A") && inode != 0).then_some((port, inode))
        })
        .collect()
}

/// The processes with any of `inodes` open, in PID order.
fn holders_of(inodes: &[u64]) -> Vec<Holder> {
    let mut holders = BTreeMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // Other users' descriptors are unreadable without root: skip them.
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|link| {
                link.to_str()
                    .and_then(|l| l.strip_prefix("socket:["))
                    .and_then(|l| l.strip_suffix(']'))
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|inode| inodes.contains(&inode))
            })
        });
        if holds {
            let program = std::fs::read_to_string(entry.path().join("comm"))
                .map(|c| c.trim_end().to_owned())
                .unwrap_or_else(|_| "?".into());
            holders.insert(pid, program);
        }
    }
    holders
        .into_iter()
        .map(|(pid, program)| Holder { pid, program })
        .collect()
}

/// The ports anything on this host holds, UDP or listening TCP: one read
/// of `/proc` for a whole port range.
pub fn bound_ports() -> BTreeSet<u16> {
    sockets().into_iter().map(|s| s.port).collect()
}

/// Fails when anything holds `port`, naming the programs that do.
pub fn check_free(port: u16) -> Result<(), PortInUse> {
    let sockets: Vec<Socket> = sockets().into_iter().filter(|s| s.port == port).collect();
    if sockets.is_empty() {
        return Ok(());
    }
    let mut protocols: Vec<&'static str> = sockets.iter().map(|s| s.protocol).collect();
    protocols.sort_unstable_by_key(|p| *p != "UDP");
    protocols.dedup();
    let inodes: Vec<u64> = sockets.iter().map(|s| s.inode).collect();
    Err(PortInUse {
        port,
        protocols,
        holders: holders_of(&inodes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_net_tables() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:6987 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:6987 0100007F:A000 06 00000000:00000000 03:00000F6E 00000000     0        0 0 3 0000000000000000\n\
   2: 0100007F:6988 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(parse_table(tcp, true), [(27015, 4242), (27016, 99)]);
    }

    #[test]
    fn names_the_program_holding_a_port() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        assert!(bound_ports().contains(&port));
        let err = check_free(port).unwrap_err();
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(err.protocols, ["UDP"]);
        assert!(
            err.holders
                .iter()
                .any(|h| h.pid == std::process::id() && h.program == me.trim_end()),
            "{err}"
        );
        assert!(err.to_string().contains(me.trim_end()), "{err}");
        drop(socket);
        assert!(check_free(port).is_ok());
    }
}
