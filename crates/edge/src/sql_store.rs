//! The identity graph's storage in the Durable Object's SQLite database.
//!
//! [`SqlStore`] implements core's [`Store`] with one or two statements per step, so an
//! event touches only the rows of the identifiers and profiles it concerns. The schema
//! carries a version in `meta` and [`migrate`] brings an older database forward when
//! the object starts. All statements run synchronously inside one request turn, which
//! the runtime commits atomically before the answer leaves the object.

use std::cell::Cell;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use weft_core::event::Event;
use weft_core::identity::{Identifier, Merge, MergeId, Store, StoreError};
use weft_core::profile::{Held, Profile, ProfileId};
use weft_core::time::Millis;
use worker::{SqlStorage, SqlStorageValue};

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS profiles (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS identifiers (kind TEXT NOT NULL, value TEXT NOT NULL, \
     profile_id INTEGER NOT NULL, first_seen INTEGER NOT NULL, PRIMARY KEY (kind, value))",
    "CREATE INDEX IF NOT EXISTS identifiers_by_profile ON identifiers (profile_id)",
    "CREATE TABLE IF NOT EXISTS seen (source TEXT NOT NULL, message_id TEXT NOT NULL, \
     at INTEGER NOT NULL, PRIMARY KEY (source, message_id))",
    "CREATE INDEX IF NOT EXISTS seen_by_time ON seen (at)",
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
     profile_id INTEGER NOT NULL, received_at INTEGER NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_by_profile ON events (profile_id, seq)",
    "CREATE TABLE IF NOT EXISTS archive_queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
     received_at INTEGER NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS merges (id INTEGER PRIMARY KEY, from_id INTEGER NOT NULL, \
     into_id INTEGER NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS merges_from ON merges (from_id)",
    "CREATE INDEX IF NOT EXISTS merges_into ON merges (into_id)",
    "CREATE TABLE IF NOT EXISTS blocked (a TEXT NOT NULL, b TEXT NOT NULL, PRIMARY KEY (a, b))",
    "CREATE TABLE IF NOT EXISTS suppressed (id TEXT PRIMARY KEY, at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS segments (name TEXT PRIMARY KEY, body TEXT NOT NULL, \
     updated_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS published (key TEXT PRIMARY KEY, profile_id INTEGER NOT NULL, \
     segments TEXT NOT NULL, valid_until INTEGER, version INTEGER NOT NULL, \
     written_at INTEGER NOT NULL, pending INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS published_pending ON published (pending)",
    "CREATE INDEX IF NOT EXISTS published_by_profile ON published (profile_id)",
    "CREATE TABLE IF NOT EXISTS lapses (profile_id INTEGER PRIMARY KEY, at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS lapses_by_time ON lapses (at)",
    "CREATE TABLE IF NOT EXISTS evaluations (profile_id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS metrics (name TEXT PRIMARY KEY, count INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS kv_deletes (key TEXT PRIMARY KEY, at INTEGER NOT NULL)",
];

/// Creates the tables, or brings an older schema forward to [`SCHEMA_VERSION`].
///
/// # Errors
/// The SQL error, when a statement fails.
pub fn migrate(sql: &SqlStorage) -> worker::Result<()> {
    for statement in SCHEMA_V1 {
        sql.exec(statement, None)?;
    }
    let version: Option<f64> = scalar(sql, "SELECT value FROM meta WHERE key = 'schema'", vec![])?;
    // Version 1 is the first schema; later versions add their steps here, in order.
    if version.is_none_or(|v| (v as i64) < SCHEMA_VERSION) {
        sql.exec(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)",
            vec![SCHEMA_VERSION.into()],
        )?;
    }
    Ok(())
}

/// Reads the first column of the first row, if any.
///
/// # Errors
/// The SQL error.
pub fn scalar<T: DeserializeOwned>(
    sql: &SqlStorage,
    query: &str,
    params: Vec<SqlStorageValue>,
) -> worker::Result<Option<T>> {
    let rows: Vec<serde_json::Map<String, serde_json::Value>> =
        sql.exec(query, params)?.to_array()?;
    let value = rows
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next())
        .map(|(_, v)| v);
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| worker::Error::RustError(format!("{query}: {e}"))),
    }
}

/// Adds `by` to a counter in the metrics table.
///
/// # Errors
/// The SQL error.
pub fn count(sql: &SqlStorage, name: &str, by: u64) -> worker::Result<()> {
    sql.exec(
        "INSERT INTO metrics (name, count) VALUES (?, ?) \
         ON CONFLICT (name) DO UPDATE SET count = count + excluded.count",
        vec![name.into(), (by as i64).into()],
    )?;
    Ok(())
}

/// The identity graph's [`Store`] over the Durable Object's SQLite storage.
pub struct SqlStore {
    sql: SqlStorage,
    has_blocks: Cell<Option<bool>>,
}

