//! The SDK's state and the functions the loader calls (`boot`, `ids`, `touch`, `push`, ...).
//!
//! One [`Sdk`] lives in a thread-local for the page's lifetime. Calls are synchronous,
//! so a `setAnonymousId` is in force for the very next event (field report
//! `set-anon-id-before-first-event`). Only strings and numbers cross the boundary: the
//! loader builds the event object, asks this side for the ids and for the touchpoint
//! context (`context.page`, `context.campaign`, `context.session`) as JSON text, and hands
//! the finished event back as JSON text to queue. Fewer, coarser calls keep both the wasm
//! and its JavaScript glue small.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;
use weft_core::session::{parse_decimal, Session};
use weft_core::stored_id;

use crate::browser::Browser;
use crate::identity::{self, Jar, Stores, ANON_KEY, LEGACY_ANON_KEYS, LEGACY_USER_KEYS, USER_KEY};
use crate::json::{quote, Obj};
use crate::page::{Page, FIELDS};
use crate::queue::{body, Item, Outbox, Outcome};

const SESSION_KEY: &str = "weft_ses";
const QUEUE_PREFIX: &str = "weft_q:";

/// The visitor's choice about analytics storage and sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Not asked yet: ids stay in memory, events are held and not sent.
    Pending,
    /// Ids and the outbox are persisted, events are sent.
    Granted,
    /// Nothing is persisted or sent; queued events are dropped.
    Denied,
}

impl Consent {
    fn parse(text: &str) -> Consent {
        match text {
            "pending" => Consent::Pending,
            "denied" => Consent::Denied,
            _ => Consent::Granted,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Consent::Pending => "pending",
            Consent::Granted => "granted",
            Consent::Denied => "denied",
        }
    }
}

/// The SDK's state for one page.
pub struct Sdk {
    stores: Browser,
    jar: Jar,
    write_key_json: String,
    tab: String,
    consent: Consent,
    anonymous_id: String,
    user_id: Option<String>,
    persistent: bool,
    session: Option<Session>,
    outbox: Outbox,
    failures: u32,
    retry_base: f64,
    retry_max: f64,
}

thread_local! {
    static SDK: RefCell<Option<Sdk>> = const { RefCell::new(None) };
}

fn with<T: Default>(f: impl FnOnce(&mut Sdk) -> T) -> T {
    SDK.with(|cell| cell.borrow_mut().as_mut().map(f).unwrap_or_default())
}

// Joins strings; smaller in wasm than `concat` and `join`, which are generic.
fn cat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

fn now() -> i64 {
    js_sys::Date::now() as i64
}

/// The settings of [`boot`], from the snippet's `weft.load(writeKey, options)`.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The source's write key.
    pub write_key: String,
    /// `"granted"`, `"pending"` or `"denied"`.
    pub consent: String,
    /// This tab's id (the loader keeps it in sessionStorage).
    pub tab: String,
    /// The anonymous id to use when none is stored (a fresh UUID).
    pub fallback_id: String,
    /// The cookie domain, instead of probing for the registrable domain.
    pub cookie_domain: Option<String>,
    /// Most events held (oldest dropped past it).
    pub max_events: u32,
    /// Most bytes of event JSON held (oldest dropped past it).
    pub max_bytes: u32,
    /// First backoff delay, ms.
    pub retry_base: f64,
    /// Longest backoff delay, ms.
    pub retry_max: f64,
    /// Run without localStorage (tests of the fallback).
    pub no_storage: bool,
}

