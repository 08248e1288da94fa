//! Minimal byte-level A2S and RCON clients, written from the protocol
//! description rather than shared with the simulator, so the tests check the
//! wire format itself.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub(crate) const TIMEOUT: Duration = Duration::from_secs(3);

/// Reads little-endian fields from a reply.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(self.bytes.len() >= n, "reply too short");
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        head
    }

    pub(crate) fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take(2).try_into().unwrap())
    }

    pub(crate) fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.take(4).try_into().unwrap())
    }

    pub(crate) fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap())
    }

    pub(crate) fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.take(4).try_into().unwrap())
    }

    pub(crate) fn string(&mut self) -> String {
        let end = self
            .bytes
            .iter()
            .position(|&b| b == 0)
            .expect("unterminated string");
        let s = String::from_utf8(self.take(end).to_vec()).unwrap();
        self.take(1);
        s
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// An A2S client.
pub(crate) struct A2s {
    socket: UdpSocket,
    /// How many datagrams the last reply took.
    pub(crate) last_datagrams: usize,
    /// The split size the server is expected to announce.
    pub(crate) split_size: u16,
}

#[derive(Debug)]
pub(crate) struct Info {
    pub(crate) protocol: u8,
    pub(crate) name: String,
    pub(crate) map: String,
    pub(crate) folder: String,
    pub(crate) game: String,
    pub(crate) appid: u16,
    pub(crate) players: u8,
    pub(crate) max_players: u8,
    pub(crate) bots: u8,
    pub(crate) server_type: u8,
    pub(crate) environment: u8,
    pub(crate) visibility: u8,
    pub(crate) vac: u8,
    pub(crate) version: String,
    pub(crate) port: u16,
    pub(crate) steam_id: u64,
    pub(crate) keywords: String,
    pub(crate) game_id: u64,
}

impl A2s {
    pub(crate) async fn connect(server: SocketAddr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.connect(server).await.unwrap();
        Self {
            socket,
            last_datagrams: 0,
            split_size: 1248,
        }
    }

    pub(crate) async fn send(&self, datagram: &[u8]) {
        self.socket.send(datagram).await.unwrap();
    }

    /// One reply (reassembled from split packets), or `None` on timeout.
    pub(crate) async fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let mut parts: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
        let mut buf = vec![0u8; 65_536];
        self.last_datagrams = 0;
        loop {
            // A refused port (no server yet) counts as no reply.
            let n = tokio::time::timeout(timeout, self.socket.recv(&mut buf))
                .await
                .ok()?
                .ok()?;
            self.last_datagrams += 1;
            let datagram = &buf[..n];
            assert!(datagram.len() <= usize::from(self.split_size) + 12);
            if datagram[..4] == [0xFF; 4] {
                return Some(datagram[4..].to_vec());
            }
            assert_eq!(datagram[..4], [0xFE, 0xFF, 0xFF, 0xFF]);
            let mut r = Reader::new(&datagram[4..]);
            let id = r.i32();
            assert!(id >= 0, "compression bit must not be set");
            let total = r.u8();
            let number = r.u8();
            assert_eq!(r.u16(), self.split_size, "split size");
            assert!(number < total);
            parts.insert(number, r.take(n - 12).to_vec());
            if parts.len() == usize::from(total) {
                let joined: Vec<u8> = parts.into_values().flatten().collect();
                assert_eq!(joined[..4], [0xFF; 4]);
                return Some(joined[4..].to_vec());
            }
        }
    }

    /// Sends `header` + `challenge`, answering one challenge round; returns
    /// the reply without the `FF FF FF FF` prefix.
    pub(crate) async fn query(&mut self, header: &[u8], first_challenge: &[u8]) -> Vec<u8> {
        let mut request = header.to_vec();
        request.extend_from_slice(first_challenge);
        self.send(&request).await;
        let reply = self.recv(TIMEOUT).await.expect("no reply");
        if reply[0] != 0x41 {
            return reply;
        }
        let mut request = header.to_vec();
        request.extend_from_slice(&reply[1..5]);
        self.send(&request).await;
        let reply = self.recv(TIMEOUT).await.expect("no reply");
        assert_ne!(reply[0], 0x41, "challenge not accepted");
        reply
    }

    pub(crate) async fn info(&mut self) -> Info {
        let reply = self.query(&info_request(), &[]).await;
        parse_info(&reply)
    }

    pub(crate) async fn players(&mut self) -> Vec<(String, f32)> {
        let reply = self
            .query(&[0xFF, 0xFF, 0xFF, 0xFF, 0x55], &[0xFF; 4])
            .await;
        let mut r = Reader::new(&reply);
        assert_eq!(r.u8(), 0x44);
        let count = r.u8();
        let players = (0..count)
            .map(|_| {
                r.u8();
                let name = r.string();
                r.i32();
                (name, r.f32())
            })
            .collect();
        assert!(r.is_empty());
        players
    }

    pub(crate) async fn rules(&mut self) -> BTreeMap<String, String> {
        let reply = self
            .query(&[0xFF, 0xFF, 0xFF, 0xFF, 0x56], &[0xFF; 4])
            .await;
        let mut r = Reader::new(&reply);
        assert_eq!(r.u8(), 0x45);
        let count = r.u16();
        let rules: BTreeMap<String, String> =
            (0..count).map(|_| (r.string(), r.string())).collect();
        assert!(r.is_empty());
        assert_eq!(rules.len(), usize::from(count));
        rules
    }
}

