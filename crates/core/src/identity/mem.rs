//! [`MemStore`]: the identity graph held in memory, compactly, for tests, property tests
//! and the benchmark.
//!
//! It implements [`Store`] with the semantics the Durable Object's SQLite store has, and
//! is built to hold a large graph in a few dozen bytes per identifier:
//!
//! - identifiers are interned in an arena as `kind tag + value` bytes (a canonical
//!   lowercase UUID value is packed into its 16 bytes, losslessly) and found through an
//!   open-addressing table of `u32` numbers; a lookup always compares the whole value;
//! - each identifier carries its profile (a `u32`), when it was first seen, and the next
//!   identifier of the same profile, so a profile's identifiers are a chain, not a list;
//! - a profile at rest is a fixed 40-byte slot (times, counts, interned touchpoints and
//!   geo) plus, for the few that have traits, an account or counters, a varint-packed
//!   blob; optionally, the profiles most recently written stay unpacked in a cache, so a
//!   burst of one visitor's events does not pay for unpacking each time.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::Value;

use super::seen::Seen;
use super::store::{Merge, MergeId, Store, StoreError};
use super::table::{
    hash_bytes, put_bytes, put_signed, put_varint, ByteSet, Chunked, FxBuild, Reader,
};
use super::{IdKind, Identifier};
use crate::event::{Event, EventKind};
use crate::profile::{Held, Profile, ProfileId, Trait};
use crate::segment::{FeatureSpec, Features};
use crate::time::Millis;
use crate::touch::{self, Touchpoint};

/// How many unpacked profiles [`MemStore::new`] keeps cached: none. On the benchmark's
/// workload, where a visitor's events are minutes to hours apart, a cache of 4,096
/// profiles hit too rarely to pay for itself; [`MemStore::with_hot_capacity`] sets one
/// for traffic with tighter bursts.
pub const DEFAULT_HOT: usize = 0;

const ALIVE: u8 = 1;
const BOT: u8 = 2;
const HOT: u8 = 4;
const OUT: u8 = 8;
/// The profile has a packed blob beside its slot.
const BLOB: u8 = 16;

/// Tag bit of an identifier key whose value is a packed UUID.
const PACKED_UUID: u8 = 0x80;

/// One profile at rest.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    first_seen: Millis,
    last_seen: Millis,
    /// `last_seen` minus the last touch's time, in ms; `u32::MAX`: in the blob.
    last_touch_age: u32,
    events: u32,
    /// The first identifier of the chain, plus one (0: none).
    head: u32,
    /// Interned touchpoints (without their time), plus one (0: none).
    first_touch: u32,
    last_touch: u32,
    /// Interned country and device, plus one (0: none or kept in the blob).
    country: u8,
    device: u8,
    flags: u8,
}

/// One interned identifier's place in the graph.
#[derive(Debug, Clone, Copy)]
struct Link {
    /// The profile, or 0 when unlinked.
    profile: u32,
    /// The next identifier of the profile, plus one (0: end of chain).
    next: u32,
    first_seen: Millis,
}

// Bits of a packed profile blob's header.
const X_CREATED: u64 = 1;
const X_FIRST_TOUCH_AT: u64 = 2;
const X_ACCOUNT: u64 = 4;
const X_FEATURES: u64 = 8;
const X_EVENTS: u64 = 16;
const X_COUNTRY: u64 = 32;
const X_DEVICE: u64 = 64;
const X_TRAITS: u64 = 128;
const X_LAST_TOUCH_AT: u64 = 256;

/// Packed blobs by profile: a small map from profile to a numbered place, and the places,
/// which cost less than a map holding the blobs themselves.
#[derive(Debug, Default)]
struct Blobs {
    index: HashMap<u32, u32, FxBuild>,
    places: Chunked<Box<[u8]>>,
    free: Vec<u32>,
}

impl Blobs {
    fn get(&self, p: u32) -> Option<&[u8]> {
        let place = *self.index.get(&p)?;
        self.places.get(place as usize).map(|b| &b[..])
    }

    fn insert(&mut self, p: u32, blob: Box<[u8]>) {
        if let Some(&place) = self.index.get(&p) {
            if let Some(slot) = self.places.get_mut(place as usize) {
                *slot = blob;
                return;
            }
        }
        let place = match self.free.pop() {
            Some(place) => {
                if let Some(slot) = self.places.get_mut(place as usize) {
                    *slot = blob;
                }
                place
            }
            None => {
                self.places.push(blob);
                self.places.len() as u32 - 1
            }
        };
        self.index.insert(p, place);
    }

    /// Sets the blob of `p` to `bytes`, overwriting the old one where it has that length.
    fn replace(&mut self, p: u32, bytes: &[u8]) {
        if let Some(&place) = self.index.get(&p) {
            if let Some(slot) = self.places.get_mut(place as usize) {
                if slot.len() == bytes.len() {
                    slot.copy_from_slice(bytes);
                } else {
                    *slot = bytes.into();
                }
                return;
            }
        }
        self.insert(p, bytes.into());
    }

    fn remove(&mut self, p: u32) {
        if let Some(place) = self.index.remove(&p) {
            if let Some(slot) = self.places.get_mut(place as usize) {
                *slot = Box::default();
            }
            self.free.push(place);
        }
    }

    fn heap_bytes(&self) -> usize {
        let map = self.index.capacity() * (8 + 1);
        let places = self.places.heap_bytes() + self.free.capacity() * 4;
        let mut bytes = 0;
        for place in 0..self.places.len() {
            bytes += self.places.get(place).map_or(0, |b| b.len());
        }
        map + places + bytes
    }
}

/// Stored events by profile, with their arrival sequence numbers.
type EventLog = HashMap<u32, Vec<(u64, Event)>, FxBuild>;

/// The identity graph in memory.
///
/// # Limitations
/// Memory is not given back while the store lives: an unlinked identifier keeps its
/// interned bytes, a deleted profile its slot, and remembered message ids are never
/// forgotten by age (the `at` of [`Store::remember`] is ignored; [`MemStore::clear_seen`]
/// forgets them all). Profile ids are `u32` inside: past 4 billion profiles,
/// [`Store::next_profile_id`] fails; past 33 million interned identifiers,
/// [`Store::link`] fails.
#[derive(Debug)]
pub struct MemStore {
    ids: ByteSet,
    links: Chunked<Link>,
    linked: usize,
    kinds: Vec<String>,
    slots: Chunked<Slot>,
    live: usize,
    blobs: Blobs,
    syms: ByteSet,
    geo: ByteSet,
    /// The interned geo values again, by number, for the one comparison most events make.
    geo_names: Vec<Box<[u8]>>,
    hot: HashMap<u32, (Profile, u64), FxBuild>,
    queue: VecDeque<(u32, u64)>,
    stamp: u64,
    hot_cap: usize,
    seen: Seen,
    events: Option<EventLog>,
    next_seq: u64,
    merges: Vec<Merge>,
    blocks: HashSet<(Identifier, Identifier)>,
    scratch: Vec<u8>,
    touch_key: Vec<u8>,
    /// The last profile packed, kept so the next unpack reuses its string buffers.
    spare: Option<Profile>,
    /// Touchpoint inputs and their interned touchpoint, each in one of two places its
    /// hash picks; an entry never filled has the symbol `u32::MAX`.
    memo: Vec<(Vec<u8>, u32)>,
    memo_key: Vec<u8>,
    /// Which of its two places a new touchpoint input evicts, in turn.
    memo_turn: bool,
}

/// Entries of the touchpoint cache: a few kilobytes, whatever the graph's size.
const MEMO_ENTRIES: usize = 256;

/// What a [`MemStore`] holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// Identifiers linked to a profile.
    pub identifiers: usize,
    /// Profiles.
    pub profiles: usize,
    /// Merges logged.
    pub merges: usize,
    /// Remembered `(source, messageId)` pairs.
    pub messages: usize,
}

