//! Passwords, sessions, CSRF and login rate limits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use left4me_app::actor::Actor;
use left4me_store::Session;

use crate::config::TrustedProxies;
use crate::error::AppError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "left4me_session";
/// Double-submit token for forms shown before login (login, setup).
pub const PRE_SESSION_CSRF_COOKIE: &str = "left4me_csrf";
pub const SESSION_TTL_SECS: i64 = 14 * 24 * 3600;

pub use left4me_app::credentials::{
    constant_time_eq, hash_password, issue_setup_token, random_token, token_hash, verify_password,
};

/// The link that opens the setup page with `token`, on the address the
/// panel listens on (behind a reverse proxy, open the same path there).
pub fn setup_url(listen: std::net::SocketAddr, token: &str) -> String {
    format!("http://{listen}/setup?token={token}")
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The logged-in user of a request: the actor of the operations it
/// calls, and the session it came with.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub actor: Actor,
    pub session: Session,
}

impl std::ops::Deref for CurrentUser {
    type Target = Actor;

    fn deref(&self) -> &Actor {
        &self.actor
    }
}

/// The user a request came from, once something looked it up: the
/// [`CurrentUser`] extractor and the CSRF guard fill it, and the error
/// pages read it to show the navigation without a second session lookup.
/// `error_pages` puts an empty one in every request.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeenUser(Arc<OnceLock<CurrentUser>>);

impl SeenUser {
    pub(crate) fn get(&self) -> Option<&CurrentUser> {
        self.0.get()
    }
}

/// The session token of a request, if it has one.
pub(crate) fn session_token(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

pub(crate) async fn user_of_token(
    state: &AppState,
    token: &str,
) -> Result<Option<CurrentUser>, AppError> {
    let Some(session) = state.store().session(&token_hash(token)).await? else {
        return Ok(None);
    };
    let user = state.store().user(session.user_id).await?;
    Ok(Some(CurrentUser {
        actor: Actor::new(user),
        session,
    }))
}

async fn session_user(state: &AppState, parts: &Parts) -> Result<Option<CurrentUser>, AppError> {
    let Some(token) = session_token(&parts.headers) else {
        return Ok(None);
    };
    let user = user_of_token(state, &token).await?;
    if let (Some(user), Some(seen)) = (&user, parts.extensions.get::<SeenUser>()) {
        let _ = seen.0.set(user.clone());
    }
    Ok(user)
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<CurrentUser>() {
            return Ok(user.clone());
        }
        session_user(state, parts)
            .await?
            .ok_or(AppError::LoginRequired)
    }
}

/// The user if logged in.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<CurrentUser>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(session_user(state, parts).await?))
    }
}

const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

/// Checks the CSRF token of every state-changing request: from the
/// `X-CSRF-Token` header, a `csrf` query parameter (multipart uploads) or
/// a `csrf` form field, against the session's token (or, before login, the
/// double-submit cookie). Compared in constant time.
pub async fn csrf_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let expected = match session_user(&state, &parts).await {
        Ok(Some(user)) => {
            let token = user.session.csrf_token.expose().to_owned();
            parts.extensions.insert(user);
            Some(token)
        }
        Ok(None) => cookie(&parts.headers, PRE_SESSION_CSRF_COOKIE),
        Err(e) => return e.into_response(),
    };
    let from_header = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let from_query = parts
        .uri
        .query()
        .and_then(|q| form_field(q.as_bytes(), "csrf"));
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let (provided, body) = match (from_header.or(from_query), is_form) {
        (Some(token), _) => (Some(token), body),
        (None, true) => match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(bytes) => (form_field(&bytes, "csrf"), Body::from(bytes)),
            Err(_) => {
                return AppError::PayloadTooLarge("the form is too large".into()).into_response();
            }
        },
        (None, false) => (None, body),
    };
    match (expected, provided) {
        (Some(expected), Some(provided)) if constant_time_eq(&expected, &provided) => {
            next.run(Request::from_parts(parts, body)).await
        }
        _ => AppError::Forbidden(
            "This form expired or came from another site. Reload the page and try again.".into(),
        )
        .into_response(),
    }
}

