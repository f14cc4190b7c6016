//! The `IdentityGraph` Durable Object: the single writer of a workspace's profiles.
//!
//! Every event goes through here: it is deduplicated and resolved by core's identity
//! engine, queued for the R2 archive, and the profiles it changed are
//! evaluated against the workspace's segments; their decision docs go to KV when they
//! change (see [`crate::publish`]). An ingest request works over a [`BatchStore`]: the
//! rows its events need are read in one statement, resolved in memory, and written back
//! with one statement per table. Admin routes work over [`SqlStore`] a step at a time.
//! All SQL of one request runs in one synchronous turn,
//! so it commits atomically before the worker answers; KV writes follow. The alarm flushes
//! coalesced KV writes, re-evaluates profiles whose windowed rules lapse, and archives.
//!
//! The admin API's state lives here too: profiles, segment definitions stored over the
//! API, the merge log, erasure and metrics.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use weft_core::event::Event;
use weft_core::identity::{self, IdKind, Identifier, IngestError, Merge, Store};
use weft_core::profile::{Profile, ProfileId};
use weft_core::segment::{Decision, Definition, Evaluation, Segments, Touched};
use weft_core::time::{Millis, DAY, HOUR};
use worker::{
    durable_object, DurableObject, Env, Method, Request, Response, SqlStorage, SqlStorageValue,
    State,
};

use crate::archive;
use crate::batch::{count_all, BatchStore};
use crate::collect::{GraphWarning, Stored};
use crate::config::{BotPolicy, Config};
use crate::decide::{anonymous_key, user_key, KV_BINDING, MAX_ID_LEN};
use crate::publish::{self, Action, Published};
use crate::sql_store::{self, count, scalar, SqlStore};

/// Segment definitions kept as files in `segments/`, bundled at build time.
pub mod bundled {
    include!(concat!(env!("OUT_DIR"), "/segments.rs"));
}

/// The Durable Object holding one workspace's identity graph.
#[durable_object]
pub struct IdentityGraph {
    state: State,
    env: Env,
    storage: JsValue,
    sql: SqlStorage,
    store: RefCell<SqlStore>,
    segments: RefCell<Segments>,
    startup_error: RefCell<Option<String>>,
    /// The alarm this object set, when it knows (`Some(None)`: none is set).
    alarm_at: Cell<Option<Option<Millis>>>,
    limiter: crate::ratelimit::Limiter,
}

/// What [`IdentityGraph::publish_changes`] decided.
struct Planned {
    /// KV writes to make now.
    writes: Vec<KvWrite>,
    /// How many (for the metrics).
    written: u64,
    /// The earliest pending doc or lapse it left for the alarm.
    wake: Option<Millis>,
}

/// A KV write decided inside the synchronous turn, done after it.
struct KvWrite {
    key: String,
    doc: Option<String>,
}

impl DurableObject for IdentityGraph {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        // The raw storage object, for `transactionSync`, which the crate does not wrap.
        let raw = state._inner();
        let storage: JsValue = raw.storage().map(Into::into).unwrap_or(JsValue::UNDEFINED);
        let state = State::from(raw);
        // Never panic here: a constructor that fails leaves the object failing every
        // request until restarted. Faults are kept and answered as 500s naming them.
        let mut startup_error = sql_store::migrate(&sql)
            .err()
            .map(|e| format!("migration: {e}"));
        let segments = match load_segments(&sql) {
            Ok(s) => s,
            Err(e) => {
                startup_error.get_or_insert(e);
                Segments::default()
            }
        };
        IdentityGraph {
            state,
            env,
            storage,
            sql: sql.clone(),
            store: RefCell::new(SqlStore::new(sql)),
            segments: RefCell::new(segments),
            startup_error: RefCell::new(startup_error),
            alarm_at: Cell::new(None),
            limiter: Default::default(),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        if let Some(error) = self.startup_error.borrow().clone() {
            return json_error(500, &format!("identity graph failed to start: {error}"));
        }
        let url = req.url()?;
        let path = url.path().to_owned();
        let query: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let method = req.method();
        // Read as bytes: a JS string would be decoded from UTF-16 on its way into wasm.
        let body = match method {
            Method::Post | Method::Put => match String::from_utf8(req.bytes().await?) {
                Ok(text) => text,
                Err(_) => return json_error(400, "request body is not UTF-8"),
            },
            _ => String::new(),
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let now = now();
        match (method, parts.as_slice()) {
            (Method::Post, ["ingest"]) => self.ingest(&body, now).await,
            (Method::Get, ["profiles"]) => self.profile_view(param("id"), now),
            (Method::Delete, ["profiles"]) => self.erase(param("id"), now).await,
            (Method::Get, ["segments"]) => self.segment_list(),
            (Method::Get, ["segments", name]) => self.segment_get(name),
            (Method::Put, ["segments", name]) => self.segment_put(name, &body, now).await,
            (Method::Delete, ["segments", name]) => self.segment_delete(name, now).await,
            (Method::Get, ["merges"]) => self.merge_list(),
            (Method::Post, ["merges"]) => self.operator_merge(&body, now).await,
            (Method::Post, ["merges", id, "undo"]) => self.undo(id, now).await,
            (Method::Get, ["metrics"]) => self.metrics(),
            (Method::Get, ["explain"]) => self.explain(param("key"), now),
            (Method::Post, ["replay"]) => self.replay(now).await,
            // `make bench`'s floor for a collector request (the worker lets it through
            // only when `WEFT_BENCH` is 1): the body came, nothing is done with it.
            (Method::Post, ["bench", "hop"]) => Response::ok("{}"),
            _ => json_error(404, &format!("no graph route for {path}")),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        let now = now();
        // This alarm has rung: none is set until `schedule` below sets the next.
        self.alarm_at.set(Some(None));
        let writes = {
            let sql = self.sql();
            let mut writes = Vec::new();
            // Windowed rules that lapse now: evaluate again.
            let due: Vec<IdRow> = sql
                .exec(
                    "SELECT profile_id AS id FROM lapses WHERE at <= ?",
                    vec![now.into()],
                )?
                .to_array()?;
            let ids: BTreeSet<ProfileId> = due.iter().map(|r| r.id as ProfileId).collect();
            writes.extend(self.publish_profiles(&ids, now).map_err(to_worker)?);
            // Coalesced docs whose second is over.
            writes.extend(self.due_pending(now)?);
            // Deletes of erased visitors' docs that KV has not confirmed.
            let deletes: Vec<KeyRow> = sql
                .exec("SELECT key FROM kv_deletes ORDER BY at LIMIT 500", None)?
                .to_array()?;
            writes.extend(deletes.into_iter().map(|row| KvWrite {
                key: row.key,
                doc: None,
            }));
            self.prune(now)?;
            writes
        };
        self.write_kv(writes).await;
        if let Err(e) = archive::flush(&self.env, self.sql()).await {
            log_error("archive flush failed", &e.to_string());
        }
        self.schedule(now).await?;
        Response::ok("ok")
    }
}

/// The graph's view of [`crate::collect::Ingest`]: each event kept as the text the
/// worker sent, which is stored as it is.
#[derive(Deserialize)]
struct IngestText<'a> {
    #[serde(borrow)]
    events: Vec<&'a serde_json::value::RawValue>,
    #[serde(default)]
    rejected: Vec<(String, u64)>,
    #[serde(default)]
    warned: Vec<(String, u64)>,
}

#[derive(Deserialize)]
struct IdRow {
    id: f64,
}

#[derive(Deserialize)]
struct KeyRow {
    key: String,
}

impl IdentityGraph {
    fn sql(&self) -> SqlStorage {
        self.sql.clone()
    }