/// Approximate bytes a [`MemStore`] holds, by part ([`MemStore::footprint`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// The identifier index: interned values, table, links.
    pub identifiers: usize,
    /// Packed profile slots and interned touchpoints, trait names and geo.
    pub profiles: usize,
    /// Packed blobs of profiles with traits, an account or counters.
    pub packed: usize,
    /// The cache of unpacked profiles (their main strings included).
    pub unpacked: usize,
    /// Remembered message ids.
    pub messages: usize,
}

impl Default for MemStore {
    fn default() -> MemStore {
        MemStore::new()
    }
}

impl MemStore {
    /// An empty store that keeps every event (undo needs them).
    pub fn new() -> MemStore {
        MemStore {
            ids: ByteSet::default(),
            links: Chunked::default(),
            linked: 0,
            kinds: Vec::new(),
            slots: Chunked::default(),
            live: 0,
            blobs: Blobs::default(),
            syms: ByteSet::default(),
            geo: ByteSet::default(),
            geo_names: Vec::new(),
            hot: HashMap::default(),
            queue: VecDeque::new(),
            stamp: 0,
            hot_cap: DEFAULT_HOT,
            seen: Seen::default(),
            events: Some(HashMap::default()),
            next_seq: 0,
            merges: Vec::new(),
            blocks: HashSet::new(),
            scratch: Vec::new(),
            touch_key: Vec::new(),
            spare: None,
            memo: Vec::new(),
            memo_key: Vec::new(),
            memo_turn: false,
        }
    }

    /// An empty store that keeps no events: smaller, but [`undo`](super::undo) finds
    /// nothing to replay. The benchmark uses it: in the Durable Object, events live in
    /// SQLite, not in the graph's memory.
    pub fn without_events() -> MemStore {
        MemStore {
            events: None,
            ..MemStore::new()
        }
    }

    /// The same store keeping at most `hot` profiles unpacked (0 packs every profile as
    /// soon as it is saved, which tests use to exercise packing).
    pub fn with_hot_capacity(mut self, hot: usize) -> MemStore {
        self.hot_cap = hot;
        self
    }