fn form_field(encoded: &[u8], name: &str) -> Option<String> {
    decode_form(encoded)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Decodes `application/x-www-form-urlencoded` pairs.
fn decode_form(encoded: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    let hex = std::str::from_utf8(&s[i + 1..i + 3]).ok();
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    encoded
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = decode(it.next().unwrap_or_default());
            let v = decode(it.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

/// The client's address: the peer's, unless the peer is a trusted proxy;
/// then the last `X-Forwarded-For` entry not added by a trusted proxy
/// (earlier entries are the client's to forge).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()))
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(*ip))
        .unwrap_or(peer)
}

/// How many failures a key gets for free before each further one doubles
/// the wait: an address (many users behind one NAT mistype now and then)
/// and one username from one address (its owner mistyping).
pub const ADDRESS_FREE_FAILURES: u32 = 20;
pub const PAIR_FREE_FAILURES: u32 = 5;
/// The first wait, and the longest: 5 s, 10 s, 20 s … 5 min.
pub const FIRST_WAIT: Duration = Duration::from_secs(5);
pub const LONGEST_WAIT: Duration = Duration::from_secs(300);
/// A key without failures for this long is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Keys tracked per kind; beyond it the least useful ones are dropped.
pub const MAX_KEYS: usize = 10_000;

/// Failed logins, counted per client address and per (address, username),
/// never per username alone: a stranger cannot lock an owner out by
/// failing logins against their name from elsewhere. A few failures are
/// free; each further one doubles the wait before the next try (a refusal
/// does not count as a failure). A success clears its pair.
///
/// Memory stays bounded: each kind has its own map of at most
/// [`MAX_KEYS`], so spraying usernames cannot push an address out, and a
/// full map drops forgotten keys first, then those whose wait ends
/// soonest: the keys still making someone wait are dropped last, so an
/// attacker cannot clear their own wait by spraying.
#[derive(Default)]
pub struct LoginLimiter {
    addresses: Mutex<Tracked<IpAddr>>,
    pairs: Mutex<Tracked<(IpAddr, String)>>,
}

struct Tracked<K> {
    keys: HashMap<K, Failures>,
}

impl<K> Default for Tracked<K> {
    fn default() -> Self {
        Self {
            keys: HashMap::new(),
        }
    }
}

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    wait_until: Instant,
}

impl<K: std::hash::Hash + Eq + Clone> Tracked<K> {
    fn wait(&self, key: &K, now: Instant) -> Duration {
        self.keys.get(key).map_or(Duration::ZERO, |f| {
            f.wait_until.saturating_duration_since(now)
        })
    }

    fn fail(&mut self, key: K, free: u32, now: Instant) {
        if !self.keys.contains_key(&key) && self.keys.len() >= MAX_KEYS {
            self.make_room(now);
        }
        let failures = self.keys.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            wait_until: now,
        });
        // Mistakes long ago are forgiven: a household behind one address
        // must not wait longer with every typo of its lifetime.
        if now.saturating_duration_since(failures.last) >= FORGET_AFTER {
            failures.count = 0;
        }
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
        failures.wait_until = now + wait_after(failures.count, free);
    }

    /// Takes back one failure counted by an attempt that succeeded.
    fn refund(&mut self, key: &K, free: u32) {
        if let Some(failures) = self.keys.get_mut(key) {
            failures.count = failures.count.saturating_sub(1);
            failures.wait_until = failures.last + wait_after(failures.count, free);
        }
    }

    /// Drops forgotten keys; if that is not a tenth of the map, also the
    /// tenth whose waits end soonest (oldest failure first among equals).
    /// Dropping a tenth at once keeps a spray at O(log n) per failure.
    fn make_room(&mut self, now: Instant) {
        self.keys
            .retain(|_, f| now.saturating_duration_since(f.last) < FORGET_AFTER);
        let target = MAX_KEYS - MAX_KEYS / 10;
        if self.keys.len() > target {
            let mut order: Vec<(Instant, Instant, K)> = self
                .keys
                .iter()
                .map(|(k, f)| (f.wait_until.max(now), f.last, k.clone()))
                .collect();
            order.sort_unstable_by_key(|(wait_until, last, _)| (*wait_until, *last));
            for (_, _, key) in order.into_iter().take(self.keys.len() - target) {
                self.keys.remove(&key);
            }
        }
    }
}

/// The wait after `count` failures of a key that gets `free` for free.
fn wait_after(count: u32, free: u32) -> Duration {
    match count.checked_sub(free) {
        None => Duration::ZERO,
        Some(doublings) => FIRST_WAIT
            .saturating_mul(2u32.saturating_pow(doublings.min(16)))
            .min(LONGEST_WAIT),
    }
}