    /// Runs `work` inside the storage's `transactionSync`: when it fails, every statement
    /// it ran is taken back.
    fn transaction<T: 'static>(
        &self,
        work: impl FnOnce() -> Result<T, String> + 'static,
    ) -> worker::Result<T> {
        let out: Rc<RefCell<Option<Result<T, String>>>> = Rc::new(RefCell::new(None));
        let slot = Rc::clone(&out);
        let mut work = Some(work);
        let body = Closure::<dyn FnMut() -> Result<(), JsValue>>::new(move || {
            let Some(work) = work.take() else {
                return Err(JsValue::from_str("transaction body called twice"));
            };
            let result = work();
            let failed = result.as_ref().err().map(|e| JsValue::from_str(e));
            *slot.borrow_mut() = Some(result);
            // Throwing makes the runtime roll the transaction back.
            failed.map_or(Ok(()), Err)
        });
        let run = js_sys::Reflect::get(&self.storage, &JsValue::from_str("transactionSync"))
            .and_then(JsCast::dyn_into::<js_sys::Function>)
            .map_err(|_| worker::Error::RustError("storage has no transactionSync".into()))?;
        let called = run.call1(&self.storage, body.as_ref());
        let result = out.borrow_mut().take();
        match (result, called) {
            // The work succeeded but the commit did not: nothing it wrote stands.
            (Some(Ok(_)), Err(e)) => Err(worker::Error::RustError(format!(
                "transaction failed to commit: {e:?}"
            ))),
            (Some(Ok(value)), Ok(_)) => Ok(value),
            (Some(Err(e)), _) => Err(worker::Error::RustError(e)),
            (None, called) => Err(worker::Error::RustError(format!(
                "transaction did not run: {:?}",
                called.err()
            ))),
        }
    }

    async fn ingest(&self, body: &str, now: Millis) -> worker::Result<Response> {
        let ingest: IngestText = match serde_json::from_str(body) {
            Ok(i) => i,
            Err(e) => return json_error(400, &format!("ingest body is not valid: {e}")),
        };
        let mut events = Vec::with_capacity(ingest.events.len());
        for (position, raw) in ingest.events.iter().enumerate() {
            match serde_json::from_str::<Event>(raw.get()) {
                Ok(event) => events.push(event),
                Err(e) => {
                    return json_error(400, &format!("ingest event {position} is not valid: {e}"))
                }
            }
        }
        let config = Config::bundled();
        if let Some(refusal) = self.limiter.admit(&self.env, &self.sql(), &events, now)? {
            return Ok(refusal);
        }
        let outcome = {
            let sql = self.sql();
            // Counters add up in memory and are written once per request.
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            let mut tally = |name: String, n: u64| *counts.entry(name).or_default() += n;
            for (reason, n) in &ingest.rejected {
                tally(format!("rejected.{reason}"), *n);
            }
            for (reason, n) in &ingest.warned {
                tally(format!("warned.{reason}"), *n);
            }
            let mut stored = Stored::default();
            let mut changed = Changed::new();
            let segments = self.segments.borrow();
            let mut store = BatchStore::new(SqlStore::new(sql.clone()));
            let known = store
                .prefetch(&request_ids(&events, config), &request_messages(&events))
                .map_err(to_worker)?;
            let any_suppressed = known.any_erased;
            let mut archived = false;
            // Nothing is written until every event is resolved: a fault part-way answers
            // 500 and leaves storage as it was, so the resend finds nothing half-done.
            let mut gone_profiles = Vec::new();
            for (position, (event, raw)) in events.iter().zip(&ingest.events).enumerate() {
                let warn = |warning: String| GraphWarning {
                    message_id: event.message_id.clone(),
                    position: Some(position),
                    warning,
                };
                if any_suppressed && is_suppressed(&sql, event, &config.identity)? {
                    tally("suppressed".into(), 1);
                    stored.warnings.push(warn(
                        "dropped: an identifier of this event was erased".into(),
                    ));
                    continue;
                }
                store.set_body(raw.get());
                if event.weft.bot && config.collector.bots != BotPolicy::Profile {
                    if !store
                        .remember(&event.weft.source, &event.message_id, event.received_at)
                        .map_err(to_worker)?
                    {
                        tally("deduplicated".into(), 1);
                        stored
                            .warnings
                            .push(warn("duplicate messageId; already stored".into()));
                    } else if config.collector.bots == BotPolicy::Store {
                        // Kept as a record of the traffic; no profile is made of it.
                        stored.accepted += 1;
                        tally("bot_events".into(), 1);
                        store.queue_for_archive(event).map_err(to_worker)?;
                        archived = true;
                        stored.warnings.push(warn(
                            "stored as bot traffic (by user agent); no profile is made of it"
                                .into(),
                        ));
                    } else {
                        tally("dropped_bots".into(), 1);
                        stored.warnings.push(warn(
                            "dropped: bot traffic (collector.bots = \"drop\")".into(),
                        ));
                    }
                    continue;
                }
                match identity::ingest(&mut store, &config.identity, segments.spec(), event) {
                    Ok(outcome) if outcome.duplicate => {
                        tally("deduplicated".into(), 1);
                        stored
                            .warnings
                            .push(warn("duplicate messageId; already stored".into()));
                    }
                    Ok(outcome) => {
                        stored.accepted += 1;
                        tally("accepted".into(), 1);
                        store.queue_for_archive(event).map_err(to_worker)?;
                        archived = true;
                        for w in &outcome.warnings {
                            tally(format!("warned.{}", w.code()), 1);
                            stored.warnings.push(warn(w.to_string()));
                        }
                        let touched = segments.touched_by(event);
                        for &id in &outcome.changed {
                            // A merge changes everything the profile held: judge it whole.
                            let part = (outcome.merges.is_empty()).then(|| touched.clone());
                            note_change(&mut changed, id, part);
                        }
                        for gone in &outcome.deleted {
                            changed.remove(gone);
                            gone_profiles.push(*gone);
                        }
                    }
                    Err(IngestError::NoIdentifier(warnings)) => {
                        tally("rejected.no_usable_identifier".into(), 1);
                        let why: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
                        stored.warnings.push(warn(format!(
                            "not stored: the event has no usable identifier ({})",
                            why.join("; ")
                        )));
                    }
                    Err(e) => return json_error(500, &format!("identity graph failed: {e}")),
                }
            }
            drop(segments);
            // One transaction: a statement that fails takes back those before it.
            let store = self.transaction(move || {
                let mut store = store;
                store.flush().map(|()| store).map_err(|e| e.to_string())
            })?;
            for gone in gone_profiles {
                forget_profile(&sql, gone)?;
            }
            let planned = self
                .publish_changes(&store, &changed, Some(known.evaluations), now)
                .map_err(to_worker)?;
            drop(store);
            tally("decisions_written".into(), planned.written);
            counts.retain(|_, n| *n > 0);
            count_all(&sql, &counts)?;
            let flush = archived.then_some(now + archive::FLUSH_DELAY);
            let wake = [planned.wake, flush].into_iter().flatten().min();
            (stored, planned.writes, wake)
        };
        let (stored, writes, wake) = outcome;
        self.write_kv(writes).await;
        if let Some(at) = wake {
            self.wake_by(at, now).await?;
        }
        Response::from_json(&stored)
    }

