//! Slowing down guessing: failed sign-ins counted per client address and
//! per (address, username). The edge that knows the client's address
//! asks before each try and reports each failure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

    /// How long the client must wait before trying `username` again
    /// (`Ok` when it need not), without counting anything.
    pub fn waiting(&self, client: IpAddr, username: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let address = lock(&self.addresses).wait(&address_key(client), now);
        match address.max(lock(&self.pairs).wait(&pair_key(client, username), now)) {
            Duration::ZERO => Ok(()),
            wait => Err(wait),
        }
    }

    /// A failure that was not counted up front (see [`Self::waiting`]).
    pub fn record_failure(&self, client: IpAddr, username: &str) {
        let now = Instant::now();
        lock(&self.addresses).fail(address_key(client), ADDRESS_FREE_FAILURES, now);
        lock(&self.pairs).fail(pair_key(client, username), PAIR_FREE_FAILURES, now);
    }

    /// A right password whose second factor is still to come: its attempt
    /// is given back, but earlier mistypes stay counted until the second
    /// factor is right too, so signing in again buys no more guesses at
    /// codes.
    pub fn refund_attempt(&self, client: IpAddr, username: &str) {
        lock(&self.addresses).refund(&address_key(client), ADDRESS_FREE_FAILURES);
        lock(&self.pairs).refund(&pair_key(client, username), PAIR_FREE_FAILURES);
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
