//! The message ids [`MemStore`](super::MemStore) remembers, so that a resent event is
//! recognised: a set of `(source, messageId)` pairs.
//!
//! Nearly every client sends UUID message ids, so a pair with one is kept as 18 bytes
//! inline in an open-addressing table (the id's 16 bytes, then seven bits of the pair's
//! hash above the source's number): a probe reads the entries themselves, with no tag
//! array or arena to follow, and growing the table rehashes from the entries. Other
//! pairs go to a [`ByteSet`] as their whole bytes. Either way the whole id is compared,
//! never a hash alone.

use super::mem::pack_uuid;
use super::table::{fold, put_bytes, random_seed, ByteSet, TooLong};

/// One slot of the table: a remembered pair with a UUID message id, or an empty slot.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    id: [u8; 16],
    /// 0 for an empty slot, else seven bits of the pair's hash above the source's number
    /// plus one (9 bits).
    meta: u16,
}

/// Bits of [`Entry::meta`] holding the source's number plus one.
const SOURCE_BITS: u16 = 9;
const SOURCE_MASK: u16 = (1 << SOURCE_BITS) - 1;

/// A set of `(source, messageId)` pairs.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// Sources by number (few: one per write key); past 511, pairs go to `other`.
    sources: Vec<String>,
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
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.other.heap_bytes()
            + self.sources.iter().map(String::capacity).sum::<usize>()
    }

    /// Adds the pair; `true` when it is new.
    pub(crate) fn insert(&mut self, source: &str, message_id: &str) -> Result<bool, TooLong> {
        let number = match self.sources.iter().position(|s| s == source) {
            Some(n) => Some(n),
            None if self.sources.len() < usize::from(SOURCE_MASK) => {
                self.sources.push(source.to_owned());
                Some(self.sources.len() - 1)
            }
            None => None,
        };
        let number = number.and_then(|n| u16::try_from(n + 1).ok());
        match (number, pack_uuid(message_id)) {
            (Some(source), Some(id)) => Ok(self.insert_entry(id, source)),
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

    /// The hash of an id with its source's number plus one.
    fn hash(&self, id: &[u8; 16], source: u16) -> u64 {
        let n = u128::from_le_bytes(*id);
        let h = fold(
            (n as u64) ^ self.seed,
            ((n >> 64) as u64) ^ 0xe703_7ed1_a0b4_28db,
        );
        fold(h ^ u64::from(source), self.seed ^ 0xa076_1d64_78bd_642f)
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.entries.len() as u128) >> 64) as usize
    }

    #[inline]
    fn next(&self, at: usize) -> usize {
        if at + 1 == self.entries.len() {
            0
        } else {
            at + 1
        }
    }

    fn insert_entry(&mut self, id: [u8; 16], source: u16) -> bool {
        // At most 4/5 full, as ByteSet.
        if (self.len + 1) * 5 > self.entries.len() * 4 {
            self.grow();
        }
        let hash = self.hash(&id, source);
        let meta = meta_of(hash, source);
        let wanted = u128::from_le_bytes(id);
        let mut at = self.home(hash);
        loop {
            let e = &self.entries[at];
            if e.meta == 0 {
                break;
            }
            if e.meta == meta && u128::from_le_bytes(e.id) == wanted {
                return false;
            }
            at = self.next(at);
        }
        self.entries[at] = Entry { id, meta };
        self.len += 1;
        true
    }

    fn grow(&mut self) {
        let size = (self.entries.len() + self.entries.len() / 2).max(16);
        let entries = std::mem::replace(&mut self.entries, vec![Entry::default(); size]);
        for e in entries {
            if e.meta == 0 {
                continue;
            }
            let source = e.meta & SOURCE_MASK;
            let hash = self.hash(&e.id, source);
            let mut at = self.home(hash);
            while self.entries[at].meta != 0 {
                at = self.next(at);
            }
            self.entries[at] = Entry {
                id: e.id,
                meta: meta_of(hash, source),
            };
        }
    }
}

/// An entry's `meta`: seven bits of its hash (the lowest: the highest pick the slot) above
/// its source's number plus one, so never 0.
#[inline]
fn meta_of(hash: u64, source: u16) -> u16 {
    ((hash & 0x7f) as u16) << SOURCE_BITS | source
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

    #[test]
    fn sources_past_the_numbered_ones_are_kept_whole() {
        let mut seen = Seen::default();
        let id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        let sources: Vec<String> = (0..700).map(|i| format!("source-{i}")).collect();
        for round in [true, false] {
            for source in &sources {
                assert_eq!(seen.insert(source, id), Ok(round), "{source}");
            }
        }
        assert_eq!(seen.len(), 700);
    }
}