    /// Every profile, by id.
    pub fn profiles(&self) -> impl Iterator<Item = Profile> + '_ {
        (1..=self.slots.len() as u32).filter_map(|p| self.read(p).ok().flatten())
    }

    /// How much it holds.
    pub fn counts(&self) -> MemoryUse {
        MemoryUse {
            identifiers: self.linked,
            profiles: self.live,
            merges: self.merges.len(),
            messages: self.seen.len(),
        }
    }

    /// Approximate bytes of memory held, by part, from the capacities of its tables (the
    /// benchmark measures the total exactly with a counting allocator).
    pub fn footprint(&self) -> Footprint {
        let hot_strings: usize = self
            .hot
            .values()
            .map(|(p, _)| {
                let touch = |t: &Option<Touchpoint>| {
                    t.as_ref().map_or(0, |t| {
                        let opt = [&t.source, &t.medium, &t.campaign, &t.click_id, &t.referrer];
                        t.channel.capacity()
                            + opt
                                .iter()
                                .chain([&&t.landing])
                                .map(|o| o.as_ref().map_or(0, String::capacity))
                                .sum::<usize>()
                    })
                };
                p.identifiers.capacity() * std::mem::size_of::<Held>()
                    + p.identifiers
                        .iter()
                        .map(|h| h.id.value.capacity())
                        .sum::<usize>()
                    + touch(&p.first_touch)
                    + touch(&p.last_touch)
            })
            .sum();
        Footprint {
            identifiers: self.ids.heap_bytes() + self.links.heap_bytes(),
            profiles: self.slots.heap_bytes()
                + self.syms.heap_bytes()
                + self.geo.heap_bytes()
                + self.geo_names.iter().map(|g| g.len() + 16).sum::<usize>()
                + self.memo.capacity() * std::mem::size_of::<(Vec<u8>, u32)>()
                + self.memo.iter().map(|(k, _)| k.capacity()).sum::<usize>(),
            packed: self.blobs.heap_bytes(),
            unpacked: self.hot.capacity() * (std::mem::size_of::<(u32, (Profile, u64))>() + 1)
                + self.queue.capacity() * 16
                + hot_strings,
            messages: self.seen.heap_bytes(),
        }
    }

    /// Forgets every remembered message id, as if the deduplication window had passed.
    pub fn clear_seen(&mut self) {
        self.seen = Seen::default();
    }

    /// The identifier's key bytes in `out`; `None` for a configured kind never linked.
    fn key(&self, id: &Identifier, out: &mut Vec<u8>) -> Option<()> {
        out.clear();
        let tag = self.tag(&id.kind)?;
        match pack_uuid(&id.value) {
            Some(packed) => {
                out.push(tag | PACKED_UUID);
                out.extend_from_slice(&packed);
            }
            None => {
                out.push(tag);
                out.extend_from_slice(id.value.as_bytes());
            }
        }
        Some(())
    }

    fn find(&self, id: &Identifier) -> Option<u32> {
        self.find_value(&id.kind, &id.value)
    }

    fn find_value(&self, kind: &IdKind, value: &str) -> Option<u32> {
        // Most values are short: build their key on the stack.
        let mut buf = [0u8; 64];
        let tag = self.tag(kind)?;
        let key: &[u8] = match pack_uuid(value) {
            Some(packed) => {
                buf[0] = tag | PACKED_UUID;
                buf[1..17].copy_from_slice(&packed);
                &buf[..17]
            }
            None if value.len() < buf.len() => {
                buf[0] = tag;
                buf[1..=value.len()].copy_from_slice(value.as_bytes());
                &buf[..=value.len()]
            }
            None => {
                let mut key = Vec::with_capacity(value.len() + 1);
                key.push(tag);
                key.extend_from_slice(value.as_bytes());
                return self.ids.find(&key);
            }
        };
        self.ids.find(key)
    }

    /// The tag byte of a kind; `None` for a configured kind never linked.
    #[inline]
    fn tag(&self, kind: &IdKind) -> Option<u8> {
        Some(match kind {
            IdKind::AnonymousId => 0,
            IdKind::UserId => 1,
            IdKind::Email => 2,
            IdKind::Other(name) => 3 + self.kinds.iter().position(|k| k == name)? as u8,
        })
    }

    fn identifier(&self, n: u32) -> Identifier {
        let mut id = Identifier::new(IdKind::AnonymousId, String::new());
        self.identifier_into(n, &mut id);
        id
    }

    /// Decodes identifier `n` into `id`, reusing its value's buffer.
    fn identifier_into(&self, n: u32, id: &mut Identifier) {
        let key = self.ids.get(n);
        let (tag, value) = key.split_first().map_or((0, &[][..]), |(t, v)| (*t, v));
        id.kind = match tag & !PACKED_UUID {
            0 => IdKind::AnonymousId,
            1 => IdKind::UserId,
            2 => IdKind::Email,
            k => IdKind::Other(
                self.kinds
                    .get(usize::from(k - 3))
                    .cloned()
                    .unwrap_or_default(),
            ),
        };
        id.value.clear();
        if tag & PACKED_UUID != 0 {
            push_uuid(&mut id.value, value);
        } else {
            id.value.push_str(&String::from_utf8_lossy(value));
        }
    }

    #[inline]
    fn slot(&self, p: u32) -> Option<&Slot> {
        self.slots.get((p as usize).checked_sub(1)?)
    }

    #[inline]
    fn slot_mut(&mut self, p: u32) -> Result<&mut Slot, StoreError> {
        let i = (p as usize).checked_sub(1);
        i.and_then(|i| self.slots.get_mut(i))
            .ok_or_else(|| StoreError::Corrupt(format!("no profile slot {p}")))
    }

    #[inline]
    fn link_mut(&mut self, n: u32) -> Result<&mut Link, StoreError> {
        self.links
            .get_mut(n as usize)
            .ok_or_else(|| StoreError::Corrupt(format!("identifier {n} has no link")))
    }

    /// The chain of a profile's identifiers.
    #[cfg(test)]
    fn chain(&self, p: u32) -> Vec<Held> {
        let mut out = Vec::new();
        self.chain_into(p, &mut out);
        out
    }

    /// The chain of a profile's identifiers into `out`, reusing its entries' buffers.
    fn chain_into(&self, p: u32, out: &mut Vec<Held>) {
        let mut count = 0;
        let mut next = self.slot(p).map_or(0, |s| s.head);
        while let Some(link) = next.checked_sub(1).and_then(|n| self.links.get(n as usize)) {
            match out.get_mut(count) {
                Some(held) => {
                    self.identifier_into(next - 1, &mut held.id);
                    held.first_seen = link.first_seen;
                }
                None => out.push(Held {
                    id: self.identifier(next - 1),
                    first_seen: link.first_seen,
                }),
            }
            count += 1;
            next = link.next;
        }
        out.truncate(count);
    }

    /// Takes identifier `n` out of profile `p`'s chain.
    fn detach(&mut self, n: u32, p: u32) -> Result<(), StoreError> {
        let after = self.link_mut(n)?.next;
        let head = self.slot_mut(p)?.head;
        if head == n + 1 {
            self.slot_mut(p)?.head = after;
        } else {
            let mut at = head;
            while let Some(i) = at.checked_sub(1) {
                let link = self.link_mut(i)?;
                if link.next == n + 1 {
                    link.next = after;
                    break;
                }
                at = link.next;
            }
        }
        self.link_mut(n)?.next = 0;
        if self.hot.contains_key(&p) {
            let id = self.identifier(n);
            if let Some((hot, _)) = self.hot.get_mut(&p) {
                hot.identifiers.retain(|h| h.id != id);
            }
        }
        Ok(())
    }

    /// Appends identifier `n` to profile `p`'s chain.
    fn attach(&mut self, n: u32, p: u32) -> Result<(), StoreError> {
        let head = self.slot_mut(p)?.head;
        if head == 0 {
            self.slot_mut(p)?.head = n + 1;
            return Ok(());
        }
        let mut at = head - 1;
        loop {
            let link = self.link_mut(at)?;
            match link.next {
                0 => {
                    link.next = n + 1;
                    return Ok(());
                }
                next => at = next - 1,
            }
        }
    }

    /// A profile, unpacked or from the cache, without changing anything.
    fn read(&self, p: u32) -> Result<Option<Profile>, StoreError> {
        if let Some((profile, _)) = self.hot.get(&p) {
            return Ok(Some(profile.clone()));
        }
        match self.slot(p) {
            Some(s) if s.flags & ALIVE != 0 && s.flags & OUT == 0 => self.unpack(p).map(Some),
            _ => Ok(None),
        }
    }

    fn unpack(&self, p: u32) -> Result<Profile, StoreError> {
        let mut profile = Profile::new(ProfileId::from(p), 0);
        self.unpack_into(p, &mut profile)?;
        Ok(profile)
    }

    /// Unpacks profile `p` into `profile`, overwriting every field and reusing the
    /// buffers of the strings it already holds (a recycled profile saves allocations).
    fn unpack_into(&self, p: u32, profile: &mut Profile) -> Result<(), StoreError> {
        let corrupt = || StoreError::Corrupt(format!("packed profile {p} is unreadable"));
        let s = *self.slot(p).ok_or_else(corrupt)?;
        profile.id = ProfileId::from(p);
        profile.created_at = s.first_seen;
        self.chain_into(p, &mut profile.identifiers);
        profile.traits.clear();
        profile.account = None;
        profile.first_seen = s.first_seen;
        profile.last_seen = s.last_seen;
        profile.events = u64::from(s.events);
        profile.bot = s.flags & BOT != 0;
        set_opt(&mut profile.country, self.geo_bytes(s.country));
        set_opt(&mut profile.device, self.geo_bytes(s.device));
        self.touch_into(&mut profile.first_touch, s.first_touch, s.first_seen)
            .map_err(|_| corrupt())?;
        let last_touch_at = s.last_seen - Millis::from(s.last_touch_age);
        self.touch_into(&mut profile.last_touch, s.last_touch, last_touch_at)
            .map_err(|_| corrupt())?;
        if profile.features != Features::default() {
            profile.features = Features::default();
        }

        let Some(blob) = self.blobs.get(p) else {
            return Ok(());
        };
        let mut r = Reader::new(blob);
        let bits = r.varint().ok_or_else(corrupt)?;
        if bits & X_CREATED != 0 {
            profile.created_at = s.first_seen + r.signed().ok_or_else(corrupt)?;
        }
        if bits & X_FIRST_TOUCH_AT != 0 {
            let at = s.first_seen + r.signed().ok_or_else(corrupt)?;
            if let Some(t) = &mut profile.first_touch {
                t.at = at;
            }
        }
        if bits & X_LAST_TOUCH_AT != 0 {
            let at = s.last_seen + r.signed().ok_or_else(corrupt)?;
            if let Some(t) = &mut profile.last_touch {
                t.at = at;
            }
        }
        let text = |r: &mut Reader<'_>| -> Result<String, StoreError> {
            let bytes = r.bytes().ok_or_else(corrupt)?;
            String::from_utf8(bytes.to_vec()).map_err(|_| corrupt())
        };
        if bits & X_ACCOUNT != 0 {
            profile.account = Some(text(&mut r)?);
        }
        if bits & X_FEATURES != 0 {
            let bytes = r.bytes().ok_or_else(corrupt)?;
            profile.features = serde_json::from_slice::<Features>(bytes).map_err(|_| corrupt())?;
        }
        if bits & X_EVENTS != 0 {
            profile.events = r.varint().ok_or_else(corrupt)?;
        }
        if bits & X_COUNTRY != 0 {
            profile.country = Some(text(&mut r)?);
        }
        if bits & X_DEVICE != 0 {
            profile.device = Some(text(&mut r)?);
        }
        if bits & X_TRAITS != 0 {
            let count = r.varint().ok_or_else(corrupt)?;
            for _ in 0..count {
                let name = r.varint().ok_or_else(corrupt)?;
                let name = self.syms.get(u32::try_from(name).map_err(|_| corrupt())?);
                let name = String::from_utf8(name.get(1..).unwrap_or_default().to_vec())
                    .map_err(|_| corrupt())?;
                let at = s.first_seen + r.signed().ok_or_else(corrupt)?;
                let value = match r.byte().ok_or_else(corrupt)? {
                    0 => Value::String(text(&mut r)?),
                    2 => {
                        let n = u32::try_from(r.varint().ok_or_else(corrupt)?)
                            .map_err(|_| corrupt())?;
                        if n as usize >= self.ids.len() {
                            return Err(corrupt());
                        }
                        Value::String(self.identifier(n).value)
                    }
                    _ => serde_json::from_slice(r.bytes().ok_or_else(corrupt)?)
                        .map_err(|_| corrupt())?,
                };
                profile.traits.insert(name, Trait { value, at });
            }
        }
        Ok(())
    }

    /// Packs a profile into its slot and blob.
    fn pack(&mut self, profile: Profile) -> Result<(), StoreError> {
        let p = profile_index(profile.id)?;
        let mut bits = 0;
        let mut blob = std::mem::take(&mut self.scratch);
        blob.clear();
        let first_seen = profile.first_seen;
        let was = self.slot(p).copied().unwrap_or_default();

        if profile.created_at != first_seen {
            bits |= X_CREATED;
            put_signed(&mut blob, profile.created_at - first_seen);
        }
        let first_touch = match &profile.first_touch {
            Some(t) => {
                if t.at != first_seen {
                    bits |= X_FIRST_TOUCH_AT;
                    put_signed(&mut blob, t.at - first_seen);
                }
                self.intern_touch(t, was.first_touch)?
            }
            None => 0,
        };
        let (last_touch, last_touch_age) = match &profile.last_touch {
            Some(t) => {
                let age = profile
                    .last_seen
                    .checked_sub(t.at)
                    .and_then(|a| u32::try_from(a).ok());
                match age.filter(|&a| a != u32::MAX) {
                    Some(age) => (self.intern_touch(t, was.last_touch)?, age),
                    None => {
                        bits |= X_LAST_TOUCH_AT;
                        put_signed(&mut blob, t.at - profile.last_seen);
                        (self.intern_touch(t, was.last_touch)?, u32::MAX)
                    }
                }
            }
            None => (0, 0),
        };
        if let Some(account) = &profile.account {
            bits |= X_ACCOUNT;
            put_bytes(&mut blob, account.as_bytes());
        }
        if profile.features != Features::default() {
            bits |= X_FEATURES;
            let json = serde_json::to_vec(&profile.features)
                .map_err(|e| StoreError::Backend(format!("features not serialisable: {e}")))?;
            put_bytes(&mut blob, &json);
        }
        let events = match u32::try_from(profile.events) {
            Ok(n) => n,
            Err(_) => {
                bits |= X_EVENTS;
                put_varint(&mut blob, profile.events);
                0
            }
        };
        let country = self.intern_geo(profile.country.as_deref(), was.country)?;
        if let (0, Some(c)) = (country, &profile.country) {
            bits |= X_COUNTRY;
            put_bytes(&mut blob, c.as_bytes());
        }
        let device = self.intern_geo(profile.device.as_deref(), was.device)?;
        if let (0, Some(d)) = (device, &profile.device) {
            bits |= X_DEVICE;
            put_bytes(&mut blob, d.as_bytes());
        }
        if !profile.traits.is_empty() {
            bits |= X_TRAITS;
            put_varint(&mut blob, profile.traits.len() as u64);
            let mut name_key = Vec::new();
            for (name, t) in &profile.traits {
                name_key.clear();
                name_key.push(b'N');
                name_key.extend_from_slice(name.as_bytes());
                let (sym, _) = self.syms.insert(&name_key).map_err(too_long)?;
                put_varint(&mut blob, u64::from(sym));
                // Relative to first_seen, which events in time order leave alone.
                put_signed(&mut blob, t.at - first_seen);
                // A trait that repeats one of the profile's identifiers (the email, most
                // often) points at the interned identifier instead of a second copy.
                let same_as_id = match &t.value {
                    Value::String(s) => profile
                        .identifiers
                        .iter()
                        .find(|h| h.id.value == *s)
                        .and_then(|h| self.find(&h.id)),
                    _ => None,
                };
                match (&t.value, same_as_id) {
                    (Value::String(_), Some(n)) => {
                        blob.push(2);
                        put_varint(&mut blob, u64::from(n));
                    }
                    (Value::String(s), None) => {
                        blob.push(0);
                        put_bytes(&mut blob, s.as_bytes());
                    }
                    (other, _) => {
                        blob.push(1);
                        let json = serde_json::to_vec(other).map_err(|e| {
                            StoreError::Backend(format!("trait {name} not serialisable: {e}"))
                        })?;
                        put_bytes(&mut blob, &json);
                    }
                }
            }
        }

        if bits == 0 {
            self.blobs.remove(p);
        } else {
            let mut packed = Vec::with_capacity(blob.len() + 2);
            put_varint(&mut packed, bits);
            packed.extend_from_slice(&blob);
            self.blobs.insert(p, packed.into_boxed_slice());
        }
        self.scratch = blob;

        let slot = self.slot_mut(p)?;
        let flags = (slot.flags & !(BOT | HOT | OUT | BLOB))
            | ALIVE
            | if profile.bot { BOT } else { 0 }
            | if bits == 0 { 0 } else { BLOB };
        *slot = Slot {
            first_seen,
            last_seen: profile.last_seen,
            last_touch_age,
            events,
            head: slot.head,
            first_touch,
            last_touch,
            country,
            device,
            flags,
        };
        self.spare = Some(profile);
        Ok(())
    }

    /// The symbol of a touchpoint (without its time), plus one; `was` is the symbol the
    /// profile held before, checked first so an unchanged touch costs no hashing.
    fn intern_touch(&mut self, t: &Touchpoint, was: u32) -> Result<u32, StoreError> {
        let mut key = std::mem::take(&mut self.touch_key);
        key.clear();
        key.push(b'T');
        put_bytes(&mut key, t.channel.as_bytes());
        for field in [
            &t.source,
            &t.medium,
            &t.campaign,
            &t.click_id,
            &t.referrer,
            &t.landing,
        ] {
            match field {
                Some(text) => {
                    key.push(1);
                    put_bytes(&mut key, text.as_bytes());
                }
                None => key.push(0),
            }
        }
        let sym = match was.checked_sub(1) {
            Some(old) if self.syms.get(old) == key.as_slice() => Ok(was),
            _ => self
                .syms
                .insert(&key)
                .map(|(sym, _)| sym + 1)
                .map_err(too_long),
        };
        self.touch_key = key;
        sym
    }

    /// The interned touchpoint of `event` (plus one; 0: none), found in a small cache keyed
    /// by everything the touchpoint is made of, so that repeated pages and referrers are
    /// parsed and classified once; `hint` is the symbol to check first on a miss.
    fn touch_sym(&mut self, event: &Event, hint: u32) -> Result<u32, StoreError> {
        let mut key = std::mem::take(&mut self.memo_key);
        key.clear();
        if !touch::write_inputs(event, &mut key) {
            self.memo_key = key;
            return Ok(0);
        }
        if self.memo.is_empty() {
            self.memo = vec![(Vec::new(), u32::MAX); MEMO_ENTRIES];
        }
        // Each input has two places, so that two inputs sharing one do not evict each
        // other over and over.
        let hash = hash_bytes(&key);
        let places = [hash, hash >> 32].map(|h| (h % MEMO_ENTRIES as u64) as usize);
        let hit = places.iter().find_map(|&at| match self.memo.get(at) {
            Some((held, sym)) if *sym != u32::MAX && *held == key => Some(*sym),
            _ => None,
        });
        if let Some(sym) = hit {
            self.memo_key = key;
            return Ok(sym);
        }
        let sym = match touch::from_event(event) {
            Some(t) => self.intern_touch(&t, hint),
            None => Ok(0),
        };
        if let Ok(sym) = sym {
            let empty = places
                .iter()
                .find(|&&at| self.memo.get(at).is_some_and(|e| e.1 == u32::MAX));
            self.memo_turn = !self.memo_turn;
            let at = empty
                .copied()
                .unwrap_or(places[usize::from(self.memo_turn)]);
            if let Some(entry) = self.memo.get_mut(at) {
                entry.0.clear();
                entry.0.extend_from_slice(&key);
                entry.1 = sym;
            }
        }
        self.memo_key = key;
        sym
    }

    /// Decodes touchpoint symbol `sym` (plus one; 0: none) at `at` into `slot`, reusing
    /// its strings' buffers.
    fn touch_into(&self, slot: &mut Option<Touchpoint>, sym: u32, at: Millis) -> Result<(), ()> {
        let Some(sym) = sym.checked_sub(1) else {
            *slot = None;
            return Ok(());
        };
        let key = self.syms.get(sym);
        let mut r = Reader::new(key.get(1..).ok_or(())?);
        let t = slot.get_or_insert_with(Touchpoint::default);
        t.at = at;
        set_text(&mut t.channel, r.bytes().ok_or(())?);
        for field in [
            &mut t.source,
            &mut t.medium,
            &mut t.campaign,
            &mut t.click_id,
            &mut t.referrer,
            &mut t.landing,
        ] {
            let bytes = match r.byte().ok_or(())? {
                1 => Some(r.bytes().ok_or(())?),
                _ => None,
            };
            set_opt(field, bytes);
        }
        Ok(())
    }

    fn intern_geo(&mut self, text: Option<&str>, was: u8) -> Result<u8, StoreError> {
        let Some(text) = text else {
            return Ok(0);
        };
        if was != 0 && self.geo_bytes(was) == Some(text.as_bytes()) {
            return Ok(was);
        }
        let n = match self.geo.find(text.as_bytes()) {
            Some(n) => n,
            // Past 254 distinct countries and devices, further ones go to the blob.
            None if self.geo.len() >= usize::from(u8::MAX) - 1 => return Ok(0),
            None => {
                let (n, _) = self.geo.insert(text.as_bytes()).map_err(too_long)?;
                self.geo_names.push(text.as_bytes().into());
                n
            }
        };
        Ok(u8::try_from(n + 1).unwrap_or(0))
    }

    #[inline]
    fn geo_bytes(&self, n: u8) -> Option<&[u8]> {
        let n = n.checked_sub(1)?;
        self.geo_names.get(usize::from(n)).map(|g| &g[..])
    }

    /// Packs the least recently saved profiles until the cache is within its capacity.
    fn evict(&mut self) -> Result<(), StoreError> {
        while self.hot.len() > self.hot_cap {
            let Some((p, stamp)) = self.queue.pop_front() else {
                break;
            };
            if self.hot.get(&p).is_some_and(|(_, s)| *s == stamp) {
                if let Some((profile, _)) = self.hot.remove(&p) {
                    self.pack(profile)?;
                }
            }
        }
        if self.queue.len() > 4 * self.hot_cap.max(16) {
            let hot = &self.hot;
            self.queue
                .retain(|(p, stamp)| hot.get(p).is_some_and(|(_, s)| s == stamp));
        }
        Ok(())
    }

    fn log(&mut self, id: MergeId) -> Option<&mut Merge> {
        self.merges
            .get_mut(usize::try_from(id.checked_sub(1)?).ok()?)
    }
}