pub(crate) fn info_request() -> Vec<u8> {
    let mut request = vec![0xFF, 0xFF, 0xFF, 0xFF, 0x54];
    request.extend_from_slice(b"Source Engine Query\0");
    request
}

pub(crate) fn parse_info(reply: &[u8]) -> Info {
    let mut r = Reader::new(reply);
    assert_eq!(r.u8(), 0x49);
    let mut info = Info {
        protocol: r.u8(),
        name: r.string(),
        map: r.string(),
        folder: r.string(),
        game: r.string(),
        appid: r.u16(),
        players: r.u8(),
        max_players: r.u8(),
        bots: r.u8(),
        server_type: r.u8(),
        environment: r.u8(),
        visibility: r.u8(),
        vac: r.u8(),
        version: r.string(),
        port: 0,
        steam_id: 0,
        keywords: String::new(),
        game_id: 0,
    };
    let edf = r.u8();
    assert_eq!(edf, 0xB1);
    info.port = r.u16();
    info.steam_id = r.u64();
    info.keywords = r.string();
    info.game_id = r.u64();
    assert!(r.is_empty());
    info
}

/// An RCON client.
pub(crate) struct Rcon {
    stream: TcpStream,
    next_id: i32,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Packet {
    pub(crate) id: i32,
    pub(crate) kind: i32,
    pub(crate) body: Vec<u8>,
}

impl Rcon {
    pub(crate) async fn connect(server: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(server).await.unwrap(),
            next_id: 100,
        }
    }

    pub(crate) async fn send(&mut self, id: i32, kind: i32, body: &[u8]) {
        let mut packet = Vec::new();
        packet.extend_from_slice(&(10 + body.len() as i32).to_le_bytes());
        packet.extend_from_slice(&id.to_le_bytes());
        packet.extend_from_slice(&kind.to_le_bytes());
        packet.extend_from_slice(body);
        packet.extend_from_slice(&[0, 0]);
        self.stream.write_all(&packet).await.unwrap();
    }

    /// The next packet, or `None` if the server closed the connection (or
    /// said nothing within the timeout).
    pub(crate) async fn recv(&mut self) -> Option<Packet> {
        tokio::time::timeout(TIMEOUT, async {
            let mut size = [0u8; 4];
            self.stream.read_exact(&mut size).await.ok()?;
            let size = i32::from_le_bytes(size);
            assert!((10..=4092).contains(&size), "size {size}");
            let mut rest = vec![0u8; size as usize];
            self.stream.read_exact(&mut rest).await.ok()?;
            assert_eq!(&rest[rest.len() - 2..], [0, 0], "missing padding");
            let mut r = Reader::new(&rest);
            let id = r.i32();
            let kind = r.i32();
            let body = rest[8..rest.len() - 2].to_vec();
            Some(Packet { id, kind, body })
        })
        .await
        .ok()
        .flatten()
    }

    /// Authenticates; true when the server accepted the password.
    pub(crate) async fn auth(&mut self, password: &str) -> bool {
        self.next_id += 1;
        let id = self.next_id;
        self.send(id, 3, password.as_bytes()).await;
        let empty = self.recv().await.expect("no empty RESPONSE_VALUE");
        assert_eq!(
            empty,
            Packet {
                id,
                kind: 0,
                body: Vec::new()
            }
        );
        let answer = self.recv().await.expect("no AUTH_RESPONSE");
        assert_eq!(answer.kind, 2);
        assert!(answer.id == id || answer.id == -1, "id {}", answer.id);
        answer.id == id
    }

    /// Runs a command, collecting output until the mirrored terminator;
    /// returns the output and how many packets carried it.
    pub(crate) async fn exec(&mut self, command: &str) -> (String, usize) {
        self.next_id += 1;
        let id = self.next_id;
        self.send(id, 2, command.as_bytes()).await;
        self.send(id + 1_000_000, 0, b"").await;
        let mut output = Vec::new();
        let mut packets = 0;
        loop {
            let packet = self.recv().await.expect("connection closed mid-reply");
            assert_eq!(packet.kind, 0);
            if packet.id == id + 1_000_000 {
                assert!(packet.body.is_empty());
                let trailer = self.recv().await.expect("no trailer");
                assert_eq!(trailer.id, id + 1_000_000);
                assert_eq!(trailer.body, [0, 0, 0, 1, 0, 0, 0, 0]);
                break;
            }
            assert_eq!(packet.id, id);
            packets += 1;
            output.extend_from_slice(&packet.body);
        }
        self.next_id += 1;
        (String::from_utf8(output).unwrap(), packets)
    }
}
