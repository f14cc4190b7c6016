//! Resolving one event against the identity graph: which profile it belongs to, which
//! identifiers it adds, which profiles it merges, and what it had to refuse.
//!
//! The event's identifiers are taken in priority order (`user_id` first, then `email`,
//! then the rest; within a kind, in the order the event names them). Each is kept if the
//! profile it would join, or bring in, still keeps every limit and no undone merge
//! blocked the pair; otherwise it is dropped with a warning and the next is tried. So
//! the lowest-priority identifiers give way first, two profiles that each hold a user id
//! are never joined, and an anonymous id another known user owns stays with that user
//! while the event goes to the user it names.

use std::borrow::Cow;
use std::fmt;

use super::extract::{self, extract, Extracted, Found, Item};
use super::limits;
use super::normalise::Junk;
use super::store::{Merge, Store, StoreError};
use super::{IdKind, Identifier, IdentityConfig};
use crate::event::Event;
use crate::profile::{Held, Profile, ProfileId};
use crate::segment::FeatureSpec;

/// What [`ingest`] did with an event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The `(source, messageId)` was seen before: nothing changed.
    pub duplicate: bool,
    /// The profile the event was attributed to.
    pub profile: Option<ProfileId>,
    /// The merges the event caused, as logged.
    pub merges: Vec<Merge>,
    /// What was ignored: junk values, refused links, dropped identifiers.
    pub warnings: Vec<Warning>,
    /// Profiles created or changed (their decision docs need rewriting).
    pub changed: ProfileIds,
    /// Profiles deleted by merges (their decision docs are stale).
    pub deleted: Vec<ProfileId>,
}

/// A short list of profile ids that holds its first two in place: an event changes one
/// profile, and saying so then allocates nothing.
///
/// It reads as a slice of [`ProfileId`] (`len`, `iter`, indexing, `for id in &ids`).
#[derive(Clone, Default)]
pub struct ProfileIds {
    inline: [ProfileId; 2],
    /// How many of `inline` are used; 0 once `spilled` holds them all.
    len: usize,
    spilled: Vec<ProfileId>,
}

impl ProfileIds {
    /// Adds an id at the end.
    pub fn push(&mut self, id: ProfileId) {
        if !self.spilled.is_empty() {
            self.spilled.push(id);
        } else if let Some(slot) = self.inline.get_mut(self.len) {
            *slot = id;
            self.len += 1;
        } else {
            self.spilled.extend_from_slice(&self.inline);
            self.spilled.push(id);
            self.len = 0;
        }
    }

    /// The ids, in the order they were added.
    pub fn as_slice(&self) -> &[ProfileId] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }
}

impl std::ops::Deref for ProfileIds {
    type Target = [ProfileId];

    fn deref(&self) -> &[ProfileId] {
        self.as_slice()
    }
}

impl<'a> IntoIterator for &'a ProfileIds {
    type Item = &'a ProfileId;
    type IntoIter = std::slice::Iter<'a, ProfileId>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl PartialEq for ProfileIds {
    fn eq(&self, other: &ProfileIds) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl fmt::Debug for ProfileIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// Something ignored while resolving an event; the event is still stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// A junk value where an identifier was expected.
    Junk {
        /// The field it came from (`userId`, `traits.email`, ...).
        field: String,
        /// Why it is junk.
        junk: Junk,
    },
    /// An identifier the rules kept out of the event's profile.
    Refused {
        /// The field it came from.
        field: String,
        /// Its kind (the value is not repeated: it may be personal).
        kind: IdKind,
        /// Which rule refused it.
        reason: Refusal,
    },
}

/// Why an identifier was kept out of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// It would have joined two profiles that each hold a user id.
    BothIdentified,
    /// It belongs to a profile of another known user.
    OwnedByAnotherUser,
    /// The profile already holds as many identifiers of this kind as allowed.
    Limit {
        /// The kind's limit.
        limit: u32,
        /// The kind's window, if any.
        window_days: Option<u32>,
    },
    /// An undone merge forbids this link.
    Blocked,
}