    /// Evaluates profiles in full and decides the KV writes for their keys.
    fn publish_profiles(
        &self,
        ids: &BTreeSet<ProfileId>,
        now: Millis,
    ) -> Result<Vec<KvWrite>, String> {
        let whole: Changed = ids.iter().map(|&id| (id, None)).collect();
        let store = self.store.borrow();
        let planned = self.publish_changes(&*store, &whole, None, now)?;
        count(&self.sql(), "decisions_written", planned.written).map_err(|e| e.to_string())?;
        Ok(planned.writes)
    }

    /// Evaluates changed profiles, inside the turn, and decides the KV writes for their
    /// keys. A profile changed only by events re-evaluates just the rules that read what
    /// those events touched; one changed by a merge, an undo or a lapse is judged whole.
    /// `known` holds the stored evaluations when the caller read them already; reads and
    /// writes take one statement per table for all the profiles.
    fn publish_changes(
        &self,
        store: &dyn Store,
        changed: &Changed,
        known: Option<HashMap<ProfileId, Evaluation>>,
        now: Millis,
    ) -> Result<Planned, String> {
        let sql = self.sql();
        let segments = self.segments.borrow();
        let mut previous = match known {
            Some(known) => known,
            None => {
                let partial: Vec<ProfileId> = changed
                    .iter()
                    .filter(|(_, touched)| touched.is_some())
                    .map(|(&id, _)| id)
                    .collect();
                read_evaluations(&sql, &partial).map_err(|e| e.to_string())?
            }
        };
        let mut wake: Option<Millis> = None;
        let mut judged = Vec::with_capacity(changed.len());
        for (&id, touched) in changed {
            let Some(profile) = store.load(id).map_err(|e| e.to_string())? else {
                continue;
            };
            let evaluation = match (previous.remove(&id), touched) {
                (Some(previous), Some(touched)) => {
                    segments.update(&previous, &profile, now, touched)
                }
                _ => segments.evaluate(&profile, now),
            };
            judged.push((id, evaluation, decision_keys(&profile)));
        }
        let mut bodies = Vec::with_capacity(judged.len());
        let mut lapsing = Vec::new();
        let mut steady = Vec::new();
        for (id, evaluation, _) in &judged {
            let text = serde_json::to_string(evaluation).map_err(|e| e.to_string())?;
            bodies.push((*id, text));
            match evaluation.valid_until {
                Some(at) => {
                    lapsing.push((*id, at));
                    wake = Some(wake.map_or(at, |w| w.min(at)));
                }
                None => steady.push(*id),
            }
        }
        write_rows(
            &sql,
            "INSERT OR REPLACE INTO evaluations (profile_id, body) \
             SELECT value ->> 0, value ->> 1 FROM json_each(?)",
            &bodies,
        )?;
        write_rows(
            &sql,
            "INSERT OR REPLACE INTO lapses (profile_id, at) \
             SELECT value ->> 0, value ->> 1 FROM json_each(?)",
            &lapsing,
        )?;
        write_rows(
            &sql,
            "DELETE FROM lapses WHERE profile_id IN (SELECT value FROM json_each(?))",
            &steady,
        )?;

        let keys: Vec<&str> = judged
            .iter()
            .flat_map(|(_, _, keys)| keys.iter().map(String::as_str))
            .collect();
        let mut published = read_published(&sql, &keys).map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        let mut writes = Vec::new();
        for (id, evaluation, keys) in &judged {
            for key in keys {
                let before = published.get(key.as_str());
                let Some((decision, action)) = publish::plan(before, evaluation, now) else {
                    continue;
                };
                let (written_at, pending) = match action {
                    Action::WriteNow => (now, false),
                    Action::WriteAt(at) => {
                        wake = Some(wake.map_or(at, |w| w.min(at)));
                        (before.map_or(now, |p| p.written_at), true)
                    }
                };
                let segments =
                    serde_json::to_string(&decision.segments).map_err(|e| e.to_string())?;
                rows.push(json!([
                    key,
                    id,
                    segments,
                    decision.valid_until,
                    decision.version,
                    written_at,
                    u8::from(pending)
                ]));
                if action == Action::WriteNow {
                    writes.push(KvWrite {
                        key: key.clone(),
                        doc: Some(doc_text(&decision)),
                    });
                }
                published.insert(
                    key.clone(),
                    Published {
                        decision,
                        written_at,
                        pending,
                    },
                );
            }
        }
        write_rows(
            &sql,
            "INSERT OR REPLACE INTO published \
             (key, profile_id, segments, valid_until, version, written_at, pending) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
             value ->> 5, value ->> 6 FROM json_each(?)",
            &rows,
        )?;
        Ok(Planned {
            written: writes.len() as u64,
            writes,
            wake,
        })
    }

    fn due_pending(&self, now: Millis) -> worker::Result<Vec<KvWrite>> {
        let sql = self.sql();
        let rows: Vec<PublishedRow> = sql
            .exec(
                "SELECT key, segments, valid_until, version, written_at, pending FROM published \
                 WHERE pending = 1 AND written_at <= ?",
                vec![(now - publish::MIN_WRITE_GAP).into()],
            )?
            .to_array()?;
        let mut writes = Vec::with_capacity(rows.len());
        for row in rows {
            let published = row.published()?;
            sql.exec(
                "UPDATE published SET pending = 0, written_at = ? WHERE key = ?",
                vec![now.into(), row.key.as_str().into()],
            )?;
            count(&sql, "decisions_written", 1)?;
            writes.push(KvWrite {
                key: row.key,
                doc: Some(doc_text(&published.decision)),
            });
        }
        Ok(writes)
    }

