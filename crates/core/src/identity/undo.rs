//! Undoing a merge, and merges an operator asks for against the rules.
//!
//! An undo does not try to subtract one profile from another: counters, traits and
//! touches cannot be un-added. It dismantles the merged profile and replays its stored
//! events, in arrival order, with the undone link blocked, so the profiles that come out
//! are the ones the graph would hold had that link been refused from the start. Operator
//! merges inside the dismantled profile are applied again after the replay, each logged
//! as reapplying the original, so that undoing the original later undoes its copy.

use super::engine::{absorb, replay, IngestError, Warning};
use super::store::{Merge, MergeId, Store, StoreError};
use super::{Identifier, IdentityConfig};
use crate::profile::ProfileId;
use crate::segment::FeatureSpec;
use crate::time::Millis;

/// What an undo changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Undone {
    /// The merge undone, now marked with when.
    pub merge: Merge,
    /// The profiles rebuilt from the replayed events (their decision docs need rewriting).
    pub changed: Vec<ProfileId>,
    /// The profiles that no longer exist (the dismantled one, and any the replay merged).
    pub deleted: Vec<ProfileId>,
    /// What the replay refused (at least the blocked link, when an event carries it).
    pub warnings: Vec<Warning>,
}

/// Why a merge could not be undone or made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum UndoError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No merge has this id.
    #[error("no merge with id {0}")]
    NoMerge(MergeId),
    /// The merge was undone before.
    #[error("merge {0} is already undone")]
    AlreadyUndone(MergeId),
    /// Its two sides are no longer in one profile (split by another undo, or erased).
    #[error("merge {0} no longer joins two profiles (split or erased since)")]
    NotMerged(MergeId),
    /// No profile holds this identifier.
    #[error("no profile holds {0}")]
    UnknownIdentifier(String),
    /// The store keeps no events of the merged profile, so nothing could rebuild it.
    #[error("merge {0} cannot be undone: no stored events to rebuild its profiles from")]
    NoEvents(MergeId),
    /// Both identifiers are in one profile already.
    #[error("{0} and {1} are already in one profile")]
    SameProfile(String, String),
}

impl From<IngestError> for UndoError {
    fn from(e: IngestError) -> UndoError {
        match e {
            IngestError::Store(s) => UndoError::Store(s),
            other => UndoError::Store(StoreError::Corrupt(other.to_string())),
        }
    }
}