impl Warning {
    /// A stable snake-case code, for counters (`junk_id`, `merge_refused_both_identified`,
    /// `link_refused_owned`, `limit_reached`, `link_blocked`).
    pub fn code(&self) -> &'static str {
        match self {
            Warning::Junk { .. } => "junk_id",
            Warning::Refused { reason, .. } => match reason {
                Refusal::BothIdentified => "merge_refused_both_identified",
                Refusal::OwnedByAnotherUser => "link_refused_owned",
                Refusal::Limit { .. } => "limit_reached",
                Refusal::Blocked => "link_blocked",
            },
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Junk { field, junk } => {
                write!(f, "junk identifier in {field} ignored: {junk}")
            }
            Warning::Refused {
                field,
                kind,
                reason,
            } => match reason {
                Refusal::BothIdentified => write!(
                    f,
                    "merge refused: both identified ({kind} from {field} belongs to another \
                     user's profile)"
                ),
                Refusal::OwnedByAnotherUser => write!(
                    f,
                    "link refused: {kind} from {field} belongs to another user's profile"
                ),
                Refusal::Limit {
                    limit,
                    window_days: Some(days),
                } => write!(
                    f,
                    "identifier dropped: profile holds {limit} {kind} first seen within \
                     {days} days (from {field})"
                ),
                Refusal::Limit {
                    limit,
                    window_days: None,
                } => {
                    write!(
                        f,
                        "identifier dropped: profile holds {limit} {kind} (from {field})"
                    )
                }
                Refusal::Blocked => write!(
                    f,
                    "link refused: {kind} from {field} was split from this profile by an undo"
                ),
            },
        }
    }
}

/// Why an event could not be ingested.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every id of the event is junk, so it belongs to nobody.
    #[error("event has no usable identifier ({})", list(.0))]
    NoIdentifier(Vec<Warning>),
}

fn list(warnings: &[Warning]) -> String {
    let texts: Vec<String> = warnings.iter().map(Warning::to_string).collect();
    if texts.is_empty() {
        "no userId, anonymousId or mapped field".to_owned()
    } else {
        texts.join("; ")
    }
}

/// Resolves one event: dedupes it, finds or creates its profile, merges what the rules
/// allow, updates the profile and stores the event under it.
///
/// # Errors
/// [`IngestError::NoIdentifier`] when every id of the event is junk (the event is not
/// remembered, so a corrected resend is accepted); [`IngestError::Store`] when the
/// store fails.
///
/// # Limitations
/// An `alias` event's `previousId` does not say its kind: it is taken as a user id when
/// a profile holds that user id, else as an anonymous id. So an alias that renames a
/// known user to a new user id is refused like any join of two user ids, and the new id
/// starts a profile of its own. Identifiers refused by a windowed limit are not retried
/// when the window has passed; the next event carrying them links them.
pub fn ingest<S: Store + ?Sized>(
    store: &mut S,
    config: &IdentityConfig,
    spec: &FeatureSpec,
    event: &Event,
) -> Result<Outcome, IngestError> {
    // Most events name a few valid identifiers and nothing else: those are looked up as
    // borrowed from the event, and copied only when they join the graph.
    let mut quick = Quick::new();
    extract::each(event, config, |item| quick.take(item));
    if quick.is_plain() {
        if !store.remember(&event.weft.source, &event.message_id, event.received_at)? {
            return Ok(duplicate());
        }
        let ids = &quick.ids[..quick.len];
        let mut owners = [None; QUICK];
        for (owner, &(kind, value, _)) in owners.iter_mut().zip(ids) {
            *owner = store.profile_of_value(&kind.into(), value)?;
        }
        let owners = &owners[..ids.len()];
        if let Some(only) = owners[0] {
            if owners.iter().all(|o| *o == Some(only)) {
                return observe_known(store, spec, event, only, Outcome::default());
            }
        }
        if let ([(kind, value, _)], [None]) = (ids, owners) {
            let id = Identifier::new((*kind).into(), *value);
            return create(store, spec, event, id, Outcome::default());
        }
        let found = ids.iter().map(|&(kind, value, field)| Found {
            id: Identifier::new(kind.into(), value),
            field,
        });
        return resolve(
            store,
            config,
            spec,
            event,
            found.collect(),
            None,
            Vec::new(),
        );
    }

    let extracted = usable_ids(event, config)?;
    if !store.remember(&event.weft.source, &event.message_id, event.received_at)? {
        return Ok(duplicate());
    }
    resolve(
        store,
        config,
        spec,
        event,
        extracted.ids,
        extracted.previous,
        extracted.warnings,
    )
}

fn duplicate() -> Outcome {
    Outcome {
        duplicate: true,
        ..Outcome::default()
    }
}

/// How many identifiers [`ingest`] looks up borrowed; an event with more takes the
/// general way.
const QUICK: usize = 4;

/// An event's identifiers as [`extract::each`] finds them, borrowed, when there are at
/// most [`QUICK`] of them, each of a built-in kind and as sent but for its ends, and
/// nothing else (no junk, no previous id). Everything in it is `Copy`: it costs nothing
/// to drop.
struct Quick<'e, 'c> {
    ids: [(BuiltIn, &'e str, &'c str); QUICK],
    len: usize,
    /// Something the quick way does not handle was found.
    other: bool,
}

