//! The identity store of one ingest request: the graph's rows the request needs, read in
//! one statement up front, changed in memory, and written back in a few statements.
//!
//! Going through [`SqlStore`] one step at a time costs a dozen statements per event,
//! each a crossing from wasm into the runtime with its values converted both ways.
//! [`BatchStore`] instead reads the identifiers the request's events name, their profiles
//! and which of its messageIds were seen before ([`BatchStore::prefetch`]); the engine
//! then runs against memory, and [`BatchStore::flush`] writes every changed row with one
//! statement per table, the rows passed as one JSON array that SQLite unpacks with
//! `json_each`. Merges log and move events in memory too; only the rarest steps (an
//! undo's blocks) go to SQL at once through the [`SqlStore`] underneath.
//!
//! Nothing is written before [`BatchStore::flush`], which the object runs inside the
//! storage's `transactionSync`: a fault while resolving answers 500 with storage
//! untouched, and a statement of the flush that fails takes back those before it, so a
//! resend is resolved afresh. Rows go to SQL in parameters of at most 1 MiB each (the
//! platform takes 2 MB in one value). Segment decisions are written after the
//! transaction; if that fails, the request answers 500, and the affected profiles are
//! judged again on their next event.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;
use weft_core::event::Event;
use weft_core::identity::{IdKind, Identifier, Merge, MergeId, Store, StoreError};
use weft_core::profile::{Held, Profile, ProfileId};
use weft_core::segment::Evaluation;
use weft_core::time::Millis;
use worker::SqlStorageValue;

use crate::sql_store::SqlStore;

/// A profile as this request knows it.
enum Slot {
    Present(Box<Profile>),
    /// Moved out to the engine, which always saves or deletes it before it returns.
    Taken,
    /// Deleted by a merge in this request, or absent from storage.
    Gone,
}

/// An event's stored form: a byte range of [`BatchStore`]'s `bodies`.
#[derive(Debug, Clone, Copy)]
struct Body {
    start: usize,
    len: usize,
}

/// A change to events stored before this request.
#[derive(Debug, Clone, Copy)]
enum EventChange {
    Move { from: ProfileId, into: ProfileId },
    Drop(ProfileId),
}

/// An event to append to a profile's stored events.
struct Appended {
    profile: ProfileId,
    received_at: Millis,
    body: Body,
}

/// What [`BatchStore::prefetch`] read that is not the store's own.
#[derive(Debug, Default)]
pub struct Prefetched {
    /// The stored evaluations of the profiles the request's identifiers point to.
    pub evaluations: HashMap<ProfileId, Evaluation>,
    /// Whether any identifier was ever erased (events must then be checked).
    pub any_erased: bool,
}

/// The identity store of one ingest request (see the module's documentation).
pub struct BatchStore {
    base: SqlStore,
    /// Owners known for identifiers: `None` when the identifier is in no profile.
    owners: HashMap<Identifier, Option<ProfileId>>,
    /// Identifier rows to write: the profile and first-seen time to insert or move to,
    /// or `None` to delete.
    links: HashMap<Identifier, Option<(ProfileId, Millis)>>,
    profiles: HashMap<ProfileId, Slot>,
    dirty: BTreeSet<ProfileId>,
    /// `(source, messageId)` looked up by [`BatchStore::prefetch`].
    checked: HashSet<(String, String)>,
    /// Of those, the ones stored by an earlier request.
    seen_before: HashSet<(String, String)>,
    /// `(source, messageId)` first seen in this request, in order.
    remembered: Vec<(String, String, Millis)>,
    remembered_set: HashSet<(String, String)>,
    events: Vec<Appended>,
    /// Stored events to move to another profile (merges) or drop, in order.
    event_changes: Vec<EventChange>,
    /// Merges logged by this request.
    merges: Vec<Merge>,
    /// The highest merge id in the log, once read.
    last_merge: Option<MergeId>,
    archived: Vec<(Millis, Body)>,
    /// The last profile id handed out, as stored (`None`: none yet).
    last_profile: Option<ProfileId>,
    /// Whether `last_profile` was read.
    counter_read: bool,
    /// The last profile id this request handed out.
    next_profile: Option<ProfileId>,
    /// The stored forms of the request's events, one after the other. They reach SQL as
    /// one blob that the statements cut with `substr`, so the JSON is neither escaped
    /// into nor unescaped out of the statements' parameters.
    bodies: Vec<u8>,
    /// The stored form of the event being ingested, set by [`BatchStore::set_body`].
    body: Option<Body>,
}