    async fn write_kv(&self, writes: Vec<KvWrite>) {
        if writes.is_empty() {
            return;
        }
        let kv = match self.env.kv(KV_BINDING) {
            Ok(kv) => kv,
            Err(e) => return log_error("kv binding missing", &e.to_string()),
        };
        // One request may change many keys (a batch of new visitors): write them side by
        // side rather than one round trip after another.
        let kv = &kv;
        let results = join_all(writes.iter().map(|write| async move {
            match &write.doc {
                Some(doc) => match kv.put(&write.key, doc.as_str()) {
                    Ok(put) => put.execute().await,
                    Err(e) => Err(e),
                },
                None => kv.delete(&write.key).await,
            }
        }))
        .await;
        for (write, result) in writes.iter().zip(results) {
            match (result, &write.doc) {
                (Ok(()), Some(_)) => {}
                // The delete is done. A put for the key still in flight when the erase
                // began could land after it, so a delete is sent once more by the alarm
                // after the erase before the key is let go.
                (Ok(()), None) => {
                    let settled =
                        worker::Date::now().as_millis() as Millis - publish::MIN_WRITE_GAP;
                    let _ = self.sql().exec(
                        "DELETE FROM kv_deletes WHERE key = ? AND at <= ?",
                        vec![write.key.as_str().into(), settled.into()],
                    );
                }
                // Keep the doc pending: the alarm tries again.
                (Err(e), Some(_)) => {
                    log_error("kv write failed", &e.to_string());
                    let _ = self.sql().exec(
                        "UPDATE published SET pending = 1 WHERE key = ?",
                        vec![write.key.as_str().into()],
                    );
                }
                // The key stays in kv_deletes: the alarm tries again.
                (Err(e), None) => log_error("kv delete failed", &e.to_string()),
            }
        }
    }

    /// Sets the alarm for the earliest pending doc, lapse or archive flush, as stored.
    async fn schedule(&self, now: Millis) -> worker::Result<()> {
        #[derive(Deserialize)]
        struct Due {
            pending: Option<f64>,
            lapse: Option<f64>,
            queued: Option<f64>,
            deletes: Option<f64>,
        }
        let due: Due = self
            .sql()
            .exec(
                "SELECT (SELECT MIN(written_at) FROM published WHERE pending = 1) AS pending, \
                 (SELECT MIN(at) FROM lapses) AS lapse, \
                 (SELECT MIN(seq) FROM archive_queue) AS queued, \
                 (SELECT MIN(at) FROM kv_deletes) AS deletes",
                None,
            )?
            .one()?;
        let next = [
            due.pending.map(|w| w as Millis + publish::MIN_WRITE_GAP),
            due.lapse.map(|at| at as Millis),
            due.queued.map(|_| now + archive::FLUSH_DELAY),
            due.deletes.map(|_| now + archive::FLUSH_DELAY),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(at) => self.wake_by(at, now).await,
            None => Ok(()),
        }
    }

    /// Makes sure the alarm rings at `at` or before. The object remembers the alarm it
    /// set, so an ingest that needs no earlier alarm costs no storage call; the alarm
    /// forgets it when it rings.
    async fn wake_by(&self, at: Millis, now: Millis) -> worker::Result<()> {
        let storage = self.state.storage();
        let current = match self.alarm_at.get() {
            Some(known) => known,
            None => storage.get_alarm().await?,
        };
        if current.is_some_and(|c| c <= at) {
            self.alarm_at.set(Some(current));
            return Ok(());
        }
        // The delay counts from the clock as it is now, not when the request began.
        let clock = now.max(worker::Date::now().as_millis() as Millis);
        let delay = (at - clock).max(1);
        storage
            .set_alarm(std::time::Duration::from_millis(delay as u64))
            .await?;
        self.alarm_at.set(Some(Some(clock + delay)));
        Ok(())
    }

    /// Forgets dedupe entries and events past their windows, at most once an hour.
    fn prune(&self, now: Millis) -> worker::Result<()> {
        let config = &Config::bundled().collector;
        let sql = self.sql();
        let last: Option<f64> = scalar(
            &sql,
            "SELECT value FROM meta WHERE key = 'last_prune'",
            vec![],
        )?;
        if last.is_some_and(|t| now - (t as Millis) < HOUR) {
            return Ok(());
        }
        sql.exec(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_prune', ?)",
            vec![now.into()],
        )?;
        sql.exec(
            "DELETE FROM seen WHERE at < ?",
            vec![(now - i64::from(config.dedupe_days) * DAY).into()],
        )?;
        let keep = i64::from(config.keep_events_days.max(config.dedupe_days)) * DAY;
        sql.exec(
            "DELETE FROM events WHERE received_at < ?",
            vec![(now - keep).into()],
        )?;
        Ok(())
    }

    fn find(&self, id: Option<String>) -> Result<(Identifier, Profile), Response> {
        let Some(text) = id else {
            return Err(error_response(400, "missing ?id=<kind>:<value>"));
        };
        let id = Identifier::parse(&text).map_err(|e| error_response(400, &e.to_string()))?;
        let store = self.store.borrow();
        let found = store.profile_of(&id).and_then(|p| match p {
            Some(p) => store.load(p),
            None => Ok(None),
        });
        match found {
            Ok(Some(profile)) => Ok((id, profile)),
            Ok(None) => Err(error_response(404, &format!("no profile holds {id}"))),
            Err(e) => Err(error_response(500, &e.to_string())),
        }
    }

    fn profile_view(&self, id: Option<String>, now: Millis) -> worker::Result<Response> {
        let profile = match self.find(id) {
            Ok((_, p)) => p,
            Err(res) => return Ok(res),
        };
        let evaluation = self.segments.borrow().evaluate(&profile, now);
        let merges = self
            .store
            .borrow()
            .merges_of(profile.id)
            .map_err(to_worker)?;
        Response::from_json(&profile_json(&profile, &evaluation, merges))
    }

    fn explain(&self, key: Option<String>, now: Millis) -> worker::Result<Response> {
        let id = key.and_then(|k| {
            if let Some(v) = k.strip_prefix("a:") {
                Some(format!("anonymous_id:{v}"))
            } else {
                k.strip_prefix("u:").map(|v| format!("user_id:{v}"))
            }
        });
        let profile = match self.find(id) {
            Ok((_, p)) => p,
            Err(res) => return Ok(res),
        };
        let segments = self.segments.borrow();
        let evaluation = segments.evaluate(&profile, now);
        Response::from_json(&json!({
            "segments": evaluation.segments,
            "validUntil": evaluation.valid_until.map(weft_core::time::format_rfc3339),
            "explain": segments.explain(&profile, now),
        }))
    }