/// Overwrites `dst` with `bytes` (UTF-8 by construction), keeping its buffer.
fn set_text(dst: &mut String, bytes: &[u8]) {
    dst.clear();
    dst.push_str(&String::from_utf8_lossy(bytes));
}

/// Overwrites an optional string, keeping its buffer when it has one.
fn set_opt(dst: &mut Option<String>, bytes: Option<&[u8]>) {
    match (dst.as_mut(), bytes) {
        (_, None) => *dst = None,
        (Some(text), Some(bytes)) => set_text(text, bytes),
        (None, Some(bytes)) => *dst = Some(String::from_utf8_lossy(bytes).into_owned()),
    }
}

#[inline]
fn profile_index(id: ProfileId) -> Result<u32, StoreError> {
    u32::try_from(id).map_err(|_| StoreError::Backend(format!("profile id {id} exceeds u32")))
}

fn too_long(e: super::table::TooLong) -> StoreError {
    StoreError::Backend(format!(
        "key of {} bytes not stored (over 65535 bytes, or 4 GiB or 33 million keys held)",
        e.0
    ))
}

/// The 16 bytes of a canonical lowercase UUID text, if `value` is one.
pub(crate) fn pack_uuid(value: &str) -> Option<[u8; 16]> {
    let b: &[u8; 36] = value.as_bytes().try_into().ok()?;
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let word = |at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&b[at..at + 4]);
        u64::from(u32::from_le_bytes(w))
    };
    // The 32 digits as four words of eight, read without their dashes.
    let words = [
        word(0) | word(4) << 32,
        word(9) | word(14) << 32,
        word(19) | word(24) << 32,
        word(28) | word(32) << 32,
    ];
    let (a, bad_a) = hex_word(words[0]);
    let (b, bad_b) = hex_word(words[1]);
    let (c, bad_c) = hex_word(words[2]);
    let (d, bad_d) = hex_word(words[3]);
    let packed = u128::from(a) | u128::from(b) << 32 | u128::from(c) << 64 | u128::from(d) << 96;
    (bad_a | bad_b | bad_c | bad_d == 0).then(|| packed.to_le_bytes())
}

