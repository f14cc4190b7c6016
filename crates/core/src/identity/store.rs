//! The storage contract of the identity graph: small, synchronous, per-event operations.
//!
//! [`ingest`](super::ingest) and [`undo`](super::undo) touch the graph only through
//! [`Store`], one identifier or one profile at a time, so that the Durable Object can
//! implement it over SQLite without loading the whole graph, and [`MemStore`](super::MemStore)
//! natively for tests and the benchmark. The engine keeps these promises to a store:
//! every identifier in a saved profile's `identifiers` has been [`Store::link`]ed to that
//! profile (with the same `first_seen`), a profile [`Store::take`]n is always saved or
//! deleted before the call returns, and events are appended in arrival order.

use serde::{Deserialize, Serialize};

use super::{IdKind, Identifier};
use crate::event::Event;
use crate::profile::{Held, Profile, ProfileId};
use crate::segment::FeatureSpec;
use crate::time::Millis;

/// A merge's id, assigned by the store in recording order.
pub type MergeId = u64;

/// One merge of two profiles, as the merge log keeps it.
///
/// ```json
/// {"id":1,"from":7,"into":3,"messageId":"m-42","at":1714564800000,
///  "fromIds":["anonymous_id:anon-2"],"intoIds":["user_id:user-1","anonymous_id:anon-1"],
///  "operator":false,"undone":null}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Merge {
    /// The merge's id (ignored by [`Store::record_merge`], which assigns it).
    pub id: MergeId,
    /// The profile absorbed, deleted by the merge.
    pub from: ProfileId,
    /// The surviving profile (the older one).
    pub into: ProfileId,
    /// The event that caused the merge; `None` for an operator's merge.
    pub message_id: Option<String>,
    /// When the merge happened (the causing event's `receivedAt`, or the operator's
    /// clock).
    pub at: Millis,
    /// The identifiers the absorbed profile held.
    #[serde(with = "id_texts")]
    pub from_ids: Vec<Identifier>,
    /// The identifiers the surviving profile held before the merge.
    #[serde(with = "id_texts")]
    pub into_ids: Vec<Identifier>,
    /// An operator asked for it (`POST /admin/merges`) against the rules.
    pub operator: bool,
    /// When it was undone, if it was.
    pub undone: Option<Millis>,
    /// The operator merge this one applies again, after an undo of another merge rebuilt
    /// their profile: undoing either undoes both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reapplies: Option<MergeId>,
}

/// A storage failure, passed through the engine unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend (SQLite, ...) failed; the text is its message.
    #[error("identity store failed: {0}")]
    Backend(String),
    /// Stored data could not be read back; the text names what.
    #[error("identity store holds unreadable data: {0}")]
    Corrupt(String),
}

/// Where the identity graph lives.
///
/// Every method is one small step an SQL store answers with one or two statements.
/// Methods are synchronous: the Durable Object's SQLite storage is.
pub trait Store {
    /// The profile `id` points to, if any.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails; so for every method below.
    fn profile_of(&self, id: &Identifier) -> Result<Option<ProfileId>, StoreError>;

    /// [`Store::profile_of`] for the identifier of `kind` and `value`, which a store may
    /// look up without building an [`Identifier`]; by default it builds one.
    ///
    /// # Errors
    /// [`StoreError`].
    fn profile_of_value(
        &self,
        kind: &IdKind,
        value: &str,
    ) -> Result<Option<ProfileId>, StoreError> {
        self.profile_of(&Identifier::new(kind.clone(), value))
    }

    /// A copy of a profile, with its identifiers, for reading (admin API, decisions).
    ///
    /// # Errors
    /// [`StoreError`].
    fn load(&self, profile: ProfileId) -> Result<Option<Profile>, StoreError>;

    /// The profile, to be changed and then [`Store::save`]d or [`Store::delete`]d.
    ///
    /// A store may move the profile out instead of copying it (the engine always puts it
    /// back); by default this is [`Store::load`].
    ///
    /// # Errors
    /// [`StoreError`].
    fn take(&mut self, profile: ProfileId) -> Result<Option<Profile>, StoreError> {
        self.load(profile)
    }

    /// Writes a profile, inserting or replacing the one with its id.
    ///
    /// # Errors
    /// [`StoreError`].
    fn save(&mut self, profile: Profile) -> Result<(), StoreError>;

    /// Deletes a profile (its identifiers are unlinked or relinked separately).
    ///
    /// # Errors
    /// [`StoreError`].
    fn delete(&mut self, profile: ProfileId) -> Result<(), StoreError>;

    /// Points `held.id` at `profile`, inserting it or moving it from another profile.
    ///
    /// # Errors
    /// [`StoreError`].
    fn link(&mut self, held: &Held, profile: ProfileId) -> Result<(), StoreError>;

    /// Removes `id` from the graph.
    ///
    /// # Errors
    /// [`StoreError`].
    fn unlink(&mut self, id: &Identifier) -> Result<(), StoreError>;

    /// A new profile id, never handed out before (ids grow in creation order).
    ///
    /// # Errors
    /// [`StoreError`].
    fn next_profile_id(&mut self) -> Result<ProfileId, StoreError>;