impl BatchStore {
    /// An empty batch over `base`.
    pub fn new(base: SqlStore) -> BatchStore {
        BatchStore {
            base,
            owners: HashMap::new(),
            links: HashMap::new(),
            profiles: HashMap::new(),
            dirty: BTreeSet::new(),
            checked: HashSet::new(),
            seen_before: HashSet::new(),
            remembered: Vec::new(),
            remembered_set: HashSet::new(),
            events: Vec::new(),
            event_changes: Vec::new(),
            merges: Vec::new(),
            last_merge: None,
            archived: Vec::new(),
            last_profile: None,
            counter_read: false,
            next_profile: None,
            bodies: Vec::new(),
            body: None,
        }
    }

    /// Reads, in one statement, what the request needs up front: the owners of `ids`,
    /// their profiles and stored evaluations, which of `messages` (`(source, messageId)`)
    /// were stored before, the profile id counter, and whether anything was ever erased.
    ///
    /// # Errors
    /// [`StoreError`] when the statement fails or a stored profile cannot be read.
    pub fn prefetch(
        &mut self,
        ids: &[Identifier],
        messages: &[(&str, &str)],
    ) -> Result<Prefetched, StoreError> {
        let keys: Vec<(&str, &str)> = ids
            .iter()
            .map(|id| (id.kind.as_str(), id.value.as_str()))
            .collect();
        // The runtime's SQLite takes at most five terms in a compound SELECT.
        let cursor = self
            .base
            .sql()
            .exec(
                "WITH owned AS (SELECT i.kind, i.value, i.profile_id FROM json_each(?1) j \
                 JOIN identifiers i ON i.kind = j.value ->> 0 AND i.value = j.value ->> 1) \
                 SELECT 'id', kind, value, profile_id FROM owned \
                 UNION ALL SELECT 'profile', p.id, p.body, NULL FROM profiles p \
                 WHERE p.id IN (SELECT profile_id FROM owned) \
                 UNION ALL SELECT 'evaluation', e.profile_id, e.body, NULL FROM evaluations e \
                 WHERE e.profile_id IN (SELECT profile_id FROM owned) \
                 UNION ALL SELECT 'seen', s.source, s.message_id, NULL FROM json_each(?2) j \
                 JOIN seen s ON s.source = j.value ->> 0 AND s.message_id = j.value ->> 1 \
                 UNION ALL SELECT 'meta', \
                 (SELECT value FROM meta WHERE key = 'next_profile'), NULL, \
                 EXISTS (SELECT 1 FROM suppressed)",
                vec![
                    SqlStorageValue::String(json_param(&keys)?),
                    SqlStorageValue::String(json_param(messages)?),
                ],
            )
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut out = Prefetched::default();
        for row in cursor.raw() {
            let row = row.map_err(|e| StoreError::Backend(e.to_string()))?;
            let [tag, a, b, c] = row.as_slice() else {
                return Err(corrupt("prefetch row"));
            };
            match (text(tag), text(a), text(b), integer(c)) {
                (Some("id"), Some(kind), Some(value), Some(profile)) => {
                    let id = Identifier::new(IdKind::from_name(kind), value);
                    self.owners.insert(id, Some(profile));
                }
                (Some("profile"), _, Some(body), _) => {
                    let id = integer(a).ok_or_else(|| corrupt("profile row"))?;
                    let profile: Profile = serde_json::from_str(body)
                        .map_err(|e| StoreError::Corrupt(format!("profile {id}: {e}")))?;
                    self.profiles.insert(id, Slot::Present(Box::new(profile)));
                }
                (Some("evaluation"), _, Some(body), _) => {
                    let id = integer(a).ok_or_else(|| corrupt("evaluation row"))?;
                    // One that no longer reads is judged whole again.
                    if let Ok(evaluation) = serde_json::from_str(body) {
                        out.evaluations.insert(id, evaluation);
                    }
                }
                (Some("seen"), Some(source), Some(message), _) => {
                    self.seen_before
                        .insert((source.to_owned(), message.to_owned()));
                }
                (Some("meta"), _, _, Some(erased)) => {
                    self.last_profile = integer(a);
                    out.any_erased = erased != 0;
                }
                _ => return Err(corrupt("prefetch row")),
            }
        }
        for id in ids {
            self.owners.entry(id.clone()).or_insert(None);
        }
        self.checked.extend(
            messages
                .iter()
                .map(|(source, message)| ((*source).to_owned(), (*message).to_owned())),
        );
        self.counter_read = true;
        Ok(out)
    }

