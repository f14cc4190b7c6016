//! Compact building blocks of [`MemStore`](super::MemStore): byte strings interned in an
//! arena and found through an open-addressing table of `u32` indices, vectors grown in
//! fixed chunks, and the varint codec profiles are packed with.
//!
//! They exist so that the in-memory graph stays within a few dozen bytes per identifier
//! while keeping every identifier whole: a lookup hashes the bytes to find a slot, then
//! compares the stored bytes in full, so two ids that share a hash never match.

use std::hash::{BuildHasherDefault, Hasher};

/// Bytes per arena chunk; a key never spans two chunks.
const CHUNK_BYTES: usize = 64 * 1024;
/// Items per chunk of a [`Chunked`] vector.
const CHUNK_ITEMS: usize = 4096;

/// A fast hash over bytes with a fixed seed, for caches whose worst case is a miss.
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    hash_seeded(bytes, FIXED_SEED)
}

const FIXED_SEED: u64 = 0x2d35_8dcc_aa6c_78a5;
const MIX_A: u64 = 0xa076_1d64_78bd_642f;
const MIX_B: u64 = 0xe703_7ed1_a0b4_28db;

/// The high and low halves of a 128-bit product, folded together.
#[inline]
pub(crate) fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The little-endian word at `at`; 0 past the end (callers stay within bounds).
#[inline]
fn word(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk::<8>)
        .map_or(0, |w| u64::from_le_bytes(*w))
}

/// A keyed hash over bytes in the folded-multiply family: a couple of 128-bit multiplies
/// for a key of up to 16 bytes, one more per further 16 bytes. With a secret seed, which
/// keys collide cannot be worked out from the outside without timing the table.
pub(crate) fn hash_seeded(bytes: &[u8], seed: u64) -> u64 {
    let len = bytes.len();
    let mut s = seed ^ (len as u64).wrapping_mul(MIX_A);
    let (a, b) = if len > 16 {
        let mut at = 0;
        while len - at > 16 {
            s = fold(word(bytes, at) ^ MIX_B, word(bytes, at + 8) ^ s);
            at += 16;
        }
        (word(bytes, len - 16), word(bytes, len - 8))
    } else if len >= 8 {
        (word(bytes, 0), word(bytes, len - 8))
    } else if len >= 4 {
        let half = |at: usize| {
            bytes
                .get(at..)
                .and_then(<[u8]>::first_chunk::<4>)
                .map_or(0, |w| u64::from(u32::from_le_bytes(*w)))
        };
        (half(0), half(len - 4))
    } else if len > 0 {
        let b = |at: usize| u64::from(bytes[at]);
        ((b(0) << 16) | (b(len / 2) << 8) | b(len - 1), 0)
    } else {
        (0, 0)
    };
    fold(fold(a ^ MIX_B, b ^ s) ^ MIX_A, s ^ MIX_B)
}

/// A secret seed for one table, from the standard library's per-process random keys.
pub(crate) fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

/// FxHash's hasher: a multiply-rotate per word; fine for keys an attacker cannot choose
/// to collide cheaply at this table's sizes, and collisions only cost a comparison.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
        self.add(bytes.len() as u64);
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// `HashMap` hasher state using [`FxHasher`].
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// A vector grown one fixed chunk at a time, so growing never copies and never leaves
/// more than one chunk unused.
#[derive(Debug, Clone)]
pub(crate) struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of memory the chunks hold.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| c.capacity() * std::mem::size_of::<T>())
            .sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<T>>()
    }

    pub(crate) fn push(&mut self, item: T) {
        if self.len.is_multiple_of(CHUNK_ITEMS) {
            self.chunks.push(Vec::with_capacity(CHUNK_ITEMS));
        }
        if let Some(last) = self.chunks.last_mut() {
            last.push(item);
            self.len += 1;
        }
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK_ITEMS)?.get(i % CHUNK_ITEMS)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.chunks
            .get_mut(i / CHUNK_ITEMS)?
            .get_mut(i % CHUNK_ITEMS)
    }
}

/// Where a key's bytes are in the arena: chunk, offset in it, length (6 bytes, so a
/// million keys cost 6 MB of spans, not 8).
#[derive(Debug, Clone, Copy)]
struct Span([u16; 3]);

/// A set of byte strings, each stored once in an arena and numbered in insertion order.
#[derive(Debug, Clone)]
pub(crate) struct ByteSet {
    arena: Vec<Vec<u8>>,
    spans: Chunked<Span>,
    /// Open addressing, linear probing. Per slot, 0 when empty, else seven bits of the
    /// key's hash above the key's number plus one (25 bits): a probe compares stored
    /// bytes only when the hash bits match, and reads them from the slot it probes.
    slots: Vec<u32>,
    /// The table's secret hash seed.
    seed: u64,
}

impl Default for ByteSet {
    fn default() -> ByteSet {
        ByteSet {
            arena: Vec::new(),
            spans: Chunked::default(),
            slots: Vec::new(),
            seed: random_seed(),
        }
    }
}

/// Why a key cannot be stored: it is longer than 65,535 bytes, the arena already holds
/// 4 GiB, or the set already holds [`MAX_KEYS`] keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLong(pub usize);