/// Undoes merge `id` at time `now`: blocks its link, dismantles the profile holding both
/// sides and rebuilds it from its stored events.
///
/// # Errors
/// [`UndoError`] when the merge is unknown, already undone or no longer joins its sides,
/// or the store fails.
///
/// # Limitations
/// Events the store no longer keeps (past the retention window) cannot be replayed, so
/// what they contributed to the dismantled profile is lost. Merges the replay makes again
/// are logged again under new ids; the old records stay in the log, pointing at the
/// dismantled profile.
pub fn undo<S: Store + ?Sized>(
    store: &mut S,
    config: &IdentityConfig,
    spec: &FeatureSpec,
    id: MergeId,
    now: Millis,
) -> Result<Undone, UndoError> {
    let mut merge = store.merge(id)?.ok_or(UndoError::NoMerge(id))?;
    if merge.undone.is_some() {
        return Err(UndoError::AlreadyUndone(id));
    }
    let side_from = owner_of_any(store, &merge.from_ids)?;
    let side_into = owner_of_any(store, &merge.into_ids)?;
    let target = match (side_from, side_into) {
        (Some(a), Some(b)) if a == b => a,
        _ => return Err(UndoError::NotMerged(id)),
    };

    let events = store.events_of(target)?;
    if events.is_empty() {
        return Err(UndoError::NoEvents(id));
    }
    for a in &merge.from_ids {
        for b in &merge.into_ids {
            store.block(a, b)?;
        }
    }
    store.mark_undone(id, now)?;
    merge.undone = Some(now);
    // An operator merge applied again by an earlier undo is the same decision as the one
    // undone here: it goes too, whichever of the two records was named.
    let original = merge.reapplies.unwrap_or(id);
    let (copies, operator_merges): (Vec<Merge>, Vec<Merge>) =
        operator_merges_within(store, target, id)?
            .into_iter()
            .partition(|m| m.reapplies.unwrap_or(m.id) == original);
    for copy in &copies {
        store.mark_undone(copy.id, now)?;
    }
    if original != id && store.merge(original)?.is_some_and(|m| m.undone.is_none()) {
        store.mark_undone(original, now)?;
    }

    let profile = store.take(target)?.ok_or(UndoError::NotMerged(id))?;
    for held in &profile.identifiers {
        store.unlink(&held.id)?;
    }
    store.drop_events(target)?;
    store.delete(target)?;

    let mut out = Undone {
        merge,
        changed: Vec::new(),
        deleted: vec![target],
        warnings: Vec::new(),
    };
    for event in &events {
        let outcome = match replay(store, config, spec, event) {
            Ok(outcome) => outcome,
            Err(IngestError::NoIdentifier(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        out.warnings.extend(outcome.warnings);
        out.changed.extend(outcome.changed.iter().copied());
        out.deleted.extend(outcome.deleted);
    }
    for m in reapply(store, spec, &operator_merges, true)? {
        out.changed.push(m.into);
        out.deleted.push(m.from);
    }
    out.changed.retain(|p| !out.deleted.contains(p));
    out.changed.sort_unstable();
    out.changed.dedup();
    Ok(out)
}

/// Joins the profile holding `from` into the one holding `into`, whatever the rules say
/// (an operator's decision, e.g. two user ids of one person), logged and undoable.
///
/// # Errors
/// [`UndoError::UnknownIdentifier`] when no profile holds one of them,
/// [`UndoError::SameProfile`] when one profile holds both, or a store failure.
pub fn operator_merge<S: Store + ?Sized>(
    store: &mut S,
    spec: &FeatureSpec,
    from: &Identifier,
    into: &Identifier,
    now: Millis,
) -> Result<Merge, UndoError> {
    join(store, spec, from, into, now, None)
}

/// An operator merge, first made or (`reapplies`) made again after an undo's rebuild.
fn join<S: Store + ?Sized>(
    store: &mut S,
    spec: &FeatureSpec,
    from: &Identifier,
    into: &Identifier,
    now: Millis,
    reapplies: Option<MergeId>,
) -> Result<Merge, UndoError> {
    let unknown = |id: &Identifier| UndoError::UnknownIdentifier(id.to_string());
    let from_id = store.profile_of(from)?.ok_or_else(|| unknown(from))?;
    let into_id = store.profile_of(into)?.ok_or_else(|| unknown(into))?;
    if from_id == into_id {
        return Err(UndoError::SameProfile(from.to_string(), into.to_string()));
    }
    let missing = |p: ProfileId| StoreError::Corrupt(format!("profile {p} is missing"));
    let other = store.take(from_id)?.ok_or_else(|| missing(from_id))?;
    let mut survivor = store.take(into_id)?.ok_or_else(|| missing(into_id))?;
    let merge = Merge {
        id: 0,
        from: from_id,
        into: into_id,
        message_id: None,
        at: now,
        from_ids: other.identifiers.iter().map(|h| h.id.clone()).collect(),
        into_ids: survivor.identifiers.iter().map(|h| h.id.clone()).collect(),
        operator: true,
        undone: None,
        reapplies,
    };
    let merge = absorb(store, spec, &mut survivor, other, merge)?;
    store.save(survivor)?;
    Ok(merge)
}

/// Makes operator merges again over the profiles that now hold their sides, as a rebuild
/// (an undo, a replay of the archive) needs; one whose sides are gone or already joined
/// is passed over. With `linked`, each new record names the merge it reapplies, so that
/// undoing the original undoes it too.
///
/// # Errors
/// A store failure.
pub fn reapply<S: Store + ?Sized>(
    store: &mut S,
    spec: &FeatureSpec,
    merges: &[Merge],
    linked: bool,
) -> Result<Vec<Merge>, UndoError> {
    let mut made = Vec::new();
    for op in merges {
        let (Some(from), Some(into)) = (held(store, &op.from_ids)?, held(store, &op.into_ids)?)
        else {
            continue;
        };
        let original = linked.then(|| op.reapplies.unwrap_or(op.id));
        match join(store, spec, from, into, op.at, original) {
            Ok(m) => made.push(m),
            Err(UndoError::SameProfile(..) | UndoError::UnknownIdentifier(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(made)
}

/// The first of `ids` some profile holds.
fn held<'i, S: Store + ?Sized>(
    store: &S,
    ids: &'i [Identifier],
) -> Result<Option<&'i Identifier>, StoreError> {
    for id in ids {
        if store.profile_of(id)?.is_some() {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

fn owner_of_any<S: Store + ?Sized>(
    store: &S,
    ids: &[Identifier],
) -> Result<Option<ProfileId>, StoreError> {
    for id in ids {
        if let Some(p) = store.profile_of(id)? {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// The operator merges (not undone, other than `except`) that built `profile`, walking
/// the merge log down through the profiles it absorbed.
fn operator_merges_within<S: Store + ?Sized>(
    store: &S,
    profile: ProfileId,
    except: MergeId,
) -> Result<Vec<Merge>, StoreError> {
    let mut found = Vec::new();
    let mut stack = vec![profile];
    let mut visited = Vec::new();
    while let Some(p) = stack.pop() {
        if visited.contains(&p) {
            continue;
        }
        visited.push(p);
        for m in store.merges_of(p)? {
            if m.into != p || m.undone.is_some() || m.id == except {
                continue;
            }
            stack.push(m.from);
            if m.operator {
                found.push(m);
            }
        }
    }
    found.sort_by_key(|m| m.id);
    Ok(found)
}