/// The four bytes written as eight lowercase hex digits in `w` (first digit in the low
/// byte), and a mask that is not 0 when any byte is not a lowercase hex digit. Works on
/// all eight bytes at once; no per-byte sum below reaches 0x100, so none carries.
#[inline(always)]
fn hex_word(w: u64) -> (u32, u64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // A digit's value if the byte is one: its low four bits, plus 9 for a letter (bit 6).
    let nibbles = (w & (ONES * 0x0f)) + ((w >> 6) & ONES) * 9;
    // Written back as lowercase hex, only a lowercase hex digit reads the same; letters
    // past `f` give values past 15, which are refused on their own.
    let over_9 = ((nibbles + ONES * 0x76) >> 7) & ONES;
    let over_15 = (nibbles + ONES * 0x70) & (ONES * 0x80);
    let back = nibbles + ONES * 0x30 + over_9 * 0x27;
    let not_hex = (back ^ w) | over_15;
    // Each 16-bit lane: its first digit's nibble above its second's.
    let lanes = ((nibbles & 0x00ff_00ff_00ff_00ff) << 4) | ((nibbles >> 8) & 0x00ff_00ff_00ff_00ff);
    let pairs = (lanes | (lanes >> 8)) & 0x0000_ffff_0000_ffff;
    (((pairs | (pairs >> 16)) & 0xffff_ffff) as u32, not_hex)
}

#[cfg(test)]
fn unpack_uuid(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(36);
    push_uuid(&mut out, bytes);
    out
}