impl ByteSet {
    /// How many keys the set holds.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Bytes of memory held: arena chunks, spans and the table.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.arena.iter().map(Vec::capacity).sum::<usize>()
            + self.spans.heap_bytes()
            + self.slots.capacity() * 4
    }

    /// The bytes of key `i`.
    #[inline]
    pub(crate) fn get(&self, i: u32) -> &[u8] {
        match self.spans.get(i as usize) {
            Some(&Span([chunk, offset, len])) => {
                let start = usize::from(offset);
                &self.arena[usize::from(chunk)][start..start + usize::from(len)]
            }
            None => &[],
        }
    }

    /// The number of `key`, if the set holds it.
    pub(crate) fn find(&self, key: &[u8]) -> Option<u32> {
        self.find_hashed(key, hash_seeded(key, self.seed))
    }

    /// [`ByteSet::find`] with the key's hash already computed.
    fn find_hashed(&self, key: &[u8], hash: u64) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let tag = tag_of(hash);
        let mut at = self.home(hash);
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return None;
            }
            if slot >> KEY_BITS == tag {
                let n = (slot & KEY_MASK) - 1;
                if self.get(n) == key {
                    return Some(n);
                }
            }
            at = self.next(at);
        }
    }

    /// The number of `key`, inserting it if new; `true` when it was inserted.
    pub(crate) fn insert(&mut self, key: &[u8]) -> Result<(u32, bool), TooLong> {
        let hash = hash_seeded(key, self.seed);
        if let Some(n) = self.find_hashed(key, hash) {
            return Ok((n, false));
        }
        if key.len() > usize::from(u16::MAX) || self.len() >= MAX_KEYS {
            return Err(TooLong(key.len()));
        }
        // Keep the table at most 4/5 full: linear probing slows down fast past that.
        if (self.len() + 1) * 5 > self.slots.len() * 4 {
            self.grow();
        }
        let fits = self
            .arena
            .last()
            .is_some_and(|c| c.len() + key.len() <= CHUNK_BYTES);
        if !fits {
            if self.arena.len() > usize::from(u16::MAX) {
                return Err(TooLong(key.len()));
            }
            self.arena.push(Vec::with_capacity(CHUNK_BYTES));
        }
        let chunk = self.arena.len() - 1;
        let offset = self.arena[chunk].len();
        self.arena[chunk].extend_from_slice(key);
        let n = self.len() as u32;
        self.spans
            .push(Span([chunk as u16, offset as u16, key.len() as u16]));
        self.place(n, hash);
        Ok((n, true))
    }

    /// The first slot to probe: the hash scaled to the table's size (any size, not only
    /// powers of two, so the table can grow by half and stay nearer its load limit).
    #[inline]
    fn home(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.slots.len() as u128) >> 64) as usize
    }

    #[inline]
    fn next(&self, at: usize) -> usize {
        if at + 1 == self.slots.len() {
            0
        } else {
            at + 1
        }
    }

    fn place(&mut self, n: u32, hash: u64) {
        let mut at = self.home(hash);
        while self.slots[at] != 0 {
            at = self.next(at);
        }
        self.slots[at] = (tag_of(hash) << KEY_BITS) | (n + 1);
    }

    fn grow(&mut self) {
        let size = (self.slots.len() + self.slots.len() / 2).max(16);
        self.slots = vec![0; size];
        for n in 0..self.len() as u32 {
            let hash = hash_seeded(self.get(n), self.seed);
            self.place(n, hash);
        }
    }
}

/// Bits of a [`ByteSet`] slot that hold the key's number plus one.
const KEY_BITS: u32 = 25;
const KEY_MASK: u32 = (1 << KEY_BITS) - 1;

/// The most keys a [`ByteSet`] holds (33,554,430): a slot keeps a number in 25 bits.
pub(crate) const MAX_KEYS: usize = KEY_MASK as usize - 1;

/// The seven bits of a hash a [`ByteSet`] slot keeps: its lowest, as its highest pick
/// the slot.
#[inline]
fn tag_of(hash: u64) -> u32 {
    (hash & 0x7f) as u32
}

/// Appends `n` as an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends a signed number, zigzag-encoded as a varint.
pub(crate) fn put_signed(out: &mut Vec<u8>, n: i64) {
    put_varint(out, ((n << 1) ^ (n >> 63)) as u64);
}

/// Appends length-prefixed bytes.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads what the `put_*` functions wrote.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// How many bytes are left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(n);
            }
        }
        None
    }

    pub(crate) fn signed(&mut self) -> Option<i64> {
        let z = self.varint()?;
        Some((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        if len > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Some(head)
    }

    pub(crate) fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_set_numbers_keys_once_and_finds_them_whole() {
        let mut set = ByteSet::default();
        let keys: Vec<Vec<u8>> = (0..10_000u32)
            .map(|i| format!("key-{i}").into_bytes())
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(set.insert(k), Ok((i as u32, true)));
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(set.insert(k), Ok((i as u32, false)));
            assert_eq!(set.find(k), Some(i as u32));
            assert_eq!(set.get(i as u32), k.as_slice());
        }
        assert_eq!(set.find(b"key-10000"), None);
        assert_eq!(set.find(b""), None);
        assert_eq!(set.insert(&vec![0u8; 70_000]), Err(TooLong(70_000)));
    }

    #[test]
    fn varints_round_trip() {
        let mut out = Vec::new();
        let numbers = [0i64, 1, -1, 63, -64, 1 << 40, i64::MIN, i64::MAX];
        for n in numbers {
            put_signed(&mut out, n);
        }
        put_bytes(&mut out, b"abc");
        let mut r = Reader::new(&out);
        for n in numbers {
            assert_eq!(r.signed(), Some(n));
        }
        assert_eq!(r.bytes(), Some(&b"abc"[..]));
        assert!(r.is_empty());
        assert_eq!(r.varint(), None);
    }

    #[test]
    fn chunked_vector_indexes_across_chunks() {
        let mut v = Chunked::default();
        for i in 0..10_000 {
            v.push(i);
        }
        assert_eq!(v.len(), 10_000);
        assert_eq!(v.get(4096), Some(&4096));
        *v.get_mut(9_999).unwrap() = 7;
        assert_eq!(v.get(9_999), Some(&7));
        assert_eq!(v.get(10_000), None);
    }
}