    async fn erase(&self, id: Option<String>, now: Millis) -> worker::Result<Response> {
        let (asked, profile) = match self.find(id) {
            Ok(found) => found,
            Err(res) => return Ok(res),
        };
        let (writes, hashes) = {
            let sql = self.sql();
            let mut store = self.store.borrow_mut();
            let mut writes = Vec::new();
            let mut hashes = Vec::new();
            for held in &profile.identifiers {
                let hash = id_hash(&held.id);
                sql.exec(
                    "INSERT OR REPLACE INTO suppressed (id, at) VALUES (?, ?)",
                    vec![hash.as_str().into(), now.into()],
                )?;
                hashes.push(hash);
                store.unlink(&held.id).map_err(to_worker)?;
            }
            for key in decision_keys(&profile) {
                sql.exec(
                    "DELETE FROM published WHERE key = ?",
                    vec![key.as_str().into()],
                )?;
                // Kept until KV confirms the delete; the alarm retries one that failed.
                sql.exec(
                    "INSERT OR REPLACE INTO kv_deletes (key, at) VALUES (?, ?)",
                    vec![key.as_str().into(), now.into()],
                )?;
                writes.push(KvWrite { key, doc: None });
            }
            store.drop_events(profile.id).map_err(to_worker)?;
            store.delete(profile.id).map_err(to_worker)?;
            forget_profile(&sql, profile.id)?;
            count(&sql, "erased_profiles", 1)?;
            (writes, hashes)
        };
        self.write_kv(writes).await;
        // The archive keeps a tombstone every reader and the replay honour.
        let tombstone = archive::tombstone(&self.env, &hashes, now).await;
        if let Err(e) = &tombstone {
            log_error("archive tombstone failed", &e.to_string());
        }
        // The erase stands; a failed alarm is set again by the next request that needs it.
        if let Err(e) = self.schedule(now).await {
            log_error("setting the alarm failed", &e.to_string());
        }
        Response::from_json(&json!({
            "erased": asked.to_string(),
            "profile": profile.id,
            "identifiersSuppressed": profile.identifiers.len(),
            "archiveTombstone": tombstone.ok(),
        }))
    }

    fn segment_list(&self) -> worker::Result<Response> {
        let stored = stored_segments(&self.sql())?;
        let mut list = Vec::new();
        let segments = self.segments.borrow();
        for name in segments.names() {
            let from_api = stored.iter().any(|(n, _)| n == name);
            let overrides = from_api && bundled::SEGMENTS.iter().any(|(n, _)| *n == name);
            list.push(json!({
                "name": name,
                "source": if from_api { "api" } else { "file" },
                "overridesFile": overrides,
            }));
        }
        Response::from_json(&json!({ "segments": list }))
    }

    fn segment_get(&self, name: &str) -> worker::Result<Response> {
        let segments = self.segments.borrow();
        let Some(def) = segments.get(name) else {
            return json_error(404, &format!("no segment named {name:?}"));
        };
        // The whole document as it was given (description, includeBots, rule), so what
        // GET answers can be PUT back as it is.
        let stored = stored_segments(&self.sql())?
            .into_iter()
            .find(|(n, _)| n == name);
        let bundled = bundled::SEGMENTS.iter().find(|(n, _)| *n == name);
        let (source, document) = match (stored, bundled) {
            (Some((_, doc)), _) => ("api", doc),
            (None, Some((_, text))) => (
                "file",
                serde_json::from_str(text).unwrap_or_else(|_| def.source.clone()),
            ),
            (None, None) => ("file", def.source.clone()),
        };
        Response::from_json(&json!({
            "name": name,
            "source": source,
            "definition": document,
        }))
    }

    async fn segment_put(&self, name: &str, body: &str, now: Millis) -> worker::Result<Response> {
        let doc: Value = match serde_json::from_str(body) {
            Ok(v) => v,
            Err(e) => {
                return json_error(400, &format!("segment definition is not valid json: {e}"))
            }
        };
        if let Err(e) = Definition::parse(name, &doc) {
            return json_error(400, &e.to_string());
        }
        let sql = self.sql();
        sql.exec(
            "INSERT OR REPLACE INTO segments (name, body, updated_at) VALUES (?, ?, ?)",
            vec![name.into(), doc.to_string().into(), now.into()],
        )?;
        let backfilled = match self.recompile_and_backfill(now).await {
            Ok(n) => n,
            Err(e) => return json_error(400, &e),
        };
        Response::from_json(&json!({
            "name": name,
            "source": "api",
            "definition": doc,
            "backfilled": backfilled,
        }))
    }

    async fn segment_delete(&self, name: &str, now: Millis) -> worker::Result<Response> {
        let sql = self.sql();
        let stored = stored_segments(&sql)?.iter().any(|(n, _)| n == name);
        if !stored {
            let in_file = bundled::SEGMENTS.iter().any(|(n, _)| *n == name);
            let why = if in_file {
                format!("segment {name:?} is defined in segments/{name}.json; remove the file and redeploy")
            } else {
                format!("no segment named {name:?}")
            };
            return json_error(if in_file { 409 } else { 404 }, &why);
        }
        sql.exec("DELETE FROM segments WHERE name = ?", vec![name.into()])?;
        let backfilled = match self.recompile_and_backfill(now).await {
            Ok(n) => n,
            Err(e) => return json_error(500, &e),
        };
        let from_file = bundled::SEGMENTS.iter().any(|(n, _)| *n == name);
        Response::from_json(&json!({
            "deleted": name,
            "fileDefinitionInForce": from_file,
            "backfilled": backfilled,
        }))
    }

    /// Recompiles the segments in force and rebuilds every profile's features from its
    /// stored events, then publishes what changed.
    ///
    /// # Limitations
    /// Runs within the request: a workspace of many thousands of profiles may exceed the
    /// runtime's time for one request. Counters are rebuilt from the events the object
    /// still keeps (`keep_events_days`).
    async fn recompile_and_backfill(&self, now: Millis) -> Result<usize, String> {
        let sql = self.sql();
        let compiled = load_segments(&sql)?;
        let spec = compiled.spec().clone();
        *self.segments.borrow_mut() = compiled;
        let ids: Vec<IdRow> = sql
            .exec("SELECT id FROM profiles", None)
            .and_then(|c| c.to_array())
            .map_err(|e| e.to_string())?;
        let ids: BTreeSet<ProfileId> = ids.iter().map(|r| r.id as ProfileId).collect();
        {
            let mut store = self.store.borrow_mut();
            for &id in &ids {
                let Some(mut profile) = store.load(id).map_err(|e| e.to_string())? else {
                    continue;
                };
                let events = store.events_of(id).map_err(|e| e.to_string())?;
                profile.features = Default::default();
                for event in &events {
                    profile.features.observe(&spec, event);
                }
                store.save(profile).map_err(|e| e.to_string())?;
            }
        }
        let writes = self.publish_profiles(&ids, now)?;
        self.write_kv(writes).await;
        self.schedule(now).await.map_err(|e| e.to_string())?;
        Ok(ids.len())
    }