    /// Sets the stored form of the next event handed to the engine (its JSON as the
    /// collector sent it), so that it is not serialised again.
    pub fn set_body(&mut self, body: &str) {
        self.body = Some(self.keep(body.as_bytes()));
    }

    /// Queues the current event for the R2 archive.
    ///
    /// # Errors
    /// [`StoreError`] when the event has no body set and cannot be serialised.
    pub fn queue_for_archive(&mut self, event: &Event) -> Result<(), StoreError> {
        let body = self.body_of(event)?;
        self.archived.push((event.received_at, body));
        Ok(())
    }

    fn keep(&mut self, bytes: &[u8]) -> Body {
        let start = self.bodies.len();
        self.bodies.extend_from_slice(bytes);
        Body {
            start,
            len: bytes.len(),
        }
    }

    fn body_of(&mut self, event: &Event) -> Result<Body, StoreError> {
        match self.body {
            Some(body) => Ok(body),
            None => {
                let text =
                    serde_json::to_string(event).map_err(|e| StoreError::Backend(e.to_string()))?;
                let body = self.keep(text.as_bytes());
                self.body = Some(body);
                Ok(body)
            }
        }
    }

    fn text_of(&self, body: Body) -> &[u8] {
        &self.bodies[body.start..body.start + body.len]
    }

