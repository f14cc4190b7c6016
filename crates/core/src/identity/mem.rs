//! [`MemStore`]: the identity graph held in memory, for tests, property tests and the
//! benchmark.
//!
//! It implements [`Store`] natively, with the same semantics the Durable Object's SQLite
//! store has, so every engine test runs against it.

use std::collections::{HashMap, HashSet};

use super::store::{Merge, MergeId, Store, StoreError};
use super::Identifier;
use crate::event::Event;
use crate::profile::{Held, Profile, ProfileId};
use crate::time::Millis;

/// The identity graph in memory.
#[derive(Debug, Default)]
pub struct MemStore {
    ids: HashMap<Identifier, (ProfileId, Millis)>,
    profiles: HashMap<ProfileId, Profile>,
    seen: HashSet<(String, String)>,
    events: HashMap<ProfileId, Vec<(u64, Event)>>,
    next_seq: u64,
    keep_events: bool,
    merges: Vec<Merge>,
    blocks: HashSet<(Identifier, Identifier)>,
    next_profile: ProfileId,
}

/// Bytes a [`MemStore`] holds, by part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// Identifiers held.
    pub identifiers: usize,
    /// Profiles held.
    pub profiles: usize,
}

impl MemStore {
    /// An empty store that keeps every event (undo needs them).
    pub fn new() -> MemStore {
        MemStore {
            keep_events: true,
            ..MemStore::default()
        }
    }

    /// An empty store that keeps no events: faster and smaller, but [`undo`](super::undo)
    /// finds nothing to replay.
    pub fn without_events() -> MemStore {
        MemStore::default()
    }

    /// Every profile, by id.
    pub fn profiles(&self) -> impl Iterator<Item = Profile> + '_ {
        let mut ids: Vec<_> = self.profiles.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| self.load(id).ok().flatten())
    }

    /// How many identifiers and profiles it holds.
    pub fn counts(&self) -> MemoryUse {
        MemoryUse {
            identifiers: self.ids.len(),
            profiles: self.profiles.len(),
        }
    }
}

fn pair(a: &Identifier, b: &Identifier) -> (Identifier, Identifier) {
    if a <= b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}

impl Store for MemStore {
    fn profile_of(&self, id: &Identifier) -> Result<Option<ProfileId>, StoreError> {
        Ok(self.ids.get(id).map(|&(p, _)| p))
    }

    fn load(&self, profile: ProfileId) -> Result<Option<Profile>, StoreError> {
        Ok(self.profiles.get(&profile).cloned())
    }

    fn take(&mut self, profile: ProfileId) -> Result<Option<Profile>, StoreError> {
        Ok(self.profiles.remove(&profile))
    }

    fn save(&mut self, profile: Profile) -> Result<(), StoreError> {
        self.profiles.insert(profile.id, profile);
        Ok(())
    }

    fn delete(&mut self, profile: ProfileId) -> Result<(), StoreError> {
        self.profiles.remove(&profile);
        Ok(())
    }

    fn link(&mut self, held: &Held, profile: ProfileId) -> Result<(), StoreError> {
        self.ids.insert(held.id.clone(), (profile, held.first_seen));
        Ok(())
    }

    fn unlink(&mut self, id: &Identifier) -> Result<(), StoreError> {
        self.ids.remove(id);
        Ok(())
    }

    fn next_profile_id(&mut self) -> Result<ProfileId, StoreError> {
        self.next_profile += 1;
        Ok(self.next_profile)
    }

    fn remember(
        &mut self,
        source: &str,
        message_id: &str,
        _at: Millis,
    ) -> Result<bool, StoreError> {
        Ok(self.seen.insert((source.to_owned(), message_id.to_owned())))
    }

    fn append_event(&mut self, profile: ProfileId, event: &Event) -> Result<(), StoreError> {
        if self.keep_events {
            self.next_seq += 1;
            self.events
                .entry(profile)
                .or_default()
                .push((self.next_seq, event.clone()));
        }
        Ok(())
    }

    fn events_of(&self, profile: ProfileId) -> Result<Vec<Event>, StoreError> {
        let list = self
            .events
            .get(&profile)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(list.iter().map(|(_, e)| e.clone()).collect())
    }

    fn move_events(&mut self, from: ProfileId, into: ProfileId) -> Result<(), StoreError> {
        if let Some(moved) = self.events.remove(&from) {
            let list = self.events.entry(into).or_default();
            list.extend(moved);
            list.sort_by_key(|(seq, _)| *seq);
        }
        Ok(())
    }

    fn drop_events(&mut self, profile: ProfileId) -> Result<(), StoreError> {
        self.events.remove(&profile);
        Ok(())
    }

    fn record_merge(&mut self, mut merge: Merge) -> Result<MergeId, StoreError> {
        merge.id = self.merges.len() as MergeId + 1;
        let id = merge.id;
        self.merges.push(merge);
        Ok(id)
    }

    fn merge(&self, id: MergeId) -> Result<Option<Merge>, StoreError> {
        Ok(id
            .checked_sub(1)
            .and_then(|i| self.merges.get(i as usize))
            .cloned())
    }

    fn merges_of(&self, profile: ProfileId) -> Result<Vec<Merge>, StoreError> {
        Ok(self
            .merges
            .iter()
            .filter(|m| m.from == profile || m.into == profile)
            .cloned()
            .collect())
    }

    fn mark_undone(&mut self, id: MergeId, at: Millis) -> Result<(), StoreError> {
        if let Some(m) = id
            .checked_sub(1)
            .and_then(|i| self.merges.get_mut(i as usize))
        {
            m.undone = Some(at);
        }
        Ok(())
    }

    fn block(&mut self, a: &Identifier, b: &Identifier) -> Result<(), StoreError> {
        self.blocks.insert(pair(a, b));
        Ok(())
    }

    fn is_blocked(&self, a: &Identifier, b: &Identifier) -> Result<bool, StoreError> {
        Ok(self.blocks.contains(&pair(a, b)))
    }

    fn has_blocks(&self) -> Result<bool, StoreError> {
        Ok(!self.blocks.is_empty())
    }
}
