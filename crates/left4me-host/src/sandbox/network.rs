//! A build's network: the public internet, and nothing of the host or
//! its LAN.
//!
//! Each build runs in a network namespace of its own, made by root
//! (`/run/netns/left4me-build-NAME`), so the unprivileged script holds no
//! capability over it. Its nftables output chain rejects loopback beyond
//! its own, RFC 1918, link-local, CGNAT, ULA, multicast and reserved
//! addresses and every address of the host; what passes goes out through
//! pasta (Debian's `passt`), which carries the namespace's connections out
//! over ordinary sockets of the host, running as `nobody` with just the
//! two capabilities it needs to attach, and with port forwarding and its
//! mapping of the gateway to the host's loopback turned off. DNS has one
//! address of its own, [`DNS_ADDRESS`], which pasta forwards to the
//! host's resolver.
//!
//! Both sandboxes use this: bubblewrap enters the namespace, the systemd
//! unit joins it (`NetworkNamespacePath=`) after `left4me-build-net@`
//! made it. A namespace that cannot get an uplink keeps only its
//! loopback, and the build says why.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where a build sends DNS queries (its `/etc/resolv.conf`); pasta
/// forwards them to the host's resolver. Link-local, so nothing else
/// could answer there.
pub const DNS_ADDRESS: &str = "169.254.1.53";

/// The build's `/etc/resolv.conf`.
pub fn resolv_conf() -> String {
    format!(
        "# left4me build: queries go to the host's resolver through pasta\nnameserver {DNS_ADDRESS}\n"
    )
}

/// Where the namespaces live (`ip netns`'s directory).
const NETNS_DIR: &str = "/run/netns";
const PREFIX: &str = "left4me-build-";
/// `nobody`: pasta never runs as root, nor as the build's user.
const PASTA_USER: u32 = 65_534;
/// The device pasta connects the namespace through.
const TUN: &str = "/dev/net/tun";

/// Whether user `uid` (pasta's) may open the tun device at `path` for
/// reading and writing; otherwise why not and the fix, in plain words
/// (pasta's own message would be a bare "Permission denied").
fn tun_usable(path: &Path, uid: u32) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        format!(
            "{} cannot be used ({e}): load the tun module (`modprobe tun`) so pasta can connect builds",
            path.display()
        )
    })?;
    let mode = meta.mode();
    let usable = mode & 0o006 == 0o006 || (meta.uid() == uid && mode & 0o600 == 0o600);
    if usable {
        Ok(())
    } else {
        Err(format!(
            "pasta runs as user nobody, who cannot open {} (mode {:04o}); builds get the \
             internet once it may: `chmod 0666 {}` (Debian's default mode), kept across \
             reboots by a udev rule such as KERNEL==\"tun\", MODE=\"0666\" in \
             /etc/udev/rules.d/60-tun.rules",
            path.display(),
            mode & 0o7777,
            path.display()
        ))
    }
}

/// Addresses a build must not reach, besides the host's own.
const BLOCKED_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/3",
];
const BLOCKED_V6: &[&str] = &[
    "::/127",
    "::ffff:0:0/96",
    "64:ff9b:1::/48",
    // Teredo and 6to4 wrap IPv4 addresses of any kind.
    "2001::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

/// What the build's network is, said in its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uplink {
    /// The public internet through pasta, the filter in place.
    Public,
    /// Only the namespace's own loopback, and why.
    Offline(String),
}