    fn merge_list(&self) -> worker::Result<Response> {
        #[derive(Deserialize)]
        struct Body {
            body: String,
        }
        let rows: Vec<Body> = self
            .sql()
            .exec("SELECT body FROM merges ORDER BY id DESC LIMIT 100", None)?
            .to_array()?;
        let merges: Vec<Value> = rows
            .iter()
            .filter_map(|r| serde_json::from_str(&r.body).ok())
            .collect();
        Response::from_json(&json!({ "merges": merges }))
    }

    async fn operator_merge(&self, body: &str, now: Millis) -> worker::Result<Response> {
        #[derive(Deserialize)]
        struct Ask {
            from: String,
            into: String,
        }
        let ask: Ask = match serde_json::from_str(body) {
            Ok(a) => a,
            Err(e) => {
                return json_error(
                    400,
                    &format!(
                        "expected {{\"from\":\"<kind>:<value>\",\"into\":\"<kind>:<value>\"}}: {e}"
                    ),
                )
            }
        };
        let (from, into) = match (Identifier::parse(&ask.from), Identifier::parse(&ask.into)) {
            (Ok(f), Ok(i)) => (f, i),
            (Err(e), _) | (_, Err(e)) => return json_error(400, &e.to_string()),
        };
        let result = {
            let mut store = self.store.borrow_mut();
            let spec = self.segments.borrow().spec().clone();
            identity::operator_merge(&mut *store, &spec, &from, &into, now)
        };
        let merge = match result {
            Ok(m) => m,
            Err(e) => return json_error(status_of_undo(&e), &e.to_string()),
        };
        let ids = BTreeSet::from([merge.into]);
        let writes = self.publish_profiles(&ids, now).map_err(to_worker)?;
        self.write_kv(writes).await;
        if let Err(e) = self.schedule(now).await {
            log_error("setting the alarm failed", &e.to_string());
        }
        Response::from_json(&merge)
    }

    async fn undo(&self, id: &str, now: Millis) -> worker::Result<Response> {
        let Ok(merge_id) = id.parse() else {
            return json_error(400, &format!("merge id must be a number (got {id:?})"));
        };
        let result = {
            let mut store = self.store.borrow_mut();
            let segments = self.segments.borrow();
            identity::undo(
                &mut *store,
                &Config::bundled().identity,
                segments.spec(),
                merge_id,
                now,
            )
        };
        let undone = match result {
            Ok(u) => u,
            Err(e) => return json_error(status_of_undo(&e), &e.to_string()),
        };
        let ids: BTreeSet<ProfileId> = undone.changed.iter().copied().collect();
        let (writes, profiles) = {
            let writes = self.publish_profiles(&ids, now).map_err(to_worker)?;
            let store = self.store.borrow();
            let segments = self.segments.borrow();
            let mut profiles = Vec::new();
            for &id in &ids {
                if let Some(p) = store.load(id).map_err(to_worker)? {
                    let evaluation = segments.evaluate(&p, now);
                    let merges = store.merges_of(p.id).map_err(to_worker)?;
                    profiles.push(profile_json(&p, &evaluation, merges));
                }
            }
            (writes, profiles)
        };
        self.write_kv(writes).await;
        self.schedule(now).await?;
        Response::from_json(&json!({
            "undone": undone.merge,
            "profiles": profiles,
            "warnings": undone.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }))
    }

    fn metrics(&self) -> worker::Result<Response> {
        #[derive(Deserialize)]
        struct Row {
            name: String,
            count: f64,
        }
        let rows: Vec<Row> = self
            .sql()
            .exec("SELECT name, count FROM metrics ORDER BY name", None)?
            .to_array()?;
        let mut out = json!({
            "accepted": 0, "botEvents": 0, "deduplicated": 0, "suppressed": 0, "decisionsWritten": 0,
            "erasedProfiles": 0, "rejected": {}, "warned": {},
        });
        for row in rows {
            let n = json!(row.count as u64);
            match row.name.split_once('.') {
                Some((group @ ("rejected" | "warned"), reason)) => out[group][reason] = n,
                _ => out[camel(&row.name)] = n,
            }
        }
        let sum = |v: &Value| {
            v.as_object()
                .map_or(0, |m| m.values().filter_map(Value::as_u64).sum::<u64>())
        };
        out["rejectedTotal"] = json!(sum(&out["rejected"]));
        out["warnedTotal"] = json!(sum(&out["warned"]));
        Response::from_json(&out)
    }

    async fn replay(&self, now: Millis) -> worker::Result<Response> {
        let events = match archive::read_all(&self.env, self.sql()).await {
            Ok(e) => e,
            Err(e) => return json_error(500, &format!("reading the archive failed: {e}")),
        };
        let (replayed, writes) = {
            let sql = self.sql();
            // Operator merges are no events: they are kept aside and made again after.
            let operator_merges = operator_merges_in_force(&sql)?;
            for table in [
                "profiles",
                "identifiers",
                "seen",
                "events",
                "merges",
                "lapses",
            ] {
                sql.exec(&format!("DELETE FROM {table}"), None)?;
            }
            let config = Config::bundled();
            let segments = self.segments.borrow();
            let mut store = self.store.borrow_mut();
            let mut replayed = 0usize;
            let any_suppressed = has_suppressed(&sql)?;
            for event in &events {
                if any_suppressed && is_suppressed(&sql, event, &config.identity)? {
                    continue;
                }
                if event.weft.bot && config.collector.bots != BotPolicy::Profile {
                    continue;
                }
                if let Ok(outcome) =
                    identity::ingest(&mut *store, &config.identity, segments.spec(), event)
                {
                    replayed += usize::from(!outcome.duplicate);
                }
            }
            identity::reapply(&mut *store, segments.spec(), &operator_merges, false)
                .map_err(|e| worker::Error::RustError(e.to_string()))?;
            drop(store);
            drop(segments);
            let ids: Vec<IdRow> = sql.exec("SELECT id FROM profiles", None)?.to_array()?;
            let ids: BTreeSet<ProfileId> = ids.iter().map(|r| r.id as ProfileId).collect();
            (
                replayed,
                self.publish_profiles(&ids, now).map_err(to_worker)?,
            )
        };
        self.write_kv(writes).await;
        self.schedule(now).await?;
        Response::from_json(&json!({ "replayed": replayed, "read": events.len() }))
    }
}