impl SqlStore {
    /// A store over `sql`, which [`migrate`] has prepared.
    pub fn new(sql: SqlStorage) -> SqlStore {
        SqlStore {
            sql,
            has_blocks: Cell::new(None),
        }
    }

    /// The SQL handle, for the object's own tables.
    pub fn sql(&self) -> &SqlStorage {
        &self.sql
    }

    /// Queues an event for the R2 archive.
    ///
    /// # Errors
    /// The SQL error.
    pub fn queue_for_archive(&self, event: &Event) -> Result<(), StoreError> {
        let body = to_json(event)?;
        self.exec(
            "INSERT INTO archive_queue (received_at, body) VALUES (?, ?)",
            vec![event.received_at.into(), body.into()],
        )
    }

    /// Adds a merge, its id already assigned, to the log.
    ///
    /// # Errors
    /// The SQL error.
    pub fn insert_merge(&self, merge: &Merge) -> Result<(), StoreError> {
        let body = to_json(merge)?;
        self.exec(
            "INSERT INTO merges (id, from_id, into_id, body) VALUES (?, ?, ?, ?)",
            vec![
                id_param(merge.id),
                id_param(merge.from),
                id_param(merge.into),
                body.into(),
            ],
        )
    }

    /// Whether `(source, message_id)` was stored before.
    ///
    /// # Errors
    /// The SQL error.
    pub fn was_seen(&self, source: &str, message_id: &str) -> Result<bool, StoreError> {
        let rows: Vec<serde_json::Value> = self.rows(
            "SELECT 1 AS v FROM seen WHERE source = ? AND message_id = ?",
            vec![source.into(), message_id.into()],
        )?;
        Ok(!rows.is_empty())
    }

    fn exec(&self, query: &str, params: Vec<SqlStorageValue>) -> Result<(), StoreError> {
        self.sql.exec(query, params).map(|_| ()).map_err(backend)
    }

    fn rows<T: DeserializeOwned>(
        &self,
        query: &str,
        params: Vec<SqlStorageValue>,
    ) -> Result<Vec<T>, StoreError> {
        self.sql
            .exec(query, params)
            .and_then(|c| c.to_array())
            .map_err(backend)
    }

    fn bodies<T: DeserializeOwned>(
        &self,
        query: &str,
        params: Vec<SqlStorageValue>,
    ) -> Result<Vec<T>, StoreError> {
        #[derive(Deserialize)]
        struct Body {
            body: String,
        }
        self.rows::<Body>(query, params)?
            .into_iter()
            .map(|row| serde_json::from_str(&row.body).map_err(|e| corrupt(query, e)))
            .collect()
    }
}