/// An IPv6 client is counted by its /64: one host gets a whole /64 and
/// could otherwise pick a fresh address per try.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

fn pair_key(ip: IpAddr, username: &str) -> (IpAddr, String) {
    (address_key(ip), username.trim().to_lowercase())
}

impl LoginLimiter {
    /// `Err(wait)` while `client` must wait before trying `username` again.
    #[cfg(test)]
    pub(crate) fn check(&self, client: IpAddr, username: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let by_address = lock(&self.addresses).wait(&address_key(client), now);
        let by_pair = lock(&self.pairs).wait(&pair_key(client, username), now);
        match by_address.max(by_pair) {
            Duration::ZERO => Ok(()),
            wait => Err(wait),
        }
    }

    /// Counts a login attempt as a failure before its password is
    /// checked, unless the client must wait first (`Err(wait)`). Counting
    /// up front means attempts sent in parallel cannot all slip through
    /// one free slot while argon2 runs; a success refunds it.
    pub fn attempt(&self, client: IpAddr, username: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let (address, pair) = (address_key(client), pair_key(client, username));
        let mut addresses = lock(&self.addresses);
        let mut pairs = lock(&self.pairs);
        match addresses.wait(&address, now).max(pairs.wait(&pair, now)) {
            Duration::ZERO => {
                addresses.fail(address, ADDRESS_FREE_FAILURES, now);
                pairs.fail(pair, PAIR_FREE_FAILURES, now);
                Ok(())
            }
            wait => Err(wait),
        }
    }

    #[cfg(test)]
    pub(crate) fn record_failure(&self, client: IpAddr, username: &str) {
        let now = Instant::now();
        lock(&self.addresses).fail(address_key(client), ADDRESS_FREE_FAILURES, now);
        lock(&self.pairs).fail(pair_key(client, username), PAIR_FREE_FAILURES, now);
    }

    /// The owner got in: the attempt is refunded to the address and their
    /// mistypes are forgiven. The address keeps its earlier failures, or
    /// one valid account would reset an attacker's.
    pub fn record_success(&self, client: IpAddr, username: &str) {
        lock(&self.addresses).refund(&address_key(client), ADDRESS_FREE_FAILURES);
        lock(&self.pairs).keys.remove(&pair_key(client, username));
    }

    /// How many keys of each kind are tracked: (addresses, pairs).
    pub fn tracked(&self) -> (usize, usize) {
        (
            lock(&self.addresses).keys.len(),
            lock(&self.pairs).keys.len(),
        )
    }
}