/// The built-in identifier kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BuiltIn {
    AnonymousId,
    UserId,
    Email,
}

impl From<BuiltIn> for IdKind {
    fn from(kind: BuiltIn) -> IdKind {
        match kind {
            BuiltIn::AnonymousId => IdKind::AnonymousId,
            BuiltIn::UserId => IdKind::UserId,
            BuiltIn::Email => IdKind::Email,
        }
    }
}

impl<'e, 'c> Quick<'e, 'c> {
    fn new() -> Quick<'e, 'c> {
        Quick {
            ids: [(BuiltIn::AnonymousId, "", ""); QUICK],
            len: 0,
            other: false,
        }
    }

    fn take(&mut self, item: Item<'e, 'c>) {
        let (kind, value, field) = match item {
            Item::Id {
                kind,
                value: Cow::Borrowed(value),
                field,
            } => match kind {
                IdKind::AnonymousId => (BuiltIn::AnonymousId, value, field),
                IdKind::UserId => (BuiltIn::UserId, value, field),
                IdKind::Email => (BuiltIn::Email, value, field),
                IdKind::Other(_) => return self.other = true,
            },
            _ => return self.other = true,
        };
        if self.ids[..self.len]
            .iter()
            .any(|&(k, v, _)| k == kind && v == value)
        {
            return;
        }
        match self.ids.get_mut(self.len) {
            Some(slot) => {
                *slot = (kind, value, field);
                self.len += 1;
            }
            None => self.other = true,
        }
    }

    fn is_plain(&self) -> bool {
        !self.other && self.len > 0
    }
}

/// The event's identifiers, or [`IngestError::NoIdentifier`] when none is usable.
fn usable_ids<'c>(event: &Event, config: &'c IdentityConfig) -> Result<Extracted<'c>, IngestError> {
    let extracted = extract(event, config);
    if extracted.ids.is_empty() && extracted.previous.is_none() {
        return Err(IngestError::NoIdentifier(extracted.warnings));
    }
    Ok(extracted)
}

/// Resolves an event already remembered (ingest, or the replay of an undo).
pub(crate) fn replay<S: Store + ?Sized>(
    store: &mut S,
    config: &IdentityConfig,
    spec: &FeatureSpec,
    event: &Event,
) -> Result<Outcome, IngestError> {
    let extracted = usable_ids(event, config)?;
    resolve(
        store,
        config,
        spec,
        event,
        extracted.ids,
        extracted.previous,
        extracted.warnings,
    )
}

/// One candidate identifier with the profile it points to.
struct Candidate<'c> {
    found: Found<'c>,
    owner: Option<ProfileId>,
    priority: u32,
}

