//! Answers remembered for one generation of the store: a request that
//! presents the same session or token as the one before costs no query,
//! and any change the panel commits (a sign-out, a revoked token, a
//! deactivated user) forgets them all before the next request is
//! answered. A change made by another process (the `left4me` command,
//! an admin with `sqlite3`) is seen within [`KEEP`].

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long an answer is used at most.
pub const KEEP: Duration = Duration::from_secs(2);

/// Each answer with when it was read.
type Entries<V> = HashMap<String, (Instant, V)>;

#[derive(Debug)]
pub struct Memo<V> {
    /// The generation the entries were read at, and the entries.
    entries: RwLock<(u64, Entries<V>)>,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Self {
            entries: RwLock::new((0, HashMap::new())),
        }
    }
}

impl<V: Clone> Memo<V> {
    /// What was read for `key` at `generation` less than [`KEEP`] ago.
    pub fn get(&self, generation: u64, key: &str) -> Option<V> {
        let entries = self.entries.read().expect("memo lock");
        if entries.0 != generation {
            return None;
        }
        let (read, value) = entries.1.get(key)?;
        (read.elapsed() < KEEP).then(|| value.clone())
    }

    /// Remembers `value`, read after the store was at `generation`. An
    /// answer older than the entries is dropped; a newer one replaces them
    /// all, so the map only ever holds one generation.
    pub fn put(&self, generation: u64, key: String, value: V) {
        let mut entries = self.entries.write().expect("memo lock");
        if generation < entries.0 {
            return;
        }
        if generation > entries.0 {
            *entries = (generation, HashMap::new());
        }
        entries.1.insert(key, (Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_lives_for_its_generation_only() {
        let memo = Memo::default();
        memo.put(3, "a".into(), 1);
        assert_eq!(memo.get(3, "a"), Some(1));
        assert_eq!(memo.get(4, "a"), None, "a later generation forgets it");
        memo.put(2, "b".into(), 2);
        assert_eq!(memo.get(3, "b"), None, "an answer read earlier is dropped");
        memo.put(5, "c".into(), 3);
        assert_eq!(memo.get(5, "a"), None, "a newer answer replaces all");
        assert_eq!(memo.get(5, "c"), Some(3));
    }

    #[test]
    fn an_answer_is_read_again_after_a_while() {
        let memo = Memo::default();
        memo.put(1, "a".into(), 1);
        {
            let mut entries = memo.entries.write().unwrap();
            entries.1.get_mut("a").unwrap().0 -= KEEP;
        }
        assert_eq!(memo.get(1, "a"), None);
    }
}