fn backend(e: worker::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn corrupt(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

fn id_param(id: ProfileId) -> SqlStorageValue {
    SqlStorageValue::Integer(id as i64)
}

fn pair(a: &Identifier, b: &Identifier) -> (String, String) {
    let (a, b) = (a.to_string(), b.to_string());
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

impl Store for SqlStore {
    fn profile_of(&self, id: &Identifier) -> Result<Option<ProfileId>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            profile_id: f64,
        }
        let rows: Vec<Row> = self.rows(
            "SELECT profile_id FROM identifiers WHERE kind = ? AND value = ?",
            vec![id.kind.as_str().into(), id.value.as_str().into()],
        )?;
        Ok(rows.first().map(|r| r.profile_id as ProfileId))
    }

    fn load(&self, profile: ProfileId) -> Result<Option<Profile>, StoreError> {
        let mut found: Vec<Profile> = self.bodies(
            "SELECT body FROM profiles WHERE id = ?",
            vec![id_param(profile)],
        )?;
        Ok(found.pop())
    }

    fn save(&mut self, profile: Profile) -> Result<(), StoreError> {
        let body = to_json(&profile)?;
        self.exec(
            "INSERT OR REPLACE INTO profiles (id, body) VALUES (?, ?)",
            vec![id_param(profile.id), body.into()],
        )
    }

    fn delete(&mut self, profile: ProfileId) -> Result<(), StoreError> {
        self.exec("DELETE FROM profiles WHERE id = ?", vec![id_param(profile)])
    }

    fn link(&mut self, held: &Held, profile: ProfileId) -> Result<(), StoreError> {
        self.exec(
            "INSERT OR REPLACE INTO identifiers (kind, value, profile_id, first_seen) \
             VALUES (?, ?, ?, ?)",
            vec![
                held.id.kind.as_str().into(),
                held.id.value.as_str().into(),
                id_param(profile),
                held.first_seen.into(),
            ],
        )
    }

    fn unlink(&mut self, id: &Identifier) -> Result<(), StoreError> {
        self.exec(
            "DELETE FROM identifiers WHERE kind = ? AND value = ?",
            vec![id.kind.as_str().into(), id.value.as_str().into()],
        )
    }

    fn next_profile_id(&mut self) -> Result<ProfileId, StoreError> {
        self.exec(
            "INSERT INTO meta (key, value) VALUES ('next_profile', 1) \
             ON CONFLICT (key) DO UPDATE SET value = value + 1",
            vec![],
        )?;
        let next: Option<f64> = scalar(
            &self.sql,
            "SELECT value FROM meta WHERE key = 'next_profile'",
            vec![],
        )
        .map_err(backend)?;
        next.map(|n| n as ProfileId)
            .ok_or_else(|| StoreError::Corrupt("profile id counter is missing".into()))
    }

    fn remember(&mut self, source: &str, message_id: &str, at: Millis) -> Result<bool, StoreError> {
        let cursor = self
            .sql
            .exec(
                "INSERT OR IGNORE INTO seen (source, message_id, at) VALUES (?, ?, ?)",
                vec![source.into(), message_id.into(), at.into()],
            )
            .map_err(backend)?;
        // Drain the cursor so its counters are final.
        let _: Vec<serde_json::Value> = cursor.to_array().map_err(backend)?;
        Ok(cursor.rows_written() > 0)
    }

    fn append_event(&mut self, profile: ProfileId, event: &Event) -> Result<(), StoreError> {
        let body = to_json(event)?;
        self.exec(
            "INSERT INTO events (profile_id, received_at, body) VALUES (?, ?, ?)",
            vec![id_param(profile), event.received_at.into(), body.into()],
        )
    }

    fn events_of(&self, profile: ProfileId) -> Result<Vec<Event>, StoreError> {
        self.bodies(
            "SELECT body FROM events WHERE profile_id = ? ORDER BY seq",
            vec![id_param(profile)],
        )
    }

    fn move_events(&mut self, from: ProfileId, into: ProfileId) -> Result<(), StoreError> {
        self.exec(
            "UPDATE events SET profile_id = ? WHERE profile_id = ?",
            vec![id_param(into), id_param(from)],
        )
    }

    fn drop_events(&mut self, profile: ProfileId) -> Result<(), StoreError> {
        self.exec(
            "DELETE FROM events WHERE profile_id = ?",
            vec![id_param(profile)],
        )
    }

    fn record_merge(&mut self, mut merge: Merge) -> Result<MergeId, StoreError> {
        let last: Option<f64> =
            scalar(&self.sql, "SELECT MAX(id) AS v FROM merges", vec![]).map_err(backend)?;
        merge.id = last.map_or(1, |n| n as MergeId + 1);
        self.insert_merge(&merge)?;
        Ok(merge.id)
    }

    fn merge(&self, id: MergeId) -> Result<Option<Merge>, StoreError> {
        let mut found: Vec<Merge> =
            self.bodies("SELECT body FROM merges WHERE id = ?", vec![id_param(id)])?;
        Ok(found.pop())
    }

    fn merges_of(&self, profile: ProfileId) -> Result<Vec<Merge>, StoreError> {
        self.bodies(
            "SELECT body FROM merges WHERE from_id = ? OR into_id = ? ORDER BY id",
            vec![id_param(profile), id_param(profile)],
        )
    }

    fn mark_undone(&mut self, id: MergeId, at: Millis) -> Result<(), StoreError> {
        let Some(mut merge) = self.merge(id)? else {
            return Ok(());
        };
        merge.undone = Some(at);
        let body = to_json(&merge)?;
        self.exec(
            "UPDATE merges SET body = ? WHERE id = ?",
            vec![body.into(), id_param(id)],
        )
    }

    fn block(&mut self, a: &Identifier, b: &Identifier) -> Result<(), StoreError> {
        let (a, b) = pair(a, b);
        self.has_blocks.set(Some(true));
        self.exec(
            "INSERT OR IGNORE INTO blocked (a, b) VALUES (?, ?)",
            vec![a.into(), b.into()],
        )
    }

    fn is_blocked(&self, a: &Identifier, b: &Identifier) -> Result<bool, StoreError> {
        let (a, b) = pair(a, b);
        let rows: Vec<serde_json::Value> = self.rows(
            "SELECT 1 AS v FROM blocked WHERE a = ? AND b = ?",
            vec![a.into(), b.into()],
        )?;
        Ok(!rows.is_empty())
    }

    fn has_blocks(&self) -> Result<bool, StoreError> {
        if let Some(known) = self.has_blocks.get() {
            return Ok(known);
        }
        let rows: Vec<serde_json::Value> =
            self.rows("SELECT 1 AS v FROM blocked LIMIT 1", vec![])?;
        let known = !rows.is_empty();
        self.has_blocks.set(Some(known));
        Ok(known)
    }
}
