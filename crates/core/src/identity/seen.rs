//! The message ids [`MemStore`](super::MemStore) remembers, so that a resent event is
//! recognised: a set of `(source, messageId)` pairs.
//!
//! Nearly every client sends UUID message ids, so a pair with one is kept as 18 bytes
//! inline in an open-addressing table (the id's 16 bytes and the source's number): one
//! probe finds it, with no arena to follow, and growing the table rehashes from the
//! entries themselves. Other pairs go to a [`ByteSet`] as their whole bytes. Either way
//! the whole id is compared, never a hash alone.

use super::mem::pack_uuid;
use super::table::{fold, put_bytes, random_seed, ByteSet, TooLong};

/// One remembered pair with a UUID message id.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    id: [u8; 16],
    source: u16,
}

/// A set of `(source, messageId)` pairs.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// Sources by number (few: one per write key).
    sources: Vec<String>,
    /// Per slot, 0 when empty, else seven bits of the entry's hash (low bit set).
    tags: Vec<u8>,
    entries: Vec<Entry>,
    len: usize,
    /// Pairs whose id is no UUID, or whose source is past the numbered ones.
    other: ByteSet,
    seed: u64,
    key: Vec<u8>,
}

impl Default for Seen {
    fn default() -> Seen {
        Seen {
            sources: Vec::new(),
            tags: Vec::new(),
            entries: Vec::new(),
            len: 0,
            other: ByteSet::default(),
            seed: random_seed(),
            key: Vec::new(),
        }
    }
}

impl Seen {
    /// How many pairs the set holds.
    pub(crate) fn len(&self) -> usize {
        self.len + self.other.len()
    }

    /// Bytes of memory held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.tags.capacity()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.other.heap_bytes()
            + self.sources.iter().map(String::capacity).sum::<usize>()
    }

    /// Adds the pair; `true` when it is new.
    pub(crate) fn insert(&mut self, source: &str, message_id: &str) -> Result<bool, TooLong> {
        let number = match self.sources.iter().position(|s| s == source) {
            Some(n) => u16::try_from(n).ok(),
            None if self.sources.len() < usize::from(u16::MAX) => {
                self.sources.push(source.to_owned());
                u16::try_from(self.sources.len() - 1).ok()
            }
            None => None,
        };
        match (number, pack_uuid(message_id)) {
            (Some(source), Some(id)) => Ok(self.insert_entry(Entry { id, source })),
            _ => {
                let mut key = std::mem::take(&mut self.key);
                key.clear();
                put_bytes(&mut key, source.as_bytes());
                key.extend_from_slice(message_id.as_bytes());
                let inserted = self.other.insert(&key);
                self.key = key;
                Ok(inserted?.1)
            }
        }
    }

    fn hash(&self, e: &Entry) -> u64 {
        let (lo, hi) = e.id.split_at(8);
        let word = |b: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            u64::from_le_bytes(w)
        };
        let h = fold(word(lo) ^ self.seed, word(hi) ^ 0xe703_7ed1_a0b4_28db);
        fold(h ^ u64::from(e.source), self.seed ^ 0xa076_1d64_78bd_642f)
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.tags.len() as u128) >> 64) as usize
    }

    fn insert_entry(&mut self, e: Entry) -> bool {
        // At most 4/5 full, as ByteSet: a probe reads consecutive tag bytes.
        if (self.len + 1) * 5 > self.tags.len() * 4 {
            self.grow();
        }
        let hash = self.hash(&e);
        let tag = (hash as u8) | 1;
        let mut at = self.home(hash);
        loop {
            match self.tags[at] {
                0 => break,
                t if t == tag && same(&self.entries[at], &e) => {
                    return false;
                }
                _ => at = if at + 1 == self.tags.len() { 0 } else { at + 1 },
            }
        }
        self.tags[at] = tag;
        self.entries[at] = e;
        self.len += 1;
        true
    }

    fn grow(&mut self) {
        let size = (self.tags.len() + self.tags.len() / 2).max(16);
        let tags = std::mem::replace(&mut self.tags, vec![0; size]);
        let entries = std::mem::replace(&mut self.entries, vec![Entry::default(); size]);
        for (tag, e) in tags.into_iter().zip(entries) {
            if tag == 0 {
                continue;
            }
            let hash = self.hash(&e);
            let mut at = self.home(hash);
            while self.tags[at] != 0 {
                at = if at + 1 == self.tags.len() { 0 } else { at + 1 };
            }
            self.tags[at] = (hash as u8) | 1;
            self.entries[at] = e;
        }
    }
}

/// Whether two entries are the same pair, comparing the ids as one 128-bit number.
#[inline]
fn same(a: &Entry, b: &Entry) -> bool {
    u128::from_le_bytes(a.id) == u128::from_le_bytes(b.id) && a.source == b.source
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_new_once_per_source_whatever_the_id_shape() {
        let mut seen = Seen::default();
        let ids: Vec<String> = (0..5_000u32)
            .map(|i| format!("{i:08x}-0000-4000-8000-{:012x}", u64::from(i) * 7919))
            .chain((0..1_000).map(|i| format!("m-{i}")))
            .collect();
        for source in ["web", "backend"] {
            for id in &ids {
                assert_eq!(seen.insert(source, id), Ok(true), "{source} {id}");
            }
        }
        for source in ["web", "backend"] {
            for id in &ids {
                assert_eq!(seen.insert(source, id), Ok(false), "{source} {id}");
            }
        }
        assert_eq!(seen.len(), 2 * ids.len());
        let upper = ids[1].to_uppercase();
        assert_ne!(upper, ids[1]);
        assert_eq!(seen.insert("web", &upper), Ok(true), "kept as sent");
    }
}