impl Uplink {
    /// One line for the build log.
    pub fn describe(&self) -> String {
        match self {
            Self::Public => "network: the public internet; loopback, private (RFC 1918), link-local, CGNAT and ULA addresses and the host's own are blocked".into(),
            Self::Offline(why) => format!("warning: the build has no network: {why}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{action}: {detail}")]
pub struct NetworkError {
    action: String,
    detail: String,
}

/// One build's namespace.
#[derive(Debug, Clone)]
pub struct BuildNetwork {
    name: String,
}

impl BuildNetwork {
    /// The namespace of build `build` (a checked build name).
    pub fn new(build: &str) -> Self {
        Self {
            name: format!("{PREFIX}{build}"),
        }
    }

    /// What bubblewrap enters and the unit joins.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(&self.name)
    }

    /// Makes the namespace (replacing a leftover of the same name) with
    /// its loopback up and the filter loaded, then attaches pasta. An
    /// error means there is no filtered namespace; [`Uplink::Offline`]
    /// means the namespace exists but stays offline.
    pub fn up(&self) -> Result<Uplink, NetworkError> {
        self.down();
        run(
            "creating the build's network namespace",
            ip(&["netns", "add", &self.name]),
        )?;
        let made = self.configure();
        if made.is_err() {
            self.down();
        }
        made?;
        Ok(self.attach_pasta())
    }

    fn configure(&self) -> Result<(), NetworkError> {
        run(
            "bringing up the namespace's loopback",
            ip(&["-n", &self.name, "link", "set", "lo", "up"]),
        )?;
        let rules = ruleset(&host_prefixes()?);
        let mut nft = Command::new("nsenter");
        nft.arg(format!("--net={}", self.path().display()))
            .args(["--", "nft", "-f", "-"]);
        output(
            "loading the build's network filter (nftables)",
            nft,
            Some(&rules),
        )
        .map(drop)
    }

    fn attach_pasta(&self) -> Uplink {
        let Some(pasta) = ["/usr/bin/pasta", "/usr/local/bin/pasta"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
        else {
            return Uplink::Offline("pasta is not installed (Debian: apt install passt)".into());
        };
        if let Err(why) = tun_usable(Path::new(TUN), PASTA_USER) {
            return Uplink::Offline(why);
        }
        let holder = match Holder::start(&self.path()) {
            Ok(holder) => holder,
            Err(e) => return Uplink::Offline(e.to_string()),
        };
        // pasta forks into the background once the namespace is set up:
        // its first process ending says how that went.
        let mut command = Command::new("setpriv");
        command
            .args([
                format!("--reuid={PASTA_USER}"),
                format!("--regid={PASTA_USER}"),
                "--clear-groups".into(),
                "--inh-caps=-all,+sys_admin,+net_admin".into(),
                "--ambient-caps=-all,+sys_admin,+net_admin".into(),
                "--".into(),
            ])
            .arg(pasta)
            .arg("--netns")
            .arg(holder.netns())
            .args([
                "--config-net",
                "--quiet",
                // Nothing forwarded into the namespace or out of its
                // loopback, and the gateway is the gateway, not the
                // host's loopback.
                "-t",
                "none",
                "-u",
                "none",
                "-T",
                "none",
                "-U",
                "none",
                "--no-map-gw",
                "--dns-forward",
                DNS_ADDRESS,
            ]);
        let started = run("starting pasta", command);
        holder.end();
        match started {
            Ok(()) => Uplink::Public,
            Err(e) => Uplink::Offline(e.to_string()),
        }
    }

    /// Ends this build's pasta (by PID) and removes the namespace; does
    /// nothing where there is neither.
    pub fn down(&self) {
        if let Ok(namespace) = std::fs::metadata(self.path()) {
            end_processes_in(namespace.ino());
        }
        if self.path().exists() {
            let _ = run(
                "removing the build's network namespace",
                ip(&["netns", "delete", &self.name]),
            );
        }
    }
}

/// Removes the namespaces (and their pastas) of builds named `*-TAG`,
/// which builds that died with their panel left.
pub fn sweep(tag: &str) {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    let suffix = format!("-{tag}");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(build) = name.strip_prefix(PREFIX).filter(|n| n.ends_with(&suffix)) {
            BuildNetwork::new(build).down();
        }
    }
}

/// A process of `nobody` inside the namespace for a moment, so pasta can
/// open the namespace as `/proc/PID/ns/net`: the AppArmor profile Debian
/// ships for pasta lets it open namespaces there (and under
/// `/run/user/UID/netns`), not in `/run/netns`.
struct Holder(std::process::Child);

impl Holder {
    fn start(namespace: &std::path::Path) -> Result<Self, NetworkError> {
        let failed = |detail: String| NetworkError {
            action: "lending the namespace to pasta".into(),
            detail,
        };
        let inode = std::fs::metadata(namespace)
            .map_err(|e| failed(e.to_string()))?
            .ino();
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", namespace.display()))
            .args(["--", "setpriv"])
            .args([
                format!("--reuid={PASTA_USER}"),
                format!("--regid={PASTA_USER}"),
                "--clear-groups".into(),
                "--inh-caps=-all".into(),
                "--bounding-set=-all".into(),
                "--".into(),
            ])
            .args(["sleep", "60"])
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = crate::spawn::retry_while_text_busy(|| command.spawn())
            .map_err(|e| failed(format!("cannot run nsenter: {e}")))?;
        let holder = Self(child);
        // Ready once it runs `sleep` as nobody, inside.
        let proc = PathBuf::from(format!("/proc/{}", holder.0.id()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let inside = std::fs::metadata(proc.join("ns/net")).is_ok_and(|m| m.ino() == inode);
            let as_nobody = std::fs::metadata(&proc).is_ok_and(|m| m.uid() == PASTA_USER);
            let sleeping =
                std::fs::read_to_string(proc.join("comm")).is_ok_and(|c| c.trim() == "sleep");
            if inside && as_nobody && sleeping {
                return Ok(holder);
            }
            if std::time::Instant::now() > deadline {
                holder.end();
                return Err(failed(
                    "the process did not enter the namespace within 5 s".into(),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    fn netns(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.0.id()))
    }

    fn end(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGKILLs every process holding the namespace with inode `namespace`
/// open (pasta, and a holder that outlived its caller).
fn end_processes_in(namespace: u64) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let wanted = format!("net:[{namespace}]");
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        // Held first, so a PID taken over by another process after the
        // check below is never signalled.
        let Ok(process) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        else {
            continue;
        };
        let holds = std::fs::read_dir(entry.path().join("fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str())
            })
        }) || std::fs::metadata(entry.path().join("ns/net"))
            .is_ok_and(|m| m.ino() == namespace);
        if holds {
            let _ = rustix::process::pidfd_send_signal(&process, rustix::process::Signal::KILL);
        }
    }
}

/// An address range as nftables takes it: the address with its host
/// bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    address: IpAddr,
    len: u8,
}

impl Prefix {
    /// `ADDRESS` or `ADDRESS/LEN`, as `ip` prints routes; anything else
    /// is `None` (nothing unchecked reaches the ruleset's text).
    pub fn parse(text: &str) -> Option<Self> {
        let (address, len) = match text.split_once('/') {
            Some((address, len)) => (address, Some(len)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().ok()?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(len) => len.parse().ok().filter(|&l| l <= max)?,
            None => max,
        };
        Some(Self::new(address, len))
    }

    fn new(address: IpAddr, len: u8) -> Self {
        let address = match address {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Self { address, len }
    }

    fn contains(&self, other: &Self) -> bool {
        other.len >= self.len && Self::new(other.address, self.len).address == self.address
    }

    /// The same IPv4 range as NAT64 (64:ff9b::/96) spells it: a host on
    /// an IPv6-only network could otherwise reach it through its gateway.
    fn nat64(self) -> Option<Self> {
        let IpAddr::V4(v4) = self.address else {
            return None;
        };
        let embedded = (0x0064_ff9b_u128 << 96) | u128::from(u32::from(v4));
        Some(Self::new(
            IpAddr::V6(Ipv6Addr::from(embedded)),
            96 + self.len,
        ))
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.len)
    }
}

/// The host's own addresses and the networks it reaches directly: the
/// destinations of its routes without a gateway, in every table
/// (addresses, connected subnets, a VPN's device routes), but not a
/// default route. A LAN on public addresses is out of reach with them.
fn host_prefixes() -> Result<Vec<Prefix>, NetworkError> {
    #[derive(serde::Deserialize)]
    struct Route {
        dst: String,
        gateway: Option<String>,
        nexthops: Option<serde_json::Value>,
    }
    let action = "listing the host's routes";
    let mut prefixes = Vec::new();
    for family in ["-4", "-6"] {
        let out = output(
            action,
            ip(&["-json", family, "route", "show", "table", "all"]),
            None,
        )?;
        let routes: Vec<Route> = serde_json::from_slice(&out).map_err(|e| NetworkError {
            action: action.into(),
            detail: e.to_string(),
        })?;
        prefixes.extend(
            routes
                .into_iter()
                .filter(|r| r.gateway.is_none() && r.nexthops.is_none())
                .filter_map(|r| Prefix::parse(&r.dst))
                .filter(|p| p.len > 0),
        );
    }
    Ok(prefixes)
}

/// The filter: `inet` so one table holds both families; an output hook,
/// since everything the build sends starts in the namespace. Rejected
/// rather than dropped, so a refused connection fails at once ("No route
/// to host") instead of hanging.
///
/// Only the kernel's ephemeral ports are allowed as source ports: pasta
/// opens the host's socket on the port the build sends from, and a build
/// must not take a game server's port (below 32768) on the host.
pub fn ruleset(host: &[Prefix]) -> String {
    let fixed = BLOCKED_V4
        .iter()
        .chain(BLOCKED_V6)
        .map(|p| Prefix::parse(p).expect("a valid built-in prefix"));
    let mut blocked: Vec<Prefix> = Vec::new();
    for prefix in fixed.chain(host.iter().copied()) {
        blocked.extend(prefix.nat64());
        blocked.push(prefix);
    }
    // Sets must not overlap: keep the widest of nested ranges.
    blocked.sort_by_key(|p| p.len);
    let mut kept: Vec<Prefix> = Vec::new();
    for prefix in blocked {
        if !kept.iter().any(|k| k.contains(&prefix)) {
            kept.push(prefix);
        }
    }
    let set = |v4: bool| {
        kept.iter()
            .filter(|p| p.address.is_ipv4() == v4)
            .map(Prefix::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "table inet left4me_build {{\n\
         \tchain output {{\n\
         \t\ttype filter hook output priority 0; policy accept;\n\
         \t\toif \"lo\" accept\n\
         \t\tmeta l4proto {{ tcp, udp }} th sport != 32768-60999 reject with icmpx admin-prohibited\n\
         \t\tip daddr {DNS_ADDRESS} udp dport 53 accept\n\
         \t\ticmpv6 type {{ nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert }} accept\n\
         \t\tip daddr {{ {} }} reject with icmpx admin-prohibited\n\
         \t\tip6 daddr {{ {} }} reject with icmpx admin-prohibited\n\
         \t}}\n\
         }}\n",
        set(true),
        set(false)
    )
}

fn ip(args: &[&str]) -> Command {
    let mut command = Command::new("ip");
    command.args(args);
    command
}

fn run(action: &str, command: Command) -> Result<(), NetworkError> {
    output(action, command, None).map(drop)
}

/// Runs `command` with `input` on its standard input (or none); its
/// standard output, or what it said when it failed.
fn output(
    action: &str,
    mut command: Command,
    input: Option<&str>,
) -> Result<Vec<u8>, NetworkError> {
    use std::io::Write;
    let failed = |detail: String| NetworkError {
        action: action.into(),
        detail,
    };
    command
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = crate::spawn::retry_while_text_busy(|| command.spawn())
        .map_err(|e| failed(format!("cannot run {:?}: {e}", command.get_program())))?;
    if let Some(input) = input {
        let written = child
            .stdin
            .take()
            .expect("piped")
            .write_all(input.as_bytes());
        written.map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(failed(failure_text(&out)))
    }
}

/// What a failed command said, without pasta's complaints about a
/// missing syslog.
fn failure_text(out: &std::process::Output) -> String {
    let text: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Failed to send"))
        .map(str::to_owned)
        .collect();
    if text.is_empty() {
        out.status.to_string()
    } else {
        text.join("; ")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tun_device_pasta_cannot_open_is_said_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tun = dir.path().join("tun");
        std::fs::write(&tun, "").unwrap();
        let mode = |m| std::fs::set_permissions(&tun, std::fs::Permissions::from_mode(m)).unwrap();
        mode(0o666);
        assert_eq!(super::tun_usable(&tun, 65_534), Ok(()));
        mode(0o600);
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&tun).unwrap());
        assert_eq!(super::tun_usable(&tun, owner), Ok(()), "its owner may");
        let why = super::tun_usable(&tun, owner + 1).unwrap_err();
        assert!(
            why.contains("cannot open")
                && why.contains("(mode 0600)")
                && why.contains("chmod 0666"),
            "{why}"
        );
        let why = super::tun_usable(&dir.path().join("missing"), 65_534).unwrap_err();
        assert!(why.contains("modprobe tun"), "{why}");
    }