    /// Writes everything the request changed, one statement per table, `seen` last.
    ///
    /// # Errors
    /// [`StoreError`] when a statement fails.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let sql = self.base.sql().clone();
        // Rows naming a body by its byte range, cut from the blob of bodies (substr
        // counts bytes in a blob, from 1).
        let with_bodies = |query: &str, rows: String, bodies: &[u8]| {
            sql.exec(
                query,
                vec![
                    SqlStorageValue::String(rows),
                    SqlStorageValue::Blob(bodies.to_vec()),
                ],
            )
            .map(|_| ())
            .map_err(|e| StoreError::Backend(e.to_string()))
        };
        for change in std::mem::take(&mut self.event_changes) {
            match change {
                EventChange::Move { from, into } => self.base.move_events(from, into)?,
                EventChange::Drop(profile) => self.base.drop_events(profile)?,
            }
        }
        for merge in std::mem::take(&mut self.merges) {
            self.base.insert_merge(&merge)?;
        }
        let mut saved = Vec::new();
        let mut deleted = Vec::new();
        for id in std::mem::take(&mut self.dirty) {
            match self.profiles.get(&id) {
                Some(Slot::Present(profile)) => {
                    let body = serde_json::to_string(profile)
                        .map_err(|e| StoreError::Backend(e.to_string()))?;
                    saved.push(Value::from(vec![Value::from(id), Value::from(body)]));
                }
                Some(Slot::Gone) => deleted.push(id),
                // The engine returns every profile it takes before it returns itself.
                Some(Slot::Taken) | None => {
                    return Err(StoreError::Backend(format!(
                        "profile {id} was taken and never put back"
                    )))
                }
            }
        }
        write_rows(
            &sql,
            "INSERT OR REPLACE INTO profiles (id, body) \
             SELECT value ->> 0, value ->> 1 FROM json_each(?)",
            &saved,
        )?;
        write_rows(
            &sql,
            "DELETE FROM profiles WHERE id IN (SELECT value FROM json_each(?))",
            &deleted,
        )?;
        let mut linked = Vec::new();
        let mut unlinked = Vec::new();
        for (id, held) in self.links.drain() {
            match held {
                Some((profile, first_seen)) => {
                    linked.push((id.kind.as_str().to_owned(), id.value, profile, first_seen))
                }
                None => unlinked.push((id.kind.as_str().to_owned(), id.value)),
            }
        }
        write_rows(
            &sql,
            "DELETE FROM identifiers WHERE (kind, value) IN \
             (SELECT value ->> 0, value ->> 1 FROM json_each(?))",
            &unlinked,
        )?;
        write_rows(
            &sql,
            "INSERT OR REPLACE INTO identifiers (kind, value, profile_id, first_seen) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?)",
            &linked,
        )?;
        if !self.events.is_empty() {
            let rows: Vec<(ProfileId, Millis, usize, usize)> = self
                .events
                .iter()
                .map(|e| (e.profile, e.received_at, e.body.start + 1, e.body.len))
                .collect();
            with_bodies(
                "INSERT INTO events (profile_id, received_at, body) \
                 SELECT value ->> 0, value ->> 1, \
                 CAST(substr(?2, value ->> 2, value ->> 3) AS TEXT) \
                 FROM json_each(?1) ORDER BY key",
                json_param(&rows)?,
                &self.bodies,
            )?;
            self.events.clear();
        }
        if !self.archived.is_empty() {
            let rows: Vec<(Millis, usize, usize)> = self
                .archived
                .iter()
                .map(|(at, body)| (*at, body.start + 1, body.len))
                .collect();
            with_bodies(
                "INSERT INTO archive_queue (received_at, body) \
                 SELECT value ->> 0, CAST(substr(?2, value ->> 1, value ->> 2) AS TEXT) \
                 FROM json_each(?1) ORDER BY key",
                json_param(&rows)?,
                &self.bodies,
            )?;
            self.archived.clear();
        }
        self.bodies.clear();
        self.body = None;
        if let Some(next) = self.next_profile {
            sql.exec(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_profile', ?)",
                vec![SqlStorageValue::Integer(next as i64)],
            )
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        }
        if !self.remembered.is_empty() {
            write_rows(
                &sql,
                "INSERT OR IGNORE INTO seen (source, message_id, at) \
                 SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
                &self.remembered,
            )?;
            for (source, message, _) in self.remembered.drain(..) {
                self.seen_before.insert((source, message));
            }
            self.remembered_set.clear();
        }
        Ok(())
    }

    /// A profile as the request left it (for evaluating segments after [`Self::flush`]).
    pub fn profile(&self, id: ProfileId) -> Option<&Profile> {
        match self.profiles.get(&id) {
            Some(Slot::Present(profile)) => Some(profile),
            _ => None,
        }
    }
}

fn json_param<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

/// The most bytes of rows passed in one parameter: the platform takes at most 2 MB in one
/// SQL value.
const MAX_PARAM_BYTES: usize = 1 << 20;

/// Runs `query` over `rows`, passed as JSON arrays that it unpacks with `json_each`: no
/// statement when there are none, several when they would not fit one parameter.
///
/// # Errors
/// [`StoreError`] when a row cannot be written as JSON or a statement fails.
pub fn write_rows<T: serde::Serialize>(
    sql: &worker::SqlStorage,
    query: &str,
    rows: &[T],
) -> Result<(), StoreError> {
    let mut param = String::from("[");
    for row in rows {
        let text = json_param(row)?;
        if param.len() > 1 && param.len() + text.len() + 2 > MAX_PARAM_BYTES {
            param.push(']');
            exec_rows(sql, query, std::mem::replace(&mut param, String::from("[")))?;
        }
        if param.len() > 1 {
            param.push(',');
        }
        param.push_str(&text);
    }
    if param.len() > 1 {
        param.push(']');
        exec_rows(sql, query, param)?;
    }
    Ok(())
}