impl Sdk {
    fn open(settings: Settings) -> Sdk {
        let stores = if settings.no_storage {
            Browser::without_storage()
        } else {
            Browser::open()
        };
        let (host, secure) = stores.host();
        let consent = Consent::parse(&settings.consent);
        let domain = settings
            .cookie_domain
            .or_else(|| identity::registrable_domain(&stores, &host));
        let jar = Jar {
            domain,
            secure,
            persist: consent == Consent::Granted,
        };
        let mut write_key_json = String::new();
        quote(&mut write_key_json, &settings.write_key);
        let anonymous_id =
            identity::read(&stores, ANON_KEY, LEGACY_ANON_KEYS).unwrap_or(settings.fallback_id);
        let mut sdk = Sdk {
            user_id: identity::read(&stores, USER_KEY, LEGACY_USER_KEYS),
            session: stores.get(SESSION_KEY).as_deref().and_then(Session::parse),
            write_key_json,
            tab: settings.tab,
            consent,
            anonymous_id,
            persistent: false,
            outbox: Outbox::new(settings.max_events as usize, settings.max_bytes as usize),
            failures: 0,
            retry_base: settings.retry_base,
            retry_max: settings.retry_max,
            stores,
            jar,
        };
        if consent == Consent::Denied {
            sdk.forget();
        } else {
            sdk.save_ids();
            if consent == Consent::Granted {
                if let Some(stored) = sdk.stores.get(&sdk.queue_key()) {
                    sdk.outbox.restore(&stored);
                }
            }
        }
        sdk
    }

    fn queue_key(&self) -> String {
        cat(&[QUEUE_PREFIX, &self.tab])
    }

    fn save_ids(&mut self) {
        let stores = &self.stores;
        self.persistent = identity::write(stores, &self.jar, ANON_KEY, Some(&self.anonymous_id));
        identity::write(stores, &self.jar, USER_KEY, self.user_id.as_deref());
    }

    fn forget(&mut self) {
        self.outbox.clear();
        let jar = Jar {
            persist: true,
            ..self.jar.clone()
        };
        identity::write(&self.stores, &jar, ANON_KEY, None);
        identity::write(&self.stores, &jar, USER_KEY, None);
        self.stores.remove(SESSION_KEY);
        self.stores.remove(&self.queue_key());
        self.persistent = false;
    }

    fn persist(&mut self) {
        if self.consent != Consent::Granted || !self.stores.has_storage() {
            return;
        }
        let key = self.queue_key();
        loop {
            let text = self.outbox.to_text(now());
            if text.is_empty() {
                self.stores.remove(&key);
                return;
            }
            // A full localStorage must not break the host page's own writes: shed the
            // oldest events until the outbox fits, and count them as dropped.
            if self.stores.set(&key, &text) || self.outbox.waiting() == 0 {
                return;
            }
            self.outbox.shed();
        }
    }

    fn touch(&mut self, page: &Page, has_campaign: bool, at: i64) -> String {
        let mut page_json = Obj::new();
        for (key, value) in page.fields() {
            page_json.str(key, value);
        }
        let mut context = Obj::new();
        context.raw("page", &page_json.end());

        let campaign = page.campaign();
        if !has_campaign && !campaign.is_empty() {
            let mut fields = Obj::new();
            for (key, value) in campaign.fields() {
                fields.str(key, value);
            }
            context.raw("campaign", &fields.end());
        }

        let key = (!campaign.is_empty()).then(|| campaign.key());
        let (session, started) = Session::advance(self.session.take(), at, key.as_deref());
        let mut session_json = Obj::new();
        session_json
            .str("id", &session.id())
            .int("count", session.count as i64);
        if started {
            session_json.bool("start", true);
        }
        context.raw("session", &session_json.end());
        if self.jar.persist {
            self.stores.set(SESSION_KEY, &session.to_text());
        }
        self.session = Some(session);
        if !self.persistent {
            context.str("idStorage", "memory");
        }
        context.end()
    }

    fn retry_delay(&mut self, retry_after_ms: f64, random: f64) -> f64 {
        self.failures = self.failures.saturating_add(1);
        if retry_after_ms > 0.0 {
            return retry_after_ms.min(3_600_000.0);
        }
        let exponent = self.failures.min(20) - 1;
        let full = (self.retry_base * f64::from(1u32 << exponent)).min(self.retry_max);
        full / 2.0 + random * full / 2.0
    }
}