    use super::*;

    fn prefix(text: &str) -> Prefix {
        Prefix::parse(text).unwrap()
    }

    #[test]
    fn prefixes_are_checked_and_their_host_bits_cleared() {
        assert_eq!(prefix("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(prefix("203.0.113.7").to_string(), "203.0.113.7/32");
        assert_eq!(prefix("2001:db8::7/64").to_string(), "2001:db8::/64");
        for bad in [
            "10.0.0.0/33",
            "x",
            "1.2.3.4/",
            "::/129",
            "1.2.3.4/8; flush ruleset",
        ] {
            assert_eq!(Prefix::parse(bad), None, "{bad}");
        }
        assert_eq!(
            prefix("10.0.0.0/8").nat64().unwrap().to_string(),
            "64:ff9b::a00:0/104"
        );
    }

    #[test]
    fn the_filter_rejects_private_ranges_and_the_host_and_lets_dns_through() {
        let rules = ruleset(&[
            prefix("192.0.2.0/24"),
            prefix("203.0.113.7"),
            prefix("2001:db8:1::/64"),
            // Inside a fixed range: left out, sets must not overlap.
            prefix("10.1.0.0/16"),
        ]);
        let dns = rules.find("udp dport 53 accept").unwrap();
        let reject = rules.find("ip daddr {").unwrap();
        assert!(dns < reject, "{rules}");
        for range in [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "127.0.0.0/8",
            "fc00::/7",
            "fe80::/10",
            "192.0.2.0/24",
            "203.0.113.7/32",
            "2001:db8:1::/64",
            "64:ff9b::a00:0/104",
            "64:ff9b::cb00:7107/128",
            "th sport != 32768-60999 reject",
        ] {
            assert!(rules.contains(range), "{range}: {rules}");
        }
        assert!(!rules.contains("10.1.0.0/16"), "{rules}");
        assert!(!rules.contains("198.51.100."), "{rules}");
    }
}