fn resolve<S: Store + ?Sized>(
    store: &mut S,
    config: &IdentityConfig,
    spec: &FeatureSpec,
    event: &Event,
    ids: Vec<Found<'_>>,
    previous: Option<String>,
    warnings: Vec<Warning>,
) -> Result<Outcome, IngestError> {
    let mut out = Outcome {
        warnings,
        ..Outcome::default()
    };
    // The owners of the first few identifiers, looked up once for both paths below.
    let mut owners = [None; 8];
    for (owner, found) in owners.iter_mut().zip(&ids) {
        *owner = store.profile_of(&found.id)?;
    }

    // The common case: every identifier already points to one profile.
    if previous.is_none() && ids.len() <= owners.len() {
        if let Some(only) = owners[0] {
            if owners[..ids.len()].iter().all(|o| *o == Some(only)) {
                return observe_known(store, spec, event, only, out);
            }
        }
    }

    let mut candidates = Vec::with_capacity(ids.len() + 1);
    for (i, found) in ids.into_iter().enumerate() {
        let owner = match owners.get(i) {
            Some(owner) => *owner,
            None => store.profile_of(&found.id)?,
        };
        let priority = config.priority(&found.id.kind);
        candidates.push(Candidate {
            found,
            owner,
            priority,
        });
    }
    if let Some(previous) = previous {
        // An alias names a user id or an anonymous id without saying which: a known user
        // id wins, anything else is the anonymous id the user had before.
        let as_user = Identifier::new(IdKind::UserId, previous);
        let owner = store.profile_of(&as_user)?;
        let id = match owner {
            Some(_) => as_user,
            None => Identifier::new(IdKind::AnonymousId, as_user.value),
        };
        let owner = if owner.is_some() {
            owner
        } else {
            store.profile_of(&id)?
        };
        if !candidates.iter().any(|c| c.found.id == id) {
            let priority = config.priority(&id.kind);
            candidates.push(Candidate {
                found: Found {
                    id,
                    field: "previousId",
                },
                owner,
                priority,
            });
        }
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.priority));

    // Still the common case, when an alias's previous id or many identifiers kept it
    // from being seen above.
    if let Some(Some(only)) = candidates.first().map(|c| c.owner) {
        if candidates.iter().all(|c| c.owner == Some(only)) {
            let mut profile = take(store, only)?;
            profile.observe(event, spec);
            store.append_event(only, event)?;
            store.save(profile)?;
            out.profile = Some(only);
            out.changed.push(only);
            return Ok(out);
        }
    }

    // A new visitor: one identifier, known to no profile, can break no limit.
    if let [only] = candidates.as_slice() {
        if only.owner.is_none() {
            let id = only.found.id.clone();
            return create(store, spec, event, id, out);
        }
    }

    let mut group: Vec<Profile> = Vec::new();
    let mut refused: Vec<Profile> = Vec::new();
    let mut new_ids: Vec<Held> = Vec::new();
    let check_blocks = store.has_blocks()?;
    for cand in candidates {
        let reason = match cand.owner {
            Some(p) if group.iter().any(|g| g.id == p) => None,
            Some(p) => {
                let profile = match refused.iter().position(|r| r.id == p) {
                    Some(i) => refused.swap_remove(i),
                    None => take(store, p)?,
                };
                let reason = refusal(config, &group, &new_ids, &profile.identifiers, &cand).or(
                    blocked(store, check_blocks, &group, &new_ids, &profile.identifiers)?,
                );
                if reason.is_none() {
                    group.push(profile);
                } else {
                    refused.push(profile);
                }
                reason
            }
            None => {
                let held = [Held {
                    id: cand.found.id.clone(),
                    first_seen: event.timestamp,
                }];
                let reason = refusal(config, &group, &new_ids, &held, &cand).or(blocked(
                    store,
                    check_blocks,
                    &group,
                    &new_ids,
                    &held,
                )?);
                if reason.is_none() {
                    new_ids.extend(held);
                }
                reason
            }
        };
        if let Some(reason) = reason {
            out.warnings.push(Warning::Refused {
                field: cand.found.field.to_owned(),
                kind: cand.found.id.kind,
                reason,
            });
        }
    }
    for profile in refused {
        store.save(profile)?;
    }

    let mut profile = match oldest(&group) {
        Some(i) => group.swap_remove(i),
        None => Profile::new(store.next_profile_id()?, event.timestamp),
    };
    group.sort_by_key(|p| (p.created_at, p.id));
    for other in group {
        let merge = Merge {
            id: 0,
            from: other.id,
            into: profile.id,
            message_id: Some(event.message_id.clone()),
            at: event.received_at,
            from_ids: other.identifiers.iter().map(|h| h.id.clone()).collect(),
            into_ids: profile.identifiers.iter().map(|h| h.id.clone()).collect(),
            operator: false,
            undone: None,
            reapplies: None,
        };
        out.merges
            .push(absorb(store, spec, &mut profile, other, merge)?);
    }
    for held in new_ids {
        store.link(&held, profile.id)?;
        profile.identifiers.push(held);
    }
    profile.observe(event, spec);
    store.append_event(profile.id, event)?;
    out.profile = Some(profile.id);
    out.changed.push(profile.id);
    out.deleted.extend(out.merges.iter().map(|m| m.from));
    store.save(profile)?;
    Ok(out)
}

/// Takes `event` into `only`, the profile every identifier of the event points to.
fn observe_known<S: Store + ?Sized>(
    store: &mut S,
    spec: &FeatureSpec,
    event: &Event,
    only: ProfileId,
    mut out: Outcome,
) -> Result<Outcome, IngestError> {
    if store.observe_in_place(only, event, spec)? {
        store.append_event(only, event)?;
    } else {
        let mut profile = take(store, only)?;
        profile.observe(event, spec);
        store.append_event(only, event)?;
        store.save(profile)?;
    }
    out.profile = Some(only);
    out.changed.push(only);
    Ok(out)
}