/// Sizes only: the maps hold the usernames people tried.
impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (addresses, pairs) = self.tracked();
        f.debug_struct("LoginLimiter")
            .field("addresses", &addresses)
            .field("pairs", &pairs)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps stay consistent at every await-free step: a panic elsewhere
    // does not make them unusable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_comes_from_trusted_proxies_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted: TrustedProxies = "127.0.0.1,10.0.0.2".parse().unwrap();
        let headers = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            h
        };
        let forged = headers(&["198.51.100.9, 203.0.113.7"]);
        // Straight from a client: the header is ignored.
        assert_eq!(
            client_ip(ip("192.0.2.1"), &forged, &trusted),
            ip("192.0.2.1")
        );
        // Through the proxy: the entry the proxy added, not the forged one.
        assert_eq!(
            client_ip(ip("127.0.0.1"), &forged, &trusted),
            ip("203.0.113.7")
        );
        // Through two trusted proxies, over several header lines.
        let chained = headers(&["203.0.113.7", "10.0.0.2"]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &chained, &trusted),
            ip("203.0.113.7")
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers(&[]), &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers(&["unknown"]), &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "wrong"));
        assert!(!verify_password("garbage", "wrong"));
    }

    #[test]
    fn form_fields_decode() {
        assert_eq!(
            form_field(b"a=1&csrf=ab%2Bc+d&x", "csrf").as_deref(),
            Some("ab+c d")
        );
        assert_eq!(form_field(b"csrf=%zz", "csrf").as_deref(), Some("%zz"));
        assert_eq!(form_field(b"csrf=%4", "csrf").as_deref(), Some("%4"));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn waits_double_after_the_free_failures_and_are_capped() {
        assert_eq!(wait_after(4, 5), Duration::ZERO);
        assert_eq!(wait_after(5, 5), FIRST_WAIT);
        assert_eq!(wait_after(6, 5), FIRST_WAIT * 2);
        assert_eq!(wait_after(7, 5), FIRST_WAIT * 4);
        assert_eq!(wait_after(40, 5), LONGEST_WAIT);
        assert_eq!(wait_after(u32::MAX, 5), LONGEST_WAIT);
    }

    #[test]
    fn a_pair_is_slowed_not_its_username_and_a_success_clears_it() {
        let limiter = LoginLimiter::default();
        let attacker = ip("203.0.113.5");
        for _ in 0..PAIR_FREE_FAILURES {
            assert!(limiter.check(attacker, "alice").is_ok());
            limiter.record_failure(attacker, "alice");
        }
        let wait = limiter.check(attacker, " Alice ").unwrap_err();
        assert!(wait > FIRST_WAIT - Duration::from_secs(1) && wait <= FIRST_WAIT);
        // The owner elsewhere, and the attacker's other names, are free.
        assert!(limiter.check(ip("198.51.100.7"), "alice").is_ok());
        assert!(limiter.check(attacker, "bob").is_ok());
        limiter.record_success(attacker, "alice");
        assert!(limiter.check(attacker, "alice").is_ok());
    }

    #[test]
    fn attempts_count_before_the_password_check_and_successes_are_refunded() {
        let limiter = LoginLimiter::default();
        let client = ip("203.0.113.9");
        // Parallel attempts: each takes a slot before any password check.
        for _ in 0..PAIR_FREE_FAILURES {
            assert!(limiter.attempt(client, "alice").is_ok());
        }
        assert!(
            limiter.attempt(client, "alice").is_err(),
            "no free slot left"
        );
        // A success gives its slot back to the address and clears the pair.
        let owner = ip("198.51.100.20");
        for _ in 0..ADDRESS_FREE_FAILURES * 2 {
            assert!(limiter.attempt(owner, "bob").is_ok());
            limiter.record_success(owner, "bob");
        }
    }

    #[test]
    fn failures_long_ago_are_forgotten() {
        let mut tracked = Tracked::<u8>::default();
        let start = Instant::now();
        for _ in 0..10 {
            tracked.fail(1, 5, start);
        }
        assert_eq!(tracked.wait(&1, start), FIRST_WAIT * 32);
        // One more typo after a quiet spell starts the count again.
        let later = start + FORGET_AFTER;
        tracked.fail(1, 5, later);
        assert_eq!(tracked.wait(&1, later), Duration::ZERO);
    }

    #[test]
    fn an_ipv6_client_counts_by_its_slash_64() {
        let limiter = LoginLimiter::default();
        for i in 0..ADDRESS_FREE_FAILURES {
            limiter.record_failure(ip(&format!("2001:db8:1:2::{i:x}")), &format!("u{i}"));
        }
        assert!(limiter.check(ip("2001:db8:1:2:ffff::1"), "x").is_err());
        assert!(limiter.check(ip("2001:db8:1:3::1"), "x").is_ok());
        assert_eq!(limiter.tracked().0, 1);
    }

    #[test]
    fn a_million_sprayed_keys_stay_bounded_and_the_attacker_stays_slowed() {
        let limiter = LoginLimiter::default();
        let attacker = ip("203.0.113.5");
        // Enough failures for the longest wait, which outlasts the spray.
        for _ in 0..ADDRESS_FREE_FAILURES + 10 {
            limiter.record_failure(attacker, "admin");
        }
        assert!(limiter.check(attacker, "admin").is_err());
        assert!(
            limiter.check(attacker, "someone-else").is_err(),
            "the address waits"
        );
        let mut most = (0, 0);
        for i in 0u32..1_000_000 {
            // Fresh addresses and usernames: an eviction storm in both maps.
            let sprayed = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            limiter.record_failure(sprayed, &format!("user{i}"));
            let (addresses, pairs) = limiter.tracked();
            most = (most.0.max(addresses), most.1.max(pairs));
            if i % 100_000 == 0 {
                assert!(
                    limiter.check(attacker, "admin").is_err(),
                    "after {i} sprayed"
                );
            }
        }
        assert!(most.0 <= MAX_KEYS && most.1 <= MAX_KEYS, "{most:?}");
        assert!(limiter.check(attacker, "admin").is_err());
        assert!(limiter.check(attacker, "someone-else").is_err());
    }
}
