//! A stand-in internet for the build network tests, made only of network
//! namespaces a test creates: no packet leaves them.
//!
//! ```text
//! the host (a namespace of the test's, or a booted machine's own)
//!   192.0.2.2/24 and 2001:db8:1::2/64 on the link, default routes via ::1/.1
//!   203.0.113.7/32 on lo: a service of the host's own
//!        | veth: the host's LAN, on addresses that are not private
//! the internet (namespace INET)
//!   192.0.2.1, 2001:db8:1::1: the router, a neighbour on the LAN
//!   198.51.100.1 and 2001:db8:100::1 (public), 198.51.100.53 (its DNS),
//!   10.9.0.1 and fd00:9::1 (private, as behind the host's LAN)
//! ```
//!
//! [`Servers`] answers there: a TCP greeter on every address (it says
//! which one was reached) and a DNS server that resolves [`NAME`] to
//! [`PUBLIC`].

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub const PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const PUBLIC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 1);
pub const PRIVATE: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
pub const PRIVATE6: Ipv6Addr = Ipv6Addr::new(0xfd00, 9, 0, 0, 0, 0, 0, 1);
/// The router: a neighbour on the host's LAN.
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
pub const HOST_OWN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);
/// Resolves to [`PUBLIC`].
pub const NAME: &str = "files.l4d2.test";

/// `sh` commands, run as root in the host namespace, that link it to the
/// internet namespace `inet` (made already: `ip netns add` within `ip
/// netns exec` would mount it where only that command sees it) and point
/// the host's resolver (`resolv_conf`: the file the host's programs read)
/// at [`RESOLVER`].
pub fn setup_script(inet: &str, resolv_conf: &str) -> String {
    format!(
        "set -e
ip link add l4m-h type veth peer name l4m-i netns {inet}
ip link set lo up
ip addr add 192.0.2.2/24 dev l4m-h
ip addr add 2001:db8:1::2/64 dev l4m-h nodad
ip link set l4m-h up
ip addr add {HOST_OWN}/32 dev lo
ip route add default via {ROUTER}
ip -6 route add default via {ROUTER6}
ip -n {inet} link set lo up
ip -n {inet} addr add {ROUTER}/24 dev l4m-i
ip -n {inet} addr add {ROUTER6}/64 dev l4m-i nodad
ip -n {inet} link set l4m-i up
for a in {PUBLIC}/32 {RESOLVER}/32 {PRIVATE}/32 {PUBLIC6}/128 {PRIVATE6}/128; do
    ip -n {inet} addr add $a dev lo
done
mkdir -p \"$(dirname {resolv_conf})\"
echo 'nameserver {RESOLVER}' > {resolv_conf}
"
    )
}