#[derive(Deserialize)]
struct PublishedRow {
    key: String,
    segments: String,
    valid_until: Option<f64>,
    version: f64,
    written_at: f64,
    pending: f64,
}

impl PublishedRow {
    /// A row read with `raw()` (columns in the order of [`PublishedRow`]'s fields), which
    /// spares converting each row into a JS object and back.
    fn from_raw(row: Vec<SqlStorageValue>) -> worker::Result<PublishedRow> {
        let number = |v: &SqlStorageValue| match v {
            SqlStorageValue::Integer(n) => Some(*n as f64),
            SqlStorageValue::Float(f) => Some(*f),
            _ => None,
        };
        let bad = || worker::Error::RustError("published row of unexpected shape".into());
        let [SqlStorageValue::String(key), SqlStorageValue::String(segments), valid_until, version, written_at, pending] =
            <[SqlStorageValue; 6]>::try_from(row).map_err(|_| bad())?
        else {
            return Err(bad());
        };
        Ok(PublishedRow {
            key,
            segments,
            valid_until: number(&valid_until),
            version: number(&version).ok_or_else(bad)?,
            written_at: number(&written_at).ok_or_else(bad)?,
            pending: number(&pending).ok_or_else(bad)?,
        })
    }

    fn published(&self) -> worker::Result<Published> {
        let segments: Vec<String> = serde_json::from_str(&self.segments)
            .map_err(|e| worker::Error::RustError(format!("published row {}: {e}", self.key)))?;
        Ok(Published {
            decision: Decision {
                segments,
                version: self.version as u64,
                valid_until: self.valid_until.map(|v| v as Millis),
            },
            written_at: self.written_at as Millis,
            pending: self.pending != 0.0,
        })
    }
}

/// What the object remembers of `keys`, in one statement.
fn read_published(sql: &SqlStorage, keys: &[&str]) -> worker::Result<HashMap<String, Published>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    sql.exec(
        "SELECT p.key, p.segments, p.valid_until, p.version, p.written_at, p.pending \
         FROM json_each(?) j JOIN published p ON p.key = j.value",
        vec![json_text(keys).map_err(worker::Error::RustError)?.into()],
    )?
    .raw()
    .map(|row| {
        let row = PublishedRow::from_raw(row?)?;
        Ok((row.key.clone(), row.published()?))
    })
    .collect()
}

/// Profiles changed by a request, with what their events touched (`None`: judge whole).
type Changed = BTreeMap<ProfileId, Option<Touched>>;

fn note_change(changed: &mut Changed, id: ProfileId, part: Option<Touched>) {
    match (changed.get_mut(&id), part) {
        (None, part) => {
            changed.insert(id, part);
        }
        (Some(slot @ Some(_)), None) => *slot = None,
        (Some(Some(seen)), Some(more)) => {
            seen.fields = seen.fields.with(more.fields);
            seen.counters.extend(more.counters);
            seen.counters.sort_unstable();
            seen.counters.dedup();
        }
        (Some(None), _) => {}
    }
}

/// Forgets what the object keeps about a profile that no longer exists.
fn forget_profile(sql: &SqlStorage, id: ProfileId) -> worker::Result<()> {
    for table in ["lapses", "evaluations"] {
        sql.exec(
            &format!("DELETE FROM {table} WHERE profile_id = ?"),
            vec![(id as i64).into()],
        )?;
    }
    Ok(())
}

/// The stored evaluations of `ids`, in one statement. One that no longer reads is left
/// out: the profile is then judged whole.
fn read_evaluations(
    sql: &SqlStorage,
    ids: &[ProfileId],
) -> worker::Result<HashMap<ProfileId, Evaluation>> {
    #[derive(Deserialize)]
    struct Row {
        id: f64,
        body: String,
    }
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<Row> = sql
        .exec(
            "SELECT e.profile_id AS id, e.body FROM json_each(?) j \
             JOIN evaluations e ON e.profile_id = j.value",
            vec![json_text(ids).map_err(worker::Error::RustError)?.into()],
        )?
        .to_array()?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.id as ProfileId, serde_json::from_str(&r.body).ok()?)))
        .collect())
}

/// The operator merges in force, oldest first: of each original and the copies undos made
/// of it, the latest, unless one of them was undone.
fn operator_merges_in_force(sql: &SqlStorage) -> worker::Result<Vec<Merge>> {
    #[derive(Deserialize)]
    struct Body {
        body: String,
    }
    let rows: Vec<Body> = sql
        .exec("SELECT body FROM merges ORDER BY id", None)?
        .to_array()?;
    let mut groups: BTreeMap<identity::MergeId, (bool, Merge)> = BTreeMap::new();
    for row in rows {
        let merge: Merge = serde_json::from_str(&row.body)
            .map_err(|e| worker::Error::RustError(format!("stored merge: {e}")))?;
        if !merge.operator {
            continue;
        }
        let undone = merge.undone.is_some();
        let group = groups
            .entry(merge.reapplies.unwrap_or(merge.id))
            .or_insert_with(|| (false, merge.clone()));
        group.0 |= undone;
        group.1 = merge;
    }
    Ok(groups
        .into_values()
        .filter_map(|(undone, latest)| (!undone).then_some(latest))
        .collect())
}

/// Runs a statement over `rows`, passed as JSON arrays that it unpacks with `json_each`
/// (see [`crate::batch::write_rows`]).
fn write_rows<T: serde::Serialize>(
    sql: &SqlStorage,
    query: &str,
    rows: &[T],
) -> Result<(), String> {
    crate::batch::write_rows(sql, query, rows).map_err(|e| e.to_string())
}

/// The rows of a statement that unpacks them with `json_each`.
fn json_text<T: serde::Serialize + ?Sized>(rows: &T) -> Result<String, String> {
    serde_json::to_string(rows).map_err(|e| e.to_string())
}

