//! Answers remembered for one generation of the store: a request that
//! presents the same session or token as the one before costs no query,
//! and any committed change (a sign-out, a revoked token, a deactivated
//! user) forgets them all before the next request is answered.

use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Debug)]
pub struct Memo<V> {
    /// The generation the entries were read at, and the entries.
    entries: RwLock<(u64, HashMap<String, V>)>,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Self {
            entries: RwLock::new((0, HashMap::new())),
        }
    }
}

impl<V: Clone> Memo<V> {
    /// What was read for `key` at `generation`, if anything.
    pub fn get(&self, generation: u64, key: &str) -> Option<V> {
        let entries = self.entries.read().expect("memo lock");
        (entries.0 == generation)
            .then(|| entries.1.get(key).cloned())
            .flatten()
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
        entries.1.insert(key, value);
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
}
