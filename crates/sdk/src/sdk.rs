//! The SDK's state and the functions the loader calls (`boot`, `record`, `take`, ...).
//!
//! One [`Sdk`] lives in a thread-local for the page's lifetime. Calls are synchronous,
//! so a `setAnonymousId` is in force for the very next event (field report
//! `set-anon-id-before-first-event`). Events are built as JavaScript objects and turned
//! into text with the browser's `JSON.stringify`; the outbox holds that text.

use std::cell::RefCell;

use js_sys::{Array, Date, Object, Reflect, JSON};
use wasm_bindgen::prelude::*;
use weft_core::session::{decimal, Session};
use weft_core::time::format_rfc3339;

use crate::browser::Browser;
use crate::identity::{self, Jar, Stores, ANON_KEY, LEGACY_ANON_KEYS, LEGACY_USER_KEYS, USER_KEY};
use crate::page::{Page, FIELDS};
use crate::queue::{body, Item, Outbox, Outcome};

const TRAITS_KEY: &str = "weft_traits";
const SESSION_KEY: &str = "weft_ses";
const QUEUE_PREFIX: &str = "weft_q:";
const LIBRARY_VERSION: &str = env!("CARGO_PKG_VERSION");

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
    fn parse(text: Option<String>) -> Consent {
        match text.as_deref() {
            Some("pending") => Consent::Pending,
            Some("denied") => Consent::Denied,
            _ => Consent::Granted,
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
    traits: String,
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

fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn set(obj: &JsValue, key: &str, value: &JsValue) {
    let _always_ok_on_plain_objects = Reflect::set(obj, &JsValue::from_str(key), value);
}

fn text(obj: &JsValue, key: &str) -> Option<String> {
    get(obj, key)
        .as_string()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn number(obj: &JsValue, key: &str, default: f64) -> f64 {
    get(obj, key)
        .as_f64()
        .filter(|n| *n >= 0.0)
        .unwrap_or(default)
}

fn now() -> i64 {
    Date::now() as i64
}

/// A random version-4 UUID from `crypto.getRandomValues` (Math.random if that throws).
pub fn uuid() -> String {
    let mut bytes = [0u8; 16];
    let from_crypto = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !from_crypto {
        for b in &mut bytes {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    bytes[6] = bytes[6] & 0x0f | 0x40;
    bytes[8] = bytes[8] & 0x3f | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

impl Sdk {
    fn open(opts: &JsValue) -> Sdk {
        let stores = if get(opts, "noStorage").is_truthy() {
            Browser::without_storage()
        } else {
            Browser::open()
        };
        let location = web_sys::window().map(|w| w.location());
        let host = location
            .as_ref()
            .and_then(|l| l.hostname().ok())
            .unwrap_or_default();
        let secure = location
            .as_ref()
            .and_then(|l| l.protocol().ok())
            .is_some_and(|p| p == "https:");
        let consent = Consent::parse(text(opts, "consent"));
        let domain =
            text(opts, "cookieDomain").or_else(|| identity::registrable_domain(&stores, &host));
        let jar = Jar {
            domain,
            secure,
            persist: consent == Consent::Granted,
        };
        let write_key = JsValue::from_str(&text(opts, "writeKey").unwrap_or_default());
        let stored_anon = identity::read(&stores, ANON_KEY, LEGACY_ANON_KEYS);
        let user_id = identity::read(&stores, USER_KEY, LEGACY_USER_KEYS);
        let traits = stores.get(TRAITS_KEY).unwrap_or_default();
        let session = stores.get(SESSION_KEY).as_deref().and_then(Session::parse);
        let max_events = number(opts, "maxEvents", 1000.0) as usize;
        let max_bytes = number(opts, "maxBytes", 1_000_000.0) as usize;
        let mut sdk = Sdk {
            write_key_json: JSON::stringify(&write_key)
                .ok()
                .and_then(|s| s.as_string())
                .unwrap_or_else(|| "\"\"".to_owned()),
            tab: text(opts, "tab").unwrap_or_else(uuid),
            consent,
            anonymous_id: stored_anon.unwrap_or_else(uuid),
            user_id,
            traits,
            persistent: false,
            session,
            outbox: Outbox::new(max_events, max_bytes),
            failures: 0,
            retry_base: number(opts, "retryBase", 1000.0),
            retry_max: number(opts, "retryMax", 60_000.0),
            stores,
            jar,
        };
        if consent == Consent::Denied {
            sdk.forget();
        } else {
            sdk.save_ids();
            if consent == Consent::Granted {
                let key = sdk.queue_key();
                if let Some(stored) = sdk.stores.get(&key) {
                    sdk.outbox.restore(&stored);
                }
            }
        }
        sdk
    }

    fn queue_key(&self) -> String {
        [QUEUE_PREFIX, &self.tab].concat()
    }

    fn save_ids(&mut self) {
        let anon_kept =
            identity::write(&self.stores, &self.jar, ANON_KEY, Some(&self.anonymous_id));
        identity::write(&self.stores, &self.jar, USER_KEY, self.user_id.as_deref());
        self.persistent = anon_kept;
        if self.jar.persist {
            if self.traits.is_empty() {
                self.stores.remove(TRAITS_KEY);
            } else {
                self.stores.set(TRAITS_KEY, &self.traits);
            }
        }
    }

    fn forget(&mut self) {
        self.outbox.clear();
        let jar = Jar {
            persist: true,
            ..self.jar.clone()
        };
        identity::write(&self.stores, &jar, ANON_KEY, None);
        identity::write(&self.stores, &jar, USER_KEY, None);
        for key in [TRAITS_KEY, SESSION_KEY] {
            self.stores.remove(key);
        }
        let queue = self.queue_key();
        self.stores.remove(&queue);
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

    fn record(&mut self, kind: &str, fields: &JsValue) {
        if self.consent == Consent::Denied {
            return;
        }
        let at = now();
        match kind {
            "identify" => {
                if let Some(user) = text(fields, "userId") {
                    self.user_id = Some(user);
                }
                let new_traits = get(fields, "traits");
                if new_traits.is_object() {
                    let merged = JSON::parse(&self.traits)
                        .ok()
                        .filter(JsValue::is_object)
                        .unwrap_or_else(|| Object::new().into());
                    let merged = Object::assign(&merged.into(), &new_traits.clone().into());
                    self.traits = JSON::stringify(&merged)
                        .ok()
                        .and_then(|s| s.as_string())
                        .unwrap_or_default();
                }
                self.save_ids();
            }
            "alias" => {
                if let Some(user) = text(fields, "userId") {
                    self.user_id = Some(user);
                    self.save_ids();
                }
            }
            _ => {}
        }

        let event: JsValue = Object::new().into();
        let message_id = uuid();
        set(&event, "type", &JsValue::from_str(kind));
        set(&event, "messageId", &JsValue::from_str(&message_id));
        set(
            &event,
            "anonymousId",
            &JsValue::from_str(&self.anonymous_id),
        );
        if let Some(user) = &self.user_id {
            set(&event, "userId", &JsValue::from_str(user));
        }
        for key in [
            "event",
            "name",
            "category",
            "properties",
            "traits",
            "groupId",
            "integrations",
        ] {
            let value = get(fields, key);
            if !value.is_undefined() && !value.is_null() {
                set(&event, key, &value);
            }
        }
        if kind == "alias" {
            let previous = text(fields, "previousId").unwrap_or_else(|| self.anonymous_id.clone());
            set(&event, "previousId", &JsValue::from_str(&previous));
        }
        let timestamp = get(fields, "timestamp");
        let timestamp = if timestamp.is_string() {
            timestamp
        } else {
            JsValue::from_str(&format_rfc3339(at))
        };
        set(&event, "timestamp", &timestamp);
        set(&event, "context", &self.context(kind, fields, at));

        let Some(json) = JSON::stringify(&event).ok().and_then(|s| s.as_string()) else {
            return;
        };
        self.outbox.push(Item {
            id: message_id,
            json,
        });
    }

    fn context(&mut self, kind: &str, fields: &JsValue, at: i64) -> JsValue {
        let given = get(fields, "context");
        let context: JsValue = Object::new().into();
        if given.is_object() {
            Object::assign(&context.clone().into(), &given.into());
        }

        let window = web_sys::window();
        let document = window.as_ref().and_then(|w| w.document());
        let href = window
            .as_ref()
            .and_then(|w| w.location().href().ok())
            .unwrap_or_default();
        let (referrer, title) = document
            .map(|d| (d.referrer(), d.title()))
            .unwrap_or_default();
        let mut page = Page::from_location(&href, &referrer, &title);
        let properties = get(fields, "properties");
        let explicit_page = get(&context, "page");
        let from_properties = if kind == "page" {
            properties
        } else {
            JsValue::UNDEFINED
        };
        for source in [&from_properties, &explicit_page] {
            if source.is_object() {
                let overrides = FIELDS
                    .iter()
                    .filter_map(|f| get(source, f).as_string().map(|v| (*f, v)));
                page = page.overridden(overrides);
            }
        }
        let page_object: JsValue = Object::new().into();
        for (key, value) in page.fields() {
            set(&page_object, key, &JsValue::from_str(value));
        }
        set(&context, "page", &page_object);

        let campaign = page.campaign();
        if !get(&context, "campaign").is_object() && !campaign.is_empty() {
            let campaign_object: JsValue = Object::new().into();
            for (key, value) in campaign.fields() {
                set(&campaign_object, key, &JsValue::from_str(value));
            }
            set(&context, "campaign", &campaign_object);
        }

        let key = (!campaign.is_empty()).then(|| campaign.key());
        let (session, started) = Session::advance(self.session.take(), at, key.as_deref());
        let session_object: JsValue = Object::new().into();
        set(&session_object, "id", &JsValue::from_str(&session.id()));
        set(
            &session_object,
            "count",
            &JsValue::from_f64(session.count as f64),
        );
        if started {
            set(&session_object, "start", &JsValue::TRUE);
        }
        set(&context, "session", &session_object);
        if self.jar.persist {
            self.stores.set(SESSION_KEY, &session.to_text());
        }
        self.session = Some(session);

        let library: JsValue = Object::new().into();
        set(&library, "name", &JsValue::from_str("weft-sdk"));
        set(&library, "version", &JsValue::from_str(LIBRARY_VERSION));
        set(&context, "library", &library);
        if let Some(navigator) = window.map(|w| w.navigator()) {
            if let Ok(agent) = navigator.user_agent() {
                set(&context, "userAgent", &JsValue::from_str(&agent));
            }
            if let Some(locale) = navigator.language() {
                set(&context, "locale", &JsValue::from_str(&locale));
            }
        }
        if !self.persistent {
            set(&context, "idStorage", &JsValue::from_str("memory"));
        }
        context
    }

    fn retry_delay(&mut self, retry_after_ms: f64) -> f64 {
        self.failures = self.failures.saturating_add(1);
        if retry_after_ms > 0.0 {
            return retry_after_ms.min(3_600_000.0);
        }
        let exponent = self.failures.min(20) - 1;
        let full = (self.retry_base * f64::from(1u32 << exponent)).min(self.retry_max);
        full / 2.0 + js_sys::Math::random() * full / 2.0
    }
}

/// Starts the SDK: reads the stored ids (resyncing cookie and localStorage), restores
/// this tab's outbox. `opts`: `writeKey`, `consent` (`"granted"`, `"pending"`,
/// `"denied"`), `tab` (this tab's id, from the loader), `cookieDomain`, `maxEvents`,
/// `maxBytes`, `retryBase`, `retryMax` (ms), `noStorage` (tests).
#[wasm_bindgen]
pub fn boot(opts: JsValue) {
    let sdk = Sdk::open(&opts);
    SDK.with(|cell| *cell.borrow_mut() = Some(sdk));
}

/// Queues an event of type `kind` (`page`, `track`, `identify`, `group`, `alias`) built
/// from `fields` (`event`, `name`, `category`, `properties`, `traits`, `userId`,
/// `groupId`, `previousId`, `context`, `integrations`, `timestamp`).
#[wasm_bindgen]
pub fn record(kind: &str, fields: JsValue) {
    with(|sdk| sdk.record(kind, &fields));
}

/// Makes `id` the anonymous id, for the next event on; blank ids are ignored.
#[wasm_bindgen(js_name = setAnonymousId)]
pub fn set_anonymous_id(id: &str) {
    with(|sdk| {
        if let Some(id) = weft_core::stored_id::parse(id) {
            sdk.anonymous_id = id;
            sdk.save_ids();
        }
    });
}

/// Forgets the user id and traits and starts a new anonymous id and session.
#[wasm_bindgen]
pub fn reset() {
    with(|sdk| {
        sdk.anonymous_id = uuid();
        sdk.user_id = None;
        sdk.traits.clear();
        sdk.session = None;
        sdk.stores.remove(SESSION_KEY);
        sdk.save_ids();
    });
}

/// `{anonymousId, userId, traits}` of the current visitor.
#[wasm_bindgen]
pub fn user() -> JsValue {
    with(|sdk| {
        let out: JsValue = Object::new().into();
        set(&out, "anonymousId", &JsValue::from_str(&sdk.anonymous_id));
        let user = sdk
            .user_id
            .as_deref()
            .map_or(JsValue::NULL, JsValue::from_str);
        set(&out, "userId", &user);
        let traits = JSON::parse(&sdk.traits).unwrap_or_else(|_| Object::new().into());
        set(&out, "traits", &traits);
        out
    })
}

/// Changes consent: `"granted"` persists ids and the outbox, `"denied"` drops the outbox
/// and removes what weft stored, `"pending"` holds events in memory.
#[wasm_bindgen(js_name = setConsent)]
pub fn set_consent(state: &str) {
    with(|sdk| {
        sdk.consent = Consent::parse(Some(state.to_owned()));
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

/// The next batch to send, `[batch, body, bytes]`, whose body fits in `max_body` bytes;
/// `undefined` when nothing can be sent (empty, consent not granted, or the oldest event
/// does not fit).
#[wasm_bindgen]
pub fn take(max_body: u32, max_events: u32) -> JsValue {
    with(|sdk| {
        if sdk.consent != Consent::Granted {
            return JsValue::UNDEFINED;
        }
        let Some((batch, items)) = sdk.outbox.take(max_body as usize, max_events as usize) else {
            return JsValue::UNDEFINED;
        };
        let text = body(&items, &format_rfc3339(now()), &sdk.write_key_json);
        let len = text.len() as f64;
        Array::of3(
            &JsValue::from_f64(f64::from(batch)),
            &JsValue::from_str(&text),
            &len.into(),
        )
        .into()
    })
}

/// Settles a batch after its response: `status` 0 for a network error. 2xx delivers,
/// 429, 5xx and network errors retry, other statuses refuse. Returns the delay before
/// the next attempt in ms (0 unless retrying): `retry_after_ms` when the collector gave
/// one, else exponential backoff with jitter.
#[wasm_bindgen]
pub fn settle(batch: u32, status: u16, retry_after_ms: f64) -> f64 {
    with(|sdk| {
        let outcome = match status {
            200..=299 => Outcome::Delivered,
            0 | 408 | 429 | 500.. => Outcome::Retry,
            _ => Outcome::Refused,
        };
        sdk.outbox.settle(batch, outcome);
        if outcome == Outcome::Retry {
            return sdk.retry_delay(retry_after_ms);
        }
        sdk.failures = 0;
        0.0
    })
}

/// Writes this tab's outbox to localStorage (the loader calls it after changes, on
/// page exit and as a heartbeat).
#[wasm_bindgen]
pub fn persist() {
    with(Sdk::persist);
}

/// Tab ids of other tabs' outboxes last written at least `stale_ms` ago: candidates for
/// adoption (the loader holds a Web Lock per tab and adopts only unlocked ones).
#[wasm_bindgen]
pub fn orphans(stale_ms: f64) -> Array {
    with(|sdk| {
        let out = Array::new();
        let now = now();
        for tab in sdk.stores.keys_with_prefix(QUEUE_PREFIX) {
            let key = [QUEUE_PREFIX, &tab].concat();
            let written = sdk
                .stores
                .get(&key)
                .and_then(|t| t.split('\n').next().and_then(|l| l.parse::<i64>().ok()))
                .unwrap_or(0);
            if tab != sdk.tab && (now - written) as f64 >= stale_ms {
                out.push(&JsValue::from_str(&tab));
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
        let key = [QUEUE_PREFIX, tab].concat();
        if let Some(text) = sdk.stores.get(&key) {
            sdk.outbox.restore(&text);
            sdk.persist();
            sdk.stores.remove(&key);
        }
    });
}

/// Counters for `debug` and tests: `waiting`, `inFlight`, `dropped`, `refused`,
/// `delivered`, `persistent`, `tab`, `consent`, `session` (id).
#[wasm_bindgen]
pub fn stats() -> JsValue {
    with(|sdk| {
        let out: JsValue = Object::new().into();
        let counts = [
            ("waiting", sdk.outbox.waiting() as f64),
            ("inFlight", sdk.outbox.in_flight() as f64),
            ("bytes", sdk.outbox.bytes() as f64),
            ("dropped", f64::from(sdk.outbox.dropped)),
            ("refused", f64::from(sdk.outbox.refused)),
            ("delivered", f64::from(sdk.outbox.delivered)),
        ];
        for (key, value) in counts {
            set(&out, key, &JsValue::from_f64(value));
        }
        set(&out, "persistent", &JsValue::from_bool(sdk.persistent));
        set(&out, "tab", &JsValue::from_str(&sdk.tab));
        let consent = match sdk.consent {
            Consent::Pending => "pending",
            Consent::Granted => "granted",
            Consent::Denied => "denied",
        };
        set(&out, "consent", &JsValue::from_str(consent));
        let domain = sdk
            .jar
            .domain
            .as_deref()
            .map_or(JsValue::NULL, JsValue::from_str);
        set(&out, "cookieDomain", &domain);
        let session = sdk
            .session
            .as_ref()
            .map_or(String::new(), |s| decimal(s.start));
        set(&out, "session", &JsValue::from_str(&session));
        out
    })
}