/// Every identifier the events name (an alias's `previousId` both ways), for
/// [`BatchStore::prefetch`].
fn request_ids(events: &[Event], config: &Config) -> Vec<Identifier> {
    let mut ids = Vec::new();
    for event in events {
        let found = identity::extract(event, &config.identity);
        ids.extend(found.ids.into_iter().map(|f| f.id));
        if let Some(previous) = found.previous {
            ids.push(Identifier::new(IdKind::UserId, previous.clone()));
            ids.push(Identifier::new(IdKind::AnonymousId, previous));
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn request_messages(events: &[Event]) -> Vec<(&str, &str)> {
    events
        .iter()
        .map(|e| (e.weft.source.as_str(), e.message_id.as_str()))
        .collect()
}

/// The KV keys a profile's decision doc is written under: each anonymous id and the
/// user id, when `/v1/decide` can be asked for it (at most [`MAX_ID_LEN`] bytes; a
/// longer id would also overflow KV's 512-byte keys, and its write would fail on every
/// alarm).
pub fn decision_keys(profile: &Profile) -> Vec<String> {
    profile
        .identifiers
        .iter()
        .filter(|held| held.id.value.len() <= MAX_ID_LEN)
        .filter_map(|held| match held.id.kind {
            IdKind::AnonymousId => Some(anonymous_key(&held.id.value)),
            IdKind::UserId => Some(user_key(&held.id.value)),
            _ => None,
        })
        .collect()
}

fn doc_text(decision: &Decision) -> String {
    decision.to_json()
}

/// The admin API's view of a profile.
pub fn profile_json(
    profile: &Profile,
    evaluation: &Evaluation,
    merges: Vec<identity::Merge>,
) -> Value {
    let identifiers: Vec<Value> = profile
        .identifiers
        .iter()
        .map(|h| {
            json!({
                "id": h.id.to_string(),
                "firstSeen": weft_core::time::format_rfc3339(h.first_seen),
            })
        })
        .collect();
    let traits: Map<String, Value> = profile
        .traits
        .iter()
        .map(|(k, t)| (k.clone(), t.value.clone()))
        .collect();
    json!({
        "id": profile.id,
        "identifiers": identifiers,
        "traits": traits,
        "account": profile.account,
        "touchpoints": { "first": profile.first_touch, "last": profile.last_touch },
        "firstSeen": weft_core::time::format_rfc3339(profile.first_seen),
        "lastSeen": weft_core::time::format_rfc3339(profile.last_seen),
        "events": profile.events,
        "bot": profile.bot,
        "country": profile.country,
        "device": profile.device,
        "segments": evaluation.segments,
        "validUntil": evaluation.valid_until.map(weft_core::time::format_rfc3339),
        "merges": merges,
    })
}

fn load_segments(sql: &SqlStorage) -> Result<Segments, String> {
    let stored = stored_segments(sql).map_err(|e| e.to_string())?;
    let mut defs: Vec<(String, Value)> = Vec::new();
    for (name, text) in bundled::SEGMENTS {
        if stored.iter().any(|(n, _)| n == name) {
            continue;
        }
        let doc = serde_json::from_str(text).map_err(|e| format!("segments/{name}.json: {e}"))?;
        defs.push(((*name).to_owned(), doc));
    }
    defs.extend(stored);
    Segments::compile(&defs).map_err(|e| e.to_string())
}

fn stored_segments(sql: &SqlStorage) -> worker::Result<Vec<(String, Value)>> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
        body: String,
    }
    let rows: Vec<Row> = sql
        .exec("SELECT name, body FROM segments ORDER BY name", None)?
        .to_array()?;
    Ok(rows
        .into_iter()
        .filter_map(|r| serde_json::from_str(&r.body).ok().map(|v| (r.name, v)))
        .collect())
}

/// The hash an erased identifier is remembered by: the graph keeps no erased value.
pub fn id_hash(id: &Identifier) -> String {
    hex::encode(Sha256::digest(id.to_string().as_bytes()))
}

/// Whether anyone was ever erased; when not, events skip the suppression check.
fn has_suppressed(sql: &SqlStorage) -> worker::Result<bool> {
    let any: Option<f64> = scalar(sql, "SELECT 1 AS v FROM suppressed LIMIT 1", vec![])?;
    Ok(any.is_some())
}

/// Whether an identifier of the event was erased.
/// The identifiers `event` names, normalised as ingest does (an alias's `previousId` as
/// either kind): what an erasure's suppression and tombstones are checked against.
pub fn named_ids(event: &Event, config: &identity::IdentityConfig) -> Vec<Identifier> {
    let extracted = identity::extract(event, config);
    let mut ids: Vec<Identifier> = extracted.ids.iter().map(|f| f.id.clone()).collect();
    if let Some(previous) = extracted.previous {
        ids.push(Identifier::new(IdKind::UserId, previous.clone()));
        ids.push(Identifier::new(IdKind::AnonymousId, previous));
    }
    ids
}

fn is_suppressed(
    sql: &SqlStorage,
    event: &Event,
    config: &identity::IdentityConfig,
) -> worker::Result<bool> {
    for id in named_ids(event, config) {
        let hit: Option<f64> = scalar(
            sql,
            "SELECT 1 AS v FROM suppressed WHERE id = ?",
            vec![id_hash(&id).as_str().into()],
        )?;
        if hit.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn status_of_undo(e: &identity::UndoError) -> u16 {
    match e {
        identity::UndoError::Store(_) => 500,
        identity::UndoError::NoMerge(_) | identity::UndoError::UnknownIdentifier(_) => 404,
        _ => 409,
    }
}

fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn now() -> Millis {
    worker::Date::now().as_millis() as Millis
}

fn to_worker<E: std::fmt::Display>(e: E) -> worker::Error {
    worker::Error::RustError(e.to_string())
}

fn error_response(status: u16, message: &str) -> Response {
    json_error(status, message)
        .unwrap_or_else(|_| Response::empty().expect("an empty response builds"))
}

fn json_error(status: u16, message: &str) -> worker::Result<Response> {
    if status >= 500 {
        log_error("graph request failed", message);
    }
    Ok(Response::from_json(&json!({ "error": message }))?.with_status(status))
}

fn log_error(msg: &str, error: &str) {
    worker::console_error!("{}", json!({"level": "error", "msg": msg, "error": error}));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_become_camel_case() {
        assert_eq!(camel("decisions_written"), "decisionsWritten");
        assert_eq!(camel("accepted"), "accepted");
    }

    #[test]
    fn ids_too_long_for_decide_get_no_decision_doc() {
        let mut profile = Profile::new(1, 0);
        for (kind, value) in [
            (IdKind::AnonymousId, "a".repeat(MAX_ID_LEN)),
            (IdKind::AnonymousId, "b".repeat(512)),
            (IdKind::UserId, "u-1".to_owned()),
            (IdKind::Other("email".into()), "x@example.com".to_owned()),
        ] {
            profile.identifiers.push(weft_core::profile::Held {
                id: Identifier::new(kind, value),
                first_seen: 0,
            });
        }
        let keys = decision_keys(&profile);
        assert_eq!(
            keys,
            [anonymous_key(&"a".repeat(MAX_ID_LEN)), user_key("u-1")]
        );
        assert!(keys.iter().all(|k| k.len() <= 512));
    }

    #[test]
    fn erased_identifiers_are_kept_only_as_hashes() {
        let id = Identifier::new(IdKind::Other("email".into()), "a@example.com");
        let hash = id_hash(&id);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("example"));
        assert_eq!(hash, id_hash(&id));
    }
}