fn exec_rows(sql: &worker::SqlStorage, query: &str, param: String) -> Result<(), StoreError> {
    sql.exec(query, vec![SqlStorageValue::String(param)])
        .map(|_| ())
        .map_err(|e| StoreError::Backend(e.to_string()))
}

fn text(value: &SqlStorageValue) -> Option<&str> {
    match value {
        SqlStorageValue::String(s) => Some(s),
        _ => None,
    }
}

fn integer(value: &SqlStorageValue) -> Option<u64> {
    match value {
        SqlStorageValue::Integer(n) => u64::try_from(*n).ok(),
        SqlStorageValue::Float(f) if *f >= 0.0 && f.fract() == 0.0 => Some(*f as u64),
        _ => None,
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("unexpected {what} shape"))
}

impl Store for BatchStore {
    fn profile_of(&self, id: &Identifier) -> Result<Option<ProfileId>, StoreError> {
        match self.owners.get(id) {
            Some(owner) => Ok(*owner),
            None => self.base.profile_of(id),
        }
    }

    fn load(&self, profile: ProfileId) -> Result<Option<Profile>, StoreError> {
        match self.profiles.get(&profile) {
            Some(Slot::Present(p)) => Ok(Some(Profile::clone(p))),
            Some(Slot::Gone) => Ok(None),
            Some(Slot::Taken) => Err(StoreError::Backend(format!(
                "profile {profile} read while the engine holds it"
            ))),
            None => self.base.load(profile),
        }
    }

    fn take(&mut self, profile: ProfileId) -> Result<Option<Profile>, StoreError> {
        match self.profiles.insert(profile, Slot::Taken) {
            Some(Slot::Present(p)) => Ok(Some(*p)),
            Some(Slot::Gone) => {
                self.profiles.insert(profile, Slot::Gone);
                Ok(None)
            }
            Some(Slot::Taken) => Err(StoreError::Backend(format!(
                "profile {profile} taken twice"
            ))),
            None => match self.base.load(profile)? {
                Some(p) => Ok(Some(p)),
                None => {
                    self.profiles.insert(profile, Slot::Gone);
                    Ok(None)
                }
            },
        }
    }

    fn save(&mut self, profile: Profile) -> Result<(), StoreError> {
        self.dirty.insert(profile.id);
        self.profiles
            .insert(profile.id, Slot::Present(Box::new(profile)));
        Ok(())
    }

    fn delete(&mut self, profile: ProfileId) -> Result<(), StoreError> {
        self.dirty.insert(profile);
        self.profiles.insert(profile, Slot::Gone);
        Ok(())
    }

    fn link(&mut self, held: &Held, profile: ProfileId) -> Result<(), StoreError> {
        self.owners.insert(held.id.clone(), Some(profile));
        self.links
            .insert(held.id.clone(), Some((profile, held.first_seen)));
        Ok(())
    }

    fn unlink(&mut self, id: &Identifier) -> Result<(), StoreError> {
        self.owners.insert(id.clone(), None);
        self.links.insert(id.clone(), None);
        Ok(())
    }

    fn next_profile_id(&mut self) -> Result<ProfileId, StoreError> {
        if !self.counter_read {
            self.last_profile = crate::sql_store::scalar::<f64>(
                self.base.sql(),
                "SELECT value FROM meta WHERE key = 'next_profile'",
                vec![],
            )
            .map_err(|e| StoreError::Backend(e.to_string()))?
            .map(|n| n as ProfileId);
            self.counter_read = true;
        }
        let next = self.next_profile.or(self.last_profile).unwrap_or(0) + 1;
        self.next_profile = Some(next);
        Ok(next)
    }

    fn remember(&mut self, source: &str, message_id: &str, at: Millis) -> Result<bool, StoreError> {
        let key = (source.to_owned(), message_id.to_owned());
        if self.seen_before.contains(&key) || self.remembered_set.contains(&key) {
            return Ok(false);
        }
        if !self.checked.contains(&key) && self.base.was_seen(source, message_id)? {
            return Ok(false);
        }
        self.remembered_set.insert(key.clone());
        self.remembered.push((key.0, key.1, at));
        Ok(true)
    }