/// Starts the SDK: reads the stored ids (the cookie wins and a diverging localStorage is
/// resynced), restores this tab's outbox. The arguments are [`Settings`]' fields, in order.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub fn boot(
    write_key: String,
    consent: String,
    tab: String,
    fallback_id: String,
    cookie_domain: Option<String>,
    max_events: u32,
    max_bytes: u32,
    retry_base: f64,
    retry_max: f64,
    no_storage: bool,
) {
    let sdk = Sdk::open(Settings {
        write_key,
        consent,
        tab,
        fallback_id,
        cookie_domain: cookie_domain.filter(|d| !d.is_empty()),
        max_events,
        max_bytes,
        retry_base,
        retry_max,
        no_storage,
    });
    SDK.with(|cell| *cell.borrow_mut() = Some(sdk));
}

/// The anonymous id and the user id, joined by a newline (the user id may be empty).
#[wasm_bindgen]
pub fn ids() -> String {
    with(|sdk| {
        [
            sdk.anonymous_id.as_str(),
            sdk.user_id.as_deref().unwrap_or(""),
        ]
        .join("\n")
    })
}

/// Makes `id` the anonymous id, for the next event on; unreadable ids are ignored.
#[wasm_bindgen(js_name = setAnonymousId)]
pub fn set_anonymous_id(id: &str) {
    with(|sdk| {
        if let Some(id) = stored_id::parse(id) {
            sdk.anonymous_id = id;
            sdk.save_ids();
        }
    });
}

/// Sets the user id (`identify`, `alias`); blank ids are ignored.
#[wasm_bindgen(js_name = setUserId)]
pub fn set_user_id(id: &str) {
    with(|sdk| {
        if let Some(id) = stored_id::parse(id) {
            sdk.user_id = Some(id);
            sdk.save_ids();
        }
    });
}

/// Forgets the user id and starts a new anonymous id (`fresh_id`) and session.
#[wasm_bindgen]
pub fn reset(fresh_id: String) {
    with(|sdk| {
        sdk.anonymous_id = fresh_id;
        sdk.user_id = None;
        sdk.session = None;
        sdk.stores.remove(SESSION_KEY);
        sdk.save_ids();
    });
}

/// The touchpoint context of an event, as JSON text: `page` (the live page, overridden
/// by the event's explicit fields), `campaign` (from the page's search or URL, unless
/// the event brings its own: `has_campaign`), `session`, and `idStorage: "memory"` when
/// ids could not be persisted.
///
/// `fields` is one string, parts separated by NUL: the live `href`, `referrer` and
/// `title`, then the event's own `url`, `path`, `search`, `referrer`, `title`, each
/// either a value or the single character U+0001 for "not given". One string crosses
/// the boundary with less glue than eight.
#[wasm_bindgen]
pub fn touch(fields: &str, has_campaign: bool) -> String {
    let mut parts = fields.split('\0');
    let mut next = || parts.next().unwrap_or("");
    let page = Page::from_location(next(), next(), next());
    let overrides: Vec<(&str, String)> = FIELDS
        .iter()
        .map(|field| (*field, next()))
        .filter(|(_, value)| *value != "\u{1}")
        .map(|(field, value)| (field, value.to_owned()))
        .collect();
    let page = page.overridden(overrides);
    with(|sdk| sdk.touch(&page, has_campaign, now()))
}

/// Queues an event (its `messageId` and JSON text), unless consent was denied.
#[wasm_bindgen]
pub fn push(id: String, json: String) {
    with(|sdk| {
        if sdk.consent != Consent::Denied {
            sdk.outbox.push(Item { id, json });
        }
    });
}

/// Changes consent: `"granted"` persists ids and the outbox, `"denied"` drops the outbox
/// and removes what weft stored, `"pending"` holds events in memory.
#[wasm_bindgen(js_name = setConsent)]
pub fn set_consent(state: &str) {
    with(|sdk| {
        sdk.consent = Consent::parse(state);
        sdk.jar.persist = sdk.consent == Consent::Granted;
        match sdk.consent {
            Consent::Denied => sdk.forget(),
            Consent::Granted => {
                sdk.save_ids();
                sdk.persist();
            }
            Consent::Pending => {}
        }
    });
}