    /// Remembers `(source, message_id)` and says whether it is new: `true` the first time,
    /// `false` for a repeat. Check and insert are one atomic step. `at` (the event's
    /// `receivedAt`) lets a store forget entries older than its deduplication window.
    ///
    /// # Errors
    /// [`StoreError`].
    fn remember(&mut self, source: &str, message_id: &str, at: Millis) -> Result<bool, StoreError>;

    /// Appends an event to a profile's stored events.
    ///
    /// # Errors
    /// [`StoreError`].
    fn append_event(&mut self, profile: ProfileId, event: &Event) -> Result<(), StoreError>;

    /// A profile's stored events, in the order they were appended (arrival order, kept
    /// across [`Store::move_events`]).
    ///
    /// # Errors
    /// [`StoreError`].
    fn events_of(&self, profile: ProfileId) -> Result<Vec<Event>, StoreError>;

    /// Moves every stored event of `from` to `into` (a merge), keeping arrival order.
    ///
    /// # Errors
    /// [`StoreError`].
    fn move_events(&mut self, from: ProfileId, into: ProfileId) -> Result<(), StoreError>;

    /// Forgets a profile's stored events (an undo replays them under new profiles).
    ///
    /// # Errors
    /// [`StoreError`].
    fn drop_events(&mut self, profile: ProfileId) -> Result<(), StoreError>;

    /// Adds a merge to the log and returns its id.
    ///
    /// # Errors
    /// [`StoreError`].
    fn record_merge(&mut self, merge: Merge) -> Result<MergeId, StoreError>;

    /// One merge of the log.
    ///
    /// # Errors
    /// [`StoreError`].
    fn merge(&self, id: MergeId) -> Result<Option<Merge>, StoreError>;

    /// The merges into or from `profile`, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    fn merges_of(&self, profile: ProfileId) -> Result<Vec<Merge>, StoreError>;

    /// Marks a merge undone at `at`.
    ///
    /// # Errors
    /// [`StoreError`].
    fn mark_undone(&mut self, id: MergeId, at: Millis) -> Result<(), StoreError>;

    /// Forbids `a` and `b` from ever sharing a profile again (either order).
    ///
    /// # Errors
    /// [`StoreError`].
    fn block(&mut self, a: &Identifier, b: &Identifier) -> Result<(), StoreError>;

    /// Whether `a` and `b` were blocked from sharing a profile (either order).
    ///
    /// # Errors
    /// [`StoreError`].
    fn is_blocked(&self, a: &Identifier, b: &Identifier) -> Result<bool, StoreError>;

    /// Takes one event into a stored profile where it lies, when the store can do so
    /// cheaply and with exactly the result of [`Store::take`], [`Profile::observe`] and
    /// [`Store::save`]; `false` when it did nothing and the engine must go that long way.
    /// By default, always `false`.
    ///
    /// # Errors
    /// [`StoreError`].
    fn observe_in_place(
        &mut self,
        _profile: ProfileId,
        _event: &Event,
        _spec: &FeatureSpec,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Creates a profile for `event` holding `held` alone (an identifier no profile
    /// holds), when the store can do so cheaply and with exactly the result of
    /// [`Store::next_profile_id`], [`Store::link`], [`Profile::observe`] on a new profile
    /// and [`Store::save`]; `None` when it did nothing and the engine must go that long
    /// way. By default, always `None`.
    ///
    /// # Errors
    /// [`StoreError`].
    fn create_in_place(
        &mut self,
        _held: &Held,
        _event: &Event,
        _spec: &FeatureSpec,
    ) -> Result<Option<ProfileId>, StoreError> {
        Ok(None)
    }

    /// Whether any link is blocked at all; lets the engine skip pair checks. A store may
    /// always answer `true`.
    ///
    /// # Errors
    /// [`StoreError`].
    fn has_blocks(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
}

/// Identifiers serialised in their `kind:value` text form.
mod id_texts {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    use crate::identity::{IdKind, Identifier};

    pub fn serialize<S: Serializer>(ids: &[Identifier], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ids.iter().map(|id| id.to_string()))
    }

    /// Stored ids are read back as written, not normalised again: a value kept under an
    /// older normaliser still names the identifier it named.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Identifier>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|t| match t.split_once(':') {
                Some((kind, value)) => Ok(Identifier::new(IdKind::from_name(kind), value)),
                None => Err(D::Error::custom(format!(
                    "stored identifier {t:?} has no kind"
                ))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdKind;

    #[test]
    fn merge_round_trips_through_json_with_ids_as_text() {
        let merge = Merge {
            id: 1,
            from: 7,
            into: 3,
            message_id: Some("m-42".into()),
            at: 1_714_564_800_000,
            from_ids: vec![Identifier::new(IdKind::AnonymousId, "anon-2")],
            into_ids: vec![Identifier::new(IdKind::UserId, "user-1")],
            operator: false,
            undone: None,
            reapplies: None,
        };
        let text = serde_json::to_string(&merge).unwrap();
        assert!(
            text.contains(r#""fromIds":["anonymous_id:anon-2"]"#),
            "{text}"
        );
        assert!(text.contains(r#""messageId":"m-42""#), "{text}");
        assert_eq!(serde_json::from_str::<Merge>(&text).unwrap(), merge);
    }
}