/// A new profile for `event`, holding `id`, which no profile holds.
fn create<S: Store + ?Sized>(
    store: &mut S,
    spec: &FeatureSpec,
    event: &Event,
    id: Identifier,
    mut out: Outcome,
) -> Result<Outcome, IngestError> {
    let held = Held {
        id,
        first_seen: event.timestamp,
    };
    if let Some(p) = store.create_in_place(&held, event, spec)? {
        store.append_event(p, event)?;
        out.profile = Some(p);
        out.changed.push(p);
        return Ok(out);
    }
    let mut profile = Profile::new(store.next_profile_id()?, event.timestamp);
    store.link(&held, profile.id)?;
    profile.identifiers.push(held);
    profile.observe(event, spec);
    store.append_event(profile.id, event)?;
    out.profile = Some(profile.id);
    out.changed.push(profile.id);
    store.save(profile)?;
    Ok(out)
}

/// Folds `other` into `into`: relinks its identifiers, moves its events, deletes it and
/// logs the merge.
pub(crate) fn absorb<S: Store + ?Sized>(
    store: &mut S,
    spec: &FeatureSpec,
    into: &mut Profile,
    other: Profile,
    mut merge: Merge,
) -> Result<Merge, StoreError> {
    for held in &other.identifiers {
        store.link(held, into.id)?;
    }
    store.move_events(other.id, into.id)?;
    store.delete(other.id)?;
    into.absorb(other, spec);
    merge.id = store.record_merge(merge.clone())?;
    Ok(merge)
}

/// The index of the oldest profile (earliest `created_at`, then lowest id).
pub(crate) fn oldest(profiles: &[Profile]) -> Option<usize> {
    (0..profiles.len()).min_by_key(|&i| (profiles[i].created_at, profiles[i].id))
}

fn take<S: Store + ?Sized>(store: &mut S, id: ProfileId) -> Result<Profile, StoreError> {
    store.take(id)?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "an identifier points to profile {id}, which is missing"
        ))
    })
}

/// Which limit adding `incoming` (a profile's identifiers, or one new identifier) to the
/// group would break, as a refusal of `cand`.
fn refusal(
    config: &IdentityConfig,
    group: &[Profile],
    new_ids: &[Held],
    incoming: &[Held],
    cand: &Candidate<'_>,
) -> Option<Refusal> {
    // The group's parts, and the incoming profile's, on the stack while they are few.
    let mut few: [&[Held]; 8] = [&[]; 8];
    let mut many: Vec<&[Held]> = Vec::new();
    let group_ids = group.iter().map(|p| p.identifiers.as_slice());
    let incoming_part = cand.owner.is_some().then_some(incoming);
    let count = group.len() + usize::from(incoming_part.is_some());
    let parts: &[&[Held]] = if count <= few.len() {
        for (slot, part) in few.iter_mut().zip(group_ids.chain(incoming_part)) {
            *slot = part;
        }
        &few[..count]
    } else {
        many.extend(group_ids.chain(incoming_part));
        &many
    };
    let new: &[&[Held]] = if cand.owner.is_some() {
        &[new_ids]
    } else {
        &[new_ids, incoming]
    };
    let kind = limits::broken(config, parts, new)?;
    if kind == IdKind::UserId {
        let incoming_user = incoming.iter().any(|h| h.id.kind == IdKind::UserId);
        return Some(if cand.found.id.kind == IdKind::UserId || !incoming_user {
            Refusal::BothIdentified
        } else {
            Refusal::OwnedByAnotherUser
        });
    }
    let rule = config.rule(&kind);
    Some(Refusal::Limit {
        limit: rule.limit,
        window_days: rule.window_days,
    })
}

/// Whether an undone merge forbids any identifier of `incoming` from joining the group.
fn blocked<S: Store + ?Sized>(
    store: &S,
    check: bool,
    group: &[Profile],
    new_ids: &[Held],
    incoming: &[Held],
) -> Result<Option<Refusal>, StoreError> {
    if !check {
        return Ok(None);
    }
    let held = group
        .iter()
        .flat_map(|p| p.identifiers.iter())
        .chain(new_ids.iter());
    for a in held {
        for b in incoming {
            if store.is_blocked(&a.id, &b.id)? {
                return Ok(Some(Refusal::Blocked));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_ids_read_the_same_held_in_place_or_spilled() {
        let mut ids = ProfileIds::default();
        let mut want = Vec::new();
        assert!(ids.is_empty());
        for id in [7, 3, 9, 1] {
            ids.push(id);
            want.push(id);
            assert_eq!(ids.as_slice(), want.as_slice());
            assert_eq!(ids.iter().copied().collect::<Vec<_>>(), want);
        }
        assert_eq!(format!("{ids:?}"), "[7, 3, 9, 1]");
        assert_eq!(ids.clone(), ids);
        assert_ne!(ids, ProfileIds::default());
    }
}