    fn append_event(&mut self, profile: ProfileId, event: &Event) -> Result<(), StoreError> {
        let body = self.body_of(event)?;
        self.events.push(Appended {
            profile,
            received_at: event.received_at,
            body,
        });
        Ok(())
    }

    fn events_of(&self, profile: ProfileId) -> Result<Vec<Event>, StoreError> {
        if !self.event_changes.is_empty() {
            // Ingest never reads events back; only an undo would, after moving some.
            return Err(StoreError::Backend(
                "stored events read while moves of them are pending".into(),
            ));
        }
        let mut events = self.base.events_of(profile)?;
        for appended in self.events.iter().filter(|e| e.profile == profile) {
            events.push(
                serde_json::from_slice(self.text_of(appended.body))
                    .map_err(|e| StoreError::Corrupt(format!("queued event: {e}")))?,
            );
        }
        Ok(events)
    }

    fn move_events(&mut self, from: ProfileId, into: ProfileId) -> Result<(), StoreError> {
        self.event_changes.push(EventChange::Move { from, into });
        for appended in self.events.iter_mut().filter(|e| e.profile == from) {
            appended.profile = into;
        }
        Ok(())
    }

    fn drop_events(&mut self, profile: ProfileId) -> Result<(), StoreError> {
        self.event_changes.push(EventChange::Drop(profile));
        self.events.retain(|e| e.profile != profile);
        Ok(())
    }

    fn record_merge(&mut self, mut merge: Merge) -> Result<MergeId, StoreError> {
        let last = match self.last_merge {
            Some(last) => last,
            None => crate::sql_store::scalar::<f64>(
                self.base.sql(),
                "SELECT MAX(id) AS v FROM merges",
                vec![],
            )
            .map_err(|e| StoreError::Backend(e.to_string()))?
            .map_or(0, |n| n as MergeId),
        };
        merge.id = last + 1;
        self.last_merge = Some(merge.id);
        self.merges.push(merge);
        Ok(last + 1)
    }

    fn merge(&self, id: MergeId) -> Result<Option<Merge>, StoreError> {
        match self.merges.iter().find(|m| m.id == id) {
            Some(merge) => Ok(Some(merge.clone())),
            None => self.base.merge(id),
        }
    }

    fn merges_of(&self, profile: ProfileId) -> Result<Vec<Merge>, StoreError> {
        let mut merges = self.base.merges_of(profile)?;
        merges.extend(
            self.merges
                .iter()
                .filter(|m| m.from == profile || m.into == profile)
                .cloned(),
        );
        Ok(merges)
    }

    fn mark_undone(&mut self, id: MergeId, at: Millis) -> Result<(), StoreError> {
        match self.merges.iter_mut().find(|m| m.id == id) {
            Some(merge) => {
                merge.undone = Some(at);
                Ok(())
            }
            None => self.base.mark_undone(id, at),
        }
    }

    fn block(&mut self, a: &Identifier, b: &Identifier) -> Result<(), StoreError> {
        self.base.block(a, b)
    }

    fn is_blocked(&self, a: &Identifier, b: &Identifier) -> Result<bool, StoreError> {
        self.base.is_blocked(a, b)
    }

    fn has_blocks(&self) -> Result<bool, StoreError> {
        self.base.has_blocks()
    }
}

/// Counters added in memory during a request, written in one statement.
pub fn count_all(sql: &worker::SqlStorage, counts: &BTreeMap<String, u64>) -> worker::Result<()> {
    if counts.is_empty() {
        return Ok(());
    }
    let rows: Vec<(&str, u64)> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let param =
        serde_json::to_string(&rows).map_err(|e| worker::Error::RustError(e.to_string()))?;
    sql.exec(
        "INSERT INTO metrics (name, count) SELECT value ->> 0, value ->> 1 FROM json_each(?) \
         WHERE true ON CONFLICT (name) DO UPDATE SET count = count + excluded.count",
        vec![SqlStorageValue::String(param)],
    )?;
    Ok(())
}