/// The internet's and the host's servers, on threads inside their
/// namespaces; stopped when dropped.
pub struct Servers {
    pub port: u16,
    reached: Arc<Mutex<Vec<IpAddr>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Greeters on `port` on every address of `inet` (both families)
    /// and on the host's [`HOST_OWN`] and loopback, and DNS in `inet`.
    pub fn start(inet: File, host: File, port: u16) -> Self {
        let mut servers = Self {
            port,
            reached: Arc::default(),
            stop: Arc::default(),
            threads: Vec::new(),
        };
        let inet = Arc::new(inet);
        servers.greeter(inet.clone(), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        servers.dns(inet);
        let host = Arc::new(host);
        servers.greeter(host.clone(), IpAddr::V4(HOST_OWN));
        servers.greeter(host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        servers
    }

    /// The local addresses connections reached, in order.
    pub fn reached(&self) -> Vec<IpAddr> {
        self.reached.lock().unwrap().clone()
    }

    fn spawn_in(&mut self, ns: Arc<File>, body: impl FnOnce(Arc<AtomicBool>) + Send + 'static) {
        let stop = self.stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        self.threads.push(std::thread::spawn(move || {
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("entering a test network namespace");
            ready_tx.send(()).unwrap();
            body(stop);
        }));
        ready_rx
            .recv()
            .expect("the server thread entered its namespace");
    }

    fn greeter(&mut self, ns: Arc<File>, address: IpAddr) {
        let port = self.port;
        let reached = self.reached.clone();
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        self.spawn_in(ns, move |stop| {
            let listener = TcpListener::bind((address, port)).expect("binding a greeter");
            listener.set_nonblocking(true).unwrap();
            bound_tx.send(()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let local = stream.local_addr().unwrap().ip().to_canonical();
                        reached.lock().unwrap().push(local);
                        let _ = writeln!(stream, "hello from {local}");
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("greeter: {e}"),
                }
            }
        });
        bound_rx.recv().unwrap();
    }

    /// Answers A queries for [`NAME`] with [`PUBLIC`]; any other name
    /// does not exist.
    fn dns(&mut self, ns: Arc<File>) {
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        self.spawn_in(ns, move |stop| {
            let socket = UdpSocket::bind((RESOLVER, 53)).expect("binding the DNS server");
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            bound_tx.send(()).unwrap();
            let mut buffer = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                if let Some(answer) = dns_answer(&buffer[..len]) {
                    let _ = socket.send_to(&answer, from);
                }
            }
        });
        bound_rx.recv().unwrap();
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A reply to one DNS query (RFC 1035 §4): the question echoed, then an
/// A record for [`NAME`], NXDOMAIN for other names, no records for
/// other types.
fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question = query.get(12..at + 4)?;
    let known = labels.join(".") == NAME;
    let answers = u16::from(known && qtype == 1);
    let mut reply = Vec::with_capacity(64);
    reply.extend_from_slice(&query[..2]);
    // A response, recursion available; NXDOMAIN (3) for unknown names.
    reply.extend_from_slice(&[0x81, if known { 0x80 } else { 0x83 }]);
    reply.extend_from_slice(&[0, 1]);
    reply.extend_from_slice(&answers.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if answers == 1 {
        // The name by pointer to the question, A, IN, TTL 60, 4 bytes.
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&PUBLIC.octets());
    }
    Some(reply)
}

/// The build script of the network test: each probe says what it
/// reached, or that it was refused. A refused connection takes about a
/// second (the kernel retries once after the filter's "unreachable"), so
/// the probes run five at a time, within the machine's 5 s and 32 tasks.
pub fn probe_script(port: u16) -> String {
    format!(
        r#"probe() {{
    if out=$(timeout 5 bash -c "exec 3<>/dev/tcp/$1/{port} && head -n 1 <&3" 2>&1); then
        echo "reached $1: $out"
    else
        echo "refused $1: $out"
    fi
}}
n=0
for target in {PUBLIC} {PRIVATE} {HOST_OWN} 127.0.0.1 {ROUTER} {NAME} {PUBLIC6} {PRIVATE6} {ROUTER6}; do
    probe $target > /tmp/probe-$n &
    n=$((n + 1))
    if [ $((n % 5)) = 0 ]; then wait; fi
done
wait
cat $(seq -f /tmp/probe-%g 0 $((n - 1)))
"#
    )
}

/// Checks a run of [`probe_script`]'s output: the public addresses and
/// the name reached, everything else refused. The loopback probe would
/// reach the host's loopback greeter through a pasta that forwards the
/// host's bound ports into the namespace (pasta's default), the router
/// probe through one that maps the gateway to the host's loopback.
pub fn check_probes(lines: &[String]) {
    let text = lines.join("\n");
    let says = |wanted: &str| lines.iter().any(|l| l.starts_with(wanted));
    assert!(
        says(&format!("reached {PUBLIC}: hello from {PUBLIC}")),
        "the public internet is reachable:\n{text}"
    );
    assert!(
        says(&format!("reached {NAME}: hello from {PUBLIC}")),
        "names resolve through the host's resolver:\n{text}"
    );
    for blocked in [
        PRIVATE.to_string(),
        HOST_OWN.to_string(),
        "127.0.0.1".into(),
    ] {
        assert!(
            says(&format!("refused {blocked}")),
            "{blocked} is out of reach:\n{text}"
        );
    }
}

/// Checks what the servers saw: only the public addresses, once per
/// probe.
pub fn check_reached(servers: &Servers) {
    let mut reached = servers.reached();
    reached.sort();
    assert_eq!(
        reached,
        [IpAddr::V4(PUBLIC), IpAddr::V4(PUBLIC), IpAddr::V6(PUBLIC6)],
        "only the public addresses were reached, by address and by name"
    );
}