/// Appends the UUID text of 16 packed bytes.
fn push_uuid(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

fn ordered(a: &Identifier, b: &Identifier) -> (Identifier, Identifier) {
    if a <= b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}

impl Store for MemStore {
    fn profile_of(&self, id: &Identifier) -> Result<Option<ProfileId>, StoreError> {
        self.profile_of_value(&id.kind, &id.value)
    }

    fn profile_of_value(
        &self,
        kind: &IdKind,
        value: &str,
    ) -> Result<Option<ProfileId>, StoreError> {
        let link = self
            .find_value(kind, value)
            .and_then(|n| self.links.get(n as usize));
        Ok(link.and_then(|l| (l.profile != 0).then_some(ProfileId::from(l.profile))))
    }

    fn load(&self, profile: ProfileId) -> Result<Option<Profile>, StoreError> {
        match u32::try_from(profile) {
            Ok(p) => self.read(p),
            Err(_) => Ok(None),
        }
    }

    fn take(&mut self, profile: ProfileId) -> Result<Option<Profile>, StoreError> {
        let Ok(p) = u32::try_from(profile) else {
            return Ok(None);
        };
        if let Some((profile, _)) = self.hot.remove(&p) {
            self.slot_mut(p)?.flags |= OUT;
            return Ok(Some(profile));
        }
        match self.slot(p) {
            Some(s) if s.flags & ALIVE != 0 && s.flags & OUT == 0 => {
                let mut profile = match self.spare.take() {
                    Some(spare) => spare,
                    None => Profile::new(ProfileId::from(p), 0),
                };
                self.unpack_into(p, &mut profile)?;
                self.blobs.remove(p);
                self.slot_mut(p)?.flags |= OUT;
                Ok(Some(profile))
            }
            _ => Ok(None),
        }
    }

    fn save(&mut self, profile: Profile) -> Result<(), StoreError> {
        let p = profile_index(profile.id)?;
        let slot = self.slot_mut(p)?;
        if slot.flags & ALIVE == 0 {
            slot.flags |= ALIVE;
            self.live += 1;
        }
        if self.hot_cap == 0 {
            return self.pack(profile);
        }
        let slot = self.slot_mut(p)?;
        slot.flags = (slot.flags | HOT) & !OUT;
        self.stamp += 1;
        self.hot.insert(p, (profile, self.stamp));
        self.queue.push_back((p, self.stamp));
        self.evict()
    }

    fn delete(&mut self, profile: ProfileId) -> Result<(), StoreError> {
        let p = profile_index(profile)?;
        self.hot.remove(&p);
        self.blobs.remove(p);
        let slot = self.slot_mut(p)?;
        let was_alive = slot.flags & ALIVE != 0;
        *slot = Slot {
            head: slot.head,
            ..Slot::default()
        };
        if was_alive {
            self.live -= 1;
        }
        Ok(())
    }

    fn link(&mut self, held: &Held, profile: ProfileId) -> Result<(), StoreError> {
        let p = profile_index(profile)?;
        if let IdKind::Other(name) = &held.id.kind {
            if !self.kinds.contains(name) {
                if self.kinds.len() >= 124 {
                    return Err(StoreError::Backend("more than 124 identifier kinds".into()));
                }
                self.kinds.push(name.clone());
            }
        }
        let mut key = std::mem::take(&mut self.scratch);
        self.key(&held.id, &mut key);
        let inserted = self.ids.insert(&key).map_err(too_long);
        self.scratch = key;
        let (n, new) = inserted?;
        if new {
            self.links.push(Link {
                profile: 0,
                next: 0,
                first_seen: held.first_seen,
            });
        }
        let old = self.link_mut(n)?.profile;
        if old == p {
            return Ok(());
        }
        if old == 0 {
            self.linked += 1;
        } else {
            self.detach(n, old)?;
        }
        let link = self.link_mut(n)?;
        link.profile = p;
        link.first_seen = held.first_seen;
        self.attach(n, p)?;
        if let Some((hot, _)) = self.hot.get_mut(&p) {
            if !hot.holds(&held.id) {
                hot.identifiers.push(held.clone());
            }
        }
        Ok(())
    }

    fn unlink(&mut self, id: &Identifier) -> Result<(), StoreError> {
        let Some(n) = self.find(id) else {
            return Ok(());
        };
        let old = self.link_mut(n)?.profile;
        if old != 0 {
            self.detach(n, old)?;
            self.link_mut(n)?.profile = 0;
            self.linked -= 1;
        }
        Ok(())
    }

    fn next_profile_id(&mut self) -> Result<ProfileId, StoreError> {
        self.slots.push(Slot::default());
        let id = self.slots.len() as ProfileId;
        profile_index(id)?;
        Ok(id)
    }

    fn remember(
        &mut self,
        source: &str,
        message_id: &str,
        _at: Millis,
    ) -> Result<bool, StoreError> {
        self.seen.insert(source, message_id).map_err(too_long)
    }

    fn append_event(&mut self, profile: ProfileId, event: &Event) -> Result<(), StoreError> {
        let p = profile_index(profile)?;
        if let Some(events) = &mut self.events {
            self.next_seq += 1;
            events
                .entry(p)
                .or_default()
                .push((self.next_seq, event.clone()));
        }
        Ok(())
    }

    fn events_of(&self, profile: ProfileId) -> Result<Vec<Event>, StoreError> {
        let p = profile_index(profile)?;
        let list = self.events.as_ref().and_then(|e| e.get(&p));
        Ok(list
            .map(|l| l.iter().map(|(_, e)| e.clone()).collect())
            .unwrap_or_default())
    }

    fn move_events(&mut self, from: ProfileId, into: ProfileId) -> Result<(), StoreError> {
        let (from, into) = (profile_index(from)?, profile_index(into)?);
        if let Some(events) = &mut self.events {
            if let Some(moved) = events.remove(&from) {
                let list = events.entry(into).or_default();
                list.extend(moved);
                list.sort_by_key(|(seq, _)| *seq);
            }
        }
        Ok(())
    }

    fn drop_events(&mut self, profile: ProfileId) -> Result<(), StoreError> {
        let p = profile_index(profile)?;
        if let Some(events) = &mut self.events {
            events.remove(&p);
        }
        Ok(())
    }

    fn record_merge(&mut self, mut merge: Merge) -> Result<MergeId, StoreError> {
        merge.id = self.merges.len() as MergeId + 1;
        let id = merge.id;
        self.merges.push(merge);
        Ok(id)
    }

    fn merge(&self, id: MergeId) -> Result<Option<Merge>, StoreError> {
        let i = id.checked_sub(1).and_then(|i| usize::try_from(i).ok());
        Ok(i.and_then(|i| self.merges.get(i)).cloned())
    }

    fn merges_of(&self, profile: ProfileId) -> Result<Vec<Merge>, StoreError> {
        let of = |m: &&Merge| m.from == profile || m.into == profile;
        Ok(self.merges.iter().filter(of).cloned().collect())
    }

    fn mark_undone(&mut self, id: MergeId, at: Millis) -> Result<(), StoreError> {
        if let Some(m) = self.log(id) {
            m.undone = Some(at);
        }
        Ok(())
    }

    fn block(&mut self, a: &Identifier, b: &Identifier) -> Result<(), StoreError> {
        self.blocks.insert(ordered(a, b));
        Ok(())
    }

    fn is_blocked(&self, a: &Identifier, b: &Identifier) -> Result<bool, StoreError> {
        Ok(self.blocks.contains(&ordered(a, b)))
    }

    fn has_blocks(&self) -> Result<bool, StoreError> {
        Ok(!self.blocks.is_empty())
    }

    /// Creates the profile of an event that sets no trait, account or counter straight
    /// into a slot: nothing is built or packed. With a cache of unpacked profiles, or a
    /// geo value past the interned ones, the event goes the long way.
    fn create_in_place(
        &mut self,
        held: &Held,
        event: &Event,
        spec: &FeatureSpec,
    ) -> Result<Option<ProfileId>, StoreError> {
        if self.hot_cap != 0 || !changes_only_the_slot(event, spec) {
            return Ok(None);
        }
        let touch = self.touch_sym(event, 0)?;
        let mut geo = [0u8; 2];
        for (n, value) in geo
            .iter_mut()
            .zip([&event.weft.country, &event.weft.device])
        {
            if let Some(value) = value {
                *n = self.intern_geo(Some(value), 0)?;
                if *n == 0 {
                    return Ok(None);
                }
            }
        }

        let id = self.next_profile_id()?;
        self.link(held, id)?;
        let at = event.timestamp;
        let slot = self.slot_mut(profile_index(id)?)?;
        *slot = Slot {
            first_seen: at,
            last_seen: at,
            last_touch_age: 0,
            events: 1,
            head: slot.head,
            first_touch: touch,
            last_touch: touch,
            country: geo[0],
            device: geo[1],
            flags: ALIVE | if event.weft.bot { BOT } else { 0 },
        };
        self.live += 1;
        Ok(Some(id))
    }

    /// Updates a stored profile for an event that sets no trait, account or counter:
    /// times, count, bot flag, touches and geo change in the slot, and a blob, if any,
    /// has its times rewritten in place; nothing is unpacked. A profile cached or taken,
    /// a blob holding a count or geo of its own, or a geo value past the interned ones
    /// sends the event the long way, unchanged.
    fn observe_in_place(
        &mut self,
        profile: ProfileId,
        event: &Event,
        spec: &FeatureSpec,
    ) -> Result<bool, StoreError> {
        let Ok(p) = u32::try_from(profile) else {
            return Ok(false);
        };
        let Some(&was) = self.slot(p) else {
            return Ok(false);
        };
        if was.flags & (ALIVE | HOT | OUT) != ALIVE || was.events == 0 {
            return Ok(false);
        }
        if !changes_only_the_slot(event, spec) {
            return Ok(false);
        }
        let head = if was.flags & BLOB == 0 {
            BlobHead::default()
        } else {
            match self.blobs.get(p).and_then(|b| BlobHead::parse(b, &was)) {
                Some(head) => head,
                None => return Ok(false),
            }
        };

        let at = event.timestamp;
        let mut next = was;
        next.first_seen = was.first_seen.min(at);
        next.last_seen = was.last_seen.max(at);
        let Some(events) = was.events.checked_add(1) else {
            return Ok(false);
        };
        next.events = events;
        if !event.weft.bot {
            next.flags &= !BOT;
        }
        let created = head.created.unwrap_or(was.first_seen).min(at);
        let mut first_at = head.first_touch_at.unwrap_or(was.first_seen);
        let mut last_at = head
            .last_touch_at
            .unwrap_or(was.last_seen - Millis::from(was.last_touch_age));
        let touch = self.touch_sym(event, was.last_touch)?;
        if touch != 0 {
            // A touchpoint's time is its event's.
            let is_first = was.first_touch == 0 || at < first_at;
            let is_last = was.last_touch == 0 || at >= last_at;
            if is_first {
                next.first_touch = touch;
                first_at = at;
            }
            if is_last {
                next.last_touch = touch;
                last_at = at;
            }
        }

        let latest = at >= was.last_seen;
        for (geo, value) in [
            (&mut next.country, &event.weft.country),
            (&mut next.device, &event.weft.device),
        ] {
            if let Some(value) = value {
                if latest || *geo == 0 {
                    let n = self.intern_geo(Some(value), *geo)?;
                    if n == 0 {
                        return Ok(false);
                    }
                    *geo = n;
                }
            }
        }

        // The blob, rewritten in the order pack writes it.
        let mut bits = 0;
        let mut body = std::mem::take(&mut self.scratch);
        body.clear();
        if created != next.first_seen {
            bits |= X_CREATED;
            put_signed(&mut body, created - next.first_seen);
        }
        if next.first_touch != 0 && first_at != next.first_seen {
            bits |= X_FIRST_TOUCH_AT;
            put_signed(&mut body, first_at - next.first_seen);
        }
        next.last_touch_age = 0;
        if next.last_touch != 0 {
            let age = next.last_seen.checked_sub(last_at);
            match age
                .and_then(|a| u32::try_from(a).ok())
                .filter(|&a| a != u32::MAX)
            {
                Some(age) => next.last_touch_age = age,
                None => {
                    bits |= X_LAST_TOUCH_AT;
                    put_signed(&mut body, last_at - next.last_seen);
                    next.last_touch_age = u32::MAX;
                }
            }
        }
        let old = match was.flags & BLOB {
            0 => &[][..],
            _ => self.blobs.get(p).unwrap_or_default(),
        };
        bits |= head.bits & (X_ACCOUNT | X_FEATURES | X_TRAITS);
        let shift = was.first_seen - next.first_seen;
        // Events in time order mostly leave the blob's times, and so the blob, as it was.
        let unchanged =
            shift == 0 && bits == head.bits && old.get(head.times.clone()) == Some(&body[..]);
        if !unchanged {
            let shifted = old.get(head.kept.clone()).is_some_and(|kept| {
                body.extend_from_slice(kept);
                let traits = old.get(head.kept.end..).unwrap_or_default();
                if head.bits & X_TRAITS == 0 {
                    true
                } else if shift == 0 {
                    body.extend_from_slice(traits);
                    true
                } else {
                    shift_traits(traits, &mut body, shift).is_some()
                }
            });
            if !shifted {
                self.scratch = body;
                return Ok(false);
            }
            if bits == 0 {
                if was.flags & BLOB != 0 {
                    self.blobs.remove(p);
                }
                next.flags &= !BLOB;
            } else {
                let mut packed = Vec::with_capacity(body.len() + 2);
                put_varint(&mut packed, bits);
                packed.extend_from_slice(&body);
                self.blobs.replace(p, &packed);
                next.flags |= BLOB;
            }
        }
        self.scratch = body;
        *self.slot_mut(p)? = next;
        Ok(true)
    }
}

/// Whether `event` sets no trait, account or counter: what it changes in a profile fits
/// the profile's slot.
fn changes_only_the_slot(event: &Event, spec: &FeatureSpec) -> bool {
    if matches!(event.kind, EventKind::Identify | EventKind::Group)
        || event.context.contains_key("traits")
    {
        return false;
    }
    let mut counted = false;
    if !spec.is_empty() {
        spec.each_match(event, |_| counted = true);
    }
    !counted
}

/// The head of a packed blob: the times an in-place update recomputes (absolute), and
/// the account and features it copies unchanged, after which the traits begin.
#[derive(Debug, Default)]
struct BlobHead {
    bits: u64,
    created: Option<Millis>,
    first_touch_at: Option<Millis>,
    last_touch_at: Option<Millis>,
    kept: std::ops::Range<usize>,
    /// Where the times are: after the bits, before the kept part.
    times: std::ops::Range<usize>,
}

impl BlobHead {
    /// The head of `blob`, the blob of the profile in slot `s`; `None` when the blob holds
    /// a count, country or device of its own, which only the long way rewrites.
    fn parse(blob: &[u8], s: &Slot) -> Option<BlobHead> {
        let mut r = Reader::new(blob);
        let bits = r.varint()?;
        let times_start = blob.len() - r.remaining();
        let known = X_CREATED | X_FIRST_TOUCH_AT | X_LAST_TOUCH_AT | X_ACCOUNT | X_FEATURES;
        if bits & !(known | X_TRAITS) != 0 {
            return None;
        }
        let mut at = |bit: u64, base: Millis| -> Option<Option<Millis>> {
            Some(match bits & bit {
                0 => None,
                _ => Some(base + r.signed()?),
            })
        };
        let created = at(X_CREATED, s.first_seen)?;
        let first_touch_at = at(X_FIRST_TOUCH_AT, s.first_seen)?;
        let last_touch_at = at(X_LAST_TOUCH_AT, s.last_seen)?;
        let start = blob.len() - r.remaining();
        if bits & X_ACCOUNT != 0 {
            r.bytes()?;
        }
        if bits & X_FEATURES != 0 {
            r.bytes()?;
        }
        let end = blob.len() - r.remaining();
        Some(BlobHead {
            bits,
            created,
            first_touch_at,
            last_touch_at,
            kept: start..end,
            times: times_start..start,
        })
    }
}

/// Copies a packed traits section into `out` with every trait's time, kept relative to
/// `first_seen`, moved by `shift`; `None` when the section is unreadable.
fn shift_traits(traits: &[u8], out: &mut Vec<u8>, shift: Millis) -> Option<()> {
    let mut r = Reader::new(traits);
    let count = r.varint()?;
    put_varint(out, count);
    for _ in 0..count {
        put_varint(out, r.varint()?);
        put_signed(out, r.signed()?.checked_add(shift)?);
        let tag = r.byte()?;
        out.push(tag);
        match tag {
            2 => put_varint(out, r.varint()?),
            _ => put_bytes(out, r.bytes()?),
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::EventKind;
    use crate::segment::FeatureSpec;

    fn held(text: &str, at: Millis) -> Held {
        Held {
            id: Identifier::parse(text).unwrap(),
            first_seen: at,
        }
    }

    fn rich_profile(store: &mut MemStore) -> Profile {
        let id = store.next_profile_id().unwrap();
        let mut p = Profile::new(id, 1_000);
        let mut e = Event::new(EventKind::Page, "m-1", 1_000);
        e.context.insert(
            "page".into(),
            json!({"path": "/a", "referrer": "https://x.io/"}),
        );
        e.context
            .insert("campaign".into(), json!({"source": "g", "medium": "cpc"}));
        e.weft.country = Some("FR".into());
        e.weft.device = Some("mobile".into());
        p.observe(&e, &FeatureSpec::default());
        let mut i = Event::new(EventKind::Identify, "m-2", 5_000);
        i.traits.insert("plan".into(), json!("pro"));
        i.traits.insert("login".into(), json!("u-1"));
        i.traits.insert("seats".into(), json!({"n": 3, "ok": true}));
        p.observe(&i, &FeatureSpec::default());
        let mut g = Event::new(EventKind::Group, "m-3", 900);
        g.group_id = Some("acme".into());
        p.observe(&g, &FeatureSpec::default());
        for h in [
            held("anonymous_id:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", 1_000),
            held("user_id:u-1", 5_000),
            held("phone:+336", 5_000),
        ] {
            store.link(&h, id).unwrap();
            p.identifiers.push(h);
        }
        p
    }

    #[test]
    fn packed_slot_is_forty_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 40);
    }

    #[test]
    fn last_touch_long_before_last_seen_reads_back_exactly() {
        let mut store = MemStore::new();
        let mut p = rich_profile(&mut store);
        p.last_seen = 60 * crate::time::DAY;
        p.created_at = -5;
        store.save(p.clone()).unwrap();
        assert_eq!(store.load(p.id).unwrap(), Some(p));
    }

    #[test]
    fn unpacking_into_a_recycled_profile_leaves_nothing_of_it_behind() {
        let mut store = MemStore::new();
        let rich = rich_profile(&mut store);
        let plain_id = store.next_profile_id().unwrap();
        let mut plain = Profile::new(plain_id, 7);
        let h = held("anonymous_id:plain", 7);
        store.link(&h, plain_id).unwrap();
        plain.identifiers.push(h);
        plain.events = 1;
        plain.bot = false;

        store.save(rich.clone()).unwrap();
        store.save(plain.clone()).unwrap();
        assert_eq!(
            store.take(rich.id).unwrap(),
            Some(rich.clone()),
            "built in plain's buffers"
        );
        store.save(rich.clone()).unwrap();
        assert_eq!(
            store.take(plain_id).unwrap(),
            Some(plain),
            "built in rich's buffers"
        );
    }

    #[test]
    fn packed_profile_reads_back_equal() {
        let mut store = MemStore::new().with_hot_capacity(0);
        let p = rich_profile(&mut store);
        store.save(p.clone()).unwrap();
        assert!(store.hot.is_empty(), "capacity 0 packs at once");
        assert_eq!(store.load(p.id).unwrap(), Some(p.clone()));
        assert_eq!(store.take(p.id).unwrap(), Some(p.clone()));
        assert_eq!(store.load(p.id).unwrap(), None, "taken");
        store.save(p.clone()).unwrap();
        assert_eq!(store.profiles().collect::<Vec<_>>(), vec![p]);
    }

    #[test]
    fn uuid_values_are_packed_losslessly_and_others_kept_as_sent() {
        let cases = [
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0",
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f",
            "0f1e2d3c_4b5a-6978-8796-a5b4c3d2e1f0",
        ];
        let mut store = MemStore::new();
        let p = store.next_profile_id().unwrap();
        for (i, value) in cases.iter().enumerate() {
            let h = Held {
                id: Identifier::new(IdKind::AnonymousId, *value),
                first_seen: 0,
            };
            store.link(&h, p).unwrap();
            let n = store.find(&h.id).unwrap();
            assert_eq!(store.identifier(n), h.id, "{value}");
            assert_eq!(store.ids.get(n)[0] & PACKED_UUID != 0, i == 0, "{value}");
        }
        assert_eq!(
            pack_uuid(cases[0]).map(|b| unpack_uuid(&b)).as_deref(),
            Some(cases[0])
        );
    }

    #[test]
    fn uuid_packing_refuses_any_digit_that_is_not_lowercase_hex() {
        let good = "0123abcd-4567-89ef-fedc-ba9876543210";
        assert_eq!(
            pack_uuid(good).map(|b| unpack_uuid(&b)).as_deref(),
            Some(good)
        );
        let digits = (0..36).filter(|i| ![8, 13, 18, 23].contains(i));
        for at in digits {
            for bad in [
                '/', ':', '`', 'g', 'o', 'p', 'z', 'A', 'F', 'O', '@', '\u{7f}', 'é',
            ] {
                let mut text: Vec<char> = good.chars().collect();
                text[at] = bad;
                let text: String = text.into_iter().collect();
                assert_eq!(pack_uuid(&text), None, "{text}");
            }
        }
        // Two-byte characters in place of two digits keep the length of a UUID.
        for at in [0, 9, 34] {
            for wide in ["é", "\u{7ff}", "\u{80}"] {
                let text = format!("{}{wide}{}", &good[..at], &good[at + 2..]);
                assert_eq!(text.len(), 36);
                assert_eq!(pack_uuid(&text), None, "{text}");
            }
        }
    }

    #[test]
    fn relinking_moves_an_identifier_between_chains() {
        let mut store = MemStore::new();
        let (a, b) = (
            store.next_profile_id().unwrap(),
            store.next_profile_id().unwrap(),
        );
        let ids = [
            held("email:x@y.z", 1),
            held("user_id:u", 2),
            held("anonymous_id:q", 3),
        ];
        for h in &ids {
            store.link(h, a).unwrap();
        }
        store.link(&ids[1], b).unwrap();
        fn texts(store: &MemStore, p: ProfileId) -> Vec<String> {
            store
                .chain(p as u32)
                .iter()
                .map(|h| h.id.to_string())
                .collect()
        }
        assert_eq!(texts(&store, a), ["email:x@y.z", "anonymous_id:q"]);
        assert_eq!(texts(&store, b), ["user_id:u"]);
        store.unlink(&ids[0].id).unwrap();
        assert_eq!(texts(&store, a), ["anonymous_id:q"]);
        assert_eq!(store.profile_of(&ids[0].id).unwrap(), None);
        assert_eq!(store.counts().identifiers, 2);
    }

    #[test]
    fn observing_in_place_gives_the_profiles_the_long_way_gives() {
        use crate::identity::workload::{Workload, WorkloadSpec};
        use crate::identity::{ingest, IdentityConfig};

        let workload = Workload::new(WorkloadSpec {
            events: 4_000,
            visitors: 400,
            ..WorkloadSpec::default()
        });
        let (config, spec) = (IdentityConfig::default(), FeatureSpec::default());
        let in_order: Vec<Event> = workload.events().collect();
        let mut bots = in_order.clone();
        for (i, e) in bots.iter_mut().enumerate() {
            e.weft.bot = i % 3 == 0;
        }
        let cases = [
            ("in time order", in_order.clone()),
            ("newest first", in_order.iter().rev().cloned().collect()),
            ("some bots", bots),
        ];
        for (name, events) in cases {
            // A cache larger than the workload keeps every profile unpacked, so every
            // event takes the long way there.
            let mut long = MemStore::new().with_hot_capacity(1 << 20);
            let mut fast = MemStore::new();
            for e in &events {
                let a = ingest(&mut long, &config, &spec, e).map(|o| o.profile);
                let b = ingest(&mut fast, &config, &spec, e).map(|o| o.profile);
                assert_eq!(a.ok(), b.ok(), "{name}: {}", e.message_id);
            }
            let long: Vec<Profile> = long.profiles().collect();
            let fast: Vec<Profile> = fast.profiles().collect();
            assert_eq!(long.len(), fast.len(), "{name}");
            for (l, f) in long.iter().zip(&fast) {
                assert_eq!(l, f, "{name}");
            }
        }
    }

    #[test]
    fn message_ids_are_remembered_per_source() {
        let mut store = MemStore::new();
        let uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        assert!(store.remember("web", uuid, 0).unwrap());
        assert!(!store.remember("web", uuid, 0).unwrap());
        assert!(store.remember("backend", uuid, 0).unwrap());
        assert!(store.remember("web", "m-1", 0).unwrap());
        assert!(!store.remember("web", "m-1", 0).unwrap());
    }
}