/// The next batch to send, as `"<batch> <bytes>\n<body>"`, whose body fits in `max_body`
/// bytes and carries `sent_at` (RFC 3339, from the loader's clock); empty when nothing
/// can be sent (nothing waits, consent not granted, or the oldest event does not fit).
#[wasm_bindgen]
pub fn take(max_body: u32, max_events: u32, sent_at: &str) -> String {
    with(|sdk| {
        if sdk.consent != Consent::Granted {
            return String::new();
        }
        let Some((batch, items)) = sdk.outbox.take(max_body as usize, max_events as usize) else {
            return String::new();
        };
        let text = body(&items, sent_at, &sdk.write_key_json);
        let head = weft_core::session::decimal(i64::from(batch));
        let len = weft_core::session::decimal(text.len() as i64);
        cat(&[&head, " ", &len, "\n", &text])
    })
}

/// Settles a batch after its response: `status` 0 for a network error. 2xx delivers;
/// 408, 429, 5xx and network errors retry; other statuses refuse. Returns the delay
/// before the next attempt in ms (0 unless retrying): `retry_after_ms` when the collector
/// gave one, else exponential backoff with jitter from `random` (in [0, 1)).
#[wasm_bindgen]
pub fn settle(batch: u32, status: u16, retry_after_ms: f64, random: f64) -> f64 {
    with(|sdk| {
        let outcome = match status {
            200..=299 => Outcome::Delivered,
            0 | 408 | 429 | 500.. => Outcome::Retry,
            _ => Outcome::Refused,
        };
        sdk.outbox.settle(batch, outcome);
        if outcome == Outcome::Retry {
            return sdk.retry_delay(retry_after_ms, random);
        }
        sdk.failures = 0;
        0.0
    })
}

/// Writes this tab's outbox to localStorage (after changes, at page exit, as heartbeat).
#[wasm_bindgen]
pub fn persist() {
    with(Sdk::persist);
}

/// Tab ids (each followed by a newline) of other tabs' outboxes last written at least `stale_ms`
/// ago: candidates for adoption (the loader adopts only those whose Web Lock it gets).
#[wasm_bindgen]
pub fn orphans(stale_ms: f64) -> String {
    with(|sdk| {
        let now = now();
        let mut out = String::new();
        for tab in sdk.stores.keys_with_prefix(QUEUE_PREFIX) {
            let written = sdk
                .stores
                .get(&cat(&[QUEUE_PREFIX, &tab]))
                .and_then(|t| t.split('\n').next().and_then(parse_decimal))
                .unwrap_or(0);
            if tab != sdk.tab && (now - written) as f64 >= stale_ms {
                out.push_str(&tab);
                out.push('\n');
            }
        }
        out
    })
}

/// Moves another tab's outbox into this one's (the caller holds that tab's lock).
#[wasm_bindgen]
pub fn adopt(tab: &str) {
    with(|sdk| {
        if sdk.consent != Consent::Granted || tab == sdk.tab {
            return;
        }
        let key = cat(&[QUEUE_PREFIX, tab]);
        if let Some(text) = sdk.stores.get(&key) {
            sdk.outbox.restore(&text);
            sdk.persist();
            sdk.stores.remove(&key);
        }
    });
}

/// Counters as JSON text: `waiting`, `inFlight`, `bytes`, `dropped`, `refused`,
/// `delivered`, `persistent`, `tab`, `consent`, `cookieDomain`, `session`.
#[wasm_bindgen]
pub fn stats() -> String {
    with(|sdk| {
        let outbox = &sdk.outbox;
        Obj::new()
            .int("waiting", outbox.waiting() as i64)
            .int("inFlight", outbox.in_flight() as i64)
            .int("bytes", outbox.bytes() as i64)
            .int("dropped", i64::from(outbox.dropped))
            .int("refused", i64::from(outbox.refused))
            .int("delivered", i64::from(outbox.delivered))
            .bool("persistent", sdk.persistent)
            .str("tab", &sdk.tab)
            .str("consent", sdk.consent.as_str())
            .str("cookieDomain", sdk.jar.domain.as_deref().unwrap_or(""))
            .str(
                "session",
                &sdk.session.as_ref().map(Session::id).unwrap_or_default(),
            )
            .end()
    })
}
